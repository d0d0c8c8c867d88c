//! How long to wait before asking again: exponential backoff with jitter,
//! and how many attempts by default.

use std::time::Duration;

/// Failures in a row after which a source is dropped, by default
/// (`--retries`).
pub const DEFAULT_RETRIES: u32 = 5;

/// 100 ms, 200 ms, 400 ms, … with up to a quarter more at random (so that
/// workers that failed together do not retry together), at most 10 s.
pub fn backoff(failures: u32) -> Duration {
    let base = Duration::from_millis(100) * (1u32 << failures.saturating_sub(1).min(7));
    let base = base.min(Duration::from_secs(10));
    base + base.mul_f64(crate::util::random::unit() / 4.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_at_most_a_quarter_more_and_stops_at_ten_seconds() {
        for (failures, base) in [(1, 100), (2, 200), (3, 400), (8, 10_000), (40, 10_000)] {
            let wait = backoff(failures);
            let base = Duration::from_millis(base);
            assert!(
                wait >= base && wait <= base + base / 4,
                "{failures}: {wait:?}"
            );
        }
    }
}
