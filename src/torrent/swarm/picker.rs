//! Which blocks to ask a peer for next: the piece picker.
//!
//! Owns the state of every piece and of every block of the pieces begun,
//! and how many connected peers have each piece (its availability). The
//! order, as libtorrent and Transmission pick:
//!
//! 1. blocks of pieces already begun, so that pieces are finished (and
//!    verified, and told to peers) before new ones start;
//! 2. a new piece: at random while we have fewer than [`RANDOM_FIRST`]
//!    (the rarest piece is the one every newcomer would ask the same few
//!    peers for), the rarest among the peer's pieces afterwards;
//! 3. endgame: once every missing block is requested from someone, blocks
//!    already requested from other peers, so that one slow peer does not
//!    hold back the last piece; the caller cancels the duplicates when
//!    the first copy arrives.
//!
//! Leaves to others who the peers are, how many requests each gets (the
//! swarm's pipelining) and where blocks are written.

use std::collections::BTreeMap;

use crate::pieces::{Layout, PieceSet};
use crate::torrent::wire::{Bitfield, MAX_BLOCK};
use crate::util::random::Xorshift;

/// Pieces picked at random before rarest first takes over.
pub const RANDOM_FIRST: u32 = 4;

/// A block: `length` bytes of piece `piece` from `begin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    /// The piece.
    pub piece: u32,
    /// Its offset in the piece.
    pub begin: u32,
    /// Its length: [`MAX_BLOCK`], or less for the last block of the last
    /// piece.
    pub length: u32,
}

/// Who asked for what, as the picker keeps it: a key per connection.
pub type PeerKey = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PieceState {
    Missing,
    /// Some blocks requested or received: its blocks are in `begun`.
    Begun,
    /// Every block received; waiting for its hash.
    Hashing,
    Have,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockState {
    Missing,
    /// Requested from this many peers (more than one in endgame only).
    Requested(u8),
    Received,
}

/// A piece begun: its blocks, and who sent them (for a piece that fails
/// its hash).
#[derive(Debug)]
struct Begun {
    blocks: Vec<BlockState>,
    received: u32,
    senders: Vec<PeerKey>,
    /// A piece that failed with blocks from several peers is fetched
    /// again from one alone, so that a second failure names the culprit:
    /// the peer it is taken from, while it stays connected.
    owner: Option<PeerKey>,
    exclusive: bool,
}

impl Begun {
    /// Whether `peer` may be asked for blocks of it.
    fn open_to(&self, peer: PeerKey) -> bool {
        !self.exclusive || self.owner.is_none_or(|owner| owner == peer)
    }
}

/// What a received block did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// It was needed, and its piece still misses blocks.
    Stored,
    /// It was the last block of its piece: hash the piece.
    PieceComplete,
    /// We had it already (an endgame duplicate, or a block sent after we
    /// cancelled it): not written.
    Duplicate,
}

/// The picker of one torrent.
#[derive(Debug)]
pub struct Picker {
    layout: Layout,
    states: Vec<PieceState>,
    availability: Vec<u16>,
    begun: BTreeMap<u32, Begun>,
    have: u32,
    /// Pieces to fetch from one peer alone (see [`Begun::owner`]).
    exclusive: std::collections::HashSet<u32>,
    /// Missing blocks nobody has been asked for, over every piece: endgame
    /// starts when it reaches 0.
    unrequested: u64,
    /// Bytes received and kept: those of pieces had, of pieces hashing and
    /// of the blocks received of pieces begun.
    bytes: u64,
    random: Xorshift,
}

impl Picker {
    /// A picker for `layout`, with the pieces of `have` already had.
    pub fn new(layout: Layout, have: &PieceSet) -> Picker {
        let pieces = u32::try_from(layout.pieces()).expect("a torrent has under 2^32 pieces");
        let mut picker = Picker {
            layout,
            states: vec![PieceState::Missing; pieces as usize],
            availability: vec![0; pieces as usize],
            begun: BTreeMap::new(),
            have: 0,
            exclusive: std::collections::HashSet::new(),
            unrequested: 0,
            bytes: 0,
            random: Xorshift::new(),
        };
        for index in 0..pieces {
            if have.contains(u64::from(index)) {
                picker.states[index as usize] = PieceState::Have;
                picker.have += 1;
                picker.bytes += picker.piece_length(index);
            } else {
                picker.unrequested += u64::from(picker.blocks_in(index));
            }
        }
        picker
    }

    /// The number of pieces.
    pub fn pieces(&self) -> u32 {
        self.states.len() as u32
    }

    /// Pieces had (verified).
    pub fn have_count(&self) -> u32 {
        self.have
    }

    /// Whether piece `index` is had (verified).
    pub fn has(&self, index: u32) -> bool {
        self.states.get(index as usize) == Some(&PieceState::Have)
    }

    /// Whether every piece is had.
    pub fn is_complete(&self) -> bool {
        self.have == self.pieces()
    }

    /// Bytes received and kept, verified or not.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether every missing block has been requested from someone.
    pub fn in_endgame(&self) -> bool {
        self.unrequested == 0 && !self.is_complete()
    }

    /// Our pieces as a bitfield, to send to a peer.
    pub fn bitfield(&self) -> Bitfield {
        let mut bits = Bitfield::new(self.pieces());
        for index in 0..self.pieces() {
            if self.has(index) {
                bits.set(index, true);
            }
        }
        bits
    }

    /// Pieces had, as a set.
    pub fn have_set(&self) -> PieceSet {
        let mut set = PieceSet::new();
        for index in 0..self.pieces() {
            if self.has(index) {
                set.insert(u64::from(index));
            }
        }
        set
    }

    /// A connected peer has the pieces of `bits`.
    pub fn add_availability(&mut self, bits: &Bitfield) {
        for index in 0..self.pieces().min(bits.pieces()) {
            if bits.get(index) {
                self.piece_available(index);
            }
        }
    }

    /// A connected peer has piece `index` (a `have`).
    pub fn piece_available(&mut self, index: u32) {
        if let Some(count) = self.availability.get_mut(index as usize) {
            *count = count.saturating_add(1);
        }
    }

    /// A peer with the pieces of `bits` is gone.
    pub fn remove_availability(&mut self, bits: &Bitfield) {
        for index in 0..self.pieces().min(bits.pieces()) {
            if bits.get(index) {
                let count = &mut self.availability[index as usize];
                *count = count.saturating_sub(1);
            }
        }
    }

    /// How many pieces of `bits` we lack.
    pub fn count_wanted(&self, bits: &Bitfield) -> u32 {
        (0..self.pieces().min(bits.pieces()))
            .filter(|&index| bits.get(index) && !self.has(index))
            .count() as u32
    }

    /// Whether we lack piece `index`.
    pub fn wants(&self, index: u32) -> bool {
        (index as usize) < self.states.len() && !self.has(index)
    }

    /// Up to `count` blocks to request from peer `peer`, which has
    /// `bits`, added to `out`; `requested` says whether that peer has a
    /// block in flight already (endgame never asks a peer twice for one
    /// block).
    pub fn pick(
        &mut self,
        peer: PeerKey,
        bits: &Bitfield,
        count: usize,
        requested: impl Fn(&Block) -> bool,
        out: &mut Vec<Block>,
    ) {
        let goal = out.len() + count;
        // Pieces begun first, oldest index first.
        let begun: Vec<u32> = self
            .begun
            .iter()
            .filter(|(&index, begun)| bits.get(index) && begun.open_to(peer))
            .map(|(&index, _)| index)
            .collect();
        for index in begun {
            self.take_missing(index, peer, goal, out);
            if out.len() >= goal {
                return;
            }
        }
        while out.len() < goal {
            let Some(index) = self.new_piece(bits) else {
                break;
            };
            self.begin(index);
            self.take_missing(index, peer, goal, out);
        }
        if out.len() < goal && self.in_endgame() {
            self.endgame(peer, bits, goal, requested, out);
        }
    }

    /// A block requested is no longer expected from a peer (it choked us,
    /// left, or took too long): it may be asked of another.
    pub fn unrequest(&mut self, block: &Block) {
        let Some(slot) = self.block_slot(block) else {
            return;
        };
        match *slot {
            BlockState::Requested(1) => {
                *slot = BlockState::Missing;
                self.unrequested += 1;
            }
            BlockState::Requested(n) => *slot = BlockState::Requested(n - 1),
            BlockState::Missing | BlockState::Received => {}
        }
    }

    /// A block arrived from `from`. A block of a piece that is not begun,
    /// or already had, is a duplicate.
    pub fn received(&mut self, block: &Block, from: PeerKey) -> Received {
        let Some(slot) = self.block_slot(block) else {
            return Received::Duplicate;
        };
        let was = std::mem::replace(slot, BlockState::Received);
        match was {
            BlockState::Received => return Received::Duplicate,
            BlockState::Missing => self.unrequested -= 1,
            BlockState::Requested(_) => {}
        }
        self.bytes += u64::from(block.length);
        let begun = self
            .begun
            .get_mut(&block.piece)
            .expect("a slot's piece is begun");
        begun.received += 1;
        if !begun.senders.contains(&from) {
            begun.senders.push(from);
        }
        if begun.received as usize == begun.blocks.len() {
            self.states[block.piece as usize] = PieceState::Hashing;
            return Received::PieceComplete;
        }
        Received::Stored
    }

    /// The hash of piece `index`, whose blocks were all received, matched
    /// (`true`) or not. Returns who sent the blocks of a piece that
    /// failed; the piece is missing again, and when several peers sent
    /// it, it is fetched again from one alone.
    pub fn hashed(&mut self, index: u32, matched: bool) -> Vec<PeerKey> {
        if self.states.get(index as usize) != Some(&PieceState::Hashing) {
            return Vec::new();
        }
        let begun = self.begun.remove(&index).expect("a hashing piece is begun");
        if matched {
            self.states[index as usize] = PieceState::Have;
            self.have += 1;
            self.exclusive.remove(&index);
            return Vec::new();
        }
        if begun.senders.len() > 1 {
            self.exclusive.insert(index);
        }
        self.states[index as usize] = PieceState::Missing;
        self.bytes -= self.piece_length(index);
        self.unrequested += u64::from(self.blocks_in(index));
        begun.senders
    }

    /// Peer `peer` is gone (or choked us): pieces kept for it alone are
    /// open to the next peer that asks.
    pub fn release(&mut self, peer: PeerKey) {
        for begun in self.begun.values_mut() {
            if begun.owner == Some(peer) {
                begun.owner = None;
            }
        }
    }

    /// The blocks of piece `index` received so far are lost (a write
    /// failed): it starts over.
    pub fn forget(&mut self, index: u32) {
        if let Some(begun) = self.begun.remove(&index) {
            let received: u64 = begun
                .blocks
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == BlockState::Received)
                .map(|(i, _)| u64::from(self.block(index, i as u32).length))
                .sum();
            self.bytes -= received;
            let unrequested = begun
                .blocks
                .iter()
                .filter(|b| **b != BlockState::Missing)
                .count();
            self.unrequested += unrequested as u64;
            self.states[index as usize] = PieceState::Missing;
        }
    }

    /// The block `block` names, if it is one of ours: in a piece we have,
    /// at a block boundary, of the block's exact length.
    pub fn is_block(&self, block: &Block) -> bool {
        block.piece < self.pieces()
            && block.begin.is_multiple_of(MAX_BLOCK)
            && block.begin < self.piece_length(block.piece) as u32
            && self.block(block.piece, block.begin / MAX_BLOCK) == *block
    }

    /// The length of piece `index`.
    pub fn piece_length(&self, index: u32) -> u64 {
        let (first, last) = self.layout.range(u64::from(index));
        last - first + 1
    }

    fn blocks_in(&self, index: u32) -> u32 {
        self.piece_length(index).div_ceil(u64::from(MAX_BLOCK)) as u32
    }

    fn block(&self, piece: u32, n: u32) -> Block {
        let begin = n * MAX_BLOCK;
        let length = (self.piece_length(piece) - u64::from(begin)).min(u64::from(MAX_BLOCK));
        Block {
            piece,
            begin,
            length: length as u32,
        }
    }

    fn block_slot(&mut self, block: &Block) -> Option<&mut BlockState> {
        if !self.is_block(block) {
            return None;
        }
        self.begun
            .get_mut(&block.piece)?
            .blocks
            .get_mut((block.begin / MAX_BLOCK) as usize)
    }

    fn begin(&mut self, index: u32) {
        let blocks = self.blocks_in(index) as usize;
        self.states[index as usize] = PieceState::Begun;
        self.begun.insert(
            index,
            Begun {
                blocks: vec![BlockState::Missing; blocks],
                received: 0,
                senders: Vec::new(),
                owner: None,
                exclusive: self.exclusive.contains(&index),
            },
        );
    }

    /// Requests the missing blocks of begun piece `index` for `peer` until
    /// `out` holds `goal`.
    fn take_missing(&mut self, index: u32, peer: PeerKey, goal: usize, out: &mut Vec<Block>) {
        let Some(begun) = self.begun.get_mut(&index) else {
            return;
        };
        if begun.exclusive {
            begun.owner = Some(peer);
        }
        let mut taken = Vec::new();
        for (n, slot) in begun.blocks.iter_mut().enumerate() {
            if out.len() + taken.len() >= goal {
                break;
            }
            if *slot == BlockState::Missing {
                *slot = BlockState::Requested(1);
                taken.push(n as u32);
            }
        }
        self.unrequested -= taken.len() as u64;
        out.extend(taken.into_iter().map(|n| self.block(index, n)));
    }

    /// A piece to begin among those `bits` has: random while we have few,
    /// rarest afterwards (ties broken by where a random scan starts).
    fn new_piece(&mut self, bits: &Bitfield) -> Option<u32> {
        let pieces = self.pieces();
        if pieces == 0 {
            return None;
        }
        let start = (self.random.next_u64() % u64::from(pieces)) as u32;
        let candidates = (0..pieces)
            .map(|i| (start + i) % pieces)
            .filter(|&index| self.states[index as usize] == PieceState::Missing && bits.get(index));
        if self.have < RANDOM_FIRST {
            return candidates.into_iter().next();
        }
        candidates.min_by_key(|&index| self.availability[index as usize])
    }

    /// Endgame: blocks requested from others but not from this peer,
    /// the least requested first.
    fn endgame(
        &mut self,
        peer: PeerKey,
        bits: &Bitfield,
        goal: usize,
        requested: impl Fn(&Block) -> bool,
        out: &mut Vec<Block>,
    ) {
        let mut candidates = Vec::new();
        for (&index, begun) in &self.begun {
            if !bits.get(index) || !begun.open_to(peer) {
                continue;
            }
            for (n, slot) in begun.blocks.iter().enumerate() {
                if let BlockState::Requested(count) = slot {
                    candidates.push((*count, index, n as u32));
                }
            }
        }
        candidates.sort_unstable();
        for (_, index, n) in candidates {
            if out.len() >= goal {
                break;
            }
            let block = self.block(index, n);
            if requested(&block) || out.contains(&block) {
                continue;
            }
            if let Some(BlockState::Requested(count)) = self.block_slot(&block) {
                *count = count.saturating_add(1);
                out.push(block);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u64 = 4 * MAX_BLOCK as u64;

    fn all(pieces: u32) -> Bitfield {
        let mut bits = Bitfield::new(pieces);
        for i in 0..pieces {
            bits.set(i, true);
        }
        bits
    }

    fn only(pieces: u32, have: &[u32]) -> Bitfield {
        let mut bits = Bitfield::new(pieces);
        for &i in have {
            bits.set(i, true);
        }
        bits
    }

    fn pick(picker: &mut Picker, bits: &Bitfield, count: usize) -> Vec<Block> {
        pick_for(picker, 1, bits, count)
    }

    fn pick_for(picker: &mut Picker, peer: PeerKey, bits: &Bitfield, count: usize) -> Vec<Block> {
        let mut out = Vec::new();
        picker.pick(peer, bits, count, |_| false, &mut out);
        out
    }

    #[test]
    fn blocks_cover_each_piece_and_the_last_is_short() {
        // 2.5 pieces: the last has 2 blocks, the second of 8 KiB.
        let length = 2 * PIECE + PIECE / 2 - MAX_BLOCK as u64 / 2;
        let mut picker = Picker::new(Layout::new(length, PIECE), &PieceSet::new());
        let blocks = pick(&mut picker, &all(3), 100);
        assert_eq!(blocks.len(), 4 + 4 + 2);
        let total: u64 = blocks.iter().map(|b| u64::from(b.length)).sum();
        assert_eq!(total, length);
        assert!(blocks.contains(&Block {
            piece: 2,
            begin: MAX_BLOCK,
            length: MAX_BLOCK / 2
        }));
        assert!(blocks.iter().all(|b| picker.is_block(b)));
        assert!(!picker.is_block(&Block {
            piece: 2,
            begin: MAX_BLOCK,
            length: MAX_BLOCK
        }));
    }

    #[test]
    fn a_piece_begun_is_finished_before_another_starts() {
        let mut picker = Picker::new(Layout::new(8 * PIECE, PIECE), &PieceSet::new());
        let first = pick(&mut picker, &all(8), 2);
        assert_eq!(first[0].piece, first[1].piece);
        let next = pick(&mut picker, &all(8), 2);
        assert!(next.iter().all(|b| b.piece == first[0].piece), "{next:?}");
        // A block given back is asked again before a new piece.
        picker.unrequest(&first[0]);
        assert_eq!(pick(&mut picker, &all(8), 1), [first[0]]);
    }

    #[test]
    fn rarest_first_once_a_few_pieces_are_had() {
        let have = PieceSet::first(u64::from(RANDOM_FIRST));
        let pieces = RANDOM_FIRST + 4;
        let mut picker = Picker::new(Layout::new(u64::from(pieces) * PIECE, PIECE), &have);
        let rare = RANDOM_FIRST + 2;
        for _ in 0..3 {
            picker.add_availability(&all(pieces));
        }
        picker.remove_availability(&only(pieces, &[rare]));
        picker.remove_availability(&only(pieces, &[rare]));
        let blocks = pick(&mut picker, &all(pieces), 1);
        assert_eq!(blocks[0].piece, rare);
    }

    #[test]
    fn a_peer_is_only_asked_for_pieces_it_has() {
        let mut picker = Picker::new(Layout::new(8 * PIECE, PIECE), &PieceSet::new());
        let blocks = pick(&mut picker, &only(8, &[5]), 100);
        assert_eq!(blocks.len(), 4);
        assert!(blocks.iter().all(|b| b.piece == 5));
        assert_eq!(picker.count_wanted(&only(8, &[5, 6])), 2);
        assert_eq!(picker.count_wanted(&Bitfield::new(8)), 0);
    }

    #[test]
    fn a_piece_completes_and_its_hash_decides() {
        let mut picker = Picker::new(Layout::new(2 * PIECE, PIECE), &PieceSet::new());
        let blocks = pick(&mut picker, &only(2, &[1]), 4);
        for (i, block) in blocks.iter().enumerate() {
            let want = if i == 3 {
                Received::PieceComplete
            } else {
                Received::Stored
            };
            assert_eq!(picker.received(block, 7 + (i as u64 % 2)), want);
        }
        assert_eq!(picker.received(&blocks[0], 9), Received::Duplicate);
        assert_eq!(picker.bytes(), PIECE);
        // A failed hash names both senders and makes the piece missing.
        let mut senders = picker.hashed(1, false);
        senders.sort();
        assert_eq!(senders, [7, 8]);
        assert_eq!(picker.bytes(), 0);
        let again = pick(&mut picker, &only(2, &[1]), 4);
        assert_eq!(again, blocks);
        for block in &again {
            picker.received(block, 7);
        }
        assert!(picker.hashed(1, true).is_empty());
        assert!(picker.has(1));
        assert_eq!(picker.have_set(), {
            let mut s = PieceSet::new();
            s.insert(1);
            s
        });
    }

    #[test]
    fn endgame_asks_a_second_peer_for_blocks_in_flight() {
        let mut picker = Picker::new(Layout::new(PIECE, PIECE), &PieceSet::new());
        let slow = pick(&mut picker, &all(1), 10);
        assert_eq!(slow.len(), 4);
        assert!(picker.in_endgame());
        // A second peer gets the same blocks, once each.
        let fast = pick(&mut picker, &all(1), 10);
        assert_eq!(fast.len(), 4);
        // The first peer is never asked twice for its own.
        let mut again = Vec::new();
        picker.pick(1, &all(1), 10, |b| slow.contains(b), &mut again);
        assert!(again.is_empty(), "{again:?}");
        // The fast copies arrive; the slow ones are duplicates.
        for block in &fast {
            picker.received(block, 2);
        }
        assert_eq!(picker.received(&slow[0], 1), Received::Duplicate);
        // A duplicate request given back does not make a block missing.
        picker.unrequest(&slow[1]);
        assert!(picker.hashed(0, true).is_empty());
        assert!(picker.is_complete());
    }

    #[test]
    fn given_back_in_endgame_the_block_stays_requested_by_the_other() {
        let mut picker = Picker::new(Layout::new(PIECE, PIECE), &PieceSet::new());
        let a = pick(&mut picker, &all(1), 4);
        let b = pick(&mut picker, &all(1), 4);
        assert_eq!(a, b);
        picker.unrequest(&a[0]);
        assert!(picker.in_endgame(), "still requested from the second peer");
        picker.unrequest(&b[0]);
        assert!(!picker.in_endgame());
        assert_eq!(pick(&mut picker, &all(1), 1), [a[0]]);
    }

    #[test]
    fn pieces_had_at_the_start_are_never_asked_for() {
        let mut have = PieceSet::new();
        have.insert(0);
        have.insert(2);
        let mut picker = Picker::new(Layout::new(3 * PIECE, PIECE), &have);
        assert_eq!(picker.bytes(), 2 * PIECE);
        let blocks = pick(&mut picker, &all(3), 100);
        assert!(blocks.iter().all(|b| b.piece == 1));
        assert_eq!(picker.bitfield().count(), 2);
    }

    #[test]
    fn a_piece_that_failed_from_two_peers_is_fetched_from_one_alone() {
        let mut picker = Picker::new(Layout::new(2 * PIECE, PIECE), &PieceSet::new());
        let blocks = pick_for(&mut picker, 7, &only(2, &[0]), 4);
        for (i, block) in blocks.iter().enumerate() {
            picker.received(block, 7 + i as u64 % 2);
        }
        assert_eq!(picker.hashed(0, false).len(), 2);
        // Peer 9 takes it; peer 7 gets nothing of it, even in endgame.
        assert_eq!(pick_for(&mut picker, 9, &only(2, &[0]), 2).len(), 2);
        assert!(pick_for(&mut picker, 7, &only(2, &[0]), 4).is_empty());
        let rest = pick_for(&mut picker, 9, &only(2, &[0]), 4);
        assert_eq!(rest.len(), 2);
        // Peer 9 leaves, its requests given back: the piece is open to the
        // next one.
        for block in pick_for(&mut picker, 9, &only(2, &[0]), 0)
            .iter()
            .chain(&rest)
        {
            picker.unrequest(block);
        }
        picker.release(9);
        assert_eq!(pick_for(&mut picker, 7, &only(2, &[0]), 4).len(), 2);
    }

    #[test]
    fn a_lost_piece_starts_over() {
        let mut picker = Picker::new(Layout::new(PIECE, PIECE), &PieceSet::new());
        let blocks = pick(&mut picker, &all(1), 2);
        picker.received(&blocks[0], 1);
        picker.forget(0);
        assert_eq!(picker.bytes(), 0);
        assert!(!picker.in_endgame());
        assert_eq!(pick(&mut picker, &all(1), 10).len(), 4);
    }
}
