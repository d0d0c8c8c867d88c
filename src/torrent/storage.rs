//! Where a torrent's bytes live on disk: its files under the download's
//! directory, written and read at the torrent's own offsets.
//!
//! Owns [`TorrentStore`]: creating the files and their directories
//! without following a link out of the directory, giving each file its
//! full length, splitting a block that crosses files, reading pad files as
//! zeros, hashing a piece as it is on disk, and syncing what was written.
//! Which pieces to fetch, and whether what is on disk is worth continuing
//! from, are left to the swarm and to `check` and `resume`.
//!
//! Layout: a single-file torrent is `DIR/NAME`, a multi-file one
//! `DIR/NAME/…`, each file at the checked path its metainfo gives
//! ([`File::path`](super::File::path)). Pad files (BEP 47) are never
//! created: their bytes are zeros by definition.

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::Metainfo;
use crate::error::{Error, ErrorKind, Result};
use crate::pieces::{read_exact_at, write_all_at, PieceStore};
use crate::sha1::Sha1;
use crate::util::fs::{describe_file_type, file_id, same_file};

/// The most files a store keeps open at once. A torrent may hold tens of
/// thousands of files, and a process may have as few as 1024 descriptors
/// (Linux's default soft limit), which the swarm's sockets need too; the
/// least recently used file is closed to open another, as aria2
/// (`--bt-max-open-files`, 100) and libtorrent do.
pub const MAX_OPEN_FILES: usize = 100;

/// The most bytes read at once to hash a piece: pieces run up to
/// [`MAX_PIECE_LENGTH`](super::MAX_PIECE_LENGTH) (256 MiB), and hashing
/// needs them only as a stream, so a check holds this much per thread
/// whatever the piece length.
pub const HASH_CHUNK: usize = 1 << 20;

/// A torrent's files, open for positional reads and writes from several
/// threads.
///
/// An existing file is never truncated, even when it is longer than the
/// torrent says: its bytes past the torrent's length are not the
/// torrent's, but they may be someone's (a file of the same name
/// downloaded otherwise), and the pieces cover only the bytes before
/// them. aria2 and Transmission leave such a file alone too. A shorter
/// file is extended to its full length (sparse where the file system
/// allows), so that reading a piece not yet fetched reads zeros instead
/// of failing.
pub struct TorrentStore {
    meta: Arc<Metainfo>,
    dir: PathBuf,
    root: PathBuf,
    /// One per file of the metainfo, `None` for pad files.
    files: Vec<Option<Slot>>,
    had_data: bool,
    /// The open files, least recently used first, at most
    /// [`MAX_OPEN_FILES`]. A file in use stays open through its `Arc`
    /// while it is being read or written, even once closed here.
    open: Mutex<Vec<(usize, Arc<File>)>>,
    access: Access,
}

/// How a store opens its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Read and write, creating what is missing: a download.
    Create,
    /// Read and write what is there: a download's file opened again.
    Existing,
    /// Read what is there: seeding.
    ReadOnly,
}

/// What the store knows of one file on disk.
struct Slot {
    path: PathBuf,
    /// Its length before the store opened it (0 when it was absent).
    before: u64,
    /// Its identity, to notice a file replaced between two opens.
    id: Option<(u64, u64)>,
    /// Written since the last [`TorrentStore::sync`].
    dirty: AtomicBool,
}

impl TorrentStore {
    /// Opens, creating what is missing, every file of `meta` under `dir`
    /// (itself created if need be). A component of a file's path that is
    /// a symbolic link is refused, with an error naming it: the download
    /// writes only inside `dir` (`dir` itself may be a link, as the user
    /// chose it).
    ///
    /// The check is made once per open, before opening: it keeps the
    /// download from writing through a link an earlier download, an
    /// archive or another user left there, not from a process racing it
    /// inside the directory.
    pub fn open(meta: Arc<Metainfo>, dir: &Path) -> Result<TorrentStore> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir.display()))?;
        TorrentStore::open_with(meta, dir, Access::Create)
    }

    /// Opens the files of `meta` under `dir` to seed them: read only,
    /// each of them already there (a missing one is an error naming it),
    /// none created, extended or written. A file shorter than the
    /// torrent says leaves its last pieces out (they were not on disk).
    pub fn open_to_seed(meta: Arc<Metainfo>, dir: &Path) -> Result<TorrentStore> {
        TorrentStore::open_with(meta, dir, Access::ReadOnly)
    }

    fn open_with(meta: Arc<Metainfo>, dir: &Path, access: Access) -> Result<TorrentStore> {
        let mut files = Vec::with_capacity(meta.files().len());
        let mut open = Vec::new();
        let mut had_data = false;
        for (index, file) in meta.files().iter().enumerate() {
            if file.is_pad() {
                files.push(None);
                continue;
            }
            let opened = open_file(dir, file.path(), access)?;
            let io = |e| Error::io(e, opened.path.display());
            if access == Access::Create && opened.meta.len() < file.length() {
                opened.file.set_len(file.length()).map_err(io)?;
            }
            had_data |= opened.before > 0;
            if file.length() > 0 && open.len() < MAX_OPEN_FILES {
                open.push((index, Arc::new(opened.file)));
            }
            files.push(Some(Slot {
                path: opened.path,
                before: opened.before,
                id: file_id(&opened.meta),
                dirty: AtomicBool::new(false),
            }));
        }
        Ok(TorrentStore {
            root: dir.join(meta.name()),
            dir: dir.to_path_buf(),
            meta,
            files,
            had_data,
            open: Mutex::new(open),
            access,
        })
    }

    /// The torrent the store holds.
    pub fn metainfo(&self) -> &Arc<Metainfo> {
        &self.meta
    }

    /// `DIR/NAME`: the single file, or the multi-file torrent's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where file `index` of [`Metainfo::files`] is, for messages (`None`
    /// for a pad file, which is not on disk).
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.files
            .get(index)?
            .as_ref()
            .map(|slot| slot.path.as_path())
    }

    /// The paths of the files on disk, in the torrent's order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().flatten().map(|slot| slot.path.as_path())
    }

    /// Whether any file was there with a nonzero length before the store
    /// opened it: when none was, no piece can be on disk and checking them
    /// is wasted reading.
    pub fn had_data(&self) -> bool {
        self.had_data
    }

    /// Whether every byte of piece `index` lay in a file that was at
    /// least that long before the store opened it (pad bytes count as
    /// there). A piece that did not lies at least in part in zeros the
    /// store added: it cannot be an earlier run's, and hashing it is
    /// wasted reading.
    pub fn piece_was_on_disk(&self, index: u64) -> bool {
        self.meta.piece_spans(index).iter().all(|span| {
            self.files[span.file]
                .as_ref()
                .is_some_and(|slot| span.file_offset + span.length <= slot.before)
        })
    }

    /// Writes `bytes` at `offset` in the torrent, across as many files as
    /// they span; bytes that fall in pad files are not written.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        let end = self.end_of(offset, bytes.len())?;
        for span in self.meta.spans(offset..end) {
            let at = (span.torrent_offset - offset) as usize;
            let part = &bytes[at..at + span.length as usize];
            let (file, slot) = self.handle(span.file)?;
            write_all_at(&file, span.file_offset, part)
                .map_err(|e| Error::io(e, slot.path.display()))?;
            // After the write: a sync that clears the mark before this
            // point has not covered these bytes, and sees the mark again.
            slot.dirty.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Reads `buffer.len()` bytes at `offset` in the torrent; bytes of pad
    /// files read as zeros.
    pub fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<()> {
        let end = self.end_of(offset, buffer.len())?;
        let mut done = 0;
        for span in self.meta.spans(offset..end) {
            let at = (span.torrent_offset - offset) as usize;
            buffer[done..at].fill(0);
            done = at + span.length as usize;
            let (file, slot) = self.handle(span.file)?;
            read_exact_at(&file, span.file_offset, &mut buffer[at..done])
                .map_err(|e| Error::io(e, slot.path.display()))?;
        }
        buffer[done..].fill(0);
        Ok(())
    }

    /// Whether piece `index` on disk has the SHA-1 the metainfo gives.
    pub fn piece_matches(&self, index: u64) -> Result<bool> {
        self.piece_matches_with(index, &mut Vec::new())
    }

    /// [`TorrentStore::piece_matches`], reading through `buffer` (grown to
    /// at most [`HASH_CHUNK`] bytes): a check of many pieces allocates
    /// once.
    pub(crate) fn piece_matches_with(&self, index: u64, buffer: &mut Vec<u8>) -> Result<bool> {
        let layout = self.meta.layout();
        if index >= layout.pieces() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("piece {index} is past the torrent's {}", layout.pieces()),
            )
            .with_subject(self.root.display()));
        }
        let (first, last) = layout.range(index);
        let length = last + 1 - first;
        buffer.resize(length.min(HASH_CHUNK as u64) as usize, 0);
        let mut hasher = Sha1::new();
        let mut at = first;
        while at <= last {
            let n = (last + 1 - at).min(buffer.len() as u64) as usize;
            self.read(at, &mut buffer[..n])?;
            hasher.update(&buffer[..n]);
            at += n as u64;
        }
        Ok(hasher.finish() == self.meta.piece_hashes()[index as usize])
    }

    /// Marks every file that held data before the store opened it as
    /// needing a sync: pieces found good there may have been written by
    /// a process killed before it synced them, and are in the system's
    /// cache only, so the next sync makes them durable before a control
    /// file lists them. (Syncing a file with nothing unwritten is cheap.)
    pub(crate) fn mark_existing_unsynced(&self) {
        for slot in self.files.iter().flatten() {
            if slot.before > 0 {
                slot.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Makes what was written to each file since the last sync durable
    /// (`fsync` of the data, and of the length it needs). A control file
    /// that lists pieces must be saved only after the sync that follows
    /// their writes ([`Checkpoint`](super::Checkpoint) does both).
    pub fn sync(&self) -> Result<()> {
        for (index, slot) in self.files.iter().enumerate() {
            let Some(slot) = slot else { continue };
            if !slot.dirty.swap(false, Ordering::AcqRel) {
                continue;
            }
            let synced = self.handle(index).and_then(|(file, _)| {
                file.sync_data()
                    .map_err(|e| Error::io(e, slot.path.display()))
            });
            if let Err(e) = synced {
                slot.dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The end of `length` bytes at `offset`, when they lie in the
    /// torrent.
    fn end_of(&self, offset: u64, length: usize) -> Result<u64> {
        match offset.checked_add(length as u64) {
            Some(end) if end <= self.meta.length() => Ok(end),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{length} bytes at {offset} go past the torrent's {} bytes",
                    self.meta.length()
                ),
            )
            .with_subject(self.root.display())),
        }
    }

    /// File `index`, open, and what the store knows of it: from the open
    /// files, or opened again (checked as at first) in place of the least
    /// recently used one.
    fn handle(&self, index: usize) -> Result<(Arc<File>, &Slot)> {
        let slot = self.files.get(index).and_then(Option::as_ref);
        // Spans name files of this metainfo that are not pad files.
        let Some(slot) = slot else {
            return Err(Error::new(ErrorKind::InvalidInput, "no such file"));
        };
        if let Some(file) = self.find_open(index) {
            return Ok((file, slot));
        }
        let access = match self.access {
            Access::ReadOnly => Access::ReadOnly,
            _ => Access::Existing,
        };
        let opened = open_file(&self.dir, self.meta.files()[index].path(), access)?;
        if slot.id.is_some() && file_id(&opened.meta) != slot.id {
            return Err(Error::new(
                ErrorKind::Io,
                "the file was replaced by another while the torrent was open",
            )
            .with_subject(slot.path.display()));
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have opened it meanwhile: one handle is kept.
        if let Some(at) = open.iter().position(|(i, _)| *i == index) {
            return Ok((Arc::clone(&open[at].1), slot));
        }
        if open.len() >= MAX_OPEN_FILES {
            open.remove(0);
        }
        let file = Arc::new(opened.file);
        open.push((index, Arc::clone(&file)));
        Ok((file, slot))
    }

    /// File `index` if it is open, marked as the most recently used.
    fn find_open(&self, index: usize) -> Option<Arc<File>> {
        // The list is never left half-changed, so a panic elsewhere while
        // it was locked leaves it usable.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let at = open.iter().position(|(i, _)| *i == index)?;
        let entry = open.remove(at);
        let file = Arc::clone(&entry.1);
        open.push(entry);
        Some(file)
    }
}

impl PieceStore for TorrentStore {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.write(offset, bytes)
    }
}

impl std::fmt::Debug for TorrentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentStore")
            .field("root", &self.root)
            .field("files", &self.files.len())
            .field("had_data", &self.had_data)
            .finish()
    }
}

/// A file opened by [`open_file`].
struct Opened {
    file: File,
    path: PathBuf,
    /// The opened file's metadata.
    meta: Metadata,
    /// Its length before it was opened (0 when it was created).
    before: u64,
}

/// Opens `dir/components…` for reading and writing (reading only, for
/// [`Access::ReadOnly`]), never through a symbolic link below `dir`,
/// creating the file and its directories for [`Access::Create`] (never
/// truncating).
fn open_file(dir: &Path, components: &[String], access: Access) -> Result<Opened> {
    let create = access == Access::Create;
    let Some((name, parents)) = components.split_last() else {
        // Metainfo refuses an empty path; this keeps the store total.
        return Err(
            Error::new(ErrorKind::InvalidInput, "a file with no path").with_subject(dir.display())
        );
    };
    let mut path = dir.to_path_buf();
    for component in parents {
        path.push(component);
        directory(&path, create)?;
    }
    path.push(name);
    let io = |e| Error::io(e, path.display());
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(access != Access::ReadOnly);
    let (file, before) = match std::fs::symlink_metadata(&path) {
        Ok(checked) if checked.is_file() => {
            let file = options.open(&path).map_err(io)?;
            if !same_file(&checked, &file.metadata().map_err(io)?) {
                return Err(
                    Error::new(ErrorKind::Io, "the file was replaced while being opened")
                        .with_subject(path.display()),
                );
            }
            (file, checked.len())
        }
        Ok(checked) => return Err(in_the_way(&path, &checked, "file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            // `create_new` never follows a link put there meanwhile.
            (options.create_new(true).open(&path).map_err(io)?, 0)
        }
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    Ok(Opened {
        file,
        path,
        meta,
        before,
    })
}

/// Makes sure `path` is a directory and not a link to one, creating it
/// when `create` is set.
fn directory(path: &Path, create: bool) -> Result<()> {
    let io = |e| Error::io(e, path.display());
    match std::fs::symlink_metadata(path) {
        Ok(checked) if checked.is_dir() => return Ok(()),
        Ok(checked) => return Err(in_the_way(path, &checked, "directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {}
        Err(e) => return Err(io(e)),
    }
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        // Made meanwhile: whatever it is must pass the check.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => directory(path, false),
        Err(e) => Err(io(e)),
    }
}

/// The error for something other than the `wanted` file or directory at
/// `path`.
fn in_the_way(path: &Path, found: &Metadata, wanted: &str) -> Error {
    let message = if found.file_type().is_symlink() {
        format!(
            "a symbolic link is where the torrent has a {wanted}; \
             partfetch does not follow links out of the download's directory"
        )
    } else {
        let found = if found.is_file() {
            "file"
        } else {
            describe_file_type(&found.file_type())
        };
        format!("a {found} is where the torrent has a {wanted}")
    };
    Error::new(ErrorKind::Io, message).with_subject(path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::fixture::{multi, single, Entry, Scratch, ODD_FILES};

    /// In pieces of 8: 33 bytes, the last piece short.
    const FILES: [Entry; 5] = ODD_FILES;

    fn file(dir: &Path, path: &str) -> Vec<u8> {
        std::fs::read(dir.join(path)).unwrap()
    }

    #[test]
    fn blocks_across_file_boundaries_land_in_their_files() {
        let scratch = Scratch::new("store");
        let (meta, content) = multi("t", &FILES, 8);
        let store = TorrentStore::open(meta, scratch.path()).unwrap();
        assert!(!store.had_data());
        // Every file is there at its full length before anything is written.
        assert_eq!(file(scratch.path(), "t/a"), [0; 7]);
        assert_eq!(file(scratch.path(), "t/empty"), []);
        assert_eq!(file(scratch.path(), "t/c"), [0; 13]);
        // Blocks of 5 cross every boundary: a/b, b/pad, pad/c.
        for start in (0..content.len()).step_by(5) {
            let end = (start + 5).min(content.len());
            store.write(start as u64, &content[start..end]).unwrap();
        }
        store.sync().unwrap();
        assert_eq!(file(scratch.path(), "t/a"), content[..7]);
        assert_eq!(file(scratch.path(), "t/sub/b"), content[7..17]);
        assert_eq!(file(scratch.path(), "t/c"), content[20..]);
        let mut back = vec![1; content.len()];
        store.read(0, &mut back).unwrap();
        assert_eq!(back, content);
        let paths: Vec<_> = store.paths().collect();
        assert_eq!(paths.len(), 4);
        assert_eq!(
            store.path(2),
            Some(scratch.path().join("t/sub/b").as_path())
        );
        assert_eq!(store.root(), scratch.path().join("t"));
    }

    #[test]
    fn pad_bytes_are_never_written_and_read_as_zeros() {
        let scratch = Scratch::new("pad");
        let (meta, _) = multi("t", &FILES, 8);
        let store = TorrentStore::open(meta, scratch.path()).unwrap();
        // Bytes 17..20 are the pad file's: whatever a peer sends there is
        // dropped.
        store.write(16, &[9; 5]).unwrap();
        assert!(!scratch.path().join("t/.pad").exists());
        let mut back = [1; 5];
        store.read(16, &mut back).unwrap();
        assert_eq!(back, [9, 0, 0, 0, 9]);
        assert_eq!(store.path(3), None);
    }

    #[test]
    fn a_piece_matches_only_with_the_right_bytes() {
        let scratch = Scratch::new("match");
        let (meta, content) = multi("t", &FILES, 8);
        let store = TorrentStore::open(meta, scratch.path()).unwrap();
        assert!(!store.piece_matches(0).unwrap());
        store.write(0, &content[..8]).unwrap();
        assert!(store.piece_matches(0).unwrap());
        // Piece 2 (16..24) holds the pad file: right with its zeros.
        store.write(16, &content[16..24]).unwrap();
        assert!(store.piece_matches(2).unwrap());
        store.write(3, &[content[3] ^ 1]).unwrap();
        assert!(!store.piece_matches(0).unwrap());
        // The last piece is one byte long.
        store.write(32, &content[32..]).unwrap();
        assert!(store.piece_matches(4).unwrap());
        assert_eq!(
            store.piece_matches(5).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let past = store.write(30, &[0; 4]).unwrap_err();
        assert_eq!(past.kind(), ErrorKind::InvalidInput);
        assert!(store.read(u64::MAX, &mut [0; 2]).is_err());
    }

    #[test]
    fn an_existing_file_is_kept_and_a_longer_one_not_truncated() {
        let scratch = Scratch::new("keep");
        let (meta, content) = single("f.iso", 20, 8);
        let path = scratch.path().join("f.iso");
        let mut longer = content.clone();
        longer.extend_from_slice(b"someone's tail");
        std::fs::write(&path, &longer).unwrap();
        let store = TorrentStore::open(meta.clone(), scratch.path()).unwrap();
        assert!(store.had_data());
        assert!((0..3).all(|i| store.piece_was_on_disk(i)));
        assert!(store.piece_matches(2).unwrap());
        drop(store);
        assert_eq!(std::fs::read(&path).unwrap(), longer);
        // A shorter one is extended, its bytes kept: only the pieces it
        // held whole were on disk.
        std::fs::write(&path, &content[..10]).unwrap();
        let store = TorrentStore::open(meta, scratch.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 20);
        assert!(store.piece_was_on_disk(0) && !store.piece_was_on_disk(1));
        assert!(store.piece_matches(0).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_in_a_path_is_refused_by_name() {
        let scratch = Scratch::new("link");
        let outside = Scratch::new("outside");
        let (meta, _) = multi("t", &FILES, 8);
        std::fs::create_dir(scratch.path().join("t")).unwrap();
        let link = scratch.path().join("t/sub");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        let err = TorrentStore::open(meta.clone(), scratch.path()).unwrap_err();
        assert_eq!(err.subject(), Some(link.display().to_string().as_str()));
        assert!(err.message().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // A link as the file itself, to a file outside, is refused too.
        std::fs::remove_file(&link).unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, b"keep").unwrap();
        // `a` was created by the open that stopped at `sub`.
        std::fs::remove_file(scratch.path().join("t/a")).unwrap();
        std::os::unix::fs::symlink(&target, scratch.path().join("t/a")).unwrap();
        let err = TorrentStore::open(meta, scratch.path()).unwrap_err();
        assert!(err.subject().unwrap().ends_with("t/a"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn a_file_where_a_directory_belongs_is_named() {
        let scratch = Scratch::new("in-the-way");
        let (meta, _) = multi("t", &FILES, 8);
        std::fs::create_dir(scratch.path().join("t")).unwrap();
        std::fs::write(scratch.path().join("t/sub"), b"x").unwrap();
        let err = TorrentStore::open(meta, scratch.path()).unwrap_err();
        assert_eq!(err.message(), "a file is where the torrent has a directory");
        assert!(err.subject().unwrap().ends_with("sub"));
    }

    #[test]
    fn more_files_than_stay_open_are_reopened_and_synced() {
        let scratch = Scratch::new("many");
        let names: Vec<String> = (0..MAX_OPEN_FILES + 20).map(|i| format!("f{i}")).collect();
        let paths: Vec<[&str; 1]> = names.iter().map(|n| [n.as_str()]).collect();
        let files: Vec<Entry> = paths.iter().map(|p| (&p[..], 3, false)).collect();
        let (meta, content) = multi("many", &files, 16);
        let store = TorrentStore::open(meta, scratch.path()).unwrap();
        // Backwards, so each write needs a file closed before.
        for start in (0..content.len()).step_by(16).rev() {
            let end = (start + 16).min(content.len());
            store.write(start as u64, &content[start..end]).unwrap();
        }
        assert!(store.open.lock().unwrap().len() <= MAX_OPEN_FILES);
        store.sync().unwrap();
        assert!(store
            .files
            .iter()
            .flatten()
            .all(|s| !s.dirty.load(Ordering::Relaxed)));
        let pieces = store.metainfo().layout().pieces();
        assert!((0..pieces).all(|i| store.piece_matches(i).unwrap()));
        assert_eq!(file(scratch.path(), "many/f0"), content[..3]);
    }

    #[test]
    fn several_threads_write_one_store() {
        let scratch = Scratch::new("threads");
        let (meta, content) = multi("t", &FILES, 8);
        let store = TorrentStore::open(meta, scratch.path()).unwrap();
        std::thread::scope(|s| {
            for part in 0..2 {
                let (store, content) = (&store, &content);
                s.spawn(move || {
                    for start in (part * 8..content.len()).step_by(16) {
                        let end = (start + 8).min(content.len());
                        store.write(start as u64, &content[start..end]).unwrap();
                    }
                });
            }
        });
        assert!((0..5).all(|i| store.piece_matches(i).unwrap()));
    }
}
