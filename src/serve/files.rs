//! The served directory: request targets to files, never outside it.
//!
//! Owns decoding a request target into path segments, refusing what could
//! name something outside DIR (`..`, encoded slashes and backslashes, NUL),
//! resolving symbolic links and refusing those that lead out, the
//! validators of a file (`ETag`, `Last-Modified`), its `Content-Type`, and
//! the plain-text listing of a directory. The HTTP answer is `respond`'s.
//!
//! Segments are checked after percent-decoding, so `%2e%2e` is `..` and
//! refused; `%2F` is refused before decoding, since a slash inside a
//! segment is a second segment the client hid from the path syntax. The
//! resolved path is canonicalized and must still lie under DIR's canonical
//! path: a symbolic link inside DIR may point anywhere inside DIR. The check
//! and the open are two system calls, so someone who can write into DIR
//! could swap a link between them; serving a directory means trusting its
//! writers.

use std::fs::{File, Metadata};
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
    /// A directory.
    Dir(PathBuf),
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
    let meta = std::fs::metadata(&path).map_err(|_| Refusal::NotFound)?;
    if meta.is_dir() {
        return Ok(Resolved::Dir(path));
    }
    if names_a_directory {
        return Err(Refusal::NotFound);
    }
    // Only regular files: opening a FIFO would block the worker.
    if !meta.is_file() {
        return Err(Refusal::NotFound);
    }
    let file = File::open(&path).map_err(|_| Refusal::NotFound)?;
    let meta = file.metadata().map_err(|_| Refusal::NotFound)?;
    if !meta.is_file() {
        return Err(Refusal::NotFound);
    }
    Ok(Resolved::File { path, file, meta })
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
        assert!(matches!(dir, Ok(Resolved::Dir(_))));
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
        assert!(matches!(dir, Ok(Resolved::Dir(_))));
        assert_eq!(back_slash.unwrap_err(), Refusal::BadPath);
        assert_eq!(listed, b"file.txt\nsub/\n");
    }
}
