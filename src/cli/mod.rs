//! The `partfetch` command: arguments in, a file or standard output out, an
//! exit status that says what happened.
//!
//! Owns turning options into a [`Client`], choosing the output, pulling the
//! stream into it with a progress line, and the exit codes. The downloading
//! itself is the library's.

#[macro_use]
mod console;
pub mod args;
#[cfg(feature = "serve")]
pub mod demo;
pub mod events;
pub mod input;
pub mod limits;
#[cfg(feature = "serve")]
pub mod make_torrent;
pub mod progress;
#[cfg(feature = "serve")]
pub mod publish;
mod terminal;

use std::ffi::OsString;
use std::io::IsTerminal;

use partfetch::{Client, Error, ErrorKind, Resume, Url};

use args::{Command, Download, Output};
use progress::{Line, Mode};

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
    /// Stopped by Ctrl-C (128 + SIGINT, as a shell reports it; 143 for
    /// SIGTERM).
    pub const INTERRUPTED: i32 = 130;
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
        ErrorKind::ResumeMismatch => exit::LOCAL_IO,
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
        #[cfg(feature = "serve")]
        Ok(Command::MakeTorrent(m)) => return make_torrent::run(&m),
        Err(args::UsageError(message)) => {
            say!("partfetch: {message}\nTry 'partfetch --help' for more information.");
            return exit::USAGE;
        }
    };
    if let Some(list) = &download.input_file {
        return input::run(&download, list);
    }
    match download_to_output(&download) {
        Ok(()) => exit::OK,
        // What was received is kept for the next run, as after a failure.
        Err(err) if err.kind() == ErrorKind::Cancelled && interrupted().is_some() => {
            say!("partfetch: interrupted");
            interrupted().unwrap_or(exit::INTERRUPTED)
        }
        Err(err) if err.kind() == ErrorKind::ResumeMismatch => {
            say!("partfetch: --resume: {err}; run without --resume to download it from the start");
            exit_code(err.kind())
        }
        Err(err) => {
            say!("partfetch: {}", events::describe(&err, &download));
            exit_code(err.kind())
        }
    }
}

fn build_client(d: &Download) -> Result<Client, Error> {
    // On a terminal the progress line may be showing: a line about the
    // download takes its place (cleared to the end), and the next update
    // redraws it.
    let clear = progress_mode(d) == Mode::Terminal;
    let (quiet, verbose) = (d.quiet, d.verbose);
    let mut builder = Client::builder().on_event(move |e| events::say(e, quiet, verbose, clear));
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
    for pin in &d.pinned_public_keys {
        builder = builder.pinned_public_key(pin.clone());
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
    builder.compressed(d.compressed).build()
}

fn progress_mode(d: &Download) -> Mode {
    // The downloads of a list run side by side: one line cannot show them.
    if d.input_file.is_some() {
        return Mode::Off;
    }
    let terminal = std::io::stderr().is_terminal();
    match (d.quiet, d.progress, terminal) {
        (true, _, _) => Mode::Off,
        (false, _, true) => Mode::Terminal,
        (false, true, false) => Mode::Log,
        (false, false, false) => Mode::Off,
    }
}

/// Downloads as the options say, through the library's download builder.
fn download_to_output(d: &Download) -> Result<(), Error> {
    if d.head {
        return show_head(d);
    }
    if partfetch::names_a_torrent(&d.url) {
        return download_torrent(d);
    }
    #[cfg(feature = "metalink")]
    if partfetch::names_a_metalink(&d.url) {
        return download_metalink(d);
    }
    Url::parse(&d.url)?;
    let client = build_client(d)?;
    #[cfg(feature = "ctrl-c")]
    stop_on_ctrl_c(&client);
    let limits = limits::Limits::start(d.max_time, d.max_filesize, client.cancel_handle());
    let mut line = Line::new(progress_mode(d));
    let mut download = client
        .download(&d.url)
        .resume(resume_of(d))
        .on_progress(|p| {
            limits.check(p);
            line.show(p)
        });
    for mirror in &d.mirrors {
        download = download.mirror(mirror);
    }
    // A URL that serves a .torrent, saved into a directory: its files
    // are what is wanted, as with a FILE.torrent.
    let into_dir = match &d.output {
        Output::FromUrl => true,
        Output::File(path) => path.is_dir(),
        Output::Stdout => false,
    };
    if into_dir && !d.is_sequence() {
        download = download.follow_torrent();
        #[cfg(feature = "metalink")]
        {
            download = download.follow_metalink();
        }
    }
    if let Some(digest) = &d.checksum {
        download = download.sha256(&partfetch::sha256::to_hex(digest));
    }
    if let Some(rate) = d.limit_rate {
        download = download.limit_rate(rate);
    }
    if let Some(files) = d.max_files {
        download = download.max_files(files);
    }
    let started = std::time::Instant::now();
    let saved = match &d.output {
        Output::Stdout => stdout().and_then(|out| download.to_writer_named(out, "standard output")),
        Output::File(path) if d.is_sequence() => download.to_files(path),
        Output::File(path) => download.to_path(path),
        Output::FromUrl if d.is_sequence() => download.to_files(""),
        Output::FromUrl => download.to_dir(""),
    };
    match saved {
        // The progress line's last figures, then the closing line.
        // Nothing fetched: no figures to show, only that.
        Ok(saved) if saved.already_complete => {
            line.clear();
            if !d.quiet {
                say!("partfetch: {} is complete", saved_name(&saved));
            }
            Ok(())
        }
        Ok(saved) => {
            line.finish();
            if !d.quiet {
                let name = saved_name(&saved);
                let summary =
                    progress::summary(&name, saved.bytes, saved.resumed_from, started.elapsed());
                say!("partfetch: {summary}");
            }
            Ok(())
        }
        // The reader of standard output (or of a pipe given as FILE) went
        // away: what it read is what it wanted, as with `head`.
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::BrokenPipe) => {
            line.finish();
            Ok(())
        }
        Err(e) => {
            line.clear();
            Err(limits.explain(e))
        }
    }
}

/// `-I`: the head of the response to `HEAD`, after redirects, on standard
/// output as it came (CRLF line ends, as curl prints it); an unsuccessful
/// status is then the error a download would have had.
fn show_head(d: &Download) -> Result<(), Error> {
    let client = build_client(d)?;
    let limits = limits::Limits::start(d.max_time, None, client.cancel_handle());
    let response = client.head(&d.url).map_err(|e| limits.explain(e))?;
    show!(@ "{}", response.head().text());
    response.error_for_status().map(drop)
}

/// What a download saved, as its closing line names it: the file, the
/// files of a sequence, or standard output.
fn saved_name(saved: &partfetch::Saved) -> String {
    let Some(path) = &saved.path else {
        return "standard output".to_owned();
    };
    let base = path.display();
    match saved.files {
        None => base.to_string(),
        Some(0) => format!("{base} (a sequence of no files)"),
        Some(1) => format!("{base}-file1"),
        Some(n) => format!("{base}-file1 … {base}-file{n} ({n} files)"),
    }
}

/// Downloads a torrent's files into the directory FILE names (default:
/// the current one), or seeds them from there (`partfetch seed`).
fn download_torrent(d: &Download) -> Result<(), Error> {
    let client = build_client(d)?;
    #[cfg(feature = "ctrl-c")]
    stop_on_ctrl_c(&client);
    let limits = limits::Limits::start(d.max_time, d.max_filesize, client.cancel_handle());
    let mut line = Line::new(progress_mode(d));
    let mut torrent = client.torrent(&d.url).on_progress(|p| {
        limits.check(p);
        line.show(p)
    });
    if let Some(peers) = d.max_peers {
        torrent = torrent.max_peers(peers);
    }
    if d.seed {
        torrent = torrent.seed();
    }
    if let Some(ratio) = d.seed_ratio_thousandths {
        torrent = torrent.seed_ratio(ratio as f64 / 1000.0);
    }
    if let Some(time) = d.seed_time {
        torrent = torrent.seed_time(time);
    }
    if let Some(port) = d.listen_port {
        torrent = torrent.listen_port(port);
    }
    if let Some(rate) = d.max_upload_rate {
        torrent = torrent.max_upload_rate(rate);
    }
    let dir = match &d.output {
        Output::File(path) => path.clone(),
        Output::FromUrl => std::path::PathBuf::from("."),
        Output::Stdout => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a torrent is saved into a directory, not to standard output",
            ))
        }
    };
    let ran = match d.seed_only {
        true => torrent.seed_from(dir),
        false => torrent.to_dir(dir),
    };
    match ran {
        Ok(_) => {
            line.finish();
            Ok(())
        }
        Err(e) => {
            line.clear();
            Err(limits.explain(e))
        }
    }
}

/// The signal that stopped the download (SIGINT for Ctrl-C, or SIGTERM);
/// 0 while none has.
static STOPPED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The exit status of a download a signal stopped: 128 + the signal, as a
/// shell reports a program the signal killed.
fn interrupted() -> Option<i32> {
    match STOPPED_BY.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        signal => Some(128 + signal),
    }
}

/// What `-c/--resume` and `--no-resume` ask of an earlier run's data.
fn resume_of(d: &Download) -> Resume {
    match (d.resume, d.no_resume) {
        (true, _) => Resume::Require,
        (false, true) => Resume::Never,
        (false, false) => Resume::IfPossible,
    }
}

/// Downloads the files a Metalink document lists into the directory FILE
/// names (default: the current one).
#[cfg(feature = "metalink")]
fn download_metalink(d: &Download) -> Result<(), Error> {
    // Each file has its own mirrors and hashes, from the document.
    if !d.mirrors.is_empty() || d.checksum.is_some() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "--mirror and --checksum are for one URL: a Metalink document gives each file's own",
        )
        .with_subject(&d.url));
    }
    let client = build_client(d)?;
    #[cfg(feature = "ctrl-c")]
    stop_on_ctrl_c(&client);
    let limits = limits::Limits::start(d.max_time, d.max_filesize, client.cancel_handle());
    let mut line = Line::new(progress_mode(d));
    let mut metalink = client
        .metalink(&d.url)
        .resume(resume_of(d))
        .on_progress(|p| {
            limits.check(p);
            line.show(p)
        });
    if let Some(rate) = d.limit_rate {
        metalink = metalink.limit_rate(rate);
    }
    let dir =
        match &d.output {
            Output::File(path) => path.clone(),
            Output::FromUrl => std::path::PathBuf::from("."),
            Output::Stdout => return Err(Error::new(
                ErrorKind::InvalidInput,
                "a Metalink document's files are saved into a directory, not to standard output",
            )),
        };
    let started = std::time::Instant::now();
    match metalink.to_dir(dir) {
        Ok(saved) => {
            line.finish();
            if !d.quiet {
                let name = format!("{} files in {}", saved.files.unwrap_or(0), dir_name(&saved));
                let summary =
                    progress::summary(&name, saved.bytes, saved.resumed_from, started.elapsed());
                say!("partfetch: {summary}");
            }
            Ok(())
        }
        Err(e) => {
            line.clear();
            Err(limits.explain(e))
        }
    }
}

#[cfg(feature = "metalink")]
fn dir_name(saved: &partfetch::Saved) -> String {
    saved
        .path
        .as_ref()
        .map_or_else(|| ".".to_owned(), |p| p.display().to_string())
}

#[cfg(feature = "ctrl-c")]
/// The first Ctrl-C (or SIGTERM) cancels `client`, so that a download
/// stops with its control file up to date (a manifest's parts fetched
/// whole ahead of the one being written kept beside it), or a swarm
/// saves its control file and tells the trackers `stopped`; the second
/// ends the program at once.
fn stop_on_ctrl_c(client: &Client) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let cancel = client.cancel_handle();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut signals = signals.forever();
            if let Some(signal) = signals.next() {
                STOPPED_BY.store(signal, std::sync::atomic::Ordering::SeqCst);
                cancel.cancel();
            }
            if let Some(signal) = signals.next() {
                std::process::exit(128 + signal);
            }
        });
}

/// Standard output as a file, written without Rust's line buffering.
fn stdout() -> Result<std::fs::File, Error> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::io(e, "standard output"))?;
    Ok(std::fs::File::from(fd))
}
