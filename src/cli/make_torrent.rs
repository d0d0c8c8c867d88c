//! `partfetch make-torrent`: the library's
//! [`MakeTorrent`](partfetch::torrent::MakeTorrent) with the command's
//! output file, messages and exit codes.
//!
//! Owns where the `.torrent` goes (`-o`, else `NAME.torrent` in the
//! current directory), refusing to replace a file that is there unless
//! `--force` says so (as `mktorrent` refuses), and the line it prints:
//! the info-hash and the file written, as `sha1sum` prints a digest and
//! its file, so that a script takes the first word.

use std::io::Write;
use std::path::{Path, PathBuf};

use partfetch::torrent::MakeTorrent;
use partfetch::{Error, ErrorKind};

use super::args;
use super::{exit, exit_code};

/// Runs `make-torrent`; prints `INFO-HASH  FILE` once it is written.
pub fn run(m: &args::MakeTorrent) -> i32 {
    match make(m) {
        Ok(()) => exit::OK,
        Err(err) => {
            say!("partfetch: {err}");
            exit_code(err.kind())
        }
    }
}

fn make(m: &args::MakeTorrent) -> Result<(), Error> {
    let mut torrent = MakeTorrent::new(&m.path).private(m.private);
    for url in &m.announce {
        torrent = torrent.announce(url);
    }
    for url in &m.web_seeds {
        torrent = torrent.web_seed(url);
    }
    if let Some(length) = m.piece_length {
        torrent = torrent.piece_length(length);
    }
    if let Some(comment) = &m.comment {
        torrent = torrent.comment(comment);
    }
    let output = output_path(m.output.as_deref(), &torrent.name()?);
    // Before the hashing, which may take minutes: refused now rather
    // than then (and again when creating it, should one appear since).
    if !m.force && std::fs::symlink_metadata(&output).is_ok() {
        return Err(exists(&output));
    }
    let made = torrent.make()?;
    for path in &made.skipped {
        say!("partfetch: left out {}: not a regular file", path.display());
    }
    write(&output, &made.bytes, m.force)?;
    show!("{}  {}", made.info_hash_hex(), output.display());
    Ok(())
}

/// Where the torrent named `name` is written: `-o FILE`, `NAME.torrent`
/// inside `-o DIR`, else `NAME.torrent` here.
fn output_path(output: Option<&Path>, name: &str) -> PathBuf {
    let file = format!("{name}.torrent");
    match output {
        Some(dir) if dir.is_dir() => dir.join(file),
        Some(path) => path.to_owned(),
        None => PathBuf::from(file),
    }
}

fn exists(output: &Path) -> Error {
    Error::new(
        ErrorKind::Io,
        "the output file exists (--force replaces it)",
    )
    .with_subject(output.display())
}

/// Writes `bytes` to `output`, created anew. With `replace`, whatever
/// non-directory is there is removed first, so that a symbolic link
/// there is replaced rather than written through. A write that fails
/// leaves no partial file.
fn write(output: &Path, bytes: &[u8], replace: bool) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::io(e, output.display());
    if replace {
        match std::fs::remove_file(output) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(output)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(output)),
        Err(e) => return Err(io(e)),
    };
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(output);
        return Err(io(e));
    }
    Ok(())
}
