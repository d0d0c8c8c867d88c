//! Downloading a torrent from its swarm: the piece picker
//! ([`picker`]), each connected peer's state and pipeline ([`peer`]), and
//! the controller that decides what to ask whom ([`controller`]), a state
//! machine given the time and tested without sockets; around it, a peer's
//! socket with its reader and writer threads ([`connection`]) and the
//! threads that carry out the controller's actions ([`session`]).
//! docs/swarm.md says how and why.

pub mod choker;
pub mod connection;
pub mod controller;
pub mod peer;
pub mod picker;
pub mod session;
pub mod upload;

pub use controller::{Action, Controller, PeerCounts, DEFAULT_MAX_PEERS};
pub use peer::{Incoming, Out};
pub use picker::{Block, PeerKey, Picker};
