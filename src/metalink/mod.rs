//! Metalink v4 (RFC 5854): a document listing files, each with its
//! mirrors, size and hashes, as mirror networks publish them.
//!
//! [`xml`] reads the subset of XML the format needs, refusing what makes
//! XML hostile (entity declarations, deep nesting, huge values);
//! [`parse`] turns the tree into a [`Metalink`], whose file names are
//! checked as a torrent's paths are. Downloading the files is the
//! download builder's (`Client::metalink`); docs/metalink.md says what
//! is supported. RFC 6249's `Link: rel=duplicate` mirrors and RFC 3230's
//! `Digest` on a plain download are `http::duplicates`'s.

pub mod parse;
pub mod xml;

pub use parse::{
    Metalink, MetalinkError, MetalinkFile, PieceHash, Pieces, MAX_DOCUMENT_BYTES, MAX_FILES,
    MAX_URLS, NAMESPACE,
};
