//! Torrents downloaded from a swarm on 127.0.0.1: seeds started by the
//! test (`support::seed`), named by a tracker that is a test HTTP server.
//! The command and the library, single- and multi-file torrents, a seed
//! that corrupts a piece, a run killed half-way and continued, data found
//! on disk without a control file, and hostile `.torrent` files.
//!
//! Interop with real clients (Transmission, aria2c) through a real
//! tracker is `tests/swarm.rs`, which needs root for its namespaces.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use partfetch::{Client, Event, Progress};
use support::cli::{self, run};
use support::seed::{Behaviour, Seed, Torrent, Tracker};
use support::{test_data, TempDir};

const PIECE: u64 = 64 * 1024;

fn write_torrent(dir: &TempDir, torrent: &Torrent) -> String {
    let path = dir.join("t.torrent");
    std::fs::write(&path, &torrent.metainfo).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn the_command_saves_a_single_file_torrent_from_two_seeds() {
    let data = test_data(3 * 1024 * 1024 + 12345, 1);
    // Each seed pauses 2 ms a block, so that the download lasts long
    // enough (about 0.2 s) for both to be dialled even on a busy machine:
    // at full speed one seed could send every piece before the other's
    // handshake.
    let pace = Behaviour::Slow(std::time::Duration::from_millis(2));
    let (torrent, seeds, tracker) = swarm(
        |url| Torrent::single("big.bin", &data, PIECE, url),
        &[pace, pace],
    );
    let dir = TempDir::new("torrent-single");
    let file = write_torrent(&dir, &torrent);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    run(&[&file, out.to_str().unwrap(), "-q"]).assert_quiet_success();
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), data);
    assert!(!out.join("big.bin.partfetch.state").exists());
    // Both seeds were used, and the tracker heard started and completed.
    let sent: Vec<u64> = seeds.iter().map(Seed::sent).collect();
    assert!(sent.iter().all(|&n| n > 0), "{sent:?}");
    assert!(sent.iter().sum::<u64>() >= data.len() as u64, "{sent:?}");
    let announces = tracker.announces.lock().unwrap().clone();
    assert!(announces[0].contains("event=started"), "{announces:?}");
    assert!(
        announces.iter().any(|a| a.contains("event=completed")),
        "{announces:?}"
    );
}

/// A server answering every request with `torrent`'s `.torrent`, served
/// as `content_type`.
fn serve_torrent(torrent: &Torrent, content_type: &'static str) -> support::Server {
    let metainfo = torrent.metainfo.clone();
    support::Server::start(move |_| {
        support::Reply::ok(metainfo.clone()).header("Content-Type", content_type)
    })
}

/// A client, and the events it tells.
fn recording_client() -> (Client, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    let client = Client::builder()
        .on_event(move |e| log.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    (client, events)
}

/// Seeds (one per behaviour) and a tracker naming them, and the torrent
/// `make` builds for that tracker's URL. A torrent's info-hash does not
/// depend on its announce URL, so the seeds can start from a draft.
fn swarm(
    make: impl Fn(&str) -> Torrent,
    behaviours: &[Behaviour],
) -> (Torrent, Vec<Seed>, Tracker) {
    let draft = make("http://127.0.0.1:9/announce");
    let seeds: Vec<Seed> = behaviours.iter().map(|b| Seed::start(&draft, *b)).collect();
    let addrs: Vec<_> = seeds.iter().map(Seed::addr).collect();
    let tracker = Tracker::start(&addrs);
    (make(&tracker.url()), seeds, tracker)
}

#[test]
fn the_library_saves_a_multi_file_torrent_and_reports_its_peers() {
    let files = vec![
        ("a/one.txt", test_data(1, 2)),
        ("a/empty", Vec::new()),
        ("two.bin", test_data(PIECE as usize * 3 + 7, 3)),
        ("three.bin", test_data(777_777, 4)),
    ];
    let (torrent, _seeds, _tracker) = swarm(
        |url| Torrent::multi("set", &files, PIECE, url),
        // Slow enough for a progress call (ten a second) while it runs.
        &[Behaviour::Slow(Duration::from_millis(5))],
    );
    let dir = TempDir::new("torrent-multi");
    let file = write_torrent(&dir, &torrent);
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let log = seen.clone();
    let client = Client::new().unwrap();
    let saved = client
        .torrent(&file)
        .on_progress(move |p| log.lock().unwrap().push(p.clone()))
        .to_dir(dir.path())
        .unwrap();
    assert_eq!(saved.path.as_deref(), Some(dir.join("set").as_path()));
    assert_eq!(saved.files, Some(4));
    assert_eq!(saved.bytes, torrent.data.len() as u64);
    for (path, body) in &files {
        assert_eq!(
            &std::fs::read(dir.join("set").join(path)).unwrap(),
            body,
            "{path}"
        );
    }
    let seen = seen.lock().unwrap();
    assert!(seen.last().unwrap().finished);
    assert!(
        seen.iter()
            .any(|p| p.peers.is_some_and(|c| c.connected == 1 && c.seeds == 1)),
        "a progress call counts the seed"
    );
}

#[test]
fn a_seed_that_corrupts_a_piece_does_not_spoil_the_download() {
    let data = test_data(16 * PIECE as usize, 5);
    let (torrent, seeds, _tracker) = swarm(
        |url| Torrent::single("f.bin", &data, PIECE, url),
        &[Behaviour::Corrupts(3), Behaviour::Honest],
    );
    let dir = TempDir::new("torrent-corrupt");
    let file = write_torrent(&dir, &torrent);
    let (client, events) = recording_client();
    client.torrent(&file).to_dir(dir.path()).unwrap();
    assert_eq!(std::fs::read(dir.join("f.bin")).unwrap(), data);
    // Piece 3 may have come from the honest seed alone; when the corrupting
    // one sent it, it failed. Only the corrupting seed is ever banned.
    let events = events.lock().unwrap();
    let corrupting = seeds[0].addr();
    for event in events.iter() {
        if let Event::PeerBanned { addr } = event {
            assert_eq!(*addr, corrupting, "{events:?}");
        }
        if let Event::PieceFailed { piece } = event {
            assert_eq!(*piece, 3, "{events:?}");
        }
    }
}

#[test]
fn a_seed_that_sends_bad_pieces_is_banned_and_the_rest_comes_from_another() {
    let data = test_data(16 * PIECE as usize, 13);
    let (torrent, seeds, _tracker) = swarm(
        |url| Torrent::single("f.bin", &data, PIECE, url),
        // The honest one slow, so the other sends pieces alone.
        &[
            Behaviour::CorruptsAll,
            Behaviour::Slow(Duration::from_millis(5)),
        ],
    );
    let dir = TempDir::new("torrent-ban");
    let file = write_torrent(&dir, &torrent);
    let (client, events) = recording_client();
    client.torrent(&file).to_dir(dir.path()).unwrap();
    assert_eq!(std::fs::read(dir.join("f.bin")).unwrap(), data);
    let banned: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::PeerBanned { addr } => Some(*addr),
            _ => None,
        })
        .collect();
    assert_eq!(banned, [seeds[0].addr()]);
}

#[test]
fn a_torrent_from_a_corrupting_seed_alone_never_completes_wrongly() {
    // With only a seed that corrupts piece 1, every other piece arrives
    // and piece 1 never verifies: the download must not end "complete".
    let data = test_data(4 * PIECE as usize, 6);
    let (torrent, _seeds, _tracker) = swarm(
        |url| Torrent::single("f.bin", &data, PIECE, url),
        &[Behaviour::Corrupts(1)],
    );
    let dir = TempDir::new("torrent-bad-only");
    let file = write_torrent(&dir, &torrent);
    let mut child = cli::command()
        .args([&file, dir.path().to_str().unwrap(), "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The pieces that verify go to the control file for the next run.
    let state = dir.join("f.bin.partfetch.state");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains("have ")) {
        assert!(Instant::now() < deadline, "no checkpoint");
        assert!(
            child.try_wait().unwrap().is_none(),
            "it ended without piece 1"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it ended without piece 1"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let state = std::fs::read_to_string(&state).unwrap();
    assert!(
        state.contains(&partfetch::sha1::to_hex(&torrent.info_hash)),
        "{state}"
    );
    assert!(!state.contains("have 0-3"), "piece 1 listed: {state}");
}

/// The command downloading a 64-piece `f.bin` from one slow seed,
/// waited for until its control file names pieces (then it is surely
/// downloading, with pieces on disk).
struct SlowRun {
    data: Vec<u8>,
    torrent: Torrent,
    dir: TempDir,
    file: String,
    state: std::path::PathBuf,
    child: std::process::Child,
    slow: Vec<Seed>,
    _tracker: Tracker,
}

impl SlowRun {
    fn start(label: &str, seed: u64) -> SlowRun {
        let data = test_data(64 * PIECE as usize, seed);
        let (torrent, slow, tracker) = swarm(
            |url| Torrent::single("f.bin", &data, PIECE, url),
            &[Behaviour::Slow(Duration::from_millis(20))],
        );
        let dir = TempDir::new(label);
        let file = write_torrent(&dir, &torrent);
        let state = dir.join("f.bin.partfetch.state");
        let child = cli::command()
            .args([&file, dir.path().to_str().unwrap(), "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains("have ")) {
            assert!(Instant::now() < deadline, "no checkpoint");
            std::thread::sleep(Duration::from_millis(50));
        }
        SlowRun {
            data,
            torrent,
            dir,
            file,
            state,
            child,
            slow,
            _tracker: tracker,
        }
    }

    /// SIGKILL, and the slow seed gone; then an honest fast seed, named
    /// by a new tracker in the `.torrent` (the same info-hash).
    fn kill_and_reseed(&mut self) -> (Seed, Tracker) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.slow.clear();
        let seed = Seed::start(&self.torrent, Behaviour::Honest);
        let tracker = Tracker::start(&[seed.addr()]);
        let again = Torrent::single("f.bin", &self.data, PIECE, &tracker.url());
        assert_eq!(again.info_hash, self.torrent.info_hash);
        std::fs::write(&self.file, &again.metainfo).unwrap();
        (seed, tracker)
    }
}

#[test]
fn a_killed_run_is_continued_without_fetching_verified_pieces_again() {
    let mut first = SlowRun::start("torrent-kill", 7);
    let (seed, _tracker) = first.kill_and_reseed();
    let first_run = std::fs::read_to_string(&first.state).unwrap();
    // The second run, from the honest fast seed, fetches less than all.
    let outcome = run(&[&first.file, first.dir.path().to_str().unwrap()]);
    outcome.assert_code(0);
    assert!(outcome.stderr.contains("resuming"), "{}", outcome.stderr);
    assert_eq!(std::fs::read(first.dir.join("f.bin")).unwrap(), first.data);
    assert!(
        seed.sent() < first.data.len() as u64,
        "sent {} of {}; the first run left {first_run}",
        seed.sent(),
        first.data.len()
    );
    assert!(!first.state.exists());
}

#[test]
fn a_second_download_of_a_torrent_into_the_same_directory_fails_while_the_first_runs() {
    let mut first = SlowRun::start("torrent-twice", 10);
    let dir = first.dir.path().to_str().unwrap().to_owned();
    // The command, and the library, refuse at once, naming the directory.
    let second = run(&[&first.file, &dir, "-q"]);
    second
        .assert_code(7)
        .assert_error_mentions(&["another partfetch", &dir]);
    let err = Client::new()
        .unwrap()
        .torrent(&first.file)
        .to_dir(first.dir.path())
        .unwrap_err();
    assert_eq!(err.kind(), partfetch::ErrorKind::Io);
    assert_eq!(err.subject(), Some(&dir[..]));
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the first is still running"
    );
    // kill -9: the lock goes with the process, and the next run finishes.
    let _reseeded = first.kill_and_reseed();
    run(&[&first.file, &dir, "-q"]).assert_quiet_success();
    assert_eq!(std::fs::read(first.dir.join("f.bin")).unwrap(), first.data);
    assert!(!first.dir.join("f.bin.partfetch.lock").exists());
}

#[test]
fn data_on_disk_without_a_control_file_is_checked_before_fetching() {
    let data = test_data(32 * PIECE as usize, 8);
    let (torrent, seeds, _tracker) = swarm(
        |url| Torrent::single("f.bin", &data, PIECE, url),
        &[Behaviour::Honest],
    );
    let dir = TempDir::new("torrent-check");
    let file = write_torrent(&dir, &torrent);
    // The first half is there, and one piece of it is damaged.
    let mut half = data[..16 * PIECE as usize].to_vec();
    half[5 * PIECE as usize] ^= 1;
    std::fs::write(dir.join("f.bin"), &half).unwrap();
    let outcome = run(&[&file, dir.path().to_str().unwrap()]);
    outcome.assert_code(0);
    assert!(outcome.stderr.contains("checked"), "{}", outcome.stderr);
    assert_eq!(std::fs::read(dir.join("f.bin")).unwrap(), data);
    assert_eq!(
        seeds[0].sent(),
        17 * PIECE,
        "the missing half and the damaged piece"
    );
}

#[test]
fn a_torrent_naming_a_path_outside_its_directory_is_refused() {
    let files = vec![("../escape.txt", test_data(10, 9))];
    let torrent = Torrent::multi("set", &files, PIECE, "http://127.0.0.1:9/announce");
    let dir = TempDir::new("torrent-hostile");
    let file = write_torrent(&dir, &torrent);
    let outcome = run(&[&file, dir.path().to_str().unwrap()]);
    outcome.assert_error_mentions(&[&file, ".."]);
    assert_ne!(outcome.code, Some(0));
    assert!(!dir.path().parent().unwrap().join("escape.txt").exists());
}

#[test]
fn a_file_that_is_not_a_torrent_is_an_error_naming_it() {
    let dir = TempDir::new("torrent-garbage");
    let file = dir.join("x.torrent");
    std::fs::write(&file, b"<html>not found</html>").unwrap();
    let file = file.to_str().unwrap();
    run(&[file]).assert_error_mentions(&[file]);
    let missing = dir.join("missing.torrent");
    run(&[missing.to_str().unwrap()]).assert_error_mentions(&["missing.torrent"]);
}

#[test]
fn a_torrent_is_fetched_from_its_url_first() {
    let data = test_data(5 * PIECE as usize, 10);
    let (torrent, _seeds, _tracker) = swarm(
        |url| Torrent::single("f.bin", &data, PIECE, url),
        &[Behaviour::Honest],
    );
    let server = serve_torrent(&torrent, "application/x-bittorrent");
    let dir = TempDir::new("torrent-url");
    run(&[
        &server.url("/x.torrent"),
        dir.path().to_str().unwrap(),
        "-q",
    ])
    .assert_quiet_success();
    assert_eq!(std::fs::read(dir.join("f.bin")).unwrap(), data);
    assert!(!Path::new(&dir.join("x.torrent")).exists());
}

#[test]
fn a_url_served_as_application_x_bittorrent_is_downloaded_as_its_torrent() {
    let data = test_data(3 * PIECE as usize, 11);
    let (torrent, _seeds, _tracker) = swarm(
        |url| Torrent::single("g.bin", &data, PIECE, url),
        &[Behaviour::Honest],
    );
    let server = serve_torrent(&torrent, "application/x-bittorrent; charset=binary");
    let dir = TempDir::new("torrent-type");
    run(&[
        &server.url("/download?id=7"),
        dir.path().to_str().unwrap(),
        "-q",
    ])
    .assert_quiet_success();
    assert_eq!(std::fs::read(dir.join("g.bin")).unwrap(), data);
    assert_eq!(
        dir.entries(),
        ["g.bin"],
        "no .torrent and no partial file left"
    );
    // Saved as a named file, it is the .torrent itself.
    let file = dir.join("saved.torrent.bin");
    run(&[&server.url("/download?id=7"), file.to_str().unwrap(), "-q"]).assert_quiet_success();
    assert_eq!(std::fs::read(&file).unwrap(), torrent.metainfo);
}

#[test]
fn a_torrent_with_no_tracker_is_an_error_that_says_so() {
    let data = test_data(PIECE as usize, 12);
    let torrent = Torrent::single("h.bin", &data, PIECE, "");
    let dir = TempDir::new("torrent-trackerless");
    let file = write_torrent(&dir, &torrent);
    let outcome = run(&[&file, dir.path().to_str().unwrap()]);
    outcome.assert_error_mentions(&[&file, "no tracker"]);
    assert_ne!(outcome.code, Some(0));
    assert_eq!(dir.entries(), ["t.torrent"], "no file made");
}
