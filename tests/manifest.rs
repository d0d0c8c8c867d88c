//! Manifests through the library: every rule of docs/manifest.md against the
//! in-process server.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use partfetch::{ByteSource, Client, ErrorKind};
use support::{read_stream, test_data, Ranges, Reply, Request, Server};

/// A server with fixed files; paths not listed get 404. Files ending in
/// `.parts` are served as given (the tests use `{base}` for the server's
/// own URL where an absolute URL is needed).
fn serve(files: Vec<(&str, Vec<u8>)>) -> Server {
    let files: HashMap<String, Vec<u8>> =
        files.into_iter().map(|(p, b)| (p.to_string(), b)).collect();
    Server::start(move |req: &Request| match files.get(req.path()) {
        Some(body) => Reply::file(req, body, Ranges::Honour),
        None => Reply::status(404),
    })
}

fn client() -> Client {
    Client::builder().no_env_proxy().build().unwrap()
}

fn read_all(url: &str) -> partfetch::Result<Vec<u8>> {
    read_stream(&client(), url)
}

fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn parts_are_concatenated_in_order() {
    let a = test_data(70_000, 1);
    let b = test_data(5, 2);
    let server = serve(vec![
        ("/m.parts", b"a\n--\nb\n--\na\n".to_vec()),
        ("/a", a.clone()),
        ("/b", b.clone()),
    ]);
    let got = read_all(&server.url("/m.parts")).unwrap();
    assert_eq!(got, [a.clone(), b, a].concat());
}

#[test]
fn an_empty_or_small_part_costs_one_request() {
    let small = test_data(1000, 3);
    let pairs = 100;
    let server = serve(vec![
        ("/m.parts", b"empty\n--\nsmall\n--\n".repeat(pairs)),
        ("/empty", Vec::new()),
        ("/small", small.clone()),
    ]);
    let got = read_all(&server.url("/m.parts")).unwrap();
    assert_eq!(got, small.repeat(pairs));
    assert_eq!(server.count("/empty"), pairs);
    assert_eq!(server.count("/small"), pairs);
    assert_eq!(server.requests().len(), 1 + 2 * pairs);
}

#[test]
fn a_part_whose_size_says_one_connection_costs_one_request() {
    let body = test_data(2 << 20, 4);
    let manifest = format!("(size={})\nf\n", body.len());
    let server = serve(vec![
        ("/m.parts", manifest.into_bytes()),
        ("/f", body.clone()),
    ]);
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), body);
    assert_eq!(server.count("/f"), 1);
}

#[test]
fn crlf_comments_blank_lines_and_trailing_separators_are_tolerated() {
    let server = serve(vec![
        (
            "/m.parts",
            b"# a comment\r\n\r\n  one  \r\n\t--\r\n--\r\n# another\r\ntwo\r\n--\r\n".to_vec(),
        ),
        ("/one", b"1".to_vec()),
        ("/two", b"2".to_vec()),
    ]);
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), b"12");
}

#[test]
fn an_empty_manifest_is_an_empty_stream() {
    let server = serve(vec![("/m.parts", b"# nothing\n--\n".to_vec())]);
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), b"");
}

#[test]
fn content_type_marks_a_manifest_without_the_suffix() {
    let server = Server::start(|req: &Request| match req.path() {
        "/list" => {
            Reply::ok(b"/x\n".to_vec()).header("Content-Type", "Text/Parts-Manifest; charset=utf-8")
        }
        "/x" => Reply::ok(b"payload".to_vec()),
        _ => Reply::status(404),
    });
    assert_eq!(read_all(&server.url("/list")).unwrap(), b"payload");
}

#[test]
fn relative_urls_resolve_against_the_final_manifest_url() {
    let server = Server::start(|req: &Request| match req.path() {
        "/old/m.parts" => Reply::redirect(301, "/new/dir/m.parts"),
        "/new/dir/m.parts" => Reply::ok(b"part\n--\n../up\n".to_vec()),
        "/new/dir/part" => Reply::ok(b"A".to_vec()),
        "/new/up" => Reply::ok(b"B".to_vec()),
        _ => Reply::status(404),
    });
    assert_eq!(read_all(&server.url("/old/m.parts")).unwrap(), b"AB");
}

#[test]
fn a_redirect_to_a_parts_path_is_a_manifest() {
    let server = Server::start(|req: &Request| match req.path() {
        "/latest" => Reply::redirect(302, "/v2.parts"),
        "/v2.parts" => Reply::ok(b"x\n".to_vec()),
        "/x" => Reply::ok(b"X".to_vec()),
        _ => Reply::status(404),
    });
    assert_eq!(read_all(&server.url("/latest")).unwrap(), b"X");
}

#[test]
fn alternatives_are_tried_in_order_past_dead_hosts_and_errors() {
    let server = Server::start(|req: &Request| match req.path() {
        "/missing" => Reply::status(404),
        "/broken" => Reply::status(500),
        "/moved" => Reply::redirect(302, "/good"),
        "/good" => Reply::ok(b"GOOD".to_vec()),
        _ => Reply::status(404),
    });
    let dead = dead_port();
    let manifest = format!(
        "http://127.0.0.1:{dead}/x\n{}\n{}\n{}\n",
        server.url("/missing"),
        server.url("/broken"),
        server.url("/moved")
    );
    let manifest_server = serve(vec![("/m.parts", manifest.into_bytes())]);
    assert_eq!(read_all(&manifest_server.url("/m.parts")).unwrap(), b"GOOD");
    assert_eq!(server.count("/missing"), 1);
    assert_eq!(server.count("/broken"), 1);
    assert_eq!(server.count("/good"), 1);
}

#[test]
fn when_every_alternative_fails_the_error_lists_each_cause() {
    let dead = dead_port();
    let server = serve(vec![
        (
            "/m.parts",
            format!("ok\n--\nhttp://127.0.0.1:{dead}/a\n/nope\n").into_bytes(),
        ),
        ("/ok", b"ok".to_vec()),
    ]);
    let err = read_all(&server.url("/m.parts")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{dead}/a")), "{text}");
    assert!(text.contains("not found (404)"), "{text}");
    assert_eq!(err.causes().len(), 2, "{text}");
}

#[test]
fn nested_manifests_expand_in_place() {
    let server = serve(vec![
        ("/top.parts", b"a\n--\ninner.parts\n--\nc\n".to_vec()),
        ("/inner.parts", b"b1\n--\nb2\n".to_vec()),
        ("/a", b"a".to_vec()),
        ("/b1", b"b1".to_vec()),
        ("/b2", b"b2".to_vec()),
        ("/c", b"c".to_vec()),
    ]);
    assert_eq!(read_all(&server.url("/top.parts")).unwrap(), b"ab1b2c");
}

#[test]
fn a_failing_nested_manifest_falls_back_to_the_next_alternative() {
    let server = serve(vec![
        ("/top.parts", b"bad.parts\nplain\n".to_vec()),
        ("/bad.parts", b"(colour=red)\nx\n".to_vec()),
        ("/plain", b"plain".to_vec()),
    ]);
    assert_eq!(read_all(&server.url("/top.parts")).unwrap(), b"plain");
    // The nested manifest was read and refused, not passed over unread.
    assert_eq!(server.count("/bad.parts"), 1);
    assert_eq!(server.count("/plain"), 1);
}

#[test]
fn a_manifest_that_only_refers_to_itself_is_a_loop_error() {
    let server = serve(vec![("/self.parts", b"self.parts\n".to_vec())]);
    let err = read_all(&server.url("/self.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Manifest);
    assert!(err.to_string().contains("loop"), "{err}");
    assert!(err.to_string().contains("/self.parts"), "{err}");
}

#[test]
fn a_manifest_whose_first_part_is_itself_is_a_loop_error() {
    let server = serve(vec![
        ("/head.parts", b"head.parts\n--\nx\n".to_vec()),
        ("/x", b"x".to_vec()),
    ]);
    let err = read_all(&server.url("/head.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Manifest);
    assert!(err.to_string().contains("loop"), "{err}");
}

#[test]
fn nesting_deeper_than_64_is_an_error() {
    let server = Server::start(|req: &Request| {
        let path = req.path();
        match path
            .strip_prefix("/d")
            .and_then(|p| p.strip_suffix(".parts"))
        {
            Some(n) => {
                let n: u32 = n.parse().unwrap();
                Reply::ok(format!("d{}.parts\n--\nx\n", n + 1).into_bytes())
            }
            None if path == "/x" => Reply::ok(b"x".to_vec()),
            None => Reply::status(404),
        }
    });
    let err = read_all(&server.url("/d0.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Manifest);
    assert!(err.to_string().contains("64"), "{err}");
    // 65 manifests, plus at most one window of prefetched `x` parts.
    let bound = 66 + partfetch::engine::DEFAULT_PARALLEL;
    assert!(
        server.requests().len() <= bound,
        "{}",
        server.requests().len()
    );
}

#[test]
fn a_chain_of_distinct_manifests_that_produces_no_byte_ends_after_1024() {
    // Each manifest names only the next one, a URL never seen before: no
    // loop, no nesting (each is a tail call), and no byte ever. After 5000
    // requests the server gives up, so that the test ends even without
    // the bound.
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let server = Server::start(move |req: &Request| {
        if asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 5000 {
            return Reply::status(404);
        }
        match req
            .path()
            .strip_prefix("/tail/")
            .and_then(|p| p.strip_suffix(".parts"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(n) => Reply::ok(format!("{}.parts\n", n + 1).into_bytes()),
            None => Reply::status(404),
        }
    });
    let err = read_all(&server.url("/tail/0.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Manifest, "{err}");
    assert!(
        err.message()
            .contains("1024 manifests expanded without producing a byte"),
        "{err}"
    );
    assert!(
        err.subject()
            .is_some_and(|s| s.ends_with("/tail/1024.parts")),
        "the error names the last manifest: {err}"
    );
    assert!(
        server.requests().len() <= 1025 + partfetch::engine::DEFAULT_PARALLEL,
        "{} requests",
        server.requests().len()
    );
}

#[test]
fn a_manifest_that_includes_itself_midway_ends_at_the_nesting_bound() {
    // Not a tail call (a part follows it), and bytes come between two
    // expansions, so it is not a loop either: it nests until the bound.
    let server = serve(vec![
        ("/self.parts", b"x\n--\nself.parts\n--\ny\n".to_vec()),
        ("/x", b"x".to_vec()),
        ("/y", b"y".to_vec()),
    ]);
    let mut stream = client().open(&server.url("/self.parts")).unwrap();
    let mut got = Vec::new();
    let err = loop {
        match stream.next_chunk() {
            Ok(Some(chunk)) => got.extend_from_slice(chunk),
            Ok(None) => panic!("a self-including manifest must not end quietly"),
            Err(err) => break err,
        }
    };
    assert_eq!(err.kind(), ErrorKind::Manifest);
    assert!(
        err.to_string().contains("more than 64 manifests nested"),
        "{err}"
    );
    assert!(got.len() <= 64 && got.iter().all(|&b| b == b'x'), "{got:?}");
    assert!(server.requests().len() <= 200);
}

#[test]
fn a_stream_records_its_parts_only_when_asked_and_no_more_than_the_bound() {
    use partfetch::manifest::MAX_RECORDED_PARTS;
    let tiny = |parts: usize| b"(*)\nbyte\n--\n".repeat(parts);
    let server = serve(vec![
        ("/full.parts", tiny(MAX_RECORDED_PARTS)),
        ("/over.parts", tiny(MAX_RECORDED_PARTS + 1)),
        ("/byte", b"b".to_vec()),
    ]);
    let read = |path: &str, record: bool| {
        let mut stream = client().open(&server.url(path)).unwrap();
        if record {
            stream.record_parts();
        }
        let mut bytes = 0;
        while let Some(chunk) = stream.next_chunk().unwrap() {
            bytes += chunk.len();
        }
        (stream, bytes)
    };

    let (stream, bytes) = read("/full.parts", true);
    assert_eq!(bytes, MAX_RECORDED_PARTS);
    let parts = stream
        .completed_parts()
        .expect("recorded, within the bound");
    assert_eq!(parts.len(), MAX_RECORDED_PARTS);
    assert_eq!((parts[1].line, parts[1].size), (4, 1));
    assert!(parts.iter().all(|p| p.manifest.path() == "/full.parts"));
    assert!(stream.is_resumable());

    let (stream, bytes) = read("/full.parts", false);
    assert_eq!(bytes, MAX_RECORDED_PARTS);
    assert!(stream.completed_parts().is_none(), "not asked to record");
    assert!(!stream.is_resumable());

    // Past the bound the stream goes on to its end, and keeps the first
    // parts recorded: a later run resumes after them.
    let (stream, bytes) = read("/over.parts", true);
    assert_eq!(bytes, MAX_RECORDED_PARTS + 1);
    let parts = stream.completed_parts().expect("the first parts");
    assert_eq!(parts.len(), MAX_RECORDED_PARTS);
    assert!(stream.is_resumable());

    // Asked too late, it cannot record the parts already done.
    let mut stream = client().open(&server.url("/full.parts")).unwrap();
    stream.next_chunk().unwrap();
    stream.next_chunk().unwrap();
    stream.record_parts();
    while stream.next_chunk().unwrap().is_some() {}
    assert!(stream.completed_parts().is_none());
}

#[test]
fn cacheable_parts_are_fetched_once_and_others_every_time() {
    let server = serve(vec![
        (
            "/m.parts",
            b"(*)\nchorus\n--\nverse\n--\n(*)\nchorus\n--\nverse\n--\n(*)\nchorus\n".to_vec(),
        ),
        ("/chorus", b"C".to_vec()),
        ("/verse", b"v".to_vec()),
    ]);
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), b"CvCvC");
    assert_eq!(server.count("/chorus"), 1);
    assert_eq!(server.count("/verse"), 2);
}

#[test]
fn a_cached_url_skips_a_failing_alternative() {
    let dead = dead_port();
    let server = serve(vec![("/good", b"G".to_vec())]);
    let manifest = format!(
        "(*)\nhttp://127.0.0.1:{dead}/x\n{good}\n--\n(*)\n/elsewhere\n{good}\n",
        good = server.url("/good")
    );
    let manifest_server = serve(vec![("/m.parts", manifest.into_bytes())]);
    assert_eq!(read_all(&manifest_server.url("/m.parts")).unwrap(), b"GG");
    assert_eq!(server.count("/good"), 1);
    assert_eq!(manifest_server.count("/elsewhere"), 0);
}

#[test]
fn an_unmarked_part_never_uses_the_cache() {
    let server = serve(vec![
        ("/m.parts", b"(*)\nc\n--\nc\n".to_vec()),
        ("/c", b"c".to_vec()),
    ]);
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), b"cc");
    assert_eq!(server.count("/c"), 2);
}

#[test]
fn the_cache_does_not_outlive_a_download() {
    let server = serve(vec![
        ("/m.parts", b"(*)\nc\n".to_vec()),
        ("/c", b"c".to_vec()),
    ]);
    let client = client();
    for _ in 0..2 {
        let mut stream = client.open(&server.url("/m.parts")).unwrap();
        while stream.next_chunk().unwrap().is_some() {}
    }
    assert_eq!(server.count("/c"), 2);
}

#[test]
fn a_part_larger_than_the_cache_limit_is_streamed_not_cached() {
    let big = test_data(3000, 3);
    let server = serve(vec![
        ("/m.parts", b"(*)\nbig\n--\n(*)\nbig\n".to_vec()),
        ("/big", big.clone()),
    ]);
    let client = Client::builder()
        .no_env_proxy()
        .cache_limit(1000)
        .build()
        .unwrap();
    let mut stream = client.open(&server.url("/m.parts")).unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next_chunk().unwrap() {
        got.extend_from_slice(chunk);
    }
    assert_eq!(got, [big.clone(), big].concat());
    assert_eq!(server.count("/big"), 2);
}

#[test]
fn a_size_mismatch_fails_the_alternative_and_the_next_serves() {
    let server = serve(vec![
        ("/m.parts", b"(size=4)\nshort\nright\n".to_vec()),
        ("/short", b"abc".to_vec()),
        ("/right", b"abcd".to_vec()),
    ]);
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), b"abcd");
    // The short copy was asked for and refused for its size.
    assert_eq!(server.count("/short"), 1);
    assert_eq!(server.count("/right"), 1);
}

#[test]
fn a_digest_mismatch_fails_the_alternative_before_any_byte_is_handed_on() {
    // sha256("good") and a copy that is corrupt.
    let digest = "770e607624d689265ca6c44884d0807d9b054d23c473c106c72be9de08b7376c";
    let manifest = format!("(sha256={digest})\ncorrupt\ngood\n");
    let server = serve(vec![
        ("/m.parts", manifest.into_bytes()),
        ("/corrupt", b"evil".to_vec()),
        ("/good", b"good".to_vec()),
    ]);
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), b"good");
    // The corrupt copy was fetched and refused for its digest.
    assert_eq!(server.count("/corrupt"), 1);
    assert_eq!(server.count("/good"), 1);
}

#[test]
fn every_alternative_with_a_wrong_digest_is_an_integrity_error() {
    let manifest = format!("(sha256={})\nbad\n", "00".repeat(32));
    let server = serve(vec![
        ("/m.parts", manifest.into_bytes()),
        ("/bad", b"x".to_vec()),
    ]);
    let err = read_all(&server.url("/m.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
}

#[test]
fn a_large_part_with_a_wrong_digest_from_its_only_source_is_fetched_once() {
    // Large enough to come in pieces; from its only alternative, a wrong
    // digest is that source's answer, and asking again would repeat it.
    let manifest = format!("(sha256={})\nbig\n", "00".repeat(32));
    let server = serve(vec![
        ("/m.parts", manifest.into_bytes()),
        ("/big", test_data(5 << 20, 31)),
    ]);
    let err = read_all(&server.url("/m.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert_eq!(
        err.to_string().matches("SHA-256 mismatch").count(),
        1,
        "{err}"
    );
    let firsts = server
        .requests()
        .iter()
        .filter(|r| r.path() == "/big" && r.range_start().unwrap_or(0) == 0)
        .count();
    assert_eq!(firsts, 1, "the part was fetched {firsts} times");
}

#[test]
fn a_cached_copy_is_used_only_when_it_matches_the_parts_attributes() {
    // sha256("good"): the second part asks for other bytes than the cached
    // "AAAA", so the cache is passed over and its next alternative serves.
    let digest = "770e607624d689265ca6c44884d0807d9b054d23c473c106c72be9de08b7376c";
    let manifest = format!(
        "(*)\na\n--\n(*)\n(size=3)\na\nthree\n--\n(*)\n(sha256={digest})\na\ngood\n--\n(*)\n(size=4)\na\n"
    );
    let server = serve(vec![
        ("/m.parts", manifest.into_bytes()),
        ("/a", b"AAAA".to_vec()),
        ("/three", b"333".to_vec()),
        ("/good", b"good".to_vec()),
    ]);
    assert_eq!(
        read_all(&server.url("/m.parts")).unwrap(),
        b"AAAA333goodAAAA"
    );
    // The size and digest checks refuse "/a" from the server as well, so
    // only the first part and the cache hit of the last used its bytes.
    assert_eq!(server.count("/a"), 3);
}

#[test]
fn a_part_with_a_size_or_digest_is_not_served_by_a_manifest() {
    let digest = "770e607624d689265ca6c44884d0807d9b054d23c473c106c72be9de08b7376c";
    let manifest =
        format!("(size=4)\ninner.parts\ngood\n--\n(sha256={digest})\ninner.parts\ngood\n");
    let server = serve(vec![
        ("/m.parts", manifest.into_bytes()),
        ("/inner.parts", b"good\n".to_vec()),
        ("/good", b"good".to_vec()),
    ]);
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), b"goodgood");
    assert_eq!(server.count("/good"), 2);
    // With no plain alternative, the part fails and says why.
    let server = serve(vec![
        ("/m.parts", b"(size=4)\ninner.parts\n".to_vec()),
        ("/inner.parts", b"good\n".to_vec()),
        ("/good", b"good".to_vec()),
    ]);
    let err = read_all(&server.url("/m.parts")).unwrap_err();
    let shown = format!("{err:#}");
    assert!(
        shown.contains("line 1") && shown.contains("must be a plain resource"),
        "{shown}"
    );
    assert_eq!(server.count("/good"), 0);
}

#[test]
fn an_unknown_attribute_is_refused_naming_the_line() {
    let server = serve(vec![
        ("/m.parts", b"x\n--\n(colour=red)\ny\n".to_vec()),
        ("/x", b"x".to_vec()),
    ]);
    let err = read_all(&server.url("/m.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Manifest);
    let text = err.to_string();
    assert!(text.contains("line 3") && text.contains("colour"), "{text}");
}

#[test]
fn malformed_manifests_name_the_url_and_line() {
    let long = format!("x\n--\n{}\n", "a".repeat(9000));
    for (body, line) in [
        (long.into_bytes(), "line 3"),
        (b"x\n--\n\xff\xfe\n".to_vec(), "line 3"),
        (b"x\n--\n(*)\n".to_vec(), "line 3"),
        (b"x\n--\nhttp://[::g]/\n".to_vec(), "line 3"),
    ] {
        let server = serve(vec![("/m.parts", body), ("/x", b"x".to_vec())]);
        let url = server.url("/m.parts");
        let err = read_all(&url).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), ErrorKind::Manifest, "{text}");
        assert!(text.contains(line) && text.contains("/m.parts"), "{text}");
    }
}

/// N in a `Range: bytes=N-` header (open-ended: the rest from N); panics
/// on any other form.
fn open_range_start(asked: &str) -> usize {
    asked
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap()
}

#[test]
fn a_failure_midway_continues_on_the_next_alternative_at_the_same_offset() {
    let data = test_data(100_000, 9);
    let cut = data[..40_000].to_vec();
    let full = data.clone();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(b"cut\nfull\n".to_vec()),
        "/cut" => Reply::truncated(100_000, cut.clone()),
        "/full" => {
            seen.lock()
                .unwrap()
                .push(req.header("range").map(str::to_owned));
            Reply::file(req, &full, Ranges::Honour)
        }
        _ => Reply::status(404),
    });
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), data);
    let ranges = ranges.lock().unwrap();
    assert_eq!(ranges.len(), 1);
    let asked = ranges[0].as_deref().unwrap();
    let offset = open_range_start(asked);
    assert!(offset > 0 && offset <= 40_000, "{asked}");
}

#[test]
fn a_part_with_one_alternative_cut_midway_continues_on_it() {
    let data = test_data(100_000, 21);
    let served = data.clone();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(b"only\n".to_vec()),
        "/only" => {
            let mut seen = seen.lock().unwrap();
            seen.push(req.header("range").map(str::to_owned));
            if seen.len() == 1 {
                // The first answer breaks after 40 000 bytes.
                Reply::truncated(100_000, served[..40_000].to_vec())
            } else {
                Reply::file(req, &served, Ranges::Honour)
            }
        }
        _ => Reply::status(404),
    });
    let got = read_all(&server.url("/m.parts")).unwrap();
    assert!(got == data, "{} bytes, not the part's", got.len());
    let ranges = ranges.lock().unwrap();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    let asked = ranges[1].as_deref().expect("the rest asked for with Range");
    let offset = open_range_start(asked);
    assert!(offset > 0 && offset <= 40_000, "{asked}");
}

#[test]
fn a_part_continued_on_its_source_must_be_the_same_version() {
    let old = test_data(100_000, 22);
    let new = test_data(100_000, 23);
    let if_ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = if_ranges.clone();
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(b"only\n".to_vec()),
        "/only" => {
            let mut seen = seen.lock().unwrap();
            seen.push(req.header("if-range").map(str::to_owned));
            if seen.len() == 1 {
                Reply::truncated(100_000, old[..40_000].to_vec()).header("ETag", "\"e1\"")
            } else {
                // The file changed: If-Range no longer matches, so the
                // whole new version comes back.
                Reply::ok(new.clone()).header("ETag", "\"e2\"")
            }
        }
        _ => Reply::status(404),
    });
    let err = read_all(&server.url("/m.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    let if_ranges = if_ranges.lock().unwrap();
    assert_eq!(if_ranges.len(), 2, "{if_ranges:?}");
    assert_eq!(if_ranges[1].as_deref(), Some("\"e1\""));
}

#[test]
fn a_server_that_ignores_range_is_skipped_forward_not_repeated() {
    let data = test_data(100_000, 10);
    let cut = data[..30_000].to_vec();
    let full = data.clone();
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(b"cut\nfull\n".to_vec()),
        "/cut" => Reply::truncated(100_000, cut.clone()),
        "/full" => Reply::file(req, &full, Ranges::Ignore),
        _ => Reply::status(404),
    });
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), data);
}

#[test]
fn when_no_alternative_can_continue_the_error_says_so() {
    let data = test_data(50_000, 11);
    let cut = data[..20_000].to_vec();
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(b"cut\n/nowhere\n".to_vec()),
        "/cut" => Reply::truncated(50_000, cut.clone()),
        _ => Reply::status(404),
    });
    let mut stream = client().open(&server.url("/m.parts")).unwrap();
    let mut got = 0usize;
    let err = loop {
        match stream.next_chunk() {
            Ok(Some(chunk)) => got += chunk.len(),
            Ok(None) => panic!("a truncated part must not end the stream quietly"),
            Err(err) => break err,
        }
    };
    assert!(got <= 20_000);
    // The error says which part, and where the manifest lists it.
    let shown = err.to_string();
    assert!(shown.contains("continue"), "{shown}");
    assert!(shown.contains("part at line 1"), "{shown}");
    assert!(shown.contains("/m.parts"), "{shown}");
}

#[test]
fn parts_served_chunked_arrive_whole() {
    let a = test_data(70_000, 13);
    let served = a.clone();
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(b"a\n--\n(size=7)\nb\n".to_vec()),
        "/a" => Reply::chunked(served.chunks(9_999).map(<[u8]>::to_vec)),
        "/b" => Reply::chunked(vec!["chu", "nked"]),
        _ => Reply::status(404),
    });
    let got = read_all(&server.url("/m.parts")).unwrap();
    assert_eq!(got.len(), a.len() + 7);
    assert!(got == [a, b"chunked".to_vec()].concat(), "the bytes differ");
}

#[test]
fn download_file_yields_chunks_of_exactly_the_asked_size() {
    let data = test_data(10_000, 12);
    let server = serve(vec![
        ("/m.parts", b"a\n--\na\n--\na\n".to_vec()),
        ("/a", data[..3333].to_vec()),
    ]);
    let chunks: Vec<Vec<u8>> = client()
        .download_file(&server.url("/m.parts"), 1024)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.len() == 1024));
    assert_eq!(chunks.concat(), [&data[..3333]; 3].concat());
}

#[test]
fn a_manifest_of_many_parts_uses_one_connection_when_fetched_sequentially() {
    let mut manifest = String::new();
    for i in 0..300 {
        manifest.push_str(&format!("p{}\n--\n", i % 7));
    }
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(manifest.clone().into_bytes()),
        p if p.starts_with("/p") => Reply::ok(p.as_bytes().to_vec()),
        _ => Reply::status(404),
    });
    let sequential = Client::builder()
        .no_env_proxy()
        .parallel(1)
        .build()
        .unwrap();
    let got = read_stream(&sequential, &server.url("/m.parts")).unwrap();
    assert_eq!(
        got.len(),
        (0..300)
            .map(|i| format!("/p{}", i % 7).len())
            .sum::<usize>()
    );
    assert_eq!(server.connections(), 1);
}

#[test]
fn parts_fetched_in_parallel_arrive_in_order_whatever_their_sizes_and_delays() {
    // 60 parts of pseudo-random sizes, each answered after a pseudo-random
    // delay: later parts often finish first.
    let sizes: Vec<usize> = (0..60u64)
        .map(|i| ((i * 7919) % 300_000) as usize + 1)
        .collect();
    let manifest: String = (0..sizes.len()).map(|i| format!("p{i}\n--\n")).collect();
    let served = sizes.clone();
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(manifest.clone().into_bytes()),
        p => match p.strip_prefix("/p").and_then(|n| n.parse::<usize>().ok()) {
            Some(i) if i < served.len() => Reply::ok(test_data(served[i], i as u64))
                .delay(std::time::Duration::from_millis((i as u64 * 37) % 23)),
            _ => Reply::status(404),
        },
    });
    let expected: Vec<u8> = sizes
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| test_data(n, i as u64))
        .collect();
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), expected);
    let connections = server.connections();
    assert!(
        (2..=2 + partfetch::engine::DEFAULT_PARALLEL).contains(&connections),
        "{connections} connections"
    );
}

#[test]
fn failover_happens_inside_a_prefetched_part() {
    let dead = dead_port();
    let manifest = format!("a\n--\nhttp://127.0.0.1:{dead}/b\n/missing\n/b\n--\n/c\n");
    let server = serve(vec![
        ("/m.parts", manifest.into_bytes()),
        ("/a", test_data(100_000, 1)),
        ("/b", test_data(50_000, 2)),
        ("/c", test_data(10, 3)),
    ]);
    let expected = [
        test_data(100_000, 1),
        test_data(50_000, 2),
        test_data(10, 3),
    ]
    .concat();
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), expected);
    assert_eq!(server.count("/missing"), 1);
}

#[test]
fn a_cached_url_is_fetched_once_even_when_its_parts_are_in_the_window_together() {
    let server = serve(vec![
        (
            "/m.parts",
            b"(*)\nc\n--\nx\n--\n(*)\nc\n--\n(*)\nc\n".to_vec(),
        ),
        ("/c", b"C".to_vec()),
        ("/x", b"x".to_vec()),
    ]);
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), b"CxCC");
    assert_eq!(server.count("/c"), 1);
}

#[test]
fn a_part_failing_in_the_window_fails_the_download_with_its_line() {
    let server = serve(vec![
        ("/m.parts", b"a\n--\na\n--\nmissing\n--\na\n".to_vec()),
        ("/a", b"A".to_vec()),
    ]);
    let err = read_all(&server.url("/m.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("line 5"), "{err}");
}

#[test]
fn the_first_part_streams_before_the_manifest_has_finished_arriving() {
    // The manifest's first part arrives at once, the rest only after a long
    // pause: the first part must not wait for it.
    let pause = std::time::Duration::from_secs(20);
    let server = Server::start(move |req: &Request| match req.path() {
        "/slow.parts" => {
            let rest = b"b\n";
            let first = b"a\n--\n";
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                first.len() + rest.len()
            );
            Reply::raw_steps(vec![
                support::Step::Write([head.as_bytes(), first].concat()),
                support::Step::Sleep(pause),
                support::Step::Write(rest.to_vec()),
            ])
        }
        "/a" => Reply::ok(b"A".to_vec()),
        "/b" => Reply::ok(b"B".to_vec()),
        _ => Reply::status(404),
    });
    let started = std::time::Instant::now();
    let mut stream = client().open(&server.url("/slow.parts")).unwrap();
    assert_eq!(stream.next_chunk().unwrap(), Some(&b"A"[..]));
    assert!(
        started.elapsed() < pause / 2,
        "the first part waited for the whole manifest"
    );
    assert_eq!(server.count("/b"), 0);
}

#[test]
fn a_part_whose_every_source_fails_for_a_moment_is_tried_again() {
    let attempts = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&attempts);
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(b"flaky\n".to_vec()),
        "/flaky" => {
            let mut n = seen.lock().unwrap();
            *n += 1;
            if *n < 3 {
                Reply::status(503)
            } else {
                Reply::ok(b"F".to_vec())
            }
        }
        _ => Reply::status(404),
    });
    assert_eq!(read_all(&server.url("/m.parts")).unwrap(), b"F");
    assert_eq!(*attempts.lock().unwrap(), 3);
}

#[test]
fn a_part_missing_everywhere_is_not_tried_again() {
    let server = serve(vec![("/m.parts", b"gone\n".to_vec())]);
    let err = read_all(&server.url("/m.parts")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(server.count("/gone"), 1);
}

#[test]
fn credentials_go_only_to_the_origin_the_user_gave_not_to_other_hosts_of_a_manifest() {
    let other = serve(vec![("/part", b"B".to_vec())]);
    let manifest = format!("same\n--\n{}\n", other.url("/part"));
    let home = serve(vec![
        ("/m.parts", manifest.into_bytes()),
        ("/same", b"A".to_vec()),
    ]);
    let client = Client::builder()
        .no_env_proxy()
        .header("Authorization", "Bearer secret")
        .header("Cookie", "session=1")
        .header("X-Trace", "kept")
        .build()
        .unwrap();
    assert_eq!(read_stream(&client, &home.url("/m.parts")).unwrap(), b"AB");
    for req in home.requests() {
        assert_eq!(
            req.header("authorization"),
            Some("Bearer secret"),
            "{}",
            req.path()
        );
        assert_eq!(req.header("cookie"), Some("session=1"));
    }
    let at_other = other.requests();
    assert_eq!(at_other.len(), 1);
    assert_eq!(at_other[0].header("authorization"), None);
    assert_eq!(at_other[0].header("cookie"), None);
    assert_eq!(at_other[0].header("x-trace"), Some("kept"));
}
