//! Self-tests of the test server in `support`, through raw sockets: if these
//! fail, the CLI tests cannot be trusted.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Body, Chunk, Options, Ranges, Reply, Server, Step, TunnelProxy};

fn connect(server: &Server) -> TcpStream {
    let stream: TcpStream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream
}

fn get(stream: &mut TcpStream, path: &str, extra: &str) {
    let request: String = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).expect("write request");
}

/// Reads one response framed by Content-Length: (head, body).
fn read_sized(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut data: Vec<u8> = Vec::new();
    let mut byte: [u8; 1] = [0];
    while !data.ends_with(b"\r\n\r\n") {
        let n: usize = stream.read(&mut byte).expect("read head");
        assert_eq!(
            n,
            1,
            "connection closed inside a head: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.push(byte[0]);
    }
    let head: String = String::from_utf8(data).expect("utf-8 head");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("a Content-Length");
    let mut body: Vec<u8> = vec![0; length];
    stream.read_exact(&mut body).expect("read body");
    (head, body)
}

fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    stream.read_to_end(&mut out).expect("read to close");
    out
}

#[test]
fn sized_reply_carries_status_headers_and_length() {
    let server: Server = Server::start(|_| {
        Reply::new(418)
            .reason("Teapot")
            .header("X-Test", "yes")
            .body(Body::Sized(b"hello".to_vec()))
    });
    let mut s: TcpStream = connect(&server);
    get(&mut s, "/", "");
    let (head, body) = read_sized(&mut s);
    assert!(head.starts_with("HTTP/1.1 418 Teapot\r\n"), "{head}");
    assert!(head.contains("X-Test: yes\r\n"), "{head}");
    assert!(head.contains("Content-Length: 5\r\n"), "{head}");
    assert_eq!(body, b"hello");
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection_and_logs_them() {
    let server: Server = Server::start(|r| Reply::ok(r.path().to_owned()));
    let mut s: TcpStream = connect(&server);
    for path in ["/a", "/b?q=1", "/c"] {
        get(&mut s, path, "X-Mixed-Case: v\r\n");
        let (_, body) = read_sized(&mut s);
        assert_eq!(body, path.split('?').next().unwrap().as_bytes());
    }
    assert_eq!(server.connections(), 1);
    let log = server.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[1].target, "/b?q=1");
    assert_eq!(log[1].method, "GET");
    assert_eq!(log[2].index_on_connection, 3);
    assert!(log.iter().all(|r| r.connection == 1));
    assert_eq!(log[0].header("x-mixed-CASE"), Some("v"));
    assert_eq!(log[0].header("host"), Some("test"));
}

#[test]
fn a_head_request_gets_the_head_of_a_get_and_no_body() {
    let server: Server = Server::start(|_| Reply::ok(b"hello".to_vec()));
    let mut stream: TcpStream = connect(&server);
    stream
        .write_all(b"HEAD /f HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("write request");
    get(&mut stream, "/f", "");
    // A body after the HEAD's head would be read as the GET's head.
    let mut head: Vec<u8> = Vec::new();
    let mut byte: [u8; 1] = [0];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("read head"), 1);
        head.push(byte[0]);
    }
    let head: String = String::from_utf8(head).expect("utf-8 head");
    assert!(head.contains("Content-Length: 5\r\n"), "{head}");
    let (second, body) = read_sized(&mut stream);
    assert!(second.starts_with("HTTP/1.1 200 "), "{second}");
    assert_eq!(body, b"hello");
}

#[test]
fn connections_are_counted_and_numbered() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    for _ in 0..3 {
        let mut s: TcpStream = connect(&server);
        get(&mut s, "/", "");
        read_sized(&mut s);
    }
    assert_eq!(server.connections(), 3);
    let numbers: Vec<usize> = server.requests().iter().map(|r| r.connection).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
}

#[test]
fn connection_close_from_the_client_is_honoured() {
    let server: Server = Server::start(|_| Reply::ok("x"));
    let mut s: TcpStream = connect(&server);
    get(&mut s, "/", "Connection: close\r\n");
    let all: Vec<u8> = read_to_close(&mut s);
    assert!(all.ends_with(b"\r\n\r\nx"));
}

#[test]
fn close_after_requests_closes_without_saying_so() {
    // Without the `tls` feature `Options` has no other field.
    #[allow(clippy::needless_update)]
    let options: Options = Options {
        close_after_requests: Some(2),
        ..Options::default()
    };
    let server: Server = Server::start_with(options, |_| Reply::ok("x"));
    let mut s: TcpStream = connect(&server);
    get(&mut s, "/1", "");
    let (head1, _) = read_sized(&mut s);
    get(&mut s, "/2", "");
    let (head2, _) = read_sized(&mut s);
    assert!(!head1.to_ascii_lowercase().contains("connection"));
    assert!(!head2.to_ascii_lowercase().contains("connection"));
    let mut rest: Vec<u8> = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "expected EOF after 2 requests");
}

#[test]
fn chunked_reply_renders_extensions_and_trailers() {
    let server: Server = Server::start(|_| {
        Reply::new(200)
            .body(Body::Chunked {
                chunks: vec![
                    Chunk {
                        data: b"hello ".to_vec(),
                        extension: ";a=b".to_owned(),
                    },
                    Chunk {
                        data: vec![b'w'; 17],
                        extension: String::new(),
                    },
                ],
                trailers: vec![("X-Sum".to_owned(), "1".to_owned())],
                complete: true,
            })
            .header("Connection", "close")
    });
    let mut s: TcpStream = connect(&server);
    get(&mut s, "/", "");
    let all: String = String::from_utf8(read_to_close(&mut s)).unwrap();
    let expected_body: String = format!(
        "6;a=b\r\nhello \r\n11\r\n{}\r\n0\r\nX-Sum: 1\r\n\r\n",
        "w".repeat(17)
    );
    assert!(all.contains("Transfer-Encoding: chunked\r\n"), "{all}");
    assert!(!all.contains("Content-Length"), "{all}");
    assert!(all.ends_with(&format!("\r\n\r\n{expected_body}")), "{all}");
}

#[test]
fn incomplete_chunked_body_ends_with_a_close() {
    let server: Server = Server::start(|_| {
        Reply::new(200).body(Body::Chunked {
            chunks: vec![Chunk {
                data: b"abc".to_vec(),
                extension: String::new(),
            }],
            trailers: vec![],
            complete: false,
        })
    });
    let mut s: TcpStream = connect(&server);
    get(&mut s, "/", "");
    let all: Vec<u8> = read_to_close(&mut s);
    assert!(
        all.ends_with(b"\r\n\r\n3\r\nabc\r\n"),
        "{}",
        String::from_utf8_lossy(&all)
    );
}

#[test]
fn close_delimited_and_truncated_bodies_close_the_connection() {
    let server: Server = Server::start(|r| match r.path() {
        "/close" => Reply::close_delimited("all of it"),
        _ => Reply::truncated(100, "only this"),
    });
    let mut s: TcpStream = connect(&server);
    get(&mut s, "/close", "");
    let all: String = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert!(
        !all.contains("Content-Length") && !all.contains("Transfer-Encoding"),
        "{all}"
    );
    assert!(all.ends_with("\r\n\r\nall of it"), "{all}");

    let mut s: TcpStream = connect(&server);
    get(&mut s, "/trunc", "");
    let all: String = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert!(all.contains("Content-Length: 100\r\n"), "{all}");
    assert!(all.ends_with("\r\n\r\nonly this"), "{all}");
}

#[test]
fn raw_reply_is_sent_verbatim_then_closed() {
    let server: Server = Server::start(|_| Reply::raw(&b"not even HTTP\x00\xff"[..]));
    let mut s: TcpStream = connect(&server);
    get(&mut s, "/", "");
    assert_eq!(read_to_close(&mut s), b"not even HTTP\x00\xff");
}

#[test]
fn stall_sends_part_then_waits_without_closing() {
    let server: Server = Server::start(|_| Reply::stall(10, "abc", Duration::from_secs(30)));
    let mut s: TcpStream = connect(&server);
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    get(&mut s, "/", "");
    let mut got: Vec<u8> = Vec::new();
    let mut buf: [u8; 1024] = [0; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("the stall closed the connection"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break, // timed out: stalled as asked
        }
    }
    assert!(got.ends_with(b"\r\n\r\nabc"));
    // Dropping the server must not wait for the 30 s stall.
    let start: Instant = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "drop took {:?}",
        start.elapsed()
    );
}

#[test]
fn paced_reply_and_delay_take_their_time() {
    let server: Server = Server::start(|r| match r.path() {
        "/paced" => Reply::paced(b"abcd", 1, Duration::from_millis(100)),
        _ => Reply::ok("late").delay(Duration::from_millis(300)),
    });
    let mut s: TcpStream = connect(&server);
    let start: Instant = Instant::now();
    get(&mut s, "/paced", "");
    let (_, body) = read_sized(&mut s);
    assert_eq!(body, b"abcd");
    assert!(start.elapsed() >= Duration::from_millis(300));
    let mut s: TcpStream = connect(&server);
    let start: Instant = Instant::now();
    get(&mut s, "/delay", "");
    let (_, body) = read_sized(&mut s);
    assert_eq!(body, b"late");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn raw_steps_can_stall_inside_a_head() {
    let server: Server = Server::start(|_| {
        Reply::raw_steps(vec![
            Step::Write(b"HTTP/1.1 200 OK\r\n".to_vec()),
            Step::Sleep(Duration::from_secs(30)),
        ])
    });
    let mut s: TcpStream = connect(&server);
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    get(&mut s, "/", "");
    let mut buf: [u8; 64] = [0; 64];
    let n: usize = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"HTTP/1.1 200 OK\r\n");
    assert!(s.read(&mut buf).is_err(), "expected a stall");
}

#[test]
fn ranges_are_served_with_206_and_content_range() {
    let data: Arc<Vec<u8>> = Arc::new((0..100u8).collect());
    let served: Arc<Vec<u8>> = Arc::clone(&data);
    let server: Server = Server::start(move |r| {
        let ranges: Ranges = if r.path() == "/ignore" {
            Ranges::Ignore
        } else {
            Ranges::Honour
        };
        Reply::file(r, &served, ranges)
    });
    let mut s: TcpStream = connect(&server);
    let cases: [(&str, &str, &str, std::ops::Range<usize>); 5] = [
        ("/f", "bytes=10-19", "206", 10..20),
        ("/f", "bytes=90-", "206", 90..100),
        ("/f", "bytes=-5", "206", 95..100),
        ("/f", "bytes=95-200", "206", 95..100),
        ("/ignore", "bytes=10-19", "200", 0..100),
    ];
    for (path, range, status, expected) in cases {
        get(&mut s, path, &format!("Range: {range}\r\n"));
        let (head, body) = read_sized(&mut s);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{range}: {head}"
        );
        assert_eq!(body, &data[expected.clone()], "{range}");
        if status == "206" {
            let cr: String = format!(
                "Content-Range: bytes {}-{}/100\r\n",
                expected.start,
                expected.end - 1
            );
            assert!(head.contains(&cr), "{range}: {head}");
        }
    }
    get(&mut s, "/f", "Range: bytes=100-\r\n");
    let (head, body) = read_sized(&mut s);
    assert!(head.starts_with("HTTP/1.1 416 "), "{head}");
    assert!(head.contains("Content-Range: bytes */100\r\n"), "{head}");
    assert!(body.is_empty());
    get(&mut s, "/f", "");
    let (head, body) = read_sized(&mut s);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, *data);
}

#[test]
fn redirect_helper_sets_location_and_a_body() {
    let server: Server = Server::start(|_| Reply::redirect(307, "/there"));
    let mut s: TcpStream = connect(&server);
    get(&mut s, "/", "");
    let (head, body) = read_sized(&mut s);
    assert!(
        head.starts_with("HTTP/1.1 307 Temporary Redirect\r\n"),
        "{head}"
    );
    assert!(head.contains("Location: /there\r\n"), "{head}");
    assert!(!body.is_empty());
}

#[test]
fn absolute_form_targets_keep_the_target_and_give_the_path() {
    let server: Server = Server::start(|r| Reply::ok(r.path().to_owned()));
    let mut s: TcpStream = connect(&server);
    get(&mut s, "http://example.test:8080/p/q?x=1", "");
    let (_, body) = read_sized(&mut s);
    assert_eq!(body, b"/p/q");
    assert_eq!(
        server.last_request().target,
        "http://example.test:8080/p/q?x=1"
    );
    assert_eq!(server.last_request().path_and_query(), "/p/q?x=1");
}

#[test]
#[should_panic(expected = "a test server handler panicked: boom")]
fn a_panicking_handler_fails_the_test_on_drop() {
    let server: Server = Server::start(|_| panic!("boom"));
    let mut s: TcpStream = connect(&server);
    get(&mut s, "/", "");
    let _ = read_to_close(&mut s);
    drop(server);
}

#[test]
fn tunnel_proxy_connects_to_a_local_port() {
    let server: Server = Server::start(|_| Reply::ok("through"));
    let proxy: TunnelProxy = TunnelProxy::start();
    let mut s: TcpStream = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let connect: String = format!(
        "CONNECT example.test:{0} HTTP/1.1\r\nHost: example.test:{0}\r\n\r\n",
        server.port()
    );
    s.write_all(connect.as_bytes()).unwrap();
    let mut head: Vec<u8> = Vec::new();
    let mut byte: [u8; 1] = [0];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200 "));
    get(&mut s, "/", "");
    let (_, body) = read_sized(&mut s);
    assert_eq!(body, b"through");
    assert_eq!(proxy.requests()[0].method, "CONNECT");
    assert_eq!(
        proxy.requests()[0].target,
        format!("example.test:{}", server.port())
    );
    assert_eq!(proxy.connections(), 1);
}

#[cfg(feature = "tls")]
#[test]
fn tls_server_serves_a_client_that_trusts_the_test_ca() {
    use rustls::pki_types::ServerName;
    let pki: support::TestPki = support::TestPki::new();
    let pem: String = std::fs::read_to_string(pki.ca_pem_path()).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let server: Server = Server::https(&pki, |_| Reply::ok("secret").header("Connection", "close"));
    assert!(server.url("/").starts_with("https://127.0.0.1:"));

    for host in ["localhost", "127.0.0.1"] {
        let mut roots: rustls::RootCertStore = rustls::RootCertStore::empty();
        roots.add(pki.ca_der()).unwrap();
        let config: rustls::ClientConfig = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name: ServerName<'static> = ServerName::try_from(host.to_owned()).unwrap();
        let conn: rustls::ClientConnection =
            rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp: TcpStream = connect(&server);
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut all: Vec<u8> = Vec::new();
        tls.read_to_end(&mut all).unwrap();
        assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(all.ends_with(b"\r\n\r\nsecret"));
    }
}
