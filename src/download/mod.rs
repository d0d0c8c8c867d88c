//! Saving a download: the builder a program uses to fetch a URL into a
//! file, a writer or a file sequence, with everything the command-line
//! tool does for its FILE.
//!
//! ```no_run
//! use partfetch::{Client, Progress, Resume};
//!
//! let client = Client::new()?;
//! let saved = client
//!     .download("https://example.com/big.iso")
//!     .mirror("https://mirror.example/big.iso")
//!     .connections(4)
//!     .resume(Resume::IfPossible)
//!     .on_progress(|p: &Progress| eprintln!("{} of {:?} bytes", p.done, p.total))
//!     .to_path("big.iso")?;
//! println!("{} bytes, {} of them from an earlier run", saved.bytes, saved.resumed_from);
//! # Ok::<(), partfetch::Error>(())
//! ```
//!
//! Inside, one file a concept: `job` (what the builder asked for), `save`
//! (how a download is written and continued), `files` (the names beside
//! FILE, opened safely), `output` (writers, files written in place, names
//! from URLs), `control` (the control file that makes a download
//! resumable), `pieces` (a download in pieces written at its offsets),
//! and what runs beside the copy: `checksum`, `rate_limit`, `progress`.
//!
//! Every call blocks its thread until the download ends. When it returns,
//! every worker thread has stopped writing: the file is the caller's.

mod checksum;
mod control;
mod document;
mod files;
mod job;
#[cfg(feature = "metalink")]
mod metalink;
mod output;
mod pieces;
mod progress;
mod rate_limit;
mod save;
mod torrent;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::fetch::Context;
use crate::sha256;
use crate::url::Url;

#[cfg(feature = "metalink")]
pub use metalink::{names_a_metalink, MetalinkDownload};
pub use progress::{PeerCounts, Progress};
pub use torrent::{names_a_torrent, TorrentDownload};

use job::Job;
use output::{Destination, Sink, WriteError};
use progress::{Meter, OnProgress};
use save::Extras;

pub use job::Resume;

/// The most files one download of a file sequence creates unless told
/// otherwise ([`Download::max_files`], `--max-files`): a stream costs its
/// sender 4 bytes per empty file, the disk an inode and a directory entry
/// each (200 000 of them were made in 8 s). Ten thousand is more than a
/// sequence is meant to carry (a photo album, a set of logs) and few
/// enough that a directory of them is still listed at a glance.
pub const DEFAULT_MAX_FILES: u64 = 10_000;

/// What a finished download saved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Saved {
    /// Where: the file (for [`Download::to_dir`], the name chosen), or for
    /// a file sequence its base name; `None` for a writer.
    pub path: Option<PathBuf>,
    /// Bytes of the output, those an earlier run left included.
    pub bytes: u64,
    /// Bytes an earlier run left, which this one continued from.
    pub resumed_from: u64,
    /// The SHA-256 checked, when one was asked for
    /// ([`Download::sha256`]).
    pub sha256: Option<[u8; 32]>,
    /// For a file sequence, how many files were written.
    pub files: Option<u64>,
    /// The file was complete already, as an earlier download left it,
    /// and the server's version is still the same: nothing was fetched
    /// (see [`Download::to_path`]).
    pub already_complete: bool,
}

/// A download being set up: [`Client::download`](crate::Client::download)
/// makes one, and `to_path`, `to_dir`, `to_writer` or `to_files` runs it.
#[must_use = "a download does nothing until to_path, to_dir, to_writer or to_files runs it"]
pub struct Download<'a> {
    ctx: Context,
    url: String,
    mirrors: Vec<String>,
    sha256: Option<String>,
    limit_rate: Option<u64>,
    resume: Resume,
    follow_torrent: bool,
    #[cfg(feature = "metalink")]
    follow_metalink: bool,
    #[cfg(feature = "metalink")]
    piece_hashes: Option<std::sync::Arc<crate::pieces::PieceHashes>>,
    max_files: u64,
    on_progress: Option<OnProgress<'a>>,
}

impl<'a> Download<'a> {
    pub(crate) fn new(ctx: Context, url: &str) -> Download<'a> {
        Download {
            ctx,
            url: url.to_owned(),
            mirrors: Vec::new(),
            sha256: None,
            limit_rate: None,
            resume: Resume::default(),
            follow_torrent: false,
            #[cfg(feature = "metalink")]
            follow_metalink: false,
            #[cfg(feature = "metalink")]
            piece_hashes: None,
            max_files: DEFAULT_MAX_FILES,
            on_progress: None,
        }
    }

    /// Another source of the same bytes (repeatable): a large file is then
    /// fetched from every source at once, each checked by its first answer
    /// (see [`Client::open_mirrored`](crate::Client::open_mirrored)).
    pub fn mirror(mut self, url: &str) -> Self {
        self.mirrors.push(url.to_owned());
        self
    }

    /// Connections for this download (default: the client's), at most the
    /// client's connections per host.
    pub fn connections(mut self, connections: usize) -> Self {
        self.ctx.connections = connections.clamp(1, self.ctx.max_per_host.max(1));
        self
    }

    /// The SHA-256 the whole output must have, in hex: checked while the
    /// bytes arrive; a mismatch is [`ErrorKind::Integrity`] (the file is
    /// then not created, and the partial file is kept to be looked at).
    pub fn sha256(mut self, hex: &str) -> Self {
        self.sha256 = Some(hex.to_owned());
        self
    }

    /// At most `bytes_per_second` for the whole download, all connections
    /// together (0: no limit).
    pub fn limit_rate(mut self, bytes_per_second: u64) -> Self {
        self.limit_rate = (bytes_per_second > 0).then_some(bytes_per_second);
        self
    }

    /// The most files [`Download::to_files`] creates (default
    /// [`DEFAULT_MAX_FILES`], at least 1): a sequence with more fails with
    /// [`ErrorKind::Limit`] once that many are saved, before the next one
    /// is created.
    pub fn max_files(mut self, files: u64) -> Self {
        self.max_files = files.max(1);
        self
    }

    /// Whether to continue an earlier run (default [`Resume::IfPossible`]).
    pub fn resume(mut self, resume: Resume) -> Self {
        self.resume = resume;
        self
    }

    /// Calls `callback` with the download's [`Progress`] at most ten
    /// times a second while bytes arrive, and once at the end. It runs on
    /// the thread that called `to_path` (or the others), never while the
    /// engine holds a lock, and may borrow the caller's locals.
    pub fn on_progress(mut self, callback: impl FnMut(&Progress) + Send + 'a) -> Self {
        self.on_progress = Some(Box::new(callback));
        self
    }

    /// When the URL serves a `.torrent` (`Content-Type:
    /// application/x-bittorrent`), download the torrent's files from its
    /// swarm beside where the `.torrent` would have been saved, rather
    /// than the `.torrent` itself (as the command does).
    #[doc(hidden)]
    pub fn follow_torrent(mut self) -> Self {
        self.follow_torrent = true;
        self
    }

    /// When the URL serves a Metalink document (`Content-Type:
    /// application/metalink4+xml`), download the files it lists beside
    /// where the document would have been saved, rather than the
    /// document itself (as the command does).
    #[cfg(feature = "metalink")]
    #[doc(hidden)]
    pub fn follow_metalink(mut self) -> Self {
        self.follow_metalink = true;
        self
    }

    /// Saves the download as `path`: written as `path.partfetch` beside it
    /// with a control file, and renamed when complete and verified, so an
    /// interrupted download never looks finished and the next call
    /// continues it (see [`Resume`]). FILE is given the server's
    /// `Last-Modified` as its modification time; unless
    /// [`Resume::Never`], a FILE with nothing left to continue that the
    /// server still has as that version and length (one `Range` request
    /// after its end, `If-Range` that date) is left as it is, with
    /// [`Saved::already_complete`]. A large file is fetched in pieces over
    /// every connection and mirror, each written at its offset as it
    /// arrives. A second download writing the same file is refused.
    ///
    /// `path` may be a directory (then the file inside it is named after
    /// the URL, as with [`Download::to_dir`]), a symbolic link (the file it
    /// names is written; the link stays), or a device or named pipe (written
    /// in place and in order, with nothing to resume).
    pub fn to_path(self, path: impl AsRef<Path>) -> Result<Saved> {
        let path = path.as_ref();
        if output::names_a_directory(path) {
            return self.to_dir(path);
        }
        self.save_as(path)
    }

    /// Saves the download in `dir`, named after the URL's last path
    /// segment, less the `.parts` of a manifest (a name that is empty, `.`, `..` or that holds a slash is
    /// refused with [`ErrorKind::InvalidInput`]). An empty `dir` is the
    /// current directory, and the path saved is then the name alone.
    pub fn to_dir(self, dir: impl AsRef<Path>) -> Result<Saved> {
        let path = self.named_in(dir.as_ref())?;
        self.save_as(&path)
    }

    /// Writes the download to `writer`, in order (standard output, a
    /// socket, a hasher). Nothing is resumed. A large file is still
    /// fetched in pieces over several connections, handed on in order.
    /// A writer whose reader went away fails with an [`ErrorKind::Io`]
    /// error whose [`Error::io_kind`] is `BrokenPipe`.
    pub fn to_writer(self, writer: impl Write) -> Result<Saved> {
        self.to_writer_named(writer, "the output")
    }

    /// [`Download::to_writer`], with errors calling the writer `name`
    /// ("standard output", "the socket").
    pub fn to_writer_named(self, writer: impl Write, name: &str) -> Result<Saved> {
        if self.resume == Resume::Require {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a download to a writer cannot be resumed",
            ));
        }
        self.in_order(None, Sink::writer(writer, name), name)
    }

    /// Saves the download as a file sequence (see
    /// [`sequence`](crate::sequence)): its files as `BASE-file1`,
    /// `BASE-file2`, …, each renamed into place when complete. A `base`
    /// that is a device or a named pipe takes the stream unsplit. Nothing
    /// is resumed.
    ///
    /// Like [`Download::to_path`], a `base` that is a directory (or empty:
    /// the current one) gets the URL's last segment as the base name.
    pub fn to_files(self, base: impl AsRef<Path>) -> Result<Saved> {
        let base = base.as_ref();
        let named;
        let base = match base.as_os_str().is_empty() || output::names_a_directory(base) {
            true => {
                named = self.named_in(base)?;
                named.as_path()
            }
            false => base,
        };
        if self.resume == Resume::Require {
            return Err(
                Error::new(ErrorKind::InvalidInput, "a file sequence cannot be resumed")
                    .with_subject(base.display()),
            );
        }
        if let Destination::InPlace(path) = output::destination(base)? {
            let sink = Sink::in_place(&path)?;
            return self.in_order(Some(path.clone()), sink, &path.display().to_string());
        }
        let max_files = self.max_files;
        let (job, mut meter) = self.start()?;
        let mut extras = Extras::new(&job);
        let mut stream = job.open()?;
        meter.set_total(stream.length());
        let saved = save::save_sequence(&mut stream, base, max_files, &mut meter, &mut extras);
        let (digest, files) = finish(saved, &mut meter, &base.display().to_string())?;
        let mut saved = saved_from(&meter, Some(base.to_owned()), digest);
        saved.files = Some(files);
        Ok(saved)
    }

    /// `dir`, joined with the name the URL gives.
    fn named_in(&self, dir: &Path) -> Result<PathBuf> {
        let url = Url::parse(&self.url)?;
        let name =
            output::name_from_url(&url).map_err(|why| Error::new(ErrorKind::InvalidInput, why))?;
        Ok(dir.join(name))
    }

    /// Saves into `path`, a file's name (not a directory's).
    fn save_as(self, path: &Path) -> Result<Saved> {
        match output::destination(path)? {
            Destination::InPlace(path) => {
                if self.resume == Resume::Require {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "not a regular file: it cannot be resumed",
                    )
                    .with_subject(path.display()));
                }
                let sink = Sink::in_place(&path)?;
                self.in_order(Some(path.clone()), sink, &path.display().to_string())
            }
            Destination::File(path) => {
                let (job, mut meter) = self.start()?;
                match save::already_complete(&job, &path, &mut meter) {
                    Ok(None) => {}
                    complete => {
                        let name = path.display().to_string();
                        let digest = finish(complete, &mut meter, &name)?.unwrap_or_default();
                        let mut saved = saved_from(&meter, Some(path), digest);
                        saved.already_complete = true;
                        return Ok(saved);
                    }
                }
                let saved = save::save_file(&job, &path, &mut meter)
                    .map_err(|err| save::explain_write_failure(err, &path));
                if let Err(WriteError::Torrent(stream)) = saved {
                    // Its files go where the `.torrent` would have.
                    let dir = path.parent().unwrap_or(Path::new(""));
                    let on_progress = meter.into_callback();
                    return TorrentDownload::from_stream(job.ctx, *stream, &job.url)?
                        .with_progress(on_progress)
                        .to_dir(dir);
                }
                #[cfg(feature = "metalink")]
                if let Err(WriteError::Metalink(stream)) = saved {
                    // Its files go where the document would have.
                    let dir = path.parent().unwrap_or(Path::new(""));
                    let on_progress = meter.into_callback();
                    return MetalinkDownload::from_stream(job.ctx, *stream, &job.url)?
                        .resume(job.resume)
                        .with_progress(on_progress)
                        .to_dir(dir);
                }
                let digest = finish(saved, &mut meter, &path.display().to_string())?;
                Ok(saved_from(&meter, Some(path), digest))
            }
        }
    }

    /// Writes the stream in order into `sink`, called `name` in errors.
    fn in_order(self, path: Option<PathBuf>, sink: Sink, name: &str) -> Result<Saved> {
        let (job, mut meter) = self.start()?;
        let mut extras = Extras::new(&job);
        let mut stream = job.open()?;
        meter.set_total(stream.length());
        let saved = save::save_stream(&mut stream, sink, &mut meter, &mut extras);
        let digest = finish(saved, &mut meter, name)?;
        Ok(saved_from(&meter, path, digest))
    }

    /// The job the builder describes, and its meter.
    fn start(self) -> Result<(Job, Meter<'a>)> {
        let sha256 = match &self.sha256 {
            Some(hex) => Some(parse_sha256(hex)?),
            None => None,
        };
        let job = Job {
            ctx: self.ctx,
            url: self.url,
            mirrors: self.mirrors,
            sha256,
            limit_rate: self.limit_rate,
            resume: self.resume,
            follow_torrent: self.follow_torrent,
            #[cfg(feature = "metalink")]
            follow_metalink: self.follow_metalink,
            #[cfg(feature = "metalink")]
            piece_hashes: self.piece_hashes,
            #[cfg(not(feature = "metalink"))]
            piece_hashes: None,
        };
        Ok((job, Meter::new(self.on_progress)))
    }
}

/// Tells the meter the end, and turns a write error into the error.
/// A reader of the output `name` that went away is an `Io` error whose
/// `io_kind` is `BrokenPipe`.
fn finish<T>(
    saved: std::result::Result<T, WriteError>,
    meter: &mut Meter,
    name: &str,
) -> Result<T> {
    meter.finish();
    saved.map_err(|err| match err {
        WriteError::Failed(err) => err,
        WriteError::Closed => Error::io(std::io::Error::from(std::io::ErrorKind::BrokenPipe), name),
        WriteError::Torrent(_) => {
            Error::new(ErrorKind::Torrent, "a .torrent where none was expected").with_subject(name)
        }
        #[cfg(feature = "metalink")]
        WriteError::Metalink(_) => Error::new(
            ErrorKind::Metalink,
            "a Metalink document where none was expected",
        )
        .with_subject(name),
    })
}

fn saved_from(meter: &Meter, path: Option<PathBuf>, sha256: Option<[u8; 32]>) -> Saved {
    let progress = meter.progress();
    Saved {
        path,
        bytes: progress.done,
        resumed_from: progress.resumed_from,
        sha256,
        files: None,
        already_complete: false,
    }
}

/// 64 hex digits.
fn parse_sha256(hex: &str) -> Result<[u8; 32]> {
    sha256::parse_hex(hex.trim()).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("a SHA-256 is 64 hex digits, not {hex:?}"),
        )
    })
}
