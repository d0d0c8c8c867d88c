//! The `partfetch` command over plain HTTP, black-box: the built binary
//! against the in-process test server in `support`. One test per
//! behaviour of the command's contract (README "Using the command").

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use support::cli::{self, fetch_into_pipe, is_named_pipe, named_pipe, Outcome, DEADLINE, VERSION};
#[cfg(feature = "tls")]
use support::TestPki;
use support::{test_data, Blackhole, Body, Chunk, Reply, Request, Server, Step, TempDir};

// ---------------------------------------------------------------- helpers

/// Runs `partfetch [extra...] URL DIR/out.bin`; returns the outcome, the
/// directory and the output path.
fn fetch_to_file(url: &str, extra: &[&str]) -> (Outcome, TempDir, PathBuf) {
    let dir: TempDir = TempDir::new("out");
    let out: PathBuf = dir.join("out.bin");
    let mut args: Vec<&str> = extra.to_vec();
    args.push(url);
    let out_str: String = out.to_str().expect("utf-8 temp path").to_owned();
    args.push(&out_str);
    let outcome: Outcome = cli::run(&args);
    (outcome, dir, out)
}

/// Runs `partfetch [extra...] URL -`.
fn fetch_to_stdout(url: &str, extra: &[&str]) -> Outcome {
    let mut args: Vec<&str> = extra.to_vec();
    args.push(url);
    args.push("-");
    cli::run(&args)
}

/// Runs `partfetch URL` (no FILE) in a fresh current directory.
fn fetch_into_current_dir(url: &str) -> (Outcome, TempDir) {
    let dir: TempDir = TempDir::new("cwd");
    let mut cmd: Command = cli::command();
    cmd.arg(url).current_dir(dir.path());
    (cli::run_command(cmd), dir)
}

/// A value a handler needs that is only known once the server has started
/// (such as the URL of the server itself).
type Later = Arc<OnceLock<String>>;

fn later() -> Later {
    Arc::new(OnceLock::new())
}

fn get(later: &Later) -> &str {
    later.get().expect("set after start")
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
fn closed_port() -> u16 {
    let listener: TcpListener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A server where `/hopNx` redirects to `/hop(N+1)x` until `/hop{last}x`,
/// which answers 200 "arrived".
fn hop_server(last: usize) -> Server {
    Server::start(move |r: &Request| {
        let n: usize = r
            .path()
            .strip_prefix("/hop")
            .and_then(|p| p.strip_suffix('x'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        if n < last {
            Reply::redirect(302, &format!("/hop{}x", n + 1))
        } else if n == last {
            Reply::ok("arrived")
        } else {
            Reply::status(404)
        }
    })
}

fn read_file(path: &PathBuf) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// ---------------------------------------------------------------- output

#[test]
fn saves_body_to_named_file() {
    let server: Server = Server::start(|_| Reply::ok("hello, file\n"));
    let (outcome, dir, out) = fetch_to_file(&server.url("/a/b.txt"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(read_file(&out), b"hello, file\n");
    assert!(
        outcome.stdout.is_empty(),
        "nothing on stdout when saving to a file"
    );
    assert_eq!(
        dir.entries(),
        vec!["out.bin"],
        "only the finished file is left"
    );
}

#[test]
fn a_curl_command_line_without_scheme_downloads_as_partfetch_does() {
    let server: Server = Server::start(|r: &Request| match r.path() {
        "/go" => Reply::redirect(302, "/file.txt"),
        _ => Reply::ok("curl habits\n"),
    });
    let bare: String = format!("127.0.0.1:{}/go", server.port());
    let outcome: Outcome = fetch_to_stdout(&bare, &["-L", "-O", "-c", "-C", "-"]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"curl habits\n");
}

#[test]
fn dash_writes_body_to_stdout() {
    let server: Server = Server::start(|_| Reply::ok("to stdout\n"));
    let outcome: Outcome = fetch_to_stdout(&server.url("/x"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"to stdout\n");
}

#[test]
fn empty_body_saves_an_empty_file() {
    let server: Server = Server::start(|_| Reply::ok(""));
    let (outcome, _dir, out) = fetch_to_file(&server.url("/empty"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(read_file(&out), b"");
}

#[test]
fn without_file_saves_under_last_path_segment() {
    let server: Server = Server::start(|_| Reply::ok("named by the URL"));
    let (outcome, dir) = fetch_into_current_dir(&server.url("/dir/name.bin"));
    outcome.assert_quiet_success();
    assert_eq!(dir.entries(), vec!["name.bin"]);
    assert_eq!(read_file(&dir.join("name.bin")), b"named by the URL");
}

#[test]
fn output_option_saves_like_file() {
    let server: Server = Server::start(|_| Reply::ok("by -o"));
    let dir: TempDir = TempDir::new("dash-o");
    let out: PathBuf = dir.join("out.bin");
    let out_str: String = out.to_str().expect("utf-8 temp path").to_owned();
    let outcome: Outcome = cli::run(&["-q", "-o", &out_str, &server.url("/x")]);
    outcome.assert_quiet_success();
    assert_eq!(dir.entries(), vec!["out.bin"]);
    assert_eq!(read_file(&out), b"by -o");
}

#[test]
fn a_directory_as_file_saves_in_it_under_the_url_name() {
    let server: Server = Server::start(|_| Reply::ok("into the directory"));
    let dir: TempDir = TempDir::new("into");
    let target: String = dir.path().to_str().expect("utf-8 temp path").to_owned();
    let outcome: Outcome = cli::run(&["-q", &server.url("/files/name.bin"), &target]);
    outcome.assert_quiet_success();
    assert_eq!(dir.entries(), vec!["name.bin"]);
    assert_eq!(read_file(&dir.join("name.bin")), b"into the directory");
}

#[test]
fn a_missing_directory_ending_in_slash_is_a_local_error_naming_the_file_in_it() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let dir: TempDir = TempDir::new("parent");
    let missing: String = format!("{}/missing/", dir.path().display());
    let outcome: Outcome = cli::run(&["-q", &server.url("/files/name.bin"), &missing]);
    outcome
        .assert_code(7)
        .assert_error_mentions(&["missing/name.bin"]);
    assert!(
        dir.entries().is_empty(),
        "nothing written: {:?}",
        dir.entries()
    );
}

#[test]
fn a_directory_as_file_still_refuses_a_url_without_a_name() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let dir: TempDir = TempDir::new("into");
    let target: String = dir.path().to_str().expect("utf-8 temp path").to_owned();
    let url: String = server.url("/files/");
    let outcome: Outcome = cli::run(&["-q", &url, &target]);
    outcome.assert_code(2).assert_error_mentions(&[
        "cannot name the output after",
        &url,
        "ends with /",
    ]);
    assert!(
        dir.entries().is_empty(),
        "nothing written: {:?}",
        dir.entries()
    );
}

#[test]
fn default_name_is_percent_decoded() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let (outcome, dir) = fetch_into_current_dir(&server.url("/dir/my%20file.txt"));
    outcome.assert_quiet_success();
    assert_eq!(dir.entries(), vec!["my file.txt"]);
}

#[test]
fn a_name_as_long_as_the_file_system_allows_is_saved() {
    let long: String = "n".repeat(250);
    let server: Server = Server::start(|_| Reply::ok("x"));
    let (outcome, dir) = fetch_into_current_dir(&server.url(&format!("/dir/{long}")));
    outcome.assert_quiet_success();
    assert_eq!(dir.entries(), vec![long]);
}

#[test]
fn a_name_too_long_for_the_file_system_is_refused_before_downloading() {
    let long: String = "n".repeat(256);
    let server: Server = Server::start(|_| Reply::ok("x"));
    let (outcome, dir) = fetch_into_current_dir(&server.url(&format!("/dir/{long}")));
    outcome
        .assert_code(7)
        .assert_error_mentions(&["file name too long (256 bytes", &long]);
    assert_eq!(server.requests().len(), 0, "downloaded before refusing");
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}

#[test]
fn default_name_ignores_the_query() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let (outcome, dir) = fetch_into_current_dir(&server.url("/dir/f.txt?version=2&x=y"));
    outcome.assert_quiet_success();
    assert_eq!(dir.entries(), vec!["f.txt"]);
}

#[test]
fn default_name_refuses_an_empty_last_segment() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let (outcome, dir) = fetch_into_current_dir(&server.url("/dir/"));
    outcome
        .assert_code(2)
        .assert_error_mentions(&["cannot name the output", "ends with /"]);
    assert!(
        dir.entries().is_empty(),
        "nothing written: {:?}",
        dir.entries()
    );
}

#[test]
fn default_name_refuses_dot_dot() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let (outcome, dir) = fetch_into_current_dir(&server.url("/dir/%2E%2E"));
    outcome.assert_code(2).assert_error_mentions(&[
        "cannot name the output",
        "/dir/%2E%2E",
        ". or ..",
    ]);
    assert!(
        dir.entries().is_empty(),
        "nothing written: {:?}",
        dir.entries()
    );
}

#[test]
fn default_name_refuses_a_single_dot() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let (outcome, dir) = fetch_into_current_dir(&server.url("/dir/%2e"));
    outcome.assert_code(2).assert_error_mentions(&[
        "cannot name the output",
        "/dir/%2e",
        ". or ..",
    ]);
    assert!(
        dir.entries().is_empty(),
        "nothing written: {:?}",
        dir.entries()
    );
}

#[test]
fn default_name_refuses_an_encoded_slash() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let (outcome, dir) = fetch_into_current_dir(&server.url("/dir/a%2Fb"));
    outcome.assert_code(2).assert_error_mentions(&[
        "cannot name the output",
        "/dir/a%2Fb",
        "holds a slash",
    ]);
    assert!(
        dir.entries().is_empty(),
        "nothing written: {:?}",
        dir.entries()
    );
}

#[test]
fn default_name_refuses_a_control_character() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let (outcome, dir) = fetch_into_current_dir(&server.url("/dir/a%1B%5B2Jb"));
    outcome
        .assert_code(2)
        .assert_error_mentions(&["control character"]);
    assert!(
        dir.entries().is_empty(),
        "nothing written: {:?}",
        dir.entries()
    );
    assert!(server.requests().is_empty(), "refused before any request");
}

#[test]
fn file_is_written_under_temporary_name_until_complete() {
    let release = Arc::new(AtomicBool::new(false));
    let held = Arc::clone(&release);
    let server: Server = Server::start(move |_| {
        Reply::new(200)
            .header("Content-Length", "6")
            .body(Body::Steps(vec![
                Step::Write(b"abc".to_vec()),
                Step::Until(Arc::clone(&held), DEADLINE),
                Step::Write(b"def".to_vec()),
            ]))
    });
    let dir: TempDir = TempDir::new("temp-name");
    let out: PathBuf = dir.join("out.bin");
    let temp: PathBuf = dir.join("out.bin.partfetch");
    let mut cmd: Command = cli::command();
    cmd.arg(server.url("/slow"))
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child: Child = cmd.spawn().expect("spawn");
    // The server holds the second half until the test has looked: an
    // order, whatever the machine's speed.
    let start: Instant = Instant::now();
    while !temp.exists() && start.elapsed() < DEADLINE {
        thread::sleep(Duration::from_millis(20));
    }
    let temp_seen: bool = temp.exists();
    let final_seen_early: bool = out.exists();
    release.store(true, Ordering::SeqCst);
    let status: ExitStatus = cli::wait_with_deadline(&mut child, DEADLINE);
    assert!(
        temp_seen,
        "out.bin.partfetch should exist while downloading"
    );
    assert!(
        !final_seen_early,
        "out.bin must not exist before the download completes"
    );
    assert_eq!(status.code(), Some(0));
    assert_eq!(read_file(&out), b"abcdef");
    assert!(!temp.exists(), "the temporary file is renamed away");
}

#[test]
fn closed_stdout_reader_exits_0_quietly() {
    let data: Arc<Vec<u8>> = Arc::new(test_data(32 << 20, 7));
    let served: Arc<Vec<u8>> = Arc::clone(&data);
    let server: Server = Server::start(move |_| Reply::ok(served.to_vec()));
    let mut cmd: Command = cli::command();
    cmd.arg(server.url("/big"))
        .arg("-")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child: Child = cmd.spawn().expect("spawn");
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let stderr_reader: JoinHandle<String> = thread::spawn(move || {
        let mut s: String = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first: [u8; 10] = [0; 10];
    stdout.read_exact(&mut first).expect("read the first bytes");
    assert_eq!(&first[..], &data[..10]);
    drop(stdout); // like `| head -c 10`
    let status: ExitStatus = cli::wait_with_deadline(&mut child, DEADLINE);
    let stderr: String = stderr_reader.join().expect("stderr reader");
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert_eq!(stderr, "", "nothing on stderr when the reader goes away");
}

#[test]
fn a_part_answered_for_the_whole_file_is_an_error_not_a_short_file() {
    // Every answer is a 206 for bytes 5-9 of 10, whatever was asked:
    // neither the first piece asked for, nor the whole file asked for
    // again without Range. Saving "hello" as the file would end it short.
    let server: Server = Server::start(|_| {
        Reply::new(206)
            .header("Content-Range", "bytes 5-9/10")
            .body(Body::Sized(b"hello".to_vec()))
    });
    let dir: TempDir = TempDir::new("wrong-206");
    let out: PathBuf = dir.join("f");
    let outcome: Outcome = cli::run(&[&server.url("/f"), out.to_str().expect("utf-8")]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["206", "without Range"]);
    assert!(!out.exists(), "a short file was saved");
}

#[test]
fn a_closed_stderr_does_not_stop_a_download() {
    // The first answer is a 503, so partfetch says on stderr that it tries
    // again; stderr's reader is gone (`2>&1 | head`), and the line is lost,
    // not the download.
    let asked = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&asked);
    let server: Server = Server::start(move |_| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(503).header("Retry-After", "0")
        } else {
            Reply::ok("after the retry\n")
        }
    });
    let dir: TempDir = TempDir::new("closed-stderr");
    let out: PathBuf = dir.join("f");
    let mut cmd: Command = cli::command();
    cmd.arg(server.url("/f"))
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child: Child = cmd.spawn().expect("spawn");
    drop(child.stderr.take());
    let status: ExitStatus = cli::wait_with_deadline(&mut child, DEADLINE);
    assert_eq!(status.code(), Some(0));
    assert_eq!(asked.load(Ordering::SeqCst), 2, "asked again after the 503");
    assert_eq!(read_file(&out), b"after the retry\n");
}

/// Runs `partfetch [extra] URL -` against a server whose `/live` sends
/// "first", stalls until the test has looked at standard output (15 s at
/// most), then sends "-rest" (`/m.parts` is a manifest of that one part).
/// Returns what standard output showed during the stall (after up to 10 s
/// of waiting for 5 bytes), all of it, and the exit code.
fn stdout_during_stall(path: &str, extra: &[&str]) -> (Vec<u8>, Vec<u8>, Option<i32>) {
    let seen: Arc<AtomicBool> = Arc::new(AtomicBool::new(false));
    let release: Arc<AtomicBool> = Arc::clone(&seen);
    let server: Server = Server::start(move |r: &Request| match r.path() {
        "/m.parts" => Reply::ok("live\n"),
        // The size line of the second chunk arrives with the first: only
        // framing is buffered when the stall starts.
        "/chunked" => Reply::new(200)
            .header("Transfer-Encoding", "chunked")
            .body(Body::Steps(vec![
                Step::Write(b"5\r\nfirst\r\n5\r\n".to_vec()),
                Step::Until(Arc::clone(&release), Duration::from_secs(15)),
                Step::Write(b"-rest\r\n0\r\n\r\n".to_vec()),
            ])),
        _ => Reply::new(200)
            .header("Content-Length", "10")
            .body(Body::Steps(vec![
                Step::Write(b"first".to_vec()),
                Step::Until(Arc::clone(&release), Duration::from_secs(15)),
                Step::Write(b"-rest".to_vec()),
            ])),
    });
    let mut cmd: Command = cli::command();
    cmd.arg("-q")
        .args(extra)
        .args([&server.url(path), "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child: Child = cmd.spawn().expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let (sender, received) = mpsc::channel::<Vec<u8>>();
    let reader: JoinHandle<()> = thread::spawn(move || {
        let mut buffer: [u8; 64] = [0; 64];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut got: Vec<u8> = Vec::new();
    let deadline: Instant = Instant::now() + Duration::from_secs(10);
    while got.len() < 5 {
        let left: Duration = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(bytes) => got.extend_from_slice(&bytes),
            Err(_) => break,
        }
    }
    let during_stall: Vec<u8> = got.clone();
    seen.store(true, Ordering::SeqCst);
    if during_stall.len() < 5 {
        let _ = child.kill();
    }
    let status: ExitStatus = cli::wait_with_deadline(&mut child, DEADLINE);
    reader.join().expect("stdout reader");
    got.extend(received.try_iter().flatten());
    (during_stall, got, status.code())
}

/// Bytes that arrive before the server stalls reach a reader of standard
/// output during the stall (as `partfetch URL - | less` on a live stream
/// needs), not when a buffer fills or the stream ends. The server sends
/// the rest only once the test has seen the first bytes: an ordering, not
/// a timing, with limits so that a failure cannot hang the test.
#[test]
fn stdout_passes_on_bytes_that_arrived_before_a_stall() {
    let (during_stall, all, code) = stdout_during_stall("/live", &[]);
    assert_eq!(
        String::from_utf8_lossy(&during_stall),
        "first",
        "the bytes sent before the stall must reach stdout during it"
    );
    assert_eq!(code, Some(0));
    assert_eq!(all, b"first-rest");
}

#[test]
fn stdout_passes_on_a_chunked_bodys_bytes_that_arrived_before_a_stall() {
    let (during_stall, all, code) = stdout_during_stall("/chunked", &[]);
    assert_eq!(
        String::from_utf8_lossy(&during_stall),
        "first",
        "the chunk sent before the stall must reach stdout during it"
    );
    assert_eq!(code, Some(0));
    assert_eq!(all, b"first-rest");
}

/// The same through a manifest, for a part read in place (`-j 1`) and one
/// fetched ahead by a worker.
#[test]
fn stdout_passes_on_bytes_of_a_manifest_part_that_arrived_before_a_stall() {
    for extra in [&["-j", "1"][..], &[]] {
        let (during_stall, all, code) = stdout_during_stall("/m.parts", extra);
        assert_eq!(
            String::from_utf8_lossy(&during_stall),
            "first",
            "{extra:?}: the bytes sent before the stall must reach stdout during it"
        );
        assert_eq!(code, Some(0), "{extra:?}");
        assert_eq!(all, b"first-rest", "{extra:?}");
    }
}

#[test]
fn large_body_saved_to_file_is_byte_identical() {
    let data: Arc<Vec<u8>> = Arc::new(test_data(32 << 20, 1));
    let served: Arc<Vec<u8>> = Arc::clone(&data);
    let server: Server = Server::start(move |_| Reply::ok(served.to_vec()));
    let (outcome, _dir, out) = fetch_to_file(&server.url("/big.bin"), &[]);
    outcome.assert_quiet_success();
    let got: Vec<u8> = read_file(&out);
    assert_eq!(got.len(), data.len());
    assert!(got == *data, "the saved file differs from the body");
}

#[test]
fn large_body_to_stdout_is_byte_identical() {
    let data: Arc<Vec<u8>> = Arc::new(test_data(32 << 20, 2));
    let served: Arc<Vec<u8>> = Arc::clone(&data);
    let server: Server = Server::start(move |_| Reply::ok(served.to_vec()));
    let outcome: Outcome = fetch_to_stdout(&server.url("/big.bin"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout.len(), data.len());
    assert!(outcome.stdout == *data, "stdout differs from the body");
}

#[test]
fn a_named_pipe_as_file_is_written_in_place_and_stays_a_pipe() {
    let server: Server = Server::start(|_| Reply::ok("through the pipe\n"));
    let dir: TempDir = TempDir::new("fifo");
    let pipe: PathBuf = named_pipe(&dir, "out");
    let (outcome, got) = fetch_into_pipe(&server.url("/a.txt"), &pipe);
    outcome.assert_quiet_success();
    assert_eq!(got, b"through the pipe\n");
    assert!(is_named_pipe(&pipe), "the pipe was replaced");
    assert!(
        !dir.join("out.partfetch").exists(),
        "no temporary file beside a pipe"
    );
}

#[test]
fn a_large_ranged_file_streams_into_a_named_pipe_in_order() {
    // Large enough for pieces over several connections, which a file on
    // disk would get written where they belong, out of order.
    let data: Arc<Vec<u8>> = Arc::new(test_data(9 << 20, 3));
    let served: Arc<Vec<u8>> = Arc::clone(&data);
    let server: Server = Server::start(move |r: &Request| {
        Reply::file(r, &served, support::Ranges::Honour).header("ETag", "\"v1\"")
    });
    let dir: TempDir = TempDir::new("fifo");
    let pipe: PathBuf = named_pipe(&dir, "out");
    let (outcome, got) = fetch_into_pipe(&server.url("/big.bin"), &pipe);
    outcome.assert_quiet_success();
    assert_eq!(got.len(), data.len());
    assert!(got == *data, "the pipe's reader got other bytes");
    assert!(is_named_pipe(&pipe), "the pipe was replaced");
}

#[test]
fn dev_null_as_file_is_written_and_stays_a_device() {
    use std::os::unix::fs::FileTypeExt;
    let server: Server = Server::start(|_| Reply::ok("discarded"));
    let outcome: Outcome = cli::run(&[&server.url("/a.txt"), "/dev/null"]);
    outcome.assert_quiet_success();
    let null = std::fs::symlink_metadata("/dev/null").expect("/dev/null");
    assert!(
        null.file_type().is_char_device(),
        "/dev/null is no longer a device"
    );
    assert!(!std::path::Path::new("/dev/null.partfetch").exists());
}

#[test]
fn resume_refuses_a_file_that_is_not_a_regular_one() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let outcome: Outcome = cli::run(&["--resume", &server.url("/a.txt"), "/dev/null"]);
    outcome
        .assert_code(2)
        .assert_error_mentions(&["/dev/null", "not a regular file"]);
}

#[test]
fn a_link_to_a_file_replaces_the_file_and_keeps_the_link() {
    let server: Server = Server::start(|_| Reply::ok("new contents\n"));
    let dir: TempDir = TempDir::new("link");
    let real: PathBuf = dir.join("real.bin");
    let link: PathBuf = dir.join("link.bin");
    std::fs::write(&real, b"old").expect("write");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let outcome: Outcome = cli::run(&[&server.url("/a.txt"), link.to_str().expect("utf-8")]);
    outcome.assert_quiet_success();
    assert_eq!(read_file(&real), b"new contents\n");
    let kind = std::fs::symlink_metadata(&link).expect("link").file_type();
    assert!(kind.is_symlink(), "the link was replaced by a file");
}

#[test]
fn partfetchs_own_names_beside_file_never_write_through_a_link_or_into_a_pipe() {
    // A small file comes as one stream, a large ranged one in pieces: the
    // two ways of opening FILE.partfetch and its control file.
    let large: Arc<Vec<u8>> = Arc::new(test_data(5 << 20, 8));
    let served: Arc<Vec<u8>> = Arc::clone(&large);
    let server: Server = Server::start(move |r: &Request| {
        if r.path() == "/large.bin" {
            Reply::file(r, &served, support::Ranges::Honour).header("ETag", "\"v1\"")
        } else {
            Reply::ok("new contents\n").header("ETag", "\"v1\"")
        }
    });
    let dir: TempDir = TempDir::new("own-names");
    let victim: PathBuf = dir.join("victim");
    for (name, expected) in [
        ("small.bin", b"new contents\n".to_vec()),
        ("large.bin", large.to_vec()),
    ] {
        std::fs::write(&victim, b"precious").expect("write");
        let out: PathBuf = dir.join(name);
        let url: String = server.url(&format!("/{name}"));
        let out_arg: &str = out.to_str().expect("utf-8");

        // A control file about to be written, planted as a link, then as a
        // pipe: replaced, not written through or waited on.
        let state_new: PathBuf = dir.join(&format!("{name}.partfetch.state.new"));
        std::os::unix::fs::symlink(&victim, &state_new).expect("symlink");
        cli::run(&[&url, out_arg]).assert_quiet_success();
        assert_eq!(read_file(&out), expected, "{name}");
        std::fs::remove_file(&out).expect("remove");
        support::cli::named_pipe(&dir, &format!("{name}.partfetch.state.new"));
        cli::run(&[&url, out_arg]).assert_quiet_success();
        assert_eq!(read_file(&out), expected, "{name}");
        std::fs::remove_file(&out).expect("remove");
        assert_eq!(
            read_file(&victim),
            b"precious",
            "{name}: written through a link"
        );

        // The partial file planted as a link or a pipe: refused, naming it.
        let partial: PathBuf = dir.join(&format!("{name}.partfetch"));
        std::os::unix::fs::symlink(&victim, &partial).expect("symlink");
        cli::run(&[&url, out_arg])
            .assert_code(7)
            .assert_error_mentions(&["symbolic link", &partial.display().to_string()]);
        std::fs::remove_file(&partial).expect("remove");
        support::cli::named_pipe(&dir, &format!("{name}.partfetch"));
        cli::run(&[&url, out_arg])
            .assert_code(7)
            .assert_error_mentions(&["named pipe"]);
        std::fs::remove_file(&partial).expect("remove");
        assert_eq!(
            read_file(&victim),
            b"precious",
            "{name}: written through a link"
        );
        assert!(!out.exists());
    }
}

#[test]
fn a_file_replaced_by_a_download_keeps_its_permissions_and_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // A small file comes as one stream; a large ranged one in pieces, each
    // written where it belongs: two ways of putting the file in place.
    let large: Arc<Vec<u8>> = Arc::new(test_data(5 << 20, 7));
    let served: Arc<Vec<u8>> = Arc::clone(&large);
    let server: Server = Server::start(move |r: &Request| {
        if r.path() == "/large.bin" {
            Reply::file(r, &served, support::Ranges::Honour).header("ETag", "\"v1\"")
        } else {
            Reply::ok("new contents\n")
        }
    });
    let dir: TempDir = TempDir::new("mode");
    for (name, expected) in [
        ("small.bin", b"new contents\n".to_vec()),
        ("large.bin", large.to_vec()),
    ] {
        let out: PathBuf = dir.join(name);
        std::fs::write(&out, b"old").expect("write");
        // Another user's file, when the tests run as root (as in CI):
        // only root may give a file away.
        let root = std::fs::metadata(&out).expect("metadata").uid() == 0;
        let owner = if root { (65534, 65534) } else { owner_of(&out) };
        std::os::unix::fs::chown(&out, Some(owner.0), Some(owner.1)).expect("chown");
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let outcome: Outcome = cli::run(&[
            &server.url(&format!("/{name}")),
            out.to_str().expect("utf-8"),
        ]);
        outcome.assert_quiet_success();
        assert!(read_file(&out) == expected, "{name} has other bytes");
        let mode = std::fs::metadata(&out)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o640, "{name} lost its permissions");
        assert_eq!(owner_of(&out), owner, "{name} changed owner");
    }
}

#[test]
fn a_file_the_user_may_not_write_is_not_replaced() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let server: Server = Server::start(|_| Reply::ok("new contents\n"));
    // A directory anyone may write into, without the sticky bit: renaming
    // over a file there needs no right to the file itself.
    let dir: TempDir = TempDir::new("not-yours");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out: PathBuf = dir.join("theirs.bin");
    std::fs::write(&out, b"theirs").expect("write");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    // Root writes any file: as root (as in CI), the download runs as
    // nobody, and the file is root's; otherwise it is the user's own,
    // read-only, which the user may not write either.
    let root = std::fs::metadata(&out).expect("metadata").uid() == 0;
    let mut cmd = if root {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(cli::bin());
        for var in cli::PROXY_VARIABLES {
            cmd.env_remove(var);
        }
        cmd
    } else {
        cli::command()
    };
    cmd.arg(server.url("/new.bin")).arg(&out);
    let outcome: Outcome = cli::run_command(cmd);
    outcome
        .assert_code(7)
        .assert_error_mentions(&["may not write", out.to_str().expect("utf-8")]);
    assert_eq!(read_file(&out), b"theirs", "the file is as it was");
    assert_eq!(dir.entries(), ["theirs.bin"], "nothing else written");
    assert!(server.requests().is_empty(), "refused before any request");
}

/// The owner and group of `path`.
fn owner_of(path: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).expect("metadata");
    (meta.uid(), meta.gid())
}

#[test]
fn a_link_to_a_file_not_there_yet_creates_it_and_keeps_the_link() {
    let server: Server = Server::start(|_| Reply::ok("created through the link\n"));
    let dir: TempDir = TempDir::new("link");
    let link: PathBuf = dir.join("link.bin");
    std::os::unix::fs::symlink("made.bin", &link).expect("symlink");
    let outcome: Outcome = cli::run(&[&server.url("/a.txt"), link.to_str().expect("utf-8")]);
    outcome.assert_quiet_success();
    assert_eq!(
        read_file(&dir.join("made.bin")),
        b"created through the link\n"
    );
    let kind = std::fs::symlink_metadata(&link).expect("link").file_type();
    assert!(kind.is_symlink(), "the link was replaced by a file");
}

#[test]
fn a_link_that_loops_is_refused_and_left_alone() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let dir: TempDir = TempDir::new("link");
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::os::unix::fs::symlink("b", &a).expect("symlink");
    std::os::unix::fs::symlink("a", &b).expect("symlink");
    let outcome: Outcome = cli::run(&[&server.url("/a.txt"), a.to_str().expect("utf-8")]);
    outcome
        .assert_code(7)
        .assert_error_mentions(&["loops", a.to_str().expect("utf-8")]);
    assert!(std::fs::symlink_metadata(&a)
        .expect("a")
        .file_type()
        .is_symlink());
    assert_eq!(server.requests().len(), 0, "nothing asked for");
}

// ---------------------------------------------------------------- statuses and exit codes

#[test]
fn not_found_exits_3_naming_the_url_and_leaves_no_file() {
    let server: Server = Server::start(|_| Reply::status(404));
    let url: String = server.url("/missing");
    let (outcome, _dir, out) = fetch_to_file(&url, &[]);
    outcome.assert_code(3).assert_error_mentions(&["404", &url]);
    assert!(!out.exists());
}

#[test]
fn gone_410_exits_3() {
    let server: Server = Server::start(|_| Reply::status(410));
    let url: String = server.url("/gone");
    let (outcome, _dir, out) = fetch_to_file(&url, &[]);
    outcome.assert_code(3).assert_error_mentions(&[&url]);
    assert!(!out.exists());
}

#[test]
fn server_error_exits_4_and_leaves_no_file() {
    let server: Server = Server::start(|_| Reply::status(503));
    let url: String = server.url("/busy");
    let (outcome, _dir, out) = fetch_to_file(&url, &[]);
    outcome.assert_code(4).assert_error_mentions(&["503", &url]);
    assert!(!out.exists());
}

#[test]
fn a_request_sent_again_after_a_503_says_so_and_when_unless_quiet() {
    let body: Vec<u8> = test_data(10_000, 503);
    let served: Vec<u8> = body.clone();
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&asked);
    let server: Server = Server::start(move |_| {
        if seen.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            Reply::status(503).header("Retry-After", "1")
        } else {
            Reply::ok(served.clone())
        }
    });
    let url: String = server.url("/busy");

    let outcome: Outcome = fetch_to_stdout(&url, &[]);
    outcome.assert_code(0);
    assert_eq!(outcome.stdout, body);
    assert_eq!(
        cli::without_summary(&outcome.stderr)
            .lines()
            .collect::<Vec<_>>(),
        [format!(
            "partfetch: HTTP status 503 Service Unavailable: {url}; \
             trying again in 1 s (attempt 2 of 5)"
        )],
        "one line, naming the failure, the wait and the attempt"
    );

    let outcome: Outcome = fetch_to_stdout(&url, &["--quiet"]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, body);
    assert_eq!(asked.load(Ordering::SeqCst), 4);
}

#[test]
fn a_retry_after_date_is_waited_for() {
    // When the server asked for the date and when the retry came, both as
    // the system clock saw them (the date is whole seconds).
    let date: Arc<Mutex<Option<u64>>> = Arc::new(Mutex::new(None));
    let retried: Arc<Mutex<Option<std::time::SystemTime>>> = Arc::new(Mutex::new(None));
    let (named, seen) = (Arc::clone(&date), Arc::clone(&retried));
    let server: Server = Server::start(move |_| {
        let now = std::time::SystemTime::now();
        let mut named = named.lock().unwrap();
        match *named {
            None => {
                let secs = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock after 1970")
                    .as_secs();
                *named = Some(secs + 3);
                let then: String = partfetch::http::date::format(secs + 3);
                Reply::status(503).header("Retry-After", &then)
            }
            Some(_) => {
                seen.lock().unwrap().get_or_insert(now);
                Reply::ok("at last")
            }
        }
    });
    let url: String = server.url("/busy");
    let outcome: Outcome = fetch_to_stdout(&url, &[]);
    outcome.assert_code(0);
    assert_eq!(outcome.stdout, b"at last");
    // The order, not a duration: the retry comes at the date or after it,
    // however long this machine took to get there (a busy one may start
    // the wait late, so the announced wait is only bounded above: the date
    // is at most 3 s after the server read its clock).
    let then = std::time::UNIX_EPOCH + Duration::from_secs(date.lock().unwrap().expect("a 503"));
    let retried_at = retried.lock().unwrap().expect("a second request");
    assert!(
        retried_at >= then,
        "retried {:?} before the date",
        then.duration_since(retried_at).unwrap_or_default()
    );
    let line: &str = outcome.stderr.trim_end();
    let waited: &str = line
        .split("trying again in ")
        .nth(1)
        .and_then(|rest| rest.split(" s (attempt 2 of 5)").next())
        .unwrap_or_else(|| panic!("no announced wait in {line:?}"));
    let seconds: f64 = waited.parse().expect("seconds");
    assert!(
        seconds > 0.1 && seconds <= 3.0,
        "announced {seconds} s: more than the first backoff (0.1 s), at most the 3 s to the date"
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn forbidden_exits_4() {
    let server: Server = Server::start(|_| Reply::status(403));
    let url: String = server.url("/secret");
    let outcome: Outcome = fetch_to_stdout(&url, &[]);
    outcome.assert_code(4).assert_error_mentions(&["403", &url]);
    assert!(
        outcome.stdout.is_empty(),
        "an error body is not the download"
    );
}

#[test]
fn missing_output_directory_exits_7() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let dir: TempDir = TempDir::new("no-dir");
    let out: PathBuf = dir.join("does-not-exist/out.bin");
    let outcome: Outcome = cli::run(&[&server.url("/x"), out.to_str().unwrap()]);
    outcome.assert_code(7).assert_error_mentions(&[&format!(
        "cannot write {}: no such file or directory",
        out.display()
    )]);
}

#[test]
fn connection_refused_exits_5_naming_the_url() {
    let url: String = format!("http://127.0.0.1:{}/x", closed_port());
    let outcome: Outcome = fetch_to_stdout(&url, &[]);
    outcome.assert_code(5).assert_error_mentions(&[&url]);
}

#[test]
fn connect_timeout_fails_an_unanswered_connect_with_exit_5() {
    let blackhole: Blackhole = Blackhole::new();
    let url: String = format!("http://{}/x", blackhole.addr());
    let outcome: Outcome = fetch_to_stdout(&url, &["--connect-timeout", "0.5"]);
    outcome.assert_code(5).assert_error_mentions(&[&url]);
    assert!(
        outcome.elapsed < Duration::from_secs(4),
        "--connect-timeout 0.5 took {:?}",
        outcome.elapsed
    );
}

#[test]
fn unsupported_url_scheme_exits_1() {
    let outcome: Outcome = fetch_to_stdout("ftp://127.0.0.1/file", &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["unsupported scheme \"ftp\"", "ftp://127.0.0.1/file"]);
}

#[test]
fn malformed_url_exits_1() {
    let outcome: Outcome = fetch_to_stdout("http://[::1/file", &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["without a closing bracket", "http://[::1/file"]);
}

// ---------------------------------------------------------------- usage

#[test]
fn help_prints_usage_with_the_options() {
    let outcome: Outcome = cli::run(&["--help"]);
    outcome.assert_code(0);
    let text: String = String::from_utf8_lossy(&outcome.stdout).into_owned();
    assert!(text.contains("Usage"), "{text}");
    for option in [
        "--header",
        "--user-agent",
        "--proxy",
        "--cacert",
        "--connect-timeout",
        "--timeout",
        "--max-redirects",
        "--quiet",
        "--progress",
        "--help",
        "--version",
    ] {
        assert!(
            text.contains(option),
            "--help should mention {option}:\n{text}"
        );
    }
}

#[test]
fn version_prints_name_and_version() {
    let outcome: Outcome = cli::run(&["--version"]);
    outcome.assert_code(0);
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout).trim_end(),
        format!("partfetch {VERSION}")
    );
}

#[test]
fn unknown_option_exits_2() {
    let outcome: Outcome = cli::run(&["--no-such-option", "http://127.0.0.1:9/x"]);
    outcome
        .assert_code(2)
        .assert_error_mentions(&["--no-such-option"]);
}

#[test]
fn missing_url_exits_2() {
    let outcome: Outcome = cli::run(&[]);
    outcome
        .assert_code(2)
        .assert_error_mentions(&["no URL given", "--help"]);
}

#[test]
fn a_url_in_place_of_file_is_a_usage_error() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let dir: TempDir = TempDir::new("two-urls");
    let first: String = server.url("/a");
    let second: String = server.url("/b");
    let upper: String = second.replace("http://", "HTTPS://");
    for args in [
        vec![first.as_str(), second.as_str()],
        vec!["-o", second.as_str(), first.as_str()],
        vec![first.as_str(), upper.as_str()],
    ] {
        let mut cmd: Command = cli::command();
        cmd.args(&args).current_dir(dir.path());
        let outcome: Outcome = cli::run_command(cmd);
        outcome.assert_code(2).assert_error_mentions(&[
            "-i FILE downloads",
            "looks like a URL",
            args.iter().find(|a| a.ends_with("/b")).expect("FILE"),
        ]);
        assert!(server.requests().is_empty(), "{args:?}: nothing fetched");
        assert!(dir.entries().is_empty(), "{args:?}: {:?}", dir.entries());
    }
}

#[test]
fn invalid_option_value_exits_2() {
    let outcome: Outcome = cli::run(&["--timeout", "soon", "http://127.0.0.1:9/x", "-"]);
    outcome.assert_code(2).assert_error_mentions(&["--timeout"]);
}

// ---------------------------------------------------------------- progress

#[test]
fn quiet_success_prints_nothing_on_stderr() {
    let server: Server = Server::start(|_| Reply::ok(vec![b'q'; 100_000]));
    let (outcome, _dir, _out) = fetch_to_file(&server.url("/q"), &["--quiet"]);
    outcome.assert_quiet_success();
}

#[test]
fn progress_option_prints_a_line_when_stderr_is_not_a_terminal() {
    let server: Server = Server::start(|_| Reply::ok(vec![b'p'; 100_000]));
    let (outcome, _dir, out) = fetch_to_file(&server.url("/p"), &["--progress"]);
    outcome.assert_code(0);
    assert!(
        !outcome.stderr.trim().is_empty(),
        "--progress printed nothing on stderr"
    );
    assert!(
        outcome.stderr.ends_with('\n'),
        "the progress line is ended: {:?}",
        outcome.stderr
    );
    assert_eq!(read_file(&out).len(), 100_000);
}

#[test]
fn no_progress_by_default_when_stderr_is_not_a_terminal() {
    let server: Server = Server::start(|_| Reply::ok(vec![b'n'; 100_000]));
    let (outcome, _dir, _out) = fetch_to_file(&server.url("/n"), &[]);
    outcome.assert_quiet_success();
}

#[test]
fn a_closing_line_names_the_file_its_size_time_and_rate_unless_quiet() {
    let server: Server = Server::start(|_| Reply::ok(vec![b's'; 3 << 20]));
    let (outcome, _dir, out) = fetch_to_file(&server.url("/s"), &[]);
    outcome.assert_code(0);
    let prefix: String = format!("partfetch: {} done: 3.0 MiB in ", out.display());
    assert!(
        outcome.stderr.starts_with(&prefix) && outcome.stderr.ends_with("/s)\n"),
        "{:?}",
        outcome.stderr
    );
    assert_eq!(outcome.stderr.lines().count(), 1, "{}", outcome.stderr);
    let quiet: Outcome = fetch_to_stdout(&server.url("/s"), &["-q"]);
    quiet.assert_code(0);
    assert_eq!(quiet.stderr, "", "--quiet leaves the closing line out");
}

// ---------------------------------------------------------------- request headers

#[test]
fn sends_host_user_agent_accept_encoding_and_keep_alive() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    fetch_to_stdout(&server.url("/path/file?q=1&r=%20"), &[]).assert_quiet_success();
    let r: Request = server.last_request();
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, "/path/file?q=1&r=%20");
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(
        r.header_all("host"),
        vec![format!("127.0.0.1:{}", server.port())]
    );
    assert_eq!(
        r.header_all("user-agent"),
        vec![format!("partfetch/{VERSION}")]
    );
    assert_eq!(r.header_all("accept-encoding"), vec!["identity"]);
    let connection: Vec<String> = r
        .header_all("connection")
        .iter()
        .map(|v| v.to_ascii_lowercase())
        .collect();
    assert_eq!(connection, vec!["keep-alive"]);
}

#[test]
fn user_agent_option_replaces_the_default() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    fetch_to_stdout(&server.url("/"), &["--user-agent", "Tester/9 (x)"]).assert_quiet_success();
    assert_eq!(
        server.last_request().header_all("user-agent"),
        vec!["Tester/9 (x)"]
    );
}

#[test]
fn header_options_add_request_headers() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    fetch_to_stdout(
        &server.url("/"),
        &["-H", "X-A: b", "--header", "X-C: d e", "--header=X-F: g"],
    )
    .assert_quiet_success();
    let r: Request = server.last_request();
    assert_eq!(r.header_all("x-a"), vec!["b"]);
    assert_eq!(r.header_all("x-c"), vec!["d e"]);
    assert_eq!(r.header_all("x-f"), vec!["g"]);
}

#[test]
fn a_range_header_option_is_refused_as_usage() {
    // partfetch sends its own Range (to resume, to fetch pieces): a second
    // one would be ignored or answered as the server pleases.
    for header in [
        "Range: bytes=0-99",
        "range: bytes=0-99",
        "RANGE:bytes=5-",
        "If-Range: \"v1\"",
    ] {
        let server: Server = Server::start(|_| Reply::ok("x"));
        let outcome: Outcome = fetch_to_stdout(&server.url("/f"), &["-H", header]);
        outcome
            .assert_code(2)
            .assert_error_mentions(&[&format!("{header:?}"), "sets Range itself"]);
        assert!(server.requests().is_empty(), "{header}: nothing sent");
    }
}

#[test]
fn url_userinfo_becomes_basic_authorization() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let url: String = format!("http://user:pw@127.0.0.1:{}/private", server.port());
    fetch_to_stdout(&url, &[]).assert_quiet_success();
    let r: Request = server.last_request();
    assert_eq!(r.header_all("authorization"), vec!["Basic dXNlcjpwdw=="]);
    assert_eq!(
        r.header_all("host"),
        vec![format!("127.0.0.1:{}", server.port())]
    );
}

#[test]
fn user_option_is_basic_authorization_for_the_urls_origin_only() {
    let other: Server = Server::start(|_| Reply::ok("landed"));
    let location: String = other.url("/end");
    let origin: Server = Server::start(move |_| Reply::redirect(307, &location));
    // A % is part of the password as typed, not an escape.
    fetch_to_stdout(&origin.url("/start"), &["-u", "user:p%41ss"]).assert_quiet_success();
    assert_eq!(
        origin.last_request().header_all("authorization"),
        vec!["Basic dXNlcjpwJTQxc3M="]
    );
    assert_eq!(other.last_request().header("authorization"), None);
    cli::run(&["--user", "nopassword", &origin.url("/start"), "-"])
        .assert_code(2)
        .assert_error_mentions(&["USER:PASSWORD"]);
}

#[test]
fn an_authorization_header_option_wins_over_user_and_one_is_sent() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    // As curl: the -H field replaces the one -u would make, in either order.
    for args in [
        ["-u", "user:pw", "-H", "Authorization: Bearer t0ken"],
        ["-H", "authorization: Bearer t0ken", "--user", "user:pw"],
    ] {
        fetch_to_stdout(&server.url("/private"), &args).assert_quiet_success();
        assert_eq!(
            server.last_request().header_all("authorization"),
            vec!["Bearer t0ken"],
            "{args:?}"
        );
    }
    // The last -u counts, as with curl.
    fetch_to_stdout(&server.url("/private"), &["-u", "a:b", "-u", "user:pw"])
        .assert_quiet_success();
    assert_eq!(
        server.last_request().header_all("authorization"),
        vec!["Basic dXNlcjpwdw=="]
    );
}

#[test]
fn a_body_compressed_although_asked_as_stored_is_saved_as_sent_with_a_warning() {
    let server: Server = Server::start(|_| {
        Reply::ok(&b"\x1f\x8bnot really gzip"[..]).header("Content-Encoding", "gzip")
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/a.txt"), &[]);
    outcome.assert_code(0).assert_error_mentions(&[
        "warning",
        "encoded (gzip)",
        &server.url("/a.txt"),
    ]);
    assert_eq!(outcome.stdout, b"\x1f\x8bnot really gzip");
    assert_eq!(
        server.last_request().header("accept-encoding"),
        Some("identity")
    );
}

// ---------------------------------------------------------------- redirects

fn follows_redirect_status(status: u16) {
    let server: Server = Server::start(move |r| match r.path() {
        "/from" => Reply::redirect(status, "/to"),
        "/to" => Reply::ok(format!("after {status}")),
        _ => Reply::status(404),
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/from"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, format!("after {status}").as_bytes());
    let methods: Vec<String> = server.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, vec!["GET", "GET"]);
}

#[test]
fn follows_301_redirect() {
    follows_redirect_status(301);
}

#[test]
fn follows_302_redirect() {
    follows_redirect_status(302);
}

#[test]
fn follows_303_redirect() {
    follows_redirect_status(303);
}

#[test]
fn follows_307_redirect() {
    follows_redirect_status(307);
}

#[test]
fn follows_308_redirect() {
    follows_redirect_status(308);
}

#[test]
fn follows_absolute_location_to_another_server() {
    let target: Server = Server::start(|_| Reply::ok("on the other server"));
    let target_url: String = target.url("/landed?k=v");
    let origin: Server = Server::start(move |_| Reply::redirect(301, &target_url));
    let outcome: Outcome = fetch_to_stdout(&origin.url("/start"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"on the other server");
    assert_eq!(target.last_request().target, "/landed?k=v");
}

#[test]
fn follows_relative_location() {
    let server: Server = Server::start(|r| match r.path() {
        "/a/b/start" => Reply::redirect(302, "../c/end?x=1"),
        "/a/c/end" => Reply::ok("relative resolved"),
        _ => Reply::status(404),
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/a/b/start"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"relative resolved");
    assert_eq!(server.last_request().target, "/a/c/end?x=1");
}

#[test]
fn follows_absolute_path_location() {
    let server: Server = Server::start(|r| match r.path() {
        "/deep/start" => Reply::redirect(307, "/top"),
        "/top" => Reply::ok("absolute path resolved"),
        _ => Reply::status(404),
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/deep/start"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"absolute path resolved");
}

#[test]
fn twenty_redirects_are_followed_by_default() {
    let server: Server = hop_server(20);
    let outcome: Outcome = fetch_to_stdout(&server.url("/hop0x"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"arrived");
}

#[test]
fn twenty_first_redirect_is_an_error_naming_the_chain() {
    let server: Server = hop_server(21);
    let first: String = server.url("/hop0x");
    let outcome: Outcome = fetch_to_stdout(&first, &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&[&first, "/hop20x"]);
    assert!(server.requests().len() <= 21, "no request after the limit");
    assert!(outcome.stdout.is_empty());
}

#[test]
fn max_redirects_option_sets_the_limit() {
    let server: Server = hop_server(3);
    fetch_to_stdout(&server.url("/hop0x"), &["--max-redirects", "3"]).assert_quiet_success();
    let outcome: Outcome = fetch_to_stdout(&server.url("/hop0x"), &["--max-redirects", "2"]);
    outcome.assert_code(1).assert_error_mentions(&["/hop0x"]);
}

#[test]
fn redirect_to_non_http_scheme_is_an_error() {
    let server: Server = Server::start(|_| Reply::redirect(302, "ftp://127.0.0.1/file"));
    let url: String = server.url("/start");
    let (outcome, _dir, out) = fetch_to_file(&url, &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["ftp://127.0.0.1/file"]);
    assert!(!out.exists());
}

#[test]
fn a_location_that_is_not_utf8_is_named_as_such() {
    let server: Server = Server::start(|_| {
        Reply::raw(&b"HTTP/1.1 302 Found\r\nLocation: /caf\xe9\r\nContent-Length: 0\r\n\r\n"[..])
    });
    let url: String = server.url("/start");
    let outcome = fetch_to_stdout(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[
        "Location that is not UTF-8",
        "\"/caf\\xe9\"",
        &url,
    ]);
    assert!(
        !outcome.stderr.contains("without a Location"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn errors_quote_the_start_and_the_length_of_a_huge_location_or_url() {
    let long = format!("ftp://127.0.0.1/{}", "a".repeat(60_000));
    let location = long.clone();
    let server: Server = Server::start(move |_| Reply::redirect(302, &location));
    let outcome = fetch_to_stdout(&server.url("/start"), &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["ftp://127.0.0.1/aaaa", "(60016 bytes)"]);
    let shown = outcome.stderr;
    assert!(shown.len() < 1000, "{} bytes: {shown:.300}", shown.len());
    let url = format!("http://127.0.0.1:1/{}", "a".repeat(60_000));
    let outcome = fetch_to_stdout(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[
        "URL longer than",
        "http://127.0.0.1:1/aaaa",
        "(60019 bytes)",
    ]);
    let shown = outcome.stderr;
    assert!(shown.len() < 1000, "{} bytes: {shown:.300}", shown.len());
}

#[test]
fn redirect_loop_stops_at_the_limit() {
    let server: Server = Server::start(|r| match r.path() {
        "/a" => Reply::redirect(302, "/b"),
        _ => Reply::redirect(302, "/a"),
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/a"), &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["more than 20 redirects", "/a -> ", "/b"]);
    assert_eq!(server.requests().len(), 21, "the first request and 20 hops");
    assert!(outcome.stdout.is_empty());
}

#[test]
fn thousand_hop_chain_stops_at_the_limit() {
    let server: Server = hop_server(1000);
    let outcome: Outcome = fetch_to_stdout(&server.url("/hop0x"), &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["more than 20 redirects", "/hop20x"]);
    assert_eq!(server.requests().len(), 21, "no request after the limit");
    assert!(outcome.stdout.is_empty());
}

#[cfg(feature = "tls")]
#[test]
fn https_to_http_redirect_is_followed_with_a_warning_and_drops_credentials() {
    let pki: TestPki = TestPki::new();
    let plain: Server = Server::start(|_| Reply::ok("plain side"));
    let location: String = plain.url("/end");
    let secure: Server = Server::https(&pki, move |_| Reply::redirect(302, &location));
    let url: String = format!("https://user:pw@localhost:{}/start", secure.port());
    let ca: &str = pki.ca_pem_path().to_str().expect("utf-8 temp path");
    let outcome: Outcome = cli::run(&["--cacert", ca, "-H", "Cookie: c=1", &url, "-"]);
    outcome.assert_code(0);
    assert_eq!(outcome.stdout, b"plain side");
    assert_eq!(
        cli::without_summary(&outcome.stderr),
        format!(
            "partfetch: warning: redirect from HTTPS to plain HTTP: \
             https://localhost:{}/start -> {}\n",
            secure.port(),
            plain.url("/end")
        ),
        "one warning naming both URLs, without the credentials"
    );
    let first: Request = secure.last_request();
    assert_eq!(first.header("authorization"), Some("Basic dXNlcjpwdw=="));
    assert_eq!(first.header("cookie"), Some("c=1"));
    let r: Request = plain.last_request();
    assert_eq!(
        r.header("authorization"),
        None,
        "Authorization sent over HTTP"
    );
    assert_eq!(r.header("cookie"), None, "Cookie sent over HTTP");
}

#[test]
fn redirect_chain_uses_one_connection() {
    let server: Server = Server::start(|r| match r.path() {
        "/r1" => Reply::redirect(301, "/r2"),
        "/r2" => Reply::redirect(302, "/r3"),
        "/r3" => Reply::redirect(307, "/final"),
        "/final" => Reply::ok("one connection"),
        _ => Reply::status(404),
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/r1"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"one connection");
    assert_eq!(server.requests().len(), 4);
    assert_eq!(
        server.connections(),
        1,
        "same-origin redirects reuse the connection"
    );
}

#[test]
fn redirect_to_other_host_drops_authorization_from_userinfo() {
    // 127.0.0.1 and localhost reach the same server but are different origins.
    let other: Later = later();
    let location: Later = Arc::clone(&other);
    let server: Server = Server::start(move |r| match r.path() {
        "/start" => Reply::redirect(302, get(&location)),
        _ => Reply::ok("landed"),
    });
    other.set(server.url_on("localhost", "/end")).unwrap();
    let url: String = format!("http://user:pw@127.0.0.1:{}/start", server.port());
    fetch_to_stdout(&url, &[]).assert_quiet_success();
    let log: Vec<Request> = server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].header("authorization"), Some("Basic dXNlcjpwdw=="));
    assert_eq!(
        log[1].header("host"),
        Some(format!("localhost:{}", server.port()).as_str())
    );
    assert_eq!(
        log[1].header("authorization"),
        None,
        "Authorization sent to another host"
    );
}

#[test]
fn redirect_to_other_port_drops_authorization_header() {
    let other: Server = Server::start(|_| Reply::ok("landed"));
    let location: String = other.url("/end");
    let origin: Server = Server::start(move |_| Reply::redirect(307, &location));
    fetch_to_stdout(
        &origin.url("/start"),
        &["-H", "Authorization: Bearer s3cret"],
    )
    .assert_quiet_success();
    assert_eq!(
        origin.last_request().header("authorization"),
        Some("Bearer s3cret")
    );
    assert_eq!(other.requests().len(), 1);
    assert_eq!(
        other.last_request().header("authorization"),
        None,
        "Authorization sent to another port"
    );
}

#[test]
fn redirect_to_other_origin_drops_cookie() {
    let other: Server = Server::start(|_| Reply::ok("landed"));
    let location: String = other.url("/end");
    let origin: Server = Server::start(move |_| Reply::redirect(302, &location));
    fetch_to_stdout(&origin.url("/start"), &["-H", "Cookie: session=abc"]).assert_quiet_success();
    assert_eq!(origin.last_request().header("cookie"), Some("session=abc"));
    assert_eq!(
        other.last_request().header("cookie"),
        None,
        "Cookie sent to another origin"
    );
}

#[test]
fn same_origin_redirect_keeps_authorization_and_cookie() {
    let server: Server = Server::start(|r| match r.path() {
        "/start" => Reply::redirect(301, "/end"),
        _ => Reply::ok("landed"),
    });
    let url: String = format!("http://user:pw@127.0.0.1:{}/start", server.port());
    fetch_to_stdout(&url, &["-H", "Cookie: session=abc"]).assert_quiet_success();
    let log: Vec<Request> = server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].target, "/end");
    assert_eq!(log[1].header("authorization"), Some("Basic dXNlcjpwdw=="));
    assert_eq!(log[1].header("cookie"), Some("session=abc"));
}

#[test]
fn same_origin_redirect_keeps_authorization_header_option() {
    let server: Server = Server::start(|r| match r.path() {
        "/start" => Reply::redirect(308, "/end"),
        _ => Reply::ok("landed"),
    });
    fetch_to_stdout(
        &server.url("/start"),
        &["-H", "Authorization: Bearer s3cret"],
    )
    .assert_quiet_success();
    assert_eq!(
        server.last_request().header("authorization"),
        Some("Bearer s3cret")
    );
}

// ---------------------------------------------------------------- body framing

#[test]
fn chunked_body_with_extensions_is_decoded() {
    let server: Server = Server::start(|_| {
        Reply::new(200).body(Body::Chunked {
            chunks: vec![
                Chunk {
                    data: b"hello ".to_vec(),
                    extension: ";name=value".to_owned(),
                },
                Chunk {
                    data: b"chunked ".to_vec(),
                    extension: ";a;b=\"q s\"".to_owned(),
                },
                Chunk {
                    data: b"world".to_vec(),
                    extension: String::new(),
                },
            ],
            trailers: vec![],
            complete: true,
        })
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/c"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"hello chunked world");
}

#[test]
fn chunked_trailers_are_dropped() {
    let server: Server = Server::start(|_| {
        Reply::new(200).body(Body::Chunked {
            chunks: vec![Chunk {
                data: b"body".to_vec(),
                extension: String::new(),
            }],
            trailers: vec![("X-Checksum".to_owned(), "trailer-value".to_owned())],
            complete: true,
        })
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/t"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"body");
}

#[test]
fn large_chunked_body_of_odd_chunk_sizes_is_byte_identical() {
    let data: Arc<Vec<u8>> = Arc::new(test_data(3 << 20, 3));
    let served: Arc<Vec<u8>> = Arc::clone(&data);
    let server: Server = Server::start(move |_| {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut at: usize = 0;
        let mut size: usize = 1;
        while at < served.len() {
            let end: usize = (at + size).min(served.len());
            chunks.push(served[at..end].to_vec());
            at = end;
            size = size * 7 % 65_521 + 1;
        }
        Reply::chunked(chunks)
    });
    let (outcome, _dir, out) = fetch_to_file(&server.url("/odd"), &[]);
    outcome.assert_quiet_success();
    assert!(read_file(&out) == *data, "chunked body differs");
}

#[test]
fn close_delimited_body_is_saved() {
    let server: Server = Server::start(|_| Reply::close_delimited(vec![b'c'; 300_000]));
    let (outcome, _dir, out) = fetch_to_file(&server.url("/close"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(read_file(&out), vec![b'c'; 300_000]);
}

#[test]
fn truncated_body_leaves_no_file() {
    let server: Server = Server::start(|_| Reply::truncated(100_000, vec![b't'; 1000]));
    let url: String = server.url("/short");
    let (outcome, _dir, out) = fetch_to_file(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[&url]);
    assert!(
        !out.exists(),
        "a truncated download must not appear finished"
    );
}

#[test]
fn truncated_body_to_stdout_exits_1() {
    let server: Server = Server::start(|_| Reply::truncated(100_000, vec![b't'; 1000]));
    let url: String = server.url("/short");
    let outcome: Outcome = fetch_to_stdout(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[&url]);
}

#[test]
fn chunked_body_cut_before_last_chunk_is_an_error() {
    let server: Server = Server::start(|_| {
        Reply::new(200).body(Body::Chunked {
            chunks: vec![Chunk {
                data: b"partial".to_vec(),
                extension: String::new(),
            }],
            trailers: vec![],
            complete: false,
        })
    });
    let url: String = server.url("/cut");
    let (outcome, _dir, out) = fetch_to_file(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[&url]);
    assert!(!out.exists());
}

#[test]
fn conflicting_content_lengths_are_an_error() {
    let server: Server = Server::start(|_| {
        Reply::new(200)
            .header("Content-Length", "5")
            .header("Content-Length", "6")
            .body(Body::Sized(b"hello!".to_vec()))
    });
    let url: String = server.url("/dup");
    let (outcome, _dir, out) = fetch_to_file(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[&url]);
    assert!(!out.exists());
}

#[test]
fn chunked_wins_over_content_length() {
    let server: Server = Server::start(|_| {
        Reply::chunked(vec!["chunked ", "wins ", "over length"]).header("Content-Length", "3")
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/both"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"chunked wins over length");
}

#[test]
fn chunk_size_overflow_is_an_error() {
    let server: Server = Server::start(|_| {
        Reply::raw_steps(vec![
            Step::Write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc"
                    .to_vec(),
            ),
            Step::Sleep(Duration::from_secs(30)),
        ])
    });
    let url: String = server.url("/overflow");
    let (outcome, _dir, out) = fetch_to_file(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[&url]);
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "took {:?}",
        outcome.elapsed
    );
    assert!(!out.exists());
}

#[test]
fn malformed_length_and_coding_headers_are_errors() {
    for (name, value, message) in [
        ("Content-Length", "+5", "invalid Content-Length \"+5\""),
        (
            "Content-Length",
            "5, 6",
            "conflicting Content-Length values 5 and 6",
        ),
        (
            "Transfer-Encoding",
            "chunked, gzip",
            "unsupported Transfer-Encoding \"chunked, gzip\"",
        ),
        (
            "Transfer-Encoding",
            "gzip, chunked",
            "unsupported Transfer-Encoding \"gzip, chunked\"",
        ),
    ] {
        let head: String =
            format!("HTTP/1.1 200 OK\r\n{name}: {value}\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        let server: Server = Server::start(move |_| Reply::raw(head.clone()));
        let url: String = server.url("/framing");
        let (outcome, _dir, out) = fetch_to_file(&url, &[]);
        outcome
            .assert_code(1)
            .assert_error_mentions(&[message, &url]);
        assert!(!out.exists(), "{name}: {value}");
    }
}

#[test]
fn body_longer_than_content_length_is_cut_at_the_length() {
    let server: Server = Server::start(|_| {
        Reply::raw(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and then some"[..])
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/long"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"hello");
}

#[test]
fn one_megabyte_chunk_extension_is_an_error_without_hanging() {
    let mut head: Vec<u8> = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;".to_vec();
    head.resize(head.len() + 1_000_000, b'e');
    let server: Server = Server::start(move |_| {
        Reply::raw_steps(vec![
            Step::Write(head.clone()),
            Step::Sleep(Duration::from_secs(30)),
        ])
    });
    let url: String = server.url("/ext");
    let (outcome, _dir, out) = fetch_to_file(&url, &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["chunk extension longer than 4096 bytes", &url]);
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "took {:?}",
        outcome.elapsed
    );
    assert!(!out.exists());
}

#[test]
fn endless_trailers_are_an_error_without_hanging() {
    let start: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n";
    // 10 000 trailer fields; and one trailer line that never ends.
    let mut many: Vec<u8> = start.to_vec();
    for i in 0..10_000 {
        many.extend_from_slice(format!("X-T{i}: y\r\n").as_bytes());
    }
    let mut endless: Vec<u8> = start.to_vec();
    endless.extend_from_slice(b"X-Endless: ");
    endless.resize(endless.len() + (1 << 20), b'a');
    for (bytes, message) in [
        (many, "more than 100 chunked trailer fields"),
        (endless, "chunked trailers larger than 65536 bytes"),
    ] {
        let server: Server = Server::start(move |_| {
            Reply::raw_steps(vec![
                Step::Write(bytes.clone()),
                Step::Sleep(Duration::from_secs(30)),
            ])
        });
        let url: String = server.url("/trailers");
        let (outcome, _dir, out) = fetch_to_file(&url, &[]);
        outcome
            .assert_code(1)
            .assert_error_mentions(&[message, &url]);
        assert!(
            outcome.elapsed < Duration::from_secs(5),
            "took {:?}",
            outcome.elapsed
        );
        assert!(!out.exists());
    }
}

// ---------------------------------------------------------------- head bounds

/// A response head with `count` header fields `X-Hn: <filler>`, then
/// Content-Length: 2 (so `count + 1` fields), then the body "ok".
fn head_with_fields(count: usize, filler: usize) -> Vec<u8> {
    let mut head: String = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..count {
        head.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(filler)));
    }
    head.push_str("Content-Length: 2\r\n\r\nok");
    head.into_bytes()
}

#[test]
fn head_over_64_kib_is_an_error_without_hanging() {
    // 20 fields of 4000 bytes: about 80 KiB, and the head never ends.
    let mut head: String = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..20 {
        head.push_str(&format!("X-Big{i}: {}\r\n", "b".repeat(4000)));
    }
    let server: Server = Server::start(move |_| {
        Reply::raw_steps(vec![
            Step::Write(head.clone().into_bytes()),
            Step::Sleep(Duration::from_secs(30)),
        ])
    });
    let url: String = server.url("/bighead");
    let outcome: Outcome = fetch_to_stdout(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[&url]);
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "took {:?}",
        outcome.elapsed
    );
}

#[test]
fn head_just_under_64_kib_is_accepted() {
    // 15 fields of 4000 bytes: about 60 KiB in all.
    let head: Vec<u8> = head_with_fields(15, 4000);
    assert!(head.len() < 64 * 1024 - 1024);
    let server: Server = Server::start(move |_| Reply::raw(head.clone()));
    let outcome: Outcome = fetch_to_stdout(&server.url("/h"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"ok");
}

#[test]
fn more_than_100_headers_is_an_error_without_hanging() {
    // 100 + Content-Length = 101 fields; the connection then stays open.
    let head: Vec<u8> = head_with_fields(100, 1);
    let server: Server = Server::start(move |_| {
        Reply::raw_steps(vec![
            Step::Write(head.clone()),
            Step::Sleep(Duration::from_secs(30)),
        ])
    });
    let url: String = server.url("/many");
    let outcome: Outcome = fetch_to_stdout(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[&url]);
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "took {:?}",
        outcome.elapsed
    );
}

#[test]
fn ten_thousand_headers_are_an_error_without_hanging() {
    let head: Vec<u8> = head_with_fields(10_000, 1);
    let server: Server = Server::start(move |_| {
        Reply::raw_steps(vec![
            Step::Write(head.clone()),
            Step::Sleep(Duration::from_secs(30)),
        ])
    });
    let url: String = server.url("/bomb");
    let outcome: Outcome = fetch_to_stdout(&url, &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["response has more than 100 header fields", &url]);
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "took {:?}",
        outcome.elapsed
    );
}

#[test]
fn exactly_100_headers_are_accepted() {
    // 99 + Content-Length = 100 fields.
    let head: Vec<u8> = head_with_fields(99, 1);
    let server: Server = Server::start(move |_| Reply::raw(head.clone()));
    let outcome: Outcome = fetch_to_stdout(&server.url("/hundred"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"ok");
}

// ---------------------------------------------------------------- timeouts

#[test]
fn max_time_stops_a_download_that_stalls_and_says_so() {
    let server: Server =
        Server::start(|_| Reply::stall(1_000_000, vec![b'm'; 1000], Duration::from_secs(60)));
    let (outcome, _dir, _out) = fetch_to_file(
        &server.url("/slow"),
        &["--max-time", "0.5", "--timeout", "100"],
    );
    outcome
        .assert_code(5)
        .assert_error_mentions(&["--max-time 0.5 s", "stopped"]);
}

#[test]
fn max_filesize_refuses_a_file_announced_larger() {
    let server: Server =
        Server::start(|_| Reply::stall(10 << 30, vec![b'f'; 64 << 10], Duration::from_secs(60)));
    let (outcome, _dir, _out) = fetch_to_file(&server.url("/huge"), &["--max-filesize", "1M"]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["--max-filesize 1.0 MiB", "larger"]);
}

#[test]
fn max_filesize_stops_a_body_of_no_announced_length_that_grows_past_it() {
    let server: Server = Server::start(|_| {
        let mut steps: Vec<Step> = vec![Step::Write(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec(),
        )];
        for _ in 0..64 {
            steps.push(Step::Write(vec![b'e'; 64 << 10]));
            steps.push(Step::Sleep(Duration::from_millis(20)));
        }
        Reply::raw_steps(steps)
    });
    let (outcome, _dir, _out) = fetch_to_file(&server.url("/endless"), &["--max-filesize", "1M"]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["--max-filesize 1.0 MiB"]);
}

#[test]
fn stalled_body_times_out_with_exit_5_and_leaves_no_file() {
    let server: Server =
        Server::start(|_| Reply::stall(100_000, vec![b's'; 1000], Duration::from_secs(30)));
    let url: String = server.url("/stall");
    let (outcome, _dir, out) = fetch_to_file(&url, &["--timeout", "1"]);
    outcome.assert_code(5).assert_error_mentions(&[&url]);
    assert!(
        outcome.elapsed >= Duration::from_millis(900),
        "timed out early: {:?}",
        outcome.elapsed
    );
    assert!(
        outcome.elapsed < Duration::from_secs(4),
        "--timeout 1 took {:?}",
        outcome.elapsed
    );
    assert!(!out.exists());
}

#[test]
fn a_kept_alive_connection_that_stays_silent_times_out_once() {
    // The redirect's connection is reused for the next request, which
    // the server never answers: that is a timeout, not a connection the
    // server closed meanwhile, so the request is not sent again.
    let server: Server = Server::start(|req: &Request| match req.path() {
        "/moved" => Reply::redirect(302, "/silent"),
        _ => Reply::ok("too late").delay(Duration::from_secs(30)),
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/moved"), &["--timeout", "1"]);
    outcome
        .assert_code(5)
        .assert_error_mentions(&["idle timeout"]);
    assert_eq!(server.count("/silent"), 1, "asked once");
    assert_eq!(server.connections(), 1, "on the redirect's connection");
}

#[test]
fn timeout_accepts_fractional_seconds() {
    // Timed from the request's arrival, not from the spawn, so that a slow
    // start on a busy machine is not counted: the 100 bytes go out at once,
    // then nothing, and 0.5 s later partfetch gives up. Under 1 s tells 0.5
    // from a timeout rounded up to whole seconds.
    let asked: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let seen = Arc::clone(&asked);
    let server: Server = Server::start(move |_| {
        seen.get_or_init(Instant::now);
        Reply::stall(100, b"s".to_vec(), Duration::from_secs(30))
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/stall"), &["--timeout", "0.5"]);
    let ended = Instant::now();
    outcome.assert_code(5);
    let silent = ended - *asked.get().expect("a request");
    assert!(
        silent >= Duration::from_millis(500) && silent < Duration::from_millis(1000),
        "--timeout 0.5 gave up {silent:?} after the request"
    );
    assert_eq!(server.requests().len(), 1, "no second attempt");
}

#[test]
fn server_silent_before_the_head_times_out_with_exit_5() {
    let server: Server = Server::start(|_| Reply::ok("too late").delay(Duration::from_secs(30)));
    let url: String = server.url("/silent");
    let outcome: Outcome = fetch_to_stdout(&url, &["--timeout", "1"]);
    outcome.assert_code(5).assert_error_mentions(&[&url]);
    assert!(
        outcome.elapsed < Duration::from_secs(4),
        "took {:?}",
        outcome.elapsed
    );
}

#[test]
fn slow_steady_trickle_does_not_time_out() {
    // A byte every 200 ms for 2 s, with a 1 s idle timeout.
    let server: Server =
        Server::start(|_| Reply::paced(b"0123456789", 1, Duration::from_millis(200)));
    let outcome: Outcome = fetch_to_stdout(&server.url("/trickle"), &["--timeout", "1"]);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"0123456789");
}

// ---------------------------------------------------------------- sequences

#[test]
fn sequence_prefix_claiming_4_gib_then_10_bytes_fails_and_leaves_no_file() {
    // The largest claim a prefix can make (4 GiB - 1), then 10 bytes.
    let server: Server = Server::start(|_| Reply::ok(&b"\xff\xff\xff\xff0123456789"[..]));
    let url: String = server.url("/claim-seq.bin");
    let (outcome, dir, _out) = fetch_to_file(&url, &[]);
    outcome.assert_code(1).assert_error_mentions(&[
        "the stream ended inside file 1",
        "4294967285 of its 4294967295 bytes missing",
    ]);
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "took {:?}",
        outcome.elapsed
    );
    assert_eq!(
        dir.entries(),
        Vec::<String>::new(),
        "no file, finished or not"
    );
}

#[test]
fn a_sequence_of_more_files_than_the_limit_stops_at_the_limit_with_an_error() {
    // 10 001 empty files: four zero bytes each.
    let server: Server = Server::start(|_| Reply::ok(vec![0u8; 4 * 10_001]));
    let url: String = server.url("/many-seq.bin");
    let (outcome, dir, _out) = fetch_to_file(&url, &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["more than 10000 files", "--max-files", &url]);
    assert_eq!(dir.entries().len(), 10_000, "the first 10 000 are saved");
    assert!(!dir.join("out.bin-file10001").exists());
    let (outcome, dir, _out) = fetch_to_file(&url, &["--max-files", "3"]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["more than 3 files", "--max-files"]);
    assert_eq!(
        dir.entries(),
        ["out.bin-file1", "out.bin-file2", "out.bin-file3"]
    );
    let (outcome, dir, _out) = fetch_to_file(&url, &["--max-files", "10001"]);
    outcome.assert_quiet_success();
    assert_eq!(dir.entries().len(), 10_001);
    cli::run(&["--max-files", "0", &url, "-"])
        .assert_code(2)
        .assert_error_mentions(&["--max-files"]);
}

// ---------------------------------------------------------------- proxies

/// A proxy (the test server, answering absolute-form requests) and an
/// origin that must not be contacted directly.
fn proxy_and_origin() -> (Server, Server) {
    let proxy: Server = Server::start(|_| Reply::ok("via proxy"));
    let origin: Server = Server::start(|_| Reply::ok("direct"));
    (proxy, origin)
}

fn assert_went_through_proxy(outcome: &Outcome, proxy: &Server, origin: &Server) {
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"via proxy");
    assert_eq!(origin.connections(), 0, "the origin was contacted directly");
    let r: Request = proxy.last_request();
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, origin.url("/file?x=1"), "absolute-form target");
    assert_eq!(
        r.header("host"),
        Some(format!("127.0.0.1:{}", origin.port()).as_str())
    );
}

#[test]
fn proxy_option_sends_absolute_form_to_the_proxy() {
    let (proxy, origin) = proxy_and_origin();
    let outcome: Outcome = fetch_to_stdout(&origin.url("/file?x=1"), &["--proxy", &proxy.url("")]);
    assert_went_through_proxy(&outcome, &proxy, &origin);
}

#[test]
fn http_proxy_variable_is_used() {
    let (proxy, origin) = proxy_and_origin();
    let mut cmd: Command = cli::command();
    cmd.env("http_proxy", proxy.url(""))
        .arg(origin.url("/file?x=1"))
        .arg("-");
    assert_went_through_proxy(&cli::run_command(cmd), &proxy, &origin);
}

#[test]
fn upper_case_http_proxy_variable_is_used() {
    let (proxy, origin) = proxy_and_origin();
    let mut cmd: Command = cli::command();
    cmd.env("HTTP_PROXY", proxy.url(""))
        .arg(origin.url("/file?x=1"))
        .arg("-");
    assert_went_through_proxy(&cli::run_command(cmd), &proxy, &origin);
}

#[test]
fn no_proxy_matching_the_host_bypasses_the_proxy() {
    let (proxy, origin) = proxy_and_origin();
    let mut cmd: Command = cli::command();
    cmd.env("http_proxy", proxy.url(""))
        .env("no_proxy", "example.com,127.0.0.1")
        .arg(origin.url("/file"))
        .arg("-");
    let outcome: Outcome = cli::run_command(cmd);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"direct");
    assert_eq!(proxy.connections(), 0, "no_proxy should bypass the proxy");
    assert_eq!(origin.last_request().target, "/file");
}

#[test]
fn proxy_refusing_connections_exits_5() {
    let origin: Server = Server::start(|_| Reply::ok("direct"));
    let proxy_url: String = format!("http://127.0.0.1:{}", closed_port());
    let outcome: Outcome = fetch_to_stdout(&origin.url("/file"), &["--proxy", &proxy_url]);
    outcome
        .assert_code(5)
        .assert_error_mentions(&["proxy: cannot connect", &proxy_url]);
    assert_eq!(origin.connections(), 0);
}

#[test]
fn a_refusal_relayed_by_a_proxy_names_the_proxy() {
    let proxy: Server = Server::start(|_| Reply::status(403));
    let origin: Server = Server::start(|_| Reply::ok("direct"));
    let outcome: Outcome = fetch_to_stdout(&origin.url("/file"), &["--proxy", &proxy.url("")]);
    outcome.assert_code(4).assert_error_mentions(&[
        "403",
        &format!("through the proxy {}", proxy.url("/")),
        &origin.url("/file"),
    ]);
}

#[test]
fn an_unusable_https_proxy_variable_stops_only_https_urls() {
    let origin: Server = Server::start(|_| Reply::ok("direct"));
    let mut cmd: Command = cli::command();
    cmd.env("https_proxy", "socks5://127.0.0.1:1")
        .arg(origin.url("/file"))
        .arg("-");
    let outcome: Outcome = cli::run_command(cmd);
    outcome.assert_quiet_success();
    assert_eq!(outcome.stdout, b"direct");

    let mut cmd: Command = cli::command();
    cmd.env("https_proxy", "socks5://127.0.0.1:1")
        .arg("https://127.0.0.1:1/file")
        .arg("-");
    cli::run_command(cmd)
        .assert_code(2)
        .assert_error_mentions(&[
            "https_proxy",
            "only http:// proxies",
            "socks5://127.0.0.1:1",
        ]);
}

// ---------------------------------------------------------------- -v and -I

#[test]
fn verbose_shows_every_request_and_response_head_redirects_and_ranges_included() {
    let served: Arc<Vec<u8>> = Arc::new(test_data(4 << 20, 22));
    let file: Arc<Vec<u8>> = Arc::clone(&served);
    let server: Server = Server::start(move |r: &Request| match r.path() {
        "/go" => Reply::redirect(302, "/big"),
        _ => Reply::file(r, &file, support::Ranges::Honour).header("ETag", "\"v1\""),
    });
    let outcome: Outcome = fetch_to_stdout(&server.url("/go"), &["-v", "-n", "2"]);
    outcome.assert_code(0);
    assert!(outcome.stdout == *served, "the body is saved as without -v");
    let err: &str = &outcome.stderr;
    for line in [
        "> GET /go HTTP/1.1\n",
        "> Host: 127.0.0.1:",
        "< HTTP/1.1 302 ",
        "< Location: /big\n",
        "> GET /big HTTP/1.1\n",
        "> Range: bytes=",
        "< HTTP/1.1 206 ",
        "< Content-Range: bytes ",
    ] {
        assert!(err.contains(line), "stderr should show {line:?}:\n{err}");
    }
    let sent: usize = err.lines().filter(|l| l.starts_with("> GET ")).count();
    let received: usize = err.lines().filter(|l| l.starts_with("< HTTP/1.1 ")).count();
    assert_eq!(
        sent,
        server.requests().len(),
        "one head per request:\n{err}"
    );
    assert_eq!(received, sent, "one response head per request:\n{err}");

    let plain: Outcome = fetch_to_stdout(&server.url("/go"), &["-n", "2"]);
    plain.assert_quiet_success();
    assert!(!plain.stderr.contains("> GET"), "{}", plain.stderr);
}

#[test]
fn head_prints_the_response_head_on_stdout_and_downloads_nothing() {
    let server: Server = Server::start(|r: &Request| match (r.path(), r.method.as_str()) {
        // A redirect with no body, as an answer to HEAD must be: the
        // connection is used again for the next HEAD.
        ("/go", _) => Reply::new(301).header("Location", "/f.iso"),
        (_, "HEAD") => Reply::new(200)
            .header("X-Kind", "head")
            .header("Content-Length", "12345"),
        _ => Reply::ok("a body that must not be fetched"),
    });
    let dir: TempDir = TempDir::new("head");
    let mut cmd: Command = cli::command();
    cmd.args(["-I", &server.url("/go")]).current_dir(dir.path());
    let outcome: Outcome = cli::run_command(cmd);
    outcome.assert_code(0);
    let out: String = String::from_utf8_lossy(&outcome.stdout).into_owned();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
    assert!(out.contains("\r\nX-Kind: head\r\n"), "{out:?}");
    assert!(out.ends_with("\r\n\r\n"), "{out:?}");
    assert!(
        server.requests().iter().all(|r| r.method == "HEAD"),
        "only HEAD is sent"
    );
    assert!(dir.entries().is_empty(), "no file is written");
}

#[test]
fn head_of_a_missing_file_is_printed_and_exits_with_the_not_found_status() {
    let server: Server = Server::start(|_| Reply::new(404));
    let outcome: Outcome = cli::run(&["--head", &server.url("/gone")]);
    outcome.assert_code(3);
    let out: String = String::from_utf8_lossy(&outcome.stdout).into_owned();
    assert!(out.starts_with("HTTP/1.1 404 "), "{out:?}");
    outcome.assert_error_mentions(&["404", "/gone"]);
}

#[test]
fn head_with_a_file_is_refused_naming_it() {
    let outcome: Outcome = cli::run(&["-I", "http://127.0.0.1:1/x", "out"]);
    outcome.assert_code(2);
    outcome.assert_error_mentions(&["-I", "FILE"]);
}

// ---------------------------------------------------------------- -i

#[test]
fn input_file_downloads_each_line_and_sums_up_with_the_worst_status() {
    let server: Server = Server::start(|r: &Request| match r.path() {
        "/a.txt" => Reply::ok("alpha"),
        "/b.txt" => Reply::ok("beta"),
        "/c.txt" => Reply::ok("gamma"),
        "/busy" => Reply::status(403),
        _ => Reply::status(404),
    });
    let dir: TempDir = TempDir::new("list");
    let list: String = format!(
        "# three files, two failures\n\n{}\n  {}   named b.txt\n{}\n{}\n",
        server.url("/a.txt"),
        server.url("/b.txt"),
        server.url("/missing"),
        server.url("/busy"),
    );
    std::fs::write(dir.join("urls"), list).expect("write the list");
    let mut cmd: Command = cli::command();
    cmd.args(["-i", "urls", "-j", "2", &server.url("/c.txt")])
        .current_dir(dir.path());
    let outcome: Outcome = cli::run_command(cmd);
    // 403 is 4, 404 is 3: the status is the highest.
    outcome.assert_code(4);
    assert_eq!(read_file(&dir.join("a.txt")), b"alpha");
    assert_eq!(read_file(&dir.join("named b.txt")), b"beta");
    assert_eq!(read_file(&dir.join("c.txt")), b"gamma", "the URL given too");
    let err: &str = &outcome.stderr;
    assert!(err.contains("-i urls: 3 done, 2 failed\n"), "{err}");
    let missing: String = format!("failed: {}: ", server.url("/missing"));
    let busy: String = format!("failed: {}: ", server.url("/busy"));
    let (at_missing, at_busy) = (err.find(&missing), err.find(&busy));
    assert!(at_missing.is_some() && at_busy.is_some(), "{err}");
    assert!(at_missing < at_busy, "failures in the list's order:\n{err}");
}

#[test]
fn input_file_dash_reads_the_list_from_standard_input() {
    let server: Server = Server::start(|_| Reply::ok("from the list"));
    let dir: TempDir = TempDir::new("stdin-list");
    std::fs::write(dir.join("urls"), format!("{} got\n", server.url("/x"))).expect("write");
    let mut cmd: Command = cli::command();
    cmd.args(["--input-file", "-"])
        .current_dir(dir.path())
        .stdin(std::fs::File::open(dir.join("urls")).expect("open the list"));
    let outcome: Outcome = cli::run_command(cmd);
    outcome.assert_code(0);
    assert_eq!(read_file(&dir.join("got")), b"from the list");
    assert!(
        outcome.stderr.contains("-i -: 1 done, 0 failed"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn a_bad_input_file_is_refused_naming_it() {
    let dir: TempDir = TempDir::new("bad-list");
    let missing: String = dir.join("nowhere").to_str().expect("utf-8").to_owned();
    cli::run(&["-i", &missing])
        .assert_code(7)
        .assert_error_mentions(&["nowhere", "cannot read"]);
    let list: PathBuf = dir.join("urls");
    std::fs::write(&list, "http://h/a\nhttp://h/b http://h/c\n").expect("write");
    cli::run(&["-i", list.to_str().expect("utf-8")])
        .assert_code(2)
        .assert_error_mentions(&["urls", "line 2", "looks like a URL"]);
}

#[test]
fn the_progress_line_fits_a_narrow_terminal() {
    // partfetch on a pty of 30 columns, as `stty` sets it, with no
    // `COLUMNS` to tell the width: each drawing of the line fits in 30.
    let Some(script) = support::require_tool("script") else {
        return;
    };
    let body = test_data(2 * 1024 * 1024, 77);
    let served = body.clone();
    let server = Server::start(move |req: &Request| {
        let steps = served
            .chunks(128 * 1024)
            .flat_map(|c| {
                [
                    Step::Write(c.to_vec()),
                    Step::Sleep(Duration::from_millis(60)),
                ]
            })
            .collect();
        assert!(req.range().is_none(), "-n 1 asks for the whole file");
        Reply::new(200)
            .header("Content-Length", &served.len().to_string())
            .body(Body::Steps(steps))
    });
    let dir = TempDir::new("narrow-terminal");
    let out = dir.path().join("f");
    let inner = format!(
        "stty cols 30 rows 10; exec {} -n 1 {} {}",
        cli::bin(),
        server.url("/f"),
        out.display()
    );
    let output = Command::new(script)
        .args(["-qec", &inner, "/dev/null"])
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    assert!(output.status.success(), "{output:?}");
    assert!(std::fs::read(&out).unwrap() == body, "the file differs");
    let shown = String::from_utf8_lossy(&output.stdout);
    let drawings: Vec<&str> = shown
        .split(['\r', '\n'])
        .map(str::trim_end)
        .filter(|d| !d.is_empty() && !d.starts_with("partfetch:"))
        .collect();
    assert!(
        drawings
            .iter()
            .any(|d| d.contains("KiB") || d.contains("MiB")),
        "no progress line: {shown:?}"
    );
    for drawing in drawings {
        assert!(drawing.chars().count() <= 30, "wider than 30: {drawing:?}");
    }
}
