//! `partfetch demo`: the whole story on one machine, with no network.
//!
//! Starts three `serve` servers (A, B, C) on 127.0.0.1 with ports the
//! system picks, each rate-limited so the download takes a few seconds,
//! splits a generated sample over them with 2 replicas, downloads the
//! manifest from A with a progress line — and stops server B while it is
//! sending a part. The parts B held are then served by their other
//! holders; the demo checks the result against the sample and tells, from
//! the servers' own logs, which part came from where.
//!
//! Owns only the story: the servers, the split and the download are the
//! library's, exactly as the commands use them.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use partfetch::serve::{Config, Server};
use partfetch::sha256::{self, Sha256};
use partfetch::split::{self, Cut, Input, Plan};
use partfetch::{Client, Error};

use super::progress::{human, Line, Mode};
use super::{exit, exit_code};

/// The sample's size: a few parts of a MiB, a few seconds at [`RATE`].
const SAMPLE_SIZE: u64 = 6 << 20;

/// The parts the sample is cut into.
const PARTS: u64 = 6;

/// Each server's rate limit, so a person can watch the download.
const RATE: u64 = 2 << 20;

/// How long B sends before it is stopped, once it starts sending a part.
const B_LIVES: Duration = Duration::from_millis(250);

const NAMES: [&str; 3] = ["A", "B", "C"];

/// One request as a server logged it.
struct Event {
    server: usize,
    target: String,
    status: u16,
    bytes: u64,
    complete: bool,
}

/// Runs the demo; the exit status.
pub fn run() -> i32 {
    match demo() {
        Ok(()) => exit::OK,
        Err(err) => {
            say!("partfetch: demo failed: {err}");
            exit_code(err.kind())
        }
    }
}

fn demo() -> Result<(), Error> {
    let work = WorkDir::new()?;
    show!("partfetch demo: three servers on 127.0.0.1, one of them stopped mid-download\n");

    let sample = work.0.join("sample.bin");
    let sample_digest = write_sample(&sample)?;
    show!(
        "made {} ({}, sha256 {}…)",
        sample.display(),
        human(SAMPLE_SIZE),
        &sha256::to_hex(&sample_digest)[..16]
    );

    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let mut servers = Vec::new();
    let mut dirs = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let dir = work.0.join(format!("server-{name}"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(e, dir.display()))?;
        let mut config = Config::new(&dir, ([127, 0, 0, 1], 0).into());
        config.rate_limit = Some(RATE);
        let log = Arc::clone(&events);
        config.log = Arc::new(move |line| {
            if let Ok(mut events) = log.lock() {
                events.push(Event {
                    server: i,
                    target: line.target.to_owned(),
                    status: line.status,
                    bytes: line.bytes,
                    complete: line.complete,
                });
            }
        });
        let server = Server::start(config)?;
        show!(
            "server {name}: http://{}/ serving {} ({}/s at most)",
            server.addr(),
            dir.display(),
            human(RATE)
        );
        servers.push(Some(server));
        dirs.push(dir);
    }
    let urls: Vec<String> = servers
        .iter()
        .flatten()
        .map(|s| format!("http://{}/", s.addr()))
        .collect();

    let plan = Plan {
        input: Input::File(sample.clone()),
        name: "sample.bin".to_owned(),
        cut: Cut::Parts(PARTS),
        dirs,
        replicas: 2,
        base_urls: urls.clone(),
    };
    let report = split::split(&plan)?;
    show!(
        "\n$ partfetch split {} --parts {PARTS} --replicas 2 --to server-A server-B server-C --base-url …",
        sample.display()
    );
    for (i, part) in report.parts.iter().enumerate() {
        let holders: Vec<&str> = part.holders.iter().map(|&h| NAMES[h]).collect();
        show!(
            "  part {}: {} on {} (first choice {})",
            i + 1,
            human(part.size),
            holders.join(" and "),
            holders[0]
        );
    }

    // B is stopped from another thread once it has been sending for a moment.
    let b = servers[1].take().expect("server B was started above");
    let done = Arc::new(AtomicBool::new(false));
    let stopper = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || stop_when_busy(b, &done))
    };

    let manifest_url = format!("{}sample.bin.parts", urls[0]);
    show!("\n$ partfetch {manifest_url}   (server B will be stopped while it sends)");
    let client = Client::builder().no_env_proxy().build()?;
    let mode = if std::io::stderr().is_terminal() {
        Mode::Terminal
    } else {
        Mode::Log
    };
    let mut line = Line::new(mode);
    let mut hashed = HashWriter(Sha256::new(), 0);
    let outcome = client
        .download(&manifest_url)
        .on_progress(|p| line.show(p))
        .to_writer(&mut hashed);
    let HashWriter(hasher, received) = hashed;
    done.store(true, Ordering::SeqCst);
    let stopped_at = stopper.join().ok().flatten();
    match &outcome {
        Ok(_) => line.finish(),
        Err(_) => line.clear(),
    }
    outcome?;

    show!("\nwhat happened:");
    if let Some(after) = stopped_at {
        show!(
            "  server B was stopped after sending for {} ms",
            after.as_millis()
        );
    }
    let events = events
        .lock()
        .map_or_else(|_| Vec::new(), |mut e| std::mem::take(&mut *e));
    for (i, part) in report.parts.iter().enumerate() {
        show!("  part {}: {}", i + 1, explain(part, &events));
    }
    let digest = hasher.finish();
    if received == SAMPLE_SIZE && digest == sample_digest {
        show!(
            "\nverified: {} received, sha256 equal to the sample's — nothing lost with a server down",
            human(received)
        );
        Ok(())
    } else {
        Err(Error::new(
            partfetch::ErrorKind::Integrity,
            format!("the download ({received} bytes) differs from the sample"),
        ))
    }
}

/// Waits until `b` is serving a connection, lets it send for [`B_LIVES`],
/// and stops it; returns how long it had been sending. Gives up (and stops
/// it anyway) when the download is `done` first.
fn stop_when_busy(b: Server, done: &AtomicBool) -> Option<Duration> {
    let started = loop {
        if done.load(Ordering::SeqCst) {
            b.stop();
            return None;
        }
        if b.connections() > 0 {
            break Instant::now();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    while started.elapsed() < B_LIVES && !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    b.stop();
    Some(started.elapsed())
}

/// One sentence on how a part was served, from the servers' logs.
fn explain(part: &split::PartRecord, events: &[Event]) -> String {
    let target = format!("/{}", part.file_name);
    let mine: Vec<&Event> = events.iter().filter(|e| e.target == target).collect();
    let served = mine
        .iter()
        .rev()
        .find(|e| e.complete && (e.status == 200 || e.status == 206));
    let mut text = match served {
        Some(e) if e.status == 206 => format!(
            "from {} (the last {} by a Range request)",
            NAMES[e.server],
            human(e.bytes)
        ),
        Some(e) => format!("from {} ({})", NAMES[e.server], human(e.bytes)),
        None => "no server logged serving it".to_owned(),
    };
    for e in mine.iter().filter(|e| !e.complete) {
        text.push_str(&format!(
            "; {} had sent {} when it stopped",
            NAMES[e.server],
            human(e.bytes)
        ));
    }
    let first = part.holders[0];
    if served.is_some_and(|e| e.server != first) && !mine.iter().any(|e| e.server == first) {
        text.push_str(&format!(
            "; its first choice {} was down, so the client failed over",
            NAMES[first]
        ));
    }
    text
}

/// Writes [`SAMPLE_SIZE`] bytes that look random (xorshift64*), a MiB at a
/// time; returns their SHA-256.
fn write_sample(path: &Path) -> Result<[u8; 32], Error> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| Error::io(e, path.display()))?;
    let mut hasher = Sha256::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..SAMPLE_SIZE >> 20 {
        for word in block.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        hasher.update(&block);
        file.write_all(&block)
            .map_err(|e| Error::io(e, path.display()))?;
    }
    Ok(hasher.finish())
}

/// A fresh directory under the system's temporary directory, removed when
/// the demo ends, however it ends.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Result<WorkDir, Error> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("partfetch-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| Error::io(e, path.display()))?;
        Ok(WorkDir(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The bytes written to it, hashed and counted.
struct HashWriter(Sha256, u64);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        self.1 += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
