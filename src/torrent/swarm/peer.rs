//! A connected peer as the swarm sees it: what it has, whether it chokes
//! us, what we asked it for, how fast it sends, and how many requests it
//! gets at once; and the messages that pass between its connection and
//! the swarm ([`Incoming`], [`Out`]), owned so they can cross threads.
//!
//! Pipelining follows libtorrent: a peer is kept about
//! [`QUEUE_TIME`] of blocks ahead at the rate it sends, so the link never
//! idles waiting for our next request; it starts small and grows by a
//! block for each block received (slow start) until its rate is measured,
//! never exceeds the `reqq` the peer told, and drops to one request while
//! the peer is snubbed (sends nothing for [`SNUB_AFTER`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::picker::Block;
use crate::torrent::wire::{Bitfield, ExtensionHandshake, DEFAULT_PEER_REQQ, MAX_BLOCK};

/// How far ahead of a peer's rate its requests run.
pub const QUEUE_TIME: Duration = Duration::from_secs(3);

/// Requests a new peer gets at first.
pub const SLOW_START: u32 = 4;

/// A peer that has requests of ours and sends no block for this long is
/// snubbed: its requests go to others, and it gets one at a time.
pub const SNUB_AFTER: Duration = Duration::from_secs(20);

/// A request that this many blocks asked for after it overtook is taken
/// for dropped and asked again (as libtorrent does): peers answer in
/// order, and one that drops a request says nothing without the fast
/// extension.
pub const SKIPPED_AS_LOST: u8 = 4;

/// A peer that sends nothing at all for this long (not even the
/// keep-alive every client sends each two minutes) is dropped.
pub const IDLE_AFTER: Duration = Duration::from_secs(150);

/// What a peer sent, read and checked by its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// Nothing but a sign of life.
    KeepAlive,
    /// It will not answer our requests.
    Choke,
    /// It will.
    Unchoke,
    /// It wants our pieces.
    Interested,
    /// It wants none.
    NotInterested,
    /// It has piece `index` now.
    Have(u32),
    /// Its pieces, right after the handshake.
    Bitfield(Bitfield),
    /// It asks us for a block.
    Request(Block),
    /// A block, with its bytes.
    Piece {
        /// Which block.
        block: Block,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// It withdraws a request.
    Cancel(Block),
    /// Its extension handshake (BEP 10).
    Extensions(ExtensionHandshake),
    /// A message we read and ignore (`port`, an extension we do not
    /// speak).
    Ignored,
}

/// What we send a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// Our pieces, as the first message.
    Bitfield(Bitfield),
    /// Our extension handshake (BEP 10).
    Extensions,
    /// We will not answer its requests (those waiting are dropped).
    Choke,
    /// We will.
    Unchoke,
    /// We want pieces it has.
    Interested,
    /// We want none.
    NotInterested,
    /// Send us this block.
    Request(Block),
    /// We no longer want it.
    Cancel(Block),
    /// We have piece `index` now.
    Have(u32),
}

/// A connected peer.
#[derive(Debug)]
pub struct Peer {
    /// Where it is.
    pub addr: SocketAddr,
    /// Its pieces.
    pub bits: Bitfield,
    /// Whether it may still send its bitfield (only as its first message).
    pub bitfield_allowed: bool,
    /// Whether it chokes us (every peer does at first).
    pub choking_us: bool,
    /// Whether we told it we are interested.
    pub interested: bool,
    /// How many of its pieces we lack: kept as bitfields, `have`s and our
    /// verified pieces come, so that interest is never a scan of every
    /// piece.
    pub wanted: u32,
    /// Blocks asked for and not received, oldest first.
    pub in_flight: InFlight,
    /// Its `reqq`: the requests it queues at most.
    pub reqq: u32,
    /// When it last sent anything.
    pub last_message: Instant,
    /// When it last sent a block we asked for (or was last asked, while
    /// it had nothing to send).
    pub last_block: Instant,
    /// Whether it is snubbed (see [`SNUB_AFTER`]).
    pub snubbed: bool,
    /// Pieces it sent blocks of that failed their hash.
    pub failed_pieces: u32,
    /// Whether it told us it wants our pieces.
    pub interested_in_us: bool,
    /// Whether we choke it (every peer is choked at first).
    pub choked_by_us: bool,
    /// When its connection opened.
    pub connected_at: Instant,
    /// When it last sent a block we asked for, if ever.
    pub last_piece: Option<Instant>,
    /// Bytes of blocks we sent it.
    pub uploaded: u64,
    /// Requests it gets at once.
    target: u32,
    slow_start: bool,
    /// Bytes received since the last tick, and in the ticks before it.
    received: u64,
    rate: Rate,
    /// Bytes we sent it since the last tick, and in the ticks before it.
    sent: u64,
    upload_rate: Rate,
}

impl Peer {
    /// A peer just connected, with `pieces` pieces in the torrent.
    pub fn new(addr: SocketAddr, pieces: u32, now: Instant) -> Peer {
        Peer {
            addr,
            bits: Bitfield::new(pieces),
            bitfield_allowed: true,
            choking_us: true,
            interested: false,
            wanted: 0,
            in_flight: InFlight::default(),
            reqq: DEFAULT_PEER_REQQ,
            last_message: now,
            last_block: now,
            snubbed: false,
            failed_pieces: 0,
            interested_in_us: false,
            choked_by_us: true,
            connected_at: now,
            last_piece: None,
            uploaded: 0,
            target: SLOW_START,
            slow_start: true,
            received: 0,
            rate: Rate::default(),
            sent: 0,
            upload_rate: Rate::default(),
        }
    }

    /// Whether it has every piece.
    pub fn is_seed(&self) -> bool {
        self.bits.is_complete()
    }

    /// How many more requests it may get now: never as many as its
    /// `reqq`, one fewer, since Transmission 3 drops (without a word, when
    /// the fast extension is off) the request that fills its queue.
    pub fn room(&self) -> usize {
        let cap = self.reqq.saturating_sub(1).max(1);
        let target = if self.snubbed {
            1
        } else {
            self.target.min(cap)
        };
        (target as usize).saturating_sub(self.in_flight.len())
    }

    /// Requests it gets at once, now.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// Bytes per second it sent over the last few seconds.
    pub fn rate(&self) -> u64 {
        self.rate.per_second()
    }

    /// Bytes per second we sent it over the last few seconds.
    pub fn upload_rate(&self) -> u64 {
        self.upload_rate.per_second()
    }

    /// Its connection has sent it `total` bytes of blocks so far.
    pub fn set_uploaded(&mut self, total: u64) {
        self.sent += total.saturating_sub(self.uploaded);
        self.uploaded = self.uploaded.max(total);
    }

    /// A block arrived: if we asked for it, it is no longer in flight,
    /// and in slow start the pipeline grows by one. Returns the requests
    /// it overtook too often (see [`SKIPPED_AS_LOST`]), no longer in
    /// flight: to be asked again.
    pub fn block_arrived(&mut self, block: &Block, now: Instant) -> Vec<Block> {
        let Some(lost) = self.in_flight.arrived(block) else {
            return Vec::new();
        };
        self.received += u64::from(block.length);
        self.last_block = now;
        self.last_piece = Some(now);
        self.snubbed = false;
        if self.slow_start {
            self.target = (self.target + 1).min(self.reqq);
        }
        lost
    }

    /// Once a second: measures the rate and sets the pipeline from it.
    /// Slow start ends when the rate stops growing.
    pub fn tick(&mut self) {
        self.upload_rate.push(std::mem::take(&mut self.sent));
        let before = self.rate.per_second();
        self.rate.push(std::mem::take(&mut self.received));
        let now = self.rate.per_second();
        let from_rate = (now * QUEUE_TIME.as_secs()).div_ceil(u64::from(MAX_BLOCK));
        let from_rate = u32::try_from(from_rate).unwrap_or(u32::MAX);
        if self.slow_start && self.rate.samples >= 2 && now * 10 <= before * 11 && now > 0 {
            self.slow_start = false;
        }
        if !self.slow_start {
            self.target = from_rate.clamp(2, self.reqq.max(2));
        }
    }

    /// Takes its extension handshake into account.
    pub fn extensions(&mut self, handshake: &ExtensionHandshake) {
        self.reqq = handshake.max_outstanding();
        self.target = self.target.min(self.reqq);
    }
}

/// The requests a peer has not answered yet, oldest first, each with how
/// many later ones were answered before it.
#[derive(Debug, Default)]
pub struct InFlight {
    requests: Vec<(Block, u8)>,
}

impl InFlight {
    /// How many.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Whether `block` is one.
    pub fn contains(&self, block: &Block) -> bool {
        self.requests.iter().any(|(b, _)| b == block)
    }

    /// The blocks, oldest first.
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.requests.iter().map(|(b, _)| b)
    }

    /// Adds requests just sent.
    pub fn extend(&mut self, blocks: &[Block]) {
        self.requests.extend(blocks.iter().map(|b| (*b, 0)));
    }

    /// Removes `block` (cancelled); whether it was there.
    pub fn remove(&mut self, block: &Block) -> bool {
        let at = self.requests.iter().position(|(b, _)| b == block);
        at.map(|at| self.requests.remove(at)).is_some()
    }

    /// Removes them all.
    pub fn take(&mut self) -> Vec<Block> {
        self.requests.drain(..).map(|(b, _)| b).collect()
    }

    /// `block` arrived: `None` if it was not asked for, else the older
    /// requests it overtook once too often, removed.
    fn arrived(&mut self, block: &Block) -> Option<Vec<Block>> {
        let at = self.requests.iter().position(|(b, _)| b == block)?;
        self.requests.remove(at);
        let mut lost = Vec::new();
        let mut index = 0;
        self.requests.retain_mut(|(b, skipped)| {
            index += 1;
            if index > at {
                return true;
            }
            *skipped += 1;
            if *skipped >= SKIPPED_AS_LOST {
                lost.push(*b);
                return false;
            }
            true
        });
        Some(lost)
    }
}

/// Bytes a peer sent in each of the last few one-second ticks.
#[derive(Debug, Default)]
struct Rate {
    ticks: [u64; 3],
    next: usize,
    samples: u32,
}

impl Rate {
    fn push(&mut self, bytes: u64) {
        self.ticks[self.next] = bytes;
        self.next = (self.next + 1) % self.ticks.len();
        self.samples = self.samples.saturating_add(1);
    }

    fn per_second(&self) -> u64 {
        let used = (self.samples as usize).min(self.ticks.len());
        if used == 0 {
            return 0;
        }
        self.ticks.iter().sum::<u64>() / used as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u32) -> Block {
        Block {
            piece: 0,
            begin: n * MAX_BLOCK,
            length: MAX_BLOCK,
        }
    }

    #[test]
    fn the_pipeline_grows_in_slow_start_then_follows_the_rate() {
        let now = Instant::now();
        let mut peer = Peer::new(([10, 0, 0, 1], 6881).into(), 8, now);
        assert_eq!(peer.room(), SLOW_START as usize);
        let blocks: Vec<Block> = (0..10).map(block).collect();
        peer.in_flight.extend(&blocks);
        for block in &blocks {
            assert!(peer.block_arrived(block, now).is_empty());
        }
        assert_eq!(peer.target(), SLOW_START + 10);
        assert!(peer.in_flight.is_empty());
        peer.block_arrived(&block(3), now);
        assert_eq!(peer.target(), SLOW_START + 10, "not in flight any more");
        // 1 MiB/s, steady: 3 s of it is 192 blocks.
        for _ in 0..3 {
            peer.received = 1 << 20;
            peer.tick();
        }
        assert_eq!(peer.rate(), 1 << 20);
        assert_eq!(peer.target(), 192);
        // Never past the peer's reqq.
        peer.extensions(&ExtensionHandshake {
            extensions: Vec::new(),
            client: None,
            reqq: Some(100),
            port: None,
        });
        assert_eq!(peer.room(), 99, "one under its reqq");
        peer.received = 1 << 20;
        peer.tick();
        assert_eq!(peer.target(), 100);
        // A snubbed peer gets one request.
        peer.snubbed = true;
        assert_eq!(peer.room(), 1);
    }

    #[test]
    fn a_request_overtaken_four_times_is_taken_for_lost() {
        let now = Instant::now();
        let mut peer = Peer::new(([10, 0, 0, 1], 6881).into(), 8, now);
        let blocks: Vec<Block> = (0..8).map(block).collect();
        peer.in_flight.extend(&blocks);
        // Block 1 never comes; 2, 3 and 4 overtake it, then 5 does.
        for n in 2..5 {
            assert!(peer.block_arrived(&block(n), now).is_empty());
        }
        assert!(peer.block_arrived(&block(0), now).is_empty());
        assert_eq!(peer.block_arrived(&block(5), now), [block(1)]);
        assert!(!peer.in_flight.contains(&block(1)));
        assert_eq!(peer.in_flight.len(), 2);
    }

    #[test]
    fn a_slow_peer_gets_few_requests() {
        let now = Instant::now();
        let mut peer = Peer::new(([10, 0, 0, 1], 6881).into(), 8, now);
        for _ in 0..4 {
            peer.received = 16 << 10;
            peer.tick();
        }
        assert_eq!(peer.target(), 3);
    }
}
