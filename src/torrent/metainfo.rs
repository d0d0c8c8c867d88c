//! A `.torrent` file (BEP 3's metainfo), parsed into a [`Metainfo`] that
//! can only hold what a download may act on: an info-hash taken from the
//! exact bytes of `info`, a piece count that matches the files' length,
//! and file paths that stay under the download's directory.
//!
//! Read: `announce` and `announce-list` (BEP 12), `url-list` (BEP 19),
//! `private`, pad files (BEP 47), and the v1 half of hybrid v1/v2 torrents
//! (BEP 52's `meta version`, `file tree` and `piece layers` are ignored;
//! a v2-only torrent is refused). Other keys are ignored.

use std::collections::HashSet;
use std::ops::Range;

use super::files::{spans, File, FileSpan};
use super::path::{check_path, PathProblem};
use crate::bencode::{self, Node, Value};
use crate::pieces::Layout;
use crate::sha1;

/// The largest `.torrent` accepted. Decoded values take up to some 50
/// times their encoding in memory (a 2-byte `le` becomes a 48-byte node in
/// a growing vector), so this also bounds a hostile file's memory; it
/// holds 800 000 piece hashes, a 200 GiB torrent in 256 KiB pieces.
pub const MAX_METAINFO_BYTES: usize = 16 << 20;

/// The largest piece accepted: a piece is verified whole, so a store may
/// hold one in memory, and real torrents use at most 16 or 32 MiB.
pub const MAX_PIECE_LENGTH: u64 = 256 << 20;

/// Why a `.torrent` file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not strict bencode.
    Bencode(bencode::Error),
    /// A required key is missing (`info`, `name`, `piece length`,
    /// `pieces`, or `length`/`files`).
    Missing(&'static str),
    /// A key holds the wrong type or an impossible value (a negative
    /// length, a piece length of 0).
    Invalid(&'static str),
    /// A piece length over [`MAX_PIECE_LENGTH`].
    PieceTooLong(u64),
    /// `pieces` is not a whole number of 20-byte hashes.
    PiecesNotHashes(usize),
    /// The number of piece hashes is not what the files' total length
    /// and the piece length make.
    PieceCount {
        /// Hashes the lengths call for.
        expected: u64,
        /// Hashes given.
        found: u64,
    },
    /// Both `length` and `files`: a single-file and a multi-file torrent
    /// at once.
    LengthAndFiles,
    /// The files' lengths add up past `i64::MAX`.
    TotalOverflow,
    /// A path that could name a file outside the download's directory, or
    /// that some system cannot create. The path is shown escaped.
    BadPath {
        /// The path, components joined by `/`, with non-UTF-8 bytes
        /// replaced.
        path: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// A v2-only torrent (BEP 52 without the v1 `pieces`), which this
    /// reader does not handle.
    V2Only,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Bencode(e) => write!(f, "not a torrent: {e}"),
            Error::Missing(key) => write!(f, "torrent has no '{key}'"),
            Error::Invalid(key) => write!(f, "torrent has an invalid '{key}'"),
            Error::PieceTooLong(n) => {
                write!(
                    f,
                    "piece length {n} is over the maximum of {MAX_PIECE_LENGTH}"
                )
            }
            Error::PiecesNotHashes(n) => {
                write!(f, "'pieces' is {n} bytes, not a multiple of 20")
            }
            Error::PieceCount { expected, found } => write!(
                f,
                "torrent has {found} piece hashes where its length needs {expected}"
            ),
            Error::LengthAndFiles => f.write_str("torrent has both 'length' and 'files'"),
            Error::TotalOverflow => f.write_str("torrent's files add up to too many bytes"),
            // Debug formatting escapes control characters: a hostile name
            // cannot reach the terminal as written.
            Error::BadPath { path, problem } => {
                write!(f, "unsafe path {path:?} in torrent: {problem}")
            }
            Error::V2Only => f.write_str("v2-only torrents are not supported"),
        }
    }
}

impl std::error::Error for Error {}

impl From<bencode::Error> for Error {
    fn from(e: bencode::Error) -> Error {
        Error::Bencode(e)
    }
}

/// A checked `.torrent` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo {
    info_hash: [u8; 20],
    name: String,
    piece_length: u64,
    pieces: Vec<[u8; 20]>,
    files: Vec<File>,
    single_file: bool,
    length: u64,
    announce: Option<String>,
    announce_list: Vec<Vec<String>>,
    url_list: Vec<String>,
    private: bool,
}

impl Metainfo {
    /// Parses and checks a `.torrent` file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Metainfo, Error> {
        let top = bencode::decode(bytes, MAX_METAINFO_BYTES)?;
        if top.value.as_dict().is_none() {
            return Err(Error::Invalid("top level"));
        }
        let info = top.get(b"info").ok_or(Error::Missing("info"))?;
        if info.value.as_dict().is_none() {
            return Err(Error::Invalid("info"));
        }
        // The exact bytes, as decoded: strict decoding means there is no
        // other spelling a peer could hash instead.
        let info_hash = sha1::digest(&bytes[info.span.clone()]);
        let name = text(required(info, "name")?, "name")?;
        let piece_length = length(required(info, "piece length")?, "piece length")?;
        if piece_length == 0 {
            return Err(Error::Invalid("piece length"));
        }
        if piece_length > MAX_PIECE_LENGTH {
            return Err(Error::PieceTooLong(piece_length));
        }
        let pieces = piece_hashes(info)?;
        let (files, single_file) = files(info, &name)?;
        let length = files.last().map_or(0, |f: &File| f.offset + f.length);
        let expected = length.div_ceil(piece_length);
        if expected != pieces.len() as u64 {
            return Err(Error::PieceCount {
                expected,
                found: pieces.len() as u64,
            });
        }
        Ok(Metainfo {
            info_hash,
            name,
            piece_length,
            pieces,
            files,
            single_file,
            length,
            announce: top.get(b"announce").and_then(url),
            announce_list: announce_list(&top),
            url_list: url_list(&top),
            private: info.get(b"private").and_then(|n| n.value.as_int()) == Some(1),
        })
    }

    /// The SHA-1 of the `info` dictionary's bytes: the torrent's identity
    /// to trackers and peers.
    pub fn info_hash(&self) -> [u8; 20] {
        self.info_hash
    }

    /// [`Metainfo::info_hash`] as 40 lower-case hex digits.
    pub fn info_hash_hex(&self) -> String {
        sha1::to_hex(&self.info_hash)
    }

    /// The torrent's name: the file's name for a single-file torrent, the
    /// top directory's for a multi-file one (a checked path component).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes per piece, the last piece excepted.
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// The SHA-1 of each piece, in order.
    pub fn piece_hashes(&self) -> &[[u8; 20]] {
        &self.pieces
    }

    /// The files, pad files included, in the order their bytes are laid
    /// end to end.
    pub fn files(&self) -> &[File] {
        &self.files
    }

    /// Whether the torrent is a single file (`length`) rather than a
    /// directory (`files`).
    pub fn is_single_file(&self) -> bool {
        self.single_file
    }

    /// The total length of the files, pad files included.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The `announce` URL, if any.
    pub fn announce(&self) -> Option<&str> {
        self.announce.as_deref()
    }

    /// The `announce-list` tiers (BEP 12), without empty tiers.
    pub fn announce_list(&self) -> &[Vec<String>] {
        &self.announce_list
    }

    /// The `url-list` web seeds (BEP 19).
    pub fn url_list(&self) -> &[String] {
        &self.url_list
    }

    /// Whether the torrent is private (`private` is 1): no DHT or peer
    /// exchange, its trackers only.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The pieces' layout over the files laid end to end, pad files
    /// included.
    pub fn layout(&self) -> Layout {
        Layout::new(self.length, self.piece_length)
    }

    /// Where the torrent's bytes `range` lie in its files, pad files and
    /// empty files left out.
    pub fn spans(&self, range: Range<u64>) -> Vec<FileSpan> {
        spans(&self.files, range)
    }

    /// Where piece `index`'s bytes lie in the files (none when `index` is
    /// past the last piece).
    pub fn piece_spans(&self, index: u64) -> Vec<FileSpan> {
        let layout = self.layout();
        if index >= layout.pieces() {
            return Vec::new();
        }
        let (first, last) = layout.range(index);
        self.spans(first..last + 1)
    }
}

fn required<'n, 'a>(dict: &'n Node<'a>, key: &'static str) -> Result<&'n Node<'a>, Error> {
    dict.get(key.as_bytes()).ok_or(Error::Missing(key))
}

/// A non-negative integer.
fn length(node: &Node, key: &'static str) -> Result<u64, Error> {
    node.value
        .as_int()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(Error::Invalid(key))
}

/// A UTF-8 byte string.
fn text(node: &Node, key: &'static str) -> Result<String, Error> {
    let bytes = node.value.as_bytes().ok_or(Error::Invalid(key))?;
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(Error::BadPath {
            path: String::from_utf8_lossy(bytes).into_owned(),
            problem: PathProblem::NotUtf8,
        }),
    }
}

fn piece_hashes(info: &Node) -> Result<Vec<[u8; 20]>, Error> {
    let Some(node) = info.get(b"pieces") else {
        let v2 = info.get(b"meta version").and_then(|n| n.value.as_int()) == Some(2);
        return Err(if v2 {
            Error::V2Only
        } else {
            Error::Missing("pieces")
        });
    };
    let bytes = node.value.as_bytes().ok_or(Error::Invalid("pieces"))?;
    if bytes.len() % 20 != 0 {
        return Err(Error::PiecesNotHashes(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(20)
        .map(|h| {
            let mut hash = [0u8; 20];
            hash.copy_from_slice(h);
            hash
        })
        .collect())
}

/// The files laid end to end with their offsets, paths checked, and
/// whether the torrent is a single file.
fn files(info: &Node, name: &str) -> Result<(Vec<File>, bool), Error> {
    let bad = |path: &[String], problem| Error::BadPath {
        path: path.join("/"),
        problem,
    };
    match (info.get(b"length"), info.get(b"files")) {
        (Some(_), Some(_)) => Err(Error::LengthAndFiles),
        (None, None) => Err(Error::Missing("length")),
        (Some(node), None) => {
            let path = vec![name.to_owned()];
            check_path(&path).map_err(|p| bad(&path, p))?;
            let length = total(length(node, "length")?)?;
            let pad = false;
            Ok((
                vec![File {
                    path,
                    length,
                    offset: 0,
                    pad,
                }],
                true,
            ))
        }
        (None, Some(list)) => {
            let list = list.value.as_list().ok_or(Error::Invalid("files"))?;
            let mut files = Vec::with_capacity(list.len());
            let mut offset = 0u64;
            let mut seen = Seen::default();
            for entry in list {
                let file = file(entry, name, offset)?;
                check_path(&file.path).map_err(|p| bad(&file.path, p))?;
                if !file.pad && !seen.add(&file.path) {
                    return Err(bad(&file.path, PathProblem::Collision));
                }
                offset = total(offset.saturating_add(file.length))?;
                files.push(file);
            }
            Ok((files, false))
        }
    }
}

/// `n` if it fits the `i64` lengths are carried in on the wire.
fn total(n: u64) -> Result<u64, Error> {
    if n > i64::MAX as u64 {
        return Err(Error::TotalOverflow);
    }
    Ok(n)
}

/// One entry of `files`: its length, its path under `name`, whether it is
/// a pad file (`attr` containing `p`).
fn file(entry: &Node, name: &str, offset: u64) -> Result<File, Error> {
    let length = length(required(entry, "length")?, "length")?;
    let components = required(entry, "path")?
        .value
        .as_list()
        .ok_or(Error::Invalid("path"))?;
    let mut path = Vec::with_capacity(components.len() + 1);
    path.push(name.to_owned());
    if components.is_empty() {
        // Without components the file would be the torrent's directory.
        return Err(Error::BadPath {
            path: format!("{name}/"),
            problem: PathProblem::Empty,
        });
    }
    for component in components {
        path.push(text(component, "path")?);
    }
    let pad = entry
        .get(b"attr")
        .and_then(|a| a.value.as_bytes())
        .is_some_and(|a| a.contains(&b'p'));
    Ok(File {
        path,
        length,
        offset,
        pad,
    })
}

/// The files' paths so far, and the directories they make: a path may be
/// neither another file's nor one of those directories, and no directory
/// may be a file's path.
#[derive(Default)]
struct Seen {
    files: HashSet<Vec<String>>,
    directories: HashSet<Vec<String>>,
}

impl Seen {
    /// Records `path`; false if it collides.
    fn add(&mut self, path: &[String]) -> bool {
        if self.files.contains(path) || self.directories.contains(path) {
            return false;
        }
        for end in 1..path.len() {
            if self.files.contains(&path[..end]) {
                return false;
            }
            self.directories.insert(path[..end].to_vec());
        }
        self.files.insert(path.to_vec());
        true
    }
}

/// A tracker or web seed URL: UTF-8, not empty, no control characters.
/// Anything else is left out rather than refusing the torrent, which
/// stays usable through its other sources.
fn url(node: &Node) -> Option<String> {
    let text = std::str::from_utf8(node.value.as_bytes()?).ok()?;
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_owned())
}

fn announce_list(top: &Node) -> Vec<Vec<String>> {
    let Some(tiers) = top.get(b"announce-list").and_then(|n| n.value.as_list()) else {
        return Vec::new();
    };
    tiers
        .iter()
        .filter_map(|tier| tier.value.as_list())
        .map(|tier| tier.iter().filter_map(url).collect::<Vec<_>>())
        .filter(|tier| !tier.is_empty())
        .collect()
}

fn url_list(top: &Node) -> Vec<String> {
    match top.get(b"url-list").map(|n| &n.value) {
        Some(Value::Bytes(_)) => top.get(b"url-list").and_then(url).into_iter().collect(),
        Some(Value::List(items)) => items.iter().filter_map(url).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::encode;

    fn s(text: &str) -> Value<'_> {
        Value::Bytes(text.as_bytes())
    }

    fn int(n: i64) -> Value<'static> {
        Value::Int(n)
    }

    fn list(items: Vec<Value<'_>>) -> Value<'_> {
        Value::List(items.into_iter().map(Node::from).collect())
    }

    fn dict<'a>(entries: Vec<(&'a str, Value<'a>)>) -> Value<'a> {
        Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes(), v.into()))
                .collect(),
        )
    }

    /// `n` piece hashes, each 20 copies of its index.
    fn hashes(n: usize) -> Value<'static> {
        let bytes: Vec<u8> = (0..n).flat_map(|i| [i as u8; 20]).collect();
        Value::Bytes(Box::leak(bytes.into_boxed_slice()))
    }

    fn file<'a>(length: i64, path: &[&'a str]) -> Value<'a> {
        dict(vec![
            ("length", int(length)),
            ("path", list(path.iter().map(|c| s(c)).collect())),
        ])
    }

    fn torrent(info: Value) -> Vec<u8> {
        encode(&dict(vec![
            ("announce", s("http://t.example/announce")),
            ("info", info),
        ]))
    }

    fn single(name: &str, length: i64, piece: i64, pieces: usize) -> Vec<u8> {
        torrent(dict(vec![
            ("name", s(name)),
            ("length", int(length)),
            ("piece length", int(piece)),
            ("pieces", hashes(pieces)),
        ]))
    }

    fn multi(files: Vec<Value>, piece: i64, pieces: usize) -> Vec<u8> {
        torrent(dict(vec![
            ("name", s("dir")),
            ("files", list(files)),
            ("piece length", int(piece)),
            ("pieces", hashes(pieces)),
        ]))
    }

    fn bad_path(bytes: &[u8]) -> (String, PathProblem) {
        match Metainfo::parse(bytes) {
            Err(Error::BadPath { path, problem }) => (path, problem),
            other => panic!("expected a bad path, got {other:?}"),
        }
    }

    #[test]
    fn a_single_file_torrent_is_read_and_hashed_over_the_exact_info_bytes() {
        let bytes = single("a.iso", 20, 8, 3);
        let m = Metainfo::parse(&bytes).unwrap();
        let start = bytes.windows(6).position(|w| w == b"4:info").unwrap() + 6;
        assert_eq!(m.info_hash(), sha1::digest(&bytes[start..bytes.len() - 1]));
        assert_eq!(m.info_hash_hex().len(), 40);
        assert_eq!((m.name(), m.length(), m.piece_length()), ("a.iso", 20, 8));
        assert!(m.is_single_file() && !m.is_private());
        assert_eq!(m.files().len(), 1);
        assert_eq!(m.files()[0].path(), ["a.iso"]);
        assert_eq!(m.piece_hashes()[2], [2u8; 20]);
        assert_eq!((m.layout().length(), m.layout().pieces()), (20, 3));
        assert_eq!(m.announce(), Some("http://t.example/announce"));
        assert_eq!(m.piece_spans(2)[0].length, 4);
        assert!(m.piece_spans(3).is_empty());
    }

    #[test]
    fn a_multi_file_torrent_with_odd_sizes_and_an_empty_file_maps_pieces_to_files() {
        let files = vec![
            file(7, &["a"]),
            file(0, &["empty"]),
            file(10, &["sub", "b"]),
            file(3, &["c"]),
        ];
        let m = Metainfo::parse(&multi(files, 8, 3)).unwrap();
        assert!(!m.is_single_file());
        assert_eq!(m.length(), 20);
        let paths: Vec<_> = m.files().iter().map(|f| f.path().join("/")).collect();
        assert_eq!(paths, ["dir/a", "dir/empty", "dir/sub/b", "dir/c"]);
        let offsets: Vec<_> = m.files().iter().map(File::offset).collect();
        assert_eq!(offsets, [0, 7, 7, 17]);
        let piece0: Vec<_> = m
            .piece_spans(0)
            .iter()
            .map(|s| (s.file, s.file_offset, s.length))
            .collect();
        assert_eq!(piece0, [(0, 0, 7), (2, 0, 1)]);
        let piece2: Vec<_> = m
            .piece_spans(2)
            .iter()
            .map(|s| (s.file, s.file_offset, s.length))
            .collect();
        assert_eq!(piece2, [(2, 9, 1), (3, 0, 3)]);
    }

    #[test]
    fn pad_files_count_in_the_layout_but_are_never_written() {
        let pad = dict(vec![
            ("attr", s("p")),
            ("length", int(3)),
            ("path", list(vec![s(".pad"), s("3")])),
        ]);
        let m = Metainfo::parse(&multi(vec![file(5, &["a"]), pad, file(4, &["b"])], 8, 2)).unwrap();
        assert_eq!(m.length(), 12);
        assert!(m.files()[1].is_pad());
        let piece0: Vec<_> = m.piece_spans(0).iter().map(|s| s.file).collect();
        assert_eq!(piece0, [0]);
        assert_eq!(m.piece_spans(1)[0].file, 2);
    }

    #[test]
    fn trackers_web_seeds_and_private_are_kept() {
        let info = dict(vec![
            ("length", int(1)),
            ("name", s("x")),
            ("piece length", int(16)),
            ("pieces", hashes(1)),
            ("private", int(1)),
        ]);
        let bytes = encode(&dict(vec![
            (
                "announce-list",
                list(vec![
                    list(vec![s("udp://a"), s("http://b")]),
                    list(vec![]),
                    list(vec![s("bad\nurl"), int(3)]),
                    list(vec![s("http://c")]),
                ]),
            ),
            ("info", info.clone()),
            ("url-list", s("http://seed/x")),
        ]));
        let m = Metainfo::parse(&bytes).unwrap();
        assert_eq!(m.announce(), None);
        assert_eq!(
            m.announce_list(),
            [vec!["udp://a", "http://b"], vec!["http://c"]]
        );
        assert_eq!(m.url_list(), ["http://seed/x"]);
        assert!(m.is_private());
        let bytes = encode(&dict(vec![
            ("info", info),
            ("url-list", list(vec![s("http://a/"), s("http://b/")])),
        ]));
        assert_eq!(
            Metainfo::parse(&bytes).unwrap().url_list(),
            ["http://a/", "http://b/"]
        );
    }

    #[test]
    fn a_hybrid_torrent_is_read_through_its_v1_half_and_v2_only_is_refused() {
        let v2 = |with_pieces: bool| {
            let mut info = vec![
                (
                    "file tree",
                    dict(vec![(
                        "x",
                        dict(vec![("", dict(vec![("length", int(5))]))]),
                    )]),
                ),
                ("length", int(5)),
                ("meta version", int(2)),
                ("name", s("x")),
                ("piece length", int(16384)),
            ];
            if with_pieces {
                info.push(("pieces", hashes(1)));
            }
            encode(&dict(vec![
                ("info", dict(info)),
                ("piece layers", dict(vec![])),
            ]))
        };
        assert_eq!(Metainfo::parse(&v2(true)).unwrap().length(), 5);
        assert_eq!(Metainfo::parse(&v2(false)), Err(Error::V2Only));
    }

    #[test]
    fn the_piece_count_must_match_the_length() {
        assert_eq!(
            Metainfo::parse(&single("a", 20, 8, 2)),
            Err(Error::PieceCount {
                expected: 3,
                found: 2
            })
        );
        assert_eq!(
            Metainfo::parse(&single("a", 20, 8, 4)),
            Err(Error::PieceCount {
                expected: 3,
                found: 4
            })
        );
        // An empty torrent has no pieces.
        assert_eq!(
            Metainfo::parse(&single("a", 0, 8, 0))
                .unwrap()
                .layout()
                .pieces(),
            0
        );
        let short = torrent(dict(vec![
            ("length", int(1)),
            ("name", s("a")),
            ("piece length", int(8)),
            ("pieces", s("0123456789")),
        ]));
        assert_eq!(Metainfo::parse(&short), Err(Error::PiecesNotHashes(10)));
    }

    #[test]
    fn impossible_values_are_refused() {
        assert_eq!(
            Metainfo::parse(&single("a", 1, 0, 1)),
            Err(Error::Invalid("piece length"))
        );
        assert_eq!(
            Metainfo::parse(&single("a", -1, 8, 0)),
            Err(Error::Invalid("length"))
        );
        assert_eq!(
            Metainfo::parse(&single("a", 1, 1 << 30, 1)),
            Err(Error::PieceTooLong(1 << 30))
        );
        let huge = multi(vec![file(i64::MAX, &["a"]), file(1, &["b"])], 1 << 20, 0);
        assert_eq!(Metainfo::parse(&huge), Err(Error::TotalOverflow));
        let both = torrent(dict(vec![
            ("files", list(vec![file(1, &["a"])])),
            ("length", int(1)),
            ("name", s("a")),
            ("piece length", int(8)),
            ("pieces", hashes(1)),
        ]));
        assert_eq!(Metainfo::parse(&both), Err(Error::LengthAndFiles));
        assert_eq!(Metainfo::parse(b"de"), Err(Error::Missing("info")));
        assert_eq!(Metainfo::parse(b"le"), Err(Error::Invalid("top level")));
        assert!(matches!(
            Metainfo::parse(b"d4:infod1:bi1e1:ai1eee"),
            Err(Error::Bencode(bencode::Error::UnsortedKey { .. }))
        ));
    }

    #[test]
    fn paths_that_escape_or_cannot_be_created_are_refused_by_name() {
        let one = |path: &[&str]| bad_path(&multi(vec![file(1, path)], 8, 1));
        assert_eq!(
            one(&["..", "etc", "passwd"]),
            ("dir/../etc/passwd".into(), PathProblem::Dots)
        );
        assert_eq!(one(&["/etc"]).1, PathProblem::Separator);
        assert_eq!(one(&["a\\..\\b"]).1, PathProblem::Separator);
        assert_eq!(one(&["a\0"]).1, PathProblem::Control);
        assert_eq!(
            one(&["aux.txt"]),
            ("dir/aux.txt".into(), PathProblem::Reserved)
        );
        assert_eq!(one(&[]).1, PathProblem::Empty);
        assert_eq!(one(&[""]).1, PathProblem::Empty);
        assert_eq!(bad_path(&single("..", 1, 8, 1)).1, PathProblem::Dots);
        assert_eq!(bad_path(&single("C:", 1, 8, 1)).1, PathProblem::Drive);
        let collide = multi(vec![file(1, &["a"]), file(1, &["a"])], 8, 1);
        assert_eq!(bad_path(&collide), ("dir/a".into(), PathProblem::Collision));
        let under_a_file = multi(vec![file(1, &["a"]), file(1, &["a", "b"])], 8, 1);
        assert_eq!(bad_path(&under_a_file).1, PathProblem::Collision);
        let over_a_dir = multi(vec![file(1, &["a", "b"]), file(1, &["a"])], 8, 1);
        assert_eq!(bad_path(&over_a_dir).1, PathProblem::Collision);
        let latin1 = torrent(dict(vec![
            ("length", int(1)),
            ("name", Value::Bytes(b"caf\xe9")),
            ("piece length", int(8)),
            ("pieces", hashes(1)),
        ]));
        assert_eq!(bad_path(&latin1).1, PathProblem::NotUtf8);
    }

    #[test]
    fn errors_escape_hostile_paths() {
        let message = Metainfo::parse(&multi(vec![file(1, &["\x1b[2Jx"])], 8, 1))
            .unwrap_err()
            .to_string();
        assert!(!message.contains('\x1b'), "{message}");
        assert!(message.contains("\\u{1b}[2Jx"), "{message}");
    }
}
