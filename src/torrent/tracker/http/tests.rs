//! HTTP announces against scripted trackers on 127.0.0.1: the query sent,
//! the answer read, and each way an announce fails.

use super::*;
use crate::torrent::tracker::announce::Event;
use crate::torrent::tracker::http_response::Peer;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

fn sample() -> Announce {
    let mut info_hash = [0x11; 20];
    info_hash[..4].copy_from_slice(&[0x00, b'A', 0xff, b' ']);
    Announce {
        info_hash,
        peer_id: *b"-PF0001-abcdefghijkl",
        port: 6881,
        uploaded: 5,
        downloaded: 6,
        left: 7,
        event: Event::Started,
        numwant: Some(50),
        key: 0xbeef,
    }
}

/// A scripted HTTP tracker on 127.0.0.1: each request's target goes on
/// the channel and `reply` gives the whole response sent back (an empty
/// one: none, the connection held open for 10 s). Serves connections one
/// after the other.
pub(crate) fn tracker(
    reply: impl Fn(&str) -> Vec<u8> + Send + 'static,
) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
            let response = reply(&target);
            if tx.send(target).is_err() {
                return;
            }
            if response.is_empty() {
                thread::sleep(Duration::from_secs(10));
            } else {
                let _ = stream.write_all(&response);
            }
        }
    });
    (addr, rx)
}

/// A complete response with `status` and `body`.
pub(crate) fn response(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn ask(url: &str, tracker_id: Option<&[u8]>) -> Result<Answer, TrackerError> {
    let keep_going: KeepGoing = Arc::new(|| true);
    let deadline = Instant::now() + Duration::from_secs(5);
    let ctx = Context::for_tests(None);
    let shown = crate::torrent::tracker::error::tracker_name(url);
    http_announce(
        &ctx,
        url,
        &shown,
        &sample(),
        tracker_id,
        deadline,
        &keep_going,
    )
}

/// The query parameters of `target`, in order.
pub(crate) fn params(target: &str) -> Vec<(String, String)> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub(crate) fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn an_announce_sends_every_parameter_and_reads_the_peers() {
    let mut body = b"d8:completei3e10:incompletei4e8:intervali1800e12:min intervali600e\
                     5:peers12:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe2"
        .to_vec();
    body.extend_from_slice(b"6:peers618:");
    body.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    body.extend_from_slice(b"\x1a\xe3");
    body.extend_from_slice(b"10:tracker id3:t-115:warning message4:slowe");
    let (addr, targets) = tracker(move |_| response("200 OK", &body));
    let url = format!("http://{addr}/announce?passkey=s3cret");
    let answer = ask(&url, None).unwrap();

    let target = targets.recv().unwrap();
    assert!(
        target.starts_with("/announce?passkey=s3cret&info_hash="),
        "{target}"
    );
    let params = params(&target);
    let expected = [
        (
            "info_hash",
            "%00A%FF%20%11%11%11%11%11%11%11%11%11%11%11%11%11%11%11%11",
        ),
        ("peer_id", "-PF0001-abcdefghijkl"),
        ("port", "6881"),
        ("uploaded", "5"),
        ("downloaded", "6"),
        ("left", "7"),
        ("compact", "1"),
        ("event", "started"),
        ("numwant", "50"),
        ("key", "0000beef"),
    ];
    for (key, value) in expected {
        assert_eq!(param(&params, key), Some(value), "{key} in {target}");
    }
    assert_eq!(param(&params, "trackerid"), None, "none given yet");

    let peer = |addr: &str| Peer {
        addr: addr.parse().unwrap(),
        id: None,
    };
    assert_eq!(
        answer.peers,
        [
            peer("10.0.0.1:6881"),
            peer("10.0.0.2:6882"),
            peer("[::1]:6883")
        ]
    );
    assert_eq!(answer.interval, Duration::from_secs(1800));
    assert_eq!(answer.min_interval, Some(Duration::from_secs(600)));
    assert_eq!((answer.seeders, answer.leechers), (Some(3), Some(4)));
    assert_eq!(answer.warning.as_deref(), Some("slow"));
    assert_eq!(answer.tracker_id.as_deref(), Some(&b"t-1"[..]));
}

#[test]
fn the_tracker_id_given_is_sent_back() {
    let (addr, targets) = tracker(|_| response("200 OK", b"d8:intervali60ee"));
    let url = format!("http://{addr}/announce");
    ask(&url, Some(b"t 1")).unwrap();
    let target = targets.recv().unwrap();
    assert_eq!(param(&params(&target), "trackerid"), Some("t%201"));
}

#[test]
fn a_failure_reason_is_an_error_carrying_its_text() {
    let (addr, _targets) = tracker(|_| {
        response(
            "200 OK",
            b"d14:failure reason24:unregistered \x1b[2Jtorrente",
        )
    });
    let err = ask(&format!("http://{addr}/a?passkey=s3cret"), None).unwrap_err();
    let TrackerError::Failure { tracker, reason } = &err else {
        panic!("not a failure: {err}");
    };
    assert_eq!(tracker, &format!("http://{addr}"));
    assert_eq!(reason, "unregistered \x1b[2Jtorrent");
    let shown = err.to_string();
    assert!(
        !shown.contains('\x1b') && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn a_status_other_than_2xx_is_an_error_naming_the_tracker_and_status() {
    for (status, code) in [("404 Not Found", 404), ("503 Busy", 503)] {
        let (addr, _targets) = tracker(move |_| response(status, b"d8:intervali60ee"));
        let err = ask(&format!("http://{addr}/a/s3cret/announce"), None).unwrap_err();
        assert!(
            matches!(err, TrackerError::Status { status, .. } if status == code),
            "{err}"
        );
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("http://{addr}")) && shown.contains(&code.to_string()),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}

#[test]
fn a_body_over_the_bound_is_refused_whether_announced_or_not() {
    let big = vec![b'x'; MAX_RESPONSE_BYTES + 1];
    let told = response("200 OK", &big);
    let (addr, _targets) = tracker(move |_| told.clone());
    let err = ask(&format!("http://{addr}/a"), None).unwrap_err();
    assert!(
        matches!(
            err,
            TrackerError::Malformed {
                why: BadAnswer::TooLarge,
                ..
            }
        ),
        "{err}"
    );
    // No Content-Length: read until close, stopped one byte past the bound.
    let mut untold = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    untold.extend_from_slice(&big);
    let (addr, _targets) = tracker(move |_| untold.clone());
    let err = ask(&format!("http://{addr}/a"), None).unwrap_err();
    assert!(
        matches!(
            err,
            TrackerError::Malformed {
                why: BadAnswer::TooLarge,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_body_that_is_not_an_answer_is_malformed() {
    let (addr, _targets) = tracker(|_| response("200 OK", b"<html>busy</html>"));
    let err = ask(&format!("http://{addr}/a"), None).unwrap_err();
    assert!(
        matches!(
            err,
            TrackerError::Malformed {
                why: BadAnswer::Http(_),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_silent_tracker_times_out_at_the_deadline() {
    let (addr, _targets) = tracker(|_| Vec::new());
    let keep_going: KeepGoing = Arc::new(|| true);
    let started = Instant::now();
    let url = format!("http://{addr}/a");
    let err = http_announce(
        &Context::for_tests(None),
        &url,
        "t",
        &sample(),
        None,
        started + Duration::from_millis(300),
        &keep_going,
    )
    .unwrap_err();
    assert!(matches!(err, TrackerError::TimedOut { .. }), "{err}");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1200), "{took:?}");
}

#[test]
fn an_announce_is_given_up_soon_when_its_caller_stops() {
    let (addr, _targets) = tracker(|_| Vec::new());
    let stop_at = Instant::now() + Duration::from_millis(200);
    let keep_going: KeepGoing = Arc::new(move || Instant::now() < stop_at);
    let url = format!("http://{addr}/a");
    let err = http_announce(
        &Context::for_tests(None),
        &url,
        "t",
        &sample(),
        None,
        Instant::now() + Duration::from_secs(30),
        &keep_going,
    )
    .unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert!(Instant::now() < stop_at + Duration::from_secs(1));
}

#[test]
fn a_refused_connection_is_a_network_error_without_the_query() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = ask(&format!("http://{addr}/a?passkey=s3cret"), None).unwrap_err();
    assert!(matches!(err, TrackerError::Network { .. }), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}
