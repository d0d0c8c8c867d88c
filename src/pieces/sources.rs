//! The sources of one resource — its URL and its mirrors — and what each
//! has shown so far: whether it serves the same bytes, how fast it is, how
//! often it failed.
//!
//! Owns the choice of source for the next piece. A source that fails for a
//! moment (reset, timeout, 408, 429, 500, 502, 503, 504) is tried again after a backoff
//! (longer when it says so with `Retry-After`) and dropped after
//! `--retries` failures in a row (default
//! [`DEFAULT_RETRIES`](crate::fetch::retry::DEFAULT_RETRIES)); one that fails for
//! good (404, 410, TLS, different length or `ETag`) is dropped at once. A
//! source far slower than the best gets no new pieces while others can
//! take them — when the pieces are handed on in order; when they are
//! written where they belong, a slow source keeps getting pieces as long as
//! it can finish one before the others finish the rest. The download goes
//! on as long as one source is left.

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::fetch::retry::backoff;
use crate::url::Url;

/// A source this many times slower per connection than the fastest gets
/// no new pieces.
pub const SLOW_FACTOR: u64 = 4;

/// One place the resource can be fetched from.
#[derive(Debug)]
pub struct Source {
    /// Where.
    pub url: Url,
    /// Its `If-Range` value, once its first answer gave one.
    pub validator: Option<String>,
    /// Its first answer matched the resource (length, `ETag`).
    pub verified: bool,
    failures: u32,
    /// Not before this instant (backoff after a failure).
    not_before: Option<Instant>,
    dropped: Option<Error>,
    bytes: u64,
    busy: Duration,
    in_use: usize,
}

/// All sources of a resource.
#[derive(Debug)]
pub struct Sources {
    list: Vec<Source>,
    max_failures: u32,
    /// The download's piece length: speeds are told as time per piece.
    piece: u64,
}

impl Sources {
    /// The primary source (already verified by the first answer) and
    /// mirrors (verified by their own first answer).
    /// A source is dropped after `max_failures` transient failures in a row;
    /// `piece` is the download's piece length.
    pub fn new(
        primary: Url,
        validator: Option<String>,
        mirrors: Vec<Url>,
        max_failures: u32,
        piece: u64,
    ) -> Sources {
        let source = |url: Url, validator: Option<String>, verified: bool| Source {
            url,
            validator,
            verified,
            failures: 0,
            not_before: None,
            dropped: None,
            bytes: 0,
            busy: Duration::ZERO,
            in_use: 0,
        };
        let mut list = vec![source(primary, validator, true)];
        list.extend(mirrors.into_iter().map(|url| source(url, None, false)));
        Sources {
            list,
            max_failures: max_failures.max(1),
            piece: piece.max(1),
        }
    }

    /// How many sources there are, dropped ones included.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Source `index`.
    pub fn get(&self, index: usize) -> &Source {
        &self.list[index]
    }

    /// The source for worker `worker`'s next piece: its own (worker modulo
    /// sources) when that one is usable, else the usable one with the
    /// fewest pieces in flight; never `exclude` (the source a piece is
    /// already being fetched from, when fetching a copy). `None` when none
    /// is usable at `now`; [`Sources::all_dropped`] tells whether one may
    /// become usable.
    pub fn pick(&mut self, worker: usize, exclude: Option<usize>, now: Instant) -> Option<usize> {
        self.choose(worker, exclude, Duration::ZERO, now)
    }

    /// Like [`Sources::pick`] for a download whose pieces need not arrive
    /// in order, where a slow source holds nothing up as long as its piece
    /// is done before the rest: a source far slower than the fastest is
    /// still picked while one piece from it takes less than `time_left`,
    /// the time the download is expected to need for what no one has
    /// claimed yet.
    pub fn pick_within(
        &mut self,
        worker: usize,
        time_left: Duration,
        now: Instant,
    ) -> Option<usize> {
        self.choose(worker, None, time_left, now)
    }

    /// Picks as [`Sources::pick`] does, passing over a source whose piece
    /// takes longer than `SLOW_FACTOR` × the fastest's and than `time_left`.
    /// (Near the end every source takes longer than what is left: only the
    /// far slower ones are passed over then, or the last pieces would pile
    /// up on the one fastest host.)
    fn choose(
        &mut self,
        worker: usize,
        exclude: Option<usize>,
        time_left: Duration,
        now: Instant,
    ) -> Option<usize> {
        let allowed = self
            .best_piece_time()
            .map(|best| (best * SLOW_FACTOR as u32).max(time_left));
        let too_slow = |s: &Source| matches!((self.piece_time_at(s.rate(self.piece)), allowed), (Some(takes), Some(allowed)) if takes > allowed);
        let usable = |i: usize, s: &Source| {
            Some(i) != exclude
                && s.dropped.is_none()
                && s.not_before.is_none_or(|t| t <= now)
                && !too_slow(s)
        };
        let own = worker % self.list.len();
        let chosen = if usable(own, &self.list[own]) {
            Some(own)
        } else {
            (0..self.list.len())
                .filter(|&i| usable(i, &self.list[i]))
                .min_by_key(|&i| self.list[i].in_use)
        };
        if let Some(i) = chosen {
            self.list[i].in_use += 1;
        }
        chosen
    }

    /// A request to `index` is under way that no pick chose (the first
    /// answer, read on by a worker).
    pub fn answering(&mut self, index: usize) {
        self.list[index].in_use += 1;
    }

    /// A piece of `bytes` came from `index` in `took` (one request may
    /// carry several).
    pub fn served(&mut self, index: usize, bytes: u64, took: Duration) {
        let source = &mut self.list[index];
        source.failures = 0;
        // A wait asked for stands even if a request sent before it ended
        // well: `not_before` expires by itself.
        source.bytes += bytes;
        source.busy += took;
    }

    /// `index` sent bytes that fail their hash on an answer no worker
    /// holds (the consumer's own): it is dropped, whatever its record.
    pub fn reject(&mut self, index: usize, err: Error) {
        let source = &mut self.list[index];
        if source.dropped.is_none() {
            source.dropped = Some(err);
        }
    }

    /// A request to `index` ended with every piece it asked for.
    pub fn succeeded(&mut self, index: usize) {
        self.list[index].in_use -= 1;
    }

    /// A piece from `index` was given up because another copy arrived
    /// first, after `bytes` in `took`: not a failure, but it tells the
    /// source's speed (a slow source may never finish a piece first).
    pub fn cancelled(&mut self, index: usize, bytes: u64, took: Duration) {
        self.list[index].in_use -= 1;
        self.charge(index, bytes, took);
    }

    /// `bytes` of `index` came in `took` in an answer given up: they count
    /// in its speed (see [`Sources::piece_time`]), as a piece served would.
    pub fn charge(&mut self, index: usize, bytes: u64, took: Duration) {
        let source = &mut self.list[index];
        source.bytes += bytes;
        source.busy += took;
    }

    /// Whether a source other than `index` could be asked at `now`: not
    /// dropped, not backing off. Its speed does not matter here: it is
    /// asked about a piece `index` has stalled on.
    pub fn others_usable(&self, index: usize, now: Instant) -> bool {
        self.list.iter().enumerate().any(|(i, s)| {
            i != index && s.dropped.is_none() && s.not_before.is_none_or(|t| t <= now)
        })
    }

    /// The first instant after `now` at which a source backing off may be
    /// asked again; `None` when none is backing off past `now`.
    pub fn next_backoff_end(&self, now: Instant) -> Option<Instant> {
        self.list
            .iter()
            .filter(|s| s.dropped.is_none())
            .filter_map(|s| s.not_before)
            .filter(|&t| t > now)
            .min()
    }

    /// `index` failed with `err` at `now`; returns how long to wait before
    /// it is tried again (`None`: it is dropped). The wait is the backoff,
    /// or longer when the server asked for it (`retry_after`).
    pub fn failed(
        &mut self,
        index: usize,
        err: Error,
        transient: bool,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Option<Duration> {
        let source = &mut self.list[index];
        source.in_use -= 1;
        source.failures += 1;
        if !transient || source.failures >= self.max_failures {
            source.dropped = Some(err);
            return None;
        }
        let backoff = backoff(source.failures).max(retry_after.unwrap_or_default());
        source.not_before = Some(now + backoff);
        Some(backoff)
    }

    /// Source `index` answered as the resource does; `validator` is what
    /// its answers carry for `If-Range`.
    /// Returns whether it was not verified before (several connections
    /// may bring a source's first answers at once).
    pub fn verify(&mut self, index: usize, validator: Option<String>) -> bool {
        let source = &mut self.list[index];
        let first = !source.verified;
        source.verified = true;
        source.validator = validator;
        first
    }

    /// Sources not dropped.
    pub fn alive(&self) -> usize {
        self.list.iter().filter(|s| s.dropped.is_none()).count()
    }

    /// Whether source `index` is dropped.
    pub fn is_dropped(&self, index: usize) -> bool {
        self.list[index].dropped.is_some()
    }

    /// Every source is dropped: the download cannot go on.
    pub fn all_dropped(&self) -> bool {
        self.list.iter().all(|s| s.dropped.is_some())
    }

    /// The error for a download whose sources are all dropped: each one's
    /// last failure.
    pub fn exhausted(&self) -> Error {
        let causes: Vec<Error> = self
            .list
            .iter()
            .filter_map(|s| s.dropped.clone().map(|e| e.with_subject(s.url.redacted())))
            .collect();
        let kind = causes.first().map_or(ErrorKind::Network, Error::kind);
        let what = match self.list.len() {
            1 => "the source failed".to_owned(),
            n => format!("all {n} sources failed"),
        };
        Error::new(kind, what).with_causes(causes)
    }

    /// How long a piece takes from source `index`, at the rate it has
    /// shown per connection; `None` until it has shown one.
    pub fn piece_time(&self, index: usize) -> Option<Duration> {
        self.piece_time_at(self.list[index].rate(self.piece))
    }

    /// How long a piece takes from the fastest source still in use.
    pub fn best_piece_time(&self) -> Option<Duration> {
        self.piece_time_at(self.best_rate())
    }

    fn best_rate(&self) -> u64 {
        self.list
            .iter()
            .filter(|s| s.dropped.is_none())
            .map(|s| s.rate(self.piece))
            .max()
            .unwrap_or(0)
    }

    /// How long a piece takes at `rate` bytes per second (`None` for 0, not
    /// yet measured).
    fn piece_time_at(&self, rate: u64) -> Option<Duration> {
        let micros = u128::from(self.piece) * 1_000_000 / u128::from(rate.max(1));
        (rate > 0).then(|| Duration::from_micros(micros as u64))
    }
}

impl Source {
    /// Bytes per second per connection over what it served; 0 until it
    /// served a piece's worth (`piece` bytes) or was busy for a while.
    fn rate(&self, piece: u64) -> u64 {
        let measured = self.bytes >= piece || self.busy >= Duration::from_millis(300);
        if !measured || self.busy.is_zero() {
            return 0;
        }
        (u128::from(self.bytes) * 1_000_000 / self.busy.as_micros().max(1)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::retry::DEFAULT_RETRIES;

    const PIECE: u64 = 1024 * 1024;

    fn sources(n: usize) -> Sources {
        let url = |i: usize| Url::parse(&format!("http://s{i}.test/f")).unwrap();
        Sources::new(
            url(0),
            None,
            (1..n).map(url).collect(),
            DEFAULT_RETRIES,
            PIECE,
        )
    }

    fn network() -> Error {
        Error::new(ErrorKind::Network, "reset")
    }

    #[test]
    fn workers_spread_over_sources_and_avoid_dropped_ones() {
        let now = Instant::now();
        let mut s = sources(3);
        assert_eq!(s.pick(0, None, now), Some(0));
        assert_eq!(s.pick(1, None, now), Some(1));
        assert_eq!(s.pick(5, None, now), Some(2));
        assert_eq!(
            s.failed(1, Error::new(ErrorKind::NotFound, "gone"), false, None, now),
            None
        );
        // Worker 1's own source is gone: it gets a usable one.
        assert!(matches!(s.pick(1, None, now), Some(0 | 2)));
        assert!(!s.all_dropped());
    }

    #[test]
    fn a_source_is_dropped_after_repeated_transient_failures() {
        let mut now = Instant::now();
        let mut s = sources(2);
        for attempt in 1..DEFAULT_RETRIES {
            assert_eq!(s.pick(1, None, now), Some(1));
            assert!(
                s.failed(1, network(), true, None, now).is_some(),
                "attempt {attempt}"
            );
            // Backing off: worker 1 is sent to the other source meanwhile.
            assert_eq!(s.pick(1, None, now), Some(0));
            s.served(0, 1, Duration::from_millis(1));
            s.succeeded(0);
            // Past the longest backoff: source 1 is asked again.
            now += Duration::from_secs(15);
        }
        assert_eq!(s.pick(1, None, now), Some(1));
        assert_eq!(s.failed(1, network(), true, None, now), None);
        assert_eq!(s.pick(1, None, now), Some(0));
        s.served(0, 1, Duration::from_millis(1));
        s.succeeded(0);
        let last = s.pick(0, None, now).unwrap();
        assert_eq!(s.failed(last, network(), false, None, now), None);
        assert!(s.all_dropped());
        let err = s.exhausted();
        assert_eq!(err.causes().len(), 2);
        assert!(err.to_string().contains("all 2 sources failed"), "{err}");
    }

    /// Two sources: a piece takes 10 ms from source 0, a quarter of a
    /// second from source 1.
    fn fast_and_slow(now: Instant) -> Sources {
        let mut s = sources(2);
        let piece = PIECE;
        s.pick(0, None, now);
        s.served(0, 4 * piece, Duration::from_millis(40));
        s.succeeded(0);
        s.pick(1, None, now);
        s.served(1, 2 * piece, Duration::from_millis(500));
        s.succeeded(1);
        s
    }

    #[test]
    fn a_far_slower_source_gets_no_new_pieces() {
        let now = Instant::now();
        let mut s = fast_and_slow(now);
        assert_eq!(
            s.pick(1, None, now),
            Some(0),
            "the slow source is passed over"
        );
    }

    #[test]
    fn out_of_order_a_slow_source_gets_pieces_while_it_can_finish_them_in_time() {
        let now = Instant::now();
        let mut s = fast_and_slow(now);
        let piece = PIECE;
        assert_eq!(s.pick_within(1, Duration::from_secs(2), now), Some(1));
        assert_eq!(
            s.pick_within(1, Duration::from_millis(200), now),
            Some(0),
            "near the end, its piece would come last"
        );
        // A source a little slower than the fastest still takes the last
        // pieces beside it.
        s.pick(1, None, now);
        s.served(1, 20 * piece, Duration::from_millis(300));
        s.succeeded(1);
        assert_eq!(s.pick_within(1, Duration::ZERO, now), Some(1));
        assert_eq!(
            s.pick_within(0, Duration::ZERO, now),
            Some(0),
            "the fastest takes the last pieces"
        );
    }
}
