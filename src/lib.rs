//! partfetch downloads a byte stream assembled from parts stored on many
//! machines, and streams it while it downloads.
#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs)]

pub mod error;
pub mod source;
pub mod url;

pub use error::{Error, ErrorKind, Result};
pub use source::ByteSource;
pub use url::Url;
