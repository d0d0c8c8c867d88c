//! The programs other than partfetch that tests run, and how a test that
//! cannot run one says so.
//!
//! In scope: [`TOOLS`], every program a test starts with the Debian
//! package that installs it (`.ci/run` installs each, and `tests/suite.rs`
//! checks both lists); [`require_tool`], which finds one, and
//! [`run_tool`], which runs one for its output; [`skip`], the one way a
//! test gives up for want of something on the machine.
//!
//! A skip is visible and never silent: outside CI it prints a notice
//! straight to the terminal (the test harness keeps what a passing test
//! prints with `eprintln!` to itself) and the test passes; with the
//! environment variable `CI` set it is a failure, so that a machine that
//! lacks a tool cannot pass CI by skipping what needs it.
//!
//! Out of scope: running the programs (each test does, with its own
//! arguments), and the swarm bed's own checks (`tests/swarm/bed.sh`).

use std::ffi::OsStr;
use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A program a test runs.
pub struct Tool {
    /// Its name, as found on `PATH`.
    pub program: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
}

/// Packages that every Debian system has (`Essential: yes`): `.ci/run`
/// need not install them.
pub const ESSENTIAL_PACKAGES: &[&str] = &["bash", "coreutils", "util-linux"];

/// Every program a test starts. A test that runs a new one adds it here,
/// and `.ci/run` a `need PROGRAM PACKAGE` line for it (`tests/suite.rs`
/// fails until both are done).
pub const TOOLS: &[Tool] = &[
    // tests/nginx.rs, tests/split.rs (.ci/run installs nginx-light where
    // the release has it).
    tool("nginx", "nginx"),
    // tests/serve.rs; the swarm bed.
    tool("curl", "curl"),
    // tests/serve.rs, tests/make_torrent.rs; a leecher on the swarm bed.
    tool("aria2c", "aria2"),
    // tests/metainfo.rs, tests/make_torrent.rs; the swarm bed's torrents.
    tool("mktorrent", "mktorrent"),
    tool("transmission-show", "transmission-cli"),
    // The swarm bed (tests/swarm.rs).
    tool("transmission-remote", "transmission-cli"),
    tool("transmission-daemon", "transmission-daemon"),
    tool("opentracker", "opentracker"),
    tool("ip", "iproute2"),
    // tests/serve.rs reads the listening socket's backlog.
    tool("ss", "iproute2"),
    tool("python3", "python3"),
    // tests/cli_tls.rs makes self-signed certificates as people do, and
    // their key pins as curl's manual says.
    tool("openssl", "openssl"),
    // tests/seeding.rs stops a seed with `kill -INT`, as Ctrl-C does;
    // tests/cli_resume.rs a manifest's download.
    tool("kill", "procps"),
    // tests/cli_resume.rs: a small tmpfs for a full disk and a read-only
    // file system.
    tool("mount", "mount"),
    tool("umount", "mount"),
    // tests/cli_resume.rs runs partfetch as nobody when the tests run as
    // root; the swarm bed's process groups and locks.
    tool("setpriv", "util-linux"),
    tool("setsid", "util-linux"),
    // tests/cli_http.rs gives partfetch a narrow terminal (a pty).
    tool("script", "bsdutils"),
    tool("stty", "coreutils"),
    tool("flock", "util-linux"),
    // support::cli::named_pipe; tests/cli_resume.rs; the swarm bed.
    tool("mkfifo", "coreutils"),
    tool("id", "coreutils"),
    tool("bash", "bash"),
];

const fn tool(program: &'static str, package: &'static str) -> Tool {
    Tool { program, package }
}

/// Where `program` is: `$NGINX` for nginx, else the first executable of
/// that name on `PATH`, else in the `sbin` directories that a user's
/// `PATH` may leave out (Debian puts nginx in `/usr/sbin`). `None` when
/// there is none: then the calling test is skipped, or fails under `CI`
/// (see [`skip`]). Panics when `program` is not in [`TOOLS`], so that the
/// list stays whole.
#[track_caller]
pub fn require_tool(program: &str) -> Option<PathBuf> {
    let Some(tool) = TOOLS.iter().find(|t| t.program == program) else {
        panic!("{program} is not in support::tool::TOOLS: add it there, and to .ci/run");
    };
    match find(program) {
        Some(path) => Some(path),
        None => skip(format!(
            "{program} is not installed (apt-get install {})",
            tool.package
        )),
    }
}

/// What `program` prints on standard output when run with `args`, or
/// `None` when it is not installed (see [`require_tool`]). Panics when it
/// runs and fails, with what it printed.
#[track_caller]
pub fn run_tool<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Option<String> {
    let path = require_tool(program)?;
    let out = Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{program} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Gives up on the calling test for `why` (something this machine lacks):
/// with `CI` set, a panic; otherwise a notice on the terminal, and `None`,
/// for the test to return early:
///
/// ```ignore
/// let Some(curl) = support::require_tool("curl") else { return };
/// let Some(disk) = Tmpfs::mount("rw").or_else(|| support::skip("no tmpfs")) else { return };
/// ```
#[track_caller]
pub fn skip<T>(why: impl Display) -> Option<T> {
    let test = test_name();
    if std::env::var_os("CI").is_some() {
        panic!("{test}: CI is set, and {why}");
    }
    // Straight to the file descriptor: the harness captures `eprintln!` of
    // passing tests, and this must be seen. One write, so that lines of
    // tests running at once do not interleave.
    let line = format!("SKIPPED: {test}: {why}. With CI set this is a failure.\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

/// The running test's name: the harness names each test's thread after it.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "a test".to_owned(),
    }
}

fn find(program: &str) -> Option<PathBuf> {
    if program == "nginx" {
        if let Some(path) = std::env::var_os("NGINX") {
            return Some(PathBuf::from(path));
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/sbin",
                "/sbin",
                "/usr/local/nginx/sbin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The v1 info-hash `transmission-show` prints (`Hash:` or `Hash v1:`),
/// in lower case.
pub fn transmission_show_hash(shown: &str) -> String {
    shown
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Hash") && !l.starts_with("Hash v2"))
        .find_map(|l| l.split_whitespace().find(|w| w.len() == 40))
        .unwrap_or_else(|| panic!("no hash in:\n{shown}"))
        .to_lowercase()
}
