//! How far a download has come, told to the caller's callback.
//!
//! Owns [`Progress`], the snapshot a caller gets, and the meter that keeps
//! it: bytes done (an earlier run's included), the total when known, the
//! rate over the last few seconds (so it follows a link that speeds up or
//! slows down), what runs in parallel, manifest parts and sequence files
//! done. The meter calls back at most ten times a second, and once more at
//! the end; always from the thread that drives the download, never while
//! the engine holds a lock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use crate::torrent::swarm::PeerCounts;

/// The callback is called at most this often while bytes arrive.
const INTERVAL: Duration = Duration::from_millis(100);

/// The rate is measured over about this long.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// How far a download has come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Bytes of the output done, those an earlier run left included, and
    /// those of a manifest's parts fetched ahead of the one being written
    /// (received, held until their turn): it never goes back.
    pub done: u64,
    /// The output's length, when the server told it (for a manifest, when
    /// every part tells its size).
    pub total: Option<u64>,
    /// Bytes an earlier run left, which this one continued from.
    pub resumed_from: u64,
    /// Bytes per second over the last few seconds (this run's only); in
    /// the last call, over the whole run.
    pub rate: u64,
    /// Time since the download started.
    pub elapsed: Duration,
    /// Pieces or parts being fetched at once, while several are.
    pub fetching: Option<usize>,
    /// Sources in use (the URL and its mirrors that are not dropped), while
    /// a download in pieces runs.
    pub sources: Option<usize>,
    /// Parts of a manifest done.
    pub parts: Option<u64>,
    /// Files of a file sequence written.
    pub files: Option<u64>,
    /// A torrent's peers: connected, known, and seeds among those
    /// connected.
    pub peers: Option<PeerCounts>,
    /// For a torrent: bytes of blocks sent to peers so far.
    pub uploaded: Option<u64>,
    /// Bytes sent to peers per second, over the last few seconds.
    pub upload_rate: u64,
    /// Every piece is here and the swarm goes on only to upload.
    pub seeding: bool,
    /// This is the last call: the download ended (or failed).
    pub finished: bool,
}

impl Progress {
    /// Seconds left at the current rate, when the total is known and bytes
    /// are arriving.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.total?.checked_sub(self.done)?;
        if self.rate == 0 {
            return None;
        }
        Some(Duration::from_secs(left.div_ceil(self.rate)))
    }
}

/// The callback a download reports to.
pub(crate) type OnProgress<'a> = Box<dyn FnMut(&Progress) + Send + 'a>;

/// Keeps a download's [`Progress`] and tells it when it is time.
pub(crate) struct Meter<'a> {
    callback: Option<OnProgress<'a>>,
    progress: Progress,
    started: Instant,
    last_told: Option<Instant>,
    /// Bytes written (or left by an earlier run): `done` less what is
    /// held ahead.
    written: u64,
    /// Bytes received ahead of those written, last told.
    ahead: u64,
    /// (when, bytes this run) at recent calls, oldest first, for the rate.
    /// When, bytes done this run, bytes uploaded.
    samples: VecDeque<(Instant, u64, u64)>,
}

impl<'a> Meter<'a> {
    pub(crate) fn new(callback: Option<OnProgress<'a>>) -> Meter<'a> {
        Meter {
            callback,
            progress: Progress {
                done: 0,
                total: None,
                resumed_from: 0,
                rate: 0,
                elapsed: Duration::ZERO,
                fetching: None,
                sources: None,
                parts: None,
                files: None,
                peers: None,
                uploaded: None,
                upload_rate: 0,
                seeding: false,
                finished: false,
            },
            started: Instant::now(),
            last_told: None,
            written: 0,
            ahead: 0,
            samples: VecDeque::new(),
        }
    }

    /// The callback, for a download that hands over to another (a URL
    /// that turned out to serve a `.torrent`).
    pub(crate) fn into_callback(self) -> Option<OnProgress<'a>> {
        self.callback
    }

    /// The progress so far.
    pub(crate) fn progress(&self) -> &Progress {
        &self.progress
    }

    pub(crate) fn set_total(&mut self, total: Option<u64>) {
        self.progress.total = total;
    }

    pub(crate) fn set_parts(&mut self, parts: Option<u64>) {
        if parts.is_some() {
            self.progress.parts = parts;
        }
    }

    pub(crate) fn set_peers(&mut self, peers: PeerCounts) {
        self.progress.peers = Some(peers);
    }

    /// Bytes uploaded so far, and whether only uploading goes on.
    pub(crate) fn set_uploaded(&mut self, uploaded: u64, seeding: bool) {
        self.progress.uploaded = Some(uploaded);
        self.progress.seeding = seeding;
    }

    pub(crate) fn set_files(&mut self, files: u64) {
        self.progress.files = Some(files);
    }

    /// Pieces or parts being fetched at once, and sources in use.
    pub(crate) fn set_activity(&mut self, activity: Option<(usize, Option<usize>)>) {
        self.progress.fetching = activity.map(|(fetching, _)| fetching);
        self.progress.sources = activity.and_then(|(_, sources)| sources);
    }

    /// Bytes received ahead of those written (a manifest's parts fetched
    /// ahead), counted in `done` from the next call on. `done` never goes
    /// back: a part fetched ahead that fails leaves it ahead until the
    /// bytes written catch up.
    pub(crate) fn set_ahead(&mut self, ahead: u64) {
        self.ahead = ahead;
    }

    /// `done` brought up to the bytes written and held ahead.
    fn update_done(&mut self) {
        self.progress.done = self.progress.done.max(self.written + self.ahead);
    }

    /// Counts `n` bytes an earlier run left (a resumed download).
    pub(crate) fn skip(&mut self, n: u64) {
        self.written += n;
        self.update_done();
        self.progress.resumed_from += n;
    }

    /// Counts bytes up to `done` in all.
    pub(crate) fn reach(&mut self, done: u64) {
        let n = done.saturating_sub(self.written);
        self.add(n);
    }

    /// Counts `n` bytes done, and tells the callback when it is time.
    pub(crate) fn add(&mut self, n: u64) {
        self.written += n;
        self.update_done();
        let now = Instant::now();
        if self.last_told.is_none_or(|at| now - at >= INTERVAL) {
            self.last_told = Some(now);
            self.tell(now);
        }
    }

    /// Tells the callback the last time: nothing is held ahead any more.
    pub(crate) fn finish(&mut self) {
        self.progress.finished = true;
        self.ahead = 0;
        self.progress.done = self.written;
        self.tell(Instant::now());
    }

    fn tell(&mut self, now: Instant) {
        let this_run = self.progress.done - self.progress.resumed_from;
        let uploaded = self.progress.uploaded.unwrap_or(0);
        self.samples.push_back((now, this_run, uploaded));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|&(at, _, _)| now - at >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let (since, bytes_then, uploaded_then) = match self.samples.front() {
            Some(&(at, bytes, up)) if now - at >= INTERVAL => (at, bytes, up),
            _ => (self.started, 0, 0),
        };
        // The last call tells the mean rate of the whole run.
        let (since, bytes_then, uploaded_then) = match self.progress.finished {
            true => (self.started, 0, 0),
            false => (since, bytes_then, uploaded_then),
        };
        let micros = (now - since).as_micros().max(1);
        let per_second = |bytes: u64| (u128::from(bytes) * 1_000_000 / micros) as u64;
        self.progress.rate = per_second(this_run - bytes_then);
        self.progress.upload_rate = per_second(uploaded.saturating_sub(uploaded_then));
        self.progress.elapsed = now - self.started;
        if let Some(callback) = &mut self.callback {
            callback(&self.progress);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_callback_hears_at_most_ten_times_a_second_and_once_at_the_end() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let mut meter = Meter::new(Some(Box::new(move |p: &Progress| {
            sink.lock().unwrap().push(p.clone());
        })));
        meter.skip(100);
        meter.set_total(Some(10_100));
        for _ in 0..1000 {
            meter.add(10);
        }
        meter.finish();
        let seen = seen.lock().unwrap();
        assert!(seen.len() <= 3, "{} calls within a few ms", seen.len());
        let last = seen.last().unwrap();
        assert!(last.finished);
        assert_eq!(
            (last.done, last.total, last.resumed_from),
            (10_100, Some(10_100), 100)
        );
        assert_eq!(seen.iter().filter(|p| p.finished).count(), 1);
    }

    #[test]
    fn bytes_fetched_ahead_count_as_they_arrive_and_done_never_goes_back() {
        let mut meter = Meter::new(None);
        meter.set_total(Some(1000));
        meter.add(100);
        meter.set_ahead(300);
        meter.add(10);
        assert_eq!(meter.progress().done, 410, "written and held ahead");
        // Bytes held ahead are written: no double count.
        meter.set_ahead(200);
        meter.add(100);
        assert_eq!(meter.progress().done, 410);
        // A part fetched ahead failed: its bytes are gone, done stays.
        meter.set_ahead(0);
        meter.add(10);
        assert_eq!(meter.progress().done, 410);
        meter.finish();
        assert_eq!(meter.progress().done, 220, "the end tells what was written");
    }

    #[test]
    fn eta_is_what_is_left_at_the_rate() {
        let mut meter = Meter::new(None);
        meter.set_total(Some(1000));
        meter.progress.done = 400;
        meter.progress.rate = 100;
        assert_eq!(meter.progress().eta(), Some(Duration::from_secs(6)));
        meter.progress.rate = 0;
        assert_eq!(meter.progress().eta(), None);
    }
}
