//! What [`Client::open`](crate::Client::open) returns: the stream of a URL,
//! whichever layers it goes through.
//!
//! Owns the choice between a plain body and an expanded manifest, and what a
//! caller may ask of either (the announced length, the parts done). The
//! layers themselves are `http::body` and `manifest::expand`.

use crate::engine::segments::SegmentedStream;
use crate::error::Result;
use crate::fetch::continuation::Continuation;
#[cfg(feature = "gzip")]
use crate::http::decoded::GunzipBody;
use crate::http::request::percent_decode;
use crate::http::{HttpBody, Response};
use crate::manifest::expand::{AheadPart, ManifestStream, PartRecord};
use crate::source::{ByteSource, Leftover};
use crate::url::Url;

/// The stream of a URL: a response body, or the stream a manifest stands
/// for, or a large file fetched in pieces and handed on in order. Read it
/// with [`ByteSource::next_chunk`] (each chunk a view into partfetch's own
/// buffer) or as [`std::io::Read`].
pub struct Stream {
    pub(crate) kind: Kind,
    info: Info,
    /// What [`std::io::Read`] has not handed on of the last chunk.
    unread: Leftover,
}

/// What the stream is made of.
// One `Stream` exists per download, so the plain body (the hot, common case)
// stays inline and only the rarer states are boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Kind {
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
    /// A whole resource the server sent gzip-encoded, decoded as it is
    /// read. Its length is not known before the end, and it cannot be
    /// continued: a range of the encoded body is not the file's.
    #[cfg(feature = "gzip")]
    Gzip(Box<GunzipBody<HttpBody>>),
}

/// What the first answer said about the stream.
pub(crate) struct Info {
    url: Url,
    status: u16,
    content_type: Option<String>,
    file_name: Option<String>,
    /// Its `Last-Modified`, in seconds after the epoch.
    last_modified: Option<u64>,
    /// The SHA-256 its `Digest` field gives (RFC 3230).
    sha256: Option<[u8; 32]>,
}

impl Info {
    /// What `response`, a stream's first answer, says.
    pub(crate) fn of(response: &Response) -> Info {
        let url = response.url().clone();
        let file_name = response
            .header("content-disposition")
            .and_then(disposition_file_name)
            .or_else(|| name_in_url(&url));
        Info {
            status: response.status(),
            content_type: response.header("content-type").map(str::to_owned),
            file_name,
            last_modified: response
                .header("last-modified")
                .and_then(crate::http::date::parse),
            url,
            sha256: crate::http::duplicates::sha256(response),
        }
    }

    /// What a 416 telling an empty resource says of it: a 200 of no
    /// type, as a request without `Range` would have been answered; the
    /// 416's own type is that of its error page.
    pub(crate) fn of_empty(response: &Response) -> Info {
        Info {
            status: 200,
            content_type: None,
            ..Info::of(response)
        }
    }
}

/// The `filename` of a `Content-Disposition` header (`filename*`, RFC
/// 6266, first when it is UTF-8), when it is a plain name: a path, `.`,
/// `..` or a control character is no name to save under.
pub(crate) fn disposition_file_name(value: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for param in value.split(';').skip(1) {
        let Some((key, raw)) = param.split_once('=') else {
            continue;
        };
        let raw = raw.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "filename" => plain = Some(raw.trim_matches('"').to_owned()),
            "filename*" => {
                let (charset, rest) = raw.split_once('\'')?;
                let (_, encoded) = rest.split_once('\'')?;
                if charset.eq_ignore_ascii_case("utf-8") {
                    extended = String::from_utf8(percent_decode(encoded)).ok();
                }
            }
            _ => {}
        }
    }
    extended.or(plain).filter(|name| usable_name(name))
}

/// The URL's last path segment, decoded, less a `.parts` suffix.
fn name_in_url(url: &Url) -> Option<String> {
    let name = String::from_utf8(percent_decode(url.last_segment())).ok()?;
    let name = name.strip_suffix(".parts").unwrap_or(&name).to_owned();
    usable_name(&name).then_some(name)
}

fn usable_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

impl Stream {
    /// A stream of `kind`, whose first answer said `info`.
    pub(crate) fn new(kind: Kind, info: Info) -> Stream {
        Stream {
            kind,
            info,
            unread: Leftover::default(),
        }
    }

    /// The URL the first answer came from, after redirects.
    pub fn url(&self) -> &Url {
        &self.info.url
    }

    /// The status of the first answer (200, or 206 for a resource asked
    /// for in pieces or continued).
    pub fn status(&self) -> u16 {
        self.info.status
    }

    /// The first answer's `Content-Type`, when it sent one.
    pub fn content_type(&self) -> Option<&str> {
        self.info.content_type.as_deref()
    }

    /// The SHA-256 the first answer's `Digest` field gives (RFC 3230):
    /// the whole resource's, whatever range the answer carried. A
    /// manifest's is the manifest's own, not its stream's.
    pub fn server_sha256(&self) -> Option<[u8; 32]> {
        self.info.sha256
    }

    /// A name to save the stream under: the `filename` of its
    /// `Content-Disposition`, else the last segment of its URL (without a
    /// `.parts` suffix); `None` when neither is a plain file name.
    pub fn file_name(&self) -> Option<&str> {
        self.info.file_name.as_deref()
    }

    /// Bytes received ahead of those handed on (a manifest's parts fetched
    /// ahead), for the progress to count as they arrive.
    pub(crate) fn bytes_ahead(&self) -> u64 {
        match &self.kind {
            Kind::Manifest(m) => m.bytes_ahead(),
            _ => 0,
        }
    }

    /// A manifest's parts fetched whole ahead of the one being written,
    /// with their bytes, for a download that stopped to keep (see
    /// [`ManifestStream::complete_ahead`]); none for other streams.
    pub(crate) fn complete_ahead(&mut self) -> Vec<(AheadPart, Vec<u8>)> {
        match &mut self.kind {
            Kind::Manifest(m) => m.complete_ahead(),
            _ => Vec::new(),
        }
    }

    /// Has a manifest's stream use the parts an earlier run kept (see
    /// [`ManifestStream::use_kept`]).
    pub(crate) fn use_kept(&mut self, parts: Vec<AheadPart>, file: std::fs::File) {
        if let Kind::Manifest(m) = &mut self.kind {
            m.use_kept(parts, file);
        }
    }

    /// When the resource was last changed (`Last-Modified`, seconds after
    /// the epoch), for FILE's modification time; `None` for a manifest,
    /// whose own date is not its parts'.
    pub(crate) fn last_modified(&self) -> Option<u64> {
        match self.kind {
            Kind::Manifest(_) => None,
            _ => self.info.last_modified,
        }
    }

    /// The large resource fetched in pieces this stream is, to write its
    /// pieces into a store as they arrive
    /// ([`SegmentedDownload`](crate::engine::download::SegmentedDownload));
    /// any other stream comes back as it is.
    #[doc(hidden)]
    pub fn into_segmented(self) -> std::result::Result<SegmentedStream, Box<Stream>> {
        match self.kind {
            Kind::Segmented(segmented) => Ok(*segmented),
            kind => Err(Box::new(Stream { kind, ..self })),
        }
    }

    /// Whether the stream is a manifest's.
    pub fn is_manifest(&self) -> bool {
        matches!(self.kind, Kind::Manifest(_))
    }

    /// The total length, when known before the end: the announced length
    /// of a body; for a manifest, the sum of its parts' `(size=…)` when it
    /// arrived whole and every part has one.
    pub fn length(&self) -> Option<u64> {
        match &self.kind {
            Kind::Body { length, .. } => *length,
            Kind::Manifest(m) => m.length(),
            Kind::Segmented(s) => Some(s.length()),
            #[cfg(feature = "gzip")]
            Kind::Gzip(_) => None,
        }
    }

    /// The `If-Range` value that lets a later request continue this
    /// resource where it stopped (`None` for a manifest, which cannot be
    /// continued at an offset, or when the server gave no validator).
    #[doc(hidden)]
    pub fn validator(&self) -> Option<&str> {
        match &self.kind {
            Kind::Body { validator, .. } => validator.as_deref(),
            Kind::Manifest(_) => None,
            Kind::Segmented(s) => s.validator(),
            #[cfg(feature = "gzip")]
            Kind::Gzip(_) => None,
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
    #[doc(hidden)]
    pub fn record_parts(&mut self) {
        if let Kind::Manifest(m) = &mut self.kind {
            m.record_parts();
        }
    }

    /// Whether a download of this stream can be continued later: at an
    /// offset, or (a manifest) after its completed parts, which it must
    /// be recording ([`Stream::record_parts`]).
    #[doc(hidden)]
    pub fn is_resumable(&self) -> bool {
        match &self.kind {
            Kind::Manifest(m) => m.completed_parts().is_some(),
            // Started again from the first byte when cut: nothing to keep.
            #[cfg(feature = "gzip")]
            Kind::Gzip(_) => false,
            _ => true,
        }
    }

    /// For a manifest that records them ([`Stream::record_parts`]), the
    /// parts streamed to their end so far, which a later run can skip
    /// ([`Client::resume_manifest`](crate::Client::resume_manifest)).
    #[doc(hidden)]
    pub fn completed_parts(&self) -> Option<&[PartRecord]> {
        match &self.kind {
            Kind::Manifest(m) => m.completed_parts(),
            _ => None,
        }
    }

    /// What runs in parallel now: for a resource fetched in pieces, the
    /// pieces being fetched and the sources still in use; for a manifest,
    /// the parts being fetched ahead (and no source count). `None` for a
    /// single stream.
    pub fn activity(&self) -> Option<(usize, Option<usize>)> {
        match &self.kind {
            Kind::Body { .. } => None,
            Kind::Manifest(m) => Some((m.parts_in_flight(), None)),
            Kind::Segmented(s) => s.activity().map(|(c, n)| (c, Some(n))),
            #[cfg(feature = "gzip")]
            Kind::Gzip(_) => None,
        }
    }

    /// True when the next `next_chunk` hands on bytes without waiting for
    /// the network; false when it would wait, at the end, and where asking
    /// would itself mean waiting. A consumer that holds bytes back (a
    /// write buffer) passes them on when this is false, so bytes that
    /// arrived before a stall are not held through it.
    pub fn has_chunk_ready(&mut self) -> bool {
        match &mut self.kind {
            Kind::Body { body, .. } => body.has_payload_ready(),
            Kind::Manifest(m) => m.has_chunk_ready(),
            Kind::Segmented(s) => s.has_chunk_ready(),
            #[cfg(feature = "gzip")]
            Kind::Gzip(g) => g.has_pending() || g.source_mut().has_payload_ready(),
        }
    }

    /// For a manifest, the parts streamed to their end so far.
    pub fn parts_done(&self) -> Option<u64> {
        match &self.kind {
            Kind::Manifest(m) => Some(m.parts_done()),
            _ => None,
        }
    }
}

impl ByteSource for Stream {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        self.kind.next_chunk()
    }
}

impl ByteSource for Kind {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        match self {
            Kind::Body {
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
            Kind::Manifest(m) => m.next_chunk(),
            Kind::Segmented(s) => s.next_chunk(),
            #[cfg(feature = "gzip")]
            Kind::Gzip(g) => g.next_chunk(),
        }
    }
}

/// Reads the stream as any [`std::io::Read`]: bytes of a chunk that do not
/// fit the caller's buffer are kept for the next read (one copy of that
/// rest; [`ByteSource::next_chunk`] makes none). A failure is an
/// `io::Error` that carries the partfetch [`Error`](crate::Error).
impl std::io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.unread.read(&mut self.kind, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_comes_from_the_disposition_else_the_url_and_is_never_a_path() {
        let name = disposition_file_name;
        assert_eq!(
            name("attachment; filename=\"report.pdf\"").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            name("attachment; filename=a.txt; filename*=UTF-8''%C3%A9t%C3%A9.txt").as_deref(),
            Some("été.txt")
        );
        for hostile in ["../etc/passwd", "a/b", "..", "x\u{7}y", "a\\b"] {
            assert_eq!(name(&format!("attachment; filename=\"{hostile}\"")), None);
        }
        let url = |u: &str| name_in_url(&Url::parse(u).unwrap());
        assert_eq!(url("http://h/film.mkv.parts").as_deref(), Some("film.mkv"));
        assert_eq!(url("http://h/my%20file").as_deref(), Some("my file"));
        assert_eq!(url("http://h/dir/"), None);
        assert_eq!(url("http://h/a%2Fb"), None);
    }
}
