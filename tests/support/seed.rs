//! A small swarm on 127.0.0.1 for tests: `.torrent` files made from bytes
//! in memory, seeds that speak the peer wire protocol (honest ones, and
//! ones that corrupt a piece or stop half-way), and an HTTP tracker that
//! names them.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use partfetch::bencode::{self, Node, Value};
use partfetch::torrent::wire::{self, Bitfield, Decoded, Handshake, Message};

use super::{Reply, Server};

/// A torrent built in memory.
pub struct Torrent {
    /// The `.torrent` file.
    pub metainfo: Vec<u8>,
    /// The SHA-1 of its `info`.
    pub info_hash: [u8; 20],
    /// The files' bytes, end to end.
    pub data: Vec<u8>,
    /// Its piece length.
    pub piece_length: u64,
}

impl Torrent {
    /// A torrent of one file `name` holding `data`.
    pub fn single(name: &str, data: &[u8], piece_length: u64, announce: &str) -> Torrent {
        Torrent::build(name, data, piece_length, announce, None)
    }

    /// A torrent of several files under directory `name`: each path (`/`
    /// between components) and its bytes.
    pub fn multi(
        name: &str,
        files: &[(&str, Vec<u8>)],
        piece_length: u64,
        announce: &str,
    ) -> Torrent {
        let data: Vec<u8> = files.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        Torrent::build(name, &data, piece_length, announce, Some(files))
    }

    fn build(
        name: &str,
        data: &[u8],
        piece_length: u64,
        announce: &str,
        files: Option<&[(&str, Vec<u8>)]>,
    ) -> Torrent {
        let hashes: Vec<u8> = data
            .chunks(piece_length as usize)
            .flat_map(partfetch::sha1::digest)
            .collect();
        let int = |n: u64| -> Node { Value::Int(n as i64).into() };
        let bytes = |b: &'static [u8]| -> Node<'static> { Value::Bytes(b).into() };
        let name: &'static [u8] = leak(name.as_bytes().to_vec());
        let hashes: &'static [u8] = leak(hashes);
        let mut info: Vec<(&[u8], Node)> = vec![
            (b"name", bytes(name)),
            (b"piece length", int(piece_length)),
            (b"pieces", bytes(hashes)),
        ];
        match files {
            None => info.push((b"length", int(data.len() as u64))),
            Some(files) => {
                let list = files
                    .iter()
                    .map(|(path, body)| {
                        let components = path
                            .split('/')
                            .map(|c| bytes(leak(c.as_bytes().to_vec())))
                            .collect();
                        Value::Dict(vec![
                            (b"length", int(body.len() as u64)),
                            (b"path", Value::List(components).into()),
                        ])
                        .into()
                    })
                    .collect();
                info.push((b"files", Value::List(list).into()));
            }
        }
        let info_bytes = bencode::encode(&Value::Dict(info));
        let info_hash = partfetch::sha1::digest(&info_bytes);
        let announce: &'static [u8] = leak(announce.as_bytes().to_vec());
        // The dictionary with `info` spliced in as its exact bytes.
        let mut metainfo = Vec::new();
        metainfo.extend_from_slice(b"d8:announce");
        metainfo.extend_from_slice(format!("{}:", announce.len()).as_bytes());
        metainfo.extend_from_slice(announce);
        metainfo.extend_from_slice(b"4:info");
        metainfo.extend_from_slice(&info_bytes);
        metainfo.push(b'e');
        Torrent {
            metainfo,
            info_hash,
            data: data.to_vec(),
            piece_length,
        }
    }

    fn pieces(&self) -> u32 {
        self.data.len().div_ceil(self.piece_length as usize) as u32
    }
}

fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

/// How a seed behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends every block asked for, as it is.
    Honest,
    /// Flips a byte of every block of this piece.
    Corrupts(u32),
    /// Flips a byte of every block it sends.
    CorruptsAll,
    /// Sends blocks slowly: this pause before each.
    Slow(Duration),
}

/// A seed listening on 127.0.0.1, with every piece.
pub struct Seed {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl Seed {
    /// Starts a seed of `torrent`.
    pub fn start(torrent: &Torrent, behaviour: Behaviour) -> Seed {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new((
            torrent.data.clone(),
            torrent.info_hash,
            torrent.pieces(),
            torrent.piece_length as usize,
        ));
        let (stopped, counted, open) = (stop.clone(), sent.clone(), connections.clone());
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                open.lock().unwrap().push(stream.try_clone().unwrap());
                let (shared, counted) = (shared.clone(), counted.clone());
                thread::spawn(move || {
                    let (data, hash, pieces, length) = &*shared;
                    let _ = serve(stream, data, *hash, *pieces, *length, behaviour, &counted);
                });
            }
        });
        Seed {
            addr,
            stop,
            sent,
            connections,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Block bytes it sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for stream in self.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection: handshake, bitfield, unchoke, then blocks for requests.
fn serve(
    mut stream: TcpStream,
    data: &[u8],
    info_hash: [u8; 20],
    pieces: u32,
    piece_length: usize,
    behaviour: Behaviour,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = [0u8; wire::HANDSHAKE_LEN];
    stream.read_exact(&mut head)?;
    if head[28..48] != info_hash {
        return Ok(());
    }
    let ours = Handshake::ours(info_hash, *b"-SD0001-testseed0000");
    let mut all = Bitfield::new(pieces);
    for i in 0..pieces {
        all.set(i, true);
    }
    let mut out = ours.encode().to_vec();
    Message::Bitfield(all).encode_into(&mut out);
    Message::Unchoke.encode_into(&mut out);
    stream.write_all(&out)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match wire::decode(&buf, pieces) {
            Ok(Decoded::Done { value, used }) => {
                if let Message::Request {
                    index,
                    begin,
                    length,
                } = value
                {
                    let start = index as usize * piece_length + begin as usize;
                    let mut block = data[start..start + length as usize].to_vec();
                    match behaviour {
                        Behaviour::Corrupts(bad) if bad == index => block[0] ^= 0xff,
                        Behaviour::CorruptsAll => block[0] ^= 0xff,
                        Behaviour::Slow(pause) => thread::sleep(pause),
                        _ => {}
                    }
                    let message = Message::Piece {
                        index,
                        begin,
                        block: &block,
                    };
                    stream.write_all(&message.encode())?;
                    sent.fetch_add(u64::from(length), Ordering::AcqRel);
                }
                buf.drain(..used);
                continue;
            }
            Ok(Decoded::NeedMore { .. }) => {}
            Err(_) => return Ok(()),
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An HTTP tracker that names `peers` (compact form) to every announce,
/// and records the announces' query strings.
pub struct Tracker {
    server: Server,
    pub announces: Arc<Mutex<Vec<String>>>,
}

impl Tracker {
    pub fn start(peers: &[SocketAddr]) -> Tracker {
        let mut compact = Vec::new();
        for peer in peers {
            let SocketAddr::V4(v4) = peer else {
                panic!("IPv4 peers only")
            };
            compact.extend_from_slice(&v4.ip().octets());
            compact.extend_from_slice(&v4.port().to_be_bytes());
        }
        let mut body = format!("d8:intervali60e5:peers{}:", compact.len()).into_bytes();
        body.extend_from_slice(&compact);
        body.push(b'e');
        let announces = Arc::new(Mutex::new(Vec::new()));
        let log = announces.clone();
        let server = Server::start(move |request| {
            log.lock().unwrap().push(request.target.clone());
            Reply::ok(body.clone())
        });
        Tracker { server, announces }
    }

    /// A tracker as real ones are: each announce is answered with the
    /// other peers that announced (on 127.0.0.1, at the port they gave),
    /// and a peer that announces `stopped` is named no more.
    pub fn open() -> Tracker {
        let announces = Arc::new(Mutex::new(Vec::new()));
        let log = announces.clone();
        let peers: Arc<Mutex<Vec<(String, u16)>>> = Arc::default();
        let server = Server::start(move |request| {
            let query = request.target.split_once('?').map_or("", |(_, q)| q);
            log.lock().unwrap().push(request.target.clone());
            let field = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or("")
                    .to_owned()
            };
            let (id, port) = (field("peer_id"), field("port").parse().unwrap_or(0));
            let mut peers = peers.lock().unwrap();
            peers.retain(|(known, _)| *known != id);
            let others: Vec<u8> = peers
                .iter()
                .flat_map(|(_, port)| [127, 0, 0, 1].into_iter().chain(port.to_be_bytes()))
                .collect();
            if field("event") != "stopped" {
                peers.push((id, port));
            }
            let mut body = format!("d8:intervali60e5:peers{}:", others.len()).into_bytes();
            body.extend_from_slice(&others);
            body.push(b'e');
            Reply::ok(body)
        });
        Tracker { server, announces }
    }

    /// The announces whose query has `field=value`.
    pub fn announces_with(&self, field: &str, value: &str) -> Vec<String> {
        let wanted = format!("{field}={value}");
        let announces = self.announces.lock().unwrap();
        announces
            .iter()
            .filter(|a| a.split(['?', '&']).any(|kv| kv == wanted))
            .cloned()
            .collect()
    }

    /// Its announce URL.
    pub fn url(&self) -> String {
        self.server.url("/announce")
    }
}

/// The value of `field` in an announce's query string.
pub fn announced(announce: &str, field: &str) -> Option<u64> {
    announce
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix(field)?.strip_prefix('='))?
        .parse()
        .ok()
}
