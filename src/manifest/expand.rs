//! Expanding a manifest into the stream it stands for.
//!
//! Owns the walk over parts: an explicit stack of open manifests (never the
//! call stack), tail calls (a manifest in the last position of its parent
//! replaces the parent's frame, so an endless self-referencing manifest runs
//! in constant memory), the nesting bound, loop detection, the `(*)` cache,
//! and which alternative is tried when a nested manifest fails.
//!
//! ```text
//!   stack: [ top manifest ][ nested ] … ──next part──▶ current part ──chunks──▶ consumer
//!            each frame: parser + unread manifest text + one part of lookahead
//! ```
//!
//! A part's own alternatives and mid-stream failover are `part`'s; parsing
//! lines is `parse`'s.

use std::sync::Arc;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{HttpBody, Response};
use crate::manifest::cache::{Cache, CacheFill};
use crate::manifest::parse::{ManifestParser, PartSpec};
use crate::part::{self, Opened, PartPlan, PartReader};
use crate::source::ByteSource;
use crate::url::Url;

/// The most manifests open at once (non-tail nesting, the top one included).
/// Real manifests nest a few levels; more is almost surely a mistake, and the
/// bound keeps memory bounded.
pub const MAX_NESTING: usize = 64;

/// A manifest body up to this size is read whole before its first part is
/// fetched, which frees its connection to fetch the parts (one connection
/// for a whole download from one server). A longer one streams.
pub const MANIFEST_PREFETCH: usize = 1024 * 1024;

/// The size of the chunks a cached part is handed out in.
const CACHED_CHUNK: usize = 256 * 1024;

/// True when a response is a manifest: its requested or final URL's path
/// ends in `.parts`, or its media type is `text/parts-manifest`.
pub fn is_manifest(requested: &Url, response: &Response) -> bool {
    let by_path = |url: &Url| url.path().ends_with(".parts");
    let by_type = response.header("content-type").is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/parts-manifest"))
    });
    by_path(requested) || by_path(response.url()) || by_type
}

/// A part whose stream a frame serves, and the alternatives it has left.
#[derive(Clone)]
struct Fallback {
    plan: PartPlan,
    next: usize,
    causes: Vec<Error>,
    cacheable: bool,
    /// Bytes handed on when the part started: once more have been, the part
    /// cannot switch to another alternative.
    started_at: u64,
    line: usize,
    manifest: Url,
}

/// One open manifest.
struct Frame {
    url: Url,
    parser: ManifestParser,
    body: Option<HttpBody>,
    pending: Vec<u8>,
    pending_pos: usize,
    finished: bool,
    lookahead: Option<Result<Option<PartSpec>>>,
    /// The parts this frame's stream serves, innermost last; older entries
    /// come from frames that tail calls replaced.
    fallbacks: Vec<Fallback>,
}

impl Frame {
    /// Opens a frame over a manifest response, reading up to
    /// [`MANIFEST_PREFETCH`] bytes of it at once.
    fn open(url: Url, response: Response, fallbacks: Vec<Fallback>) -> Result<Frame> {
        let parser = ManifestParser::new(response.url().clone());
        let mut body = Some(response.into_body());
        let mut pending = Vec::new();
        while let Some(source) = body.as_mut() {
            if pending.len() >= MANIFEST_PREFETCH {
                break;
            }
            match source.next_chunk()? {
                Some(chunk) => pending.extend_from_slice(chunk),
                None => body = None,
            }
        }
        Ok(Frame {
            url,
            parser,
            body,
            pending,
            pending_pos: 0,
            finished: false,
            lookahead: None,
            fallbacks,
        })
    }

    /// The next part and whether it is the manifest's last.
    fn next_part(&mut self) -> Result<Option<(PartSpec, bool)>> {
        let current = match self.lookahead.take() {
            Some(result) => result?,
            None => self.read_part()?,
        };
        let Some(current) = current else {
            return Ok(None);
        };
        let after = self.read_part();
        let is_last = matches!(after, Ok(None));
        self.lookahead = Some(after);
        Ok(Some((current, is_last)))
    }

    fn read_part(&mut self) -> Result<Option<PartSpec>> {
        loop {
            if self.finished {
                return Ok(None);
            }
            if self.pending_pos < self.pending.len() {
                let (used, part) = self.parser.feed(&self.pending[self.pending_pos..])?;
                self.pending_pos += used;
                if part.is_some() {
                    return Ok(part);
                }
                if used > 0 {
                    continue;
                }
            }
            self.pending.clear();
            self.pending_pos = 0;
            let chunk = match self.body.as_mut() {
                Some(body) => body.next_chunk()?,
                None => None,
            };
            match chunk {
                Some(chunk) => self.pending.extend_from_slice(chunk),
                None => {
                    self.body = None;
                    self.finished = true;
                    return self.parser.finish();
                }
            }
        }
    }
}

/// What is being streamed now.
enum Current {
    Idle,
    Part {
        reader: Box<PartReader>,
        fill: Option<CacheFill>,
    },
    Cached {
        bytes: Arc<[u8]>,
        position: usize,
        chunk: std::ops::Range<usize>,
    },
}

/// Why an expansion step failed.
enum Failure {
    /// A part or a manifest failed: another alternative may still serve.
    Part(Error),
    /// A loop or too deep nesting: the whole download ends.
    Fatal(Error),
}

/// The stream a manifest stands for.
pub struct ManifestStream {
    client: Client,
    stack: Vec<Frame>,
    current: Current,
    cache: Cache,
    expanded_since_output: Vec<Url>,
    produced: u64,
    parts_done: u64,
    ended: bool,
}

impl ManifestStream {
    /// Expands the manifest `response`, fetched from `url`.
    pub fn new(client: Client, url: Url, response: Response, cache_limit: u64) -> Result<Self> {
        let frame = Frame::open(url.clone(), response, Vec::new())
            .map_err(|e| e.with_subject(url.redacted()))?;
        Ok(ManifestStream {
            client,
            stack: vec![frame],
            current: Current::Idle,
            cache: Cache::new(cache_limit),
            expanded_since_output: vec![url],
            produced: 0,
            parts_done: 0,
            ended: false,
        })
    }

    /// Parts streamed to their end so far.
    pub fn parts_done(&self) -> u64 {
        self.parts_done
    }

    /// Manifests open now.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// Moves to the next chunk; false at the end.
    fn advance(&mut self) -> Result<bool> {
        loop {
            match &mut self.current {
                Current::Part { reader, fill } => match reader.advance() {
                    Ok(true) => {
                        if let Some(fill) = fill {
                            fill.push(reader.chunk());
                        }
                        self.produced += reader.chunk().len() as u64;
                        self.expanded_since_output.clear();
                        return Ok(true);
                    }
                    Ok(false) => self.finish_part(),
                    Err(err) => {
                        self.current = Current::Idle;
                        self.recover(err)?;
                    }
                },
                Current::Cached {
                    bytes,
                    position,
                    chunk,
                } => {
                    if *position >= bytes.len() {
                        self.finish_part();
                        continue;
                    }
                    let end = (*position + CACHED_CHUNK).min(bytes.len());
                    *chunk = *position..end;
                    *position = end;
                    self.produced += chunk.len() as u64;
                    self.expanded_since_output.clear();
                    return Ok(true);
                }
                Current::Idle => {
                    let Some(frame) = self.stack.last_mut() else {
                        return Ok(false);
                    };
                    match frame.next_part() {
                        Ok(None) => {
                            self.stack.pop();
                        }
                        Ok(Some((spec, is_last))) => {
                            let manifest = frame.url.clone();
                            match self.start_part(spec, is_last, manifest) {
                                Ok(()) => {}
                                Err(Failure::Part(err)) => self.recover(err)?,
                                Err(Failure::Fatal(err)) => return Err(err),
                            }
                        }
                        Err(err) => {
                            let url = frame.url.redacted();
                            self.recover(err.with_subject(url))?;
                        }
                    }
                }
            }
        }
    }

    fn chunk(&self) -> &[u8] {
        match &self.current {
            Current::Part { reader, .. } => reader.chunk(),
            Current::Cached { bytes, chunk, .. } => &bytes[chunk.clone()],
            Current::Idle => &[],
        }
    }

    fn finish_part(&mut self) {
        let current = std::mem::replace(&mut self.current, Current::Idle);
        if let Current::Part {
            reader,
            fill: Some(fill),
        } = current
        {
            if let Some(bytes) = fill.into_bytes() {
                self.cache.insert(reader.serving_url().clone(), bytes);
            }
        }
        self.parts_done += 1;
    }

    fn start_part(&mut self, spec: PartSpec, is_last: bool, manifest: Url) -> Result<(), Failure> {
        let plan = PartPlan {
            alternatives: spec.alternatives,
            size: spec.size,
            sha256: spec.sha256,
        };
        if spec.cacheable {
            if let Some(bytes) = self.cache.lookup(&plan.alternatives) {
                self.current = Current::Cached {
                    bytes,
                    position: 0,
                    chunk: 0..0,
                };
                return Ok(());
            }
        }
        let fallback = Fallback {
            plan,
            next: 0,
            causes: Vec::new(),
            cacheable: spec.cacheable,
            started_at: self.produced,
            line: spec.line,
            manifest,
        };
        self.open_alternatives(fallback, is_last, Vec::new())
    }

    /// Opens the first alternative of `part` from `part.next` that works. A
    /// manifest alternative becomes a frame; `tail` says whether that frame
    /// replaces the top one. `inherited` are older fallbacks the new frame
    /// keeps.
    fn open_alternatives(
        &mut self,
        mut part: Fallback,
        tail: bool,
        inherited: Vec<Fallback>,
    ) -> Result<(), Failure> {
        loop {
            let opened = part::open(
                &self.client,
                part.plan.clone(),
                part.next,
                std::mem::take(&mut part.causes),
                is_manifest,
            );
            match opened {
                Err(err) => {
                    let err = Error::new(
                        err.kind(),
                        format!("part at line {} failed: {}", part.line, err.message()),
                    )
                    .with_subject(part.manifest.redacted())
                    .with_causes(err.causes().to_vec());
                    return Err(Failure::Part(err));
                }
                Ok(Opened::Plain(reader)) => {
                    let fill = part.cacheable.then(|| CacheFill::new(self.cache.room()));
                    self.current = Current::Part {
                        reader: Box::new(reader),
                        fill,
                    };
                    return Ok(());
                }
                Ok(Opened::Manifest {
                    index,
                    response,
                    causes,
                }) => {
                    let url = part.plan.alternatives[index].clone();
                    part.next = index + 1;
                    part.causes = causes;
                    if self.expanded_since_output.contains(&url) {
                        return Err(Failure::Fatal(
                            Error::new(
                                ErrorKind::Manifest,
                                "manifest loop: expanded again before producing any byte",
                            )
                            .with_subject(url.redacted()),
                        ));
                    }
                    let depth_after = self.stack.len() + usize::from(!tail);
                    if depth_after > MAX_NESTING {
                        return Err(Failure::Fatal(
                            Error::new(
                                ErrorKind::Manifest,
                                format!("more than {MAX_NESTING} manifests nested"),
                            )
                            .with_subject(url.redacted()),
                        ));
                    }
                    match Frame::open(url.clone(), response, Vec::new()) {
                        Ok(mut frame) => {
                            let mut fallbacks = if tail {
                                self.unused_fallbacks_of_top()
                            } else {
                                Vec::new()
                            };
                            fallbacks.extend(inherited);
                            fallbacks.push(part);
                            if fallbacks.len() > MAX_NESTING {
                                // A chain of manifests that produce nothing
                                // cannot grow this without bound.
                                let excess = fallbacks.len() - MAX_NESTING;
                                fallbacks.drain(..excess);
                            }
                            frame.fallbacks = fallbacks;
                            if tail {
                                self.stack.pop();
                            }
                            self.stack.push(frame);
                            self.expanded_since_output.push(url);
                            return Ok(());
                        }
                        Err(err) => part.causes.push(err.with_subject(url.redacted())),
                    }
                }
            }
        }
    }

    /// The fallbacks of the top frame that can still be used: those of parts
    /// that have not produced a byte yet.
    fn unused_fallbacks_of_top(&self) -> Vec<Fallback> {
        let produced = self.produced;
        self.stack.last().map_or_else(Vec::new, |frame| {
            frame
                .fallbacks
                .iter()
                .filter(|f| f.started_at == produced)
                .cloned()
                .collect()
        })
    }

    /// The top frame failed with `err`: tries the alternatives left to the
    /// parts it serves, innermost first, popping frames as their parts fail.
    fn recover(&mut self, mut err: Error) -> Result<()> {
        while let Some(frame) = self.stack.pop() {
            let mut fallbacks = frame.fallbacks;
            while let Some(mut part) = fallbacks.pop() {
                if self.produced != part.started_at {
                    return Err(Error::new(
                        err.kind(),
                        format!(
                            "a nested manifest failed after streaming part of its bytes: {}",
                            err.message()
                        ),
                    )
                    .with_subject(frame.url.redacted())
                    .with_causes(err.causes().to_vec()));
                }
                part.causes.push(err.with_subject(frame.url.redacted()));
                let inherited = std::mem::take(&mut fallbacks);
                match self.open_alternatives(part, false, inherited.clone()) {
                    Ok(()) => return Ok(()),
                    Err(Failure::Fatal(e)) => return Err(e),
                    Err(Failure::Part(e)) => {
                        err = e;
                        fallbacks = inherited;
                    }
                }
            }
        }
        self.ended = true;
        Err(err)
    }
}

impl ByteSource for ManifestStream {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        if self.ended {
            return Ok(None);
        }
        match self.advance() {
            Ok(true) => Ok(Some(self.chunk())),
            Ok(false) => {
                self.ended = true;
                Ok(None)
            }
            Err(err) => {
                self.ended = true;
                Err(err)
            }
        }
    }
}
