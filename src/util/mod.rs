//! Small helpers every layer uses, with no knowledge of HTTP or pieces.

pub mod base64;
pub mod block_hash;
#[cfg(feature = "gzip")]
pub mod crc32;
pub mod duration;
pub mod fs;
pub mod hex;
pub mod open_flags;
pub mod quote;
pub mod random;
pub mod size;
pub mod tcp;
pub mod token_bucket;
