//! Command-line arguments: what the user asked for, read from the
//! arguments after the program name.
//!
//! Owns the [`Command`] and the options it carries, and the readers of
//! option values (sizes, seconds, counts). Each option is defined once, in
//! the tables of [`defs`]: the parser ([`parse`], and `subcommand` for
//! `split`, `serve`, `make-torrent` and `demo`) and the `--help` text ([`help`]) are both
//! made from them, so that an option cannot be parsed yet missing from the
//! help, or documented under a name the parser does not know. Long options
//! take `--name VALUE` or `--name=VALUE`; `-H VALUE` and `-HVALUE` both
//! work; `--` ends the options. Turning the options into a client is
//! `cli::run`'s job.

mod defs;
mod help;
mod parse;
#[cfg(feature = "serve")]
mod subcommand;

#[cfg(feature = "serve")]
pub use help::PUBLISH_USAGE;
pub use help::USAGE;
pub use parse::parse;
pub(crate) use parse::{looks_like_url, with_scheme};

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
    #[cfg(feature = "serve")]
    /// `make-torrent`: write a `.torrent` of a file or a directory.
    MakeTorrent(Box<MakeTorrent>),
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
    /// `-v/--verbose`: every request and response head on stderr.
    pub verbose: bool,
    /// `-I/--head`: send `HEAD` and print the response head on stdout.
    pub head: bool,
    /// `-i/--input-file FILE`: the list of URLs to download (`-`: standard
    /// input), after `url` when one is given too.
    pub input_file: Option<String>,
    pub cacert: Vec<PathBuf>,
    /// `--pinnedpubkey` (repeatable): the public keys a server may have.
    pub pinned_public_keys: Vec<String>,
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
    /// `--compressed`: a whole file asked for gzip-encoded, saved decoded.
    pub compressed: bool,
    /// `--limit-rate RATE`: bytes per second at most (`None`: no limit).
    pub limit_rate: Option<u64>,
    /// `--retries N`: attempts in a row before a failing source is dropped.
    pub retries: Option<u32>,
    /// `--max-peers N`: a torrent's peers connected at once at most.
    pub max_peers: Option<usize>,
    /// `--max-files N`: files a file sequence may create at most.
    pub max_files: Option<u64>,
    /// `partfetch seed FILE.torrent DIR`: upload what DIR holds, download
    /// nothing.
    pub seed_only: bool,
    /// `--seed`: go on uploading once a torrent is downloaded.
    pub seed: bool,
    /// `--seed-ratio R`, in thousandths: seed until R × the torrent's
    /// length is uploaded.
    pub seed_ratio_thousandths: Option<u64>,
    /// `--seed-time DURATION`: seed this long.
    pub seed_time: Option<Duration>,
    /// `--listen-port N`: the port peers dial.
    pub listen_port: Option<u16>,
    /// `--max-upload-rate RATE`: bytes per second to all peers at most.
    pub max_upload_rate: Option<u64>,
    /// `-m/--max-time S`: the whole download's deadline.
    pub max_time: Option<Duration>,
    /// `--max-filesize SIZE`: the largest file accepted.
    pub max_filesize: Option<u64>,
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

#[cfg(feature = "serve")]
/// The options of `partfetch make-torrent`.
#[derive(Debug, PartialEq)]
pub struct MakeTorrent {
    pub path: PathBuf,
    /// `--announce` (at least one), in order.
    pub announce: Vec<String>,
    pub web_seeds: Vec<String>,
    /// `--piece-length`, checked: a power of two from 16 KiB to 32 MiB.
    pub piece_length: Option<u64>,
    pub private: bool,
    pub comment: Option<String>,
    /// `-o`: where to write (default: `NAME.torrent` here).
    pub output: Option<PathBuf>,
    /// `--force`: replace the output if it exists.
    pub force: bool,
}

/// A usage mistake, said in a sentence.
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

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

/// `90s`, `30m`, `2h`, `1d`, or a bare number of minutes (as aria2c's
/// `--seed-time`).
fn duration(name: &str, text: &str) -> Result<Duration, UsageError> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "m"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|_| scale > 0)
        .and_then(|n| n.checked_mul(scale))
        .filter(|&secs| secs <= MAX_SECONDS)
        .map(Duration::from_secs)
        .ok_or_else(|| {
            UsageError(format!(
                "{name} takes a duration such as 90s, 30m, 2h or 1d (a bare number is \
                 minutes), not {text:?}"
            ))
        })
}

/// `1`, `1.5`, `0.25`: a ratio, in thousandths, read without floating
/// point.
fn thousandths(name: &str, text: &str) -> Result<u64, UsageError> {
    let parse = || -> Option<u64> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 3 {
            return None;
        }
        let whole: u64 = whole.parse().ok().filter(|&w| w <= 1_000_000)?;
        let mut thousandths = whole * 1000;
        for (i, b) in fraction.bytes().enumerate() {
            thousandths += u64::from(b - b'0') * 10u64.pow(2 - i as u32);
        }
        Some(thousandths)
    };
    parse().ok_or_else(|| {
        UsageError(format!(
            "{name} takes a ratio such as 1, 1.5 or 0.25 (at most three decimals), not {text:?}"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_times_and_ratios_are_read_as_aria2c_users_write_them() {
        let secs = |t: &str| duration("--seed-time", t).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("30"), Ok(1800), "minutes, as aria2c");
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("1d"), Ok(86_400));
        for bad in ["", "m", "1.5h", "10w", "-1", "99999999999999999999s"] {
            let err = duration("--seed-time", bad).unwrap_err();
            assert!(
                err.0.contains("--seed-time") && err.0.contains(bad),
                "{err:?}"
            );
        }
        let ratio = |t: &str| thousandths("--seed-ratio", t);
        assert_eq!(ratio("1"), Ok(1000));
        assert_eq!(ratio("1.5"), Ok(1500));
        assert_eq!(ratio("0.25"), Ok(250));
        assert_eq!(ratio("0"), Ok(0));
        for bad in ["", ".5", "1.2345", "x", "-1", "1e3"] {
            assert!(ratio(bad).is_err(), "{bad}");
        }
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
}
