//! Hashing the pieces of a torrent being made: the files are read once,
//! front to back, by one thread, and their pieces hashed on as many
//! threads as the machine has cores (the calling thread among them).
//!
//! ```text
//!            ┌──────── free buffers (3 per hasher) ────────┐
//!            v                                             │
//!  reader: files in order ─> (first piece, bytes) ─┬─> hasher 1 ─> its hashes ─┐
//!  (a piece may span files)     one queue          └─> hasher 2 ─> its hashes ─┴─> in order
//! ```
//!
//! Memory is the buffers, a fixed few: what a file holds never is. A job
//! is one piece, or a run of consecutive pieces when pieces are short, so
//! that a job is at least [`JOB_BYTES`]. Each hasher keeps the hashes it
//! made, and they are put in order once all are done. Owns reading in
//! order and the threads; what is read is `walk`'s listing.

use std::fs::File;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use super::walk::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::sha1;

/// The most hashing threads. One thread reads for all of them, copying
/// from the page cache several times faster than one core hashes with
/// SHA instructions: past this many, the reader (or the disk) is what
/// waits, and each thread only adds a buffer of memory.
pub(super) const MAX_HASHERS: usize = 8;

/// The least a job holds: shorter pieces are hashed in runs. One read
/// and a few hand-offs between threads per job cost microseconds, a
/// megabyte's SHA-1 half a millisecond; a job of one 16 KiB piece would
/// spend a third of its time handing over.
pub(super) const JOB_BYTES: u64 = 1 << 20;

/// Buffers per hasher: the one it hashes, and two more, filled or being
/// filled by the reader, so that a hasher that finishes finds its next
/// job ready even when the other hashers finished theirs at the same
/// moment (as `mktorrent` has).
const BUFFERS_PER_HASHER: usize = 3;

/// How many hashing threads to start on this machine.
pub(super) fn hashers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_HASHERS)
}

/// The SHA-1 of each piece of `files` laid end to end (`total` bytes in
/// pieces of `piece_length`), 20 bytes each in order, hashed on `hashers`
/// threads (the calling one among them). Each file is read for the
/// length it was listed with; one found shorter is an error naming it,
/// and the first read error ends the hashing and is returned.
pub(super) fn hash_pieces(
    files: &[Entry],
    total: u64,
    piece_length: u64,
    hashers: usize,
) -> Result<Vec<u8>> {
    let hashers = hashers.max(1);
    let pieces = total.div_ceil(piece_length);
    let per_job = (JOB_BYTES / piece_length).max(1);
    let shape = Shape {
        total,
        piece_length,
        per_job,
        jobs: pieces.div_ceil(per_job),
    };
    let buffer_len = (piece_length * per_job).min(total) as usize;
    let buffers = hashers * BUFFERS_PER_HASHER;
    let (free, free_rx) = sync_channel::<Vec<u8>>(buffers);
    for _ in 0..buffers {
        // Each buffer is allocated by the reader when first used.
        let _ = free.send(Vec::new());
    }
    let (work, work_rx) = sync_channel::<Job>(buffers);
    let work_rx = Mutex::new(work_rx);
    let (read, hashed) = std::thread::scope(|scope| {
        // The reader owns the queue's sender: the queue closes when it
        // returns, whatever it returns.
        let reader = scope.spawn(move || read_jobs(files, shape, buffer_len, &free_rx, &work));
        let others: Vec<_> = (1..hashers)
            .map(|_| {
                let (work_rx, free) = (&work_rx, free.clone());
                scope.spawn(move || hash_jobs(work_rx, shape, &free))
            })
            .collect();
        let mut hashed = hash_jobs(&work_rx, shape, &free);
        for other in others {
            hashed.extend(join(other));
        }
        (join(reader), hashed)
    });
    read?;
    let mut hashes = vec![0u8; pieces as usize * 20];
    for job in hashed {
        let at = job.first as usize * 20;
        hashes[at..at + job.hashes.len()].copy_from_slice(&job.hashes);
    }
    Ok(hashes)
}

/// What a scoped thread returned; its panic, carried on.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// How the torrent's bytes are cut into pieces and jobs.
#[derive(Clone, Copy)]
struct Shape {
    total: u64,
    piece_length: u64,
    /// Consecutive pieces in one job.
    per_job: u64,
    jobs: u64,
}

impl Shape {
    /// The first piece of job `job`.
    fn first_piece(&self, job: u64) -> u64 {
        job * self.per_job
    }

    /// How many bytes job `job` holds: all its pieces, the last job's
    /// last piece as short as the torrent's end makes it.
    fn job_len(&self, job: u64) -> usize {
        let start = self.first_piece(job) * self.piece_length;
        (self.per_job * self.piece_length).min(self.total - start) as usize
    }
}

/// Bytes to hash: `len` bytes of `buffer`, from the start of piece
/// `first`.
struct Job {
    first: u64,
    buffer: Vec<u8>,
    len: usize,
}

/// The hashes of a job's pieces, from piece `first` on.
struct Hashed {
    first: u64,
    hashes: Vec<u8>,
}

/// The reader's thread: fills free buffers from the files, job after job,
/// and queues them; returns at the end or at the first error. Either way
/// the queue closes when it returns, and the hashers finish what is in
/// it and stop.
fn read_jobs(
    files: &[Entry],
    shape: Shape,
    buffer_len: usize,
    free: &Receiver<Vec<u8>>,
    work: &SyncSender<Job>,
) -> Result<()> {
    let mut reader = Reader::new(files);
    for job in 0..shape.jobs {
        // Hashers run until the queue closes, and give every buffer back.
        let Ok(mut buffer) = free.recv() else {
            return Ok(());
        };
        if buffer.len() < buffer_len {
            buffer.resize(buffer_len, 0);
        }
        let len = shape.job_len(job);
        reader.fill(&mut buffer[..len])?;
        let first = shape.first_piece(job);
        if work.send(Job { first, buffer, len }).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// A hasher: hashes queued jobs piece by piece and gives each buffer
/// back, until the queue is closed; returns the hashes. Results are kept
/// by each hasher and put in order at the end, rather than sent to a
/// collecting thread: a hand-off per job would wake one more thread on
/// cores that are all hashing.
fn hash_jobs(work: &Mutex<Receiver<Job>>, shape: Shape, free: &SyncSender<Vec<u8>>) -> Vec<Hashed> {
    let piece_length = shape.piece_length as usize;
    let mut done = Vec::new();
    loop {
        // The lock is held while waiting, so one idle hasher waits on the
        // queue and the others on the lock: either wakes for the next job.
        let job = match work.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return done,
        };
        let Ok(job) = job else {
            return done;
        };
        let hashes: Vec<u8> = job.buffer[..job.len]
            .chunks(piece_length)
            .flat_map(sha1::digest)
            .collect();
        // The reader may have stopped already: the buffer is not needed.
        let _ = free.send(job.buffer);
        done.push(Hashed {
            first: job.first,
            hashes,
        });
    }
}

/// Reads the listed files one after the other as one stream of bytes.
struct Reader<'a> {
    files: std::slice::Iter<'a, Entry>,
    /// The file being read, and how many of its listed bytes are left.
    current: Option<(File, &'a Entry, u64)>,
}

impl<'a> Reader<'a> {
    fn new(files: &'a [Entry]) -> Reader<'a> {
        Reader {
            files: files.iter(),
            current: None,
        }
    }

    /// Fills `buffer` with the next bytes, from as many files as it takes.
    fn fill(&mut self, buffer: &mut [u8]) -> Result<()> {
        let mut filled = 0;
        while filled < buffer.len() {
            let (file, entry, left) = match &mut self.current {
                Some((file, entry, left)) if *left > 0 => (file, *entry, left),
                _ => {
                    self.current = Some(self.open_next()?);
                    continue;
                }
            };
            let want = (buffer.len() - filled).min(usize::try_from(*left).unwrap_or(usize::MAX));
            match file.read(&mut buffer[filled..filled + want]) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "the file is shorter than when it was listed ({} bytes): it \
                             changed while the torrent was made",
                            entry.length
                        ),
                    )
                    .with_subject(entry.disk.display()))
                }
                Ok(n) => {
                    filled += n;
                    *left -= n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(e, entry.disk.display())),
            }
        }
        Ok(())
    }

    /// Opens the next file that has bytes.
    fn open_next(&mut self) -> Result<(File, &'a Entry, u64)> {
        for entry in self.files.by_ref() {
            if entry.length > 0 {
                let file =
                    File::open(&entry.disk).map_err(|e| Error::io(e, entry.disk.display()))?;
                return Ok((file, entry, entry.length));
            }
        }
        // The caller asks for no more than the lengths add up to.
        Err(Error::new(
            ErrorKind::Io,
            "read past the last file of the torrent",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::fixture::Scratch;
    use std::path::Path;

    /// Files of these lengths under `dir`, each byte its offset in the
    /// whole mixed, and their bytes end to end.
    fn files(dir: &Path, lengths: &[u64]) -> (Vec<Entry>, Vec<u8>) {
        let mut all = Vec::new();
        let mut entries = Vec::new();
        for (i, &length) in lengths.iter().enumerate() {
            let bytes: Vec<u8> = (0..length)
                .map(|_| {
                    let n = all.len() as u64;
                    all.push((n * 31 + n / 7) as u8);
                    all[n as usize]
                })
                .collect();
            let disk = dir.join(format!("f{i}"));
            std::fs::write(&disk, &bytes).unwrap();
            entries.push(Entry {
                disk,
                components: vec![format!("f{i}")],
                length,
            });
        }
        (entries, all)
    }

    fn expected(all: &[u8], piece_length: u64) -> Vec<u8> {
        all.chunks(piece_length as usize)
            .flat_map(sha1::digest)
            .collect()
    }

    #[test]
    fn pieces_across_file_boundaries_hash_as_the_files_end_to_end() {
        let scratch = Scratch::new("hash-spans");
        // Empty files first, between and last; a file inside one piece;
        // pieces spanning three files.
        let lengths = [0, 40_000, 7, 0, 16_384, 100_001, 1, 0];
        let (entries, all) = files(scratch.path(), &lengths);
        let total = all.len() as u64;
        for piece_length in [16 << 10, 32 << 10, 256 << 10] {
            for hashers in [1, 2, 5] {
                let hashes = hash_pieces(&entries, total, piece_length, hashers).unwrap();
                assert_eq!(
                    hashes,
                    expected(&all, piece_length),
                    "pieces of {piece_length}, {hashers} hashers"
                );
            }
        }
    }

    #[test]
    fn short_pieces_are_hashed_in_runs_and_come_back_in_order() {
        let scratch = Scratch::new("hash-runs");
        // 3.5 MiB in 16 KiB pieces: jobs of 64 pieces, the last one short.
        let (entries, all) = files(scratch.path(), &[1 << 20, (5 << 19) + 123]);
        let total = all.len() as u64;
        let hashes = hash_pieces(&entries, total, 16 << 10, 3).unwrap();
        assert_eq!(hashes.len() as u64, total.div_ceil(16 << 10) * 20);
        assert_eq!(hashes, expected(&all, 16 << 10));
        // One piece longer than the whole.
        let one = hash_pieces(&entries, total, 8 << 20, 2).unwrap();
        assert_eq!(one, sha1::digest(&all));
    }

    #[test]
    fn a_file_that_shrank_since_it_was_listed_is_an_error_naming_it() {
        let scratch = Scratch::new("hash-shrunk");
        let (mut entries, _) = files(scratch.path(), &[50_000, 3 << 20]);
        entries[1].length += 1;
        let total = 50_000 + (3 << 20) + 1;
        let err = hash_pieces(&entries, total, 16 << 10, 2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains("shorter"), "{err}");
        assert_eq!(
            err.subject(),
            Some(entries[1].disk.display().to_string().as_str())
        );
        std::fs::remove_file(&entries[0].disk).unwrap();
        let err = hash_pieces(&entries, total, 16 << 10, 2).unwrap_err();
        assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
    }
}
