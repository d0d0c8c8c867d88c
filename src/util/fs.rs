//! Creating and replacing local files without following a link planted
//! where partfetch writes: the pieces an HTTP download's files and a
//! torrent's store and control file share.
//!
//! Owns creating a name afresh ([`create_fresh`]), replacing a small file
//! atomically ([`replace_file`]), and telling files apart
//! ([`same_file`], [`file_id`], [`describe_file_type`]). Which names are
//! written, and what they hold, is left to the callers.

use std::fs::{File, FileType, Metadata};
use std::io::{self, Write};
use std::path::Path;

/// Creates `path` anew for writing, in place of whatever non-directory is
/// there, without following a symbolic link.
///
/// The names partfetch writes beside FILE (`FILE.partfetch`, its control
/// file) are its own; whatever holds one of them is replaced. Opening it
/// as it is would write through a symbolic link planted there (in a
/// directory others can write to, a way to overwrite a file of the user's
/// elsewhere), or wait forever on a named pipe. The name is removed, then
/// created exclusively (`O_EXCL`, which never follows a link): a link put
/// back in between makes the creation fail, not write through it.
pub fn create_fresh(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
}

/// Replaces `path` with a file holding `bytes`, so that after a crash it
/// holds either the old bytes or the new ones, never a mix: they are
/// written to `temp` (created with [`create_fresh`]) and synced, `temp`
/// is renamed over `path`, and the directory is synced so the rename
/// itself is durable.
///
/// Syncing a directory is best effort: Windows cannot open one, and some
/// file systems refuse to sync one. The rename is then as durable as that
/// system makes it, which is what every other program there gets.
///
/// When it fails, `temp` is removed: a full disk, say, leaves no empty
/// `temp` beside `path` (the old `path` stays as it was).
pub fn replace_file(path: &Path, temp: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file_with(path, temp, &[bytes])
}

/// [`replace_file`], with the new bytes in `pieces`, one after the other
/// (never gathered into one buffer).
pub fn replace_file_with(path: &Path, temp: &Path, pieces: &[&[u8]]) -> io::Result<()> {
    let mut file = create_fresh(temp)?;
    let written = pieces
        .iter()
        .try_for_each(|piece| file.write_all(piece))
        .and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(temp, path)) {
        let _ = std::fs::remove_file(temp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// What a file that is not a regular one is, for a message.
pub fn describe_file_type(file_type: &FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "named pipe";
        }
        if file_type.is_socket() {
            return "socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "device";
        }
    }
    if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// Whether two metadata taken a moment apart describe the same file.
#[cfg(unix)]
pub fn same_file(a: &Metadata, b: &Metadata) -> bool {
    file_id(a) == file_id(b)
}

/// Whether two metadata taken a moment apart describe the same file
/// (without a stable file identity in std, its length and time of change).
#[cfg(not(unix))]
pub fn same_file(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

/// A file's identity for as long as it exists (device and inode), where
/// the system gives one that std exposes.
#[cfg(unix)]
pub fn file_id(meta: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

/// None: std has no stable file identity here.
#[cfg(not(unix))]
pub fn file_id(_meta: &Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_holds_the_new_bytes_and_no_temporary_is_left() {
        let dir = std::env::temp_dir().join(format!("partfetch-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (path, temp) = (dir.join("state"), dir.join("state.new"));
        std::fs::write(&path, b"old").unwrap();
        std::fs::write(&temp, b"left by a crash").unwrap();
        replace_file(&path, &temp, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!temp.exists());
        let meta = std::fs::metadata(&path).unwrap();
        assert!(same_file(&meta, &std::fs::metadata(&path).unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_replacement_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("partfetch-fs-fail-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("state/inside")).unwrap();
        // A directory that is not empty cannot be renamed over.
        let (path, temp) = (dir.join("state"), dir.join("state.new"));
        assert!(replace_file(&path, &temp, b"new").is_err());
        assert!(!temp.exists(), "the failed write's temporary is removed");
        assert!(path.join("inside").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
