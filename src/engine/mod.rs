//! The parallel engine: one large resource fetched as pieces on worker
//! threads, output still in order.
//!
//! - [`segments`] fetches one large resource as pieces over several
//!   connections, and hands them on in order;
//! - [`download`] writes them into a store as they arrive instead;
//! - `worker` runs the workers that fetch the pieces, and `range_fetch`
//!   asks a source for a range of the resource.
//!
//! Which piece is fetched when and from where is the
//! `pieces::scheduler`'s, a state machine
//! the engine drives under its lock, giving it the time.
//!
//! The pieces themselves — layout, piece set, store, sources — are
//! [`pieces`](crate::pieces)'s; the window that fetches a manifest's next
//! parts is `parts::window`'s.
//!
//! std threads and channels only. A consumer of a stream pulls in order;
//! the engine only decides what is fetched ahead of it, so every layer
//! above stays a plain [`ByteSource`](crate::ByteSource). A download to a
//! file may instead let the pieces land where they belong as they arrive
//! ([`download::SegmentedDownload`]).

pub mod download;
mod range_fetch;
pub mod segments;
mod worker;

/// The piece length of an HTTP download: large enough that a request's
/// round trip is small beside its transfer, small enough that the last
/// pieces end together and a stream's reorder window stays a few MiB.
pub const HTTP_PIECE: u64 = 1024 * 1024;

/// Parts fetched at once by default (`-j/--parallel`).
pub const DEFAULT_PARALLEL: usize = 8;
