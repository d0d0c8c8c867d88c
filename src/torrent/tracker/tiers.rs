//! A torrent's trackers in BEP 12's tiers ([`Tiers`]), and the order they
//! are asked in.
//!
//! ```text
//!   tier 0: [ B, A, C ]   each tier shuffled once, when built
//!   tier 1: [ D, E ]
//!   announce: B fails, A answers  →  tier 0: [ A, B, C ]   (first answer wins)
//!   next announce starts again at tier 0, with A
//! ```
//!
//! Owns the list (duplicates dropped, at most [`MAX_TRACKERS`]), the
//! order, and each tracker's `tracker id`. Leaves asking a tracker to the
//! function given to [`Tiers::announce_first`] (so the order is tested
//! with no network) and when to announce to the announcer.

use super::answer::Answer;
use super::error::TrackerError;
use crate::torrent::Metainfo;

/// The most trackers kept from one torrent. Public torrents list a few
/// dozen; asking is one tracker after the other, each for up to half a
/// minute when it does not answer, so a hostile torrent listing thousands
/// would keep the first announce from ever reaching a live one.
pub const MAX_TRACKERS: usize = 100;

/// One tracker of a tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracker {
    url: String,
    tracker_id: Option<Vec<u8>>,
}

impl Tracker {
    /// Its announce URL, as the torrent gives it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `tracker id` its latest answer that had one gave, to send back.
    pub fn tracker_id(&self) -> Option<&[u8]> {
        self.tracker_id.as_deref()
    }
}

/// A torrent's trackers, tier by tier, in the order they are asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tiers {
    tiers: Vec<Vec<Tracker>>,
    /// The tier whose first tracker answered last.
    last: Option<usize>,
}

impl Tiers {
    /// The trackers of a torrent: the tiers of `announce_list` when it
    /// names any tracker (BEP 12: the `announce` key is then ignored), else
    /// `announce` alone. Each tier is shuffled once; blank URLs, empty
    /// tiers and URLs already listed are left out, and only the first
    /// [`MAX_TRACKERS`] kept.
    pub fn new(announce: Option<&str>, announce_list: &[Vec<String>]) -> Tiers {
        Tiers::with_shuffle(announce, announce_list, shuffle)
    }

    /// The trackers of `metainfo` ([`Tiers::new`]).
    pub fn of(metainfo: &Metainfo) -> Tiers {
        Tiers::new(metainfo.announce(), metainfo.announce_list())
    }

    /// [`Tiers::new`], each tier put in order by `shuffle`.
    fn with_shuffle(
        announce: Option<&str>,
        announce_list: &[Vec<String>],
        mut shuffle: impl FnMut(&mut [Tracker]),
    ) -> Tiers {
        let listed = announce_list
            .iter()
            .flatten()
            .any(|url| !url.trim().is_empty());
        let single;
        let lists: &[Vec<String>] = if listed {
            announce_list
        } else {
            single = [announce.into_iter().map(str::to_owned).collect()];
            &single
        };
        let mut seen = std::collections::HashSet::new();
        let mut tiers = Vec::new();
        for list in lists {
            let mut tier = Vec::new();
            for url in list.iter().map(|u| u.trim()) {
                if url.is_empty() || seen.len() >= MAX_TRACKERS || !seen.insert(url) {
                    continue;
                }
                tier.push(Tracker {
                    url: url.to_owned(),
                    tracker_id: None,
                });
            }
            if !tier.is_empty() {
                shuffle(&mut tier);
                tiers.push(tier);
            }
        }
        Tiers { tiers, last: None }
    }

    /// Whether there is no tracker to ask (a trackerless torrent).
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// How many trackers there are.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(Vec::len).sum()
    }

    /// The URLs, tier by tier, in the order they will be asked.
    pub fn urls(&self) -> Vec<Vec<&str>> {
        self.tiers
            .iter()
            .map(|tier| tier.iter().map(Tracker::url).collect())
            .collect()
    }

    /// The tracker that answered last, if one did: the one told that we
    /// stop.
    pub fn last_answered(&self) -> Option<&Tracker> {
        self.tiers.get(self.last?)?.first()
    }

    /// Asks the trackers with `ask` (given each one's URL and tracker id)
    /// in order, tier by tier, until one answers (BEP 12). That one moves
    /// to the front of its tier, keeps the `tracker id` it gave (or the one
    /// it gave before, when it gives none), and the URL and answer are
    /// returned. `None` when none answered, or when `ask` gave up with
    /// [`TrackerError::Cancelled`], which ends the round.
    pub fn announce_first(
        &mut self,
        mut ask: impl FnMut(&str, Option<&[u8]>) -> Result<Answer, TrackerError>,
    ) -> Option<(String, Answer)> {
        for (t, tier) in self.tiers.iter_mut().enumerate() {
            for i in 0..tier.len() {
                let tracker = &tier[i];
                match ask(&tracker.url, tracker.tracker_id()) {
                    Ok(answer) => {
                        let answered = &mut tier[i];
                        if let Some(id) = &answer.tracker_id {
                            answered.tracker_id = Some(id.clone());
                        }
                        let url = answered.url.clone();
                        tier[..=i].rotate_right(1);
                        self.last = Some(t);
                        return Some((url, answer));
                    }
                    Err(e) if e.is_cancelled() => return None,
                    Err(_) => {}
                }
            }
        }
        None
    }
}

/// Puts `trackers` in a random order (Fisher–Yates).
fn shuffle(trackers: &mut [Tracker]) {
    for i in (1..trackers.len()).rev() {
        let j = (crate::util::random::u64() % (i as u64 + 1)) as usize;
        trackers.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn list(tiers: &[&[&str]]) -> Vec<Vec<String>> {
        tiers
            .iter()
            .map(|tier| tier.iter().map(|u| u.to_string()).collect())
            .collect()
    }

    /// Tiers kept in the order given.
    fn in_order(announce: Option<&str>, tiers: &[&[&str]]) -> Tiers {
        Tiers::with_shuffle(announce, &list(tiers), |_| {})
    }

    fn failed(url: &str) -> TrackerError {
        TrackerError::TimedOut {
            tracker: url.to_owned(),
        }
    }

    /// A round in which the trackers in `answering` answer; returns who
    /// answered and every URL asked, in order.
    fn round(tiers: &mut Tiers, answering: &[&str]) -> (Option<String>, Vec<String>) {
        let mut asked = Vec::new();
        let answered = tiers.announce_first(|url, _| {
            asked.push(url.to_owned());
            if answering.contains(&url) {
                Ok(Answer::default())
            } else {
                Err(failed(url))
            }
        });
        (answered.map(|(url, _)| url), asked)
    }

    #[test]
    fn the_announce_list_wins_over_announce_when_it_names_a_tracker() {
        let tiers = in_order(
            Some("http://a/"),
            &[&["http://b/", "udp://c:1"], &["http://d/"]],
        );
        assert_eq!(
            tiers.urls(),
            [vec!["http://b/", "udp://c:1"], vec!["http://d/"]]
        );
        assert_eq!(tiers.len(), 3);
        let tiers = in_order(Some("http://a/"), &[&[" "], &[]]);
        assert_eq!(tiers.urls(), [vec!["http://a/"]], "an empty list: announce");
        let tiers = in_order(None, &[]);
        assert!(tiers.is_empty());
        assert_eq!(tiers.len(), 0);
        assert_eq!(Tiers::new(Some(""), &[]).len(), 0);
    }

    #[test]
    fn duplicates_blanks_and_empty_tiers_are_left_out() {
        let tiers = in_order(
            None,
            &[
                &["http://a/", " http://a/ ", ""],
                &["http://a/"],
                &["udp://b:1", "http://c/", "udp://b:1"],
            ],
        );
        assert_eq!(
            tiers.urls(),
            [vec!["http://a/"], vec!["udp://b:1", "http://c/"]]
        );
    }

    #[test]
    fn only_the_first_max_trackers_are_kept() {
        let urls: Vec<String> = (0..MAX_TRACKERS + 50)
            .map(|i| format!("http://t{i}/"))
            .collect();
        let tiers = Tiers::new(None, &[urls.clone(), vec!["http://late/".into()]]);
        assert_eq!(tiers.len(), MAX_TRACKERS);
        assert_eq!(tiers.urls().len(), 1, "the second tier had no room");
    }

    #[test]
    fn each_tier_is_shuffled_within_itself() {
        let tiers = list(&[&["a", "b", "c"], &["d", "e"]]);
        let mut orders = HashSet::new();
        for _ in 0..200 {
            let t = Tiers::new(None, &tiers);
            let urls = t.urls();
            let mut first: Vec<&str> = urls[0].clone();
            orders.insert(first.join(""));
            first.sort();
            assert_eq!(first, ["a", "b", "c"]);
            let mut second = urls[1].clone();
            second.sort();
            assert_eq!(second, ["d", "e"], "trackers stay in their tier");
        }
        assert_eq!(orders.len(), 6, "every order of 3 seen in 200: {orders:?}");
    }

    #[test]
    fn trackers_are_asked_in_order_tier_by_tier_until_one_answers() {
        let mut tiers = in_order(None, &[&["a", "b"], &["c", "d", "e"], &["f"]]);
        let (answered, asked) = round(&mut tiers, &["d", "f"]);
        assert_eq!(answered.as_deref(), Some("d"));
        assert_eq!(asked, ["a", "b", "c", "d"], "the first answer wins");
        assert_eq!(
            tiers.urls(),
            [vec!["a", "b"], vec!["d", "c", "e"], vec!["f"]],
            "d moved to the front of its tier only"
        );
        assert_eq!(tiers.last_answered().map(Tracker::url), Some("d"));
        // The next round starts at the first tier again, and finds d sooner.
        let (answered, asked) = round(&mut tiers, &["d"]);
        assert_eq!(answered.as_deref(), Some("d"));
        assert_eq!(asked, ["a", "b", "d"]);
        // A tracker of the first tier that answers takes over.
        let (_, asked) = round(&mut tiers, &["b", "d"]);
        assert_eq!(asked, ["a", "b"]);
        assert_eq!(tiers.urls()[0], ["b", "a"]);
        assert_eq!(tiers.last_answered().map(Tracker::url), Some("b"));
    }

    #[test]
    fn a_round_where_none_answers_asks_each_once_and_keeps_the_order() {
        let mut tiers = in_order(None, &[&["a", "b"], &["c"]]);
        let before = tiers
            .urls()
            .iter()
            .flatten()
            .map(|u| u.to_string())
            .collect::<Vec<_>>();
        let (answered, asked) = round(&mut tiers, &[]);
        assert_eq!(answered, None);
        assert_eq!(asked, before);
        assert_eq!(tiers.urls(), [vec!["a", "b"], vec!["c"]]);
        assert_eq!(tiers.last_answered(), None);
        let mut empty = Tiers::default();
        assert_eq!(round(&mut empty, &[]), (None, vec![]));
    }

    #[test]
    fn a_cancelled_announce_ends_the_round() {
        let mut tiers = in_order(None, &[&["a", "b"], &["c"]]);
        let mut asked = Vec::new();
        let answered = tiers.announce_first(|url, _| {
            asked.push(url.to_owned());
            Err(TrackerError::Cancelled {
                tracker: url.to_owned(),
            })
        });
        assert_eq!(answered, None);
        assert_eq!(asked, ["a"]);
    }

    #[test]
    fn a_tracker_id_is_sent_back_and_kept_when_the_next_answer_has_none() {
        let mut tiers = in_order(None, &[&["a", "b"]]);
        let mut ids = Vec::new();
        let mut answer_with = |id: Option<&[u8]>, ids: &mut Vec<Option<Vec<u8>>>| {
            let id = id.map(<[u8]>::to_vec);
            tiers.announce_first(|url, sent| {
                ids.push(sent.map(<[u8]>::to_vec));
                match url {
                    "b" => Ok(Answer {
                        tracker_id: id.clone(),
                        ..Answer::default()
                    }),
                    _ => Err(failed(url)),
                }
            })
        };
        answer_with(Some(b"t1"), &mut ids);
        answer_with(None, &mut ids);
        answer_with(Some(b"t2"), &mut ids);
        answer_with(None, &mut ids);
        let t1 = Some(b"t1".to_vec());
        let t2 = Some(b"t2".to_vec());
        // a and b with none yet; then b alone, first of its tier: t1 given,
        // t1 kept through an answer without one, then t2.
        assert_eq!(ids, [None, None, t1.clone(), t1, t2]);
    }
}
