//! The `partfetch` command on manifests and file sequences, black-box: the
//! built binary against the in-process test server in `support`. One test
//! per behaviour of docs/manifest.md and docs/sequence.md as the command
//! exposes it (README "Using the command").

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use partfetch::sequence::encode;
use partfetch::sha256;
use support::cli::{self, Outcome};
use support::{test_data, wait_until, KillOnDrop, Ranges, Reply, Request, Server, TempDir};

// ---------------------------------------------------------------- helpers

/// A server with fixed files; other paths get 404. Ranges are honoured.
fn serve(files: Vec<(&str, Vec<u8>)>) -> Server {
    let files: HashMap<String, Vec<u8>> =
        files.into_iter().map(|(p, b)| (p.to_owned(), b)).collect();
    Server::start(move |req: &Request| match files.get(req.path()) {
        Some(body) => Reply::file(req, body, Ranges::Honour),
        None => Reply::status(404),
    })
}

/// Runs `partfetch [extra...] URL DIR/out`; returns the outcome, the
/// directory and the output path (the base name for a sequence).
fn fetch_to_file(url: &str, extra: &[&str]) -> (Outcome, TempDir, PathBuf) {
    let dir: TempDir = TempDir::new("manifest-out");
    let out: PathBuf = dir.join("out");
    let out_str: String = out.to_str().expect("utf-8 temp path").to_owned();
    let mut args: Vec<&str> = extra.to_vec();
    args.push(url);
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

fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `out-file1`, `out-file2`, …, `out-file{n}`, sorted as `TempDir::entries`
/// sorts them.
fn sequence_names(n: usize) -> Vec<String> {
    let mut names: Vec<String> = (1..=n).map(|i| format!("out-file{i}")).collect();
    names.sort();
    names
}

/// Three parts: the first with two alternatives of which the first is a
/// 404; the bytes they assemble to.
fn three_part_manifest() -> (Server, Vec<u8>) {
    let a: Vec<u8> = test_data(70_000, 1);
    let b: Vec<u8> = test_data(300_001, 2);
    let c: Vec<u8> = test_data(17, 3);
    let server: Server = serve(vec![
        (
            "/film.parts",
            b"missing/a.bin\na.bin\n--\nb.bin\n--\n# the end\nc.bin\n".to_vec(),
        ),
        ("/a.bin", a.clone()),
        ("/b.bin", b.clone()),
        ("/c.bin", c.clone()),
    ]);
    (server, [a, b, c].concat())
}

/// The files of the sequence tests (the second is empty) and a server
/// with `/photos-seq.parts` and `/photos.parts`, both manifests whose
/// parts assemble the sequence, the prefixes and bodies cut across parts.
fn sequence_server() -> (Server, Vec<Vec<u8>>, Vec<u8>) {
    let files: Vec<Vec<u8>> = vec![
        test_data(1000, 10),
        Vec::new(),
        test_data(200_000, 11),
        b"6.009".to_vec(),
    ];
    let stream: Vec<u8> = encode(files.iter().map(Vec::as_slice)).expect("encode");
    // Cut inside the first prefix, inside file 3, and inside file 4's prefix.
    let cuts: [usize; 3] = [2, 1010, stream.len() - 7];
    let p1: Vec<u8> = stream[..cuts[0]].to_vec();
    let p2: Vec<u8> = stream[cuts[0]..cuts[1]].to_vec();
    let p3: Vec<u8> = stream[cuts[1]..cuts[2]].to_vec();
    let p4: Vec<u8> = stream[cuts[2]..].to_vec();
    let manifest: Vec<u8> = b"p1\n--\np2\n--\np3\n--\np4\n".to_vec();
    let server: Server = serve(vec![
        ("/photos-seq.parts", manifest.clone()),
        ("/photos.parts", manifest),
        ("/p1", p1),
        ("/p2", p2),
        ("/p3", p3),
        ("/p4", p4),
    ]);
    (server, files, stream)
}

/// Panics unless `dir` holds exactly `out-file1..=out-file{n}` with the
/// bytes of `files`.
#[track_caller]
fn assert_sequence_saved(dir: &TempDir, out: &Path, files: &[Vec<u8>]) {
    assert_eq!(
        dir.entries(),
        sequence_names(files.len()),
        "exactly one file per sequence file, no temporaries"
    );
    for (i, expected) in files.iter().enumerate() {
        let path: PathBuf = PathBuf::from(format!("{}-file{}", out.display(), i + 1));
        assert!(
            read_file(&path) == *expected,
            "{} differs from file {} of the sequence",
            path.display(),
            i + 1
        );
    }
}

// ---------------------------------------------------------------- manifests

#[test]
fn manifest_is_saved_as_its_assembled_stream() {
    let (server, expected) = three_part_manifest();
    // One part at a time, so that the order of requests is the order of
    // the manifest.
    let (outcome, dir, out) = fetch_to_file(&server.url("/film.parts"), &["-j", "1"]);
    outcome.assert_code(0);
    assert!(outcome.stdout.is_empty(), "nothing on stdout");
    assert!(read_file(&out) == expected, "assembled stream differs");
    assert_eq!(dir.entries(), vec!["out"], "only the finished file is left");
    let paths: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "/film.parts",
            "/missing/a.bin",
            "/a.bin",
            "/b.bin",
            "/c.bin"
        ],
        "the 404 alternative is tried first, then its fallback"
    );
}

#[test]
fn manifest_of_small_parts_from_a_server_that_splits_heads_comes_whole_over_one_connection() {
    // Each answer's head and body go in two sends with Nagle's algorithm
    // on, as Python's http.server writes them: the body waits for the
    // client's acknowledgement of the head.
    let parts: Vec<Vec<u8>> = (0..40).map(|i| test_data(34 + i, i as u64)).collect();
    let manifest: String = (0..parts.len())
        .map(|i| format!("p{i}\n"))
        .collect::<Vec<_>>()
        .join("--\n");
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    files.insert("/small.parts".to_owned(), manifest.into_bytes());
    for (i, part) in parts.iter().enumerate() {
        files.insert(format!("/p{i}"), part.clone());
    }
    let server: Server = Server::start(move |req: &Request| match files.get(req.path()) {
        Some(body) => Reply::ok(body.clone()).split_head(),
        None => Reply::status(404),
    });
    let (outcome, _dir, out) = fetch_to_file(&server.url("/small.parts"), &["-j", "1"]);
    outcome.assert_code(0);
    assert!(
        read_file(&out) == parts.concat(),
        "assembled stream differs"
    );
    assert_eq!(server.count("/p39"), 1);
    assert_eq!(server.connections(), 1, "every part on the one connection");
}

#[test]
fn manifest_without_file_is_saved_under_its_name_less_parts() {
    let (server, expected) = three_part_manifest();
    let dir: TempDir = TempDir::new("manifest-cwd");
    let mut cmd = cli::command();
    cmd.arg(server.url("/film.parts")).current_dir(dir.path());
    cli::run_command(cmd).assert_code(0);
    assert_eq!(dir.entries(), vec!["film"], "not film.parts");
    assert!(
        read_file(&dir.join("film")) == expected,
        "assembled stream differs"
    );
}

#[test]
fn manifest_to_stdout_writes_the_assembled_stream() {
    let (server, expected) = three_part_manifest();
    let outcome: Outcome = fetch_to_stdout(&server.url("/film.parts"), &[]);
    outcome.assert_code(0);
    assert!(outcome.stdout == expected, "assembled stream differs");
}

#[test]
fn manifest_error_names_the_manifest_url_and_line() {
    let server: Server = serve(vec![
        ("/bad.parts", b"a.bin\n--\n(colour=red)\na.bin\n".to_vec()),
        ("/a.bin", b"aaaa".to_vec()),
    ]);
    let url: String = server.url("/bad.parts");
    let (outcome, dir, _out) = fetch_to_file(&url, &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&[&url, "line 3"]);
    // Nothing under the final name; the part written so far is kept, with
    // the control file, for a later run to resume.
    assert_eq!(
        dir.entries(),
        vec!["out.partfetch", "out.partfetch.state"],
        "a failed download leaves only its partial files"
    );
}

#[test]
fn manifest_error_to_stdout_exits_1() {
    let server: Server = serve(vec![("/bad.parts", b"(colour=red)\na.bin\n".to_vec())]);
    let url: String = server.url("/bad.parts");
    fetch_to_stdout(&url, &[])
        .assert_code(1)
        .assert_error_mentions(&[&url, "line 1"]);
}

#[test]
fn manifest_whose_parts_all_fail_exits_with_not_found() {
    let server: Server = serve(vec![("/gone.parts", b"x.bin\ny.bin\n".to_vec())]);
    let (outcome, dir, _out) = fetch_to_file(&server.url("/gone.parts"), &[]);
    outcome
        .assert_code(3)
        .assert_error_mentions(&["x.bin", "y.bin"]);
    assert_eq!(dir.entries(), Vec::<String>::new());
}

// ---------------------------------------------------------------- sequences

#[test]
fn seq_url_is_split_into_numbered_files() {
    let (server, files, _stream) = sequence_server();
    let (outcome, dir, out) = fetch_to_file(&server.url("/photos-seq.parts"), &[]);
    outcome.assert_quiet_success();
    assert!(outcome.stdout.is_empty(), "nothing on stdout");
    assert_sequence_saved(&dir, &out, &files);
}

#[test]
fn seq_url_named_after_the_url_without_file() {
    let (server, files, _stream) = sequence_server();
    let dir: TempDir = TempDir::new("manifest-cwd");
    let mut cmd = cli::command();
    cmd.arg(server.url("/photos-seq.parts"))
        .current_dir(dir.path());
    cli::run_command(cmd).assert_quiet_success();
    let mut expected: Vec<String> = (1..=files.len())
        .map(|i| format!("photos-seq-file{i}"))
        .collect();
    expected.sort();
    assert_eq!(
        dir.entries(),
        expected,
        "named as the manifest, less .parts"
    );
    assert_eq!(read_file(&dir.join("photos-seq-file4")), b"6.009");
}

#[test]
fn seq_url_into_a_named_pipe_writes_the_raw_stream_as_to_stdout() {
    let (server, _files, stream) = sequence_server();
    let dir: TempDir = TempDir::new("fifo");
    let pipe: PathBuf = cli::named_pipe(&dir, "out");
    let (outcome, got) = cli::fetch_into_pipe(&server.url("/photos-seq.parts"), &pipe);
    outcome.assert_quiet_success();
    assert!(got == stream, "the pipe did not get the raw stream");
    assert_eq!(dir.entries(), ["out"], "no numbered files beside the pipe");
}

#[test]
fn seq_url_to_stdout_writes_the_raw_stream() {
    let (server, _files, stream) = sequence_server();
    let outcome: Outcome = fetch_to_stdout(&server.url("/photos-seq.parts"), &[]);
    outcome.assert_quiet_success();
    assert!(outcome.stdout == stream, "stdout is not the raw stream");
}

#[test]
fn a_sequence_file_that_is_a_link_is_saved_through_it_as_file_is() {
    let (server, files, _stream) = sequence_server();
    let dir: TempDir = TempDir::new("seq-link");
    let elsewhere: TempDir = TempDir::new("seq-link-target");
    let target: PathBuf = elsewhere.join("kept");
    std::fs::write(&target, b"old").expect("write");
    let out: PathBuf = dir.join("out");
    let link: PathBuf = dir.join("out-file3");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let outcome: Outcome = cli::run(&[
        &server.url("/photos-seq.parts"),
        out.to_str().expect("utf-8"),
    ]);
    outcome.assert_quiet_success();
    assert!(read_file(&target) == files[2], "the link's target differs");
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink(),
        "the link was replaced by a file"
    );
    assert!(read_file(&dir.join("out-file4")) == files[3]);
}

#[test]
fn no_sequence_saves_a_seq_url_as_one_file() {
    let (server, _files, stream) = sequence_server();
    let (outcome, dir, out) = fetch_to_file(&server.url("/photos-seq.parts"), &["--no-sequence"]);
    outcome.assert_quiet_success();
    assert_eq!(dir.entries(), vec!["out"]);
    assert!(
        read_file(&out) == stream,
        "saved file is not the raw stream"
    );
}

#[test]
fn sequence_option_splits_a_url_without_seq() {
    let (server, files, _stream) = sequence_server();
    let (outcome, dir, out) = fetch_to_file(&server.url("/photos.parts"), &["--sequence"]);
    outcome.assert_quiet_success();
    assert_sequence_saved(&dir, &out, &files);
}

#[test]
fn url_without_seq_is_not_split() {
    let (server, _files, stream) = sequence_server();
    let (outcome, dir, out) = fetch_to_file(&server.url("/photos.parts"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(dir.entries(), vec!["out"]);
    assert!(read_file(&out) == stream);
}

#[test]
fn plain_seq_body_is_split_too() {
    let files: Vec<Vec<u8>> = vec![b"rules!".to_vec(), test_data(70_000, 5)];
    let stream: Vec<u8> = encode(files.iter().map(Vec::as_slice)).expect("encode");
    let server: Server = serve(vec![("/pics-seq.bin", stream)]);
    let (outcome, dir, out) = fetch_to_file(&server.url("/pics-seq.bin"), &[]);
    outcome.assert_quiet_success();
    assert_sequence_saved(&dir, &out, &files);
}

#[test]
fn checksum_of_a_sequence_covers_its_stream() {
    let (server, files, stream) = sequence_server();
    let right = format!("sha256={}", sha256::to_hex(&sha256::digest(&stream)));
    let (outcome, dir, out) =
        fetch_to_file(&server.url("/photos-seq.parts"), &["--checksum", &right]);
    outcome.assert_quiet_success();
    assert_sequence_saved(&dir, &out, &files);

    let wrong = format!("sha256={}", "ab".repeat(32));
    let (outcome, dir, out) =
        fetch_to_file(&server.url("/photos-seq.parts"), &["--checksum", &wrong]);
    outcome
        .assert_code(6)
        .assert_error_mentions(&["checksum mismatch", "sequence", "out-file4"]);
    // Each file was complete when it was renamed; they stay.
    assert_sequence_saved(&dir, &out, &files);
}

#[test]
fn limit_rate_applies_to_a_sequence_saved_as_files() {
    let files: Vec<Vec<u8>> = vec![test_data(150_000, 30), test_data(150_000, 31)];
    let stream: Vec<u8> = encode(files.iter().map(Vec::as_slice)).expect("encode");
    let server: Server = serve(vec![("/slow-seq.bin", stream)]);
    let (outcome, dir, out) =
        fetch_to_file(&server.url("/slow-seq.bin"), &["--limit-rate", "200K"]);
    outcome.assert_quiet_success();
    assert_sequence_saved(&dir, &out, &files);
    // 300 KB at 200 KiB/s cannot take less than a second once the first
    // chunk has gone out: a lower bound, not a timing.
    assert!(
        outcome.elapsed >= Duration::from_millis(1000),
        "{:?}",
        outcome.elapsed
    );
}

#[test]
fn truncated_sequence_keeps_complete_files_and_fails() {
    let files: Vec<Vec<u8>> = vec![test_data(500, 20), test_data(40_000, 21)];
    let third: Vec<u8> = test_data(100_000, 22);
    let mut stream: Vec<u8> = encode(files.iter().map(Vec::as_slice)).expect("encode");
    let whole_third: Vec<u8> = encode([third.as_slice()]).expect("encode");
    // The stream ends 60 000 bytes into file 3: 40 000 of its bytes missing.
    stream.extend_from_slice(&whole_third[..4 + 60_000]);
    let (first, second) = stream.split_at(30_000);
    let server: Server = serve(vec![
        ("/cut-seq.parts", b"one\n--\ntwo\n".to_vec()),
        ("/one", first.to_vec()),
        ("/two", second.to_vec()),
    ]);
    let (outcome, dir, out) = fetch_to_file(&server.url("/cut-seq.parts"), &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["file 3", "40000 of its 100000 bytes missing"]);
    assert_sequence_saved(&dir, &out, &files);
}

#[test]
fn sequence_cut_inside_a_length_prefix_fails_naming_the_file() {
    let files: Vec<Vec<u8>> = vec![b"first".to_vec(), b"second".to_vec()];
    let mut stream: Vec<u8> = encode(files.iter().map(Vec::as_slice)).expect("encode");
    stream.extend_from_slice(&[0, 0, 1]);
    let server: Server = serve(vec![("/cut-seq.bin", stream)]);
    let (outcome, dir, out) = fetch_to_file(&server.url("/cut-seq.bin"), &[]);
    outcome
        .assert_code(1)
        .assert_error_mentions(&["file 3", "1 of its 4 bytes missing"]);
    assert_sequence_saved(&dir, &out, &files);
}

#[test]
fn empty_sequence_saves_no_file() {
    let server: Server = serve(vec![("/none-seq.bin", Vec::new())]);
    let (outcome, dir, _out) = fetch_to_file(&server.url("/none-seq.bin"), &[]);
    outcome.assert_quiet_success();
    assert_eq!(dir.entries(), Vec::<String>::new());
}

// ---------------------------------------------------------------- endless

#[test]
fn endless_sequence_keeps_saving_whole_files_until_killed() {
    const SMALL_FILES: usize = 20;
    let small: Arc<Vec<u8>> = Arc::new(test_data(3000, 30));
    let big: Arc<Vec<u8>> = Arc::new(test_data(8 << 20, 31));
    let small_encoded: Vec<u8> = encode([small.as_slice()]).expect("encode");
    let big_encoded: Vec<u8> = encode([big.as_slice()]).expect("encode");
    let served: Arc<AtomicUsize> = Arc::new(AtomicUsize::new(0));
    let count: Arc<AtomicUsize> = Arc::clone(&served);
    // The manifest lists one file and then itself, forever. The first 20
    // requests for the file get a small one; later ones an 8 MiB one, sent
    // slowly (64 KiB every 100 ms: 12.8 s in all), so the kill lands
    // inside it.
    let server: Server = Server::start(move |req: &Request| match req.path() {
        "/s-seq.parts" => Reply::ok("file.bin\n--\n/s-seq.parts\n"),
        "/file.bin" => {
            if count.fetch_add(1, Ordering::SeqCst) < SMALL_FILES {
                Reply::ok(small_encoded.clone())
            } else {
                Reply::paced(&big_encoded, 64 * 1024, Duration::from_millis(100))
            }
        }
        _ => Reply::status(404),
    });
    let dir: TempDir = TempDir::new("endless");
    let out: PathBuf = dir.join("out");
    let mut cmd = cli::command();
    cmd.arg(server.url("/s-seq.parts"))
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child: KillOnDrop = KillOnDrop(cmd.spawn().expect("spawn partfetch"));

    let numbered = |n: usize| PathBuf::from(format!("{}-file{n}", out.display()));
    wait_until(Duration::from_secs(10), "out-file20", || {
        numbered(SMALL_FILES).exists()
    });
    // File 21 is the big one: wait until some of it is on disk.
    let partial: PathBuf = PathBuf::from(format!("{}.partfetch", numbered(21).display()));
    wait_until(Duration::from_secs(10), "part of out-file21", || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
    });
    assert!(
        child.0.try_wait().expect("try_wait").is_none(),
        "an endless sequence must not end"
    );
    child.0.kill().expect("kill partfetch");
    child.0.wait().expect("wait partfetch");

    assert!(
        served.load(Ordering::SeqCst) > SMALL_FILES,
        "the big file was requested"
    );
    let mut finished: usize = 0;
    for name in dir.entries() {
        if name.ends_with(".partfetch") {
            continue;
        }
        let n: usize = name
            .strip_prefix("out-file")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected entry {name}"));
        let expected: &[u8] = if n <= SMALL_FILES { &small } else { &big };
        assert!(
            read_file(&dir.join(&name)) == expected,
            "{name} is not exactly file {n} of the sequence"
        );
        finished += 1;
    }
    assert_eq!(
        finished, SMALL_FILES,
        "files 1..=20 complete, the interrupted 21st not under its final name"
    );
    let entries: Vec<String> = dir.entries();
    let temporaries: Vec<&String> = entries
        .iter()
        .filter(|n| n.ends_with(".partfetch"))
        .collect();
    assert_eq!(
        temporaries,
        [&"out-file21.partfetch".to_owned()],
        "only the interrupted file is left as a temporary"
    );
}

// ---------------------------------------------------------------- progress

#[test]
fn progress_on_a_sequence_counts_files_written() {
    let (server, files, _stream) = sequence_server();
    let (outcome, dir, out) = fetch_to_file(&server.url("/photos-seq.parts"), &["--progress"]);
    outcome.assert_code(0);
    assert_sequence_saved(&dir, &out, &files);
    let last: &str = cli::without_summary(&outcome.stderr)
        .lines()
        .last()
        .unwrap_or("");
    assert!(
        last.contains("  files 4"),
        "the final progress line should count 4 files, stderr:\n{}",
        outcome.stderr
    );
}

#[test]
fn progress_on_a_manifest_counts_parts() {
    let (server, expected) = three_part_manifest();
    let (outcome, _dir, out) = fetch_to_file(&server.url("/film.parts"), &["--progress"]);
    outcome.assert_code(0);
    assert!(read_file(&out) == expected);
    let last: &str = cli::without_summary(&outcome.stderr)
        .lines()
        .last()
        .unwrap_or("");
    assert!(
        last.contains("  parts 3"),
        "the final progress line should count 3 parts, stderr:\n{}",
        outcome.stderr
    );
    assert!(
        !last.contains("files"),
        "a manifest that is not a sequence counts no files: {last}"
    );
}

#[test]
fn progress_on_a_sized_manifest_shows_its_total_and_percent() {
    let a: Vec<u8> = test_data(70_000, 4);
    let b: Vec<u8> = test_data(300_001, 5);
    let text = format!("(size={})\na.bin\n--\n(size={})\nb.bin\n", a.len(), b.len());
    let server: Server = serve(vec![
        ("/sized.parts", text.into_bytes()),
        ("/a.bin", a.clone()),
        ("/b.bin", b.clone()),
    ]);
    let (outcome, _dir, out) = fetch_to_file(&server.url("/sized.parts"), &["--progress"]);
    outcome.assert_code(0);
    assert!(read_file(&out) == [a, b].concat());
    let lines: Vec<&str> = cli::without_summary(&outcome.stderr).lines().collect();
    assert!(
        lines.iter().all(|line| line.contains(" / 361.3 KiB ")),
        "every progress line shows the total, stderr:\n{}",
        outcome.stderr
    );
    assert!(
        lines
            .last()
            .is_some_and(|last| last.contains("361.3 KiB / 361.3 KiB 100%")),
        "stderr:\n{}",
        outcome.stderr
    );
}

#[test]
fn progress_on_a_sequence_manifest_counts_parts_and_files() {
    let (server, files, _stream) = sequence_server();
    let (outcome, dir, out) = fetch_to_file(&server.url("/photos-seq.parts"), &["--progress"]);
    outcome.assert_code(0);
    assert_sequence_saved(&dir, &out, &files);
    let last: &str = cli::without_summary(&outcome.stderr)
        .lines()
        .last()
        .unwrap_or("");
    assert!(
        last.contains("  parts 4") && last.contains("  files 4"),
        "the final progress line should count 4 parts and 4 files, stderr:\n{}",
        outcome.stderr
    );
}

#[test]
fn without_progress_a_sequence_prints_nothing() {
    let (server, _files, _stream) = sequence_server();
    let (outcome, _dir, _out) = fetch_to_file(&server.url("/photos-seq.parts"), &[]);
    outcome.assert_quiet_success();
}

#[test]
fn a_part_that_never_answers_is_asked_again_with_a_line_saying_so() {
    let server = Server::start(|req: &Request| match req.path() {
        "/m.parts" => Reply::ok(b"silent\n".to_vec()),
        _ => Reply::ok("too late").delay(Duration::from_secs(30)),
    });
    let url = server.url("/m.parts");
    let outcome = fetch_to_stdout(&url, &["--timeout", "0.5", "--retries", "2"]);
    outcome.assert_code(5);
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    assert!(
        lines[0].starts_with("partfetch: no data received for 0.5 s (idle timeout)")
            && lines[0].contains("; trying again in 0.1 s (attempt 2 of 2)"),
        "{lines:?}"
    );
    assert_eq!(server.count("/silent"), 2);
}
