//! The controller against scripted peers and a clock moved by hand.

use super::*;
use crate::torrent::wire::{Bitfield, ExtensionHandshake, MAX_BLOCK};

const PIECE: u64 = 4 * MAX_BLOCK as u64;

fn addr(n: u8) -> SocketAddr {
    ([10, 0, 0, n], 6881).into()
}

fn all(pieces: u32) -> Bitfield {
    let mut bits = Bitfield::new(pieces);
    for i in 0..pieces {
        bits.set(i, true);
    }
    bits
}

/// A controller, the clock, and what it asked for so far.
struct Bed {
    swarm: Controller,
    now: Instant,
    actions: Vec<Action>,
}

impl Bed {
    fn new(pieces: u64, have: &PieceSet, max_peers: usize) -> Bed {
        Bed {
            swarm: Controller::new(Layout::new(pieces * PIECE, PIECE), have, max_peers),
            now: Instant::now(),
            actions: Vec::new(),
        }
    }

    fn take(&mut self) -> Vec<Action> {
        self.actions.extend(self.swarm.drain());
        std::mem::take(&mut self.actions)
    }

    /// Dials `n` and completes its handshake; returns its key.
    fn connect(&mut self, n: u8) -> PeerKey {
        self.swarm.add_peers([addr(n)], self.now);
        let key = self
            .take()
            .iter()
            .find_map(|a| match a {
                Action::Dial { key, addr: at } if *at == addr(n) => Some(*key),
                _ => None,
            })
            .expect("a dial");
        self.swarm.connected(key, self.now);
        key
    }

    /// A seed: connected, bitfield sent, unchoked us. Returns its key and
    /// the requests it got.
    fn seed(&mut self, n: u8, pieces: u32) -> (PeerKey, Vec<Block>) {
        let key = self.connect(n);
        self.swarm
            .message(key, Incoming::Bitfield(all(pieces)), self.now);
        self.swarm.message(key, Incoming::Unchoke, self.now);
        let requests = requests_to(&self.take(), key);
        (key, requests)
    }

    fn send_block(&mut self, key: PeerKey, block: Block) {
        let data = vec![block.piece as u8; block.length as usize];
        self.swarm
            .message(key, Incoming::Piece { block, data }, self.now);
    }
}

fn requests_to(actions: &[Action], to: PeerKey) -> Vec<Block> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                key,
                out: Out::Request(block),
            } if *key == to => Some(*block),
            _ => None,
        })
        .collect()
}

/// The dials among `actions`.
fn dialled(actions: &[Action]) -> Vec<(PeerKey, SocketAddr)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dial { key, addr } => Some((*key, *addr)),
            _ => None,
        })
        .collect()
}

fn sent(actions: &[Action], to: PeerKey, what: &Out) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Send { key, out } if *key == to && out == what))
}

#[test]
fn a_whole_torrent_from_one_seed_written_verified_and_closed() {
    let mut bed = Bed::new(3, &PieceSet::new(), 50);
    let key = bed.connect(1);
    let actions = bed.take();
    assert!(sent(&actions, key, &Out::Extensions));
    assert!(
        !actions.iter().any(|a| matches!(
            a,
            Action::Send {
                out: Out::Bitfield(_),
                ..
            }
        )),
        "no bitfield when we have nothing"
    );
    bed.swarm.message(key, Incoming::Bitfield(all(3)), bed.now);
    assert!(sent(&bed.take(), key, &Out::Interested));
    bed.swarm.message(key, Incoming::Unchoke, bed.now);
    let mut queue = requests_to(&bed.take(), key);
    assert_eq!(queue.len(), super::super::peer::SLOW_START as usize);
    let mut written = 0u64;
    let mut verified = Vec::new();
    let mut rounds = 0;
    while let Some(block) = queue.pop() {
        rounds += 1;
        assert!(rounds < 100, "no end");
        bed.send_block(key, block);
        for action in bed.take() {
            match action {
                Action::Write { block: b, data } => {
                    assert_eq!(b, block);
                    written += data.len() as u64;
                }
                Action::Verify(piece) => bed.swarm.hashed(piece, true, bed.now),
                Action::Send {
                    out: Out::Request(b),
                    ..
                } => queue.push(b),
                Action::Verified(piece) => verified.push(piece),
                _ => {}
            }
        }
        for action in bed.take() {
            if let Action::Verified(piece) = action {
                verified.push(piece);
            }
        }
    }
    assert_eq!(written, 3 * PIECE);
    verified.sort();
    assert_eq!(verified, [0, 1, 2]);
    assert!(bed.swarm.is_complete());
}

#[test]
fn when_the_last_piece_verifies_every_connection_closes() {
    let mut have = PieceSet::first(2);
    have.insert(2);
    let mut bed = Bed::new(4, &have, 50);
    let (a, requests) = bed.seed(1, 4);
    assert!(requests.iter().all(|b| b.piece == 3));
    for block in requests {
        bed.send_block(a, block);
    }
    assert!(bed.take().contains(&Action::Verify(3)));
    bed.swarm.hashed(3, true, bed.now);
    let actions = bed.take();
    assert!(actions.contains(&Action::Verified(3)));
    assert!(actions.contains(&Action::Close {
        key: a,
        why: "download complete"
    }));
}

#[test]
fn a_peer_that_joins_late_gets_our_bitfield() {
    let mut bed = Bed::new(4, &PieceSet::first(1), 50);
    let key = bed.connect(1);
    let actions = bed.take();
    let mut ours = Bitfield::new(4);
    ours.set(0, true);
    assert_eq!(
        actions[..2],
        [
            Action::Send {
                key,
                out: Out::Bitfield(ours)
            },
            Action::Send {
                key,
                out: Out::Extensions
            }
        ]
    );
}

#[test]
fn a_choke_gives_the_requests_in_flight_to_another_peer() {
    let mut bed = Bed::new(1, &PieceSet::new(), 50);
    let (a, from_a) = bed.seed(1, 1);
    assert_eq!(from_a.len(), 4);
    let (b, from_b) = bed.seed(2, 1);
    // In endgame already (one piece): b is asked for the same blocks.
    assert_eq!(from_b.len(), 4);
    bed.swarm.message(a, Incoming::Choke, bed.now);
    bed.take();
    // The blocks come from b, and nothing more goes to a.
    for block in from_b {
        bed.send_block(b, block);
    }
    let actions = bed.take();
    assert!(actions.contains(&Action::Verify(0)));
    assert!(requests_to(&actions, a).is_empty());
}

#[test]
fn requests_freed_by_a_choke_go_to_the_other_peer() {
    let mut bed = Bed::new(8, &PieceSet::new(), 50);
    let (a, from_a) = bed.seed(1, 8);
    let b = bed.connect(2);
    bed.swarm.message(b, Incoming::Bitfield(all(8)), bed.now);
    bed.take();
    bed.swarm.message(a, Incoming::Choke, bed.now);
    bed.swarm.message(b, Incoming::Unchoke, bed.now);
    let to_b = requests_to(&bed.take(), b);
    assert_eq!(to_b, from_a, "the blocks a held are asked of b first");
}

#[test]
fn endgame_cancels_the_copy_still_in_flight() {
    let mut bed = Bed::new(1, &PieceSet::new(), 50);
    let (a, from_a) = bed.seed(1, 1);
    let (b, from_b) = bed.seed(2, 1);
    assert_eq!(from_a, from_b);
    bed.send_block(b, from_b[0]);
    let actions = bed.take();
    assert!(sent(&actions, a, &Out::Cancel(from_b[0])));
    // a sends it anyway: a duplicate, not written twice.
    bed.send_block(a, from_b[0]);
    assert!(!bed.take().iter().any(|a| matches!(a, Action::Write { .. })));
}

#[test]
fn a_peer_whose_pieces_fail_twice_alone_is_banned_and_the_piece_refetched() {
    let mut bed = Bed::new(1, &PieceSet::new(), 50);
    let (bad, from_bad) = bed.seed(1, 1);
    let piece = from_bad[0].piece;
    for round in 1..=2 {
        let mut queue = if round == 1 {
            from_bad.clone()
        } else {
            requests_to(&bed.take(), bad)
        };
        assert_eq!(
            queue.len(),
            4,
            "round {round}: the piece is asked of it again"
        );
        while let Some(block) = queue.pop() {
            bed.send_block(bad, block);
        }
        assert!(bed.take().contains(&Action::Verify(piece)));
        bed.swarm.hashed(piece, false, bed.now);
        let actions = bed.take();
        assert!(actions.contains(&Action::Failed(piece)));
        let banned = actions.contains(&Action::Banned(addr(1)));
        assert_eq!(banned, round == 2, "round {round}");
        // What came after the failure: put back for the next round.
        bed.actions = actions;
    }
    assert!(bed
        .take()
        .iter()
        .any(|a| matches!(a, Action::Close { key, .. } if *key == bad)));
    // Never dialled again, even when a tracker names it.
    bed.swarm.add_peers([addr(1)], bed.now);
    assert!(!bed.take().iter().any(|a| matches!(a, Action::Dial { .. })));
    // Another peer gets the piece again.
    let (_, from_good) = bed.seed(2, 1);
    assert_eq!(from_good.len(), 4);
}

/// A one-piece torrent whose blocks came half from seed `a`, half from
/// seed `b`, not yet hashed.
fn piece_sent_by_two_peers() -> (Bed, PeerKey, PeerKey) {
    let mut bed = Bed::new(1, &PieceSet::new(), 50);
    let (a, from_a) = bed.seed(1, 1);
    let (b, _) = bed.seed(2, 1);
    bed.send_block(a, from_a[0]);
    bed.send_block(a, from_a[1]);
    bed.send_block(b, from_a[2]);
    bed.send_block(b, from_a[3]);
    (bed, a, b)
}

#[test]
fn a_piece_that_failed_from_two_peers_is_asked_of_one_alone() {
    let (mut bed, a, b) = piece_sent_by_two_peers();
    bed.take();
    bed.swarm.hashed(0, false, bed.now);
    let actions = bed.take();
    let (to_a, to_b) = (requests_to(&actions, a), requests_to(&actions, b));
    assert!(
        to_a.is_empty() != to_b.is_empty(),
        "one peer only: {to_a:?} {to_b:?}"
    );
    assert_eq!(to_a.len() + to_b.len(), 4);
}

#[test]
fn one_failure_shared_with_another_peer_is_not_enough_to_ban() {
    let (mut bed, _, _) = piece_sent_by_two_peers();
    assert!(bed.take().contains(&Action::Verify(0)));
    bed.swarm.hashed(0, false, bed.now);
    let actions = bed.take();
    assert!(!actions.iter().any(|a| matches!(a, Action::Banned(_))));
    assert_eq!(bed.swarm.counts().connected, 2);
}

#[test]
fn a_snubbed_peers_requests_go_elsewhere_and_it_is_asked_one_at_a_time() {
    let mut bed = Bed::new(8, &PieceSet::new(), 50);
    let (slow, from_slow) = bed.seed(1, 8);
    let fast = bed.connect(2);
    bed.swarm.message(fast, Incoming::Bitfield(all(8)), bed.now);
    bed.now += SNUB_AFTER;
    bed.swarm.tick(bed.now);
    bed.swarm.message(fast, Incoming::Unchoke, bed.now);
    let actions = bed.take();
    for block in &from_slow[1..] {
        assert!(sent(&actions, slow, &Out::Cancel(*block)));
    }
    let to_fast = requests_to(&actions, fast);
    assert!(
        from_slow[1..].iter().all(|b| to_fast.contains(b)),
        "{to_fast:?}"
    );
}

#[test]
fn a_later_bitfield_says_what_the_peer_has_now() {
    // aria2c sends a bitfield in place of 20 haves or more.
    let mut bed = Bed::new(4, &PieceSet::new(), 50);
    let key = bed.connect(1);
    bed.swarm.message(
        key,
        Incoming::Extensions(ExtensionHandshake::ours(None)),
        bed.now,
    );
    bed.swarm.message(key, Incoming::Have(2), bed.now);
    let mut three = Bitfield::new(4);
    for i in [0, 2, 3] {
        three.set(i, true);
    }
    bed.swarm.message(key, Incoming::Bitfield(three), bed.now);
    bed.swarm.message(key, Incoming::Unchoke, bed.now);
    let actions = bed.take();
    assert!(!actions.iter().any(|a| matches!(a, Action::Close { .. })));
    let asked = requests_to(&actions, key);
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|b| b.piece != 1), "{asked:?}");
    // Its pieces count once each, as the picker's rarity shows: another
    // bitfield replaces, never adds.
    bed.swarm.message(key, Incoming::Bitfield(all(4)), bed.now);
    assert_eq!(bed.swarm.counts().seeds, 1);
    assert!(!bed.take().iter().any(|a| matches!(a, Action::Close { .. })));
}

#[test]
fn a_block_that_is_not_the_torrents_closes_the_connection() {
    let mut bed = Bed::new(2, &PieceSet::new(), 50);
    let (key, _) = bed.seed(1, 2);
    let bogus = Block {
        piece: 0,
        begin: 5,
        length: 100,
    };
    bed.send_block(key, bogus);
    assert!(bed
        .take()
        .iter()
        .any(|a| matches!(a, Action::Close { key: k, .. } if *k == key)));
}

#[test]
fn dials_stay_within_max_peers_and_a_failed_dial_is_retried_later() {
    let mut bed = Bed::new(4, &PieceSet::new(), 2);
    bed.swarm.add_peers((1..=5).map(addr), bed.now);
    let dials = dialled(&bed.take());
    assert_eq!(dials.len(), 2);
    assert_eq!(bed.swarm.counts().known, 5);
    // The first fails: the third address is dialled in its place.
    bed.swarm.closed(dials[0].0, bed.now);
    let next = dialled(&bed.take());
    assert_eq!(next.iter().map(|d| d.1).collect::<Vec<_>>(), [addr(3)]);
}

#[test]
fn an_address_that_failed_is_dialled_again_after_a_wait() {
    let mut bed = Bed::new(4, &PieceSet::new(), 2);
    bed.swarm.add_peers([addr(1)], bed.now);
    let Some(Action::Dial { key, .. }) = bed.take().pop() else {
        panic!("a dial")
    };
    bed.swarm.closed(key, bed.now);
    bed.swarm.tick(bed.now);
    assert!(!bed.take().iter().any(|a| matches!(a, Action::Dial { .. })));
    bed.now += Duration::from_secs(16);
    bed.swarm.tick(bed.now);
    assert!(bed
        .take()
        .iter()
        .any(|a| matches!(a, Action::Dial { addr: at, .. } if *at == addr(1))));
}

#[test]
fn short_of_peers_it_asks_the_trackers_for_more() {
    let mut bed = Bed::new(4, &PieceSet::new(), 50);
    bed.seed(1, 4);
    bed.swarm.tick(bed.now);
    assert!(bed.take().contains(&Action::WantPeers));
}

#[test]
fn a_silent_peer_is_dropped() {
    let mut bed = Bed::new(4, &PieceSet::new(), 50);
    let key = bed.connect(1);
    bed.now += IDLE_AFTER;
    bed.swarm.tick(bed.now);
    assert!(bed
        .take()
        .iter()
        .any(|a| matches!(a, Action::Close { key: k, .. } if *k == key)));
}

#[test]
fn peers_are_counted_with_their_seeds() {
    let mut bed = Bed::new(4, &PieceSet::new(), 50);
    bed.seed(1, 4);
    let b = bed.connect(2);
    let mut half = Bitfield::new(4);
    half.set(0, true);
    bed.swarm.message(b, Incoming::Bitfield(half), bed.now);
    bed.swarm.add_peers([addr(3)], bed.now);
    assert_eq!(
        bed.swarm.counts(),
        PeerCounts {
            connected: 2,
            known: 3,
            seeds: 1
        }
    );
}

#[test]
fn a_request_the_peer_dropped_is_asked_again_once_overtaken() {
    let mut bed = Bed::new(8, &PieceSet::new(), 50);
    let (key, first) = bed.seed(1, 8);
    // The peer answers every request but the first.
    let dropped = first[0];
    let mut asked_again = false;
    let mut queue: Vec<Block> = first[1..].to_vec();
    for _ in 0..8 {
        let Some(block) = queue.first().copied() else {
            break;
        };
        queue.remove(0);
        bed.send_block(key, block);
        let requests = requests_to(&bed.take(), key);
        asked_again |= requests.contains(&dropped);
        queue.extend(requests.into_iter().filter(|b| *b != dropped));
    }
    assert!(asked_again, "{dropped:?} was never asked again");
}

#[test]
fn our_own_address_is_forgotten_once_reached() {
    let mut bed = Bed::new(4, &PieceSet::new(), 50);
    bed.swarm.add_peers([addr(9)], bed.now);
    let Some(Action::Dial { key, .. }) = bed.take().pop() else {
        panic!("a dial")
    };
    bed.swarm.ourselves(key, bed.now);
    assert_eq!(bed.swarm.counts().known, 0);
    bed.now += Duration::from_secs(60);
    bed.swarm.add_peers([addr(9)], bed.now);
    bed.swarm.tick(bed.now);
    assert!(!bed.take().iter().any(|a| matches!(a, Action::Dial { .. })));
}

/// A seeding swarm of 3 pieces (all had), with a leecher connected that
/// has none and told us it is interested. Returns the bed and its key.
fn seeding_to_a_leecher(goal: Goal) -> (Bed, PeerKey) {
    let mut have = PieceSet::new();
    (0..3).for_each(|i| have.insert(i));
    let mut bed = Bed::new(3, &have, 50);
    bed.swarm = Controller::new(Layout::new(3 * PIECE - 100, PIECE), &have, 50).with_goal(goal);
    let key = bed.connect(1);
    bed.swarm
        .message(key, Incoming::Bitfield(Bitfield::new(3)), bed.now);
    bed.take();
    bed.swarm.message(key, Incoming::Interested, bed.now);
    (bed, key)
}

fn block(piece: u32, begin: u32, length: u32) -> Block {
    Block {
        piece,
        begin,
        length,
    }
}

fn closed(actions: &[Action], which: PeerKey) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { key, .. } if *key == which))
}

#[test]
fn an_interested_peer_is_unchoked_at_once_and_its_requests_are_served() {
    let (mut bed, key) = seeding_to_a_leecher(Goal::Seed);
    let actions = bed.take();
    assert!(sent(&actions, key, &Out::Unchoke), "{actions:?}");
    assert!(
        !sent(&actions, key, &Out::Interested),
        "a seed wants nothing"
    );
    let wanted = block(1, MAX_BLOCK, MAX_BLOCK);
    bed.swarm.message(key, Incoming::Request(wanted), bed.now);
    bed.swarm.message(key, Incoming::Cancel(wanted), bed.now);
    assert_eq!(
        bed.take(),
        [
            Action::Serve { key, block: wanted },
            Action::Withdraw { key, block: wanted }
        ]
    );
    // The last piece is 100 bytes short: its last block is asked in full.
    let last = block(2, 3 * MAX_BLOCK, MAX_BLOCK - 100);
    bed.swarm.message(key, Incoming::Request(last), bed.now);
    assert_eq!(bed.take(), [Action::Serve { key, block: last }]);
}

#[test]
fn a_request_past_its_piece_end_closes_the_peer() {
    let (mut bed, key) = seeding_to_a_leecher(Goal::Seed);
    bed.take();
    let past = block(2, 3 * MAX_BLOCK, MAX_BLOCK);
    bed.swarm.message(key, Incoming::Request(past), bed.now);
    let actions = bed.take();
    assert!(closed(&actions, key), "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Serve { .. })));
}

#[test]
fn a_request_for_a_piece_we_do_not_have_closes_the_peer() {
    let mut have = PieceSet::new();
    have.insert(0);
    let mut bed = Bed::new(3, &have, 50);
    let key = bed.connect(1);
    bed.swarm
        .message(key, Incoming::Bitfield(Bitfield::new(3)), bed.now);
    bed.swarm.message(key, Incoming::Interested, bed.now);
    assert!(sent(&bed.take(), key, &Out::Unchoke));
    bed.swarm
        .message(key, Incoming::Request(block(0, 0, MAX_BLOCK)), bed.now);
    bed.swarm
        .message(key, Incoming::Request(block(1, 0, MAX_BLOCK)), bed.now);
    let actions = bed.take();
    assert!(matches!(actions[0], Action::Serve { .. }), "{actions:?}");
    assert!(closed(&actions, key), "{actions:?}");
}

#[test]
fn requests_of_a_choked_peer_are_dropped_and_it_is_choked_once_not_interested() {
    let (mut bed, key) = seeding_to_a_leecher(Goal::Seed);
    bed.take();
    bed.swarm.message(key, Incoming::NotInterested, bed.now);
    assert!(sent(&bed.take(), key, &Out::Choke));
    // Sent before our choke reached it: dropped, not an offence.
    bed.swarm
        .message(key, Incoming::Request(block(0, 0, MAX_BLOCK)), bed.now);
    assert_eq!(bed.take(), []);
}

#[test]
fn every_peer_hears_of_each_verified_piece() {
    let mut bed = Bed::new(2, &PieceSet::new(), 50);
    let (seed, requests) = bed.seed(1, 2);
    let others: Vec<PeerKey> = (2..5).map(|n| bed.connect(n)).collect();
    for block in requests.iter().filter(|b| b.piece == 0) {
        bed.send_block(seed, *block);
    }
    bed.take();
    bed.swarm.hashed(0, true, bed.now);
    let actions = bed.take();
    for key in others.iter().chain([&seed]) {
        assert!(sent(&actions, *key, &Out::Have(0)), "{key}: {actions:?}");
    }
}

#[test]
fn once_complete_a_seeding_swarm_keeps_its_leechers_and_drops_the_seeds() {
    let mut bed = Bed::new(1, &PieceSet::new(), 50);
    bed.swarm = Controller::new(Layout::new(PIECE, PIECE), &PieceSet::new(), 50)
        .with_goal(Goal::DownloadThenSeed);
    let (seed, requests) = bed.seed(1, 1);
    let leecher = bed.connect(2);
    bed.swarm
        .message(leecher, Incoming::Bitfield(Bitfield::new(1)), bed.now);
    bed.swarm.message(leecher, Incoming::Interested, bed.now);
    for block in requests {
        bed.send_block(seed, block);
    }
    bed.take();
    bed.swarm.hashed(0, true, bed.now);
    assert!(bed.swarm.is_complete() && !bed.swarm.is_done());
    let actions = bed.take();
    assert!(closed(&actions, seed), "{actions:?}");
    assert!(!closed(&actions, leecher), "{actions:?}");
    assert!(sent(&actions, leecher, &Out::Have(0)));
    // Seeding: it is served.
    bed.swarm
        .message(leecher, Incoming::Request(block(0, 0, MAX_BLOCK)), bed.now);
    assert!(matches!(bed.take()[..], [Action::Serve { .. }]));
}

#[test]
fn a_peer_that_dialled_us_counts_as_known() {
    let mut have = PieceSet::new();
    have.insert(0);
    let mut bed = Bed::new(1, &have, 50);
    let key = bed.swarm.accept(addr(9)).expect("room for it");
    assert!(bed.swarm.connected(key, bed.now));
    let counts = bed.swarm.counts();
    assert_eq!((counts.connected, counts.known), (1, 1));
}
