//! A torrent's control file, and what a download starts from: what lets
//! the same torrent, started again, continue where the last run stopped.
//!
//! `DIR/NAME.partfetch.state`, beside the single file or the multi-file
//! directory, says which torrent it is for and which pieces were on disk
//! when it was saved, in a few `key value` lines a person can read:
//!
//! ```text
//! partfetch-torrent 1
//! info-hash 0123456789abcdef0123456789abcdef01234567
//! piece-length 1048576
//! pieces 256
//! have 0-10,12,14-20
//! ```
//!
//! Owns [`ResumeState`] (the file, read and replaced atomically),
//! [`ResumeState::for_torrent`] (trust the control file, check the files,
//! or start from nothing) and [`Checkpoint`] (saving it during a
//! download, only after the pieces it lists are synced: its doc gives
//! the order a swarm follows). Which pieces to fetch next is the swarm's
//! business.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::check::check_existing;
use super::path::MAX_COMPONENT_BYTES;
use super::storage::TorrentStore;
use super::Metainfo;
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::pieces::PieceSet;
use crate::sha1;

/// The first line of every torrent control file. It differs from the
/// HTTP control file's (`partfetch-state 1`), so neither is taken for the
/// other.
const MAGIC: &str = "partfetch-torrent 1";

/// The control file's suffix, after the torrent's name.
pub const STATE_SUFFIX: &str = ".partfetch.state";

/// The suffix of a control file being written, after its name: it is
/// renamed into place once complete.
const NEW_SUFFIX: &str = ".new";

/// The largest control file read. The longest real one lists every other
/// piece of an 800 000-piece torrent (the most
/// [`MAX_METAINFO_BYTES`](super::MAX_METAINFO_BYTES) holds) in under
/// 6 MB; anything longer is not one, and is not read into memory.
pub const MAX_STATE_BYTES: u64 = 16 << 20;

/// The control file is saved at most this often during a download: each
/// save syncs the files written since the one before, which costs a disk
/// flush, and a crash costs at most the pieces of the last second. No
/// count of pieces triggers a save as well: a second holds few pieces at
/// any real speed, and saving sooner would only sync more often.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// `DIR/NAME.partfetch.state`, the control file of `meta` downloaded into
/// `dir`.
///
/// A name of up to 255 bytes is a valid torrent name, but the suffixes
/// would push the control file (written as `….state.new`) past what file
/// systems take. Such a name is cut (at a character boundary) to leave
/// room for them, and ends with `~` and the first 8 hex digits of the
/// info-hash, so two long names that share their beginning keep control
/// files of their own.
pub fn state_path(dir: &Path, meta: &Metainfo) -> PathBuf {
    let name = meta.name();
    let room = MAX_COMPONENT_BYTES - STATE_SUFFIX.len() - NEW_SUFFIX.len();
    let file = if name.len() > room {
        let mark = format!("~{}", &meta.info_hash_hex()[..8]);
        let cut = (0..=room - mark.len())
            .rev()
            .find(|&i| name.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}{mark}{STATE_SUFFIX}", &name[..cut])
    } else {
        format!("{name}{STATE_SUFFIX}")
    };
    dir.join(file)
}

/// What a torrent's control file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    /// The torrent it is for.
    pub info_hash: [u8; 20],
    /// Its piece length.
    pub piece_length: u64,
    /// Its number of pieces.
    pub pieces: u64,
    /// The pieces on disk (each below `pieces`).
    pub have: PieceSet,
}

/// Where a download's pieces on disk were learned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumedFrom {
    /// The control file matched the torrent: its pieces are taken on
    /// trust, as aria2 takes its control file's, except `dropped` ones
    /// that lie in files now missing or shorter than they need to be.
    /// ("resumed N pieces from the control file")
    ControlFile {
        /// Pieces it listed that are no longer on disk.
        dropped: u64,
    },
    /// The files held data, and no control file of this torrent vouched
    /// for it: each piece was hashed ([`check_existing`]). ("checked
    /// existing data: N pieces good")
    Check,
    /// Neither a control file nor any data: every piece is to fetch.
    Nothing,
}

/// What a download starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    /// The pieces on disk, not to fetch again.
    pub have: PieceSet,
    /// Where they were learned from.
    pub from: ResumedFrom,
    /// A control file was there but was not this torrent's (another
    /// info-hash, or not a control file at all): it was ignored, and the
    /// first save replaces it.
    pub ignored_state: bool,
}

impl ResumeState {
    /// The record of `have`, pieces of `meta`.
    pub fn new(meta: &Metainfo, have: PieceSet) -> ResumeState {
        ResumeState {
            info_hash: meta.info_hash(),
            piece_length: meta.piece_length(),
            pieces: meta.layout().pieces(),
            have,
        }
    }

    /// Whether this records pieces of `meta`: the same info-hash, piece
    /// length and number of pieces.
    pub fn matches(&self, meta: &Metainfo) -> bool {
        self.info_hash == meta.info_hash()
            && self.piece_length == meta.piece_length()
            && self.pieces == meta.layout().pieces()
    }

    /// Reads a control file; `None` when there is none, or it is not a
    /// torrent control file of this format (garbage, the HTTP control
    /// file's format, a piece past the count it gives, a missing key).
    /// Unknown keys are ignored, so a later version may add some.
    pub fn load(path: &Path) -> Option<ResumeState> {
        let mut text = String::new();
        std::fs::File::open(path)
            .ok()?
            .take(MAX_STATE_BYTES + 1)
            .read_to_string(&mut text)
            .ok()?;
        if text.len() as u64 > MAX_STATE_BYTES {
            return None;
        }
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let (mut info_hash, mut piece_length, mut pieces, mut have) = (None, None, None, None);
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "info-hash" => info_hash = Some(sha1::parse_hex(value)?),
                "piece-length" => piece_length = Some(value.parse::<u64>().ok()?),
                "pieces" => pieces = Some(value.parse::<u64>().ok()?),
                "have" => have = Some(value),
                _ => {}
            }
        }
        let pieces = pieces?;
        Some(ResumeState {
            info_hash: info_hash?,
            piece_length: piece_length.filter(|&n| n > 0)?,
            pieces,
            have: PieceSet::parse(have?, pieces)?,
        })
    }

    /// Replaces the control file at `path` atomically: written beside it
    /// as `PATH.new`, synced, renamed over it, the directory synced.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = format!(
            "{MAGIC}\ninfo-hash {}\npiece-length {}\npieces {}\nhave {}\n",
            sha1::to_hex(&self.info_hash),
            self.piece_length,
            self.pieces,
            self.have
        );
        let mut temp = path.as_os_str().to_owned();
        temp.push(NEW_SUFFIX);
        crate::util::fs::replace_file(path, Path::new(&temp), text.as_bytes())
            .map_err(|e| Error::io(e, path.display()))
    }

    /// Removes the control file at `path`, if there is one.
    pub fn remove(path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(e, path.display())),
            _ => Ok(()),
        }
    }

    /// What the download of `store`'s torrent starts from, given the
    /// control file at `path` (see [`state_path`]):
    ///
    /// - the control file is this torrent's: its pieces, without reading
    ///   them, less those in files now missing or too short
    ///   ([`TorrentStore::piece_was_on_disk`]);
    /// - otherwise, when the files held data: the pieces
    ///   [`check_existing`] finds good (`cancel` and `progress` are its);
    /// - otherwise nothing.
    ///
    /// The store must be opened just before: it knows which files were
    /// there, and how long, before it created or extended them.
    pub fn for_torrent(
        store: &TorrentStore,
        path: &Path,
        cancel: &Cancel,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Resumed> {
        let meta = store.metainfo();
        let state = ResumeState::load(path);
        let ignored_state = match &state {
            Some(state) => !state.matches(meta),
            None => std::fs::symlink_metadata(path).is_ok(),
        };
        if let Some(state) = state.filter(|s| s.matches(meta)) {
            let mut have = PieceSet::new();
            let mut dropped = 0;
            for index in state.have.runs().iter().flat_map(Clone::clone) {
                if store.piece_was_on_disk(index) {
                    have.insert(index);
                } else {
                    dropped += 1;
                }
            }
            return Ok(Resumed {
                have,
                from: ResumedFrom::ControlFile { dropped },
                ignored_state,
            });
        }
        if !store.had_data() {
            return Ok(Resumed {
                have: PieceSet::new(),
                from: ResumedFrom::Nothing,
                ignored_state,
            });
        }
        Ok(Resumed {
            have: check_existing(store, cancel, progress)?,
            from: ResumedFrom::Check,
            ignored_state,
        })
    }
}

/// The control file of a download in progress: the pieces it will list
/// next, and when it was last saved. Kept by the one thread that learns
/// of finished pieces; the time is passed in, so its schedule is tested
/// without a clock.
///
/// A download follows this order, so that after a crash or `kill -9` the
/// control file never lists a piece the disk does not hold (at worst the
/// pieces fetched since the last save are fetched again):
///
/// 1. Open the [`TorrentStore`], then [`ResumeState::for_torrent`]: its
///    [`Resumed::have`] are the pieces not to fetch. Make a `Checkpoint`
///    of them.
/// 2. For each piece fetched: write it, check its hash, then
///    [`Checkpoint::add`] it — only once its writes have returned, on
///    whichever thread made them.
/// 3. Whenever [`Checkpoint::due`] (every [`CHECKPOINT_EVERY`] at most),
///    and when stopping, [`Checkpoint::save`]: it syncs the store, then
///    replaces the control file. Never save a [`ResumeState`] listing
///    pieces without a [`TorrentStore::sync`] after their writes.
/// 4. When every piece is there, [`Checkpoint::finish`]: sync, then
///    remove the control file.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    state: ResumeState,
    /// Pieces added since the last save.
    unsaved: bool,
    last: Instant,
}

impl Checkpoint {
    /// The control file at `path` of `meta`'s pieces `have` (what
    /// [`ResumeState::for_torrent`] found), nothing saved yet; `now` starts
    /// the first interval.
    pub fn new(path: PathBuf, meta: &Metainfo, have: PieceSet, now: Instant) -> Checkpoint {
        Checkpoint {
            path,
            state: ResumeState::new(meta, have),
            unsaved: false,
            last: now,
        }
    }

    /// Records piece `index` as on disk: call it once the piece's hash
    /// matched and its writes returned. The next save lists it.
    pub fn add(&mut self, index: u64) {
        if index < self.state.pieces && !self.state.have.contains(index) {
            self.state.have.insert(index);
            self.unsaved = true;
        }
    }

    /// The pieces on disk so far.
    pub fn have(&self) -> &PieceSet {
        &self.state.have
    }

    /// Whether pieces were added since the last save and
    /// [`CHECKPOINT_EVERY`] has passed since it, at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.unsaved && now.saturating_duration_since(self.last) >= CHECKPOINT_EVERY
    }

    /// Syncs `store`, then saves the control file, at `now`: after a
    /// crash it never lists a piece the disk does not hold. Call it when
    /// [`Checkpoint::due`], and when the download stops.
    pub fn save(&mut self, store: &TorrentStore, now: Instant) -> Result<()> {
        store.sync()?;
        self.state.save(&self.path)?;
        self.unsaved = false;
        self.last = now;
        Ok(())
    }

    /// Syncs `store` and removes the control file: the download is
    /// complete, and the files are all there is to it.
    pub fn finish(self, store: &TorrentStore) -> Result<()> {
        store.sync()?;
        ResumeState::remove(&self.path)
    }

    /// Where the control file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::fixture::{multi, single, Entry, Scratch};
    use std::sync::Arc;

    const FILES: [Entry; 4] = [
        (&["a"], 7, false),
        (&["empty"], 0, false),
        (&[".pad", "1"], 1, true),
        (&["b"], 20, false),
    ];

    /// A store of the multi-file torrent in `scratch`, with pieces `have`
    /// written.
    fn written(scratch: &Scratch, have: &[u64]) -> (Arc<Metainfo>, TorrentStore) {
        let (meta, content) = multi("t", &FILES, 4);
        let store = TorrentStore::open(Arc::clone(&meta), scratch.path()).unwrap();
        for &index in have {
            let (first, last) = meta.layout().range(index);
            store
                .write(first, &content[first as usize..=last as usize])
                .unwrap();
        }
        store.sync().unwrap();
        (meta, store)
    }

    fn resumed(store: &TorrentStore, path: &Path) -> Resumed {
        ResumeState::for_torrent(store, path, &Cancel::new(), &|_| {}).unwrap()
    }

    #[test]
    fn a_state_survives_a_round_trip_and_reads_as_written() {
        let scratch = Scratch::new("resume-trip");
        let (meta, _) = multi("t", &FILES, 4);
        let path = state_path(scratch.path(), &meta);
        assert_eq!(path, scratch.path().join("t.partfetch.state"));
        let mut have = PieceSet::first(3);
        have.insert(5);
        let state = ResumeState::new(&meta, have);
        state.save(&path).unwrap();
        assert_eq!(ResumeState::load(&path), Some(state));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "partfetch-torrent 1\ninfo-hash {}\npiece-length 4\npieces 7\nhave 0-2,5\n",
                meta.info_hash_hex()
            )
        );
        assert!(!Path::new(&format!("{}.new", path.display())).exists());
        // Unknown keys are a later version's; an empty `have` is no piece.
        std::fs::write(&path, text.replace("have 0-2,5", "have\nfuture 1")).unwrap();
        assert_eq!(ResumeState::load(&path).unwrap().have, PieceSet::new());
        ResumeState::remove(&path).unwrap();
        assert!(!path.exists());
        ResumeState::remove(&path).unwrap();
    }

    #[test]
    fn garbage_is_no_state() {
        let scratch = Scratch::new("resume-garbage");
        let (meta, _) = multi("t", &FILES, 4);
        let path = state_path(scratch.path(), &meta);
        assert_eq!(ResumeState::load(&path), None, "no file");
        let good = ResumeState::new(&meta, PieceSet::first(2));
        good.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let variants = [
            "\u{0}\u{1}binary".to_owned(),
            text.replace("partfetch-torrent 1", "partfetch-state 1"),
            text.replace("partfetch-torrent 1", "partfetch-torrent 2"),
            text.replace("pieces 7", "pieces seven"),
            text.replace("pieces 7", "pieces 1"),
            text.replace("piece-length 4", "piece-length 0"),
            text.replace(&meta.info_hash_hex(), "0123"),
            text.replace("have 0-1", "have 1-0"),
            text.replace("have 0-1\n", ""),
        ];
        for variant in variants {
            std::fs::write(&path, &variant).unwrap();
            assert_eq!(ResumeState::load(&path), None, "{variant:?}");
        }
        std::fs::write(&path, [0xff, 0xfe, b'\n']).unwrap();
        assert_eq!(ResumeState::load(&path), None, "not UTF-8");
    }

    #[test]
    fn a_matching_state_is_trusted_less_pieces_whose_files_are_gone() {
        let scratch = Scratch::new("resume-trust");
        let (meta, store) = written(&scratch, &[0, 1, 2, 3, 4, 6]);
        let path = state_path(scratch.path(), &meta);
        // The control file lists 5 though it was never written: taken on
        // trust, as its pieces are never read.
        let mut listed = PieceSet::first(3);
        listed.insert_run(5..7);
        ResumeState::new(&meta, listed.clone()).save(&path).unwrap();
        drop(store);
        let store = TorrentStore::open(Arc::clone(&meta), scratch.path()).unwrap();
        let r = resumed(&store, &path);
        assert_eq!(r.from, ResumedFrom::ControlFile { dropped: 0 });
        assert_eq!((r.have, r.ignored_state), (listed.clone(), false));
        // `b` cut short: the pieces past its new end are dropped.
        drop(store);
        let b = scratch.path().join("t/b");
        std::fs::File::options()
            .write(true)
            .open(&b)
            .unwrap()
            .set_len(9)
            .unwrap();
        let store = TorrentStore::open(Arc::clone(&meta), scratch.path()).unwrap();
        let r = resumed(&store, &path);
        // b, from byte 8 of the torrent, keeps 9 bytes: pieces 5 and 6
        // lay past them.
        assert_eq!(r.have.to_string(), "0-2");
        assert_eq!(r.from, ResumedFrom::ControlFile { dropped: 2 });
    }

    #[test]
    fn another_torrents_state_is_ignored_and_the_data_checked() {
        let scratch = Scratch::new("resume-other");
        let (meta, store) = written(&scratch, &[0, 2, 6]);
        drop(store);
        let path = state_path(scratch.path(), &meta);
        let (other, _) = single("t", 28, 4);
        ResumeState::new(&other, PieceSet::first(7))
            .save(&path)
            .unwrap();
        let store = TorrentStore::open(Arc::clone(&meta), scratch.path()).unwrap();
        let r = resumed(&store, &path);
        assert_eq!(r.from, ResumedFrom::Check);
        assert_eq!(
            (r.have.to_string(), r.ignored_state),
            ("0,2,6".into(), true)
        );
        // Garbage in its place is ignored the same way.
        std::fs::write(&path, "garbage").unwrap();
        let r = resumed(&store, &path);
        assert_eq!((r.from, r.ignored_state), (ResumedFrom::Check, true));
        // No control file: checked, nothing ignored.
        ResumeState::remove(&path).unwrap();
        let r = resumed(&store, &path);
        assert_eq!((r.from, r.ignored_state), (ResumedFrom::Check, false));
        assert_eq!(r.have.to_string(), "0,2,6");
    }

    #[test]
    fn nothing_on_disk_is_nothing_to_resume() {
        let scratch = Scratch::new("resume-nothing");
        let (meta, _) = multi("t", &FILES, 4);
        let store = TorrentStore::open(Arc::clone(&meta), scratch.path()).unwrap();
        let r = resumed(&store, &state_path(scratch.path(), &meta));
        assert_eq!(r.from, ResumedFrom::Nothing);
        assert!(r.have.is_empty() && !r.ignored_state);
    }

    #[test]
    fn a_checkpoint_is_due_a_second_after_new_pieces_and_saves_them() {
        let scratch = Scratch::new("resume-checkpoint");
        let (meta, store) = written(&scratch, &[1]);
        let path = state_path(scratch.path(), &meta);
        let start = Instant::now();
        let mut checkpoint = Checkpoint::new(path.clone(), &meta, PieceSet::new(), start);
        assert!(!checkpoint.due(start + CHECKPOINT_EVERY), "nothing to save");
        checkpoint.add(1);
        checkpoint.add(99);
        assert!(!checkpoint.due(start + CHECKPOINT_EVERY / 2));
        assert!(checkpoint.due(start + CHECKPOINT_EVERY));
        let saved = start + CHECKPOINT_EVERY;
        checkpoint.save(&store, saved).unwrap();
        assert_eq!(ResumeState::load(&path).unwrap().have.to_string(), "1");
        checkpoint.add(1);
        assert!(!checkpoint.due(saved + CHECKPOINT_EVERY), "nothing new");
        checkpoint.finish(&store).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_long_name_leaves_room_for_the_suffixes() {
        let long = "é".repeat(120) + "x"; // 241 bytes
        let (meta, _) = single(&long, 4, 4);
        let path = state_path(Path::new("dir"), &meta);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.len() + NEW_SUFFIX.len() <= MAX_COMPONENT_BYTES);
        let mark = format!("~{}{STATE_SUFFIX}", &meta.info_hash_hex()[..8]);
        assert!(name.ends_with(&mark), "{name}");
        assert!(long.starts_with(name.trim_end_matches(&mark)));
    }
}
