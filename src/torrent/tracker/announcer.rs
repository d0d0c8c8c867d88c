//! The thread that keeps a swarm's trackers told and its peers coming
//! ([`Announcer`]): `started` at once, again at each interval, sooner when
//! the swarm asks for more peers, `completed` once, `stopped` on the way
//! out; through the tiers, with backoff when no tracker answers.
//!
//! ```text
//!   swarm ── request_more() / completed() / stop() ──▶ Requests ─┐ Condvar
//!     ▲                                                           ▼
//!     └── on_peers(Vec<Peer>) ◀── Tiers::announce_first ◀── Schedule::due()
//!                                 (events: TrackerFailed, TrackerWarning,
//!                                  NoTrackerAnswered, to the Context's sink)
//! ```
//!
//! Owns the thread, the byte counts read at each announce
//! ([`AnnounceStats`]) and the `stopped` announce. Leaves when to announce
//! to [`super::schedule`], the order of trackers to [`super::tiers`], and
//! the exchange to [`super::ask`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use super::announce::{Announce, Event as AnnounceEvent};
use super::answer::Answer;
use super::ask::announce_with;
use super::error::{tracker_name, TrackerError};
use super::http::KeepGoing;
use super::http_response::Peer;
use super::schedule::{Schedule, Timing};
use super::tiers::Tiers;
use crate::cancel::WATCH_INTERVAL;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::fetch::Context;

/// The byte counts an announce reports, kept by the swarm as it goes and
/// read at each announce. Shared with the announcer in an `Arc`.
#[derive(Debug, Default)]
pub struct AnnounceStats {
    uploaded: AtomicU64,
    downloaded: AtomicU64,
    left: AtomicU64,
}

impl AnnounceStats {
    /// Counts for a session that starts with `left` bytes missing.
    pub fn new(left: u64) -> AnnounceStats {
        AnnounceStats {
            left: AtomicU64::new(left),
            ..AnnounceStats::default()
        }
    }

    /// `n` more bytes sent to peers.
    pub fn add_uploaded(&self, n: u64) {
        self.uploaded.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` more bytes received from peers.
    pub fn add_downloaded(&self, n: u64) {
        self.downloaded.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` bytes are still missing.
    pub fn set_left(&self, n: u64) {
        self.left.store(n, Ordering::Relaxed);
    }

    /// Bytes sent to peers this session.
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    /// Bytes received from peers this session.
    pub fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }

    /// Bytes still missing.
    pub fn left(&self) -> u64 {
        self.left.load(Ordering::Relaxed)
    }
}

/// Asks one tracker: its URL, its tracker id, the announce, the deadline,
/// and when to give up early. [`announce_with`] over the swarm's
/// [`Context`], or a script in tests.
pub(crate) type Ask = Box<
    dyn FnMut(
            &str,
            Option<&[u8]>,
            &Announce,
            Instant,
            &KeepGoing,
        ) -> std::result::Result<Answer, TrackerError>
        + Send,
>;

/// What the swarm asked of the thread.
#[derive(Debug, Default)]
struct Requests {
    more: bool,
    completed: bool,
    /// When `stop` was asked.
    stop: Option<Instant>,
    /// The thread has ended.
    finished: bool,
}

/// What the swarm's handle and the thread share.
#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Requests>,
    /// Wakes the thread on a request, and `stop` when the thread ends.
    wake: Condvar,
    /// `requests.stop.is_some()`, read without the lock every quarter
    /// second by an announce in flight.
    stopping: AtomicBool,
}

impl Shared {
    /// The requests. A panic elsewhere while holding the lock leaves them
    /// as consistent as before (each is one flag), so poisoning is ignored.
    fn requests(&self) -> MutexGuard<'_, Requests> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The announcing thread of one swarm. Dropping it stops it as
/// [`Announcer::stop`] does.
pub struct Announcer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    timing: Timing,
}

impl Announcer {
    /// Starts announcing `template` (info-hash, peer id, port, numwant,
    /// key; its event and byte counts are replaced at each announce, the
    /// counts read from `stats`) to the trackers of `tiers` over `ctx`, on
    /// a thread of its own: `started` at once.
    ///
    /// `on_peers` is called on that thread with the peers of each answer
    /// (possibly none); it should hand them on and return (a channel's
    /// `send`), and must not call [`Announcer::stop`]. Failures and
    /// trackers' warnings go to `ctx`'s event sink as
    /// [`Event::TrackerFailed`], [`Event::NoTrackerAnswered`] and
    /// [`Event::TrackerWarning`]. With no trackers, the thread waits for
    /// `stop` and asks nobody.
    pub fn start(
        ctx: Context,
        tiers: Tiers,
        template: Announce,
        stats: Arc<AnnounceStats>,
        on_peers: impl FnMut(Vec<Peer>) + Send + 'static,
    ) -> Result<Announcer> {
        let asking = ctx.clone();
        let ask: Ask = Box::new(move |url, id, announce, deadline, keep_going| {
            announce_with(&asking, url, id, announce, deadline, keep_going)
        });
        Announcer::spawn(Worker {
            ctx,
            tiers,
            template,
            stats,
            on_peers: Box::new(on_peers),
            ask,
            timing: Timing::default(),
            shared: Arc::default(),
        })
    }

    /// [`Announcer::start`] with other waits and `ask` instead of the
    /// network: tests announce every few milliseconds to scripts.
    #[cfg(test)]
    pub(crate) fn start_with(
        ctx: Context,
        tiers: Tiers,
        template: Announce,
        stats: Arc<AnnounceStats>,
        on_peers: impl FnMut(Vec<Peer>) + Send + 'static,
        timing: Timing,
        ask: Ask,
    ) -> Result<Announcer> {
        Announcer::spawn(Worker {
            ctx,
            tiers,
            template,
            stats,
            on_peers: Box::new(on_peers),
            ask,
            timing,
            shared: Arc::default(),
        })
    }

    fn spawn(worker: Worker) -> Result<Announcer> {
        let shared = Arc::clone(&worker.shared);
        let timing = worker.timing;
        let thread = std::thread::Builder::new()
            .name("announcer".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::io(e, "starting the announcer thread"))?;
        Ok(Announcer {
            shared,
            thread: Some(thread),
            timing,
        })
    }

    /// The swarm is short of peers: announce again as soon as the
    /// tracker's `min interval` allows (2 minutes after its latest answer
    /// when it gave none), rather than at the end of the interval. Not
    /// sooner while trackers are not answering (their backoff holds).
    pub fn request_more(&self) {
        self.shared.requests().more = true;
        self.shared.wake.notify_all();
    }

    /// The download finished: tell the trackers `completed`, at once, once
    /// (later calls do nothing). Not to be called when the download was
    /// already complete at start (BEP 3).
    pub fn completed(&self) {
        self.shared.requests().completed = true;
        self.shared.wake.notify_all();
    }

    /// Stops announcing: an announce in flight is given up within a
    /// quarter second, the tracker that answered last is told `stopped`
    /// (if one answered), with at most 2 s for it, and the thread is
    /// joined. Returns within about 2.5 s: a connection being opened when
    /// asked cannot be interrupted, and if the thread has not ended by
    /// then it is left to end on its own (it sends nothing more).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let asked = Instant::now();
        let limit = asked + self.timing.stop_timeout + 2 * WATCH_INTERVAL;
        let finished = {
            let mut requests = self.shared.requests();
            requests.stop = Some(asked);
            self.shared.stopping.store(true, Ordering::SeqCst);
            self.shared.wake.notify_all();
            while !requests.finished {
                let left = limit.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                requests = self
                    .shared
                    .wake
                    .wait_timeout(requests, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            requests.finished
        };
        if finished {
            // A panic on the thread has already been reported there.
            let _ = thread.join();
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the thread owns.
struct Worker {
    ctx: Context,
    tiers: Tiers,
    template: Announce,
    stats: Arc<AnnounceStats>,
    on_peers: Box<dyn FnMut(Vec<Peer>) + Send>,
    ask: Ask,
    timing: Timing,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(mut self) {
        let _finished = Finished(Arc::clone(&self.shared));
        let mut schedule = Schedule::new(Instant::now(), self.timing);
        let stopping = Arc::clone(&self.shared);
        let keep_going: KeepGoing = Arc::new(move || !stopping.stopping.load(Ordering::SeqCst));
        while let Some(event) = self.wait_until_due(&mut schedule) {
            let announce = self.announce(event);
            let timeout = self.timing.tracker_timeout;
            let (ctx, ask) = (&self.ctx, &mut self.ask);
            let round = self.tiers.announce_first(|url, id| {
                let result = ask(url, id, &announce, Instant::now() + timeout, &keep_going);
                if let Err(e) = &result {
                    if !e.is_cancelled() {
                        ctx.emit(Event::TrackerFailed {
                            tracker: e.tracker().to_owned(),
                            error: e.to_string(),
                        });
                    }
                }
                result
            });
            let now = Instant::now();
            // Stopped meanwhile: the answer counts (a tracker that took
            // our `started` is told `stopped`), but the swarm hears
            // nothing more.
            let stopping = !keep_going();
            match round {
                Some((url, answer)) => {
                    schedule.answered(now, event, &answer);
                    if stopping {
                        break;
                    }
                    if let Some(message) = &answer.warning {
                        self.ctx.emit(Event::TrackerWarning {
                            tracker: tracker_name(&url),
                            message: message.clone(),
                        });
                    }
                    (self.on_peers)(answer.peers);
                }
                None if stopping => break,
                None => {
                    let wait = schedule.failed(now);
                    self.ctx.emit(Event::NoTrackerAnswered {
                        trackers: self.tiers.len(),
                        wait,
                    });
                }
            }
        }
        if schedule.started() {
            // A download that completed just before stopping says so
            // first: trackers count completions from `completed` alone.
            if std::mem::take(&mut self.shared.requests().completed) {
                schedule.completed(Instant::now());
            }
            if schedule.completion_due() {
                self.say_leaving(AnnounceEvent::Completed);
            }
            self.say_leaving(AnnounceEvent::Stopped);
        }
    }

    /// Sleeps until the next announce is due and returns its event, taking
    /// in the swarm's requests as they come; `None` once `stop` is asked.
    /// With no trackers, only `stop` ends the wait.
    fn wait_until_due(&self, schedule: &mut Schedule) -> Option<AnnounceEvent> {
        let mut requests = self.shared.requests();
        loop {
            let now = Instant::now();
            if std::mem::take(&mut requests.more) {
                schedule.request_more();
            }
            if std::mem::take(&mut requests.completed) {
                schedule.completed(now);
            }
            if requests.stop.is_some() {
                return None;
            }
            let due = schedule.due();
            if due <= now && !self.tiers.is_empty() {
                return Some(schedule.event());
            }
            let wake = &self.shared.wake;
            requests = if self.tiers.is_empty() {
                wake.wait(requests).unwrap_or_else(PoisonError::into_inner)
            } else {
                let waited = wake.wait_timeout(requests, due - now);
                waited.unwrap_or_else(PoisonError::into_inner).0
            };
        }
    }

    /// The announce to send with `event`, with the counts as they are now.
    fn announce(&self, event: AnnounceEvent) -> Announce {
        Announce {
            event,
            uploaded: self.stats.uploaded(),
            downloaded: self.stats.downloaded(),
            left: self.stats.left(),
            // Leaving: no peers wanted (as libtorrent asks).
            numwant: match event {
                AnnounceEvent::Stopped => Some(0),
                _ => self.template.numwant,
            },
            ..self.template.clone()
        }
    }

    /// Tells the tracker that answered last `event` (`stopped`, or the
    /// `completed` before it) as we leave, within the stop timeout counted
    /// from when `stop` was asked (nothing when that has passed already,
    /// after an announce that could not be cut short).
    fn say_leaving(&mut self, event: AnnounceEvent) {
        let asked = self.shared.requests().stop.unwrap_or_else(Instant::now);
        let deadline = asked + self.timing.stop_timeout;
        let Some(tracker) = self.tiers.last_answered() else {
            return;
        };
        if Instant::now() >= deadline {
            return;
        }
        let announce = self.announce(event);
        let go_on: KeepGoing = Arc::new(|| true);
        if let Err(e) = (self.ask)(
            tracker.url(),
            tracker.tracker_id(),
            &announce,
            deadline,
            &go_on,
        ) {
            self.ctx.emit(Event::TrackerFailed {
                tracker: e.tracker().to_owned(),
                error: e.to_string(),
            });
        }
    }
}

/// Tells `stop` that the thread has ended, however it ends (a panic in
/// `on_peers` included), so that it joins at once instead of waiting.
struct Finished(Arc<Shared>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.requests().finished = true;
        self.0.wake.notify_all();
    }
}

#[cfg(test)]
mod tests;
