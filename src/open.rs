//! How a URL becomes a [`Stream`]: the first request (for the first piece
//! only, when the download may be split), then one of the stream's forms —
//! a body, pieces over several connections, a manifest's parts — and how
//! an earlier run's download continues (`resume`, `resume_pieces`,
//! `resume_manifest`).
//!
//! The [`Client`](crate::Client)'s entry points open through here, and
//! so does saving a download to a file.

use std::sync::Arc;

use crate::engine::download::SegmentedDownload;
use crate::engine::segments::{SegmentedStream, FIRST_ANSWER};
use crate::engine::HTTP_PIECE;
use crate::error::{Error, ErrorKind, Result};
use crate::fetch::continuation::Continuation;
use crate::fetch::Context;
use crate::http::exchange::{Request, Response};
use crate::http::ranged::{first_piece_request, FirstPiece, Resource};
use crate::http::validator::{same_version, validator_of};
use crate::manifest::expand::{is_manifest, ManifestStream, PartRecord};
use crate::pieces::{Layout, PieceSet, PieceStore};
use crate::stream::{Info, Kind, Stream};
use crate::url::Url;

/// Whether the server's `url` is the `length` bytes of a complete FILE
/// whose modification time, `modified` seconds after the epoch, is the
/// `Last-Modified` it was saved with: one request for the bytes after
/// FILE's end, `If-Range` that date. The current version, of that length,
/// has no bytes there (`416`, `Content-Range: bytes */LENGTH`); another
/// version answers whole, and is not read. A manifest is never complete
/// by this test (its own date is not its parts').
pub fn is_complete(ctx: &Context, url: &str, length: u64, modified: u64) -> Result<bool> {
    let url = Url::parse(url)?;
    if url.path().ends_with(".parts") {
        return Ok(false);
    }
    let request = Request::get(url)
        .range(length, None)
        .if_range(crate::http::date::format(modified));
    let response = ctx.send(&request)?;
    Ok(response.unsatisfied_length() == Some(length))
}

/// Where a resumed download continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// At the offset asked for.
    AtOffset,
    /// From the first byte: the resource changed, or the server ignores
    /// `Range`.
    FromStart,
}

/// What [`Client::resume_pieces`](crate::Client::resume_pieces) found.
// One per download: the large variant is not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum ResumedPieces {
    /// The resource is the one the earlier run wrote: the missing pieces
    /// are being fetched into the store.
    Continued(SegmentedDownload),
    /// It changed, or its server no longer honours `Range`: the whole
    /// resource, from the first byte.
    Changed(Stream),
}

/// [`Client::open_mirrored`](crate::Client::open_mirrored), in `ctx`.
pub fn open_mirrored(ctx: &Context, url: &str, mirrors: &[&str]) -> Result<Stream> {
    let mut sources = vec![Url::parse(url)?];
    for mirror in mirrors {
        sources.push(Url::parse(mirror)?);
    }
    let url = sources.remove(0);
    let client = ctx.bound_to(&url);
    // With mirrors the file is fetched in pieces from several sources,
    // which only the stored bytes can be.
    #[cfg(feature = "gzip")]
    if client.compressed && sources.is_empty() && !url.path().ends_with(".parts") {
        return open_compressed(&client, url);
    }
    if (client.connections > 1 || !sources.is_empty()) && !url.path().ends_with(".parts") {
        return open_segmented(&client, url, sources);
    }
    let response = client.get_retrying(&url)?;
    stream_of(&client, url, response)
}

/// Opens `url` asking for its first [`FIRST_ANSWER`] bytes: a server that
/// honours `Range` tells the length, and a larger resource is then fetched
/// over several connections; otherwise the answer streams as usual.
fn open_segmented(ctx: &Context, mut url: Url, mut mirrors: Vec<Url>) -> Result<Stream> {
    let mut causes = Vec::new();
    let response = loop {
        let request = first_piece_request(&url, FIRST_ANSWER);
        // With a mirror left to take its place, a source that fails
        // is not waited for.
        let attempts = if mirrors.is_empty() { ctx.retries } else { 1 };
        match ctx.send_attempts(&request, &[416], attempts) {
            Ok(response) => break response,
            Err(err) if mirrors.is_empty() && causes.is_empty() => return Err(err),
            Err(err) => {
                causes.push(err.with_subject(url.redacted()));
                if mirrors.is_empty() {
                    let kind = causes[0].kind();
                    return Err(Error::new(kind, "no source answered").with_causes(causes));
                }
                url = mirrors.remove(0);
            }
        }
    };
    let first = FirstPiece::of(&response, FIRST_ANSWER, HTTP_PIECE);
    // A 416's body is its error page, not the resource's.
    if response.status() != 416 {
        ctx.warn_if_encoded(&response);
    }
    let (resource, answered) = match first {
        FirstPiece::Empty => return Ok(empty_stream(response)),
        FirstPiece::Pieces(resource, answered) => (resource, answered),
        FirstPiece::Whole => return stream_of(ctx, url, response),
        FirstPiece::AskAgain => {
            drop(response);
            let response = ctx.get_retrying(&url)?;
            return stream_of(ctx, url, response);
        }
    };
    if is_manifest(&url, &response) {
        // A manifest is read whole, never in pieces: ask again.
        if answered < resource.length {
            let response = ctx.get_retrying(&url)?;
            return stream_of(ctx, url, response);
        }
        return stream_of(ctx, url, response);
    }
    // RFC 6249: a server may name mirrors of what it serves; taken when
    // the caller named none.
    if mirrors.is_empty() {
        mirrors = crate::http::duplicates::duplicates(&response);
    }
    // All of it came with the first answer: one stream, unless there are
    // mirrors to take over the pieces of a first source that fails them.
    if answered == resource.length && (mirrors.is_empty() || resource.length <= HTTP_PIECE) {
        let info = Info::of(&response);
        let kind = Kind::Body {
            length: Some(resource.length),
            validator: resource.validator,
            continuation: Continuation::of(ctx, &response, 0),
            body: response.into_body(),
        };
        return Ok(Stream::new(kind, info));
    }
    let info = Info::of(&response);
    let stream = SegmentedStream::start(
        ctx,
        resource,
        HTTP_PIECE,
        response.into_body(),
        answered,
        ctx.connections,
        mirrors,
    );
    Ok(Stream::new(Kind::Segmented(Box::new(stream)), info))
}

/// The stream of an empty resource, from the 416 that told it is empty
/// (see [`Response::into_empty_body`]).
fn empty_stream(response: Response) -> Stream {
    let info = Info::of_empty(&response);
    let kind = Kind::Body {
        length: Some(0),
        validator: validator_of(&response),
        continuation: None,
        body: response.into_empty_body(),
    };
    Stream::new(kind, info)
}

/// Opens `url` asking for it whole and gzip-encoded: decoded when it comes
/// so, as any answer when it comes as stored. It is one stream over one
/// connection either way: the encoded length says nothing of the file's,
/// and a range of an encoded body is not the file's.
#[cfg(feature = "gzip")]
fn open_compressed(ctx: &Context, url: Url) -> Result<Stream> {
    use crate::http::decoded::GunzipBody;
    let response = ctx.send_retrying(&Request::get(url.clone()).accept_gzip(), &[])?;
    let coding = response
        .header("content-encoding")
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
    let Some(coding) = coding else {
        return stream_of(ctx, url, response);
    };
    let subject = response.url().redacted().to_string();
    if !(coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "the server sent the body encoded as {coding:?}, which partfetch does not \
                 decode (it asked for gzip)"
            ),
        )
        .with_subject(subject));
    }
    if is_manifest(&url, &response) {
        return Err(Error::new(
            ErrorKind::Manifest,
            "the manifest came gzip-encoded, which partfetch reads only as stored: \
             fetch it without asking for compression",
        )
        .with_subject(subject));
    }
    let info = Info::of(&response);
    let body = GunzipBody::new(response.into_body(), subject).with_cancel(ctx.cancel_handle());
    Ok(Stream::new(Kind::Gzip(Box::new(body)), info))
}

fn stream_of(ctx: &Context, url: Url, response: Response) -> Result<Stream> {
    let info = Info::of(&response);
    if is_manifest(&url, &response) {
        let stream = ManifestStream::new(ctx.clone(), url, response, ctx.cache_limit)?;
        return Ok(Stream::new(Kind::Manifest(Box::new(stream)), info));
    }
    let kind = Kind::Body {
        length: response.content_length(),
        validator: validator_of(&response),
        continuation: Continuation::of(ctx, &response, 0),
        body: response.into_body(),
    };
    Ok(Stream::new(kind, info))
}

/// [`Client::resume`](crate::Client::resume), in `ctx`.
pub fn resume(
    ctx: &Context,
    url: &str,
    offset: u64,
    validator: Option<&str>,
) -> Result<(Stream, Resumed)> {
    let url = Url::parse(url)?;
    if offset == 0 {
        return Ok((
            open_mirrored(ctx, &url.to_string(), &[])?,
            Resumed::FromStart,
        ));
    }
    let mut request = Request::get(url.clone()).range(offset, None);
    if let Some(validator) = validator {
        request = request.if_range(validator.to_owned());
    }
    let response = ctx.send(&request)?;
    if response.status() == 416 {
        let complete = response.unsatisfied_length() == Some(offset);
        if complete {
            let empty = crate::http::HttpBody::empty(response.url().clone());
            let kind = Kind::Body {
                body: empty,
                length: Some(0),
                validator: validator.map(str::to_owned),
                continuation: None,
            };
            return Ok((Stream::new(kind, Info::of(&response)), Resumed::AtOffset));
        }
        // Shorter than what we have: it changed. Start over.
        drop(response);
        return Ok((
            open_mirrored(ctx, &url.to_string(), &[])?,
            Resumed::FromStart,
        ));
    }
    let response = response.error_for_status()?;
    if is_manifest(&url, &response) {
        // A manifest's text is no continuation of the bytes it stands
        // for: they start over (`resume_manifest` skips whole parts).
        drop(response);
        return Ok((
            open_mirrored(ctx, &url.to_string(), &[])?,
            Resumed::FromStart,
        ));
    }
    // The rest, from `offset` to the end: a 206 of any other range (a
    // server may send less than asked) continues nothing.
    let at_offset = response.status() == 206
        && matches!(response.content_range(),
            Some((first, last, Some(length))) if first == offset && last + 1 == length)
        && same_version(&response, &url, validator).is_ok();
    if !at_offset {
        if response.status() == 206 {
            drop(response);
            return Ok((
                open_mirrored(ctx, &url.to_string(), &[])?,
                Resumed::FromStart,
            ));
        }
        let stream = stream_of(ctx, url, response)?;
        return Ok((stream, Resumed::FromStart));
    }
    let info = Info::of(&response);
    let kind = Kind::Body {
        validator: validator_of(&response),
        length: response.content_length(),
        continuation: Continuation::of(ctx, &response, offset),
        body: response.into_body(),
    };
    Ok((Stream::new(kind, info), Resumed::AtOffset))
}

/// [`Client::resume_pieces`](crate::Client::resume_pieces), in `ctx`.
pub fn resume_pieces(
    ctx: &Context,
    url: &str,
    mirrors: &[&str],
    length: u64,
    validator: Option<&str>,
    have: PieceSet,
    store: Arc<dyn PieceStore>,
) -> Result<ResumedPieces> {
    let parsed = Url::parse(url)?;
    let mut mirror_urls = Vec::new();
    for mirror in mirrors {
        mirror_urls.push(Url::parse(mirror)?);
    }
    let client = ctx.bound_to(&parsed);
    let resource = Resource::known(parsed.clone(), length, validator.map(str::to_owned));
    let layout = Layout::new(length, HTTP_PIECE);
    if let Some(last) = have.runs().last().map(|run| run.end - 1) {
        if last >= layout.pieces() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "piece {last} is said to be done, but {length} bytes make {} pieces of \
                     {HTTP_PIECE} bytes",
                    layout.pieces()
                ),
            )
            .with_subject(parsed.redacted()));
        }
    }
    let first = have.first_missing_from(0);
    if first >= layout.pieces() {
        return Ok(ResumedPieces::Continued(SegmentedDownload::resume(
            &client,
            resource,
            layout,
            have,
            None,
            client.connections,
            mirror_urls,
            store,
        )));
    }
    let (start, end) = layout.range(first);
    let mut request = Request::get(parsed.clone()).range(start, Some(end));
    if let Some(validator) = validator {
        request = request.if_range(validator.to_owned());
    }
    let response = client.send(&request)?;
    // Shorter than the piece asked for: it changed.
    let response = match response.status() {
        416 => None,
        _ => Some(response.error_for_status()?),
    };
    let Some(response) = response else {
        return Ok(ResumedPieces::Changed(open_mirrored(
            &client, url, mirrors,
        )?));
    };
    let same = response.status() == 206
        && response.content_range() == Some((start, end, Some(length)))
        && same_version(&response, &parsed, validator).is_ok();
    if !same {
        drop(response);
        return Ok(ResumedPieces::Changed(open_mirrored(
            &client, url, mirrors,
        )?));
    }
    let resource = Resource {
        url: response.url().clone(),
        ..resource
    };
    Ok(ResumedPieces::Continued(SegmentedDownload::resume(
        &client,
        resource,
        layout,
        have,
        Some((first, response.into_body())),
        client.connections,
        mirror_urls,
        store,
    )))
}

/// [`Client::resume_manifest`](crate::Client::resume_manifest), in `ctx`.
pub fn resume_manifest(ctx: &Context, url: &str, done: Vec<PartRecord>) -> Result<Stream> {
    let parsed = Url::parse(url)?;
    let client = ctx.bound_to(&parsed);
    let response = client.get(&parsed)?;
    if !is_manifest(&parsed, &response) {
        return Err(Error::new(
            ErrorKind::ResumeMismatch,
            crate::manifest::expand::RESUME_MISMATCH,
        )
        .with_subject(parsed.redacted()));
    }
    let info = Info::of(&response);
    let mut stream = ManifestStream::new(client, parsed, response, ctx.cache_limit)?;
    stream.resume_after(done);
    Ok(Stream::new(Kind::Manifest(Box::new(stream)), info))
}
