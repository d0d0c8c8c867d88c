//! Why an announce to one tracker gave no peers ([`TrackerError`]), the
//! same for every scheme, and how a tracker is named in messages
//! ([`tracker_name`]).
//!
//! Owns the kinds of failure and their sentences. Leaves deciding what a
//! failure means for the next announce (another tracker, a later retry)
//! to the tiers and the announcer.

use std::fmt;

use super::http_response::HttpError;

/// Why one announce to one tracker ended without an answer. Each variant
/// names the tracker as [`tracker_name`] shows it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TrackerError {
    /// A scheme other than `http`, `https` and `udp` (a WebTorrent `wss://`
    /// tracker, a typo).
    UnsupportedScheme {
        /// The tracker, as shown.
        tracker: String,
    },
    /// A URL that cannot be asked: no host, no port for UDP, a malformed
    /// HTTP URL.
    BadUrl {
        /// The tracker, as shown.
        tracker: String,
        /// What is wrong with it.
        why: String,
    },
    /// The tracker refused: its `failure reason` (HTTP) or error message
    /// (UDP), at most `MAX_MESSAGE_BYTES`, lossy UTF-8 (shown escaped).
    Failure {
        /// The tracker, as shown.
        tracker: String,
        /// The tracker's text.
        reason: String,
    },
    /// An HTTP tracker answered a status other than 2xx.
    Status {
        /// The tracker, as shown.
        tracker: String,
        /// The status code.
        status: u16,
    },
    /// The answer could not be read.
    Malformed {
        /// The tracker, as shown.
        tracker: String,
        /// What is wrong with it.
        why: BadAnswer,
    },
    /// Resolving the name, connecting, TLS or the exchange failed.
    Network {
        /// The tracker, as shown.
        tracker: String,
        /// The failure. Its subject (the announce URL, with the info-hash
        /// and any passkey) is never shown: see [`TrackerError`]'s
        /// `Display`.
        error: crate::Error,
    },
    /// No answer before the deadline (a UDP tracker's last retransmission
    /// included).
    TimedOut {
        /// The tracker, as shown.
        tracker: String,
    },
    /// The announce was given up because its caller is stopping (or its
    /// client was cancelled).
    Cancelled {
        /// The tracker, as shown.
        tracker: String,
    },
}

/// What is wrong with an answer that is not a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadAnswer {
    /// An HTTP tracker's body is not the bencoded dictionary of BEP 3.
    Http(HttpError),
    /// A UDP tracker's datagram is short or its peers are not whole records.
    Udp(&'static str),
    /// An HTTP tracker's body is longer than `MAX_RESPONSE_BYTES`.
    TooLarge,
}

impl fmt::Display for BadAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadAnswer::Http(e) => e.fmt(f),
            BadAnswer::Udp(what) => f.write_str(what),
            BadAnswer::TooLarge => write!(
                f,
                "larger than {} bytes",
                super::http_response::MAX_RESPONSE_BYTES
            ),
        }
    }
}

impl TrackerError {
    /// The tracker, as shown.
    pub fn tracker(&self) -> &str {
        match self {
            TrackerError::UnsupportedScheme { tracker }
            | TrackerError::BadUrl { tracker, .. }
            | TrackerError::Failure { tracker, .. }
            | TrackerError::Status { tracker, .. }
            | TrackerError::Malformed { tracker, .. }
            | TrackerError::Network { tracker, .. }
            | TrackerError::TimedOut { tracker }
            | TrackerError::Cancelled { tracker } => tracker,
        }
    }

    /// Whether the announce was given up by its caller rather than failed.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TrackerError::Cancelled { .. })
    }
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tracker = self.tracker();
        match self {
            TrackerError::UnsupportedScheme { .. } => write!(
                f,
                "tracker {tracker}: unsupported scheme (http, https and udp are)"
            ),
            TrackerError::BadUrl { why, .. } => write!(f, "tracker {tracker}: bad URL: {why}"),
            // Debug formatting escapes control characters: the tracker's
            // text cannot reach the terminal as written.
            TrackerError::Failure { reason, .. } => {
                write!(f, "tracker {tracker} refused: {reason:?}")
            }
            TrackerError::Status { status, .. } => {
                write!(f, "tracker {tracker} answered HTTP status {status}")
            }
            TrackerError::Malformed { why, .. } => {
                write!(f, "tracker {tracker}: malformed answer: {why}")
            }
            // The message only: the subject is the announce URL.
            TrackerError::Network { error, .. } => {
                write!(f, "tracker {tracker}: {}", error.message())
            }
            TrackerError::TimedOut { .. } => write!(f, "tracker {tracker} did not answer in time"),
            TrackerError::Cancelled { .. } => write!(f, "announce to tracker {tracker} given up"),
        }
    }
}

impl std::error::Error for TrackerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrackerError::Network { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The longest tracker name shown, in characters.
const MAX_NAME_CHARS: usize = 128;

/// How a tracker is named in messages: its scheme, host and port, without
/// user info, path or query. Private trackers put the user's passkey in
/// the path (`/<passkey>/announce`) or the query (`?passkey=…`), and
/// messages end up in logs and bug reports. Control characters are
/// escaped and the name cut to 128 characters: the URL comes from a
/// `.torrent` file.
pub fn tracker_name(url: &str) -> String {
    let name = match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => url
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    let mut shown = String::with_capacity(name.len());
    for c in name.chars().take(MAX_NAME_CHARS) {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracker_is_named_without_passkeys_or_user_info() {
        for (url, name) in [
            (
                "https://user:pw@t.example:8443/abcdef0123/announce?x=1",
                "https://t.example:8443",
            ),
            (
                "http://t.example/announce?passkey=s3cret",
                "http://t.example",
            ),
            (
                "udp://[2001:db8::1]:6969/announce",
                "udp://[2001:db8::1]:6969",
            ),
            ("udp://t.example:1337", "udp://t.example:1337"),
            ("t.example/announce", "t.example"),
        ] {
            assert_eq!(tracker_name(url), name, "{url}");
        }
        assert_eq!(tracker_name("udp://a\x1b[2J:1"), "udp://a\\u{1b}[2J:1");
        assert_eq!(
            tracker_name(&format!("http://{}", "a".repeat(500))).len(),
            128
        );
    }

    #[test]
    fn every_error_names_its_tracker_and_escapes_the_trackers_text() {
        let tracker = "udp://t.example:1".to_owned();
        let errors = [
            TrackerError::UnsupportedScheme {
                tracker: tracker.clone(),
            },
            TrackerError::BadUrl {
                tracker: tracker.clone(),
                why: "no port".into(),
            },
            TrackerError::Failure {
                tracker: tracker.clone(),
                reason: "gone\x1b[2J".into(),
            },
            TrackerError::Status {
                tracker: tracker.clone(),
                status: 503,
            },
            TrackerError::Malformed {
                tracker: tracker.clone(),
                why: BadAnswer::TooLarge,
            },
            TrackerError::Network {
                tracker: tracker.clone(),
                error: crate::Error::new(crate::ErrorKind::Network, "connection refused")
                    .with_subject("http://t.example/a?passkey=s3cret"),
            },
            TrackerError::TimedOut {
                tracker: tracker.clone(),
            },
            TrackerError::Cancelled {
                tracker: tracker.clone(),
            },
        ];
        for e in &errors {
            let text = e.to_string();
            assert!(text.contains(&tracker), "{text}");
            assert!(!text.contains('\x1b') && !text.contains("s3cret"), "{text}");
            assert_eq!(e.tracker(), tracker);
            assert_eq!(
                e.is_cancelled(),
                matches!(e, TrackerError::Cancelled { .. })
            );
        }
        assert!(errors[2]
            .to_string()
            .ends_with("refused: \"gone\\u{1b}[2J\""));
        assert!(errors[3].to_string().contains("HTTP status 503"));
    }
}
