//! A gzip-encoded body read as the bytes it stands for.
//!
//! Owns pulling the encoded chunks from any [`ByteSource`] (an HTTP body),
//! pushing them through [`Gunzip`] into a buffer of its own and lending the
//! decoded bytes on. Memory stays flat: one output buffer of
//! [`DECODED_CHUNK`] bytes, the inflater's window, and at most one encoded
//! chunk the output had no room for. What gzip is, is [`super::gzip`]'s.

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::http::gzip::{Gunzip, GzipError};
use crate::source::ByteSource;

/// The most decoded bytes handed on at once: the adapter's one sizeable
/// buffer, large enough that the calls per MiB stay few (text inflates
/// four to ten times, so one encoded read fills it more than once).
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
    /// Checked before each decoded chunk: a small encoded chunk, read at
    /// once, may stand for a great many decoded ones (1000 to 1 for
    /// zeros), which the source's own check at its reads would not stop.
    cancel: Option<Cancel>,
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
            cancel: None,
        }
    }

    /// Stops with the cancelled error once `cancel` is cancelled, before
    /// the next decoded chunk.
    pub fn with_cancel(mut self, cancel: Cancel) -> GunzipBody<S> {
        self.cancel = Some(cancel);
        self
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
                // Exact, so that it never holds more than the largest chunk.
                self.pending.reserve_exact(chunk.len() - used);
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
        if let Some(cancel) = &self.cancel {
            cancel.check()?;
        }
        match self.fill()? {
            0 => Ok(None),
            n => Ok(Some(&self.out[..n])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::gzip::tests::member;
    use crate::source::SliceSource;

    fn read_all(source: &mut impl ByteSource) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = source.next_chunk()? {
            assert!(!chunk.is_empty() && chunk.len() <= DECODED_CHUNK);
            out.extend_from_slice(chunk);
        }
        Ok(out)
    }

    #[test]
    fn a_body_decodes_whole_in_chunks_of_any_size() {
        let data: Vec<u8> = (0..400_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let gz = member(&data, 1 << 3);
        for chunk in [1, 7, 1000, 1 << 20] {
            let mut body = GunzipBody::new(SliceSource::chunked(&gz, chunk), "http://h/x");
            assert_eq!(read_all(&mut body).unwrap(), data, "chunks of {chunk}");
            assert!(
                body.next_chunk().unwrap().is_none(),
                "the end stays the end"
            );
        }
    }

    #[test]
    fn a_cut_body_is_a_protocol_error_naming_its_url() {
        let gz = member(&[7; 100_000], 0);
        let mut body = GunzipBody::new(SliceSource::new(&gz[..gz.len() - 3]), "http://h/x");
        let err = read_all(&mut body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert_eq!(err.subject(), Some("http://h/x"));
        assert!(err.message().contains("ends early"), "{err}");
    }

    #[test]
    fn a_cancel_stops_decoding_of_bytes_already_received() {
        let gz = member(&vec![0; 4 << 20], 0);
        let cancel = Cancel::new();
        let mut body =
            GunzipBody::new(SliceSource::new(&gz), "http://h/z").with_cancel(cancel.clone());
        assert!(body.next_chunk().unwrap().is_some());
        cancel.cancel();
        let err = body.next_chunk().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
    }

    #[test]
    fn a_hundred_mib_of_zeros_decode_within_fixed_buffers() {
        // 100 MiB of zeros deflate to about 100 KiB: the output is what
        // could pile up, and nothing of it may be kept.
        const LEN: usize = 100 << 20;
        let zeros = vec![0u8; LEN];
        let deflated = miniz_oxide::deflate::compress_to_vec(&zeros, 1);
        drop(zeros);
        let gz = crate::http::gzip::tests::member_of(&deflated, &[], 0);
        // The trailer of an empty member, rewritten for the zeros.
        let mut gz = gz[..gz.len() - 8].to_vec();
        let mut crc = crate::util::crc32::Crc32::new();
        for _ in 0..LEN / DECODED_CHUNK {
            crc.update(&[0; DECODED_CHUNK]);
        }
        gz.extend_from_slice(&crc.value().to_le_bytes());
        gz.extend_from_slice(&(LEN as u32).to_le_bytes());
        const SOURCE_CHUNK: usize = 16 * 1024;
        let mut body = GunzipBody::new(SliceSource::chunked(&gz, SOURCE_CHUNK), "http://h/z");
        let mut total = 0;
        while let Some(chunk) = body.next_chunk().unwrap() {
            assert!(chunk.iter().all(|&b| b == 0));
            total += chunk.len();
            // What the adapter holds stays within its fixed bounds: the
            // output buffer, and at most one source chunk not yet used.
            assert_eq!(body.out.capacity(), DECODED_CHUNK);
            assert!(
                body.pending.capacity() <= SOURCE_CHUNK,
                "{}",
                body.pending.capacity()
            );
        }
        assert_eq!(total, LEN);
    }
}
