//! Segmented downloads: one large resource fetched as pieces over several
//! connections, handed on in order.
//!
//! Owns the consumer's side: the first answer, the one stream after it on
//! a fast connection, starting the workers and handing pieces on. The
//! resource is cut into pieces (its [`Layout`]); the consumer streams piece 0 straight from the first response
//! (its first byte is not delayed). That answer brings up to
//! [`FIRST_ANSWER`] bytes, so that a file that size or smaller costs one
//! request; its later pieces are read on by the one stream or, adopted by
//! the schedule as a run, by a worker (`docs/engine.md`, "The first
//! answer"). Worker threads, each with a
//! kept-alive connection, claim the next unclaimed piece, fetch it with a
//! bounded `Range` request and park it until the consumer reaches it.
//! Claims stay within a window of pieces ahead of the consumer, so memory is
//! bounded (window × piece) whatever the length, and a slow consumer slows
//! the workers instead of filling memory. Which piece is claimed when and
//! from which source is the `Scheduler`'s, a state machine given the time
//! that the engine drives under its lock; the workers' threads are
//! `worker`'s, their requests `range_fetch`'s.
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
//! piece at its own offset in a [`PieceStore`](crate::pieces::PieceStore) as it arrives. The window
//! then only bounds how far claims run ahead of the first missing piece
//! ([`STORE_WINDOW`]), memory holds no pieces, and what is on disk after an
//! interruption is a [`PieceSet`] a later run continues from
//! ([`SegmentedDownload::resume`](crate::engine::download::SegmentedDownload::resume)). A worker then claims a run of up to
//! [`MAX_SPAN`] pieces and asks for them with one request (`Run`), each
//! piece recorded as soon as it is whole; runs are an even share of what no
//! one has started (one piece from a server that caps each request, as
//! nginx's `limit_rate` does), and a worker that finds nothing left
//! takes the back half of another run's pieces not yet started.
//!
//! Every piece request carries `If-Range` with the first response's
//! validator (a strong `ETag`, else `Last-Modified`): a resource that
//! changes midway answers 200 instead of 206, and the download fails rather
//! than mixing two versions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::range_fetch::ReadOn;
use crate::engine::worker::{work, Shared};
use crate::error::{Error, ErrorKind, Result};
use crate::fetch::continuation::{ask_again, CutsInARow};
use crate::fetch::Context;
use crate::http::ranged::{check_range, Resource};
use crate::http::socket::{Watch, WATCH_INTERVAL};
use crate::http::validator::same_version;
use crate::http::{HttpBody, Request, Response};
use crate::pieces::scheduler::{Plan, Scheduler, Ticket, GIVE_UP_FLOOR};
use crate::pieces::sources::Sources;
use crate::pieces::{Layout, PieceSet};
use crate::source::ByteSource;
use crate::url::Url;

pub use crate::pieces::scheduler::{MAX_SPAN, STORE_WINDOW};

/// The first request asks for this many bytes. A resource of this size
/// or less comes whole in its answer: one request, where asking for the
/// first piece and then the rest took two. A larger one is split, and the
/// answer brings its first pieces: the consumer reads the first itself,
/// the one stream or a worker the others (see `docs/engine.md`).
pub const FIRST_ANSWER: u64 = 4 * 1024 * 1024;

/// Connections per download by default (`-n/--connections`).
pub const DEFAULT_CONNECTIONS: usize = 4;

/// The most connections to one host by default (`--max-per-host`).
pub const MAX_PER_HOST: usize = 16;

/// A first piece that arrives at this rate or faster, and below
/// [`CORE_BOUND_BYTES_PER_SEC`], shows a connection that already runs at
/// the speed of a fast LAN: more connections would add nothing the link
/// can carry, so the rest comes as one stream.
pub const FAST_ENOUGH_BYTES_PER_SEC: u64 = 100 * 1024 * 1024;

/// A connection at this rate or faster is bound by the one core that
/// copies its bytes out of the socket, not by the link, and the workers'
/// connections copy on every core: 1 GiB from nginx on loopback took 0.26 s
/// to `/dev/null` over one connection and 0.22 s over four (0.58 s and
/// 0.41 s to a file on tmpfs; `bench/limit-rate.sh`, BENCHMARKS.md).
pub const CORE_BOUND_BYTES_PER_SEC: u64 = 1024 * 1024 * 1024;

/// Whether a connection at `rate` bytes a second carries a resource best
/// alone: fast enough for any link, and not so fast that one core's
/// copying holds it back.
fn one_stream_keeps_up(rate: u128) -> bool {
    (u128::from(FAST_ENOUGH_BYTES_PER_SEC)..u128::from(CORE_BOUND_BYTES_PER_SEC)).contains(&rate)
}

/// Bytes of an answer that may arrive at once whatever the server's rate:
/// what the socket buffers on both sides and a rate-capping server's first
/// send hold (nginx sends up to 2 MiB before its `limit_rate` paces the
/// rest). The one stream's rate is judged on what comes after them.
const BURST: u64 = 4 * 1024 * 1024;

/// The one stream is judged this long after it began: long enough that
/// a rate-capping server has paced it past its first send, short enough
/// that the other connections are not left idle for long.
const REVIEW_AFTER: Duration = Duration::from_millis(100);

/// A one stream whose rate after its [`BURST`] falls this many times
/// below the first piece's shows a server that caps each request after a
/// first allowance (`Scheduler::caps_each_request`).
const CAPPED_SLOWDOWN: u128 = 4;

/// Where the stream stands.
pub(super) enum Mode {
    /// Piece 0, straight from the first response as it arrives; the
    /// response's bytes end at `end` (exclusive), maybe past the piece.
    /// `lent` of the last chunk are the piece's.
    First {
        body: HttpBody,
        end: u64,
        lent: usize,
    },
    /// Everything after piece 0 as one stream (a fast connection): the
    /// first answer read on, then one more request for the rest; up to
    /// `until` once it has proved slow (then pieces take over there).
    Rest {
        body: ReadOn,
        until: Option<u64>,
        lent: usize,
    },
    /// Pieces from the workers (or fetched in turn when there are none).
    Pieces,
    Ended,
}

/// What becomes of the first answer's pieces after the consumer's when
/// the workers start (`SegmentedStream::start_workers`).
// One per download, passed on at once: the large variant is not worth a box.
#[allow(clippy::large_enum_variant)]
enum FirstAnswer {
    /// Given up, or over: the workers fetch every piece from there.
    Gone,
    /// Still bringing the consumer's piece: the pieces after it are
    /// adopted by the schedule, and the worker held back reads them on
    /// once the consumer's piece is in.
    Streaming,
    /// Past the consumer's piece: a worker reads the pieces it brings on.
    ReadOn(ReadOn),
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
    /// The rate the first piece arrived at, in bytes a second.
    first_rate: u128,
    workers_started: bool,
    /// The workers' threads, joined when the stream is dropped: once it
    /// is gone, nothing writes to its store any more.
    threads: Vec<std::thread::JoinHandle<()>>,
    /// One worker waits for the first piece's connection.
    held_back: bool,
    /// The pieces after the consumer's that the first answer brings,
    /// adopted by the schedule when the workers started while the
    /// consumer's piece still streamed: the worker held back reads them.
    adopted: Option<Ticket>,
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
    /// Streams `resource` cut into pieces of `piece` bytes, over
    /// `connections` in all, from `first`: the body of the 206 answer to
    /// the request for its first `answered` bytes (a piece or more). The
    /// workers start once piece 0 has shown how fast one connection is;
    /// the answer's later pieces are then read on by one of them, or by
    /// the one stream.
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
        answered: u64,
        connections: usize,
        mirrors: Vec<Url>,
    ) -> SegmentedStream {
        let layout = Layout::new(resource.length, piece);
        let end = answered.clamp(piece.min(resource.length), resource.length);
        SegmentedStream::new(
            client,
            resource,
            layout,
            Mode::First {
                body: first,
                end,
                lent: 0,
            },
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
        // Each connection one piece ahead, no more: pieces past the
        // consumer wait in memory, and a stream to a pipe must stay within
        // a few MiB (the target: 8 MiB RSS for a GiB; a window of 16
        // measured 12-23 MiB when the workers took over). A slow source's
        // piece holds the others back at most until an idle worker fetches
        // a copy of it (three times the usual piece time). With a store
        // nothing waits in memory: STORE_WINDOW.
        let window = connections.max(4) as u64;
        let plan = Plan {
            layout,
            window,
            workers,
            validated: resource.etag.is_some() || resource.last_modified.is_some(),
        };
        // The consumer reads the first piece itself.
        let schedule = Scheduler::new(plan, sources, have, first_index);
        let shared = Arc::new(Shared::new(resource, layout, window, schedule));
        let mut stream = SegmentedStream {
            shared,
            client: client.clone(),
            workers: workers.min(missing.saturating_sub(1) as usize),
            first_index,
            rest_from: layout.start(first_index + 1),
            rest_received: 0,
            first_received: 0,
            first_rate: 0,
            workers_started: false,
            threads: Vec::new(),
            held_back: false,
            adopted: None,
            gave_up: Arc::new(AtomicBool::new(false)),
            skip: 0,
            current_from: 0,
            cuts: CutsInARow::default(),
            mode: Mode::Ended,
            started: Instant::now(),
            current: Vec::new(),
        };
        stream.mode = match mode {
            Mode::First { body, end, lent } => Mode::First {
                body: stream.watched(body),
                end,
                lent,
            },
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
            // Started while the first piece streamed: they are past it,
            // and the pieces of the answer given up are theirs again.
            {
                let mut state = self.shared.lock();
                state.schedule.take_over(index);
                if let Some(ticket) = self.adopted.take() {
                    state.schedule.release(ticket);
                }
            }
            self.shared.changed.notify_all();
            if std::mem::take(&mut self.held_back) {
                self.spawn_worker(self.workers - 1, None);
            }
        } else {
            self.start_workers(index, FirstAnswer::Gone);
        }
        self.mode = Mode::Pieces;
    }

    /// The answer the consumer reads itself brought bytes from `position`
    /// on that fail their digest (`err`): its source is dropped and the
    /// workers fetch from the piece `position` is in. With no other
    /// source, or no workers, that is the download's error.
    pub(super) fn reject_streamed(&mut self, position: u64, err: Error) -> Result<()> {
        let (event, left) = {
            let mut state = self.shared.lock();
            let event = state.schedule.reject(0, err.clone());
            (event, state.schedule.any_source_left())
        };
        if let Some(event) = event {
            self.client.emit(event);
        }
        if !left || self.workers == 0 {
            self.mode = Mode::Ended;
            return Err(err);
        }
        self.take_over(position);
        Ok(())
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
        Some((state.schedule.fetching(), state.schedule.sources_alive()))
    }

    /// True when the next `next_chunk` hands on bytes without waiting for
    /// the network: bytes of the response being streamed in order have
    /// arrived. False for the workers' pieces, which arrive on other
    /// threads (asking would mean waiting), and at the end.
    pub fn has_chunk_ready(&mut self) -> bool {
        let position = self.rest_from + self.rest_received;
        let first_piece_left = self.first_position() < self.first_piece_end();
        match &mut self.mode {
            Mode::First { body, .. } => first_piece_left && body.has_payload_ready(),
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

    /// The offset of the consumer's next byte of its own piece.
    fn first_position(&self) -> u64 {
        self.shared.layout.start(self.first_index) + self.first_received
    }

    /// Where the consumer's own piece ends (exclusive).
    fn first_piece_end(&self) -> u64 {
        let layout = self.shared.layout;
        layout.start(self.first_index + 1).min(layout.length())
    }

    /// The first piece is in, and `answer` is what its answer brings
    /// after it: either the rest as one stream (the answer read on, then
    /// one more request), or the workers (one of them reading the answer
    /// on).
    fn after_first_piece(&mut self, answer: ReadOn) -> Result<()> {
        let micros = self.started.elapsed().as_micros().max(1);
        let rate = u128::from(self.shared.layout.piece_length()) * 1_000_000 / micros;
        self.first_rate = rate;
        let after = self.first_index + 1;
        if self.workers > 0 && !one_stream_keeps_up(rate) {
            self.start_workers(after, FirstAnswer::ReadOn(answer));
            self.mode = Mode::Pieces;
            return Ok(());
        }
        // One stream up to the next piece an earlier run already has (or
        // to the end).
        let stop = self
            .shared
            .lock()
            .schedule
            .have()
            .next_present_after(self.first_index);
        let end = stop.map_or(self.shared.resource.length, |index| {
            self.shared.layout.start(index)
        });
        if self.rest_from >= end {
            self.spawn_workers(after);
            return Ok(());
        }
        self.started = Instant::now();
        self.mode = Mode::Rest {
            body: answer,
            until: stop.map(|index| self.shared.layout.start(index)),
            lent: 0,
        };
        Ok(())
    }

    /// The answer the one stream reads ended at `from`, before `until`
    /// (or the end): the rest is asked for as one more request, on the
    /// connection it freed. `None` when the server will not send it (a
    /// busy server, or one that caps ranges): the workers then ask for
    /// pieces instead, each retried on its own.
    fn ask_rest(&self, from: u64, until: Option<u64>) -> Result<Option<ReadOn>> {
        let end = until.unwrap_or(self.shared.resource.length);
        let request = self.range_request(from, until.map(|u| u - 1));
        let answer = self
            .client
            .send(&request)
            .and_then(|response| self.checked(response, from, end - 1));
        match answer {
            Ok(response) => {
                let body = self.watched(response.into_body());
                Ok(Some(ReadOn::new(body, Vec::new(), from, end)))
            }
            Err(err) if err.kind() == ErrorKind::Integrity => Err(err),
            Err(_) => Ok(None),
        }
    }

    /// Starts the workers on the pieces from `index` on.
    fn spawn_workers(&mut self, index: u64) {
        if !self.workers_started {
            self.start_workers(index, FirstAnswer::Gone);
        }
        self.mode = Mode::Pieces;
    }

    /// The pieces from `index` on that `first`, the first answer, brings
    /// whole and still to come.
    fn first_answer_brings(&self, index: u64, first: &FirstAnswer) -> Option<std::ops::Range<u64>> {
        let end = match (first, &self.mode) {
            (FirstAnswer::ReadOn(answer), _) => answer.end(),
            (FirstAnswer::Streaming, Mode::First { end, .. }) => *end,
            _ => return None,
        };
        let layout = self.shared.layout;
        let whole = match end >= layout.length() {
            true => layout.pieces(),
            false => layout.piece_at(end),
        };
        (whole > index).then_some(index..whole)
    }

    /// Starts the workers on the pieces from `index` on; the consumer
    /// reads what comes before `index` itself. The pieces from `index` on
    /// that the first answer brings are adopted by the schedule, read on
    /// by one worker (see [`FirstAnswer`]).
    fn start_workers(&mut self, index: u64, first: FirstAnswer) {
        let now = Instant::now();
        let adopted = {
            let brings = self
                .first_answer_brings(index, &first)
                .filter(|_| self.workers > 0);
            let mut state = self.shared.lock();
            state.schedule.start(index, now);
            brings.map(|pieces| state.schedule.adopt(0, pieces, now))
        };
        self.workers_started = true;
        let mut reader = None;
        match first {
            // While the first piece still streams, its connection is
            // busy: one worker fewer until it ends, so that the
            // connections stay N. That one then reads the answer on.
            FirstAnswer::Streaming => {
                self.held_back = true;
                self.adopted = adopted;
            }
            FirstAnswer::ReadOn(answer) => reader = adopted.map(|ticket| (ticket, answer)),
            FirstAnswer::Gone => {}
        }
        let starting = self.workers - usize::from(self.held_back);
        for worker in 0..starting {
            let first = if worker + 1 == starting {
                reader.take()
            } else {
                None
            };
            self.spawn_worker(worker, first);
        }
    }

    /// The consumer's piece is in while the workers run: the worker held
    /// back takes up the first answer's connection, reading on the pieces
    /// the schedule adopted for it, or as a new request once the answer
    /// is over.
    fn first_piece_freed(&mut self, answer: ReadOn) {
        let adopted = self.adopted.take();
        if std::mem::take(&mut self.held_back) {
            self.spawn_worker(self.workers - 1, adopted.map(|ticket| (ticket, answer)));
        } else if let Some(ticket) = adopted {
            self.shared.lock().schedule.release(ticket);
        }
        self.mode = Mode::Pieces;
    }

    fn spawn_worker(&mut self, worker: usize, first: Option<(Ticket, ReadOn)>) {
        let shared = Arc::clone(&self.shared);
        let client = self.client.clone();
        // Worker 0 starts on the first mirror, if any.
        let thread = std::thread::spawn(move || work(&client, &shared, worker + 1, first));
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
            self.start_workers(self.first_index + 1, FirstAnswer::Streaming);
        }
    }

    /// The one stream has run for a while: one slower than
    /// [`FAST_ENOUGH_BYTES_PER_SEC`] past its first [`BURST`], or as fast
    /// as [`CORE_BOUND_BYTES_PER_SEC`], is left at the next piece boundary
    /// for the workers.
    ///
    /// Why past the burst: the first MiBs of an answer may come from
    /// socket buffers at memory speed whatever the server's rate, so the
    /// first piece's speed and the stream's first MiBs are no evidence that
    /// one connection is enough. A server that caps each request (nginx's
    /// `limit_rate`) sends them at once and paces the rest; it is told to
    /// the schedule, whose workers then ask for a piece at a time.
    fn review_rest(&mut self) {
        let Mode::Rest { until, .. } = &mut self.mode else {
            return;
        };
        if until.is_some() || self.workers == 0 {
            return;
        }
        let verdict = judge_one_stream(self.rest_received, self.started.elapsed(), self.first_rate);
        if let Verdict::HandOver { capped } = verdict {
            let offset = self.rest_from + self.rest_received;
            let piece = self.shared.layout.piece_length();
            *until = Some(offset.div_ceil(piece) * piece);
            if capped {
                self.shared.lock().schedule.caps_each_request(0);
            }
        }
    }

    /// Waits for the next piece in order (or fetches it, with no workers).
    fn next_piece(&mut self) -> Result<Option<Vec<u8>>> {
        let shared = &*self.shared;
        if self.workers == 0 {
            let index = shared.lock().schedule.next_out();
            if index >= shared.layout.pieces() {
                return Ok(None);
            }
            let mut piece = Vec::new();
            shared.fetch_piece(&self.client, index, &mut |_, bytes| {
                piece.extend_from_slice(bytes);
                Ok(())
            })?;
            shared.lock().schedule.handed_on(index);
            return Ok(Some(piece));
        }
        let mut state = shared.lock();
        loop {
            if state.schedule.next_out() >= shared.layout.pieces() {
                return Ok(None);
            }
            if let Some(piece) = state.take_next() {
                shared.changed.notify_all();
                return Ok(Some(piece));
            }
            if let Some(err) = state.schedule.failed() {
                return Err(err.clone());
            }
            self.client.cancelled()?;
            // Woken by each piece that arrives; the timeout only bounds
            // how late a cancel is seen (4 wake-ups a second at most).
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
            let (position, piece_end) = (self.first_position(), self.first_piece_end());
            match &mut self.mode {
                Mode::First { body, end, lent } => {
                    if position == piece_end {
                        // What the answer brings after the piece goes on,
                        // starting with the rest of the chunk it ended in.
                        let spill = body.last_chunk()[*lent..].to_vec();
                        let end = *end;
                        let Mode::First { body, .. } =
                            std::mem::replace(&mut self.mode, Mode::Ended)
                        else {
                            unreachable!("matched above");
                        };
                        let answer = ReadOn::new(body, spill, position, end);
                        if self.workers_started {
                            self.first_piece_freed(answer);
                        } else {
                            self.after_first_piece(answer)?;
                        }
                        continue;
                    }
                    let read = match body.next_chunk() {
                        Ok(Some(chunk)) => Ok(chunk.len()),
                        Ok(None) => Err(Error::new(
                            ErrorKind::Protocol,
                            format!("the answer ended at byte {position}, within its first piece"),
                        )
                        .with_subject(self.shared.resource.url.redacted())),
                        Err(err) => Err(err),
                    };
                    match read {
                        Ok(n) => {
                            *lent = n.min((piece_end - position) as usize);
                            self.first_received += *lent as u64;
                            self.review_first();
                            return Ok(Next::Chunk { offset: position });
                        }
                        Err(err) => {
                            if self.gave_up.swap(false, Ordering::Relaxed) {
                                self.take_over(position);
                                continue;
                            }
                            let end = *end;
                            let cuts = self.cuts.cut_at(position);
                            let body = self.continue_from(position, end - 1, err, cuts)?;
                            self.mode = Mode::First {
                                body: self.watched(body),
                                end,
                                lent: 0,
                            };
                        }
                    }
                }
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
                        // The first answer ends before the resource: the
                        // rest comes with one more request, or from the
                        // workers, from the piece it ended in (a server
                        // may have cut it short mid-piece).
                        Ok(None) if position < until.unwrap_or(self.shared.resource.length) => {
                            let until = *until;
                            match self.ask_rest(position, until)? {
                                Some(body) => {
                                    self.mode = Mode::Rest {
                                        body,
                                        until,
                                        lent: 0,
                                    }
                                }
                                None => self.take_over(position),
                            }
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
                                body: ReadOn::new(self.watched(body), Vec::new(), position, to + 1),
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
    /// retried the same way (`fetch_with_retries`).
    fn continue_from(&self, from: u64, to: u64, err: Error, cuts: u32) -> Result<HttpBody> {
        let request = self.range_request(from, Some(to));
        let cancelled = || self.shared.lock().schedule.is_cancelled();
        ask_again(
            &self.client,
            &request,
            err,
            cuts,
            &cancelled,
            &|response, _| Ok(self.checked(response, from, to)?.into_body()),
        )
    }

    /// The request to the resource's URL for bytes `from..=to` (to its end
    /// with `None`), with `If-Range` its validator.
    fn range_request(&self, from: u64, to: Option<u64>) -> Request {
        let resource = &self.shared.resource;
        let request = Request::get(resource.url.clone()).range(from, to);
        match &resource.validator {
            Some(validator) => request.if_range(validator.clone()),
            None => request,
        }
    }

    /// `response` to [`SegmentedStream::range_request`], if it is bytes
    /// `from..=to` of the resource's version.
    fn checked(&self, response: Response, from: u64, to: u64) -> Result<Response> {
        let resource = &self.shared.resource;
        let response = response.error_for_status()?;
        same_version(&response, &resource.url, resource.validator.as_deref())?;
        check_range(&response, &resource.url, resource, from, to)?;
        Ok(response)
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

/// What the one stream's pace says ([`judge_one_stream`]).
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// One connection keeps up: go on.
    Keep,
    /// Too slow: the workers take over at the next piece boundary;
    /// `capped`, the server caps each request after a first allowance.
    HandOver { capped: bool },
}

/// Whether the one stream, which has brought `received` bytes in
/// `elapsed` after a first piece that came at `first_rate` bytes a second,
/// should be handed over to the workers: when, [`REVIEW_AFTER`] in, it has
/// brought less than [`FAST_ENOUGH_BYTES_PER_SEC`] past its first
/// [`BURST`] (see `review_rest`), or [`CORE_BOUND_BYTES_PER_SEC`] or more;
/// fallen [`CAPPED_SLOWDOWN`] times below the first piece's rate, it shows
/// a cap on each request.
fn judge_one_stream(received: u64, elapsed: Duration, first_rate: u128) -> Verdict {
    if elapsed < REVIEW_AFTER {
        return Verdict::Keep;
    }
    let paced = received.saturating_sub(BURST);
    let rate = u128::from(paced) * 1_000_000 / elapsed.as_micros().max(1);
    if one_stream_keeps_up(rate) {
        return Verdict::Keep;
    }
    if rate >= u128::from(CORE_BOUND_BYTES_PER_SEC) {
        return Verdict::HandOver { capped: false };
    }
    Verdict::HandOver {
        capped: rate * CAPPED_SLOWDOWN < first_rate,
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
            Mode::First { body, lent, .. } => &body.last_chunk()[..*lent],
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
        self.shared.lock().schedule.cancel();
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        for thread in self.threads.drain(..) {
            // A worker that panicked has stopped too.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A first piece of 1 MiB in 1 ms, as from socket buffers on loopback.
    const FIRST_FAST: u128 = 1000 * MIB as u128;

    #[test]
    fn a_stream_paced_after_its_first_send_is_handed_over_as_capped() {
        // nginx's limit_rate 20m: 2 MiB at once, then 2 MiB every 100 ms.
        // 100 ms in, the buffers' worth is all it has brought.
        assert_eq!(
            judge_one_stream(4 * MIB, ms(100), FIRST_FAST),
            Verdict::HandOver { capped: true }
        );
        assert_eq!(
            judge_one_stream(6 * MIB, ms(200), FIRST_FAST),
            Verdict::HandOver { capped: true }
        );
    }

    #[test]
    fn a_fast_stream_is_kept_and_none_is_judged_before_its_time() {
        // A fast LAN without a cap: some 80 MiB in 100 ms.
        assert_eq!(
            judge_one_stream(80 * MIB, ms(100), FIRST_FAST),
            Verdict::Keep
        );
        // Its first MiBs from the buffers, nothing since: too soon to say.
        assert_eq!(judge_one_stream(4 * MIB, ms(99), FIRST_FAST), Verdict::Keep);
        // Past the burst at 120 MiB/s: fast enough.
        assert_eq!(
            judge_one_stream(16 * MIB, ms(100), FIRST_FAST),
            Verdict::Keep
        );
    }

    #[test]
    fn a_stream_merely_slower_than_enough_is_handed_over_uncapped() {
        // A first piece at 150 MiB/s, then 90 MiB/s: a link a little short
        // of one stream's worth, not a cap on each request.
        let first = 150 * u128::from(MIB);
        assert_eq!(
            judge_one_stream(4 * MIB + 45 * MIB, ms(500), first),
            Verdict::HandOver { capped: false }
        );
    }

    #[test]
    fn a_stream_faster_than_one_core_copies_is_handed_over_uncapped() {
        // Loopback without a cap: some 400 MiB in 100 ms, after a first
        // piece faster still. Not a cap, though far below the first piece.
        assert_eq!(
            judge_one_stream(400 * MIB, ms(100), 8 * FIRST_FAST),
            Verdict::HandOver { capped: false }
        );
    }

    #[test]
    fn only_a_rate_between_a_lan_and_a_core_is_carried_alone() {
        let mib = u128::from(MIB);
        assert!(!one_stream_keeps_up(99 * mib));
        assert!(one_stream_keeps_up(100 * mib));
        assert!(one_stream_keeps_up(1023 * mib));
        assert!(!one_stream_keeps_up(1024 * mib));
        assert!(!one_stream_keeps_up(6 * 1024 * mib));
    }
}
