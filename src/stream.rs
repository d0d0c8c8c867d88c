//! What [`Client::open`](crate::Client::open) returns: the stream of a URL,
//! whichever layers it goes through.
//!
//! Owns the choice between a plain body and an expanded manifest, and what a
//! caller may ask of either (the announced length, the parts done). The
//! layers themselves are `http::body` and `manifest::expand`.

use crate::engine::segments::SegmentedStream;
use crate::error::Result;
use crate::fetch::continuation::Continuation;
use crate::http::HttpBody;
use crate::manifest::expand::{ManifestStream, PartRecord};
use crate::source::ByteSource;

/// The stream of a URL: a response body, or the stream a manifest stands for.
// One `Stream` exists per download, so the plain body (the hot, common case)
// stays inline and only the rarer manifest state is boxed.
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
pub enum Stream {
    /// A plain resource.
    Body {
        /// Its body.
        body: HttpBody,
        /// Its `Content-Length`, when announced.
        length: Option<u64>,
        /// What `If-Range` may carry to continue it later: its strong
        /// `ETag`, else its `Last-Modified`.
        validator: Option<String>,
        /// How the rest is asked for again when the body is cut midway;
        /// `None` when it cannot be (no validator, no length).
        continuation: Option<Continuation>,
    },
    /// A manifest, expanded part by part.
    Manifest(Box<ManifestStream>),
    /// A large resource fetched as pieces over several connections.
    Segmented(Box<SegmentedStream>),
}

impl Stream {
    /// The total length, when known before the end.
    pub fn length(&self) -> Option<u64> {
        match self {
            Stream::Body { length, .. } => *length,
            Stream::Manifest(_) => None,
            Stream::Segmented(s) => Some(s.length()),
        }
    }

    /// The `If-Range` value that lets a later request continue this
    /// resource where it stopped (`None` for a manifest, which cannot be
    /// continued at an offset, or when the server gave no validator).
    pub fn validator(&self) -> Option<&str> {
        match self {
            Stream::Body { validator, .. } => validator.as_deref(),
            Stream::Manifest(_) => None,
            Stream::Segmented(s) => s.validator(),
        }
    }

    /// Asks a manifest's stream to record the parts it completes, for
    /// [`Stream::completed_parts`]: a caller saving the stream to a file
    /// calls this before reading, so that a later run can skip them. A
    /// stream read once, to standard output say, is never resumed and
    /// records nothing, so it runs in constant memory however many parts
    /// its manifests have. Only the first
    /// [`MAX_RECORDED_PARTS`](crate::manifest::expand::MAX_RECORDED_PARTS)
    /// are recorded: a longer stream resumes after them.
    /// Nothing to do for other streams: they resume at an offset.
    pub fn record_parts(&mut self) {
        if let Stream::Manifest(m) = self {
            m.record_parts();
        }
    }

    /// Whether a download of this stream can be continued later: at an
    /// offset, or (a manifest) after its completed parts, which it must
    /// be recording ([`Stream::record_parts`]).
    pub fn is_resumable(&self) -> bool {
        match self {
            Stream::Manifest(m) => m.completed_parts().is_some(),
            _ => true,
        }
    }

    /// For a manifest that records them ([`Stream::record_parts`]), the
    /// parts streamed to their end so far, which a later run can skip
    /// ([`Client::resume_manifest`](crate::Client::resume_manifest)).
    pub fn completed_parts(&self) -> Option<&[PartRecord]> {
        match self {
            Stream::Manifest(m) => m.completed_parts(),
            _ => None,
        }
    }

    /// What runs in parallel now: for a resource fetched in pieces, the
    /// pieces being fetched and the sources still in use; for a manifest,
    /// the parts being fetched ahead (and no source count). `None` for a
    /// single stream.
    pub fn activity(&self) -> Option<(usize, Option<usize>)> {
        match self {
            Stream::Body { .. } => None,
            Stream::Manifest(m) => Some((m.parts_in_flight(), None)),
            Stream::Segmented(s) => s.activity().map(|(c, n)| (c, Some(n))),
        }
    }

    /// True when the next `next_chunk` hands on bytes without waiting for
    /// the network; false when it would wait, at the end, and where asking
    /// would itself mean waiting. A consumer that holds bytes back (a
    /// write buffer) passes them on when this is false, so bytes that
    /// arrived before a stall are not held through it.
    pub fn has_chunk_ready(&mut self) -> bool {
        match self {
            Stream::Body { body, .. } => body.has_payload_ready(),
            Stream::Manifest(m) => m.has_chunk_ready(),
            Stream::Segmented(s) => s.has_chunk_ready(),
        }
    }

    /// For a manifest, the parts streamed to their end so far.
    pub fn parts_done(&self) -> Option<u64> {
        match self {
            Stream::Body { .. } | Stream::Segmented(_) => None,
            Stream::Manifest(m) => Some(m.parts_done()),
        }
    }
}

impl ByteSource for Stream {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        match self {
            Stream::Body {
                body, continuation, ..
            } => {
                loop {
                    match body.next_chunk() {
                        Ok(Some(chunk)) => {
                            let n = chunk.len();
                            if let Some(continuation) = continuation {
                                continuation.advance(n);
                            }
                            break;
                        }
                        Ok(None) => return Ok(None),
                        Err(err) => match continuation {
                            Some(continuation) => *body = continuation.reopen(err)?,
                            None => return Err(err),
                        },
                    }
                }
                Ok(Some(body.last_chunk()))
            }
            Stream::Manifest(m) => m.next_chunk(),
            Stream::Segmented(s) => s.next_chunk(),
        }
    }
}
