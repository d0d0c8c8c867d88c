//! The piece schedule of one segmented download, as a state machine given
//! the time.
//!
//! Owns every decision about which piece is fetched when and from where:
//! the claims within the window ahead of the consumer (pieces to retry
//! first, then runs sized as an even share of what no one has started,
//! or of one piece from a server that caps each request),
//! taking half of another worker's run when nothing is left, copies of a
//! stalled or overtaken piece from another source, passing over slow
//! sources and backing off from failing ones (through [`Sources`]), what a
//! finished piece or an ended request does to the schedule, and when a
//! waiting read should give its answer up.
//!
//! Leaves to the engine everything that touches the world: the lock
//! around the [`Scheduler`] and the condition variable its workers wait
//! on, the threads, the HTTP requests, the bytes of the pieces and the
//! store they are written to, and telling the [`Event`]s it returns once
//! the lock is released. The engine passes the time to every call that
//! needs it (`now`), so the schedule does no I/O, reads no clock, and is
//! tested below with a made-up one.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::event::Event;
use crate::pieces::sources::{Source, Sources};
use crate::pieces::{Layout, PieceSet};

/// How far claims may run ahead of the first missing piece when pieces go
/// to a store: nothing waits in memory, so this only bounds how scattered
/// the pieces on disk may be (and the control file that lists them).
pub const STORE_WINDOW: u64 = 256;

/// The most pieces one request asks for (see `Ticket`). Each request
/// costs a round trip, which a run of 64 MiB makes negligible on any link;
/// runs are shorter anyway on all but large files (an even share of what
/// is left), and four of them fill [`STORE_WINDOW`].
pub const MAX_SPAN: u64 = 64;

/// A piece outstanding this long holds the others up: an idle worker
/// fetches a copy of it from another source, and the first copy to arrive
/// is used. Three times what a piece usually takes, and at least this.
const STALL_FLOOR: Duration = Duration::from_millis(200);

/// A worker whose answer has sent nothing for this long, and for three
/// times what a piece usually takes, gives the answer up when the piece
/// can come from elsewhere: another source, or a new connection to the
/// same one while the others bring pieces (see [`Scheduler::give_up`]).
/// Longer than the 200 ms after which a stalled piece is copied: a copy costs an idle worker, giving up
/// costs what the answer had brought of its piece.
pub const GIVE_UP_FLOOR: Duration = Duration::from_secs(2);

/// A source's backoff at least this long is told
/// ([`Event::SourceBackingOff`]).
const ANNOUNCED_WAIT: Duration = Duration::from_secs(1);

/// A piece later in an answer that takes this many times as long as the
/// fastest of its first [`OPENING`] (and [`CAP_FLOOR`] more) is slow; an
/// answer whose later pieces, [`CAP_EVIDENCE`] at least, are slow half the
/// time or more shows a server that caps each request after a first
/// allowance (nginx's `limit_rate`): see [`Scheduler::caps_each_request`].
const CAP_SLOWDOWN: u32 = 4;

/// The least a slow piece must lose to the cap: more than a request's
/// round trip on most links, and more than most of a busy machine's
/// hiccups. nginx at 20 MiB/s holds its next 2 MiB back 100 ms; a cap up
/// to 40 MiB/s a request is seen.
const CAP_FLOOR: Duration = Duration::from_millis(25);

/// The later pieces an answer must have brought before it is judged:
/// one hiccup of the machine or the network slows one piece (the bytes
/// held back meanwhile come at once after it), a cap one piece in two.
const CAP_EVIDENCE: u32 = 4;

/// The pieces at the start of an answer that a capping server sends at
/// once: nginx sends 2 MiB before it paces the rest.
const OPENING: u32 = 2;

/// How a download is to be scheduled, fixed when it starts.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// How the resource is cut into pieces.
    pub layout: Layout,
    /// How many pieces past the next one out may be claimed while pieces
    /// are handed on in order (in memory, so a few per connection).
    pub window: u64,
    /// How many workers claim pieces: runs are an even share among them.
    pub workers: usize,
    /// The resource's first answer gave an `ETag` or `Last-Modified`, which
    /// a mirror's answers can be compared with.
    pub validated: bool,
}

/// What a worker does next ([`Scheduler::claim`]).
#[derive(Debug)]
pub enum Claim {
    /// Fetch the ticket's pieces with one request.
    Fetch(Ticket),
    /// Nothing can be claimed now (the window is full, every usable source
    /// is backing off, or the outstanding pieces are not late yet): wait
    /// for a change, or a moment, and ask again.
    Wait,
    /// Nothing is left to fetch, or the download ended.
    Stop,
}

/// A claim being fetched: pieces `current..end` from one source with one
/// request. The engine carries it along the request, tells the schedule
/// of each piece completed ([`Scheduler::complete`]) and hands it back when
/// the request ends ([`Scheduler::finish`]).
#[derive(Debug)]
pub struct Ticket {
    source: usize,
    /// Its id among the runs (`None` for a copy of one piece).
    run: Option<u64>,
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
    /// Bytes of the current piece received.
    received: u64,
    /// Pieces of the answer completed, the least time one of its first
    /// [`OPENING`] took, and the pieces after those: how many, and how
    /// many of them were slow.
    done: u32,
    opening: Duration,
    later: u32,
    slow: u32,
}

impl Ticket {
    /// A claim of `pieces` from `source` (run `run`), its first piece
    /// asked for at `now`.
    fn new(source: usize, run: Option<u64>, pieces: Range<u64>, now: Instant) -> Ticket {
        Ticket {
            source,
            run,
            current: pieces.start,
            since: now,
            end: pieces.end,
            under_way: true,
            received: 0,
            done: 0,
            opening: Duration::ZERO,
            later: 0,
            slow: 0,
        }
    }

    /// The source to ask.
    pub fn source(&self) -> usize {
        self.source
    }

    /// The pieces still to come: all those asked for until the first is
    /// complete.
    pub fn pieces(&self) -> Range<u64> {
        self.current..self.end
    }

    /// The piece whose bytes come next.
    pub fn current(&self) -> u64 {
        self.current
    }

    /// Bytes of the current piece received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// `bytes` more of the current piece arrived.
    pub fn receive(&mut self, bytes: u64) {
        self.received += bytes;
    }

    /// The current piece took `took`: whether the answer's later pieces,
    /// [`CAP_EVIDENCE`] at least, have been slow half the time or more:
    /// [`CAP_SLOWDOWN`] times as long as the fastest of its first
    /// [`OPENING`], and [`CAP_FLOOR`] more.
    ///
    /// Against the fastest of the first pieces, because a capping server
    /// sends them at once (nginx: its first 2 MiB), while the very first
    /// also waits for the request's round trip and a new connection's
    /// start; an answer that is merely slow to start (a far server, Nagle's
    /// algorithm) sends its second piece no faster than the rest. Half the
    /// time, because a capping server goes on sending in bursts (nginx:
    /// 2 MiB every 100 ms at 20 MiB/s), one piece of two at once.
    fn paced(&mut self, took: Duration) -> bool {
        self.done += 1;
        if self.done <= OPENING {
            self.opening = if self.done == 1 {
                took
            } else {
                self.opening.min(took)
            };
            return false;
        }
        self.later += 1;
        let opening = self.opening;
        if took > opening * CAP_SLOWDOWN && took > opening + CAP_FLOOR {
            self.slow += 1;
        }
        self.later >= CAP_EVIDENCE && self.slow * 2 >= self.later
    }

    /// Whether the rest of the answer belongs to another worker (which
    /// took the run's last pieces) or to no one (the download stopped):
    /// the connection is then dropped rather than read on.
    pub fn cut_short(&self) -> bool {
        !self.under_way && self.current < self.end
    }
}

/// How a request ended ([`Scheduler::finish`]).
#[derive(Debug)]
pub enum Ended {
    /// Every piece asked for arrived. `validator` is what the answer
    /// carried for `If-Range`; `verified`, whether the source's first
    /// answer had been checked already when it was asked.
    Fetched {
        /// The answer's `If-Range` value.
        validator: Option<String>,
        /// The source was verified before this request.
        verified: bool,
    },
    /// Not a failure: another copy of the piece arrived first (or the
    /// download stopped), after `bytes` of this one.
    LostRace {
        /// Bytes of the current piece this request had brought.
        bytes: u64,
    },
    /// The source failed, and asked to wait `retry_after` (a 429 or 503).
    Failed {
        /// What went wrong.
        err: Error,
        /// The wait the server asked for.
        retry_after: Option<Duration>,
    },
    /// The store could not take the bytes, or the client was cancelled: no
    /// source is to blame, and the download cannot go on.
    Local(Error),
}

/// Why a waiting read should give its answer up ([`Scheduler::give_up`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandoned {
    /// The piece is no longer wanted: another copy arrived, or the
    /// download ended.
    Unneeded,
    /// The answer stalled, and the piece can come from elsewhere.
    Stalled,
}

/// A piece being fetched.
#[derive(Debug)]
struct Outstanding {
    since: Instant,
    source: usize,
    copies: u32,
}

/// A run being fetched: its source, and the pieces its worker has not
/// started yet.
#[derive(Debug)]
struct Run {
    source: usize,
    unstarted: Range<u64>,
    /// Its answer was adopted ([`Scheduler::adopt`]): its pieces are
    /// taken from it only once its current one has stalled, not merely
    /// because a worker has nothing to do. They are on their way already,
    /// or queued behind the consumer's piece, and what is on its way
    /// would be lost with the connection.
    adopted: bool,
}

/// The schedule the consumer and the workers share (behind the engine's
/// lock).
#[derive(Debug)]
pub struct Scheduler {
    plan: Plan,
    /// The pieces go to a store, at their offsets, rather than in order to
    /// a consumer.
    in_place: bool,
    /// The next piece no worker has claimed.
    next_claim: u64,
    /// The next piece the consumer will hand on (with a store: the first
    /// piece missing from it).
    next_out: u64,
    /// Pieces fetched but not handed on yet (the engine holds their bytes).
    arrived: BTreeSet<u64>,
    /// With a store: the pieces written to it whole.
    have: PieceSet,
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
    runs: BTreeMap<u64, Run>,
    next_run: u64,
    /// Sources that cap each request after a first allowance: they get
    /// runs of one piece.
    capped: BTreeSet<usize>,
    /// When the workers started, and the bytes of the pieces they fetched
    /// since: the download's rate.
    workers_since: Option<Instant>,
    fetched_bytes: u64,
    sources: Sources,
    /// The first failure that no retry could mend: the download ends.
    failed: Option<Error>,
    /// The consumer went away.
    cancelled: bool,
}

impl Scheduler {
    /// The schedule of a download whose piece `first` the consumer reads
    /// itself (from the first answer), fetching from `sources`, with the
    /// pieces in `have` already in the store.
    pub fn new(plan: Plan, sources: Sources, have: PieceSet, first: u64) -> Scheduler {
        Scheduler {
            plan,
            in_place: false,
            next_claim: first + 1,
            next_out: first + 1,
            arrived: BTreeSet::new(),
            have,
            claimed: BTreeMap::new(),
            piece_time: Duration::ZERO,
            pieces_fetched: 0,
            last_piece_at: None,
            retry: BTreeSet::new(),
            runs: BTreeMap::new(),
            next_run: 0,
            capped: BTreeSet::new(),
            workers_since: None,
            fetched_bytes: 0,
            sources,
            failed: None,
            cancelled: false,
        }
    }

    /// The pieces go to a store at their offsets from now on: nothing is
    /// handed on, so the next piece out is the first one the store lacks.
    pub fn write_in_place(&mut self) {
        self.in_place = true;
        self.next_out = self.have.first_missing_from(0);
    }

    /// The workers start at `now` on the pieces from `index` on; the
    /// consumer reads what comes before it itself.
    pub fn start(&mut self, index: u64, now: Instant) {
        self.next_claim = index;
        self.workers_since = Some(now);
        if !self.in_place {
            self.next_out = index;
        }
    }

    /// The answer the consumer read itself gave up in piece `index`: the
    /// workers fetch it (all of it) first, and the consumer waits for it.
    pub fn take_over(&mut self, index: u64) {
        self.retry.insert(index);
        if !self.in_place {
            self.next_out = index;
        }
    }

    /// Pieces `pieces` are coming from `source`, asked for at `now` by an
    /// answer no claim made: the first answer, which brings the resource's
    /// first pieces after the one the consumer reads itself. They become a
    /// run as if claimed, so that an idle worker may take the back half of
    /// its pieces not started and a copy of its current piece may be
    /// fetched when it stalls: a slow first source holds nothing up (a
    /// fast one keeps them: see `Run::adopted`). The ticket goes to the
    /// worker that reads the answer on.
    pub fn adopt(&mut self, source: usize, pieces: Range<u64>, now: Instant) -> Ticket {
        self.sources.answering(source);
        self.open_run(source, pieces, true, now)
    }

    /// The adopted answer starts on the ticket's current piece at `now`
    /// (its bytes before were the consumer's): the piece is timed from
    /// here, so that it is not taken for stalled.
    pub fn begin(&mut self, ticket: &mut Ticket, now: Instant) {
        ticket.since = now;
        if let Some(outstanding) = self.claimed.get_mut(&ticket.current) {
            outstanding.since = now;
        }
    }

    /// The adopted answer is dropped before it brought any of the ticket's
    /// pieces (the consumer gave it up in its own piece): they go back to
    /// be fetched again first.
    pub fn release(&mut self, ticket: Ticket) {
        if let Some(run) = ticket.run.and_then(|id| self.runs.remove(&id)) {
            self.retry.extend(run.unstarted);
        }
        self.sources.cancelled(ticket.source, 0, Duration::ZERO);
        let needed = ticket.under_way && self.needs(ticket.current);
        self.let_go(&ticket, needed);
    }

    /// `source` sent bytes that fail their hash on the answer the consumer
    /// reads itself: it is dropped, so that no worker asks it again.
    /// Returns what the user is told (nothing once no source is left: the
    /// download's error says it).
    pub fn reject(&mut self, source: usize, err: Error) -> Option<Event> {
        let dropped_before = self.sources.is_dropped(source);
        self.sources.reject(source, err.clone());
        (!dropped_before && !self.sources.all_dropped())
            .then_some(Event::SourceDropped { error: err })
    }

    /// Sources not dropped.
    pub fn any_source_left(&self) -> bool {
        !self.sources.all_dropped()
    }

    /// The consumer handed on piece `index`, the next one out.
    pub fn handed_on(&mut self, index: u64) {
        self.arrived.remove(&index);
        self.next_out = index + 1;
    }

    /// Piece `index` is in the store.
    pub fn stored(&mut self, index: u64) {
        self.have.insert(index);
        self.next_out = self.have.first_missing_from(self.next_out);
    }

    /// The consumer went away: nothing more is claimed, and the requests
    /// under way let go.
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// Whether the consumer went away.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The failure that ended the download, if one did.
    pub fn failed(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// `source` caps each request after a first allowance: half of an
    /// answer's later pieces came much slower than its first ones (see
    /// `Ticket::paced`), or the consumer's one stream slowed down after a
    /// fast start. From now on
    /// its claims are one piece each, and the pieces its runs have not
    /// started go back to be claimed first, their workers stopping at the
    /// end of their current piece.
    ///
    /// Why: such a server (nginx's `limit_rate`, the cap download sites
    /// use) lets each request's first bytes through at once and paces the
    /// rest, so a long run goes at the cap while a request per piece stays
    /// within each request's allowance. A server that is merely slow, or
    /// caps each connection, sends a run's later pieces no slower than its
    /// first (which also waits for the request's round trip), and keeps
    /// its long runs: a round trip per piece would cost it.
    pub fn caps_each_request(&mut self, source: usize) {
        if !self.capped.insert(source) {
            return;
        }
        for run in self.runs.values_mut().filter(|run| run.source == source) {
            self.retry.extend(run.unstarted.clone());
            run.unstarted.end = run.unstarted.start;
        }
    }

    /// The next piece the consumer hands on (with a store: the first one
    /// missing from it).
    pub fn next_out(&self) -> u64 {
        self.next_out
    }

    /// The pieces in the store.
    pub fn have(&self) -> &PieceSet {
        &self.have
    }

    /// Source `index`, to ask it.
    pub fn source(&self, index: usize) -> &Source {
        self.sources.get(index)
    }

    /// Sources not dropped.
    pub fn sources_alive(&self) -> usize {
        self.sources.alive()
    }

    /// Requests under way for pieces, copies included.
    pub fn fetching(&self) -> usize {
        self.claimed.values().map(|o| o.copies as usize).sum()
    }

    /// Whether piece `index` is still worth reading: the download goes on
    /// and no copy of it has arrived.
    pub fn wanted(&self, index: u64) -> bool {
        !self.cancelled && self.needs(index)
    }

    /// Whether piece `index` is still wanted (a copy that lost the race is
    /// not).
    fn needs(&self, index: u64) -> bool {
        index >= self.next_out && !self.arrived.contains(&index) && !self.have.contains(index)
    }

    /// How many pieces past the next one out may be claimed.
    fn window(&self) -> u64 {
        if self.in_place {
            STORE_WINDOW
        } else {
            self.plan.window
        }
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
    /// one has started yet, at the rate the workers have reached; `None`
    /// in order (pieces handed on in order must come in order) or before
    /// the rate is known.
    fn time_left(&self, now: Instant) -> Option<Duration> {
        if !self.in_place {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.workers_since?);
        let piece = self.plan.layout.piece_length();
        if elapsed < Duration::from_millis(200) || self.fetched_bytes < 4 * piece {
            return None;
        }
        let not_started = self.unclaimed() + self.unstarted();
        let micros =
            u128::from(not_started * piece) * elapsed.as_micros() / u128::from(self.fetched_bytes);
        Some(Duration::from_micros(micros as u64))
    }

    /// Pieces no worker has claimed.
    fn unclaimed(&self) -> u64 {
        let pieces = self.plan.layout.pieces();
        pieces.saturating_sub(self.next_claim) + self.retry.len() as u64
    }

    /// Pieces claimed in runs whose workers have not started them.
    fn unstarted(&self) -> u64 {
        self.runs
            .values()
            .map(|run| run.unstarted.end - run.unstarted.start)
            .sum()
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
    fn span(&self) -> u64 {
        if !self.in_place {
            return 1;
        }
        let not_started = self.unclaimed() + self.unstarted();
        let share = not_started.div_ceil(self.plan.workers.max(1) as u64);
        share.clamp(1, MAX_SPAN)
    }

    /// The next pieces for `worker` and a source to fetch them from, at
    /// `now`; or to wait, or to stop.
    pub fn claim(&mut self, worker: usize, now: Instant) -> Claim {
        if self.cancelled || self.failed.is_some() {
            return Claim::Stop;
        }
        if self.sources.all_dropped() {
            self.failed = Some(self.sources.exhausted());
            return Claim::Stop;
        }
        // Pieces an earlier run stored are not fetched again.
        self.next_claim = self.have.first_missing_from(self.next_claim);
        let stall_after = self.stall_after();
        if let Some((pieces, victim)) = self.fresh(stall_after, now) {
            return self.claim_fresh(worker, pieces, victim, now);
        }
        // Nothing new to claim (window full, or all claimed): help with
        // the oldest piece still outstanding if it has taken too long.
        if let Some((index, slow)) = self.late(stall_after, now) {
            return self.claim_copy(worker, index, slow, now);
        }
        let pieces = self.plan.layout.pieces();
        if self.next_claim >= pieces && self.claimed.is_empty() && self.retry.is_empty() {
            return Claim::Stop;
        }
        Claim::Wait
    }

    /// When a worker told to [`Claim::Wait`] at `now` should ask again if
    /// nothing wakes it sooner: the first instant after `now` at which a
    /// piece under way stalls or a source's backoff ends, the claims that
    /// time alone changes. Everything else a claim depends on (a piece
    /// arriving or handed on, a request ending, a cancel) is a change the
    /// engine signals, so the worker sleeps until one of the two rather
    /// than looking at the schedule at a fixed interval; `None`: nothing
    /// is due.
    pub fn look_again_at(&self, now: Instant) -> Option<Instant> {
        let stall_after = self.stall_after();
        let stalls = self.claimed.values().map(|o| o.since + stall_after);
        stalls
            .filter(|&t| t > now)
            .chain(self.sources.next_backoff_end(now))
            .min()
    }

    /// Pieces no one fetches that a claim may take, and the run they are
    /// taken from, if any: pieces to retry first, then the next unclaimed
    /// ones within the window, else the back half of the longest run's
    /// pieces not started yet.
    fn fresh(&self, stall_after: Duration, now: Instant) -> Option<(Range<u64>, Option<u64>)> {
        let pieces = self.plan.layout.pieces();
        let span = self.span();
        let limit = self.next_out + self.window();
        if let Some(&first) = self.retry.iter().next() {
            let mut end = first + 1;
            while end - first < span && self.retry.contains(&end) {
                end += 1;
            }
            return Some((first..end, None));
        }
        if self.next_claim < pieces && self.next_claim < limit {
            let first = self.next_claim;
            let end = (first + span)
                .min(pieces)
                .min(limit)
                .min(self.have.next_present_after(first).unwrap_or(pieces));
            return Some((first..end, None));
        }
        // The back half of the longest run's pieces not started yet: its
        // worker stops where they begin (as aria2 and axel split the
        // largest remaining range). A run's last piece is left to it,
        // unless the piece before (its current one) has stalled; so is
        // all of an adopted one.
        let stuck = |unstarted: &Range<u64>| {
            let current = unstarted.start.saturating_sub(1);
            self.claimed
                .get(&current)
                .is_some_and(|o| now.saturating_duration_since(o.since) > stall_after)
        };
        self.runs
            .iter()
            .filter(|(_, run)| match run.unstarted.end - run.unstarted.start {
                0 => false,
                1 => stuck(&run.unstarted),
                _ => !run.adopted || stuck(&run.unstarted),
            })
            .map(|(id, run)| (id, &run.unstarted))
            .max_by_key(|(_, unstarted)| unstarted.end - unstarted.start)
            .map(|(&id, unstarted)| {
                let half = (unstarted.end - unstarted.start).div_ceil(2);
                (unstarted.end - half..unstarted.end, Some(id))
            })
    }

    /// The outstanding piece a copy should be fetched of, and the source
    /// it is being fetched from: the oldest, once it has stalled; else one
    /// whose source is so slow that a copy from the fastest would arrive
    /// well before it (the end of a download, where a slow mirror's last
    /// piece would otherwise be waited for). Never a piece with a copy
    /// under way already.
    fn late(&self, stall_after: Duration, now: Instant) -> Option<(u64, usize)> {
        let waited = |o: &Outstanding| now.saturating_duration_since(o.since);
        let copy_takes = self.sources.best_piece_time();
        let stalled = self
            .claimed
            .iter()
            .next()
            .filter(|(_, o)| o.copies == 1 && waited(o) > stall_after);
        let overtaken = || {
            self.claimed.iter().find(|(_, o)| {
                let expected = self.sources.piece_time(o.source);
                o.copies == 1
                    && matches!((expected, copy_takes), (Some(expected), Some(copy))
                        if expected.saturating_sub(waited(o)) > copy * 2)
            })
        };
        stalled
            .or_else(overtaken)
            .map(|(&index, o)| (index, o.source))
    }

    /// Claims `pieces` (taken from run `victim`, if any) for `worker`, as
    /// many of them as the source it gets can fetch in time.
    fn claim_fresh(
        &mut self,
        worker: usize,
        mut pieces: Range<u64>,
        victim: Option<u64>,
        now: Instant,
    ) -> Claim {
        let time_left = self.time_left(now);
        let picked = match time_left {
            Some(time_left) => self.sources.pick_within(worker, time_left, now),
            None => self.sources.pick(worker, None, now),
        };
        let Some(source) = picked else {
            return Claim::Wait;
        };
        // Among several sources, one asked for more pieces than it can
        // fetch before the others are done would hold up the end: one
        // whose speed is not known yet gets one piece, which shows it;
        // then what it fetches in half the time left. (One source's
        // connections all go at its speed: the even share keeps them
        // level.)
        let several = self.sources.len() > 1;
        let can_fetch = match (self.sources.piece_time(source), time_left) {
            (None, _) if several => 1,
            (Some(per_piece), Some(left)) if several => {
                (left.as_micros() / 2 / per_piece.as_micros().max(1)) as u64
            }
            _ => u64::MAX,
        };
        // A server that caps each request sends a run's first pieces at
        // once and the rest at its cap: a request per piece keeps every
        // request within its allowance.
        let can_fetch = if self.capped.contains(&source) {
            1
        } else {
            can_fetch.max(1)
        };
        match victim {
            // Taken from the back, so that the run keeps its front.
            Some(id) => {
                pieces.start = pieces.start.max(pieces.end.saturating_sub(can_fetch));
                if let Some(run) = self.runs.get_mut(&id) {
                    run.unstarted.end = pieces.start;
                }
            }
            None => pieces.end = pieces.end.min(pieces.start.saturating_add(can_fetch)),
        }
        Claim::Fetch(self.open_run(source, pieces, false, now))
    }

    /// Records `pieces` as a run under way from `source` since `now`
    /// (`adopted`: see `Run::adopted`), its first piece outstanding;
    /// returns its ticket.
    fn open_run(
        &mut self,
        source: usize,
        pieces: Range<u64>,
        adopted: bool,
        now: Instant,
    ) -> Ticket {
        for index in pieces.clone() {
            self.retry.remove(&index);
        }
        if pieces.contains(&self.next_claim) {
            self.next_claim = pieces.end;
        }
        let id = self.next_run;
        self.next_run += 1;
        let run = Run {
            source,
            unstarted: pieces.start + 1..pieces.end,
            adopted,
        };
        self.runs.insert(id, run);
        let outstanding = Outstanding {
            since: now,
            source,
            copies: 1,
        };
        self.claimed.insert(pieces.start, outstanding);
        Ticket::new(source, Some(id), pieces, now)
    }

    /// Claims a copy of piece `index` for `worker`, from a source other
    /// than `slow`, the one it is being fetched from.
    fn claim_copy(&mut self, worker: usize, index: u64, slow: usize, now: Instant) -> Claim {
        let Some(source) = self.sources.pick(worker, Some(slow), now) else {
            return Claim::Wait;
        };
        if let Some(outstanding) = self.claimed.get_mut(&index) {
            outstanding.copies += 1;
        }
        Claim::Fetch(Ticket::new(source, None, index..index + 1, now))
    }

    /// The ticket's current piece is whole at `now`: it is recorded (as
    /// stored, with a store), and the ticket moves on to its next piece,
    /// unless another worker took it or the download stopped. Returns
    /// whether the engine keeps the piece's bytes to hand on: not with a
    /// store, nor when a copy came first or the consumer is past it.
    pub fn complete(&mut self, ticket: &mut Ticket, now: Instant) -> bool {
        let index = ticket.current;
        let took = now.saturating_duration_since(ticket.since);
        self.sources.served(ticket.source, ticket.received, took);
        self.piece_time += took;
        self.pieces_fetched += 1;
        self.fetched_bytes += ticket.received;
        self.last_piece_at = Some(now);
        self.claimed.remove(&index);
        if ticket.paced(took) {
            self.caps_each_request(ticket.source);
        }
        let keep = if self.in_place {
            self.stored(index);
            false
        } else {
            index >= self.next_out && self.arrived.insert(index)
        };
        ticket.current += 1;
        ticket.received = 0;
        ticket.since = now;
        let stop = self.cancelled || self.failed.is_some();
        let run = ticket.run.and_then(|id| self.runs.get_mut(&id));
        ticket.under_way = match run.map(|run| &mut run.unstarted) {
            Some(unstarted) if !stop && unstarted.start < unstarted.end => {
                debug_assert_eq!(unstarted.start, ticket.current);
                unstarted.start += 1;
                true
            }
            _ => false,
        };
        if ticket.under_way {
            let outstanding = Outstanding {
                since: now,
                source: ticket.source,
                copies: 1,
            };
            self.claimed.insert(ticket.current, outstanding);
        }
        keep
    }

    /// The ticket's request ended at `now`, `ended` telling how (and
    /// `gave_up`, whether its read gave the answer up): the source is
    /// credited or blamed, and the pieces of the claim not fetched go back
    /// to be fetched again first. Returns what the user should be told,
    /// which the engine tells once it has released its lock.
    pub fn finish(
        &mut self,
        ticket: Ticket,
        ended: Ended,
        gave_up: Option<Abandoned>,
        now: Instant,
    ) -> Option<Event> {
        // A request let go because its piece was no longer needed lost a
        // race, whatever error its read ended with.
        let ended = match ended {
            Ended::LostRace { .. } | Ended::Failed { .. }
                if gave_up == Some(Abandoned::Unneeded) =>
            {
                Ended::LostRace {
                    bytes: ticket.received,
                }
            }
            other => other,
        };
        // The pieces of the run not started are fetched again first.
        if let Some(run) = ticket.run.and_then(|id| self.runs.remove(&id)) {
            self.retry.extend(run.unstarted);
        }
        let took = now.saturating_duration_since(ticket.since);
        match ended {
            Ended::Fetched {
                validator,
                verified,
            } => self.fetched(ticket.source, validator, verified),
            // The disk, not the source: the download cannot go on.
            Ended::Local(err) => {
                self.failed.get_or_insert(err);
                None
            }
            Ended::LostRace { bytes } => {
                let needed = ticket.under_way && self.needs(ticket.current);
                self.sources.cancelled(ticket.source, bytes, took);
                self.let_go(&ticket, needed);
                None
            }
            Ended::Failed { err, retry_after } => {
                let needed = ticket.under_way && self.needs(ticket.current);
                if gave_up == Some(Abandoned::Stalled) {
                    // The stall counts in the source's speed, so that a
                    // mirror it made look slow is not passed over.
                    self.sources.charge(ticket.source, ticket.received, took);
                }
                let event = self.source_failed(ticket.source, err, retry_after, now);
                self.let_go(&ticket, needed);
                event
            }
        }
    }

    /// A request to `source` brought every piece it asked for, its answer
    /// carrying `validator`. A mirror's first good answer verifies it; one
    /// checked by its length alone is told.
    fn fetched(
        &mut self,
        source: usize,
        validator: Option<String>,
        verified: bool,
    ) -> Option<Event> {
        self.sources.succeeded(source);
        if verified {
            return None;
        }
        // Without a validator on both sides, a mirror was checked by its
        // length alone: a different file of the same length would be
        // mixed in, unseen but for a digest. The user is told.
        let unchecked = validator.is_none() || !self.plan.validated;
        let url = self.sources.get(source).url.redacted().to_string();
        (self.sources.verify(source, validator) && unchecked)
            .then_some(Event::CheckedByLengthOnly { url })
    }

    /// `source` failed with `err` at `now`: it backs off or is dropped.
    /// Returns what the user is told of it.
    fn source_failed(
        &mut self,
        source: usize,
        err: Error,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Option<Event> {
        let transient = err.is_transient();
        let shown = err.clone();
        // Several connections to a source may fail at once: its drop is
        // told once.
        let dropped_before = self.sources.is_dropped(source);
        let wait = self
            .sources
            .failed(source, err, transient, retry_after, now);
        // Short backoffs come and go with the pieces; a wait a person
        // would notice (a Retry-After) is announced. A source given up
        // while others go on is too: a mirror of another version would
        // otherwise vanish unseen, and the download run at the others'
        // speed.
        match wait {
            Some(wait) if wait >= ANNOUNCED_WAIT => {
                Some(Event::SourceBackingOff { error: shown, wait })
            }
            None if !dropped_before && !self.sources.all_dropped() => {
                Some(Event::SourceDropped { error: shown })
            }
            _ => None,
        }
    }

    /// The ticket's current piece is no longer being fetched by it: one
    /// copy fewer, or back to be fetched again first when it is `needed`
    /// (another copy may have arrived meanwhile).
    fn let_go(&mut self, ticket: &Ticket, needed: bool) {
        if !ticket.under_way {
            return;
        }
        let index = ticket.current;
        match self.claimed.get_mut(&index) {
            Some(outstanding) if outstanding.copies > 1 => outstanding.copies -= 1,
            _ if needed => {
                self.claimed.remove(&index);
                self.retry.insert(index);
            }
            _ => {}
        }
    }

    /// Whether a read of piece `index` from `source` that has waited
    /// `waited` for its next byte should give its answer up at `now`.
    ///
    /// Why: a read waits for its next byte up to the idle timeout (30 s by
    /// default). A worker stuck there is a connection lost to the download,
    /// and when every worker is stuck on a stalled source, none is left to
    /// fetch a copy from another: the download waited the stalls out. So a
    /// read lets go of a piece that another copy has brought, and of an
    /// answer silent past [`GIVE_UP_FLOOR`] (and three times the usual
    /// piece time) whose piece another usable source can send, or that a
    /// new connection may bring while the others' pieces keep coming. With
    /// one source and nothing arriving anywhere, the stall may be the
    /// network's, and the read waits on.
    pub fn give_up(
        &self,
        index: u64,
        source: usize,
        waited: Duration,
        now: Instant,
    ) -> Option<Abandoned> {
        if self.cancelled || self.failed.is_some() || !self.needs(index) {
            return Some(Abandoned::Unneeded);
        }
        let arriving = self
            .last_piece_at
            .is_some_and(|at| now.saturating_duration_since(at) < waited);
        let elsewhere = self.sources.others_usable(source, now) || arriving;
        (waited >= self.stall_after().max(GIVE_UP_FLOOR) && elsewhere).then_some(Abandoned::Stalled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::url::Url;

    /// A small piece, so that the bytes of a test's pieces are few.
    const PIECE: u64 = 1000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A download of `pieces` pieces over `workers` workers from `sources`
    /// sources, the consumer
    /// reading piece 0 itself and the workers started at `t0` on the rest.
    /// `in_place`: written into a store, else handed on in order with a
    /// window of 4 pieces. Sources are dropped after 5 failures in a row.
    fn schedule(
        pieces: u64,
        workers: usize,
        sources: usize,
        in_place: bool,
        t0: Instant,
    ) -> Scheduler {
        schedule_with(pieces, workers, sources, 5, in_place, PieceSet::new(), t0)
    }

    /// Like [`schedule`], with sources dropped after `retries` failures in
    /// a row and the pieces in `have` already stored.
    fn schedule_with(
        pieces: u64,
        workers: usize,
        sources: usize,
        retries: u32,
        in_place: bool,
        have: PieceSet,
        t0: Instant,
    ) -> Scheduler {
        let url = |i: usize| Url::parse(&format!("http://s{i}.test/f")).unwrap();
        let mirrors = (1..sources).map(url).collect();
        let sources = Sources::new(url(0), None, mirrors, retries, PIECE);
        let plan = Plan {
            layout: Layout::new(pieces * PIECE, PIECE),
            window: 4,
            workers,
            validated: true,
        };
        let mut s = Scheduler::new(plan, sources, have, 0);
        if in_place {
            s.write_in_place();
        }
        let from = s.next_out.max(1);
        s.start(from, t0);
        s
    }

    /// The ticket a claim hands out, or a failure naming what it was.
    #[track_caller]
    fn ticket(claim: Claim) -> Ticket {
        match claim {
            Claim::Fetch(ticket) => ticket,
            other => panic!("expected pieces to fetch, got {other:?}"),
        }
    }

    /// The ticket's current piece arrives whole at `now`; returns whether
    /// its bytes are kept.
    fn arrive(s: &mut Scheduler, t: &mut Ticket, now: Instant) -> bool {
        t.receive(PIECE);
        s.complete(t, now)
    }

    /// Every piece of `t` arrives, one each `each` from `at`; the request
    /// then ends well. Returns when it ended.
    fn fetch_all(s: &mut Scheduler, mut t: Ticket, mut at: Instant, each: Duration) -> Instant {
        while !t.pieces().is_empty() && !t.cut_short() {
            at += each;
            arrive(s, &mut t, at);
        }
        let ended = Ended::Fetched {
            validator: None,
            verified: true,
        };
        s.finish(t, ended, None, at);
        at
    }

    fn reset() -> Error {
        Error::new(ErrorKind::Network, "connection reset")
    }

    #[test]
    fn pieces_handed_on_in_order_are_claimed_one_each_and_within_the_window() {
        let t0 = Instant::now();
        let mut s = schedule(20, 8, 1, false, t0);
        let mut claims: Vec<_> = (0..4).map(|w| ticket(s.claim(w, t0))).collect();
        let pieces: Vec<_> = claims.iter().map(Ticket::pieces).collect();
        assert_eq!(pieces, [1..2, 2..3, 3..4, 4..5], "one piece each, in order");
        // Pieces 1..=4 fill the window of 4 ahead of the consumer: an idle
        // worker waits, though 15 pieces are left.
        assert!(matches!(s.claim(4, t0), Claim::Wait));
        // Piece 2 arrives: it waits for piece 1, and the window stays.
        assert!(arrive(&mut s, &mut claims[1], t0 + ms(10)));
        assert!(matches!(s.claim(4, t0 + ms(10)), Claim::Wait));
        // Piece 1 arrives and the consumer hands it on: the window moves
        // by one piece.
        assert!(arrive(&mut s, &mut claims[0], t0 + ms(20)));
        s.handed_on(1);
        assert_eq!(ticket(s.claim(4, t0 + ms(20))).pieces(), 5..6);
        assert!(matches!(s.claim(5, t0 + ms(20)), Claim::Wait));
    }

    #[test]
    fn runs_are_an_even_share_of_what_no_one_started_and_shrink_near_the_end() {
        let t0 = Instant::now();
        // Large: a run is capped at MAX_SPAN.
        let mut s = schedule(1000, 4, 1, true, t0);
        assert_eq!(ticket(s.claim(0, t0)).pieces(), 1..1 + MAX_SPAN);
        // Near the end (990 pieces already stored): 10 pieces left among 4
        // workers, then ever fewer, so that the workers end together.
        let mut s = schedule_with(1000, 4, 1, 5, true, PieceSet::first(990), t0);
        let runs: Vec<_> = (0..4).map(|w| ticket(s.claim(w, t0)).pieces()).collect();
        assert_eq!(runs, [990..993, 993..996, 996..998, 998..1000]);
        // A fifth worker finds nothing unclaimed: it takes one piece of a
        // run's two not started.
        let last = ticket(s.claim(4, t0)).pieces();
        assert_eq!(last.end - last.start, 1, "{last:?}");
    }

    #[test]
    fn a_source_of_unknown_speed_gets_one_piece_then_what_it_can_fetch_in_time() {
        let t0 = Instant::now();
        let mut s = schedule(400, 2, 2, true, t0);
        let fast = ticket(s.claim(0, t0));
        let slow = ticket(s.claim(1, t0));
        assert_eq!(
            (fast.pieces(), slow.pieces()),
            (1..2, 2..3),
            "one piece each"
        );
        // Source 0 fetches a piece in 10 ms, source 1 in 100 ms. Known,
        // source 0's speed earns it a full run.
        let at = fetch_all(&mut s, fast, t0, ms(10));
        fetch_all(&mut s, slow, t0, ms(100));
        let fast = ticket(s.claim(0, at));
        assert_eq!(fast.pieces(), 3..3 + MAX_SPAN);
        let at = fetch_all(&mut s, fast, at, ms(10));
        // 66 pieces in 650 ms: the 333 left take some 3.3 s at that rate.
        // Source 1 gets only what it fetches in half that time.
        assert_eq!(at, t0 + ms(650));
        let left = s.time_left(at).expect("the rate is known");
        assert_eq!(left.as_millis(), 333 * 650 / 66);
        let slow = ticket(s.claim(1, at)).pieces();
        let in_half = (left / 2).as_millis() as u64 / 100;
        assert_eq!(slow, 67..67 + in_half);
        assert!(in_half < MAX_SPAN);
        // Source 0 can fetch a full run in that time.
        let fast = ticket(s.claim(0, at)).pieces();
        assert_eq!(fast, slow.end..slow.end + MAX_SPAN);
    }

    #[test]
    fn answers_that_slow_down_after_their_first_pieces_get_a_piece_a_request() {
        let t0 = Instant::now();
        let mut s = schedule(400, 2, 1, true, t0);
        let mut a = ticket(s.claim(0, t0));
        let mut b = ticket(s.claim(1, t0));
        assert_eq!(
            (a.pieces(), b.pieces()),
            (1..1 + MAX_SPAN, 65..65 + MAX_SPAN)
        );
        // As nginx's limit_rate sends an answer: 2 MiB at once, then 2 MiB
        // every 100 ms. Four later pieces show it.
        let mut at = t0;
        for (n, step) in [1, 1, 100, 1, 100].into_iter().enumerate() {
            at += ms(step);
            arrive(&mut s, &mut a, at);
            assert!(!a.cut_short(), "after {} pieces", n + 1);
        }
        at += ms(1);
        arrive(&mut s, &mut a, at);
        // Both runs stop after their current piece, and what they had not
        // started comes a piece a request.
        assert!(a.cut_short());
        s.finish(a, Ended::LostRace { bytes: 0 }, None, at);
        assert_eq!(ticket(s.claim(0, at)).pieces(), 7..8);
        arrive(&mut s, &mut b, at + ms(1));
        assert!(b.cut_short());
        s.finish(b, Ended::LostRace { bytes: 0 }, None, at + ms(1));
        assert_eq!(ticket(s.claim(1, at + ms(1))).pieces(), 8..9);
    }

    #[test]
    fn answers_slow_to_start_or_even_keep_their_long_runs() {
        // A far server: the first pieces wait for the round trip and the
        // connection's start. Nagle's algorithm or a cap on each
        // connection: every piece alike. A fast server on a busy machine:
        // its first pieces at once, and one held up by a hiccup.
        for times in [
            [300, 120, 20, 20, 20, 20, 20],
            [50, 50, 50, 50, 200, 50, 50],
            [1, 1, 1, 300, 1, 1, 1],
        ] {
            let t0 = Instant::now();
            let mut s = schedule(400, 1, 1, true, t0);
            let mut run = ticket(s.claim(0, t0));
            let mut at = t0;
            for step in times {
                at += ms(step);
                arrive(&mut s, &mut run, at);
            }
            assert!(!run.cut_short(), "{times:?}");
            let more = ticket(s.claim(1, at)).pieces();
            assert!(more.end - more.start > 1, "{times:?}: {more:?}");
        }
    }

    #[test]
    fn a_worker_with_nothing_left_takes_the_back_half_of_the_longest_run() {
        let t0 = Instant::now();
        let mut s = schedule(17, 2, 1, true, t0);
        let short = ticket(s.claim(0, t0));
        let mut long = ticket(s.claim(1, t0));
        assert_eq!((short.pieces(), long.pieces()), (1..9, 9..17));
        let at = fetch_all(&mut s, short, t0, ms(10));
        // Pieces 10 to 16 are not started: the idle worker takes 13 to 16.
        let taken = ticket(s.claim(0, at));
        assert_eq!(taken.pieces(), 13..17);
        // The run's owner stops where they begin: after piece 12, the rest
        // of its answer is another worker's.
        for (n, index) in (9..13).enumerate() {
            assert!(!long.cut_short(), "piece {index}");
            arrive(&mut s, &mut long, at + ms(n as u64 + 1));
        }
        assert_eq!(long.current(), 13);
        assert!(long.cut_short());
    }

    #[test]
    fn a_stalled_piece_gets_one_copy_from_another_source_after_three_times_the_usual_time() {
        let t0 = Instant::now();
        let mut s = schedule(20, 3, 2, false, t0);
        let stuck = ticket(s.claim(1, t0));
        assert_eq!((stuck.pieces(), stuck.source()), (1..2, 1));
        // Meanwhile source 0 brings pieces 2, 3 and 4 in 100 ms each.
        let mut at = t0;
        for _ in 0..3 {
            let next = ticket(s.claim(0, at));
            at = fetch_all(&mut s, next, at, ms(100));
        }
        assert_eq!(at, t0 + ms(300));
        // The window is full. Piece 1 has waited 300 ms, three times the
        // usual: not yet late.
        assert!(matches!(s.claim(0, at), Claim::Wait));
        let copy = ticket(s.claim(0, t0 + ms(301)));
        assert_eq!(
            (copy.pieces(), copy.source()),
            (1..2, 0),
            "from the other source"
        );
        // One copy is enough.
        assert!(matches!(s.claim(2, t0 + ms(900)), Claim::Wait));
    }

    #[test]
    fn the_first_copy_to_arrive_is_used_and_the_other_let_go() {
        let t0 = Instant::now();
        // Piece 1 is the last: a copy of it after the stall floor.
        let mut s = schedule(2, 2, 2, false, t0);
        let original = ticket(s.claim(1, t0));
        assert!(matches!(s.claim(0, t0 + ms(200)), Claim::Wait));
        let mut copy = ticket(s.claim(0, t0 + ms(250)));
        assert_eq!(copy.pieces(), original.pieces());
        assert_ne!(copy.source(), original.source());
        assert!(
            arrive(&mut s, &mut copy, t0 + ms(260)),
            "the copy's bytes are kept"
        );
        assert!(!s.wanted(1));
        let waited = ms(10);
        assert_eq!(
            s.give_up(1, 1, waited, t0 + ms(270)),
            Some(Abandoned::Unneeded)
        );
        // Whatever the original's read ended with, it lost the race: no
        // failure counts against its source, and piece 1 is not fetched
        // again.
        let ended = Ended::Failed {
            err: reset(),
            retry_after: None,
        };
        let told = s.finish(original, ended, Some(Abandoned::Unneeded), t0 + ms(270));
        assert!(told.is_none());
        assert!(
            s.sources.others_usable(0, t0 + ms(270)),
            "source 1 is not backing off"
        );
        assert!(s.retry.is_empty() && s.claimed.is_empty());
        assert!(matches!(s.claim(1, t0 + ms(270)), Claim::Stop));
    }

    #[test]
    fn a_waiting_worker_looks_again_when_a_piece_stalls_or_a_backoff_ends() {
        let t0 = Instant::now();
        let mut s = schedule(20, 8, 1, false, t0);
        let mut claims: Vec<_> = (0..4).map(|w| ticket(s.claim(w, t0))).collect();
        assert!(matches!(s.claim(4, t0), Claim::Wait));
        assert_eq!(s.look_again_at(t0), Some(t0 + STALL_FLOOR));
        let ended = Ended::Failed {
            err: reset(),
            retry_after: Some(Duration::from_secs(5)),
        };
        s.finish(claims.remove(0), ended, None, t0 + ms(5));
        // The pieces under way have stalled with no other source to copy
        // them from: only the end of the backoff is due.
        let later = t0 + STALL_FLOOR + ms(1);
        assert!(matches!(s.claim(4, later), Claim::Wait));
        assert_eq!(
            s.look_again_at(later),
            Some(t0 + ms(5) + Duration::from_secs(5))
        );
    }

    #[test]
    fn a_worker_waiting_for_the_consumer_has_nothing_due() {
        let t0 = Instant::now();
        let mut s = schedule(20, 8, 1, false, t0);
        for w in 0..4 {
            let claimed = ticket(s.claim(w, t0));
            fetch_all(&mut s, claimed, t0, ms(10));
        }
        assert!(matches!(s.claim(4, t0 + ms(20)), Claim::Wait));
        assert_eq!(s.look_again_at(t0 + ms(20)), None);
    }

    #[test]
    fn the_first_answer_adopted_is_shared_only_once_its_current_piece_stalls() {
        let t0 = Instant::now();
        // In order: the first answer brings pieces 1-3 after the
        // consumer's piece 0.
        let mut s = schedule(20, 2, 1, false, t0);
        let mut first = s.adopt(0, 1..4, t0);
        assert_eq!(first.pieces(), 1..4);
        assert_eq!(ticket(s.claim(0, t0)).pieces(), 4..5, "past the adopted");
        // The window is full, and the adopted pieces, on their way, are
        // not taken because a worker has nothing to do.
        s.begin(&mut first, t0 + ms(10));
        assert!(matches!(s.claim(1, t0 + ms(50)), Claim::Wait));
        assert!(arrive(&mut s, &mut first, t0 + ms(60)));
        assert!(matches!(s.claim(1, t0 + ms(60)), Claim::Wait));
        // Its piece 2 stalls: a worker takes the back half of what it has
        // not started, and the answer stops where that begins.
        assert_eq!(ticket(s.claim(1, t0 + ms(300))).pieces(), 3..4);
        assert!(arrive(&mut s, &mut first, t0 + ms(310)));
        assert!(first.cut_short(), "piece 3 is another worker's");
    }

    #[test]
    fn a_first_answer_given_up_leaves_its_pieces_to_be_fetched_first() {
        let t0 = Instant::now();
        let mut s = schedule(100, 2, 1, true, t0);
        let first = s.adopt(0, 1..4, t0);
        let run = ticket(s.claim(0, t0));
        assert_eq!(run.pieces().start, 4, "past the adopted");
        s.release(first);
        assert_eq!(ticket(s.claim(1, t0)).pieces(), 1..4);
    }

    #[test]
    fn a_piece_whose_fetch_failed_is_claimed_again_first() {
        let t0 = Instant::now();
        let mut s = schedule(100, 2, 2, true, t0);
        let ok = ticket(s.claim(0, t0));
        let failing = ticket(s.claim(1, t0));
        assert_eq!((ok.pieces(), failing.pieces()), (1..2, 2..3));
        let ended = Ended::Failed {
            err: reset(),
            retry_after: None,
        };
        assert!(
            s.finish(failing, ended, None, t0 + ms(5)).is_none(),
            "a short backoff is not told"
        );
        // Source 1 backs off: worker 1 asks source 0, for piece 2 again
        // before piece 3.
        let again = ticket(s.claim(1, t0 + ms(6)));
        assert_eq!((again.pieces(), again.source()), (2..3, 0));
        assert_eq!(ticket(s.claim(2, t0 + ms(6))).pieces(), 3..4);
    }

    #[test]
    fn a_source_failing_retries_times_in_a_row_is_dropped_and_the_download_fails_when_all_are() {
        let t0 = Instant::now();
        let mut s = schedule_with(50, 2, 2, 3, true, PieceSet::new(), t0);
        // A mirror that answers 404 is dropped at once, and the user told.
        let gone = ticket(s.claim(1, t0));
        let err = Error::new(ErrorKind::NotFound, "404");
        let told = s.finish(
            gone,
            Ended::Failed {
                err,
                retry_after: None,
            },
            None,
            t0,
        );
        assert!(
            matches!(told, Some(Event::SourceDropped { .. })),
            "{told:?}"
        );
        // The first source fails three times in a row, each after its
        // backoff: it is asked again only once the backoff is over.
        let mut at = t0;
        for failure in 1..=3 {
            let t = ticket(s.claim(0, at));
            assert_eq!(t.source(), 0);
            let ended = Ended::Failed {
                err: reset(),
                retry_after: None,
            };
            assert!(s.finish(t, ended, None, at).is_none(), "failure {failure}");
            if failure < 3 {
                assert!(matches!(s.claim(0, at), Claim::Wait), "backing off");
            }
            at += Duration::from_secs(15);
        }
        assert!(matches!(s.claim(0, at), Claim::Stop));
        let err = s.failed().expect("the download failed");
        assert!(err.to_string().contains("all 2 sources failed"), "{err}");
        assert_eq!(err.causes().len(), 2);
    }

    #[test]
    fn a_read_is_given_up_as_stalled_only_when_the_piece_can_come_from_elsewhere() {
        let t0 = Instant::now();
        let mut s = schedule(20, 2, 1, true, t0);
        let stalled = ticket(s.claim(0, t0));
        let index = stalled.current();
        // One source, nothing arriving anywhere: the stall may be the
        // network's, and the read waits on.
        let secs = Duration::from_secs;
        assert_eq!(s.give_up(index, 0, secs(3), t0 + secs(3)), None);
        // The other worker's pieces keep coming: a new connection may
        // bring this one. Not before two seconds of silence, though.
        let mut other = ticket(s.claim(1, t0 + secs(4)));
        arrive(&mut s, &mut other, t0 + secs(4) + ms(50));
        let at = t0 + secs(4) + ms(100);
        assert_eq!(s.give_up(index, 0, ms(1999), at), None);
        assert_eq!(s.give_up(index, 0, ms(2000), at), Some(Abandoned::Stalled));
        // With a mirror that is not backing off, the piece can come from
        // it whatever arrives.
        let mut s = schedule(20, 2, 2, true, t0);
        let stalled = ticket(s.claim(0, t0));
        let at = t0 + ms(2000);
        assert_eq!(s.give_up(stalled.current(), 0, ms(1999), at), None);
        assert_eq!(
            s.give_up(stalled.current(), 0, ms(2000), at),
            Some(Abandoned::Stalled)
        );
    }
}
