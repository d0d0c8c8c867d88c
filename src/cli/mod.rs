//! The `partfetch` command: arguments in, a file or standard output out, an
//! exit status that says what happened.
//!
//! Owns turning options into a [`Client`], choosing the output, pulling the
//! stream into it with a progress line, and the exit codes. The downloading
//! itself is the library's.

pub mod args;
#[cfg(feature = "serve")]
pub mod demo;
pub mod output;
pub mod progress;
#[cfg(feature = "serve")]
pub mod publish;

use std::cell::Cell;
use std::ffi::OsString;
use std::io::IsTerminal;

use partfetch::sequence::SequenceFiles;
use partfetch::{ByteSource, Client, Error, ErrorKind, Stream, Url};

use args::{Command, Download, Output};
use output::{Sink, WriteError};
use progress::{Mode, Progress};

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
    /// A local file or stream could not be written or read.
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
        _ => exit::OTHER,
    }
}

/// Runs the command with `args` (without the program name); returns the
/// exit status.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let download = match args::parse(args) {
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            #[cfg(feature = "serve")]
            print!("{}", args::PUBLISH_USAGE);
            return exit::OK;
        }
        Ok(Command::Version) => {
            println!("partfetch {}", env!("CARGO_PKG_VERSION"));
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
            eprintln!("partfetch: {message}\nTry 'partfetch --help' for more information.");
            return exit::USAGE;
        }
    };
    match download_to_output(&download) {
        Ok(()) => exit::OK,
        Err(Failure::Usage(message)) => {
            eprintln!("partfetch: {message}");
            exit::USAGE
        }
        Err(Failure::Error(err)) => {
            eprintln!("partfetch: {err}");
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
    let mut builder = Client::builder().on_warning(|w| eprintln!("partfetch: {w}"));
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
        Output::File(path) => Some(path.clone()),
        Output::FromUrl => Some(output::name_from_url(&url).map_err(Failure::Usage)?),
    };
    let client = build_client(d)?;
    let mut progress = Progress::new(progress_mode(d));
    let mirrors: Vec<&str> = d.mirrors.iter().map(String::as_str).collect();
    let mut stream = client.open_mirrored(&d.url, &mirrors)?;
    progress.set_total(stream.length());
    let is_sequence = d.sequence.unwrap_or_else(|| d.url.contains("-seq"));
    let outcome = match &target {
        Some(base) if is_sequence => save_sequence(&mut stream, base, &mut progress),
        _ => save_stream(&mut stream, target.as_deref(), &mut progress),
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

/// Writes the whole stream to one output.
fn save_stream(
    stream: &mut Stream,
    target: Option<&std::path::Path>,
    progress: &mut Progress,
) -> Result<(), WriteError> {
    let mut sink = match target {
        None => Sink::stdout(),
        Some(path) => Sink::file(path),
    }
    .map_err(WriteError::Failed)?;
    match pump(stream, &mut sink, progress) {
        Ok(()) => sink.finish(),
        Err(e) => {
            sink.abandon();
            Err(e)
        }
    }
}

/// Splits a file sequence into `BASE-file1`, `BASE-file2`, …, each renamed
/// into place when complete.
fn save_sequence(
    stream: &mut Stream,
    base: &std::path::Path,
    progress: &mut Progress,
) -> Result<(), WriteError> {
    let parts = Cell::new(None);
    let mut files = SequenceFiles::new(PartsSeen {
        stream: &mut *stream,
        parts: &parts,
    });
    let mut written = 0u64;
    progress.set_files(0);
    while let Some(mut file) = files.next_file().map_err(WriteError::Failed)? {
        written += 1;
        let mut name = base.as_os_str().to_owned();
        name.push(format!("-file{written}"));
        let mut sink = Sink::file(std::path::Path::new(&name)).map_err(WriteError::Failed)?;
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
    Ok(())
}

/// The stream under a sequence splitter, noting for the progress line the
/// manifest parts done before each pull (the splitter owns the stream, so
/// it cannot be asked while files are being written).
struct PartsSeen<'a> {
    stream: &'a mut Stream,
    parts: &'a Cell<Option<u64>>,
}

impl ByteSource for PartsSeen<'_> {
    fn next_chunk(&mut self) -> partfetch::Result<Option<&[u8]>> {
        self.parts.set(self.stream.parts_done());
        self.stream.next_chunk()
    }
}

/// Pulls every chunk of `source` into `sink`.
fn pump(stream: &mut Stream, sink: &mut Sink, progress: &mut Progress) -> Result<(), WriteError> {
    while let Some(chunk) = stream.next_chunk().map_err(WriteError::Failed)? {
        sink.write(chunk)?;
        let len = chunk.len();
        if let Some(parts) = stream.parts_done() {
            progress.set_parts(parts);
        }
        progress.add(len);
    }
    // The last part is counted once the stream has ended.
    if let Some(parts) = stream.parts_done() {
        progress.set_parts(parts);
    }
    Ok(())
}
