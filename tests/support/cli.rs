//! Running the `partfetch` binary from tests: a clean environment (no proxy
//! variables inherited), captured output, and a deadline after which the
//! process is killed and the test fails, so no test can hang.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The binary under test: the one cargo built for this run, or the one
/// `PARTFETCH_BIN` names, so that the same tests check another build of
/// the same source (`scripts/build-small.sh`'s).
pub fn bin() -> String {
    std::env::var("PARTFETCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_partfetch").to_owned())
}

/// The version the binary must report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// No single run of the binary in these tests should come near this.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Proxy variables that would change what the binary does.
pub const PROXY_VARIABLES: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// What a run of the binary did.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    /// Everything written to standard output.
    pub stdout: Vec<u8>,
    /// Everything written to standard error, lossily decoded.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Outcome {
    /// Panics, showing standard error, unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Outcome {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}, got {:?}; stderr:\n{}",
            self.code,
            self.stderr
        );
        self
    }

    /// Panics unless the run succeeded with nothing on standard error but
    /// the closing line (`partfetch: FILE done: SIZE in TIME (RATE/s)`),
    /// which `--quiet` leaves out.
    #[track_caller]
    pub fn assert_quiet_success(&self) -> &Outcome {
        self.assert_code(0);
        assert_eq!(
            without_summary(&self.stderr),
            "",
            "expected nothing on stderr but the closing line"
        );
        self
    }

    /// Panics unless standard error is one `partfetch: ` message that
    /// contains each of `parts`.
    #[track_caller]
    pub fn assert_error_mentions(&self, parts: &[&str]) -> &Outcome {
        assert!(
            self.stderr.starts_with("partfetch: "),
            "stderr should start with 'partfetch: ', got:\n{}",
            self.stderr
        );
        for part in parts {
            assert!(
                self.stderr.contains(part),
                "stderr should mention {part:?}, got:\n{}",
                self.stderr
            );
        }
        self
    }
}

/// `stderr` less its last line when that is the closing line of a
/// download that succeeded.
pub fn without_summary(stderr: &str) -> &str {
    let body = stderr.strip_suffix('\n').unwrap_or(stderr);
    let (before, last) = match body.rfind('\n') {
        Some(at) => (&stderr[..at + 1], &body[at + 1..]),
        None => ("", body),
    };
    let closing =
        last.starts_with("partfetch: ") && last.contains(" done: ") && last.ends_with("/s)");
    match closing {
        true => before,
        false => stderr,
    }
}

/// A command for the binary: no inherited proxy variables, stdin closed.
pub fn command() -> Command {
    let mut cmd: Command = Command::new(bin());
    for var in PROXY_VARIABLES {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs the binary with `args` and waits (at most [`DEADLINE`]).
pub fn run(args: &[&str]) -> Outcome {
    let mut cmd: Command = command();
    cmd.args(args);
    run_command(cmd)
}

/// Runs `cmd` with captured output and waits (at most [`DEADLINE`]).
#[track_caller]
pub fn run_command(mut cmd: Command) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start: Instant = Instant::now();
    let mut child: Child = cmd.spawn().expect("spawn partfetch");
    let stdout_reader: JoinHandle<Vec<u8>> = read_all_in_thread(child.stdout.take());
    let stderr_reader: JoinHandle<Vec<u8>> = read_all_in_thread(child.stderr.take());
    let status: ExitStatus = wait_with_deadline(&mut child, DEADLINE);
    let elapsed: Duration = start.elapsed();
    let stdout: Vec<u8> = stdout_reader.join().expect("stdout reader");
    let stderr: Vec<u8> = stderr_reader.join().expect("stderr reader");
    Outcome {
        code: status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed,
    }
}

/// Waits for `child`, killing it and panicking if it runs past `deadline`.
#[track_caller]
pub fn wait_with_deadline(child: &mut Child, deadline: Duration) -> ExitStatus {
    let start: Instant = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("partfetch still running after {deadline:?}: killed");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn read_all_in_thread<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out: Vec<u8> = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

/// A named pipe at DIR/NAME, made with `mkfifo`.
pub fn named_pipe(dir: &super::TempDir, name: &str) -> std::path::PathBuf {
    let path: std::path::PathBuf = dir.join(name);
    let made = Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
    path
}

/// Runs `partfetch URL PIPE` while a thread reads the pipe; returns the
/// outcome and what the reader got.
pub fn fetch_into_pipe(url: &str, pipe: &std::path::Path) -> (Outcome, Vec<u8>) {
    // The test holds the pipe open for writing too (Linux opens a pipe for
    // both without waiting), so the reader's open returns at once, and the
    // reader sees the end only once partfetch and the test have closed it,
    // whatever partfetch did with the pipe.
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(pipe)
        .expect("open the pipe");
    let reading: std::path::PathBuf = pipe.to_owned();
    let reader = thread::spawn(move || std::fs::read(reading).expect("read the pipe"));
    let outcome: Outcome = run(&[url, pipe.to_str().expect("utf-8 path")]);
    drop(holder);
    (outcome, reader.join().expect("reader"))
}

/// Whether `path` itself (not what a link names) is a named pipe.
pub fn is_named_pipe(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}
