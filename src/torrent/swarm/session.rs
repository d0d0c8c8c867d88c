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
//! once its hash matches. The control file names the verified pieces,
//! and is saved only after their data is synced, so that after a crash
//! it never claims a piece the disk does not hold.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::connection::{self, Connection, PeerEvent, Setup};
use super::controller::{Action, Controller, PeerCounts};
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
    /// Every piece is verified.
    pub complete: bool,
}

/// What the caller wants to hear of.
pub trait Observer {
    /// How things stand, at most ten times a second and once at the end.
    fn status(&mut self, status: &Status);
    /// A tracker should be asked for more peers.
    fn want_peers(&mut self) {}
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
}

impl Session {
    /// A session for the torrent in `store`, for which `setup` is the
    /// handshake, starting from the pieces `controller` has; `checkpoint`
    /// records the pieces verified in the control file.
    pub fn new(
        controller: Controller,
        store: Arc<TorrentStore>,
        setup: Setup,
        checkpoint: Checkpoint,
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
            checkpoint: Some(checkpoint),
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

    /// Runs until every piece is verified, `stop` says so, or an error
    /// (a write that fails) ends it. The control file then lists every
    /// piece verified (and is removed once all are).
    pub fn run(&mut self, observer: &mut dyn Observer, stop: &dyn Fn() -> bool) -> Result<()> {
        let ran = self.swarm(observer, stop);
        let Some(checkpoint) = self.checkpoint.take() else {
            return ran;
        };
        match ran {
            Ok(()) => checkpoint.finish(&self.store),
            Err(e) => {
                let mut checkpoint = checkpoint;
                // What was verified stays verified, whatever ended the run.
                let _ = checkpoint.save(&self.store, Instant::now());
                Err(e)
            }
        }
    }

    fn swarm(&mut self, observer: &mut dyn Observer, stop: &dyn Fn() -> bool) -> Result<()> {
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
                self.controller.tick(now);
                next_tick = now + TICK;
            }
            self.carry_out(observer)?;
            let complete = self.controller.is_complete() && self.hashing == 0;
            if let Some(checkpoint) = &mut self.checkpoint {
                if !complete && checkpoint.due(now) {
                    checkpoint.save(&self.store, now)?;
                }
            }
            // Told when due, and when the peers change (a short download
            // may end before the first interval has passed).
            let counts = Some(self.controller.counts());
            if complete
                || counts != last_counts
                || last_status.is_none_or(|t| now.duration_since(t) >= STATUS_EVERY)
            {
                last_counts = counts;
                observer.status(&self.status(complete));
                last_status = Some(now);
            }
            if complete {
                return Ok(());
            }
            if stop() {
                return Err(crate::cancel::cancelled());
            }
        }
    }

    fn status(&self, complete: bool) -> Status {
        Status {
            bytes: self.controller.bytes(),
            total: self.store.metainfo().length(),
            peers: self.controller.counts(),
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
                self.connections.remove(&key);
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
                    if let Some(connection) = self.connections.remove(&key) {
                        connection.close();
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
