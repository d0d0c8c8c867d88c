//! Whom we upload to: the choker (BEP 3), as a function of the peers'
//! statistics and the time, with no socket, no thread and no clock of its
//! own. The controller calls [`Choker::unchoked`] once a second and when
//! a peer's interest changes, and sends `unchoke` to the peers it names
//! and `choke` to the others.
//!
//! The rules, as libtorrent and Transmission choose:
//!
//! - Only a peer that is **interested** and is **not a seed** is ever
//!   unchoked: at most [`REGULAR_SLOTS`] in regular slots (the number is
//!   the caller's) plus one **optimistic**.
//! - **While downloading**, the regular slots go to the peers that send us
//!   the most ([`PeerStats::download_rate`]): tit for tat. Ties go to the
//!   peers holding a slot already, then to the lowest key.
//! - **Anti-snubbing**: a peer that sent us no block for
//!   [`SNUBBED_AFTER`] (or none since it connected that long ago) comes
//!   after every other for a regular slot while we download (BitTorrent
//!   mainline's rule: it loses its slot to any peer that sends, and gets
//!   one only when nobody else wants it, since a slot left empty serves
//!   nobody); it may still be the optimistic.
//! - **While seeding**, round robin (libtorrent's `round_robin` seed
//!   choker): a regular peer whose turn is over — it got
//!   [`SHARE_PIECES`] pieces' worth since its turn began, or held the
//!   slot for [`LONGEST_TURN`] — goes behind every waiting peer; the
//!   others are ranked by the rate we upload to them in their regular
//!   slot (nothing, for a peer without one), then by how long ago their
//!   last turn began (never first). A slot its holder does not use goes
//!   to a peer that waited longer. Every interested peer is served in
//!   turn.
//! - The regular slots are **chosen again every [`RECHOKE_EVERY`]**, the
//!   optimistic **every [`OPTIMISTIC_EVERY`]**, drawn at random among the
//!   interested peers without a regular slot, a **newcomer** (connected
//!   for less than [`NEWCOMER_FOR`]) [`NEWCOMER_WEIGHT`] times as likely,
//!   so that new peers get the first pieces they can trade (Transmission
//!   3 and BitTorrent mainline; libtorrent takes the peer that waited
//!   longest, which favours newcomers too). Between those times the
//!   choice stays, except that a slot whose peer left, lost interest or
//!   became a seed is freed, and a free slot is given at once: a leecher
//!   that connects to a lone seeder is unchoked as soon as it is
//!   interested, not at the next round. A switch between downloading and
//!   seeding chooses again at once.
//!
//! Leaves to the controller the messages, the rates (measured over its
//! ticks) and what a peer may request; the choker only names peers.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::util::random::Xorshift;

pub use super::picker::PeerKey;

/// Regular upload slots, by default: BEP 3's four, as libtorrent and
/// Transmission keep per torrent. With the optimistic, five peers are
/// served at once.
pub const REGULAR_SLOTS: usize = 4;

/// The regular slots are chosen again this often: long enough for TCP to
/// reach its rate and for the rates to be measured over the new choice.
pub const RECHOKE_EVERY: Duration = Duration::from_secs(10);

/// The optimistic peer is drawn again this often: three rounds, as BEP 3
/// says, so that it has the time to show what it can send back.
pub const OPTIMISTIC_EVERY: Duration = Duration::from_secs(30);

/// A peer that sent us no block for this long is taken for snubbing us
/// (BitTorrent mainline's anti-snubbing) and comes last for a regular slot
/// while we download.
pub const SNUBBED_AFTER: Duration = Duration::from_secs(60);

/// A peer connected for less than this is a newcomer, more likely to be
/// drawn as the optimistic: it has nothing to trade yet.
pub const NEWCOMER_FOR: Duration = Duration::from_secs(60);

/// How many times as likely a newcomer is drawn as the optimistic
/// (Transmission 3 and BitTorrent mainline).
pub const NEWCOMER_WEIGHT: u64 = 3;

/// While seeding, a regular peer's turn is over once it got this many
/// pieces' worth since its turn began: enough to trade with others (a
/// leecher picks its first four pieces at random, `picker::RANDOM_FIRST`,
/// so that they differ from its neighbours').
pub const SHARE_PIECES: u64 = 4;

/// While seeding, a regular peer's turn is over after this long however
/// little it got, so that a slow peer cannot keep a slot from the others.
pub const LONGEST_TURN: Duration = Duration::from_secs(60);

/// What the choker needs to know of one connected peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStats {
    /// Its connection.
    pub key: PeerKey,
    /// Whether it wants pieces of ours.
    pub interested: bool,
    /// Whether it has every piece: it is never unchoked.
    pub is_seed: bool,
    /// Bytes per second it sends us, over the last few seconds.
    pub download_rate: u64,
    /// Bytes per second we send it, over the last few seconds.
    pub upload_rate: u64,
    /// Bytes we sent it in all.
    pub uploaded: u64,
    /// When it last sent us a block, if ever.
    pub last_block_from: Option<Instant>,
    /// When its handshake completed.
    pub connected_at: Instant,
}

impl PeerStats {
    /// Whether it may be unchoked at all.
    fn wants(&self) -> bool {
        self.interested && !self.is_seed
    }

    /// Whether it has sent us nothing for [`SNUBBED_AFTER`].
    fn snubs_us(&self, now: Instant) -> bool {
        let since = self.last_block_from.unwrap_or(self.connected_at);
        now.saturating_duration_since(since) >= SNUBBED_AFTER
    }

    fn is_newcomer(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.connected_at) < NEWCOMER_FOR
    }
}

/// What we do with the torrent, which decides what a regular slot
/// rewards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// We lack pieces: peers that send us the most are served.
    Downloading,
    /// We have them all: every interested peer is served in turn.
    Seeding,
}

/// The choker of one torrent.
#[derive(Debug)]
pub struct Choker {
    regular_slots: usize,
    /// Bytes a regular peer gets in its turn while seeding.
    share: u64,
    /// What is remembered of each peer of the last call's list. Every
    /// listed peer is entered first thing in [`Choker::unchoked`], so the
    /// steps after it index this map by a listed peer's key.
    seen: BTreeMap<PeerKey, Seen>,
    optimistic: Option<PeerKey>,
    /// When the regular slots are chosen again (`None`: at the next call).
    rechoke_at: Option<Instant>,
    /// When the optimistic is drawn again.
    rotate_at: Option<Instant>,
    mode: Option<Mode>,
    random: Xorshift,
}

/// See [`Choker::seeding_rank`].
type SeedingRank = (bool, Reverse<u64>, Option<Instant>, PeerKey);

#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    /// Its regular slot, while it holds one.
    turn: Option<Turn>,
    /// When its latest turn, regular or optimistic, began.
    last_unchoked: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
struct Turn {
    since: Instant,
    /// [`PeerStats::uploaded`] when it began.
    uploaded_at: u64,
}

impl Choker {
    /// A choker with `regular_slots` regular slots (besides the
    /// optimistic) for a torrent of `piece_length` pieces.
    pub fn new(regular_slots: usize, piece_length: u64) -> Choker {
        Choker {
            regular_slots,
            share: piece_length.saturating_mul(SHARE_PIECES),
            seen: BTreeMap::new(),
            optimistic: None,
            rechoke_at: None,
            rotate_at: None,
            mode: None,
            random: Xorshift::new(),
        }
    }

    /// The same choker drawing its optimistic peers from `seed`, so that
    /// a test sees the same draws every run.
    pub fn with_seed(mut self, seed: u64) -> Choker {
        // xorshift never leaves 0, and a seed of 0 would never leave it.
        self.random = Xorshift::seeded(seed);
        self
    }

    /// The peers to unchoke now, by key in ascending order; every other
    /// peer is to be choked. `peers` are the connected peers, each once.
    /// Cheap: a sort of the peers at most, and only a partial one between
    /// rounds.
    pub fn unchoked(&mut self, peers: &[PeerStats], mode: Mode, now: Instant) -> Vec<PeerKey> {
        // Forget the peers gone, and free the slots of those that no
        // longer want anything from us.
        let mut keys: Vec<PeerKey> = peers.iter().map(|p| p.key).collect();
        keys.sort_unstable();
        self.seen.retain(|key, _| keys.binary_search(key).is_ok());
        for peer in peers {
            let seen = self.seen.entry(peer.key).or_default();
            if !peer.wants() {
                seen.turn = None;
                if self.optimistic == Some(peer.key) {
                    self.optimistic = None;
                }
            }
        }
        if self
            .optimistic
            .is_some_and(|key| keys.binary_search(&key).is_err())
        {
            self.optimistic = None;
        }

        let rechoke = self.mode != Some(mode) || self.rechoke_at.is_none_or(|at| now >= at);
        self.mode = Some(mode);
        if rechoke {
            self.rechoke_at = Some(now + RECHOKE_EVERY);
        }
        self.choose_regular(peers, mode, now, rechoke);
        if self
            .optimistic
            .is_some_and(|key| self.seen[&key].turn.is_some())
        {
            // Promoted to a regular slot: another peer gets the optimistic.
            self.optimistic = None;
        }
        if self.optimistic.is_none() || self.rotate_at.is_some_and(|at| now >= at) {
            self.rotate(peers, now);
        }

        let mut unchoked: Vec<PeerKey> = self
            .seen
            .iter()
            .filter(|(_, seen)| seen.turn.is_some())
            .map(|(&key, _)| key)
            .chain(self.optimistic)
            .collect();
        unchoked.sort_unstable();
        unchoked
    }

    /// The optimistic peer, if there is one.
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    /// Peer `key` left: its slot is free at the next call. (A peer
    /// missing from the next call's list is forgotten as well.)
    pub fn forget(&mut self, key: PeerKey) {
        self.seen.remove(&key);
        if self.optimistic == Some(key) {
            self.optimistic = None;
        }
    }

    /// Fills the regular slots: all of them afresh when `all`, else only
    /// the free ones, from the peers without one.
    fn choose_regular(&mut self, peers: &[PeerStats], mode: Mode, now: Instant, all: bool) {
        let holders = self.seen.values().filter(|s| s.turn.is_some()).count();
        let free = if all {
            self.regular_slots
        } else {
            self.regular_slots.saturating_sub(holders)
        };
        if free == 0 && !all {
            return;
        }
        let mut candidates: Vec<&PeerStats> = peers
            .iter()
            .filter(|p| p.wants())
            .filter(|p| all || self.seen[&p.key].turn.is_none())
            .collect();
        let order = |a: &&PeerStats, b: &&PeerStats| self.compare(a, b, mode, now);
        if candidates.len() > free {
            if free > 0 {
                candidates.select_nth_unstable_by(free - 1, order);
            }
            candidates.truncate(free);
        }
        let mut chosen: Vec<(PeerKey, u64)> =
            candidates.iter().map(|p| (p.key, p.uploaded)).collect();
        chosen.sort_unstable();
        for (key, seen) in self.seen.iter_mut() {
            match chosen.binary_search_by_key(key, |&(k, _)| k) {
                // Chosen again: its turn goes on.
                Ok(_) if seen.turn.is_some() => {}
                Ok(at) => {
                    seen.turn = Some(Turn {
                        since: now,
                        uploaded_at: chosen[at].1,
                    });
                    seen.last_unchoked = Some(now);
                }
                Err(_) if all => seen.turn = None,
                Err(_) => {}
            }
        }
    }

    /// `Less` when `a` deserves a regular slot more than `b`.
    fn compare(&self, a: &PeerStats, b: &PeerStats, mode: Mode, now: Instant) -> Ordering {
        let seen_a = &self.seen[&a.key];
        let seen_b = &self.seen[&b.key];
        match mode {
            Mode::Downloading => (
                a.snubs_us(now),
                Reverse(a.download_rate),
                seen_a.turn.is_none(),
                a.key,
            )
                .cmp(&(
                    b.snubs_us(now),
                    Reverse(b.download_rate),
                    seen_b.turn.is_none(),
                    b.key,
                )),
            Mode::Seeding => self
                .seeding_rank(a, seen_a, now)
                .cmp(&self.seeding_rank(b, seen_b, now)),
        }
    }

    /// While seeding, the lowest ranks first: turns not over before those
    /// over, then the fastest we upload to in a regular slot (a peer
    /// without one counts for nothing: what still arrives after a choke
    /// is no measure, and the optimistic waits its turn like the others),
    /// then the peer whose last turn began longest ago (never first): so a
    /// slot its holder leaves unused goes to a peer that waited longer.
    fn seeding_rank(&self, peer: &PeerStats, seen: &Seen, now: Instant) -> SeedingRank {
        let turn_over = seen.turn.is_some_and(|turn| {
            peer.uploaded.saturating_sub(turn.uploaded_at) >= self.share
                || now.saturating_duration_since(turn.since) >= LONGEST_TURN
        });
        let rate = if seen.turn.is_some() {
            peer.upload_rate
        } else {
            0
        };
        (turn_over, Reverse(rate), seen.last_unchoked, peer.key)
    }

    /// Draws the optimistic among the interested peers without a regular
    /// slot, newcomers weighted; the one it replaces only when no other
    /// can be drawn.
    fn rotate(&mut self, peers: &[PeerStats], now: Instant) {
        let others: Vec<&PeerStats> = peers
            .iter()
            .filter(|p| p.wants() && self.seen[&p.key].turn.is_none())
            .filter(|p| Some(p.key) != self.optimistic)
            .collect();
        let weight = |p: &PeerStats| {
            if p.is_newcomer(now) {
                NEWCOMER_WEIGHT
            } else {
                1
            }
        };
        let total: u64 = others.iter().map(|p| weight(p)).sum();
        if total == 0 {
            // Nobody else: the optimistic (if any) keeps its slot.
            self.rotate_at = self.optimistic.map(|_| now + OPTIMISTIC_EVERY);
            return;
        }
        let mut draw = self.random.next_u64() % total;
        for peer in others {
            let w = weight(peer);
            if draw < w {
                self.optimistic = Some(peer.key);
                self.rotate_at = Some(now + OPTIMISTIC_EVERY);
                if let Some(seen) = self.seen.get_mut(&peer.key) {
                    seen.last_unchoked = Some(now);
                }
                return;
            }
            draw -= w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u64 = 256 << 10;

    /// A choker, its peers and a clock moved by hand.
    struct Bed {
        choker: Choker,
        peers: Vec<PeerStats>,
        now: Instant,
    }

    impl Bed {
        fn new(regular_slots: usize) -> Bed {
            Bed {
                choker: Choker::new(regular_slots, PIECE).with_seed(7),
                peers: Vec::new(),
                now: Instant::now(),
            }
        }

        /// Peers `keys`, interested, connected `ago` before now, each
        /// having just sent a block.
        fn connect(&mut self, keys: impl IntoIterator<Item = PeerKey>, ago: Duration) {
            for key in keys {
                self.peers.push(PeerStats {
                    key,
                    interested: true,
                    is_seed: false,
                    download_rate: 0,
                    upload_rate: 0,
                    uploaded: 0,
                    last_block_from: Some(self.now),
                    connected_at: self.now - ago,
                });
            }
        }

        fn peer(&mut self, key: PeerKey) -> &mut PeerStats {
            self.peers
                .iter_mut()
                .find(|p| p.key == key)
                .expect("a peer of the bed")
        }

        fn unchoked(&mut self, mode: Mode) -> Vec<PeerKey> {
            self.choker.unchoked(&self.peers, mode, self.now)
        }

        /// The unchoked peers without the optimistic.
        fn regular(&mut self, mode: Mode) -> Vec<PeerKey> {
            let mut unchoked = self.unchoked(mode);
            unchoked.retain(|&key| Some(key) != self.choker.optimistic());
            unchoked
        }

        fn advance(&mut self, by: Duration) {
            self.now += by;
        }

        /// Every peer sends us a block now.
        fn all_send(&mut self) {
            let now = self.now;
            for peer in &mut self.peers {
                peer.last_block_from = Some(now);
            }
        }
    }

    const SECOND: Duration = Duration::from_secs(1);
    const LONG_AGO: Duration = Duration::from_secs(3600);

    #[test]
    fn at_most_four_regular_peers_and_one_optimistic() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect(1..=10, LONG_AGO);
        for key in 1..=10 {
            bed.peer(key).download_rate = key * 1000;
        }
        let unchoked = bed.unchoked(Mode::Downloading);
        assert_eq!(unchoked.len(), 5, "{unchoked:?}");
        let optimistic = bed.choker.optimistic().expect("an optimistic");
        assert!((1..=6).contains(&optimistic), "{optimistic}");
        assert_eq!(bed.regular(Mode::Downloading), [7, 8, 9, 10]);
        // And as many while seeding.
        assert_eq!(bed.unchoked(Mode::Seeding).len(), 5);
    }

    #[test]
    fn only_interested_peers_that_are_not_seeds_are_unchoked() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect(1..=3, LONG_AGO);
        bed.peer(1).interested = false;
        bed.peer(2).is_seed = true;
        assert_eq!(bed.unchoked(Mode::Downloading), [3]);
        bed.advance(RECHOKE_EVERY);
        assert_eq!(bed.unchoked(Mode::Seeding), [3]);
    }

    #[test]
    fn the_fastest_senders_hold_the_regular_slots_until_the_next_round() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect(1..=6, LONG_AGO);
        for key in 1..=6 {
            bed.peer(key).download_rate = key * 1000;
        }
        assert_eq!(bed.regular(Mode::Downloading), [3, 4, 5, 6]);
        // Peer 1 becomes the fastest: nothing changes within the round.
        bed.peer(1).download_rate = 100_000;
        for _ in 0..9 {
            bed.advance(SECOND);
            bed.all_send();
            assert_eq!(bed.regular(Mode::Downloading), [3, 4, 5, 6]);
        }
        // At the next round it takes the slowest holder's slot.
        bed.advance(SECOND);
        bed.all_send();
        assert_eq!(bed.regular(Mode::Downloading), [1, 4, 5, 6]);
        assert!(bed.choker.optimistic().is_some_and(|k| k == 2 || k == 3));
    }

    #[test]
    fn among_equal_rates_the_holders_keep_their_slots() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect(1..=6, LONG_AGO);
        assert_eq!(
            bed.regular(Mode::Downloading),
            [1, 2, 3, 4],
            "by key at first"
        );
        // Peer 1 loses interest; its slot goes to 5 or 6 at once.
        bed.peer(1).interested = false;
        bed.advance(SECOND);
        let regular = bed.regular(Mode::Downloading);
        assert_eq!(regular.len(), 4);
        assert!(!regular.contains(&1));
        // Interested again, it waits: at the next round the holders keep
        // their slots over a lower key with the same rate.
        bed.peer(1).interested = true;
        bed.advance(RECHOKE_EVERY);
        bed.all_send();
        assert_eq!(bed.regular(Mode::Downloading), regular);
    }

    #[test]
    fn a_peer_that_sent_nothing_for_a_minute_holds_no_regular_slot() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect(1..=5, LONG_AGO);
        for key in 1..=5 {
            bed.peer(key).download_rate = key * 1000;
        }
        assert_eq!(bed.regular(Mode::Downloading), [2, 3, 4, 5]);
        // Peer 5 stops sending; its rate (as last measured) stays the best.
        for second in 1..=60 {
            bed.advance(SECOND);
            let now = bed.now;
            for key in 1..=4 {
                bed.peer(key).last_block_from = Some(now);
            }
            let regular = bed.regular(Mode::Downloading);
            if second < 60 {
                assert!(regular.contains(&5), "at {second} s: {regular:?}");
            }
        }
        // At the round after a minute, it is out of the regular slots, but
        // as the only peer left, it is the optimistic.
        assert_eq!(bed.regular(Mode::Downloading), [1, 2, 3, 4]);
        assert_eq!(bed.choker.optimistic(), Some(5));
        // It sends again: a regular slot at the next round.
        bed.peer(5).last_block_from = Some(bed.now);
        bed.advance(RECHOKE_EVERY);
        bed.all_send();
        assert_eq!(bed.regular(Mode::Downloading), [2, 3, 4, 5]);
    }

    #[test]
    fn a_snubbing_peer_gets_a_slot_nobody_else_wants() {
        let mut bed = Bed::new(2);
        bed.connect([1, 2], LONG_AGO);
        bed.peer(2).last_block_from = None;
        bed.peer(1).download_rate = 1000;
        // Peer 2 never sent a block, but a slot is free.
        assert_eq!(bed.regular(Mode::Downloading), [1, 2]);
    }

    #[test]
    fn a_peer_that_never_sent_a_block_holds_no_regular_slot_after_a_minute() {
        let mut bed = Bed::new(1);
        bed.connect([1], LONG_AGO);
        bed.connect([2], Duration::ZERO);
        bed.peer(2).last_block_from = None;
        bed.peer(2).download_rate = 1000;
        assert_eq!(bed.regular(Mode::Downloading), [2], "a newcomer may");
        bed.advance(SNUBBED_AFTER);
        bed.all_send();
        bed.peer(2).last_block_from = None;
        assert_eq!(bed.regular(Mode::Downloading), [1]);
        assert_eq!(bed.choker.optimistic(), Some(2));
        // While seeding, it does not matter.
        assert_eq!(bed.regular(Mode::Seeding).len(), 1);
    }

    #[test]
    fn the_optimistic_changes_every_thirty_seconds() {
        let mut bed = Bed::new(1);
        bed.connect(1..=6, LONG_AGO);
        bed.peer(1).download_rate = 1 << 20;
        let mut optimistic = Vec::new();
        for second in 0..300 {
            bed.all_send();
            assert_eq!(bed.regular(Mode::Downloading), [1]);
            let now = bed.choker.optimistic().expect("an optimistic");
            if optimistic.last() != Some(&now) {
                assert_eq!(second % 30, 0, "changed at {second} s");
                optimistic.push(now);
            }
            bed.advance(SECOND);
        }
        assert_eq!(optimistic.len(), 10, "{optimistic:?}");
        let drawn: std::collections::BTreeSet<_> = optimistic.iter().collect();
        assert!(drawn.len() >= 4, "{optimistic:?}");
    }

    #[test]
    fn newcomers_are_three_times_as_likely_to_be_the_optimistic() {
        let now = Instant::now();
        let mut newcomer = 0;
        const DRAWS: u64 = 6000;
        for draw in 0..DRAWS {
            let mut bed = Bed::new(0);
            bed.choker = Choker::new(0, PIECE).with_seed(draw.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            bed.now = now;
            bed.connect(1..=3, LONG_AGO);
            bed.connect([4], Duration::ZERO);
            bed.unchoked(Mode::Downloading);
            if bed.choker.optimistic() == Some(4) {
                newcomer += 1;
            }
        }
        // 3 chances in 6.
        let share = newcomer as f64 / DRAWS as f64;
        assert!((0.45..0.55).contains(&share), "{share}");
    }

    #[test]
    fn the_same_seed_draws_the_same_optimistics() {
        let draws = || {
            let mut bed = Bed::new(1);
            bed.connect(1..=8, LONG_AGO);
            (0..10)
                .map(|_| {
                    bed.all_send();
                    bed.unchoked(Mode::Downloading);
                    bed.advance(OPTIMISTIC_EVERY);
                    bed.choker.optimistic()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(), draws());
    }

    #[test]
    fn seeding_the_slots_go_to_the_peers_we_upload_to_fastest() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect(1..=6, LONG_AGO);
        assert_eq!(bed.regular(Mode::Seeding), [1, 2, 3, 4]);
        let optimistic = bed.choker.optimistic().expect("an optimistic");
        // Each holder takes its share slowly; peer 2 asks for nothing.
        for key in [1, 3, 4] {
            bed.peer(key).upload_rate = 1000 * key;
            bed.peer(key).uploaded = 10_000 * key;
        }
        bed.advance(RECHOKE_EVERY);
        let regular = bed.regular(Mode::Seeding);
        // Peer 2's unused slot goes to the peer that waited (not the
        // optimistic, whose turn began later than never).
        let waiting = if optimistic == 5 { 6 } else { 5 };
        let mut expected = vec![1, 3, 4, waiting];
        expected.sort_unstable();
        assert_eq!(regular, expected);
    }

    /// Serves the bed's peers for `seconds`, each unchoked peer getting
    /// `rate` bytes a second; returns when each was first unchoked and
    /// how many seconds each was unchoked in all.
    fn serve(bed: &mut Bed, seconds: u64, rate: u64) -> BTreeMap<PeerKey, (u64, u64)> {
        let mut served: BTreeMap<PeerKey, (u64, u64)> = BTreeMap::new();
        for second in 0..seconds {
            let unchoked = bed.unchoked(Mode::Seeding);
            assert!(unchoked.len() <= REGULAR_SLOTS + 1);
            for peer in &mut bed.peers {
                if unchoked.contains(&peer.key) {
                    peer.uploaded += rate;
                    peer.upload_rate = rate;
                    served.entry(peer.key).or_insert((second, 0)).1 += 1;
                } else {
                    peer.upload_rate = 0;
                }
            }
            bed.advance(SECOND);
        }
        served
    }

    #[test]
    fn seeding_ten_peers_with_five_slots_each_is_served_within_three_rounds() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect(1..=10, LONG_AGO);
        // A share in a second: turns end at each round.
        let served = serve(&mut bed, 300, PIECE * SHARE_PIECES);
        assert_eq!(served.len(), 10, "{served:?}");
        for (key, (first, total)) in &served {
            assert!(
                *first < 3 * RECHOKE_EVERY.as_secs(),
                "peer {key} first at {first} s"
            );
            // Five slots for ten peers: about half of the time each.
            assert!((100..=200).contains(total), "peer {key}: {total} s of 300");
        }
    }

    #[test]
    fn seeding_a_slow_peer_gives_its_slot_up_after_a_minute() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect(1..=10, LONG_AGO);
        // Far below a share in a minute: only the longest turn ends turns.
        let served = serve(&mut bed, 600, 1000);
        assert_eq!(served.len(), 10, "{served:?}");
        for (key, (first, total)) in &served {
            // Four new peers each minute; six waiting at first.
            let bound = 2 * LONGEST_TURN + RECHOKE_EVERY;
            assert!(*first < bound.as_secs(), "peer {key} first at {first} s");
            assert!((150..=450).contains(total), "peer {key}: {total} s of 600");
        }
    }

    #[test]
    fn a_newly_interested_peer_is_unchoked_at_once() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect([1], Duration::ZERO);
        bed.peer(1).interested = false;
        assert!(bed.unchoked(Mode::Seeding).is_empty());
        bed.advance(Duration::from_millis(100));
        bed.peer(1).interested = true;
        assert_eq!(bed.unchoked(Mode::Seeding), [1], "not at the next round");
        // Likewise with every regular slot taken: the optimistic is free.
        bed.connect(2..=5, Duration::ZERO);
        bed.advance(Duration::from_millis(100));
        assert_eq!(bed.unchoked(Mode::Seeding), [1, 2, 3, 4, 5]);
        bed.connect([6], Duration::ZERO);
        assert_eq!(bed.unchoked(Mode::Seeding).len(), 5, "no slot left");
    }

    #[test]
    fn a_peer_that_loses_interest_is_choked_and_its_slot_goes_to_another() {
        let mut bed = Bed::new(REGULAR_SLOTS);
        bed.connect(1..=6, LONG_AGO);
        assert_eq!(bed.regular(Mode::Seeding), [1, 2, 3, 4]);
        let optimistic = bed.choker.optimistic().expect("an optimistic");
        let waiting = if optimistic == 5 { 6 } else { 5 };
        bed.peer(2).interested = false;
        bed.advance(SECOND);
        let unchoked = bed.unchoked(Mode::Seeding);
        assert!(!unchoked.contains(&2));
        assert!(unchoked.contains(&waiting), "{unchoked:?}");
        assert_eq!(bed.choker.optimistic(), Some(optimistic));
        // A seed likewise.
        bed.peer(3).is_seed = true;
        bed.advance(SECOND);
        assert!(!bed.unchoked(Mode::Seeding).contains(&3));
    }

    #[test]
    fn an_optimistic_that_leaves_is_replaced_at_once() {
        let mut bed = Bed::new(1);
        bed.connect(1..=4, LONG_AGO);
        bed.unchoked(Mode::Downloading);
        let gone = bed.choker.optimistic().expect("an optimistic");
        bed.peers.retain(|p| p.key != gone);
        bed.choker.forget(gone);
        bed.advance(SECOND);
        bed.all_send();
        let unchoked = bed.unchoked(Mode::Downloading);
        assert_eq!(unchoked.len(), 2, "{unchoked:?}");
        assert!(bed.choker.optimistic().is_some_and(|k| k != gone));
    }

    #[test]
    fn finishing_the_download_chooses_again_at_once() {
        let mut bed = Bed::new(2);
        bed.connect(1..=4, LONG_AGO);
        bed.peer(3).download_rate = 2000;
        bed.peer(4).download_rate = 1000;
        assert_eq!(bed.regular(Mode::Downloading), [3, 4]);
        bed.advance(SECOND);
        // Seeding: the peers never served come first.
        let regular = bed.regular(Mode::Seeding);
        assert!(
            regular.iter().all(|k| [1, 2].contains(k)) || regular.len() == 1,
            "{regular:?}"
        );
    }
}
