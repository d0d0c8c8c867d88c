//! partfetch uploading on 127.0.0.1: `partfetch seed` serving leechers,
//! `--seed` after a download, peers that break the rules of asking, and
//! the counts the trackers are told. A tracker from the test support
//! names every peer that announced, as real ones do.
//!
//! Real clients leeching from a partfetch seed are `tests/swarm.rs`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use partfetch::torrent::wire::{self, Bitfield, Decoded, Handshake, Message};
use partfetch::Client;
use support::cli;
use support::seed::{announced, Torrent, Tracker};
use support::{test_data, wait_until, KillOnDrop, TempDir};

const PIECE: u64 = 64 * 1024;

/// How long a seeder may take to start, and a leecher to finish.
const DEADLINE: Duration = Duration::from_secs(60);

/// A torrent of one file, its data under `dir/src`, and its `.torrent`.
fn shared(dir: &TempDir, tracker: &Tracker, len: usize) -> (Torrent, String) {
    let data = test_data(len, 7);
    let torrent = Torrent::single("shared.bin", &data, PIECE, &tracker.url());
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/shared.bin"), &data).unwrap();
    let file = dir.join("t.torrent");
    std::fs::write(&file, &torrent.metainfo).unwrap();
    (torrent, file.to_str().unwrap().to_owned())
}

/// `partfetch seed FILE DIR ARGS…`, once the tracker has heard it.
fn start_seeder(tracker: &Tracker, file: &str, dir: &Path, args: &[&str]) -> KillOnDrop {
    let before = tracker.announces_with("event", "started").len();
    let child = cli::command()
        .args(["seed", file, dir.to_str().unwrap(), "-q"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn partfetch seed");
    let seeder = KillOnDrop(child);
    wait_until(DEADLINE, "the seeder's first announce", || {
        tracker.announces_with("event", "started").len() > before
    });
    seeder
}

/// Ctrl-C, as a user stops a seeder: it must exit 0.
fn stop_with_ctrl_c(mut seeder: KillOnDrop) {
    let child: &mut Child = &mut seeder.0;
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = cli::wait_with_deadline(child, DEADLINE);
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// The library downloads `torrent` into `dir/name`, byte for byte.
fn leech(dir: &TempDir, file: &str, torrent: &Torrent, name: &str) {
    Client::new()
        .unwrap()
        .torrent(file)
        .to_dir(dir.join(name))
        .unwrap();
    let got = std::fs::read(dir.join(name).join("shared.bin")).unwrap();
    assert!(got == torrent.data, "{name}/shared.bin differs");
}

/// The last announce of the peer that sent `left=0` with `event`, and
/// its `uploaded`.
fn uploaded_at(tracker: &Tracker, event: &str) -> Vec<u64> {
    tracker
        .announces_with("event", event)
        .iter()
        .filter_map(|a| announced(a, "uploaded"))
        .collect()
}

#[test]
fn a_seed_serves_a_leecher_and_tells_the_tracker_what_it_uploaded_when_stopped() {
    let dir = TempDir::new("seed-serves");
    let tracker = Tracker::open();
    let len = 3 * 1024 * 1024 + 777;
    let (torrent, file) = shared(&dir, &tracker, len);
    let seeder = start_seeder(&tracker, &file, &dir.join("src"), &[]);
    let started = tracker.announces_with("event", "started");
    assert_eq!(announced(&started[0], "left"), Some(0), "{started:?}");
    leech(&dir, &file, &torrent, "out");
    stop_with_ctrl_c(seeder);
    // The seeder's `stopped` counts every byte the leecher took from it.
    let stopped = uploaded_at(&tracker, "stopped");
    assert!(stopped.iter().any(|&up| up >= len as u64), "{stopped:?}");
    // It was there from the start: never `completed`.
    let completed = tracker.announces_with("event", "completed");
    assert_eq!(completed.len(), 1, "the leecher's only: {completed:?}");
    assert!(!dir.join("src/shared.bin.partfetch.state").exists());
}

#[test]
fn a_leecher_with_seed_uploads_to_the_next_one() {
    let dir = TempDir::new("seed-after");
    let tracker = Tracker::open();
    let len = 2 * 1024 * 1024 + 5;
    let (torrent, file) = shared(&dir, &tracker, len);
    let seeder = start_seeder(&tracker, &file, &dir.join("src"), &[]);
    // The first leecher downloads, then seeds until stopped.
    let first = cli::command()
        .args([&file, dir.join("first").to_str().unwrap(), "-q", "--seed"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = KillOnDrop(first);
    wait_until(DEADLINE, "the first leecher's completed", || {
        !tracker.announces_with("event", "completed").is_empty()
    });
    // The original seed leaves: the second leecher has the first alone.
    stop_with_ctrl_c(seeder);
    leech(&dir, &file, &torrent, "second");
    stop_with_ctrl_c(first);
    let stopped = tracker.announces_with("event", "stopped");
    let first_stopped = stopped.last().unwrap();
    assert!(
        announced(first_stopped, "uploaded").unwrap() >= len as u64
            && announced(first_stopped, "downloaded").unwrap() >= len as u64
            && announced(first_stopped, "left") == Some(0),
        "{first_stopped}"
    );
}

#[test]
fn a_seed_stops_by_itself_at_its_ratio_and_the_swarm_goes_on() {
    let dir = TempDir::new("seed-ratio");
    let tracker = Tracker::open();
    let len = 2 * 1024 * 1024;
    let (torrent, file) = shared(&dir, &tracker, len);
    let src = dir.join("src");
    // A slow seed, and a fast one that leaves once it uploaded a quarter
    // of the torrent: the leecher finishes from the slow one.
    let slow = start_seeder(&tracker, &file, &src, &["--max-upload-rate", "256K"]);
    let mut fast = start_seeder(&tracker, &file, &src, &["--seed-ratio", "0.25"]);
    leech(&dir, &file, &torrent, "out");
    let status = cli::wait_with_deadline(&mut fast.0, DEADLINE);
    assert!(status.success(), "{status:?}");
    stop_with_ctrl_c(slow);
    let stopped = uploaded_at(&tracker, "stopped");
    assert!(
        stopped
            .iter()
            .any(|&up| (len as u64 / 4..len as u64).contains(&up)),
        "the fast seed stopped at its ratio: {stopped:?}"
    );
}

/// A peer on a socket, speaking the wire protocol by hand.
struct Scripted {
    stream: TcpStream,
    buf: Vec<u8>,
    pieces: u32,
}

impl Scripted {
    /// Connects to `addr` and handshakes for `torrent`.
    fn connect(addr: SocketAddr, torrent: &Torrent) -> Scripted {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let ours = Handshake::ours(torrent.info_hash, *b"-XX0001-scriptedpeer");
        stream.write_all(&ours.encode()).unwrap();
        let mut theirs = [0u8; wire::HANDSHAKE_LEN];
        stream.read_exact(&mut theirs).unwrap();
        let pieces = torrent.data.len().div_ceil(PIECE as usize) as u32;
        Scripted {
            stream,
            buf: Vec::new(),
            pieces,
        }
    }

    fn send(&mut self, message: Message<'_>) {
        self.stream.write_all(&message.encode()).unwrap();
    }

    /// The next message, as `Debug` text; `None` once the peer closed.
    fn next(&mut self) -> Option<String> {
        loop {
            match wire::decode(&self.buf, self.pieces) {
                Ok(Decoded::Done { value, used }) => {
                    let text = format!("{value:?}");
                    self.buf.drain(..used);
                    return Some(text);
                }
                Ok(Decoded::NeedMore { .. }) => {}
                Err(e) => panic!("the seeder sent a bad message: {e}"),
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until a message whose text starts with `prefix`.
    fn until(&mut self, prefix: &str) -> String {
        loop {
            let message = self
                .next()
                .unwrap_or_else(|| panic!("closed before {prefix}"));
            if message.starts_with(prefix) {
                return message;
            }
        }
    }

    /// Whether the seeder closes the connection (reading what it sends
    /// until then).
    fn is_closed(&mut self) -> bool {
        while self.next().is_some() {}
        true
    }
}

fn seeder_addr(tracker: &Tracker) -> SocketAddr {
    let started = tracker.announces_with("event", "started");
    let port = announced(&started[0], "port").unwrap() as u16;
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_seed_offers_only_pieces_that_match_and_closes_a_peer_asking_for_another() {
    let dir = TempDir::new("seed-bad-piece");
    let tracker = Tracker::open();
    let (torrent, file) = shared(&dir, &tracker, 4 * PIECE as usize);
    // Piece 2 on disk is not the torrent's.
    let mut data = torrent.data.clone();
    data[2 * PIECE as usize + 10] ^= 0xff;
    std::fs::write(dir.join("src/shared.bin"), &data).unwrap();
    let mut seeder = start_seeder(&tracker, &file, &dir.join("src"), &[]);
    let mut peer = Scripted::connect(seeder_addr(&tracker), &torrent);
    let bitfield = peer.until("Bitfield");
    let mut expected = Bitfield::new(4);
    for i in [0, 1, 3] {
        expected.set(i, true);
    }
    assert_eq!(bitfield, format!("{:?}", Message::Bitfield(expected)));
    peer.send(Message::Interested);
    peer.until("Unchoke");
    // A block it has comes back with the file's bytes.
    peer.send(Message::Request {
        index: 3,
        begin: 16384,
        length: 16384,
    });
    let block = peer.until("Piece");
    let want = &torrent.data[3 * PIECE as usize + 16384..][..16384];
    assert_eq!(
        block,
        format!(
            "{:?}",
            Message::Piece {
                index: 3,
                begin: 16384,
                block: want
            }
        )
    );
    // One it does not have closes the connection.
    peer.send(Message::Request {
        index: 2,
        begin: 0,
        length: 16384,
    });
    assert!(peer.is_closed());
    // It said so at the start, as a warning (shown even with -q).
    let _ = seeder.0.kill();
    let mut stderr = String::new();
    let _ = seeder.0.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(
        stderr.contains("3 of 4 pieces match the torrent; only those are seeded"),
        "{stderr}"
    );
}

#[test]
fn a_peer_that_asks_past_a_piece_or_floods_requests_is_closed_and_others_are_served() {
    let dir = TempDir::new("seed-floods");
    let tracker = Tracker::open();
    let (torrent, file) = shared(&dir, &tracker, 3 * PIECE as usize + 100);
    let _seeder = start_seeder(&tracker, &file, &dir.join("src"), &[]);
    let addr = seeder_addr(&tracker);
    // Past the end of the last (short) piece.
    let mut past = Scripted::connect(addr, &torrent);
    past.send(Message::Interested);
    past.until("Unchoke");
    past.send(Message::Request {
        index: 3,
        begin: 0,
        length: 16384,
    });
    assert!(past.is_closed());
    // Ten thousand requests at once, far past the 2048 we allow.
    let mut flood = Scripted::connect(addr, &torrent);
    flood.send(Message::Interested);
    flood.until("Unchoke");
    let mut requests = Vec::new();
    for n in 0..10_000u32 {
        Message::Request {
            index: n % 3,
            begin: (n / 3 % 4) * 16384,
            length: 16384,
        }
        .encode_into(&mut requests);
    }
    // The seeder may close while they are being written.
    let _ = flood.stream.write_all(&requests);
    assert!(flood.is_closed());
    // An honest leecher is still served.
    leech(&dir, &file, &torrent, "out");
}

#[test]
fn seeding_a_directory_without_the_data_is_refused_by_name() {
    let dir = TempDir::new("seed-missing");
    let tracker = Tracker::open();
    let (_torrent, file) = shared(&dir, &tracker, 100_000);
    std::fs::create_dir(dir.join("empty")).unwrap();
    let out = cli::run(&["seed", &file, dir.join("empty").to_str().unwrap()]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("shared.bin"), "{}", out.stderr);
    assert!(!dir.join("empty/shared.bin").exists(), "nothing is created");
    // Data of which no piece matches: nothing to seed.
    std::fs::write(dir.join("empty/shared.bin"), vec![0u8; 100_000]).unwrap();
    let out = cli::run(&["seed", &file, dir.join("empty").to_str().unwrap()]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("nothing to seed"), "{}", out.stderr);
    assert!(tracker.announces.lock().unwrap().is_empty());
}

#[test]
fn a_download_with_a_seed_time_seeds_then_stops_by_itself() {
    let dir = TempDir::new("seed-time");
    let tracker = Tracker::open();
    let (torrent, file) = shared(&dir, &tracker, 300_000);
    let _seeder = start_seeder(&tracker, &file, &dir.join("src"), &[]);
    let out = cli::run(&[
        &file,
        dir.join("out").to_str().unwrap(),
        "-q",
        "--seed-time",
        "2s",
    ]);
    out.assert_quiet_success();
    assert_eq!(
        std::fs::read(dir.join("out/shared.bin")).unwrap(),
        torrent.data
    );
    // Its announces (its peer id is that of the one that started with
    // everything left): started, completed once the last piece verified,
    // and stopped once the seed time was over.
    let announces = tracker.announces.lock().unwrap().clone();
    let peer_id = |a: &str| {
        a.split(['?', '&'])
            .find(|kv| kv.starts_with("peer_id="))
            .map(str::to_owned)
    };
    let id = announces
        .iter()
        .find(|a| announced(a, "left") == Some(300_000))
        .and_then(|a| peer_id(a))
        .expect("the leecher's first announce");
    let leecher: Vec<&String> = announces
        .iter()
        .filter(|a| peer_id(a) == Some(id.clone()))
        .collect();
    let events: Vec<&str> = leecher
        .iter()
        .filter_map(|a| a.split('&').find_map(|kv| kv.strip_prefix("event=")))
        .collect();
    assert_eq!(events, ["started", "completed", "stopped"], "{leecher:?}");
    assert_eq!(announced(leecher.last().unwrap(), "left"), Some(0));
}

#[test]
fn a_seed_listens_on_ipv6_and_ipv4_alike() {
    let dir = TempDir::new("seed-ipv6");
    let tracker = Tracker::open();
    let (torrent, file) = shared(&dir, &tracker, 100_000);
    let _seeder = start_seeder(&tracker, &file, &dir.join("src"), &[]);
    let port = seeder_addr(&tracker).port();
    for ip in ["::1", "127.0.0.1"] {
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        let mut peer = Scripted::connect(addr, &torrent);
        assert!(peer.until("Bitfield").starts_with("Bitfield"), "over {ip}");
    }
}
