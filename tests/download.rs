//! The download API as an embedder uses it: `client.download(url)` saved
//! to a path or a writer, with progress, resume after an interruption, a
//! digest, and the same URL read through `std::io::Read`.

mod support;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use partfetch::{Cancel, Client, ErrorKind, Event, Progress, Resume};
use support::{test_data, Body, Ranges, Reply, Request, Server, Step, TempDir};

const MIB: usize = 1 << 20;

/// `body` as a file with an `ETag`, each answer sent at about 16 MiB/s
/// (64 KiB every 4 ms): a server that caps each connection, so that more
/// connections are faster and an interruption finds the download midway.
fn capped_server(body: Vec<u8>) -> Server {
    Server::start(move |req: &Request| {
        let reply = Reply::file(req, &body, Ranges::Honour).header("ETag", "\"v1\"");
        let (first, last) = match req.header("range").map(|_| req.range()) {
            None => (0, body.len() - 1),
            Some(Some(range)) => (*range.start() as usize, *range.end() as usize),
            // `bytes=N-`: to the end.
            Some(None) => match req.range_start() {
                Some(first) => (first as usize, body.len() - 1),
                None => return reply,
            },
        };
        if first >= body.len() {
            return reply;
        }
        let last = last.min(body.len() - 1);
        let mut steps = Vec::new();
        for chunk in body[first..=last].chunks(64 * 1024) {
            steps.push(Step::Write(chunk.to_vec()));
            steps.push(Step::Sleep(Duration::from_millis(4)));
        }
        reply
            .header("Content-Length", &(last + 1 - first).to_string())
            .body(Body::Steps(steps))
    })
}

fn client() -> Client {
    Client::builder().no_env_proxy().build().unwrap()
}

#[test]
fn a_download_interrupted_midway_resumes_over_every_connection_byte_exact() {
    let body = test_data(24 * MIB, 81);
    let server = capped_server(body.clone());
    let url = server.url("/big.iso");
    let dir = TempDir::new("download-resume");
    let path = dir.join("big.iso");

    // The first run is stopped once 8 MiB are in, as a user would stop it.
    let cancel = Cancel::new();
    let first = client()
        .with_cancel(cancel.clone())
        .download(&url)
        .connections(4)
        .on_progress(|p: &Progress| {
            if p.done >= 8 * MIB as u64 {
                cancel.cancel();
            }
        })
        .to_path(&path);
    let err = first.expect_err("the first run was stopped");
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(
        !path.exists(),
        "an unfinished file never has the final name"
    );
    assert!(dir.join("big.iso.partfetch.state").exists());
    let before = server.requests().len();

    let mut fetching = 0;
    let saved = client()
        .download(&url)
        .connections(4)
        .on_progress(|p: &Progress| fetching = fetching.max(p.fetching.unwrap_or(0)))
        .to_path(&path)
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body, "byte-exact");
    assert!(saved.resumed_from >= 8 * MIB as u64, "{saved:?}");
    assert_eq!(saved.bytes, body.len() as u64);
    assert_eq!(saved.path.as_deref(), Some(path.as_path()));
    assert!(fetching >= 2, "resumed over one connection ({fetching})");
    let resumed = &server.requests()[before..];
    assert!(
        resumed.iter().all(|r| r.range_start().is_some()),
        "the second run asks only for ranges"
    );
    assert!(
        !resumed.iter().any(|r| r.range_start() == Some(0)),
        "nothing fetched again from the start"
    );
    assert_eq!(dir.entries(), ["big.iso"], "no side file is left");
}

#[test]
fn the_same_url_reads_through_std_io_read_and_tells_what_it_is() {
    let body = test_data(6 * MIB + 5, 82);
    let served = body.clone();
    let server = Server::start(move |req: &Request| {
        Reply::file(req, &served, Ranges::Honour)
            .header("Content-Type", "application/x-iso9660-image")
            .header("Content-Disposition", "attachment; filename=\"disc.iso\"")
    });
    let mut stream = client().open(&server.url("/get?id=7")).unwrap();
    assert_eq!(stream.content_type(), Some("application/x-iso9660-image"));
    assert_eq!(stream.file_name(), Some("disc.iso"));
    assert_eq!(stream.url().to_string(), server.url("/get?id=7"));
    assert_eq!(stream.length(), Some(body.len() as u64));
    let mut read = Vec::new();
    // Odd-sized reads: chunks cut across the caller's buffers.
    let mut buffer = vec![0; 10_007];
    loop {
        let n = stream.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        read.extend_from_slice(&buffer[..n]);
    }
    assert_eq!(read, body);
}

#[test]
fn progress_is_told_in_order_at_most_ten_times_a_second_and_once_at_the_end() {
    let body = test_data(6 * MIB, 83);
    let server = capped_server(body.clone());
    let dir = TempDir::new("download-progress");
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    let started = std::time::Instant::now();
    client()
        .download(&server.url("/f"))
        .on_progress(move |p: &Progress| seen.lock().unwrap().push(p.clone()))
        .to_path(dir.join("f"))
        .unwrap();
    let took = started.elapsed();
    let reports = reports.lock().unwrap();
    let last = reports.last().unwrap();
    assert!(last.finished && last.done == body.len() as u64, "{last:?}");
    assert_eq!(reports.iter().filter(|p| p.finished).count(), 1);
    assert!(reports.windows(2).all(|w| w[0].done <= w[1].done));
    assert!(reports.iter().all(|p| p.total == Some(body.len() as u64)));
    let most = 2 + took.as_millis() as usize / 100;
    assert!(
        reports.len() <= most,
        "{} reports in {took:?}",
        reports.len()
    );
}

#[test]
fn a_wrong_sha256_fails_as_integrity_and_the_file_never_appears() {
    let body = test_data(5 * MIB, 84);
    let server = capped_server(body.clone());
    let dir = TempDir::new("download-sha256");
    let path = dir.join("f");
    let wrong = "00".repeat(32);
    let err = client()
        .download(&server.url("/f"))
        .sha256(&wrong)
        .to_path(&path)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(!path.exists());
    let right = partfetch::sha256::to_hex(&partfetch::sha256::digest(&body));
    let saved = client()
        .download(&server.url("/f"))
        .sha256(&right)
        .resume(Resume::Never)
        .to_path(&path)
        .unwrap();
    assert_eq!(saved.sha256, Some(partfetch::sha256::digest(&body)));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    let bad = client()
        .download(&server.url("/f"))
        .sha256("xyz")
        .to_path(&path);
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn requiring_a_resume_with_nothing_to_resume_is_a_resume_mismatch() {
    let server = capped_server(test_data(MIB, 85));
    let dir = TempDir::new("download-require");
    let err = client()
        .download(&server.url("/f"))
        .resume(Resume::Require)
        .to_path(dir.join("f"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResumeMismatch, "{err}");
    assert_eq!(server.requests().len(), 0, "refused before any request");
    assert!(dir.entries().is_empty());
}

#[test]
fn a_download_to_a_writer_comes_in_order_and_to_a_directory_under_the_urls_name() {
    let body = test_data(9 * MIB + 3, 86);
    let server = capped_server(body.clone());
    let mut out = Vec::new();
    let saved = client()
        .download(&server.url("/f"))
        .to_writer(&mut out)
        .unwrap();
    assert_eq!(out, body);
    assert_eq!((saved.bytes, saved.path), (body.len() as u64, None));
    let dir = TempDir::new("download-dir");
    let saved = client()
        .download(&server.url("/dir/name.bin"))
        .to_dir(dir.path())
        .unwrap();
    assert_eq!(saved.path, Some(dir.join("name.bin")));
    assert_eq!(std::fs::read(dir.join("name.bin")).unwrap(), body);
}

#[test]
fn a_changed_file_starts_over_with_an_event_naming_the_file() {
    let dir = TempDir::new("download-changed");
    let path = dir.join("f");
    let old = test_data(2 * MIB, 87);
    let new = test_data(2 * MIB, 88);
    // What an interrupted run of the old version left: its first MiB.
    std::fs::write(dir.join("f.partfetch"), &old[..MIB]).unwrap();
    let server = Server::start(move |req: &Request| {
        Reply::file(req, &new, Ranges::Honour).header("ETag", "\"new\"")
    });
    std::fs::write(
        dir.join("f.partfetch.state"),
        format!(
            "partfetch-state 1\nurl {}\nlength {}\nvalidator \"old\"\ndone {MIB}\n",
            server.url("/f"),
            2 * MIB
        ),
    )
    .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let client = Client::builder()
        .no_env_proxy()
        .on_event(move |e: &Event| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let saved = client.download(&server.url("/f")).to_path(&path).unwrap();
    assert_eq!(saved.resumed_from, 0);
    assert_eq!(std::fs::read(&path).unwrap(), test_data(2 * MIB, 88));
    let events = events.lock().unwrap();
    let started_over = events.iter().any(|e| {
        matches!(e, Event::StartingOver { path: p, why: partfetch::StartOver::Changed, .. }
            if p == &path)
    });
    assert!(started_over, "{events:?}");
}

#[cfg(feature = "tls")]
#[test]
fn a_certificate_not_trusted_is_a_tls_error_whose_source_is_the_tls_stacks() {
    let pki = support::TestPki::new();
    let server = Server::https(&pki, |_| Reply::ok("secret"));
    let mut out = Vec::new();
    let err = client()
        .download(&server.url("/f"))
        .to_writer(&mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    let source = std::error::Error::source(&err).expect("the underlying error");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error");
    assert!(
        io.get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        "{io:?}"
    );
    assert!(out.is_empty());
}

#[test]
fn a_manifest_whose_parts_tell_their_sizes_tells_its_length() {
    let parts = [test_data(1000, 89), test_data(70_000, 90), test_data(5, 91)];
    let sized: String = parts
        .iter()
        .enumerate()
        .map(|(i, p)| format!("(size={})\np{i}\n--\n", p.len()))
        .collect();
    let unsized_last = sized.replace("(size=5)\n", "");
    let served = parts.clone();
    let server = Server::start(move |req: &Request| match req.path() {
        "/sized.parts" => Reply::ok(sized.clone()),
        "/unsized.parts" => Reply::ok(unsized_last.clone()),
        path => {
            let i: usize = path.trim_start_matches("/p").parse().unwrap();
            Reply::ok(served[i].clone())
        }
    });
    let stream = client().open(&server.url("/sized.parts")).unwrap();
    assert_eq!(stream.length(), Some(71_005));
    assert!(stream.is_manifest());
    assert_eq!(stream.file_name(), Some("sized"));
    let stream = client().open(&server.url("/unsized.parts")).unwrap();
    assert_eq!(stream.length(), None, "a part without a size");

    let dir = TempDir::new("download-manifest-length");
    let mut total = None;
    let saved = client()
        .download(&server.url("/sized.parts"))
        .on_progress(|p: &Progress| total = p.total)
        .to_path(dir.join("all"))
        .unwrap();
    assert_eq!(total, Some(71_005));
    assert_eq!(saved.bytes, 71_005);
    assert_eq!(std::fs::read(dir.join("all")).unwrap(), parts.concat());
}

#[test]
fn a_manifests_progress_counts_the_parts_fetched_ahead_as_they_arrive() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const AHEAD: usize = 3;
    const PART: usize = 100_000;
    let first = test_data(2_000, 90);
    let ahead: Vec<Vec<u8>> = (0..AHEAD).map(|i| test_data(PART, 91 + i as u64)).collect();
    let manifest: String = std::iter::once(format!("(size={})\n/p0\n--\n", first.len()))
        .chain((1..=AHEAD).map(|i| format!("(size={PART})\n/p{i}\n--\n")))
        .collect();
    // The first part stalls after its first half until the parts after
    // it are served, then past the meter's tenth of a second.
    let served_ahead = Arc::new(AtomicUsize::new(0));
    let all_ahead = Arc::new(AtomicBool::new(false));
    let (count, flag) = (Arc::clone(&served_ahead), Arc::clone(&all_ahead));
    let (first_part, ahead_parts) = (first.clone(), ahead.clone());
    let server = Server::start(move |req: &Request| match req.path() {
        "/m.parts" => Reply::ok(manifest.clone()),
        "/p0" => Reply::new(200)
            .header("Content-Length", &first_part.len().to_string())
            .body(Body::Steps(vec![
                Step::Write(first_part[..1000].to_vec()),
                Step::Until(Arc::clone(&flag), Duration::from_secs(10)),
                Step::Sleep(Duration::from_millis(300)),
                Step::Write(first_part[1000..].to_vec()),
            ])),
        path => {
            let i: usize = path[2..].parse().unwrap();
            if count.fetch_add(1, Ordering::SeqCst) + 1 == AHEAD {
                flag.store(true, Ordering::SeqCst);
            }
            Reply::ok(ahead_parts[i - 1].clone())
        }
    });
    let dir = TempDir::new("download-ahead");
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    let client = Client::builder()
        .no_env_proxy()
        .parallel(AHEAD)
        .build()
        .unwrap();
    client
        .download(&server.url("/m.parts"))
        .on_progress(move |p: &Progress| seen.lock().unwrap().push(p.clone()))
        .to_path(dir.join("m"))
        .unwrap();
    let reports = reports.lock().unwrap();
    // While the first part is still being written, the progress has the
    // parts received after it.
    let during_first = reports
        .iter()
        .filter(|p| p.parts == Some(0) && !p.finished)
        .map(|p| p.done)
        .max();
    assert!(
        during_first.is_some_and(|done| done > first.len() as u64),
        "the parts fetched ahead are counted: {during_first:?} of {reports:?}"
    );
    assert!(reports.windows(2).all(|w| w[0].done <= w[1].done));
    let last = reports.last().unwrap();
    let total = (first.len() + AHEAD * PART) as u64;
    assert_eq!((last.done, last.total), (total, Some(total)));
    assert_eq!(served_ahead.load(Ordering::SeqCst), AHEAD);
}
