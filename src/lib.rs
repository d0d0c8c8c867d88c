//! partfetch downloads a byte stream assembled from parts stored on many
//! machines, and streams it while it downloads.
//!
//! Every layer is a [`ByteSource`]: the consumer pulls chunks, each a view
//! into the layer's own buffer, so memory stays flat however long the
//! stream. A `.parts` manifest ([`manifest`]) expands into the stream of its
//! parts; a file sequence ([`sequence`]) splits any stream into files.
//!
//! Saving a URL to a file — resumable, in pieces over several
//! connections, with progress — is [`Client::download`]:
//!
//! ```no_run
//! use partfetch::{Client, Progress};
//!
//! let client = Client::new()?;
//! let saved = client
//!     .download("http://example.com/big.iso")
//!     .on_progress(|p: &Progress| eprintln!("{} bytes", p.done))
//!     .to_path("big.iso")?;
//! println!("{} bytes", saved.bytes);
//! # Ok::<(), partfetch::Error>(())
//! ```
//!
//! Reading a URL as a stream — a plain file or a manifest, detected by
//! [`Client::open`]:
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
//!
//! The layers compose over any source, here bytes in memory handed out
//! three at a time: a file sequence of two files, split while it streams.
//!
//! ```
//! use partfetch::source::SliceSource;
//! use partfetch::{files_from_sequence, ByteSource};
//!
//! let stream = b"\0\0\0\x056.009\0\0\0\x06rules!";
//! let mut source = SliceSource::chunked(&stream[..], 3);
//! let mut seen = 0;
//! while let Some(chunk) = source.next_chunk()? {
//!     assert!(chunk.len() <= 3);
//!     seen += chunk.len();
//! }
//! assert_eq!(seen, stream.len());
//!
//! let files = files_from_sequence(SliceSource::chunked(&stream[..], 3))
//!     .collect::<Result<Vec<_>, _>>()?;
//! assert_eq!(files, [b"6.009".to_vec(), b"rules!".to_vec()]);
//! # Ok::<(), partfetch::Error>(())
//! ```
#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs)]

pub mod bencode;
mod cancel;
mod client;
mod download;
// Not part of the API: the building blocks below the download builder,
// public only for the crate's own integration tests and fuzz targets. They
// may change in any release.
#[doc(hidden)]
pub mod engine;
mod error;
mod event;
mod fetch;
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod http;
pub mod manifest;
#[cfg(feature = "metalink")]
pub mod metalink;
mod open;
mod parts;
pub mod pieces;
pub mod sequence;
#[cfg(feature = "serve")]
pub mod serve;
pub mod sha1;
pub mod sha256;
pub mod source;
#[cfg(feature = "serve")]
pub mod split;
mod stream;
pub mod torrent;
mod url;
mod util;

pub use cancel::Cancel;
pub use client::{Client, ClientBuilder};
#[cfg(feature = "metalink")]
pub use download::{names_a_metalink, MetalinkDownload};
pub use download::{
    names_a_torrent, Download, PeerCounts, Progress, Resume, Saved, TorrentDownload,
    DEFAULT_MAX_FILES,
};
pub use error::{Error, ErrorKind, Result};
pub use event::{Event, Retry, StartOver};
#[doc(hidden)]
pub use open::{Resumed, ResumedPieces};
pub use sequence::files_from_sequence;
pub use source::ByteSource;
pub use stream::Stream;
pub use url::Url;
pub use util::size::human_size;

/// The README's examples, compiled (and run when they do no I/O) as tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
