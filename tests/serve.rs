//! `partfetch serve` over the wire: the binary on 127.0.0.1, asked with
//! raw bytes (so every edge case is exactly what is sent), with the
//! library's client, and with curl and aria2c.
//!
//! In scope: ranges (suffix, open, past the end, several), HEAD, If-Range,
//! pipelined keep-alive, path escapes, the head-size limit, the connection
//! cap, a thousand idle connections, the manifest type, listings, the log.
//! A test whose tool (curl, aria2c) is missing is skipped with a notice,
//! and fails when `CI` is set (`support::require_tool`).
#![cfg(feature = "serve")]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use partfetch::http::response::{parse_head, Head};
use partfetch::{ByteSource, Client};
use support::{test_data, ServeProcess, TempDir};

const WAIT: Duration = Duration::from_secs(5);

/// A directory with `data.bin` (`len` bytes), `film.parts`, `empty`, `sub/`.
fn served(len: usize) -> (TempDir, Vec<u8>, ServeProcess) {
    let dir = TempDir::new("serve");
    let data = test_data(len, 7);
    std::fs::write(dir.join("data.bin"), &data).unwrap();
    std::fs::write(dir.join("film.parts"), b"data.bin\n").unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    (dir, data, server)
}

/// Splits raw bytes into responses (heads and bodies); `head_requests[i]`
/// says whether the i-th answered a HEAD (no body whatever the length).
fn responses(mut raw: &[u8], head_requests: &[bool]) -> Vec<(Head, Vec<u8>)> {
    let mut out = Vec::new();
    for &is_head in head_requests {
        let (head, used) = parse_head(raw)
            .expect("a valid head")
            .expect("a complete head");
        let len = if is_head {
            0
        } else {
            head.content_length().expect("Content-Length") as usize
        };
        out.push((head, raw[used..used + len].to_vec()));
        raw = &raw[used + len..];
    }
    assert!(raw.is_empty(), "bytes after the last response: {raw:?}");
    out
}

fn get(server: &ServeProcess, target: &str, headers: &str) -> (Head, Vec<u8>) {
    let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n");
    let raw = server.raw(request.as_bytes(), WAIT);
    responses(&raw, &[false]).remove(0)
}

#[test]
fn ranges_suffix_open_past_the_end_and_several() {
    let (_dir, data, server) = served(1000);
    // (Range, status, the body as a slice of the file, Content-Range)
    type Case<'a> = (&'a str, u16, Option<(usize, usize)>, Option<&'a str>);
    let cases: [Case; 9] = [
        ("bytes=0-99", 206, Some((0, 100)), Some("bytes 0-99/1000")),
        (
            "bytes=-10",
            206,
            Some((990, 1000)),
            Some("bytes 990-999/1000"),
        ),
        (
            "bytes=-5000",
            206,
            Some((0, 1000)),
            Some("bytes 0-999/1000"),
        ),
        (
            "bytes=900-",
            206,
            Some((900, 1000)),
            Some("bytes 900-999/1000"),
        ),
        (
            "bytes=900-5000",
            206,
            Some((900, 1000)),
            Some("bytes 900-999/1000"),
        ),
        ("bytes=1000-", 416, None, Some("bytes */1000")),
        ("bytes=-0", 416, None, Some("bytes */1000")),
        ("bytes=0-0,10-20", 200, Some((0, 1000)), None),
        ("bytes=2000-,3000-", 416, None, Some("bytes */1000")),
    ];
    for (range, status, body, content_range) in cases {
        let (head, got) = get(&server, "/data.bin", &format!("Range: {range}\r\n"));
        assert_eq!(head.status, status, "{range}");
        assert_eq!(head.header("content-range"), content_range, "{range}");
        if let Some((a, b)) = body {
            assert!(got == data[a..b], "{range}: wrong bytes");
        }
    }
    // As nginx: what is not `bytes=` is ignored, a set that does not parse
    // or holds no satisfiable range is 416.
    for (range, status) in [
        ("bytes = 0 - 5", 200),
        ("bytes=0-0,", 416),
        ("bytes=5-1", 416),
        ("bytes= 0 - 5", 206),
        ("bytes=0-1,4000-", 206),
    ] {
        let (head, _) = get(&server, "/data.bin", &format!("Range: {range}\r\n"));
        assert_eq!(head.status, status, "{range}");
    }
    let (head, _) = get(&server, "/empty", "Range: bytes=0-\r\n");
    assert_eq!(head.status, 416, "an empty file satisfies no range");
}

#[test]
fn head_has_the_get_headers_and_no_body() {
    let (_dir, _data, server) = served(1000);
    let raw = server.raw(
        b"HEAD /data.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /empty HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    let answers = responses(&raw, &[true, false]);
    let head = &answers[0].0;
    assert_eq!(head.status, 200);
    assert_eq!(head.content_length(), Some(1000));
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    assert!(head.header("etag").is_some() && head.header("last-modified").is_some());
    assert_eq!(answers[1].0.status, 200);
}

#[test]
fn if_range_gives_the_range_only_to_the_same_file() {
    let (_dir, data, server) = served(1000);
    let (full, _) = get(&server, "/data.bin", "");
    let etag = full.header("etag").unwrap().to_owned();
    let modified = full.header("last-modified").unwrap().to_owned();
    for validator in [&etag, &modified] {
        let (head, body) = get(
            &server,
            "/data.bin",
            &format!("Range: bytes=500-\r\nIf-Range: {validator}\r\n"),
        );
        assert_eq!(head.status, 206, "If-Range: {validator}");
        assert!(body == data[500..]);
    }
    for stale in ["\"0-0\"", "W/\"x\"", "Thu, 01 Jan 1970 00:00:00 GMT"] {
        let (head, body) = get(
            &server,
            "/data.bin",
            &format!("Range: bytes=500-\r\nIf-Range: {stale}\r\n"),
        );
        assert_eq!((head.status, body.len()), (200, 1000), "If-Range: {stale}");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (_dir, data, server) = served(100_000);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\n\r\n\
                   HEAD /film.parts HTTP/1.1\r\nHost: t\r\n\r\n\
                   GET /nope HTTP/1.1\r\nHost: t\r\n\r\n\
                   GET /data.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let answers = responses(&raw, &[false, true, false, false]);
    let statuses: Vec<u16> = answers.iter().map(|(h, _)| h.status).collect();
    assert_eq!(statuses, [206, 200, 404, 200]);
    assert_eq!(answers[0].1, data[..10]);
    assert_eq!(
        answers[1].0.header("content-type"),
        Some("text/parts-manifest")
    );
    assert!(answers[3].1 == data);
    assert_eq!(answers[3].0.header("connection"), Some("close"));
    let log = server.wait_for_log(4);
    assert_eq!(log.len(), 4, "one log line per request: {log:?}");
    assert!(
        log[0].contains("\"GET /data.bin HTTP/1.1\" 206 10"),
        "{}",
        log[0]
    );
}

#[test]
fn http10_closes_unless_asked_to_keep_alive() {
    let (_dir, _data, server) = served(10);
    let raw = server.raw(b"GET /empty HTTP/1.0\r\n\r\n", WAIT);
    let (head, _) = responses(&raw, &[false]).remove(0);
    assert_eq!(head.header("connection"), Some("close"));
}

#[test]
fn path_escapes_are_refused() {
    let (dir, _data, server) = served(10);
    let outside = TempDir::new("outside");
    std::fs::write(outside.join("secret"), b"SECRET").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.join("secret"), dir.join("link")).unwrap();
    let secret_name = outside
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for target in [
        format!("/../{secret_name}/secret"),
        format!("/%2e%2e/{secret_name}/secret"),
        format!("/sub%2f..%2f..%2f{secret_name}%2fsecret"),
        format!("/sub/..%5c..%5c{secret_name}%5csecret"),
        "/link".to_owned(),
        "/%00".to_owned(),
        "/../../../../etc/passwd".to_owned(),
    ] {
        let (head, body) = get(&server, &target, "");
        assert!(
            head.status == 400 || head.status == 404,
            "{target}: {}",
            head.status
        );
        assert!(!body.windows(6).any(|w| w == b"SECRET"), "{target}");
    }
}

#[test]
fn an_absolute_form_target_is_served_as_its_path() {
    let (_dir, data, server) = served(1000);
    for target in [
        "http://t/data.bin",
        "HTTP://t:80/data.bin?x=1",
        "https://other/data.bin",
    ] {
        let (head, body) = get(&server, target, "");
        assert_eq!(head.status, 200, "{target}");
        assert!(body == data, "{target}");
    }
    let (head, _) = get(&server, "http://t/../../etc/passwd", "");
    assert_eq!(head.status, 400);
    let (head, _) = get(&server, "http://t/sub", "");
    assert_eq!((head.status, head.header("location")), (301, Some("/sub/")));
}

#[test]
fn listing_redirect_and_type() {
    let (_dir, _data, server) = served(10);
    let (head, body) = get(&server, "/", "");
    assert_eq!(
        head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(body, b"data.bin\nempty\nfilm.parts\nsub/\n");
    let (head, _) = get(&server, "/sub", "");
    assert_eq!((head.status, head.header("location")), (301, Some("/sub/")));
}

#[test]
fn oversized_heads_and_bad_requests_are_refused() {
    let (_dir, _data, server) = served(10);
    let mut big = b"GET / HTTP/1.1\r\nHost: t\r\nX: ".to_vec();
    big.resize(70_000, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    let raw = server.raw(&big, WAIT);
    assert!(
        raw.starts_with(b"HTTP/1.1 431 "),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    let raw = server.raw(b"GET / HTTP/1.1\r\n\r\n", WAIT);
    assert!(raw.starts_with(b"HTTP/1.1 400 "), "no Host");
    let raw = server.raw(
        b"DELETE /data.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert!(raw.starts_with(b"HTTP/1.1 405 "));
    let raw = server.raw(
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        WAIT,
    );
    assert!(raw.starts_with(b"HTTP/1.1 400 "), "TLS to a plain port");
    let raw = server.raw(b"GET /data.bin HTTP/2.0\r\nHost: t\r\n\r\n", WAIT);
    assert!(
        raw.starts_with(b"HTTP/1.1 505 "),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    let raw = server.raw(
        b"GET /data.bin HTTP/1.2\r\nHost: t\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert!(
        raw.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
}

#[test]
fn a_head_of_many_fields_is_served_and_a_431_reaches_a_client_still_sending() {
    let (_dir, data, server) = served(1000);
    // nginx takes any number of fields within its byte budget; 1000 in
    // all (with Host and Connection) are taken here.
    for fields in [101, 200, 998] {
        let extra: String = (0..fields).map(|i| format!("X-F{i}: v\r\n")).collect();
        let (head, body) = get(&server, "/data.bin", &extra);
        assert_eq!(head.status, 200, "{fields} fields");
        assert!(body == data);
    }
    // A head past the byte budget, still being sent when the answer comes:
    // the 431 must arrive, not be lost to a reset for the unread rest.
    for _ in 0..5 {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let sending = std::thread::spawn(move || {
            let _ = writer.write_all(b"GET /data.bin HTTP/1.1\r\nHost: t\r\nX: ");
            for _ in 0..64 {
                if writer.write_all(&[b'a'; 16 << 10]).is_err() {
                    return;
                }
            }
            let _ = writer.shutdown(std::net::Shutdown::Write);
        });
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("{e} after {:?}", String::from_utf8_lossy(&raw)),
            }
        }
        sending.join().unwrap();
        assert!(
            raw.starts_with(b"HTTP/1.1 431 "),
            "{:?}",
            String::from_utf8_lossy(&raw)
        );
    }
}

#[test]
fn connections_beyond_the_cap_get_503() {
    let dir = TempDir::new("cap");
    std::fs::write(dir.join("f"), b"x").unwrap();
    let server = ServeProcess::start(dir.path(), &["--max-connections", "2"]);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let raw = server.raw(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n", WAIT);
    assert!(
        raw.starts_with(b"HTTP/1.1 503 "),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let raw = server.raw(
        b"GET /f HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert!(
        raw.starts_with(b"HTTP/1.1 200 "),
        "served again once they left"
    );
}

#[test]
fn at_the_cap_the_oldest_connection_without_a_head_makes_room_for_a_new_client() {
    let dir = TempDir::new("evict");
    std::fs::write(dir.join("f"), b"x").unwrap();
    let server = ServeProcess::start(dir.path(), &["--max-connections", "4"]);
    // Four connections that send nothing, the first half a head.
    let mut silent: Vec<TcpStream> = (0..4)
        .map(|_| {
            let s = TcpStream::connect(server.addr).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s
        })
        .collect();
    silent[0].write_all(b"GET /f HTTP/1.1\r\nHo").unwrap();
    // Fresh ones are not taken away: a client at once is refused.
    let raw = server.raw(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n", WAIT);
    assert!(
        raw.starts_with(b"HTTP/1.1 503 "),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    // Once they have waited past the eviction age, the oldest goes.
    std::thread::sleep(Duration::from_millis(3500));
    let raw = server.raw(
        b"GET /f HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert!(
        raw.starts_with(b"HTTP/1.1 200 "),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    let closed: Vec<bool> = silent
        .iter_mut()
        .map(|s| {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            matches!(s.read(&mut [0u8; 64]), Ok(0))
        })
        .collect();
    assert_eq!(closed, [true, false, false, false], "the oldest was closed");
}

#[test]
fn a_thousand_idle_connections_do_not_stop_a_new_client() {
    let (_dir, data, server) = served(100_000);
    let mut idle = Vec::new();
    for i in 0..1000 {
        let mut s = TcpStream::connect(server.addr).expect("connect an idle client");
        // A third send half a head and stall, as slowloris does.
        if i % 3 == 0 {
            s.write_all(b"GET /data.bin HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                .unwrap();
        }
        idle.push(s);
    }
    let started = Instant::now();
    let client = Client::builder().no_env_proxy().build().unwrap();
    let mut stream = client
        .open(&server.url("data.bin"))
        .expect("served despite 1000 idle");
    let mut got = Vec::new();
    while let Some(chunk) = stream.next_chunk().unwrap() {
        got.extend_from_slice(chunk);
    }
    assert!(got == data);
    // A server that could serve only once idle connections left would
    // take its 20 s head and idle timeouts; half that is a bound that a
    // busy machine still meets (it takes well under a second here).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
}

// ---------------------------------------------------------------- interop

#[test]
fn curl_downloads_whole_files_and_ranges() {
    let Some(curl) = support::require_tool("curl") else {
        return;
    };
    let (dir, data, server) = served(3 << 20);
    let out = dir.join("out");
    let status = Command::new(&curl)
        .args(["-sSf", "--noproxy", "*", "-o"])
        .arg(&out)
        .arg(server.url("data.bin"))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(std::fs::read(&out).unwrap() == data);
    let ranged = Command::new(&curl)
        .args(["-sSf", "--noproxy", "*", "-r", "100-199"])
        .arg(server.url("data.bin"))
        .output()
        .unwrap();
    assert!(ranged.status.success());
    assert_eq!(ranged.stdout, data[100..200]);
    // A resume with -C -: curl asks for what follows the 1000 bytes it
    // has, and gets a 206 of exactly that.
    std::fs::write(&out, &data[..1000]).unwrap();
    let resumed = Command::new(&curl)
        .args(["-sSf", "--noproxy", "*", "-C", "-", "-o"])
        .arg(&out)
        .arg(server.url("data.bin"))
        .status()
        .unwrap();
    assert!(resumed.success());
    assert!(std::fs::read(&out).unwrap() == data);
    let log = server.wait_for_log(3);
    let rest = format!("\"GET /data.bin HTTP/1.1\" 206 {}", data.len() - 1000);
    assert!(log[2].contains(&rest), "{log:?}");
}

#[test]
fn aria2c_downloads_with_four_connections() {
    let Some(aria2c) = support::require_tool("aria2c") else {
        return;
    };
    let (dir, data, server) = served(8 << 20);
    let out = dir.join("aria");
    std::fs::create_dir(&out).unwrap();
    let status = Command::new(&aria2c)
        .args([
            "-q",
            "-x4",
            "-s4",
            "--min-split-size=1M",
            "--no-conf",
            "--allow-overwrite=true",
        ])
        .args(["--all-proxy=", "-d"])
        .arg(&out)
        .args(["-o", "got.bin"])
        .arg(server.url("data.bin"))
        .status()
        .unwrap();
    assert!(status.success());
    assert!(std::fs::read(out.join("got.bin")).unwrap() == data);
    let log = server.log();
    let ranged = log.iter().filter(|l| l.contains(" 206 ")).count();
    assert!(ranged >= 2, "aria2c -x4 used ranges: {log:?}");
}

// ------------------------------------------------------------ races in DIR

/// One kept-alive connection that asks and reads answers one at a time.
struct KeepAlive {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl KeepAlive {
    fn new(server: &ServeProcess) -> KeepAlive {
        let stream = TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        KeepAlive {
            stream,
            buf: Vec::new(),
        }
    }

    /// GETs `target`; `None` when the server closed the connection or
    /// gave no answer (a worker blocked for good).
    fn get(&mut self, target: &str) -> Option<(u16, Vec<u8>)> {
        let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        self.stream.write_all(request.as_bytes()).ok()?;
        let mut chunk = [0u8; 16384];
        loop {
            if let Ok(Some((head, used))) = parse_head(&self.buf) {
                let len = head.content_length()? as usize;
                if self.buf.len() >= used + len {
                    let body = self.buf[used..used + len].to_vec();
                    self.buf.drain(..used + len);
                    return Some((head.status, body));
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Runs `swap` in a loop on a thread of its own while `clients` threads
/// each GET `target` `requests` times, or until one goes unanswered;
/// every answer, in order of arrival.
fn while_swapping(
    server: &ServeProcess,
    target: &str,
    clients: usize,
    requests: usize,
    swap: impl Fn() + Send + 'static,
) -> Vec<Option<(u16, Vec<u8>)>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                swap();
            }
        })
    };
    let answers = std::thread::scope(|s| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut conn = KeepAlive::new(server);
                    let mut out = Vec::new();
                    for _ in 0..requests {
                        let answer = conn.get(target);
                        let unanswered = answer.is_none();
                        out.push(answer);
                        if unanswered {
                            break;
                        }
                    }
                    out
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    answers
}

#[cfg(unix)]
#[test]
fn a_directory_swapped_with_a_link_out_of_dir_never_serves_the_outside_file() {
    let dir = TempDir::new("swap");
    let outside = TempDir::new("swap-outside");
    std::fs::write(outside.join("f"), b"OUTSIDE").unwrap();
    std::fs::create_dir(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/f"), b"inside").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("link")).unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    // `d` is a directory, then for a moment the link out, and back: each
    // rename is atomic, so a name checked a moment ago may be the link now.
    let (d, link, real) = (dir.join("d"), dir.join("link"), dir.join("real"));
    let answers = while_swapping(&server, "/d/f", 2, 1500, move || {
        let _ = std::fs::rename(&d, &real);
        let _ = std::fs::rename(&link, &d);
        let _ = std::fs::rename(&d, &link);
        let _ = std::fs::rename(&real, &d);
    });
    let leaked = answers
        .iter()
        .flatten()
        .filter(|(_, body)| body.windows(7).any(|w| w == b"OUTSIDE"))
        .count();
    let inside = answers
        .iter()
        .flatten()
        .filter(|(status, body)| *status == 200 && body == b"inside")
        .count();
    assert_eq!(leaked, 0, "the outside file was served ({inside} inside)");
    assert!(inside > 0, "the file inside was served between swaps");
    assert!(
        answers.iter().all(Option::is_some),
        "every request answered"
    );
}

#[cfg(unix)]
#[test]
fn a_file_swapped_with_a_named_pipe_never_blocks_a_worker() {
    let dir = TempDir::new("fifo");
    std::fs::write(dir.join("f"), b"regular").unwrap();
    support::cli::named_pipe(&dir, "pipe");
    // The FIFO has no writer: a worker that opened it without O_NONBLOCK
    // would wait for one for ever, and its request would go unanswered.
    let server = ServeProcess::start(dir.path(), &["--max-connections", "4"]);
    let (f, pipe, real) = (dir.join("f"), dir.join("pipe"), dir.join("real"));
    let answers = while_swapping(&server, "/f", 2, 1500, move || {
        let _ = std::fs::rename(&f, &real);
        let _ = std::fs::rename(&pipe, &f);
        let _ = std::fs::rename(&f, &pipe);
        let _ = std::fs::rename(&real, &f);
    });
    let answered: Vec<_> = answers.iter().flatten().collect();
    assert_eq!(answered.len(), answers.len(), "a request went unanswered");
    assert_eq!(answered.len(), 3000);
    for (status, body) in answered {
        assert!(
            (*status == 200 && body == b"regular") || *status == 404,
            "{status} {:?}",
            String::from_utf8_lossy(body)
        );
    }
    // Every worker is free: a fresh client is served at once.
    assert_eq!(get(&server, "/f", "").0.status, 200);
}

// ------------------------------------------------------ clients that stall

/// The state (`/proc/net/tcp`'s hex code, `01` established, `04`
/// FIN-WAIT-1) of the TCP socket from local port `local` to remote port
/// `remote` on 127.0.0.1, if there is one.
#[cfg(target_os = "linux")]
fn tcp_state(local: u16, remote: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap(), 16).unwrap();
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (port(fields[1]) == local && port(fields[2]) == remote).then(|| fields[3].to_owned())
    })
}

#[cfg(target_os = "linux")]
#[test]
fn a_client_that_never_reads_is_reset_when_the_send_timeout_ends() {
    use partfetch::serve::{Config, Server};
    use std::sync::{Arc, Mutex};
    let dir = TempDir::new("never-reads");
    // Far more than the socket buffers of both ends hold.
    std::fs::File::create(dir.join("big"))
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.send_timeout = Duration::from_secs(1);
    config.log = {
        let log = Arc::clone(&log);
        Arc::new(move |line| log.lock().unwrap().push(line.to_string()))
    };
    let server = Server::start(config).unwrap();
    let mut client = TcpStream::connect(server.addr()).unwrap();
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let client_port = client.local_addr().unwrap().port();
    // The answer is given up once the client took none of it for the
    // send timeout (the log line comes first, then the close) ...
    let line = loop {
        if let Some(line) = log.lock().unwrap().first() {
            break line.clone();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(line.ends_with("(aborted)"), "{line}");
    // ... and the connection ends with it: reset, not left to the kernel
    // in FIN-WAIT-1 with megabytes that the client will never take.
    let server_port = server.addr().port();
    let state = loop {
        match tcp_state(server_port, client_port) {
            Some(state) if state == "01" => std::thread::sleep(Duration::from_millis(20)),
            other => break other,
        }
    };
    assert_eq!(state, None, "the server's socket is gone");
    server.stop();
}

// ------------------------------------------------------------- resources

/// The resident memory of process `pid`, in KiB.
#[cfg(target_os = "linux")]
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn an_idle_kept_alive_connection_holds_no_file_buffer() {
    // Larger than the 256 KiB a file is sent through.
    let (_dir, data, server) = served(300_000);
    let mut warm = KeepAlive::new(&server);
    assert_eq!(warm.get("/data.bin").unwrap().0, 200);
    let before = rss_kib(server.pid());
    let mut idle: Vec<KeepAlive> = (0..200).map(|_| KeepAlive::new(&server)).collect();
    for conn in &mut idle {
        let (status, body) = conn.get("/data.bin").unwrap();
        assert!(status == 200 && body == data);
    }
    let per_connection = (rss_kib(server.pid()) - before) / 200;
    // A thread's stack pages and a head buffer; it was 256 KiB more.
    assert!(
        per_connection < 96,
        "{per_connection} KiB per idle connection"
    );
    drop(idle);
}

#[test]
fn the_listening_socket_holds_a_burst_of_connects() {
    let Some(ss) = support::require_tool("ss") else {
        return;
    };
    let (_dir, _data, server) = served(10);
    // ss gives a listening socket's backlog as its Send-Q.
    let out = Command::new(ss)
        .args(["-Hltn", &format!("sport = :{}", server.addr.port())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let backlog: u32 = text
        .split_whitespace()
        .nth(2)
        .and_then(|q| q.parse().ok())
        .unwrap_or_else(|| panic!("ss said {text:?}"));
    // std's TcpListener::bind asks for 128; the kernel caps what is asked
    // at net.core.somaxconn.
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(4096);
    assert_eq!(backlog, somaxconn.min(4096), "{text}");
    // A burst of connects is served, every one.
    let burst: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    for mut stream in burst {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
            .write_all(b"GET /empty HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        assert!(
            raw.starts_with(b"HTTP/1.1 200 "),
            "{:?}",
            String::from_utf8_lossy(&raw)
        );
    }
}
