//! Saving a resource fetched in pieces: each piece written at its own
//! offset in `FILE.partfetch` the moment it arrives.
//!
//! Owns the data file opened for positional writes (locked against a second
//! partfetch) and the control file that lists the pieces on disk. A
//! checksum reads the bytes back from the start as far as they have no gap
//! ([`FollowingHash`]), so a file written out of order is still hashed
//! while it downloads, not in a pass after it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::download::checksum::FollowingHash;
use crate::download::control::{Checkpoint, State};
use crate::download::files::{self, state_path};
use crate::download::job::Job;
use crate::download::output::WriteError;
use crate::download::progress::Meter;
use crate::download::rate_limit::RateLimit;
use crate::engine::download::SegmentedDownload;
use crate::error::{Error, Result};
use crate::pieces::{FileStore, PieceStore};

/// `FILE.partfetch`, open for writes at any offset.
pub struct PieceFile {
    store: Arc<LimitedStore>,
    temp: PathBuf,
    target: PathBuf,
    /// The resource's `Last-Modified` (seconds after the epoch), given to
    /// FILE when complete.
    pub modified: Option<u64>,
}

/// The data file, with the download's rate limit applied to every write.
struct LimitedStore {
    file: FileStore,
    limit: Option<RateLimit>,
}

impl PieceStore for LimitedStore {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.file.write_at(offset, bytes)?;
        if let Some(limit) = &self.limit {
            limit.take(bytes.len());
        }
        Ok(())
    }
}

impl PieceFile {
    /// Opens `target.partfetch`, keeping what an earlier run wrote when
    /// `keep`, else empty.
    pub fn open(target: &Path, keep: bool, limit_rate: Option<u64>) -> Result<PieceFile> {
        let temp = files::temp_path(target);
        let file = files::open_locked(&temp)?;
        let piece_file = PieceFile {
            store: Arc::new(LimitedStore {
                file: FileStore::new(file, &temp),
                limit: limit_rate.map(RateLimit::new),
            }),
            temp,
            target: target.to_owned(),
            modified: None,
        };
        if !keep {
            piece_file.clear()?;
        }
        Ok(piece_file)
    }

    /// Where the pieces go.
    pub fn store(&self) -> Arc<dyn PieceStore> {
        self.store.clone()
    }

    /// Empties the file: the earlier run's bytes are worth nothing.
    pub fn clear(&self) -> Result<()> {
        self.file()
            .set_len(0)
            .map_err(|e| Error::io(e, self.temp.display()))
    }

    fn file(&self) -> &File {
        self.store.file.file()
    }

    fn sync(&self) -> std::result::Result<(), WriteError> {
        self.file()
            .sync_data()
            .map_err(|e| WriteError::Failed(Error::io(e, self.temp.display())))
    }
}

/// Downloads into `file` with `download`, which may continue an earlier
/// run; on success `file` is renamed to its final name. Returns the digest
/// checked, if one was asked for.
pub fn save(
    job: &Job,
    mut download: SegmentedDownload,
    file: PieceFile,
    meter: &mut Meter,
) -> std::result::Result<Option<[u8; 32]>, WriteError> {
    if let Some(hashes) = &job.piece_hashes {
        download.check_pieces(Arc::clone(hashes));
    }
    let length = download.length();
    let layout = download.layout();
    let state = State {
        url: job.url.clone(),
        length: Some(length),
        validator: download.validator().map(str::to_owned),
        done: 0,
        manifest: false,
        parts: Vec::new(),
        have: None,
        ahead: Vec::new(),
    };
    let mut checkpoint = Checkpoint::new(state_path(&file.temp), state);
    let record = |checkpoint: &mut Checkpoint, download: &SegmentedDownload| {
        // What is recorded was written before the sync that follows. Only
        // whole pieces count: a later run continues piece by piece.
        let have = download.have();
        checkpoint.state.done = layout.contiguous(have.first_missing_from(0), 0);
        checkpoint.state.have = Some((layout.piece_length(), have));
        checkpoint.save(|| file.sync())
    };
    record(&mut checkpoint, &download)?;
    let mut hash = match job.sha256 {
        Some(expected) => {
            let handle = file
                .file()
                .try_clone()
                .map_err(|e| WriteError::Failed(Error::io(e, file.temp.display())))?;
            Some(FollowingHash::start(handle, file.temp.clone(), expected))
        }
        None => None,
    };
    meter.set_total(Some(length));
    meter.skip(download.stored_bytes());
    let fetched = loop {
        match download.advance() {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(WriteError::Failed(e)),
        }
        meter.set_activity(download.activity().map(|(c, n)| (c, Some(n))));
        meter.reach(download.stored_bytes());
        if let Some(hash) = &mut hash {
            hash.follow(download.contiguous());
        }
        if checkpoint.due() {
            if let Err(e) = record(&mut checkpoint, &download) {
                break Err(e);
            }
        }
    };
    // The pieces stored since the last update: the final call counts them.
    meter.reach(download.stored_bytes());
    if let Err(err) = fetched {
        // Keep what is on disk for the next run, unless there is nothing.
        let _ = record(&mut checkpoint, &download);
        if download.have().is_empty() {
            let _ = std::fs::remove_file(checkpoint.path());
            let _ = std::fs::remove_file(&file.temp);
        }
        return Err(err);
    }
    file.sync()?;
    let mut digest = None;
    if let Some(hash) = hash {
        let what = file.target.display().to_string();
        match hash.finish(length, &what) {
            Ok(got) => digest = Some(got),
            Err(err) => {
                // A complete file with the wrong digest is kept to be
                // looked at, but is nothing to resume.
                let _ = std::fs::remove_file(checkpoint.path());
                return Err(err);
            }
        }
    }
    if let Some(secs) = file.modified {
        files::set_modified(file.file(), secs);
    }
    files::move_into_place(&file.temp, &file.target).map_err(WriteError::Failed)?;
    let _ = std::fs::remove_file(checkpoint.path());
    Ok(digest)
}
