//! The names partfetch writes beside FILE, and opening them safely.
//!
//! Owns `FILE.partfetch` (the data until it is complete) and
//! `FILE.partfetch.state` (the control file, written as `….state.new` and
//! renamed), `FILE.partfetch.ahead` (a manifest's parts fetched ahead and
//! kept), how they are named when FILE's name is long, how they are
//! created and opened without following a link planted there, the lock
//! against a second writer, and the rename into place that keeps the
//! replaced file's owner and permissions.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::util::fs::{describe_file_type, same_file};

pub use crate::util::fs::create_fresh;

/// The suffix of a file being written.
pub const TEMP_SUFFIX: &str = ".partfetch";

/// The suffix of the control file, after the data file's name.
pub const STATE_SUFFIX: &str = ".state";

/// The suffix of a control file being written, after its name: it is
/// renamed into place once complete.
pub const NEW_SUFFIX: &str = ".new";

/// `DATA.state`, the control file beside the data file `data`.
pub fn state_path(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(STATE_SUFFIX);
    PathBuf::from(name)
}

/// The suffix of the file, after the data file's name, that holds a
/// manifest's parts fetched ahead and kept when a run stopped.
pub const AHEAD_SUFFIX: &str = ".ahead";

/// `DATA.ahead`, beside the data file `data`.
pub fn ahead_path(data: &Path) -> PathBuf {
    let mut name = data.as_os_str().to_owned();
    name.push(AHEAD_SUFFIX);
    PathBuf::from(name)
}

/// The longest file name most file systems take (`NAME_MAX`), in bytes.
pub const NAME_MAX: usize = 255;

/// `FILE.partfetch`, beside FILE.
///
/// A name of up to 255 bytes is a valid FILE, but the suffixes would push
/// the temporary file, or its control file (`.partfetch.state`, written as
/// `.partfetch.state.new`), past what the file system takes, and a URL
/// whose last segment is that long could not be saved at all. The name is
/// then cut (at a character boundary) to leave room for them, and ends
/// with `~` and 8 hex digits of the full name's SHA-256: two long names
/// that share their beginning get temporary files of their own, and a
/// second run of the same command finds its own again.
pub fn temp_path(target: &Path) -> PathBuf {
    let room = NAME_MAX - TEMP_SUFFIX.len() - STATE_SUFFIX.len() - NEW_SUFFIX.len();
    let mut name = match target.file_name().and_then(|n| n.to_str()) {
        Some(file) if file.len() > room => {
            let digest = crate::sha256::to_hex(&crate::sha256::digest(file.as_bytes()));
            let mark = format!("~{}", &digest[..8]);
            let cut = (0..=room - mark.len())
                .rev()
                .find(|&i| file.is_char_boundary(i))
                .unwrap_or(0);
            std::ffi::OsString::from(format!("{}{mark}", &file[..cut]))
        }
        _ => target.file_name().unwrap_or_default().to_owned(),
    };
    name.push(TEMP_SUFFIX);
    target.with_file_name(name)
}

/// Renames the complete `temp` to `target`. A `target` that is there
/// already keeps its permissions, owner and group, as it does when a tool
/// rewrites it in place (`curl -o`, `wget -O`): the rename puts a new file
/// there, which would otherwise have the default ones and belong to
/// whoever ran the download (root, say, replacing a user's file).
pub fn move_into_place(temp: &Path, target: &Path) -> Result<(), Error> {
    if let Ok(meta) = std::fs::metadata(target) {
        if meta.is_file() {
            // Checked when the download began; again, for a file put there
            // since.
            check_replaceable(target)?;
            keep_owner(temp, &meta);
            // After the owner: a change of owner clears set-user-ID bits.
            std::fs::set_permissions(temp, meta.permissions())
                .map_err(|e| Error::io(e, temp.display()))?;
        }
    }
    std::fs::rename(temp, target).map_err(|e| Error::io(e, target.display()))
}

/// Gives `file` the resource's `Last-Modified`, `secs` after the epoch, as
/// its modification time (as `wget` does, and `curl -R`): a later run
/// asks the server whether FILE is still its current version by that date
/// (`If-Range`), and finds a complete download complete. Best effort: a
/// file system that refuses only costs that later run a download.
pub fn set_modified(file: &File, secs: u64) {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let _ = file.set_modified(at);
}

/// What `path`, a complete FILE, says of its version: its length and its
/// modification time in seconds after the epoch, when it is a regular
/// file that is not empty.
pub fn complete_file(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    (meta.is_file() && meta.len() > 0).then_some((meta.len(), modified.as_secs()))
}

/// Refuses to replace `target`, a regular file that is there, when the
/// user may not write it. A rename needs the right to write the directory,
/// not the file: in a directory anyone may write into (without the sticky
/// bit) it would put the download in place of another user's read-only
/// file. curl and wget open the file for writing and fail; so does this,
/// opening it for writing (without truncating, and closing it at once) to
/// ask the system rather than guess from permission bits, ACLs and
/// capabilities.
pub fn check_replaceable(target: &Path) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        // Never waits, should the file have become a FIFO.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(crate::util::open_flags::O_NONBLOCK);
    }
    match options.open(target) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(Error::new(
            ErrorKind::Io,
            "a file you may not write is there: it is not replaced (curl would not \
             write it either)",
        )
        .with_source(e)
        .with_subject(target.display())),
        _ => Ok(()),
    }
}

/// Gives `temp` the owner and group of the file it replaces, as far as
/// this user may: only root may give a file away, and a user may pick only
/// a group of their own. What cannot be kept is not an error, as with
/// `cp -p`: the download is there, under the same name, owned by its user.
#[cfg(unix)]
fn keep_owner(temp: &Path, replaced: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let (uid, gid) = (replaced.uid(), replaced.gid());
    if std::os::unix::fs::chown(temp, Some(uid), Some(gid)).is_err() {
        let _ = std::os::unix::fs::chown(temp, None, Some(gid));
    }
}

#[cfg(not(unix))]
fn keep_owner(_temp: &Path, _replaced: &std::fs::Metadata) {}

/// Opens (or creates) `temp` for reading and writing, without truncating
/// it, and locks it for as long as the file is open: a second partfetch
/// writing the same FILE is refused instead of interleaving its bytes.
///
/// An existing `temp` must be a regular file, not a symbolic link to one
/// (see [`create_fresh`]): it is checked without following links, then
/// opened, and the file opened must be the one checked.
pub fn open_locked(temp: &Path) -> Result<File, Error> {
    let io = |e: io::Error| Error::io(e, temp.display());
    let file = match std::fs::symlink_metadata(temp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_fresh(temp).map_err(io)?,
        Err(e) => return Err(io(e)),
        Ok(checked) if !checked.file_type().is_file() => {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "a {} is where partfetch keeps the partial file; remove it",
                    describe_file_type(&checked.file_type())
                ),
            )
            .with_subject(temp.display()));
        }
        Ok(checked) => {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(temp)
                .map_err(io)?;
            if !same_file(&checked, &file.metadata().map_err(io)?) {
                return Err(Error::new(
                    ErrorKind::Io,
                    "the partial file was replaced while being opened",
                )
                .with_subject(temp.display()));
            }
            file
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
            ErrorKind::Io,
            "another partfetch is writing this file",
        )
        .with_subject(temp.display())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_name_leaves_room_for_its_suffixes() {
        assert_eq!(
            temp_path(Path::new("dir/a.bin")),
            Path::new("dir/a.bin.partfetch")
        );
        let long = "é".repeat(120) + "x.bin"; // 245 bytes
        let temp = temp_path(&Path::new("dir").join(&long));
        let temp_name = temp.file_name().unwrap().to_str().unwrap();
        let state_name = format!("{temp_name}.state.new");
        assert!(state_name.len() <= NAME_MAX, "{}", state_name.len());
        assert!(temp_name.ends_with(".partfetch"));
        let (kept, mark) = temp_name
            .trim_end_matches(".partfetch")
            .rsplit_once('~')
            .unwrap();
        assert!(long.starts_with(kept) && kept.len() > 200, "{temp_name}");
        assert_eq!(mark.len(), 8);
        assert_eq!(temp.parent(), Some(Path::new("dir")));
    }

    #[test]
    fn long_names_that_share_their_beginning_get_temporary_names_of_their_own() {
        let a = "a".repeat(240) + "-1.bin";
        let b = "a".repeat(240) + "-2.bin";
        assert_ne!(temp_path(Path::new(&a)), temp_path(Path::new(&b)));
        assert_eq!(
            temp_path(Path::new(&a)),
            temp_path(Path::new(&a)),
            "a second run finds the same temporary file"
        );
    }
}
