//! The swarm at work: the threads around the [`Controller`] and the
//! carrying out of its actions.
//!
//! The calling thread runs the controller. Around it: a thread per
//! connection to read and one to write (`connection.rs`), a thread that
//! hashes finished pieces off the controller's thread, one that accepts
//! peers that dial us, and the trackers' announcer. All of them talk to
//! the controller through one bounded channel of [`Input`]s, so that
//! nothing but the controller touches the swarm's state and memory stays
//! bounded whatever the torrent's size: a reader waits, and its peer's
//! TCP window closes, when the controller falls behind.
//!
//! Blocks are written where they belong as they arrive; a piece counts
//! once its hash matches. Blocks peers ask for are queued on their
//! connections, whose writers read them from the store as they send. The control file names the verified pieces,
//! and is saved only after their data is synced, so that after a crash
//! it never claims a piece the disk does not hold.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::connection::{self, Connection, PeerEvent, Setup};
use super::controller::{Action, Controller, Goal, PeerCounts};
use super::picker::PeerKey;
use crate::error::{Error, Result};
use crate::pieces::PieceStore;
use crate::torrent::{Checkpoint, TorrentStore};

/// Inputs in the channel at most: a reader with a block waits when it is
/// full (128 blocks of 16 KiB are 2 MiB).
const CHANNEL: usize = 128;

/// The controller's clock: rates, pipelines and timeouts are decided
/// once a second.
const TICK: Duration = Duration::from_secs(1);

/// The caller is told how things stand at most this often.
const STATUS_EVERY: Duration = Duration::from_millis(100);

/// What the controller hears.
#[derive(Debug)]
pub enum Input {
    /// From a connection.
    Peer(PeerKey, PeerEvent),
    /// A piece's hash matched (`Ok(true)`), did not, or could not be read.
    Hashed {
        /// The piece.
        piece: u32,
        /// The outcome.
        matched: Result<bool>,
    },
    /// A peer dialled us.
    Accepted(TcpStream, SocketAddr),
    /// A tracker named peers.
    Peers(Vec<SocketAddr>),
}

impl From<(PeerKey, PeerEvent)> for Input {
    fn from((key, event): (PeerKey, PeerEvent)) -> Input {
        Input::Peer(key, event)
    }
}

/// How things stand, told to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Bytes received and kept, verified or waiting for their hash, an
    /// earlier run's included.
    pub bytes: u64,
    /// The torrent's length.
    pub total: u64,
    /// Peers connected, known and seeding.
    pub peers: PeerCounts,
    /// Bytes of blocks sent to peers.
    pub uploaded: u64,
    /// Every piece is verified.
    pub complete: bool,
}

/// What the caller wants to hear of.
pub trait Observer {
    /// How things stand, at most ten times a second and once at the end.
    fn status(&mut self, status: &Status);
    /// A tracker should be asked for more peers.
    fn want_peers(&mut self) {}
    /// The last missing piece was just verified (not called when every
    /// piece was there from the start).
    fn completed(&mut self) {}
    /// Something worth a line in a log.
    fn note(&mut self, _note: Note) {}
}

/// What happened in the swarm that a user may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A piece failed its hash and will be fetched again.
    PieceFailed(u32),
    /// A peer sent bad pieces and will not be dialled again.
    PeerBanned(SocketAddr),
}

/// A running swarm: the controller and what carries out its actions.
pub struct Session {
    controller: Controller,
    store: Arc<TorrentStore>,
    setup: Setup,
    inputs: Receiver<Input>,
    sender: SyncSender<Input>,
    connections: HashMap<PeerKey, Connection>,
    /// The controller's actions being carried out (kept, so that a block's
    /// action costs no allocation).
    actions: Vec<Action>,
    hasher: Option<Sender<u32>>,
    hashing: usize,
    listener: Option<Listener>,
    checkpoint: Option<Checkpoint>,
    /// Bytes sent on connections closed since.
    uploaded_closed: u64,
    /// Whether the last piece was verified in this run (or all were there).
    complete: bool,
}

impl Session {
    /// A session for the torrent in `store`, for which `setup` is the
    /// handshake, starting from the pieces `controller` has; `checkpoint`
    /// records the pieces verified in the control file (none when
    /// seeding what is there).
    pub fn new(
        controller: Controller,
        store: Arc<TorrentStore>,
        setup: Setup,
        checkpoint: Option<Checkpoint>,
    ) -> Session {
        let (sender, inputs) = mpsc::sync_channel(CHANNEL);
        let hasher = spawn_hasher(Arc::clone(&store), sender.clone());
        Session {
            controller,
            store,
            setup,
            inputs,
            sender,
            connections: HashMap::new(),
            actions: Vec::new(),
            hasher,
            hashing: 0,
            listener: None,
            checkpoint,
            uploaded_closed: 0,
            complete: false,
        }
    }

    /// Accepts peers on `listener` (its port is what the trackers are
    /// told).
    pub fn listen(&mut self, listener: TcpListener) -> Result<()> {
        self.listener = Some(Listener::start(listener, self.sender.clone())?);
        Ok(())
    }

    /// Where others can hand the controller what it needs: a tracker's
    /// peers, as [`Input::Peers`].
    pub fn sender(&self) -> SyncSender<Input> {
        self.sender.clone()
    }

    /// Runs until the controller's goal is reached (every piece verified,
    /// for [`Goal::Download`]), `stop` says so, or an error (a write that
    /// fails) ends it. Stopped before every piece is verified, it fails
    /// with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) unless
    /// the goal is [`Goal::Seed`]. The control file lists every piece
    /// verified, and is removed once all are.
    pub fn run(
        &mut self,
        observer: &mut dyn Observer,
        stop: &dyn Fn(&Status) -> bool,
    ) -> Result<()> {
        let ran = self.swarm(observer, stop);
        if let Some(mut checkpoint) = self.checkpoint.take() {
            // What was verified stays verified, whatever ended the run.
            let saved = checkpoint.save(&self.store, Instant::now());
            if ran.is_ok() {
                saved?;
            }
        }
        ran
    }

    fn swarm(&mut self, observer: &mut dyn Observer, stop: &dyn Fn(&Status) -> bool) -> Result<()> {
        let mut next_tick = Instant::now() + TICK;
        let mut last_status: Option<Instant> = None;
        let mut last_counts = None;
        loop {
            let now = Instant::now();
            match self
                .inputs
                .recv_timeout(next_tick.saturating_duration_since(now))
            {
                Ok(input) => self.take(input)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => unreachable!("the session holds a sender"),
            }
            // Take whatever else is waiting before deciding.
            while let Ok(input) = self.inputs.try_recv() {
                self.take(input)?;
                self.carry_out(observer)?;
            }
            let now = Instant::now();
            if now >= next_tick {
                for (&key, connection) in &self.connections {
                    self.controller.uploaded(key, connection.uploaded());
                }
                self.controller.tick(now);
                next_tick = now + TICK;
            }
            self.carry_out(observer)?;
            let complete = self.controller.is_complete() && self.hashing == 0;
            if complete && !self.complete {
                self.complete = true;
                if let Some(checkpoint) = self.checkpoint.take() {
                    checkpoint.finish(&self.store)?;
                    observer.completed();
                }
            }
            if let Some(checkpoint) = &mut self.checkpoint {
                if checkpoint.due(now) {
                    checkpoint.save(&self.store, now)?;
                }
            }
            // Told when due, and when the peers change (a short download
            // may end before the first interval has passed).
            let counts = self.controller.counts();
            let done = complete && self.controller.is_done();
            let status = self.status(complete, counts);
            if done
                || Some(counts) != last_counts
                || last_status.is_none_or(|t| now.duration_since(t) >= STATUS_EVERY)
            {
                last_counts = Some(counts);
                observer.status(&status);
                last_status = Some(now);
            }
            if done {
                return Ok(());
            }
            if stop(&status) {
                observer.status(&status);
                return match complete || self.controller.goal() == Goal::Seed {
                    true => Ok(()),
                    false => Err(crate::cancel::cancelled()),
                };
            }
        }
    }

    /// How things stand, with the peer counts just taken (counting them
    /// walks every peer: once a loop is enough).
    fn status(&self, complete: bool, peers: PeerCounts) -> Status {
        Status {
            bytes: self.controller.bytes(),
            total: self.store.metainfo().length(),
            peers,
            uploaded: self.uploaded_closed
                + self
                    .connections
                    .values()
                    .map(Connection::uploaded)
                    .sum::<u64>(),
            complete,
        }
    }

    fn take(&mut self, input: Input) -> Result<()> {
        let now = Instant::now();
        match input {
            Input::Peer(key, PeerEvent::Connected(connection)) => {
                if self.controller.connected(key, now) {
                    self.connections.insert(key, connection);
                } else {
                    connection.close();
                }
            }
            Input::Peer(key, PeerEvent::Message(message)) => {
                self.controller.message(key, message, now)
            }
            Input::Peer(key, PeerEvent::Ourselves) => self.controller.ourselves(key, now),
            Input::Peer(key, PeerEvent::Closed(_)) => {
                self.forget(key);
                self.controller.closed(key, now);
            }
            Input::Hashed { piece, matched } => {
                self.hashing -= 1;
                self.controller.hashed(piece, matched?, now);
            }
            Input::Accepted(stream, addr) => {
                if let Some(key) = self.controller.accept(addr) {
                    let setup = self.setup.clone();
                    if connection::accept(key, stream, setup, self.sender.clone()).is_err() {
                        self.controller.closed(key, now);
                    }
                }
            }
            Input::Peers(addrs) => self.controller.add_peers(addrs, now),
        }
        Ok(())
    }

    fn carry_out(&mut self, observer: &mut dyn Observer) -> Result<()> {
        let mut actions = std::mem::take(&mut self.actions);
        actions.extend(self.controller.drain());
        for action in actions.drain(..) {
            match action {
                Action::Dial { key, addr } => {
                    let setup = self.setup.clone();
                    if connection::dial(key, addr, setup, self.sender.clone()).is_err() {
                        // No thread for it: as if the dial failed.
                        self.controller.closed(key, Instant::now());
                    }
                }
                Action::Send { key, out } => {
                    if let Some(connection) = self.connections.get(&key) {
                        connection.send(out);
                    }
                }
                Action::Close { key, .. } => {
                    if let Some(connection) = self.forget(key) {
                        connection.close();
                    }
                }
                Action::Serve { key, block } => {
                    let Some(connection) = self.connections.get(&key) else {
                        continue;
                    };
                    if connection.serve(block).is_err() {
                        self.controller
                            .drop_peer(key, "more requests than our reqq allows");
                    }
                }
                Action::Withdraw { key, block } => {
                    if let Some(connection) = self.connections.get(&key) {
                        connection.withdraw(&block);
                    }
                }
                Action::Write { block, data } => {
                    let offset = self.store.metainfo().piece_length() * u64::from(block.piece)
                        + u64::from(block.begin);
                    self.store.write_at(offset, &data)?;
                }
                Action::Verify(piece) => {
                    self.hashing += 1;
                    if let Some(hasher) = &self.hasher {
                        let _ = hasher.send(piece);
                    }
                }
                Action::Verified(piece) => {
                    if let Some(checkpoint) = &mut self.checkpoint {
                        checkpoint.add(u64::from(piece));
                    }
                }
                Action::Failed(piece) => observer.note(Note::PieceFailed(piece)),
                Action::Banned(addr) => observer.note(Note::PeerBanned(addr)),
                Action::WantPeers => observer.want_peers(),
            }
        }
        self.actions = actions;
        Ok(())
    }
}

impl Session {
    /// Connection `key` is gone: what it sent counts on.
    fn forget(&mut self, key: PeerKey) -> Option<Connection> {
        let connection = self.connections.remove(&key)?;
        self.uploaded_closed += connection.uploaded();
        Some(connection)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for (_, connection) in self.connections.drain() {
            connection.close();
        }
        self.hasher = None;
        if let Some(listener) = self.listener.take() {
            listener.stop();
        }
    }
}

/// The hasher thread: reads each finished piece back and checks its
/// SHA-1, so the controller never waits on a hash.
fn spawn_hasher(store: Arc<TorrentStore>, results: SyncSender<Input>) -> Option<Sender<u32>> {
    let (sender, pieces) = mpsc::channel::<u32>();
    std::thread::Builder::new()
        .name("hasher".into())
        .spawn(move || {
            let mut buffer = Vec::new();
            for piece in pieces {
                let matched = store.piece_matches_with(u64::from(piece), &mut buffer);
                if results.send(Input::Hashed { piece, matched }).is_err() {
                    break;
                }
            }
        })
        .ok()?;
    Some(sender)
}

/// The thread that accepts peers dialling us.
struct Listener {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start(listener: TcpListener, inputs: SyncSender<Input>) -> Result<Listener> {
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(e, "the peer listener"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let Ok(peer) = stream.peer_addr() else {
                        continue;
                    };
                    // An IPv4 peer on a dual-stack listener is known by its
                    // IPv4 address, as trackers name it.
                    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                    if inputs.send(Input::Accepted(stream, peer)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io(e, "the peer listener"))?;
        Ok(Listener {
            stop,
            addr,
            thread: Some(thread),
        })
    }

    /// Stops the thread: it is woken from `accept` by a connection of our
    /// own.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
