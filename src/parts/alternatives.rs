//! One part of a stream, fetched from the first of its alternatives that
//! works, and continued on the next one if it breaks midway.
//!
//! Owns the rules of a part's alternatives: they are tried in order; a
//! failure before any byte was handed on moves to the next; a failure after
//! that continues on the next alternative at the same offset with a `Range`
//! request (a server that answers 200 is read and skipped up to the offset),
//! so no byte is repeated or skipped; when none is left and the failure
//! may pass, the alternatives are asked again in order, after a pause. It checks `(size=N)` as bytes arrive
//! and holds a part with `(sha256=…)` until its digest matches, so a corrupt
//! copy never reaches the consumer. When every alternative fails, the error
//! lists each one and its cause.
//!
//! An alternative that turns out to be a manifest is handed back to the
//! caller ([`Opened::Manifest`]): expanding manifests is `manifest::expand`'s.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::engine::segments::{SegmentedStream, FIRST_ANSWER};
use crate::engine::HTTP_PIECE;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, Retry};
use crate::fetch::retry::backoff;
use crate::fetch::Context;
use crate::http::ranged::{first_piece_request, FirstPiece, Resource};
use crate::http::validator::{same_version, validator_of};
use crate::http::{HttpBody, Request, Response};
use crate::sha256::{self, Sha256};
use crate::source::ByteSource;
use crate::url::Url;

/// A part held for verification is kept in memory up to this size, and
/// beyond it in a temporary file, so a large part does not cost its size
/// in memory.
pub const HOLD_IN_MEMORY: usize = 8 * 1024 * 1024;

/// The size of the chunks a held part is handed out in.
const HELD_CHUNK: usize = 256 * 1024;

/// What a part is: where it may come from and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartPlan {
    /// Sources of the same bytes, in order of preference.
    pub alternatives: Vec<Url>,
    /// The exact length, when known.
    pub size: Option<u64>,
    /// The SHA-256 of the part's bytes, when known.
    pub sha256: Option<[u8; 32]>,
}

/// The outcome of opening a part.
pub enum Opened {
    /// The part streams from a plain alternative.
    Plain(PartReader),
    /// Alternative `index` answered with a manifest: its stream is the part.
    Manifest {
        /// Which alternative.
        index: usize,
        /// The response, its body the manifest text.
        response: Response,
        /// What was tried before it, for the error if everything fails.
        causes: Vec<Error>,
    },
}

/// Decides whether a response is a manifest; supplied by the caller so that
/// this module does not know the manifest rules.
pub type IsManifest = fn(&Url, &Response) -> bool;

/// Opens the part from alternative `start` onwards; `causes` are the
/// failures of the alternatives before it.
///
/// An alternative that fails moves on to the next at once: the other
/// alternatives are the first retry. When every one failed and every
/// failure may pass (reset, timeout, 5xx, 429, 408), the round is tried
/// again after a backoff with jitter, up to the client's `retries` rounds;
/// a permanent failure (404, TLS, a wrong digest) ends it at once.
pub fn open(
    client: &Context,
    plan: PartPlan,
    start: usize,
    causes: Vec<Error>,
    is_manifest: IsManifest,
) -> Result<Opened> {
    let earlier = causes.len();
    in_rounds(
        client,
        Retry::Request,
        || open_once(client, plan.clone(), start, causes.clone(), is_manifest),
        |err| {
            let new = err.causes().get(earlier..).unwrap_or_default();
            new.last().filter(|_| new.iter().all(Error::is_transient))
        },
    )
}

/// Runs `attempt` until it succeeds, or up to the client's retries in all
/// while `passing` finds in its error a failure that may pass (the one
/// told); between rounds, the backoff, told as a retry of `what`.
fn in_rounds<T>(
    client: &Context,
    what: Retry,
    mut attempt: impl FnMut() -> Result<T>,
    passing: impl Fn(&Error) -> Option<&Error>,
) -> Result<T> {
    let attempts = client.retries();
    let mut round = 1;
    loop {
        let err = match attempt() {
            Ok(done) => return Ok(done),
            Err(err) => err,
        };
        let Some(last) = passing(&err).filter(|_| round < attempts) else {
            return Err(err);
        };
        let wait = backoff(round);
        round += 1;
        client.emit(Event::Retrying {
            error: last.clone(),
            what,
            wait,
            attempt: round,
            attempts,
        });
        client.pause(wait)?;
    }
}

fn open_once(
    client: &Context,
    plan: PartPlan,
    start: usize,
    mut causes: Vec<Error>,
    is_manifest: IsManifest,
) -> Result<Opened> {
    for index in start..plan.alternatives.len() {
        // A cancelled client's failure is no alternative's.
        client.cancelled()?;
        let url = &plan.alternatives[index];
        let first = match first_answer(client, url, plan.size, is_manifest) {
            Ok(first) => first,
            Err(err) => {
                causes.push(err.with_subject(url.redacted()));
                continue;
            }
        };
        let response = match first {
            First::Whole(response) => response,
            First::Empty(response) => {
                if let Some(size) = plan.size.filter(|&size| size != 0) {
                    causes.push(
                        Error::new(
                            ErrorKind::Integrity,
                            format!(
                                "server says the part is empty, the manifest says {size} bytes"
                            ),
                        )
                        .with_subject(url.redacted()),
                    );
                    continue;
                }
                let serving = (index, validator_of(&response));
                let body = PartBody::Http(response.into_empty_body());
                return finish_open(client, plan, serving, body, causes, is_manifest);
            }
            First::Pieces(resource, answered, response) => {
                if let Some(size) = plan.size.filter(|&size| size != resource.length) {
                    causes.push(
                        Error::new(
                            ErrorKind::Integrity,
                            format!(
                                "server announces {} bytes, the manifest says {size}",
                                resource.length
                            ),
                        )
                        .with_subject(url.redacted()),
                    );
                    continue;
                }
                // The alternatives after this one serve the same bytes:
                // mirrors, checked by their first answer.
                let mirrors = plan.alternatives[index + 1..].to_vec();
                let validator = resource.validator.clone();
                let stream = SegmentedStream::start(
                    client,
                    resource,
                    HTTP_PIECE,
                    response.into_body(),
                    answered,
                    client.connections_per_part(),
                    mirrors,
                );
                let body = PartBody::Pieces(Box::new(stream));
                let serving = (index, validator);
                return finish_open(client, plan, serving, body, causes, is_manifest);
            }
        };
        if is_manifest(url, &response) {
            return Ok(Opened::Manifest {
                index,
                response,
                causes,
            });
        }
        if let (Some(size), Some(announced)) = (plan.size, response.content_length()) {
            if size != announced {
                causes.push(
                    Error::new(
                        ErrorKind::Integrity,
                        format!("server announces {announced} bytes, the manifest says {size}"),
                    )
                    .with_subject(url.redacted()),
                );
                continue;
            }
        }
        let serving = (index, validator_of(&response));
        let body = PartBody::Http(response.into_body());
        return finish_open(client, plan, serving, body, causes, is_manifest);
    }
    Err(all_failed(&plan, causes))
}

/// What the first answer of an alternative allows.
enum First {
    /// One response carries the part (or is a manifest).
    Whole(Response),
    /// A 416 telling that the part is empty: its bytes are all there.
    Empty(Response),
    /// A server that honours `Range` told the length of a part larger than
    /// its answer, which carries the part's first bytes (their number).
    Pieces(Resource, u64, Response),
}

/// Asks `url` for the part: for its first [`FIRST_ANSWER`] bytes only
/// when the client fetches large resources in pieces, so that a part of
/// that size or less (or a manifest that short) comes whole all the same,
/// with one request.
fn first_answer(
    client: &Context,
    url: &Url,
    size: Option<u64>,
    is_manifest: IsManifest,
) -> Result<First> {
    let small = size.is_some_and(|size| size <= FIRST_ANSWER);
    if client.connections() <= 1 || url.path().ends_with(".parts") || small {
        return Ok(First::Whole(client.get(url)?));
    }
    let response = client.send(&first_piece_request(url, FIRST_ANSWER))?;
    let (resource, answered) = match FirstPiece::of(&response, FIRST_ANSWER, HTTP_PIECE) {
        FirstPiece::Empty => return Ok(First::Empty(response)),
        FirstPiece::Pieces(resource, answered) => (resource, answered),
        FirstPiece::Whole => return Ok(First::Whole(response.error_for_status()?)),
        FirstPiece::AskAgain => {
            drop(response);
            return Ok(First::Whole(client.get(url)?));
        }
    };
    if answered == resource.length {
        return Ok(First::Whole(response));
    }
    if is_manifest(url, &response) {
        // A manifest is read whole, never in pieces.
        drop(response);
        return Ok(First::Whole(client.get(url)?));
    }
    Ok(First::Pieces(resource, answered, response))
}

/// Makes the reader for alternative `index` answering with `body` (whose
/// answer gave `validator`), and holds the part until its digest matches
/// when it has one.
fn finish_open(
    client: &Context,
    plan: PartPlan,
    (index, validator): (usize, Option<String>),
    body: PartBody,
    causes: Vec<Error>,
    is_manifest: IsManifest,
) -> Result<Opened> {
    let mut validators = vec![None; plan.alternatives.len()];
    validators[index] = validator;
    let mut reader = PartReader {
        client: client.clone(),
        plan,
        index,
        next: index + 1,
        validators,
        body: Some(body),
        skip: 0,
        chunk_skip: 0,
        offset: 0,
        causes,
        held: None,
        is_manifest,
    };
    if reader.plan.sha256.is_some() {
        reader.hold_verified()?;
    }
    Ok(Opened::Plain(reader))
}

/// Where a part's bytes come from: one response, or pieces from the
/// alternatives at once.
// One per part being read: the common response stays inline.
#[allow(clippy::large_enum_variant)]
enum PartBody {
    Http(HttpBody),
    Pieces(Box<SegmentedStream>),
}

impl PartBody {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        match self {
            PartBody::Http(body) => body.next_chunk(),
            PartBody::Pieces(stream) => stream.next_chunk(),
        }
    }

    fn last_chunk(&self) -> &[u8] {
        match self {
            PartBody::Http(body) => body.last_chunk(),
            PartBody::Pieces(stream) => stream.last_chunk(),
        }
    }

    fn has_bytes_ready(&mut self) -> bool {
        match self {
            PartBody::Http(body) => body.has_bytes_ready(),
            // Pieces arrive on other threads; asking would mean waiting.
            PartBody::Pieces(_) => true,
        }
    }
}

/// The error for a part none of whose alternatives worked.
///
/// Its kind is the kind all causes share, else the first alternative's, so
/// that a part missing everywhere exits as "not found".
pub fn all_failed(plan: &PartPlan, causes: Vec<Error>) -> Error {
    let kind = match causes.first() {
        Some(first) if causes.iter().all(|c| c.kind() == first.kind()) => first.kind(),
        Some(first) => first.kind(),
        None => ErrorKind::Manifest,
    };
    let what = match plan.alternatives.len() {
        0 => "part has no source".to_owned(),
        1 => "the part's only source failed".to_owned(),
        n => format!("all {n} sources of the part failed"),
    };
    Error::new(kind, what).with_causes(causes)
}

/// A part being streamed, with failover to its remaining alternatives.
pub struct PartReader {
    client: Context,
    plan: PartPlan,
    /// The alternative serving now.
    index: usize,
    /// The next alternative to try on failure.
    next: usize,
    /// Per alternative, the validator (strong `ETag`, else
    /// `Last-Modified`) of its first answer: asked for again, the same
    /// source must serve the same version.
    validators: Vec<Option<String>>,
    body: Option<PartBody>,
    /// Bytes of the current body to drop (a 200 answer to a `Range`).
    skip: u64,
    /// Bytes at the start of the body's last chunk that were skipped.
    chunk_skip: usize,
    /// Bytes handed on so far.
    offset: u64,
    causes: Vec<Error>,
    held: Option<Held>,
    is_manifest: IsManifest,
}

impl PartReader {
    /// The alternative that is serving (or served) the part.
    pub fn serving_url(&self) -> &Url {
        &self.plan.alternatives[self.index]
    }

    /// Reads the whole part from the alternatives in turn until one gives
    /// bytes with the right digest, keeping them for handing out.
    fn hold_verified(&mut self) -> Result<()> {
        let expected = self.plan.sha256.unwrap_or([0; 32]);
        loop {
            let outcome = self.fill_held();
            match outcome {
                Ok(held) => {
                    if held.digest == expected {
                        self.held = Some(held);
                        return Ok(());
                    }
                    let url = self.serving_url().redacted();
                    self.causes.push(
                        Error::new(
                            ErrorKind::Integrity,
                            format!(
                                "SHA-256 mismatch: got {}, the manifest says {}",
                                sha256::to_hex(&held.digest),
                                sha256::to_hex(&expected)
                            ),
                        )
                        .with_subject(url),
                    );
                }
                Err(err) => {
                    let url = self.serving_url().redacted();
                    self.causes.push(err.with_subject(url));
                }
            }
            // Pieces from several alternatives at once cannot tell which one
            // was wrong: each is then tried alone, in order, from this one.
            // From this one alone (no alternative after it served as a
            // mirror), they were its bytes: asking again would repeat them.
            let mirrored = self.index + 1 < self.plan.alternatives.len();
            if mirrored && matches!(self.body, Some(PartBody::Pieces(_))) {
                self.next = self.index;
            }
            self.body = None;
            self.reopen_at(0)?;
        }
    }

    /// Reads the current alternative's whole body into a [`Held`].
    fn fill_held(&mut self) -> Result<Held> {
        let mut held = Held::new();
        let mut hasher = Sha256::new();
        let body = self
            .body
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Protocol, "no body"))?;
        while let Some(chunk) = body.next_chunk()? {
            if let Some(size) = self.plan.size {
                if held.len + chunk.len() as u64 > size {
                    return Err(size_error(size, "more"));
                }
            }
            hasher.update(chunk);
            held.push(chunk)?;
        }
        if let Some(size) = self.plan.size {
            if held.len != size {
                return Err(size_error(size, "fewer"));
            }
        }
        held.digest = hasher.finish();
        Ok(held)
    }

    /// After the body failed at `offset`: opens the next alternative that
    /// can serve the part from there. When every one has been tried and
    /// the last failure may pass (a reset, a timeout, a 503), the
    /// alternatives are tried again from the first, after a pause, up to
    /// the client's retries in all: for a part with a single alternative,
    /// that is the only way to go on.
    fn continue_at(&mut self, offset: u64) -> Result<()> {
        let client = self.client.clone();
        let mut again = false;
        in_rounds(
            &client,
            Retry::Rest,
            || {
                // A new round starts from the first alternative; the
                // failures so far stay listed.
                if std::mem::replace(&mut again, true) {
                    self.next = 0;
                }
                self.reopen_at(offset)
            },
            |failed| failed.causes().last().filter(|cause| cause.is_transient()),
        )
    }

    /// Opens the next alternative that can serve the part from `offset`.
    fn reopen_at(&mut self, offset: u64) -> Result<()> {
        // A cancelled client's failure is no alternative's.
        self.client.cancelled()?;
        while self.next < self.plan.alternatives.len() {
            let index = self.next;
            self.next += 1;
            let url = self.plan.alternatives[index].clone();
            match self.open_range(index, &url, offset) {
                Ok((body, skip)) => {
                    self.index = index;
                    self.body = Some(PartBody::Http(body));
                    self.skip = skip;
                    return Ok(());
                }
                Err(err) => {
                    self.client.cancelled()?;
                    self.causes.push(err.with_subject(url.redacted()));
                }
            }
        }
        let mut err = all_failed(&self.plan, self.causes.clone());
        if offset > 0 {
            // Why it could not continue is the last failure, not the cut
            // before it (a source that now serves another version is an
            // integrity failure, not a network one).
            let kind = err.causes().last().map_or(err.kind(), Error::kind);
            err = Error::new(
                kind,
                format!("no source could continue the part at byte {offset}"),
            )
            .with_causes(err.causes().to_vec());
        }
        Err(err)
    }

    /// A body positioned at `offset`, and how many bytes of it to skip.
    ///
    /// An alternative that answered before is asked with `If-Range` and
    /// its validator, and an answer of another version is refused: the
    /// part would otherwise mix two versions. (Other alternatives are
    /// other servers, whose validators cannot be compared.)
    fn open_range(&mut self, index: usize, url: &Url, offset: u64) -> Result<(HttpBody, u64)> {
        // From the start, any version will do: nothing is mixed.
        let known = self.validators[index].clone().filter(|_| offset > 0);
        let mut request = if offset > 0 {
            Request::get(url.clone()).range(offset, None)
        } else {
            Request::get(url.clone())
        };
        if let Some(validator) = &known {
            request = request.if_range(validator.clone());
        }
        let response = self.client.send(&request)?.error_for_status()?;
        same_version(&response, url, known.as_deref())?;
        if known.is_none() {
            self.validators[index] = validator_of(&response);
        }
        if (self.is_manifest)(url, &response) {
            return Err(Error::new(
                ErrorKind::Manifest,
                "a manifest cannot continue a part midway",
            ));
        }
        match (response.status(), response.content_range()) {
            (206, Some((first, _, _))) if first == offset => Ok((response.into_body(), 0)),
            (206, _) => Err(Error::new(
                ErrorKind::Protocol,
                format!("206 answer does not start at byte {offset}"),
            )),
            (_, _) => Ok((response.into_body(), offset)),
        }
    }
}

fn size_error(size: u64, more_or_fewer: &str) -> Error {
    Error::new(
        ErrorKind::Integrity,
        format!("{more_or_fewer} bytes than the {size} the manifest says"),
    )
}

impl PartReader {
    /// True when the next `advance` can start without waiting for the
    /// network (bytes arrived, the part is held in full, or it is over).
    pub fn has_bytes_ready(&mut self) -> bool {
        if self.held.is_some() {
            return true;
        }
        self.body.as_mut().is_none_or(|body| body.has_bytes_ready())
    }

    /// True when the next `advance` hands on more of this part without
    /// waiting for the network. Unlike [`PartReader::has_bytes_ready`],
    /// false at the part's end: a reader of the whole stream goes on to
    /// the next part there, and may wait for it.
    pub fn has_chunk_ready(&mut self) -> bool {
        if self.held.is_some() {
            return true;
        }
        match self.body.as_mut() {
            Some(PartBody::Http(body)) => body.has_payload_ready(),
            Some(PartBody::Pieces(stream)) => stream.has_chunk_ready(),
            None => false,
        }
    }

    /// Moves to the next chunk; false at the end of the part. The chunk is
    /// then [`PartReader::chunk`]. (Split in two so that a caller can look at
    /// the outcome and still lend the chunk after its own bookkeeping.)
    pub fn advance(&mut self) -> Result<bool> {
        if let Some(held) = self.held.as_mut() {
            let more = held.advance()?;
            self.offset += held.chunk().len() as u64;
            return Ok(more);
        }
        loop {
            let Some(body) = self.body.as_mut() else {
                return Ok(false);
            };
            let outcome = match body.next_chunk() {
                Ok(Some(chunk)) => {
                    let skip = self.skip.min(chunk.len() as u64) as usize;
                    let len = chunk.len() - skip;
                    match self.plan.size {
                        Some(size) if self.offset + len as u64 > size => {
                            Err(size_error(size, "more"))
                        }
                        _ => Ok(Some((skip, len))),
                    }
                }
                Ok(None) => match self.plan.size {
                    Some(size) if self.offset != size => Err(size_error(size, "fewer")),
                    _ if self.skip > 0 => Err(Error::new(
                        ErrorKind::Protocol,
                        "body ended before the offset to continue from",
                    )),
                    _ => Ok(None),
                },
                Err(err) => Err(err),
            };
            match outcome {
                Ok(Some((skip, len))) => {
                    self.skip -= skip as u64;
                    if len == 0 {
                        continue;
                    }
                    self.chunk_skip = skip;
                    self.offset += len as u64;
                    return Ok(true);
                }
                Ok(None) => {
                    self.body = None;
                    return Ok(false);
                }
                Err(err) => {
                    let url = self.serving_url().redacted();
                    self.causes.push(err.with_subject(url));
                    self.body = None;
                    self.continue_at(self.offset)?;
                }
            }
        }
    }

    /// The chunk the last successful [`PartReader::advance`] moved to.
    pub fn chunk(&self) -> &[u8] {
        if let Some(held) = &self.held {
            return held.chunk();
        }
        match &self.body {
            Some(body) => &body.last_chunk()[self.chunk_skip..],
            None => &[],
        }
    }
}

impl ByteSource for PartReader {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        Ok(if self.advance()? {
            Some(self.chunk())
        } else {
            None
        })
    }
}

/// A verified part's bytes, in memory or spilled to a temporary file.
///
/// The file's name is removed as soon as it is created, where the system
/// allows it (the open file stays readable): a run that ends without
/// dropping it (Ctrl-C, a kill, an exit while a part is fetched ahead)
/// must not leave parts in the temporary directory.
struct Held {
    memory: Vec<u8>,
    file: Option<(File, PathBuf)>,
    /// The file still has its name, to remove when dropped.
    named: bool,
    len: u64,
    read: u64,
    buffer: Vec<u8>,
    current: std::ops::Range<usize>,
    digest: [u8; 32],
}

impl Held {
    fn new() -> Held {
        Held {
            memory: Vec::new(),
            file: None,
            named: false,
            len: 0,
            read: 0,
            buffer: Vec::new(),
            current: 0..0,
            digest: [0; 32],
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        self.len += bytes.len() as u64;
        if self.file.is_none() && self.memory.len() + bytes.len() <= HOLD_IN_MEMORY {
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        if self.file.is_none() {
            let path = temp_file_path();
            let mut file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| Error::io(e, path.display()))?;
            self.named = std::fs::remove_file(&path).is_err();
            file.write_all(&self.memory)
                .map_err(|e| Error::io(e, path.display()))?;
            self.memory = Vec::new();
            self.file = Some((file, path));
        }
        if let Some((file, path)) = self.file.as_mut() {
            file.write_all(bytes)
                .map_err(|e| Error::io(e, path.display()))?;
        }
        Ok(())
    }

    fn advance(&mut self) -> Result<bool> {
        self.current = 0..0;
        if self.read >= self.len {
            return Ok(false);
        }
        match self.file.as_mut() {
            None => {
                let start = self.read as usize;
                let end = (start + HELD_CHUNK).min(self.memory.len());
                self.read = end as u64;
                self.current = start..end;
            }
            Some((file, path)) => {
                if self.read == 0 {
                    file.seek(SeekFrom::Start(0))
                        .map_err(|e| Error::io(e, path.display()))?;
                }
                let want = (self.len - self.read).min(HELD_CHUNK as u64) as usize;
                self.buffer.resize(want, 0);
                file.read_exact(&mut self.buffer)
                    .map_err(|e| Error::io(e, path.display()))?;
                self.read += want as u64;
                self.current = 0..want;
            }
        }
        Ok(true)
    }

    fn chunk(&self) -> &[u8] {
        match self.file {
            None => &self.memory[self.current.clone()],
            Some(_) => &self.buffer[self.current.clone()],
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some((_, path)) = self.file.take().filter(|_| self.named) {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn temp_file_path() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("partfetch-held-{}-{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_part_spilled_to_disk_leaves_no_file_name_behind() {
        let block: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let mut held = Held::new();
        for _ in 0..HOLD_IN_MEMORY / block.len() + 2 {
            held.push(&block).unwrap();
        }
        let path = held.file.as_ref().map(|(_, path)| path.clone()).unwrap();
        // Named only for as long as it takes to open it: a run killed now
        // leaves nothing in the temporary directory.
        assert!(!path.exists(), "{} is still there", path.display());
        let mut read = 0;
        while held.advance().unwrap() {
            let chunk = held.chunk();
            let offset = read % block.len();
            assert_eq!(chunk, &block[offset..offset + chunk.len()]);
            read += chunk.len();
        }
        assert_eq!(read as u64, held.len);
    }
}
