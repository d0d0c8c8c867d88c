//! Segmented downloads: one large resource fetched as pieces over several
//! connections, handed on in order.
//!
//! Owns the piece schedule. The resource is cut into pieces (its [`Layout`])
//! bytes; the consumer streams piece 0 straight from the first response
//! (its first byte is not delayed), while worker threads, each with a
//! kept-alive connection, claim the next unclaimed piece, fetch it with a
//! bounded `Range` request and park it until the consumer reaches it.
//! Claims stay within a window of pieces ahead of the consumer, so memory is
//! bounded (window × piece) whatever the length, and a slow consumer slows
//! the workers instead of filling memory.
//!
//! Why fixed pieces rather than long ranges split in half when a connection
//! finishes (aria2, axel): a connection that finishes simply claims the next
//! piece, so no connection is ever left with a long tail, and the output can
//! stream in order with a small reorder buffer; a piece is also the unit a
//! later swarm mode trades. Near the end, an idle worker fetches a copy of
//! the oldest piece still outstanding, and whichever copy arrives first is
//! used, so one slow connection cannot hold up the end.
//!
//! A download to a file needs no order at all: [`SegmentedDownload::new`](crate::engine::download::SegmentedDownload::new)
//! turns the stream into a download whose workers write each
//! piece at its own offset in a [`PieceStore`] as it arrives. The window
//! then only bounds how far claims run ahead of the first missing piece
//! ([`STORE_WINDOW`]), memory holds no pieces, and what is on disk after an
//! interruption is a [`PieceSet`] a later run continues from
//! ([`SegmentedDownload::resume`](crate::engine::download::SegmentedDownload::resume)). A worker then claims a run of up to
//! [`MAX_SPAN`] pieces and asks for them with one request (`Run`), each
//! piece recorded as soon as it is whole; runs are an even share of what no
//! one has started (`State::span`), and a worker that finds nothing left
//! takes the back half of another run's pieces not yet started.
//!
//! Every piece request carries `If-Range` with the first response's
//! validator (a strong `ETag`, else `Last-Modified`): a resource that
//! changes midway answers 200 instead of 206, and the download fails rather
//! than mixing two versions.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, Retry};
use crate::fetch::continuation::{ask_again, CutsInARow};
use crate::fetch::retry::backoff;
use crate::fetch::Context;
use crate::http::ranged::{check_range, range_answered, Resource};
use crate::http::retry_after::retry_after;
use crate::http::socket::{Watch, WATCH_INTERVAL};
use crate::http::validator::{same_version, strong_etag, validator_of};
use crate::http::{HttpBody, Request, Response};
use crate::pieces::sources::Sources;
use crate::pieces::{Layout, PieceSet, PieceStore};
use crate::source::ByteSource;
use crate::url::Url;

/// A resource is split only from this size on; below, one stream.
pub const SEGMENT_THRESHOLD: u64 = 4 * 1024 * 1024;

/// Connections per download by default (`-n/--connections`).
pub const DEFAULT_CONNECTIONS: usize = 4;

/// The most connections to one host by default (`--max-per-host`).
pub const MAX_PER_HOST: usize = 16;

/// A source's backoff at least this long is told
/// ([`Event::SourceBackingOff`]).
const ANNOUNCED_WAIT: Duration = Duration::from_secs(1);

/// How far claims may run ahead of the first missing piece when pieces go
/// to a store: nothing waits in memory, so this only bounds how scattered
/// the pieces on disk may be (and the control file that lists them).
pub const STORE_WINDOW: u64 = 256;

/// A piece that could not be fetched, and how long the server asked to
/// wait before asking again (`Retry-After` on a 429 or 503).
struct Failed {
    err: Error,
    retry_after: Option<Duration>,
    /// Not a failure: another copy of the piece arrived first, after
    /// this many bytes of this one.
    lost_race: Option<u64>,
    /// The store could not take the bytes, or the client was cancelled: no
    /// source is to blame, no other source would do better, and the
    /// download cannot go on.
    local: bool,
}

impl Failed {
    /// The store could not take the bytes.
    fn local(err: Error) -> Failed {
        Failed {
            err,
            retry_after: None,
            lost_race: None,
            local: true,
        }
    }

    /// Another copy of the piece arrived first, after `bytes` of this one
    /// (or the download stopped).
    fn lost_race(bytes: u64) -> Failed {
        Failed {
            err: Error::new(ErrorKind::Io, "another copy of the piece arrived first"),
            retry_after: None,
            lost_race: Some(bytes),
            local: false,
        }
    }
}

impl From<Error> for Failed {
    fn from(err: Error) -> Failed {
        Failed {
            local: err.kind() == ErrorKind::Cancelled,
            err,
            retry_after: None,
            lost_race: None,
        }
    }
}

/// A piece being fetched.
struct Outstanding {
    since: Instant,
    source: usize,
    copies: u32,
}

/// The most pieces one request asks for (see `Run`). Each request costs a
/// round trip, which a run of 64 MiB makes negligible on any link; runs are
/// shorter anyway on all but large files (`State::span`), and four of
/// them fill [`STORE_WINDOW`].
pub const MAX_SPAN: u64 = 64;

/// A piece outstanding this long holds the others up: an idle worker
/// fetches a copy of it from another source, and the first copy to arrive
/// is used. Three times what a piece usually takes, and at least this.
const STALL_FLOOR: Duration = Duration::from_millis(200);

/// A worker whose answer has sent nothing for this long, and for three
/// times what a piece usually takes, gives the answer up when the piece
/// can come from elsewhere: another source, or a new connection to the
/// same one while the others bring pieces (see [`Vigil`]). Longer than
/// [`STALL_FLOOR`]: a copy costs an idle worker, giving up costs what the
/// answer had brought of its piece.
const GIVE_UP_FLOOR: Duration = Duration::from_secs(2);

/// The schedule the consumer and the workers share.
pub(super) struct State {
    /// The next piece no worker has claimed.
    next_claim: u64,
    /// The next piece the consumer will hand on.
    pub(super) next_out: u64,
    /// Fetched pieces not yet handed on.
    done: BTreeMap<u64, Vec<u8>>,
    /// With a store: the pieces written to it whole (`next_out` is then
    /// the first piece missing from it).
    pub(super) have: PieceSet,
    /// Pieces being fetched (for fetching a copy of a slow one).
    claimed: BTreeMap<u64, Outstanding>,
    /// Time spent on the pieces fetched so far, and how many: what a piece
    /// usually takes.
    piece_time: Duration,
    pieces_fetched: u32,
    /// When a worker last completed a piece.
    last_piece_at: Option<Instant>,
    /// Pieces whose fetch failed on a source, to be fetched again first.
    retry: BTreeSet<u64>,
    /// The runs being fetched, by id: the pieces of each that its worker
    /// has not started yet (they come after its current piece in the same
    /// answer). An idle worker may take the back half of the longest.
    runs: BTreeMap<u64, Range<u64>>,
    next_run: u64,
    /// When the workers started, and the bytes of the pieces they fetched
    /// since: the download's rate.
    workers_since: Option<Instant>,
    fetched_bytes: u64,
    sources: Sources,
    /// The first failure that no retry could mend: the download ends.
    pub(super) failed: Option<Error>,
    /// The consumer went away.
    cancelled: bool,
}

impl State {
    /// Whether piece `index` is still wanted (a copy that lost the race is
    /// not).
    fn needs(&self, index: u64) -> bool {
        index >= self.next_out && !self.done.contains_key(&index) && !self.have.contains(index)
    }

    /// How long a piece may be outstanding before it holds the others up:
    /// three times what a piece usually takes, at least [`STALL_FLOOR`].
    fn stall_after(&self) -> Duration {
        let usual = self
            .piece_time
            .checked_div(self.pieces_fetched.max(1))
            .unwrap_or_default();
        (usual * 3).max(STALL_FLOOR)
    }

    /// With a store, how long the download should take for the pieces no
    /// one has claimed yet, at the rate the workers have reached; `None`
    /// without a store (pieces handed on in order must come in order) or
    /// before the rate is known.
    fn time_left(&self, shared: &Shared) -> Option<Duration> {
        shared.store.get()?;
        let since = self.workers_since?;
        let elapsed = since.elapsed();
        let piece = shared.layout.piece_length();
        if elapsed < Duration::from_millis(200) || self.fetched_bytes < 4 * piece {
            return None;
        }
        let unclaimed = self.unclaimed(shared) + self.unstarted();
        let micros =
            u128::from(unclaimed * piece) * elapsed.as_micros() / u128::from(self.fetched_bytes);
        Some(Duration::from_micros(micros as u64))
    }

    /// Pieces no worker has claimed.
    fn unclaimed(&self, shared: &Shared) -> u64 {
        shared.layout.pieces().saturating_sub(self.next_claim) + self.retry.len() as u64
    }

    /// Pieces claimed in runs whose workers have not started them.
    fn unstarted(&self) -> u64 {
        self.runs.values().map(|run| run.end - run.start).sum()
    }

    /// How many pieces one claim may take, fetched with one request.
    ///
    /// One, when the pieces are handed on in order: the window holds one
    /// piece per connection, and pieces fetched one after the other by a
    /// connection would leave the others waiting for room. Written where
    /// they belong, up to [`MAX_SPAN`], and less towards the end: an even
    /// share of the pieces no one has started, so that the last claims are
    /// short and end together (guided self-scheduling; a worker that runs
    /// out takes half of what another has not started).
    fn span(&self, shared: &Shared) -> u64 {
        if shared.store.get().is_none() {
            return 1;
        }
        let not_started = self.unclaimed(shared) + self.unstarted();
        let share = not_started.div_ceil(shared.workers.max(1) as u64);
        share.clamp(1, MAX_SPAN)
    }

    /// Piece `index` is in the store.
    pub(super) fn stored(&mut self, index: u64) {
        self.have.insert(index);
        self.next_out = self.have.first_missing_from(self.next_out);
    }
}

pub(super) struct Shared {
    pub(super) resource: Resource,
    /// How the resource is cut into pieces.
    pub(super) layout: Layout,
    window: u64,
    /// How many workers fetch pieces.
    workers: usize,
    /// Set once, before the workers start, for a download to a store.
    pub(super) store: OnceLock<Arc<dyn PieceStore>>,
    state: Mutex<State>,
    pub(super) changed: Condvar,
    /// Piece buffers handed on, for the workers to fill again.
    spare: Mutex<Vec<Vec<u8>>>,
    /// The stream was dropped: no worker writes another byte.
    stopped: AtomicBool,
}

impl Shared {
    /// How many pieces past the next one out may be claimed.
    fn window(&self) -> u64 {
        if self.store.get().is_some() {
            STORE_WINDOW
        } else {
            self.window
        }
    }

    /// Takes a buffer for a piece: one the consumer has handed on, or a
    /// new one. Why reuse: a buffer filled on a worker thread and freed on
    /// the consumer's is memory the allocator keeps in the worker's arena,
    /// so a stream's RSS grew past its window. Measured streaming 64 MiB
    /// from nginx over 4 connections of 20 MiB/s each: 17 MiB peak RSS
    /// with a window of 4 pieces, 9.6 MiB with reuse (29 MiB with the
    /// earlier window of 16).
    fn piece_buffer(&self) -> Vec<u8> {
        let spare = self.spare.lock().ok().and_then(|mut spare| spare.pop());
        let mut buffer = spare.unwrap_or_default();
        buffer.clear();
        buffer.reserve_exact(self.layout.piece_length() as usize);
        buffer
    }

    /// A piece's buffer the consumer is done with, for [`Shared::piece_buffer`].
    fn give_back(&self, buffer: Vec<u8>) {
        if buffer.capacity() == 0 {
            return;
        }
        if let Ok(mut spare) = self.spare.lock() {
            if spare.len() < self.window as usize {
                spare.push(buffer);
            }
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A worker that panicked mid-update cannot leave the schedule
        // inconsistent in a way that matters more than ending the download.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A first piece that arrives at this rate or faster shows a connection
/// that already runs at the speed of a fast LAN: more connections would
/// only add copies between threads (measured on loopback: slower, not
/// faster), so the rest comes as one stream.
pub const FAST_ENOUGH_BYTES_PER_SEC: u64 = 100 * 1024 * 1024;

/// Where the stream stands.
pub(super) enum Mode {
    /// Piece 0, straight from the first response as it arrives.
    First(HttpBody),
    /// Everything after piece 0 as one response (a fast connection), up to
    /// `until` once it has proved slow (then pieces take over there).
    Rest {
        body: HttpBody,
        until: Option<u64>,
        lent: usize,
    },
    /// Pieces from the workers (or fetched in turn when there are none).
    Pieces,
    Ended,
}

/// A resource streamed in order from pieces fetched in parallel.
pub struct SegmentedStream {
    pub(super) shared: Arc<Shared>,
    pub(super) client: Context,
    pub(super) workers: usize,
    pub(super) mode: Mode,
    started: Instant,
    current: Vec<u8>,
    /// The piece the first response carries (0, except when continuing an
    /// earlier run).
    first_index: u64,
    /// Where the one stream after the first piece starts.
    rest_from: u64,
    /// Bytes the one stream after the first piece has handed on.
    rest_received: u64,
    /// Bytes of the first piece handed on.
    first_received: u64,
    workers_started: bool,
    /// The workers' threads, joined when the stream is dropped: once it
    /// is gone, nothing writes to its store any more.
    threads: Vec<std::thread::JoinHandle<()>>,
    /// One worker waits for the first piece's connection.
    held_back: bool,
    /// The watch on the answer the consumer reads itself gave it up.
    gave_up: Arc<AtomicBool>,
    /// Bytes at the start of the next piece from the workers that the
    /// answer given up had handed on already, and where `current`'s bytes
    /// start for the consumer.
    skip: usize,
    current_from: usize,
    /// The consumer's own answers cut at one byte in a row.
    cuts: CutsInARow,
}

impl SegmentedStream {
    /// Streams `resource`, whose piece 0 is `first` (the body of the 206
    /// answer to the request for the first `piece` bytes), over `connections` in all.
    /// The workers start once piece 0 has shown how fast one connection is.
    ///
    /// `mirrors` serve the same bytes from elsewhere: each is checked by its
    /// first answer (same length, same strong `ETag` when both send one) and
    /// serves pieces alongside the others; there is then at least one
    /// connection per source.
    pub fn start(
        client: &Context,
        resource: Resource,
        piece: u64,
        first: HttpBody,
        connections: usize,
        mirrors: Vec<Url>,
    ) -> SegmentedStream {
        let layout = Layout::new(resource.length, piece);
        SegmentedStream::new(
            client,
            resource,
            layout,
            Mode::First(first),
            0,
            PieceSet::new(),
            connections,
            mirrors,
        )
    }

    // Internal: the two public ways in (`start` and
    // `SegmentedDownload::resume`) each fix most of these.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        client: &Context,
        resource: Resource,
        layout: Layout,
        mode: Mode,
        first_index: u64,
        have: PieceSet,
        connections: usize,
        mirrors: Vec<Url>,
    ) -> SegmentedStream {
        // The client caps connections per host; with mirrors, at least one
        // connection per source.
        let connections = connections.max(1).max(1 + mirrors.len());
        // Once piece 0 is in, its connection goes back to the pool and a
        // worker takes it up: N connections, N workers. One connection
        // means no workers: the rest comes as one more request on it (and
        // if that is refused, the pieces one after the other).
        let workers = if connections > 1 { connections } else { 0 };
        let pieces = layout.pieces();
        let missing = pieces - have.count().min(pieces);
        let sources = Sources::new(
            resource.url.clone(),
            resource.validator.clone(),
            mirrors,
            client.retries(),
            layout.piece_length(),
        );
        let shared = Arc::new(Shared {
            // Each connection one piece ahead, no more: pieces past the
            // consumer wait in memory, and a stream to a pipe must stay
            // within a few MiB (the target: 8 MiB RSS for a GiB; a window
            // of 16 measured 12-23 MiB when the workers took over). A slow
            // source's piece holds the others back at most until an idle
            // worker fetches a copy of it (three times the usual piece
            // time). With a store nothing waits in memory: STORE_WINDOW.
            window: connections.max(4) as u64,
            workers,
            resource,
            layout,
            store: OnceLock::new(),
            state: Mutex::new(State {
                next_claim: first_index + 1,
                // The consumer reads the first piece itself.
                next_out: first_index + 1,
                done: BTreeMap::new(),
                have,
                claimed: BTreeMap::new(),
                piece_time: Duration::ZERO,
                pieces_fetched: 0,
                last_piece_at: None,
                retry: BTreeSet::new(),
                runs: BTreeMap::new(),
                next_run: 0,
                workers_since: None,
                fetched_bytes: 0,
                sources,
                failed: None,
                cancelled: false,
            }),
            changed: Condvar::new(),
            spare: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        });
        let mut stream = SegmentedStream {
            shared,
            client: client.clone(),
            workers: workers.min(missing.saturating_sub(1) as usize),
            first_index,
            rest_from: layout.start(first_index + 1),
            rest_received: 0,
            first_received: 0,
            workers_started: false,
            threads: Vec::new(),
            held_back: false,
            gave_up: Arc::new(AtomicBool::new(false)),
            skip: 0,
            current_from: 0,
            cuts: CutsInARow::default(),
            mode: Mode::Ended,
            started: Instant::now(),
            current: Vec::new(),
        };
        stream.mode = match mode {
            Mode::First(body) => Mode::First(stream.watched(body)),
            other => other,
        };
        stream
    }

    /// Watches an answer the consumer reads itself (the first piece, or
    /// the rest as one stream): when workers can take over, one silent for
    /// [`GIVE_UP_FLOOR`] is given up, and they fetch from the piece it
    /// stopped in ([`SegmentedStream::take_over`]). Without, a stalled
    /// stream waited for the idle timeout, though a stall is as slow as a
    /// stream gets and the workers would have taken over a slow one.
    fn watched(&self, mut body: HttpBody) -> HttpBody {
        if self.workers > 0 {
            let gave_up = Arc::clone(&self.gave_up);
            let watch = Watch::new(move |waited| {
                let keep_waiting = waited < GIVE_UP_FLOOR;
                if !keep_waiting {
                    gave_up.store(true, Ordering::Relaxed);
                }
                keep_waiting
            });
            // A socket that cannot be set to wake waits as it did.
            let _ = body.set_watch(Some(watch));
        }
        body
    }

    /// The answer the consumer read itself went silent at byte `position`:
    /// the workers fetch the rest, from the piece it stopped in (all of
    /// it: the bytes of it already handed on are skipped).
    fn take_over(&mut self, position: u64) {
        let layout = self.shared.layout;
        let index = layout.piece_at(position);
        let in_order = self.shared.store.get().is_none();
        if in_order {
            self.skip = (position - layout.start(index)) as usize;
        }
        if self.workers_started {
            // Started while the first piece streamed: they are past it.
            let mut state = self.shared.lock();
            state.retry.insert(index);
            if in_order {
                state.next_out = index;
            }
            drop(state);
            self.shared.changed.notify_all();
            if std::mem::take(&mut self.held_back) {
                self.spawn_worker(self.workers - 1);
            }
        } else {
            self.start_workers(index, false);
        }
        self.mode = Mode::Pieces;
    }

    /// The resource's full length.
    pub fn length(&self) -> u64 {
        self.shared.resource.length
    }

    /// Pieces being fetched now and sources still in use, once the
    /// workers run; `None` while one stream carries the resource.
    pub fn activity(&self) -> Option<(usize, usize)> {
        if !matches!(self.mode, Mode::Pieces) || self.workers == 0 {
            return None;
        }
        let state = self.shared.lock();
        let fetching = state.claimed.values().map(|o| o.copies as usize).sum();
        Some((fetching, state.sources.alive()))
    }

    /// True when the next `next_chunk` hands on bytes without waiting for
    /// the network: bytes of the response being streamed in order have
    /// arrived. False for the workers' pieces, which arrive on other
    /// threads (asking would mean waiting), and at the end.
    pub fn has_chunk_ready(&mut self) -> bool {
        let position = self.rest_from + self.rest_received;
        match &mut self.mode {
            Mode::First(body) => body.has_payload_ready(),
            Mode::Rest { body, until, .. } => {
                until.is_none_or(|stop| position < stop) && body.has_payload_ready()
            }
            Mode::Pieces | Mode::Ended => false,
        }
    }

    /// The resource's `If-Range` value, if the server gave one.
    pub fn validator(&self) -> Option<&str> {
        self.shared.resource.validator.as_deref()
    }

    /// The first piece is in: either the rest as one stream, or the
    /// workers.
    fn after_first_piece(&mut self) -> Result<()> {
        let micros = self.started.elapsed().as_micros().max(1);
        let rate = u128::from(self.shared.layout.piece_length()) * 1_000_000 / micros;
        let after = self.first_index + 1;
        if self.workers > 0 && rate < u128::from(FAST_ENOUGH_BYTES_PER_SEC) {
            self.spawn_workers(after);
            return Ok(());
        }
        // One stream up to the next piece an earlier run already has (or
        // to the end).
        let resource = &self.shared.resource;
        let stop = self.shared.lock().have.next_present_after(self.first_index);
        let end = stop.map_or(resource.length, |index| self.shared.layout.start(index));
        if self.rest_from >= end {
            self.spawn_workers(after);
            return Ok(());
        }
        let last = stop.map(|_| end - 1);
        let mut request = Request::get(resource.url.clone()).range(self.rest_from, last);
        if let Some(validator) = &resource.validator {
            request = request.if_range(validator.clone());
        }
        let answer = self.client.send(&request).and_then(|response| {
            let response = response.error_for_status()?;
            same_version(&response, &resource.url, resource.validator.as_deref())?;
            check_range(&response, &resource.url, resource, self.rest_from, end - 1)?;
            Ok(response)
        });
        let response = match answer {
            Ok(response) => response,
            Err(err) if err.kind() == ErrorKind::Integrity => return Err(err),
            // A busy server, or one that caps ranges: the workers ask for
            // pieces instead, each retried on its own.
            Err(_) => {
                self.spawn_workers(after);
                return Ok(());
            }
        };
        self.started = Instant::now();
        self.mode = Mode::Rest {
            body: self.watched(response.into_body()),
            until: stop.map(|index| self.shared.layout.start(index)),
            lent: 0,
        };
        Ok(())
    }

    /// Starts the workers on the pieces from `index` on.
    fn spawn_workers(&mut self, index: u64) {
        if !self.workers_started {
            self.start_workers(index, false);
        }
        self.mode = Mode::Pieces;
    }

    /// Starts the workers on the pieces from `index` on; the consumer
    /// reads what comes before `index` itself (`alongside_first`: the first
    /// piece is still arriving on its own connection).
    fn start_workers(&mut self, index: u64, alongside_first: bool) {
        {
            let mut state = self.shared.lock();
            state.next_claim = index;
            state.workers_since = Some(Instant::now());
            if self.shared.store.get().is_none() {
                state.next_out = index;
            }
        }
        // While the first piece still streams (workers started early), its
        // connection is busy: one worker fewer until it ends, so that the
        // connections stay N.
        self.held_back = alongside_first;
        let now = self.workers - usize::from(self.held_back);
        for worker in 0..now {
            self.spawn_worker(worker);
        }
        self.workers_started = true;
    }

    fn spawn_worker(&mut self, worker: usize) {
        let shared = Arc::clone(&self.shared);
        let client = self.client.clone();
        // Worker 0 starts on the first mirror, if any.
        let thread = std::thread::spawn(move || work(&client, &shared, worker + 1));
        self.threads.push(thread);
    }

    /// The first piece is a quarter in: if it comes slowly, the workers
    /// need not wait for the rest of it to start on the pieces after it.
    fn review_first(&mut self) {
        let early = self.shared.layout.piece_length() / 4;
        if self.workers_started || self.workers == 0 || self.first_received < early {
            return;
        }
        let micros = self.started.elapsed().as_micros().max(1);
        let rate = u128::from(self.first_received) * 1_000_000 / micros;
        // A quarter of a piece takes 2.5 ms at the fast-enough rate: a
        // hiccup of the machine, not the link, can make it look slow. Only
        // a rate far below it starts the workers this early.
        if rate < u128::from(FAST_ENOUGH_BYTES_PER_SEC / 4) {
            self.start_workers(self.first_index + 1, true);
        }
    }

    /// The one stream has run for a while: a server that sent the first
    /// MiB fast and then slowed down (a rate limit that starts after a
    /// burst) is left at the next piece boundary for the workers.
    fn review_rest(&mut self) {
        const REVIEW_AFTER: Duration = Duration::from_millis(500);
        let Mode::Rest { until, .. } = &mut self.mode else {
            return;
        };
        if until.is_some() || self.workers == 0 {
            return;
        }
        let elapsed = self.started.elapsed();
        if elapsed < REVIEW_AFTER {
            return;
        }
        let rate = u128::from(self.rest_received) * 1_000_000 / elapsed.as_micros().max(1);
        if rate < u128::from(FAST_ENOUGH_BYTES_PER_SEC) {
            let offset = self.rest_from + self.rest_received;
            let piece = self.shared.layout.piece_length();
            *until = Some(offset.div_ceil(piece) * piece);
        }
    }

    /// Waits for the next piece in order (or fetches it, with no workers).
    fn next_piece(&mut self) -> Result<Option<Vec<u8>>> {
        let shared = &*self.shared;
        if self.workers == 0 {
            let index = shared.lock().next_out;
            if index >= shared.layout.pieces() {
                return Ok(None);
            }
            let mut piece = Vec::new();
            fetch_with_retries(&self.client, shared, index, &mut |_, bytes| {
                piece.extend_from_slice(bytes);
                Ok(())
            })?;
            shared.lock().next_out += 1;
            return Ok(Some(piece));
        }
        let mut state = shared.lock();
        loop {
            if state.next_out >= shared.layout.pieces() {
                return Ok(None);
            }
            let index = state.next_out;
            if let Some(piece) = state.done.remove(&index) {
                state.next_out += 1;
                shared.changed.notify_all();
                return Ok(Some(piece));
            }
            if let Some(err) = &state.failed {
                return Err(err.clone());
            }
            self.client.cancelled()?;
            state = shared
                .changed
                .wait_timeout(state, WATCH_INTERVAL)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Reads the next chunk of the first piece, or of the one stream after
    /// it, and says where it belongs; or says that the pieces (or the end)
    /// come next.
    pub(super) fn next_streamed(&mut self) -> Result<Next> {
        loop {
            match &mut self.mode {
                Mode::First(body) => match body.next_chunk() {
                    Ok(Some(chunk)) => {
                        let offset =
                            self.shared.layout.start(self.first_index) + self.first_received;
                        self.first_received += chunk.len() as u64;
                        self.review_first();
                        return Ok(Next::Chunk { offset });
                    }
                    Err(err) => {
                        let from = self.shared.layout.start(self.first_index) + self.first_received;
                        if self.gave_up.swap(false, Ordering::Relaxed) {
                            self.take_over(from);
                            continue;
                        }
                        let (_, to) = self.shared.layout.range(self.first_index);
                        let cuts = self.cuts.cut_at(from);
                        let body = self.continue_from(from, to, err, cuts)?;
                        self.mode = Mode::First(self.watched(body));
                    }
                    Ok(None) if self.workers_started => {
                        // The first piece's connection is free: the worker
                        // held back takes it up.
                        if std::mem::take(&mut self.held_back) {
                            self.spawn_worker(self.workers - 1);
                        }
                        self.mode = Mode::Pieces;
                    }
                    Ok(None) => self.after_first_piece()?,
                },
                Mode::Rest { body, until, lent } => {
                    let position = self.rest_from + self.rest_received;
                    if let Some(stop) = *until {
                        if position >= stop {
                            self.spawn_workers(self.shared.layout.piece_at(stop));
                            continue;
                        }
                    }
                    match body.next_chunk() {
                        Ok(Some(chunk)) => {
                            let room = until.map_or(u64::MAX, |stop| stop - position);
                            let n = (chunk.len() as u64).min(room) as usize;
                            *lent = n;
                            self.rest_received += n as u64;
                            self.review_rest();
                            return Ok(Next::Chunk { offset: position });
                        }
                        Ok(None) => self.mode = Mode::Ended,
                        Err(err) => {
                            if self.gave_up.swap(false, Ordering::Relaxed) {
                                self.take_over(position);
                                continue;
                            }
                            let until = *until;
                            let to = until.unwrap_or(self.shared.resource.length) - 1;
                            let cuts = self.cuts.cut_at(position);
                            let body = self.continue_from(position, to, err, cuts)?;
                            self.mode = Mode::Rest {
                                body: self.watched(body),
                                until,
                                lent: 0,
                            };
                        }
                    }
                }
                Mode::Pieces => return Ok(Next::Pieces),
                Mode::Ended => return Ok(Next::Ended),
            }
        }
    }

    /// The response streamed by the consumer failed with `err` at byte
    /// `from`: asks the resource's URL again for bytes `from..=to` (with
    /// `If-Range`), see [`ask_again`]. Pieces fetched by the workers are
    /// retried the same way ([`fetch_with_retries`]).
    fn continue_from(&self, from: u64, to: u64, err: Error, cuts: u32) -> Result<HttpBody> {
        let resource = &self.shared.resource;
        let mut request = Request::get(resource.url.clone()).range(from, Some(to));
        if let Some(validator) = &resource.validator {
            request = request.if_range(validator.clone());
        }
        let cancelled = || self.shared.lock().cancelled;
        ask_again(
            &self.client,
            &request,
            err,
            cuts,
            &cancelled,
            &|response, _| {
                let response = response.error_for_status()?;
                same_version(&response, &resource.url, resource.validator.as_deref())?;
                check_range(&response, &resource.url, resource, from, to)?;
                Ok(response.into_body())
            },
        )
    }

    fn step(&mut self) -> Result<bool> {
        loop {
            match self.next_streamed()? {
                Next::Chunk { .. } => return Ok(true),
                Next::Pieces => match self.next_piece()? {
                    Some(piece) => {
                        let used = std::mem::replace(&mut self.current, piece);
                        self.current_from = std::mem::take(&mut self.skip);
                        self.shared.give_back(used);
                        return Ok(true);
                    }
                    None => self.mode = Mode::Ended,
                },
                Next::Ended => return Ok(false),
            }
        }
    }
}

/// What comes after a chunk of the streamed part of a resource.
pub(super) enum Next {
    /// A chunk (in `last_chunk`) that belongs at `offset`.
    Chunk { offset: u64 },
    /// The workers' pieces.
    Pieces,
    /// Nothing: the resource is complete.
    Ended,
}

impl SegmentedStream {
    /// The chunk the last `next_chunk` returned (empty before the first).
    pub fn last_chunk(&self) -> &[u8] {
        match &self.mode {
            Mode::First(body) => body.last_chunk(),
            Mode::Rest { body, lent, .. } => &body.last_chunk()[..*lent],
            Mode::Pieces | Mode::Ended => &self.current[self.current_from..],
        }
    }
}

impl ByteSource for SegmentedStream {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        match self.step() {
            Ok(true) => Ok(Some(self.last_chunk())),
            Ok(false) => Ok(None),
            Err(err) => {
                self.mode = Mode::Ended;
                Err(err)
            }
        }
    }
}

impl Drop for SegmentedStream {
    /// Stops the workers and waits for them. A worker notices within a
    /// [`WATCH_INTERVAL`] while it waits for bytes, at its next write while
    /// they flow, and at once while it waits for a claim; only one still
    /// connecting takes until its connect timeout.
    fn drop(&mut self) {
        self.shared.lock().cancelled = true;
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        for thread in self.threads.drain(..) {
            // A worker that panicked has stopped too.
            let _ = thread.join();
        }
    }
}

/// What a worker does next.
enum Claim {
    /// Fetch `pieces` from `source`, with one request: a run (its id in
    /// `State::runs`), or a copy of a stalled piece (`None`).
    Pieces {
        pieces: Range<u64>,
        source: usize,
        run: Option<u64>,
    },
    Stop,
}

/// Claims the next pieces for `worker` and a source to fetch them from,
/// waiting while the window is full or every usable source is backing off.
fn claim(shared: &Shared, worker: usize) -> Claim {
    let pieces = shared.layout.pieces();
    let mut state = shared.lock();
    loop {
        if state.cancelled || state.failed.is_some() {
            return Claim::Stop;
        }
        if state.sources.all_dropped() {
            state.failed = Some(state.sources.exhausted());
            shared.changed.notify_all();
            return Claim::Stop;
        }
        let next_out = state.next_out;
        // Pieces an earlier run stored are not fetched again.
        state.next_claim = state.have.first_missing_from(state.next_claim);
        let span = state.span(shared);
        let stall_after = state.stall_after();
        // Pieces to claim, and the run they are taken from, if any.
        let fresh = if let Some(&first) = state.retry.iter().next() {
            let mut end = first + 1;
            while end - first < span && state.retry.contains(&end) {
                end += 1;
            }
            Some((first..end, None))
        } else if state.next_claim < pieces && state.next_claim < next_out + shared.window() {
            let first = state.next_claim;
            let end = (first + span)
                .min(pieces)
                .min(next_out + shared.window())
                .min(state.have.next_present_after(first).unwrap_or(pieces));
            Some((first..end, None))
        } else {
            // The back half of the longest run's pieces not started yet:
            // its worker stops where they begin (as aria2 and axel split
            // the largest remaining range). A run's last piece is left to
            // it, unless the piece before (its current one) has stalled.
            let stuck = |unstarted: &Range<u64>| {
                let current = unstarted.start.saturating_sub(1);
                state
                    .claimed
                    .get(&current)
                    .is_some_and(|o| o.since.elapsed() > stall_after)
            };
            state
                .runs
                .iter()
                .filter(|(_, unstarted)| match unstarted.end - unstarted.start {
                    0 => false,
                    1 => stuck(unstarted),
                    _ => true,
                })
                .max_by_key(|(_, unstarted)| unstarted.end - unstarted.start)
                .map(|(&id, unstarted)| {
                    let half = (unstarted.end - unstarted.start).div_ceil(2);
                    (unstarted.end - half..unstarted.end, Some(id))
                })
        };
        // Nothing new to claim (window full, or all claimed): help with the
        // oldest piece still outstanding if it has taken too long.
        let stalled = if fresh.is_none() {
            let copy_takes = state.sources.best_piece_time();
            // The oldest piece that has stalled; else one whose source is
            // so slow that a copy from the fastest would arrive well before
            // it (the end of a download, where a slow mirror's last piece
            // would otherwise be waited for).
            let stalled = state
                .claimed
                .iter()
                .next()
                .filter(|(_, o)| o.copies == 1 && o.since.elapsed() > stall_after);
            let overtaken = || {
                state.claimed.iter().find(|(_, o)| {
                    let expected = state.sources.piece_time(o.source);
                    o.copies == 1
                        && matches!((expected, copy_takes), (Some(expected), Some(copy))
                            if expected.saturating_sub(o.since.elapsed()) > copy * 2)
                })
            };
            stalled
                .or_else(overtaken)
                .map(|(&index, o)| (index, o.source))
        } else {
            None
        };
        if let Some((mut fresh, victim)) = fresh {
            let time_left = state.time_left(shared);
            let picked = match time_left {
                Some(time_left) => state.sources.pick_within(worker, time_left),
                None => state.sources.pick(worker, None),
            };
            if let Some(source) = picked {
                // Among several sources, one asked for more pieces than it
                // can fetch before the others are done would hold up the
                // end: one whose speed is not known yet gets one piece,
                // which shows it; then what it fetches in half the time
                // left. (One source's connections all go at its speed: the
                // even share keeps them level.)
                let several = state.sources.len() > 1;
                let can_fetch = match (state.sources.piece_time(source), time_left) {
                    (None, _) if several => 1,
                    (Some(per_piece), Some(left)) if several => {
                        (left.as_micros() / 2 / per_piece.as_micros().max(1)) as u64
                    }
                    _ => u64::MAX,
                };
                let can_fetch = can_fetch.max(1);
                match victim {
                    // Taken from the back, so that the run keeps its front.
                    Some(id) => {
                        fresh.start = fresh.start.max(fresh.end.saturating_sub(can_fetch));
                        if let Some(unstarted) = state.runs.get_mut(&id) {
                            unstarted.end = fresh.start;
                        }
                    }
                    None => fresh.end = fresh.end.min(fresh.start.saturating_add(can_fetch)),
                }
                for index in fresh.clone() {
                    state.retry.remove(&index);
                }
                if fresh.start == state.next_claim {
                    state.next_claim = fresh.end;
                }
                let id = state.next_run;
                state.next_run += 1;
                state.runs.insert(id, fresh.start + 1..fresh.end);
                let outstanding = Outstanding {
                    since: Instant::now(),
                    source,
                    copies: 1,
                };
                state.claimed.insert(fresh.start, outstanding);
                return Claim::Pieces {
                    pieces: fresh,
                    source,
                    run: Some(id),
                };
            }
        } else if let Some((index, slow)) = stalled {
            if let Some(source) = state.sources.pick(worker, Some(slow)) {
                if let Some(outstanding) = state.claimed.get_mut(&index) {
                    outstanding.copies += 1;
                }
                return Claim::Pieces {
                    pieces: index..index + 1,
                    source,
                    run: None,
                };
            }
        } else if state.next_claim >= pieces && state.claimed.is_empty() && state.retry.is_empty() {
            return Claim::Stop;
        }
        state = shared
            .changed
            .wait_timeout(state, Duration::from_millis(100))
            .map(|(guard, _)| guard)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

fn work(client: &Context, shared: &Arc<Shared>, worker: usize) {
    while let Claim::Pieces {
        pieces,
        source,
        run,
    } = claim(shared, worker)
    {
        let (url, validator, verified) = {
            let state = shared.lock();
            let s = state.sources.get(source);
            (s.url.clone(), s.validator.clone(), s.verified)
        };
        let (start, _) = shared.layout.range(pieces.start);
        let (_, end) = shared.layout.range(pieces.end - 1);
        let vigil = Arc::new(Vigil::new(pieces.start));
        let watch = Vigil::watch(&vigil, shared, source);
        let mut run = Run::new(shared, source, pieces, run, vigil);
        let to = Asking {
            url: &url,
            validator: validator.as_deref(),
            verified,
            watch: Some(&watch),
        };
        let fetched = fetch_range(
            client,
            &to,
            &shared.resource,
            (start, end),
            &mut |offset, bytes| run.deliver(offset, bytes),
        );
        run.finish(client, fetched, verified);
    }
}

/// Why a worker gave its answer up while waiting for its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abandoned {
    /// The piece is no longer wanted: another copy arrived, or the
    /// download ended.
    Unneeded,
    /// The answer stalled, and the piece can come from elsewhere.
    Stalled,
}

/// What a worker's waiting reads ask about its claim, through a [`Watch`]:
/// whether to keep waiting.
///
/// Why: a read waits for its next byte up to the idle timeout (30 s by
/// default). A worker stuck there is a connection lost to the download, and
/// when every worker is stuck on a stalled source, none is left to fetch a
/// copy from another: the download waited the stalls out. Woken every
/// [`WATCH_INTERVAL`](crate::http::socket::WATCH_INTERVAL), the worker lets
/// go of a piece that another copy has brought, and of an answer silent
/// past [`GIVE_UP_FLOOR`] whose piece another source can send, or that a
/// new connection may bring while the others' pieces keep coming.
struct Vigil {
    /// The piece whose bytes come next.
    current: AtomicU64,
    gave_up: Mutex<Option<Abandoned>>,
}

impl Vigil {
    fn new(current: u64) -> Vigil {
        Vigil {
            current: AtomicU64::new(current),
            gave_up: Mutex::new(None),
        }
    }

    /// The watch for a request to `source`.
    fn watch(vigil: &Arc<Vigil>, shared: &Arc<Shared>, source: usize) -> Watch {
        let (vigil, shared) = (Arc::clone(vigil), Arc::clone(shared));
        Watch::new(move |waited| {
            let state = shared.lock();
            let index = vigil.current.load(Ordering::Relaxed);
            let gave_up = if state.cancelled || state.failed.is_some() || !state.needs(index) {
                Some(Abandoned::Unneeded)
            } else if waited >= state.stall_after().max(GIVE_UP_FLOOR)
                && (state.sources.others_usable(source)
                    || state.last_piece_at.is_some_and(|at| at.elapsed() < waited))
            {
                Some(Abandoned::Stalled)
            } else {
                None
            };
            drop(state);
            *vigil.gave_up.lock().unwrap_or_else(|e| e.into_inner()) = gave_up;
            gave_up.is_none()
        })
    }

    fn gave_up(&self) -> Option<Abandoned> {
        *self.gave_up.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A worker's claim being fetched: pieces `current..end`, asked for with
/// one request, each recorded as soon as it is whole.
///
/// Why one request for several pieces: each request costs a round trip
/// before its first byte, and a server that holds back the last small
/// segment of each answer (Nagle's algorithm, until the client's delayed
/// acknowledgement) adds up to 40 ms per answer. Measured against nginx
/// with `tcp_nodelay off` over TLS on loopback, one request per 1 MiB piece
/// took a GiB in 8-9 s in 3 runs out of 10, against 1.2-1.8 s otherwise.
struct Run<'a> {
    shared: &'a Shared,
    source: usize,
    /// Its id in `State::runs` (`None` for a copy of one piece).
    id: Option<u64>,
    /// The piece whose bytes come next, and when its first byte was asked
    /// for (the request for the first; the end of the one before for the
    /// others).
    current: u64,
    since: Instant,
    /// The end of the pieces asked for (exclusive); the run may end
    /// earlier, when another worker takes its last pieces.
    end: u64,
    /// The current piece is claimed and under way (not once the claim is
    /// done, nor when the download stopped before it).
    under_way: bool,
    /// Bytes of the current piece received, and at how many it was last
    /// checked to be still needed.
    received: u64,
    checked_at: u64,
    /// The current piece, for a stream (a store takes the bytes at once).
    piece: Vec<u8>,
    vigil: Arc<Vigil>,
}

impl<'a> Run<'a> {
    fn new(
        shared: &'a Shared,
        source: usize,
        pieces: Range<u64>,
        id: Option<u64>,
        vigil: Arc<Vigil>,
    ) -> Run<'a> {
        Run {
            shared,
            source,
            id,
            current: pieces.start,
            since: Instant::now(),
            end: pieces.end,
            under_way: true,
            received: 0,
            checked_at: 0,
            piece: Vec::new(),
            vigil,
        }
    }

    /// Takes bytes from `offset` on (the next ones of the claim): into the
    /// store or the piece's buffer, recording each piece they complete.
    fn deliver(&mut self, mut offset: u64, mut bytes: &[u8]) -> Result<(), Failed> {
        let store = self.shared.store.get();
        while !bytes.is_empty() && self.current < self.end {
            let (_, last) = self.shared.layout.range(self.current);
            let n = (bytes.len() as u64).min(last + 1 - offset) as usize;
            let (now, rest) = bytes.split_at(n);
            if self.shared.stopped.load(Ordering::Relaxed) {
                return Err(Failed::lost_race(self.received));
            }
            match store {
                Some(store) => store.write_at(offset, now).map_err(Failed::local)?,
                None => {
                    if self.piece.capacity() == 0 {
                        self.piece = self.shared.piece_buffer();
                    }
                    self.piece.extend_from_slice(now);
                }
            }
            offset += n as u64;
            bytes = rest;
            self.received += n as u64;
            if offset == last + 1 {
                self.complete()?;
            } else if self.received - self.checked_at >= 256 * 1024 {
                // A copy that lost the race stops reading as soon as it
                // knows.
                self.checked_at = self.received;
                let state = self.shared.lock();
                if state.cancelled || !state.needs(self.current) {
                    return Err(Failed::lost_race(self.received));
                }
            }
        }
        Ok(())
    }

    /// The current piece is whole: it is handed on (or recorded as
    /// stored), and the next one of the claim is under way.
    fn complete(&mut self) -> Result<(), Failed> {
        let index = self.current;
        let bytes = self.received;
        let took = self.since.elapsed();
        let piece = std::mem::take(&mut self.piece);
        let mut state = self.shared.lock();
        state.sources.served(self.source, bytes, took);
        state.piece_time += took;
        state.pieces_fetched += 1;
        state.fetched_bytes += bytes;
        state.last_piece_at = Some(Instant::now());
        state.claimed.remove(&index);
        if self.shared.store.get().is_some() {
            state.stored(index);
        } else if index >= state.next_out {
            state.done.entry(index).or_insert(piece);
        }
        self.current += 1;
        self.vigil.current.store(self.current, Ordering::Relaxed);
        self.received = 0;
        self.checked_at = 0;
        self.since = Instant::now();
        let stop = state.cancelled || state.failed.is_some();
        let unstarted = self.id.and_then(|id| state.runs.get_mut(&id));
        self.under_way = match unstarted {
            Some(unstarted) if !stop && unstarted.start < unstarted.end => {
                debug_assert_eq!(unstarted.start, self.current);
                unstarted.start += 1;
                true
            }
            _ => false,
        };
        if self.under_way {
            let outstanding = Outstanding {
                since: self.since,
                source: self.source,
                copies: 1,
            };
            state.claimed.insert(self.current, outstanding);
        }
        drop(state);
        self.shared.changed.notify_all();
        // The rest of the answer is another worker's, or no one's: the
        // connection is dropped rather than read on.
        if !self.under_way && self.current < self.end {
            return Err(Failed::lost_race(0));
        }
        Ok(())
    }

    /// The request ended, `fetched` telling how: the source is credited or
    /// blamed, and the pieces of the claim not fetched go back to be
    /// fetched again.
    fn finish(self, client: &Context, fetched: Result<Option<String>, Failed>, verified: bool) {
        let shared = self.shared;
        let gave_up = self.vigil.gave_up();
        let fetched = match fetched {
            Err(failed) if !failed.local && gave_up == Some(Abandoned::Unneeded) => {
                Err(Failed::lost_race(self.received))
            }
            other => other,
        };
        let mut state = shared.lock();
        // Told once the schedule's lock is released: the caller's sink
        // may take its time.
        let mut event = None;
        let failed = match fetched {
            Ok(seen_validator) => {
                state.sources.succeeded(self.source);
                if !verified {
                    // Without a validator on both sides, a mirror was
                    // checked by its length alone: a different file of the
                    // same length would be mixed in, unseen but for a
                    // digest. The user is told.
                    let resource = &shared.resource;
                    let unchecked = seen_validator.is_none()
                        || (resource.etag.is_none() && resource.last_modified.is_none());
                    let url = state.sources.get(self.source).url.redacted().to_string();
                    if state.sources.verify(self.source, seen_validator) && unchecked {
                        event = Some(Event::CheckedByLengthOnly { url });
                    }
                }
                None
            }
            Err(failed) => Some(failed),
        };
        // The pieces of the run not started are fetched again first.
        if let Some(unstarted) = self.id.and_then(|id| state.runs.remove(&id)) {
            state.retry.extend(unstarted);
        }
        match failed {
            None => {}
            Some(Failed {
                err, local: true, ..
            }) => {
                // The disk, not the source: the download cannot go on.
                state.failed.get_or_insert(err);
            }
            Some(Failed {
                err,
                retry_after,
                lost_race,
                local: false,
            }) => {
                let index = self.current;
                // Another copy may have arrived meanwhile; if not, the piece
                // goes back to be fetched, from another source if this one
                // is dropped or backing off.
                let needed = self.under_way && state.needs(index);
                if let Some(bytes) = lost_race {
                    state
                        .sources
                        .cancelled(self.source, bytes, self.since.elapsed());
                } else {
                    if gave_up == Some(Abandoned::Stalled) {
                        // The stall counts in the source's speed, so that a
                        // mirror it made look slow is not passed over.
                        state
                            .sources
                            .charge(self.source, self.received, self.since.elapsed());
                    }
                    let transient = err.is_transient();
                    let shown = err.clone();
                    // Several connections to a source may fail at once:
                    // its drop is told once.
                    let dropped_before = state.sources.is_dropped(self.source);
                    let wait = state
                        .sources
                        .failed(self.source, err, transient, retry_after);
                    // Short backoffs come and go with the pieces; a wait a
                    // person would notice (a Retry-After) is announced. A
                    // source given up while others go on is too: a mirror
                    // of another version would otherwise vanish unseen,
                    // and the download run at the others' speed.
                    event = match wait {
                        Some(wait) if wait >= ANNOUNCED_WAIT => {
                            Some(Event::SourceBackingOff { error: shown, wait })
                        }
                        None if !dropped_before && !state.sources.all_dropped() => {
                            Some(Event::SourceDropped { error: shown })
                        }
                        _ => None,
                    };
                }
                if self.under_way {
                    match state.claimed.get_mut(&index) {
                        Some(outstanding) if outstanding.copies > 1 => outstanding.copies -= 1,
                        _ if needed => {
                            state.claimed.remove(&index);
                            state.retry.insert(index);
                        }
                        _ => {}
                    }
                }
            }
        }
        drop(state);
        if let Some(event) = event {
            client.emit(event);
        }
        shared.give_back(self.piece);
        shared.changed.notify_all();
    }
}

/// A source as a request to it needs it.
#[derive(Clone, Copy)]
struct Asking<'a> {
    url: &'a Url,
    /// Its `If-Range` value.
    validator: Option<&'a str>,
    /// Its first answer matched the resource already.
    verified: bool,
    /// What the request's waits ask (a worker's; none for the consumer's).
    watch: Option<&'a Watch>,
}

/// Takes the bytes of an answer as they arrive, with their offsets.
type Deliver<'a> = dyn FnMut(u64, &[u8]) -> Result<(), Failed> + 'a;

/// Fetches bytes `start..=end` of the resource from `url`, handing them to
/// `deliver` with their offsets as they arrive; returns the validator the
/// answer carried. A source's first answer (`verified` false) is checked
/// against the resource: same length, same strong `ETag` when both have
/// one.
fn fetch_range(
    client: &Context,
    to: &Asking,
    resource: &Resource,
    (start, end): (u64, u64),
    deliver: &mut Deliver,
) -> Result<Option<String>, Failed> {
    let (url, validator) = (to.url, to.validator);
    // A server may send less than asked (some cap the size of a range):
    // the rest is then asked for again, from where it stopped.
    let mut from = start;
    let mut seen_validator = None;
    // Answers in a row that ignored Range: asked again here, so that the
    // bytes already in are not fetched again.
    let mut ignored = 0;
    while from <= end {
        let response = ask_for_range(client, to, resource, from, end)?;
        let last = match range_answered(&response, url, resource, validator, from, end) {
            Ok(last) => last,
            Err(err)
                if response.status() == 200
                    && err.kind() == ErrorKind::Protocol
                    && ignored + 1 < client.retries() =>
            {
                drop(response);
                ignored += 1;
                client.pause(backoff(ignored))?;
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        ignored = 0;
        if from == start {
            seen_validator = validator_of(&response);
        }
        let mut body = response.into_body();
        while let Some(chunk) = body.next_chunk()? {
            if chunk.len() as u64 > last + 1 - from {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("bytes {from}-{last}: the body is longer"),
                )
                .with_subject(url.redacted())
                .into());
            }
            deliver(from, chunk)?;
            from += chunk.len() as u64;
        }
        if from != last + 1 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "bytes {start}-{end}: {} of {} bytes",
                    from - start,
                    end - start + 1
                ),
            )
            .with_subject(url.redacted())
            .into());
        }
    }
    Ok(seen_validator)
}

/// Fetches piece `index` from the resource's own URL, retrying transient
/// failures, and hands its bytes to `deliver` (with their offsets).
pub(super) fn fetch_with_retries(
    client: &Context,
    shared: &Shared,
    index: u64,
    deliver: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let resource = &shared.resource;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (start, end) = shared.layout.range(index);
        let to = Asking {
            url: &resource.url,
            validator: resource.validator.as_deref(),
            verified: true,
            watch: None,
        };
        let fetched = fetch_range(client, &to, resource, (start, end), &mut |offset, bytes| {
            deliver(offset, bytes).map_err(Failed::local)
        });
        match fetched {
            Ok(_) => return Ok(()),
            Err(Failed {
                err,
                retry_after,
                local: false,
                ..
            }) if attempt < client.retries() && err.is_transient() => {
                if shared.lock().cancelled {
                    return Err(err);
                }
                let wait = backoff(attempt).max(retry_after.unwrap_or_default());
                client.emit(Event::Retrying {
                    error: err.clone(),
                    what: Retry::Request,
                    wait,
                    attempt: attempt + 1,
                    attempts: client.retries(),
                });
                client.pause(wait)?;
            }
            Err(failed) => return Err(failed.err),
        }
    }
}

/// Asks `url` for bytes `from..=end` of the resource; an answer that is
/// not of the resource's version, or (`verified` false: a mirror's first
/// answer) not the same file, is refused.
fn ask_for_range(
    client: &Context,
    to: &Asking,
    resource: &Resource,
    from: u64,
    end: u64,
) -> Result<Response, Failed> {
    let Asking {
        url,
        validator,
        verified,
        watch,
    } = *to;
    let mut request = Request::get(url.clone()).range(from, Some(end));
    if let Some(validator) = validator {
        request = request.if_range(validator.to_owned());
    }
    if let Some(watch) = watch {
        request = request.watch(watch.clone());
    }
    let response = client.send(&request)?;
    let retry_after = retry_after(&response);
    let response = response.error_for_status().map_err(|err| Failed {
        err,
        retry_after,
        lost_race: None,
        local: false,
    })?;
    if let (Some(theirs), Some(ours)) = (strong_etag(&response), &resource.etag) {
        if &theirs != ours {
            let what = if verified {
                format!("the resource changed during the download (ETag {ours} became {theirs})")
            } else {
                format!("this source's ETag {theirs} differs from {ours}: not the same file")
            };
            return Err(Error::new(ErrorKind::Integrity, what)
                .with_subject(url.redacted())
                .into());
        }
    } else if !verified {
        // A mirror's first answer, with no pair of ETags to compare (a
        // server may not send one): the modification times must agree, or
        // a different file of the same length would be mixed in.
        let times = (response.header("last-modified"), &resource.last_modified);
        if let (Some(theirs), Some(ours)) = times {
            if theirs != ours {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "this source's Last-Modified ({theirs}) differs from {ours}: \
                         not the same file"
                    ),
                )
                .with_subject(url.redacted())
                .into());
            }
        }
    }
    same_version(&response, url, validator)?;
    Ok(response)
}
