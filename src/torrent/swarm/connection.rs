//! One peer's TCP connection: the handshake, then a reader thread that
//! turns the peer's bytes into [`Incoming`] messages for the controller
//! and a writer thread that sends the controller's [`Out`] messages.
//!
//! Two threads, not one, so that neither side can stall the other: two
//! peers each writing a large queue to the other, each waiting for the
//! other to read, is a deadlock a single thread per connection can fall
//! into. The reader hands messages over a bounded channel, so a peer
//! that sends faster than the disk takes is slowed by TCP, not buffered;
//! the writer takes what the controller queues, which the controller
//! bounds (a peer's requests are at most its `reqq`), and sends the blocks
//! the peer asked for from its [`UploadQueue`], reading each as it goes.
//!
//! A peer whose first bytes are not the BitTorrent handshake (an
//! encrypted opening, as Transmission tries first) is closed at its first
//! wrong byte, so that it retries in plain text.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use super::peer::{Incoming, Out};
use super::picker::{Block, PeerKey};
use super::upload::{Blocks, TooManyRequests, UploadLimit, UploadQueue, Uploaded};
use crate::torrent::wire::{
    self, Decoded, ExtensionHandshake, Handshake, Message, EXTENDED_HANDSHAKE_ID,
};

/// How long a dial may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a peer may take to send its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// We send a keep-alive after this long with nothing else to send.
pub const KEEP_ALIVE: Duration = Duration::from_secs(90);

/// A read that waits this long gives up; the controller drops silent
/// peers sooner (`peer::IDLE_AFTER`), this only bounds a stuck thread.
const READ_TIMEOUT: Duration = Duration::from_secs(240);

/// The reader's buffer: room for a whole piece message and the next
/// message's head.
const READ_BUFFER: usize = 64 * 1024;

/// A write that waits this long for the peer to read ends the
/// connection: a peer that asks and never reads holds a writer thread no
/// longer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// The writer gathers blocks up to this many bytes into one write.
const UPLOAD_BATCH: usize = 128 * 1024;

/// What a connection tells the controller.
#[derive(Debug)]
pub enum PeerEvent {
    /// The handshake is done: here is how to reach the peer.
    Connected(Connection),
    /// A message.
    Message(Incoming),
    /// The connection is closed (or never opened), and why.
    Closed(String),
    /// The connection reached ourselves (our own peer id came back): the
    /// address is ours, not a peer's. It is closed.
    Ourselves,
}

/// The controller's handle on an open connection.
#[derive(Debug)]
pub struct Connection {
    /// The peer's handshake.
    pub handshake: Handshake,
    writer: Sender<ToWriter>,
    uploads: Arc<UploadQueue>,
    uploaded: Uploaded,
    stream: TcpStream,
}

/// What the writer thread is handed.
#[derive(Debug)]
enum ToWriter {
    /// A message to send.
    Message(Out),
    /// The upload queue is no longer empty.
    Uploads,
}

impl Connection {
    /// Queues a message for the writer thread. A closed connection drops
    /// it: its reader reports the close. A choke drops the requests not
    /// sent yet, as BEP 3 says, before it goes.
    pub fn send(&self, out: Out) {
        if out == Out::Choke {
            self.uploads.clear();
        }
        let _ = self.writer.send(ToWriter::Message(out));
    }

    /// Queues a block the peer asked for; an error when the peer has more
    /// requests waiting than our `reqq` allows: close it.
    pub fn serve(&self, block: Block) -> Result<(), TooManyRequests> {
        if self.uploads.push(block)? {
            let _ = self.writer.send(ToWriter::Uploads);
        }
        Ok(())
    }

    /// The peer cancelled a request: it is not sent, unless it is being
    /// sent already.
    pub fn withdraw(&self, block: &Block) {
        self.uploads.withdraw(block);
    }

    /// Bytes of blocks sent to the peer so far.
    pub fn uploaded(&self) -> u64 {
        self.uploaded.get()
    }

    /// Closes the connection: both threads end, and the reader reports
    /// [`PeerEvent::Closed`].
    pub fn close(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// What every connection of a torrent shares.
#[derive(Clone)]
pub struct Setup {
    /// Ours: the torrent's info-hash and our peer id.
    pub handshake: Handshake,
    /// The torrent's piece count, which bounds messages.
    pub pieces: u32,
    /// Our extension handshake, encoded once.
    pub extensions: Arc<Vec<u8>>,
    /// Where the blocks peers ask for are read; without it, none is sent.
    blocks: Option<Arc<dyn Blocks>>,
    /// The rate all uploads share, if limited.
    limit: Option<Arc<UploadLimit>>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("handshake", &self.handshake)
            .field("pieces", &self.pieces)
            .field("serves", &self.blocks.is_some())
            .field("limit", &self.limit)
            .finish()
    }
}

impl Setup {
    /// The setup for a torrent, listening on `port` when we do.
    pub fn new(info_hash: [u8; 20], peer_id: [u8; 20], pieces: u32, port: Option<u16>) -> Setup {
        Setup {
            handshake: Handshake::ours(info_hash, peer_id),
            pieces,
            extensions: Arc::new(ExtensionHandshake::ours(port).encode()),
            blocks: None,
            limit: None,
        }
    }

    /// Blocks peers ask for are read from `blocks`, at most `limit` bytes
    /// a second for all of them when given.
    pub fn serving(mut self, blocks: Arc<dyn Blocks>, limit: Option<u64>) -> Setup {
        self.blocks = Some(blocks);
        self.limit = limit.map(|rate| Arc::new(UploadLimit::new(rate)));
        self
    }
}

/// Dials `addr` on a thread of its own, which then reads the connection
/// until it closes. Everything it learns goes to `events` as
/// `(key, event)`.
pub fn dial<E>(
    key: PeerKey,
    addr: SocketAddr,
    setup: Setup,
    events: SyncSender<E>,
) -> io::Result<()>
where
    E: From<(PeerKey, PeerEvent)> + Send + 'static,
{
    spawn(key, events, move || {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .map_err(|e| format!("connect: {e}"))?;
        stream.write_all_ref(&setup.handshake.encode())?;
        let theirs = read_handshake(&stream, &setup)?;
        Ok((stream, theirs, setup))
    })
}

/// Takes a connection a peer opened, on a thread of its own: its
/// handshake comes first, then ours.
pub fn accept<E>(
    key: PeerKey,
    stream: TcpStream,
    setup: Setup,
    events: SyncSender<E>,
) -> io::Result<()>
where
    E: From<(PeerKey, PeerEvent)> + Send + 'static,
{
    spawn(key, events, move || {
        let theirs = read_handshake(&stream, &setup)?;
        stream.write_all_ref(&setup.handshake.encode())?;
        Ok((stream, theirs, setup))
    })
}

type Opened = (TcpStream, Handshake, Setup);

/// Why a connection did not open.
enum Refused {
    /// It reached ourselves.
    Ourselves,
    /// Anything else, for the log.
    Other(String),
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused::Other(why)
    }
}

/// Runs `open`, then the connection, on a new thread; fails only when
/// no thread can be made.
fn spawn<E, F>(key: PeerKey, events: SyncSender<E>, open: F) -> io::Result<()>
where
    E: From<(PeerKey, PeerEvent)> + Send + 'static,
    F: FnOnce() -> Result<Opened, Refused> + Send + 'static,
{
    let thread = std::thread::Builder::new()
        .name(format!("peer-{key}"))
        .stack_size(128 * 1024);
    thread.spawn(move || {
        let event = match open() {
            Ok((stream, handshake, setup)) => {
                PeerEvent::Closed(run(key, stream, handshake, setup, &events))
            }
            Err(Refused::Ourselves) => PeerEvent::Ourselves,
            Err(Refused::Other(why)) => PeerEvent::Closed(why),
        };
        let _ = events.send((key, event).into());
    })?;
    Ok(())
}

/// Reads the peer's handshake, refusing it at its first wrong byte.
fn read_handshake(mut stream: &TcpStream, setup: &Setup) -> Result<Handshake, Refused> {
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; wire::HANDSHAKE_LEN];
    let mut filled = 0;
    loop {
        match Handshake::parse(
            &buf[..filled],
            &setup.handshake.info_hash,
            &setup.handshake.peer_id,
        ) {
            Ok(Decoded::Done { value, .. }) => return Ok(value),
            Ok(Decoded::NeedMore { .. }) => {}
            Err(wire::Error::OwnPeerId) => return Err(Refused::Ourselves),
            Err(e) => return Err(format!("handshake: {e}").into()),
        }
        let n = stream
            .read(&mut buf[filled..])
            .map_err(|e| format!("handshake: {e}"))?;
        if n == 0 {
            return Err(Refused::Other("closed during the handshake".into()));
        }
        filled += n;
    }
}

/// The open connection: starts the writer, tells the controller, then
/// reads until the connection ends. Returns why it ended.
fn run<E>(
    key: PeerKey,
    stream: TcpStream,
    handshake: Handshake,
    setup: Setup,
    events: &SyncSender<E>,
) -> String
where
    E: From<(PeerKey, PeerEvent)> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let (writer, queue) = std::sync::mpsc::channel();
    let (for_writer, for_controller) = match (stream.try_clone(), stream.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e.to_string(),
    };
    let uploads = Arc::new(UploadQueue::default());
    let uploaded = Uploaded::default();
    let writer_side = Writer {
        stream: for_writer,
        queue,
        uploads: Arc::clone(&uploads),
        uploaded: uploaded.clone(),
        setup: setup.clone(),
    };
    let spawned = std::thread::Builder::new()
        .name(format!("peer-{key}-w"))
        .stack_size(128 * 1024)
        .spawn(move || writer_side.run());
    if let Err(e) = spawned {
        return e.to_string();
    }
    let connection = Connection {
        handshake,
        writer,
        uploads,
        uploaded,
        stream: for_controller,
    };
    if events
        .send((key, PeerEvent::Connected(connection)).into())
        .is_err()
    {
        let _ = stream.shutdown(Shutdown::Both);
        return "the swarm stopped".into();
    }
    let why = read_loop(key, &stream, setup.pieces, events);
    let _ = stream.shutdown(Shutdown::Both);
    why
}

fn read_loop<E>(key: PeerKey, mut stream: &TcpStream, pieces: u32, events: &SyncSender<E>) -> String
where
    E: From<(PeerKey, PeerEvent)> + Send + 'static,
{
    if let Err(e) = stream.set_read_timeout(Some(READ_TIMEOUT)) {
        return e.to_string();
    }
    let mut buf = vec![0u8; READ_BUFFER.max(wire::max_message_length(pieces) as usize + 4)];
    let (mut start, mut end) = (0, 0);
    loop {
        loop {
            match wire::decode(&buf[start..end], pieces) {
                Ok(Decoded::Done { value, used }) => {
                    start += used;
                    let incoming = incoming(value);
                    if events
                        .send((key, PeerEvent::Message(incoming)).into())
                        .is_err()
                    {
                        return "the swarm stopped".into();
                    }
                }
                Ok(Decoded::NeedMore { at_least }) => {
                    if start + at_least > buf.len() {
                        buf.copy_within(start..end, 0);
                        end -= start;
                        start = 0;
                    }
                    break;
                }
                Err(e) => return e.to_string(),
            }
        }
        if start == end {
            (start, end) = (0, 0);
        }
        match stream.read(&mut buf[end..]) {
            Ok(0) => return "closed by the peer".into(),
            Ok(n) => {
                crate::util::tcp::quick_ack(stream);
                end += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return e.to_string(),
        }
    }
}

/// A decoded message, owned, as the controller takes it.
fn incoming(message: Message<'_>) -> Incoming {
    match message {
        Message::KeepAlive => Incoming::KeepAlive,
        Message::Choke => Incoming::Choke,
        Message::Unchoke => Incoming::Unchoke,
        Message::Interested => Incoming::Interested,
        Message::NotInterested => Incoming::NotInterested,
        Message::Have { index } => Incoming::Have(index),
        Message::Bitfield(bits) => Incoming::Bitfield(bits),
        Message::Request {
            index,
            begin,
            length,
        } => Incoming::Request(Block {
            piece: index,
            begin,
            length,
        }),
        Message::Cancel {
            index,
            begin,
            length,
        } => Incoming::Cancel(Block {
            piece: index,
            begin,
            length,
        }),
        Message::Piece {
            index,
            begin,
            block,
        } => Incoming::Piece {
            block: Block {
                piece: index,
                begin,
                length: block.len() as u32,
            },
            data: block.to_vec(),
        },
        Message::Extended {
            id: EXTENDED_HANDSHAKE_ID,
            payload,
        } => match ExtensionHandshake::parse(payload) {
            Ok(handshake) => Incoming::Extensions(handshake),
            Err(_) => Incoming::Ignored,
        },
        Message::Port(_) | Message::Extended { .. } => Incoming::Ignored,
    }
}

/// The writer thread's side of a connection.
struct Writer {
    stream: TcpStream,
    queue: Receiver<ToWriter>,
    uploads: Arc<UploadQueue>,
    uploaded: Uploaded,
    setup: Setup,
}

impl Writer {
    /// Sends what the controller queues, several messages to a write, then
    /// the blocks the peer asked for, up to [`UPLOAD_BATCH`] bytes a
    /// write, and a keep-alive when there is nothing to send. Ends when
    /// the controller drops the connection, a write fails, or a block
    /// cannot be read.
    fn run(self) {
        let mut out = Vec::with_capacity(4096);
        let mut data = vec![0u8; wire::MAX_BLOCK as usize];
        'writing: loop {
            out.clear();
            // Asleep only when no block waits: a request queued meanwhile
            // sends `ToWriter::Uploads`.
            if self.uploads.is_empty() {
                match self.queue.recv_timeout(KEEP_ALIVE) {
                    Ok(first) => self.encode(first, &mut out),
                    Err(RecvTimeoutError::Timeout) => Message::KeepAlive.encode_into(&mut out),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            loop {
                match self.queue.try_recv() {
                    Ok(next) => self.encode(next, &mut out),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'writing,
                }
            }
            let mut sent = 0;
            if let Some(blocks) = &self.setup.blocks {
                while out.len() < UPLOAD_BATCH {
                    let Some(block) = self.uploads.pop() else {
                        break;
                    };
                    if let Some(limit) = &self.setup.limit {
                        limit.wait_for(block.length);
                    }
                    let bytes = &mut data[..block.length as usize];
                    if blocks.read_block(&block, bytes).is_err() {
                        break 'writing;
                    }
                    Message::Piece {
                        index: block.piece,
                        begin: block.begin,
                        block: bytes,
                    }
                    .encode_into(&mut out);
                    sent += u64::from(block.length);
                }
            } else {
                // Nothing to read them from: none is ever sent.
                self.uploads.clear();
            }
            if !out.is_empty() && self.stream.write_all_ref(&out).is_err() {
                break;
            }
            self.uploaded.add(sent);
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn encode(&self, message: ToWriter, into: &mut Vec<u8>) {
        if let ToWriter::Message(out) = message {
            encode(&out, &self.setup.extensions, into);
        }
    }
}

fn encode(out: &Out, extensions: &[u8], into: &mut Vec<u8>) {
    let three = |b: &Block| (b.piece, b.begin, b.length);
    let message = match out {
        Out::Bitfield(bits) => Message::Bitfield(bits.clone()),
        Out::Extensions => Message::Extended {
            id: EXTENDED_HANDSHAKE_ID,
            payload: extensions,
        },
        Out::Choke => Message::Choke,
        Out::Unchoke => Message::Unchoke,
        Out::Interested => Message::Interested,
        Out::NotInterested => Message::NotInterested,
        Out::Have(index) => Message::Have { index: *index },
        Out::Request(block) => {
            let (index, begin, length) = three(block);
            Message::Request {
                index,
                begin,
                length,
            }
        }
        Out::Cancel(block) => {
            let (index, begin, length) = three(block);
            Message::Cancel {
                index,
                begin,
                length,
            }
        }
    };
    message.encode_into(into);
}

/// `write_all` on a shared `&TcpStream`, which implements `Write`.
trait WriteAllRef {
    fn write_all_ref(&self, bytes: &[u8]) -> Result<(), String>;
}

impl WriteAllRef for TcpStream {
    fn write_all_ref(&self, bytes: &[u8]) -> Result<(), String> {
        let mut stream = self;
        stream.write_all(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::wire::Bitfield;
    use std::net::TcpListener;
    use std::sync::mpsc::{sync_channel, Receiver};

    const HASH: [u8; 20] = [7; 20];
    const OURS: [u8; 20] = *b"-PF0100-ourownpeerid";
    const THEIRS: [u8; 20] = *b"-TR3000-theirpeerid!";

    #[derive(Debug)]
    struct Event(PeerKey, PeerEvent);

    impl From<(PeerKey, PeerEvent)> for Event {
        fn from((key, event): (PeerKey, PeerEvent)) -> Event {
            Event(key, event)
        }
    }

    fn next(events: &Receiver<Event>) -> PeerEvent {
        let Event(key, event) = events
            .recv_timeout(Duration::from_secs(5))
            .expect("an event");
        assert_eq!(key, 9);
        event
    }

    fn dial_a_listener() -> (TcpStream, Receiver<Event>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (events, received) = sync_channel(16);
        let setup = Setup::new(HASH, OURS, 10, Some(6881));
        dial(9, listener.local_addr().unwrap(), setup, events).unwrap();
        let (peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (peer, received)
    }

    #[test]
    fn a_dialled_peer_handshakes_and_messages_flow_both_ways() {
        let (mut peer, events) = dial_a_listener();
        let mut theirs = [0u8; wire::HANDSHAKE_LEN];
        peer.read_exact(&mut theirs).unwrap();
        assert_eq!(theirs, Handshake::ours(HASH, OURS).encode());
        peer.write_all(&Handshake::ours(HASH, THEIRS).encode())
            .unwrap();
        let PeerEvent::Connected(connection) = next(&events) else {
            panic!("not connected")
        };
        assert_eq!(connection.handshake.peer_id, THEIRS);
        // Theirs, in one write: a bitfield and a block.
        let mut bits = Bitfield::new(10);
        bits.set(3, true);
        let mut bytes = Message::Bitfield(bits.clone()).encode();
        Message::Piece {
            index: 3,
            begin: 0,
            block: b"abc",
        }
        .encode_into(&mut bytes);
        peer.write_all(&bytes).unwrap();
        assert_eq!(
            format!("{:?}", next(&events)),
            format!("{:?}", PeerEvent::Message(Incoming::Bitfield(bits)))
        );
        let PeerEvent::Message(Incoming::Piece { block, data }) = next(&events) else {
            panic!("no block")
        };
        assert_eq!((block.piece, block.length, &data[..]), (3, 3, &b"abc"[..]));
        // Ours: a request, as the peer reads it.
        let request = Block {
            piece: 3,
            begin: 0,
            length: 3,
        };
        connection.send(Out::Request(request));
        let mut wanted = [0u8; 17];
        peer.read_exact(&mut wanted).unwrap();
        assert_eq!(
            wanted[..],
            Message::Request {
                index: 3,
                begin: 0,
                length: 3
            }
            .encode()[..]
        );
        // Closing ours ends the peer's connection and is reported.
        connection.close();
        assert!(matches!(next(&events), PeerEvent::Closed(_)));
        let mut rest = Vec::new();
        assert!(matches!(peer.read_to_end(&mut rest), Ok(0)));
    }

    #[test]
    fn an_encrypted_opening_is_closed_at_its_first_byte() {
        let (mut peer, events) = dial_a_listener();
        // The first byte of an MSE opening is random key material.
        peer.write_all(&[0x8c]).unwrap();
        let PeerEvent::Closed(why) = next(&events) else {
            panic!("still open")
        };
        assert!(why.contains("handshake"), "{why}");
    }

    #[test]
    fn a_connection_to_ourselves_is_dropped() {
        let (mut peer, events) = dial_a_listener();
        peer.write_all(&Handshake::ours(HASH, OURS).encode())
            .unwrap();
        assert!(matches!(next(&events), PeerEvent::Ourselves));
    }

    #[test]
    fn a_peer_that_dials_us_sends_its_handshake_first() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        let (events, received) = sync_channel(16);
        accept(9, ours, Setup::new(HASH, OURS, 10, None), events).unwrap();
        peer.write_all(&Handshake::ours(HASH, THEIRS).encode())
            .unwrap();
        let mut back = [0u8; wire::HANDSHAKE_LEN];
        peer.read_exact(&mut back).unwrap();
        assert_eq!(back[48..], OURS);
        assert!(matches!(next(&received), PeerEvent::Connected(_)));
    }
}
