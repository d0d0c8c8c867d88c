//! The `(*)` cache: parts a manifest marks cacheable, kept for the rest of
//! one top-level download.
//!
//! Owns what is stored (the bytes of a cacheable part served by a plain
//! alternative, under that alternative's URL as the manifest gives it,
//! resolved, before redirects), the bound on its size, and lookups by any of
//! a part's alternatives. It lives in one `ManifestStream` and dies with it,
//! so nothing is shared between downloads.

use std::collections::HashMap;
use std::sync::Arc;

use crate::url::Url;

/// The default bound on cached bytes: enough for the jingles and headers a
/// manifest repeats, small next to a stream.
pub const DEFAULT_CACHE_LIMIT: u64 = 64 * 1024 * 1024;

/// Cached parts by URL.
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<Url, Arc<[u8]>>,
    used: u64,
    limit: u64,
}

impl Cache {
    /// An empty cache of at most `limit` bytes.
    pub fn new(limit: u64) -> Cache {
        Cache {
            entries: HashMap::new(),
            used: 0,
            limit,
        }
    }

    /// The bytes cached under the first of `alternatives` whose bytes
    /// `accept` takes: the part that looks them up may ask for another
    /// size or digest than the part that stored them, and a cached copy
    /// that does not match is not the part.
    pub fn lookup(
        &self,
        alternatives: &[Url],
        accept: impl Fn(&[u8]) -> bool,
    ) -> Option<Arc<[u8]>> {
        alternatives
            .iter()
            .filter_map(|url| self.entries.get(url))
            .find(|bytes| accept(bytes))
            .cloned()
    }

    /// How many more bytes fit.
    pub fn room(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Stores `bytes` under `url` if they fit; returns whether they were.
    pub fn insert(&mut self, url: Url, bytes: Vec<u8>) -> bool {
        let len = bytes.len() as u64;
        if len > self.room() || self.entries.contains_key(&url) {
            return false;
        }
        self.used += len;
        self.entries.insert(url, bytes.into());
        true
    }
}

/// The bytes of a cacheable part being collected as they stream past.
#[derive(Debug)]
pub struct CacheFill {
    bytes: Vec<u8>,
    room: u64,
    overflowed: bool,
}

impl CacheFill {
    /// Collects at most `room` bytes; a longer part is streamed, not cached.
    pub fn new(room: u64) -> CacheFill {
        CacheFill {
            bytes: Vec::new(),
            room,
            overflowed: false,
        }
    }

    /// Adds bytes that were handed on.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.bytes.len() as u64 + chunk.len() as u64 > self.room {
            self.overflowed = true;
            self.bytes = Vec::new();
            return;
        }
        self.bytes.extend_from_slice(chunk);
    }

    /// The collected bytes, unless the part outgrew the room.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        (!self.overflowed).then_some(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn lookup_finds_any_alternative() {
        let mut cache = Cache::new(100);
        assert!(cache.insert(url("http://b/x"), b"abc".to_vec()));
        let hit = cache
            .lookup(&[url("http://a/x"), url("http://b/x")], |_| true)
            .unwrap();
        assert_eq!(&hit[..], b"abc");
        assert!(cache.lookup(&[url("http://c/x")], |_| true).is_none());
    }

    #[test]
    fn lookup_skips_bytes_the_part_does_not_accept() {
        let mut cache = Cache::new(100);
        assert!(cache.insert(url("http://a/x"), b"abc".to_vec()));
        assert!(cache.insert(url("http://b/x"), b"abcd".to_vec()));
        let both = [url("http://a/x"), url("http://b/x")];
        let hit = cache.lookup(&both, |bytes| bytes.len() == 4).unwrap();
        assert_eq!(&hit[..], b"abcd");
        assert!(cache.lookup(&both, |bytes| bytes.len() == 5).is_none());
    }

    #[test]
    fn the_bound_is_never_exceeded() {
        let mut cache = Cache::new(5);
        assert!(cache.insert(url("http://a/1"), vec![0; 3]));
        assert!(!cache.insert(url("http://a/2"), vec![0; 3]));
        assert_eq!(cache.room(), 2);
        let mut fill = CacheFill::new(cache.room());
        fill.push(&[1, 2]);
        assert_eq!(fill.into_bytes(), Some(vec![1, 2]));
        let mut fill = CacheFill::new(2);
        fill.push(&[1, 2]);
        fill.push(&[3]);
        assert_eq!(fill.into_bytes(), None);
    }
}
