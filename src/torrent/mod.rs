//! BitTorrent's building blocks above the bytes: what a `.torrent` file
//! says ([`Metainfo`]), checked so that nothing in it can name a file
//! outside the download's directory, and where each byte of the torrent's
//! pieces lands in its files ([`FileSpan`]).
//!
//! Trackers, the peer wire and the swarm come later and build on these.

mod files;
mod metainfo;
mod path;
pub mod tracker;

pub use files::{File, FileSpan};
pub use metainfo::{Error, Metainfo, MAX_METAINFO_BYTES, MAX_PIECE_LENGTH};
pub use path::{check_component, PathProblem, MAX_COMPONENTS, MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
pub use tracker::{Announce, Event as AnnounceEvent};
