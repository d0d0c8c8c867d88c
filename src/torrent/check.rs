//! Finding which of a torrent's pieces are already on disk, by hashing
//! them, as `aria2c --check-integrity` does: what a download starts from
//! when its files are there but no control file vouches for them.
//!
//! Owns [`check_existing`]. Whether to check at all (a control file may
//! say which pieces are there) is `resume`'s choice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::storage::TorrentStore;
use crate::cancel::Cancel;
use crate::error::Result;
use crate::pieces::PieceSet;

/// How many threads hash at once. Hashing a piece costs about as much as
/// reading it from a fast disk, so two threads keep a disk busy while one
/// hashes and the other reads; more would compete for the same disk and
/// for the cores the rest of the machine uses.
pub const CHECK_THREADS: usize = 2;

/// The pieces whose bytes on disk have the SHA-1 the metainfo gives.
///
/// Pieces lying even in part in bytes the store added when it opened the
/// files (past a file's length before, or in a file that was not there)
/// are not read: they hold zeros no earlier run wrote. With no data at all
/// ([`TorrentStore::had_data`]) nothing is read.
///
/// Up to [`CHECK_THREADS`] threads take the pieces in order, each the next
/// one not taken, so the disk is read front to back; each reads through
/// one buffer of at most [`HASH_CHUNK`](super::HASH_CHUNK) bytes.
/// `progress` is told how many pieces have been looked at so far, of the
/// torrent's [`Layout::pieces`](crate::pieces::Layout::pieces) (from
/// either thread, so two calls may come out of order). A cancel through
/// `cancel` is noticed between pieces and returns
/// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled); the first read
/// error ends the check and is returned.
///
/// The files are marked for the store's next [`TorrentStore::sync`]: what
/// was read may not be on the disk yet (written by a run killed before it
/// synced), and a control file must not list it before it is.
pub fn check_existing(
    store: &TorrentStore,
    cancel: &Cancel,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PieceSet> {
    let pieces = store.metainfo().layout().pieces();
    if !store.had_data() {
        progress(pieces);
        return Ok(PieceSet::new());
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, CHECK_THREADS);
    let shared = Shared {
        store,
        cancel,
        progress,
        pieces,
        next: AtomicU64::new(0),
        looked: AtomicU64::new(0),
        failed: AtomicBool::new(false),
    };
    let results = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads)
            .map(|_| scope.spawn(|| shared.check_share()))
            .collect();
        let mut results = vec![shared.check_share()];
        for other in others {
            results.push(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        results
    });
    let mut good = PieceSet::new();
    for share in results {
        for run in share?.runs() {
            good.insert_run(run.clone());
        }
    }
    if !good.is_empty() {
        store.mark_existing_unsynced();
    }
    Ok(good)
}

/// What the checking threads share.
struct Shared<'a> {
    store: &'a TorrentStore,
    cancel: &'a Cancel,
    progress: &'a (dyn Fn(u64) + Sync),
    pieces: u64,
    /// The next piece no thread has taken.
    next: AtomicU64,
    /// Pieces looked at, for `progress`.
    looked: AtomicU64,
    /// A thread has failed: the others stop.
    failed: AtomicBool,
}

impl Shared<'_> {
    /// Checks pieces until none is left, and returns the good ones.
    fn check_share(&self) -> Result<PieceSet> {
        let mut buffer = Vec::new();
        let mut good = PieceSet::new();
        loop {
            if self.failed.load(Ordering::Relaxed) {
                return Ok(good);
            }
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.pieces {
                return Ok(good);
            }
            let checked = self.cancel.check().and_then(|()| {
                Ok(self.store.piece_was_on_disk(index)
                    && self.store.piece_matches_with(index, &mut buffer)?)
            });
            match checked {
                Ok(true) => good.insert(index),
                Ok(false) => {}
                Err(e) => {
                    self.failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            (self.progress)(self.looked.fetch_add(1, Ordering::Relaxed) + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::torrent::fixture::{multi, Entry, Scratch, ODD_FILES};
    use std::sync::Arc;

    /// In pieces of 4, so that one piece is all padding but a byte.
    const FILES: [Entry; 5] = ODD_FILES;

    #[test]
    fn exactly_the_written_and_correct_pieces_are_found() {
        let scratch = Scratch::new("check");
        let (meta, content) = multi("t", &FILES, 4);
        let store = TorrentStore::open(Arc::clone(&meta), scratch.path()).unwrap();
        let pieces = meta.layout().pieces();
        // Every piece but 1 and 6; then a byte of piece 3 goes bad.
        for index in (0..pieces).filter(|i| ![1, 6].contains(i)) {
            let (first, last) = meta.layout().range(index);
            let bytes = &content[first as usize..=last as usize];
            store.write(first, bytes).unwrap();
        }
        store.write(13, &[content[13] ^ 0x40]).unwrap();
        store.sync().unwrap();
        drop(store);
        let store = TorrentStore::open(meta, scratch.path()).unwrap();
        assert!(store.had_data());
        let looked = AtomicU64::new(0);
        let good = check_existing(&store, &Cancel::new(), &|n| {
            looked.fetch_max(n, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(good.to_string(), "0,2,4-5,7-8");
        assert_eq!(looked.load(Ordering::Relaxed), pieces);
    }

    #[test]
    fn nothing_is_read_when_no_file_was_there() {
        let scratch = Scratch::new("check-fresh");
        let (meta, _) = multi("t", &FILES, 4);
        let store = TorrentStore::open(meta, scratch.path()).unwrap();
        let good = check_existing(&store, &Cancel::new(), &|_| {}).unwrap();
        assert!(good.is_empty());
    }

    #[test]
    fn a_cancelled_check_stops_with_cancelled() {
        let scratch = Scratch::new("check-cancel");
        let (meta, content) = multi("t", &FILES, 4);
        let store = TorrentStore::open(Arc::clone(&meta), scratch.path()).unwrap();
        store.write(0, &content).unwrap();
        drop(store);
        let store = TorrentStore::open(meta, scratch.path()).unwrap();
        let cancel = Cancel::new();
        cancel.cancel();
        let err = check_existing(&store, &cancel, &|_| {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
    }
}
