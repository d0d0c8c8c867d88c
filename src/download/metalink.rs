//! Saving the files a Metalink document lists: the builder
//! `Client::metalink` returns, which reads the document (a file or a
//! URL), then downloads each of its files under a directory by its name,
//! from its URLs as mirrors in priority order, and checks its size, its
//! SHA-256 and, without one, its piece hashes.
//!
//! ```no_run
//! let client = partfetch::Client::new()?;
//! let saved = client.metalink("https://example.com/big.iso.meta4").to_dir("downloads")?;
//! println!("{:?} files, {} bytes", saved.files, saved.bytes);
//! # Ok::<(), partfetch::Error>(())
//! ```
//!
//! Each file is one download through [`Download`]: resumed, fetched in
//! pieces over every mirror, and renamed into place only once whole and
//! matching its SHA-256. docs/metalink.md says what is supported.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::document;
use crate::download::files::temp_path;
use crate::download::progress::OnProgress;
use crate::download::{Download, Progress, Resume, Saved};
use crate::error::{Error, ErrorKind, Result};
use crate::fetch::Context;
use crate::metalink::{Metalink, MetalinkFile, PieceHash, MAX_DOCUMENT_BYTES};
use crate::pieces::{HashKind, PieceHashes};
use crate::sha1::Sha1;
use crate::sha256::{self, Sha256};
use crate::stream::Stream;

/// A download of the files of a Metalink document, being set up.
#[must_use = "a Metalink download does nothing until to_dir runs it"]
pub struct MetalinkDownload<'a> {
    ctx: Context,
    source: String,
    /// The document, when it was read already (a URL that served one).
    document: Option<Vec<u8>>,
    resume: Resume,
    limit_rate: Option<u64>,
    on_progress: Option<OnProgress<'a>>,
}

impl<'a> MetalinkDownload<'a> {
    pub(crate) fn new(ctx: Context, source: &str) -> MetalinkDownload<'a> {
        MetalinkDownload {
            ctx,
            source: source.to_owned(),
            document: None,
            resume: Resume::default(),
            limit_rate: None,
            on_progress: None,
        }
    }

    /// The document `stream` serves (the URL `source` answered with
    /// `Content-Type: application/metalink4+xml`), read at once.
    pub(crate) fn from_stream(
        ctx: Context,
        stream: Stream,
        source: &str,
    ) -> Result<MetalinkDownload<'a>> {
        let mut download = MetalinkDownload::new(ctx, source);
        download.document = Some(document::read_bounded(stream, source, MAX_DOCUMENT_BYTES)?);
        Ok(download)
    }

    pub(crate) fn with_progress(mut self, on_progress: Option<OnProgress<'a>>) -> Self {
        self.on_progress = on_progress;
        self
    }

    /// Whether to continue what earlier runs left of each file (default
    /// [`Resume::IfPossible`]).
    pub fn resume(mut self, resume: Resume) -> Self {
        self.resume = resume;
        self
    }

    /// At most `bytes_per_second` for each file's download (0: no limit).
    pub fn limit_rate(mut self, bytes_per_second: u64) -> Self {
        self.limit_rate = (bytes_per_second > 0).then_some(bytes_per_second);
        self
    }

    /// Calls `callback` with each file's [`Progress`] in turn, as
    /// [`Download::on_progress`] does.
    pub fn on_progress(mut self, callback: impl FnMut(&Progress) + Send + 'a) -> Self {
        self.on_progress = Some(Box::new(callback));
        self
    }

    /// Downloads every file of the document into `dir` (created if need
    /// be), one after the other, each as `dir/NAME`. Fails at the first
    /// file that fails: a size or hash that does not match is
    /// [`ErrorKind::Integrity`], the file then left as `NAME.partfetch` to
    /// be looked at. [`Saved::path`] is `dir`, [`Saved::files`] the count.
    pub fn to_dir(mut self, dir: impl AsRef<Path>) -> Result<Saved> {
        let dir = dir.as_ref();
        let document = match self.document.take() {
            Some(bytes) => bytes,
            None => document::load(&self.ctx, &self.source, MAX_DOCUMENT_BYTES)?,
        };
        let metalink = Metalink::parse(&document).map_err(|e| {
            Error::new(ErrorKind::Metalink, e.to_string()).with_subject(&self.source)
        })?;
        let mut total = Saved {
            path: Some(dir.to_owned()),
            bytes: 0,
            resumed_from: 0,
            sha256: None,
            files: Some(metalink.files.len() as u64),
            already_complete: true,
        };
        let mut on_progress = self.on_progress.take();
        for file in &metalink.files {
            let saved = self.save(file, dir, &mut on_progress)?;
            total.bytes += saved.bytes;
            total.resumed_from += saved.resumed_from;
            total.already_complete &= saved.already_complete;
        }
        Ok(total)
    }

    /// Downloads `file` into `dir` and checks it.
    fn save(
        &self,
        file: &MetalinkFile,
        dir: &Path,
        on_progress: &mut Option<OnProgress<'a>>,
    ) -> Result<Saved> {
        // DIR itself is the user's; below it, as for a torrent's files,
        // no symbolic link is followed out.
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir.display()))?;
        }
        let mut path = dir.to_path_buf();
        for (i, component) in file.path.iter().enumerate() {
            path.push(component);
            if i + 1 < file.path.len() {
                directory(&path)?;
            }
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(link_in_the_way(&path, "file"));
        }
        let mut download = Download::new(self.ctx.clone(), &file.urls[0]).resume(self.resume);
        for mirror in &file.urls[1..] {
            download = download.mirror(mirror);
        }
        if let Some(digest) = &file.sha256 {
            download = download.sha256(&sha256::to_hex(digest));
        }
        if let Some(rate) = self.limit_rate {
            download = download.limit_rate(rate);
        }
        if let (Some(pieces), Some(size)) = (&file.pieces, file.size) {
            let kind = match pieces.hash {
                PieceHash::Sha256 => HashKind::Sha256,
                PieceHash::Sha1 => HashKind::Sha1,
            };
            download.piece_hashes =
                PieceHashes::new(kind, pieces.length, size, pieces.digests.clone()).map(Arc::new);
        }
        if let Some(callback) = on_progress.as_mut() {
            download = download.on_progress(move |p| callback(p));
        }
        let saved = download.save_as(&path)?;
        if let Some(size) = file.size.filter(|&size| size != saved.bytes) {
            return Err(set_aside(
                &path,
                format!(
                    "{} bytes, where the Metalink document says {size}",
                    saved.bytes
                ),
            ));
        }
        // A whole-file SHA-256 was checked as the bytes arrived; without
        // one, the piece hashes are the check.
        if file.sha256.is_none() {
            if let Some(pieces) = &file.pieces {
                if let Some(bad) = first_bad_piece(&path, pieces)? {
                    return Err(set_aside(
                        &path,
                        format!("piece {bad} does not match its hash in the Metalink document"),
                    ));
                }
            }
        }
        Ok(saved)
    }
}

/// Makes `path` a directory unless it is one; a link, even to one, is
/// refused.
fn directory(path: &Path) -> Result<()> {
    let io = |e| Error::io(e, path.display());
    match std::fs::symlink_metadata(path) {
        Ok(found) if found.is_dir() => Ok(()),
        Ok(found) if found.file_type().is_symlink() => Err(link_in_the_way(path, "directory")),
        Ok(_) => Err(Error::new(
            ErrorKind::Io,
            "something other than a directory is where the Metalink document has one",
        )
        .with_subject(path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(path) {
            // Made meanwhile: whatever it is must pass the check.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => directory(path),
            made => made.map_err(io),
        },
        Err(e) => Err(io(e)),
    }
}

fn link_in_the_way(path: &Path, wanted: &str) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "a symbolic link is where the Metalink document has a {wanted}; partfetch does not \
             follow links out of the download's directory"
        ),
    )
    .with_subject(path.display())
}

/// `path`, complete but not what the document promised, is moved back to
/// `path.partfetch` (so that it never looks finished) and the error says
/// `why`.
fn set_aside(path: &Path, why: String) -> Error {
    let temp: PathBuf = temp_path(path);
    let _ = std::fs::rename(path, &temp);
    Error::new(ErrorKind::Integrity, why).with_subject(temp.display())
}

/// The first piece of the file at `path` whose hash is not the one
/// `pieces` gives, reading it back piece by piece.
fn first_bad_piece(path: &Path, pieces: &crate::metalink::Pieces) -> Result<Option<usize>> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(e, path.display()))?;
    // Pieces are hashed in reads of at most this many bytes: memory stays
    // flat whatever the piece length the document gives.
    let mut buffer = vec![0; 256 * 1024];
    for (index, expected) in pieces.digests.iter().enumerate() {
        let mut left = pieces.length;
        let mut sha256 = Sha256::new();
        let mut sha1 = Sha1::new();
        while left > 0 {
            let want = left.min(buffer.len() as u64) as usize;
            let n = file
                .read(&mut buffer[..want])
                .map_err(|e| Error::io(e, path.display()))?;
            if n == 0 {
                break;
            }
            match pieces.hash {
                PieceHash::Sha256 => sha256.update(&buffer[..n]),
                PieceHash::Sha1 => sha1.update(&buffer[..n]),
            }
            left -= n as u64;
        }
        let matches = match pieces.hash {
            PieceHash::Sha256 => sha256.finish()[..] == expected[..],
            PieceHash::Sha1 => sha1.finish()[..] == expected[..],
        };
        if !matches {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Whether a `Content-Type` says "a Metalink v4 document".
pub(crate) fn is_metalink_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        let essence = t.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/metalink4+xml")
    })
}

/// Whether `source` names a Metalink document: a path or URL whose path
/// ends in `.meta4` or `.metalink`.
pub fn names_a_metalink(source: &str) -> bool {
    let path = source.split(['?', '#']).next().unwrap_or(source);
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".meta4") || lower.ends_with(".metalink")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metalinks_are_told_by_suffix_and_content_type() {
        assert!(names_a_metalink("http://h/a.meta4?x=1"));
        assert!(names_a_metalink("dir/A.METALINK"));
        assert!(!names_a_metalink("http://h/a.meta4.iso"));
        assert!(is_metalink_type(Some(
            "application/metalink4+xml; charset=utf-8"
        )));
        assert!(!is_metalink_type(Some("application/xml")));
        assert!(!is_metalink_type(None));
    }
}
