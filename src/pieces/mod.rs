//! Pieces: how a download is cut, which pieces are on disk, where they are
//! written, and where each comes from. No sockets and no threads: the
//! engine runs these, and a swarm will too.
//!
//! - [`layout`]: a download's length and piece length;
//! - [`piece_set`]: which pieces are whole (and its text form for the
//!   control file);
//! - [`store`]: where pieces are written, at their offsets;
//! - [`sources`]: the URL and mirrors of a resource, and which serves the
//!   next piece.

pub mod layout;
pub mod piece_set;
pub mod sources;
pub mod store;

pub use layout::Layout;
pub use piece_set::PieceSet;
pub use store::{FileStore, PieceStore};
