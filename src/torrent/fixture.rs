//! Test torrents with real piece hashes, and scratch directories: what the
//! tests of the store, the check and the control file share.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::Metainfo;
use crate::bencode::{encode, Node, Value};
use crate::sha1;

/// One file of a test torrent: its path under the torrent's name, its
/// length, whether it is a pad file.
pub(crate) type Entry<'a> = (&'a [&'a str], u64, bool);

/// Files of odd sizes: 7 bytes, an empty file, 10 bytes in a
/// subdirectory, 3 bytes of padding, 13 bytes (33 in all).
pub(crate) const ODD_FILES: [Entry<'static>; 5] = [
    (&["a"], 7, false),
    (&["empty"], 0, false),
    (&["sub", "b"], 10, false),
    (&[".pad", "3"], 3, true),
    (&["c"], 13, false),
];

/// A multi-file torrent named `name` of `files` in pieces of `piece`
/// bytes, and its content: byte `i` is `i * 7 + i / 251` (so no two pieces
/// are alike), pad files' bytes zeros.
pub(crate) fn multi(name: &str, files: &[Entry], piece: u64) -> (Arc<Metainfo>, Vec<u8>) {
    let mut content = Vec::new();
    for &(_, length, pad) in files {
        for _ in 0..length {
            let i = content.len() as u64;
            content.push(if pad { 0 } else { (i * 7 + i / 251) as u8 });
        }
    }
    let hashes = hashes(&content, piece);
    let list: Vec<Node> = files
        .iter()
        .map(|&(path, length, pad)| {
            let components = path.iter().map(|c| Node::from(text(c))).collect();
            let mut entry = vec![
                (&b"length"[..], Node::from(Value::Int(length as i64))),
                (&b"path"[..], Node::from(Value::List(components))),
            ];
            if pad {
                entry.insert(0, (&b"attr"[..], Node::from(text("p"))));
            }
            Node::from(Value::Dict(entry))
        })
        .collect();
    let info = Value::Dict(vec![
        (&b"files"[..], Node::from(Value::List(list))),
        (&b"name"[..], Node::from(text(name))),
        (&b"piece length"[..], Node::from(Value::Int(piece as i64))),
        (&b"pieces"[..], Node::from(Value::Bytes(&hashes))),
    ]);
    let bytes = encode(&Value::Dict(vec![(&b"info"[..], Node::from(info))]));
    (Arc::new(Metainfo::parse(&bytes).unwrap()), content)
}

/// A single-file torrent `name` of `length` bytes, and its content.
pub(crate) fn single(name: &str, length: u64, piece: u64) -> (Arc<Metainfo>, Vec<u8>) {
    let content: Vec<u8> = (0..length).map(|i| (i * 7 + i / 251) as u8).collect();
    let hashes = hashes(&content, piece);
    let info = Value::Dict(vec![
        (&b"length"[..], Node::from(Value::Int(length as i64))),
        (&b"name"[..], Node::from(text(name))),
        (&b"piece length"[..], Node::from(Value::Int(piece as i64))),
        (&b"pieces"[..], Node::from(Value::Bytes(&hashes))),
    ]);
    let bytes = encode(&Value::Dict(vec![(&b"info"[..], Node::from(info))]));
    (Arc::new(Metainfo::parse(&bytes).unwrap()), content)
}

fn text(t: &str) -> Value<'_> {
    Value::Bytes(t.as_bytes())
}

fn hashes(content: &[u8], piece: u64) -> Vec<u8> {
    content
        .chunks(piece as usize)
        .flat_map(sha1::digest)
        .collect()
}

/// A directory of its own under the system's temporary one, removed when
/// dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(label: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "partfetch-torrent-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
