//! When a torrent announces next, and with which event, as a state
//! machine given the time ([`Schedule`]): no clock and no thread inside,
//! so every rule is tested with a made-up clock.
//!
//! ```text
//!   start ──▶ `started` now ──answered──▶ none after `interval`
//!                 │ no answer                 ▲ more peers wanted: sooner,
//!                 ▼                           │ but not before `min interval`
//!     again after 15 s, 30 s, … ≤ 1 h ────────┘
//!   completed(): `completed` now (once), after `started` was answered
//! ```
//!
//! Owns the timers and the events of regular announces. Leaves the
//! `stopped` announce, the trackers and the thread to the announcer.

use std::time::{Duration, Instant};

use super::announce::Event;
use super::answer::Answer;

/// How long after an answer an announce for more peers may go when the
/// tracker gave no `min interval`: Transmission's default (libtorrent
/// waits 5 minutes). Trackers count announces; one that asked for none
/// sooner than its `interval` still gets a peer-starved client at most
/// every two minutes.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(120);

/// The wait after a round in which no tracker answered; each further
/// failed round doubles it, up to [`MAX_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_secs(15);

/// The longest wait between failed rounds: libtorrent's
/// `tracker_retry_delay_max`. Backing off matters when trackers are down
/// under load; waiting longer than this would leave a swarm without new
/// peers for hours after they come back.
pub const MAX_RETRY: Duration = Duration::from_secs(3600);

/// The waits of announcing. [`Timing::default`] is what a swarm uses;
/// tests shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// [`DEFAULT_MIN_INTERVAL`].
    pub default_min_interval: Duration,
    /// [`FIRST_RETRY`].
    pub first_retry: Duration,
    /// [`MAX_RETRY`].
    pub max_retry: Duration,
    /// How long one tracker may take to answer before the next is asked.
    pub tracker_timeout: Duration,
    /// How long the `stopped` announce may take.
    pub stop_timeout: Duration,
}

/// How long one tracker may take to answer before the next of the tiers is
/// asked: an HTTP tracker answers in a second or two; a UDP tracker's
/// second send goes after 15 s, so it gets two.
pub const TRACKER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the `stopped` announce may take: it is a courtesy to the
/// tracker (it forgets us sooner) and must not hold up shutting down.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(2);

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            default_min_interval: DEFAULT_MIN_INTERVAL,
            first_retry: FIRST_RETRY,
            max_retry: MAX_RETRY,
            tracker_timeout: TRACKER_TIMEOUT,
            stop_timeout: STOP_TIMEOUT,
        }
    }
}

/// Where `completed` stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Completed {
    /// The download has not finished (or had when the swarm started).
    No,
    /// To be sent with the next announce.
    Due,
    /// A tracker answered it.
    Sent,
}

/// When to announce next, and with which event.
#[derive(Clone, Debug)]
pub struct Schedule {
    timing: Timing,
    /// When the next announce is due.
    next: Instant,
    /// The earliest an announce for more peers may go: the latest answer
    /// plus its minimum interval.
    earliest: Instant,
    /// Whether a tracker answered our `started`.
    started: bool,
    completed: Completed,
    /// Whether the swarm asked for more peers since the latest answer.
    more: bool,
    /// Rounds in a row in which no tracker answered.
    failures: u32,
}

impl Schedule {
    /// A schedule whose first announce, `started`, is due at `now`.
    pub fn new(now: Instant, timing: Timing) -> Schedule {
        Schedule {
            timing,
            next: now,
            earliest: now,
            started: false,
            completed: Completed::No,
            more: false,
            failures: 0,
        }
    }

    /// When the next announce is due: the interval's end; sooner when
    /// more peers are wanted (not before the minimum interval) or
    /// `completed` is to be told; after failed rounds, the end of the
    /// backoff, which nothing shortens.
    pub fn due(&self) -> Instant {
        if self.more && self.started && self.failures == 0 {
            self.next.min(self.earliest)
        } else {
            self.next
        }
    }

    /// The event of the next announce: `started` until a tracker answered
    /// one, then `completed` if due, else none.
    pub fn event(&self) -> Event {
        match (self.started, self.completed) {
            (false, _) => Event::Started,
            (true, Completed::Due) => Event::Completed,
            _ => Event::None,
        }
    }

    /// The swarm is short of peers: announce as soon as the minimum
    /// interval allows.
    pub fn request_more(&mut self) {
        self.more = true;
    }

    /// The download finished at `now`: tell the trackers at once (after
    /// `started`, and after the backoff when they are not answering), once.
    pub fn completed(&mut self, now: Instant) {
        if self.completed == Completed::No {
            self.completed = Completed::Due;
            if self.started && self.failures == 0 {
                self.next = self.next.min(now);
            }
        }
    }

    /// Whether `completed` is owed and not yet told.
    pub fn completion_due(&self) -> bool {
        self.completed == Completed::Due
    }

    /// Whether a tracker answered our `started`: only then is there a
    /// tracker to tell `stopped`.
    pub fn started(&self) -> bool {
        self.started
    }

    /// A tracker answered at `now` the announce sent with `event`.
    pub fn answered(&mut self, now: Instant, event: Event, answer: &Answer) {
        match event {
            Event::Started => self.started = true,
            Event::Completed => self.completed = Completed::Sent,
            Event::None | Event::Stopped => {}
        }
        self.failures = 0;
        self.more = false;
        self.next = now + answer.interval;
        let min = answer
            .min_interval
            .unwrap_or(self.timing.default_min_interval)
            .min(answer.interval);
        self.earliest = now + min;
        if self.completed == Completed::Due {
            // Finished while `started` was on its way: tell it now.
            self.next = now;
        }
    }

    /// No tracker answered a round that ended at `now`: the next is due
    /// after 15 s, 30 s, 60 s, … up to an hour. Returns the wait.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(31);
        let wait = self
            .timing
            .first_retry
            .saturating_mul(1u32 << doublings)
            .min(self.timing.max_retry);
        self.next = now + wait;
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn answer(interval: u64, min_interval: Option<u64>) -> Answer {
        Answer {
            interval: S * interval as u32,
            min_interval: min_interval.map(|m| S * m as u32),
            ..Answer::default()
        }
    }

    #[test]
    fn started_is_due_at_once_then_none_after_the_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Timing::default());
        assert_eq!((s.due(), s.event()), (t0, Event::Started));
        assert!(!s.started());
        s.answered(t0 + S, Event::Started, &answer(1800, None));
        assert!(s.started());
        assert_eq!((s.due(), s.event()), (t0 + S * 1801, Event::None));
        s.answered(t0 + S * 1801, Event::None, &answer(900, None));
        assert_eq!(s.due(), t0 + S * 2701);
    }

    #[test]
    fn more_peers_come_sooner_but_not_before_the_min_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Timing::default());
        s.answered(t0, Event::Started, &answer(1800, Some(300)));
        s.request_more();
        assert_eq!(s.due(), t0 + S * 300);
        s.answered(t0 + S * 300, Event::None, &answer(1800, Some(300)));
        assert_eq!(s.due(), t0 + S * 2100, "answered: wanted no more");
        // Without a min interval, the default floor.
        s.answered(t0, Event::None, &answer(1800, None));
        s.request_more();
        assert_eq!(s.due(), t0 + DEFAULT_MIN_INTERVAL);
        // Never later than the interval itself.
        s.answered(t0, Event::None, &answer(60, None));
        s.request_more();
        assert_eq!(s.due(), t0 + S * 60);
    }

    #[test]
    fn asking_for_more_before_started_was_answered_changes_nothing() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Timing::default());
        s.request_more();
        assert_eq!((s.due(), s.event()), (t0, Event::Started));
    }

    #[test]
    fn completed_goes_at_once_and_only_once() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Timing::default());
        s.answered(t0, Event::Started, &answer(1800, Some(600)));
        let t1 = t0 + S * 10;
        s.completed(t1);
        assert_eq!((s.due(), s.event()), (t1, Event::Completed));
        s.completed(t1 + S);
        assert_eq!(s.due(), t1, "a second call changes nothing");
        s.answered(t1, Event::Completed, &answer(1800, None));
        assert_eq!(s.event(), Event::None);
        s.completed(t1 + S * 5);
        assert_eq!((s.due(), s.event()), (t1 + S * 1800, Event::None));
    }

    #[test]
    fn completed_before_started_was_answered_follows_it() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Timing::default());
        s.completed(t0);
        assert_eq!(s.event(), Event::Started);
        let t1 = t0 + S;
        s.answered(t1, Event::Started, &answer(1800, None));
        assert_eq!((s.due(), s.event()), (t1, Event::Completed));
    }

    #[test]
    fn failed_rounds_back_off_from_15_seconds_doubling_up_to_an_hour() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Timing::default());
        let waits: Vec<u64> = (0..12).map(|_| s.failed(t0).as_secs()).collect();
        assert_eq!(
            waits,
            [15, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]
        );
        assert_eq!(s.event(), Event::Started, "started until answered");
        for _ in 0..100 {
            s.failed(t0);
        }
        assert_eq!(s.due(), t0 + MAX_RETRY);
        s.answered(t0, Event::Started, &answer(1800, None));
        assert_eq!(s.failed(t0), FIRST_RETRY, "an answer resets the backoff");
    }

    #[test]
    fn the_backoff_is_not_cut_short_by_wanting_peers_or_finishing() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Timing::default());
        s.answered(t0, Event::Started, &answer(60, Some(60)));
        let t1 = t0 + S * 60;
        s.failed(t1);
        s.request_more();
        s.completed(t1);
        assert_eq!(s.due(), t1 + FIRST_RETRY);
        assert_eq!(s.event(), Event::Completed, "told with the retry");
    }
}
