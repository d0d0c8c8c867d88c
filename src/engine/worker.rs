//! The workers of a segmented download, and what they share with its
//! consumer.
//!
//! Owns the threads' side of the schedule: the lock around the
//! [`Scheduler`] and the condition variable they wait on, each worker's
//! loop (claim, ask, deliver, finish) and the reading on of the first
//! answer's later pieces (`read_on`), the piece buffers handed between
//! threads, and the watch on a worker's waiting reads ([`Vigil`]). Which
//! pieces a worker claims, from which source, and what a finished piece or
//! request does to the schedule are the [`Scheduler`]'s: every call to it
//! here is made under the lock, with the time read here. The requests
//! themselves are [`range_fetch`](super::range_fetch)'s.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::engine::range_fetch::{fetch_range, fetch_with_retries, Asking, Failed, ReadOn};
use crate::error::Result;
use crate::error::{Error, ErrorKind};
use crate::fetch::Context;
use crate::http::ranged::Resource;
use crate::http::socket::Watch;
use crate::pieces::scheduler::{Abandoned, Claim, Ended, Scheduler, Ticket};
use crate::pieces::Layout;
use crate::pieces::{BadPiece, PieceChecker, PieceHashes, PieceStore};
use crate::url::Url;

/// The schedule and the pieces waiting to be handed on, behind one lock.
pub(super) struct State {
    /// Which pieces are fetched when and from where.
    pub(super) schedule: Scheduler,
    /// Fetched pieces not yet handed on (the schedule knows which).
    done: BTreeMap<u64, Vec<u8>>,
}

impl State {
    /// Takes the next piece out, if it has arrived.
    pub(super) fn take_next(&mut self) -> Option<Vec<u8>> {
        let index = self.schedule.next_out();
        let piece = self.done.remove(&index)?;
        self.schedule.handed_on(index);
        Some(piece)
    }
}

/// What the consumer and the workers of one download share.
pub(super) struct Shared {
    pub(super) resource: Resource,
    /// How the resource is cut into pieces.
    pub(super) layout: Layout,
    /// How many piece buffers handed on are kept for reuse: the in-order
    /// window.
    window: u64,
    /// Set once, before the workers start, for a download to a store.
    pub(super) store: OnceLock<Arc<dyn PieceStore>>,
    /// The digests the bytes must have, when known (a Metalink
    /// document's): a source that sends a piece that fails is dropped.
    pub(super) hashes: OnceLock<Arc<PieceHashes>>,
    state: Mutex<State>,
    pub(super) changed: Condvar,
    /// Piece buffers handed on, for the workers to fill again.
    spare: Mutex<Vec<Vec<u8>>>,
    /// The stream was dropped: no worker writes another byte.
    pub(super) stopped: AtomicBool,
}

impl Shared {
    /// What the consumer and the workers of a download of `resource`
    /// share, following `schedule`; `window` piece buffers are kept for
    /// reuse.
    pub(super) fn new(
        resource: Resource,
        layout: Layout,
        window: u64,
        schedule: Scheduler,
    ) -> Shared {
        Shared {
            resource,
            layout,
            window,
            store: OnceLock::new(),
            hashes: OnceLock::new(),
            state: Mutex::new(State {
                schedule,
                done: BTreeMap::new(),
            }),
            changed: Condvar::new(),
            spare: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
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
    pub(super) fn give_back(&self, buffer: Vec<u8>) {
        if buffer.capacity() == 0 {
            return;
        }
        if let Ok(mut spare) = self.spare.lock() {
            if spare.len() < self.window as usize {
                spare.push(buffer);
            }
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked mid-update cannot leave the schedule
        // inconsistent in a way that matters more than ending the download.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fetches piece `index` from the resource's own URL on the caller's
    /// thread (a download without workers), retrying transient failures
    /// while the download goes on, and hands its bytes to `deliver`.
    pub(super) fn fetch_piece(
        &self,
        client: &Context,
        index: u64,
        deliver: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let cancelled = || self.lock().schedule.is_cancelled();
        let range = self.layout.range(index);
        fetch_with_retries(client, &self.resource, range, &cancelled, deliver)
    }
}

/// The longest a waiting worker goes without asking the schedule again.
/// It is woken when something it waits for changes, or when a piece
/// stalls or a backoff ends ([`Scheduler::look_again_at`]); this bound is
/// only for the one claim that time changes more slowly: to a store, a
/// slow mirror becomes worth asking as the time the rest will take grows.
/// A worker waiting on a slow consumer so wakes once a second at most,
/// where a look every 100 ms made four workers wake 35 times a second
/// (BENCHMARKS.md, "Wake-ups").
const LOOK_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// Claims the next pieces for `worker` and a source to fetch them from,
/// waiting while the schedule says to (the window is full, every usable
/// source is backing off, no piece is late yet); `None` once there is
/// nothing left to fetch or the download ended.
fn claim(shared: &Shared, worker: usize) -> Option<Ticket> {
    let mut state = shared.lock();
    loop {
        match state.schedule.claim(worker, Instant::now()) {
            Claim::Fetch(ticket) => return Some(ticket),
            Claim::Stop => {
                drop(state);
                // The download may have just failed (every source
                // dropped): the consumer is woken to see it.
                shared.changed.notify_all();
                return None;
            }
            Claim::Wait => {
                let now = Instant::now();
                let wait = state
                    .schedule
                    .look_again_at(now)
                    .map_or(LOOK_AT_LEAST_EVERY, |at| at - now)
                    .min(LOOK_AT_LEAST_EVERY);
                state = shared
                    .changed
                    .wait_timeout(state, wait)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        }
    }
}

/// A worker's loop: claims pieces, asks their source for them with one
/// request, and tells the schedule how it went, until nothing is left.
/// The worker given `first` reads on the first answer before: the
/// pieces of `first`'s ticket, which the schedule adopted.
pub(super) fn work(
    client: &Context,
    shared: &Arc<Shared>,
    worker: usize,
    first: Option<(Ticket, ReadOn)>,
) {
    if let Some((ticket, answer)) = first {
        read_on(client, shared, ticket, answer);
    }
    while let Some(ticket) = claim(shared, worker) {
        let source = ticket.source();
        let (url, validator, verified) = {
            let state = shared.lock();
            let s = state.schedule.source(source);
            (s.url.clone(), s.validator.clone(), s.verified)
        };
        let pieces = ticket.pieces();
        let (start, _) = shared.layout.range(pieces.start);
        let (_, end) = shared.layout.range(pieces.end - 1);
        let vigil = Arc::new(Vigil::new(pieces.start));
        let watch = Vigil::watch(&vigil, shared, source);
        let mut run = Run::new(shared, ticket, vigil, &url);
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

/// Reads the pieces of `ticket` from `answer`, which brings them from
/// where the consumer's piece ended: as a run of its own, whose later
/// pieces an idle worker may take, it holds nothing up when slow.
fn read_on(client: &Context, shared: &Arc<Shared>, mut ticket: Ticket, mut answer: ReadOn) {
    let source = ticket.source();
    let url = {
        let mut state = shared.lock();
        state.schedule.begin(&mut ticket, Instant::now());
        state.schedule.source(source).url.clone()
    };
    let vigil = Arc::new(Vigil::new(ticket.current()));
    // A socket that cannot be set to wake waits as it did.
    let _ = answer.set_watch(Some(Vigil::watch(&vigil, shared, source)));
    let mut run = Run::new(shared, ticket, vigil, &url);
    let fetched = answer.deliver_to(&url, &mut |offset, bytes| run.deliver(offset, bytes));
    let validator = shared.resource.validator.clone();
    run.finish(client, fetched.map(|()| validator), true);
}

/// The error that drops a source whose bytes fail their digest.
pub(super) fn bad_piece(bad: BadPiece, url: &Url) -> Error {
    Error::new(
        ErrorKind::Integrity,
        format!("piece {} does not match its hash", bad.index),
    )
    .with_subject(url.redacted())
}

/// What a worker's waiting reads ask about its claim, through a [`Watch`]:
/// whether to keep waiting ([`Scheduler::give_up`] decides).
///
/// Why: a read waits for its next byte up to the idle timeout (30 s by
/// default). A worker stuck there is a connection lost to the download, and
/// when every worker is stuck on a stalled source, none is left to fetch a
/// copy from another. Woken every
/// [`WATCH_INTERVAL`](crate::http::socket::WATCH_INTERVAL), the read asks
/// the schedule, and the worker remembers why it gave up, for
/// [`Run::finish`].
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
            let gave_up = state
                .schedule
                .give_up(index, source, waited, Instant::now());
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
    /// Where the claim stands in the schedule.
    ticket: Ticket,
    /// At how many bytes of the current piece it was last checked to be
    /// still needed.
    checked_at: u64,
    /// The current piece, for a stream (a store takes the bytes at once).
    piece: Vec<u8>,
    vigil: Arc<Vigil>,
    /// The check of the answer's bytes against the pieces' digests.
    checker: Option<PieceChecker>,
    /// The source asked, named when its bytes fail their digest.
    url: &'a Url,
}

impl<'a> Run<'a> {
    fn new(shared: &'a Shared, ticket: Ticket, vigil: Arc<Vigil>, url: &'a Url) -> Run<'a> {
        Run {
            shared,
            ticket,
            checked_at: 0,
            piece: Vec::new(),
            vigil,
            checker: shared.hashes.get().cloned().map(PieceChecker::new),
            url,
        }
    }

    /// Takes bytes from `offset` on (the next ones of the claim): into the
    /// store or the piece's buffer, recording each piece they complete.
    fn deliver(&mut self, mut offset: u64, mut bytes: &[u8]) -> Result<(), Failed> {
        let store = self.shared.store.get();
        while !bytes.is_empty() && !self.ticket.pieces().is_empty() {
            let (_, last) = self.shared.layout.range(self.ticket.current());
            let n = (bytes.len() as u64).min(last + 1 - offset) as usize;
            let (now, rest) = bytes.split_at(n);
            if self.shared.stopped.load(Ordering::Relaxed) {
                return Err(Failed::lost_race(self.ticket.received()));
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
            if let Some(checker) = &mut self.checker {
                checker
                    .feed(offset, now)
                    .map_err(|bad| Failed::from(bad_piece(bad, self.url)))?;
            }
            offset += n as u64;
            bytes = rest;
            self.ticket.receive(n as u64);
            let received = self.ticket.received();
            if offset == last + 1 {
                self.complete()?;
            } else if received - self.checked_at >= 256 * 1024 {
                // A copy that lost the race stops reading as soon as it
                // knows.
                self.checked_at = received;
                let state = self.shared.lock();
                if !state.schedule.wanted(self.ticket.current()) {
                    return Err(Failed::lost_race(received));
                }
            }
        }
        Ok(())
    }

    /// The current piece is whole: it is handed on (or recorded as
    /// stored), and the next one of the claim is under way.
    fn complete(&mut self) -> Result<(), Failed> {
        let index = self.ticket.current();
        let piece = std::mem::take(&mut self.piece);
        // Read before waiting for the lock: the time the piece took.
        let now = Instant::now();
        let mut state = self.shared.lock();
        if state.schedule.complete(&mut self.ticket, now) {
            state.done.insert(index, piece);
        }
        self.vigil
            .current
            .store(self.ticket.current(), Ordering::Relaxed);
        drop(state);
        self.checked_at = 0;
        self.shared.changed.notify_all();
        // The rest of the answer is another worker's, or no one's: the
        // connection is dropped rather than read on.
        if self.ticket.cut_short() {
            return Err(Failed::lost_race(0));
        }
        Ok(())
    }

    /// The request ended, `fetched` telling how: the schedule credits or
    /// blames the source and takes back the pieces not fetched; what the
    /// user should hear of it is told once the lock is released.
    fn finish(self, client: &Context, fetched: Result<Option<String>, Failed>, verified: bool) {
        let shared = self.shared;
        let gave_up = self.vigil.gave_up();
        let ended = match fetched {
            Ok(validator) => Ended::Fetched {
                validator,
                verified,
            },
            Err(failed) => failed.ended(),
        };
        let mut state = shared.lock();
        let event = state
            .schedule
            .finish(self.ticket, ended, gave_up, Instant::now());
        // Told once the schedule's lock is released: the caller's sink
        // may take its time.
        drop(state);
        if let Some(event) = event {
            client.emit(event);
        }
        shared.give_back(self.piece);
        shared.changed.notify_all();
    }
}
