//! BitTorrent's building blocks above the bytes: what a `.torrent` file
//! says ([`Metainfo`]), checked so that nothing in it can name a file
//! outside the download's directory, and where each byte of the torrent's
//! pieces lands in its files ([`FileSpan`]).
//!
//! [`tracker`] asks trackers for peers (HTTP and UDP), and [`wire`] reads
//! and writes the peer wire protocol, both as byte-slice state machines
//! apart from sockets. The picker, the choker and the swarm come later and
//! build on these.

mod files;
mod metainfo;
mod path;
pub mod swarm;
pub mod tracker;
pub mod wire;

pub use files::{File, FileSpan};
pub use metainfo::{Error, Metainfo, MAX_METAINFO_BYTES, MAX_PIECE_LENGTH};
pub use path::{check_component, PathProblem, MAX_COMPONENTS, MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
pub use tracker::{Announce, Event as AnnounceEvent};
pub use wire::{Bitfield, ExtensionHandshake, Handshake, Message};
