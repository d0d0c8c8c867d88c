//! The command-line options, each defined once.
//!
//! Owns every option's names, the value it takes, its line of help and what
//! it does to the command being built: [`OPTIONS`] for a download,
//! [`SUB_OPTIONS`] for `split`, `serve` and `make-torrent`, and [`FAMILIAR`], the options of
//! curl, wget and aria2c that partfetch spells differently. The parser and
//! the `--help` text read these tables and know no option by themselves, so
//! adding, renaming or documenting an option is one edit here.

use std::path::PathBuf;

use super::{count, duration, seconds, size, thousandths, Command, Download, UsageError};

/// A download while its options are read.
pub(super) struct Draft {
    /// Everything but the URL and the output, which come from the
    /// positional arguments once all are read.
    pub download: Download,
    /// `-o FILE`: the same as FILE after the URL, kept apart so that FILE
    /// given both ways is refused.
    pub output: Option<String>,
    /// `-O`: curl's "name the file after the URL", the default; kept to
    /// tell wget's `-O FILE` (which is `-o FILE` here) when it was meant.
    pub remote_name: bool,
    /// The `Authorization` value of the last `-u`, kept apart so that an
    /// `Authorization` given with `-H` replaces it (as curl does) instead
    /// of both being sent.
    pub user: Option<String>,
}

/// An option of a download.
pub(super) struct Opt {
    /// The long name, without its dashes: `header` for `--header`.
    pub long: &'static str,
    /// The one-letter form, `H` for `-H`; an ASCII letter, since `-HVALUE`
    /// is told from a negative number or a lone dash by that.
    pub short: Option<char>,
    pub takes: Takes,
    /// One line of help, wrapped when the help is written.
    pub help: &'static str,
}

/// What an option takes, and what it does with it.
pub(super) enum Takes {
    /// Nothing, and it ends the parsing: the command is this, whatever else
    /// is given (`partfetch URL --bogus --help` helps rather than fails).
    Stop(fn() -> Command),
    /// Nothing: `--quiet`. A value (`--quiet=yes`, `-qx`) is refused.
    Nothing(fn(&mut Draft)),
    /// One value: `--name VALUE`, `--name=VALUE`, `-x VALUE` or `-xVALUE`.
    /// Given again, it is read again: the setter keeps the last or adds to
    /// a list.
    Value(Value, Setter),
    /// One value, as [`Takes::Value`], in one place only: given again, it
    /// is refused before a second value is looked for.
    ValueOnce(Value, Setter),
}

/// Stores an option's value (with the option's name as the user wrote it,
/// for the errors) into the command being built.
pub(super) type Setter = fn(&mut Draft, &str, String) -> Result<(), UsageError>;

/// The value of an option, as the help and the errors name it.
#[derive(Clone, Copy)]
pub(super) struct Value {
    /// In the help: `--timeout S`.
    pub name: &'static str,
    /// When it is missing: "option --timeout needs seconds".
    pub needs: &'static str,
}

const NUMBER: Value = Value {
    name: "N",
    needs: "a number",
};
const SECONDS: Value = Value {
    name: "S",
    needs: "seconds",
};
const SIZE: Value = Value {
    name: "SIZE",
    needs: "a size",
};
const RATE: Value = Value {
    name: "RATE",
    needs: "a rate",
};
const RATIO: Value = Value {
    name: "R",
    needs: "a ratio",
};
const DURATION: Value = Value {
    name: "DURATION",
    needs: "a duration",
};
const URL: Value = Value {
    name: "URL",
    needs: "a URL",
};
const FILE: Value = Value {
    name: "FILE",
    needs: "a file",
};
const OFFSET: Value = Value {
    name: "-",
    needs: "- (curl's -C -)",
};
const TEXT: Value = Value {
    name: "TEXT",
    needs: "a text",
};
const HEADER: Value = Value {
    name: "'N: V'",
    needs: "a header 'Name: value'",
};
const CREDENTIALS: Value = Value {
    name: "USER:PASSWORD",
    needs: "USER:PASSWORD",
};
const PIN: Value = Value {
    name: "sha256//BASE64",
    needs: "sha256//BASE64 or a public key file",
};
const DIGEST: Value = Value {
    name: "sha256=HEX",
    needs: "sha256=HEX",
};

/// The options of a download, in the order `--help` lists them.
pub(super) static OPTIONS: &[Opt] = &[
    Opt {
        long: "output",
        short: Some('o'),
        // As curl and wget spell it; a second would leave one of them unused.
        takes: Takes::ValueOnce(FILE, |d, _, file| {
            d.output = Some(file);
            Ok(())
        }),
        help: "the same as FILE after the URL",
    },
    Opt {
        long: "input-file",
        short: Some('i'),
        takes: Takes::ValueOnce(FILE, |d, _, file| {
            d.download.input_file = Some(file);
            Ok(())
        }),
        help: "download the URLs listed in FILE (- for standard input), one a line, \
               each optionally followed by spaces and the file to save it as; blank \
               lines and # comments skipped; -j at a time, with the same options, no \
               progress line; a URL given too comes first. At the end, a summary (done, \
               failed and why); the exit status is the highest of the failures'",
    },
    Opt {
        long: "header",
        short: Some('H'),
        takes: Takes::Value(HEADER, set_header),
        help: "add a request header (repeatable; not Range or If-Range, which partfetch \
               sets itself)",
    },
    Opt {
        long: "user-agent",
        short: None,
        takes: Takes::Value(TEXT, |d, _, text| {
            d.download.user_agent = Some(text);
            Ok(())
        }),
        help: "replace the User-Agent header",
    },
    Opt {
        long: "user",
        short: Some('u'),
        takes: Takes::Value(CREDENTIALS, set_user),
        help: "Basic authorization, sent to the URL's own host only (as the user part of \
               the URL would be)",
    },
    Opt {
        long: "proxy",
        short: None,
        takes: Takes::Value(URL, |d, _, url| {
            d.download.proxy = Some(url);
            Ok(())
        }),
        help: "use this HTTP proxy (else http_proxy, https_proxy; no_proxy is honoured)",
    },
    Opt {
        long: "cacert",
        short: None,
        takes: Takes::Value(FILE, |d, _, file| {
            d.download.cacert.push(PathBuf::from(file));
            Ok(())
        }),
        help: "also trust the CA certificates in this PEM file, and each as a server's own",
    },
    Opt {
        long: "ca-certificate",
        short: None,
        takes: Takes::Value(FILE, |d, _, file| {
            d.download.cacert.push(PathBuf::from(file));
            Ok(())
        }),
        help: "the same as --cacert (wget's and aria2c's name)",
    },
    Opt {
        long: "pinnedpubkey",
        short: None,
        takes: Takes::Value(PIN, |d, _, pin| {
            d.download.pinned_public_keys.push(pin);
            Ok(())
        }),
        help: "accept only a server whose public key is this one: sha256//BASE64 (several \
               joined by ;) or a PEM or DER key file; no CA is needed then",
    },
    Opt {
        long: "connect-timeout",
        short: None,
        takes: Takes::Value(SECONDS, |d, name, text| {
            d.download.connect_timeout = Some(seconds(name, &text)?);
            Ok(())
        }),
        help: "seconds to connect to one address (default 15)",
    },
    Opt {
        long: "timeout",
        short: None,
        takes: Takes::Value(SECONDS, |d, name, text| {
            d.download.idle_timeout = Some(seconds(name, &text)?);
            Ok(())
        }),
        help: "seconds without data before failing (default 30)",
    },
    Opt {
        long: "max-time",
        short: Some('m'),
        takes: Takes::Value(SECONDS, |d, name, text| {
            d.download.max_time = Some(seconds(name, &text)?);
            Ok(())
        }),
        help: "seconds the whole download may take, retries and waits included \
               (default: no limit); then it stops, with status 5",
    },
    Opt {
        long: "max-filesize",
        short: None,
        takes: Takes::Value(SIZE, |d, name, text| {
            d.download.max_filesize = Some(size(name, &text)?);
            Ok(())
        }),
        help: "refuse a file larger than SIZE: stop as soon as the server announces \
               more, or sends more (status 1)",
    },
    Opt {
        long: "max-redirects",
        short: None,
        takes: Takes::Value(NUMBER, |d, name, text| {
            let n = text
                .parse()
                .map_err(|_| UsageError(format!("{name} takes a whole number, not {text:?}")))?;
            d.download.max_redirects = Some(n);
            Ok(())
        }),
        help: "redirects to follow (default 20)",
    },
    Opt {
        long: "sequence",
        short: None,
        takes: Takes::Nothing(|d| d.download.sequence = Some(true)),
        help: "treat the stream as a file sequence",
    },
    Opt {
        long: "no-sequence",
        short: None,
        takes: Takes::Nothing(|d| d.download.sequence = Some(false)),
        help: "do not, even if the URL contains -seq",
    },
    Opt {
        long: "cache-limit",
        short: None,
        takes: Takes::Value(SIZE, |d, name, text| {
            d.download.cache_limit = Some(size(name, &text)?);
            Ok(())
        }),
        help: "memory for (*) parts of a manifest (default 64M)",
    },
    Opt {
        long: "parallel",
        short: Some('j'),
        takes: Takes::Value(NUMBER, |d, name, text| {
            d.download.parallel = Some(count(name, &text, 1, 64)?);
            Ok(())
        }),
        help: "parts of a manifest fetched ahead of the one being written (default 8, at \
               most --max-per-host - 1; 1 fetches each part when due, over one connection); with \
               -i, also the downloads of the list run at once",
    },
    Opt {
        long: "connections",
        short: Some('n'),
        takes: Takes::Value(NUMBER, |d, name, text| {
            d.download.connections = Some(count(name, &text, 1, 64)?);
            Ok(())
        }),
        help: "connections for one file of more than 4 MiB whose server honours Range \
               (default 4; at most --max-per-host; 1: one plain request)",
    },
    Opt {
        long: "max-per-host",
        short: None,
        takes: Takes::Value(NUMBER, |d, name, text| {
            d.download.max_per_host = Some(count(name, &text, 1, 64)?);
            Ok(())
        }),
        help: "connections to one host at most (default 16)",
    },
    Opt {
        long: "mirror",
        short: None,
        takes: Takes::Value(URL, |d, _, url| {
            d.download.mirrors.push(url);
            Ok(())
        }),
        help: "another source of the same file (repeatable): its pieces come from every \
               source at once",
    },
    Opt {
        long: "quiet",
        short: Some('q'),
        takes: Takes::Nothing(|d| d.download.quiet = true),
        help: "no progress line, no line when a request is sent again or a download \
               resumes, no closing line naming the file, its size, time and rate",
    },
    Opt {
        long: "verbose",
        short: Some('v'),
        takes: Takes::Nothing(|d| d.download.verbose = true),
        help: "every request head and response head on stderr, as curl -v shows them \
               ('> ' before each line sent, '< ' before each line received), redirects \
               and the requests of a download in pieces included",
    },
    Opt {
        long: "head",
        short: Some('I'),
        takes: Takes::Nothing(|d| d.download.head = true),
        help: "send HEAD, after redirects print the response head on standard output, \
               download nothing; the exit status is the status's, as for a download",
    },
    Opt {
        long: "progress",
        short: None,
        takes: Takes::Nothing(|d| d.download.progress = true),
        help: "a progress line even when stderr is not a terminal",
    },
    Opt {
        long: "checksum",
        short: None,
        takes: Takes::Value(DIGEST, |d, name, text| {
            let digest = text
                .strip_prefix("sha256=")
                .and_then(partfetch::sha256::parse_hex)
                .ok_or_else(|| {
                    UsageError(format!(
                        "{name} takes sha256= and 64 hex digits, not {text:?}"
                    ))
                })?;
            d.download.checksum = Some(digest);
            Ok(())
        }),
        help: "the SHA-256 the whole output must have; on a mismatch FILE is not created \
               (the partial file is kept for inspection) and the exit status is 6. Bytes \
               written to standard output before the end cannot be taken back, nor the \
               files of a sequence (the digest is its stream's): the status says so",
    },
    Opt {
        long: "no-resume",
        short: None,
        takes: Takes::Nothing(|d| d.download.no_resume = true),
        help: "start over even if FILE.partfetch is there (by default, the same command \
               run again resumes)",
    },
    Opt {
        long: "resume",
        short: None,
        takes: Takes::Nothing(|d| d.download.resume = true),
        help: "insist on resuming: when there is nothing to resume or the file changed, \
               fail (status 7) and leave FILE.partfetch as it is (refused for standard \
               output and file sequences)",
    },
    Opt {
        long: "keep-partial",
        short: None,
        // Accepted for scripts that say it; keeping is what happens anyway.
        takes: Takes::Nothing(|_| {}),
        help: "keep FILE.partfetch after a failure (the default)",
    },
    Opt {
        long: "limit-rate",
        short: None,
        // 0 is no limit, as with aria2's and curl's options.
        takes: Takes::Value(RATE, |d, name, text| {
            d.download.limit_rate = Some(size(name, &text)?).filter(|&rate| rate > 0);
            Ok(())
        }),
        help: "at most RATE bytes per second (e.g. 500K, 2M; 0: no limit)",
    },
    Opt {
        long: "retries",
        short: None,
        takes: Takes::Value(NUMBER, |d, name, text| {
            d.download.retries = Some(count(name, &text, 1, 100)? as u32);
            Ok(())
        }),
        help: "attempts in a row before a source failing for a moment (reset, timeout, \
               408, 429, 500, 502-504) is dropped (default 5; exponential backoff, \
               Retry-After); a first request that gets no answer fails at once. Waits are \
               announced on stderr (in a download in pieces, those of 1 s or more)",
    },
    Opt {
        long: "compressed",
        short: None,
        takes: Takes::Nothing(|d| d.download.compressed = true),
        help: "ask for the file gzip-encoded and save it decoded (builds with the gzip \
               feature): a text file travels in a fraction of its size. It then comes over \
               one connection, and a cut download starts over rather than resumes; \
               resuming an earlier run, --mirror and .parts manifests go as stored",
    },
    Opt {
        long: "max-files",
        short: None,
        takes: Takes::Value(NUMBER, |d, name, text| {
            d.download.max_files = Some(count(name, &text, 1, usize::MAX)? as u64);
            Ok(())
        }),
        help: "for a file sequence: files created at most (default 10000); a sequence \
               with more is an error once that many are saved",
    },
    Opt {
        long: "max-peers",
        short: None,
        takes: Takes::Value(NUMBER, |d, name, text| {
            d.download.max_peers = Some(count(name, &text, 1, 1000)?);
            Ok(())
        }),
        help: "for a .torrent: peers connected at once at most (default 50)",
    },
    Opt {
        long: "seed",
        short: None,
        takes: Takes::Nothing(|d| d.download.seed = true),
        help: "for a .torrent: once downloaded, go on uploading to the swarm until \
               --seed-ratio or --seed-time is reached, or Ctrl-C",
    },
    Opt {
        long: "seed-ratio",
        short: None,
        takes: Takes::Value(RATIO, |d, name, text| {
            d.download.seed = true;
            d.download.seed_ratio_thousandths = Some(thousandths(name, &text)?);
            Ok(())
        }),
        help: "seed until R times the torrent's length is uploaded (implies --seed)",
    },
    Opt {
        long: "seed-time",
        short: None,
        takes: Takes::Value(DURATION, |d, name, text| {
            d.download.seed = true;
            d.download.seed_time = Some(duration(name, &text)?);
            Ok(())
        }),
        help: "seed this long once downloaded: 90s, 30m, 2h, 1d; a bare number is \
               minutes, as with aria2c (implies --seed)",
    },
    Opt {
        long: "listen-port",
        short: None,
        takes: Takes::Value(NUMBER, |d, name, text| {
            d.download.listen_port = Some(count(name, &text, 1, 65535)? as u16);
            Ok(())
        }),
        help: "for a .torrent: the port peers dial, IPv4 and IPv6 (default: the first \
               free of 6881-6889)",
    },
    Opt {
        long: "max-upload-rate",
        short: None,
        takes: Takes::Value(RATE, |d, name, text| {
            d.download.max_upload_rate = Some(size(name, &text)?).filter(|&rate| rate > 0);
            Ok(())
        }),
        help: "for a .torrent: upload at most RATE bytes per second to all peers \
               together (0: no limit)",
    },
    Opt {
        long: "location",
        short: Some('L'),
        // curl's; following redirects is what partfetch does anyway.
        takes: Takes::Nothing(|_| {}),
        help: "follow redirects (the default; for those who type curl's -L)",
    },
    Opt {
        long: "remote-name",
        short: Some('O'),
        // curl's; naming the file after the URL is the default without FILE.
        takes: Takes::Nothing(|d| d.remote_name = true),
        help: "name the file after the URL (the default without FILE; curl's -O)",
    },
    Opt {
        long: "continue",
        short: Some('c'),
        // wget's and aria2c's; resuming is the default.
        takes: Takes::Nothing(|_| {}),
        help: "resume a partial download (the default; wget's -c)",
    },
    Opt {
        long: "continue-at",
        short: Some('C'),
        takes: Takes::Value(OFFSET, |_, name, text| match text.as_str() {
            "-" => Ok(()),
            _ => Err(UsageError(format!(
                "{name} takes only - (resume where the partial file ends, the \
                 default), not {text:?}"
            ))),
        }),
        help: "curl's -C -: resume where the partial file ends (the default; no \
               other offset is taken)",
    },
    Opt {
        long: "help",
        short: Some('h'),
        takes: Takes::Stop(|| Command::Help),
        help: "this text",
    },
    Opt {
        long: "version",
        short: Some('V'),
        takes: Takes::Stop(|| Command::Version),
        help: "the version",
    },
];

/// `-H 'Name: value'`: checked here, with the usage status, rather than
/// when the client is built.
fn set_header(d: &mut Draft, _: &str, header: String) -> Result<(), UsageError> {
    let (name, value) = header.split_once(':').ok_or_else(|| {
        UsageError(format!(
            "header {header:?} is not of the form 'Name: value'"
        ))
    })?;
    let (name, value) = (name.trim(), value.trim());
    partfetch::ClientBuilder::check_header(name, value)
        .map_err(|e| UsageError(format!("-H {header:?}: {}", e.message())))?;
    d.download.headers.push((name.to_owned(), value.to_owned()));
    Ok(())
}

/// `-u USER:PASSWORD`: an `Authorization` header, unless `-H` gives one;
/// the last `-u` counts. Without the colon curl would prompt for the
/// password; a download running unattended must not wait on the
/// terminal, so it is refused.
fn set_user(d: &mut Draft, name: &str, credentials: String) -> Result<(), UsageError> {
    if !credentials.contains(':') {
        return Err(UsageError(format!(
            "{name} takes USER:PASSWORD (with the colon), not {credentials:?}"
        )));
    }
    let value = partfetch::ClientBuilder::basic_authorization(&credentials);
    partfetch::ClientBuilder::check_header("Authorization", &value)
        .map_err(|e| UsageError(format!("{name}: {}", e.message())))?;
    d.user = Some(value);
    Ok(())
}

/// The option of a download named `name` as written (`--header`, `-H`).
pub(super) fn find(name: &str) -> Option<&'static Opt> {
    if let Some(long) = name.strip_prefix("--") {
        return OPTIONS.iter().find(|o| o.long == long);
    }
    let mut chars = name.strip_prefix('-')?.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => OPTIONS.iter().find(|o| o.short == Some(c)),
        _ => None,
    }
}

/// Options of curl, wget and aria2c that partfetch does not have, and the
/// partfetch way: said with "unknown option" to whoever types them from
/// habit.
pub(super) static FAMILIAR: &[(&[&str], &str)] = &[
    (
        &["-s", "--silent"],
        "curl's -s is -q here; aria2c's -s is -n",
    ),
    (&["-x"], "curl's -x is --proxy here; aria2c's -x is -n"),
    (&["-S", "--show-error"], "errors are always shown"),
    (
        &["-f", "--fail"],
        "an HTTP error status always fails, with status 3 or 4",
    ),
    (&["--retry"], "--retries N"),
    (&["-A"], "--user-agent TEXT"),
    (
        &[
            "-k",
            "--insecure",
            "--no-check-certificate",
            "--check-certificate",
        ],
        "no option turns certificate checks off; --cacert FILE trusts a private CA or a \
         self-signed certificate, --pinnedpubkey sha256//BASE64 a server's key",
    ),
    (&["-e", "--referer"], "-H 'Referer: URL'"),
    (&["-b", "--cookie"], "-H 'Cookie: NAME=VALUE'"),
];

/// The partfetch way of doing what `name` (an option partfetch does not
/// have) does in curl, wget or aria2c.
pub(super) fn familiar(name: &str) -> Option<&'static str> {
    FAMILIAR
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|&(_, hint)| hint)
}

/// An option of `split`, `serve` or `make-torrent`.
#[cfg(feature = "serve")]
pub(super) struct SubOpt {
    /// The sub-command it belongs to.
    pub command: &'static str,
    /// The name, without its dashes.
    pub long: &'static str,
    /// The one-letter form (`o` for `-o`), for the few that tools of the
    /// same trade spell so.
    pub short: Option<char>,
    pub takes: Arity,
    /// One line of help, wrapped when the help is written.
    pub help: &'static str,
}

/// The values a sub-command option takes. They are gathered by name, and
/// each sub-command reads them after the last argument, since they depend
/// on one another (`--parts` or `--part-size`; `--seq` and the files).
#[cfg(feature = "serve")]
#[derive(Clone, Copy)]
pub(super) enum Arity {
    /// None: `--seq`.
    Nothing,
    /// One, next or inline: `--parts 6`, `--parts=6`.
    One(&'static str),
    /// Every argument up to the next option: `--to a b c`.
    Many(&'static str),
}

/// The options of the sub-commands, in the order `--help` lists them.
#[cfg(feature = "serve")]
pub(super) static SUB_OPTIONS: &[SubOpt] = &[
    SubOpt {
        command: "split",
        long: "parts",
        short: None,
        takes: Arity::One("N"),
        help: "this many parts of equal size",
    },
    SubOpt {
        command: "split",
        long: "part-size",
        short: None,
        takes: Arity::One("SIZE"),
        help: "parts of this size (512K, 64M, ...)",
    },
    SubOpt {
        command: "split",
        long: "to",
        short: None,
        takes: Arity::Many("DIR"),
        help: "one directory per server",
    },
    SubOpt {
        command: "split",
        long: "replicas",
        short: None,
        takes: Arity::One("R"),
        help: "directories holding each part (default 1)",
    },
    SubOpt {
        command: "split",
        long: "base-url",
        short: None,
        takes: Arity::Many("URL"),
        help: "the URL each directory is served at, in order",
    },
    SubOpt {
        command: "split",
        long: "seq",
        short: None,
        takes: Arity::Nothing,
        help: "FILE... are packed into a -seq file sequence first",
    },
    SubOpt {
        command: "split",
        long: "name",
        short: None,
        takes: Arity::One("NAME"),
        help: "the stream's name (default: the file's name)",
    },
    SubOpt {
        command: "serve",
        long: "listen",
        short: None,
        takes: Arity::One("ADDR:PORT"),
        help: "default 127.0.0.1:8000; port 0 lets the system choose",
    },
    SubOpt {
        command: "serve",
        long: "rate-limit",
        short: None,
        takes: Arity::One("RATE"),
        help: "bytes per second for the whole server (10M, ...)",
    },
    SubOpt {
        command: "serve",
        long: "delay",
        short: None,
        takes: Arity::One("MS"),
        help: "wait before each answer (for tests and demos)",
    },
    SubOpt {
        command: "serve",
        long: "max-connections",
        short: None,
        takes: Arity::One("N"),
        help: "at once; more get 503 (default 2048)",
    },
    SubOpt {
        command: "make-torrent",
        long: "announce",
        short: None,
        takes: Arity::One("URL"),
        help: "a tracker (at least one; repeatable: the first is announce, and with \
               several each is a tier of announce-list, tried in order)",
    },
    SubOpt {
        command: "make-torrent",
        long: "web-seed",
        short: None,
        takes: Arity::One("URL"),
        help: "an HTTP source of the files (repeatable; BEP 19 url-list): the file's \
               URL, or for a directory the URL its name is under",
    },
    SubOpt {
        command: "make-torrent",
        long: "piece-length",
        short: None,
        takes: Arity::One("SIZE"),
        help: "a power of two from 16K to 32M (default: from the size, 1025 to 2048 \
               pieces of 16K to 16M)",
    },
    SubOpt {
        command: "make-torrent",
        long: "private",
        short: None,
        takes: Arity::Nothing,
        help: "its trackers only: no DHT, no peer exchange (changes the info-hash)",
    },
    SubOpt {
        command: "make-torrent",
        long: "comment",
        short: None,
        takes: Arity::One("TEXT"),
        help: "a comment for people",
    },
    SubOpt {
        command: "make-torrent",
        long: "output",
        short: Some('o'),
        takes: Arity::One("FILE"),
        help: "where to write the torrent (default: NAME.torrent in the current \
               directory; a directory gets NAME.torrent inside)",
    },
    SubOpt {
        command: "make-torrent",
        long: "force",
        short: None,
        takes: Arity::Nothing,
        help: "replace FILE if it exists (by default it is refused, as mktorrent does)",
    },
];

/// The option of sub-command `command` named `name` as written (`--to`,
/// `-o`).
#[cfg(feature = "serve")]
pub(super) fn find_sub(command: &str, name: &str) -> Option<&'static SubOpt> {
    let mut mine = SUB_OPTIONS.iter().filter(|o| o.command == command);
    if let Some(long) = name.strip_prefix("--") {
        return mine.find(|o| o.long == long);
    }
    let mut chars = name.strip_prefix('-')?.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => mine.find(|o| o.short == Some(c)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_short_forms_are_letters() {
        for (i, opt) in OPTIONS.iter().enumerate() {
            let later = &OPTIONS[i + 1..];
            assert!(
                !later.iter().any(|o| o.long == opt.long),
                "--{} defined twice",
                opt.long
            );
            assert!(
                opt.long.len() > 1 && !opt.long.starts_with('-') && !opt.long.contains('='),
                "--{}",
                opt.long
            );
            if let Some(c) = opt.short {
                assert!(c.is_ascii_alphabetic(), "-{c} is not a letter");
                assert!(
                    !later.iter().any(|o| o.short == Some(c)),
                    "-{c} defined twice"
                );
            }
        }
    }

    #[test]
    fn every_option_is_found_by_each_of_its_names() {
        for opt in OPTIONS {
            let long = format!("--{}", opt.long);
            assert!(std::ptr::eq(find(&long).unwrap(), opt), "{long}");
            if let Some(c) = opt.short {
                assert!(std::ptr::eq(find(&format!("-{c}")).unwrap(), opt), "-{c}");
            }
        }
        for unknown in ["-", "--", "-hq", "---help", "help", "--Help"] {
            assert!(find(unknown).is_none(), "{unknown}");
        }
    }

    #[test]
    fn familiar_options_are_not_partfetchs_own() {
        for (names, hint) in FAMILIAR {
            for name in *names {
                assert!(find(name).is_none(), "{name} is an option of partfetch");
                assert_eq!(familiar(name), Some(*hint));
            }
        }
    }

    #[cfg(feature = "serve")]
    #[test]
    fn sub_command_options_are_unique_within_their_command() {
        for (i, opt) in SUB_OPTIONS.iter().enumerate() {
            assert!(
                ["split", "serve", "make-torrent"].contains(&opt.command),
                "{}",
                opt.command
            );
            let later = &SUB_OPTIONS[i + 1..];
            assert!(
                !later
                    .iter()
                    .any(|o| o.command == opt.command && o.long == opt.long),
                "{} --{} defined twice",
                opt.command,
                opt.long
            );
            let name = format!("--{}", opt.long);
            assert!(std::ptr::eq(find_sub(opt.command, &name).unwrap(), opt));
            if let Some(c) = opt.short {
                assert!(c.is_ascii_alphabetic(), "-{c} is not a letter");
                assert!(
                    !later
                        .iter()
                        .any(|o| o.command == opt.command && o.short == Some(c)),
                    "{} -{c} defined twice",
                    opt.command
                );
                let short = format!("-{c}");
                assert!(std::ptr::eq(find_sub(opt.command, &short).unwrap(), opt));
            }
        }
    }
}
