//! partfetch downloads a byte stream assembled from parts stored on many
//! machines, and streams it while it downloads.
//!
//! ```no_run
//! use partfetch::{ByteSource, Client};
//!
//! let client = Client::new()?;
//! let mut stream = client.open("http://example.com/movie.parts")?;
//! let mut total = 0;
//! while let Some(chunk) = stream.next_chunk()? {
//!     total += chunk.len();
//! }
//! println!("{total} bytes");
//! # Ok::<(), partfetch::Error>(())
//! ```
#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs)]

pub mod client;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod manifest;
pub mod part;
pub mod sequence;
pub mod sha256;
pub mod source;
pub mod stream;
pub mod url;

pub use client::{Client, ClientBuilder};
pub use error::{Error, ErrorKind, Result};
pub use sequence::files_from_sequence;
pub use source::ByteSource;
pub use stream::Stream;
pub use url::Url;
