//! The `partfetch` command: arguments in, a file or standard output out, an
//! exit status that says what happened.
//!
//! Owns turning options into a [`Client`], choosing the output, pulling the
//! stream into it with a progress line, and the exit codes. The downloading
//! itself is the library's.

#[macro_use]
mod console;
pub mod args;
pub mod checksum;
#[cfg(feature = "serve")]
pub mod demo;
pub mod output;
pub mod pieces;
pub mod progress;
#[cfg(feature = "serve")]
pub mod publish;
pub mod rate_limit;
pub mod resume;

use std::cell::Cell;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::Path;

use partfetch::engine::download::SegmentedDownload;
use partfetch::manifest::expand::RESUME_MISMATCH;
use partfetch::sequence::SequenceFiles;
use partfetch::{ByteSource, Client, Error, ErrorKind, Resumed, ResumedPieces, Stream, Url};

use args::{Command, Download, Output};
use checksum::HashThread;
use output::{Destination, Sink, WriteError};
use progress::{Mode, Progress};
use rate_limit::RateLimit;
use resume::Checkpoint;

/// Exit statuses, as `--help` documents them.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A failure with no code of its own (protocol, manifest, redirect, URL).
    pub const OTHER: i32 = 1;
    /// A usage mistake.
    pub const USAGE: i32 = 2;
    /// 404 or 410.
    pub const NOT_FOUND: i32 = 3;
    /// Another unsuccessful HTTP status.
    pub const HTTP_STATUS: i32 = 4;
    /// Connecting, resolving, timeouts, TLS.
    pub const NETWORK: i32 = 5;
    /// A size or digest mismatch.
    pub const INTEGRITY: i32 = 6;
    /// A local file or stream could not be written or read, or (with
    /// `--resume`) the partial file cannot be continued.
    pub const LOCAL_IO: i32 = 7;
}

/// The exit status for an error of `kind`.
pub fn exit_code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::NotFound => exit::NOT_FOUND,
        ErrorKind::Status(_) => exit::HTTP_STATUS,
        ErrorKind::Network | ErrorKind::Tls => exit::NETWORK,
        ErrorKind::Integrity => exit::INTEGRITY,
        ErrorKind::Io => exit::LOCAL_IO,
        ErrorKind::InvalidInput => exit::USAGE,
        _ => exit::OTHER,
    }
}

/// Runs the command with `args` (without the program name); returns the
/// exit status.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let download = match args::parse(args) {
        Ok(Command::Help) => {
            show!(@ "{}", args::USAGE);
            #[cfg(feature = "serve")]
            show!(@ "{}", args::PUBLISH_USAGE);
            return exit::OK;
        }
        Ok(Command::Version) => {
            show!("partfetch {}", env!("CARGO_PKG_VERSION"));
            return exit::OK;
        }
        Ok(Command::Download(d)) => d,
        #[cfg(feature = "serve")]
        Ok(Command::Split(s)) => return publish::split(&s),
        #[cfg(feature = "serve")]
        Ok(Command::Serve(s)) => return publish::serve(&s),
        #[cfg(feature = "serve")]
        Ok(Command::Demo) => return demo::run(),
        Err(args::UsageError(message)) => {
            say!("partfetch: {message}\nTry 'partfetch --help' for more information.");
            return exit::USAGE;
        }
    };
    match download_to_output(&download) {
        Ok(()) => exit::OK,
        Err(Failure::Usage(message)) => {
            say!("partfetch: {message}");
            exit::USAGE
        }
        Err(Failure::Error(err)) => {
            say!("partfetch: {err}");
            exit_code(err.kind())
        }
    }
}

enum Failure {
    Usage(String),
    Error(Error),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::Error(err)
    }
}

fn build_client(d: &Download) -> Result<Client, Error> {
    let mut builder = Client::builder().on_warning(|w| say!("partfetch: {w}"));
    if !d.quiet {
        // On a terminal the progress line may be showing: the notice takes
        // its place (cleared to the end), and the next update redraws it.
        let clear = if progress_mode(d) == Mode::Terminal {
            "\r\x1b[K"
        } else {
            ""
        };
        builder = builder.on_notice(move |n| say!("{clear}partfetch: {n}"));
    }
    if let Some(t) = d.connect_timeout {
        builder = builder.connect_timeout(t);
    }
    if let Some(t) = d.idle_timeout {
        builder = builder.idle_timeout(t);
    }
    if let Some(n) = d.max_redirects {
        builder = builder.max_redirects(n);
    }
    if let Some(agent) = &d.user_agent {
        builder = builder.user_agent(agent.clone());
    }
    for (name, value) in &d.headers {
        builder = builder.header(name.clone(), value.clone());
    }
    if let Some(proxy) = &d.proxy {
        builder = builder.proxy(proxy.clone());
    }
    for ca in &d.cacert {
        builder = builder.ca_file(ca.clone());
    }
    if let Some(parts) = d.parallel {
        builder = builder.parallel(parts);
    }
    if let Some(connections) = d.connections {
        builder = builder.connections(connections);
    }
    if let Some(cap) = d.max_per_host {
        builder = builder.max_per_host(cap);
    }
    if let Some(retries) = d.retries {
        builder = builder.retries(retries);
    }
    if let Some(limit) = d.cache_limit {
        builder = builder.cache_limit(limit);
    }
    builder.build()
}

fn progress_mode(d: &Download) -> Mode {
    let terminal = std::io::stderr().is_terminal();
    match (d.quiet, d.progress, terminal) {
        (true, _, _) => Mode::Off,
        (false, _, true) => Mode::Terminal,
        (false, true, false) => Mode::Log,
        (false, false, false) => Mode::Off,
    }
}

fn download_to_output(d: &Download) -> Result<(), Failure> {
    let url = Url::parse(&d.url)?;
    let target = match &d.output {
        Output::Stdout => None,
        // A directory, as with cp: the file goes in it, named after the URL.
        Output::File(path) if output::names_a_directory(path) => {
            Some(path.join(output::name_from_url(&url).map_err(Failure::Usage)?))
        }
        Output::File(path) => Some(path.clone()),
        Output::FromUrl => Some(output::name_from_url(&url).map_err(Failure::Usage)?),
    };
    // A sequence's FILE is only the base of its files' names, unless it is
    // a pipe or a device: that takes the stream, as standard output does.
    let destination = match &target {
        Some(path) => match output::destination(path)? {
            Destination::File(_) if d.is_sequence() => None,
            destination => Some(destination),
        },
        None => None,
    };
    if let (Some(Destination::InPlace(path)), true) = (&destination, d.resume) {
        return Err(Failure::Usage(format!(
            "--resume: {} is not a regular file and cannot be resumed",
            path.display()
        )));
    }
    let client = build_client(d)?;
    let mut progress = Progress::new(progress_mode(d));
    let outcome = match &destination {
        Some(Destination::File(path)) => save_file(d, &client, path, &mut progress),
        _ => {
            let mut stream = open(d, &client)?;
            progress.set_total(stream.length());
            let mut extras = Extras::new(d);
            match (&destination, &target) {
                (Some(Destination::InPlace(path)), _) => {
                    let sink = Sink::in_place(path).map_err(Failure::Error)?;
                    save_stream(&mut stream, sink, &mut progress, &mut extras)
                }
                (_, Some(base)) => save_sequence(&mut stream, base, &mut progress, &mut extras),
                (_, None) => {
                    let sink = Sink::stdout().map_err(Failure::Error)?;
                    save_stream(&mut stream, sink, &mut progress, &mut extras)
                }
            }
        }
    };
    match outcome {
        Ok(()) | Err(WriteError::Closed) => {
            progress.finish();
            Ok(())
        }
        Err(WriteError::Failed(e)) => {
            progress.clear();
            Err(Failure::Error(e))
        }
    }
}

fn open(d: &Download, client: &Client) -> Result<Stream, Error> {
    let mirrors: Vec<&str> = d.mirrors.iter().map(String::as_str).collect();
    client.open_mirrored(&d.url, &mirrors)
}

/// What a download does besides copying: a digest to check at the end, a
/// rate limit, and the control file that makes it resumable.
struct Extras {
    digest: Option<HashThread>,
    limit: Option<RateLimit>,
    checkpoint: Option<Checkpoint>,
}

impl Extras {
    fn new(d: &Download) -> Extras {
        Extras {
            digest: d.checksum.map(HashThread::start),
            limit: d.limit_rate.map(RateLimit::new),
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
    fn maybe_checkpoint(&mut self, sink: &mut Sink, stream: &Stream) -> Result<(), WriteError> {
        match &mut self.checkpoint {
            Some(checkpoint) if checkpoint.due() => {
                checkpoint.update_parts(stream.completed_parts());
                checkpoint.save(|| sink.sync())
            }
            _ => Ok(()),
        }
    }

    /// At the end of the stream: the digest, if one was asked for, matches.
    fn verify(&mut self, what: &str) -> Result<(), WriteError> {
        match self.digest.take() {
            Some(digest) => digest.finish(what),
            None => Ok(()),
        }
    }
}

/// Downloads to `path` through `path.partfetch`, resuming an earlier run's
/// partial file when its control file matches this URL.
fn save_file(
    d: &Download,
    client: &Client,
    path: &Path,
    progress: &mut Progress,
) -> Result<(), WriteError> {
    let failed = WriteError::Failed;
    let temp = output::temp_path(path);
    let state_path = resume::state_path(&temp);
    let earlier = match resume::earlier_run(&temp, &d.url) {
        Ok(_) if d.no_resume => None,
        Ok(state) => Some(state),
        Err(why) if d.resume => return Err(resume_refused(path, why.message())),
        Err(_) => None,
    };
    let (stream, offset) = match &earlier {
        Some(state) if state.manifest => {
            match client.resume_manifest(&d.url, state.parts.clone()) {
                Ok(stream) => (stream, state.resume_at()),
                Err(e) if e.message() == RESUME_MISMATCH && d.resume => {
                    return Err(resume_refused(path, &no_longer_lists(d)))
                }
                Err(e) if e.message() == RESUME_MISMATCH => {
                    return start_over(d, client, path, progress)
                }
                Err(e) => return Err(failed(e)),
            }
        }
        Some(state) if state.have.is_some() => {
            match resume_pieces(d, client, path, state, progress)? {
                Some(stream) => (stream, 0),
                None => return Ok(()),
            }
        }
        Some(state) => match client
            .resume(&d.url, state.done, state.validator.as_deref())
            .map_err(failed)?
        {
            (stream, Resumed::AtOffset) => {
                if state.validator.is_none() {
                    warn_unverified(d, path);
                }
                (stream, state.done)
            }
            (_, Resumed::FromStart) if d.resume => {
                return Err(resume_refused(path, &changed(d)));
            }
            (stream, Resumed::FromStart) => {
                say_changed(d, path);
                (stream, 0)
            }
        },
        None => (open(d, client).map_err(failed)?, 0),
    };
    // A large resource from the start needs no order: its pieces go where
    // they belong as they arrive.
    let mut stream = match (stream, offset) {
        (Stream::Segmented(segmented), 0) => {
            let file = pieces::PieceFile::open(path, false, d.limit_rate).map_err(failed)?;
            let download = SegmentedDownload::new(*segmented, file.store());
            return pieces::save(d, download, file, progress);
        }
        (stream, _) => stream,
    };
    // Saved to a file, the download may be resumed: a manifest's stream
    // records its parts for the control file.
    stream.record_parts();
    let mut sink = Sink::resume(path, offset).map_err(failed)?;
    let mut extras = Extras::new(d);
    if offset > 0 {
        if let Some(digest) = &mut extras.digest {
            hash_prefix(&temp, offset, digest).map_err(failed)?;
        }
    }
    if stream.is_resumable() {
        let state = resume::State {
            url: d.url.clone(),
            length: stream.length().map(|n| n + offset),
            validator: stream.validator().map(str::to_owned),
            done: offset,
            manifest: matches!(stream, Stream::Manifest(_)),
            parts: earlier.map(|e| e.parts).unwrap_or_default(),
            have: None,
        };
        let mut checkpoint = Checkpoint::new(state_path.clone(), state);
        checkpoint.save(|| sink.sync())?;
        extras.checkpoint = Some(checkpoint);
    } else {
        let _ = std::fs::remove_file(&state_path);
    }
    progress.set_total(stream.length().map(|n| n + offset));
    progress.skip(offset);
    let pumped = pump(&mut stream, &mut sink, progress, &mut extras);
    // The manifests changed since the earlier run, found before any byte
    // of this one: that run's bytes are worth nothing. (With --resume,
    // they are left for the user: the sink only cut off the unfinished
    // part after the completed ones, which no run could continue.)
    if let Err(WriteError::Failed(e)) = &pumped {
        if e.message() == RESUME_MISMATCH && offset > 0 {
            drop(sink);
            if d.resume {
                return Err(resume_refused(path, &no_longer_lists(d)));
            }
            return start_over(d, client, path, progress);
        }
    }
    let result = pumped.and_then(|()| {
        sink.sync()?;
        extras.verify(&path.display().to_string())
    });
    match result {
        Ok(()) => {
            sink.finish()?;
            let _ = std::fs::remove_file(&state_path);
            Ok(())
        }
        Err(err) => {
            let verified_wrong =
                matches!(&err, WriteError::Failed(e) if e.kind() == ErrorKind::Integrity);
            match extras.checkpoint.as_mut() {
                // A complete file with the wrong digest is kept to be
                // looked at, but is nothing to resume.
                Some(_) if verified_wrong => {
                    let _ = sink.keep();
                    let _ = std::fs::remove_file(&state_path);
                }
                // Nothing written at all: nothing worth keeping.
                Some(checkpoint) if checkpoint.state.done == 0 => {
                    sink.abandon();
                    let _ = std::fs::remove_file(&state_path);
                }
                Some(checkpoint) => {
                    checkpoint.update_parts(stream.completed_parts());
                    let _ = checkpoint.save(|| sink.sync());
                    let _ = sink.keep();
                }
                None if verified_wrong => {
                    let _ = sink.keep();
                }
                None => sink.abandon(),
            }
            Err(err)
        }
    }
}

/// Continues a download an earlier run wrote piece by piece. Returns the
/// stream to write in order from the start when the resource changed and
/// is no longer one to fetch in pieces, `None` when it is saved.
fn resume_pieces(
    d: &Download,
    client: &Client,
    path: &Path,
    state: &resume::State,
    progress: &mut Progress,
) -> Result<Option<Stream>, WriteError> {
    let failed = WriteError::Failed;
    let (Some(length), Some(have)) = (state.length, state.have.clone()) else {
        if d.resume {
            return Err(resume_refused(
                path,
                "its control file lists pieces but not the file's length",
            ));
        }
        return Ok(Some(open(d, client).map_err(failed)?));
    };
    let file = pieces::PieceFile::open(path, true, d.limit_rate).map_err(failed)?;
    let mirrors: Vec<&str> = d.mirrors.iter().map(String::as_str).collect();
    let resumed = client
        .resume_pieces(
            &d.url,
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
                warn_unverified(d, path);
            }
            pieces::save(d, download, file, progress)?;
            Ok(None)
        }
        ResumedPieces::Changed(_) if d.resume => Err(resume_refused(path, &changed(d))),
        ResumedPieces::Changed(stream) => {
            say_changed(d, path);
            file.clear().map_err(failed)?;
            match stream {
                Stream::Segmented(segmented) => {
                    let download = SegmentedDownload::new(*segmented, file.store());
                    pieces::save(d, download, file, progress)?;
                    Ok(None)
                }
                stream => Ok(Some(stream)),
            }
        }
    }
}

/// Tells that the earlier run's bytes of `path` are of another version of
/// the resource (or cannot be continued), so the download starts over.
fn say_changed(d: &Download, path: &Path) {
    say!(
        "partfetch: {}: starting {} over",
        changed(d),
        path.display()
    );
}

/// Why the earlier run's bytes cannot be continued at their offset.
fn changed(d: &Download) -> String {
    format!(
        "{} changed since the last run (or its server ignores Range)",
        shown_url(d)
    )
}

/// Why the parts an earlier run completed cannot be skipped.
fn no_longer_lists(d: &Download) -> String {
    format!(
        "{} no longer lists what the last run downloaded",
        shown_url(d)
    )
}

/// `--resume` cannot be honoured, for the reason `why`: the error says so
/// and what to do. Nothing was written by then: the partial file and its
/// control file are as the last run left them, for the user to decide (a
/// manifest's is at most cut to the parts it completed, dropping the
/// unfinished one after them that no run could continue).
///
/// Its kind is [`ErrorKind::Io`] (exit status 7, a local file): the
/// arguments are right (a usage error, 2, is one they would cause
/// anywhere), it is the partial file beside FILE that cannot be continued.
fn resume_refused(path: &Path, why: &str) -> WriteError {
    WriteError::Failed(Error::new(
        ErrorKind::Io,
        format!(
            "--resume: cannot resume {}: {why}; run without --resume to download it from the start",
            path.display()
        ),
    ))
}

/// Warns that the earlier run's bytes of `path` are continued with no way
/// to tell whether the server's file is still the one they came from: it
/// sent neither a strong `ETag` nor a `Last-Modified` for `If-Range`, so
/// a file replaced by another of the same length would be spliced.
/// partfetch resumes anyway, as `curl -C -` and `wget -c` do (starting
/// over would make every download from such a server unresumable), and
/// says so even with `--quiet`: like the warning of a redirect from HTTPS
/// to plain HTTP, a doubt about the data is not progress output.
fn warn_unverified(d: &Download, path: &Path) {
    say!(
        "partfetch: warning: resuming {} without a way to tell whether {} changed \
         since the last run (its server sends no ETag or Last-Modified)",
        path.display(),
        shown_url(d)
    );
}

/// The URL as messages show it: without the credentials it may carry.
fn shown_url(d: &Download) -> String {
    Url::parse(&d.url).map_or_else(|_| d.url.clone(), |url| url.redacted().to_string())
}

/// The earlier run's bytes cannot be used: says so, and downloads afresh.
fn start_over(
    d: &Download,
    client: &Client,
    path: &Path,
    progress: &mut Progress,
) -> Result<(), WriteError> {
    say!(
        "partfetch: {}: starting {} over",
        no_longer_lists(d),
        path.display()
    );
    let fresh = Download {
        no_resume: true,
        resume: false,
        ..d.clone()
    };
    save_file(&fresh, client, path, progress)
}

/// Feeds the first `len` bytes of `path` to `digest` (a resumed download's
/// checksum covers the bytes of the earlier run too).
fn hash_prefix(path: &Path, len: u64, digest: &mut HashThread) -> Result<(), Error> {
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

/// Writes the whole stream, in order, to standard output or to a file that
/// is not a regular one.
fn save_stream(
    stream: &mut Stream,
    mut sink: Sink,
    progress: &mut Progress,
    extras: &mut Extras,
) -> Result<(), WriteError> {
    let name = sink.name();
    pump(stream, &mut sink, progress, extras)?;
    sink.finish()?;
    extras.verify(&name)
}

/// Splits a file sequence into `BASE-file1`, `BASE-file2`, …, each renamed
/// into place when complete. The rate limit and the digest apply to the
/// stream as it arrives, length prefixes included: that is what a
/// publisher can hash. A file is renamed as soon as it is complete, so a
/// digest that does not match at the end is reported (exit status 6)
/// after the files were kept.
fn save_sequence(
    stream: &mut Stream,
    base: &std::path::Path,
    progress: &mut Progress,
    extras: &mut Extras,
) -> Result<(), WriteError> {
    let parts = Cell::new(None);
    let mut files = SequenceFiles::new(PartsSeen {
        stream: &mut *stream,
        parts: &parts,
        extras: &mut *extras,
    });
    let mut written = 0u64;
    progress.set_files(0);
    while let Some(mut file) = files.next_file().map_err(WriteError::Failed)? {
        written += 1;
        let mut name = base.as_os_str().to_owned();
        name.push(format!("-file{written}"));
        // Each file is saved as FILE is: through a symbolic link, and into
        // a device or a pipe in place.
        let mut sink = match output::destination(std::path::Path::new(&name)) {
            Ok(output::Destination::File(path)) => Sink::file(&path),
            Ok(output::Destination::InPlace(path)) => Sink::in_place(&path),
            Err(e) => Err(e),
        }
        .map_err(WriteError::Failed)?;
        let copied = (|| {
            while let Some(chunk) = file.next_chunk().map_err(WriteError::Failed)? {
                sink.write(chunk)?;
                if let Some(done) = parts.get() {
                    progress.set_parts(done);
                }
                progress.add(chunk.len());
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
        progress.set_files(written);
    }
    drop(files);
    if let Some(done) = stream.parts_done() {
        progress.set_parts(done);
    }
    let base = base.display();
    let what = match written {
        0 => format!("the sequence for {base} (no files)"),
        1 => format!("the sequence saved as {base}-file1"),
        n => format!("the sequence saved as {base}-file1 … {base}-file{n}"),
    };
    extras.verify(&what)
}

/// The stream under a sequence splitter, noting for the progress line the
/// manifest parts done before each pull (the splitter owns the stream, so
/// it cannot be asked while files are being written), and passing each
/// chunk to the digest and the rate limit.
struct PartsSeen<'a> {
    stream: &'a mut Stream,
    parts: &'a Cell<Option<u64>>,
    extras: &'a mut Extras,
}

impl ByteSource for PartsSeen<'_> {
    fn next_chunk(&mut self) -> partfetch::Result<Option<&[u8]>> {
        self.parts.set(self.stream.parts_done());
        let chunk = self.stream.next_chunk()?;
        if let Some(chunk) = chunk {
            self.extras.after_write(chunk);
        }
        Ok(chunk)
    }
}

/// Pulls every chunk of `source` into `sink`.
fn pump(
    stream: &mut Stream,
    sink: &mut Sink,
    progress: &mut Progress,
    extras: &mut Extras,
) -> Result<(), WriteError> {
    while let Some(chunk) = stream.next_chunk().map_err(WriteError::Failed)? {
        sink.write(chunk)?;
        extras.after_write(chunk);
        let len = chunk.len();
        sink.flush_before_wait(|| stream.has_chunk_ready())?;
        extras.maybe_checkpoint(sink, stream)?;
        if let Some(parts) = stream.parts_done() {
            progress.set_parts(parts);
        }
        progress.set_activity(stream.activity());
        progress.add(len);
    }
    // The last part is counted once the stream has ended.
    if let Some(parts) = stream.parts_done() {
        progress.set_parts(parts);
    }
    Ok(())
}
