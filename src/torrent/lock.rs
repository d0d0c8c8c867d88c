//! The lock that keeps two partfetch processes from downloading one
//! torrent into one directory at once: their pieces would interleave in
//! the same files, and each would replace the other's control file.
//!
//! `DIR/NAME.partfetch.lock`, beside the control file, held with an
//! advisory lock ([`File::try_lock`]) for as long as a download runs. The
//! system releases the lock with the process, however it ends (`kill -9`
//! included); the file itself is removed when the download ends, and one
//! left by a killed run is just taken again. The control file cannot hold
//! the lock itself: it is replaced by a rename at every save, and a lock
//! stays with the file it was taken on.
//!
//! Seeding takes no lock: it writes nothing.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::resume::state_path;
use super::Metainfo;
use crate::error::{Error, ErrorKind, Result};

/// The lock file's suffix, after the torrent's name.
pub const LOCK_SUFFIX: &str = ".partfetch.lock";

/// `DIR/NAME.partfetch.lock`: the control file's name with `.lock` for
/// `.state`, so a long name is cut as the control file's is (and the
/// shorter suffix always fits).
pub fn lock_path(dir: &Path, meta: &Metainfo) -> PathBuf {
    let state = state_path(dir, meta);
    let name = state
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(super::resume::STATE_SUFFIX))
        .unwrap_or_else(|| meta.name());
    dir.join(format!("{name}{LOCK_SUFFIX}"))
}

/// A download's hold on its directory, until dropped.
#[derive(Debug)]
pub struct DownloadLock {
    path: PathBuf,
    /// Open for as long as the lock is held: closing it releases it.
    _file: File,
}

impl DownloadLock {
    /// Takes the lock of `meta`'s download into `dir` (created if need
    /// be), or fails at once with an error naming `dir` when another
    /// process holds it.
    pub fn take(dir: &Path, meta: &Metainfo) -> Result<DownloadLock> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir.display()))?;
        let path = lock_path(dir, meta);
        let io = |e: std::io::Error| Error::io(e, path.display());
        // A holder removes the file before it lets go of the lock, so a
        // file locked after it was removed (opened just before) is no
        // lock: open again, a few times at most.
        for _ in 0..8 {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            #[cfg(unix)]
            {
                // Never through a link planted there.
                use std::os::unix::fs::OpenOptionsExt;
                options.custom_flags(crate::util::open_flags::O_NOFOLLOW);
            }
            let file = options.open(&path).map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "another partfetch is downloading {} into this directory \
                             (it holds {})",
                            meta.name(),
                            path.display()
                        ),
                    )
                    .with_subject(dir.display()));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
            let still_there = std::fs::symlink_metadata(&path)
                .ok()
                .zip(file.metadata().ok())
                .is_some_and(|(named, locked)| crate::util::fs::same_file(&named, &locked));
            if still_there {
                return Ok(DownloadLock { path, _file: file });
            }
        }
        Err(Error::new(
            ErrorKind::Io,
            "the lock file keeps being replaced while it is taken",
        )
        .with_subject(path.display()))
    }
}

impl Drop for DownloadLock {
    /// Removes the file while the lock is still held, then releases it
    /// (the file closes after this body).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::fixture::{single, Scratch};

    #[test]
    fn a_second_lock_on_the_same_download_fails_naming_the_directory_until_the_first_goes() {
        let scratch = Scratch::new("lock");
        let (meta, _) = single("f.bin", 10, 4);
        let dir = scratch.path().join("into");
        let first = DownloadLock::take(&dir, &meta).unwrap();
        assert!(lock_path(&dir, &meta).exists());
        let err = DownloadLock::take(&dir, &meta).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(err.subject(), Some(dir.display().to_string().as_str()));
        assert!(err.message().contains("another partfetch"), "{err}");
        drop(first);
        assert!(!lock_path(&dir, &meta).exists(), "removed with the lock");
        let again = DownloadLock::take(&dir, &meta).unwrap();
        drop(again);
    }

    #[test]
    fn a_lock_file_left_by_a_killed_run_is_taken_again() {
        let scratch = Scratch::new("lock-left");
        let (meta, _) = single("f.bin", 10, 4);
        let dir = scratch.path().to_path_buf();
        std::fs::write(lock_path(&dir, &meta), b"").unwrap();
        let lock = DownloadLock::take(&dir, &meta).unwrap();
        drop(lock);
    }

    #[test]
    fn the_lock_name_is_the_control_file_name_with_lock_for_state() {
        let (meta, _) = single("f.bin", 10, 4);
        let dir = Path::new("d");
        let state = state_path(dir, &meta);
        let lock = lock_path(dir, &meta);
        let state = state.to_str().unwrap();
        assert_eq!(
            lock.to_str().unwrap(),
            format!("{}.lock", state.strip_suffix(".state").unwrap())
        );
    }
}
