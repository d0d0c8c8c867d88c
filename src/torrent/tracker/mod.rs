//! Asking trackers for peers, from the bytes on the wire up to the thread
//! a swarm runs:
//!
//! - [`announce`](mod@announce): what an announce carries and its HTTP URL;
//! - [`http_response`]: the bencoded answer of an HTTP tracker;
//! - [`udp`]: the UDP tracker protocol of BEP 15 (IPv4 and IPv6 peers) as
//!   a state machine with no socket, plus a small driver over
//!   `std::net::UdpSocket`;
//! - [`ask`]: one announce to one tracker of any scheme (HTTP through the
//!   client's own stack, [`http`]), giving one [`Answer`] ([`answer`]) or
//!   one [`TrackerError`] ([`error`]);
//! - [`tiers`]: a torrent's trackers in BEP 12's tiers, asked in order
//!   until one answers;
//! - [`schedule`]: when to announce next and with which event, given the
//!   time;
//! - [`announcer`]: the thread that runs them for a swarm.
//!
//! Owns the protocol (the bytes sent, the bytes accepted, the timers and
//! the bounds on what a hostile tracker can make us keep), the order
//! trackers are asked in and when. Leaves the HTTP exchange itself
//! (`http/`, `fetch/`), and what to do with the peers (the swarm, the peer
//! wire).

pub mod announce;
pub mod announcer;
pub mod answer;
pub mod ask;
pub mod error;
pub mod http;
pub mod http_response;
pub mod schedule;
pub mod tiers;
pub mod udp;

pub use announce::{announce_url, announce_url_with_id, Announce, Event};
pub use announcer::{AnnounceStats, Announcer};
pub use answer::Answer;
pub use ask::{announce, announce_with};
pub use error::{tracker_name, BadAnswer, TrackerError};
pub use http::KeepGoing;
pub use http_response::{
    Family, HttpAnswer, HttpError, Peer, MAX_INTERVAL, MAX_MESSAGE_BYTES, MAX_PEERS,
    MAX_RESPONSE_BYTES, MIN_INTERVAL,
};
pub use schedule::{Schedule, Timing};
pub use tiers::{Tiers, Tracker, MAX_TRACKERS};
pub use udp::{peer_family, udp_announce, AnnounceAnswer, UdpError, UdpTracker};
