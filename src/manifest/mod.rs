//! `.parts` manifests: a stream described as parts stored elsewhere.
//!
//! Public: the incremental parser ([`ManifestParser`], [`PartSpec`],
//! [`parse_all`]) and the limits a manifest is held to. Inside, `expand`
//! walks the parts (and nested manifests) into one stream and `cache`
//! holds the `(*)` parts of one download; [`Client::open`] uses them.
//!
//! The format is described in `docs/manifest.md`.
//!
//! [`Client::open`]: crate::Client::open

pub(crate) mod cache;
pub(crate) mod expand;
pub(crate) mod parse;

pub use cache::DEFAULT_CACHE_LIMIT;
pub use expand::{MAX_EXPANSIONS_WITHOUT_OUTPUT, MAX_NESTING, MAX_RECORDED_PARTS};
pub use parse::{parse_all, ManifestParser, PartSpec, MAX_ALTERNATIVES, MAX_LINE};
