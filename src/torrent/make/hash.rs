//! Hashing the pieces of a torrent being made: the files are read once,
//! front to back, one read at a time, and their pieces hashed on as many
//! threads as the machine has cores (the calling thread among them).
//!
//! ```text
//!  hasher 1: ─ lock the reader, read the next job, unlock ─ hash it ─ …
//!  hasher 2: ──────────── hash its job ─────────── lock, read, unlock ─ …
//!                 the reader: the files in order, pieces across files
//!  then the hashes each hasher kept, put in order
//! ```
//!
//! The reader is shared, behind a lock, rather than a thread of its own
//! handing buffers to the hashers (as `mktorrent` does): with two cores,
//! a reader thread was a third thread on two cores, woken on the core of
//! the hasher that freed its buffer and left waiting behind it while the
//! other core ran out of work. `perf sched` showed one core idle a
//! quarter of the time, and a GiB took 0.44 s against `mktorrent`'s
//! 0.39 s; read under a lock by whichever hasher is free, 0.37 s
//! (BENCHMARKS.md). The bytes are still read once and in order, and a
//! job is hashed by the core that read it, from its cache.
//!
//! Memory is one buffer per hasher: what a file holds never is in memory
//! whole. A job is one piece, or a run of consecutive pieces when pieces
//! are short, so that a job is at least [`JOB_BYTES`]. Owns reading in
//! order and the threads; what is read is `walk`'s listing.

use std::fs::File;
use std::io::Read;
use std::sync::Mutex;

use super::walk::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::sha1;

/// The most hashing threads. Reads are one at a time: a copy from the
/// page cache runs at about 6 GB/s here, against 2 GB/s of SHA-1 per
/// core with SHA instructions and 0.7 GB/s without. Past this many the
/// reads (or the disk) are the limit, and each thread only adds a buffer
/// of memory.
pub(super) const MAX_HASHERS: usize = 8;

/// The least a job holds: shorter pieces are hashed in runs. A job costs
/// a read and a lock besides its hashing; a megabyte's SHA-1 takes half
/// a millisecond, against microseconds for those.
pub(super) const JOB_BYTES: u64 = 1 << 20;

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
/// and the first read error stops every hasher and is returned.
pub(super) fn hash_pieces(
    files: &[Entry],
    total: u64,
    piece_length: u64,
    hashers: usize,
) -> Result<Vec<u8>> {
    let pieces = total.div_ceil(piece_length);
    let per_job = (JOB_BYTES / piece_length).max(1);
    let shape = Shape {
        total,
        piece_length,
        per_job,
        jobs: pieces.div_ceil(per_job),
    };
    let shared = Mutex::new(Shared {
        reader: Reader::new(files),
        next_job: 0,
    });
    let hash = || hash_jobs(&shared, shape);
    let kept = std::thread::scope(|scope| {
        let others: Vec<_> = (1..hashers.max(1)).map(|_| scope.spawn(hash)).collect();
        let mut kept = vec![hash()];
        for other in others {
            kept.push(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        kept
    });
    let mut hashes = vec![0u8; pieces as usize * 20];
    for jobs in kept {
        for job in jobs? {
            let at = job.first as usize * 20;
            hashes[at..at + job.hashes.len()].copy_from_slice(&job.hashes);
        }
    }
    Ok(hashes)
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

/// What the hashers share: the reader, and which job it reads next.
struct Shared<'a> {
    reader: Reader<'a>,
    /// The next job to read; the number of jobs once all are read, or
    /// once a read failed (the others then stop).
    next_job: u64,
}

/// The hashes of a job's pieces, from piece `first` on.
struct Hashed {
    first: u64,
    hashes: Vec<u8>,
}

/// A hasher: reads the next job into its buffer (the lock held only for
/// the read), hashes it piece by piece, and again, until every job is
/// read; returns the hashes it made, or the read error it met.
fn hash_jobs(shared: &Mutex<Shared<'_>>, shape: Shape) -> Result<Vec<Hashed>> {
    // The first job is the longest: allocated before taking the lock.
    let mut buffer = vec![0u8; if shape.jobs > 0 { shape.job_len(0) } else { 0 }];
    let mut done = Vec::new();
    loop {
        let (first, len) = {
            // Poisoned: another hasher panicked, which the caller will
            // carry on with; this one stops.
            let Ok(mut shared) = shared.lock() else {
                return Ok(done);
            };
            let job = shared.next_job;
            if job >= shape.jobs {
                return Ok(done);
            }
            let len = shape.job_len(job);
            if let Err(e) = shared.reader.fill(&mut buffer[..len]) {
                shared.next_job = shape.jobs;
                return Err(e);
            }
            shared.next_job += 1;
            (shape.first_piece(job), len)
        };
        let hashes = buffer[..len]
            .chunks(shape.piece_length as usize)
            .flat_map(sha1::digest)
            .collect();
        done.push(Hashed { first, hashes });
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
