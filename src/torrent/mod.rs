//! BitTorrent's building blocks above the bytes: what a `.torrent` file
//! says ([`Metainfo`]), checked so that nothing in it can name a file
//! outside the download's directory, and where each byte of the torrent's
//! pieces lands in its files ([`FileSpan`]).
//!
//! On disk: [`TorrentStore`] opens the torrent's files under the
//! download's directory and reads, writes, hashes and syncs pieces there;
//! [`check_existing`] hashes what is already on disk; the control file
//! beside the files ([`ResumeState`], saved through a [`Checkpoint`]) lets
//! a stopped download continue, and [`ResumeState::for_torrent`] decides
//! what a download starts from; [`DownloadLock`] keeps a second process
//! from downloading the same torrent into the same directory. [`Checkpoint`]'s doc gives the order a
//! swarm follows so that the control file never claims more than the disk
//! holds.
//!
//! [`tracker`] asks trackers for peers (HTTP and UDP, through BEP 12's
//! tiers, from a thread a swarm owns: [`tracker::Announcer`]), and
//! [`wire`] reads and writes the peer wire protocol, both with their
//! protocols as byte-slice state machines apart from sockets. [`swarm`] downloads
//! from the peers: the picker, each peer's pipeline, the controller and
//! the threads around it (docs/swarm.md).
//!
//! [`MakeTorrent`] makes a `.torrent` of a file or a directory, hashing
//! it on every core (docs/make-torrent.md).

mod check;
mod files;
#[cfg(test)]
mod fixture;
mod lock;
mod make;
mod metainfo;
mod path;
mod resume;
mod storage;
pub mod swarm;
pub mod tracker;
pub mod wire;

pub use check::{check_existing, CHECK_THREADS};
pub use files::{File, FileSpan};
pub use lock::{lock_path, DownloadLock, LOCK_SUFFIX};
pub use make::{
    auto_piece_length, check_piece_length, MadeTorrent, MakeTorrent, AUTO_MAX_PIECES, CREATED_BY,
    MAX_AUTO_PIECE_LENGTH, MAX_MADE_PIECE_LENGTH, MIN_PIECE_LENGTH,
};
pub use metainfo::{Error, Metainfo, MAX_METAINFO_BYTES, MAX_PIECE_LENGTH};
#[cfg(feature = "metalink")]
pub(crate) use path::check_path;
pub use path::{check_component, PathProblem, MAX_COMPONENTS, MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
pub use resume::{
    state_path, Checkpoint, ResumeState, Resumed, ResumedFrom, CHECKPOINT_EVERY, MAX_STATE_BYTES,
    STATE_SUFFIX,
};
pub use storage::{TorrentStore, HASH_CHUNK, MAX_OPEN_FILES};
pub use tracker::{Announce, Event as AnnounceEvent};
pub use wire::{Bitfield, ExtensionHandshake, Handshake, Message};
