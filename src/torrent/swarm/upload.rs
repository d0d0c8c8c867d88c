//! What we send peers: the blocks each one asked for and we have not sent
//! yet ([`UploadQueue`]), where their bytes are read from ([`Blocks`]),
//! the rate every peer's uploads share ([`UploadLimit`]), and the bytes
//! sent so far ([`Uploaded`]).
//!
//! A request is a few bytes; its answer is 16 KiB. So a request waits in
//! its peer's queue as a [`Block`] until the connection's writer thread is
//! ready to send it, and only then are its bytes read (from the page
//! cache, at their offset): memory holds a block being sent per peer,
//! whatever the peer asks for. The queue is bounded by the `reqq` we
//! announce; a peer that goes past it breaks the protocol and is closed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::picker::Block;
use crate::error::Result;
use crate::torrent::wire::OUR_REQQ;
use crate::torrent::TorrentStore;
use crate::util::token_bucket::TokenBucket;

/// Where the bytes of the blocks we send come from.
pub trait Blocks: Send + Sync {
    /// Reads `block` into `into` (exactly `block.length` bytes).
    fn read_block(&self, block: &Block, into: &mut [u8]) -> Result<()>;
}

impl Blocks for TorrentStore {
    fn read_block(&self, block: &Block, into: &mut [u8]) -> Result<()> {
        let offset =
            self.metainfo().piece_length() * u64::from(block.piece) + u64::from(block.begin);
        self.read(offset, into)
    }
}

/// A peer sent more requests than the `reqq` we told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRequests;

/// The blocks a peer asked for that are not sent yet, oldest first; the
/// controller's side adds and withdraws, the writer's side takes.
#[derive(Debug, Default)]
pub struct UploadQueue {
    blocks: Mutex<VecDeque<Block>>,
}

impl UploadQueue {
    /// Requests a queue holds at most: the `reqq` of our extension
    /// handshake.
    pub const LIMIT: usize = OUR_REQQ as usize;

    /// Queues `block`. Returns whether the queue was empty (the writer
    /// may be asleep and must be woken), or an error when the peer has
    /// more than [`UploadQueue::LIMIT`] requests waiting. A block asked for
    /// twice is queued once.
    pub fn push(&self, block: Block) -> Result<bool, TooManyRequests> {
        let mut blocks = self.lock();
        if blocks.contains(&block) {
            return Ok(false);
        }
        if blocks.len() >= Self::LIMIT {
            return Err(TooManyRequests);
        }
        blocks.push_back(block);
        Ok(blocks.len() == 1)
    }

    /// The peer cancelled `block`: it is not sent, unless it is being sent
    /// already.
    pub fn withdraw(&self, block: &Block) {
        self.lock().retain(|b| b != block);
    }

    /// Drops every request (we choked the peer: BEP 3 discards them).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The oldest request, for the writer to send.
    pub fn pop(&self) -> Option<Block> {
        self.lock().pop_front()
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Block>> {
        // A queue of plain blocks is whole even if a holder panicked.
        self.blocks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `--max-upload-rate`: one budget that every peer's writer draws from.
#[derive(Debug)]
pub struct UploadLimit {
    bucket: Mutex<TokenBucket>,
}

impl UploadLimit {
    /// At most `bytes_per_second` for all peers together.
    pub fn new(bytes_per_second: u64) -> UploadLimit {
        UploadLimit {
            bucket: Mutex::new(TokenBucket::new(bytes_per_second, Instant::now())),
        }
    }

    /// Waits until `bytes` more may be sent.
    pub fn wait_for(&self, bytes: u32) {
        let wait = self
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(u64::from(bytes), Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// Bytes of blocks sent on a connection, counted by its writer and read
/// by the swarm once a tick.
#[derive(Debug, Default, Clone)]
pub struct Uploaded(Arc<AtomicU64>);

impl Uploaded {
    /// Counts `bytes` more sent.
    pub fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes sent so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u32) -> Block {
        Block {
            piece: n / 64,
            begin: (n % 64) * 16384,
            length: 16384,
        }
    }

    #[test]
    fn a_peer_past_our_reqq_is_refused_and_what_it_queued_stays_bounded() {
        let queue = UploadQueue::default();
        assert_eq!(queue.push(block(0)), Ok(true), "the first wakes the writer");
        assert_eq!(queue.push(block(1)), Ok(false));
        let refused = (2..10_000)
            .map(|n| queue.push(block(n)))
            .position(|r| r.is_err())
            .map(|at| at + 2);
        assert_eq!(refused, Some(UploadQueue::LIMIT));
        assert_eq!(queue.lock().len(), UploadQueue::LIMIT);
    }

    #[test]
    fn a_cancelled_request_is_not_sent_and_a_choke_drops_them_all() {
        let queue = UploadQueue::default();
        for n in 0..4 {
            queue.push(block(n)).unwrap();
        }
        queue.push(block(2)).unwrap();
        queue.withdraw(&block(1));
        assert_eq!(queue.pop(), Some(block(0)));
        assert_eq!(queue.pop(), Some(block(2)), "asked twice, queued once");
        queue.clear();
        assert_eq!(queue.pop(), None);
        assert!(queue.is_empty());
        assert_eq!(queue.push(block(9)), Ok(true), "empty again: wake");
    }
}
