//! Where the stream is written: a file that appears only when complete, or
//! a stream written in place (standard output, a device, a named pipe).
//!
//! Owns the temporary name (`FILE.partfetch`), the rename into place, what
//! FILE turns out to be on disk, the name derived from a URL when none is
//! given (refusing names that would escape the current directory), and
//! telling a reader that has gone from a failed write.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::download::files::{
    check_replaceable, create_fresh, move_into_place, open_locked, temp_path, NAME_MAX,
};
use crate::error::{Error, ErrorKind};
use crate::http::request::percent_decode;
use crate::url::Url;

/// Small writes (a chunked body's small chunks) are gathered up to this size,
/// so they cost one system call per 128 KiB.
const WRITE_BUFFER: usize = 128 * 1024;

/// Chunks this large are written straight from the network buffer: copying
/// them into the write buffer first costs a copy of every byte for nothing.
const DIRECT_WRITE: usize = 16 * 1024;

/// What [`Sink::cut_to_make_room`] keeps a multiple of: larger than the
/// block of any common file system, so cutting to it frees a block.
pub const ROOM_STEP: u64 = 64 * 1024;

/// Why a write did not happen.
pub enum WriteError {
    /// The reader of standard output has gone: stop quietly.
    Closed,
    /// A real failure.
    Failed(Error),
    /// The URL serves a `.torrent` (`Content-Type:
    /// application/x-bittorrent`) and the download was asked to follow
    /// one: here is its stream, nothing was written.
    Torrent(Box<crate::stream::Stream>),
    /// The URL serves a Metalink document (`Content-Type:
    /// application/metalink4+xml`) and the download was asked to follow
    /// one: here is its stream, nothing was written.
    #[cfg(feature = "metalink")]
    Metalink(Box<crate::stream::Stream>),
}

impl From<Error> for WriteError {
    fn from(err: Error) -> WriteError {
        WriteError::Failed(err)
    }
}

/// An output being written.
pub enum Sink<'w> {
    /// A writer of the caller's, or a file that is not a regular one,
    /// written in place from its first byte; `name` is what errors call it.
    Stream {
        writer: BufWriter<Box<dyn Write + 'w>>,
        name: String,
    },
    /// A file under its temporary name.
    File {
        writer: BufWriter<File>,
        temp: PathBuf,
        target: PathBuf,
    },
}

impl<'w> Sink<'w> {
    /// `writer`, called `name` in errors.
    pub fn writer(writer: impl Write + 'w, name: &str) -> Sink<'w> {
        Sink::Stream {
            writer: BufWriter::with_capacity(WRITE_BUFFER, Box::new(writer)),
            name: name.to_owned(),
        }
    }

    /// `path`, a file that is not a regular one ([`Destination::InPlace`]),
    /// opened for writing as it is: nothing is created, truncated or
    /// renamed.
    pub fn in_place(path: &Path) -> Result<Sink<'w>, Error> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(e, path.display()))?;
        Ok(Sink::writer(file, &path.display().to_string()))
    }

    /// What errors and messages call this output.
    pub fn name(&self) -> String {
        match self {
            Sink::Stream { name, .. } => name.clone(),
            Sink::File { target, .. } => target.display().to_string(),
        }
    }

    /// `target`, written as `target.partfetch` until [`Sink::finish`].
    pub fn file(target: &Path) -> Result<Sink<'w>, Error> {
        let temp = temp_path(target);
        let file = create_fresh(&temp).map_err(|e| Error::io(e, temp.display()))?;
        Ok(Sink::File {
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            temp,
            target: target.to_owned(),
        })
    }

    /// `target`, continuing `target.partfetch` after its first `offset`
    /// bytes (what is beyond is cut off). The file is locked for as long as
    /// the sink lives: a second partfetch writing the same FILE is refused
    /// instead of interleaving its bytes.
    pub fn resume(target: &Path, offset: u64) -> Result<Sink<'w>, Error> {
        use std::io::{Seek, SeekFrom};
        let temp = temp_path(target);
        let io = |e: io::Error| Error::io(e, temp.display());
        let mut file = open_locked(&temp)?;
        file.set_len(offset).map_err(io)?;
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        Ok(Sink::File {
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            temp,
            target: target.to_owned(),
        })
    }

    /// Makes everything written so far durable (for a file; standard
    /// output is only flushed).
    pub fn sync(&mut self) -> Result<(), WriteError> {
        match self {
            Sink::Stream { writer, name } => writer.flush().map_err(|e| stream_error(e, name)),
            Sink::File { writer, temp, .. } => writer
                .flush()
                .and_then(|()| writer.get_ref().sync_data())
                .map_err(|e| WriteError::Failed(Error::io(e, temp.display()))),
        }
    }

    /// Stops writing but keeps what was written under the temporary name,
    /// for a later run to resume or a person to inspect.
    pub fn keep(mut self) -> Result<(), WriteError> {
        self.sync()
    }

    /// On a full disk, where not even the control file can be rewritten:
    /// drops what is held in memory and cuts the file to a multiple of
    /// [`ROOM_STEP`] below what is on disk (and below `at_most`, the bytes
    /// counted as written), which frees at least one block of the file
    /// system, enough for the control file. Returns the bytes kept, now
    /// durable. A few KiB fetched again by the next run buys it the rest.
    pub fn cut_to_make_room(self, at_most: u64) -> Result<u64, Error> {
        let Sink::File { writer, temp, .. } = self else {
            return Ok(0);
        };
        let (file, _held) = writer.into_parts();
        let io = |e: io::Error| Error::io(e, temp.display());
        let on_disk = file.metadata().map_err(io)?.len();
        let keep = on_disk.min(at_most).saturating_sub(1) / ROOM_STEP * ROOM_STEP;
        file.set_len(keep).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(keep)
    }

    /// Writes all of `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        match self {
            Sink::Stream { writer, name } => {
                write_through(writer, bytes).map_err(|e| stream_error(e, name))
            }
            Sink::File { writer, temp, .. } => write_through(writer, bytes)
                .map_err(|e| WriteError::Failed(Error::io(e, temp.display()))),
        }
    }

    /// Writes out what is held for standard output when the source is
    /// about to wait for the network (`has_chunk_ready` says no), so that
    /// bytes that arrived before a stall reach the reader of a pipe during
    /// it, not when the buffer fills or the stream ends.
    ///
    /// Why this rule, not a flush after a short chunk or every 100 ms: a
    /// short chunk does not mean the connection is drained (a fast chunked
    /// body comes as many small chunks, the very case the buffer is for),
    /// and a clock is only looked at when the next chunk arrives, so the
    /// bytes before a long stall would still wait for its end. The source
    /// knows whether its next bytes are there. It is asked only while
    /// something is held (a chunk of [`DIRECT_WRITE`] or more goes straight
    /// out) and answers from its own buffers before it asks the socket, so
    /// a fast stream still costs one write per 128 KiB. A file is not
    /// flushed: nothing reads it as it grows, and checkpoints sync it.
    pub fn flush_before_wait(
        &mut self,
        has_chunk_ready: impl FnOnce() -> bool,
    ) -> Result<(), WriteError> {
        match self {
            Sink::Stream { writer, name } if !writer.buffer().is_empty() && !has_chunk_ready() => {
                writer.flush().map_err(|e| stream_error(e, name))
            }
            _ => Ok(()),
        }
    }

    /// Flushes a file and gives it the modification time `secs` after the
    /// epoch (see [`set_modified`](crate::download::files::set_modified));
    /// nothing for a stream.
    pub fn set_modified(&mut self, secs: u64) -> Result<(), WriteError> {
        if let Sink::File { writer, temp, .. } = self {
            writer
                .flush()
                .map_err(|e| WriteError::Failed(Error::io(e, temp.display())))?;
            crate::download::files::set_modified(writer.get_ref(), secs);
        }
        Ok(())
    }

    /// Flushes, and moves a file to its final name.
    pub fn finish(self) -> Result<(), WriteError> {
        match self {
            Sink::Stream { mut writer, name } => writer.flush().map_err(|e| stream_error(e, &name)),
            Sink::File {
                writer,
                temp,
                target,
            } => {
                let file = writer
                    .into_inner()
                    .map_err(|e| WriteError::Failed(Error::io(e.into_error(), temp.display())))?;
                drop(file);
                move_into_place(&temp, &target).map_err(WriteError::Failed)
            }
        }
    }

    /// Gives up: a file's temporary name is removed, so nothing is left that
    /// looks like a download.
    pub fn abandon(self) {
        if let Sink::File { writer, temp, .. } = self {
            drop(writer);
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// Writes `bytes` after what is buffered, bypassing the buffer when large.
fn write_through<W: Write>(writer: &mut BufWriter<W>, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() < DIRECT_WRITE {
        return writer.write_all(bytes);
    }
    writer.flush()?;
    writer.get_mut().write_all(bytes)
}

/// A pipe's reader that has gone ends the download quietly, as `head`
/// expects; anything else is a failure of the output named `name`.
fn stream_error(e: io::Error, name: &str) -> WriteError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        WriteError::Closed
    } else {
        WriteError::Failed(Error::io(e, name))
    }
}

/// What FILE is on disk, which decides how it is written.
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// A regular file, or a name not taken yet: written as `FILE.partfetch`
    /// and renamed into place when complete. A symbolic link to a regular
    /// file stands for that file, which is replaced while the link stays.
    File(PathBuf),
    /// Anything else that exists (a device such as `/dev/null`, a named
    /// pipe, a terminal): written in place and in order, as standard
    /// output is. A rename would put a regular file where the device was,
    /// in `/dev` itself when run as root.
    InPlace(PathBuf),
}

/// Links followed before a chain of them is taken for a loop (Linux's
/// own limit).
const MAX_LINKS: usize = 40;

/// What `path` (FILE, not a directory) is on disk.
///
/// A symbolic link is followed to what it names, even to a file that does
/// not exist yet, which is then created: the link stays, as with `cp` or
/// `curl -o`. A link that loops is an error.
pub fn destination(path: &Path) -> Result<Destination, Error> {
    match std::fs::metadata(path) {
        // Opened through the path as given: `/dev/stdout` on a pipe is a
        // link to `pipe:[N]`, which names nothing that could be opened.
        Ok(meta) if !meta.is_file() && !meta.is_dir() => Ok(Destination::InPlace(path.to_owned())),
        // A file, or nothing there yet: the end of its links, if any
        // (`/dev/stdout` redirected to a file is a link to it, in `/dev`).
        _ => {
            let mut end = path.to_owned();
            for _ in 0..MAX_LINKS {
                match std::fs::read_link(&end) {
                    Ok(target) => {
                        end = match end.parent() {
                            Some(dir) => dir.join(target),
                            None => target,
                        }
                    }
                    Err(_) => {
                        name_fits(&end)?;
                        if std::fs::metadata(&end).is_ok_and(|m| m.is_file()) {
                            check_replaceable(&end)?;
                        }
                        return Ok(Destination::File(end));
                    }
                }
            }
            Err(Error::new(ErrorKind::Io, "a symbolic link that loops")
                .with_subject(path.display()))
        }
    }
}

/// Checks that `path`'s file name is one file systems take, before the
/// download rather than at the rename that ends it.
fn name_fits(path: &Path) -> Result<(), Error> {
    let length = path
        .file_name()
        .map_or(0, |name| name.as_encoded_bytes().len());
    if length <= NAME_MAX {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Io,
        format!("file name too long ({length} bytes; file systems take at most {NAME_MAX})"),
    )
    .with_subject(path.display()))
}

/// Whether FILE stands for a directory to save into: it is one, or it ends
/// with a slash (then it must exist by the time the file is created, and
/// the error names the path inside it).
pub fn names_a_directory(path: &Path) -> bool {
    path.is_dir() || path.as_os_str().as_encoded_bytes().ends_with(b"/")
}

/// The file name for a URL given without one: its last path segment,
/// percent-decoded, less the `.parts` of a manifest (what is saved is the
/// stream it lists: `film.mkv.parts` gives `film.mkv`). Names that are
/// empty, `.` or `..`, or that hold a slash, a backslash or a control
/// character are refused.
pub fn name_from_url(url: &Url) -> Result<PathBuf, String> {
    let segment = url.last_segment();
    let mut decoded = percent_decode(segment);
    // As the manifest is recognised: by the path ending in `.parts`. A
    // segment that is `.parts` alone keeps it, as a name is needed.
    if url.path().ends_with(".parts") && decoded.len() > ".parts".len() {
        decoded.truncate(decoded.len() - ".parts".len());
    }
    let refuse = |why: &str| {
        Err(format!(
            "cannot name the output after {url}: {why}; give FILE (or - for standard output)"
        ))
    };
    let Ok(name) = String::from_utf8(decoded) else {
        return refuse("its last path segment is not UTF-8");
    };
    if name.is_empty() {
        return refuse("its path ends with /");
    }
    if name == "." || name == ".." {
        return refuse("its last path segment is . or ..");
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return refuse("its last path segment holds a slash or a control character");
    }
    Ok(PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_written_in_place_and_links_to_files_through() {
        let null = Path::new("/dev/null");
        assert_eq!(
            destination(null).unwrap(),
            Destination::InPlace(null.to_owned())
        );
        let dir =
            std::env::temp_dir().join(format!("partfetch-destination-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        let file = dir.join("real.bin");
        let link = |name: &str, to: &str| {
            let at = dir.join(name);
            let _ = std::fs::remove_file(&at);
            std::os::unix::fs::symlink(to, &at).unwrap();
            at
        };
        std::fs::write(&file, b"old").unwrap();
        let to_file = link("link.bin", "real.bin");
        assert_eq!(
            destination(&to_file).unwrap(),
            Destination::File(file.clone())
        );
        assert_eq!(destination(&file).unwrap(), Destination::File(file.clone()));
        let absent = dir.join("absent.bin");
        assert_eq!(
            destination(&absent).unwrap(),
            Destination::File(absent.clone())
        );
        // A link to a file not there yet: the file is created, through a
        // chain of links too.
        let dangling = link("dangling.bin", "absent.bin");
        assert_eq!(
            destination(&dangling).unwrap(),
            Destination::File(absent.clone())
        );
        let chain = link("chain.bin", "dangling.bin");
        assert_eq!(destination(&chain).unwrap(), Destination::File(absent));
        link("loop-a", "loop-b");
        let looping = link("loop-b", "loop-a");
        let err = destination(&looping).unwrap_err();
        assert!(err.to_string().contains("loops"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn name(url: &str) -> Result<PathBuf, String> {
        name_from_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn names_come_from_the_last_segment_decoded() {
        assert_eq!(
            name("http://h/a/file.iso?x=1").unwrap(),
            PathBuf::from("file.iso")
        );
        assert_eq!(
            name("http://h/my%20file").unwrap(),
            PathBuf::from("my file")
        );
    }

    #[test]
    fn a_manifest_names_the_file_it_lists() {
        assert_eq!(
            name("http://h/film.mkv.parts?v=2").unwrap(),
            PathBuf::from("film.mkv")
        );
        assert_eq!(
            name("http://h/x-seq.parts").unwrap(),
            PathBuf::from("x-seq")
        );
        assert_eq!(name("http://h/.parts").unwrap(), PathBuf::from(".parts"));
        assert!(name("http://h/..parts").is_err(), "names . once cut");
        assert_eq!(
            name("http://h/notes.PARTS").unwrap(),
            PathBuf::from("notes.PARTS"),
            "not a manifest by its path"
        );
    }

    #[test]
    fn names_that_escape_or_hide_are_refused() {
        for url in [
            "http://h/",
            "http://h/dir/",
            "http://h/a/%2E%2E",
            "http://h/a/..%2Fetc",
            "http://h/a%2Fb",
            "http://h/a%5Cb",
            "http://h/a%0Ab",
            "http://h/%FF",
        ] {
            assert!(name(url).is_err(), "{url}");
        }
    }
}
