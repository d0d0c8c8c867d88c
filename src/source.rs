//! The seam every layer composes over: a pull-based stream of byte chunks.
//!
//! A [`ByteSource`] lends the consumer a slice of its own buffer, valid until
//! the next call. Pulling (rather than pushing) lets a slow consumer slow the
//! socket through TCP back-pressure, so memory stays flat however long the
//! stream is; lending (rather than copying) lets an HTTP body reach a file
//! without a copy per layer.
//!
//! This module owns the trait and the adapters that every layer shares:
//! [`SourceReader`] (read any source as [`std::io::Read`]), [`FixedChunks`]
//! (chunks of exactly N bytes, the `download_file` contract), [`SliceSource`]
//! (bytes in memory) and [`Take`] (the first N bytes of a source).
//! What the bytes mean — HTTP framing, manifests, sequences — belongs to the
//! layers that implement the trait.

use crate::error::{Error, ErrorKind, Result};

/// A stream of bytes that the consumer pulls, chunk by chunk.
pub trait ByteSource {
    /// The next chunk, or `None` at the end. The slice is valid until the next
    /// call. A chunk is never empty; an error ends the stream.
    fn next_chunk(&mut self) -> Result<Option<&[u8]>>;
}

impl<S: ByteSource + ?Sized> ByteSource for Box<S> {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        (**self).next_chunk()
    }
}

impl<S: ByteSource + ?Sized> ByteSource for &mut S {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        (**self).next_chunk()
    }
}

/// Bytes held in memory, handed out in chunks of at most `chunk_len`.
#[derive(Debug, Clone)]
pub struct SliceSource<B> {
    bytes: B,
    position: usize,
    chunk_len: usize,
}

impl<B: AsRef<[u8]>> SliceSource<B> {
    /// All of `bytes` in one chunk.
    pub fn new(bytes: B) -> SliceSource<B> {
        SliceSource {
            bytes,
            position: 0,
            chunk_len: usize::MAX,
        }
    }

    /// `bytes` in chunks of at most `chunk_len` bytes (at least one).
    pub fn chunked(bytes: B, chunk_len: usize) -> SliceSource<B> {
        SliceSource {
            bytes,
            position: 0,
            chunk_len: chunk_len.max(1),
        }
    }
}

impl<B: AsRef<[u8]>> ByteSource for SliceSource<B> {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        let rest = &self.bytes.as_ref()[self.position..];
        if rest.is_empty() {
            return Ok(None);
        }
        let len = rest.len().min(self.chunk_len);
        self.position += len;
        Ok(Some(&rest[..len]))
    }
}

/// Reads a [`ByteSource`] through [`std::io::Read`].
///
/// A chunk larger than the caller's buffer is kept and handed out over
/// several reads, which costs one copy of that remainder.
pub struct SourceReader<S> {
    source: S,
    leftover: Leftover,
}

/// The bytes of a chunk that a reader's buffer could not take, handed out
/// by the next reads: what turns a [`ByteSource`] into [`std::io::Read`].
#[derive(Default)]
pub(crate) struct Leftover {
    bytes: Vec<u8>,
    from: usize,
}

impl Leftover {
    /// Fills `buf` from what is left, else from `source`'s next chunk,
    /// keeping what does not fit.
    pub(crate) fn read(
        &mut self,
        source: &mut impl ByteSource,
        buf: &mut [u8],
    ) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.from < self.bytes.len() {
            let rest = &self.bytes[self.from..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.from += n;
            return Ok(n);
        }
        match source.next_chunk()? {
            None => Ok(0),
            Some(chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                self.bytes.clear();
                self.bytes.extend_from_slice(&chunk[n..]);
                self.from = 0;
                Ok(n)
            }
        }
    }
}

impl<S: ByteSource> SourceReader<S> {
    /// Wraps `source`.
    pub fn new(source: S) -> SourceReader<S> {
        SourceReader {
            source,
            leftover: Leftover::default(),
        }
    }

    /// The wrapped source (bytes kept from a partly read chunk are lost).
    pub fn into_inner(self) -> S {
        self.source
    }
}

impl<S: ByteSource> std::io::Read for SourceReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.leftover.read(&mut self.source, buf)
    }
}

/// Chunks of exactly `chunk_size` bytes, except the last, which may be shorter.
///
/// Iterating yields owned chunks, so they can be kept or sent to a thread;
/// the buffer is reused only when the caller drops the previous chunk first
/// (see [`FixedChunks::next_into`] for a borrowing form with no allocation).
pub struct FixedChunks<S> {
    source: S,
    chunk_size: usize,
    pending: Vec<u8>,
    pending_pos: usize,
    ended: bool,
}

impl<S: ByteSource> FixedChunks<S> {
    /// Wraps `source`; a `chunk_size` of 0 is taken as 1.
    pub fn new(source: S, chunk_size: usize) -> FixedChunks<S> {
        FixedChunks {
            source,
            chunk_size: chunk_size.max(1),
            pending: Vec::new(),
            pending_pos: 0,
            ended: false,
        }
    }

    /// Fills `out` (cleared first) with the next chunk; false at the end.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        while out.len() < self.chunk_size {
            let want = self.chunk_size - out.len();
            if self.pending_pos < self.pending.len() {
                let rest = &self.pending[self.pending_pos..];
                let n = rest.len().min(want);
                out.extend_from_slice(&rest[..n]);
                self.pending_pos += n;
                continue;
            }
            if self.ended {
                break;
            }
            match self.source.next_chunk()? {
                None => self.ended = true,
                Some(chunk) => {
                    let n = chunk.len().min(want);
                    out.extend_from_slice(&chunk[..n]);
                    self.pending.clear();
                    self.pending.extend_from_slice(&chunk[n..]);
                    self.pending_pos = 0;
                }
            }
        }
        Ok(!out.is_empty())
    }
}

impl<S: ByteSource> Iterator for FixedChunks<S> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        let mut out = Vec::with_capacity(self.chunk_size.min(1 << 20));
        match self.next_into(&mut out) {
            Ok(true) => Some(Ok(out)),
            Ok(false) => None,
            Err(err) => {
                self.ended = true;
                self.pending.clear();
                Some(Err(err))
            }
        }
    }
}

/// The first `limit` bytes of a source; the rest is left unread in it.
pub struct Take<S> {
    source: S,
    remaining: u64,
    /// Bytes of the inner source's current chunk beyond the limit are kept
    /// here so that [`Take::into_inner`] loses nothing.
    overflow: Vec<u8>,
    strict: Option<ErrorKind>,
}

impl<S: ByteSource> Take<S> {
    /// At most `limit` bytes of `source`.
    pub fn new(source: S, limit: u64) -> Take<S> {
        Take {
            source,
            remaining: limit,
            overflow: Vec::new(),
            strict: None,
        }
    }

    /// Exactly `limit` bytes: a source that ends sooner is an error of `kind`.
    pub fn exact(source: S, limit: u64, kind: ErrorKind) -> Take<S> {
        Take {
            strict: Some(kind),
            ..Take::new(source, limit)
        }
    }

    /// How many bytes are still to come before the limit.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The inner source, and the bytes it already handed past the limit.
    pub fn into_inner(self) -> (S, Vec<u8>) {
        (self.source, self.overflow)
    }
}

impl<S: ByteSource> ByteSource for Take<S> {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        match self.source.next_chunk()? {
            None => match self.strict {
                Some(kind) => Err(Error::new(
                    kind,
                    format!("stream ended {} bytes short", self.remaining),
                )),
                None => {
                    self.remaining = 0;
                    Ok(None)
                }
            },
            Some(chunk) => {
                let n = (chunk.len() as u64).min(self.remaining) as usize;
                self.remaining -= n as u64;
                if n < chunk.len() {
                    self.overflow.extend_from_slice(&chunk[n..]);
                }
                Ok(Some(&chunk[..n]))
            }
        }
    }
}

/// Pulls every chunk of `source` into `sink`; returns the number of bytes.
pub fn copy_to(source: &mut dyn ByteSource, sink: &mut dyn std::io::Write) -> Result<u64> {
    let mut total = 0u64;
    while let Some(chunk) = source.next_chunk()? {
        sink.write_all(chunk)
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        total += chunk.len() as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn fixed_chunks_are_exact_except_the_last() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for inner in [1, 7, 64, 333, 1000, 5000] {
            let chunks: Vec<Vec<u8>> = FixedChunks::new(SliceSource::chunked(&data, inner), 128)
                .collect::<Result<_>>()
                .unwrap();
            assert_eq!(chunks.len(), 8, "inner chunking {inner}");
            assert!(chunks[..7].iter().all(|c| c.len() == 128));
            assert_eq!(chunks[7].len(), 1000 - 7 * 128);
            assert_eq!(chunks.concat(), data);
        }
    }

    #[test]
    fn fixed_chunks_of_an_empty_source_yield_nothing() {
        let mut chunks = FixedChunks::new(SliceSource::new(Vec::new()), 10);
        assert!(chunks.next().is_none());
    }

    #[test]
    fn reader_hands_out_large_chunks_over_small_reads() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut reader = SourceReader::new(SliceSource::chunked(&data, 30));
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
    }

    #[test]
    fn take_stops_at_the_limit_and_keeps_the_overflow() {
        let mut take = Take::new(SliceSource::chunked(b"abcdefgh".to_vec(), 3), 4);
        assert_eq!(take.next_chunk().unwrap(), Some(&b"abc"[..]));
        assert_eq!(take.next_chunk().unwrap(), Some(&b"d"[..]));
        assert_eq!(take.next_chunk().unwrap(), None);
        let (mut inner, overflow) = take.into_inner();
        assert_eq!(overflow, b"ef");
        assert_eq!(inner.next_chunk().unwrap(), Some(&b"gh"[..]));
    }

    #[test]
    fn exact_take_fails_on_a_short_source() {
        let mut take = Take::exact(SliceSource::new(b"ab".to_vec()), 5, ErrorKind::Integrity);
        assert!(take.next_chunk().unwrap().is_some());
        let err = take.next_chunk().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(err.message().contains("3 bytes short"));
    }
}
