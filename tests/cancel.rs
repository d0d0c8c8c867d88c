//! Stopping a client's downloads from another thread (`src/cancel.rs`),
//! against the in-process server: every wait of a download ends with
//! `ErrorKind::Cancelled` instead of running its course.
//!
//! Each stall below lasts far longer than a test should (it ends when the
//! test releases it, so that the server's threads finish): a download that
//! did not honour the cancel would wait it out and then end another way.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use partfetch::engine::download::SegmentedDownload;
use partfetch::engine::HTTP_PIECE as PIECE;
use partfetch::{ByteSource, Cancel, Client, ErrorKind};
use support::{client, test_data, Body, Ranges, Reply, Request, Server, Step};

const STALL: Duration = Duration::from_secs(20);

/// Cancels `cancel` from another thread after a moment.
fn cancel_soon(cancel: Cancel) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        cancel.cancel();
    })
}

/// Bytes `first..=last` of a resource of `total`, written by `steps`.
fn partial(first: usize, last: usize, total: usize, steps: Vec<Step>) -> Reply {
    Reply::new(206)
        .header("Content-Range", &format!("bytes {first}-{last}/{total}"))
        .header("Content-Length", &(last + 1 - first).to_string())
        .body(Body::Steps(steps))
}

#[test]
fn a_body_waiting_for_bytes_is_cancelled() {
    let release = Arc::new(AtomicBool::new(false));
    let stall = Arc::clone(&release);
    let server = Server::start(move |_: &Request| {
        Reply::new(200)
            .header("Content-Length", "10")
            .body(Body::Steps(vec![
                Step::Write(b"hello".to_vec()),
                Step::Until(Arc::clone(&stall), STALL),
                Step::Write(b"world".to_vec()),
            ]))
    });
    let client = client(1);
    let mut stream = client.open(&server.url("/f")).unwrap();
    assert_eq!(stream.next_chunk().unwrap(), Some(&b"hello"[..]));
    let canceller = cancel_soon(client.cancel_handle());
    let err = stream.next_chunk().unwrap_err();
    canceller.join().unwrap();
    release.store(true, Ordering::SeqCst);
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    // The client stays cancelled: nothing more is asked of the server.
    let asked = server.requests().len();
    let again = client.open(&server.url("/f")).err().expect("opened again");
    assert_eq!(again.kind(), ErrorKind::Cancelled);
    assert_eq!(server.requests().len(), asked);
}

#[test]
fn a_body_whose_bytes_keep_coming_is_cancelled() {
    // 4 MB in 20 KB steps, 10 ms apart: never silent long enough for a
    // waiting read to look at the handle, and done in about 2 s.
    let body = test_data(4_000_000, 72);
    let served = body.clone();
    let server =
        Server::start(move |_: &Request| Reply::paced(&served, 20_000, Duration::from_millis(10)));
    let client = client(1);
    let mut stream = client.open(&server.url("/f")).unwrap();
    let canceller = cancel_soon(client.cancel_handle());
    let mut got = 0;
    let err = loop {
        match stream.next_chunk() {
            Ok(Some(chunk)) => got += chunk.len(),
            Ok(None) => panic!("all {got} bytes came after the cancel"),
            Err(err) => break err,
        }
    };
    canceller.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(got < body.len());
}

#[test]
fn a_client_with_its_own_handle_is_cancelled_alone() {
    let server = Server::start(|_: &Request| Reply::ok("bytes"));
    let shared = client(1);
    let first = shared.with_cancel(Cancel::new());
    let second = shared.with_cancel(Cancel::new());
    first.cancel_handle().cancel();
    let err = first.open(&server.url("/f")).err().expect("opened");
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    for other in [&second, &shared] {
        let mut stream = other.open(&server.url("/f")).unwrap();
        assert_eq!(stream.next_chunk().unwrap(), Some(&b"bytes"[..]));
    }
    assert!(!shared.cancel_handle().is_cancelled());
}

#[test]
fn a_pause_between_attempts_is_cancelled() {
    // Every answer asks for a minute's wait.
    let server = Server::start(|_: &Request| Reply::status(503).header("Retry-After", "60"));
    let client = Client::builder().no_env_proxy().retries(3).build().unwrap();
    let canceller = cancel_soon(client.cancel_handle());
    let err = client.open(&server.url("/f")).err().expect("opened");
    canceller.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert_eq!(server.requests().len(), 1);
}

/// A resource of 8 pieces whose piece 0 comes slowly (so that workers
/// fetch the others) and whose every other piece stalls after 1000 bytes,
/// in the first answer as in the others.
fn stalling_pieces(release: &Arc<AtomicBool>) -> (Server, Vec<u8>) {
    let body = test_data(8 * PIECE as usize, 71);
    let served = body.clone();
    let stall = Arc::clone(release);
    let server = Server::start(move |req: &Request| {
        let Some(start) = req.range_start() else {
            return Reply::file(req, &served, Ranges::Honour);
        };
        let start = start as usize;
        let last = match req.range() {
            Some(range) => (*range.end() as usize).min(served.len() - 1),
            None => served.len() - 1,
        };
        let bytes = &served[start..=last];
        let mut steps = Vec::new();
        let mut stalled = bytes;
        if start == 0 {
            let (piece_0, after) = bytes.split_at(PIECE as usize);
            for chunk in piece_0.chunks(64 * 1024) {
                steps.push(Step::Write(chunk.to_vec()));
                steps.push(Step::Sleep(Duration::from_millis(1)));
            }
            stalled = after;
        }
        steps.extend([
            Step::Write(stalled[..1000].to_vec()),
            Step::Until(Arc::clone(&stall), STALL),
            Step::Write(stalled[1000..].to_vec()),
        ]);
        partial(start, last, served.len(), steps)
    });
    (server, body)
}

#[test]
fn a_stream_in_pieces_waiting_for_its_workers_is_cancelled() {
    let release = Arc::new(AtomicBool::new(false));
    let (server, body) = stalling_pieces(&release);
    let client = client(3);
    let mut stream = client.open(&server.url("/f")).unwrap();
    let mut got = 0;
    let err = loop {
        match stream.next_chunk() {
            Ok(Some(chunk)) => {
                assert_eq!(chunk, &body[got..got + chunk.len()]);
                got += chunk.len();
                if got == PIECE as usize {
                    // Piece 0 is in; every other piece is stalled.
                    cancel_soon(client.cancel_handle());
                }
            }
            Ok(None) => panic!("the stalled pieces came"),
            Err(err) => break err,
        }
    };
    release.store(true, Ordering::SeqCst);
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert_eq!(got, PIECE as usize);
}

#[test]
fn a_download_written_at_its_offsets_is_cancelled() {
    let release = Arc::new(AtomicBool::new(false));
    let (server, _) = stalling_pieces(&release);
    let client = client(3);
    let Ok(stream) = client.open(&server.url("/f")).unwrap().into_segmented() else {
        panic!("a large file from a server that honours Range is fetched in pieces");
    };
    let mut download = SegmentedDownload::new(stream, Arc::new(Discard));
    cancel_soon(client.cancel_handle());
    let err = loop {
        match download.advance() {
            Ok(true) => continue,
            Ok(false) => panic!("the stalled pieces came"),
            Err(err) => break err,
        }
    };
    release.store(true, Ordering::SeqCst);
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
}

#[test]
fn a_manifest_whose_part_stalls_is_cancelled() {
    let release = Arc::new(AtomicBool::new(false));
    let stall = Arc::clone(&release);
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok("a\n--\nb\n"),
        "/a" => Reply::ok("first part\n"),
        _ => Reply::new(200)
            .header("Content-Length", "100")
            .body(Body::Steps(vec![
                Step::Write(vec![b'b'; 10]),
                Step::Until(Arc::clone(&stall), STALL),
                Step::Write(vec![b'b'; 90]),
            ])),
    });
    let client = client(1);
    let mut stream = client.open(&server.url("/m.parts")).unwrap();
    let mut got = Vec::new();
    let err = loop {
        match stream.next_chunk() {
            Ok(Some(chunk)) => {
                got.extend_from_slice(chunk);
                if got.len() == b"first part\n".len() + 10 {
                    cancel_soon(client.cancel_handle());
                }
            }
            Ok(None) => panic!("the stalled part came: {:?}", String::from_utf8_lossy(&got)),
            Err(err) => break err,
        }
    };
    release.store(true, Ordering::SeqCst);
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    // Stopped on purpose: no part failed.
    assert_eq!(err.to_string(), "cancelled");
}

/// A store that keeps nothing.
struct Discard;

impl partfetch::pieces::PieceStore for Discard {
    fn write_at(&self, _offset: u64, _bytes: &[u8]) -> partfetch::Result<()> {
        Ok(())
    }
}
