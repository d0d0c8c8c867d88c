//! Which pieces of a resource are complete: the record that lets a
//! download written out of order continue after an interruption.
//!
//! Owns the set and its text form. Pieces complete roughly in order, so the
//! set is kept as sorted, disjoint runs of indices: a finished download is
//! one run, one in progress a long run and a few stragglers, whatever the
//! resource's length. The text form (`0-37,40,42-43`, inclusive ends) is
//! what the control file beside a partial download records.

use std::fmt;
use std::ops::Range;

/// A set of piece indices, as sorted, disjoint, non-adjacent runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PieceSet {
    runs: Vec<Range<u64>>,
}

impl PieceSet {
    /// The empty set.
    pub fn new() -> PieceSet {
        PieceSet::default()
    }

    /// Pieces `0..count`: everything below the first missing one.
    pub fn first(count: u64) -> PieceSet {
        let mut set = PieceSet::new();
        set.insert_run(0..count);
        set
    }

    /// Whether piece `index` is in the set.
    pub fn contains(&self, index: u64) -> bool {
        let at = self.runs.partition_point(|run| run.end <= index);
        self.runs.get(at).is_some_and(|run| run.start <= index)
    }

    /// Adds piece `index`.
    pub fn insert(&mut self, index: u64) {
        self.insert_run(index..index + 1);
    }

    /// Adds pieces `run`, merging with the runs it touches.
    pub fn insert_run(&mut self, run: Range<u64>) {
        if run.is_empty() {
            return;
        }
        // The runs that overlap or touch `run` are replaced by their union.
        let first = self.runs.partition_point(|r| r.end < run.start);
        let last = self.runs.partition_point(|r| r.start <= run.end);
        let mut merged = run;
        if first < last {
            merged.start = merged.start.min(self.runs[first].start);
            merged.end = merged.end.max(self.runs[last - 1].end);
        }
        self.runs.splice(first..last, std::iter::once(merged));
    }

    /// How many pieces the set holds.
    pub fn count(&self) -> u64 {
        self.runs.iter().map(|run| run.end - run.start).sum()
    }

    /// Whether the set holds no piece.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The first piece at or after `index` that is not in the set.
    pub fn first_missing_from(&self, index: u64) -> u64 {
        let at = self.runs.partition_point(|run| run.end <= index);
        match self.runs.get(at) {
            Some(run) if run.start <= index => run.end,
            _ => index,
        }
    }

    /// The first piece after `index` that is in the set, if any.
    pub fn next_present_after(&self, index: u64) -> Option<u64> {
        let at = self.runs.partition_point(|run| run.end <= index + 1);
        self.runs.get(at).map(|run| run.start.max(index + 1))
    }

    /// The runs, in order.
    pub fn runs(&self) -> &[Range<u64>] {
        &self.runs
    }

    /// Reads the text form (`0-37,40`); `None` when it is not one, or
    /// lists a piece at or past `pieces`.
    pub fn parse(text: &str, pieces: u64) -> Option<PieceSet> {
        let mut set = PieceSet::new();
        for item in text.split(',').filter(|item| !item.is_empty()) {
            let (first, last) = match item.split_once('-') {
                Some((a, b)) => (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?),
                None => {
                    let index = item.parse::<u64>().ok()?;
                    (index, index)
                }
            };
            if first > last || last >= pieces {
                return None;
            }
            set.insert_run(first..last + 1);
        }
        Some(set)
    }
}

impl fmt::Display for PieceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, run) in self.runs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if run.end - run.start == 1 {
                write!(f, "{}", run.start)?;
            } else {
                write!(f, "{}-{}", run.start, run.end - 1)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_merge_into_runs_in_any_order() {
        let mut set = PieceSet::new();
        for index in [5, 3, 4, 9, 0, 1, 7, 8] {
            set.insert(index);
        }
        assert_eq!(set.runs(), &[0..2, 3..6, 7..10]);
        set.insert(6);
        set.insert(2);
        assert_eq!(set.to_string(), "0-9");
        assert_eq!(set.count(), 10);
        set.insert_run(12..20);
        set.insert_run(9..13);
        assert_eq!(set.to_string(), "0-19");
    }

    #[test]
    fn membership_and_gaps() {
        let mut set = PieceSet::first(4);
        set.insert_run(6..8);
        assert!(set.contains(0) && set.contains(3) && set.contains(7));
        assert!(!set.contains(4) && !set.contains(5) && !set.contains(8));
        assert_eq!(set.first_missing_from(0), 4);
        assert_eq!(set.first_missing_from(5), 5);
        assert_eq!(set.first_missing_from(6), 8);
        assert_eq!(set.next_present_after(3), Some(6));
        assert_eq!(set.next_present_after(6), Some(7));
        assert_eq!(set.next_present_after(7), None);
    }

    #[test]
    fn the_text_form_round_trips_and_garbage_is_refused() {
        let mut set = PieceSet::first(38);
        set.insert(40);
        set.insert_run(42..44);
        let text = set.to_string();
        assert_eq!(text, "0-37,40,42-43");
        assert_eq!(PieceSet::parse(&text, 44), Some(set));
        assert_eq!(PieceSet::parse("", 10), Some(PieceSet::new()));
        for bad in ["x", "3-1", "0-10", "1,-", "5-", "-5", "1;2"] {
            assert_eq!(PieceSet::parse(bad, 10), None, "{bad}");
        }
    }
}
