//! Where pieces go when they need not be handed on in order: a file
//! written at each piece's own offset.
//!
//! Owns the [`PieceStore`] trait. A download to a file does not need the
//! reorder window a stream to standard output does: each piece can be
//! written where it belongs the moment it arrives, so a slow source holding
//! one piece never holds the others back, and what is on disk after an
//! interruption is a set of pieces, not a prefix
//! ([`PieceSet`](crate::pieces::piece_set::PieceSet)).

use std::fs::File;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Takes bytes at their offsets in the resource, from several threads.
///
/// A piece fetched twice (a copy of a stalled piece) may be written twice
/// with the same bytes; a store need not guard against that.
pub trait PieceStore: Send + Sync {
    /// Writes all of `bytes` at `offset`.
    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()>;
}

/// A file written with positional writes.
pub struct FileStore {
    file: File,
    path: PathBuf,
}

impl FileStore {
    /// Writes into `file`, named `path` in errors.
    pub fn new(file: File, path: impl Into<PathBuf>) -> FileStore {
        FileStore {
            file,
            path: path.into(),
        }
    }

    /// The file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl PieceStore for FileStore {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        write_all_at(&self.file, offset, bytes).map_err(|e| Error::io(e, self.path.display()))
    }
}

/// Writes all of `bytes` at `offset`, leaving the file's cursor alone, so
/// several threads can write one file at once.
#[cfg(unix)]
pub fn write_all_at(file: &File, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

/// Writes all of `bytes` at `offset`.
#[cfg(windows)]
pub fn write_all_at(file: &File, mut offset: u64, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Reads exactly `buffer.len()` bytes at `offset` (to hash what is on
/// disk without disturbing the writers).
#[cfg(unix)]
pub fn read_exact_at(file: &File, offset: u64, buffer: &mut [u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

/// Reads exactly `buffer.len()` bytes at `offset`.
#[cfg(windows)]
pub fn read_exact_at(file: &File, mut offset: u64, mut buffer: &mut [u8]) -> std::io::Result<()> {
    while !buffer.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buffer, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer = &mut buffer[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_written_out_of_order_land_at_their_offsets() {
        let path = std::env::temp_dir().join(format!("pf-store-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let store = FileStore::new(file, &path);
        store.write_at(6, b"world").unwrap();
        store.write_at(0, b"hello ").unwrap();
        let mut back = [0; 11];
        read_exact_at(store.file(), 0, &mut back).unwrap();
        assert_eq!(&back, b"hello world");
        std::fs::remove_file(&path).unwrap();
    }
}
