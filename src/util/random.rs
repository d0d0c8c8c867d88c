//! Numbers that differ from call to call, for what needs variety but no
//! secrecy: retry jitter, tracker transaction ids, peer ids.
//!
//! The source is the standard library's randomly keyed hasher (each
//! `RandomState` gets fresh keys from the system) fed the time: no
//! dependency, and no cryptographic generator either, which none of these
//! uses needs.

use std::hash::{BuildHasher, Hasher};

/// 64 bits that differ from call to call.
pub fn u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

/// A cheap stream of numbers (xorshift64) for choices that need variety,
/// not secrecy, many times a second: ties among a swarm's pieces, its
/// optimistic unchoke. Seeded from [`u64`], or by a test.
#[derive(Debug, Clone)]
pub struct Xorshift(u64);

impl Xorshift {
    /// A stream seeded from [`u64`].
    pub fn new() -> Xorshift {
        Xorshift::seeded(u64())
    }

    /// A stream that is the same for the same `seed`.
    pub fn seeded(seed: u64) -> Xorshift {
        Xorshift(seed | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

impl Default for Xorshift {
    fn default() -> Xorshift {
        Xorshift::new()
    }
}

/// A number in [0, 1).
pub fn unit() -> f64 {
    (u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_differ_from_call_to_call_and_units_stay_below_one() {
        let drawn: std::collections::HashSet<u64> = (0..100).map(|_| u64()).collect();
        assert!(drawn.len() > 95, "{} distinct of 100", drawn.len());
        assert!((0..1000).map(|_| unit()).all(|x| (0.0..1.0).contains(&x)));
    }

    #[test]
    fn a_seeded_stream_repeats_and_never_sticks_at_zero() {
        let draw = |seed| {
            let mut stream = Xorshift::seeded(seed);
            (0..5).map(|_| stream.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(0).iter().all(|&n| n != 0));
    }
}
