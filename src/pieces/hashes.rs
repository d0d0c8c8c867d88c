//! Hashes a download's bytes must match piece by piece, as a Metalink
//! document's `<pieces>` gives them, checked as the bytes arrive.
//!
//! Owns the hashes ([`PieceHashes`]) and the check of bytes delivered in
//! order from one source ([`PieceChecker`]): a hashed piece whose every
//! byte the same delivery brought is checked the moment it is whole, so
//! a mirror that serves wrong bytes is caught at that piece and can be
//! dropped. Its pieces need not be the engine's: one that starts before
//! a delivery, or that the delivery leaves unfinished, is not checked
//! here (the caller checks the whole file at the end). Which source is
//! blamed and what is fetched again is the engine's.

use std::sync::Arc;

use crate::sha1::Sha1;
use crate::sha256::Sha256;

/// Which hash the digests are of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-1 (20 bytes).
    Sha1,
}

/// The digest of every `length` bytes of a resource of `total` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceHashes {
    kind: HashKind,
    length: u64,
    total: u64,
    digests: Vec<Vec<u8>>,
}

impl PieceHashes {
    /// The hashes of pieces of `length` bytes of a resource of `total`
    /// bytes; `None` unless there is one digest of the hash's size per
    /// piece.
    pub fn new(
        kind: HashKind,
        length: u64,
        total: u64,
        digests: Vec<Vec<u8>>,
    ) -> Option<PieceHashes> {
        let size = match kind {
            HashKind::Sha256 => 32,
            HashKind::Sha1 => 20,
        };
        let fits = length > 0
            && digests.len() as u64 == total.div_ceil(length)
            && digests.iter().all(|d| d.len() == size);
        fits.then_some(PieceHashes {
            kind,
            length,
            total,
            digests,
        })
    }

    /// The resource's length the hashes are of.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Where piece `index` starts.
    pub fn piece_start(&self, index: u64) -> u64 {
        index * self.length
    }

    /// Bytes `start..end` of piece `index`.
    fn range(&self, index: u64) -> (u64, u64) {
        let start = index * self.length;
        (start, (start + self.length).min(self.total))
    }

    /// Whether `digest` is piece `index`'s.
    fn matches(&self, index: u64, digest: &[u8]) -> bool {
        self.digests
            .get(index as usize)
            .is_some_and(|d| d[..] == *digest)
    }
}

/// A hash being computed.
enum Hasher {
    Sha256(Sha256),
    Sha1(Sha1),
}

impl Hasher {
    fn new(kind: HashKind) -> Hasher {
        match kind {
            HashKind::Sha256 => Hasher::Sha256(Sha256::new()),
            HashKind::Sha1 => Hasher::Sha1(Sha1::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finish().to_vec(),
            Hasher::Sha1(h) => h.finish().to_vec(),
        }
    }
}

/// A hashed piece whose bytes do not match its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPiece {
    /// Its index among the hashed pieces (not the engine's).
    pub index: u64,
}

/// Checks bytes delivered in order (one answer's, say) against
/// [`PieceHashes`].
pub struct PieceChecker {
    hashes: Arc<PieceHashes>,
    /// The piece being hashed, from its first byte.
    current: Option<(u64, Hasher)>,
    /// Where the next bytes are expected.
    next: u64,
}

impl PieceChecker {
    /// A check of deliveries against `hashes`.
    pub fn new(hashes: Arc<PieceHashes>) -> PieceChecker {
        PieceChecker {
            hashes,
            current: None,
            next: u64::MAX,
        }
    }

    /// Takes `bytes` at `offset`; fails with the first piece they
    /// complete that does not match. Bytes that do not follow the last
    /// ones start a new delivery.
    pub fn feed(&mut self, mut offset: u64, mut bytes: &[u8]) -> Result<(), BadPiece> {
        if offset != self.next {
            self.current = None;
        }
        while !bytes.is_empty() && offset < self.hashes.total {
            let index = offset / self.hashes.length;
            let (start, end) = self.hashes.range(index);
            if self.current.as_ref().is_none_or(|(i, _)| *i != index) {
                self.current = (offset == start).then(|| (index, Hasher::new(self.hashes.kind)));
            }
            let n = (bytes.len() as u64).min(end - offset) as usize;
            if let Some((_, hasher)) = &mut self.current {
                hasher.update(&bytes[..n]);
            }
            offset += n as u64;
            bytes = &bytes[n..];
            if offset == end {
                if let Some((index, hasher)) = self.current.take() {
                    if !self.hashes.matches(index, &hasher.finish()) {
                        self.next = u64::MAX;
                        return Err(BadPiece { index });
                    }
                }
            }
        }
        self.next = offset;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256;

    fn hashes_of(data: &[u8], length: usize) -> Arc<PieceHashes> {
        let digests = data
            .chunks(length)
            .map(|c| sha256::digest(c).to_vec())
            .collect();
        PieceHashes::new(HashKind::Sha256, length as u64, data.len() as u64, digests)
            .map(Arc::new)
            .expect("one digest a piece")
    }

    #[test]
    fn good_bytes_pass_in_any_split() {
        let data: Vec<u8> = (0..2500u32).map(|i| (i * 7 % 251) as u8).collect();
        let hashes = hashes_of(&data, 1000);
        for split in [1, 7, 999, 1000, 1001, 2500] {
            let mut checker = PieceChecker::new(Arc::clone(&hashes));
            let mut offset = 0;
            for chunk in data.chunks(split) {
                assert_eq!(checker.feed(offset, chunk), Ok(()), "{split}");
                offset += chunk.len() as u64;
            }
        }
    }

    #[test]
    fn a_wrong_byte_fails_its_piece_when_it_is_whole() {
        let data = vec![7u8; 2500];
        let hashes = hashes_of(&data, 1000);
        let mut wrong = data.clone();
        wrong[1500] = 8;
        let mut checker = PieceChecker::new(Arc::clone(&hashes));
        assert_eq!(checker.feed(0, &wrong[..1999]), Ok(()));
        assert_eq!(
            checker.feed(1999, &wrong[1999..]),
            Err(BadPiece { index: 1 })
        );
        // Delivered from piece 1's start on, by another answer.
        let mut checker = PieceChecker::new(Arc::clone(&hashes));
        assert_eq!(
            checker.feed(1000, &wrong[1000..]),
            Err(BadPiece { index: 1 })
        );
    }

    #[test]
    fn a_piece_begun_elsewhere_is_not_judged() {
        let data = vec![7u8; 2500];
        let hashes = hashes_of(&data, 1000);
        let mut checker = PieceChecker::new(Arc::clone(&hashes));
        // The first bytes of piece 1 came in another delivery: its end
        // alone proves nothing, wrong or not.
        assert_eq!(checker.feed(1500, &[9; 500]), Ok(()));
        assert_eq!(checker.feed(2000, &[7; 500]), Ok(()));
        // A gap starts over.
        let mut checker = PieceChecker::new(Arc::clone(&hashes));
        assert_eq!(checker.feed(0, &[7; 500]), Ok(()));
        assert_eq!(checker.feed(600, &[9; 400]), Ok(()));
    }

    #[test]
    fn digests_must_fit_the_length() {
        let one = vec![vec![0; 32]];
        assert!(PieceHashes::new(HashKind::Sha256, 10, 10, one.clone()).is_some());
        assert!(PieceHashes::new(HashKind::Sha256, 10, 11, one.clone()).is_none());
        assert!(PieceHashes::new(HashKind::Sha1, 10, 10, one).is_none());
        assert!(PieceHashes::new(HashKind::Sha256, 0, 0, Vec::new()).is_none());
    }
}
