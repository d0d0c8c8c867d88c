//! Downloads to a file written piece by piece at their offsets, through the
//! `partfetch` command: pieces land out of order, an interruption leaves a
//! set of pieces (not a prefix) that the next run continues from, and the
//! checksum, rate limit and local errors hold as for a stream.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use partfetch::engine::HTTP_PIECE as PIECE;
use partfetch::pieces::PieceSet;
use partfetch::sha256;
use support::cli::{self, Outcome};
use support::{test_data, Body, Ranges, Reply, Request, Server, Step, TempDir};

/// `partfetch -q -n 4 [extra] URL DIR/out.bin`
fn fetch(url: &str, out: &std::path::Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<&str> = vec!["-q", "-n", "4", "--retries", "1"];
    args.extend_from_slice(extra);
    let out = out.to_str().expect("utf-8 path").to_owned();
    args.push(url);
    args.push(&out);
    cli::run(&args)
}

/// The file a server offers, and its ETag; tests change both.
type Offered = Arc<Mutex<(Vec<u8>, String)>>;

/// Serves the offered file with its ETag, honouring Range and If-Range.
/// The first request gets piece 0 alone (as from a server that caps each
/// range), sent slowly, so the download is split over the connections
/// rather than taken as one fast stream. While `broken` is set, a later
/// request for piece 3 (and whatever pieces it asks for with it) answers
/// 404 after a second: by then every other piece is on disk.
fn server(offered: Offered, broken: Arc<AtomicBool>) -> Server {
    Server::start(move |req: &Request| {
        let (bytes, etag) = offered.lock().unwrap().clone();
        let current = req.header("if-range").is_none_or(|v| v == etag);
        let ranges = if current {
            Ranges::Honour
        } else {
            Ranges::Ignore
        };
        let first = req.range_start() == Some(0);
        if broken.load(Ordering::SeqCst) && !first && asks_for(req, 3 * PIECE) {
            return Reply::status(404).delay(Duration::from_secs(1));
        }
        if first && current {
            return slow_first_piece(&bytes).header("ETag", &etag);
        }
        Reply::file(req, &bytes, ranges).header("ETag", &etag)
    })
}

/// Whether `req` asks for a range with the byte at `offset` in it.
fn asks_for(req: &Request, offset: u64) -> bool {
    req.range().is_some_and(|range| range.contains(&offset))
}

/// Piece 0 of `body` as a 206, 64 KiB per millisecond at most.
fn slow_first_piece(body: &[u8]) -> Reply {
    let piece = &body[..PIECE as usize];
    let mut steps = Vec::new();
    for chunk in piece.chunks(64 * 1024) {
        steps.push(Step::Write(chunk.to_vec()));
        steps.push(Step::Sleep(Duration::from_millis(1)));
    }
    Reply::new(206)
        .header(
            "Content-Range",
            &format!("bytes 0-{}/{}", PIECE - 1, body.len()),
        )
        .header("Content-Length", &PIECE.to_string())
        .body(Body::Steps(steps))
}

fn offered(bytes: Vec<u8>, etag: &str) -> Offered {
    Arc::new(Mutex::new((bytes, etag.to_owned())))
}

fn checksum_of(body: &[u8]) -> String {
    format!("sha256={}", sha256::to_hex(&sha256::digest(body)))
}

/// The `have` line of a control file.
fn have_line(state: &std::path::Path) -> String {
    let text = std::fs::read_to_string(state).expect("a control file");
    text.lines()
        .find_map(|line| line.strip_prefix("have "))
        .unwrap_or_else(|| panic!("no have line in {text}"))
        .to_owned()
}

#[test]
fn an_interrupted_download_keeps_the_pieces_past_a_gap_and_fetches_only_the_gap() {
    let body = test_data(16 * PIECE as usize, 50);
    let broken = Arc::new(AtomicBool::new(true));
    let server = server(offered(body.clone(), "\"v1\""), Arc::clone(&broken));
    let dir = TempDir::new("pieces-gap");
    let out = dir.join("out.bin");
    let url = server.url("/f");
    let right = checksum_of(&body);

    let first = fetch(&url, &out, &["--checksum", &right]);
    first.assert_code(3);
    assert!(
        !out.exists(),
        "no file under the final name after a failure"
    );
    // The pieces of every request that did not fail, written past the gap
    // that the failed one left.
    let state = dir.join("out.bin.partfetch.state");
    let have = PieceSet::parse(&have_line(&state), 16).expect("a set of pieces");
    assert!(!have.contains(3), "{have:?}");
    assert!(have.contains(0) && have.contains(15), "{have:?}");
    let missing: Vec<u64> = (0..16).filter(|&index| !have.contains(index)).collect();

    broken.store(false, Ordering::SeqCst);
    let before = server.requests().len();
    fetch(&url, &out, &["--checksum", &right]).assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), body);
    assert_eq!(dir.entries(), ["out.bin"], "partial files are removed");
    // The second run asked for the missing pieces alone, with If-Range.
    let second: Vec<Request> = server.requests().split_off(before);
    let mut asked: Vec<u64> = Vec::new();
    for request in &second {
        assert_eq!(request.header("if-range"), Some("\"v1\""), "{second:?}");
        let range = request.range().expect("a range");
        asked.extend(range.start() / PIECE..=range.end() / PIECE);
    }
    asked.sort_unstable();
    assert_eq!(asked, missing, "{second:?}");
}

#[test]
fn a_source_that_changed_since_the_pieces_were_written_gives_the_new_file_whole() {
    let old = test_data(8 * PIECE as usize, 51);
    let new = test_data(8 * PIECE as usize, 52);
    let broken = Arc::new(AtomicBool::new(true));
    let offered = offered(old, "\"v1\"");
    let server = server(Arc::clone(&offered), Arc::clone(&broken));
    let dir = TempDir::new("pieces-changed");
    let out = dir.join("out.bin");
    let url = server.url("/f");
    assert_ne!(fetch(&url, &out, &[]).code, Some(0));

    broken.store(false, Ordering::SeqCst);
    *offered.lock().unwrap() = (new.clone(), "\"v2\"".to_owned());
    let second = fetch(&url, &out, &["--checksum", &checksum_of(&new)]);
    second.assert_code(0);
    assert!(second.stderr.contains("over"), "{}", second.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), new, "never a mix of versions");
}

#[test]
fn a_source_that_shrank_since_the_pieces_were_written_gives_the_new_file_whole() {
    // Piece 3, the first one missing, is past the end of the new file:
    // its request is answered 416 (the server keeps its ETag, as one
    // that makes them from nothing but a name would).
    let old = test_data(8 * PIECE as usize, 54);
    let new = test_data(2 * PIECE as usize + 10, 55);
    let broken = Arc::new(AtomicBool::new(true));
    let offered = offered(old, "\"v1\"");
    let server = server(Arc::clone(&offered), Arc::clone(&broken));
    let dir = TempDir::new("pieces-shrank");
    let out = dir.join("out.bin");
    let url = server.url("/f");
    assert_ne!(fetch(&url, &out, &[]).code, Some(0));

    broken.store(false, Ordering::SeqCst);
    *offered.lock().unwrap() = (new.clone(), "\"v1\"".to_owned());
    let second = fetch(&url, &out, &[]);
    second.assert_code(0);
    assert!(second.stderr.contains("over"), "{}", second.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), new);
}

#[test]
fn a_wrong_checksum_of_a_file_written_in_pieces_fails_and_keeps_it() {
    let body = test_data(6 * PIECE as usize, 53);
    let server = server(offered(body.clone(), "\"v1\""), Arc::default());
    let dir = TempDir::new("pieces-checksum");
    let out = dir.join("out.bin");
    let wrong = format!("sha256={}", "ab".repeat(32));
    fetch(&server.url("/f"), &out, &["--checksum", &wrong])
        .assert_code(6)
        .assert_error_mentions(&["checksum mismatch", "out.bin"]);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read(dir.join("out.bin.partfetch")).unwrap(),
        body,
        "the complete file is kept for inspection"
    );
    assert!(
        !dir.join("out.bin.partfetch.state").exists(),
        "nothing to resume"
    );
}

#[test]
fn limit_rate_caps_every_connection_together() {
    let body = test_data(5 * PIECE as usize, 54);
    let server = server(offered(body.clone(), "\"v1\""), Arc::default());
    let dir = TempDir::new("pieces-limit");
    let out = dir.join("out.bin");
    let outcome = fetch(&server.url("/f"), &out, &["--limit-rate", "4M"]);
    outcome.assert_quiet_success();
    assert_eq!(std::fs::read(&out).unwrap(), body);
    // 5 MiB at 4 MiB/s over four connections cannot take less than 1.25 s
    // (less one chunk): a lower bound, not a timing.
    assert!(
        outcome.elapsed >= Duration::from_millis(1100),
        "{:?}",
        outcome.elapsed
    );
}

#[test]
fn a_server_that_caps_its_ranges_below_a_piece_still_gives_the_whole_file() {
    let bytes = test_data(6 * PIECE as usize + 12_345, 41);
    let served = bytes.clone();
    let asked = Arc::new(Mutex::new(0usize));
    let count = Arc::clone(&asked);
    let server = Server::start(move |req: &Request| {
        *count.lock().unwrap() += 1;
        if req.range_start() == Some(0) {
            return slow_first_piece(&served).header("ETag", "\"v1\"");
        }
        Reply::file(req, &served, Ranges::Capped(300_000)).header("ETag", "\"v1\"")
    });
    let dir = TempDir::new("capped");
    let out = dir.join("out.bin");
    fetch(&server.url("/f"), &out, &[]).assert_code(0);
    assert!(std::fs::read(&out).unwrap() == bytes, "the file differs");
    // Piece 0 whole, then the rest in requests of at most 300 000 bytes
    // each: each answer cut short is followed by a request for what it
    // left out.
    let rest = bytes.len() - PIECE as usize;
    let asked = *asked.lock().unwrap();
    assert!(asked > rest / 300_000, "{asked} requests");
}

#[test]
fn a_server_that_caps_every_range_gives_the_whole_file_as_one_stream() {
    let bytes = test_data(5 * PIECE as usize, 42);
    let served = bytes.clone();
    let server = Server::start(move |req: &Request| {
        Reply::file(req, &served, Ranges::Capped(300_000)).header("ETag", "\"v1\"")
    });
    let dir = TempDir::new("capped-all");
    let out = dir.join("out.bin");
    fetch(&server.url("/f"), &out, &[]).assert_code(0);
    assert!(std::fs::read(&out).unwrap() == bytes, "the file differs");
    let outcome = cli::run(&["-q", &server.url("/f"), "-"]);
    outcome.assert_code(0);
    assert!(outcome.stdout == bytes, "the stream differs");
}

/// Serves `bytes` with `ETag: "v1"`: piece 0 slowly (so that the download
/// is split), then every third ranged request whole, with the same ETag
/// (the server ignored Range; the file did not change), and the others as
/// `ranges` says.
fn ignoring_every_third_range(bytes: &[u8], ranges: Ranges) -> Server {
    let served = bytes.to_vec();
    let ranged = std::sync::atomic::AtomicUsize::new(0);
    Server::start(move |req: &Request| {
        if req.range_start() == Some(0) {
            return slow_first_piece(&served).header("ETag", "\"v1\"");
        }
        if (ranged.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(3) {
            return Reply::ok(served.clone()).header("ETag", "\"v1\"");
        }
        Reply::file(req, &served, ranges).header("ETag", "\"v1\"")
    })
}

#[test]
fn a_server_that_honours_range_only_sometimes_still_gives_the_whole_file() {
    let bytes = test_data(8 * PIECE as usize, 43);
    let server = ignoring_every_third_range(&bytes, Ranges::Honour);
    let dir = TempDir::new("sometimes");
    let out = dir.join("out.bin");
    let outcome = cli::run(&["-q", "-n", "4", &server.url("/f"), out.to_str().unwrap()]);
    outcome.assert_code(0);
    assert!(std::fs::read(&out).unwrap() == bytes, "the file differs");
    let outcome = cli::run(&["-q", "-n", "4", &server.url("/f"), "-"]);
    outcome.assert_code(0);
    assert!(outcome.stdout == bytes, "the stream differs");
}

#[test]
fn a_server_that_caps_its_ranges_and_sometimes_ignores_them_still_gives_the_whole_file() {
    let bytes = test_data(8 * PIECE as usize, 44);
    let server = ignoring_every_third_range(&bytes, Ranges::Capped(300_000));
    let dir = TempDir::new("capped-sometimes");
    let out = dir.join("out.bin");
    let outcome = cli::run(&["-q", "-n", "4", &server.url("/f"), out.to_str().unwrap()]);
    outcome.assert_code(0);
    assert!(std::fs::read(&out).unwrap() == bytes, "the file differs");
}

#[test]
fn the_last_progress_line_of_a_download_in_pieces_counts_every_byte() {
    let bytes = test_data(10 * PIECE as usize, 45);
    let server = server(offered(bytes.clone(), "\"v1\""), Arc::default());
    let dir = TempDir::new("progress");
    let out = dir.join("out.bin");
    let outcome = cli::run(&[
        "--progress",
        "-n",
        "4",
        &server.url("/f"),
        out.to_str().unwrap(),
    ]);
    outcome.assert_code(0);
    assert!(std::fs::read(&out).unwrap() == bytes, "the file differs");
    let progress = cli::without_summary(&outcome.stderr);
    let last = progress.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("10.0 MiB / 10.0 MiB 100%"),
        "last progress line: {last:?}"
    );
}

#[test]
fn a_source_asked_to_wait_by_its_server_says_so_once() {
    let bytes = test_data(6 * PIECE as usize, 46);
    let served = bytes.clone();
    let refused = Arc::new(AtomicBool::new(false));
    let once = Arc::clone(&refused);
    let server = Server::start(move |req: &Request| {
        if req.range_start() == Some(0) {
            return slow_first_piece(&served).header("ETag", "\"v1\"");
        }
        if asks_for(req, 3 * PIECE) && !once.swap(true, Ordering::SeqCst) {
            return Reply::status(503).header("Retry-After", "1");
        }
        Reply::file(req, &served, Ranges::Honour).header("ETag", "\"v1\"")
    });
    let dir = TempDir::new("retry-after");
    let out = dir.join("out.bin");
    let outcome = cli::run(&["-n", "4", &server.url("/f"), out.to_str().unwrap()]);
    outcome.assert_code(0);
    assert!(std::fs::read(&out).unwrap() == bytes, "the file differs");
    let url = server.url("/f");
    assert_eq!(
        cli::without_summary(&outcome.stderr)
            .lines()
            .collect::<Vec<_>>(),
        [format!(
            "partfetch: HTTP status 503 Service Unavailable: {url}; \
             asking that source again in 1 s"
        )]
    );
}
