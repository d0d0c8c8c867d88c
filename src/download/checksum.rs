//! `--checksum sha256=HEX`: the digest of the output, computed on a thread
//! of its own while the download runs.
//!
//! Owns both ways the bytes reach that thread. A stream written in order
//! hands them over as they are written ([`HashThread`]: copied into large
//! blocks, so the thread that reads the network only copies, and SHA-256 —
//! slower than a fast LAN on one core — runs beside it instead of after
//! each chunk). A file written out of order is read back from disk as far
//! as it has no gap ([`FollowingHash`]). Either way the digest is compared
//! once the last byte is in ([`check_digest`]).

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use crate::error::{Error, ErrorKind};
use crate::pieces::store::read_exact_at;
use crate::sha256::{self, Sha256};

use crate::download::output::WriteError;

/// Bytes are handed to the hashing thread in blocks of this size.
const BLOCK: usize = 1024 * 1024;

/// Blocks on their way to the hashing thread at most: a reader faster than
/// the hash waits for it rather than filling memory.
const BLOCKS_IN_FLIGHT: usize = 4;

/// A mismatch between the digest `got` and the one `expected` of `what`
/// is an integrity error; a match is the digest.
pub fn check_digest(got: [u8; 32], expected: [u8; 32], what: &str) -> Result<[u8; 32], WriteError> {
    if got == expected {
        return Ok(got);
    }
    Err(WriteError::Failed(
        Error::new(
            ErrorKind::Integrity,
            format!(
                "checksum mismatch: SHA-256 is {}, expected {}",
                sha256::to_hex(&got),
                sha256::to_hex(&expected)
            ),
        )
        .with_subject(what),
    ))
}

/// SHA-256 of bytes handed over in order, computed on its own thread.
pub struct HashThread {
    block: Vec<u8>,
    to: Option<SyncSender<Vec<u8>>>,
    /// Blocks the thread is done with, to be filled again.
    spare: Receiver<Vec<u8>>,
    thread: JoinHandle<[u8; 32]>,
    expected: [u8; 32],
}

impl HashThread {
    /// Starts hashing; the result is compared with `expected` at the end.
    pub fn start(expected: [u8; 32]) -> HashThread {
        let (to, blocks) = mpsc::sync_channel::<Vec<u8>>(BLOCKS_IN_FLIGHT);
        let (give_back, spare) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut digest = Sha256::new();
            for block in blocks {
                digest.update(&block);
                let _ = give_back.send(block);
            }
            digest.finish()
        });
        HashThread {
            block: Vec::with_capacity(BLOCK),
            to: Some(to),
            spare,
            thread,
            expected,
        }
    }

    /// Adds `bytes`.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = bytes.len().min(BLOCK - self.block.len());
            self.block.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.block.len() == BLOCK {
                self.send_block();
            }
        }
    }

    fn send_block(&mut self) {
        let mut next = self.spare.try_recv().unwrap_or_default();
        next.clear();
        next.reserve(BLOCK);
        let full = std::mem::replace(&mut self.block, next);
        if let Some(to) = &self.to {
            let _ = to.send(full);
        }
    }

    /// Hashes what is left and compares the digest with the one expected
    /// of `what`; returns it when they match.
    pub fn finish(mut self, what: &str) -> Result<[u8; 32], WriteError> {
        if !self.block.is_empty() {
            self.send_block();
        }
        drop(self.to.take());
        let got = self.thread.join().map_err(|_| thread_failed())?;
        check_digest(got, self.expected, what)
    }
}

/// SHA-256 of a file being written out of order, computed on its own
/// thread by reading back the bytes from the start as far as they are known
/// to be there without a gap.
pub struct FollowingHash {
    /// Unbounded: the writers never wait for the hash, which reads back
    /// from the file whatever it has fallen behind by.
    upto: Sender<u64>,
    told: u64,
    thread: JoinHandle<Result<[u8; 32], Error>>,
    expected: [u8; 32],
}

impl FollowingHash {
    /// Starts hashing `file` (a handle of its own, named `path` in errors)
    /// from its first byte.
    pub fn start(file: File, path: PathBuf, expected: [u8; 32]) -> FollowingHash {
        let (upto, targets) = mpsc::channel::<u64>();
        let thread = std::thread::spawn(move || {
            let mut digest = Sha256::new();
            let mut buffer = vec![0; BLOCK];
            let mut hashed = 0;
            for target in targets {
                while hashed < target {
                    let n = (target - hashed).min(BLOCK as u64) as usize;
                    read_exact_at(&file, hashed, &mut buffer[..n])
                        .map_err(|e| Error::io(e, path.display()))?;
                    digest.update(&buffer[..n]);
                    hashed += n as u64;
                }
            }
            Ok(digest.finish())
        });
        FollowingHash {
            upto,
            told: 0,
            thread,
            expected,
        }
    }

    /// The first `contiguous` bytes are on disk.
    pub fn follow(&mut self, contiguous: u64) {
        if contiguous >= self.told + BLOCK as u64 {
            self.told = contiguous;
            let _ = self.upto.send(contiguous);
        }
    }

    /// Hashes the rest of the first `length` bytes and compares the digest
    /// with the one expected of `what`; returns it when they match.
    pub fn finish(self, length: u64, what: &str) -> Result<[u8; 32], WriteError> {
        let _ = self.upto.send(length);
        drop(self.upto);
        let got = self
            .thread
            .join()
            .map_err(|_| thread_failed())?
            .map_err(WriteError::Failed)?;
        check_digest(got, self.expected, what)
    }
}

fn thread_failed() -> WriteError {
    WriteError::Failed(Error::new(ErrorKind::Io, "the checksum thread failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hashing_thread_sees_every_byte_in_order() {
        let data: Vec<u8> = (0..3 * BLOCK + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let expected = sha256::digest(&data);
        let mut hash = HashThread::start(expected);
        for chunk in data.chunks(65_000) {
            hash.update(chunk);
        }
        assert_eq!(hash.finish("test").ok(), Some(expected));

        let mut wrong = HashThread::start(expected);
        wrong.update(&data[1..]);
        assert!(matches!(
            wrong.finish("test"),
            Err(WriteError::Failed(e)) if e.kind() == ErrorKind::Integrity
        ));
    }
}
