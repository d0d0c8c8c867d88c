//! Making a `.torrent` file (BEP 3's v1 metainfo) of a file or a
//! directory: what `mktorrent` and `transmission-create` do.
//!
//! ```no_run
//! use partfetch::torrent::MakeTorrent;
//!
//! let made = MakeTorrent::new("film.mkv")
//!     .announce("udp://tracker.example:6969/announce")
//!     .web_seed("https://example.com/film.mkv")
//!     .make()?;
//! std::fs::write("film.mkv.torrent", &made.bytes)?;
//! println!("{}", made.info_hash_hex());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Owns the builder ([`MakeTorrent`]), what the torrent says (`announce`
//! and BEP 12's `announce-list`, BEP 19's `url-list`, `private`,
//! `comment`, `created by`, `creation date`) and its encoding. Which
//! files, in which order, is `walk`'s (hidden files inside a directory
//! are left out, links followed); hashing them, each read once, in order
//! and one read at a time, and hashed on every core, is `hash`'s; the piece length chosen
//! from the size, `piece_length`'s. Writing the `.torrent` somewhere is
//! the caller's: the command refuses to replace a file unless told to.
//!
//! Not made: v2 and hybrid torrents (BEP 52), pad files (BEP 47), the
//! `source` key, magnet links.

mod hash;
mod piece_length;
mod walk;

pub use piece_length::{
    auto_piece_length, check_piece_length, AUTO_MAX_PIECES, MAX_AUTO_PIECE_LENGTH,
    MAX_MADE_PIECE_LENGTH, MIN_PIECE_LENGTH,
};

use std::path::{Path, PathBuf};

use super::metainfo::{Metainfo, MAX_METAINFO_BYTES};
use crate::bencode::{encode, Node, Value};
use crate::error::{Error, ErrorKind, Result};

/// What `created by` says: this program and its version.
pub const CREATED_BY: &str = concat!("partfetch/", env!("CARGO_PKG_VERSION"));

/// A torrent to be made of a file or a directory; [`MakeTorrent::make`]
/// hashes the files and encodes it.
#[derive(Clone, Debug)]
pub struct MakeTorrent {
    path: PathBuf,
    announce: Vec<String>,
    web_seeds: Vec<String>,
    piece_length: Option<u64>,
    private: bool,
    comment: Option<String>,
    creation_date: CreationDate,
}

/// When the torrent says it was made.
#[derive(Clone, Copy, Debug)]
enum CreationDate {
    Now,
    At(u64),
    Omitted,
}

/// A torrent made: its bytes, and what they say.
#[derive(Clone, Debug)]
pub struct MadeTorrent {
    /// The `.torrent` file's bytes.
    pub bytes: Vec<u8>,
    /// The same, parsed back: its info-hash, files and pieces.
    pub metainfo: Metainfo,
    /// Special files (named pipes, sockets, devices) inside the directory
    /// that were left out.
    pub skipped: Vec<PathBuf>,
}

impl MadeTorrent {
    /// The SHA-1 of the `info` dictionary: the torrent's identity to
    /// trackers and peers.
    pub fn info_hash(&self) -> [u8; 20] {
        self.metainfo.info_hash()
    }

    /// [`MadeTorrent::info_hash`] as 40 lower-case hex digits.
    pub fn info_hash_hex(&self) -> String {
        self.metainfo.info_hash_hex()
    }
}

impl MakeTorrent {
    /// A torrent of `path`: a file (a single-file torrent named after
    /// it) or a directory (a multi-file torrent of the files under it,
    /// hidden ones left out). No tracker, no web seed, public, the piece
    /// length chosen from the size ([`auto_piece_length`]), dated now.
    pub fn new(path: impl Into<PathBuf>) -> MakeTorrent {
        MakeTorrent {
            path: path.into(),
            announce: Vec::new(),
            web_seeds: Vec::new(),
            piece_length: None,
            private: false,
            comment: None,
            creation_date: CreationDate::Now,
        }
    }

    /// Adds a tracker. The first is `announce`; with more than one, each
    /// is also a tier of its own in `announce-list` (BEP 12), in the
    /// order given, as `mktorrent` writes repeated `-a`: a client tries
    /// them one after the other.
    pub fn announce(mut self, url: impl Into<String>) -> MakeTorrent {
        self.announce.push(url.into());
        self
    }

    /// Adds a web seed (BEP 19's `url-list`): an HTTP URL serving the
    /// file, or for a directory the URL the torrent's name is under.
    pub fn web_seed(mut self, url: impl Into<String>) -> MakeTorrent {
        self.web_seeds.push(url.into());
        self
    }

    /// Pieces of `bytes`, a power of two from [`MIN_PIECE_LENGTH`] to
    /// [`MAX_MADE_PIECE_LENGTH`] (checked by [`MakeTorrent::make`]),
    /// instead of the length chosen from the size.
    pub fn piece_length(mut self, bytes: u64) -> MakeTorrent {
        self.piece_length = Some(bytes);
        self
    }

    /// Marks the torrent private (`private` 1 in `info`): clients use its
    /// trackers only, no DHT or peer exchange. Part of the info-hash.
    pub fn private(mut self, private: bool) -> MakeTorrent {
        self.private = private;
        self
    }

    /// A `comment` for people.
    pub fn comment(mut self, text: impl Into<String>) -> MakeTorrent {
        self.comment = Some(text.into());
        self
    }

    /// The `creation date`, in seconds since 1970: `None` leaves it out
    /// (as `mktorrent -d` does), so that the same files make the same
    /// bytes. Without this call, the time of [`MakeTorrent::make`].
    pub fn creation_date(mut self, seconds: Option<u64>) -> MakeTorrent {
        self.creation_date = seconds.map_or(CreationDate::Omitted, CreationDate::At);
        self
    }

    /// Lists and hashes the files and encodes the torrent.
    ///
    /// Errors name the path they concern: [`ErrorKind::InvalidInput`] for
    /// what cannot be made into a torrent (no bytes at all, a name
    /// partfetch itself would refuse, a link loop, a bad piece length or
    /// URL), [`ErrorKind::Io`] for a file that cannot be read (or a link
    /// to nothing), [`ErrorKind::Limit`] for a `.torrent` that would be
    /// over [`MAX_METAINFO_BYTES`].
    pub fn make(&self) -> Result<MadeTorrent> {
        let subject = |e: Error| e.with_subject(self.path.display());
        for url in self.announce.iter().chain(&self.web_seeds) {
            check_url(url)?;
        }
        if let Some(length) = self.piece_length {
            check_piece_length(length).map_err(subject)?;
        }
        let listing = walk::list(&self.path)?;
        let piece_length = self
            .piece_length
            .unwrap_or_else(|| auto_piece_length(listing.total));
        let pieces = listing.total.div_ceil(piece_length);
        // The hashes alone must fit a .torrent partfetch reads back;
        // known before hashing for hours.
        if pieces.saturating_mul(20) > MAX_METAINFO_BYTES as u64 - 64 * 1024 {
            return Err(subject(Error::new(
                ErrorKind::Limit,
                format!(
                    "{pieces} pieces of {piece_length} bytes would make a .torrent over \
                     {} MiB: choose longer pieces",
                    MAX_METAINFO_BYTES >> 20
                ),
            )));
        }
        let hashes =
            hash::hash_pieces(&listing.files, listing.total, piece_length, hash::hashers())?;
        let date = match self.creation_date {
            CreationDate::Now => Some(now()),
            CreationDate::At(seconds) => Some(seconds),
            CreationDate::Omitted => None,
        };
        let bytes = self.encode(&listing, piece_length, &hashes, date);
        let metainfo = Metainfo::parse(&bytes).map_err(|e| {
            let kind = match e {
                super::Error::Bencode(crate::bencode::Error::TooLarge { .. }) => ErrorKind::Limit,
                _ => ErrorKind::Torrent,
            };
            subject(Error::new(
                kind,
                format!("the torrent made cannot be read back: {e}"),
            ))
        })?;
        Ok(MadeTorrent {
            bytes,
            metainfo,
            skipped: listing.skipped,
        })
    }

    /// The `.torrent` file's bytes.
    fn encode(
        &self,
        listing: &walk::Listing,
        piece_length: u64,
        hashes: &[u8],
        date: Option<u64>,
    ) -> Vec<u8> {
        fn bytes(b: &[u8]) -> Node<'_> {
            Node::from(Value::Bytes(b))
        }
        fn text(t: &str) -> Node<'_> {
            bytes(t.as_bytes())
        }
        fn list(items: Vec<Node<'_>>) -> Node<'_> {
            Node::from(Value::List(items))
        }
        // Lengths were checked to fit an i64 when listed.
        let int = |n: u64| Node::from(Value::Int(n as i64));
        let mut info: Vec<(&[u8], Node)> = vec![
            (b"name", text(&listing.name)),
            (b"piece length", int(piece_length)),
            (b"pieces", bytes(hashes)),
        ];
        if listing.single {
            info.push((b"length", int(listing.total)));
        } else {
            let files = listing
                .files
                .iter()
                .map(|file| {
                    let path = file.components.iter().map(|c| text(c)).collect();
                    Node::from(Value::Dict(vec![
                        (b"length", int(file.length)),
                        (b"path", list(path)),
                    ]))
                })
                .collect();
            info.push((b"files", list(files)));
        }
        if self.private {
            info.push((b"private", int(1)));
        }
        let mut top: Vec<(&[u8], Node)> = vec![
            (b"created by", text(CREATED_BY)),
            (b"info", Node::from(Value::Dict(info))),
        ];
        if let Some(first) = self.announce.first() {
            top.push((b"announce", text(first)));
        }
        if self.announce.len() > 1 {
            let tiers = self.announce.iter().map(|url| list(vec![text(url)]));
            top.push((b"announce-list", list(tiers.collect())));
        }
        match self.web_seeds.as_slice() {
            [] => {}
            // One as a string, several as a list: both are BEP 19's, and
            // a string is what older clients read.
            [one] => top.push((b"url-list", text(one))),
            many => top.push((b"url-list", list(many.iter().map(|u| text(u)).collect()))),
        }
        if let Some(comment) = &self.comment {
            top.push((b"comment", text(comment)));
        }
        if let Some(date) = date {
            top.push((b"creation date", int(date)));
        }
        encode(&Value::Dict(top))
    }

    /// The path the torrent is made of.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name the torrent will have, without reading any file: the
    /// path's last component (resolved for `.` and `..`), checked as
    /// [`MakeTorrent::make`] checks it. A caller chooses where to write
    /// `NAME.torrent` before the hashing, which may take long.
    pub fn name(&self) -> Result<String> {
        walk::torrent_name(&self.path)
    }
}

/// A tracker or web seed URL as a torrent can carry it: `scheme://…`
/// with no space or control character (a reader drops such a URL, and
/// partfetch's does).
fn check_url(url: &str) -> Result<()> {
    let scheme_ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && !rest.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if scheme_ok && !url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!("not a URL a torrent can name as a tracker or web seed: {url:?}"),
    ))
}

/// Seconds since 1970, now (0 on a clock set before it).
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::decode;
    use crate::sha1;
    use crate::torrent::fixture::Scratch;

    fn write(root: &Path, path: &str, bytes: &[u8]) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 9) as u8)
            .collect()
    }

    #[test]
    fn a_single_file_torrent_reads_back_with_its_hashes_and_info_hash() {
        let scratch = Scratch::new("make-single");
        let content = data(100_001, 3);
        write(scratch.path(), "one.bin", &content);
        let made = MakeTorrent::new(scratch.path().join("one.bin"))
            .announce("http://t.example/announce")
            .piece_length(32 << 10)
            .creation_date(Some(1_700_000_000))
            .make()
            .unwrap();
        let m = &made.metainfo;
        assert!(m.is_single_file() && !m.is_private());
        assert_eq!(
            (m.name(), m.length(), m.piece_length()),
            ("one.bin", 100_001, 32 << 10)
        );
        let expected: Vec<[u8; 20]> = content.chunks(32 << 10).map(sha1::digest).collect();
        assert_eq!(m.piece_hashes(), expected);
        assert_eq!(m.announce(), Some("http://t.example/announce"));
        assert!(m.announce_list().is_empty() && m.url_list().is_empty());
        // The info-hash is the SHA-1 of the info dictionary's bytes.
        let top = decode(&made.bytes, MAX_METAINFO_BYTES).unwrap();
        let info = top.get(b"info").unwrap();
        assert_eq!(
            made.info_hash(),
            sha1::digest(&made.bytes[info.span.clone()])
        );
        assert_eq!(
            made.info_hash(),
            Metainfo::parse(&made.bytes).unwrap().info_hash()
        );
        assert_eq!(made.info_hash_hex(), sha1::to_hex(&made.info_hash()));
        let text = |key: &[u8]| top.get(key).and_then(|n| n.value.as_bytes());
        assert_eq!(text(b"created by"), Some(CREATED_BY.as_bytes()));
        assert!(CREATED_BY.starts_with("partfetch/0."));
        assert_eq!(
            top.get(b"creation date").and_then(|n| n.value.as_int()),
            Some(1_700_000_000)
        );
        assert!(made.skipped.is_empty());
    }

    #[test]
    fn a_directory_torrent_lists_its_files_in_order_and_pieces_span_them() {
        let scratch = Scratch::new("make-dir");
        let root = scratch.path().join("set");
        let files = [
            ("a.bin", data(40_000, 5)),
            ("empty", Vec::new()),
            ("sub/b.bin", data(32_768, 7)),
            ("sub/deeper/c", data(7, 9)),
            ("z", data(65_537, 11)),
        ];
        for (path, bytes) in &files {
            write(&root, path, bytes);
        }
        write(&root, ".hidden", b"left out");
        let made = MakeTorrent::new(&root)
            .announce("http://t.example/announce")
            .piece_length(16 << 10)
            .make()
            .unwrap();
        let m = &made.metainfo;
        assert!(!m.is_single_file());
        assert_eq!(m.name(), "set");
        let listed: Vec<(String, u64)> = m
            .files()
            .iter()
            .map(|f| (f.path().join("/"), f.length()))
            .collect();
        let expected: Vec<(String, u64)> = files
            .iter()
            .map(|(p, b)| (format!("set/{p}"), b.len() as u64))
            .collect();
        assert_eq!(listed, expected);
        let all: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
        let hashes: Vec<[u8; 20]> = all.chunks(16 << 10).map(sha1::digest).collect();
        assert_eq!(m.piece_hashes(), hashes);
        assert_eq!(m.length(), all.len() as u64);
    }

    #[test]
    fn trackers_web_seeds_private_and_comment_are_written() {
        let scratch = Scratch::new("make-keys");
        write(scratch.path(), "f", b"some bytes");
        let base = MakeTorrent::new(scratch.path().join("f")).creation_date(None);
        let made = base
            .clone()
            .announce("udp://a.example:6969/announce")
            .announce("http://b.example/announce")
            .announce("https://c.example/announce")
            .web_seed("http://seed.example/f")
            .web_seed("http://other.example/f")
            .private(true)
            .comment("hello")
            .make()
            .unwrap();
        let m = &made.metainfo;
        assert_eq!(m.announce(), Some("udp://a.example:6969/announce"));
        assert_eq!(
            m.announce_list(),
            [
                vec!["udp://a.example:6969/announce"],
                vec!["http://b.example/announce"],
                vec!["https://c.example/announce"]
            ]
        );
        assert_eq!(
            m.url_list(),
            ["http://seed.example/f", "http://other.example/f"]
        );
        assert!(m.is_private());
        let top = decode(&made.bytes, MAX_METAINFO_BYTES).unwrap();
        assert_eq!(
            top.get(b"comment").and_then(|n| n.value.as_bytes()),
            Some(&b"hello"[..])
        );
        assert!(top.get(b"creation date").is_none());
        // Private is part of the info-hash; trackers, seeds and the
        // comment are not.
        let public = base.clone().make().unwrap();
        assert_ne!(public.info_hash(), made.info_hash());
        assert_eq!(
            base.clone().private(true).make().unwrap().info_hash(),
            made.info_hash()
        );
        // One tracker: no announce-list; one web seed: a string.
        let one = base
            .announce("http://t/a")
            .web_seed("http://s/f")
            .make()
            .unwrap();
        let top = decode(&one.bytes, MAX_METAINFO_BYTES).unwrap();
        assert!(top.get(b"announce-list").is_none());
        assert_eq!(
            top.get(b"url-list").and_then(|n| n.value.as_bytes()),
            Some(&b"http://s/f"[..])
        );
        // Without a date, the same files make the same bytes.
        assert_eq!(
            public.bytes,
            MakeTorrent::new(scratch.path().join("f"))
                .creation_date(None)
                .make()
                .unwrap()
                .bytes
        );
    }

    #[test]
    fn bad_piece_lengths_and_urls_are_refused_before_reading() {
        let scratch = Scratch::new("make-bad");
        let missing = scratch.path().join("missing");
        let err = MakeTorrent::new(&missing)
            .piece_length(100_000)
            .make()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("power of two"), "{err}");
        assert_eq!(err.subject(), Some(missing.display().to_string().as_str()));
        for url in [
            "",
            "tracker",
            "http://",
            "://x",
            "http://a b/",
            "http://a/\n",
        ] {
            let err = MakeTorrent::new(&missing).announce(url).make().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url:?}");
            let err = MakeTorrent::new(&missing).web_seed(url).make().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url:?}");
        }
        // A good one gets as far as the missing file.
        let err = MakeTorrent::new(&missing)
            .announce("udp://t.example:1337")
            .make()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
    }

    #[test]
    fn too_many_pieces_for_a_torrent_are_refused_before_hashing() {
        let scratch = Scratch::new("make-huge");
        let path = scratch.path().join("sparse");
        // A sparse file: nothing is read before the refusal.
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(64 << 30).unwrap();
        let err = MakeTorrent::new(&path)
            .piece_length(16 << 10)
            .make()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limit);
        assert!(err.message().contains("longer pieces"), "{err}");
    }
}
