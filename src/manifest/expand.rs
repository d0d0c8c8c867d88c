//! Expanding a manifest into the stream it stands for.
//!
//! Owns the walk over parts: an explicit stack of open manifests (never the
//! call stack), tail calls (a manifest in the last position of its parent
//! replaces the parent's frame, so an endless self-referencing manifest runs
//! in constant memory), the nesting bound, loop detection and the bound on
//! manifests expanded without output, the `(*)` cache, and which
//! alternative is tried when a nested manifest fails.
//!
//! ```text
//!   stack: [ top manifest ][ nested ] … ──next part──▶ current part ──chunks──▶ consumer
//!            each frame: parser + unread manifest text + one part of lookahead
//! ```
//!
//! A part's own alternatives and mid-stream failover are `part`'s; parsing
//! lines is `parse`'s.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::fetch::Context;
use crate::http::{HttpBody, Response};
use crate::manifest::cache::{Cache, CacheFill};
use crate::manifest::parse::{ManifestParser, PartSpec};
use crate::parts::alternatives::{self as part, Opened, PartPlan, PartReader};
use crate::parts::window::{Event, Prefetcher, Slot};
use crate::source::ByteSource;
use crate::url::Url;

/// The most manifests open at once (non-tail nesting, the top one included).
/// Real manifests nest a few levels; more is almost surely a mistake, and the
/// bound keeps memory bounded.
pub const MAX_NESTING: usize = 64;

/// The most manifests expanded in a row without a byte of output, the top
/// one included. Loop detection stops a manifest expanded twice, but a
/// server can generate an endless chain of distinct manifests (`1.parts`
/// naming only `2.parts`, and so on) that never produces a byte and would
/// otherwise run forever. Nesting is bounded by [`MAX_NESTING`], so only
/// tail calls and empty manifests can chain this far: real manifests
/// reach a byte within a few expansions, and 1024 still allows long runs
/// of empty ones while a runaway chain ends after about a thousand
/// requests (a second or two on a nearby server).
pub const MAX_EXPANSIONS_WITHOUT_OUTPUT: usize = 1024;

/// Before its first part is fetched, a manifest body is read as far as it
/// has arrived (within [`MANIFEST_GRACE`]), up to this size. A manifest that arrives at once
/// (the usual case) is thus read whole, which frees its connection to fetch
/// the parts: one connection for a whole download from one server. A
/// manifest still on its way, or a longer one, streams: its first part
/// starts without waiting for the rest.
pub const MANIFEST_PREFETCH: usize = 1024 * 1024;

/// How long reading a manifest ahead waits for more of it before its
/// first part starts anyway: a body sent in several writes arrives within
/// this on any nearby server, while a slow manifest delays its first part
/// by no more than this.
pub const MANIFEST_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

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
    manifest: Arc<Url>,
}

/// A part read from a manifest but not yet streamed, maybe being fetched.
struct Upcoming {
    spec: PartSpec,
    slot: Option<Slot>,
}

/// What reading a manifest's next part gave.
enum Read {
    Part(PartSpec),
    End,
    /// Only with `wait == false`: the next part has not arrived yet.
    NotYet,
}

/// One open manifest.
struct Frame {
    /// Shared with the records of its parts and the loop check.
    url: Arc<Url>,
    parser: ManifestParser,
    body: Option<HttpBody>,
    pending: Vec<u8>,
    pending_pos: usize,
    finished: bool,
    /// Parts read ahead, in order (the window prefetches from here).
    ahead: VecDeque<Upcoming>,
    /// Set once reading ahead met the manifest's end (or an error in it),
    /// which comes after the parts in `ahead`.
    ahead_end: Option<Result<()>>,
    /// The parts this frame's stream serves, innermost last; older entries
    /// come from frames that tail calls replaced.
    fallbacks: Vec<Fallback>,
}

impl Frame {
    /// The length of the stream this manifest stands for, when its whole
    /// text is in and every part tells its size: the sum of the sizes. A
    /// part that may be a manifest itself (a `.parts` URL) leaves it
    /// unknown, since its size would be its text's, not its stream's.
    fn known_length(&self) -> Option<u64> {
        if self.body.is_some() {
            return None;
        }
        let mut parser = ManifestParser::new((*self.url).clone());
        let mut rest = &self.pending[..];
        let mut total = 0u64;
        let mut add = |part: PartSpec| -> Option<()> {
            let nested = part
                .alternatives
                .iter()
                .any(|u| u.path().ends_with(".parts"));
            total = total.checked_add(part.size.filter(|_| !nested)?)?;
            Some(())
        };
        loop {
            let (used, part) = parser.feed(rest).ok()?;
            rest = &rest[used..];
            match part {
                Some(part) => add(part)?,
                None if rest.is_empty() => break,
                None => {}
            }
        }
        if let Some(part) = parser.finish().ok()? {
            add(part)?;
        }
        Some(total)
    }

    /// Opens a frame over a manifest response, reading up to
    /// [`MANIFEST_PREFETCH`] bytes of it at once.
    fn open(url: Arc<Url>, response: Response, fallbacks: Vec<Fallback>) -> Result<Frame> {
        let parser = ManifestParser::new(response.url().clone());
        let mut body = Some(response.into_body());
        let mut pending = Vec::new();
        let started = std::time::Instant::now();
        while let Some(source) = body.as_mut() {
            // The wait for more is the socket's, up to the end of the grace,
            // not a loop of 1 ms sleeps (88 wake-ups, seen with `strace -c`,
            // for a manifest whose second half came 300 ms after its first).
            let left = MANIFEST_GRACE.saturating_sub(started.elapsed());
            if pending.len() >= MANIFEST_PREFETCH
                || left.is_zero()
                || !source.has_bytes_within(left)
            {
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
            ahead: VecDeque::new(),
            ahead_end: None,
            fallbacks,
        })
    }

    /// The next part, with its prefetch slot if it has one.
    fn next_part(&mut self) -> Result<Option<Upcoming>> {
        if let Some(upcoming) = self.ahead.pop_front() {
            return Ok(Some(upcoming));
        }
        match self.ahead_end.take() {
            Some(end) => end.map(|()| None),
            None => Ok(self.read_part()?.map(|spec| Upcoming { spec, slot: None })),
        }
    }

    /// Reads one more part into `ahead` if it has already arrived; false
    /// when there is none to read now.
    fn read_ahead(&mut self) -> bool {
        if self.ahead_end.is_some() {
            return false;
        }
        match self.read(false) {
            Ok(Read::Part(spec)) => {
                self.ahead.push_back(Upcoming { spec, slot: None });
                true
            }
            Ok(Read::End) => {
                self.ahead_end = Some(Ok(()));
                false
            }
            Ok(Read::NotYet) => false,
            Err(err) => {
                self.ahead_end = Some(Err(err));
                false
            }
        }
    }

    /// Whether the part `next_part` returned last is the manifest's last.
    ///
    /// Asked only when that part turns out to be a manifest (the one case
    /// where tail position matters), because answering may wait for more
    /// of this manifest to arrive: a plain first part streams at once.
    fn last_part_was_last(&mut self) -> bool {
        if !self.ahead.is_empty() {
            return false;
        }
        if self.ahead_end.is_none() {
            match self.read_part() {
                Ok(Some(spec)) => {
                    self.ahead.push_back(Upcoming { spec, slot: None });
                    return false;
                }
                Ok(None) => self.ahead_end = Some(Ok(())),
                Err(err) => self.ahead_end = Some(Err(err)),
            }
        }
        // A parse error is not the end: it surfaces at the next part.
        matches!(self.ahead_end, Some(Ok(())))
    }

    /// The next part, waiting for the manifest's bytes if need be.
    fn read_part(&mut self) -> Result<Option<PartSpec>> {
        match self.read(true)? {
            Read::Part(spec) => Ok(Some(spec)),
            Read::End | Read::NotYet => Ok(None),
        }
    }

    /// The next part; without `wait`, only from bytes already received.
    fn read(&mut self, wait: bool) -> Result<Read> {
        loop {
            if self.finished {
                return Ok(Read::End);
            }
            if self.pending_pos < self.pending.len() {
                let (used, part) = self.parser.feed(&self.pending[self.pending_pos..])?;
                self.pending_pos += used;
                if let Some(part) = part {
                    return Ok(Read::Part(part));
                }
                if used > 0 {
                    continue;
                }
            }
            self.pending.clear();
            self.pending_pos = 0;
            if !wait
                && self
                    .body
                    .as_mut()
                    .is_some_and(|body| !body.has_bytes_ready())
            {
                return Ok(Read::NotYet);
            }
            let chunk = match self.body.as_mut() {
                Some(body) => body.next_chunk()?,
                None => None,
            };
            match chunk {
                Some(chunk) => self.pending.extend_from_slice(chunk),
                None => {
                    self.body = None;
                    self.finished = true;
                    return Ok(match self.parser.finish()? {
                        Some(part) => Read::Part(part),
                        None => Read::End,
                    });
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
    /// A part fetched ahead by the window, drained from its slot.
    Prefetched {
        slot: Slot,
        data: Vec<u8>,
        fallback: Box<Fallback>,
        /// Some of the part's bytes were handed on already.
        started: bool,
    },
}

/// Where the part being opened sits, for tail calls.
#[derive(Clone, Copy)]
enum Position {
    /// The part the top frame just yielded: a tail call if it is its last.
    OfTopFrame,
    /// A fallback of a frame that failed: never a tail call.
    Nested,
}

/// Why an expansion step failed.
enum Failure {
    /// A part or a manifest failed: another alternative may still serve.
    Part(Error),
    /// A loop, too deep nesting, or too many manifests expanded without a
    /// byte: the whole download ends.
    Fatal(Error),
}

/// The plan of a part as the manifest gives it.
fn plan_of(spec: &PartSpec) -> PartPlan {
    PartPlan {
        alternatives: spec.alternatives.clone(),
        size: spec.size,
        sha256: spec.sha256,
    }
}

/// The error for a part none of whose alternatives could be opened, naming
/// the manifest line it comes from.
fn part_failed(part: &Fallback, err: Error) -> Error {
    // Stopped on purpose: no part's failure, and nothing to say of one.
    if err.kind() == ErrorKind::Cancelled {
        return err;
    }
    failed_at(&part.manifest, part.line, err.message(), &err)
}

/// `err`, said as `what`, as the failure of the part at `line` of
/// `manifest`.
fn failed_at(manifest: &Url, line: usize, what: &str, err: &Error) -> Error {
    Error::new(err.kind(), format!("part at line {line} failed: {what}"))
        .with_subject(manifest.redacted())
        .with_causes(err.causes().to_vec())
}

/// A part streamed to its end, as a later run resuming the download can
/// recognise it: the manifest that listed it, its line there, its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    /// The manifest's URL (as requested, before redirects), shared by the
    /// records of a run of its parts: a record costs a few words, not a
    /// URL.
    pub manifest: Arc<Url>,
    /// The line the part starts on.
    pub line: usize,
    /// Bytes the part gave.
    pub size: u64,
}

/// A part fetched to its end ahead of the one being written when the
/// download stopped, kept beside the partial file for the next run: which
/// part of the stream it is (`ordinal`, counted from the stream's first
/// part), and where it was listed, as a [`PartRecord`]. A later run uses
/// it only where the same manifest and line come at the same ordinal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AheadPart {
    /// Parts of the stream before this one.
    pub ordinal: u64,
    /// The manifest and line that listed it, and its length.
    pub record: PartRecord,
}

/// The parts an earlier run kept ([`AheadPart`]), their bytes one after
/// the other in `file`, in the order listed.
struct Kept {
    parts: VecDeque<(AheadPart, u64)>,
    file: std::fs::File,
}

/// The most parts of a manifest a download records for resuming; past it
/// the stream goes on but records no more, and a later run fetches the
/// parts after them again.
///
/// The record is what a caller saves so that a later run can skip the
/// parts, and the command rewrites it whole every 2 s in its control file
/// (a line of about 20 bytes a part, and the manifest's URL where it
/// changes). 10 000 parts keep that file to some 250 KB, so the rewrite
/// stays cheap, and the record in memory to a few hundred KB (a record is
/// a few words: it shares its manifest's URL). A bound of a million let an
/// endless manifest grow its control file to tens of megabytes, each
/// rewritten every 2 s: I/O quadratic in the download's length. 10 000
/// parts of 1 MiB are a 10 GiB download; a run-length form would keep long
/// regular manifests resumable further, but an endless or irregular stream
/// would still need a bound, and a count of parts is the simpler one.
pub const MAX_RECORDED_PARTS: usize = 10_000;

/// The message of the error (of kind [`ErrorKind::ResumeMismatch`]) a
/// resumed download gets when its manifests no longer list the parts the
/// earlier run completed: the caller starts over.
pub const RESUME_MISMATCH: &str =
    "the manifest no longer lists the parts the earlier run completed";

/// The stream a manifest stands for.
pub struct ManifestStream {
    /// The whole stream's length, when the manifest tells it (see
    /// `Frame::known_length`), less the parts an earlier run completed.
    length: Option<u64>,
    client: Context,
    /// Parts fetched at once; 1 reads each part in place when it is due.
    parallel: usize,
    prefetcher: Prefetcher,
    stack: Vec<Frame>,
    current: Current,
    cache: Cache,
    /// The manifests expanded since the last byte handed on: one expanded
    /// twice is a loop, more than [`MAX_EXPANSIONS_WITHOUT_OUTPUT`] a
    /// chain that may never produce a byte.
    expanded_since_output: HashSet<Arc<Url>>,
    produced: u64,
    parts_done: u64,
    ended: bool,
    /// The part being streamed: where it was listed, and `produced` when
    /// it started.
    part_origin: Option<(Arc<Url>, usize, u64)>,
    /// The parts streamed to their end, in order, while recording.
    completed: Vec<PartRecord>,
    /// Asked for by [`ManifestStream::record_parts`].
    recording: bool,
    /// Parts an earlier run completed: skipped without being fetched.
    skip: std::collections::VecDeque<PartRecord>,
    /// Parts an earlier run fetched ahead and kept: read from their file
    /// when their turn comes, not fetched.
    kept: Option<Kept>,
    /// Once cancelled: the ordinal of the top frame's first part ahead.
    stopped_at: Option<u64>,
}

impl ManifestStream {
    /// Expands the manifest `response`, fetched from `url`. The stream
    /// records no parts unless asked ([`ManifestStream::record_parts`]).
    pub fn new(client: Context, url: Url, response: Response, cache_limit: u64) -> Result<Self> {
        let url = Arc::new(url);
        let frame = Frame::open(Arc::clone(&url), response, Vec::new())
            .map_err(|e| e.with_subject(url.redacted()))?;
        let parallel = client.parallel();
        let length = frame.known_length();
        Ok(ManifestStream {
            length,
            client,
            parallel,
            // W parts ahead, and the current one still arriving.
            prefetcher: Prefetcher::new(parallel + 1),
            stack: vec![frame],
            current: Current::Idle,
            cache: Cache::new(cache_limit),
            expanded_since_output: HashSet::from([url]),
            produced: 0,
            parts_done: 0,
            ended: false,
            part_origin: None,
            completed: Vec::new(),
            recording: false,
            skip: std::collections::VecDeque::new(),
            kept: None,
            stopped_at: None,
        })
    }

    /// Skips, without fetching them, the parts an earlier run completed
    /// (`done`, in order): the stream starts after them. If the manifests
    /// list other parts than those, the stream fails with
    /// [`RESUME_MISMATCH`] before it hands on any byte.
    pub fn resume_after(&mut self, done: Vec<PartRecord>) {
        let skipped: u64 = done.iter().map(|part| part.size).sum();
        self.length = self.length.map(|length| length.saturating_sub(skipped));
        self.skip = done.into();
    }

    /// Uses the parts an earlier run fetched ahead and kept (`parts`, their
    /// bytes one after the other in `file`) when each one's turn comes,
    /// rather than fetching it: a part that the manifests no longer list
    /// there, or whose bytes no longer match its attributes, is fetched.
    pub fn use_kept(&mut self, parts: Vec<AheadPart>, file: std::fs::File) {
        let mut offset = 0;
        let parts = parts
            .into_iter()
            .map(|part| {
                let at = offset;
                offset += part.record.size;
                (part, at)
            })
            .collect();
        self.kept = Some(Kept { parts, file });
    }

    /// The parts fetched to their end ahead of the one being written, with
    /// their bytes, for a download stopped midway to keep: those the window
    /// holds whole, and those an earlier run kept that were not used yet.
    /// The nearest of them, as many as the window holds: at most that many
    /// parts of [`PART_BUFFER`] bytes each are kept, and twice that held in
    /// memory meanwhile. Call it once the stream has failed; the window's
    /// parts are used up.
    ///
    /// [`PART_BUFFER`]: crate::parts::window::PART_BUFFER
    pub fn complete_ahead(&mut self) -> Vec<(AheadPart, Vec<u8>)> {
        let mut found = Vec::new();
        if let Some(kept) = self.kept.take() {
            for (part, at) in kept.parts {
                if part.ordinal > self.parts_done {
                    if let Some(bytes) = read_kept(&kept.file, at, part.record.size) {
                        found.push((part, bytes.to_vec()));
                    }
                }
            }
        }
        let base = self.stopped_at.unwrap_or_else(|| self.next_ordinal());
        if let Some(frame) = self.stack.last() {
            for (index, upcoming) in frame.ahead.iter().enumerate() {
                let Some(slot) = &upcoming.slot else { continue };
                let Some(bytes) = slot.take_if_complete() else {
                    continue;
                };
                if !upcoming.spec.accepts(&bytes) {
                    continue;
                }
                let part = AheadPart {
                    ordinal: base + index as u64,
                    record: PartRecord {
                        manifest: Arc::clone(&frame.url),
                        line: upcoming.spec.line,
                        size: bytes.len() as u64,
                    },
                };
                found.push((part, bytes));
            }
        }
        found.sort_by_key(|(part, _)| part.ordinal);
        found.dedup_by_key(|(part, _)| part.ordinal);
        // The nearest, as many as the window: runs stopped one after the
        // other keep no more.
        found.truncate(self.parallel.max(1));
        found
    }

    /// The ordinal of the first part in the top frame's `ahead`: the one
    /// after the part being read, or the next when none is.
    fn next_ordinal(&self) -> u64 {
        match self.current {
            Current::Idle => self.parts_done,
            _ => self.parts_done + 1,
        }
    }

    /// The bytes of the part `spec` listed in `manifest`, about to start as
    /// part `parts_done`, when an earlier run kept it.
    fn take_kept(&mut self, manifest: &Url, spec: &PartSpec) -> Option<Arc<[u8]>> {
        let kept = self.kept.as_mut()?;
        while kept
            .parts
            .front()
            .is_some_and(|(part, _)| part.ordinal < self.parts_done)
        {
            kept.parts.pop_front();
        }
        let (part, _) = kept.parts.front()?;
        if part.ordinal != self.parts_done {
            return None;
        }
        let (part, at) = kept.parts.pop_front()?;
        let listed_here = *part.record.manifest == *manifest && part.record.line == spec.line;
        let bytes = read_kept(&kept.file, at, part.record.size).filter(|_| listed_here)?;
        spec.accepts(&bytes).then_some(bytes)
    }

    /// The bytes the stream will hand on, when the manifest says: its text
    /// arrived whole at once and every part has a `(size=…)`.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// Records the parts this stream completes, for
    /// [`completed_parts`](Self::completed_parts): what a caller saving
    /// the stream to a file keeps, so that a later run can skip them
    /// ([`Client::resume_manifest`](crate::Client::resume_manifest)).
    ///
    /// Off unless asked: a stream read once (to standard output, say) is
    /// never resumed, and its record would only grow with every part of a
    /// long or endless manifest. Call it before reading: a record that
    /// misses the first parts is of no use, so once a part is done (or
    /// skipped as done by an earlier run) this does nothing.
    pub fn record_parts(&mut self) {
        if self.parts_done == 0 {
            self.recording = true;
        }
    }

    /// The parts streamed to their end so far, including those skipped as
    /// done by an earlier run, up to the first [`MAX_RECORDED_PARTS`] (a
    /// longer or endless stream resumes after those); `None` when the
    /// stream does not record them ([`record_parts`](Self::record_parts)
    /// was not asked for before the first part ended).
    pub fn completed_parts(&self) -> Option<&[PartRecord]> {
        self.recording.then_some(&self.completed[..])
    }

    /// Parts streamed to their end so far.
    pub fn parts_done(&self) -> u64 {
        self.parts_done
    }

    /// Bytes received of the parts fetched ahead (the one being read, if
    /// it was, included) that are not handed on yet: at most
    /// [`PART_BUFFER`](crate::parts::window::PART_BUFFER) a part.
    pub fn bytes_ahead(&self) -> u64 {
        let current = match &self.current {
            Current::Prefetched { slot, .. } => slot.bytes_ahead(),
            _ => 0,
        };
        let upcoming: u64 = self
            .stack
            .iter()
            .flat_map(|frame| &frame.ahead)
            .filter_map(|upcoming| upcoming.slot.as_ref())
            .map(Slot::bytes_ahead)
            .sum();
        current + upcoming
    }

    /// Parts being fetched ahead of the one being read.
    pub fn parts_in_flight(&self) -> usize {
        self.stack
            .iter()
            .flat_map(|frame| &frame.ahead)
            .filter(|upcoming| upcoming.slot.is_some())
            .count()
    }

    /// True when the next `next_chunk` hands on bytes without waiting for
    /// the network: the part being read has more of them already, in its
    /// connection's buffer or in memory. False between parts, and for a
    /// part fetched ahead: its worker's bytes come over a channel that
    /// cannot be looked into without taking them, and it sends a short
    /// block only when its own connection ran dry.
    pub fn has_chunk_ready(&mut self) -> bool {
        if self.ended {
            return false;
        }
        match &mut self.current {
            Current::Part { reader, .. } => reader.has_chunk_ready(),
            Current::Cached {
                bytes, position, ..
            } => *position < bytes.len(),
            Current::Prefetched { .. } | Current::Idle => false,
        }
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
                        let err = self.failed_in_part(err);
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
                Current::Prefetched {
                    slot,
                    data,
                    fallback,
                    started,
                } => match slot.next_event() {
                    Event::Data(bytes) => {
                        slot.recycle(std::mem::replace(data, bytes));
                        *started = true;
                        self.produced += data.len() as u64;
                        self.expanded_since_output.clear();
                        return Ok(true);
                    }
                    Event::End => self.finish_part(),
                    Event::Failed(err) => {
                        let err = if *started {
                            self.failed_in_part(err)
                        } else {
                            part_failed(fallback, err)
                        };
                        self.current = Current::Idle;
                        self.recover(err)?;
                    }
                    Event::Manifest {
                        index,
                        response,
                        causes,
                    } => {
                        let mut part = *fallback.clone();
                        self.current = Current::Idle;
                        let opened = Ok(Opened::Manifest {
                            index,
                            response: *response,
                            causes,
                        });
                        let taken = self
                            .take_opened(&mut part, opened, Position::OfTopFrame, &mut Vec::new())
                            .and_then(|done| {
                                if done {
                                    Ok(())
                                } else {
                                    self.open_alternatives(part, Position::OfTopFrame, Vec::new())
                                }
                            });
                        match taken {
                            Ok(()) => {}
                            Err(Failure::Part(err)) => self.recover(err)?,
                            Err(Failure::Fatal(err)) => return Err(err),
                        }
                    }
                },
                Current::Idle => {
                    let Some(frame) = self.stack.last_mut() else {
                        return Ok(false);
                    };
                    match frame.next_part() {
                        Ok(None) => {
                            self.stack.pop();
                        }
                        Ok(Some(Upcoming { spec, slot })) => {
                            let manifest = Arc::clone(&frame.url);
                            if let Some(done) = self.skip.front() {
                                if done.manifest == manifest && done.line == spec.line {
                                    // Done by an earlier run: nothing to fetch.
                                    let done = self.skip.pop_front().expect("just seen");
                                    self.parts_done += 1;
                                    self.expanded_since_output.clear();
                                    self.record(done);
                                    continue;
                                }
                                if !spec
                                    .alternatives
                                    .iter()
                                    .any(|u| u.path().ends_with(".parts"))
                                {
                                    // Not a nested manifest that could hold
                                    // the recorded part: the manifests changed.
                                    self.ended = true;
                                    return Err(Error::new(
                                        ErrorKind::ResumeMismatch,
                                        RESUME_MISMATCH,
                                    )
                                    .with_subject(manifest.redacted()));
                                }
                            }
                            if let Some(bytes) = self.take_kept(&manifest, &spec) {
                                // Fetched by an earlier run, kept beside
                                // the partial file.
                                self.part_origin =
                                    Some((Arc::clone(&manifest), spec.line, self.produced));
                                self.current = Current::Cached {
                                    bytes,
                                    position: 0,
                                    chunk: 0..0,
                                };
                                self.fill_window();
                                continue;
                            }
                            self.part_origin =
                                Some((Arc::clone(&manifest), spec.line, self.produced));
                            let started = match slot {
                                Some(slot) => {
                                    self.current = Current::Prefetched {
                                        slot,
                                        fallback: Box::new(self.fallback_for(spec, manifest)),
                                        data: Vec::new(),
                                        started: false,
                                    };
                                    Ok(())
                                }
                                None => self.start_part(spec, manifest),
                            };
                            self.fill_window();
                            match started {
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

    /// `err`, from the part being streamed after it opened, naming the
    /// manifest and line that list the part.
    fn failed_in_part(&self, err: Error) -> Error {
        let Some((manifest, line, _)) = &self.part_origin else {
            return err;
        };
        if err.kind() == ErrorKind::Cancelled {
            return err;
        }
        // The source it names, if any, stays in the sentence.
        let what = match err.subject() {
            Some(subject) => format!("{}: {subject}", err.message()),
            None => err.message().to_owned(),
        };
        failed_at(manifest, *line, &what, &err)
    }

    fn chunk(&self) -> &[u8] {
        match &self.current {
            Current::Part { reader, .. } => reader.chunk(),
            Current::Cached { bytes, chunk, .. } => &bytes[chunk.clone()],
            Current::Prefetched { data, .. } => data,
            Current::Idle => &[],
        }
    }

    fn record(&mut self, mut part: PartRecord) {
        if !self.recording {
            return;
        }
        // Past the bound the first parts stay recorded: a later run
        // resumes after them and fetches the rest again.
        if self.completed.len() >= MAX_RECORDED_PARTS {
            return;
        }
        // A manifest opened again (a tail call to itself) is a new frame
        // with a URL of its own: the run of its parts keeps one.
        if let Some(last) = self.completed.last() {
            if last.manifest == part.manifest {
                part.manifest = Arc::clone(&last.manifest);
            }
        }
        self.completed.push(part);
    }

    fn finish_part(&mut self) {
        if let Some((manifest, line, started)) = self.part_origin.take() {
            let size = self.produced - started;
            self.record(PartRecord {
                manifest,
                line,
                size,
            });
        }
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

    /// The failover state of a part that starts now.
    fn fallback_for(&self, spec: PartSpec, manifest: Arc<Url>) -> Fallback {
        Fallback {
            plan: plan_of(&spec),
            next: 0,
            causes: Vec::new(),
            cacheable: spec.cacheable,
            started_at: self.produced,
            line: spec.line,
            manifest,
        }
    }

    fn start_part(&mut self, spec: PartSpec, manifest: Arc<Url>) -> Result<(), Failure> {
        if spec.cacheable {
            if let Some(bytes) = self.cache.lookup(&spec.alternatives, |b| spec.accepts(b)) {
                self.current = Current::Cached {
                    bytes,
                    position: 0,
                    chunk: 0..0,
                };
                return Ok(());
            }
        }
        let fallback = self.fallback_for(spec, manifest);
        self.open_alternatives(fallback, Position::OfTopFrame, Vec::new())
    }

    /// Starts fetching the parts after the current one, up to the window:
    /// those the top manifest has already delivered, in order. Parts marked
    /// `(*)` are left to be read in place when due, so that the cache sees
    /// them in order: a cached URL is then never fetched twice.
    fn fill_window(&mut self) {
        // While skipping what an earlier run did, nothing is fetched ahead
        // (it might be skipped too).
        if self.parallel <= 1 || !self.skip.is_empty() {
            return;
        }
        // The window is the parts after the current one: while part k is
        // read, parts k+1 … k+W are fetched.
        let mut in_flight = self
            .stack
            .iter()
            .flat_map(|frame| &frame.ahead)
            .filter(|upcoming| upcoming.slot.is_some())
            .count();
        let base = self.next_ordinal();
        let kept: Vec<u64> = self
            .kept
            .as_ref()
            .map(|kept| kept.parts.iter().map(|(part, _)| part.ordinal).collect())
            .unwrap_or_default();
        let ManifestStream {
            stack,
            prefetcher,
            client,
            parallel,
            ..
        } = self;
        let Some(frame) = stack.last_mut() else {
            return;
        };
        let mut index = 0;
        while in_flight < *parallel {
            if index == frame.ahead.len()
                && (frame.ahead.len() >= 2 * *parallel || !frame.read_ahead())
            {
                break;
            }
            let upcoming = &mut frame.ahead[index];
            let is_kept = kept.contains(&(base + index as u64));
            if upcoming.slot.is_none() && !upcoming.spec.cacheable && !is_kept {
                let plan = plan_of(&upcoming.spec);
                upcoming.slot = Some(prefetcher.start(client, plan, is_manifest));
                in_flight += 1;
            }
            index += 1;
        }
    }

    /// Opens the first alternative of `part` from `part.next` that works. A
    /// manifest alternative becomes a frame, which replaces the top one when
    /// `position` says the part is the last of the top frame. `inherited`
    /// are older fallbacks the new frame keeps.
    fn open_alternatives(
        &mut self,
        mut part: Fallback,
        position: Position,
        mut inherited: Vec<Fallback>,
    ) -> Result<(), Failure> {
        loop {
            let opened = part::open(
                &self.client,
                part.plan.clone(),
                part.next,
                std::mem::take(&mut part.causes),
                is_manifest,
            );
            if self.take_opened(&mut part, opened, position, &mut inherited)? {
                return Ok(());
            }
        }
    }

    /// Makes what opening `part` gave the current stream: true when done,
    /// false when the alternatives after the one that answered must be
    /// tried (it was a manifest that would not open).
    fn take_opened(
        &mut self,
        part: &mut Fallback,
        opened: Result<Opened>,
        position: Position,
        inherited: &mut Vec<Fallback>,
    ) -> Result<bool, Failure> {
        match opened {
            Err(err) => Err(Failure::Part(part_failed(part, err))),
            Ok(Opened::Plain(reader)) => {
                let fill = part.cacheable.then(|| CacheFill::new(self.cache.room()));
                self.current = Current::Part {
                    reader: Box::new(reader),
                    fill,
                };
                Ok(true)
            }
            Ok(Opened::Manifest {
                index,
                response,
                causes,
            }) => {
                let url = part.plan.alternatives[index].clone();
                part.next = index + 1;
                part.causes = causes;
                if part.plan.size.is_some() || part.plan.sha256.is_some() {
                    // A manifest's stream may be endless and cannot be held
                    // back until a digest matches: rather than hand on bytes
                    // no one checked, the alternative fails.
                    part.causes.push(
                        Error::new(
                            ErrorKind::Manifest,
                            "is a manifest, but a part with (size=…) or (sha256=…) \
                             must be a plain resource, whose bytes can be checked",
                        )
                        .with_subject(url.redacted()),
                    );
                    return Ok(false);
                }
                if self.expanded_since_output.contains(&url) {
                    return Err(Failure::Fatal(
                        Error::new(
                            ErrorKind::Manifest,
                            "manifest loop: expanded again before producing any byte",
                        )
                        .with_subject(url.redacted()),
                    ));
                }
                if self.expanded_since_output.len() >= MAX_EXPANSIONS_WITHOUT_OUTPUT {
                    return Err(Failure::Fatal(
                        Error::new(
                            ErrorKind::Manifest,
                            format!(
                                "{} manifests expanded without producing a byte \
                                 (the most allowed) before this one",
                                self.expanded_since_output.len()
                            ),
                        )
                        .with_subject(url.redacted()),
                    ));
                }
                let tail = match position {
                    Position::OfTopFrame => self
                        .stack
                        .last_mut()
                        .is_some_and(|frame| frame.last_part_was_last()),
                    Position::Nested => false,
                };
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
                let url = Arc::new(url);
                match Frame::open(Arc::clone(&url), response, Vec::new()) {
                    Ok(mut frame) => {
                        let mut fallbacks = if tail {
                            self.unused_fallbacks_of_top()
                        } else {
                            Vec::new()
                        };
                        fallbacks.append(inherited);
                        fallbacks.push(part.clone());
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
                        self.expanded_since_output.insert(url);
                        self.fill_window();
                        Ok(true)
                    }
                    Err(err) => {
                        part.causes.push(err.with_subject(url.redacted()));
                        Ok(false)
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
        // Stopped: no other source is tried, and the frames stay, with the
        // parts fetched ahead, for the saver to keep what is complete.
        if self.client.cancel_handle().is_cancelled() {
            self.ended = true;
            // The part that was being read is not done: the window's
            // parts come after it.
            self.stopped_at = Some(self.parts_done + u64::from(self.part_origin.is_some()));
            return Err(err);
        }
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
                match self.open_alternatives(part, Position::Nested, inherited.clone()) {
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

/// `size` bytes of `file` at `at`; `None` when they cannot be read.
fn read_kept(file: &std::fs::File, at: u64, size: u64) -> Option<Arc<[u8]>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(at)).ok()?;
    let mut bytes = vec![0; usize::try_from(size).ok()?];
    file.read_exact(&mut bytes).ok()?;
    Some(bytes.into())
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
