//! `partfetch make-torrent`: the torrents it writes are read by other
//! programs with the info-hash it prints, and downloaded back byte for
//! byte.
//!
//! In scope: `transmission-show` and `aria2c -S` print the same info-hash
//! as partfetch for a single file and for a directory (a file in a
//! subdirectory listed, hidden files left out), a private torrent is
//! shown as private, `mktorrent` makes the same info-hash from the same
//! directory with the same piece length, and a partfetch leecher
//! downloads a made torrent from a seed on 127.0.0.1 (`support::seed`).
//! The command's own rules too: the default output name, refusing to
//! replace a file without `--force`, errors naming the path.
//!
//! When `transmission-show`, `aria2c` or `mktorrent` is missing, a test
//! is skipped with a notice, and fails when the environment variable `CI`
//! is set (`support::run_tool`; Debian: `apt-get install transmission-cli
//! aria2 mktorrent`).
#![cfg(feature = "serve")]

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use partfetch::torrent::Metainfo;
use support::cli::{self, run, Outcome};
use support::seed::{Behaviour, Seed, Torrent, Tracker};
use support::{test_data, TempDir};

const ANNOUNCE: &str = "http://tracker.invalid/announce";

/// Runs `partfetch make-torrent ARGS`; returns the info-hash and the
/// file it printed, checking that the file is there and parses to that
/// info-hash.
fn make(args: &[&str]) -> (String, PathBuf) {
    let outcome = run(&[&["make-torrent"], args].concat());
    outcome.assert_quiet_success();
    printed(&outcome)
}

/// The `INFO-HASH  FILE` line a successful run printed, checked against
/// the file.
fn printed(outcome: &Outcome) -> (String, PathBuf) {
    let stdout = String::from_utf8(outcome.stdout.clone()).unwrap();
    let line = stdout.strip_suffix('\n').unwrap_or(&stdout);
    assert!(!line.contains('\n'), "one line: {stdout:?}");
    let (hash, file) = line.split_once("  ").expect("HASH  FILE");
    assert_eq!(hash.len(), 40, "{line}");
    assert!(hash
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let metainfo = Metainfo::parse(&bytes).expect("partfetch reads what it made");
    assert_eq!(metainfo.info_hash_hex(), hash);
    (hash.to_owned(), PathBuf::from(file))
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

/// The info-hash `aria2c -S` prints (`Info Hash: …`).
fn aria2_hash(shown: &str) -> String {
    shown
        .lines()
        .find_map(|l| l.strip_prefix("Info Hash: "))
        .unwrap_or_else(|| panic!("no hash in:\n{shown}"))
        .trim()
        .to_lowercase()
}

/// What both programs say about `torrent`, once each has been checked
/// to name `hash`: (transmission-show's, aria2c's).
fn shown_by_both(torrent: &Path, hash: &str) -> Option<(String, String)> {
    let transmission = support::run_tool("transmission-show", &[torrent.as_os_str()])?;
    assert_eq!(
        support::transmission_show_hash(&transmission),
        hash,
        "{transmission}"
    );
    let aria2 = support::run_tool("aria2c", &["-S".as_ref(), torrent.as_os_str()])?;
    assert_eq!(aria2_hash(&aria2), hash, "{aria2}");
    Some((transmission, aria2))
}

#[test]
fn a_single_file_torrent_has_partfetchs_info_hash_in_transmission_and_aria2() {
    let dir = TempDir::new("make-single");
    let file = dir.join("one.bin");
    std::fs::write(&file, test_data(300_001, 1)).unwrap();
    let out = dir.join("one.torrent");
    let (hash, written) = make(&[
        path_str(&file),
        "--announce",
        ANNOUNCE,
        "--web-seed",
        "http://seed.invalid/one.bin",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(written, out);
    let Some((transmission, aria2)) = shown_by_both(&out, &hash) else {
        return;
    };
    assert!(transmission.contains("Public torrent"), "{transmission}");
    assert!(transmission.contains("partfetch/"), "{transmission}");
    assert!(aria2.contains("Mode: single"), "{aria2}");
    assert!(aria2.contains("http://seed.invalid/one.bin"), "{aria2}");
    assert!(aria2.contains("(300,001)"), "{aria2}");
}

#[test]
fn a_directory_torrent_leaves_hidden_files_out_and_has_partfetchs_info_hash() {
    let dir = TempDir::new("make-dir");
    let root = dir.join("set");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join("a.bin"), test_data(70_000, 2)).unwrap();
    std::fs::write(root.join("sub/b.bin"), test_data(20_000, 3)).unwrap();
    std::fs::write(root.join("sub/deeper/c"), test_data(9, 4)).unwrap();
    std::fs::write(root.join(".hidden"), b"not for the torrent").unwrap();
    std::fs::write(root.join(".git/config"), b"not either").unwrap();
    let out = dir.join("set.torrent");
    let (hash, _) = make(&[
        path_str(&root),
        "--announce",
        ANNOUNCE,
        "--announce",
        "udp://other.invalid:6969/announce",
        "--piece-length",
        "16K",
        "-o",
        path_str(&out),
    ]);
    let Some((transmission, aria2)) = shown_by_both(&out, &hash) else {
        return;
    };
    for listed in ["set/a.bin", "set/sub/b.bin", "set/sub/deeper/c"] {
        assert!(
            transmission.contains(listed),
            "{listed} in:\n{transmission}"
        );
        assert!(aria2.contains(listed), "{listed} in:\n{aria2}");
    }
    for left_out in [".hidden", ".git", "config"] {
        assert!(
            !transmission.contains(left_out),
            "{left_out} in:\n{transmission}"
        );
        assert!(!aria2.contains(left_out), "{left_out} in:\n{aria2}");
    }
    // One tier per tracker, in the order given.
    let first = transmission.find("Tier #1").unwrap();
    let second = transmission.find("Tier #2").unwrap();
    assert!(first < transmission.find(ANNOUNCE).unwrap());
    assert!(transmission.find(ANNOUNCE).unwrap() < second);
    assert!(aria2.contains("Mode: multi"), "{aria2}");
}

#[test]
fn a_private_torrent_is_shown_as_private_with_another_info_hash() {
    let dir = TempDir::new("make-private");
    let file = dir.join("secret.bin");
    std::fs::write(&file, test_data(50_000, 5)).unwrap();
    let public = dir.join("public.torrent");
    let private = dir.join("private.torrent");
    let (public_hash, _) = make(&[
        path_str(&file),
        "--announce",
        ANNOUNCE,
        "-o",
        path_str(&public),
    ]);
    let (private_hash, _) = make(&[
        path_str(&file),
        "--announce",
        ANNOUNCE,
        "--private",
        "-o",
        path_str(&private),
    ]);
    assert_ne!(public_hash, private_hash, "private is part of info");
    let Some((transmission, _)) = shown_by_both(&private, &private_hash) else {
        return;
    };
    assert!(transmission.contains("Private torrent"), "{transmission}");
    assert!(Metainfo::parse(&std::fs::read(&private).unwrap())
        .unwrap()
        .is_private());
}

#[test]
fn mktorrent_makes_the_same_info_hash_of_the_same_directory() {
    let dir = TempDir::new("make-mktorrent");
    let root = dir.join("tree");
    // `a-b` sorts before `a/…` as bytes, after it component by component:
    // the order decides the info-hash.
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::write(root.join("a-b"), test_data(40_000, 6)).unwrap();
    std::fs::write(root.join("a/z"), test_data(33_000, 7)).unwrap();
    std::fs::write(root.join("B"), test_data(1, 8)).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    let ours = dir.join("ours.torrent");
    let (hash, _) = make(&[
        path_str(&root),
        "--announce",
        ANNOUNCE,
        "--piece-length",
        "32K",
        "-o",
        path_str(&ours),
    ]);
    let theirs = dir.join("theirs.torrent");
    let args: [&OsStr; 7] = [
        "-l".as_ref(),
        "15".as_ref(),
        "-a".as_ref(),
        ANNOUNCE.as_ref(),
        "-o".as_ref(),
        theirs.as_os_str(),
        root.as_os_str(),
    ];
    if support::run_tool("mktorrent", &args).is_none() {
        return;
    }
    let theirs = Metainfo::parse(&std::fs::read(&theirs).unwrap()).unwrap();
    assert_eq!(theirs.info_hash_hex(), hash);
}

#[test]
fn the_default_output_is_name_dot_torrent_here_and_is_never_replaced_without_force() {
    let dir = TempDir::new("make-output");
    let file = dir.join("film.mkv");
    std::fs::write(&file, test_data(20_000, 9)).unwrap();
    let here = |args: &[&str]| {
        let mut command = cli::command();
        command.current_dir(dir.path()).args(
            [
                &["make-torrent", "film.mkv", "--announce", ANNOUNCE][..],
                args,
            ]
            .concat(),
        );
        cli::run_command(command)
    };
    let first = here(&[]);
    first.assert_quiet_success();
    let (hash, written) = printed_in(&first, dir.path());
    assert_eq!(written, PathBuf::from("film.mkv.torrent"));
    let before = std::fs::read(dir.join("film.mkv.torrent")).unwrap();
    // Refused, as mktorrent refuses, and the file is left as it was.
    let again = here(&["--comment", "another"]);
    again
        .assert_code(7)
        .assert_error_mentions(&["exists", "--force", "film.mkv.torrent"]);
    assert_eq!(again.stdout, b"");
    assert_eq!(std::fs::read(dir.join("film.mkv.torrent")).unwrap(), before);
    // Replaced with --force: another comment, the same info-hash.
    let forced = here(&["--comment", "another", "--force"]);
    forced.assert_quiet_success();
    assert_eq!(printed_in(&forced, dir.path()).0, hash);
    assert_ne!(std::fs::read(dir.join("film.mkv.torrent")).unwrap(), before);
    // -o naming a directory: NAME.torrent inside it.
    std::fs::create_dir(dir.join("out")).unwrap();
    let into = here(&["-o", "out"]);
    into.assert_quiet_success();
    assert_eq!(
        printed_in(&into, dir.path()).1,
        PathBuf::from("out/film.mkv.torrent")
    );
}

/// [`printed`] for a run in `dir`, whose printed file is relative to it.
fn printed_in(outcome: &Outcome, dir: &Path) -> (String, PathBuf) {
    let stdout = String::from_utf8(outcome.stdout.clone()).unwrap();
    let (hash, file) = stdout.trim_end().split_once("  ").expect("HASH  FILE");
    let bytes = std::fs::read(dir.join(file)).unwrap();
    assert_eq!(Metainfo::parse(&bytes).unwrap().info_hash_hex(), hash);
    (hash.to_owned(), PathBuf::from(file))
}

#[test]
fn what_cannot_be_made_is_an_error_naming_the_path() {
    let dir = TempDir::new("make-errors");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join(".hidden"), b"x").unwrap();
    let out = dir.join("x.torrent");
    let make = |path: &Path, more: &[&str]| {
        run(&[
            &[
                "make-torrent",
                path_str(path),
                "--announce",
                ANNOUNCE,
                "-o",
                path_str(&out),
            ][..],
            more,
        ]
        .concat())
    };
    make(&empty, &[])
        .assert_code(2)
        .assert_error_mentions(&["no file", path_str(&empty)]);
    let zero = dir.join("zero");
    std::fs::write(&zero, b"").unwrap();
    make(&zero, &[])
        .assert_code(2)
        .assert_error_mentions(&["no bytes", path_str(&zero)]);
    let missing = dir.join("missing");
    make(&missing, &[])
        .assert_code(7)
        .assert_error_mentions(&[path_str(&missing)]);
    make(&zero, &["--piece-length", "100K"])
        .assert_code(2)
        .assert_error_mentions(&["--piece-length 100K", "power of two"]);
    run(&["make-torrent", path_str(&zero)])
        .assert_code(2)
        .assert_error_mentions(&["--announce"]);
    assert!(!out.exists());
}

#[test]
fn a_made_torrent_is_downloaded_back_from_a_seed_byte_for_byte() {
    let dir = TempDir::new("make-round-trip");
    let root = dir.join("album");
    std::fs::create_dir_all(root.join("disc 2")).unwrap();
    // Odd sizes, so that pieces span files.
    let files = [
        ("01.flac", test_data(300_007, 10)),
        ("02.flac", test_data(123_457, 11)),
        ("disc 2/01.flac", test_data(200_003, 12)),
    ];
    for (path, bytes) in &files {
        std::fs::write(root.join(path), bytes).unwrap();
    }
    std::fs::write(root.join(".DS_Store"), b"left out").unwrap();
    let torrent = dir.join("album.torrent");
    let make = |announce: &str, more: &[&str]| {
        let args = [
            &[
                path_str(&root),
                "--announce",
                announce,
                "-o",
                path_str(&torrent),
            ][..],
            more,
        ]
        .concat();
        make(&args)
    };
    // The info-hash does not depend on the tracker: the seed is started
    // from a first torrent, the tracker naming it goes into the second.
    let (hash, _) = make(ANNOUNCE, &["--piece-length", "64K"]);
    let data: Vec<u8> = files.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    let seeded = Torrent {
        metainfo: std::fs::read(&torrent).unwrap(),
        info_hash: partfetch::sha1::parse_hex(&hash).unwrap(),
        data: data.clone(),
        piece_length: 64 << 10,
    };
    let seed = Seed::start(&seeded, Behaviour::Honest);
    let tracker = Tracker::start(&[seed.addr()]);
    let (again, _) = make(&tracker.url(), &["--piece-length", "64K", "--force"]);
    assert_eq!(again, hash);
    let out = dir.join("downloaded");
    std::fs::create_dir(&out).unwrap();
    run(&[path_str(&torrent), path_str(&out), "-q"]).assert_quiet_success();
    for (path, bytes) in &files {
        let got = std::fs::read(out.join("album").join(path)).unwrap();
        assert!(got == *bytes, "{path} differs");
    }
    assert!(!out.join("album/.DS_Store").exists());
    assert!(seed.sent() >= data.len() as u64);
}
