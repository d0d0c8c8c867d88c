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
}
