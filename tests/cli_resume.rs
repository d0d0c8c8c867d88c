//! Resume, integrity and rate limits through the `partfetch` command: an
//! interrupted download continues where it stopped when the same command
//! runs again, and a file partfetch calls complete is the bytes asked for.
//!
//! The full-disk and read-only cases mount a small tmpfs, and the
//! unwritable-directory case runs partfetch as nobody with `setpriv` when
//! the tests run as root: where this machine cannot, the test is skipped
//! with a notice, and fails when `CI` is set (`support::skip`).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use partfetch::engine::HTTP_PIECE as PIECE;
use partfetch::sha256;
use support::cli::{self, Outcome};
use support::{test_data, Body, Ranges, Reply, Request, Server, Step, TempDir};

/// `partfetch [extra] URL DIR/out.bin` (one connection, so that a cut is
/// a cut of the one stream).
fn fetch(url: &str, out: &std::path::Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<&str> = vec!["-q", "-n", "1"];
    args.extend_from_slice(extra);
    let out = out.to_str().expect("utf-8 path").to_owned();
    args.push(url);
    args.push(&out);
    cli::run(&args)
}

/// [`fetch`] with no second attempt (`--retries 1`): a cut ends the run
/// instead of being continued within it, as an interruption would.
fn fetch_once(url: &str, out: &std::path::Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<&str> = vec!["--retries", "1"];
    args.extend_from_slice(extra);
    fetch(url, out, &args)
}

/// Serves `body` with an ETag (none when it is empty), honouring Range
/// and If-Range; the first `cut_first` answers stop after half the bytes
/// (the connection closes).
fn server(body: Arc<Mutex<(Vec<u8>, String)>>, cut_first: usize) -> Server {
    let answered = AtomicUsize::new(0);
    Server::start(move |req: &Request| {
        let (bytes, etag) = body.lock().unwrap().clone();
        let current = req.header("if-range").is_none_or(|v| v == etag);
        let ranges = if current {
            Ranges::Honour
        } else {
            Ranges::Ignore
        };
        let with_etag = |reply: Reply| match etag.as_str() {
            "" => reply,
            etag => reply.header("ETag", etag),
        };
        if answered.fetch_add(1, Ordering::SeqCst) < cut_first {
            let half = bytes[..bytes.len() / 2].to_vec();
            return with_etag(
                Reply::new(200)
                    .header("Content-Length", &bytes.len().to_string())
                    .body(Body::Steps(vec![Step::Write(half)])),
            );
        }
        with_etag(Reply::file(req, &bytes, ranges))
    })
}

fn shared(bytes: Vec<u8>, etag: &str) -> Arc<Mutex<(Vec<u8>, String)>> {
    Arc::new(Mutex::new((bytes, etag.to_owned())))
}

/// A first run of `offered`, cut halfway by [`server`] and not continued
/// within the run; returns the server, the directory, FILE and the URL for
/// the next run.
fn interrupted_run(
    offered: &Arc<Mutex<(Vec<u8>, String)>>,
    label: &str,
) -> (Server, TempDir, std::path::PathBuf, String) {
    let server = server(Arc::clone(offered), 1);
    let dir = TempDir::new(label);
    let out = dir.join("out.bin");
    let url = server.url("/f");
    assert_ne!(fetch_once(&url, &out, &[]).code, Some(0));
    (server, dir, out, url)
}

#[test]
fn a_resumed_download_says_so_once_and_what_this_run_fetched() {
    let body = test_data(4 << 20, 23);
    let (_server, _dir, out, url) = interrupted_run(&shared(body.clone(), "\"v1\""), "says");
    let outcome = cli::run(&["-n", "1", &url, out.to_str().unwrap()]);
    outcome.assert_code(0);
    assert_eq!(std::fs::read(&out).unwrap(), body);
    let resuming = format!(
        "partfetch: resuming {} at 2.0 MiB of 4.0 MiB",
        out.display()
    );
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", outcome.stderr);
    assert_eq!(lines[0], resuming);
    assert!(
        lines[1].contains(" done: 4.0 MiB (2.0 MiB of it this run) in "),
        "{}",
        lines[1]
    );
}

#[test]
fn a_cut_download_continues_within_the_run() {
    let body = test_data(4 << 20, 19);
    let server = server(shared(body.clone(), "\"v1\""), 1);
    let dir = TempDir::new("continue");
    let out = dir.join("out.bin");
    fetch(&server.url("/f"), &out, &[]).assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].range_start(), Some(body.len() as u64 / 2));
    assert_eq!(requests[1].header("if-range"), Some("\"v1\""));
}

#[test]
fn an_interrupted_download_resumes_where_it_stopped() {
    let body = test_data(4 << 20, 1);
    let server = server(shared(body.clone(), "\"v1\""), 1);
    let dir = TempDir::new("resume");
    let out = dir.join("out.bin");
    let url = server.url("/f");

    let first = fetch_once(&url, &out, &[]);
    assert_ne!(first.code, Some(0), "the cut download must fail");
    assert!(
        !out.exists(),
        "no file under the final name after a failure"
    );
    assert!(dir.join("out.bin.partfetch").exists());
    assert!(dir.join("out.bin.partfetch.state").exists());

    fetch(&url, &out, &[]).assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), body);
    assert_eq!(dir.entries(), ["out.bin"], "partial files are removed");
    // The second run asked only for the second half.
    let requests = server.requests();
    let second = requests.last().unwrap();
    assert_eq!(second.range_start(), Some(body.len() as u64 / 2));
    assert_eq!(second.header("if-range"), Some("\"v1\""));
}

#[test]
fn a_resume_answered_with_less_than_the_rest_starts_over_whole() {
    let body = test_data(1 << 20, 9);
    let served = body.clone();
    let answered = AtomicUsize::new(0);
    let server = Server::start(move |req: &Request| {
        let total = served.len();
        if answered.fetch_add(1, Ordering::SeqCst) == 0 {
            // The first run is cut halfway.
            return Reply::new(200)
                .header("Content-Length", &total.to_string())
                .header("ETag", "\"v1\"")
                .body(Body::Steps(vec![Step::Write(served[..total / 2].to_vec())]));
        }
        match req.range_start() {
            // A server that sends at most 1000 bytes of a range.
            Some(start) => {
                let start = start as usize;
                Reply::new(206)
                    .header("ETag", "\"v1\"")
                    .header(
                        "Content-Range",
                        &format!("bytes {start}-{}/{total}", start + 999),
                    )
                    .body(Body::Sized(served[start..start + 1000].to_vec()))
            }
            None => Reply::file(req, &served, Ranges::Ignore).header("ETag", "\"v1\""),
        }
    });
    let dir = TempDir::new("resume-short");
    let out = dir.join("out.bin");
    let url = server.url("/f");
    assert_ne!(fetch_once(&url, &out, &[]).code, Some(0));
    let second = fetch(&url, &out, &[]);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(std::fs::read(&out).unwrap() == body, "not the file");
    // The second run asked for the rest, got 1000 bytes of it, and then
    // asked for the whole file with a plain GET, saying why.
    let asked: Vec<(Option<u64>, Option<String>)> = server.requests()[1..]
        .iter()
        .map(|r| (r.range_start(), r.header("if-range").map(str::to_owned)))
        .collect();
    assert_eq!(
        asked,
        [
            (Some(body.len() as u64 / 2), Some("\"v1\"".to_owned())),
            (None, None)
        ],
        "the rest, then the whole file"
    );
    assert!(
        second.stderr.contains("starting") && second.stderr.contains(" over"),
        "{}",
        second.stderr
    );
}

#[test]
fn a_source_that_changed_between_runs_gives_the_new_file_whole() {
    let old = test_data(3 << 20, 2);
    let new = test_data(3 << 20, 3);
    let body = shared(old, "\"v1\"");
    let (_server, _dir, out, url) = interrupted_run(&body, "changed");

    *body.lock().unwrap() = (new.clone(), "\"v2\"".to_owned());
    let second = fetch(&url, &out, &[]);
    second.assert_code(0);
    for words in [&url, "changed since the last run", "starting", "over"] {
        assert!(
            second.stderr.contains(words),
            "{words:?}: {}",
            second.stderr
        );
    }
    assert_eq!(std::fs::read(&out).unwrap(), new, "never a mix of versions");
}

#[test]
fn resuming_without_a_validator_warns_that_a_change_cannot_be_seen() {
    // No ETag, no Last-Modified: nothing tells whether the file the server
    // has now is the one the first run began. partfetch resumes (as curl
    // -C - and wget -c do) and says so, even with -q.
    let old = test_data(2 << 20, 13);
    let new = test_data(2 << 20, 14);
    let body = shared(old, "");
    let (server, _dir, out, url) = interrupted_run(&body, "no-validator");

    *body.lock().unwrap() = (new, String::new());
    let second = fetch(&url, &out, &[]);
    second.assert_code(0);
    assert_eq!(
        second.stderr.lines().count(),
        1,
        "one line: {}",
        second.stderr
    );
    for part in [
        "partfetch: warning: ",
        "out.bin",
        &url,
        "ETag",
        "Last-Modified",
    ] {
        assert!(
            second.stderr.contains(part),
            "the warning should mention {part:?}: {}",
            second.stderr
        );
    }
    assert_eq!(
        server.requests().last().unwrap().range_start(),
        Some(1 << 20),
        "resumed"
    );
}

#[test]
fn resuming_pieces_without_a_validator_warns_too() {
    // What a download in pieces leaves: its first piece on disk, and a
    // control file without a validator.
    let piece = PIECE as usize;
    let body = test_data(3 * piece, 15);
    let server = server(shared(body.clone(), ""), 0);
    let dir = TempDir::new("pieces-no-validator");
    let out = dir.join("out.bin");
    let url = server.url("/f");
    leave_first_piece(&dir, &url, &body, None);
    let outcome = fetch(&url, &out, &[]);
    outcome.assert_code(0);
    assert!(
        outcome.stderr.starts_with("partfetch: warning: resuming ")
            && outcome.stderr.contains("ETag"),
        "{}",
        outcome.stderr
    );
    assert_eq!(std::fs::read(&out).unwrap(), body);
    assert_eq!(server.requests()[0].range_start(), Some(PIECE), "resumed");
}

#[test]
fn no_resume_starts_over() {
    let body = test_data(2 << 20, 4);
    let (server, _dir, out, url) = interrupted_run(&shared(body.clone(), "\"v1\""), "noresume");
    fetch(&url, &out, &["--no-resume"]).assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), body);
    assert_eq!(server.requests().last().unwrap().range_start(), None);
}

#[test]
fn a_wrong_checksum_fails_with_the_integrity_code_and_no_final_file() {
    let body = test_data(300_000, 5);
    let server = server(shared(body.clone(), "\"v1\""), 0);
    let dir = TempDir::new("checksum");
    let out = dir.join("out.bin");
    let wrong = format!("sha256={}", "ab".repeat(32));
    let outcome = fetch(&server.url("/f"), &out, &["--checksum", &wrong]);
    outcome
        .assert_code(6)
        .assert_error_mentions(&["checksum mismatch"]);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read(dir.join("out.bin.partfetch")).unwrap(),
        body,
        "the partial file is kept for inspection"
    );

    let right = format!("sha256={}", sha256::to_hex(&sha256::digest(&body)));
    fetch(
        &server.url("/f"),
        &out,
        &["--no-resume", "--checksum", &right],
    )
    .assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), body);
}

#[test]
fn a_checksum_covers_the_bytes_of_the_earlier_run() {
    let body = test_data(2 << 20, 6);
    let server = server(shared(body.clone(), "\"v1\""), 1);
    let dir = TempDir::new("checksum-resume");
    let out = dir.join("out.bin");
    let right = format!("sha256={}", sha256::to_hex(&sha256::digest(&body)));
    assert_ne!(
        fetch_once(&server.url("/f"), &out, &["--checksum", &right]).code,
        Some(0)
    );
    fetch(&server.url("/f"), &out, &["--checksum", &right]).assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), body);
}

#[test]
fn a_second_partfetch_writing_the_same_file_is_refused() {
    let body = test_data(1 << 20, 7);
    let paced = body.clone();
    let server = Server::start(move |_: &Request| {
        Reply::paced(&paced, 64 * 1024, Duration::from_millis(100))
    });
    let dir = TempDir::new("lock");
    let out = dir.join("out.bin");
    let out_str = out.to_str().unwrap().to_owned();
    let mut first = cli::command();
    first.args(["-q", "-n", "1", &server.url("/f"), &out_str]);
    let mut first = first.spawn().unwrap();
    let started = Instant::now();
    while !dir.join("out.bin.partfetch").exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = fetch(&server.url("/f"), &out, &[]);
    second
        .assert_code(7)
        .assert_error_mentions(&["another partfetch"]);
    let status = cli::wait_with_deadline(&mut first, Duration::from_secs(20));
    assert!(status.success());
    assert_eq!(std::fs::read(&out).unwrap(), body);
}

#[test]
fn resume_is_refused_for_standard_output() {
    cli::run(&["--resume", "http://127.0.0.1:9/f", "-"])
        .assert_code(2)
        .assert_error_mentions(&["standard output"]);
}

/// The bytes of every file in `dir`, by name: what a refused `--resume`
/// must leave as it was.
fn snapshot(dir: &TempDir) -> Vec<(String, Vec<u8>)> {
    dir.entries()
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

/// Panics unless `outcome` is `--resume` refused: status 7, one message
/// naming FILE and saying to run without `--resume`, and `mentions`.
#[track_caller]
fn assert_resume_refused(outcome: &Outcome, mentions: &[&str]) {
    outcome
        .assert_code(7)
        .assert_error_mentions(&["--resume", "out.bin", "run without --resume"])
        .assert_error_mentions(mentions);
    assert_eq!(outcome.stderr.lines().count(), 1, "{}", outcome.stderr);
}

#[test]
fn resume_with_nothing_to_resume_fails_and_touches_nothing() {
    let body = test_data(100_000, 16);
    let server = server(shared(body, "\"v1\""), 0);
    let dir = TempDir::new("resume-nothing");
    let out = dir.join("out.bin");
    let url = server.url("/f");
    let nothing = fetch(&url, &out, &["--resume"]);
    assert_resume_refused(&nothing, &["out.bin.partfetch"]);
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    assert!(server.requests().is_empty(), "nothing asked of the server");

    // A partial file of another URL is nothing to resume either, and is
    // left as it is.
    std::fs::write(dir.join("out.bin.partfetch"), b"other bytes").unwrap();
    std::fs::write(
        dir.join("out.bin.partfetch.state"),
        format!("partfetch-state 1\nurl {url}-other\ndone 11\n"),
    )
    .unwrap();
    let before = snapshot(&dir);
    let other = fetch(&url, &out, &["--resume"]);
    assert_resume_refused(&other, &["another URL"]);
    assert_eq!(snapshot(&dir), before);
    assert!(server.requests().is_empty(), "nothing asked of the server");
}

#[test]
fn resume_fails_when_the_file_changed_and_keeps_the_partial_file() {
    let old = test_data(2 << 20, 17);
    let new = test_data(2 << 20, 18);
    let body = shared(old, "\"v1\"");
    let (_server, dir, out, url) = interrupted_run(&body, "resume-changed");
    let before = snapshot(&dir);

    *body.lock().unwrap() = (new.clone(), "\"v2\"".to_owned());
    let refused = fetch(&url, &out, &["--resume"]);
    assert_resume_refused(&refused, &["changed"]);
    assert_eq!(snapshot(&dir), before, "the partial file is left as it was");

    // Without --resume, the same command starts over.
    fetch(&url, &out, &[]).assert_code(0);
    assert_eq!(std::fs::read(&out).unwrap(), new);
}

#[test]
fn resume_fails_when_the_server_ignores_range() {
    let body = test_data(200_000, 19);
    let served = body.clone();
    let server = Server::start(move |req: &Request| {
        Reply::file(req, &served, Ranges::Ignore).header("ETag", "\"v1\"")
    });
    let dir = TempDir::new("resume-no-range");
    let out = dir.join("out.bin");
    let url = server.url("/f");
    std::fs::write(dir.join("out.bin.partfetch"), &body[..50_000]).unwrap();
    std::fs::write(
        dir.join("out.bin.partfetch.state"),
        format!("partfetch-state 1\nurl {url}\nlength 200000\nvalidator \"v1\"\ndone 50000\n"),
    )
    .unwrap();
    let before = snapshot(&dir);
    assert_resume_refused(&fetch(&url, &out, &["--resume"]), &["Range"]);
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn resume_fails_when_a_file_fetched_in_pieces_changed() {
    let piece = PIECE as usize;
    let body = test_data(3 * piece, 20);
    let server = server(shared(body.clone(), "\"v2\""), 0);
    let dir = TempDir::new("resume-pieces-changed");
    let out = dir.join("out.bin");
    let url = server.url("/f");
    std::fs::write(dir.join("out.bin.partfetch"), vec![1u8; piece]).unwrap();
    std::fs::write(
        dir.join("out.bin.partfetch.state"),
        format!(
            "partfetch-state 1\nurl {url}\nlength {}\nvalidator \"v1\"\n\
             done {piece}\npiece {piece}\nhave 0\n",
            body.len()
        ),
    )
    .unwrap();
    let before = snapshot(&dir);
    assert_resume_refused(&fetch(&url, &out, &["--resume"]), &["changed"]);
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn resume_fails_when_a_manifest_changed() {
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let server = manifest_server(Arc::clone(&broken), 40);
    let dir = TempDir::new("resume-manifest-changed");
    let out = dir.join("out.bin");
    let url = server.url("/m.parts");
    fetch(&url, &out, &["-j", "1"]).assert_code(3);
    // Same URL, other manifest: the parts the state names are not there.
    let state = dir.join("out.bin.partfetch.state");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, text.replace(" 1 ", " 91 ")).unwrap();
    let data = std::fs::read(dir.join("out.bin.partfetch")).unwrap();
    broken.store(false, Ordering::SeqCst);
    let refused = fetch(&url, &out, &["-j", "1", "--resume"]);
    assert_resume_refused(&refused, &["no longer lists"]);
    assert_eq!(std::fs::read(dir.join("out.bin.partfetch")).unwrap(), data);
    assert!(!out.exists());
}

#[test]
fn resume_is_refused_for_a_file_sequence() {
    for args in [
        &["--resume", "http://127.0.0.1:9/photos-seq", "pic"][..],
        &["--resume", "--sequence", "http://127.0.0.1:9/photos", "pic"],
    ] {
        cli::run(args)
            .assert_code(2)
            .assert_error_mentions(&["--resume", "sequence"]);
    }
}

#[test]
fn limit_rate_caps_the_rate() {
    let body = test_data(300 * 1024, 8);
    let server = server(shared(body.clone(), "\"v1\""), 0);
    let dir = TempDir::new("limit");
    let out = dir.join("out.bin");
    let outcome = fetch(&server.url("/f"), &out, &["--limit-rate", "200K"]);
    outcome.assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), body);
    // 300 KiB at 200 KiB/s cannot take less than 1.5 s (minus the first
    // chunk, which goes out before any wait): a lower bound, not a timing.
    assert!(
        outcome.elapsed >= Duration::from_millis(1000),
        "{:?}",
        outcome.elapsed
    );
}

/// A 1 MiB tmpfs mounted on a fresh directory with `options`, unmounted on
/// drop; `None` when this machine does not let the tests mount (not root,
/// no permission in the container), after `support::skip` said so (under
/// `CI`, which runs as root, that is a failure).
struct Tmpfs {
    dir: TempDir,
    umount: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(options: &str) -> Option<Tmpfs> {
        let mount = support::require_tool("mount")?;
        let umount = support::require_tool("umount")?;
        let dir = TempDir::new("tmpfs");
        let tried = std::process::Command::new(&mount)
            .args(["-t", "tmpfs", "-o", &format!("{options},size=1m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match tried {
            Ok(out) if out.status.success() => Some(Tmpfs { dir, umount }),
            Ok(out) => support::skip(format!(
                "this machine does not let the test mount a tmpfs ({}: {})",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => support::skip(format!("mount cannot run: {e}")),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.umount)
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_is_a_local_error_naming_the_path_and_keeps_the_partial_file() {
    let Some(disk) = Tmpfs::mount("rw") else {
        return;
    };
    let body = test_data(3 << 20, 9);
    let server = server(shared(body, "\"v1\""), 0);
    let out = disk.dir.join("out.bin");
    let outcome = fetch(&server.url("/f"), &out, &[]);
    outcome.assert_code(7);
    assert!(!out.exists());
    let partial = disk.dir.join("out.bin.partfetch");
    let kept = std::fs::metadata(&partial)
        .expect("kept for a later run")
        .len();
    assert!(kept > 0, "the bytes received are kept");
    // What failed, in plain words, about the FILE given; then what was
    // kept, under which name.
    assert_eq!(
        outcome.stderr.trim_end(),
        format!(
            "partfetch: cannot write {}: no space left on device (the {} received are kept in {})",
            out.display(),
            partfetch::human_size(kept),
            partial.display()
        )
    );
    let names: Vec<String> = std::fs::read_dir(disk.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".new")),
        "no control file left half-written: {names:?}"
    );
    // The control file records what was kept: the next run continues.
    let state = std::fs::read_to_string(disk.dir.join("out.bin.partfetch.state")).unwrap();
    assert!(state.contains(&format!("\ndone {kept}\n")), "{state}");
}

#[test]
fn a_disk_full_from_the_first_byte_leaves_nothing_beside_file() {
    let Some(disk) = Tmpfs::mount("rw") else {
        return;
    };
    std::fs::write(disk.dir.join("filler"), vec![0; 2 << 20]).unwrap_err();
    let server = server(shared(test_data(300_000, 10), "\"v1\""), 0);
    let out = disk.dir.join("out.bin");
    let outcome = fetch(&server.url("/f"), &out, &[]);
    outcome.assert_code(7).assert_error_mentions(&[&format!(
        "cannot write {}: no space left on device",
        out.display()
    )]);
    assert!(!outcome.stderr.contains("kept"), "{}", outcome.stderr);
    let names: Vec<String> = std::fs::read_dir(disk.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["filler"], "nothing empty is left beside FILE");
}

#[test]
fn a_read_only_file_system_is_a_local_error_naming_the_path() {
    let Some(disk) = Tmpfs::mount("ro") else {
        return;
    };
    let server = server(shared(test_data(100_000, 11), "\"v1\""), 0);
    let out = disk.dir.join("out.bin");
    fetch(&server.url("/f"), &out, &[])
        .assert_code(7)
        .assert_error_mentions(&[&format!(
            "cannot write {}: read-only file system",
            out.display()
        )]);
    assert!(!out.exists());
}

#[test]
fn a_directory_the_user_cannot_write_is_a_local_error_naming_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let server = server(shared(test_data(100_000, 12), "\"v1\""), 0);
    let dir = TempDir::new("no-permission");
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // The parent must let another user reach the directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = locked.join("out.bin");
    let out = out.to_str().unwrap();
    let url = server.url("/f");
    // Root writes anywhere: run as nobody then (`setpriv`, util-linux), a
    // copy of the binary that nobody can reach (the build directory may be
    // under a private home).
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut command = if is_root {
        let binary = dir.join("partfetch");
        std::fs::copy(cli::bin(), &binary).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        let Some(setpriv) = support::require_tool("setpriv") else {
            return;
        };
        let mut c = std::process::Command::new(setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.arg(&binary);
        for var in cli::PROXY_VARIABLES {
            c.env_remove(var);
        }
        c
    } else {
        cli::command()
    };
    command.args(["-q", "-n", "1", &url, out]);
    let outcome = cli::run_command(command);
    outcome
        .assert_code(7)
        .assert_error_mentions(&[&format!("cannot write {out}: permission denied")]);
    assert!(!std::path::Path::new(out).exists());
}

/// A manifest of six 100 kB parts; part 4 answers 404 while `broken` is set.
fn manifest_server(broken: Arc<std::sync::atomic::AtomicBool>, seed: u64) -> Server {
    let parts: Vec<Vec<u8>> = (0..6).map(|i| test_data(100_000, seed + i)).collect();
    Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::file(
            req,
            b"p0\n--\np1\n--\np2\n--\np3\n--\np4\n--\np5\n",
            Ranges::Honour,
        ),
        "/p3" if broken.load(Ordering::SeqCst) => Reply::status(404),
        path => match path
            .strip_prefix("/p")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(i) if i < parts.len() => Reply::file(req, &parts[i], Ranges::Honour),
            _ => Reply::status(404),
        },
    })
}

fn manifest_bytes(seed: u64) -> Vec<u8> {
    (0..6).flat_map(|i| test_data(100_000, seed + i)).collect()
}

#[test]
fn a_manifest_download_resumes_after_its_completed_parts() {
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let server = manifest_server(Arc::clone(&broken), 10);
    let dir = TempDir::new("manifest-resume");
    let out = dir.join("out.bin");
    let url = server.url("/m.parts");
    // One part at a time, so that parts 1-3 are complete when part 4 fails.
    let first = fetch(&url, &out, &["-j", "1"]);
    first.assert_code(3);
    assert!(!out.exists());
    let asked_before = server.requests().len();

    broken.store(false, Ordering::SeqCst);
    fetch(&url, &out, &["-j", "1"]).assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), manifest_bytes(10));
    let second: Vec<String> = server.requests()[asked_before..]
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(
        second,
        ["/m.parts", "/p3", "/p4", "/p5"],
        "done parts are not fetched again"
    );
}

#[test]
fn a_manifest_that_changed_between_runs_is_downloaded_afresh() {
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let first_server = manifest_server(Arc::clone(&broken), 20);
    let dir = TempDir::new("manifest-changed");
    let out = dir.join("out.bin");
    let url = first_server.url("/m.parts");
    fetch(&url, &out, &["-j", "1"]).assert_code(3);

    // Same URL, other manifest: the parts the state names are not there.
    let state = dir.join("out.bin.partfetch.state");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, text.replace(" 1 ", " 91 ")).unwrap();
    broken.store(false, Ordering::SeqCst);
    let second = fetch(&url, &out, &["-j", "1"]);
    second.assert_code(0);
    assert!(second.stderr.contains("starting"), "{}", second.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), manifest_bytes(20));
}

#[test]
fn a_manifest_cut_before_its_first_part_ended_starts_over_and_never_appends_its_text() {
    // A run killed after a checkpoint but before any part was complete
    // leaves bytes but no part to skip. Whether its control file says it
    // was a manifest or not (an older one may not), the next run must not
    // ask the manifest's URL for a byte range: that would append the
    // manifest's own text to the output.
    let server = manifest_server(Arc::default(), 30);
    let url = server.url("/m.parts");
    for manifest_line in ["manifest\n", ""] {
        let dir = TempDir::new("manifest-no-part");
        let out = dir.join("out.bin");
        std::fs::write(dir.join("out.bin.partfetch"), vec![7u8; 20]).unwrap();
        std::fs::write(
            dir.join("out.bin.partfetch.state"),
            format!("partfetch-state 1\nurl {url}\ndone 20\n{manifest_line}"),
        )
        .unwrap();
        fetch(&url, &out, &[]).assert_code(0);
        assert_eq!(
            std::fs::read(&out).unwrap(),
            manifest_bytes(30),
            "control file with {manifest_line:?}"
        );
    }
}

#[test]
fn a_manifest_download_past_the_recording_bound_resumes_after_the_first_parts() {
    use partfetch::manifest::MAX_RECORDED_PARTS;
    // `first`; one-byte `(*)` parts up to half the bound; `slow`, late
    // enough on the first run for a checkpoint (every 2 s) to come in the
    // middle; one-byte parts past the bound; and `last`, missing on the
    // first run. Recording stops growing at the bound, so the control file
    // keeps the first parts, `slow` among them.
    let half = MAX_RECORDED_PARTS / 2;
    let mut manifest = b"first\n--\n".to_vec();
    manifest.extend(b"(*)\nbyte\n--\n".repeat(half - 1));
    manifest.extend(b"slow\n--\n");
    manifest.extend(b"(*)\nbyte\n--\n".repeat(half + 100));
    manifest.extend(b"last\n");
    let (first, slow, last) = (
        test_data(1000, 41),
        test_data(1000, 42),
        test_data(1000, 43),
    );
    let mut whole = first.clone();
    whole.extend(vec![b'b'; half - 1]);
    whole.extend(&slow);
    whole.extend(vec![b'b'; half + 100]);
    whole.extend(&last);
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let server = {
        let broken = Arc::clone(&broken);
        Server::start(move |req: &Request| {
            let broken = broken.load(Ordering::SeqCst);
            match req.path() {
                "/m.parts" => Reply::ok(manifest.clone()),
                "/first" => Reply::ok(first.clone()),
                "/byte" => Reply::ok(b"b".to_vec()),
                "/slow" if broken => Reply::ok(slow.clone()).delay(Duration::from_millis(2500)),
                "/slow" => Reply::ok(slow.clone()),
                "/last" if !broken => Reply::ok(last.clone()),
                _ => Reply::status(404),
            }
        })
    };
    let dir = TempDir::new("manifest-past-bound");
    let out = dir.join("out.bin");
    let url = server.url("/m.parts");
    fetch(&url, &out, &[]).assert_code(3);
    let state = std::fs::read_to_string(dir.join("out.bin.partfetch.state")).unwrap();
    let recorded = state.lines().filter(|l| l.starts_with("part ")).count();
    assert_eq!(recorded, MAX_RECORDED_PARTS, "the first parts, no more");
    let asked_before = server.requests().len();

    broken.store(false, Ordering::SeqCst);
    fetch(&url, &out, &[]).assert_quiet_success();
    assert!(std::fs::read(&out).unwrap() == whole, "wrong bytes");
    let second: Vec<String> = server.requests()[asked_before..]
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(
        second,
        ["/m.parts", "/byte", "/last"],
        "resumed after the recorded parts, `slow` among them"
    );
}

/// Serves the body of `offered` with the date beside it as
/// `Last-Modified`, honouring `Range`, and `If-Range` by that date.
fn dated_server(offered: Arc<Mutex<(Vec<u8>, String)>>) -> Server {
    Server::start(move |req: &Request| {
        let (bytes, date) = offered.lock().unwrap().clone();
        let current = req.header("if-range").is_none_or(|v| v == date);
        let ranges = match current {
            true => Ranges::Honour,
            false => Ranges::Ignore,
        };
        Reply::file(req, &bytes, ranges).header("Last-Modified", &date)
    })
}

#[test]
fn a_finished_download_run_again_is_complete_and_fetches_nothing() {
    let body = test_data(5 << 20, 31);
    let offered = shared(body.clone(), "Tue, 01 Dec 2026 10:00:00 GMT");
    let server = dated_server(Arc::clone(&offered));
    let dir = TempDir::new("complete");
    let out = dir.join("big.iso");
    let url = server.url("/big.iso");
    let shown = out.to_str().unwrap();
    cli::run(&[&url, shown]).assert_code(0);
    assert_eq!(std::fs::read(&out).unwrap(), body);
    // FILE carries the server's date: what the next run asks by.
    let modified = std::fs::metadata(&out).unwrap().modified().unwrap();
    let secs = modified.duration_since(std::time::UNIX_EPOCH).unwrap();
    assert_eq!(secs.as_secs(), 1_796_119_200);

    let before = server.requests().len();
    let again = cli::run(&[&url, shown]);
    again.assert_code(0);
    assert_eq!(again.stderr, format!("partfetch: {shown} is complete\n"));
    let asked = &server.requests()[before..];
    assert_eq!(asked.len(), 1, "one small request");
    assert_eq!(asked[0].range_start(), Some(body.len() as u64));
    assert_eq!(std::fs::read(&out).unwrap(), body);
    // Quiet means quiet; --resume finds nothing missing either.
    fetch(&url, &out, &[]).assert_quiet_success();
    fetch(&url, &out, &["--resume"]).assert_quiet_success();

    // The server's file changed: downloaded again, whole.
    let changed = test_data(5 << 20, 32);
    *offered.lock().unwrap() = (changed.clone(), "Wed, 02 Dec 2026 10:00:00 GMT".into());
    let after = cli::run(&[&url, shown]);
    after.assert_code(0);
    assert!(
        after.stderr.contains(" done: 5.0 MiB in "),
        "{}",
        after.stderr
    );
    assert_eq!(std::fs::read(&out).unwrap(), changed);
    // --no-resume fetches it whatever it is.
    let before = server.requests().len();
    fetch(&url, &out, &["--no-resume"]).assert_quiet_success();
    assert!(server.requests()[before..]
        .iter()
        .all(|r| r.range_start() != Some(5 << 20)));
}

// Without the `ctrl-c` feature, Ctrl-C ends the process at once.
#[cfg(feature = "ctrl-c")]
#[test]
fn ctrl_c_keeps_the_parts_fetched_whole_ahead_of_the_one_being_written() {
    use std::io::Read;
    use std::sync::atomic::AtomicBool;
    let Some(kill) = support::require_tool("kill") else {
        return;
    };
    const AHEAD: usize = 3;
    let parts: Vec<Vec<u8>> = (0..=AHEAD)
        .map(|i| test_data(200_000 + i * 1000, 50 + i as u64))
        .collect();
    let manifest: String = parts
        .iter()
        .enumerate()
        .map(|(i, p)| format!("(size={})\n/p{i}\n--\n", p.len()))
        .collect();
    // The first part stalls after its first bytes until released; the
    // parts after it are fetched whole meanwhile.
    let release = Arc::new(AtomicBool::new(false));
    let (served, released) = (parts.clone(), Arc::clone(&release));
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(manifest.clone()),
        "/p0" if !released.load(Ordering::SeqCst) => Reply::new(200)
            .header("Content-Length", &served[0].len().to_string())
            .body(Body::Steps(vec![
                Step::Write(served[0][..1000].to_vec()),
                Step::Until(Arc::clone(&released), Duration::from_secs(60)),
                Step::Write(served[0][1000..].to_vec()),
            ])),
        path => Reply::ok(served[path[2..].parse::<usize>().unwrap()].clone()),
    });
    let dir = TempDir::new("ctrl-c-ahead");
    let out = dir.join("m.bin");
    let url = server.url("/m.parts");
    let asked = |path: &str| {
        server
            .requests()
            .iter()
            .filter(|r| r.path() == path)
            .count()
    };
    let mut child = cli::command()
        .args(["-q", "-j", "3", &url, out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waited = Instant::now();
    while (1..=AHEAD).any(|i| asked(&format!("/p{i}")) == 0) {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "parts ahead never asked for"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Their bodies are small and on loopback: read whole well within this.
    std::thread::sleep(Duration::from_secs(1));
    let signalled = std::process::Command::new(kill)
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = cli::wait_with_deadline(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(stderr, "partfetch: interrupted\n");
    let kept = std::fs::metadata(dir.join("m.bin.partfetch.ahead"))
        .unwrap()
        .len();
    let ahead_bytes: usize = parts[1..].iter().map(Vec::len).sum();
    assert_eq!(kept, ahead_bytes as u64, "the parts fetched whole are kept");

    release.store(true, Ordering::SeqCst);
    let before: Vec<usize> = (0..=AHEAD).map(|i| asked(&format!("/p{i}"))).collect();
    fetch(&url, &out, &["-j", "3"]).assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), parts.concat());
    let after: Vec<usize> = (0..=AHEAD).map(|i| asked(&format!("/p{i}"))).collect();
    assert_eq!(
        after[0],
        before[0] + 1,
        "the part being written is fetched again"
    );
    assert_eq!(
        after[1..],
        before[1..],
        "the parts fetched whole ahead were kept, not fetched again"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["m.bin"], "nothing is left beside the file");
}

#[test]
fn a_download_resumed_in_pieces_is_complete_when_run_again() {
    // What a download in pieces leaves, from a server that dates its file.
    let piece = PIECE as usize;
    let body = test_data(3 * piece, 16);
    let date = "Tue, 01 Dec 2026 10:00:00 GMT";
    let server = dated_server(shared(body.clone(), date));
    let dir = TempDir::new("pieces-dated");
    let out = dir.join("out.bin");
    let url = server.url("/f");
    leave_first_piece(&dir, &url, &body, Some(date));
    fetch(&url, &out, &[]).assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), body);
    assert_eq!(server.requests()[0].range_start(), Some(PIECE), "resumed");
    let before = server.requests().len();
    let again = cli::run(&[&url, out.to_str().unwrap()]);
    again.assert_code(0);
    assert_eq!(
        again.stderr,
        format!("partfetch: {} is complete\n", out.display())
    );
    assert_eq!(server.requests().len(), before + 1);
}

/// Leaves in `dir` what a download of `body` from `url` in pieces leaves
/// after its first piece: `out.bin.partfetch` and its control file, with
/// `validator` if given.
fn leave_first_piece(dir: &TempDir, url: &str, body: &[u8], validator: Option<&str>) {
    let piece = PIECE as usize;
    std::fs::write(dir.join("out.bin.partfetch"), &body[..piece]).unwrap();
    let validator = validator.map_or(String::new(), |v| format!("validator {v}\n"));
    let state = format!(
        "partfetch-state 1\nurl {url}\nlength {}\n{validator}done {piece}\npiece {piece}\nhave 0\n",
        body.len()
    );
    std::fs::write(dir.join("out.bin.partfetch.state"), state).unwrap();
}
