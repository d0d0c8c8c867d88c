//! `.torrent` files made by another program: `mktorrent` writes them,
//! [`Metainfo::parse`] reads them, and `transmission-show` says what the
//! info-hash and the files should be. The piece hashes are checked too,
//! by hashing each piece's bytes where the span map says they lie.
//!
//! When `mktorrent` or `transmission-show` is missing, a test is skipped
//! with a notice, and fails when the environment variable `CI` is set
//! (`support::run_tool`; Debian: `apt-get install mktorrent
//! transmission-cli`).

mod support;

use std::path::Path;

use partfetch::sha1;
use partfetch::torrent::Metainfo;
use support::{test_data, TempDir};

/// Pieces of 2^15 bytes, so that small files span several pieces and
/// pieces span several files.
const PIECE_LENGTH_LOG2: &str = "15";

/// Makes a torrent of `target` (inside `dir`) with `mktorrent`, parses it,
/// and returns it with what `transmission-show` printed.
fn make_and_show(dir: &TempDir, target: &str) -> Option<(Metainfo, String)> {
    let torrent = dir.join("made.torrent");
    let target = dir.join(target);
    let args = [
        "-l".as_ref(),
        PIECE_LENGTH_LOG2.as_ref(),
        "-a".as_ref(),
        "http://tracker.invalid/announce".as_ref(),
        "-o".as_ref(),
        torrent.as_os_str(),
        target.as_os_str(),
    ];
    support::run_tool("mktorrent", &args)?;
    let shown = support::run_tool("transmission-show", &[torrent.as_os_str()])?;
    let bytes = std::fs::read(&torrent).expect("read the torrent");
    let metainfo = Metainfo::parse(&bytes).expect("mktorrent's torrent parses");
    Some((metainfo, shown))
}

/// The file paths `transmission-show` lists, sorted.
fn shown_files(shown: &str) -> Vec<String> {
    let mut files: Vec<String> = shown
        .lines()
        .skip_while(|l| l.trim() != "FILES")
        .skip(1)
        .filter_map(|l| l.trim().rsplit_once(" (").map(|(path, _)| path.to_owned()))
        .collect();
    files.sort();
    files
}

/// Every piece hash matches the bytes the span map finds for it on disk.
fn check_pieces(metainfo: &Metainfo, root: &Path) {
    let layout = metainfo.layout();
    for index in 0..layout.pieces() {
        let mut piece = Vec::new();
        for span in metainfo.piece_spans(index) {
            let file = &metainfo.files()[span.file];
            let bytes = std::fs::read(root.join(file.path().join("/"))).expect("read");
            let start = span.file_offset as usize;
            piece.extend_from_slice(&bytes[start..start + span.length as usize]);
        }
        let (first, last) = layout.range(index);
        assert_eq!(piece.len() as u64, last - first + 1, "piece {index}");
        assert_eq!(
            sha1::digest(&piece),
            metainfo.piece_hashes()[index as usize],
            "piece {index}"
        );
    }
}

#[test]
fn a_single_file_torrent_from_mktorrent_matches_transmission() {
    let dir = TempDir::new("torrent-single");
    std::fs::write(dir.join("one.bin"), test_data(100_001, 1)).unwrap();
    let Some((m, shown)) = make_and_show(&dir, "one.bin") else {
        return;
    };
    assert_eq!(m.info_hash_hex(), support::transmission_show_hash(&shown));
    assert!(m.is_single_file());
    assert_eq!(
        (m.name(), m.length(), m.piece_length()),
        ("one.bin", 100_001, 1 << 15)
    );
    assert_eq!(m.piece_hashes().len(), 4);
    assert_eq!(m.announce(), Some("http://tracker.invalid/announce"));
    assert_eq!(shown_files(&shown), ["one.bin"]);
    check_pieces(&m, dir.path());
}

#[test]
fn a_directory_with_odd_sizes_and_an_empty_file_matches_transmission() {
    let dir = TempDir::new("torrent-dir");
    let root = dir.join("set");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    let files: [(&str, usize); 5] = [
        ("a.bin", 40_000),
        ("empty", 0),
        ("sub/b.bin", 32_768),
        ("sub/deeper/c", 7),
        ("z", 65_537),
    ];
    for (i, (path, len)) in files.iter().enumerate() {
        std::fs::write(root.join(path), test_data(*len, i as u64 + 2)).unwrap();
    }
    let Some((m, shown)) = make_and_show(&dir, "set") else {
        return;
    };
    assert_eq!(m.info_hash_hex(), support::transmission_show_hash(&shown));
    assert!(!m.is_single_file());
    assert_eq!(m.name(), "set");
    let mut ours: Vec<(String, u64)> = m
        .files()
        .iter()
        .map(|f| (f.path().join("/"), f.length()))
        .collect();
    ours.sort();
    let expected: Vec<(String, u64)> = files
        .iter()
        .map(|(p, l)| (format!("set/{p}"), *l as u64))
        .collect();
    assert_eq!(ours, expected);
    let paths: Vec<String> = ours.into_iter().map(|(p, _)| p).collect();
    assert_eq!(shown_files(&shown), paths);
    assert_eq!(m.length(), 138_312);
    assert_eq!(m.layout().pieces(), 138_312u64.div_ceil(1 << 15));
    check_pieces(&m, dir.path());
}
