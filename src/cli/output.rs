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

use partfetch::http::request::percent_decode;
use partfetch::{Error, ErrorKind, Url};

/// What errors call standard output.
pub const STDOUT: &str = "standard output";

/// The suffix of a file being written.
pub const TEMP_SUFFIX: &str = ".partfetch";

/// Small writes (a chunked body's small chunks) are gathered up to this size,
/// so they cost one system call per 128 KiB.
const WRITE_BUFFER: usize = 128 * 1024;

/// Chunks this large are written straight from the network buffer: copying
/// them into the write buffer first costs a copy of every byte for nothing.
const DIRECT_WRITE: usize = 16 * 1024;

/// Why a write did not happen.
pub enum WriteError {
    /// The reader of standard output has gone: stop quietly.
    Closed,
    /// A real failure.
    Failed(Error),
}

impl From<Error> for WriteError {
    fn from(err: Error) -> WriteError {
        WriteError::Failed(err)
    }
}

/// An output being written.
pub enum Sink {
    /// Standard output, or a file that is not a regular one, written in
    /// place from its first byte; `name` is what errors call it.
    Stream {
        writer: BufWriter<File>,
        name: String,
    },
    /// A file under its temporary name.
    File {
        writer: BufWriter<File>,
        temp: PathBuf,
        target: PathBuf,
    },
}

impl Sink {
    /// Standard output, written without Rust's line buffering.
    pub fn stdout() -> Result<Sink, Error> {
        use std::os::fd::AsFd;
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io(e, "standard output"))?;
        Ok(Sink::Stream {
            writer: BufWriter::with_capacity(WRITE_BUFFER, File::from(fd)),
            name: STDOUT.to_owned(),
        })
    }

    /// `path`, a file that is not a regular one ([`Destination::InPlace`]),
    /// opened for writing as it is: nothing is created, truncated or
    /// renamed.
    pub fn in_place(path: &Path) -> Result<Sink, Error> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(e, path.display()))?;
        Ok(Sink::Stream {
            writer: BufWriter::with_capacity(WRITE_BUFFER, file),
            name: path.display().to_string(),
        })
    }

    /// What errors and messages call this output.
    pub fn name(&self) -> String {
        match self {
            Sink::Stream { name, .. } => name.clone(),
            Sink::File { target, .. } => target.display().to_string(),
        }
    }

    /// `target`, written as `target.partfetch` until [`Sink::finish`].
    pub fn file(target: &Path) -> Result<Sink, Error> {
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
    pub fn resume(target: &Path, offset: u64) -> Result<Sink, Error> {
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

/// Renames the complete `temp` to `target`. A `target` that is there
/// already keeps its permissions, owner and group, as it does when a tool
/// rewrites it in place (`curl -o`, `wget -O`): the rename puts a new file
/// there, which would otherwise have the default ones and belong to
/// whoever ran the download (root, say, replacing a user's file).
pub fn move_into_place(temp: &Path, target: &Path) -> Result<(), Error> {
    if let Ok(meta) = std::fs::metadata(target) {
        if meta.is_file() {
            keep_owner(temp, &meta);
            // After the owner: a change of owner clears set-user-ID bits.
            std::fs::set_permissions(temp, meta.permissions())
                .map_err(|e| Error::io(e, temp.display()))?;
        }
    }
    std::fs::rename(temp, target).map_err(|e| Error::io(e, target.display()))
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
                partfetch::ErrorKind::Io,
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
                    partfetch::ErrorKind::Io,
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
            partfetch::ErrorKind::Io,
            "another partfetch is writing this file",
        )
        .with_subject(temp.display())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// What a file that is not a regular one is, for a message.
fn describe_file_type(file_type: &std::fs::FileType) -> &'static str {
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

/// Whether two metadata describe the same file.
#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

/// Writes `bytes` after what is buffered, bypassing the buffer when large.
fn write_through(writer: &mut BufWriter<File>, bytes: &[u8]) -> io::Result<()> {
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

/// The longest file name most file systems take (`NAME_MAX`), in bytes.
const NAME_MAX: usize = 255;

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
    use crate::cli::resume::{NEW_SUFFIX, STATE_SUFFIX};
    let room = NAME_MAX - TEMP_SUFFIX.len() - STATE_SUFFIX.len() - NEW_SUFFIX.len();
    let mut name = match target.file_name().and_then(|n| n.to_str()) {
        Some(file) if file.len() > room => {
            let digest = partfetch::sha256::to_hex(&partfetch::sha256::digest(file.as_bytes()));
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
                    Err(_) => return name_fits(&end).map(|()| Destination::File(end)),
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
/// percent-decoded. Names that are empty, `.` or `..`, or that hold a slash,
/// a backslash or a control character are refused.
pub fn name_from_url(url: &Url) -> Result<PathBuf, String> {
    let segment = url.last_segment();
    let decoded = percent_decode(segment);
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
