//! A small document that describes a download (a `.torrent`, a `.meta4`),
//! read whole from a file or a URL: its parser needs all of it, and a
//! bound keeps a hostile source from filling memory.

use std::io::Read;

use crate::error::{Error, Result};
use crate::fetch::Context;

/// The document `source` names, a file's path or an `http(s)` URL
/// fetched through `ctx`, read as [`read_bounded`] does.
pub(crate) fn load(ctx: &Context, source: &str, limit: usize) -> Result<Vec<u8>> {
    if is_url(source) {
        read_bounded(crate::open::open_mirrored(ctx, source, &[])?, source, limit)
    } else {
        let file = std::fs::File::open(source).map_err(|e| Error::io(e, source))?;
        read_bounded(file, source, limit)
    }
}

/// Reads at most `limit` bytes and one more, so that a longer document is
/// told apart and refused by its parser.
pub(crate) fn read_bounded(from: impl Read, source: &str, limit: usize) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    from.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(e, source))?;
    Ok(bytes)
}

/// Whether `source` is a URL rather than a file's path.
fn is_url(source: &str) -> bool {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}
