//! A token bucket: the arithmetic of a rate shared by several senders,
//! used by `serve --rate-limit` (one for the whole server) and by a
//! swarm's `--max-upload-rate` (one for every peer).
//!
//! Owns the arithmetic only: a sender asks for `n` bytes and is told how
//! long to wait before sending them. Tokens may go negative — a debt that
//! later senders wait out — so a large request never spins, and the mean
//! rate over any long interval is the configured one. Integer nanoseconds
//! throughout (no floating point in the binary). The caller holds the lock,
//! sleeps outside it, and supplies the clock, so tests need no waiting.

use std::time::{Duration, Instant};

const NANOS: u128 = 1_000_000_000;

/// A token bucket of `rate` bytes a second holding at most a tenth of a
/// second's worth, so an idle sender does not then burst far above its rate.
#[derive(Debug)]
pub struct TokenBucket {
    rate: u64,
    burst: i128,
    tokens: i128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` bytes a second (at least 1).
    pub fn new(rate: u64, now: Instant) -> TokenBucket {
        let rate = rate.max(1);
        let burst = i128::from((rate / 10).max(1));
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `n` bytes' worth of tokens at `now`; returns how long the
    /// caller must wait before sending them.
    pub fn take(&mut self, n: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        let earned = (elapsed * u128::from(self.rate) / NANOS).min(u128::from(u64::MAX));
        self.tokens = (self.tokens + earned as i128).min(self.burst) - i128::from(n);
        if self.tokens >= 0 {
            return Duration::ZERO;
        }
        let nanos = (-self.tokens) as u128 * NANOS / u128::from(self.rate);
        Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_is_free_then_bytes_cost_their_time() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, t0);
        assert_eq!(bucket.take(100, t0), Duration::ZERO);
        assert_eq!(bucket.take(500, t0), Duration::from_millis(500));
        // Waiting out the debt, and then 100 ms more, buys 100 bytes.
        let t1 = t0 + Duration::from_millis(600);
        assert_eq!(bucket.take(100, t1), Duration::ZERO);
    }

    #[test]
    fn many_senders_share_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1 << 20, t0);
        let mut waits = Duration::ZERO;
        for _ in 0..10 {
            waits = waits.max(bucket.take(1 << 20, t0));
        }
        // Ten seconds' worth taken at once: the last sender waits about 10 s.
        assert!(waits > Duration::from_millis(9_800) && waits < Duration::from_secs(10));
    }

    #[test]
    fn an_idle_bucket_does_not_save_up_beyond_its_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1000, t0);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(bucket.take(100, later), Duration::ZERO);
        assert_eq!(bucket.take(100, later), Duration::from_millis(100));
    }
}
