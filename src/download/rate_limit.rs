//! `--limit-rate`: the total download rate, kept by making the writers
//! wait.
//!
//! Owns the one budget every writer of a download draws from, whether the
//! bytes are written in order by one thread or at their offsets by many:
//! a writer that is ahead of the rate sleeps until the bytes so far fit it,
//! and a sleeping writer stops reading from its connection, so the servers
//! are slowed by TCP's own flow control.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A cap on bytes per second, shared by the threads that write.
pub struct RateLimit {
    bytes_per_sec: u64,
    started: Instant,
    counted: Mutex<u64>,
}

impl RateLimit {
    /// At most `bytes_per_sec` (at least 1), from now on.
    pub fn new(bytes_per_sec: u64) -> RateLimit {
        RateLimit {
            bytes_per_sec: bytes_per_sec.max(1),
            started: Instant::now(),
            counted: Mutex::new(0),
        }
    }

    /// Counts `n` bytes written, and sleeps until the bytes so far fit the
    /// rate.
    pub fn take(&self, n: usize) {
        let due = {
            let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
            *counted += n as u64;
            let micros = u128::from(*counted) * 1_000_000 / u128::from(self.bytes_per_sec);
            Duration::from_micros(micros as u64)
        };
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_that_run_ahead_wait_for_the_rate() {
        let limit = RateLimit::new(1_000_000);
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| limit.take(50_000));
            }
        });
        // 200 000 bytes at 1 MB/s: 0.2 s, whichever thread waited.
        assert!(started.elapsed() >= Duration::from_millis(195));
    }
}
