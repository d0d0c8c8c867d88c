//! `--compressed` through the `partfetch` command against the in-process
//! test server: a whole file is asked for gzip-encoded and saved decoded;
//! ranges and resumes are asked for as stored; a body that cannot be
//! decoded fails naming its URL. Without the `gzip` feature the option
//! fails clearly.

mod support;

use support::cli::{self, Outcome};
use support::TempDir;

/// `partfetch -q --retries 1 [extra] URL DIR/out.txt`.
fn fetch(url: &str, dir: &TempDir, extra: &[&str]) -> Outcome {
    let out = dir.join("out.txt");
    let mut args: Vec<&str> = vec!["-q", "--retries", "1"];
    args.extend_from_slice(extra);
    let out = out.to_str().expect("utf-8 path").to_owned();
    args.push(url);
    args.push(&out);
    cli::run(&args)
}

#[cfg(not(feature = "gzip"))]
#[test]
fn compressed_without_the_gzip_feature_fails_saying_so() {
    let dir = TempDir::new("no-gzip");
    let outcome = fetch("http://127.0.0.1:9/a.txt", &dir, &["--compressed"]);
    outcome.assert_error_mentions(&["gzip", "lacks"]);
    assert_ne!(outcome.code, Some(0));
    assert!(dir.entries().is_empty());
}

#[cfg(feature = "gzip")]
mod with_gzip {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::support::gzip::gzip;
    use super::support::{test_data, Body, Ranges, Reply, Request, Server, Step, TempDir};
    use super::*;

    /// Text of `len` bytes that compresses as text does.
    fn text(len: usize) -> Vec<u8> {
        let words = ["alpha ", "beta ", "gamma ", "delta\n", "epsilon "];
        let mut out = Vec::with_capacity(len);
        let mut i = 0usize;
        while out.len() < len {
            out.extend_from_slice(words[i * 7 % 5].as_bytes());
            out.extend_from_slice(format!("{i} ").as_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    /// A server of `plain` that sends it gzip-encoded to a request that
    /// accepts gzip, and as stored (ranges honoured) to any other.
    fn negotiating_server(plain: Vec<u8>) -> Server {
        let encoded = gzip(&plain);
        Server::start(move |req: &Request| {
            let accepts_gzip = req
                .header("accept-encoding")
                .is_some_and(|v| v.contains("gzip"));
            if accepts_gzip {
                Reply::ok(encoded.clone()).header("Content-Encoding", "gzip")
            } else {
                Reply::file(req, &plain, Ranges::Honour)
            }
        })
    }

    #[test]
    fn compressed_asks_for_gzip_once_and_saves_the_decoded_file() {
        let plain = text(300_000);
        let server = negotiating_server(plain.clone());
        let dir = TempDir::new("gzip");
        fetch(&server.url("/a.txt"), &dir, &["--compressed"]).assert_quiet_success();
        assert_eq!(std::fs::read(dir.join("out.txt")).unwrap(), plain);
        assert_eq!(dir.entries(), ["out.txt"], "no partial or state file left");
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "one whole request, not pieces");
        assert_eq!(requests[0].header("accept-encoding"), Some("gzip"));
        assert_eq!(requests[0].header("range"), None);
    }

    #[test]
    fn without_compressed_the_bytes_are_asked_for_as_stored() {
        let plain = text(10_000);
        let server = negotiating_server(plain.clone());
        let dir = TempDir::new("identity");
        fetch(&server.url("/a.txt"), &dir, &[]).assert_quiet_success();
        assert_eq!(std::fs::read(dir.join("out.txt")).unwrap(), plain);
        for request in server.requests() {
            assert_eq!(request.header("accept-encoding"), Some("identity"));
        }
    }

    #[test]
    fn a_resume_asks_for_its_range_as_stored_even_with_compressed() {
        let body = test_data(4 << 20, 31);
        let plain = body.clone();
        let first = Arc::new(AtomicUsize::new(0));
        let server = Server::start(move |req: &Request| {
            // The first answer stops halfway, as an interrupted run.
            if first.fetch_add(1, Ordering::SeqCst) == 0 {
                let half = plain[..plain.len() / 2].to_vec();
                return Reply::new(200)
                    .header("Content-Length", &plain.len().to_string())
                    .header("ETag", "\"v1\"")
                    .body(Body::Steps(vec![Step::Write(half)]));
            }
            Reply::file(req, &plain, Ranges::Honour).header("ETag", "\"v1\"")
        });
        let dir = TempDir::new("gzip-resume");
        let url = server.url("/f");
        assert_ne!(fetch(&url, &dir, &["-n", "1"]).code, Some(0));
        assert!(dir.join("out.txt.partfetch.state").exists());
        fetch(&url, &dir, &["--compressed"]).assert_quiet_success();
        assert_eq!(std::fs::read(dir.join("out.txt")).unwrap(), body);
        let requests = server.requests();
        let resumed = requests.last().unwrap();
        assert_eq!(resumed.range_start(), Some(body.len() as u64 / 2));
        assert_eq!(resumed.header("accept-encoding"), Some("identity"));
    }

    #[test]
    fn a_cut_gzip_download_leaves_nothing_to_resume_and_starts_over() {
        let plain = text(400_000);
        let encoded = gzip(&plain);
        let answered = Arc::new(AtomicUsize::new(0));
        let server = Server::start(move |_: &Request| {
            let reply = match answered.fetch_add(1, Ordering::SeqCst) {
                0 => Reply::new(200)
                    .header("Content-Length", &encoded.len().to_string())
                    .body(Body::Steps(vec![Step::Write(
                        encoded[..encoded.len() / 2].to_vec(),
                    )])),
                _ => Reply::ok(encoded.clone()),
            };
            reply
                .header("Content-Encoding", "gzip")
                .header("ETag", "\"v1\"")
        });
        let dir = TempDir::new("gzip-cut");
        let url = server.url("/a.txt");
        assert_ne!(fetch(&url, &dir, &["--compressed"]).code, Some(0));
        assert!(dir.entries().is_empty(), "left {:?}", dir.entries());
        fetch(&url, &dir, &["--compressed"]).assert_quiet_success();
        assert_eq!(std::fs::read(dir.join("out.txt")).unwrap(), plain);
        for request in server.requests() {
            assert_eq!(request.header("range"), None);
        }
    }

    #[test]
    fn a_corrupt_gzip_body_fails_naming_the_url() {
        let mut encoded = gzip(&text(50_000));
        let n = encoded.len();
        encoded[n - 8] ^= 0xff;
        let server = Server::start(move |_: &Request| {
            Reply::ok(encoded.clone()).header("Content-Encoding", "gzip")
        });
        let dir = TempDir::new("gzip-corrupt");
        let url = server.url("/a.txt");
        let outcome = fetch(&url, &dir, &["--compressed"]);
        assert_ne!(outcome.code, Some(0));
        outcome.assert_error_mentions(&["gzip", "CRC-32", &url]);
        assert!(!dir.join("out.txt").exists());
    }

    #[test]
    fn head_with_compressed_shows_the_head_a_compressed_download_gets() {
        let server = negotiating_server(text(5000));
        let url = server.url("/a.txt");
        let outcome = cli::run(&["-I", "--compressed", &url]);
        outcome.assert_code(0);
        let head = String::from_utf8_lossy(&outcome.stdout).to_ascii_lowercase();
        assert!(head.contains("content-encoding: gzip"), "{head}");
        let request = server.last_request();
        assert_eq!(request.method, "HEAD");
        assert_eq!(request.header("accept-encoding"), Some("gzip"));
        cli::run(&["-I", &url]).assert_code(0);
        assert_eq!(
            server.last_request().header("accept-encoding"),
            Some("identity")
        );
    }

    #[test]
    fn max_filesize_stops_a_small_body_that_decodes_huge() {
        // 32 MiB of zeros gzip to about 32 KiB.
        let bomb = gzip(&vec![0; 32 << 20]);
        let server = Server::start(move |_: &Request| {
            Reply::ok(bomb.clone()).header("Content-Encoding", "gzip")
        });
        let dir = TempDir::new("gzip-bomb");
        let outcome = fetch(
            &server.url("/a.txt"),
            &dir,
            &["--compressed", "--max-filesize", "1M"],
        );
        outcome
            .assert_code(1)
            .assert_error_mentions(&["--max-filesize 1.0 MiB"]);
        assert!(dir.entries().is_empty(), "left {:?}", dir.entries());
    }

    #[test]
    fn an_encoding_other_than_gzip_is_refused_by_name() {
        let server = Server::start(|_: &Request| {
            Reply::ok(&b"\x0b\x02\x80hello\x03"[..]).header("Content-Encoding", "br")
        });
        let dir = TempDir::new("gzip-br");
        let url = server.url("/a.txt");
        let outcome = fetch(&url, &dir, &["--compressed"]);
        assert_ne!(outcome.code, Some(0));
        outcome.assert_error_mentions(&["\"br\"", &url]);
        assert!(!dir.join("out.txt").exists());
    }
}
