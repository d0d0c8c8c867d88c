//! Metalink documents through the `partfetch` command: each file saved
//! under DIR by its name from its mirrors, its size and hashes checked
//! (exit 6 on a mismatch), hostile documents refused, and a document
//! found by its suffix or its content type.

mod support;

use std::sync::Arc;
use std::time::Duration;

use partfetch::engine::HTTP_PIECE as PIECE;
use partfetch::sha256;
use support::cli;
use support::{test_data, Body, Ranges, Reply, Request, Server, Step, TempDir};

const NS: &str = "urn:ietf:params:xml:ns:metalink";

/// Serves each `(path, bytes)` with ranges, and `/doc.meta4` (or
/// `/doc`, as `application/metalink4+xml`) as `document` once set.
fn server(files: Vec<(&'static str, Vec<u8>)>) -> Server {
    let files = Arc::new(files);
    Server::start(
        move |req: &Request| match files.iter().find(|(path, _)| *path == req.path()) {
            Some((_, bytes)) => Reply::file(req, bytes, Ranges::Honour).header("ETag", "\"v1\""),
            None => Reply::status(404),
        },
    )
}

/// A `<file>` element: its name, size, SHA-256 and URLs with priorities.
fn file_element(name: &str, bytes: &[u8], sha: Option<[u8; 32]>, urls: &[(u32, String)]) -> String {
    let mut out = format!("<file name=\"{name}\">\n<size>{}</size>\n", bytes.len());
    if let Some(sha) = sha {
        out += &format!("<hash type=\"sha-256\">{}</hash>\n", sha256::to_hex(&sha));
    }
    for (priority, url) in urls {
        out += &format!("<url priority=\"{priority}\">{url}</url>\n");
    }
    out + "</file>\n"
}

fn document(files: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metalink xmlns=\"{NS}\">\n{}</metalink>\n",
        files.concat()
    )
}

fn write_document(dir: &TempDir, text: &str) -> String {
    let path = dir.join("files.meta4");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn run(document: &str, out: &std::path::Path) -> cli::Outcome {
    cli::run(&[
        "-q",
        "-n",
        "4",
        "--retries",
        "1",
        document,
        out.to_str().unwrap(),
    ])
}

#[test]
fn every_file_is_saved_by_name_from_its_mirrors() {
    let a = test_data(3 << 20, 1);
    let b = test_data(100_000, 2);
    let one = server(vec![("/a.bin", a.clone()), ("/b.bin", b.clone())]);
    let two = server(vec![
        ("/mirror/a.bin", a.clone()),
        ("/mirror/b.bin", b.clone()),
    ]);
    let doc = document(&[
        file_element(
            "a.bin",
            &a,
            Some(sha256::digest(&a)),
            &[(2, two.url("/mirror/a.bin")), (1, one.url("/a.bin"))],
        ),
        file_element(
            "sub/b.bin",
            &b,
            None,
            &[(1, one.url("/b.bin")), (2, two.url("/mirror/b.bin"))],
        ),
    ]);
    let tmp = TempDir::new("metalink-two");
    let source = write_document(&tmp, &doc);
    let out = tmp.join("out");
    run(&source, &out).assert_quiet_success();
    assert!(std::fs::read(out.join("a.bin")).unwrap() == a);
    assert!(std::fs::read(out.join("sub/b.bin")).unwrap() == b);
    // The first request for a file goes to its highest priority (lowest
    // number) URL.
    assert_eq!(one.requests()[0].path(), "/a.bin");
}

#[test]
fn a_whole_file_hash_mismatch_exits_6_and_leaves_no_finished_file() {
    let a = test_data(200_000, 3);
    let one = server(vec![("/a.bin", a.clone())]);
    let wrong = sha256::digest(b"something else");
    let doc = document(&[file_element(
        "a.bin",
        &a,
        Some(wrong),
        &[(1, one.url("/a.bin"))],
    )]);
    let tmp = TempDir::new("metalink-hash");
    let source = write_document(&tmp, &doc);
    let out = tmp.join("out");
    run(&source, &out)
        .assert_code(6)
        .assert_error_mentions(&["checksum mismatch", "a.bin"]);
    assert!(!out.join("a.bin").exists());
}

#[test]
fn a_size_mismatch_exits_6() {
    let a = test_data(50_000, 4);
    let one = server(vec![("/a.bin", a.clone())]);
    let doc = document(&[file_element(
        "a.bin",
        &a[..40_000],
        None,
        &[(1, one.url("/a.bin"))],
    )]);
    let tmp = TempDir::new("metalink-size");
    let out = tmp.join("out");
    run(&write_document(&tmp, &doc), &out)
        .assert_code(6)
        .assert_error_mentions(&["50000 bytes", "40000"]);
    assert!(!out.join("a.bin").exists());
}

#[test]
fn a_name_outside_the_directory_is_refused_before_any_request() {
    let one = server(vec![]);
    for name in ["../escape.bin", "/tmp/escape.bin", "a/../../escape.bin"] {
        let doc = document(&[file_element(name, b"x", None, &[(1, one.url("/x"))])]);
        let tmp = TempDir::new("metalink-name");
        let out = tmp.join("out");
        run(&write_document(&tmp, &doc), &out)
            .assert_code(1)
            .assert_error_mentions(&[name, "files.meta4"]);
        assert!(!tmp.join("escape.bin").exists());
    }
    assert_eq!(one.requests().len(), 0);
}

#[test]
fn a_symbolic_link_below_the_directory_is_not_followed_out() {
    let b = test_data(1000, 10);
    let one = server(vec![("/b.bin", b.clone())]);
    let tmp = TempDir::new("metalink-link");
    let out = tmp.join("out");
    let outside = tmp.join("outside");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("sub")).unwrap();
    std::os::unix::fs::symlink(outside.join("c.bin"), out.join("c.bin")).unwrap();
    for name in ["sub/b.bin", "c.bin"] {
        let doc = document(&[file_element(name, &b, None, &[(1, one.url("/b.bin"))])]);
        run(&write_document(&tmp, &doc), &out)
            .assert_code(7)
            .assert_error_mentions(&["symbolic link"]);
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn hostile_xml_is_refused_with_a_clear_error() {
    let tmp = TempDir::new("metalink-hostile");
    let bomb = format!(
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>\
         <metalink xmlns=\"{NS}\"><file name=\"&lol2;\"/></metalink>"
    );
    run(&write_document(&tmp, &bomb), &tmp.join("out"))
        .assert_code(1)
        .assert_error_mentions(&["DOCTYPE", "files.meta4"]);
    let deep = format!("<metalink xmlns=\"{NS}\">{}", "<x>".repeat(10_000));
    run(&write_document(&tmp, &deep), &tmp.join("out"))
        .assert_code(1)
        .assert_error_mentions(&["nested more than 32 deep"]);
    assert!(!tmp.join("out").exists());
}

#[test]
fn a_metalink_url_is_followed_by_suffix_and_by_content_type() {
    let a = test_data(300_000, 5);
    let files = server(vec![("/a.bin", a.clone())]);
    let doc = document(&[file_element(
        "a.bin",
        &a,
        Some(sha256::digest(&a)),
        &[(1, files.url("/a.bin"))],
    )]);
    let docs = Server::start(move |req: &Request| match req.path() {
        "/files.meta4" => Reply::ok(doc.clone()),
        "/files" => Reply::ok(doc.clone()).header("Content-Type", "application/metalink4+xml"),
        _ => Reply::status(404),
    });
    for path in ["/files.meta4", "/files"] {
        let tmp = TempDir::new("metalink-url");
        let out = tmp.join("out");
        std::fs::create_dir(&out).unwrap();
        run(&docs.url(path), &out).assert_quiet_success();
        assert!(std::fs::read(out.join("a.bin")).unwrap() == a, "{path}");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "{path}");
    }
}

/// Serves `bytes` at any path with ranges, its first piece slowly (64 KiB
/// a millisecond), so that the download is spread over every source
/// rather than taken as one fast stream from the first.
fn slow_start_server(bytes: Vec<u8>) -> Server {
    slow_start_server_with(bytes, Vec::new())
}

/// [`slow_start_server`], each answer with the header fields `fields`.
fn slow_start_server_with(bytes: Vec<u8>, fields: Vec<(String, String)>) -> Server {
    Server::start(move |req: &Request| {
        let reply = if req.range_start() != Some(0) {
            Reply::file(req, &bytes, Ranges::Honour)
        } else {
            let mut steps = Vec::new();
            for chunk in bytes[..PIECE as usize].chunks(64 * 1024) {
                steps.push(Step::Write(chunk.to_vec()));
                steps.push(Step::Sleep(Duration::from_millis(1)));
            }
            Reply::new(206)
                .header(
                    "Content-Range",
                    &format!("bytes 0-{}/{}", PIECE - 1, bytes.len()),
                )
                .header("Content-Length", &PIECE.to_string())
                .header("Accept-Ranges", "bytes")
                .body(Body::Steps(steps))
        };
        fields
            .iter()
            .fold(reply, |reply, (name, value)| reply.header(name, value))
    })
}

/// `<pieces>` of SHA-256 over `length` bytes each.
fn pieces_element(bytes: &[u8], length: usize) -> String {
    let hashes: String = bytes
        .chunks(length)
        .map(|c| format!("<hash>{}</hash>", sha256::to_hex(&sha256::digest(c))))
        .collect();
    format!("<pieces length=\"{length}\" type=\"sha-256\">{hashes}</pieces>\n")
}

#[test]
fn a_small_file_whose_first_mirror_sends_wrong_bytes_completes_from_the_other() {
    // 3 MiB come whole in the first answer: still checked piece by piece,
    // and the pieces fetched again from the other mirror.
    let good = test_data(3 << 20, 7);
    let mut bad = good.clone();
    bad[1000] ^= 0xff;
    let right = Server::start({
        let good = good.clone();
        move |req: &Request| Reply::file(req, &good, Ranges::Honour)
    });
    let wrong = Server::start(move |req: &Request| Reply::file(req, &bad, Ranges::Honour));
    let urls = [(1, wrong.url("/f.bin")), (2, right.url("/f.bin"))];
    saved_despite_a_wrong_mirror(&good, &urls, None, "small");
    assert_eq!(wrong.requests().len(), 1, "one request, whole");
    assert!(!right.requests().is_empty());
}

#[test]
fn a_mirror_serving_wrong_bytes_is_dropped_at_the_piece_and_the_file_completes() {
    let good = test_data(8 << 20, 6);
    let mut bad = good.clone();
    // One wrong byte in every 256 KiB piece.
    for at in (1000..bad.len()).step_by(256 * 1024) {
        bad[at] ^= 0xff;
    }
    // The wrong mirror first (its answer is the one read as it streams),
    // then second (a worker's).
    for wrong_first in [true, false] {
        let right = slow_start_server(good.clone());
        let wrong = slow_start_server(bad.clone());
        let (one, two) = match wrong_first {
            true => (&wrong, &right),
            false => (&right, &wrong),
        };
        let urls = [(1, one.url("/f.bin")), (2, two.url("/f.bin"))];
        let digest = Some(sha256::digest(&good));
        saved_despite_a_wrong_mirror(&good, &urls, digest, &format!("wrong first: {wrong_first}"));
        assert!(!wrong.requests().is_empty() && !right.requests().is_empty());
    }
}

/// Saves `good` with `-n 4` through a Metalink document naming `urls`,
/// with 256 KiB piece hashes and the whole file's `digest`, one mirror
/// sending wrong bytes: the mirror is dropped, told, and the file saved
/// whole (`case` names the run).
fn saved_despite_a_wrong_mirror(
    good: &[u8],
    urls: &[(u32, String)],
    digest: Option<[u8; 32]>,
    case: &str,
) {
    let file = file_element("f.bin", good, digest, urls)
        .replace("</file>", &(pieces_element(good, 256 * 1024) + "</file>"));
    let tmp = TempDir::new("metalink-bad-mirror");
    let out = tmp.join("out");
    let outcome = cli::run(&[
        "-n",
        "4",
        "--retries",
        "1",
        &write_document(&tmp, &document(&[file])),
        out.to_str().unwrap(),
    ]);
    outcome.assert_code(0);
    assert!(
        outcome.stderr.contains("piece") && outcome.stderr.contains("does not match its hash"),
        "{case}: the mirror dropped is told: {}",
        outcome.stderr
    );
    assert!(std::fs::read(out.join("f.bin")).unwrap() == good, "{case}");
}

#[test]
fn without_a_whole_file_hash_wrong_pieces_exit_6() {
    let good = test_data(300_000, 7);
    let mut bad = good.clone();
    bad[150_000] ^= 1;
    let one = server(vec![("/f.bin", bad)]);
    let file = file_element("f.bin", &good, None, &[(1, one.url("/f.bin"))])
        .replace("</file>", &(pieces_element(&good, 64 * 1024) + "</file>"));
    let tmp = TempDir::new("metalink-pieces");
    let out = tmp.join("out");
    run(&write_document(&tmp, &document(&[file])), &out)
        .assert_code(6)
        .assert_error_mentions(&["piece 2 does not match"]);
    assert!(!out.join("f.bin").exists());
}

/// RFC 3230's form of a SHA-256: base64.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            match i <= group.len() {
                true => out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char),
                false => out.push('='),
            }
        }
    }
    out
}

#[test]
fn a_servers_duplicate_links_become_mirrors_and_its_digest_is_checked() {
    let bytes = test_data(8 << 20, 8);
    let mirror = server(vec![("/copy/f.bin", bytes.clone())]);
    let fields = vec![
        (
            "Link".to_owned(),
            format!(
                "<{}>; rel=duplicate; pri=1; geo=de, <http://127.0.0.1:1/x>; rel=describedby",
                mirror.url("/copy/f.bin")
            ),
        ),
        (
            "Digest".to_owned(),
            format!("SHA-256={}", base64(&sha256::digest(&bytes))),
        ),
        ("ETag".to_owned(), "\"v1\"".to_owned()),
    ];
    let origin = slow_start_server_with(bytes.clone(), fields);
    let tmp = TempDir::new("metalink-http");
    let out = tmp.join("f.bin");
    cli::run(&[
        "-q",
        "-n",
        "4",
        &origin.url("/f.bin"),
        out.to_str().unwrap(),
    ])
    .assert_quiet_success();
    assert!(std::fs::read(&out).unwrap() == bytes);
    assert!(
        !mirror.requests().is_empty(),
        "the mirror a Link field names serves pieces"
    );
}

#[test]
fn a_digest_field_that_does_not_match_exits_6() {
    let bytes = test_data(2 << 20, 9);
    let wrong = base64(&sha256::digest(b"another file"));
    let served = bytes.clone();
    let origin = Server::start(move |req: &Request| {
        Reply::file(req, &served, Ranges::Honour).header("Digest", &format!("sha-256={wrong}"))
    });
    let tmp = TempDir::new("metalink-digest");
    let out = tmp.join("f.bin");
    cli::run(&["-q", &origin.url("/f.bin"), out.to_str().unwrap()])
        .assert_code(6)
        .assert_error_mentions(&["checksum mismatch"]);
    assert!(!out.exists());
}

#[test]
fn mirror_and_checksum_options_are_refused_for_a_metalink() {
    let tmp = TempDir::new("metalink-options");
    let doc = document(&[file_element(
        "a",
        b"a",
        None,
        &[(1, "http://127.0.0.1:1/a".into())],
    )]);
    let source = write_document(&tmp, &doc);
    let out = tmp.join("out");
    let hex = "0".repeat(64);
    for extra in [
        ["--mirror", "http://127.0.0.1:1/b"],
        ["--checksum", &format!("sha256={hex}")],
    ] {
        cli::run(&[extra[0], extra[1], &source, out.to_str().unwrap()])
            .assert_code(2)
            .assert_error_mentions(&["--mirror and --checksum are for one URL"]);
    }
}
