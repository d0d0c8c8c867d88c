//! The served directory: request targets to files, never outside it.
//!
//! Owns decoding a request target into path segments, refusing what could
//! name something outside DIR (`..`, encoded slashes and backslashes, NUL),
//! resolving symbolic links and refusing those that lead out, opening what
//! a target names and checking that what was opened lies under DIR, the
//! validators of a file (`ETag`, `Last-Modified`), its `Content-Type`, and
//! the plain-text listing of a directory. The HTTP answer is `respond`'s.
//!
//! Segments are checked after percent-decoding, so `%2e%2e` is `..` and
//! refused; `%2F` is refused before decoding, since a slash inside a
//! segment is a second segment the client hid from the path syntax. The
//! resolved path is canonicalized and must still lie under DIR's canonical
//! path: a symbolic link inside DIR may point anywhere inside DIR.
//!
//! A name checked is not yet a file opened: whoever can write into DIR may
//! swap a directory for a link out of it between the two (nginx's
//! `disable_symlinks` exists for this). So the canonical path is opened
//! without following a link in its last component (`O_NOFOLLOW`), and the
//! descriptor itself is checked: on Linux the path the kernel gives it
//! (`/proc/self/fd/N`) must lie under DIR; elsewhere, or without `/proc`,
//! the file found at the canonical path after the open must be the one
//! open (same device and inode). A directory is listed through its open
//! descriptor too. Nothing outside DIR is read, however the names change.
//! The open does not wait (`O_NONBLOCK`) and the descriptor's type decides
//! what is served, so a FIFO or a device swapped in is a 404, never a
//! worker blocked in `open`.

use std::fs::{File, Metadata, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Why a target names no servable file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The target is not a path this server accepts (400).
    BadPath,
    /// Nothing servable there, or it lies outside DIR (404).
    NotFound,
}

/// What a target names.
#[derive(Debug)]
pub enum Resolved {
    /// A regular file, open, with its metadata.
    File {
        /// The canonical path.
        path: PathBuf,
        /// The open file.
        file: File,
        /// Its metadata, taken from the open file.
        meta: Metadata,
    },
    /// A directory, open.
    Dir {
        /// The canonical path.
        path: PathBuf,
        /// The open directory, to list what was checked.
        dir: File,
    },
}

/// The decoded path segments of `target` (query and fragment dropped), with
/// `.` and empty segments skipped.
pub fn segments(target: &str) -> Result<Vec<String>, Refusal> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let path = path.strip_prefix('/').ok_or(Refusal::BadPath)?;
    let mut out = Vec::new();
    for raw in path.split('/') {
        let lower = raw.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return Err(Refusal::BadPath);
        }
        let segment = String::from_utf8(percent_decode(raw)?).map_err(|_| Refusal::BadPath)?;
        if segment == ".." || segment.contains(['\0', '\\', '/']) {
            return Err(Refusal::BadPath);
        }
        if !segment.is_empty() && segment != "." {
            out.push(segment);
        }
    }
    Ok(out)
}

/// Resolves `target` under `root`, which must be canonical.
pub fn resolve(root: &Path, target: &str) -> Result<Resolved, Refusal> {
    let mut path = root.to_path_buf();
    let segments = segments(target)?;
    // `/file.txt/` names a directory, which a file is not (as nginx and the
    // file system itself answer).
    let names_a_directory = !segments.is_empty()
        && target
            .split(['?', '#'])
            .next()
            .is_some_and(|p| p.ends_with('/'));
    path.extend(segments);
    let path = path.canonicalize().map_err(|_| Refusal::NotFound)?;
    if !path.starts_with(root) {
        return Err(Refusal::NotFound);
    }
    // What is open decides, not what the name was a moment ago: a FIFO
    // (opened without waiting) or a device is refused here.
    let file = open_unfollowed(&path).map_err(|_| Refusal::NotFound)?;
    let meta = file.metadata().map_err(|_| Refusal::NotFound)?;
    if !opened_under(&file, &meta, root, &path) {
        return Err(Refusal::NotFound);
    }
    if meta.is_dir() {
        return Ok(Resolved::Dir { path, dir: file });
    }
    if names_a_directory || !meta.is_file() {
        return Err(Refusal::NotFound);
    }
    Ok(Resolved::File { path, file, meta })
}

/// Opens `path` for reading without following a symbolic link in its last
/// component (the earlier ones are checked on the descriptor afterwards)
/// and without waiting: a FIFO swapped in for a file would otherwise hold
/// the worker in `open` until a writer came, for ever. `O_NONBLOCK`
/// changes nothing for a regular file's reads.
fn open_unfollowed(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Whether the open `file` (with its metadata `meta`, opened through the
/// canonical `path`) lies under `root`.
fn opened_under(file: &File, meta: &Metadata, root: &Path, path: &Path) -> bool {
    #[cfg(target_os = "linux")]
    if let Ok(opened) = std::fs::read_link(descriptor_path(file)) {
        return opened.starts_with(root);
    }
    let _ = file;
    same_file_at(meta, root, path)
}

/// Whether the file now at the canonical form of `path` lies under `root`
/// and is the one `meta` describes: a file opened through a link swapped
/// in for a moment is another file than the one the name leads to now.
fn same_file_at(meta: &Metadata, root: &Path, path: &Path) -> bool {
    let Some(now) = path
        .canonicalize()
        .ok()
        .filter(|p| p.starts_with(root))
        .and_then(|p| std::fs::metadata(p).ok())
    else {
        return false;
    };
    match (
        crate::util::fs::file_id(meta),
        crate::util::fs::file_id(&now),
    ) {
        (Some(a), Some(b)) => a == b,
        // No file identity in std here: the canonical check is all there is.
        _ => true,
    }
}

/// A name that leads to the open `file` itself, whatever names change:
/// its descriptor under `/proc/self/fd`.
#[cfg(target_os = "linux")]
fn descriptor_path(file: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// The listing of the open directory `dir` (found at `path`): read through
/// its descriptor where the system gives one a name, so a directory
/// swapped in after the check is not what is listed.
pub fn listing_of(dir: &File, path: &Path) -> std::io::Result<Vec<u8>> {
    #[cfg(target_os = "linux")]
    if let Ok(text) = listing(&descriptor_path(dir)) {
        return Ok(text);
    }
    let _ = dir;
    listing(path)
}

/// Seconds since the epoch of the file's last modification (0 if unknown).
pub fn modified_secs(meta: &Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// A strong entity tag: length and modification time to the nanosecond,
/// so a rewrite of the same size within one second still changes it.
pub fn etag(meta: &Metadata) -> String {
    let nanos = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{nanos:x}\"", meta.len())
}

/// The `Content-Type` for a file name.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "parts" => "text/parts-manifest",
        "txt" | "md" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// The entries of `dir`, one name a line, sorted, directories with a
/// trailing `/`. Names that are not UTF-8 or hold a line break are left
/// out: they could not be requested or would break the format.
pub fn listing(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(mut name) = entry.file_name().into_string() else {
            continue;
        };
        // A line break would split the listing's line; a backslash is
        // refused in a request (it is a separator on some clients), so
        // listing the name would offer what then answers 400.
        if name.contains(['\n', '\r', '\\']) {
            continue;
        }
        if entry.path().is_dir() {
            name.push('/');
        }
        names.push(name);
    }
    names.sort();
    let mut out = Vec::new();
    for name in names {
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// Strict `%XX` decoding: a `%` not followed by two hex digits is refused.
fn percent_decode(text: &str) -> Result<Vec<u8>, Refusal> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(Refusal::BadPath)?;
            let hex = std::str::from_utf8(hex).map_err(|_| Refusal::BadPath)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| Refusal::BadPath)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_decode_into_segments() {
        assert_eq!(segments("/").unwrap(), Vec::<String>::new());
        assert_eq!(segments("/a/b%20c?x=../..#f").unwrap(), ["a", "b c"]);
        assert_eq!(segments("/a//./b/").unwrap(), ["a", "b"]);
        assert_eq!(segments("/caf%C3%A9").unwrap(), ["café"]);
    }

    #[test]
    fn escapes_from_the_directory_are_refused() {
        for bad in [
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/x",
            "/.%2E/x",
            "/a%2f..%2fb",
            "/a%2F..",
            "/..%5cx",
            "/a\\..\\b",
            "/a%00b",
            "/%zz",
            "/%4",
            "/%ff",
            "relative",
            "http://h/x",
            "*",
        ] {
            assert_eq!(segments(bad), Err(Refusal::BadPath), "{bad}");
        }
    }

    #[test]
    fn types_follow_the_extension() {
        assert_eq!(content_type(Path::new("a.PARTS")), "text/parts-manifest");
        assert_eq!(content_type(Path::new("a.bin")), "application/octet-stream");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_out_of_the_directory_are_not_followed() {
        let base = std::env::temp_dir().join(format!("partfetch-files-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(base.join("secret"), b"s").unwrap();
        std::fs::write(root.join("sub/inside"), b"i").unwrap();
        std::os::unix::fs::symlink(base.join("secret"), root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/inside"), root.join("in")).unwrap();
        let root = root.canonicalize().unwrap();
        let found = resolve(&root, "/in");
        let refused = resolve(&root, "/out");
        let dir = resolve(&root, "/sub");
        let listed = listing(&root).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        assert!(matches!(found, Ok(Resolved::File { .. })));
        assert_eq!(refused.unwrap_err(), Refusal::NotFound);
        assert!(matches!(dir, Ok(Resolved::Dir { .. })));
        assert_eq!(listed, b"in\nout\nsub/\n");
    }

    #[test]
    fn a_file_is_not_a_directory_and_unservable_names_are_not_listed() {
        let root = std::env::temp_dir().join(format!("partfetch-names-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("file.txt"), b"f").unwrap();
        std::fs::write(root.join("back\\slash"), b"b").unwrap();
        let root = root.canonicalize().unwrap();
        let file = resolve(&root, "/file.txt");
        let as_dir = resolve(&root, "/file.txt/");
        let as_dir_with_query = resolve(&root, "/file.txt/?x=1");
        let dir = resolve(&root, "/sub/");
        let back_slash = resolve(&root, "/back%5Cslash");
        let listed = listing(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert!(matches!(file, Ok(Resolved::File { .. })));
        assert_eq!(as_dir.unwrap_err(), Refusal::NotFound);
        assert_eq!(as_dir_with_query.unwrap_err(), Refusal::NotFound);
        assert!(matches!(dir, Ok(Resolved::Dir { .. })));
        assert_eq!(back_slash.unwrap_err(), Refusal::BadPath);
        assert_eq!(listed, b"file.txt\nsub/\n");
    }

    /// What `resolve` must answer, from the names alone: the canonical path
    /// under `root`, a directory or a regular file.
    #[cfg(unix)]
    fn expected(root: &Path, target: &str) -> Option<(PathBuf, bool)> {
        let mut path = root.to_path_buf();
        path.extend(segments(target).ok()?);
        let path = path.canonicalize().ok().filter(|p| p.starts_with(root))?;
        let meta = std::fs::metadata(&path).ok()?;
        (meta.is_dir() || meta.is_file()).then_some((path, meta.is_dir()))
    }

    #[cfg(unix)]
    #[test]
    fn random_trees_of_links_serve_only_what_lies_inside() {
        use std::os::unix::fs::symlink;
        // xorshift64: the trees need variety, not secrecy.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let names = ["a", "b", "c", "d"];
        let base = std::env::temp_dir().join(format!("partfetch-tree-{}", std::process::id()));
        let mut served = 0;
        for tree in 0..200 {
            let _ = std::fs::remove_dir_all(&base);
            let root = base.join("root");
            let outside = base.join("out");
            std::fs::create_dir_all(&root).unwrap();
            std::fs::create_dir_all(&outside).unwrap();
            let root = root.canonicalize().unwrap();
            let mut dirs = vec![root.clone(), outside.clone()];
            let mut nodes = vec![root.clone(), outside.clone()];
            for _ in 0..12 {
                let parent = dirs[next(dirs.len())].clone();
                let path = parent.join(names[next(names.len())]);
                if std::fs::symlink_metadata(&path).is_ok() {
                    continue;
                }
                let is_outside = !path.starts_with(&root);
                match next(3) {
                    0 => {
                        std::fs::create_dir(&path).unwrap();
                        dirs.push(path.clone());
                    }
                    1 => {
                        let text = if is_outside { "OUTSIDE" } else { "inside" };
                        std::fs::write(&path, text).unwrap();
                    }
                    _ => {
                        // Absolute or relative, to a node, a name that
                        // does not exist (yet), or the link itself.
                        let to = nodes[next(nodes.len())].join(names[next(names.len())]);
                        let to = match next(3) {
                            0 => to,
                            1 => Path::new("..").join(to.file_name().unwrap()),
                            _ => nodes[next(nodes.len())].clone(),
                        };
                        symlink(&to, &path).unwrap();
                    }
                }
                nodes.push(path);
            }
            for _ in 0..40 {
                let depth = 1 + next(4);
                let target: String = (0..depth)
                    .map(|_| format!("/{}", names[next(names.len())]))
                    .collect();
                let got = resolve(&root, &target);
                match (expected(&root, &target), got) {
                    (None, Err(Refusal::NotFound)) => {}
                    (Some((path, true)), Ok(Resolved::Dir { path: p, .. })) => {
                        assert_eq!(p, path, "tree {tree}: {target}");
                    }
                    (
                        Some((path, false)),
                        Ok(Resolved::File {
                            path: p, mut file, ..
                        }),
                    ) => {
                        use std::io::Read;
                        let mut text = String::new();
                        file.read_to_string(&mut text).unwrap();
                        assert_eq!(
                            (p, text.as_str()),
                            (path, "inside"),
                            "tree {tree}: {target}"
                        );
                        served += 1;
                    }
                    (want, got) => panic!("tree {tree}: {target}: expected {want:?}, got {got:?}"),
                }
            }
        }
        std::fs::remove_dir_all(&base).unwrap();
        assert!(served > 0, "some trees served a file");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_opened_through_a_link_swapped_in_is_not_the_file_inside() {
        let base = std::env::temp_dir().join(format!("partfetch-swap-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::create_dir_all(base.join("out")).unwrap();
        std::fs::write(root.join("d/f"), b"inside").unwrap();
        std::fs::write(base.join("out/f"), b"OUTSIDE").unwrap();
        let root = root.canonicalize().unwrap();
        // What an open through `d` swapped for a link out would have opened.
        let opened = File::open(base.join("out/f")).unwrap();
        let outside = same_file_at(&opened.metadata().unwrap(), &root, &root.join("d/f"));
        let opened = File::open(root.join("d/f")).unwrap();
        let inside = same_file_at(&opened.metadata().unwrap(), &root, &root.join("d/f"));
        #[cfg(target_os = "linux")]
        let by_descriptor = std::fs::read_link(descriptor_path(&opened)).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        assert!(!outside && inside);
        #[cfg(target_os = "linux")]
        assert_eq!(by_descriptor, root.join("d/f"));
    }

    #[cfg(unix)]
    #[test]
    fn a_named_pipe_is_not_found_and_opening_it_does_not_wait_for_a_writer() {
        let root = std::env::temp_dir().join(format!("partfetch-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("pipe"))
            .status()
            .unwrap();
        assert!(made.success());
        let root = root.canonicalize().unwrap();
        // On a thread, so that a regression fails the test instead of
        // hanging it: nobody ever opens the pipe for writing.
        let (tx, rx) = std::sync::mpsc::channel();
        let r = root.clone();
        std::thread::spawn(move || {
            let _ = tx.send(resolve(&r, "/pipe").map(|_| ()));
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(30));
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(got, Ok(Err(Refusal::NotFound)));
    }
}
