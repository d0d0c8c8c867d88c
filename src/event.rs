//! What a download tells its caller while it runs: the things a person
//! watching it would want to know that are neither progress nor the
//! final error.
//!
//! Owns [`Event`] and the sink that receives them
//! ([`ClientBuilder::on_event`](crate::ClientBuilder::on_event)). Every
//! layer reports through it, so a program branches on what happened
//! instead of parsing sentences, and the library's text never names an
//! option of the command-line tool: the tool turns events into its lines
//! and adds its own hints.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::util::duration;

/// Something that happened during a download. Its `Display` is a plain
/// sentence (no program name, no option names).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A request failed in a way that may pass (a reset, a 503, …) and is
    /// sent again after `wait`, as attempt `attempt` of `attempts`.
    Retrying {
        /// The failure.
        error: Error,
        /// What is sent again.
        what: Retry,
        /// The pause before it.
        wait: Duration,
        /// The attempt about to be made (2 for the first retry).
        attempt: u32,
        /// Attempts in all before giving up.
        attempts: u32,
    },
    /// One source of a download in pieces failed; the others go on, and
    /// it is asked again after `wait` (told only for waits of a second or
    /// more: shorter ones come and go with the pieces).
    SourceBackingOff {
        /// The source's failure.
        error: Error,
        /// The pause before the source is asked again.
        wait: Duration,
    },
    /// A source (the first URL or a mirror) is given up for this
    /// download; the others finish it.
    SourceDropped {
        /// Why: the failure that dropped it.
        error: Error,
    },
    /// A mirror and the first source give no `ETag` or `Last-Modified` to
    /// compare: the mirror is checked by its length only, so another file
    /// of the same length would go unseen but for a digest.
    CheckedByLengthOnly {
        /// The mirror, without credentials.
        url: String,
    },
    /// A redirect led from HTTPS to plain HTTP.
    InsecureRedirect {
        /// The URL redirected, without credentials.
        from: String,
        /// Where it led.
        to: String,
    },
    /// The server sent the body encoded (`Content-Encoding`) although it
    /// was asked for as stored; it is handed on as sent.
    EncodedBody {
        /// The URL, without credentials.
        url: String,
        /// The encoding, as the server named it.
        coding: String,
    },
    /// A download continues what an earlier run left, from byte `offset`.
    Resumed {
        /// The file saved.
        path: PathBuf,
        /// Bytes already there.
        offset: u64,
        /// The whole length, when known.
        length: Option<u64>,
    },
    /// The earlier run's bytes are continued with no way to tell whether
    /// the server's file changed since: it sends neither a strong `ETag`
    /// nor a `Last-Modified` for `If-Range` (as `curl -C -` and `wget -c`
    /// do, rather than make such downloads impossible to resume).
    ResumedUnverified {
        /// The file saved.
        path: PathBuf,
        /// The URL, without credentials.
        url: String,
    },
    /// The earlier run's bytes cannot be used: the download starts over.
    StartingOver {
        /// The file saved.
        path: PathBuf,
        /// The URL, without credentials.
        url: String,
        /// Why.
        why: StartOver,
    },
    /// A BitTorrent tracker answered with a `warning message`: it gave
    /// peers, but has something to say.
    TrackerWarning {
        /// The tracker: scheme, host and port (no passkey).
        tracker: String,
        /// Its words (shown escaped: they come from the tracker).
        message: String,
    },
    /// A BitTorrent tracker did not answer an announce, or refused it; the
    /// next tracker of the torrent is asked.
    TrackerFailed {
        /// The tracker: scheme, host and port (no passkey).
        tracker: String,
        /// What happened, as a sentence naming the tracker.
        error: String,
    },
    /// None of a torrent's trackers answered an announce: they are asked
    /// again after `wait` (longer after each round that fails).
    NoTrackerAnswered {
        /// How many trackers were asked.
        trackers: usize,
        /// The pause before they are asked again.
        wait: Duration,
    },
    /// A torrent continues from pieces an earlier run left: `pieces` of
    /// them, `bytes` in all, read from its control file or (without one)
    /// found by checking the data on disk.
    TorrentResumed {
        /// The torrent's file or directory.
        path: PathBuf,
        /// Pieces already there and verified.
        pieces: u64,
        /// Their bytes.
        bytes: u64,
        /// Whether they were checked on disk (no control file).
        checked: bool,
    },
    /// A torrent to seed has only part of its data in the directory
    /// given: the `pieces` of `of` that match are offered, the others
    /// (missing, short or different) are not.
    SeedingPart {
        /// The torrent's file or directory.
        path: PathBuf,
        /// Pieces there and verified.
        pieces: u64,
        /// Pieces in the torrent.
        of: u64,
    },
    /// A torrent's piece failed its SHA-1 and is fetched again.
    PieceFailed {
        /// The piece.
        piece: u32,
    },
    /// A peer sent pieces that failed their SHA-1: it is dropped and not
    /// dialled again.
    PeerBanned {
        /// The peer.
        addr: SocketAddr,
    },
    /// A request head was sent, on a new or a reused connection: every
    /// request, redirects and ranges included (what `curl -v` shows).
    RequestSent {
        /// The head as sent, CRLF line ends and the empty line included.
        head: String,
    },
    /// A response head was received, for a [`Event::RequestSent`].
    ResponseReceived {
        /// The head as received, CRLF line ends and the empty line
        /// included.
        head: String,
    },
}

/// What [`Event::Retrying`] sends again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retry {
    /// The request itself.
    Request,
    /// The rest of a body cut midway, from where it stopped.
    Rest,
}

/// Why [`Event::StartingOver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartOver {
    /// The resource changed since the earlier run, or its server no
    /// longer honours `Range`.
    Changed,
    /// The manifests no longer list the parts the earlier run completed.
    ManifestChanged,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Retrying {
                error,
                what,
                wait,
                attempt,
                attempts,
            } => {
                let what = match what {
                    Retry::Request => "trying again",
                    Retry::Rest => "asking again",
                };
                write!(
                    f,
                    "{}; {what} in {} (attempt {attempt} of {attempts})",
                    first_line(error),
                    duration::describe(*wait)
                )
            }
            Event::SourceBackingOff { error, wait } => write!(
                f,
                "{}; asking that source again in {}",
                first_line(error),
                duration::describe(*wait)
            ),
            Event::SourceDropped { error } => {
                write!(f, "{}; going on without that source", first_line(error))
            }
            Event::CheckedByLengthOnly { url } => write!(
                f,
                "{url} and the first source give no ETag or Last-Modified to compare: this \
                 source is checked by its length only"
            ),
            Event::InsecureRedirect { from, to } => {
                write!(f, "redirect from HTTPS to plain HTTP: {from} -> {to}")
            }
            Event::EncodedBody { url, coding } => write!(
                f,
                "the server sent {url} encoded ({coding}) although asked for it as stored: it \
                 is saved as sent"
            ),
            Event::Resumed {
                path,
                offset,
                length,
            } => {
                write!(f, "resuming {} at byte {offset}", path.display())?;
                match length {
                    Some(length) => write!(f, " of {length}"),
                    None => Ok(()),
                }
            }
            Event::ResumedUnverified { path, url } => write!(
                f,
                "resuming {} without a way to tell whether {url} changed since the last run \
                 (its server sends no ETag or Last-Modified)",
                path.display()
            ),
            Event::StartingOver { path, url, why } => {
                match why {
                    StartOver::Changed => write!(
                        f,
                        "{url} changed since the last run (or its server ignores Range)"
                    )?,
                    StartOver::ManifestChanged => {
                        write!(f, "{url} no longer lists what the last run downloaded")?
                    }
                }
                write!(f, ": starting {} over", path.display())
            }
            // Debug formatting escapes control characters: the tracker's
            // text cannot reach the terminal as written.
            Event::TrackerWarning { tracker, message } => {
                write!(f, "tracker {tracker} warns: {message:?}")
            }
            Event::TrackerFailed { error, .. } => write!(f, "announce failed: {error}"),
            Event::NoTrackerAnswered { trackers, wait } => {
                let trackers = match trackers {
                    1 => "the tracker".to_owned(),
                    n => format!("any of the {n} trackers"),
                };
                write!(
                    f,
                    "no answer from {trackers}; asking again in {}",
                    duration::describe(*wait)
                )
            }
            Event::TorrentResumed {
                path,
                pieces,
                bytes,
                checked,
            } => write!(
                f,
                "resuming {}: {pieces} pieces ({bytes} bytes) {}",
                path.display(),
                if *checked {
                    "found on disk and checked"
                } else {
                    "from the last run"
                }
            ),
            Event::SeedingPart { path, pieces, of } => write!(
                f,
                "{}: {pieces} of {of} pieces match the torrent; only those are seeded",
                path.display()
            ),
            Event::PieceFailed { piece } => {
                write!(f, "piece {piece} failed its check and is fetched again")
            }
            Event::PeerBanned { addr } => write!(
                f,
                "peer {addr} sent pieces that failed their check: dropped"
            ),
            Event::RequestSent { head } => write!(f, "sent {}", head.lines().next().unwrap_or("")),
            Event::ResponseReceived { head } => {
                write!(f, "received {}", head.lines().next().unwrap_or(""))
            }
        }
    }
}

impl Event {
    /// Whether the event is a doubt about the data or a risk (a warning a
    /// person should see even when they asked for quiet), rather than news
    /// of a download going its way.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Event::SourceDropped { .. }
                | Event::CheckedByLengthOnly { .. }
                | Event::InsecureRedirect { .. }
                | Event::EncodedBody { .. }
                | Event::ResumedUnverified { .. }
                | Event::StartingOver { .. }
                | Event::TrackerWarning { .. }
                | Event::SeedingPart { .. }
        )
    }
}

/// The first line of an error as shown (its causes follow on later lines).
fn first_line(error: &Error) -> String {
    let text = error.to_string();
    text.lines().next().unwrap_or_default().to_owned()
}

/// Where a client's events go.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Passes `event` to `sink`, if there is one.
pub fn emit(sink: &Option<EventSink>, event: Event) {
    if let Some(sink) = sink {
        sink(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn events_read_as_sentences_without_options_or_causes() {
        let error = Error::new(ErrorKind::Status(503), "HTTP status 503")
            .with_subject("http://h/f")
            .with_causes(vec![Error::new(ErrorKind::Network, "reset")]);
        let retrying = Event::Retrying {
            error: error.clone(),
            what: Retry::Request,
            wait: Duration::from_millis(1500),
            attempt: 2,
            attempts: 5,
        };
        let text = retrying.to_string();
        assert!(
            text.ends_with("; trying again in 1.5 s (attempt 2 of 5)"),
            "{text}"
        );
        assert!(!text.contains('\n') && !text.contains("reset"), "{text}");
        assert!(!retrying.is_warning());
        let dropped = Event::SourceDropped { error };
        assert!(dropped.is_warning());
        assert!(dropped
            .to_string()
            .ends_with("going on without that source"));
        let unchecked = Event::CheckedByLengthOnly {
            url: "http://m/f".into(),
        };
        assert!(!unchecked.to_string().contains("--"), "{unchecked}");
    }

    #[test]
    fn tracker_events_escape_the_trackers_words_and_only_its_warning_warns() {
        let warning = Event::TrackerWarning {
            tracker: "http://t.example".into(),
            message: "ratio low\x1b[2J".into(),
        };
        let text = warning.to_string();
        assert_eq!(
            text,
            "tracker http://t.example warns: \"ratio low\\u{1b}[2J\""
        );
        assert!(warning.is_warning());
        let failed = Event::TrackerFailed {
            tracker: "udp://t.example:1".into(),
            error: "tracker udp://t.example:1 did not answer in time".into(),
        };
        assert_eq!(
            failed.to_string(),
            "announce failed: tracker udp://t.example:1 did not answer in time"
        );
        assert!(!failed.is_warning());
        let none = Event::NoTrackerAnswered {
            trackers: 3,
            wait: Duration::from_secs(30),
        };
        assert_eq!(
            none.to_string(),
            "no answer from any of the 3 trackers; asking again in 30 s"
        );
        assert!(!none.is_warning());
        let one = Event::NoTrackerAnswered {
            trackers: 1,
            wait: Duration::from_secs(15),
        };
        assert!(one.to_string().starts_with("no answer from the tracker;"));
    }
}
