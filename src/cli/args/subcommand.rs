//! The arguments of `split`, `serve`, `make-torrent` and `demo`, read
//! with the table of [`SUB_OPTIONS`](super::defs::SUB_OPTIONS).
//!
//! Owns their syntax (`--name VALUE`, `--name=VALUE`, lists such as
//! `--to a b c`, `-o FILE` and `-oFILE` for the few options with a short
//! form) and putting the values together into a [`Split`], a [`Serve`] or
//! a [`MakeTorrent`], since they depend on one another.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::defs::{self, Arity};
use super::parse::utf8;
use super::{count, size, Command, MakeTorrent, Serve, Split, UsageError};

/// The arguments of sub-command `name`, after its name.
pub(super) fn parse(
    name: &str,
    args: impl Iterator<Item = OsString>,
) -> Result<Command, UsageError> {
    let args = args.map(utf8).collect::<Result<Vec<_>, _>>()?;
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let given = Given::read(&args, name)?;
    match name {
        "demo" => match given.positional.first() {
            None => Ok(Command::Demo),
            Some(extra) => Err(UsageError(format!("unexpected argument {extra:?}"))),
        },
        "serve" => serve(&given),
        "make-torrent" => make_torrent(&given),
        _ => split(&given),
    }
}

/// A sub-command option and its values.
type SubOption = (String, Vec<String>);

/// The arguments of a sub-command, sorted.
struct Given<'a> {
    /// The sub-command.
    command: &'a str,
    positional: Vec<String>,
    /// In the order given: `--to a b` is (`--to`, [a, b]); `--seq` has none.
    options: Vec<SubOption>,
}

impl<'a> Given<'a> {
    /// Sorts the arguments of `command` into positionals and options, each
    /// with as many values as its [`Arity`] says: `--to` and `--base-url`
    /// take every following argument up to the next option, `--seq` none,
    /// the others one (`--name=value` and `-xVALUE` too). Options are
    /// kept under their long name, however written. An unknown long
    /// option is refused here; an unknown short one, after the others.
    fn read(args: &[String], command: &'a str) -> Result<Given<'a>, UsageError> {
        let mut positional = Vec::new();
        let mut options: Vec<SubOption> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg == "--" {
                // The rest are positional, however they start (a file
                // named `-q`).
                positional.extend(args[i..].iter().cloned());
                break;
            }
            let (name, inline) = if is_short(arg) {
                // `-oFILE`: the letter, then its value.
                let letter_end = arg.char_indices().nth(2).map_or(arg.len(), |(at, _)| at);
                let (name, rest) = arg.split_at(letter_end);
                if defs::find_sub(command, name).is_none() {
                    // Refused by name rather than taken for a file or a
                    // directory.
                    options.push((arg.clone(), Vec::new()));
                    continue;
                }
                (
                    name.to_owned(),
                    Some(rest.to_owned()).filter(|r| !r.is_empty()),
                )
            } else if !arg.starts_with("--") {
                positional.push(arg.clone());
                continue;
            } else {
                match arg.split_once('=') {
                    Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                    None => (arg.clone(), None),
                }
            };
            // Refused before its value is looked for: an unknown option
            // last does not "need a value".
            let Some(opt) = defs::find_sub(command, &name) else {
                return Err(UsageError(format!("unknown option {name} for {command}")));
            };
            let mut values: Vec<String> = inline.into_iter().collect();
            match opt.takes {
                Arity::Nothing if values.is_empty() => {}
                Arity::Nothing => {
                    return Err(UsageError(format!("option {name} takes no value")));
                }
                Arity::Many(_) => {
                    // Up to the next option, long or short (`-q` is refused
                    // by name, not made a directory).
                    while i < args.len() && !is_option(&args[i]) {
                        values.push(args[i].clone());
                        i += 1;
                    }
                }
                Arity::One(_) if values.is_empty() => {
                    if let Some(v) = args.get(i) {
                        values.push(v.clone());
                        i += 1;
                    }
                }
                Arity::One(_) => {}
            }
            if values.is_empty() && !matches!(opt.takes, Arity::Nothing) {
                return Err(UsageError(format!("option {name} needs a value")));
            }
            options.push((format!("--{}", opt.long), values));
        }
        if let Some((bad, _)) = options.iter().find(|(n, _)| is_short(n)) {
            return Err(UsageError(format!("unknown option {bad} for {command}")));
        }
        Ok(Given {
            command,
            positional,
            options,
        })
    }

    /// Whether option `name` of this sub-command was given.
    fn has(&self, name: &str) -> bool {
        self.check(name);
        self.options.iter().any(|(n, _)| n == name)
    }

    /// The value of option `name` where first given.
    fn one(&self, name: &str) -> Result<Option<&String>, UsageError> {
        self.check(name);
        match self.options.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, v)) if v.len() == 1 => Ok(Some(&v[0])),
            Some(_) => Err(UsageError(format!("option {name} takes one value"))),
        }
    }

    /// The values of option `name`, wherever given.
    fn many(&self, name: &str) -> Vec<String> {
        self.check(name);
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.iter().cloned())
            .collect()
    }

    /// That `name`, which a sub-command reads, is one of its options in
    /// the table: one renamed there and not here would be read as never
    /// given.
    fn check(&self, name: &str) {
        debug_assert!(
            defs::find_sub(self.command, name).is_some(),
            "{} has no option {name}",
            self.command
        );
    }
}

/// `-q`, `-v`: what looks like a short option.
fn is_short(arg: &str) -> bool {
    arg.len() > 1 && arg.starts_with('-') && !arg.starts_with("--")
}

/// Whether `arg` is an option (long or short) rather than a value: a lone
/// `-` is a value.
fn is_option(arg: &str) -> bool {
    arg.len() > 1 && arg.starts_with('-')
}

/// A whole number of any size, for option `name`.
fn number(name: &str, text: &str) -> Result<u64, UsageError> {
    text.parse()
        .map_err(|_| UsageError(format!("{name} takes a whole number, not {text:?}")))
}

/// `serve DIR [options]`.
fn serve(given: &Given<'_>) -> Result<Command, UsageError> {
    let dir = match given.positional.as_slice() {
        [dir] => dir,
        [] => return Err(UsageError("serve needs a directory".to_owned())),
        more => {
            return Err(UsageError(format!(
                "serve takes one directory, not {}: {more:?}",
                more.len()
            )))
        }
    };
    let listen = given
        .one("--listen")?
        .map_or("127.0.0.1:8000", |s| s.as_str());
    Ok(Command::Serve(Box::new(Serve {
        dir: PathBuf::from(dir),
        listen: listen.parse().map_err(|_| {
            UsageError(format!(
                "--listen takes ADDR:PORT like 127.0.0.1:8000, not {listen:?}"
            ))
        })?,
        rate_limit: given
            .one("--rate-limit")?
            .map(|r| size("--rate-limit", r))
            .transpose()?,
        delay: Duration::from_millis(
            given
                .one("--delay")?
                .map_or(Ok(0), |d| number("--delay", d))?,
        ),
        max_connections: given
            .one("--max-connections")?
            .map(|n| count("--max-connections", n, 1, 1 << 20))
            .transpose()?,
    })))
}

/// `make-torrent PATH --announce URL... [options]`.
fn make_torrent(given: &Given<'_>) -> Result<Command, UsageError> {
    let path = match given.positional.as_slice() {
        [path] => path,
        [] => {
            return Err(UsageError(
                "make-torrent needs a file or a directory".to_owned(),
            ))
        }
        more => {
            return Err(UsageError(format!(
                "make-torrent takes one file or directory, not {}: {more:?}",
                more.len()
            )))
        }
    };
    let announce = given.many("--announce");
    if announce.is_empty() {
        // As mktorrent: a torrent no tracker names is of no use to
        // partfetch (the library makes one, for clients with a DHT).
        return Err(UsageError(
            "make-torrent needs a tracker: --announce URL".to_owned(),
        ));
    }
    let piece_length = match given.one("--piece-length")? {
        None => None,
        Some(text) => {
            let length = size("--piece-length", text)?;
            partfetch::torrent::check_piece_length(length)
                .map_err(|e| UsageError(format!("--piece-length {text}: {}", e.message())))?;
            Some(length)
        }
    };
    Ok(Command::MakeTorrent(Box::new(MakeTorrent {
        path: PathBuf::from(path),
        announce,
        web_seeds: given.many("--web-seed"),
        piece_length,
        private: given.has("--private"),
        comment: given.one("--comment")?.cloned(),
        output: given.one("--output")?.map(PathBuf::from),
        force: given.has("--force"),
    })))
}

/// `split FILE... [options]`.
fn split(given: &Given<'_>) -> Result<Command, UsageError> {
    let cut = match (given.one("--parts")?, given.one("--part-size")?) {
        (Some(n), None) => partfetch::split::Cut::Parts(number("--parts", n)?),
        (None, Some(s)) => partfetch::split::Cut::Size(size("--part-size", s)?),
        _ => {
            return Err(UsageError(
                "split takes one of --parts N and --part-size SIZE".to_owned(),
            ))
        }
    };
    let sequence = given.has("--seq");
    let files = &given.positional;
    if files.is_empty() || (files.len() > 1 && !sequence) {
        return Err(UsageError(
            "split takes one FILE (several with --seq)".to_owned(),
        ));
    }
    Ok(Command::Split(Box::new(Split {
        files: files.iter().map(PathBuf::from).collect(),
        cut,
        dirs: given.many("--to").into_iter().map(PathBuf::from).collect(),
        replicas: given
            .one("--replicas")?
            .map_or(Ok(1), |r| number("--replicas", r))? as usize,
        base_urls: given.many("--base-url"),
        sequence,
        name: given.one("--name")?.cloned(),
    })))
}

#[cfg(test)]
mod tests {
    use super::super::defs::SUB_OPTIONS;
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
        super::super::parse(args.iter().map(OsString::from))
    }

    /// Values each kind of value accepts.
    fn sample(value: &str) -> &'static [&'static str] {
        match value {
            "N" | "R" => &["3"],
            "SIZE" | "RATE" => &["2M"],
            "DIR" => &["d1", "d2"],
            "URL" => &["http://a/", "http://b/"],
            "NAME" => &["stream"],
            "ADDR:PORT" => &["127.0.0.1:0"],
            "MS" => &["5"],
            "FILE" => &["out.torrent"],
            "TEXT" => &["a comment"],
            other => panic!("no sample for {other}: add one"),
        }
    }

    #[test]
    fn every_sub_command_option_is_read_and_used() {
        for opt in SUB_OPTIONS {
            let long = format!("--{}", opt.long);
            let base: &[&str] = match (opt.command, opt.long) {
                ("split", "parts" | "part-size") => &["split", "f", "--to", "d"],
                ("split", _) => &["split", "f", "--parts", "2", "--to", "d"],
                ("make-torrent", _) => &["make-torrent", "f", "--announce", "http://t/"],
                _ => &["serve", "www"],
            };
            let with = |args: &[&str]| parse_strs(&[base, args].concat());
            let (separate, inline) = match opt.takes {
                Arity::Nothing => (with(&[&long]), with(&[&long])),
                Arity::One(v) | Arity::Many(v) => {
                    let values = match opt.takes {
                        Arity::One(_) => &sample(v)[..1],
                        _ => sample(v),
                    };
                    let inline = format!("{long}={}", values[0]);
                    (
                        with(&[&[long.as_str()], values].concat()),
                        with(&[&[inline.as_str()], &values[1..]].concat()),
                    )
                }
            };
            let command = separate.unwrap_or_else(|e| panic!("{long}: {}", e.0));
            assert_eq!(inline.unwrap(), command, "{long}=");
            // Read into the command, not dropped.
            if let Ok(without) = parse_strs(base) {
                assert_ne!(command, without, "{long} changed nothing");
            }
            if matches!(opt.takes, Arity::Nothing) {
                assert_eq!(
                    with(&[&format!("{long}=x")]).unwrap_err().0,
                    format!("option {long} takes no value")
                );
            } else {
                assert_eq!(
                    with(&[&long]).unwrap_err().0,
                    format!("option {long} needs a value")
                );
            }
            if let Some(c) = opt.short {
                let value = sample(match opt.takes {
                    Arity::One(v) | Arity::Many(v) => v,
                    Arity::Nothing => panic!("-{c} takes a value: add a case"),
                })[0];
                let short = format!("-{c}");
                assert_eq!(with(&[&short, value]).unwrap(), command, "{short}");
                assert_eq!(
                    with(&[&format!("{short}{value}")]).unwrap(),
                    command,
                    "{short}VALUE"
                );
                assert_eq!(
                    with(&[&short]).unwrap_err().0,
                    format!("option {short} needs a value")
                );
            }
            for other in ["split", "serve", "demo", "make-torrent"] {
                if defs::find_sub(other, &long).is_none() {
                    assert_eq!(
                        parse_strs(&[other, &long, "1"]).unwrap_err().0,
                        format!("unknown option {long} for {other}")
                    );
                }
            }
        }
    }

    #[test]
    fn split_takes_lists_of_directories_and_urls() {
        let Command::Split(s) = parse_strs(&[
            "split",
            "film.mkv",
            "--parts",
            "6",
            "--to",
            "a",
            "b",
            "c",
            "--replicas=2",
            "--base-url",
            "http://a/",
            "http://b/",
            "http://c/",
        ])
        .unwrap() else {
            panic!("expected split");
        };
        assert_eq!(s.files, [PathBuf::from("film.mkv")]);
        assert_eq!(s.cut, partfetch::split::Cut::Parts(6));
        assert_eq!(s.dirs.len(), 3);
        assert_eq!(s.replicas, 2);
        assert_eq!(s.base_urls, ["http://a/", "http://b/", "http://c/"]);
        assert!(!s.sequence);
    }

    #[test]
    fn serve_and_demo_parse_and_mistakes_are_refused() {
        let Command::Serve(s) = parse_strs(&[
            "serve",
            "www",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "1M",
            "--delay=5",
        ])
        .unwrap() else {
            panic!("expected serve");
        };
        assert_eq!(
            (s.listen.port(), s.rate_limit, s.delay),
            (0, Some(1 << 20), Duration::from_millis(5))
        );
        assert_eq!(parse_strs(&["demo"]).unwrap(), Command::Demo);
        for bad in [
            &["serve"][..],
            &["serve", "a", "b"],
            &["serve", "a", "--listen", "nowhere"],
            &["split", "f", "--to", "a"],
            &["split", "f", "g", "--parts", "2", "--to", "a"],
            &[
                "split",
                "f",
                "--parts",
                "2",
                "--part-size",
                "1M",
                "--to",
                "a",
            ],
            &["split", "f", "--parts", "2", "--to", "a", "--bogus", "1"],
            &["demo", "extra"],
        ] {
            assert!(parse_strs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn make_torrent_reads_its_trackers_in_order_and_checks_the_piece_length() {
        let Command::MakeTorrent(m) = parse_strs(&[
            "make-torrent",
            "film.mkv",
            "--announce",
            "udp://a/",
            "--web-seed=http://s/film.mkv",
            "--announce=http://b/",
            "--piece-length",
            "256K",
            "--private",
            "-o",
            "out.torrent",
        ])
        .unwrap() else {
            panic!("expected make-torrent");
        };
        assert_eq!(m.path, PathBuf::from("film.mkv"));
        assert_eq!(m.announce, ["udp://a/", "http://b/"]);
        assert_eq!(m.web_seeds, ["http://s/film.mkv"]);
        assert_eq!(m.piece_length, Some(256 << 10));
        assert!(m.private && !m.force);
        assert_eq!(m.output, Some(PathBuf::from("out.torrent")));
        assert_eq!(m.comment, None);
        for (args, says) in [
            (&["make-torrent", "f"][..], "needs a tracker"),
            (&["make-torrent", "--announce", "http://t/"], "needs a file"),
            (
                &["make-torrent", "f", "g", "--announce", "http://t/"],
                "takes one",
            ),
            (
                &[
                    "make-torrent",
                    "f",
                    "--announce",
                    "http://t/",
                    "--piece-length",
                    "100000",
                ],
                "power of two",
            ),
            (
                &[
                    "make-torrent",
                    "f",
                    "--announce",
                    "http://t/",
                    "--piece-length",
                    "8K",
                ],
                "from 16 KiB to 32 MiB",
            ),
            (
                &[
                    "make-torrent",
                    "f",
                    "--announce",
                    "http://t/",
                    "--piece-length",
                    "x",
                ],
                "takes a size",
            ),
            (
                &["make-torrent", "f", "--announce", "http://t/", "-q"],
                "unknown option -q",
            ),
        ] {
            let err = parse_strs(args).unwrap_err().0;
            assert!(err.contains(says), "{args:?}: {err}");
        }
    }

    #[test]
    fn a_short_option_of_a_sub_command_is_named_as_unknown() {
        for (args, named) in [
            (&["serve", "www", "-q"][..], "-q"),
            // -o is make-torrent's, not serve's.
            (&["serve", "www", "-o", "x"], "-o"),
            (&["split", "-v", "f", "--parts", "2", "--to", "a"], "-v"),
            (&["demo", "-x"], "-x"),
            // Not a directory of `--to`, nor an option that needs a value.
            (&["split", "f", "--parts", "2", "--to", "a", "-q"], "-q"),
            (&["serve", "www", "--bogus"], "--bogus"),
            (
                &["split", "f", "--parts", "2", "--to", "a", "--bogus"],
                "--bogus",
            ),
        ] {
            let err = parse_strs(args).unwrap_err();
            assert_eq!(err.0, format!("unknown option {named} for {}", args[0]));
        }
        // After `--`, a name that starts with '-' is a directory.
        let Command::Serve(s) =
            parse_strs(&["serve", "--listen", "127.0.0.1:0", "--", "-q"]).unwrap()
        else {
            panic!("expected serve");
        };
        assert_eq!(s.dir, PathBuf::from("-q"));
    }
}
