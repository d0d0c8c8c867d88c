//! What a tracker answered, the same for HTTP and UDP trackers
//! ([`Answer`]), made from either protocol's own answer.
//!
//! Owns the fields a swarm acts on. Leaves parsing and bounds to
//! [`super::http_response`] and [`super::udp`].

use std::time::Duration;

use super::http_response::{HttpAnswer, Peer};
use super::udp::AnnounceAnswer;

/// What a tracker answered, over HTTP or UDP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Distinct usable peers, at most `MAX_PEERS`.
    pub peers: Vec<Peer>,
    /// When to announce again (clamped to `MIN_INTERVAL..=MAX_INTERVAL`
    /// when read from a tracker).
    pub interval: Duration,
    /// Never announce sooner than this, even for more peers (HTTP
    /// trackers only; at most `interval`).
    pub min_interval: Option<Duration>,
    /// Peers with the whole torrent, when told.
    pub seeders: Option<u64>,
    /// Peers still downloading, when told.
    pub leechers: Option<u64>,
    /// The tracker's `warning message`: it answered, but has something to
    /// say (HTTP only; at most `MAX_MESSAGE_BYTES`, lossy UTF-8).
    pub warning: Option<String>,
    /// The `tracker id` to send back on the next announce to the same
    /// tracker (HTTP only).
    pub tracker_id: Option<Vec<u8>>,
}

impl From<HttpAnswer> for Answer {
    fn from(a: HttpAnswer) -> Answer {
        Answer {
            peers: a.peers,
            interval: a.interval,
            min_interval: a.min_interval,
            seeders: a.complete,
            leechers: a.incomplete,
            warning: a.warning,
            tracker_id: a.tracker_id,
        }
    }
}

impl From<AnnounceAnswer> for Answer {
    fn from(a: AnnounceAnswer) -> Answer {
        Answer {
            peers: a.peers,
            interval: a.interval,
            min_interval: None,
            seeders: Some(u64::from(a.seeders)),
            leechers: Some(u64::from(a.leechers)),
            warning: None,
            tracker_id: None,
        }
    }
}
