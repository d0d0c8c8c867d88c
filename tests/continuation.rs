//! A plain response body cut midway, continued from where it stopped
//! (`src/continuation.rs`), against the in-process server.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use partfetch::{Client, ErrorKind};
use support::{client, read_stream, test_data, Body, Ranges, Reply, Request, Server, Step};

/// Serves `body` (with `validator` headers, if any), honouring Range and
/// If-Range; the first answer that covers byte `cut` stops there and
/// closes. `then` is what the file is from the second request on.
fn cutting_server(
    body: Vec<u8>,
    then: Vec<u8>,
    cut: usize,
    headers: &'static [(&str, &str)],
) -> Server {
    let answered = AtomicUsize::new(0);
    Server::start(move |req: &Request| {
        let first = answered.fetch_add(1, Ordering::SeqCst) == 0;
        let bytes = if first { &body } else { &then };
        let current = first
            || req
                .header("if-range")
                .is_none_or(|v| headers.iter().any(|(_, value)| *value == v) && then == body);
        let ranges = if current {
            Ranges::Honour
        } else {
            Ranges::Ignore
        };
        let mut reply = Reply::file(req, bytes, ranges);
        if first {
            let start = req.range_start().unwrap_or(0) as usize;
            let status = if req.header("range").is_some() {
                206
            } else {
                200
            };
            let mut head = Reply::new(status);
            if status == 206 {
                let last = (start + (1 << 20)).min(bytes.len()) - 1;
                head = head.header(
                    "Content-Range",
                    &format!("bytes {start}-{last}/{}", bytes.len()),
                );
                head = head.header("Content-Length", &(last - start + 1).to_string());
            } else {
                head = head.header("Content-Length", &bytes.len().to_string());
            }
            reply = head.body(Body::Steps(vec![Step::Write(bytes[start..cut].to_vec())]));
        }
        for (name, value) in headers {
            reply = reply.header(name, value);
        }
        reply
    })
}

const ETAG: &[(&str, &str)] = &[("ETag", "\"v1\"")];

/// A 200 for all of `body` (`ETag: "v1"`) that stops after `sent` bytes.
fn cut_answer(body: &[u8], sent: usize) -> Reply {
    Reply::new(200)
        .header("ETag", "\"v1\"")
        .header("Content-Length", &body.len().to_string())
        .body(Body::Steps(vec![Step::Write(body[..sent].to_vec())]))
}

/// One connection, `retries` attempts in a row.
fn client_with_retries(retries: u32) -> Client {
    Client::builder()
        .no_env_proxy()
        .connections(1)
        .retries(retries)
        .build()
        .unwrap()
}

#[test]
fn a_body_cut_midway_is_asked_for_again_from_where_it_stopped() {
    // One plain request (-n 1), and a file under one piece fetched with
    // the first piece's request (-n 4).
    for (connections, len) in [(1, 3_000_000), (4, 700_000)] {
        let body = test_data(len, 50);
        let cut = len / 3;
        let server = cutting_server(body.clone(), body.clone(), cut, ETAG);
        let got = read_stream(&client(connections), &server.url("/f")).unwrap();
        assert!(
            got == body,
            "-n {connections}: {} bytes, not the file",
            got.len()
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "-n {connections}");
        assert_eq!(requests[1].range_start(), Some(cut as u64));
        assert_eq!(requests[1].header("if-range"), Some("\"v1\""));
    }
}

#[test]
fn a_body_with_no_validator_is_not_continued() {
    let body = test_data(2_000_000, 51);
    let server = cutting_server(body.clone(), body, 500_000, &[]);
    let err = read_stream(&client(1), &server.url("/f")).unwrap_err();
    // The cut itself, reported as it is: a short body.
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(
        err.to_string().contains("received 500000 of 2000000 bytes"),
        "{err}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "nothing tells a continuation is the same file"
    );
}

/// The first answer (`ETag: "v1"`) stops at byte `cut`; every later one
/// is the whole of `then`, with `then_etag`, whatever Range asks.
fn server_ignoring_range_after_a_cut(
    first: Vec<u8>,
    then: Vec<u8>,
    then_etag: &'static str,
) -> Server {
    let answered = AtomicUsize::new(0);
    Server::start(move |_: &Request| {
        if answered.fetch_add(1, Ordering::SeqCst) > 0 {
            return Reply::ok(then.clone()).header("ETag", then_etag);
        }
        cut_answer(&first, 500_000)
    })
}

#[test]
fn a_resource_that_changed_before_the_continuation_fails_instead_of_mixing() {
    let old = test_data(2_000_000, 52);
    let new = test_data(2_000_000, 53);
    let server = server_ignoring_range_after_a_cut(old, new, "\"v2\"");
    let err = read_stream(&client(1), &server.url("/f")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_cut_body_whose_server_then_ignores_range_fails_as_the_cut_did() {
    // The same version sent whole again: nothing changed, the server does
    // not honour Range, and asking again would bring the same answer.
    let body = test_data(2_000_000, 55);
    let server = server_ignoring_range_after_a_cut(body.clone(), body, "\"v1\"");
    let err = read_stream(&client(1), &server.url("/f")).unwrap_err();
    // The cut's kind (a short body), not a mismatch of the bytes.
    assert_ne!(err.kind(), ErrorKind::Integrity, "{err}");
    assert_eq!(err.kind(), err.causes()[0].kind(), "{err}");
    assert!(err.to_string().contains("does not honour Range"), "{err}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_server_that_stays_unavailable_is_given_up_after_the_retries() {
    let body = test_data(2_000_000, 54);
    let answered = AtomicUsize::new(0);
    // The first answer stops 1000 bytes in; every later one is a 503.
    let server = Server::start(move |_: &Request| {
        if answered.fetch_add(1, Ordering::SeqCst) > 0 {
            return Reply::status(503);
        }
        cut_answer(&body, 1000)
    });
    let client = client_with_retries(3);
    let err = read_stream(&client, &server.url("/f")).unwrap_err();
    // The last answer's status, not the cut that started the retries.
    assert_eq!(err.kind(), ErrorKind::Status(503), "{err}");
    // The cut counts as the first of the 3 attempts.
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_validator_that_would_end_its_header_line_is_refused_before_sending() {
    let server: Server = Server::start(|_| Reply::ok("unused"));
    let injected = "\"x\"\r\nX-Injected: 1";
    let err = client(1)
        .resume(&server.url("/f"), 10, Some(injected))
        .err()
        .expect("a validator with a line break was sent");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("If-Range"), "{err}");
    assert_eq!(server.connections(), 0);
}

#[test]
fn answers_cut_before_their_first_byte_count_as_failed_attempts() {
    // Cut at byte 1000; then every answer is the right 206 head, and the
    // connection closes before the body. (After 20 of them, a 404 ends a
    // client that would otherwise ask for ever.)
    let body = test_data(2_000_000, 56);
    let answered = AtomicUsize::new(0);
    let server = Server::start(move |req: &Request| {
        let n = answered.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            return cut_answer(&body, 1000);
        }
        if n > 20 {
            return Reply::status(404);
        }
        let start = req.range_start().unwrap_or(0) as usize;
        Reply::new(206)
            .header("ETag", "\"v1\"")
            .header(
                "Content-Range",
                &format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
            )
            .header("Content-Length", &(body.len() - start).to_string())
            .body(Body::Steps(Vec::new()))
    });
    let client = client_with_retries(3);
    let err = read_stream(&client, &server.url("/f")).unwrap_err();
    assert_ne!(
        err.kind(),
        ErrorKind::NotFound,
        "asked until the 404: {err}"
    );
    // The first cut and two answers cut at the same byte: 3 attempts.
    assert_eq!(server.requests().len(), 3);
}
