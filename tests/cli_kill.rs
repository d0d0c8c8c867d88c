//! Kill tests: a download `SIGKILL`ed at twenty random moments, each run of
//! the same command continuing the previous one, and then run to its end,
//! leaves exactly the source, byte for byte, and no partial files. Three
//! downloads: a 64 MiB file over one connection, a 128 MiB one over eight
//! (`-n 8`, pieces fetched with `Range` and `If-Range` and written where
//! they belong, in any order), and a 40-part manifest of about 1.6 MiB
//! parts (64 MiB in all).
//!
//! The in-process server paces every response (per connection), so the
//! twenty runs together cannot fetch the whole source: the download is
//! always cut somewhere in the middle. The run that finishes is not paced,
//! so the test stays short. The moments are drawn by a fixed-seed xorshift
//! (the seed is in every failure message); most fall before or around the
//! first checkpoint of the control file, a few well after it.
//!
//! Besides the final bytes, each test checks what the design guarantees
//! whatever the timing: every run continued exactly where the control
//! file, as the previous run left it, said the download stood (a file's
//! first request starts at that byte, with `If-Range`; a manifest's done
//! parts are not fetched again), and progress survived a kill at least
//! once (the long runs outlive a checkpoint by a second or more).

mod support;

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::cli;
use support::{test_data, Body, Ranges, Reply, Request, Server, Step, TempDir};

/// The size of every source.
const SIZE: usize = 64 << 20;

/// Kills before the run that finishes.
const KILLS: usize = 20;

/// Seeds the kill moments (and the source bytes and part sizes).
const SEED: u64 = 0x6b69_6c6c_2020;

/// What one connection gets at most: bytes per second.
const RATE: u64 = 600 * 1024;

/// The segmented download's size and rate per connection: every run uses
/// up to nine connections, so the file is larger and each connection
/// slower (still fast enough for a 1 MiB piece to complete well within a
/// long run).
const SEGMENTED_SIZE: usize = 128 << 20;
const SEGMENTED_RATE: u64 = 400 * 1024;

/// The server writes this much, then sleeps for its share of [`RATE`].
const STEP: usize = 64 * 1024;

/// Most kills fall here: before, around and just after the first
/// checkpoint (partfetch rewrites its control file every 2 s).
const SHORT_KILL_MS: Range<u64> = 100..2_200;

/// These runs (counting from 0) are killed late (see [`LONG_KILL_MS`]).
/// The first is one of them, so that the run from byte 0 is sure to get
/// far, over eight connections in the segmented test.
const LONG_RUNS: [usize; 2] = [0, 11];

/// Late enough that each such run keeps some progress, with a second or
/// more to spare. partfetch checkpoints at the first write 2 s or more
/// after the last checkpoint: a file run's first comes at 2 to 2.5 s; a
/// manifest run's second, at about 4 s, is the first to list a part (up
/// to 1.94 MiB at [`RATE`], complete by about 3.5 s).
const LONG_KILL_MS: Range<u64> = 5_000..5_500;

/// Generous: a killed run takes a moment to die and be reaped, and the
/// sleep before the kill may overshoot. Counted into every run's lifetime
/// when bounding what the server can send.
const KILL_SLACK: Duration = Duration::from_millis(100);

/// The run that finishes is not paced; it has this long.
const FINAL_DEADLINE: Duration = Duration::from_secs(120);

/// Tells the server which run a request belongs to (sent with `-H`).
const RUN_HEADER: &str = "X-Kill-Run";

/// The [`RUN_HEADER`] value of the run that finishes.
const FINAL_RUN: &str = "final";

// ---------------------------------------------------------------- tests

#[test]
fn a_download_killed_twenty_times_finishes_byte_for_byte() {
    let source = Arc::new(test_data(SIZE, SEED));
    let server = file_server(&source, RATE);
    let delays = kill_delays(SEED);
    // One connection: even with nothing lost at a kill, the runs cannot
    // fetch the whole file before the last kill.
    assert!(bytes_at_most(1, RATE, &delays) < SIZE as u64);

    let download = Download::new("kill-plain", SEED, &server.url("/f"), &["-n", "1"]);
    let runs = download.kill_then_finish(&delays);
    download.assert_finished(&source, &runs);
    assert_each_run_continued_the_file(&server, &runs);
}

#[test]
fn a_download_over_eight_connections_killed_twenty_times_finishes_byte_for_byte() {
    let source = Arc::new(test_data(SEGMENTED_SIZE, SEED + 1));
    let server = file_server(&source, SEGMENTED_RATE);
    let delays = kill_delays(SEED + 1);
    // Every run uses up to nine connections (the first missing piece's and
    // eight workers'): even so, the runs cannot fetch the whole file before
    // the last kill.
    assert!(bytes_at_most(9, SEGMENTED_RATE, &delays) < SEGMENTED_SIZE as u64);

    let url = server.url("/f");
    let download = Download::new("kill-segmented", SEED + 1, &url, &["-n", "8"]);
    let runs = download.kill_then_finish(&delays);
    download.assert_finished(&source, &runs);
    assert_each_run_continued_the_file(&server, &runs);
    assert_runs_from_byte_zero_were_segmented(&server, &runs);
}

#[test]
fn a_manifest_download_killed_twenty_times_finishes_byte_for_byte() {
    let source = Arc::new(test_data(SIZE, SEED + 2));
    let sizes = part_sizes(SEED + 2);
    let server = manifest_server(&source, &sizes);
    let delays = kill_delays(SEED + 2);
    // `-j 2`: the part being written and two ahead, three connections.
    // `-n 1`: each part one request, written as it arrives. (In pieces,
    // a part's second piece is held until whole, and as partfetch only
    // checkpoints after a write, the checkpoint waits too: the long runs
    // would not be sure to outlive one.)
    assert!(bytes_at_most(3, RATE, &delays) < SIZE as u64);

    let options = ["-j", "2", "-n", "1"];
    let url = server.url("/m.parts");
    let download = Download::new("kill-manifest", SEED + 2, &url, &options);
    let runs = download.kill_then_finish(&delays);
    download.assert_finished(&source, &runs);
    assert_each_run_skipped_the_completed_parts(&server, &runs);
}

// ---------------------------------------------------------------- moments

/// xorshift64: small, deterministic, good enough to scatter kill moments.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform enough in `range`.
    fn within(&mut self, range: Range<u64>) -> u64 {
        range.start + self.next() % (range.end - range.start)
    }
}

/// How long each of the [`KILLS`] runs lives before its `SIGKILL`.
fn kill_delays(seed: u64) -> Vec<Duration> {
    let mut rng = XorShift::new(seed);
    (0..KILLS)
        .map(|run| {
            let range = if LONG_RUNS.contains(&run) {
                LONG_KILL_MS
            } else {
                SHORT_KILL_MS
            };
            Duration::from_millis(rng.within(range))
        })
        .collect()
}

/// The most bytes the server can send over `connections` at once, each
/// paced at `rate`, to runs killed after `delays` (each given
/// [`KILL_SLACK`] on top): the pacing only ever sleeps longer than asked,
/// never shorter.
fn bytes_at_most(connections: u64, rate: u64, delays: &[Duration]) -> u64 {
    let lifetime: Duration = delays.iter().map(|d| *d + KILL_SLACK).sum();
    (connections as f64 * rate as f64 * lifetime.as_secs_f64()) as u64
}

// ---------------------------------------------------------------- server

/// `"kill-/path"`: one strong ETag per path.
fn etag_of(path: &str) -> String {
    format!("\"kill-{path}\"")
}

/// `/f` is `source`, paced at `rate` per connection.
fn file_server(source: &Arc<Vec<u8>>, rate: u64) -> Server {
    let files = HashMap::from([("/f".to_owned(), Arc::clone(source))]);
    paced_server(files, rate)
}

/// 40 part sizes between about 1.3 and 1.9 MiB that add up to [`SIZE`].
fn part_sizes(seed: u64) -> Vec<usize> {
    let mut rng = XorShift::new(seed ^ 0x7061_7274);
    let weights: Vec<u64> = (0..40).map(|_| rng.within(325..475)).collect();
    let sum: u64 = weights.iter().sum();
    let mut sizes: Vec<usize> = weights
        .iter()
        .map(|w| (SIZE as u64 * w / sum) as usize)
        .collect();
    let short = SIZE - sizes.iter().sum::<usize>();
    *sizes.last_mut().expect("40 parts") += short;
    sizes
}

/// `/m.parts` lists `/p0` … `/p39`, which are `source` cut at `sizes`.
fn manifest_server(source: &Arc<Vec<u8>>, sizes: &[usize]) -> Server {
    let mut files: HashMap<String, Arc<Vec<u8>>> = HashMap::new();
    let mut manifest = String::new();
    let mut start = 0;
    for (i, size) in sizes.iter().enumerate() {
        files.insert(
            format!("/p{i}"),
            Arc::new(source[start..start + size].to_vec()),
        );
        manifest.push_str(&format!("p{i}\n--\n"));
        start += size;
    }
    files.insert("/m.parts".to_owned(), Arc::new(manifest.into_bytes()));
    paced_server(files, RATE)
}

/// Serves `files` with ETags, honouring `Range` and `If-Range` (as a
/// server whose files do not change), every response paced at `rate`
/// except those of the run that finishes.
fn paced_server(files: HashMap<String, Arc<Vec<u8>>>, rate: u64) -> Server {
    Server::start(move |req: &Request| {
        let Some(bytes) = files.get(req.path()) else {
            return Reply::status(404);
        };
        let etag = etag_of(req.path());
        let current = req.header("if-range").is_none_or(|v| v == etag);
        let ranges = if current {
            Ranges::Honour
        } else {
            Ranges::Ignore
        };
        let reply = Reply::file(req, bytes, ranges).header("ETag", &etag);
        if req.header(RUN_HEADER) == Some(FINAL_RUN) {
            reply
        } else {
            paced(reply, rate)
        }
    })
}

/// `reply` with its body written [`STEP`] bytes at a time, each after a
/// sleep of its share of `rate` (also the first: no burst per request).
fn paced(reply: Reply, rate: u64) -> Reply {
    let Body::Sized(bytes) = &reply.body else {
        return reply;
    };
    let length = bytes.len().to_string();
    let mut steps = Vec::with_capacity(2 * bytes.len().div_ceil(STEP));
    for piece in bytes.chunks(STEP) {
        let share = piece.len() as f64 / rate as f64;
        steps.push(Step::Sleep(Duration::from_secs_f64(share)));
        steps.push(Step::Write(piece.to_vec()));
    }
    reply
        .header("Content-Length", &length)
        .body(Body::Steps(steps))
}

// ---------------------------------------------------------------- runs

/// The command under test: `partfetch -q OPTIONS URL DIR/out.bin`.
struct Download {
    /// The seed of its kill moments, for failure messages.
    seed: u64,
    /// Whether the URL is a manifest.
    manifest: bool,
    dir: TempDir,
    out: PathBuf,
    args: Vec<String>,
}

/// The runs of one test, in order, the one that finished last.
struct Runs {
    /// The seed of the kill moments.
    seed: u64,
    list: Vec<Run>,
}

/// One run of the command, as the test saw it.
struct Run {
    /// Its [`RUN_HEADER`] value.
    label: String,
    /// The control file as the previous run left it: where this run must
    /// continue.
    start: Checkpoint,
    /// How long it lived before the kill; `None` for the run that finishes.
    delay: Option<Duration>,
}

impl Download {
    fn new(label: &str, seed: u64, url: &str, options: &[&str]) -> Download {
        let dir = TempDir::new(label);
        let out = dir.join("out.bin");
        let mut args: Vec<String> = vec!["-q".to_owned()];
        args.extend(options.iter().map(|o| o.to_string()));
        args.push(url.to_owned());
        args.push(out.to_str().expect("utf-8 temp path").to_owned());
        Download {
            seed,
            manifest: url.ends_with(".parts"),
            dir,
            out,
            args,
        }
    }

    /// The same command each time; only the label the server sees differs.
    fn spawn(&self, label: &str) -> Child {
        let mut command = cli::command();
        command
            .arg("-H")
            .arg(format!("{RUN_HEADER}: {label}"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command.spawn().expect("spawn partfetch")
    }

    /// Whether `checkpoint` lets a run skip something: whole parts for a
    /// manifest (the bytes of a part not yet complete are fetched again),
    /// else bytes.
    fn kept(&self, checkpoint: &Checkpoint) -> bool {
        if self.manifest {
            checkpoint.parts > 0
        } else {
            checkpoint.done > 0
        }
    }

    /// Where the control file says the download stands now.
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint::read(&self.dir.join("out.bin.partfetch.state"))
    }

    /// Runs the command and kills it after each of `delays`, then runs it
    /// to its end. Panics if a run fails on its own, or finishes before
    /// its kill (the pacing should make that impossible).
    fn kill_then_finish(&self, delays: &[Duration]) -> Runs {
        let seed = self.seed;
        let first_spawn = Instant::now();
        let mut list = Vec::new();
        for (i, delay) in delays.iter().enumerate() {
            let label = (i + 1).to_string();
            let start = self.checkpoint();
            let mut child = self.spawn(&label);
            std::thread::sleep(*delay);
            // SIGKILL; harmless if it has just exited (it is not reaped yet).
            let _ = child.kill();
            let status = child.wait().expect("wait for partfetch");
            let stderr = read_stderr(&mut child);
            assert_eq!(
                status.signal(),
                Some(9),
                "run {label} (seed {seed:#x}, killed after {delay:?}) ended before its kill \
                 with {status}: the pacing should make that impossible; stderr:\n{stderr}"
            );
            list.push(Run {
                label,
                start,
                delay: Some(*delay),
            });
        }

        let start = self.checkpoint();
        let began = Instant::now();
        let mut child = self.spawn(FINAL_RUN);
        let status: ExitStatus = cli::wait_with_deadline(&mut child, FINAL_DEADLINE);
        let stderr = read_stderr(&mut child);
        // Nothing but the line saying it resumes, and the closing line.
        let told = cli::without_summary(&stderr)
            .lines()
            .all(|line| line.starts_with("partfetch: resuming "));
        assert!(
            status.success() && told,
            "the run after {KILLS} kills (seed {seed:#x}) failed: {status}; stderr:\n{stderr}"
        );
        eprintln!(
            "{}: the run after the kills took {:?}, all {:?}",
            self.dir.path().display(),
            began.elapsed(),
            first_spawn.elapsed()
        );
        list.push(Run {
            label: FINAL_RUN.to_owned(),
            start,
            delay: None,
        });
        Runs { seed, list }
    }

    /// The output is `source` byte for byte, alone in its directory, and
    /// some progress outlived a kill.
    #[track_caller]
    fn assert_finished(&self, source: &[u8], runs: &Runs) {
        let got = std::fs::read(&self.out).expect("read the downloaded file");
        assert_same_bytes(&got, source, runs);
        assert_eq!(
            self.dir.entries(),
            ["out.bin"],
            "no .partfetch or .partfetch.state file is left; {}",
            runs.describe()
        );
        let resumed: Vec<&str> = runs
            .list
            .iter()
            .filter(|r| self.kept(&r.start))
            .map(|r| r.label.as_str())
            .collect();
        eprintln!(
            "{}: runs that started from a checkpoint: {resumed:?}\n{}",
            self.dir.path().display(),
            runs.describe()
        );
        // Guaranteed by the long runs: each outlives a checkpoint by a
        // second or more, and a checkpoint only moves forward.
        let last = runs.list.last().expect("runs");
        assert!(
            self.kept(&last.start),
            "no run kept any progress for the next; {}",
            runs.describe()
        );
    }
}

fn read_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut text);
    }
    text
}

impl Runs {
    /// The seed, and each run's label, kill delay and starting point: for
    /// failure messages.
    fn describe(&self) -> String {
        let mut text = format!("seed {:#x}; runs:", self.seed);
        for run in &self.list {
            text.push_str(&format!(
                "\n  {} {:?} {:?}",
                run.label, run.delay, run.start
            ));
        }
        text
    }
}

/// What a control file (`FILE.partfetch.state`) says: a few `key value`
/// lines, of which these matter here (see src/cli/resume.rs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Checkpoint {
    /// `done N`: bytes of the data file known to be on disk.
    done: u64,
    /// `part SIZE LINE URL` lines: manifest parts completed, in order.
    parts: usize,
}

impl Checkpoint {
    /// No file: nothing done.
    fn read(path: &Path) -> Checkpoint {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Checkpoint::default();
        };
        let mut checkpoint = Checkpoint::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("done", n)) => checkpoint.done = n.parse().expect("done N"),
                Some(("part", _)) => checkpoint.parts += 1,
                _ => {}
            }
        }
        checkpoint
    }
}

// ---------------------------------------------------------------- checks

/// Whole-file equality that reports where they differ, not 64 MiB.
#[track_caller]
fn assert_same_bytes(got: &[u8], want: &[u8], runs: &Runs) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "the file differs from the source: {} bytes, want {}; first difference at byte \
         {first}; {}",
        got.len(),
        want.len(),
        runs.describe()
    );
}

/// The requests of the run labelled `label`, in order of arrival. Every
/// request must carry a label, or the checks on them would prove nothing.
fn requests_of(server: &Server, label: &str) -> Vec<Request> {
    let requests = server.requests();
    let unlabelled = requests.iter().find(|r| r.header(RUN_HEADER).is_none());
    assert!(unlabelled.is_none(), "no {RUN_HEADER}: {unlabelled:?}");
    requests
        .into_iter()
        .filter(|r| r.header(RUN_HEADER) == Some(label))
        .collect()
}

/// Each run (that got as far as asking) asked first for the byte its
/// control file said was next, with `If-Range` when continuing: nothing
/// recorded as done was fetched again, nothing skipped. (A run killed
/// before its first checkpoint leaves the control file as it found it, so
/// the next run asks for the same byte again.)
#[track_caller]
fn assert_each_run_continued_the_file(server: &Server, runs: &Runs) {
    for run in &runs.list {
        let Some(first) = requests_of(server, &run.label).into_iter().next() else {
            continue;
        };
        let context = format!("run {}; {}", run.label, runs.describe());
        assert_eq!(
            first.range_start().unwrap_or(0),
            run.start.done,
            "{context}"
        );
        if run.start.done > 0 {
            assert_eq!(
                first.header("if-range"),
                Some(etag_of("/f").as_str()),
                "{context}"
            );
        }
    }
}

/// Each run fetched none of the parts its control file listed as done.
#[track_caller]
fn assert_each_run_skipped_the_completed_parts(server: &Server, runs: &Runs) {
    for run in &runs.list {
        let fetched: BTreeSet<usize> = requests_of(server, &run.label)
            .iter()
            .filter_map(|r| r.path().strip_prefix("/p")?.parse().ok())
            .collect();
        assert!(
            fetched.iter().all(|&part| part >= run.start.parts),
            "run {} fetched parts {fetched:?} though the first {} were done; {}",
            run.label,
            run.start.parts,
            runs.describe()
        );
    }
}

/// Every run from byte 0 that lived two seconds had its workers asking for
/// pieces on other connections (they start a quarter into piece 0, at
/// about half a second): the kills did cut a segmented download. The first
/// run is one: it starts from nothing and is killed late.
#[track_caller]
fn assert_runs_from_byte_zero_were_segmented(server: &Server, runs: &Runs) {
    let segmented: Vec<&Run> = runs
        .list
        .iter()
        .filter(|r| r.start.done == 0)
        .filter(|r| r.delay.is_some_and(|d| d >= Duration::from_secs(2)))
        .collect();
    assert!(!segmented.is_empty(), "{}", runs.describe());
    for run in segmented {
        let requests = requests_of(server, &run.label);
        let connections: BTreeSet<usize> = requests.iter().map(|r| r.connection).collect();
        let ranges: Vec<Option<&str>> = requests.iter().map(|r| r.header("range")).collect();
        assert!(
            connections.len() > 1,
            "run {} from byte 0 used one connection, asking for {ranges:?}; {}",
            run.label,
            runs.describe()
        );
    }
}
