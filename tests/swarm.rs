//! BitTorrent downloads from real seeders: the `partfetch` binary leeches
//! from the swarm bed of `tests/swarm/bed.sh` (a bridge, network
//! namespaces, opentracker, an aria2c seeder and a Transmission seeder),
//! each run in a namespace of its own on a fresh address.
//!
//! In scope: that what partfetch saves equals, byte for byte, what the
//! torrents were made of — a single file (256 MiB; 32 MiB for the killed run) and
//! several files of odd sizes, one empty, in subdirectories — whoever seeds
//! it: aria2c alone, Transmission alone, or both; that a run killed
//! with SIGKILL midway, run again with the same command, completes from
//! its state file without fetching everything again. And the other way:
//! aria2c and Transmission leech, byte for byte, a torrent made by
//! `partfetch make-torrent` from `partfetch seed` alone; and a swarm of a
//! partfetch seed (its upload capped), two partfetch leechers and an
//! aria2c leecher started together all complete, the leechers uploading.
//!
//! The bed is one for the whole machine (fixed names for the bridge and
//! namespaces), so the cases run in sequence in one test, against one bed;
//! a failing case is named and the rest still run. The bed and its data
//! live in a temporary directory, taken down and removed at the end.
//!
//! Needs root (namespaces, a bridge) and bash, ip, curl, python3,
//! mktorrent, opentracker, aria2c, transmission-daemon, transmission-remote
//! and transmission-show. Without them the test prints "SKIPPED: reason"
//! and passes, unless the environment variable `CI` is set: then it fails
//! (as in tests/nginx.rs and tests/metainfo.rs).
//!
//! `SWARM_LEECHER=aria2c` runs aria2c as the leecher instead of partfetch:
//! a check of the bed and of these tests, not of partfetch.
//! `SWARM_ONLY=TEXT` runs only the cases whose name contains TEXT.

mod support;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::TempDir;

/// The bed's script.
const BED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/swarm/bed.sh");

/// The big single-file torrent's size.
const SINGLE_MIB: u64 = 256;

/// The smaller single-file torrent's size, for the killed run:
/// Transmission sends at about 6 MB/s, so a run lasts long enough to be
/// killed midway.
const SMALL_MIB: u64 = 32;

/// How long one leecher run may take before it is killed and fails.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// How long all the cases may take together: a case that would start
/// later is not run (and fails), and no run outlasts it, so that a hanging
/// leecher cannot eat a CI run's time. They take about 3 minutes.
const BUDGET: Duration = Duration::from_secs(12 * 60);

/// How long one bed.sh command may take (each of its own waits is bounded
/// by 60 s).
const BED_DEADLINE: Duration = Duration::from_secs(300);

/// Programs the bed and the leecher need.
const TOOLS: [&str; 10] = [
    "bash",
    "ip",
    "curl",
    "python3",
    "mktorrent",
    "opentracker",
    "aria2c",
    "transmission-daemon",
    "transmission-remote",
    "transmission-show",
];

// ---------------------------------------------------------------- the test

#[test]
fn torrents_arrive_byte_for_byte_from_aria2c_transmission_and_both() {
    let test = "torrents_arrive_byte_for_byte_from_aria2c_transmission_and_both";
    if let Err(why) = can_run() {
        skip_or_fail(test, &why);
        return;
    }
    let leecher = Leecher::from_env();
    let dir = TempDir::new("swarm");
    let bed = Bed::up(&dir.join("bed"));
    let start = Instant::now();
    let deadline = || RUN_DEADLINE.min(BUDGET.saturating_sub(start.elapsed()));
    let mut failures: Vec<String> = Vec::new();
    let only = std::env::var("SWARM_ONLY").unwrap_or_default();
    let mut check = |name: &str, case: &dyn Fn(Duration) -> Result<(), String>| {
        if !name.contains(&only) {
            return eprintln!("swarm: {name}: not run (SWARM_ONLY={only})");
        }
        let result = match deadline() {
            left if left.is_zero() => {
                Err(format!("not run: the {BUDGET:?} of all cases are spent"))
            }
            left => case(left),
        };
        match result {
            Ok(()) => eprintln!("swarm: {name}: ok"),
            Err(why) => {
                eprintln!("swarm: {name}: FAILED: {why}");
                failures.push(format!("{name}: {why}"));
            }
        }
    };
    let fetch = |which: &'static str, label: &'static str| {
        let (bed, dir) = (&bed, &dir);
        move |left: Duration| download(bed, dir, leecher, left, which, label)
    };

    bed.seeders("both");
    check(
        "single file (256 MiB) from aria2c and Transmission",
        &fetch("single", "both-single"),
    );
    check(
        "multi-file from aria2c and Transmission",
        &fetch("multi", "both-multi"),
    );
    bed.seeders("aria2");
    check(
        "single file (256 MiB) from aria2c alone",
        &fetch("single", "aria2-single"),
    );
    check(
        "multi-file from aria2c alone",
        &fetch("multi", "aria2-multi"),
    );
    bed.seeders("transmission");
    check(
        "single file (256 MiB) from Transmission alone",
        &fetch("single", "transmission-single"),
    );
    check(
        "multi-file from Transmission alone",
        &fetch("multi", "transmission-multi"),
    );
    check(
        "killed with SIGKILL midway and run again (32 MiB, Transmission alone)",
        &|left| killed_and_rerun(&bed, &dir, leecher, left),
    );
    bed.seeders("none");
    check(
        "aria2c and Transmission leech a made torrent from partfetch seed alone",
        &|left| leeched_from_partfetch(&bed, &dir, left),
    );
    check(
        "a partfetch seed, two partfetch leechers and an aria2c leecher together",
        &|left| swarm_of_partfetch(&bed, &dir, left),
    );

    drop(bed);
    assert!(
        failures.is_empty(),
        "{} of 9 cases failed (leecher: {}):\n{}",
        failures.len(),
        leecher.name(),
        failures.join("\n")
    );
}

/// Downloads torrent `which` (single, small, multi) into a fresh directory
/// and compares what arrived with what the seeders seed.
fn download(
    bed: &Bed,
    dir: &TempDir,
    leecher: Leecher,
    deadline: Duration,
    which: &str,
    label: &str,
) -> Result<(), String> {
    let torrent = bed.torrent(which);
    let out = dir.join(&format!("out-{label}"));
    fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let run = LeecherRun::start(bed, dir, leecher, &torrent, &out, label)?;
    let took = run.finish(deadline)?;
    eprintln!("swarm: {label}: {} took {took:.1?}", leecher.name());
    let result = same_tree(&torrent.data, &out.join(&torrent.name));
    let _ = fs::remove_dir_all(&out);
    result
}

/// A run killed once Transmission (the only seeder) has sent half the
/// file, then the same command again: it must complete, the state file
/// must be there between the runs, and the second run must fetch less
/// than the whole file again.
fn killed_and_rerun(
    bed: &Bed,
    dir: &TempDir,
    leecher: Leecher,
    deadline: Duration,
) -> Result<(), String> {
    let torrent = bed.torrent("small");
    let size = SMALL_MIB << 20;
    let out = dir.join("out-killed");
    fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let before = bed.transmission_uploaded("small");

    let mut first = LeecherRun::start(bed, dir, leecher, &torrent, &out, "killed-1")?;
    let start = Instant::now();
    loop {
        let sent = bed.transmission_uploaded("small") - before;
        if sent >= size / 2 {
            break;
        }
        if let Some(status) = first.child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "the first run ended ({status}) before it could be killed, after \
                 Transmission sent {sent} of {size} bytes; stderr:\n{}",
                first.stderr_tail()
            ));
        }
        if start.elapsed() > deadline {
            return Err(format!(
                "Transmission sent only {sent} of {size} bytes in {deadline:?}; \
                 stderr:\n{}",
                first.stderr_tail()
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
    first.kill();
    drop(first);
    let at_kill = bed.transmission_uploaded("small") - before;
    let state = leecher.state_file(&out, &torrent.name);
    if !state.exists() {
        return Err(format!(
            "no state file {} after the kill (Transmission had sent {at_kill} bytes)",
            state.display()
        ));
    }

    // What the control file says is verified on disk: the second run must
    // not fetch it again.
    let kept = recorded_bytes(&state);
    if kept == Some(0) {
        return Err(format!(
            "the state file lists no piece after the kill (Transmission had sent {at_kill} bytes)"
        ));
    }
    let second = LeecherRun::start(bed, dir, leecher, &torrent, &out, "killed-2")?;
    let took = second.finish(deadline.saturating_sub(start.elapsed()))?;
    let again = bed.transmission_uploaded("small") - before - at_kill;
    eprintln!(
        "swarm: killed: Transmission sent {at_kill} bytes before the kill, {again} \
         after; the second run took {took:.1?}"
    );
    same_tree(&torrent.data, &out.join(&torrent.name))?;
    // Transmission's counter lags by about a second (some 6 MB): bytes of
    // the first run may be counted after the kill, as the second run's.
    let allowed = match kept {
        Some(kept) => size - kept + size / 4,
        None => size - size / 4,
    };
    if again > allowed {
        return Err(format!(
            "the second run fetched {again} of {size} bytes again, though {at_kill} \
             had been sent before the kill and the state file listed {kept:?} bytes: \
             the state was not used"
        ));
    }
    let _ = fs::remove_dir_all(&out);
    Ok(())
}

/// `partfetch make-torrent` of the bed's `which` data (announcing to the
/// bed's tracker), let into the tracker: the torrent's file and name.
fn made_torrent(bed: &Bed, dir: &TempDir, which: &str) -> Result<Torrent, String> {
    let data = bed.torrent(which).data;
    let file = dir.join(&format!("made-{which}.torrent"));
    let _ = fs::remove_file(&file);
    let made = support::cli::run(&[
        "make-torrent",
        data.to_str().unwrap(),
        "--announce",
        &bed.env["TRACKER"],
        "-o",
        file.to_str().unwrap(),
    ]);
    if made.code != Some(0) {
        return Err(format!("make-torrent failed: {}", made.stderr));
    }
    bed.run(&["torrent", file.to_str().unwrap()])?;
    let name = data.file_name().unwrap().to_str().unwrap().to_owned();
    Ok(Torrent { file, data, name })
}

/// A partfetch process in a namespace of the bed (a seeder, or a leecher
/// of the swarm case), stopped with Ctrl-C or killed when dropped.
struct PartfetchRun<'a> {
    bed: &'a Bed,
    ns: String,
    addr: String,
    child: Child,
    stderr: PathBuf,
}

impl<'a> PartfetchRun<'a> {
    fn start(bed: &'a Bed, dir: &TempDir, args: &[&OsStr], label: &str) -> Result<Self, String> {
        let lines = bed.run(&["seeder-ns"])?;
        let ns = lines["SEEDER_NS"].clone();
        let addr = lines["SEEDER_ADDR"].clone();
        let stderr = dir.join(&format!("{label}.stderr"));
        let spawned = File::create(&stderr).and_then(|err| {
            Command::new("ip")
                .args(["netns", "exec", &ns, &support::cli::bin()])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
        });
        match spawned {
            Ok(child) => Ok(PartfetchRun {
                bed,
                ns,
                addr,
                child,
                stderr,
            }),
            Err(e) => {
                bed.leecher_del(&ns);
                Err(format!("spawn partfetch: {e}"))
            }
        }
    }

    /// Ctrl-C, then its exit: 0 is expected.
    fn interrupt(&mut self) -> Result<(), String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.finish(Duration::from_secs(20))
    }

    /// Waits for it to exit 0 within `deadline`.
    fn finish(&mut self, deadline: Duration) -> Result<(), String> {
        match wait_until(&mut self.child, deadline) {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("partfetch failed ({status}):\n{}", self.tail())),
            None => Err(format!(
                "partfetch still ran after {deadline:?}: killed\n{}",
                self.tail()
            )),
        }
    }

    fn tail(&self) -> String {
        let text = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// What the last progress line says was uploaded (`up 12.3 MiB`), in
    /// bytes, roughly.
    fn uploaded(&self) -> Option<f64> {
        let text = fs::read_to_string(&self.stderr).ok()?;
        let last = text.lines().rev().find(|l| l.contains(" up "))?;
        let mut words = last.split_whitespace().skip_while(|w| *w != "up").skip(1);
        let number: f64 = words.next()?.parse().ok()?;
        let unit = match words.next()? {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            _ => return None,
        };
        Some(number * unit)
    }
}

impl Drop for PartfetchRun<'_> {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.bed.leecher_del(&self.ns);
    }
}

/// `partfetch seed TORRENT DIR ARGS…` in a namespace, once the tracker
/// lists it.
fn partfetch_seed<'a>(
    bed: &'a Bed,
    dir: &TempDir,
    torrent: &Torrent,
    args: &[&str],
) -> Result<PartfetchRun<'a>, String> {
    let data_dir = torrent.data.parent().unwrap();
    let mut all: Vec<&OsStr> = vec![
        "seed".as_ref(),
        torrent.file.as_os_str(),
        data_dir.as_os_str(),
        "--progress".as_ref(),
    ];
    all.extend(args.iter().map(|a| -> &OsStr { a.as_ref() }));
    let seeder = PartfetchRun::start(bed, dir, &all, "seeder")?;
    bed.run(&["wait-listed", torrent.file.to_str().unwrap(), &seeder.addr])?;
    Ok(seeder)
}

/// Starts a leecher of `kind` (aria2, transmission, libtorrent) of
/// `torrent` into `out`: its namespace.
fn leech(
    bed: &Bed,
    kind: &str,
    torrent: &Torrent,
    out: &Path,
    mode: &str,
) -> Result<String, String> {
    fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let lines = bed.run(&[
        "leech",
        kind,
        torrent.file.to_str().unwrap(),
        out.to_str().unwrap(),
        mode,
    ])?;
    Ok(lines["LEECH_NS"].clone())
}

/// aria2c and Transmission, each in a namespace, download a torrent made
/// by `partfetch make-torrent` from `partfetch seed`, the only seed.
fn leeched_from_partfetch(bed: &Bed, dir: &TempDir, _deadline: Duration) -> Result<(), String> {
    let torrent = made_torrent(bed, dir, "small")?;
    let seeder = partfetch_seed(bed, dir, &torrent, &[])?;
    let mut leechers = Vec::new();
    for kind in ["aria2", "transmission"] {
        let out = dir.join(&format!("from-partfetch-{kind}"));
        leechers.push((kind, leech(bed, kind, &torrent, &out, "stop")?, out));
    }
    let namespaces: Vec<&str> = leechers.iter().map(|(_, ns, _)| ns.as_str()).collect();
    let waited = bed.run(&[&["wait-complete"][..], &namespaces].concat());
    let mut result = waited.map(|_| ());
    for (kind, ns, out) in &leechers {
        if result.is_ok() {
            result = same_tree(&torrent.data, &out.join(&torrent.name))
                .map_err(|why| format!("{kind}: {why}"));
        }
        bed.leecher_del(ns);
        let _ = fs::remove_dir_all(out);
    }
    result?;
    let mut seeder = seeder;
    seeder.interrupt()
}

/// A partfetch seed capped at 8 MiB/s, two partfetch leechers that seed
/// 5 s once complete, and an aria2c leecher, started together: all get
/// the file; the partfetch leechers upload (the three leechers took more
/// than the seed sent).
fn swarm_of_partfetch(bed: &Bed, dir: &TempDir, deadline: Duration) -> Result<(), String> {
    let torrent = made_torrent(bed, dir, "small")?;
    let seeder = partfetch_seed(bed, dir, &torrent, &["--max-upload-rate", "8M"])?;
    let mut leechers = Vec::new();
    for n in 1..=2 {
        let out = dir.join(&format!("swarm-partfetch-{n}"));
        fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        let args: Vec<&OsStr> = vec![
            torrent.file.as_os_str(),
            out.as_os_str(),
            "--progress".as_ref(),
            "--seed-time".as_ref(),
            "5s".as_ref(),
        ];
        let run = PartfetchRun::start(bed, dir, &args, &format!("swarm-leecher-{n}"))?;
        leechers.push((run, out));
    }
    let aria2_out = dir.join("swarm-aria2");
    let aria2 = leech(bed, "aria2", &torrent, &aria2_out, "stop")?;
    let mut result = bed.run(&["wait-complete", &aria2]).map(|_| ());
    let aria2_got = same_tree(&torrent.data, &aria2_out.join(&torrent.name));
    bed.leecher_del(&aria2);
    result = result.and(aria2_got.map_err(|why| format!("aria2c: {why}")));
    let mut uploads = Vec::new();
    for (n, (run, out)) in leechers.iter_mut().enumerate() {
        let done = run
            .finish(deadline)
            .and_then(|()| same_tree(&torrent.data, &out.join(&torrent.name)));
        uploads.push(run.uploaded().unwrap_or(0.0));
        if let Err(why) = done {
            result = result.and(Err(format!("partfetch leecher {}: {why}", n + 1)));
        }
    }
    let mut seeder = seeder;
    seeder.interrupt()?;
    let seed_sent = seeder.uploaded().unwrap_or(0.0);
    result?;
    let size = fs::metadata(&torrent.data)
        .map_err(|e| e.to_string())?
        .len() as f64;
    eprintln!(
        "swarm: the seed sent {:.1} MiB, the partfetch leechers {:.1?} MiB",
        seed_sent / 1048576.0,
        uploads.iter().map(|u| u / 1048576.0).collect::<Vec<_>>()
    );
    if uploads.contains(&0.0) {
        return Err(format!("a partfetch leecher uploaded nothing: {uploads:?}"));
    }
    if seed_sent >= 3.0 * size {
        return Err(format!(
            "the seed sent {seed_sent} bytes, all three leechers' worth: they shared nothing"
        ));
    }
    Ok(())
}

/// The bytes of the pieces a partfetch control file lists (`piece-length`
/// and `have` lines), or `None` for another leecher's file.
fn recorded_bytes(state: &Path) -> Option<u64> {
    let text = fs::read_to_string(state).ok()?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .map(str::trim)
    };
    let piece: u64 = value("piece-length")?.parse().ok()?;
    let mut pieces = 0;
    for run in value("have")
        .unwrap_or("")
        .split(',')
        .filter(|r| !r.is_empty())
    {
        pieces += match run.split_once('-') {
            Some((a, b)) => b.parse::<u64>().ok()? - a.parse::<u64>().ok()? + 1,
            None => 1,
        };
    }
    Some(pieces * piece)
}

// ---------------------------------------------------------------- skipping

/// Why the bed cannot be built here, if it cannot.
fn can_run() -> Result<(), String> {
    let status = fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if euid != "0" {
        return Err(format!(
            "not root (effective uid {euid}): namespaces and a bridge need it"
        ));
    }
    let missing: Vec<&str> = TOOLS.into_iter().filter(|t| !on_path(t)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing {} (apt-get install iproute2 curl python3 mktorrent opentracker aria2 \
             transmission-daemon transmission-cli)",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// With `CI` set, a failure; otherwise a line on standard error, straight
/// to the file descriptor (the harness captures `eprintln!` of passing
/// tests, and this must be seen).
fn skip_or_fail(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: CI is set and the swarm bed is needed, but it cannot run: {why}");
    }
    let _ = writeln!(
        io::stderr(),
        "SKIPPED: {test}: {why}. With CI set this is a failure."
    );
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| is_executable(&d.join(program)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------- the bed

/// A torrent of the bed: its file, what it was made of, and its name.
struct Torrent {
    file: PathBuf,
    data: PathBuf,
    name: String,
}

/// The bed, taken down when dropped.
struct Bed {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl Bed {
    #[track_caller]
    fn up(dir: &Path) -> Bed {
        fs::create_dir_all(dir).expect("create the bed's directory");
        let env = bed_sh(&["up".as_ref(), dir.as_os_str(), "both".as_ref()], true)
            .unwrap_or_else(|why| panic!("the bed did not come up: {why}"));
        Bed {
            dir: dir.to_owned(),
            env,
        }
    }

    /// Starts and stops seeders until exactly `which` run, ready.
    #[track_caller]
    fn seeders(&self, which: &str) {
        self.run(&["seeders", which])
            .unwrap_or_else(|why| panic!("bed.sh seeders {which}: {why}"));
    }

    /// Torrent `which` (single, small, multi).
    fn torrent(&self, which: &str) -> Torrent {
        let key = which.to_uppercase();
        let get = |field: &str| -> String {
            self.env
                .get(&format!("{key}_{field}"))
                .unwrap_or_else(|| panic!("bed.sh printed no {key}_{field}"))
                .clone()
        };
        Torrent {
            file: get("TORRENT").into(),
            data: get("DATA").into(),
            name: get("NAME"),
        }
    }

    /// The bytes Transmission has sent of torrent `which` so far.
    #[track_caller]
    fn transmission_uploaded(&self, which: &str) -> u64 {
        let lines = self
            .run(&["uploaded", which])
            .unwrap_or_else(|why| panic!("bed.sh uploaded {which}: {why}"));
        lines
            .get("TRANSMISSION_UPLOADED")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bed.sh uploaded printed no number: {lines:?}"))
    }

    /// A fresh namespace for one leecher run.
    fn leecher_ns(&self) -> Result<String, String> {
        let lines = self.run(&["leecher-ns"])?;
        lines
            .get("LEECHER_NS")
            .cloned()
            .ok_or_else(|| format!("bed.sh leecher-ns printed no LEECHER_NS: {lines:?}"))
    }

    fn leecher_del(&self, ns: &str) {
        if let Err(why) = self.run(&["leecher-del", ns]) {
            eprintln!("swarm: bed.sh leecher-del {ns}: {why}");
        }
    }

    /// `bed.sh COMMAND DIR ARGS...`.
    fn run(&self, args: &[&str]) -> Result<HashMap<String, String>, String> {
        let mut all: Vec<&std::ffi::OsStr> = vec![args[0].as_ref(), self.dir.as_os_str()];
        all.extend(args[1..].iter().map(|a| -> &std::ffi::OsStr { a.as_ref() }));
        bed_sh(&all, false)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Err(why) = bed_sh(&["down".as_ref(), self.dir.as_os_str()], false) {
            eprintln!("swarm: bed.sh down: {why}");
        }
    }
}

/// Runs bed.sh with `args` and returns the NAME=VALUE lines it printed.
/// `up` gets the sizes of this file's torrents.
fn bed_sh(args: &[&std::ffi::OsStr], sizes: bool) -> Result<HashMap<String, String>, String> {
    let mut cmd = Command::new("bash");
    cmd.arg(BED).args(args).stdin(Stdio::null());
    if sizes {
        cmd.env("BED_SIZE_MIB", SINGLE_MIB.to_string())
            .env("BED_SMALL_MIB", SMALL_MIB.to_string());
    }
    // Through files, not pipes: nothing can keep them open past the script.
    let log = std::env::temp_dir().join(format!("partfetch-swarm-bed-{}.log", std::process::id()));
    let out = log.with_extension("out");
    cmd.stdout(File::create(&out).map_err(|e| e.to_string())?);
    cmd.stderr(File::create(&log).map_err(|e| e.to_string())?);
    let mut child = cmd.spawn().map_err(|e| format!("spawn bash {BED}: {e}"))?;
    let status = wait_until(&mut child, BED_DEADLINE);
    let stdout = fs::read_to_string(&out).unwrap_or_default();
    let stderr = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&out);
    let _ = fs::remove_file(&log);
    match status {
        Some(s) if s.success() => Ok(stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()),
        Some(s) => Err(format!("bed.sh {args:?} failed ({s}):\n{stderr}")),
        None => Err(format!(
            "bed.sh {args:?} still running after {BED_DEADLINE:?}: killed\n{stderr}"
        )),
    }
}

// ---------------------------------------------------------------- leechers

#[derive(Clone, Copy)]
enum Leecher {
    Partfetch,
    /// Only for checking the bed and these tests (`SWARM_LEECHER=aria2c`).
    Aria2c,
}

impl Leecher {
    fn from_env() -> Leecher {
        match std::env::var("SWARM_LEECHER").as_deref() {
            Ok("aria2c") => Leecher::Aria2c,
            Ok("partfetch") | Err(_) => Leecher::Partfetch,
            Ok(other) => panic!("SWARM_LEECHER={other}: partfetch or aria2c"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Leecher::Partfetch => "partfetch",
            Leecher::Aria2c => "aria2c",
        }
    }

    /// The command that saves `torrent`'s files under `out`.
    fn command(self, torrent: &Path, out: &Path) -> Vec<OsString> {
        match self {
            Leecher::Partfetch => vec![support::cli::bin().into(), torrent.into(), out.into()],
            Leecher::Aria2c => {
                let mut cmd: Vec<OsString> = [
                    "aria2c",
                    "-q",
                    "--seed-time=0",
                    "--enable-dht=false",
                    "--enable-dht6=false",
                    "--bt-enable-lpd=false",
                    "--enable-peer-exchange=false",
                    "--file-allocation=none",
                    // Its state file is saved every second, so a kill keeps
                    // nearly all that arrived.
                    "--auto-save-interval=1",
                    "-d",
                ]
                .into_iter()
                .map(OsString::from)
                .collect();
                cmd.push(out.into());
                cmd.push(torrent.into());
                cmd
            }
        }
    }

    /// Where the leecher keeps its state while saving `name` under `out`.
    fn state_file(self, out: &Path, name: &str) -> PathBuf {
        match self {
            Leecher::Partfetch => out.join(format!("{name}.partfetch.state")),
            Leecher::Aria2c => out.join(format!("{name}.aria2")),
        }
    }
}

/// A leecher running in a namespace of its own; the namespace goes when
/// this is dropped.
struct LeecherRun<'a> {
    bed: &'a Bed,
    ns: String,
    child: Child,
    started: Instant,
    stderr: PathBuf,
}

impl<'a> LeecherRun<'a> {
    fn start(
        bed: &'a Bed,
        dir: &TempDir,
        leecher: Leecher,
        torrent: &Torrent,
        out: &Path,
        label: &str,
    ) -> Result<LeecherRun<'a>, String> {
        let ns = bed.leecher_ns()?;
        let stdout = dir.join(&format!("{label}.stdout"));
        let stderr = dir.join(&format!("{label}.stderr"));
        let spawned = (|| -> io::Result<Child> {
            Command::new("ip")
                .args(["netns", "exec", &ns])
                .args(leecher.command(&torrent.file, out))
                .env_remove("http_proxy")
                .env_remove("https_proxy")
                .env_remove("HTTP_PROXY")
                .env_remove("HTTPS_PROXY")
                .env_remove("all_proxy")
                .env_remove("ALL_PROXY")
                .stdin(Stdio::null())
                .stdout(File::create(&stdout)?)
                .stderr(File::create(&stderr)?)
                .spawn()
        })();
        match spawned {
            Ok(child) => Ok(LeecherRun {
                bed,
                ns,
                child,
                started: Instant::now(),
                stderr,
            }),
            Err(e) => {
                bed.leecher_del(&ns);
                Err(format!("spawn {}: {e}", leecher.name()))
            }
        }
    }

    /// Waits for the run to end; it must exit 0 within `deadline`.
    fn finish(mut self, deadline: Duration) -> Result<Duration, String> {
        match wait_until(&mut self.child, deadline) {
            Some(status) if status.success() => Ok(self.started.elapsed()),
            Some(status) => Err(format!(
                "the leecher failed ({status}) after {:.1?}; stderr:\n{}",
                self.started.elapsed(),
                self.stderr_tail()
            )),
            None => Err(format!(
                "the leecher was still running after {deadline:?}: killed; stderr:\n{}",
                self.stderr_tail()
            )),
        }
    }

    /// SIGKILL (`ip netns exec` execs the leecher: this is its pid).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines the leecher wrote to standard error.
    fn stderr_tail(&self) -> String {
        let text = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for LeecherRun<'_> {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill();
        }
        self.bed.leecher_del(&self.ns);
    }
}

/// Waits for `child`, killing it after `deadline` (then `None`).
fn wait_until(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- comparing

/// `got` is a copy of `expected`: the same bytes for a file; for a
/// directory, the same files (empty ones included) and subdirectories,
/// nothing more.
fn same_tree(expected: &Path, got: &Path) -> Result<(), String> {
    if expected.is_file() {
        return same_file(expected, got);
    }
    let want = files_under(expected)?;
    let have = files_under(got)?;
    if want != have {
        return Err(format!("{} holds {have:?}, not {want:?}", got.display()));
    }
    for rel in &want {
        same_file(&expected.join(rel), &got.join(rel))?;
    }
    Ok(())
}

/// The files under `root`, as sorted relative paths.
fn files_under(root: &Path) -> Result<Vec<PathBuf>, String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                out.push(path.strip_prefix(root).unwrap().to_owned());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out).map_err(|e| format!("read {}: {e}", root.display()))?;
    out.sort();
    Ok(out)
}

/// The two files have the same bytes.
fn same_file(expected: &Path, got: &Path) -> Result<(), String> {
    support::compare_files(expected, got)
}
