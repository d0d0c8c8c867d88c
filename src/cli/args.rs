//! Command-line arguments, parsed by hand.
//!
//! Owns the options, their values and the usage text. Long options take
//! `--name VALUE` or `--name=VALUE`; `-H VALUE` and `-HVALUE` both work; `--`
//! ends the options. Turning the options into a client is `cli::run`'s job.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// What the user asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// `--help`
    Help,
    /// `--version`
    Version,
    /// Download a URL.
    Download(Box<Download>),
    #[cfg(feature = "serve")]
    /// `split`: cut a file into parts over directories, write a manifest.
    Split(Box<Split>),
    #[cfg(feature = "serve")]
    /// `serve`: serve a directory over HTTP.
    Serve(Box<Serve>),
    #[cfg(feature = "serve")]
    /// `demo`: split, serve, break a server and download, all on 127.0.0.1.
    Demo,
}

/// Where the stream goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// `-`: standard output.
    Stdout,
    /// A named file.
    File(PathBuf),
    /// No name given: the last segment of the URL's path.
    FromUrl,
}

/// The options of a download.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub url: String,
    pub output: Output,
    pub quiet: bool,
    pub progress: bool,
    pub cacert: Vec<PathBuf>,
    pub proxy: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub max_redirects: Option<u32>,
    pub headers: Vec<(String, String)>,
    pub user_agent: Option<String>,
    /// `Some(true)` for `--sequence`, `Some(false)` for `--no-sequence`.
    pub sequence: Option<bool>,
    pub cache_limit: Option<u64>,
    /// `-j/--parallel`: parts of a manifest fetched at once.
    pub parallel: Option<usize>,
    /// `-n/--connections`: connections for one large file.
    pub connections: Option<usize>,
    /// `--max-per-host N`: connections to one host at most.
    pub max_per_host: Option<usize>,
    /// `--mirror URL` (repeatable): other sources of the same file.
    pub mirrors: Vec<String>,
    /// `--checksum sha256=HEX`: the SHA-256 the whole output must have.
    pub checksum: Option<[u8; 32]>,
    /// `--no-resume`: start over even if a partial download is there.
    pub no_resume: bool,
    /// `--resume`: asked for explicitly (an error where it cannot be done).
    pub resume: bool,
    /// `--limit-rate RATE`: bytes per second at most (`None`: no limit).
    pub limit_rate: Option<u64>,
    /// `--retries N`: attempts in a row before a failing source is dropped.
    pub retries: Option<u32>,
}

impl Download {
    /// Whether the stream is a file sequence, split into files when saved:
    /// as `--sequence` or `--no-sequence` say, else when the URL contains
    /// `-seq`.
    pub fn is_sequence(&self) -> bool {
        self.sequence.unwrap_or_else(|| self.url.contains("-seq"))
    }
}

#[cfg(feature = "serve")]
/// The options of `partfetch split`.
#[derive(Debug, PartialEq)]
pub struct Split {
    pub files: Vec<PathBuf>,
    pub cut: partfetch::split::Cut,
    pub dirs: Vec<PathBuf>,
    pub replicas: usize,
    pub base_urls: Vec<String>,
    /// `--seq`: pack the files into a file sequence first.
    pub sequence: bool,
    pub name: Option<String>,
}

#[cfg(feature = "serve")]
/// The options of `partfetch serve`.
#[derive(Debug, PartialEq)]
pub struct Serve {
    pub dir: PathBuf,
    pub listen: std::net::SocketAddr,
    pub rate_limit: Option<u64>,
    pub delay: Duration,
    pub max_connections: Option<usize>,
}

/// A usage mistake, said in a sentence.
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

/// The text of `--help`.
pub const USAGE: &str = "\
Usage: partfetch [OPTIONS] URL [FILE]

Downloads URL, streaming it while it downloads. A URL whose path ends in
.parts (or served as text/parts-manifest) is a manifest: the stream is its
parts, in order. A URL containing -seq is a file sequence, saved as
FILE-file1, FILE-file2, ...

  FILE                    where to save; '-' for standard output; default:
                          the last segment of the URL's path (also the
                          name inside FILE when FILE is a directory); a
                          device or named pipe is written in place
Options:
  -o, --output FILE       the same as FILE after the URL
  -H, --header 'N: V'     add a request header (repeatable; not Range or
                          If-Range, which partfetch sets itself)
      --user-agent TEXT   replace the User-Agent header
  -u, --user USER:PASSWORD
                          Basic authorization, sent to the URL's own host
                          only (as the user part of the URL would be)
      --proxy URL         use this HTTP proxy (else http_proxy, https_proxy;
                          no_proxy is honoured)
      --cacert FILE       also trust the CA certificates in this PEM file
      --connect-timeout S seconds to connect to one address (default 15)
      --timeout S         seconds without data before failing (default 30)
      --max-redirects N   redirects to follow (default 20)
      --sequence          treat the stream as a file sequence
      --no-sequence       do not, even if the URL contains -seq
      --cache-limit SIZE  memory for (*) parts of a manifest (default 64M)
  -j, --parallel N        parts of a manifest fetched ahead of the one being
                          written (default 8, at most --max-per-host - 1; 1
                          fetches each part when due, over one connection)
  -n, --connections N     connections for one file of 4 MiB or more whose
                          server honours Range (default 4; at most
                          --max-per-host; 1: one plain request)
      --max-per-host N    connections to one host at most (default 16)
      --mirror URL        another source of the same file (repeatable): its
                          pieces come from every source at once
  -q, --quiet             no progress line, and no line when a request is
                          sent again
      --progress          a progress line even when stderr is not a terminal
      --checksum sha256=HEX
                          the SHA-256 the whole output must have; on a
                          mismatch FILE is not created (the partial file is
                          kept for inspection) and the exit status is 6.
                          Bytes written to standard output before the end
                          cannot be taken back, nor the files of a sequence
                          (the digest is its stream's): the status says so
      --no-resume         start over even if FILE.partfetch is there (by
                          default, the same command run again resumes)
      --resume            insist on resuming: when there is nothing to
                          resume or the file changed, fail (status 7) and
                          leave FILE.partfetch as it is (refused for
                          standard output and file sequences)
      --keep-partial      keep FILE.partfetch after a failure (the default)
      --limit-rate RATE   at most RATE bytes per second (e.g. 500K, 2M; 0:
                          no limit)
      --retries N         attempts in a row before a source failing for a
                          moment (reset, timeout, 408, 429, 500, 502-504) is
                          dropped (default 5; exponential backoff,
                          Retry-After); a first request that gets no answer
                          fails at once. Waits are announced on stderr (in
                          a download in pieces, those of 1 s or more)
  -h, --help              this text
  -V, --version           the version

Exit status: 0 success, 1 other failure (protocol, manifest, redirect, URL),
2 usage, 3 not found (404, 410), 4 other HTTP status, 5 network or TLS,
6 integrity (size or digest mismatch), 7 local file or stream (also when
--resume cannot continue FILE.partfetch).
";

/// The text `--help` adds for the subcommands, after [`USAGE`].
#[cfg(feature = "serve")]
pub const PUBLISH_USAGE: &str = "
Usage: partfetch split FILE (--parts N | --part-size SIZE) --to DIR... [OPTIONS]
       partfetch serve DIR [--listen ADDR:PORT] [--rate-limit RATE] [--delay MS]
       partfetch demo

split cuts FILE into parts, writes each into R of the directories (so that
losing any R-1 of them loses nothing) and writes NAME.parts into each:
      --parts N           this many parts of equal size
      --part-size SIZE    parts of this size (512K, 64M, ...)
      --to DIR...         one directory per server
      --replicas R        directories holding each part (default 1)
      --base-url URL...   the URL each directory is served at, in order
      --seq               FILE... are packed into a -seq file sequence first
      --name NAME         the stream's name (default: the file's name)

serve serves DIR over HTTP/1.1 (GET, HEAD, ranges, keep-alive), logging
one line per request on stderr:
      --listen ADDR:PORT  default 127.0.0.1:8000; port 0 lets the system choose
      --rate-limit RATE   bytes per second for the whole server (10M, ...)
      --delay MS          wait before each answer (for tests and demos)
      --max-connections N at once; more get 503 (default 2048)

demo runs three servers on 127.0.0.1, splits a sample over them, stops one
and downloads the manifest: no network needed.
";

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args.into_iter().peekable();
    let first = args.peek().and_then(|a| a.to_str().map(str::to_owned));
    if let Some(name @ ("split" | "serve" | "demo")) = first.as_deref() {
        args.next();
        #[cfg(feature = "serve")]
        return parse_subcommand(name, args);
        #[cfg(not(feature = "serve"))]
        return Err(UsageError(format!(
            "{name}: this partfetch was built without the serve feature"
        )));
    }
    let mut args = args.map(|a| {
        a.into_string()
            .map_err(|a| UsageError(format!("argument is not valid UTF-8: {a:?}")))
    });
    let mut positional = Vec::new();
    let mut d = Download {
        url: String::new(),
        output: Output::FromUrl,
        quiet: false,
        checksum: None,
        no_resume: false,
        resume: false,
        limit_rate: None,
        retries: None,
        progress: false,
        cacert: Vec::new(),
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
    };
    let mut options_ended = false;
    // `-o FILE`, as curl and wget spell it: the same as FILE after the URL.
    let mut output_option: Option<String> = None;
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
        let mut value = |what: &str| -> Result<String, UsageError> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => args
                    .next()
                    .transpose()?
                    .ok_or_else(|| UsageError(format!("option {name} needs {what}"))),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-q" | "--quiet" => d.quiet = true,
            "--no-resume" => d.no_resume = true,
            "--resume" => d.resume = true,
            "--keep-partial" => {}
            "--retries" => d.retries = Some(count(&name, &value("a number")?, 1, 100)? as u32),
            // 0 is no limit, as with aria2's and curl's options.
            "--limit-rate" => {
                d.limit_rate = Some(size(&name, &value("a rate")?)?).filter(|&rate| rate > 0)
            }
            "--checksum" => {
                let v = value("sha256=HEX")?;
                let digest = v
                    .strip_prefix("sha256=")
                    .and_then(partfetch::sha256::parse_hex)
                    .ok_or_else(|| {
                        UsageError(format!("{name} takes sha256= and 64 hex digits, not {v:?}"))
                    })?;
                d.checksum = Some(digest);
            }
            "--progress" => d.progress = true,
            "--sequence" => d.sequence = Some(true),
            "--no-sequence" => d.sequence = Some(false),
            "-H" | "--header" => {
                let header = value("a header 'Name: value'")?;
                let (n, v) = header.split_once(':').ok_or_else(|| {
                    UsageError(format!(
                        "header {header:?} is not of the form 'Name: value'"
                    ))
                })?;
                let (n, v) = (n.trim(), v.trim());
                // Refused here, with the usage status, rather than when the
                // client is built.
                partfetch::http::request::check_client_header(n, v)
                    .map_err(|e| UsageError(format!("-H {header:?}: {}", e.message())))?;
                d.headers.push((n.to_owned(), v.to_owned()));
            }
            "-o" | "--output" => {
                if output_option.is_some() {
                    return Err(UsageError(format!("option {name} given twice")));
                }
                output_option = Some(value("a file")?);
            }
            "--user-agent" => d.user_agent = Some(value("a text")?),
            "-u" | "--user" => {
                let credentials = value("USER:PASSWORD")?;
                if !credentials.contains(':') {
                    // curl would prompt for the password; a download
                    // running unattended must not wait on the terminal.
                    return Err(UsageError(format!(
                        "{name} takes USER:PASSWORD (with the colon), not {credentials:?}"
                    )));
                }
                let value = partfetch::http::request::basic_authorization(&credentials);
                partfetch::http::request::check_client_header("Authorization", &value)
                    .map_err(|e| UsageError(format!("{name}: {}", e.message())))?;
                d.headers.push(("Authorization".to_owned(), value));
            }
            "--proxy" => d.proxy = Some(value("a URL")?),
            "--cacert" => d.cacert.push(PathBuf::from(value("a file")?)),
            "--connect-timeout" => d.connect_timeout = Some(seconds(&name, &value("seconds")?)?),
            "--timeout" => d.idle_timeout = Some(seconds(&name, &value("seconds")?)?),
            "--max-redirects" => {
                let v = value("a number")?;
                d.max_redirects =
                    Some(v.parse().map_err(|_| {
                        UsageError(format!("{name} takes a whole number, not {v:?}"))
                    })?);
            }
            "--cache-limit" => d.cache_limit = Some(size(&name, &value("a size")?)?),
            "-j" | "--parallel" => d.parallel = Some(count(&name, &value("a number")?, 1, 64)?),
            "-n" | "--connections" => {
                d.connections = Some(count(&name, &value("a number")?, 1, 64)?);
            }
            "--mirror" => d.mirrors.push(value("a URL")?),
            "--max-per-host" => {
                d.max_per_host = Some(count(&name, &value("a number")?, 1, 64)?);
            }
            _ => {
                return Err(UsageError(match familiar(&name) {
                    Some(hint) => format!("unknown option {name} ({hint})"),
                    None => format!("unknown option {name}"),
                }))
            }
        }
        if let (Some(rest), false) = (&inline, takes_value(&name)) {
            return Err(UsageError(if arg.starts_with("--") {
                format!("option {name} takes no value")
            } else {
                format!(
                    "option {name} takes no value (short options are not combined: \
                     {name} -{rest}, not {arg})"
                )
            }));
        }
    }
    let mut positional = positional.into_iter();
    d.url = positional
        .next()
        .ok_or_else(|| UsageError("no URL given".to_owned()))?;
    // `partfetch help`, as git and cargo take it: no URL is that short.
    if d.url == "help" && positional.len() == 0 {
        return Ok(Command::Help);
    }
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
                "FILE {f:?} looks like a URL: partfetch downloads one URL per command \
                 (--mirror URL gives another source of the same file)"
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
    Ok(Command::Download(Box::new(d)))
}

/// Whether a FILE argument starts like an http:// or https:// URL (any
/// case): `partfetch URL1 URL2` meant two downloads, not URL1 saved under
/// a path no one would choose, so it is refused before anything is
/// fetched rather than failing on the directory `http:` that is not there.
fn looks_like_url(file: &str) -> bool {
    let starts = |prefix: &str| {
        file.get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    starts("http://") || starts("https://")
}

fn takes_value(name: &str) -> bool {
    matches!(
        name,
        "-H" | "--header"
            | "-o"
            | "--output"
            | "--user-agent"
            | "-u"
            | "--user"
            | "--proxy"
            | "--cacert"
            | "--connect-timeout"
            | "--timeout"
            | "--max-redirects"
            | "--cache-limit"
            | "-j"
            | "--parallel"
            | "-n"
            | "--connections"
            | "--mirror"
            | "--max-per-host"
            | "--checksum"
            | "--limit-rate"
            | "--retries"
    )
}

/// `--name=value` → (`--name`, `value`); `-Hvalue` → (`-H`, `value`).
/// What a user of curl, wget or aria2c means by an option partfetch does
/// not have, and the partfetch way.
fn familiar(name: &str) -> Option<&'static str> {
    Some(match name {
        "-O" | "--remote-name" | "-L" | "--location" => {
            "partfetch follows redirects and names the file after the URL by default"
        }
        "-C" | "--continue-at" | "-c" | "--continue" => {
            "resuming is the default; --resume insists, --no-resume starts over"
        }
        "-s" | "--silent" => "curl's -s is -q here; aria2c's -s is -n",
        "-x" => "curl's -x is --proxy here; aria2c's -x is -n",
        "-S" | "--show-error" => "errors are always shown",
        "-f" | "--fail" => "an HTTP error status always fails, with status 3 or 4",
        "--retry" => "--retries N",
        "-A" => "--user-agent TEXT",
        "-k" | "--insecure" | "--no-check-certificate" | "--check-certificate" => {
            "no option turns certificate checks off; --cacert FILE trusts a private CA"
        }
        "-I" | "--head" => "partfetch only downloads",
        "--compressed" => "partfetch saves the bytes as the server stores them",
        "-i" | "--input-file" => "one URL per command; a .parts manifest lists many",
        "-e" | "--referer" => "-H 'Referer: URL'",
        "-b" | "--cookie" => "-H 'Cookie: NAME=VALUE'",
        "-m" | "--max-time" => "--timeout S stops a download silent for S seconds",
        _ => return None,
    })
}

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

/// The longest timeout: over 31 years, and far enough from overflow that a
/// deadline (now + timeout) can always be computed.
const MAX_SECONDS: u64 = 999_999_999;

/// `30`, `2.5`, `0.25`: seconds, read without floating point (which would
/// add 15 KB of parsing tables to the binary).
fn seconds(name: &str, text: &str) -> Result<Duration, UsageError> {
    let parse = || -> Option<Duration> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
            return None;
        }
        // More than a u64 holds fails to parse: too long as well.
        let secs: u64 = match whole.trim_start_matches('0') {
            "" => 0,
            whole => whole.parse().ok()?,
        };
        let mut nanos = 0u32;
        for (i, b) in fraction.bytes().take(9).enumerate() {
            nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
        }
        Some(Duration::new(secs, nanos))
            .filter(|d| !d.is_zero() && *d <= Duration::from_secs(MAX_SECONDS))
    };
    parse().ok_or_else(|| {
        UsageError(format!(
            "{name} takes a positive number of seconds, at most {MAX_SECONDS}, not {text:?}"
        ))
    })
}

/// A whole number from `min` to `max`.
fn count(name: &str, text: &str, min: usize, max: usize) -> Result<usize, UsageError> {
    text.parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            UsageError(format!(
                "{name} takes a whole number from {min} to {max}, not {text:?}"
            ))
        })
}

/// `1048576`, `512K`, `64M`, `2G` (powers of 1024).
pub fn size(name: &str, text: &str) -> Result<u64, UsageError> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let multiplier: u64 = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => 0,
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|_| multiplier != 0)
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| {
            UsageError(format!(
                "{name} takes a size like 512K or 64M, not {text:?}"
            ))
        })
}

#[cfg(feature = "serve")]
/// The arguments of a subcommand, after its name.
fn parse_subcommand(
    name: &str,
    args: impl Iterator<Item = OsString>,
) -> Result<Command, UsageError> {
    let args = args
        .map(|a| {
            a.into_string()
                .map_err(|a| UsageError(format!("argument is not valid UTF-8: {a:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let allowed: &[&str] = match name {
        "split" => &[
            "--parts",
            "--part-size",
            "--to",
            "--replicas",
            "--base-url",
            "--seq",
            "--name",
        ],
        "serve" => &["--listen", "--rate-limit", "--delay", "--max-connections"],
        _ => &[],
    };
    let (positional, options) = sub_options(&args, name, allowed)?;
    let one = |opt: &str| -> Result<Option<&String>, UsageError> {
        match options.iter().find(|(n, _)| n == opt) {
            None => Ok(None),
            Some((_, v)) if v.len() == 1 => Ok(Some(&v[0])),
            Some(_) => Err(UsageError(format!("option {opt} takes one value"))),
        }
    };
    let number = |opt: &str, text: &str| -> Result<u64, UsageError> {
        text.parse()
            .map_err(|_| UsageError(format!("{opt} takes a whole number, not {text:?}")))
    };
    if let Some((bad, _)) = options.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
        return Err(UsageError(format!("unknown option {bad} for {name}")));
    }
    match name {
        "demo" => match positional.first() {
            None => Ok(Command::Demo),
            Some(extra) => Err(UsageError(format!("unexpected argument {extra:?}"))),
        },
        "serve" => {
            let dir = match positional.as_slice() {
                [dir] => dir,
                [] => return Err(UsageError("serve needs a directory".to_owned())),
                more => {
                    return Err(UsageError(format!(
                        "serve takes one directory, not {}: {more:?}",
                        more.len()
                    )))
                }
            };
            let listen = one("--listen")?.map_or("127.0.0.1:8000", |s| s.as_str());
            Ok(Command::Serve(Box::new(Serve {
                dir: PathBuf::from(dir),
                listen: listen.parse().map_err(|_| {
                    UsageError(format!(
                        "--listen takes ADDR:PORT like 127.0.0.1:8000, not {listen:?}"
                    ))
                })?,
                rate_limit: one("--rate-limit")?
                    .map(|r| size("--rate-limit", r))
                    .transpose()?,
                delay: Duration::from_millis(
                    one("--delay")?.map_or(Ok(0), |d| number("--delay", d))?,
                ),
                max_connections: one("--max-connections")?
                    .map(|n| count("--max-connections", n, 1, 1 << 20))
                    .transpose()?,
            })))
        }
        _ => {
            let cut = match (one("--parts")?, one("--part-size")?) {
                (Some(n), None) => partfetch::split::Cut::Parts(number("--parts", n)?),
                (None, Some(s)) => partfetch::split::Cut::Size(size("--part-size", s)?),
                _ => {
                    return Err(UsageError(
                        "split takes one of --parts N and --part-size SIZE".to_owned(),
                    ))
                }
            };
            let sequence = options.iter().any(|(n, _)| n == "--seq");
            if positional.is_empty() || (positional.len() > 1 && !sequence) {
                return Err(UsageError(
                    "split takes one FILE (several with --seq)".to_owned(),
                ));
            }
            let many = |opt: &str| {
                options
                    .iter()
                    .filter(|(n, _)| n == opt)
                    .flat_map(|(_, v)| v.iter().cloned())
                    .collect::<Vec<_>>()
            };
            Ok(Command::Split(Box::new(Split {
                files: positional.iter().map(PathBuf::from).collect(),
                cut,
                dirs: many("--to").into_iter().map(PathBuf::from).collect(),
                replicas: one("--replicas")?.map_or(Ok(1), |r| number("--replicas", r))? as usize,
                base_urls: many("--base-url"),
                sequence,
                name: one("--name")?.cloned(),
            })))
        }
    }
}

/// A subcommand option and its values.
#[cfg(feature = "serve")]
type SubOption = (String, Vec<String>);

#[cfg(feature = "serve")]
/// Splits subcommand arguments into positionals and `(--option, values)`.
/// `--to` and `--base-url` take every following argument up to the next
/// option; `--seq` takes none; the others take one (`--name=value` too).
fn sub_options(
    args: &[String],
    command: &str,
    allowed: &[&str],
) -> Result<(Vec<String>, Vec<SubOption>), UsageError> {
    let mut positional = Vec::new();
    let mut options: Vec<SubOption> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            // The rest are positional, however they start (a file named `-q`).
            positional.extend(args[i..].iter().cloned());
            break;
        }
        if arg.len() > 1 && arg.starts_with('-') && !arg.starts_with("--") {
            // No sub-command has a short option: `-q` is refused by name
            // rather than taken for a file or a directory.
            options.push((arg.clone(), Vec::new()));
            continue;
        }
        if !arg.starts_with("--") {
            positional.push(arg.clone());
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        // Refused before its value is looked for: an unknown option last
        // does not "need a value".
        if !allowed.contains(&name.as_str()) {
            return Err(UsageError(format!("unknown option {name} for {command}")));
        }
        let mut values: Vec<String> = inline.into_iter().collect();
        match name.as_str() {
            "--seq" if values.is_empty() => {}
            "--seq" => return Err(UsageError("option --seq takes no value".to_owned())),
            "--to" | "--base-url" => {
                // Up to the next option, long or short (`-q` is refused by
                // name, not made a directory).
                while i < args.len() && !(args[i].len() > 1 && args[i].starts_with('-')) {
                    values.push(args[i].clone());
                    i += 1;
                }
            }
            _ if values.is_empty() => match args.get(i) {
                Some(v) => {
                    values.push(v.clone());
                    i += 1;
                }
                None => return Err(UsageError(format!("option {name} needs a value"))),
            },
            _ => {}
        }
        if values.is_empty() && name != "--seq" {
            return Err(UsageError(format!("option {name} needs a value")));
        }
        options.push((name, values));
    }
    Ok((positional, options))
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn options_of_curl_wget_and_aria2c_point_to_partfetchs_own() {
        let message = |args: &[&str]| parse_strs(args).unwrap_err().0;
        for (option, hint) in [
            ("-L", "by default"),
            ("-O", "by default"),
            ("-c", "resuming is the default"),
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
        assert_eq!(download(&["--", "-weird", "f"]).url, "-weird");
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
            assert!(err.0.contains("one URL per command"), "{args:?}: {}", err.0);
        }
        for file in ["http", "http:x", "./http://h/b", "ftp://h/b"] {
            assert_eq!(
                download(&["http://h/a", file]).output,
                Output::File(PathBuf::from(file))
            );
        }
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

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(size("s", "512K").unwrap(), 512 << 10);
        assert_eq!(size("s", "2GiB").unwrap(), 2 << 30);
        assert_eq!(size("s", "17").unwrap(), 17);
        assert!(size("s", "1X").is_err());
        assert!(size("s", "").is_err());
    }

    #[test]
    fn seconds_are_read_with_fractions_and_bad_ones_refused() {
        let ms = |t: &str| seconds("--timeout", t).map(|d| d.as_millis());
        assert_eq!(ms("30").unwrap(), 30_000);
        assert_eq!(ms("2.5").unwrap(), 2_500);
        assert_eq!(ms("0.25").unwrap(), 250);
        assert_eq!(ms(".5").unwrap(), 500);
        assert_eq!(ms("00000000001").unwrap(), 1_000, "leading zeros");
        assert_eq!(ms("0999999999").unwrap(), 999_999_999_000);
        for bad in [
            "",
            ".",
            "0",
            "0.0",
            "-1",
            "1e3",
            "abc",
            "1.2.3",
            "9999999999",
            "999999999.1",
        ] {
            let err = seconds("--timeout", bad).unwrap_err();
            assert!(err.0.contains("--timeout"), "{bad}: {}", err.0);
            assert!(err.0.contains("at most 999999999"), "{bad}: {}", err.0);
        }
    }

    #[cfg(feature = "serve")]
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

    #[cfg(feature = "serve")]
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

    #[cfg(feature = "serve")]
    #[test]
    fn a_short_option_of_a_sub_command_is_named_as_unknown() {
        for (args, named) in [
            (&["serve", "www", "-q"][..], "-q"),
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
