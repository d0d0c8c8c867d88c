//! `partfetch split`: cutting a file into parts spread over directories
//! (one per server), and writing the `.parts` manifest that lists them.
//!
//! Owns the part sizes, the placement of replicas, the order of each
//! part's URLs, and streaming the input into the part files while hashing
//! it. Serving the directories is `serve`'s (or any web server's);
//! downloading is the client's.
//!
//! Placement: part `i` (from 0) goes to the `replicas` directories
//! `i, i+1, …` (modulo their number), so every part lies in `replicas`
//! distinct directories and losing any `replicas − 1` of them loses no part.
//! Each part lists first the holder that has so far been listed first for
//! the fewest bytes, so first choices — the servers clients ask — are
//! spread evenly.
//!
//! The input is read once, in [`BUFFER`] pieces, each written to every
//! replica of its part: a file of any size is never held in memory. With
//! several inputs ([`Input::Sequence`]) the stream is their file sequence
//! (`docs/sequence.md`), built on the fly.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::sha256::{self, Sha256};

/// The piece of input read and written at a time.
pub const BUFFER: usize = 1 << 20;

/// The most parts one split makes: each is a file in `replicas`
/// directories, and the manifest lists them all.
pub const MAX_PARTS: u64 = 1_000_000;

/// How the stream is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Into this many parts of equal size (the last may be smaller).
    Parts(u64),
    /// Into parts of this many bytes (the last may be smaller).
    Size(u64),
}

/// What is split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One file, as it is.
    File(PathBuf),
    /// Several files packed into one file sequence first.
    Sequence(Vec<PathBuf>),
}

/// Where the parts go, and how they are named in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The input.
    pub input: Input,
    /// The name of the stream: parts are `NAME.partN`, the manifest
    /// `NAME.parts`.
    pub name: String,
    /// How the stream is cut.
    pub cut: Cut,
    /// One directory per server.
    pub dirs: Vec<PathBuf>,
    /// In how many directories each part is written.
    pub replicas: usize,
    /// One base URL per directory (the URL the directory is served at), or
    /// none when there is a single directory: the manifest then names parts
    /// relative to itself.
    pub base_urls: Vec<String>,
}

/// One part as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    /// The file name in each directory that holds it.
    pub file_name: String,
    /// Its length.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: [u8; 32],
    /// The indices of the directories holding it, first choice first.
    pub holders: Vec<usize>,
}

/// What a split wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The stream's length.
    pub total: u64,
    /// Every part, in order.
    pub parts: Vec<PartRecord>,
    /// The manifest text, written as `NAME.parts` into every directory.
    pub manifest: String,
    /// The manifests written.
    pub manifest_paths: Vec<PathBuf>,
}

/// The default name of a stream: the input file's name, or for a
/// sequence the first file's name followed by `-seq` (which tells the
/// downloader to split the stream back into files).
pub fn default_name(input: &Input) -> String {
    let name_of = |p: &Path| {
        p.file_name()
            .map_or_else(|| "stream".to_owned(), |n| n.to_string_lossy().into_owned())
    };
    match input {
        Input::File(p) => name_of(p),
        Input::Sequence(files) => {
            format!(
                "{}-seq",
                files.first().map_or("files".into(), |p| name_of(p))
            )
        }
    }
}

/// The sizes of the parts of a `total`-byte stream.
pub fn part_sizes(total: u64, cut: Cut) -> Result<Vec<u64>> {
    let size = match cut {
        Cut::Parts(0) | Cut::Size(0) => {
            return Err(usage("the part count or size must be above 0"))
        }
        Cut::Parts(n) => total.div_ceil(n).max(1),
        Cut::Size(s) => s,
    };
    let count = total.div_ceil(size);
    if count > MAX_PARTS {
        return Err(usage(format!("{count} parts is more than {MAX_PARTS}")));
    }
    Ok((0..count).map(|i| size.min(total - i * size)).collect())
}

/// The holders of each part, first choice first (see the module doc).
pub fn place(sizes: &[u64], dirs: usize, replicas: usize) -> Vec<Vec<usize>> {
    let mut first_load = vec![0u64; dirs];
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let mut holders: Vec<usize> = (0..replicas).map(|r| (i + r) % dirs).collect();
            // Stable: among equally loaded holders the rotation decides.
            holders.sort_by_key(|&d| first_load[d]);
            first_load[holders[0]] += size;
            holders
        })
        .collect()
}

/// Splits as `plan` says; returns what was written.
pub fn split(plan: &Plan) -> Result<Report> {
    check(plan)?;
    let mut input = InputStream::open(&plan.input)?;
    let sizes = part_sizes(input.total, plan.cut)?;
    let placement = place(&sizes, plan.dirs.len(), plan.replicas);
    let width = sizes.len().to_string().len();
    let mut buf = vec![0u8; BUFFER];
    let mut parts = Vec::with_capacity(sizes.len());
    for (i, (&size, holders)) in sizes.iter().zip(placement).enumerate() {
        let file_name = format!("{}.part{:0width$}", plan.name, i + 1);
        let mut outputs = holders
            .iter()
            .map(|&d| {
                let path = plan.dirs[d].join(&file_name);
                File::create(&path)
                    .map(|f| (f, path.clone()))
                    .map_err(|e| Error::io(e, path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut hasher = Sha256::new();
        let mut left = size;
        while left > 0 {
            let want = left.min(BUFFER as u64) as usize;
            let got = input.read(&mut buf[..want])?;
            hasher.update(&buf[..got]);
            for (file, path) in &mut outputs {
                file.write_all(&buf[..got])
                    .map_err(|e| Error::io(e, path.display()))?;
            }
            left -= got as u64;
        }
        // The replicas of a part are one file: servers derive validators
        // (ETag, Last-Modified) from the modification time, and a mirror
        // whose validator differs is taken for another file.
        let written = std::time::SystemTime::now();
        for (file, path) in &outputs {
            file.set_modified(written)
                .map_err(|e| Error::io(e, path.display()))?;
        }
        parts.push(PartRecord {
            file_name,
            size,
            sha256: hasher.finish(),
            holders,
        });
    }
    input.finish()?;
    let manifest = manifest_text(&parts, &plan.base_urls);
    let mut manifest_paths = Vec::new();
    for dir in &plan.dirs {
        let path = dir.join(format!("{}.parts", plan.name));
        std::fs::write(&path, &manifest).map_err(|e| Error::io(e, path.display()))?;
        manifest_paths.push(path);
    }
    Ok(Report {
        total: input.total,
        parts,
        manifest,
        manifest_paths,
    })
}

/// The manifest for `parts`: per part its size and digest, then its URLs
/// on every holder, first choice first.
pub fn manifest_text(parts: &[PartRecord], base_urls: &[String]) -> String {
    let mut text = String::from("# written by partfetch split\n");
    for part in parts {
        text.push_str(&format!(
            "(size={})\n(sha256={})\n",
            part.size,
            sha256::to_hex(&part.sha256)
        ));
        if base_urls.is_empty() {
            text.push_str(&part.file_name);
            text.push('\n');
        }
        for &d in part.holders.iter().filter(|_| !base_urls.is_empty()) {
            let base = &base_urls[d];
            let slash = if base.ends_with('/') { "" } else { "/" };
            text.push_str(&format!("{base}{slash}{}\n", part.file_name));
        }
        text.push_str("--\n");
    }
    text
}

fn check(plan: &Plan) -> Result<()> {
    if plan.dirs.is_empty() {
        return Err(usage("no directory to write parts to (--to DIR …)"));
    }
    if plan.replicas == 0 || plan.replicas > plan.dirs.len() {
        return Err(usage(format!(
            "--replicas must be between 1 and the number of directories ({})",
            plan.dirs.len()
        )));
    }
    if plan.base_urls.is_empty() && plan.dirs.len() > 1 {
        return Err(usage(
            "with several directories, give each its URL (--base-url URL …)",
        ));
    }
    if !plan.base_urls.is_empty() && plan.base_urls.len() != plan.dirs.len() {
        return Err(usage(format!(
            "{} directories but {} base URLs: give one URL per directory",
            plan.dirs.len(),
            plan.base_urls.len()
        )));
    }
    for url in &plan.base_urls {
        crate::url::Url::parse(url)?;
    }
    if plan.name.is_empty() || plan.name.contains(['/', '\\', '\n']) || plan.name.starts_with('.') {
        return Err(usage(format!("{:?} cannot name a stream", plan.name)));
    }
    for dir in &plan.dirs {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir.display()))?;
    }
    Ok(())
}

fn usage(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Limit, message)
}

/// The input as one stream of known length: a file, or files packed into a
/// sequence (each a 4-byte big-endian length, then its bytes).
struct InputStream {
    files: Vec<(PathBuf, u64)>,
    total: u64,
    sequence: bool,
    /// The file being read, its index, and the bytes of it still due.
    current: Option<(File, usize, u64)>,
    next: usize,
    /// A length prefix not yet handed out.
    prefix: Vec<u8>,
}

impl InputStream {
    fn open(input: &Input) -> Result<InputStream> {
        let (paths, sequence) = match input {
            Input::File(p) => (std::slice::from_ref(p), false),
            Input::Sequence(ps) => (ps.as_slice(), true),
        };
        let mut files = Vec::new();
        let mut total = 0u64;
        for path in paths {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(e, path.display()))?;
            if !meta.is_file() {
                return Err(
                    Error::new(ErrorKind::Io, "not a regular file").with_subject(path.display())
                );
            }
            if sequence && meta.len() > u64::from(u32::MAX) {
                return Err(Error::new(
                    ErrorKind::Sequence,
                    "a file of a sequence holds at most 4 GiB - 1 bytes",
                )
                .with_subject(path.display()));
            }
            total += meta.len() + if sequence { 4 } else { 0 };
            files.push((path.clone(), meta.len()));
        }
        Ok(InputStream {
            files,
            total,
            sequence,
            current: None,
            next: 0,
            prefix: Vec::new(),
        })
    }

    /// Reads at least one byte into `buf` (never past the stream's end,
    /// which the caller knows from the part sizes).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            if !self.prefix.is_empty() {
                let n = self.prefix.len().min(buf.len());
                buf[..n].copy_from_slice(&self.prefix[..n]);
                self.prefix.drain(..n);
                return Ok(n);
            }
            if let Some((file, index, left)) = &mut self.current {
                let path = &self.files[*index].0;
                if *left == 0 {
                    self.current = None;
                    continue;
                }
                let want = (*left).min(buf.len() as u64) as usize;
                let n = file
                    .read(&mut buf[..want])
                    .map_err(|e| Error::io(e, path.display()))?;
                if n == 0 {
                    return Err(changed(path));
                }
                *left -= n as u64;
                return Ok(n);
            }
            let Some((path, len)) = self.files.get(self.next) else {
                return Err(Error::new(ErrorKind::Io, "the input ended early"));
            };
            let file = File::open(path).map_err(|e| Error::io(e, path.display()))?;
            if self.sequence {
                self.prefix = (*len as u32).to_be_bytes().to_vec();
            }
            self.current = Some((file, self.next, *len));
            self.next += 1;
        }
    }

    /// Checks that no input grew while it was read.
    fn finish(&mut self) -> Result<()> {
        if let Some((file, index, _)) = &mut self.current {
            let mut probe = [0u8; 1];
            if file.read(&mut probe).map_or(true, |n| n > 0) {
                return Err(changed(&self.files[*index].0));
            }
        }
        Ok(())
    }
}

fn changed(path: &Path) -> Error {
    Error::new(ErrorKind::Io, "the file changed size while it was split")
        .with_subject(path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_equal_but_the_last() {
        assert_eq!(part_sizes(10, Cut::Parts(3)).unwrap(), [4, 4, 2]);
        assert_eq!(part_sizes(10, Cut::Size(5)).unwrap(), [5, 5]);
        assert_eq!(part_sizes(2, Cut::Parts(5)).unwrap(), [1, 1]);
        assert_eq!(part_sizes(0, Cut::Parts(5)).unwrap(), Vec::<u64>::new());
        assert!(part_sizes(10, Cut::Parts(0)).is_err());
        assert!(part_sizes(u64::MAX, Cut::Size(1)).is_err());
    }

    #[test]
    fn losing_any_replicas_minus_one_directories_loses_no_part() {
        for dirs in 1..=6 {
            for replicas in 1..=dirs {
                let placement = place(&[7; 13], dirs, replicas);
                for part in &placement {
                    let mut distinct = part.clone();
                    distinct.sort();
                    distinct.dedup();
                    assert_eq!(distinct.len(), replicas, "{dirs} dirs, {replicas} replicas");
                }
            }
        }
    }

    #[test]
    fn first_choices_are_spread_evenly() {
        let placement = place(&[10; 9], 3, 2);
        let mut first = [0; 3];
        for part in &placement {
            first[part[0]] += 1;
        }
        assert_eq!(first, [3, 3, 3]);
    }

    #[test]
    fn manifest_lists_attributes_then_every_holder() {
        let parts = [PartRecord {
            file_name: "f.part1".into(),
            size: 3,
            sha256: sha256::digest(b"abc"),
            holders: vec![1, 0],
        }];
        let text = manifest_text(&parts, &["http://a/".into(), "http://b/x".into()]);
        assert_eq!(
            text,
            "# written by partfetch split\n(size=3)\n(sha256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad)\nhttp://b/x/f.part1\nhttp://a/f.part1\n--\n"
        );
    }
}
