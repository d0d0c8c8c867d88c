//! `.parts` manifests: a stream described as parts stored elsewhere.
//!
//! - [`parse`] turns manifest text into parts, incrementally;
//! - [`expand`] walks the parts (and nested manifests) into one stream;
//! - [`cache`] holds the `(*)` parts of one download.
//!
//! The format is described in `docs/manifest.md`.

pub mod cache;
pub mod expand;
pub mod parse;

pub use expand::{is_manifest, ManifestStream};
pub use parse::{ManifestParser, PartSpec};
