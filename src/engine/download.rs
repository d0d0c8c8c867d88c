//! A resource written into a store piece by piece, in whatever order the
//! pieces arrive: the form a segmented download takes when its output is a
//! file.
//!
//! Owns driving such a download from the caller's thread: the first piece
//! (and the one stream after it, on a fast connection) written as it
//! streams, the pieces the workers store recorded as they complete, and
//! what the caller may ask between steps — the pieces stored, the bytes
//! from the start without a gap, the activity. The schedule and the
//! workers are [`segments`](crate::engine::segments)'s.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::segments::{Mode, Next, SegmentedStream};
use crate::engine::worker::bad_piece;
use crate::error::{Error, ErrorKind, Result};
use crate::fetch::Context;
use crate::http::ranged::Resource;
use crate::http::HttpBody;
use crate::pieces::{Layout, PieceChecker, PieceHashes, PieceSet, PieceStore};
use crate::url::Url;

/// A resource written into a [`PieceStore`] piece by piece, in whatever
/// order the pieces arrive (from [`SegmentedDownload::new`] or
/// [`SegmentedDownload::resume`]).
///
/// The caller drives it with [`advance`](SegmentedDownload::advance), which
/// returns at least every quarter second, so that between calls it can show
/// progress and record [`have`](SegmentedDownload::have) for a later run.
pub struct SegmentedDownload {
    stream: SegmentedStream,
    /// Pieces stored when `advance` last returned.
    seen: u64,
    /// The piece the streamed part is in the middle of, and how much of it
    /// is written.
    partial: Option<(u64, u64)>,
    /// The check of the bytes the consumer reads itself, when the
    /// pieces' digests are known.
    checker: Option<PieceChecker>,
}

/// How long [`SegmentedDownload::advance`] waits for a piece before it
/// returns anyway: its caller reports progress and looks for a cancel
/// that often while pieces are slow to come (4 wake-ups a second at most;
/// each stored piece wakes it at once).
const ADVANCE_AT_LEAST_EVERY: Duration = Duration::from_millis(250);

impl SegmentedDownload {
    /// Writes the resource of `stream` into `store` instead of handing it
    /// on: every piece at its own offset, as soon as it arrives (see
    /// [`segments`](crate::engine::segments)). Call before the stream's
    /// first byte is read.
    pub fn new(stream: SegmentedStream, store: Arc<dyn PieceStore>) -> SegmentedDownload {
        let _ = stream.shared.store.set(store);
        {
            // Nothing is handed on: the next piece out is the first one
            // the store lacks.
            stream.shared.lock().schedule.write_in_place();
        }
        SegmentedDownload {
            stream,
            seen: 0,
            partial: None,
            checker: None,
        }
    }

    /// Checks every piece `hashes` gives as it arrives: a source that
    /// sends one that fails is dropped, and the piece fetched again from
    /// another; with no other left, the download fails with
    /// [`ErrorKind::Integrity`]. Hashes of another length than the
    /// resource's are ignored. Call before the first `advance`.
    pub fn check_pieces(&mut self, hashes: Arc<PieceHashes>) {
        if hashes.total() != self.length() {
            return;
        }
        let _ = self.stream.shared.hashes.set(Arc::clone(&hashes));
        self.checker = Some(PieceChecker::new(hashes));
    }

    /// Continues writing `resource` into `store`, which already holds the
    /// pieces in `have`. `first` is the answer to a `Range` request for
    /// piece `first_index` (the first one missing), `None` when none is.
    /// The pieces are those of `layout`.
    // The caller fixes each: grouping them would only move the list.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        client: &Context,
        resource: Resource,
        layout: Layout,
        have: PieceSet,
        first: Option<(u64, HttpBody)>,
        connections: usize,
        mirrors: Vec<Url>,
        store: Arc<dyn PieceStore>,
    ) -> SegmentedDownload {
        let (first_index, mode) = match first {
            Some((index, body)) => {
                let end = layout.start(index + 1).min(layout.length());
                let lent = 0;
                (index, Mode::First { body, end, lent })
            }
            None => (layout.pieces(), Mode::Pieces),
        };
        let stream = SegmentedStream::new(
            client,
            resource,
            layout,
            mode,
            first_index,
            have,
            connections,
            mirrors,
        );
        SegmentedDownload::new(stream, store)
    }

    /// Writes what arrived since the last call; returns whether there is
    /// more to come (`false` once every piece is in the store).
    pub fn advance(&mut self) -> Result<bool> {
        let advanced = self.step();
        if advanced.is_err() {
            self.stream.mode = Mode::Ended;
        }
        advanced
    }

    fn step(&mut self) -> Result<bool> {
        let Some(store) = self.stream.shared.store.get().cloned() else {
            return Err(Error::new(ErrorKind::Io, "no store to write into"));
        };
        match self.stream.next_streamed()? {
            Next::Chunk { offset } => {
                let chunk = self.stream.last_chunk();
                store.write_at(offset, chunk)?;
                let end = offset + chunk.len() as u64;
                if let Some(checker) = &mut self.checker {
                    if let Err(bad) = checker.feed(offset, chunk) {
                        let hashes = self.stream.shared.hashes.get();
                        let start = hashes.map_or(offset, |h| h.piece_start(bad.index));
                        let err = bad_piece(bad, &self.stream.shared.resource.url);
                        self.partial = None;
                        self.stream.reject_streamed(start, err)?;
                        return Ok(true);
                    }
                }
                self.streamed(offset, end);
                Ok(true)
            }
            Next::Pieces => {
                self.partial = None;
                self.wait_for_pieces(&*store)
            }
            Next::Ended => Ok(false),
        }
    }

    /// Bytes `start..end` of the streamed part are in the store: the
    /// pieces they complete are recorded. (The streamed part runs from a
    /// piece's start, so a piece whose end lies in `start..=end` is whole.)
    fn streamed(&mut self, start: u64, end: u64) {
        let shared = &self.stream.shared;
        let layout = shared.layout;
        let piece_end = |index: u64| layout.range(index).1 + 1;
        let last = layout.piece_at(end - 1);
        // Most chunks complete no piece: the schedule is only touched when
        // one does.
        let complete = (layout.piece_at(start)..=last).filter(|&index| piece_end(index) <= end);
        let mut complete = complete.peekable();
        if complete.peek().is_some() {
            let mut state = shared.lock();
            complete.for_each(|index| state.schedule.stored(index));
            drop(state);
            shared.changed.notify_all();
        }
        self.partial = (piece_end(last) > end).then(|| (last, end - layout.start(last)));
    }

    /// Waits until the workers store another piece (or fetches the next
    /// one itself when there are none); returns whether any are missing.
    fn wait_for_pieces(&mut self, store: &dyn PieceStore) -> Result<bool> {
        let shared = &*self.stream.shared;
        let pieces = shared.layout.pieces();
        if self.stream.workers == 0 {
            let index = {
                let state = shared.lock();
                let schedule = &state.schedule;
                schedule.have().first_missing_from(schedule.next_out())
            };
            if index >= pieces {
                return Ok(false);
            }
            let mut checker = shared.hashes.get().cloned().map(PieceChecker::new);
            let url = &shared.resource.url;
            shared.fetch_piece(&self.stream.client, index, &mut |offset, bytes| {
                store.write_at(offset, bytes)?;
                match &mut checker {
                    Some(checker) => checker
                        .feed(offset, bytes)
                        .map_err(|bad| bad_piece(bad, url)),
                    None => Ok(()),
                }
            })?;
            shared.lock().schedule.stored(index);
            return Ok(true);
        }
        let mut state = shared.lock();
        loop {
            if state.schedule.next_out() >= pieces {
                return Ok(false);
            }
            if let Some(err) = state.schedule.failed() {
                return Err(err.clone());
            }
            self.stream.client.cancelled()?;
            let stored = state.schedule.have().count();
            if stored != self.seen {
                self.seen = stored;
                return Ok(true);
            }
            let (guard, waited) = shared
                .changed
                .wait_timeout(state, ADVANCE_AT_LEAST_EVERY)
                .unwrap_or_else(|e| e.into_inner());
            state = guard;
            if waited.timed_out() {
                return Ok(true);
            }
        }
    }

    /// The resource's full length.
    pub fn length(&self) -> u64 {
        self.stream.length()
    }

    /// How the resource is cut into pieces.
    pub fn layout(&self) -> Layout {
        self.stream.shared.layout
    }

    /// The resource's `If-Range` value, if the server gave one.
    pub fn validator(&self) -> Option<&str> {
        self.stream.validator()
    }

    /// Pieces being fetched now and sources still in use, while the
    /// workers run.
    pub fn activity(&self) -> Option<(usize, usize)> {
        self.stream.activity()
    }

    /// The pieces whole in the store: what a later run need not fetch.
    pub fn have(&self) -> PieceSet {
        self.stream.shared.lock().schedule.have().clone()
    }

    /// Bytes in the store so far.
    pub fn stored_bytes(&self) -> u64 {
        let whole = {
            let state = self.stream.shared.lock();
            self.stream.shared.layout.bytes_in(state.schedule.have())
        };
        whole + self.partial.map_or(0, |(_, bytes)| bytes)
    }

    /// How many bytes from the start are in the store without a gap.
    pub fn contiguous(&self) -> u64 {
        let frontier = self.stream.shared.lock().schedule.next_out();
        let partial = match self.partial {
            Some((index, bytes)) if index == frontier => bytes,
            _ => 0,
        };
        self.stream.shared.layout.contiguous(frontier, partial)
    }
}
