//! The swarm's brain, as a state machine given the time: which peers to
//! dial, what to ask each one for, what to do with what they send, and
//! when a piece is done. No socket and no thread: the driver
//! (`session.rs`) feeds it what happened — a peer connected, a message, a
//! piece hashed, a second passed — and carries out the [`Action`]s it
//! queues, so the tests here play peers and the clock by hand.
//!
//! Owns the picker, the connected peers and their request queues, the
//! addresses known and those banned, and who we choke (the [`Choker`]
//! decides): a request of an unchoked peer for a piece we have is handed
//! to its connection to be sent ([`Action::Serve`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::choker::{self, Choker, PeerStats, REGULAR_SLOTS};
use super::peer::{Incoming, Out, Peer, IDLE_AFTER, SNUB_AFTER};
use super::picker::{Block, PeerKey, Picker, Received};
use crate::pieces::{Layout, PieceSet};

/// Peers connected at once, by default (`--max-peers`).
pub const DEFAULT_MAX_PEERS: usize = 50;

/// Dials under way at once: a dial to a dead address waits for its
/// timeout, and many at once would hold as many threads.
pub const MAX_DIALS: usize = 8;

/// A peer that alone sent this many pieces that failed their hash is
/// dropped and never dialled again.
pub const BAN_AFTER_FAILURES: u32 = 2;

/// An address that could not be dialled is tried again after this, twice
/// as long each time, up to [`MAX_DIAL_ATTEMPTS`] tries.
const REDIAL_AFTER: Duration = Duration::from_secs(15);
const MAX_DIAL_ATTEMPTS: u32 = 4;

/// A peer's queue is refilled once this many requests fit (or when it
/// holds fewer).
const REFILL_BATCH: usize = 8;

/// Fewer connected peers than this (and none waiting to be dialled) asks
/// the trackers for more.
const WANT_PEERS_BELOW: usize = 10;

/// What a swarm is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Every piece, then done: peers are closed once the last is verified.
    Download,
    /// Every piece, then keep uploading to whoever wants them.
    DownloadThenSeed,
    /// Upload the pieces we have; ask for none.
    Seed,
}

/// What the driver must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to `addr`, known from now on as `key`.
    Dial {
        /// The connection's key.
        key: PeerKey,
        /// Where.
        addr: SocketAddr,
    },
    /// Send a message on connection `key`.
    Send {
        /// The connection.
        key: PeerKey,
        /// What.
        out: Out,
    },
    /// Close connection `key`: nothing more from it is wanted.
    Close {
        /// The connection.
        key: PeerKey,
        /// Why, for the log.
        why: &'static str,
    },
    /// Send connection `key` a block it asked for (read from the store
    /// when the connection is ready to send it).
    Serve {
        /// The connection.
        key: PeerKey,
        /// Which block.
        block: Block,
    },
    /// Connection `key` cancelled its request for `block`.
    Withdraw {
        /// The connection.
        key: PeerKey,
        /// Which block.
        block: Block,
    },
    /// Write a block's bytes to the store.
    Write {
        /// Which block.
        block: Block,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// Every block of this piece is written: hash it.
    Verify(u32),
    /// This piece matched its hash: it is ours.
    Verified(u32),
    /// This piece failed its hash and will be fetched again.
    Failed(u32),
    /// This address sent bad pieces and is banned.
    Banned(SocketAddr),
    /// Ask the trackers for more peers.
    WantPeers,
}

/// A connection being dialled or handshaken.
#[derive(Debug)]
struct Pending {
    addr: SocketAddr,
}

/// An address we know of and may dial.
#[derive(Debug, Clone, Copy)]
struct Known {
    attempts: u32,
    not_before: Option<Instant>,
    connected: bool,
}

/// The counts a progress line shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCounts {
    /// Peers connected (handshake done).
    pub connected: usize,
    /// Addresses known: connected (ours or theirs), dialled or waiting.
    pub known: usize,
    /// Connected peers that have every piece.
    pub seeds: usize,
}

/// The swarm of one torrent.
pub struct Controller {
    picker: Picker,
    max_peers: usize,
    next_key: PeerKey,
    pending: HashMap<PeerKey, Pending>,
    peers: BTreeMap<PeerKey, Peer>,
    known: HashMap<SocketAddr, Known>,
    queue: VecDeque<SocketAddr>,
    banned: HashSet<SocketAddr>,
    actions: Vec<Action>,
    picked: Vec<Block>,
    goal: Goal,
    choker: Choker,
    /// The choker's input, kept so that a decision costs no allocation.
    stats: Vec<PeerStats>,
}

impl Controller {
    /// A swarm for a torrent of `layout`, with the pieces of `have`
    /// already had, keeping at most `max_peers` connections.
    pub fn new(layout: Layout, have: &PieceSet, max_peers: usize) -> Controller {
        Controller {
            picker: Picker::new(layout, have),
            max_peers: max_peers.max(1),
            next_key: 0,
            pending: HashMap::new(),
            peers: BTreeMap::new(),
            known: HashMap::new(),
            queue: VecDeque::new(),
            banned: HashSet::new(),
            actions: Vec::new(),
            picked: Vec::new(),
            goal: Goal::Download,
            choker: Choker::new(REGULAR_SLOTS, layout.piece_length()),
            stats: Vec::new(),
        }
    }

    /// Sets what the swarm is for ([`Goal::Download`] by default).
    pub fn with_goal(mut self, goal: Goal) -> Controller {
        self.goal = goal;
        self
    }

    /// Whether the swarm is done: every piece is verified and nothing more
    /// is to be uploaded.
    pub fn is_done(&self) -> bool {
        self.goal == Goal::Download && self.picker.is_complete()
    }

    /// What the swarm is for.
    pub fn goal(&self) -> Goal {
        self.goal
    }

    /// Closes connection `key`, which broke the protocol in a way only its
    /// connection saw (`why`, for the log).
    pub fn drop_peer(&mut self, key: PeerKey, why: &'static str) {
        self.close(key, why);
    }

    /// Connection `key` has sent `total` bytes of blocks so far.
    pub fn uploaded(&mut self, key: PeerKey, total: u64) {
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.set_uploaded(total);
        }
    }

    /// The actions queued since the last call, oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Action> {
        self.actions.drain(..)
    }

    /// Whether every piece is ours.
    pub fn is_complete(&self) -> bool {
        self.picker.is_complete()
    }

    /// Bytes received and kept (verified or waiting for their hash).
    pub fn bytes(&self) -> u64 {
        self.picker.bytes()
    }

    /// The pieces verified.
    pub fn have(&self) -> PieceSet {
        self.picker.have_set()
    }

    /// Peers connected, known and seeding.
    pub fn counts(&self) -> PeerCounts {
        // Peers that dialled us are known too, though no tracker named them.
        let dialled_us = self
            .peers
            .values()
            .filter(|p| !self.known.contains_key(&p.addr))
            .count();
        PeerCounts {
            connected: self.peers.len(),
            known: self.known.len() + dialled_us,
            seeds: self.peers.values().filter(|p| p.is_seed()).count(),
        }
    }

    /// Addresses a tracker gave: new ones are queued for dialling.
    pub fn add_peers(&mut self, addrs: impl IntoIterator<Item = SocketAddr>, now: Instant) {
        for addr in addrs {
            if self.banned.contains(&addr) || self.known.contains_key(&addr) {
                continue;
            }
            self.known.insert(
                addr,
                Known {
                    attempts: 0,
                    not_before: None,
                    connected: false,
                },
            );
            self.queue.push_back(addr);
        }
        self.dial_more(now);
    }

    /// A peer dialled us: the key its connection gets, or `None` when we
    /// have connections enough or it is banned.
    pub fn accept(&mut self, addr: SocketAddr) -> Option<PeerKey> {
        if self.banned.contains(&addr) || self.peers.len() + self.pending.len() >= self.max_peers {
            return None;
        }
        let key = self.new_key();
        self.pending.insert(key, Pending { addr });
        Some(key)
    }

    /// Connection `key` finished its handshake (and sent ours). Returns
    /// `false` when the connection is no longer wanted (it was closed
    /// meanwhile, or the same peer is connected already): close it.
    pub fn connected(&mut self, key: PeerKey, now: Instant) -> bool {
        let Some(pending) = self.pending.remove(&key) else {
            return false;
        };
        let addr = pending.addr;
        if let Some(known) = self.known.get_mut(&addr) {
            known.connected = true;
            known.attempts = 0;
        }
        let peer = Peer::new(addr, self.picker.pieces(), now);
        self.peers.insert(key, peer);
        if self.picker.have_count() > 0 {
            self.send(key, Out::Bitfield(self.picker.bitfield()));
        }
        self.send(key, Out::Extensions);
        true
    }

    /// Connection `key` could not be opened or handshaken, or closed.
    pub fn closed(&mut self, key: PeerKey, now: Instant) {
        let addr = if let Some(pending) = self.pending.remove(&key) {
            pending.addr
        } else if let Some(peer) = self.peers.remove(&key) {
            self.forget_peer(key, &peer);
            peer.addr
        } else {
            return;
        };
        if let Some(known) = self.known.get_mut(&addr) {
            known.connected = false;
            known.attempts += 1;
            if known.attempts >= MAX_DIAL_ATTEMPTS {
                self.known.remove(&addr);
            } else {
                known.not_before = Some(now + REDIAL_AFTER * (1 << (known.attempts - 1)));
                self.queue.push_back(addr);
            }
        }
        self.dial_more(now);
    }

    /// Connection `key` reached ourselves (a tracker names us among the
    /// peers): its address is never dialled again, nor counted.
    pub fn ourselves(&mut self, key: PeerKey, now: Instant) {
        if let Some(pending) = self.pending.remove(&key) {
            self.known.remove(&pending.addr);
            self.banned.insert(pending.addr);
        }
        self.dial_more(now);
    }

    /// A message from connection `key`.
    pub fn message(&mut self, key: PeerKey, message: Incoming, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.last_message = now;
        let first = std::mem::replace(&mut peer.bitfield_allowed, false);
        match message {
            Incoming::KeepAlive | Incoming::Ignored => {}
            Incoming::Interested | Incoming::NotInterested => {
                peer.interested_in_us = message == Incoming::Interested;
                self.rechoke(now);
            }
            Incoming::Request(block) => self.asked(key, block),
            Incoming::Cancel(block) => self.actions.push(Action::Withdraw { key, block }),
            Incoming::Extensions(handshake) => {
                peer.extensions(&handshake);
                // The extension handshake may come before the bitfield.
                peer.bitfield_allowed = first;
            }
            Incoming::Bitfield(bits) => {
                if bits.pieces() != self.picker.pieces() {
                    return self.close(key, "a bitfield of another torrent's size");
                }
                // BEP 3 allows it as the first message only, but aria2c
                // sends one in place of 20 haves or more: what it has now.
                if !first {
                    self.picker.remove_availability(&peer.bits);
                }
                peer.wanted = self.picker.count_wanted(&bits);
                peer.bits = bits;
                self.picker.add_availability(&self.peers[&key].bits);
                if self.both_seeds(key) {
                    return self.close(key, "a seed, as we are");
                }
                self.update_interest(key);
                self.request(key, now);
            }
            Incoming::Have(index) => {
                if index >= self.picker.pieces() {
                    return self.close(key, "a have of a piece past the last");
                }
                if !peer.bits.get(index) {
                    peer.bits.set(index, true);
                    self.picker.piece_available(index);
                    if self.picker.wants(index) {
                        peer.wanted += 1;
                    }
                }
                if self.both_seeds(key) {
                    return self.close(key, "a seed, as we are");
                }
                self.update_interest(key);
                self.request(key, now);
            }
            Incoming::Choke => {
                peer.choking_us = true;
                self.picker.release(key);
                let blocks = peer.in_flight.take();
                for block in &blocks {
                    self.picker.unrequest(block);
                }
                // Blocks freed here may go to peers that have room.
                self.request_all(now);
            }
            Incoming::Unchoke => {
                peer.choking_us = false;
                peer.last_block = now;
                self.request(key, now);
            }
            Incoming::Piece { block, data } => self.block(key, block, data, now),
        }
    }

    /// The hash of piece `index` matched or not.
    pub fn hashed(&mut self, index: u32, matched: bool, now: Instant) {
        let senders = self.picker.hashed(index, matched);
        if matched {
            self.actions.push(Action::Verified(index));
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for key in keys {
                self.send(key, Out::Have(index));
                let peer = self.peers.get_mut(&key).expect("a key just listed");
                if peer.bits.get(index) {
                    peer.wanted = peer.wanted.saturating_sub(1);
                    self.update_interest(key);
                }
            }
            if self.picker.is_complete() {
                let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
                for key in keys {
                    if self.goal == Goal::Download {
                        self.close(key, "download complete");
                    } else if self.both_seeds(key) {
                        self.close(key, "a seed, as we are");
                    }
                }
                self.rechoke(now);
            }
            return;
        }
        self.actions.push(Action::Failed(index));
        // A piece sent by several peers names no culprit: the picker
        // fetches it again from one alone, and that one answers for it.
        if let [key] = senders[..] {
            let Some(peer) = self.peers.get_mut(&key) else {
                return self.request_all(now);
            };
            peer.failed_pieces += 1;
            if peer.failed_pieces >= BAN_AFTER_FAILURES {
                let addr = peer.addr;
                self.banned.insert(addr);
                self.known.remove(&addr);
                self.actions.push(Action::Banned(addr));
                self.close(key, "sent pieces that failed their hash");
            }
        }
        self.request_all(now);
    }

    /// A block could not be written: its piece starts over.
    pub fn lost(&mut self, piece: u32, now: Instant) {
        self.picker.forget(piece);
        self.request_all(now);
    }

    /// Once a second: rates and pipelines, snubbed and idle peers, dials
    /// and requests.
    pub fn tick(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let peer = self.peers.get_mut(&key).expect("a key just listed");
            peer.tick();
            if now.duration_since(peer.last_message) >= IDLE_AFTER {
                self.close(key, "silent for too long");
                continue;
            }
            if !peer.in_flight.is_empty()
                && !peer.snubbed
                && now.duration_since(peer.last_block) >= SNUB_AFTER
            {
                // Its requests are cancelled and asked again (of it too:
                // a peer may have dropped them, as Transmission does with
                // requests it cannot queue); it gets one at a time until it
                // sends a block.
                peer.snubbed = true;
                peer.last_block = now;
                let blocks = peer.in_flight.take();
                for block in &blocks {
                    self.picker.unrequest(block);
                    self.send(key, Out::Cancel(*block));
                }
            }
        }
        self.rechoke(now);
        self.dial_more(now);
        self.request_all(now);
        if !self.picker.is_complete()
            && self.goal != Goal::Seed
            && self.peers.len() < WANT_PEERS_BELOW
            && self.queue.is_empty()
            && self.pending.is_empty()
        {
            self.actions.push(Action::WantPeers);
        }
    }

    fn block(&mut self, key: PeerKey, block: Block, data: Vec<u8>, now: Instant) {
        if !self.picker.is_block(&block) || data.len() != block.length as usize {
            return self.close(key, "a block that is not one of the torrent's");
        }
        let peer = self.peers.get_mut(&key).expect("the caller checked");
        // A block not in flight (sent after a choke or a cancel) is still
        // welcome if we lack it.
        let lost = peer.block_arrived(&block, now);
        for block in &lost {
            self.picker.unrequest(block);
        }
        match self.picker.received(&block, key) {
            Received::Duplicate => {}
            done => {
                self.actions.push(Action::Write { block, data });
                if done == Received::PieceComplete {
                    self.actions.push(Action::Verify(block.piece));
                }
                if self.picker.in_endgame() || done == Received::PieceComplete {
                    self.cancel_duplicates(key, &block);
                }
            }
        }
        // Requests go out in batches, so that a deep pipeline costs a
        // write (and a wake of the writer) per batch, not per block.
        let peer = &self.peers[&key];
        if peer.room() >= REFILL_BATCH || peer.in_flight.len() < REFILL_BATCH {
            self.request(key, now);
        }
    }

    /// Peer `key` asks us for `block`: handed to its connection when we
    /// have the piece and do not choke the peer. A request that arrives
    /// after our choke is dropped (BEP 3); one for a piece we never
    /// announced, or past its piece's end, is a broken peer.
    fn asked(&mut self, key: PeerKey, block: Block) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if peer.choked_by_us {
            return;
        }
        if block.piece >= self.picker.pieces() || !self.picker.has(block.piece) {
            return self.close(key, "asked for a piece we do not have");
        }
        let end = u64::from(block.begin) + u64::from(block.length);
        if end > self.picker.piece_length(block.piece) {
            return self.close(key, "asked for a block past its piece's end");
        }
        self.actions.push(Action::Serve { key, block });
    }

    /// Whether peer `key` has every piece, as we do: neither has anything
    /// for the other.
    fn both_seeds(&self, key: PeerKey) -> bool {
        self.picker.is_complete() && self.peers.get(&key).is_some_and(|p| p.is_seed())
    }

    /// Asks the choker whom to unchoke now, and tells the peers whose
    /// state changed.
    fn rechoke(&mut self, now: Instant) {
        let mode = if self.picker.is_complete() || self.goal == Goal::Seed {
            choker::Mode::Seeding
        } else {
            choker::Mode::Downloading
        };
        self.stats.clear();
        self.stats
            .extend(self.peers.iter().map(|(&key, peer)| PeerStats {
                key,
                interested: peer.interested_in_us,
                is_seed: peer.is_seed(),
                download_rate: peer.rate(),
                upload_rate: peer.upload_rate(),
                uploaded: peer.uploaded,
                last_block_from: peer.last_piece,
                connected_at: peer.connected_at,
            }));
        let unchoked = self.choker.unchoked(&self.stats, mode, now);
        for (&key, peer) in self.peers.iter_mut() {
            let unchoke = unchoked.contains(&key);
            if unchoke == peer.choked_by_us {
                peer.choked_by_us = !unchoke;
                let out = if unchoke { Out::Unchoke } else { Out::Choke };
                self.actions.push(Action::Send { key, out });
            }
        }
    }

    /// In endgame, other peers asked for `block` are told not to send it.
    fn cancel_duplicates(&mut self, from: PeerKey, block: &Block) {
        let mut cancels = Vec::new();
        for (&key, peer) in self.peers.iter_mut() {
            if key == from {
                continue;
            }
            if peer.in_flight.remove(block) {
                cancels.push(key);
            }
        }
        for key in cancels {
            self.send(key, Out::Cancel(*block));
        }
    }

    /// Fills the request queue of every peer that has room.
    fn request_all(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.request(key, now);
        }
    }

    /// Fills the request queue of peer `key`.
    fn request(&mut self, key: PeerKey, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.choking_us || !peer.interested || self.goal == Goal::Seed {
            return;
        }
        let room = peer.room();
        if room == 0 {
            return;
        }
        if peer.in_flight.is_empty() {
            peer.last_block = now;
        }
        let mut picked = std::mem::take(&mut self.picked);
        picked.clear();
        let in_flight = &peer.in_flight;
        self.picker.pick(
            key,
            &peer.bits,
            room,
            |b| in_flight.contains(b),
            &mut picked,
        );
        peer.in_flight.extend(&picked);
        for block in &picked {
            self.actions.push(Action::Send {
                key,
                out: Out::Request(*block),
            });
        }
        self.picked = picked;
    }

    /// Tells peer `key` whether we want what it has, when that changed.
    fn update_interest(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let wants = peer.wanted > 0 && self.goal != Goal::Seed;
        if wants != peer.interested {
            peer.interested = wants;
            let out = if wants {
                Out::Interested
            } else {
                Out::NotInterested
            };
            self.actions.push(Action::Send { key, out });
        }
    }

    fn close(&mut self, key: PeerKey, why: &'static str) {
        if let Some(peer) = self.peers.remove(&key) {
            self.forget_peer(key, &peer);
            if let Some(known) = self.known.get_mut(&peer.addr) {
                known.connected = false;
            }
        }
        self.pending.remove(&key);
        self.actions.push(Action::Close { key, why });
    }

    /// A peer is gone: what it had no longer counts, what it was asked
    /// for may be asked of others.
    fn forget_peer(&mut self, key: PeerKey, peer: &Peer) {
        self.choker.forget(key);
        self.picker.release(key);
        self.picker.remove_availability(&peer.bits);
        for block in peer.in_flight.blocks() {
            self.picker.unrequest(block);
        }
    }

    /// Dials queued addresses while there is room.
    fn dial_more(&mut self, now: Instant) {
        if self.is_done() {
            return;
        }
        let mut waiting = VecDeque::new();
        while self.peers.len() + self.pending.len() < self.max_peers
            && self.pending.len() < MAX_DIALS
        {
            let Some(addr) = self.queue.pop_front() else {
                break;
            };
            let Some(known) = self.known.get(&addr) else {
                continue;
            };
            if known.connected {
                continue;
            }
            if known.not_before.is_some_and(|t| t > now) {
                waiting.push_back(addr);
                continue;
            }
            let key = self.new_key();
            self.pending.insert(key, Pending { addr });
            self.actions.push(Action::Dial { key, addr });
        }
        self.queue.append(&mut waiting);
    }

    fn send(&mut self, key: PeerKey, out: Out) {
        self.actions.push(Action::Send { key, out });
    }

    fn new_key(&mut self) -> PeerKey {
        self.next_key += 1;
        self.next_key
    }
}

#[cfg(test)]
mod tests;
