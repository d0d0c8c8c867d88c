//! Metalink documents through the `partfetch` command: each file saved
//! under DIR by its name from its mirrors, its size and hashes checked
//! (exit 6 on a mismatch), hostile documents refused, and a document
//! found by its suffix or its content type.

mod support;

use std::sync::Arc;

use partfetch::sha256;
use support::cli;
use support::{test_data, Ranges, Reply, Request, Server, TempDir};

const NS: &str = "urn:ietf:params:xml:ns:metalink";

/// Serves each `(path, bytes)` with ranges, and `/doc.meta4` (or
/// `/doc`, as `application/metalink4+xml`) as `document` once set.
fn server(files: Vec<(&'static str, Vec<u8>)>) -> Server {
    let files = Arc::new(files);
    Server::start(
        move |req: &Request| match files.iter().find(|(path, _)| *path == req.path()) {
            Some((_, bytes)) => Reply::file(req, bytes, Ranges::Honour),
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
