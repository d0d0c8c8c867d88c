//! The parallel engine: work on worker threads, output still in order.
//!
//! - [`window`] fetches the next parts of a manifest ahead of the consumer,
//!   each into a bounded buffer;
//! - [`segments`] fetches one large resource as pieces over several
//!   connections;
//! - [`sources`] chooses among the resource's URL and its mirrors.
//!
//! std threads and channels only. The consumer always pulls in order; the
//! engine only decides what is fetched ahead of it, so every layer above
//! stays a plain [`ByteSource`](crate::ByteSource).

pub mod segments;
pub mod sources;
pub mod window;

/// Parts fetched at once by default (`-j/--parallel`).
pub const DEFAULT_PARALLEL: usize = 8;
