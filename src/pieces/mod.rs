//! Pieces: how a download is cut, which pieces are on disk, where they are
//! written, and where each comes from. No sockets and no threads: the
//! engine runs these, and a swarm will too.
//!
//! - [`Layout`]: a download's length and piece length;
//! - [`PieceSet`]: which pieces are whole (and its text form for the
//!   control file);
//! - [`PieceStore`]: where pieces are written, at their offsets
//!   ([`FileStore`] for a file);
//! - [`PieceHashes`]: the digests a download's pieces must have (a
//!   Metalink document's), checked as they arrive ([`PieceChecker`]);
//! - inside, `sources` (the URL and mirrors of a resource, and which
//!   serves the next piece) and `scheduler` (which pieces are fetched when
//!   and from where, given the time: the policy the engine's workers
//!   follow).

pub mod hashes;
mod layout;
pub(crate) mod piece_set;
pub(crate) mod scheduler;
pub(crate) mod sources;
pub(crate) mod store;

pub use hashes::{BadPiece, HashKind, PieceChecker, PieceHashes};
pub use layout::Layout;
pub use piece_set::PieceSet;
pub use store::{read_exact_at, write_all_at, FileStore, PieceStore};
