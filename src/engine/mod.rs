//! The parallel engine: work on worker threads, output still in order.
//!
//! - [`window`] fetches the next parts of a manifest ahead of the consumer,
//!   each into a bounded buffer;
//! - [`segments`] fetches one large resource as pieces over several
//!   connections, and [`download`] writes them into a file as they
//!   arrive;
//! - [`sources`] chooses among the resource's URL and its mirrors;
//! - [`store`] takes pieces at their offsets when the output is a file, and
//!   [`piece_set`] records which are there.
//!
//! std threads and channels only. A consumer of a stream pulls in order;
//! the engine only decides what is fetched ahead of it, so every layer
//! above stays a plain [`ByteSource`](crate::ByteSource). A download to a
//! file may instead let the pieces land where they belong as they arrive
//! ([`download::SegmentedDownload`]).

pub mod download;
pub mod piece_set;
pub mod segments;
pub mod sources;
pub mod store;
pub mod window;

/// Parts fetched at once by default (`-j/--parallel`).
pub const DEFAULT_PARALLEL: usize = 8;
