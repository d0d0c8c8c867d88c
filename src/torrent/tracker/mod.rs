//! Asking a tracker for peers: what an announce carries and its HTTP URL
//! ([`announce`](mod@announce)), the bencoded answer of an HTTP tracker
//! ([`http_response`]), and the UDP tracker protocol of BEP 15 as a state
//! machine with no socket, plus a small driver over `std::net::UdpSocket`
//! ([`udp`]). Above them, [`ask`] announces to one tracker of any scheme
//! (HTTP through the client's own stack, [`http`]) and returns one
//! [`Answer`] ([`answer`]) or one [`TrackerError`] ([`error`]);
//! [`tiers`] keeps a torrent's trackers in BEP 12's tiers and asks them in
//! order until one answers.
//!
//! Owns the protocol: the bytes sent, the bytes accepted, the timers and
//! the bounds on what a hostile tracker can make us keep, and the order
//! trackers are asked in. Leaves to others when to ask again (the swarm),
//! the HTTP exchange itself (`http/`, `fetch/`) and what to do with the
//! peers (the peer wire).

pub mod announce;
pub mod answer;
pub mod ask;
pub mod error;
pub mod http;
pub mod http_response;
pub mod tiers;
pub mod udp;

pub use announce::{announce_url, announce_url_with_id, Announce, Event};
pub use answer::Answer;
pub use ask::{announce, announce_with};
pub use error::{tracker_name, BadAnswer, TrackerError};
pub use http::KeepGoing;
pub use http_response::{
    Family, HttpAnswer, HttpError, Peer, MAX_INTERVAL, MAX_MESSAGE_BYTES, MAX_PEERS,
    MAX_RESPONSE_BYTES, MIN_INTERVAL,
};
pub use tiers::{Tiers, Tracker, MAX_TRACKERS};
pub use udp::{peer_family, udp_announce, AnnounceAnswer, UdpError, UdpTracker};
