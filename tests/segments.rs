//! Segmented downloads through the library: one large resource fetched as
//! pieces over several connections, against the in-process server.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use partfetch::engine::download::SegmentedDownload;
use partfetch::engine::segments::FIRST_ANSWER;
use partfetch::engine::HTTP_PIECE as PIECE;
use partfetch::{ByteSource, Client, ErrorKind};
use support::{client, read_stream, test_data, Body, Ranges, Reply, Request, Server, Step};

/// A client with `connections` that keeps the warnings it gives (the
/// events a person should see), as sentences.
fn client_keeping_warnings(connections: usize) -> (Client, Arc<std::sync::Mutex<Vec<String>>>) {
    let warnings = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&warnings);
    let client = Client::builder()
        .no_env_proxy()
        .connections(connections)
        .on_event(move |e| {
            if e.is_warning() {
                sink.lock().unwrap().push(e.to_string());
            }
        })
        .build()
        .unwrap();
    (client, warnings)
}

fn file_server(body: Vec<u8>, ranges: Ranges) -> Server {
    Server::start(move |req: &Request| Reply::file(req, &body, ranges))
}

/// The first answer (`Range: bytes=0-N`: piece 0 and the three after it),
/// sent slowly (64 KiB per millisecond at most): a connection well under
/// the speed at which one stream is enough, so the download is split.
fn slow_first_piece(req: &Request, body: &[u8]) -> Option<Reply> {
    let range = req.header("range")?;
    let last: usize = range.strip_prefix("bytes=0-")?.parse().ok()?;
    let piece = &body[..=last.min(body.len() - 1)];
    let mut steps = Vec::new();
    for chunk in piece.chunks(64 * 1024) {
        steps.push(Step::Write(chunk.to_vec()));
        steps.push(Step::Sleep(std::time::Duration::from_millis(1)));
    }
    Some(partial(0, piece.len() - 1, body.len(), steps))
}

/// The first answer (`Range: bytes=0-N`) of `body` at the pace of a fast
/// LAN: a 3 ms wait, then all of it, piece 0 at some 300 MiB/s, between the rate at
/// which one connection keeps up and the rate at which one core's copying
/// holds it back; a busy machine that stretches the wait to 10 ms still
/// keeps it there. The rest then comes as one stream.
fn lan_first_piece(req: &Request, body: &[u8]) -> Option<Reply> {
    let range = req.header("range")?;
    let last: usize = range.strip_prefix("bytes=0-")?.parse().ok()?;
    let piece = &body[..=last.min(body.len() - 1)];
    let steps = vec![
        Step::Sleep(std::time::Duration::from_millis(3)),
        Step::Write(piece.to_vec()),
    ];
    Some(partial(0, piece.len() - 1, body.len(), steps))
}

/// A 206 for bytes `first..=last` of a resource of `total` bytes, its body
/// written by `steps` (when they write less than that, the connection is
/// closed after them).
fn partial(first: usize, last: usize, total: usize, steps: Vec<Step>) -> Reply {
    Reply::new(206)
        .header("Content-Range", &format!("bytes {first}-{last}/{total}"))
        .header("Content-Length", &(last + 1 - first).to_string())
        .body(Body::Steps(steps))
}

/// Opens `url` (with `mirrors`) as a download written at its offsets into
/// a store in memory.
fn into_memory_store(
    client: &Client,
    url: &str,
    mirrors: &[&str],
) -> (SegmentedDownload, Arc<MemoryStore>) {
    let opened = client.open_mirrored(url, mirrors).unwrap();
    let Ok(stream) = opened.into_segmented() else {
        panic!("a large file from a server that honours Range is fetched in pieces");
    };
    let store = Arc::new(MemoryStore(std::sync::Mutex::new(Vec::new())));
    (SegmentedDownload::new(stream, store.clone()), store)
}

/// A server of `body` that honours ranges and sends piece 0 slowly.
fn slow_start_server(body: Vec<u8>) -> Server {
    Server::start(move |req: &Request| {
        slow_first_piece(req, &body).unwrap_or_else(|| Reply::file(req, &body, Ranges::Honour))
    })
}

#[test]
fn a_large_file_is_fetched_over_several_connections_in_order() {
    let body = test_data(10 * PIECE as usize + 12_345, 5);
    let server = slow_start_server(body.clone());
    assert_eq!(read_stream(&client(4), &server.url("/f")).unwrap(), body);
    let requests = server.requests();
    // The first answer brings pieces 0-3; every other request, a range of
    // one piece (a worker may take one of the first answer's over).
    assert_eq!(requests[0].range(), Some(0..=FIRST_ANSWER - 1));
    let one_piece = |r: &Request| r.range().is_some_and(|r| r.end() - r.start() < PIECE);
    assert!(requests[1..].iter().all(one_piece), "{requests:?}");
    assert!(requests.len() >= 8 && requests.len() <= 11, "{requests:?}");
    // The 4 workers, plus the first connection, which the test server
    // closes after its slow piece 0 (a real server's goes back to the pool
    // for a worker to take up).
    assert!(server.connections() >= 2, "{}", server.connections());
    assert!(server.connections() <= 5, "{}", server.connections());
}

#[test]
fn one_connection_means_one_plain_request() {
    let body = test_data(6 * PIECE as usize, 6);
    let server = file_server(body.clone(), Ranges::Honour);
    assert_eq!(read_stream(&client(1), &server.url("/f")).unwrap(), body);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].header("range").is_none());
}

#[test]
fn a_server_that_ignores_range_is_read_as_one_stream() {
    let body = test_data(6 * PIECE as usize, 7);
    let server = file_server(body.clone(), Ranges::Ignore);
    assert_eq!(read_stream(&client(4), &server.url("/f")).unwrap(), body);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn small_and_empty_files_come_whole() {
    for len in [
        0,
        1,
        PIECE as usize - 1,
        PIECE as usize,
        PIECE as usize + 1,
        3 << 20,
    ] {
        let body = test_data(len, 8);
        let server = file_server(body.clone(), Ranges::Honour);
        assert_eq!(
            read_stream(&client(4), &server.url("/f")).unwrap(),
            body,
            "{len}"
        );
        assert_eq!(server.connections(), 1, "{len} bytes need one connection");
    }
}

#[test]
fn a_file_of_one_piece_or_none_costs_one_request() {
    for len in [0, 1, PIECE as usize] {
        let body = test_data(len, 8);
        let server = file_server(body.clone(), Ranges::Honour);
        let url = server.url("/f");
        assert_eq!(read_stream(&client(4), &url).unwrap(), body, "{len}");
        assert_eq!(server.requests().len(), 1, "{len} bytes");
    }
}

#[test]
fn a_piece_that_fails_for_a_moment_is_fetched_again() {
    let body = test_data(8 * PIECE as usize, 9);
    let served = body.clone();
    let failures = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&failures);
    // Piece 5: one a worker asks for, past those of the first answer.
    let sixth_piece = format!("bytes={}-", 5 * PIECE);
    let server = Server::start(move |req: &Request| {
        let is_sixth = req
            .header("range")
            .is_some_and(|r| r.starts_with(&sixth_piece));
        if is_sixth && seen.fetch_add(1, Ordering::SeqCst) < 2 {
            return Reply::status(503);
        }
        slow_first_piece(req, &served).unwrap_or_else(|| Reply::file(req, &served, Ranges::Honour))
    });
    assert_eq!(read_stream(&client(4), &server.url("/f")).unwrap(), body);
    // Failed twice, then asked again; on a busy machine an idle worker may
    // also ask for a copy of the late piece, so more asks are fine.
    let asked = failures.load(Ordering::SeqCst);
    assert!(asked >= 3, "piece 5 was asked for {asked} times");
}

#[test]
fn a_piece_that_keeps_failing_fails_the_download() {
    let body = test_data(8 * PIECE as usize, 10);
    let sixth_piece = format!("bytes={}-", 5 * PIECE);
    let server = Server::start(move |req: &Request| {
        let is_sixth = req
            .header("range")
            .is_some_and(|r| r.starts_with(&sixth_piece));
        if is_sixth {
            return Reply::status(404);
        }
        slow_first_piece(req, &body).unwrap_or_else(|| Reply::file(req, &body, Ranges::Honour))
    });
    let err = read_stream(&client(4), &server.url("/f")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn a_resource_that_changes_midway_fails_instead_of_mixing_versions() {
    let old = test_data(8 * PIECE as usize, 11);
    let new = test_data(8 * PIECE as usize, 12);
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let server = Server::start(move |req: &Request| {
        // The first answer comes from the old version; from then on the
        // server holds the new one, and honours If-Range as RFC 9110 says.
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            return slow_first_piece(req, &old)
                .expect("the first request asks for piece 0")
                .header("ETag", "\"v1\"");
        }
        let current = req.header("if-range").is_none_or(|v| v == "\"v2\"");
        let ranges = if current {
            Ranges::Honour
        } else {
            Ranges::Ignore
        };
        Reply::file(req, &new, ranges).header("ETag", "\"v2\"")
    });
    let err = read_stream(&client(4), &server.url("/f")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains("changed"), "{err}");
}

#[test]
fn a_slow_consumer_holds_the_workers_back() {
    let body = test_data(64 * PIECE as usize, 13);
    let server = slow_start_server(body.clone());
    let client = client(4);
    let mut stream = client.open(&server.url("/f")).unwrap();
    let mut got = stream.next_chunk().unwrap().unwrap().to_vec();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let asked = server.requests().len();
    // Piece 0, one window of 4 pieces ahead (one per connection), and at
    // most one copy per worker of a piece that seemed stalled.
    assert!(
        asked <= 1 + 4 + 4,
        "{asked} pieces requested ahead of the consumer"
    );
    while let Some(chunk) = stream.next_chunk().unwrap() {
        got.extend_from_slice(chunk);
    }
    assert_eq!(got, body);
}

fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/f", listener.local_addr().unwrap())
}

#[test]
fn mirrors_serve_pieces_alongside_the_first_source() {
    let body = test_data(16 * PIECE as usize, 20);
    let primary = slow_start_server(body.clone());
    let mirror_a = file_server(body.clone(), Ranges::Honour);
    let mirror_b = file_server(body.clone(), Ranges::Honour);
    let (a, b) = (mirror_a.url("/f"), mirror_b.url("/f"));
    let mut stream = client(3)
        .open_mirrored(&primary.url("/f"), &[&a, &b])
        .unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next_chunk().unwrap() {
        got.extend_from_slice(chunk);
    }
    assert_eq!(got, body);
    assert!(!mirror_a.requests().is_empty(), "mirror a served nothing");
    assert!(!mirror_b.requests().is_empty(), "mirror b served nothing");
    // A request per piece, but for the first answer's four.
    let pieces = primary.requests().len() + mirror_a.requests().len() + mirror_b.requests().len();
    assert!(pieces >= 13, "{pieces}");
}

#[test]
fn dead_failing_and_different_mirrors_are_dropped_and_the_rest_finish() {
    let body = test_data(12 * PIECE as usize, 21);
    let primary = slow_start_server(body.clone());
    let busy = Server::start(|_: &Request| Reply::status(503));
    let other_file = file_server(test_data(12 * PIECE as usize + 1, 22), Ranges::Honour);
    let dead = dead_url();
    let mirrors = [dead.as_str(), &busy.url("/f"), &other_file.url("/f")];
    let (client, warnings) = client_keeping_warnings(4);
    let mut stream = client.open_mirrored(&primary.url("/f"), &mirrors).unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next_chunk().unwrap() {
        got.extend_from_slice(chunk);
    }
    assert_eq!(got, body);
    // The different file is dropped on its first answer: at most the
    // workers that picked it before then asked it anything.
    assert!(
        other_file.requests().len() <= 4,
        "{}",
        other_file.requests().len()
    );
    // Each source that answered and was given up is named in a warning:
    // a mirror of another file must not vanish unseen.
    let warnings = warnings.lock().unwrap();
    let named = |url: &str| {
        warnings
            .iter()
            .any(|w| w.contains(url) && w.ends_with("going on without that source"))
    };
    assert!(named(&other_file.url("/f")), "{warnings:?}");
    // Once each, however many of its connections failed.
    for url in [other_file.url("/f"), busy.url("/f"), dead.clone()] {
        let told = warnings.iter().filter(|w| w.contains(&url)).count();
        assert!(told <= 1, "{url} told {told} times: {warnings:?}");
    }
}

#[test]
fn when_the_first_source_does_not_answer_a_mirror_takes_its_place() {
    let body = test_data(6 * PIECE as usize, 23);
    let mirror = slow_start_server(body.clone());
    let dead = dead_url();
    let mut stream = client(2)
        .open_mirrored(&dead, &[&mirror.url("/f")])
        .unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next_chunk().unwrap() {
        got.extend_from_slice(chunk);
    }
    assert_eq!(got, body);
}

#[test]
fn when_every_source_fails_the_error_lists_each() {
    let body = test_data(8 * PIECE as usize, 24);
    let served = body.clone();
    // Piece 0 comes; every later piece is refused everywhere.
    let primary = Server::start(move |req: &Request| {
        slow_first_piece(req, &served).unwrap_or_else(|| Reply::status(404))
    });
    let mirror = Server::start(|_: &Request| Reply::status(410));
    let err = read_all_mirrored(&client(2), &primary.url("/f"), &[&mirror.url("/f")]).unwrap_err();
    assert!(err.to_string().contains("all 2 sources failed"), "{err}");
    assert_eq!(err.causes().len(), 2, "{err}");
}

fn read_all_mirrored(client: &Client, url: &str, mirrors: &[&str]) -> partfetch::Result<Vec<u8>> {
    let mut stream = client.open_mirrored(url, mirrors)?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next_chunk()? {
        out.extend_from_slice(chunk);
    }
    Ok(out)
}

#[test]
fn retry_after_is_honoured_before_a_busy_source_is_asked_again() {
    let body = test_data(6 * PIECE as usize, 25);
    let served = body.clone();
    let asked = Arc::new(std::sync::Mutex::new(Vec::<std::time::Instant>::new()));
    let log = Arc::clone(&asked);
    // The first piece after those the first answer brings.
    let second_piece = format!("bytes={FIRST_ANSWER}-");
    let server = Server::start(move |req: &Request| {
        let is_second = req
            .header("range")
            .is_some_and(|r| r.starts_with(&second_piece));
        if is_second {
            let mut log = log.lock().unwrap();
            log.push(std::time::Instant::now());
            if log.len() == 1 {
                return Reply::status(503).header("Retry-After", "1");
            }
        }
        slow_first_piece(req, &served).unwrap_or_else(|| Reply::file(req, &served, Ranges::Honour))
    });
    assert_eq!(read_stream(&client(2), &server.url("/f")).unwrap(), body);
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 2);
    // A lower bound: the second request waited for what the server asked.
    assert!(asked[1] - asked[0] >= std::time::Duration::from_millis(950));
}

/// A manifest server whose parts `/a` and `/b` are `body` (the first piece
/// of `/a` sent slowly, so the part is split); `/b` serves `b_body`.
fn two_alternative_part(body: Vec<u8>, b_body: Vec<u8>, manifest: String) -> Server {
    Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(manifest.clone().into_bytes()),
        "/a" => {
            slow_first_piece(req, &body).unwrap_or_else(|| Reply::file(req, &body, Ranges::Honour))
        }
        "/b" => Reply::file(req, &b_body, Ranges::Honour),
        _ => Reply::status(404),
    })
}

#[test]
fn the_alternatives_of_a_large_part_serve_its_pieces_at_once() {
    let body = test_data(8 * PIECE as usize, 30);
    let server = two_alternative_part(body.clone(), body.clone(), "a\nb\n".to_owned());
    let got = read_stream(&client(4), &server.url("/m.parts")).unwrap();
    assert_eq!(got, body);
    assert!(
        server.count("/a") >= 1 && server.count("/b") >= 1,
        "both served pieces"
    );
}

#[test]
fn a_mirror_with_wrong_bytes_is_caught_by_the_digest_and_the_part_fetched_again() {
    let body = test_data(8 * PIECE as usize, 31);
    // Same length, other bytes: whichever pieces `/b` serves are wrong.
    let corrupt = test_data(8 * PIECE as usize, 32);
    let digest = partfetch::sha256::to_hex(&partfetch::sha256::digest(&body));
    let manifest = format!("(sha256={digest})\na\nb\n");
    let server = two_alternative_part(body.clone(), corrupt, manifest);
    let got = read_stream(&client(4), &server.url("/m.parts")).unwrap();
    assert_eq!(got, body, "the corrupt copy never reaches the consumer");
    // The part was fetched again from the first alternative alone.
    let plain_a = server
        .requests()
        .iter()
        .filter(|r| r.path() == "/a" && r.header("range").is_none())
        .count();
    assert_eq!(plain_a, 1);
}

#[test]
fn a_stream_that_slows_down_after_a_fast_start_is_handed_to_the_workers() {
    // The first answer comes at a LAN's speed (one stream looks fast
    // enough), the rest after it as one slow stream: it is soon cut at a
    // piece boundary and the pieces after it are fetched in parallel.
    let body = test_data(24 * PIECE as usize, 40);
    let served = body.clone();
    let rest_from = format!("bytes={FIRST_ANSWER}-");
    let server = Server::start(move |req: &Request| {
        let is_rest = req.header("range") == Some(rest_from.as_str());
        if let Some(reply) = lan_first_piece(req, &served) {
            return reply;
        }
        if !is_rest {
            return Reply::file(req, &served, Ranges::Honour);
        }
        let rest = &served[FIRST_ANSWER as usize..];
        let steps = rest
            .chunks(64 * 1024)
            .flat_map(|c| {
                [
                    Step::Write(c.to_vec()),
                    Step::Sleep(std::time::Duration::from_millis(20)),
                ]
            })
            .collect();
        partial(FIRST_ANSWER as usize, served.len() - 1, served.len(), steps)
    });
    assert_eq!(read_stream(&client(4), &server.url("/f")).unwrap(), body);
    let pieces = server
        .requests()
        .iter()
        .filter(|r| r.header("range").is_some_and(|r| !r.ends_with('-')))
        .count();
    assert!(
        pieces >= 10,
        "only {pieces} piece requests: the slow stream was kept"
    );
}

#[test]
fn a_piece_stalled_on_one_source_is_fetched_again_from_another() {
    // From piece 4 on, the first source sends headers and a little of each
    // piece, then nothing until the test ends (or 30 s, then wrong bytes).
    // The mirror is slow, so much slower than the first source's first
    // pieces that it gets no new pieces: both workers end up waiting on
    // stalled pieces of the first source, and none is idle to fetch a copy.
    // Each gives its answer up and the pieces come from the mirror; a
    // download that waited the stalls out would have the wrong bytes.
    let body = test_data(10 * PIECE as usize, 41);
    let served = body.clone();
    let release = Arc::new(AtomicBool::new(false));
    let stall_until = Arc::clone(&release);
    let stalling = Server::start(move |req: &Request| {
        if req.range_start().unwrap_or(0) < 4 * PIECE {
            return slow_first_piece(req, &served)
                .unwrap_or_else(|| Reply::file(req, &served, Ranges::Honour));
        }
        stalled_reply(req, &served, 1000, &stall_until)
    });
    let mirrored = body.clone();
    let mirror = Server::start(move |req: &Request| {
        Reply::file(req, &mirrored, Ranges::Honour).delay(std::time::Duration::from_millis(300))
    });
    let got = read_all_mirrored(&client(2), &stalling.url("/f"), &[&mirror.url("/f")]);
    release.store(true, Ordering::SeqCst);
    assert!(got.unwrap() == body, "the stream differs");
    let stalled: Vec<u64> = stalling
        .requests()
        .iter()
        .filter_map(Request::range_start)
        .filter(|&start| start >= 4 * PIECE)
        .collect();
    let from_mirror: Vec<u64> = mirror
        .requests()
        .iter()
        .filter_map(Request::range_start)
        .collect();
    assert!(
        !stalled.is_empty(),
        "the first source was never asked a stalling piece"
    );
    for start in stalled {
        assert!(
            from_mirror.contains(&start),
            "the piece at {start} stalled and was not fetched again"
        );
    }
}

#[test]
fn a_connection_stalled_while_the_others_go_on_is_replaced() {
    // One source. The first request for piece 3 or later sends a little,
    // then nothing until the test ends (or 30 s, then wrong bytes); every
    // other request is answered at once. The other connections go on
    // bringing pieces, so the stalled one is given up and its piece asked
    // for again on a new connection, rather than waited for.
    let body = test_data(12 * PIECE as usize, 47);
    let served = body.clone();
    let release = Arc::new(AtomicBool::new(false));
    let stall_until = Arc::clone(&release);
    let stalled = Arc::new(std::sync::Mutex::new(None));
    let stalled_at = Arc::clone(&stalled);
    let server = Server::start(move |req: &Request| {
        if let Some(reply) = slow_first_piece(req, &served) {
            return reply;
        }
        let mut stalled = stalled_at.lock().unwrap();
        match req.range() {
            Some(range) if stalled.is_none() && *range.start() >= 3 * PIECE => {
                *stalled = Some(*range.start());
                stalled_reply(req, &served, 1000, &stall_until)
            }
            _ => Reply::file(req, &served, Ranges::Honour),
        }
    });
    let got = read_all_mirrored(&client(3), &server.url("/f"), &[]);
    release.store(true, Ordering::SeqCst);
    assert!(got.unwrap() == body, "the stream differs");
    let stalled = stalled.lock().unwrap().expect("no request stalled");
    let asked = server
        .requests()
        .iter()
        .filter(|req| req.range_start() == Some(stalled))
        .count();
    assert_eq!(
        asked, 2,
        "the stalled piece at {stalled} was asked for again"
    );
}

/// A server of `body` whose answer to the first request that `stalls`
/// picks sends `sent` bytes, then nothing until `release` is set (or 30 s,
/// then wrong bytes: a download that waited for them would not be the
/// file). Every other request is answered at once, a first piece at a
/// LAN's pace ([`lan_first_piece`]).
fn stalling_once(
    body: &[u8],
    sent: usize,
    release: &Arc<AtomicBool>,
    stalls: fn(&Request) -> bool,
) -> Server {
    let served = body.to_vec();
    let stall_until = Arc::clone(release);
    let stalled = AtomicBool::new(false);
    Server::start(move |req: &Request| {
        if !stalls(req) || stalled.swap(true, Ordering::SeqCst) {
            if let Some(reply) = lan_first_piece(req, &served) {
                return reply;
            }
            return Reply::file(req, &served, Ranges::Honour);
        }
        stalled_reply(req, &served, sent, &stall_until)
    })
}

/// The 206 for what `req` asks of `served` (all of it without a range),
/// sending its first `sent` bytes and then stalling (see [`then_stalled`]).
fn stalled_reply(req: &Request, served: &[u8], sent: usize, release: &Arc<AtomicBool>) -> Reply {
    let first = req.range_start().unwrap_or(0) as usize;
    let last = req.range().map_or(served.len() - 1, |r| *r.end() as usize);
    let lead = vec![Step::Write(served[first..first + sent].to_vec())];
    then_stalled(served, first..=last, lead, sent, release)
}

/// A 206 for bytes `range` of `served` whose `lead` steps send the first
/// `sent` of them; then nothing until `release` is set (or 30 s, then
/// wrong bytes: a download that waited for them would not be the file).
fn then_stalled(
    served: &[u8],
    range: std::ops::RangeInclusive<usize>,
    mut lead: Vec<Step>,
    sent: usize,
    release: &Arc<AtomicBool>,
) -> Reply {
    let (first, last) = (*range.start(), *range.end());
    lead.push(Step::Until(
        Arc::clone(release),
        std::time::Duration::from_secs(30),
    ));
    lead.push(Step::Write(vec![0xEE; last + 1 - first - sent]));
    partial(first, last, served.len(), lead)
}

#[test]
fn the_rest_as_one_stream_stalled_is_taken_over_by_the_workers() {
    // The first answer comes at a LAN's pace, so the rest after it is
    // asked for as one stream; it stops 1000 bytes into piece 4. The
    // workers fetch from piece 4 on, and the stream goes on from where it
    // stopped: no byte twice, none missing.
    let body = test_data(12 * PIECE as usize, 48);
    let release = Arc::new(AtomicBool::new(false));
    let rest = |req: &Request| req.header("range") == Some(&format!("bytes={FIRST_ANSWER}-")[..]);
    let server = stalling_once(&body, 1000, &release, rest);
    let got = read_all_mirrored(&client(3), &server.url("/f"), &[]);
    release.store(true, Ordering::SeqCst);
    assert!(got.unwrap() == body, "the stream differs");
    let requests = server.requests();
    assert!(
        requests.iter().any(rest),
        "the rest was not asked for as one stream: {:?}",
        requests
            .iter()
            .map(|r| r.header("range"))
            .collect::<Vec<_>>()
    );
    assert!(
        requests
            .iter()
            .any(|req| req.range_start() == Some(4 * PIECE)),
        "piece 4, where the stream stopped, was not asked for again"
    );
}

#[test]
fn written_at_their_offsets_a_first_piece_stalled_is_fetched_again() {
    // The answer for piece 0 stops halfway through it: the workers fetch
    // it, and the rest, instead of waiting for the stalled answer.
    let body = test_data(8 * PIECE as usize, 49);
    let release = Arc::new(AtomicBool::new(false));
    let first = |req: &Request| req.range_start() == Some(0);
    let server = stalling_once(&body, PIECE as usize / 2 + 7, &release, first);
    let (mut download, store) = into_memory_store(&client(3), &server.url("/f"), &[]);
    let finished = (|| {
        while download.advance()? {}
        Ok::<_, partfetch::Error>(())
    })();
    release.store(true, Ordering::SeqCst);
    finished.unwrap();
    assert!(*store.0.lock().unwrap() == body, "the file differs");
    let asked_for_piece_0 = server
        .requests()
        .iter()
        .filter(|req| req.range_start() == Some(0))
        .count();
    assert_eq!(asked_for_piece_0, 2, "piece 0 was asked for again");
}

#[test]
fn a_first_piece_that_came_slowly_then_stalled_is_fetched_again() {
    // Piece 0 comes slowly from the start, so the workers start on the
    // pieces after it while it streams; then it stops partway. A worker
    // fetches it again, and the stream goes on from where it stopped.
    let body = test_data(8 * PIECE as usize, 50);
    let served = body.clone();
    let release = Arc::new(AtomicBool::new(false));
    let stall_until = Arc::clone(&release);
    let stalled = AtomicBool::new(false);
    let server = Server::start(move |req: &Request| {
        if req.range_start() != Some(0) || stalled.swap(true, Ordering::SeqCst) {
            return Reply::file(req, &served, Ranges::Honour);
        }
        let sent = 600 * 1024 + 7;
        let mut lead = Vec::new();
        for chunk in served[..sent].chunks(64 * 1024) {
            lead.push(Step::Write(chunk.to_vec()));
            lead.push(Step::Sleep(std::time::Duration::from_millis(10)));
        }
        let last = req.range().map_or(served.len() - 1, |r| *r.end() as usize);
        then_stalled(&served, 0..=last, lead, sent, &stall_until)
    });
    let got = read_all_mirrored(&client(3), &server.url("/f"), &[]);
    release.store(true, Ordering::SeqCst);
    assert!(got.unwrap() == body, "the stream differs");
    let asked_for_piece_0 = server
        .requests()
        .iter()
        .filter(|req| req.range_start() == Some(0))
        .count();
    assert_eq!(asked_for_piece_0, 2, "piece 0 was asked for again");
}

/// A store in memory, for downloads written at their offsets.
struct MemoryStore(std::sync::Mutex<Vec<u8>>);

impl partfetch::pieces::PieceStore for MemoryStore {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> partfetch::Result<()> {
        let mut all = self.0.lock().unwrap();
        let end = offset as usize + bytes.len();
        if all.len() < end {
            all.resize(end, 0);
        }
        all[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
}

#[test]
fn written_at_their_offsets_the_pieces_after_a_slow_one_do_not_wait_for_it() {
    // Every answer that carries piece 5 is held until the test has seen
    // the others stored (20 s at most); the others come at once. Into a
    // store, the pieces of the other answers are all written while piece
    // 5 is still on its way (a stream would hold them in its reorder
    // window instead, and the hold would run out first). An order, not a
    // time: a busy machine may take long over the others.
    let body = test_data(24 * PIECE as usize, 41);
    let served = body.clone();
    let slow = Arc::new(std::sync::Mutex::new(None));
    let slow_range = Arc::clone(&slow);
    let release = Arc::new(AtomicBool::new(false));
    let held = Arc::clone(&release);
    let server = Server::start(move |req: &Request| {
        if let Some(reply) = slow_first_piece(req, &served) {
            return reply;
        }
        let reply = Reply::file(req, &served, Ranges::Honour);
        match req.range() {
            Some(range) if range.contains(&(5 * PIECE)) => {
                *slow_range.lock().unwrap() = Some(range);
                let started = std::time::Instant::now();
                while !held.load(Ordering::SeqCst) && started.elapsed().as_secs() < 20 {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                reply
            }
            _ => reply,
        }
    });
    let (mut download, store) = into_memory_store(&client(4), &server.url("/f"), &[]);
    let mut all_but_the_slow_answer = false;
    while download.advance().unwrap() {
        let have = download.have();
        if let Some(range) = slow.lock().unwrap().clone() {
            let in_slow_answer = |index: u64| range.contains(&(index * PIECE));
            let others_stored = (0..24)
                .filter(|&index| !in_slow_answer(index))
                .all(|index| have.contains(index));
            if others_stored && !have.contains(5) {
                all_but_the_slow_answer = true;
                release.store(true, Ordering::SeqCst);
            }
        }
        assert!(download.contiguous() <= download.stored_bytes());
    }
    release.store(true, Ordering::SeqCst);
    assert!(
        all_but_the_slow_answer,
        "the pieces after piece 5 waited for it"
    );
    assert_eq!(download.contiguous(), body.len() as u64);
    assert_eq!(*store.0.lock().unwrap(), body);
}

#[test]
fn written_at_their_offsets_pieces_come_several_to_a_request() {
    // A request costs a round trip, and some servers hold back the end of
    // each answer: a download into a store asks for runs of pieces. (Runs
    // may overlap: a worker that runs out takes the back half of another's
    // run, which then stops where that half begins.)
    let body = test_data(64 * PIECE as usize, 43);
    let server = slow_start_server(body.clone());
    let (mut download, store) = into_memory_store(&client(4), &server.url("/f"), &[]);
    while download.advance().unwrap() {}
    assert_eq!(*store.0.lock().unwrap(), body);
    let mut ranges: Vec<_> = server
        .requests()
        .iter()
        .filter_map(Request::range)
        .collect();
    assert!(
        ranges.len() <= 64 / 2,
        "{} requests for 64 pieces: {ranges:?}",
        ranges.len()
    );
    ranges.sort_by_key(|range| *range.start());
    let mut covered = 0;
    for range in &ranges {
        assert!(*range.start() <= covered, "never asked for: {ranges:?}");
        covered = covered.max(range.end() + 1);
    }
    assert_eq!(covered, body.len() as u64);
}

#[test]
fn written_at_their_offsets_a_slow_run_is_shared_with_the_workers_that_run_out() {
    // The answer to the request that starts at piece 4 (the first after
    // those of the first answer) sends one piece every 300 ms; the others
    // come at once. The workers that run out take
    // the back half of what that run has not started, and its answer is
    // dropped where their pieces begin.
    let body = test_data(16 * PIECE as usize, 45);
    let served = body.clone();
    let server = Server::start(move |req: &Request| {
        if let Some(reply) = slow_first_piece(req, &served) {
            return reply;
        }
        match req.range() {
            Some(range) if *range.start() == FIRST_ANSWER => {
                let (first, last) = (*range.start() as usize, *range.end() as usize);
                let mut steps = Vec::new();
                for piece in served[first..=last].chunks(PIECE as usize) {
                    steps.push(Step::Write(piece.to_vec()));
                    steps.push(Step::Sleep(std::time::Duration::from_millis(300)));
                }
                partial(first, last, served.len(), steps)
            }
            _ => Reply::file(req, &served, Ranges::Honour),
        }
    });
    let (mut download, store) = into_memory_store(&client(4), &server.url("/f"), &[]);
    while download.advance().unwrap() {}
    assert_eq!(*store.0.lock().unwrap(), body);
    let ranges: Vec<_> = server
        .requests()
        .iter()
        .filter_map(Request::range)
        .collect();
    let slow = ranges
        .iter()
        .find(|range| *range.start() == FIRST_ANSWER)
        .expect("a run starting at piece 4");
    assert!(
        *slow.end() >= FIRST_ANSWER + 2 * PIECE,
        "the run from piece 1 asked for {slow:?}: too short to share"
    );
    assert!(
        ranges
            .iter()
            .any(|range| slow.contains(range.start()) && range.start() > slow.start()),
        "no worker took over the slow run's last pieces: {ranges:?}"
    );
}

#[test]
fn written_at_their_offsets_a_slow_first_answer_is_shared_with_the_workers() {
    // The first answer brings piece 0 at a pace that starts the workers,
    // then one piece every 300 ms. The workers, done with everything
    // else, take the first answer's pieces it has not brought yet, rather
    // than wait for them.
    let body = test_data(16 * PIECE as usize, 46);
    let served = body.clone();
    let server = Server::start(move |req: &Request| {
        if req.range_start() != Some(0) {
            return Reply::file(req, &served, Ranges::Honour);
        }
        let last = req.range().map_or(served.len() - 1, |r| *r.end() as usize);
        let (piece_0, later) = served[..=last].split_at(PIECE as usize);
        let mut steps = Vec::new();
        for chunk in piece_0.chunks(64 * 1024) {
            steps.push(Step::Write(chunk.to_vec()));
            steps.push(Step::Sleep(std::time::Duration::from_millis(1)));
        }
        for piece in later.chunks(PIECE as usize) {
            steps.push(Step::Sleep(std::time::Duration::from_millis(300)));
            steps.push(Step::Write(piece.to_vec()));
        }
        partial(0, last, served.len(), steps)
    });
    let (mut download, store) = into_memory_store(&client(4), &server.url("/f"), &[]);
    while download.advance().unwrap() {}
    assert_eq!(*store.0.lock().unwrap(), body);
    let starts: Vec<u64> = server
        .requests()
        .iter()
        .filter_map(Request::range_start)
        .collect();
    assert_eq!(starts[0], 0);
    assert!(
        starts.iter().any(|&s| s > PIECE && s < FIRST_ANSWER),
        "no worker took any of the first answer's later pieces: {starts:?}"
    );
}

/// An answer as nginx's `limit_rate` sends it: the first 2 MiB of each
/// request at once, the rest paced, here at 2.5 MiB/s (64 KiB every
/// 25 ms), slow enough that a busy machine cannot blur the difference.
fn capped_per_request(req: &Request, body: &[u8]) -> Reply {
    let Some(first) = req.range_start() else {
        return Reply::file(req, body, Ranges::Honour);
    };
    let first = first as usize;
    let last = req
        .range()
        .map_or(body.len() - 1, |range| *range.end() as usize);
    let asked = &body[first..=last];
    let (burst, rest) = asked.split_at(asked.len().min(2 * PIECE as usize));
    let mut steps = vec![Step::Write(burst.to_vec())];
    for chunk in rest.chunks(64 * 1024) {
        steps.push(Step::Sleep(std::time::Duration::from_millis(25)));
        steps.push(Step::Write(chunk.to_vec()));
    }
    partial(first, last, body.len(), steps)
}

/// Asserts that `server` was asked for at least half of its `pieces` one
/// piece a request.
fn assert_half_asked_a_piece_at_a_time(server: &Server, pieces: usize) {
    let ranges: Vec<_> = server
        .requests()
        .iter()
        .filter_map(Request::range)
        .collect();
    let singles = ranges
        .iter()
        .filter(|range| range.end() + 1 - range.start() == PIECE)
        .count();
    assert!(
        singles >= pieces / 2,
        "{singles} requests of one piece for {pieces} pieces: {ranges:?}"
    );
}

#[test]
fn written_at_their_offsets_a_server_that_caps_each_request_gets_a_request_per_piece() {
    // The first piece comes at once, as from nginx's limit_rate, so one
    // stream looks fast enough until it slows down past its first MiBs.
    // Long runs would go at the cap; a request per piece stays within
    // each request's allowance.
    let body = test_data(80 * PIECE as usize, 46);
    let served = body.clone();
    let server = Server::start(move |req: &Request| capped_per_request(req, &served));
    let (mut download, store) = into_memory_store(&client(4), &server.url("/f"), &[]);
    while download.advance().unwrap() {}
    assert_eq!(*store.0.lock().unwrap(), body);
    assert_half_asked_a_piece_at_a_time(&server, 80);
}

#[test]
fn written_at_their_offsets_runs_that_slow_down_after_their_first_pieces_become_a_piece_each() {
    // Piece 0 comes slowly, so the workers start at once with long runs;
    // each run's answer slows down after its first 2 MiB, which shows the
    // cap: the rest of the runs go back and come a piece a request.
    let body = test_data(80 * PIECE as usize, 47);
    let served = body.clone();
    let server = Server::start(move |req: &Request| {
        slow_first_piece(req, &served).unwrap_or_else(|| capped_per_request(req, &served))
    });
    let (mut download, store) = into_memory_store(&client(4), &server.url("/f"), &[]);
    while download.advance().unwrap() {}
    assert_eq!(*store.0.lock().unwrap(), body);
    assert_half_asked_a_piece_at_a_time(&server, 80);
}

#[test]
fn written_at_their_offsets_a_run_stalled_midway_is_finished_by_the_others() {
    // The first request for three pieces or more to the first source sends
    // its first piece and a little of the next, then nothing until the
    // download is over (or 30 s, then wrong bytes): the pieces it has not
    // sent are taken over (the stalled one copied from the mirror, the rest
    // taken from its run) rather than waited for.
    let body = test_data(24 * PIECE as usize, 46);
    let served = body.clone();
    let release = Arc::new(AtomicBool::new(false));
    let stall_until = Arc::clone(&release);
    let stalled = Arc::new(std::sync::Mutex::new(None));
    let stalled_range = Arc::clone(&stalled);
    let stalling = Server::start(move |req: &Request| {
        if let Some(reply) = slow_first_piece(req, &served) {
            return reply;
        }
        let mut stalled = stalled_range.lock().unwrap();
        match req.range() {
            Some(range) if stalled.is_none() && range.end() - range.start() >= 2 * PIECE => {
                *stalled = Some(range);
                stalled_reply(req, &served, PIECE as usize + 1000, &stall_until)
            }
            _ => Reply::file(req, &served, Ranges::Honour),
        }
    });
    let mirrored = body.clone();
    let mirror = Server::start(move |req: &Request| {
        Reply::file(req, &mirrored, Ranges::Honour).delay(std::time::Duration::from_millis(20))
    });
    let mirror_url = mirror.url("/f");
    let (mut download, store) = into_memory_store(&client(3), &stalling.url("/f"), &[&mirror_url]);
    while download.advance().unwrap() {}
    assert!(*store.0.lock().unwrap() == body, "the file differs");
    release.store(true, Ordering::SeqCst);
    let stalled = stalled
        .lock()
        .unwrap()
        .clone()
        .expect("no run of three pieces or more");
    let others: Vec<_> = stalling
        .requests()
        .iter()
        .chain(mirror.requests().iter())
        .filter_map(Request::range)
        .filter(|range| *range != stalled)
        .collect();
    let cut = stalled.start() + PIECE;
    for index in cut / PIECE..=stalled.end() / PIECE {
        assert!(
            others.iter().any(|range| range.contains(&(index * PIECE))),
            "piece {index}, not sent by the stalled answer {stalled:?}, was never asked again: {others:?}"
        );
    }
}

#[test]
fn written_at_their_offsets_a_request_cut_midway_loses_no_piece() {
    // The first request for more than two pieces after piece 0 is cut in
    // the middle of its second piece: its first piece is kept, and the
    // rest of that request's pieces are asked for again.
    let body = test_data(32 * PIECE as usize, 44);
    let served = body.clone();
    let cut = Arc::new(std::sync::Mutex::new(None));
    let cut_range = Arc::clone(&cut);
    let server = Server::start(move |req: &Request| {
        if let Some(reply) = slow_first_piece(req, &served) {
            return reply;
        }
        let mut cut = cut_range.lock().unwrap();
        match req.range() {
            Some(range) if cut.is_none() && range.end() - range.start() >= 2 * PIECE => {
                let (first, last) = (*range.start() as usize, *range.end() as usize);
                *cut = Some(range);
                let sent = served[first..first + PIECE as usize * 3 / 2].to_vec();
                partial(first, last, served.len(), vec![Step::Write(sent)])
            }
            _ => Reply::file(req, &served, Ranges::Honour),
        }
    });
    let (mut download, store) = into_memory_store(&client(4), &server.url("/f"), &[]);
    while download.advance().unwrap() {}
    assert_eq!(*store.0.lock().unwrap(), body);
    let cut = cut
        .lock()
        .unwrap()
        .clone()
        .expect("no request asked for several pieces");
    let starts: Vec<u64> = server
        .requests()
        .iter()
        .filter_map(Request::range_start)
        .collect();
    let kept = *cut.start();
    assert_eq!(
        starts.iter().filter(|&&start| start == kept).count(),
        1,
        "the piece that came whole before the cut was asked for again: {starts:?}"
    );
    assert!(
        starts.contains(&(kept + PIECE)),
        "the piece cut midway was not asked for again: {starts:?}"
    );
}

#[test]
fn a_download_never_has_more_connections_to_its_host_than_the_cap() {
    // Eight connections asked for, three allowed: piece 0 comes slowly, so
    // the workers start while it still arrives, and every piece takes a
    // while, so that connections would pile up if the cap were not kept.
    let body = test_data(12 * PIECE as usize, 42);
    let served = body.clone();
    let server = Server::start(move |req: &Request| {
        slow_first_piece(req, &served).unwrap_or_else(|| {
            Reply::file(req, &served, Ranges::Honour).delay(std::time::Duration::from_millis(30))
        })
    });
    let client = Client::builder()
        .no_env_proxy()
        .connections(8)
        .max_per_host(3)
        .build()
        .unwrap();
    assert_eq!(read_stream(&client, &server.url("/f")).unwrap(), body);
    assert_eq!(server.most_open_connections(), 3, "three at once, no more");
}

#[test]
fn the_parts_of_a_manifest_fetched_at_once_keep_to_the_cap_of_their_host() {
    // Twelve parts on one host, each answering after 50 ms: the window
    // would fetch nine at once, the cap allows four.
    let parts: Vec<Vec<u8>> = (0..12).map(|i| test_data(50_000, 60 + i)).collect();
    let manifest: String = (0..12).map(|i| format!("/p{i}\n--\n")).collect();
    let served = parts.clone();
    let server = Server::start(move |req: &Request| {
        if req.path() == "/m.parts" {
            return Reply::ok(manifest.clone());
        }
        let index: usize = req.path()[2..].parse().unwrap();
        Reply::file(req, &served[index], Ranges::Honour).delay(std::time::Duration::from_millis(50))
    });
    let client = Client::builder()
        .no_env_proxy()
        .max_per_host(4)
        .build()
        .unwrap();
    let got = read_stream(&client, &server.url("/m.parts")).unwrap();
    assert_eq!(got, parts.concat());
    assert!(
        server.most_open_connections() <= 4,
        "{} connections at once",
        server.most_open_connections()
    );
    assert!(server.most_open_connections() > 1, "the window still works");
}

/// A 206 to the first piece's request that is not the range asked for.
fn odd_first_answer(kind: &str, body: &[u8]) -> Reply {
    let total = body.len();
    let (range, bytes) = match kind {
        // Less than asked: legal, and some servers cap ranges.
        "short" => (Some(format!("bytes 0-524287/{total}")), &body[..524_288]),
        "shifted" => (
            Some(format!("bytes 7-1048582/{total}")),
            &body[7..1_048_583],
        ),
        "unknown length" => (Some("bytes 0-1048575/*".to_string()), &body[..1_048_576]),
        "no range" => (None, &body[..1_048_576]),
        _ => unreachable!(),
    };
    let reply = Reply::new(206).body(Body::Sized(bytes.to_vec()));
    match range {
        Some(range) => reply.header("Content-Range", &range),
        None => reply,
    }
}

#[test]
fn a_first_answer_of_another_range_than_asked_is_not_taken_for_piece_0_nor_the_whole() {
    for kind in ["short", "shifted", "unknown length", "no range"] {
        let body = test_data(8 * PIECE as usize, 40);
        let served = body.clone();
        let server = Server::start(move |req: &Request| {
            match req.header("range") {
                // Every ranged request gets the odd answer; only a plain
                // GET gets the file.
                Some(_) => odd_first_answer(kind, &served),
                None => Reply::ok(served.clone()),
            }
        });
        let got = read_stream(&client(4), &server.url("/f")).unwrap();
        assert!(got == body, "{kind}: {} bytes, not the file", got.len());
    }
}

#[test]
fn a_first_request_that_fails_for_a_moment_is_sent_again() {
    for connections in [1, 4] {
        let body = test_data(6 * PIECE as usize, 41);
        let served = body.clone();
        let failures = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&failures);
        let server = Server::start(move |req: &Request| {
            if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                return Reply::status(503).header("Retry-After", "0");
            }
            Reply::file(req, &served, Ranges::Honour)
        });
        let got = read_stream(&client(connections), &server.url("/f")).unwrap();
        assert!(got == body, "-n {connections}");
        assert!(failures.load(Ordering::SeqCst) >= 3, "-n {connections}");
    }
    // A failure that will not pass is not asked again.
    let server = Server::start(|_: &Request| Reply::status(404));
    let err = read_stream(&client(4), &server.url("/f")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_streamed_response_cut_midway_is_continued_from_where_it_stopped() {
    // Cut inside piece 0, inside the first answer after it, and inside the
    // one stream that follows it on a fast connection.
    for cut_at in [
        300_000usize,
        3 * PIECE as usize + 12_345,
        5 * PIECE as usize + 12_345,
    ] {
        let body = test_data(6 * PIECE as usize, 42);
        let served = body.clone();
        let cuts = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&cuts);
        let server = Server::start(move |req: &Request| {
            let total = served.len();
            let start = req.range_start().unwrap_or(0) as usize;
            let last = match req.header("range").and_then(|r| r.split_once('-')) {
                Some((_, last)) if !last.is_empty() => last.parse().unwrap(),
                _ => total - 1,
            };
            // The first response that covers the cut ends there.
            if start < cut_at && last >= cut_at && seen.fetch_add(1, Ordering::SeqCst) == 0 {
                let head = match req.header("range") {
                    Some(_) => Reply::new(206)
                        .header("Content-Range", &format!("bytes {start}-{last}/{total}")),
                    None => Reply::new(200),
                };
                return head
                    .header("Content-Length", &(last - start + 1).to_string())
                    .body(Body::Steps(vec![Step::Write(
                        served[start..cut_at].to_vec(),
                    )]));
            }
            Reply::file(req, &served, Ranges::Honour)
        });
        let got = read_stream(&client(4), &server.url("/f")).unwrap();
        assert!(got == body, "cut at {cut_at}: {} bytes", got.len());
        // The request after the cut asks for the rest from the cut on. (On
        // a busy machine piece 0 may arrive too slowly for one stream to
        // carry the rest; the workers then fetch the piece with the cut
        // again, from its start.)
        let asked: Vec<u64> = server
            .requests()
            .iter()
            .filter_map(Request::range_start)
            .collect();
        let cut_piece_start = cut_at as u64 / PIECE * PIECE;
        let from_cut = asked.contains(&(cut_at as u64));
        let piece_again = asked[1..].contains(&cut_piece_start);
        assert!(from_cut || piece_again, "cut at {cut_at}: {asked:?}");
    }
}

#[test]
fn a_mirror_without_an_etag_is_checked_by_its_modification_time() {
    let body = test_data(8 * PIECE as usize, 43);
    let other = test_data(8 * PIECE as usize, 44);
    let primary_body = body.clone();
    let primary = Server::start(move |req: &Request| {
        slow_first_piece(req, &primary_body)
            .unwrap_or_else(|| Reply::file(req, &primary_body, Ranges::Honour))
            .header("ETag", "\"v1\"")
            .header("Last-Modified", "Sun, 29 Nov 2026 10:00:00 GMT")
    });
    // The same length, no ETag, another modification time: another file.
    let different = Server::start(move |req: &Request| {
        Reply::file(req, &other, Ranges::Honour)
            .header("Last-Modified", "Sun, 29 Nov 2026 11:00:00 GMT")
    });
    let (client, warnings) = client_keeping_warnings(4);
    let got = read_all_mirrored(&client, &primary.url("/f"), &[&different.url("/f")]).unwrap();
    assert!(got == body, "bytes of the other file were mixed in");
    // The mirror was asked, and its answer refused for its date alone
    // (the length is the same): not merely left unused.
    assert!(!different.requests().is_empty(), "the mirror was not asked");
    let warnings = warnings.lock().unwrap();
    let told: Vec<&String> = warnings
        .iter()
        .filter(|w| {
            w.contains(&different.url("/f"))
                && w.contains("Last-Modified (Sun, 29 Nov 2026 11:00:00 GMT) differs")
        })
        .collect();
    assert_eq!(told.len(), 1, "{warnings:?}");
}

#[test]
fn a_mirror_checked_by_its_length_only_is_said_to_be() {
    // Neither source gives a validator: nothing but the length tells the
    // mirror holds the same file, and the user is told so, once.
    let body = test_data(8 * PIECE as usize, 46);
    let primary = slow_start_server(body.clone());
    let mirror = file_server(body.clone(), Ranges::Honour);
    let (client, warnings) = client_keeping_warnings(4);
    let got = read_all_mirrored(&client, &primary.url("/f"), &[&mirror.url("/f")]).unwrap();
    assert!(got == body);
    assert!(!mirror.requests().is_empty(), "the mirror was not used");
    let warnings = warnings.lock().unwrap();
    let told: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains(&mirror.url("/f")) && w.contains("length only"))
        .collect();
    assert_eq!(told.len(), 1, "{warnings:?}");
}

/// A server of `old` until its first answer, then of `new`, each with its
/// own validator header (`name`: `ETag` or `Last-Modified`). Like many
/// servers, it honours `Range` and ignores `If-Range`.
fn changing_server(
    old: Vec<u8>,
    new: Vec<u8>,
    name: &'static str,
    values: [&'static str; 2],
) -> Server {
    let answered = AtomicUsize::new(0);
    Server::start(move |req: &Request| {
        let first = answered.fetch_add(1, Ordering::SeqCst) == 0;
        let (body, value) = if first {
            (&old, values[0])
        } else {
            (&new, values[1])
        };
        Reply::file(req, body, Ranges::Honour).header(name, value)
    })
}

#[test]
fn a_resource_that_changes_behind_a_server_ignoring_if_range_fails_instead_of_mixing() {
    let cases = [
        ("ETag", ["\"v1\"", "\"v2\""]),
        (
            "Last-Modified",
            [
                "Sun, 29 Nov 2026 10:00:00 GMT",
                "Sun, 29 Nov 2026 11:00:00 GMT",
            ],
        ),
    ];
    for (name, values) in cases {
        // Piece 0 from the first answer, the rest from later ones.
        let old = test_data(6 * PIECE as usize, 60);
        let new = test_data(6 * PIECE as usize, 61);
        let server = changing_server(old, new, name, values);
        match read_stream(&client(4), &server.url("/f")) {
            Ok(_) => panic!("{name}: two versions mixed"),
            Err(err) => assert_eq!(err.kind(), ErrorKind::Integrity, "{name}: {err}"),
        }
    }
}

#[test]
fn a_busy_answer_to_the_request_for_the_rest_does_not_fail_the_download() {
    let body = test_data(6 * PIECE as usize, 62);
    let served = body.clone();
    let refused = AtomicUsize::new(0);
    let server = Server::start(move |req: &Request| {
        // The open-ended request for everything after the first answer.
        let rest = req.header("range") == Some(&format!("bytes={FIRST_ANSWER}-")[..]);
        if rest && refused.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::status(503);
        }
        Reply::file(req, &served, Ranges::Honour)
    });
    assert!(read_stream(&client(4), &server.url("/f")).unwrap() == body);
}

#[test]
fn a_first_answer_cut_short_still_starts_a_split_download() {
    // A server that caps each range at 2 MiB, or at 2.5 MiB, answers the
    // first request with pieces 0 and 1 (and half of piece 2): they are
    // used, not asked for again whole.
    for cap in [2 * PIECE, 5 * PIECE / 2] {
        let body = test_data(8 * PIECE as usize + 99, 67);
        let server = file_server(body.clone(), Ranges::Capped(cap));
        let got = read_stream(&client(4), &server.url("/f")).unwrap();
        assert!(got == body, "capped at {cap}");
        let requests = server.requests();
        assert!(
            requests.iter().all(|r| r.header("range").is_some()),
            "capped at {cap}, asked again whole: {requests:?}"
        );
        assert_eq!(requests[0].range(), Some(0..=FIRST_ANSWER - 1));
        let from_piece_1 = requests.iter().filter(|r| r.range_start() == Some(PIECE));
        assert_eq!(
            from_piece_1.count(),
            0,
            "capped at {cap}: piece 1 asked again"
        );
    }
}

#[test]
fn a_file_no_larger_than_the_first_answer_comes_in_one_request() {
    // Of any size up to the first answer's: one request, whole.
    for (size, seed) in [(PIECE + 1, 63), (3 * PIECE + 5, 64), (FIRST_ANSWER, 65)] {
        let body = test_data(size as usize, seed);
        let server = file_server(body.clone(), Ranges::Honour);
        assert!(read_stream(&client(4), &server.url("/f")).unwrap() == body);
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "{size} bytes: {requests:?}");
        assert_eq!(requests[0].range(), Some(0..=FIRST_ANSWER - 1));
    }
    // One byte more: the first answer, then that byte.
    let body = test_data(FIRST_ANSWER as usize + 1, 66);
    let server = file_server(body.clone(), Ranges::Honour);
    assert!(read_stream(&client(4), &server.url("/f")).unwrap() == body);
    let ranges: Vec<_> = server.requests().iter().map(Request::range).collect();
    assert_eq!(
        ranges,
        [
            Some(0..=FIRST_ANSWER - 1),
            Some(FIRST_ANSWER..=FIRST_ANSWER)
        ]
    );
}

#[test]
fn resuming_with_pieces_beyond_the_length_is_refused_before_any_request() {
    let server: Server = Server::start(|_| Reply::ok("unused"));
    let store = Arc::new(MemoryStore(std::sync::Mutex::new(Vec::new())));
    // 5 MB make 5 pieces; 100 said to be done cannot be of this resource.
    let outcome = client(2).resume_pieces(
        &server.url("/f"),
        &[],
        5_000_000,
        Some("\"v\""),
        partfetch::pieces::PieceSet::first(100),
        store,
    );
    let err = outcome.err().expect("resumed with impossible pieces");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("piece 99"), "{err}");
    assert_eq!(server.connections(), 0);
}

/// A store that counts the writes it takes.
struct CountingStore(std::sync::atomic::AtomicU64);

impl partfetch::pieces::PieceStore for CountingStore {
    fn write_at(&self, _offset: u64, _bytes: &[u8]) -> partfetch::Result<()> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn once_a_download_in_pieces_is_dropped_nothing_writes_to_its_store() {
    // Every piece streams steadily, 16 KiB every 2 ms per connection: the
    // workers are writing when the download is dropped, and a worker left
    // running would go on writing until it next looked at the schedule.
    let body = test_data(64 * PIECE as usize, 71);
    let server = Server::start(move |req: &Request| {
        let Some(range) = req.range() else {
            return Reply::file(req, &body, Ranges::Honour);
        };
        let (first, last) = (*range.start() as usize, *range.end() as usize);
        let last = last.min(body.len() - 1);
        let mut steps = Vec::new();
        for chunk in body[first..=last].chunks(16 * 1024) {
            steps.push(Step::Write(chunk.to_vec()));
            steps.push(Step::Sleep(std::time::Duration::from_millis(2)));
        }
        partial(first, last, body.len(), steps)
    });
    let opened = client(4).open(&server.url("/f")).unwrap();
    let Ok(stream) = opened.into_segmented() else {
        panic!("a large file from a server that honours Range is fetched in pieces");
    };
    let store = Arc::new(CountingStore(std::sync::atomic::AtomicU64::new(0)));
    let mut download = SegmentedDownload::new(stream, store.clone());
    let writes = || store.0.load(std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while download.activity().is_none_or(|(fetching, _)| fetching < 2) {
        assert!(download.advance().unwrap(), "ended before the workers ran");
        assert!(
            std::time::Instant::now() < deadline,
            "the workers never ran"
        );
    }
    download.advance().unwrap();
    drop(download);
    let at_drop = writes();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(writes(), at_drop, "written after the download was dropped");
}
