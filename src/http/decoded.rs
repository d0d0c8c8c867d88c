//! A gzip-encoded body read as the bytes it stands for.
//!
//! Owns pulling the encoded chunks from any [`ByteSource`] (an HTTP body),
//! pushing them through [`Gunzip`] into a buffer of its own and lending the
//! decoded bytes on. Memory stays flat: one output buffer of
//! [`DECODED_CHUNK`] bytes, the inflater's window, and at most one encoded
//! chunk the output had no room for. What gzip is, is [`super::gzip`]'s.

use crate::error::{Error, ErrorKind, Result};
use crate::http::gzip::{Gunzip, GzipError};
use crate::source::ByteSource;

/// The most decoded bytes handed on at once: large enough that a chunk
/// costs little per call, small next to what a body reads at once after
/// inflating (text commonly shrinks four to ten times).
pub const DECODED_CHUNK: usize = 64 * 1024;

/// The decoded stream of the gzip-encoded `source`.
pub struct GunzipBody<S> {
    source: S,
    gunzip: Gunzip,
    out: Vec<u8>,
    /// Encoded bytes taken from the source that the decoder has not used.
    pending: Vec<u8>,
    /// How much of `pending` was used.
    pending_used: usize,
    /// Named in errors: the URL, without credentials.
    subject: String,
    /// The source said it has no more.
    source_ended: bool,
}

impl<S: ByteSource> GunzipBody<S> {
    /// Decodes `source`; errors name `subject`.
    pub fn new(source: S, subject: impl Into<String>) -> GunzipBody<S> {
        GunzipBody {
            source,
            gunzip: Gunzip::new(),
            out: vec![0; DECODED_CHUNK],
            pending: Vec::new(),
            pending_used: 0,
            subject: subject.into(),
            source_ended: false,
        }
    }

    /// The encoded source.
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// Whether encoded bytes taken from the source are still to be decoded.
    pub fn has_pending(&self) -> bool {
        self.pending_used < self.pending.len()
    }

    /// Decodes the next bytes into `out`: how many, 0 at the end.
    fn fill(&mut self) -> Result<usize> {
        let failed = |subject: &str, err: GzipError| {
            Error::new(
                ErrorKind::Protocol,
                format!("the gzip-encoded body cannot be decoded: {err}"),
            )
            .with_source(err)
            .with_subject(subject)
        };
        loop {
            if self.has_pending() {
                let input = &self.pending[self.pending_used..];
                let (_, used, written) = self
                    .gunzip
                    .decode(input, &mut self.out)
                    .map_err(|e| failed(&self.subject, e))?;
                self.pending_used += used;
                if !self.has_pending() {
                    self.pending.clear();
                    self.pending_used = 0;
                }
                if written > 0 {
                    return Ok(written);
                }
                continue;
            }
            if self.source_ended {
                // The inflater may still hold bytes it had no room for.
                let (_, _, written) = self
                    .gunzip
                    .decode(&[], &mut self.out)
                    .map_err(|e| failed(&self.subject, e))?;
                if written == 0 {
                    self.gunzip.finish().map_err(|e| failed(&self.subject, e))?;
                }
                return Ok(written);
            }
            let Some(chunk) = self.source.next_chunk()? else {
                self.source_ended = true;
                continue;
            };
            let (_, used, written) = self
                .gunzip
                .decode(chunk, &mut self.out)
                .map_err(|e| failed(&self.subject, e))?;
            if used < chunk.len() {
                self.pending.extend_from_slice(&chunk[used..]);
            }
            if written > 0 {
                return Ok(written);
            }
        }
    }
}

impl<S: ByteSource> ByteSource for GunzipBody<S> {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        match self.fill()? {
            0 => Ok(None),
            n => Ok(Some(&self.out[..n])),
        }
    }
}
