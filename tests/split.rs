//! `partfetch split` → `partfetch serve` ×3 → `partfetch URL`: the
//! publishing side and the downloading side agree, and replicas keep a
//! download alive when servers die.
//!
//! In scope: byte-identical round trips (one file, a `-seq` of files),
//! the manifest's shape (size, digest, every holder, first choices
//! spread), one server killed mid-download (each of the three in turn),
//! two killed (an error naming a part no server holds), a split set
//! served by nginx, and the usage errors of `split`. Without nginx (on
//! `PATH`, in an `sbin` directory, or `NGINX=`), its test is skipped with
//! a notice, and fails when `CI` is set (`support::require_tool`).
#![cfg(feature = "serve")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use support::cli::{self, Outcome};
use support::{test_data, ServeProcess, TempDir};

/// A sample split over three served directories with 2 replicas.
struct Cluster {
    dir: TempDir,
    servers: Vec<ServeProcess>,
    data: Vec<u8>,
}

impl Cluster {
    fn start(len: usize, parts: &str, serve_options: &[&str]) -> Cluster {
        let dir = TempDir::new("split");
        let data = test_data(len, 42);
        std::fs::write(dir.join("sample.bin"), &data).unwrap();
        let dirs: Vec<PathBuf> = ["a", "b", "c"].iter().map(|d| dir.join(d)).collect();
        for d in &dirs {
            std::fs::create_dir(d).unwrap();
        }
        let servers: Vec<ServeProcess> = dirs
            .iter()
            .map(|d| ServeProcess::start(d, serve_options))
            .collect();
        let mut args: Vec<String> = vec![
            "split".into(),
            dir.join("sample.bin").display().to_string(),
            "--parts".into(),
            parts.into(),
            "--replicas".into(),
            "2".into(),
            "--to".into(),
        ];
        args.extend(dirs.iter().map(|d| d.display().to_string()));
        args.push("--base-url".into());
        args.extend(servers.iter().map(|s| s.url("")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli::run(&args).assert_code(0);
        Cluster { dir, servers, data }
    }

    /// Downloads the manifest from server `from` into `out`.
    fn download(&self, from: usize, out: &Path) -> Outcome {
        let url = self.servers[from].url("sample.bin.parts");
        cli::run(&["-q", &url, &out.display().to_string()])
    }
}

#[test]
fn split_serve_download_is_byte_identical() {
    let cluster = Cluster::start(5_000_000, "7", &[]);
    let manifest = std::fs::read_to_string(cluster.dir.join("a/sample.bin.parts")).unwrap();
    assert_eq!(
        manifest,
        std::fs::read_to_string(cluster.dir.join("c/sample.bin.parts")).unwrap(),
        "the same manifest in every directory"
    );
    let parts: Vec<&str> = manifest
        .split("--\n")
        .filter(|p| p.contains("http"))
        .collect();
    assert_eq!(parts.len(), 7);
    let mut first_choices = [0; 3];
    for part in &parts {
        assert!(
            part.contains("(size=") && part.contains("(sha256="),
            "{part}"
        );
        let urls: Vec<&str> = part.lines().filter(|l| l.starts_with("http")).collect();
        assert_eq!(urls.len(), 2, "each part on two servers: {part}");
        let first = cluster
            .servers
            .iter()
            .position(|s| urls[0].starts_with(&s.url("")))
            .unwrap();
        first_choices[first] += 1;
    }
    assert!(
        first_choices.iter().all(|&n| n == 2 || n == 3),
        "{first_choices:?}"
    );
    let out = cluster.dir.join("out.bin");
    cluster.download(0, &out).assert_quiet_success();
    assert!(std::fs::read(&out).unwrap() == cluster.data);
}

/// The modification times of each part's replicas in the cluster's
/// directories, by part file name.
fn replica_times(cluster: &Cluster) -> Vec<(String, Vec<std::time::SystemTime>)> {
    let mut times: std::collections::BTreeMap<String, Vec<std::time::SystemTime>> =
        std::collections::BTreeMap::new();
    for d in ["a", "b", "c"] {
        for entry in std::fs::read_dir(cluster.dir.join(d)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.contains(".part") && !name.ends_with(".parts") {
                let modified = entry.metadata().unwrap().modified().unwrap();
                times.entry(name).or_default().push(modified);
            }
        }
    }
    times.into_iter().collect()
}

#[test]
fn the_replicas_of_a_part_are_one_file_to_every_server() {
    // Servers derive a file's ETag from its modification time, and a
    // mirror whose ETag differs is dropped as another file. Replicas
    // written a clock tick apart (a few parts in 30, without care) would
    // not serve as each other's mirrors.
    let cluster = Cluster::start(300_000, "30", &[]);
    let times = replica_times(&cluster);
    assert_eq!(times.len(), 30);
    for (name, replicas) in &times {
        assert_eq!(replicas.len(), 2, "{name}");
        assert_eq!(replicas[0], replicas[1], "{name}: replicas written apart");
    }
    // Parts large enough to come in pieces from both their servers at once
    // (each answer capped, so that one connection is not enough): quiet,
    // no replica dropped as another file.
    let cluster = Cluster::start(10_000_000, "2", &["--rate-limit", "40M"]);
    let out = cluster.dir.join("out.bin");
    cluster.download(0, &out).assert_quiet_success();
    assert!(std::fs::read(&out).unwrap() == cluster.data);
}

#[test]
fn any_one_server_killed_mid_download_still_completes() {
    for victim in 0..3 {
        // Rate-limited so the download lasts well past the kill.
        let mut cluster = Cluster::start(6 << 20, "12", &["--rate-limit", "2M"]);
        let out = cluster.dir.join("out.bin");
        let url = cluster.servers[(victim + 1) % 3].url("sample.bin.parts");
        let out_arg = out.display().to_string();
        let download = thread::spawn(move || cli::run(&["-q", &url, &out_arg]));
        thread::sleep(Duration::from_millis(400));
        cluster.servers[victim].kill();
        let outcome = download.join().unwrap();
        outcome.assert_code(0);
        assert!(
            outcome.elapsed > Duration::from_millis(500),
            "server {victim} was killed mid-download ({:?})",
            outcome.elapsed
        );
        assert!(
            std::fs::read(&out).unwrap() == cluster.data,
            "server {victim} killed"
        );
    }
}

#[test]
fn two_servers_killed_fail_naming_a_part_no_server_holds() {
    let mut cluster = Cluster::start(600_000, "6", &[]);
    let manifest = std::fs::read_to_string(cluster.dir.join("c/sample.bin.parts")).unwrap();
    cluster.servers[0].kill();
    cluster.servers[1].kill();
    // Parts held only by a and b: the first one is where the download stops.
    let lost = manifest
        .split("--\n")
        .find(|p| {
            let urls: Vec<&str> = p.lines().filter(|l| l.starts_with("http")).collect();
            !urls.is_empty()
                && !urls
                    .iter()
                    .any(|u| u.starts_with(&cluster.servers[2].url("")))
        })
        .and_then(|p| p.lines().find(|l| l.starts_with("http")))
        .and_then(|u| u.rsplit('/').next())
        .expect("a part only a and b hold")
        .to_owned();
    let out = cluster.dir.join("out.bin");
    let outcome = cluster.download(2, &out);
    outcome
        .assert_code(5)
        .assert_error_mentions(&[&lost, "sources of the part failed"]);
    assert!(!out.exists(), "no partial file under the final name");
}

#[test]
fn a_split_sequence_downloads_as_its_files() {
    let dir = TempDir::new("split-seq");
    let files: Vec<(PathBuf, Vec<u8>)> = [(0usize, 1), (300_000, 2), (5, 3), (1_000_000, 4)]
        .iter()
        .map(|&(len, seed)| {
            let path = dir.join(&format!("pic{seed}.jpg"));
            let data = test_data(len, seed);
            std::fs::write(&path, &data).unwrap();
            (path, data)
        })
        .collect();
    let www = dir.join("www");
    let server = ServeProcess::start(
        &{
            std::fs::create_dir(&www).unwrap();
            www.clone()
        },
        &[],
    );
    let mut args: Vec<String> = vec!["split".into(), "--seq".into()];
    args.extend(files.iter().map(|(p, _)| p.display().to_string()));
    args.extend([
        "--part-size".into(),
        "100K".into(),
        "--to".into(),
        www.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli::run(&args).assert_code(0);
    assert!(www.join("pic1.jpg-seq.parts").exists());
    let base = dir.join("got");
    cli::run(&[
        "-q",
        &server.url("pic1.jpg-seq.parts"),
        &base.display().to_string(),
    ])
    .assert_quiet_success();
    for (i, (_, data)) in files.iter().enumerate() {
        let got = std::fs::read(format!("{}-file{}", base.display(), i + 1)).unwrap();
        assert!(&got == data, "file {}", i + 1);
    }
}

#[test]
fn split_refuses_impossible_plans() {
    let dir = TempDir::new("split-usage");
    std::fs::write(dir.join("f"), b"abc").unwrap();
    let f = dir.join("f").display().to_string();
    let (a, b) = (
        dir.join("a").display().to_string(),
        dir.join("b").display().to_string(),
    );
    for args in [
        vec![
            "split",
            &f,
            "--parts",
            "2",
            "--to",
            &a,
            &b,
            "--replicas",
            "3",
            "--base-url",
            "http://a/",
            "http://b/",
        ],
        vec!["split", &f, "--parts", "2", "--to", &a, &b],
        vec![
            "split",
            &f,
            "--parts",
            "2",
            "--to",
            &a,
            &b,
            "--base-url",
            "http://a/",
        ],
        vec!["split", &f, "--parts", "0", "--to", &a],
    ] {
        cli::run(&args).assert_code(2);
    }
    cli::run(&["split", "/nonexistent/file", "--parts", "2", "--to", &a]).assert_code(7);
}

#[test]
fn nginx_serves_a_split_set_partfetch_downloads() {
    let Some(nginx) = support::require_tool("nginx") else {
        return;
    };
    let dir = TempDir::new("split-nginx");
    let data = test_data(3_000_000, 9);
    std::fs::write(dir.join("sample.bin"), &data).unwrap();
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let roots: Vec<PathBuf> = ["n1", "n2"].iter().map(|d| dir.join(d)).collect();
    let mut args: Vec<String> = vec![
        "split".into(),
        dir.join("sample.bin").display().to_string(),
        "--part-size".into(),
        "512K".into(),
        "--replicas".into(),
        "2".into(),
        "--to".into(),
    ];
    args.extend(roots.iter().map(|d| d.display().to_string()));
    args.push("--base-url".into());
    args.extend(ports.iter().map(|p| format!("http://127.0.0.1:{p}/")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cli::run(&args).assert_code(0);
    let servers: String = ports
        .iter()
        .zip(&roots)
        .map(|(p, r)| format!("server {{ listen 127.0.0.1:{p}; root {}; }}\n", r.display()))
        .collect();
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n    \
         client_body_temp_path {d}/tmp;\n    proxy_temp_path {d}/tmp;\n    fastcgi_temp_path {d}/tmp;\n\
         {servers}}}\n"
    );
    std::fs::create_dir(dir.join("tmp")).unwrap();
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut child = Command::new(&nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if std::fs::metadata(dir.join("nginx.pid")).is_ok_and(|m| m.len() > 0) {
            up = true;
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = dir.join("out.bin");
    let outcome = up.then(|| {
        cli::run(&[
            "-q",
            &format!("http://127.0.0.1:{}/sample.bin.parts", ports[1]),
            &out.display().to_string(),
        ])
    });
    let _ = child.kill();
    let _ = child.wait();
    let error_log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    let outcome = outcome.unwrap_or_else(|| panic!("nginx did not start:\n{error_log}"));
    outcome.assert_quiet_success();
    assert!(std::fs::read(&out).unwrap() == data);
}
