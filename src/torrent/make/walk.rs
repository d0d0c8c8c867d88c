//! What goes into a torrent being made: the file a path names, or the
//! files under the directory it names, with the names the torrent gives
//! them, in the order their bytes are laid end to end.
//!
//! Owns the rules of the listing:
//!
//! - **Order**: files sorted by their path under the directory, compared
//!   as bytes with `/` between components, as `mktorrent` sorts them, so
//!   the same tree always makes the same info-hash (and the same one as
//!   `mktorrent` does).
//! - **Hidden entries** (names starting with `.`) inside the directory are
//!   left out, with what they hold, as `transmission-create` does: editor
//!   backups, `.git`, `.DS_Store` are rarely meant to be published. A
//!   hidden path given by name is taken, since it was named.
//! - **Symbolic links are followed**, to files and to directories, as
//!   `mktorrent` and `transmission-create` both do: a directory of links
//!   is a common way to gather a torrent's files. A link that leads to a
//!   directory holding it (a loop) is refused, and so is a link that leads
//!   nowhere: `transmission-create` leaves such a link out with a warning
//!   and `mktorrent` stops; a torrent silently missing a file is worse
//!   than an error naming it.
//! - **Special files** (named pipes, sockets, devices) inside the
//!   directory are left out and listed in [`Listing::skipped`], as
//!   `mktorrent` leaves them out (reading a pipe could wait forever); a
//!   path naming one is refused.
//! - Every name must be UTF-8 and a component partfetch's own reader
//!   accepts ([`check_component`]): a torrent that partfetch would refuse
//!   to download is not made.
//!
//! Reading the files' bytes is `hash`'s.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::torrent::path::{check_component, check_path, PathProblem, MAX_COMPONENTS};
use crate::util::fs::{describe_file_type, file_id};

/// The files of a torrent being made.
#[derive(Debug)]
pub(super) struct Listing {
    /// The torrent's name: the last component of the path given.
    pub name: String,
    /// Whether the path is a file (a single-file torrent) rather than a
    /// directory.
    pub single: bool,
    /// The files, in the torrent's order.
    pub files: Vec<Entry>,
    /// Special files left out, as found on disk.
    pub skipped: Vec<PathBuf>,
    /// The files' lengths added up.
    pub total: u64,
}

/// One file of a [`Listing`].
#[derive(Debug)]
pub(super) struct Entry {
    /// Where it is read from.
    pub disk: PathBuf,
    /// Its path under the torrent's name (empty for a single file).
    pub components: Vec<String>,
    /// Its length when listed: exactly this many bytes are read.
    pub length: u64,
}

/// Lists what a torrent of `path` holds.
pub(super) fn list(path: &Path) -> Result<Listing> {
    let name = torrent_name(path)?;
    let meta = std::fs::metadata(path).map_err(|e| followed_error(e, path))?;
    let mut listing = Listing {
        name,
        single: meta.is_file(),
        files: Vec::new(),
        skipped: Vec::new(),
        total: 0,
    };
    if meta.is_file() {
        listing.files.push(Entry {
            disk: path.to_owned(),
            components: Vec::new(),
            length: meta.len(),
        });
    } else if meta.is_dir() {
        let mut walk = Walk {
            files: &mut listing.files,
            skipped: &mut listing.skipped,
            ancestors: file_id(&meta).into_iter().collect(),
        };
        walk.directory(path, &mut Vec::new())?;
        if listing.files.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "no file to put in a torrent in this directory (hidden ones are left out)",
            )
            .with_subject(path.display()));
        }
        // Sorted by the path's bytes with '/' between components, which
        // is not the order of the components compared one by one
        // (`a-b` comes before `a/b`): the order mktorrent writes.
        listing
            .files
            .sort_by_cached_key(|entry| entry.components.join("/"));
    } else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a {} cannot be put in a torrent, only a file or a directory",
                describe_file_type(&meta.file_type())
            ),
        )
        .with_subject(path.display()));
    }
    for entry in &listing.files {
        let mut full = Vec::with_capacity(entry.components.len() + 1);
        full.push(listing.name.clone());
        full.extend(entry.components.iter().cloned());
        check_path(&full).map_err(|problem| bad_name(problem, &entry.disk))?;
        listing.total = listing
            .total
            .checked_add(entry.length)
            .filter(|&total| total <= i64::MAX as u64)
            .ok_or_else(|| {
                Error::new(ErrorKind::Limit, "the files add up to too many bytes")
                    .with_subject(path.display())
            })?;
    }
    if listing.total == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "nothing to put in a torrent: the files hold no bytes",
        )
        .with_subject(path.display()));
    }
    Ok(listing)
}

/// The torrent's name: the path's last component, or, for a path that
/// ends in none (`.`, `..`, `dir/..`), the last component of where it
/// leads.
pub(super) fn torrent_name(path: &Path) -> Result<String> {
    let ends_in_name = matches!(
        path.components().next_back(),
        Some(std::path::Component::Normal(_))
    );
    let resolved;
    let named = if ends_in_name {
        path
    } else {
        resolved = std::fs::canonicalize(path).map_err(|e| Error::io(e, path.display()))?;
        &resolved
    };
    let Some(name) = named.file_name() else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "no name to give the torrent: the root directory has none",
        )
        .with_subject(path.display()));
    };
    component(name, path)
}

/// A file name as a checked component of a torrent's path.
fn component(name: &std::ffi::OsStr, disk: &Path) -> Result<String> {
    let name = name
        .to_str()
        .ok_or_else(|| bad_name(PathProblem::NotUtf8, disk))?;
    check_component(name).map_err(|problem| bad_name(problem, disk))?;
    Ok(name.to_owned())
}

fn bad_name(problem: PathProblem, disk: &Path) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("cannot be put in a torrent: its path has {problem}"),
    )
    .with_subject(disk.display())
}

/// The error of a `metadata` call, which follows links: a link that
/// leads nowhere says so.
fn followed_error(e: std::io::Error, disk: &Path) -> Error {
    let dangling = e.kind() == std::io::ErrorKind::NotFound
        && std::fs::symlink_metadata(disk).is_ok_and(|m| m.file_type().is_symlink());
    if dangling {
        return Error::new(
            ErrorKind::Io,
            "a symbolic link to nothing (a torrent would miss its file)",
        )
        .with_subject(disk.display())
        .with_source(e);
    }
    Error::io(e, disk.display())
}

/// A walk of a directory tree.
struct Walk<'a> {
    files: &'a mut Vec<Entry>,
    skipped: &'a mut Vec<PathBuf>,
    /// The identities of the directories from the top to the one being
    /// read: a link to one of them is a loop.
    ancestors: Vec<(u64, u64)>,
}

impl Walk<'_> {
    /// Adds the files under `dir`, whose path under the torrent's name is
    /// `components`.
    fn directory(&mut self, dir: &Path, components: &mut Vec<String>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(e, dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(e, dir.display()))?;
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let disk = entry.path();
            let name = component(&name, &disk)?;
            let meta = std::fs::metadata(&disk).map_err(|e| followed_error(e, &disk))?;
            components.push(name);
            let added = self.add(disk, &meta, components);
            components.pop();
            added?;
        }
        Ok(())
    }

    /// Adds `disk`, a file or directory whose path under the torrent's
    /// name is `components`.
    fn add(&mut self, disk: PathBuf, meta: &Metadata, components: &mut Vec<String>) -> Result<()> {
        if meta.is_file() {
            self.files.push(Entry {
                disk,
                components: components.clone(),
                length: meta.len(),
            });
            return Ok(());
        }
        if !meta.is_dir() {
            self.skipped.push(disk);
            return Ok(());
        }
        // The torrent's name is one more component.
        if components.len() + 1 >= MAX_COMPONENTS {
            return Err(bad_name(PathProblem::TooLong, &disk));
        }
        let id = file_id(meta);
        if id.is_some_and(|id| self.ancestors.contains(&id)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a symbolic link to a directory that holds it: the tree would never end",
            )
            .with_subject(disk.display()));
        }
        self.ancestors.extend(id);
        let walked = self.directory(&disk, components);
        if id.is_some() {
            self.ancestors.pop();
        }
        walked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::fixture::Scratch;

    fn write(root: &Path, path: &str, bytes: &[u8]) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn paths(listing: &Listing) -> Vec<String> {
        listing
            .files
            .iter()
            .map(|e| e.components.join("/"))
            .collect()
    }

    #[test]
    fn files_are_in_the_order_of_their_paths_bytes_whatever_the_disk_says() {
        let scratch = Scratch::new("walk-order");
        let root = scratch.path().join("set");
        for path in ["b", "a/b", "a-b", "a/a", "B", "z/y/x", "empty", "é"] {
            write(&root, path, path.as_bytes());
        }
        std::fs::write(root.join("empty"), b"").unwrap();
        let listing = list(&root).unwrap();
        assert_eq!(listing.name, "set");
        assert!(!listing.single);
        // '-' (0x2d) sorts before '/' (0x2f): mktorrent's order.
        assert_eq!(
            paths(&listing),
            ["B", "a-b", "a/a", "a/b", "b", "empty", "z/y/x", "é"]
        );
        assert_eq!(listing.total, 1 + 3 + 3 + 3 + 1 + 5 + 2);
        assert_eq!(listing.files[6].disk, root.join("z/y/x"));
        assert_eq!(listing.files[6].length, 5);
    }

    #[test]
    fn hidden_entries_inside_are_left_out_but_a_hidden_path_given_is_taken() {
        let scratch = Scratch::new("walk-hidden");
        let root = scratch.path().join("set");
        write(&root, "kept", b"1");
        write(&root, ".hidden", b"2");
        write(&root, ".git/config", b"3");
        write(&root, "sub/.swp", b"4");
        write(&root, "sub/visible", b"5");
        let listing = list(&root).unwrap();
        assert_eq!(paths(&listing), ["kept", "sub/visible"]);
        let hidden = list(&root.join(".hidden")).unwrap();
        assert_eq!((hidden.name.as_str(), hidden.single), (".hidden", true));
        let hidden_dir = list(&root.join(".git")).unwrap();
        assert_eq!(hidden_dir.name, ".git");
        assert_eq!(paths(&hidden_dir), ["config"]);
    }

    #[test]
    fn a_single_file_is_named_after_it_and_a_trailing_slash_or_dot_is_resolved() {
        let scratch = Scratch::new("walk-single");
        write(scratch.path(), "dir/film.mkv", b"film");
        let file = list(&scratch.path().join("dir/film.mkv")).unwrap();
        assert!(file.single);
        assert_eq!((file.name.as_str(), file.total), ("film.mkv", 4));
        assert!(file.files[0].components.is_empty());
        let slash = PathBuf::from(format!("{}/dir/", scratch.path().display()));
        assert_eq!(list(&slash).unwrap().name, "dir");
        let dots = scratch.path().join("dir/sub/..");
        std::fs::create_dir(scratch.path().join("dir/sub")).unwrap();
        assert_eq!(list(&dots).unwrap().name, "dir");
        assert_eq!(list(&scratch.path().join("dir/.")).unwrap().name, "dir");
    }

    #[test]
    fn nothing_to_hash_is_an_error_naming_the_path() {
        let scratch = Scratch::new("walk-empty");
        let root = scratch.path().join("set");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        write(&root, ".only-hidden", b"x");
        let err = list(&root).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.subject(), Some(root.display().to_string().as_str()));
        assert!(err.message().contains("no file"), "{err}");
        write(&root, "zero", b"");
        let err = list(&root).unwrap_err();
        assert!(err.message().contains("no bytes"), "{err}");
        let err = list(&root.join("zero")).unwrap_err();
        assert!(err.message().contains("no bytes"), "{err}");
        let missing = root.join("missing");
        let err = list(&missing).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(err.subject(), Some(missing.display().to_string().as_str()));
        assert_eq!(
            list(Path::new("/")).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn names_partfetch_would_refuse_to_download_are_refused() {
        let scratch = Scratch::new("walk-names");
        let root = scratch.path().join("set");
        write(&root, "fine", b"1");
        write(&root, "con.txt", b"2");
        let err = list(&root).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("Windows reserves"), "{err}");
        assert_eq!(
            err.subject(),
            Some(root.join("con.txt").display().to_string().as_str())
        );
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let scratch = Scratch::new("walk-latin1");
            let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
            std::fs::write(scratch.path().join(name), b"x").unwrap();
            let err = list(scratch.path()).unwrap_err();
            assert!(err.message().contains("not UTF-8"), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_but_loops_and_dangling_links_are_refused() {
        use std::os::unix::fs::symlink;
        let scratch = Scratch::new("walk-links");
        let root = scratch.path().join("set");
        write(scratch.path(), "outside/file", b"out");
        write(scratch.path(), "outside/dir/inner", b"in");
        write(&root, "real", b"real");
        symlink(scratch.path().join("outside/file"), root.join("to-file")).unwrap();
        symlink(scratch.path().join("outside/dir"), root.join("to-dir")).unwrap();
        symlink("real", root.join("relative")).unwrap();
        let listing = list(&root).unwrap();
        assert_eq!(
            paths(&listing),
            ["real", "relative", "to-dir/inner", "to-file"]
        );
        assert_eq!(listing.total, 4 + 4 + 2 + 3);
        // The path given may be a link too: named after the link.
        symlink(&root, scratch.path().join("alias")).unwrap();
        assert_eq!(list(&scratch.path().join("alias")).unwrap().name, "alias");

        symlink("..", root.join("sub-loop")).unwrap();
        let err = list(&root).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("never end"), "{err}");
        std::fs::remove_file(root.join("sub-loop")).unwrap();

        symlink("nowhere", root.join("dangling")).unwrap();
        let err = list(&root).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains("link to nothing"), "{err}");
        assert_eq!(
            err.subject(),
            Some(root.join("dangling").display().to_string().as_str())
        );
        // A hidden one is never looked at.
        std::fs::rename(root.join("dangling"), root.join(".dangling")).unwrap();
        assert_eq!(list(&root).unwrap().files.len(), 4);
    }

    #[cfg(unix)]
    #[test]
    fn special_files_inside_are_skipped_and_one_given_is_refused() {
        let scratch = Scratch::new("walk-special");
        let root = scratch.path().join("set");
        write(&root, "file", b"1");
        let pipe = root.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status();
        if !made.is_ok_and(|s| s.success()) {
            return; // No mkfifo here: nothing to test with.
        }
        let listing = list(&root).unwrap();
        assert_eq!(paths(&listing), ["file"]);
        assert_eq!(listing.skipped, std::slice::from_ref(&pipe));
        let err = list(&pipe).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("named pipe"), "{err}");
    }
}
