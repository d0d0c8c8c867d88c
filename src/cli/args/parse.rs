//! The parser: the arguments of a download read with the table of
//! [`OPTIONS`](super::defs::OPTIONS).
//!
//! Owns the syntax every option shares (`--name VALUE`, `--name=VALUE`,
//! `-xVALUE`, `--`, what an unknown or misused option is told) and what
//! the positional arguments mean; what an option does is its entry's. The
//! sub-commands are handed to `subcommand`.

use std::ffi::OsString;
use std::path::PathBuf;

use super::defs::{self, Draft, Takes};
use super::{Command, Download, Output, UsageError};

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args.into_iter().peekable();
    let first = args.peek().and_then(|a| a.to_str().map(str::to_owned));
    if first.as_deref() == Some("seed") {
        args.next();
        return parse_seed(args);
    }
    if let Some(name @ ("split" | "serve" | "demo" | "make-torrent")) = first.as_deref() {
        args.next();
        #[cfg(feature = "serve")]
        return super::subcommand::parse(name, args);
        #[cfg(not(feature = "serve"))]
        return Err(UsageError(format!(
            "{name}: this partfetch was built without the serve feature"
        )));
    }
    parse_download(args)
}

/// `seed FILE.torrent DIR` and the options of a download: the torrent's
/// files under DIR uploaded, nothing downloaded.
fn parse_seed(args: impl Iterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut d = match parse_download(args)? {
        Command::Download(d) => d,
        help_or_version => return Ok(help_or_version),
    };
    if !partfetch::names_a_torrent(&d.url) {
        return Err(UsageError(format!(
            "seed: {:?} is not a .torrent (usage: partfetch seed FILE.torrent DIR)",
            d.url
        )));
    }
    if d.output == Output::Stdout {
        return Err(UsageError(
            "seed: DIR is where the torrent's files are, not standard output".to_owned(),
        ));
    }
    d.seed_only = true;
    Ok(Command::Download(d))
}

/// An argument as a `String`, or the usage error that it is not one.
pub(super) fn utf8(arg: OsString) -> Result<String, UsageError> {
    arg.into_string()
        .map_err(|a| UsageError(format!("argument is not valid UTF-8: {a:?}")))
}

/// The options and positional arguments of a download.
fn parse_download(args: impl Iterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args.map(utf8);
    let mut positional = Vec::new();
    let mut draft = Draft {
        download: empty_download(),
        output: None,
        remote_name: false,
        user: None,
    };
    // The options of `Takes::ValueOnce` given so far.
    let mut given_once: Vec<&'static str> = Vec::new();
    let mut options_ended = false;
    while let Some(arg) = args.next() {
        let arg = arg?;
        if options_ended || arg == "-" || !arg.starts_with('-') {
            positional.push(arg);
            continue;
        }
        if arg == "--" {
            options_ended = true;
            continue;
        }
        let (name, inline) = split_option(&arg);
        let Some(opt) = defs::find(&name) else {
            return Err(UsageError(match defs::familiar(&name) {
                Some(hint) => format!("unknown option {name} ({hint})"),
                None => format!("unknown option {name}"),
            }));
        };
        let (value, set) = match opt.takes {
            Takes::Stop(command) => return Ok(command()),
            Takes::Nothing(set) => match inline {
                None => {
                    set(&mut draft);
                    continue;
                }
                Some(rest) => return Err(takes_no_value(&arg, &name, &rest)),
            },
            Takes::Value(value, set) => (value, set),
            Takes::ValueOnce(value, set) => {
                if given_once.contains(&opt.long) {
                    return Err(UsageError(format!("option {name} given twice")));
                }
                given_once.push(opt.long);
                (value, set)
            }
        };
        let text = match inline {
            Some(text) => text,
            None => args
                .next()
                .transpose()?
                .ok_or_else(|| UsageError(format!("option {name} needs {}", value.needs)))?,
        };
        set(&mut draft, &name, text)?;
    }
    finish(draft, positional)
}

/// A download with no option given, its URL still to be read.
fn empty_download() -> Download {
    Download {
        url: String::new(),
        output: Output::FromUrl,
        quiet: false,
        verbose: false,
        head: false,
        input_file: None,
        checksum: None,
        no_resume: false,
        resume: false,
        compressed: false,
        limit_rate: None,
        retries: None,
        max_peers: None,
        max_files: None,
        seed_only: false,
        seed: false,
        seed_ratio_thousandths: None,
        seed_time: None,
        listen_port: None,
        max_upload_rate: None,
        max_time: None,
        max_filesize: None,
        progress: false,
        cacert: Vec::new(),
        pinned_public_keys: Vec::new(),
        proxy: None,
        connect_timeout: None,
        idle_timeout: None,
        max_redirects: None,
        headers: Vec::new(),
        user_agent: None,
        sequence: None,
        cache_limit: None,
        parallel: None,
        connections: None,
        max_per_host: None,
        mirrors: Vec::new(),
    }
}

/// The error for a value given to an option that takes none: `arg` as
/// written, `name` the option in it, `rest` what followed. `-qn` is most
/// likely `-q -n`, which is said, since short options are not combined.
fn takes_no_value(arg: &str, name: &str, rest: &str) -> UsageError {
    UsageError(if arg.starts_with("--") {
        format!("option {name} takes no value")
    } else {
        format!(
            "option {name} takes no value (short options are not combined: \
             {name} -{rest}, not {arg})"
        )
    })
}

/// The download from its options and positional arguments (URL, then
/// FILE): the output chosen, and combinations that cannot work refused.
fn finish(draft: Draft, positional: Vec<String>) -> Result<Command, UsageError> {
    let Draft {
        download: mut d,
        output: output_option,
        remote_name,
        user,
    } = draft;
    // `wget -O FILE URL`: the FILE was read as the URL.
    if remote_name && positional.len() == 2 && looks_like_url(&positional[1]) {
        return Err(UsageError(format!(
            "-O takes no value (curl's -O, naming the file after the URL, is the \
             default); to save as {:?}, as wget's -O does, give -o {:?} or FILE after the URL",
            positional[0], positional[0]
        )));
    }
    let authorization_given = d
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    if let (Some(value), false) = (user, authorization_given) {
        d.headers.push(("Authorization".to_owned(), value));
    }
    if d.input_file.is_some() {
        return finish_list(d, output_option, positional);
    }
    let mut positional = positional.into_iter();
    let url = positional
        .next()
        .ok_or_else(|| UsageError("no URL given".to_owned()))?;
    // `partfetch help`, as git and cargo take it: no URL is that short.
    if url == "help" && positional.len() == 0 {
        return Ok(Command::Help);
    }
    d.url = with_scheme(url);
    let file = match (positional.next(), output_option) {
        (Some(file), Some(option)) => {
            return Err(UsageError(format!(
                "FILE given twice: {file:?} and -o {option:?}"
            )))
        }
        (file, option) => file.or(option),
    };
    d.output = match file {
        None => Output::FromUrl,
        Some(f) if f == "-" => Output::Stdout,
        Some(f) if f.is_empty() => return Err(UsageError("FILE is empty".to_owned())),
        Some(f) if looks_like_url(&f) => {
            return Err(UsageError(format!(
                "FILE {f:?} looks like a URL: give one URL, then FILE (-i FILE downloads \
                 the URLs a file lists; --mirror URL gives another source of the same file)"
            )))
        }
        Some(f) => Output::File(PathBuf::from(f)),
    };
    if d.resume && d.output == Output::Stdout {
        return Err(UsageError(
            "--resume: standard output cannot be resumed; give FILE".to_owned(),
        ));
    }
    if d.resume && d.is_sequence() {
        return Err(UsageError(
            "--resume: a file sequence is never resumed (its files are written afresh); \
             run without --resume, or with --no-sequence to save the stream as one file"
                .to_owned(),
        ));
    }
    if d.resume && d.no_resume {
        return Err(UsageError("--resume and --no-resume contradict".to_owned()));
    }
    if let Some(extra) = positional.next() {
        return Err(UsageError(format!("unexpected argument {extra:?}")));
    }
    if d.head && d.output != Output::FromUrl {
        return Err(UsageError(
            "-I/--head prints the response head on standard output: FILE is not taken".to_owned(),
        ));
    }
    Ok(Command::Download(Box::new(d)))
}

/// `-i FILE [URL]`: the downloads FILE lists, after URL when given; each
/// line names its own file, so no FILE or `-o` is taken.
fn finish_list(
    mut d: Download,
    output_option: Option<String>,
    positional: Vec<String>,
) -> Result<Command, UsageError> {
    if let Some(file) = output_option {
        return Err(UsageError(format!(
            "-o {file:?} with -i: each line of the list names its file after its URL"
        )));
    }
    if d.head {
        return Err(UsageError(
            "-I with -i: -I prints the head of one URL".to_owned(),
        ));
    }
    let mut positional = positional.into_iter();
    if let Some(url) = positional.next() {
        d.url = with_scheme(url);
    }
    if let Some(extra) = positional.next() {
        return Err(UsageError(format!(
            "unexpected argument {extra:?} (with -i, FILE is given after the URL on its \
             line of the list)"
        )));
    }
    Ok(Command::Download(Box::new(d)))
}

/// `example.com/f` → `http://example.com/f`, as curl guesses: a URL with
/// no `://` is taken for plain HTTP (a redirect to HTTPS is followed).
/// A `.torrent` or `.meta4` is left alone, being most often a local file.
pub(crate) fn with_scheme(url: String) -> String {
    if url.contains("://") || partfetch::names_a_torrent(&url) || names_a_metalink(&url) {
        return url;
    }
    format!("http://{url}")
}

#[cfg(feature = "metalink")]
fn names_a_metalink(url: &str) -> bool {
    partfetch::names_a_metalink(url)
}

/// Without Metalink support, a `.meta4` is a file like any other.
#[cfg(not(feature = "metalink"))]
fn names_a_metalink(_: &str) -> bool {
    false
}

/// Whether a FILE argument starts like an http:// or https:// URL (any
/// case): `partfetch URL1 URL2` meant two downloads, not URL1 saved under
/// a path no one would choose, so it is refused before anything is
/// fetched rather than failing on the directory `http:` that is not there.
pub(crate) fn looks_like_url(file: &str) -> bool {
    let starts = |prefix: &str| {
        file.get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    starts("http://") || starts("https://")
}

/// `--name=value` → (`--name`, `value`); `-Hvalue` → (`-H`, `value`).
/// Only a letter after one dash is a short option with its value: `-1` and
/// `-é` stay whole, to be refused by name.
fn split_option(arg: &str) -> (String, Option<String>) {
    if let Some(long) = arg.strip_prefix("--") {
        return match long.split_once('=') {
            Some((n, v)) => (format!("--{n}"), Some(v.to_owned())),
            None => (arg.to_owned(), None),
        };
    }
    let mut chars = arg.chars();
    chars.next();
    match chars.next() {
        Some(c) if arg.len() > 2 && c.is_ascii_alphabetic() => {
            (format!("-{c}"), Some(arg[2..].to_owned()))
        }
        _ => (arg.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::defs::{Value, OPTIONS};
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn download(args: &[&str]) -> Download {
        match parse_strs(args).unwrap() {
            Command::Download(d) => *d,
            other => panic!("expected a download, got {other:?}"),
        }
    }

    /// A value each kind of value accepts, other than what no option means.
    fn sample(value: Value) -> &'static str {
        match value.name {
            "N" => "3",
            "S" => "2.5",
            "SIZE" | "RATE" => "2M",
            "R" => "1.5",
            "DURATION" => "90s",
            "URL" => "http://elsewhere/f",
            "-" => "-",
            "FILE" => "out",
            "TEXT" => "agent",
            "'N: V'" => "X-A: b",
            "USER:PASSWORD" => "user:secret",
            "sha256=HEX" => {
                "sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            }
            "sha256//BASE64" => "sha256//47DEQpj8HBSbTUTiBbiYvl2J4Aq6W0G5gE8mZL69DFE=",
            other => panic!("no sample for {other}: add one"),
        }
    }

    #[test]
    fn every_option_with_a_value_takes_it_in_every_form() {
        let url = "http://h/x";
        let mut seen: Vec<(String, Download)> = Vec::new();
        for opt in OPTIONS {
            let value = match opt.takes {
                Takes::Value(value, _) | Takes::ValueOnce(value, _) => value,
                Takes::Stop(_) | Takes::Nothing(_) => continue,
            };
            let (long, v) = (format!("--{}", opt.long), sample(value));
            let d = download(&[&long, v, url]);
            assert_eq!(download(&[&format!("{long}={v}"), url]), d, "{long}={v}");
            assert_eq!(download(&[url, &long, v]), d, "{long} after the URL");
            if let Some(c) = opt.short {
                assert_eq!(download(&[&format!("-{c}"), v, url]), d, "-{c} {v}");
                assert_eq!(download(&[&format!("-{c}{v}"), url]), d, "-{c}{v}");
            }
            let missing = parse_strs(&[url, &long]).unwrap_err().0;
            assert_eq!(missing, format!("option {long} needs {}", value.needs));
            // The setter did something, and not what another option does
            // (but for curl's -C -, which asks for the default).
            if opt.long == "continue-at" {
                assert_eq!(d, download(&[url]), "{long}");
                continue;
            }
            assert_ne!(d, download(&[url]), "{long} changed nothing");
            // wget's and aria2c's name for --cacert is meant to do what it does.
            if opt.long == "ca-certificate" {
                assert_eq!(d, download(&["--cacert", v, url]), "{long}");
                continue;
            }
            if let Some((other, _)) = seen.iter().find(|(_, s)| *s == d) {
                panic!("{long} {v} does what {other} {v} does");
            }
            seen.push((long, d));
        }
    }

    #[test]
    fn every_option_without_a_value_refuses_one() {
        let url = "http://h/x";
        let mut seen: Vec<(String, Download)> = Vec::new();
        for opt in OPTIONS {
            let long = format!("--{}", opt.long);
            match opt.takes {
                Takes::Nothing(_) => {}
                Takes::Stop(_) => {
                    let command = parse_strs(&[url, "--bogus=1", &long]);
                    assert!(
                        matches!(command, Err(UsageError(ref e)) if e.contains("--bogus")),
                        "options before {long} are read first: {command:?}"
                    );
                    let command = parse_strs(&[url, &long, "--bogus=1"]).unwrap();
                    assert!(matches!(command, Command::Help | Command::Version));
                    continue;
                }
                Takes::Value(..) | Takes::ValueOnce(..) => continue,
            }
            let d = download(&[&long, url]);
            assert_eq!(
                parse_strs(&[&format!("{long}=x"), url]).unwrap_err().0,
                format!("option {long} takes no value")
            );
            if let Some(c) = opt.short {
                assert_eq!(download(&[&format!("-{c}"), url]), d);
                let combined = parse_strs(&[&format!("-{c}x"), url]).unwrap_err().0;
                assert!(
                    combined.contains(&format!("-{c} -x, not -{c}x")),
                    "{combined}"
                );
            }
            // Only the options that ask for the default (--keep-partial,
            // and curl's and wget's -L, -O and -c) change nothing; the
            // others do, each something of its own.
            let asks_for_the_default =
                ["keep-partial", "location", "remote-name", "continue"].contains(&opt.long);
            if asks_for_the_default {
                assert_eq!(d, download(&[url]), "{long}");
                continue;
            }
            if let Some((other, _)) = seen.iter().find(|(_, s)| *s == d) {
                panic!("{long} does what {other} does");
            }
            seen.push((long, d));
        }
    }

    #[test]
    fn options_of_curl_wget_and_aria2c_point_to_partfetchs_own() {
        let message = |args: &[&str]| parse_strs(args).unwrap_err().0;
        for (option, hint) in [
            ("-k", "--cacert"),
            ("--retry", "--retries"),
            ("-s", "-q"),
            ("-x", "--proxy"),
        ] {
            let said = message(&[option, "http://h/x"]);
            assert!(
                said.starts_with(&format!("unknown option {option} (")),
                "{said}"
            );
            assert!(said.contains(hint), "{said}");
        }
        assert_eq!(
            message(&["--bogus", "http://h/x"]),
            "unknown option --bogus"
        );
        let combined = message(&["-qn", "4", "http://h/x"]);
        assert!(combined.contains("-q -n, not -qn"), "{combined}");
        assert!(matches!(parse_strs(&["help"]), Ok(Command::Help)));
    }

    #[test]
    fn url_and_output_forms() {
        assert_eq!(download(&["http://h/x"]).output, Output::FromUrl);
        assert_eq!(download(&["http://h/x", "-"]).output, Output::Stdout);
        assert_eq!(
            download(&["http://h/x", "out"]).output,
            Output::File(PathBuf::from("out"))
        );
        assert_eq!(download(&["--", "-weird", "f"]).url, "http://-weird");
    }

    #[test]
    fn output_option_is_file_by_another_name() {
        for args in [
            &["-o", "out", "http://h/x"][..],
            &["http://h/x", "--output", "out"],
            &["--output=out", "http://h/x"],
        ] {
            assert_eq!(
                download(args).output,
                Output::File(PathBuf::from("out")),
                "{args:?}"
            );
        }
        assert_eq!(download(&["-o", "-", "http://h/x"]).output, Output::Stdout);
        for bad in [
            &["-o", "a", "http://h/x", "b"][..],
            &["-o", "a", "-o", "b", "http://h/x"],
            &["-o", "", "http://h/x"],
            &["http://h/x", "-o"],
        ] {
            assert!(parse_strs(bad).is_err(), "{bad:?}");
        }
        // Refused as a repeat before the missing value is noticed.
        assert_eq!(
            parse_strs(&["-o", "a", "http://h/x", "--output"]).unwrap_err(),
            UsageError("option --output given twice".to_owned())
        );
    }

    #[test]
    fn options_take_values_inline_or_next() {
        let d = download(&[
            "-H",
            "A: b",
            "--header=C:d",
            "-HE: f",
            "--timeout",
            "0.5",
            "--connect-timeout=2",
            "--max-redirects",
            "3",
            "--cache-limit",
            "1M",
            "-j3",
            "--connections=2",
            "--mirror",
            "http://m1/f",
            "--mirror=http://m2/f",
            "http://h/",
        ]);
        assert_eq!(
            d.headers,
            vec![
                ("A".into(), "b".into()),
                ("C".into(), "d".into()),
                ("E".into(), "f".into())
            ]
        );
        assert_eq!(d.idle_timeout, Some(Duration::from_millis(500)));
        assert_eq!(d.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(d.max_redirects, Some(3));
        assert_eq!(d.cache_limit, Some(1 << 20));
        assert_eq!(d.parallel, Some(3));
        assert_eq!(d.connections, Some(2));
        assert_eq!(d.mirrors, ["http://m1/f", "http://m2/f"]);
        for bad in ["0", "65", "x"] {
            assert!(parse_strs(&["--parallel", bad, "http://h/"]).is_err());
        }
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for bad in [
            &["--nope", "http://h/"][..],
            &[],
            &["http://h/", "a", "b"],
            &["--timeout", "x", "http://h/"],
            &["--timeout", "-1", "http://h/"],
            &["-H", "no colon", "http://h/"],
            &["-H", ": empty name", "http://h/"],
            &["-H", "Two Words: x", "http://h/"],
            &["-H", "Range: bytes=0-99", "http://h/"],
            &["--header=if-range: \"v1\"", "http://h/"],
            &["--quiet=yes", "http://h/"],
            &["--proxy"],
        ] {
            assert!(parse_strs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resume_is_refused_where_nothing_could_be_resumed() {
        for (args, says) in [
            (&["--resume", "http://h/x", "-"][..], "standard output"),
            (&["--resume", "http://h/a-seq", "f"], "sequence"),
            (&["--resume", "http://h/a-seq"], "sequence"),
            (&["--resume", "--sequence", "http://h/a", "f"], "sequence"),
            (
                &["--resume", "--no-resume", "http://h/a", "f"],
                "contradict",
            ),
        ] {
            let err = parse_strs(args).unwrap_err();
            assert!(err.0.contains(says), "{args:?}: {}", err.0);
        }
        assert!(download(&["--resume", "--no-sequence", "http://h/a-seq", "f"]).resume);
    }

    #[test]
    fn a_file_that_looks_like_a_url_is_refused() {
        for args in [
            &["http://h/a", "http://h/b"][..],
            &["http://h/a", "HTTPS://h/b"],
            &["-o", "https://h/b", "http://h/a"],
        ] {
            let err = parse_strs(args).unwrap_err();
            assert!(err.0.contains("-i FILE downloads"), "{args:?}: {}", err.0);
        }
        for file in ["http", "http:x", "./http://h/b", "ftp://h/b"] {
            assert_eq!(
                download(&["http://h/a", file]).output,
                Output::File(PathBuf::from(file))
            );
        }
    }

    #[test]
    fn curl_and_wget_flags_for_what_partfetch_does_anyway_are_accepted() {
        let plain = download(&["http://h/x", "out"]);
        for args in [
            &["-L", "http://h/x", "out"][..],
            &["--location", "-O", "http://h/x", "out"],
            &["--remote-name", "http://h/x", "out"],
            &["-c", "http://h/x", "out"],
            &["--continue", "-C", "-", "http://h/x", "out"],
            &["-C-", "http://h/x", "out"],
            &["--continue-at=-", "-L", "-O", "-c", "http://h/x", "out"],
        ] {
            assert_eq!(download(args), plain, "{args:?}");
        }
        let offset = parse_strs(&["-C", "100", "http://h/x"]).unwrap_err().0;
        assert!(offset.contains("-C takes only -") && offset.contains("\"100\""));
    }

    #[test]
    fn wgets_dash_capital_o_with_a_file_points_to_dash_o() {
        let said = parse_strs(&["-O", "out.iso", "http://h/x"]).unwrap_err().0;
        assert!(said.contains("-O takes no value"), "{said}");
        assert!(said.contains("-o \"out.iso\""), "{said}");
    }

    #[test]
    fn a_url_without_a_scheme_is_taken_for_http_as_curl_does() {
        assert_eq!(
            download(&["example.com/f.iso"]).url,
            "http://example.com/f.iso"
        );
        assert_eq!(
            download(&["localhost:8080/f"]).url,
            "http://localhost:8080/f"
        );
        assert_eq!(download(&["HTTPS://h/f"]).url, "HTTPS://h/f");
        // A .torrent without a scheme is a local file.
        assert_eq!(download(&["debian.iso.torrent"]).url, "debian.iso.torrent");
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse_strs(&["http://h/", "--help"]).unwrap(), Command::Help);
        assert_eq!(parse_strs(&["-V"]).unwrap(), Command::Version);
    }

    #[test]
    fn a_rate_limit_of_zero_is_no_limit() {
        assert_eq!(
            download(&["--limit-rate", "2M", "http://h/x"]).limit_rate,
            Some(2 << 20)
        );
        assert_eq!(
            download(&["--limit-rate", "0", "http://h/x"]).limit_rate,
            None
        );
    }
}
