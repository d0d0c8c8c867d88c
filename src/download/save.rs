//! Saving a download: to a file through `FILE.partfetch` and its control
//! file, continuing what an earlier run left; in order to a writer; or as
//! the files of a file sequence.
//!
//! Owns choosing how an earlier run is continued (a plain file at its
//! offset, a file in pieces over every connection, a manifest after its
//! completed parts), starting over when it cannot be, and pulling the
//! stream into its output with the digest, the rate limit, the control
//! file and the progress meter beside it.

use std::cell::Cell;
use std::path::Path;

use crate::download::checksum::HashThread;
use crate::download::control::{self, Checkpoint, State};
use crate::download::files::{ahead_path, state_path, temp_path};
use crate::download::job::Resume;
use crate::download::job::{Digest, Job};
use crate::download::output::{self, Sink, WriteError};
use crate::download::pieces::{self, PieceFile};
use crate::download::progress::Meter;
use crate::download::rate_limit::RateLimit;
use crate::engine::download::SegmentedDownload;
use crate::engine::HTTP_PIECE;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, StartOver};
use crate::manifest::expand::{AheadPart, PartRecord};
use crate::open::{self, Resumed, ResumedPieces};
use crate::sequence::SequenceFiles;
use crate::source::ByteSource;
use crate::stream::Stream;

/// Resuming was required and cannot be done, for the reason `why`. Nothing
/// was written by then: the partial file and its control file are as the
/// last run left them (a manifest's is at most cut to the parts it
/// completed, dropping the unfinished one after them that no run could
/// continue).
pub(crate) fn resume_refused(path: &Path, why: &str) -> WriteError {
    WriteError::Failed(Error::new(
        ErrorKind::ResumeMismatch,
        format!("cannot resume {}: {why}", path.display()),
    ))
}

/// Whether `path` holds the whole of the current version already, as a
/// download that ended left it: then nothing is fetched, and the meter
/// counts its bytes as an earlier run's. Asked only when the download may
/// resume, and no partial file of this URL waits to be continued; with a
/// digest to check, FILE is read to check it, and one that does not match
/// is downloaded again. `None` means: download it.
pub(crate) fn already_complete(
    job: &Job,
    path: &Path,
    meter: &mut Meter,
) -> std::result::Result<Option<Digest>, WriteError> {
    if job.resume == Resume::Never || control::earlier_run(&temp_path(path), &job.url).is_ok() {
        return Ok(None);
    }
    let Some((length, modified)) = crate::download::files::complete_file(path) else {
        return Ok(None);
    };
    if !open::is_complete(&job.ctx, &job.url, length, modified)? {
        return Ok(None);
    }
    let digest = match job.sha256 {
        Some(expected) => {
            let mut digest = HashThread::start(expected);
            hash_prefix(path, length, &mut digest)?;
            match digest.finish(&path.display().to_string()) {
                Ok(got) => Some(got),
                Err(_) => return Ok(None),
            }
        }
        None => None,
    };
    meter.set_total(Some(length));
    meter.skip(length);
    Ok(Some(digest))
}

/// Downloads to `path` through `path.partfetch`, resuming an earlier run's
/// partial file when its control file matches this URL.
pub(crate) fn save_file(
    job: &Job,
    path: &Path,
    meter: &mut Meter,
) -> std::result::Result<Digest, WriteError> {
    let failed = WriteError::Failed;
    let temp = temp_path(path);
    let earlier = match control::earlier_run(&temp, &job.url) {
        Ok(_) if job.resume == Resume::Never => None,
        Ok(state) => Some(state),
        Err(why) if job.resume == Resume::Require => {
            return Err(resume_refused(path, why.message()))
        }
        Err(_) => None,
    };
    let mut ahead = Vec::new();
    let (stream, offset) = match &earlier {
        Some(state) if state.manifest => {
            match open::resume_manifest(&job.ctx, &job.url, state.parts.clone()) {
                Ok(mut stream) => {
                    // The parts fetched ahead and kept, when their file is
                    // still there.
                    if let Ok(file) = std::fs::File::open(ahead_path(&temp)) {
                        ahead = state.ahead.clone();
                        stream.use_kept(ahead.clone(), file);
                    }
                    (stream, state.resume_at())
                }
                Err(e) if e.kind() == ErrorKind::ResumeMismatch => {
                    if job.resume == Resume::Require {
                        return Err(resume_refused(path, &job.no_longer_lists()));
                    }
                    return start_over(job, path, meter);
                }
                Err(e) => return Err(failed(e)),
            }
        }
        Some(state) if state.have.is_some() => match resume_pieces(job, path, state, meter)? {
            Continued::Saved(digest) => return Ok(digest),
            Continued::InOrder(stream) => (*stream, 0),
        },
        Some(state) => {
            let resumed = open::resume(&job.ctx, &job.url, state.done, state.validator.as_deref());
            match resumed.map_err(failed)? {
                (stream, Resumed::AtOffset) => {
                    if state.validator.is_none() {
                        job.resumed_unverified(path);
                    }
                    (stream, state.done)
                }
                (_, Resumed::FromStart) if job.resume == Resume::Require => {
                    return Err(resume_refused(path, &job.changed()));
                }
                (stream, Resumed::FromStart) => {
                    job.starting_over(path, StartOver::Changed);
                    (stream, 0)
                }
            }
        }
        None => {
            let stream = job.open().map_err(failed)?;
            if job.follow_torrent && super::torrent::is_torrent_type(stream.content_type()) {
                return Err(WriteError::Torrent(Box::new(stream)));
            }
            #[cfg(feature = "metalink")]
            if job.follow_metalink && super::metalink::is_metalink_type(stream.content_type()) {
                return Err(WriteError::Metalink(Box::new(stream)));
            }
            (stream, 0)
        }
    };
    // RFC 3230: the server's digest of the whole resource, downloaded
    // from its start, is checked when the caller gave none.
    let with_digest;
    let job = match (offset, job.sha256, stream.server_sha256()) {
        (0, None, Some(digest)) if !stream.is_manifest() => {
            with_digest = Job {
                sha256: Some(digest),
                ..job.clone()
            };
            &with_digest
        }
        _ => job,
    };
    // A large resource from the start needs no order: its pieces go where
    // they belong as they arrive.
    let modified = stream.last_modified();
    let stream = match offset {
        0 => match stream.into_segmented() {
            Ok(segmented) => {
                let mut file = PieceFile::open(path, false, job.limit_rate).map_err(failed)?;
                file.modified = modified;
                let download = SegmentedDownload::new(segmented, file.store());
                return pieces::save(job, download, file, meter);
            }
            Err(stream) => *stream,
        },
        _ => stream,
    };
    let parts = earlier.map(|e| e.parts).unwrap_or_default();
    save_in_order(job, path, stream, offset, (parts, ahead), meter)
}

/// After a failure to write `path`'s partial file or its control file:
/// tells it as what failed, in plain words, about the FILE the user named
/// (`cannot write big.iso: no space left on device`), and what a later run
/// will find (`the 81.0 MiB received are kept in big.iso.partfetch`),
/// rather than as the system's message about a name the user never gave.
/// A partial file that holds nothing a later run could use is removed
/// with its control file, so a failed run leaves nothing empty beside
/// FILE. Other errors pass unchanged.
pub(crate) fn explain_write_failure(err: WriteError, path: &Path) -> WriteError {
    let WriteError::Failed(error) = err else {
        return err;
    };
    let temp = temp_path(path);
    let state_path = state_path(&temp);
    let ours = [temp.display().to_string(), state_path.display().to_string()];
    let local = error.kind() == ErrorKind::Io
        && error.subject().is_some_and(|s| ours.iter().any(|o| o == s));
    let reason = std::error::Error::source(&error)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(plain_io_reason);
    let Some(reason) = reason.filter(|_| local) else {
        return WriteError::Failed(error);
    };
    let kept = match control::State::load(&state_path) {
        Some(state) if temp.exists() => state.kept_bytes(),
        _ => 0,
    };
    let mut message = format!("cannot write {}: {reason}", path.display());
    if kept > 0 {
        message.push_str(&format!(
            " (the {} received are kept in {})",
            crate::util::size::human_size(kept),
            temp.display()
        ));
    } else {
        let _ = std::fs::remove_file(&state_path);
        let _ = std::fs::remove_file(&temp);
        let _ = std::fs::remove_file(ahead_path(&temp));
    }
    let io = std::error::Error::source(&error)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(|e| std::io::Error::new(e.kind(), e.to_string()));
    let mut explained = Error::new(ErrorKind::Io, message);
    if let Some(io) = io {
        explained = explained.with_source(io);
    }
    WriteError::Failed(explained)
}

/// The system's words for `err` as a sentence goes on: `no space left on
/// device`, not `No space left on device (os error 28)`.
fn plain_io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text[..],
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_owned(),
    }
}

/// Writes `stream` into `path.partfetch` after its first `offset` bytes,
/// with a control file when the stream can be resumed.
fn save_in_order(
    job: &Job,
    path: &Path,
    mut stream: Stream,
    offset: u64,
    (parts, ahead): (Vec<PartRecord>, Vec<AheadPart>),
    meter: &mut Meter,
) -> std::result::Result<Digest, WriteError> {
    let failed = WriteError::Failed;
    let temp = temp_path(path);
    let state_path = state_path(&temp);
    // Saved to a file, the download may be resumed: a manifest's stream
    // records its parts for the control file.
    stream.record_parts();
    let mut sink = Sink::resume(path, offset).map_err(failed)?;
    let mut extras = Extras::new(job);
    if offset > 0 {
        if let Some(digest) = &mut extras.digest {
            hash_prefix(&temp, offset, digest).map_err(failed)?;
        }
        job.ctx.emit(Event::Resumed {
            path: path.to_owned(),
            offset,
            length: stream.length().map(|n| n + offset),
        });
    }
    if stream.is_resumable() {
        let state = State {
            url: job.url.clone(),
            length: stream.length().map(|n| n + offset),
            validator: stream.validator().map(str::to_owned),
            done: offset,
            manifest: stream.is_manifest(),
            parts,
            have: None,
            ahead,
        };
        let mut checkpoint = Checkpoint::new(state_path.clone(), state);
        if let Err(err) = checkpoint.save(|| sink.sync()) {
            // Nothing of this run written yet: an empty partial file is
            // nothing to keep.
            if offset == 0 {
                sink.abandon();
            }
            return Err(err);
        }
        extras.checkpoint = Some(checkpoint);
    } else {
        let _ = std::fs::remove_file(&state_path);
    }
    meter.set_total(stream.length().map(|n| n + offset));
    meter.skip(offset);
    let pumped = pump(&mut stream, &mut sink, meter, &mut extras);
    // The manifests changed since the earlier run, found before any byte
    // of this one: that run's bytes are worth nothing. (When resuming is
    // required, they are left for the user: the sink only cut off the
    // unfinished part after the completed ones, which no run could
    // continue.)
    if let Err(WriteError::Failed(e)) = &pumped {
        if e.kind() == ErrorKind::ResumeMismatch && offset > 0 {
            drop(sink);
            if job.resume == Resume::Require {
                return Err(resume_refused(path, &job.no_longer_lists()));
            }
            return start_over(job, path, meter);
        }
    }
    let result = pumped.and_then(|()| {
        sink.sync()?;
        extras.verify(&path.display().to_string())
    });
    match result {
        Ok(digest) => {
            if let Some(secs) = stream.last_modified() {
                sink.set_modified(secs)?;
            }
            sink.finish()?;
            let _ = std::fs::remove_file(&state_path);
            let _ = std::fs::remove_file(ahead_path(&temp));
            Ok(digest)
        }
        Err(err) => {
            keep_or_abandon(&err, sink, &mut extras, &mut stream, &temp);
            Err(err)
        }
    }
}

/// After `err`, keeps what a later run can continue (with its control file
/// brought up to date), or what a person should look at, and removes the
/// rest.
fn keep_or_abandon(
    err: &WriteError,
    mut sink: Sink,
    extras: &mut Extras,
    stream: &mut Stream,
    temp: &Path,
) {
    let state_path = &state_path(temp);
    let verified_wrong = matches!(err, WriteError::Failed(e) if e.kind() == ErrorKind::Integrity);
    // A manifest's parts fetched whole ahead of the one being written are
    // kept beside the partial file, for the next run not to fetch again.
    let ahead = match extras.checkpoint.is_some() && !verified_wrong {
        true => keep_ahead(stream, temp),
        false => Vec::new(),
    };
    if ahead.is_empty() {
        let _ = std::fs::remove_file(ahead_path(temp));
    }
    match extras.checkpoint.as_mut() {
        // A complete file with the wrong digest is kept to be looked at,
        // but is nothing to resume.
        Some(_) if verified_wrong => {
            let _ = sink.keep();
            let _ = std::fs::remove_file(state_path);
        }
        // Nothing written at all: nothing worth keeping.
        Some(checkpoint) if checkpoint.state.done == 0 && ahead.is_empty() => {
            sink.abandon();
            let _ = std::fs::remove_file(state_path);
        }
        Some(checkpoint) => {
            checkpoint.state.ahead = ahead;
            checkpoint.update_parts(stream.completed_parts());
            match checkpoint.save(|| sink.sync()) {
                Err(WriteError::Failed(e)) if is_disk_full(&e) => {
                    // Not even the control file fits: make room for it
                    // rather than lose the record of every byte.
                    if let Ok(kept) = sink.cut_to_make_room(checkpoint.state.done) {
                        checkpoint.cut_to(kept);
                        let _ = checkpoint.save(|| Ok::<(), Error>(()));
                    }
                }
                _ => {
                    let _ = sink.keep();
                }
            }
        }
        None if verified_wrong => {
            let _ = sink.keep();
        }
        None => sink.abandon(),
    }
}

/// Writes the parts `stream` fetched whole ahead of the one being written
/// to `temp.ahead` (replaced atomically), and returns what the control
/// file lists of them; none when there are none or they cannot be written.
fn keep_ahead(stream: &mut Stream, temp: &Path) -> Vec<AheadPart> {
    let complete = stream.complete_ahead();
    if complete.is_empty() {
        return Vec::new();
    }
    let pieces: Vec<&[u8]> = complete.iter().map(|(_, bytes)| &bytes[..]).collect();
    let path = ahead_path(temp);
    let mut new = path.as_os_str().to_owned();
    new.push(crate::download::files::NEW_SUFFIX);
    match crate::util::fs::replace_file_with(&path, Path::new(&new), &pieces) {
        Ok(()) => complete.into_iter().map(|(part, _)| part).collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether `err` says the disk (or the user's quota) is full.
fn is_disk_full(err: &Error) -> bool {
    matches!(
        err.io_kind(),
        Some(std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
    )
}

/// How a download an earlier run wrote piece by piece went on.
enum Continued {
    /// Saved whole, in pieces.
    Saved(Digest),
    /// The resource changed and is no longer one to fetch in pieces: this
    /// stream is to be written in order from the start.
    InOrder(Box<Stream>),
}

/// Continues a download an earlier run wrote piece by piece.
fn resume_pieces(
    job: &Job,
    path: &Path,
    state: &State,
    meter: &mut Meter,
) -> std::result::Result<Continued, WriteError> {
    let failed = WriteError::Failed;
    let have = match (&state.have, state.length) {
        (Some((HTTP_PIECE, have)), Some(length)) => Some((have.clone(), length)),
        _ => None,
    };
    let Some((have, length)) = have else {
        if job.resume == Resume::Require {
            let why = match state.length {
                None => "its control file lists pieces but not the file's length",
                Some(_) => "its control file lists pieces of another length",
            };
            return Err(resume_refused(path, why));
        }
        return Ok(Continued::InOrder(Box::new(job.open().map_err(failed)?)));
    };
    let mut file = PieceFile::open(path, true, job.limit_rate).map_err(failed)?;
    let mirrors: Vec<&str> = job.mirrors.iter().map(String::as_str).collect();
    let resumed = open::resume_pieces(
        &job.ctx,
        &job.url,
        &mirrors,
        length,
        state.validator.as_deref(),
        have,
        file.store(),
    )
    .map_err(failed)?;
    match resumed {
        ResumedPieces::Continued(download) => {
            if state.validator.is_none() {
                job.resumed_unverified(path);
            }
            // A validator that is a date is the `Last-Modified` the pieces
            // were checked against (an `ETag` is no date).
            file.modified = state
                .validator
                .as_deref()
                .and_then(crate::http::date::parse);
            job.ctx.emit(Event::Resumed {
                path: path.to_owned(),
                offset: download.stored_bytes(),
                length: Some(length),
            });
            Ok(Continued::Saved(pieces::save(job, download, file, meter)?))
        }
        ResumedPieces::Changed(_) if job.resume == Resume::Require => {
            Err(resume_refused(path, &job.changed()))
        }
        ResumedPieces::Changed(stream) => {
            job.starting_over(path, StartOver::Changed);
            file.clear().map_err(failed)?;
            file.modified = stream.last_modified();
            match stream.into_segmented() {
                Ok(segmented) => {
                    let download = SegmentedDownload::new(segmented, file.store());
                    Ok(Continued::Saved(pieces::save(job, download, file, meter)?))
                }
                Err(stream) => Ok(Continued::InOrder(stream)),
            }
        }
    }
}

/// The earlier run's manifest parts cannot be used: says so, and
/// downloads afresh.
fn start_over(
    job: &Job,
    path: &Path,
    meter: &mut Meter,
) -> std::result::Result<Digest, WriteError> {
    job.starting_over(path, StartOver::ManifestChanged);
    let fresh = Job {
        resume: Resume::Never,
        ..job.clone()
    };
    save_file(&fresh, path, meter)
}

/// Feeds the first `len` bytes of `path` to `digest` (a resumed download's
/// checksum covers the bytes of the earlier run too).
fn hash_prefix(path: &Path, len: u64, digest: &mut HashThread) -> Result<()> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(e, path.display()))?;
    let mut reader = file.take(len);
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(|e| Error::io(e, path.display()))?;
        if n == 0 {
            return Ok(());
        }
        digest.update(&buffer[..n]);
    }
}

/// What a download does besides copying: a digest to check at the end, a
/// rate limit, and the control file that makes it resumable.
pub(crate) struct Extras {
    digest: Option<HashThread>,
    limit: Option<RateLimit>,
    checkpoint: Option<Checkpoint>,
}

impl Extras {
    pub(crate) fn new(job: &Job) -> Extras {
        Extras {
            digest: job.sha256.map(HashThread::start),
            limit: job.limit_rate.map(RateLimit::new),
            checkpoint: None,
        }
    }

    /// Accounts for `chunk`, now written out.
    fn after_write(&mut self, chunk: &[u8]) {
        if let Some(digest) = &mut self.digest {
            digest.update(chunk);
        }
        if let Some(checkpoint) = &mut self.checkpoint {
            checkpoint.state.done += chunk.len() as u64;
        }
        if let Some(limit) = &self.limit {
            limit.take(chunk.len());
        }
    }

    /// Rewrites the control file when it is time, with the manifest parts
    /// completed so far.
    fn maybe_checkpoint(
        &mut self,
        sink: &mut Sink,
        stream: &Stream,
    ) -> std::result::Result<(), WriteError> {
        match &mut self.checkpoint {
            Some(checkpoint) if checkpoint.due() => {
                checkpoint.update_parts(stream.completed_parts());
                checkpoint.save(|| sink.sync())
            }
            _ => Ok(()),
        }
    }

    /// At the end of the stream: the digest, if one was asked for, matches.
    fn verify(&mut self, what: &str) -> std::result::Result<Digest, WriteError> {
        match self.digest.take() {
            Some(digest) => digest.finish(what).map(Some),
            None => Ok(None),
        }
    }
}

/// Writes the whole stream, in order, into `sink` (a writer, or a file
/// that is not a regular one).
pub(crate) fn save_stream(
    stream: &mut Stream,
    mut sink: Sink,
    meter: &mut Meter,
    extras: &mut Extras,
) -> std::result::Result<Digest, WriteError> {
    let name = sink.name();
    pump(stream, &mut sink, meter, extras)?;
    sink.finish()?;
    extras.verify(&name)
}

/// Splits a file sequence into `BASE-file1`, `BASE-file2`, …, each renamed
/// into place when complete. The rate limit and the digest apply to the
/// stream as it arrives, length prefixes included: that is what a
/// publisher can hash. A file is renamed as soon as it is complete, so a
/// digest that does not match at the end is reported after the files were
/// kept.
pub(crate) fn save_sequence(
    stream: &mut Stream,
    base: &Path,
    max_files: u64,
    meter: &mut Meter,
    extras: &mut Extras,
) -> std::result::Result<(Digest, u64), WriteError> {
    let url = stream.url().to_string();
    let parts = Cell::new(None);
    let mut files = SequenceFiles::new(PartsSeen {
        stream: &mut *stream,
        parts: &parts,
        extras: &mut *extras,
    });
    let mut written = 0u64;
    meter.set_files(0);
    while let Some(mut file) = files.next_file().map_err(WriteError::Failed)? {
        if written == max_files {
            // Checked before the file is created: a stream of empty files
            // costs its sender 4 bytes each, the disk an inode each.
            return Err(WriteError::Failed(
                Error::new(
                    ErrorKind::Limit,
                    format!(
                        "more than {max_files} files in the sequence, the most one download \
                     creates (--max-files)"
                    ),
                )
                .with_subject(url),
            ));
        }
        written += 1;
        let mut name = base.as_os_str().to_owned();
        name.push(format!("-file{written}"));
        // Each file is saved as FILE is: through a symbolic link, and into
        // a device or a pipe in place.
        let mut sink = match output::destination(Path::new(&name)) {
            Ok(output::Destination::File(path)) => Sink::file(&path),
            Ok(output::Destination::InPlace(path)) => Sink::in_place(&path),
            Err(e) => Err(e),
        }
        .map_err(WriteError::Failed)?;
        let copied = (|| {
            while let Some(chunk) = file.next_chunk().map_err(WriteError::Failed)? {
                sink.write(chunk)?;
                meter.set_parts(parts.get());
                meter.add(chunk.len() as u64);
            }
            Ok(())
        })();
        match copied {
            Ok(()) => sink.finish()?,
            Err(e) => {
                sink.abandon();
                return Err(e);
            }
        }
        meter.set_files(written);
    }
    drop(files);
    meter.set_parts(stream.parts_done());
    let base = base.display();
    let what = match written {
        0 => format!("the sequence for {base} (no files)"),
        1 => format!("the sequence saved as {base}-file1"),
        n => format!("the sequence saved as {base}-file1 … {base}-file{n}"),
    };
    Ok((extras.verify(&what)?, written))
}

/// The stream under a sequence splitter, noting for the meter the
/// manifest parts done before each pull (the splitter owns the stream, so
/// it cannot be asked while files are being written), and passing each
/// chunk to the digest and the rate limit.
struct PartsSeen<'a> {
    stream: &'a mut Stream,
    parts: &'a Cell<Option<u64>>,
    extras: &'a mut Extras,
}

impl ByteSource for PartsSeen<'_> {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        self.parts.set(self.stream.parts_done());
        let chunk = self.stream.next_chunk()?;
        if let Some(chunk) = chunk {
            self.extras.after_write(chunk);
        }
        Ok(chunk)
    }
}

/// Pulls every chunk of `stream` into `sink`.
fn pump(
    stream: &mut Stream,
    sink: &mut Sink,
    meter: &mut Meter,
    extras: &mut Extras,
) -> std::result::Result<(), WriteError> {
    while let Some(chunk) = stream.next_chunk().map_err(WriteError::Failed)? {
        sink.write(chunk)?;
        extras.after_write(chunk);
        let len = chunk.len() as u64;
        sink.flush_before_wait(|| stream.has_chunk_ready())?;
        extras.maybe_checkpoint(sink, stream)?;
        meter.set_parts(stream.parts_done());
        meter.set_activity(stream.activity());
        meter.set_ahead(stream.bytes_ahead());
        meter.add(len);
    }
    // The last part is counted once the stream has ended.
    meter.set_parts(stream.parts_done());
    Ok(())
}
