//! `partfetch serve`: a small HTTP/1.1 static file server for the parts
//! that `split` writes, and for tests and demos of failover.
//!
//! In scope: GET and HEAD of regular files under one directory, `Range`
//! (single ranges), `ETag`, `Last-Modified`, `If-Range`, keep-alive and
//! pipelining, `text/parts-manifest` for `.parts`, plain-text directory
//! listings, a whole-server rate limit and a per-request delay (to make
//! failover visible), one log line per request, and stopping cleanly.
//!
//! Out of scope: TLS, request bodies (answered, then the connection is
//! closed), `multipart/byteranges`, conditional GETs (`If-None-Match`,
//! `If-Modified-Since` are ignored: the full answer is always correct),
//! compression, HTTP/2.
//!
//! ```text
//!   accept thread ──► at the cap? ──no─────────────────────────────┐
//!        │                 │yes                                      │
//!        │                 ▼                                         │
//!        │     a connection waiting 3 s or more for a head?          │
//!        │          │no                 │yes: close the oldest ─────┤
//!        │          ▼                                                ▼
//!        │      503, close        connection thread (small stack):
//!        │                          read head ─► respond ─► send ─► keep-alive? ─► read head …
//!        ▼
//!   stop(): no more accepts, every live socket shut down, threads awaited
//! ```
//!
//! Concurrency: one thread per connection, at most
//! [`DEFAULT_MAX_CONNECTIONS`], each with a [`THREAD_STACK`] stack. A pool
//! of N workers each owning a connection would be starved by N idle
//! keep-alive clients; with a thread per connection an idle client costs a
//! parked thread, the stack pages it touched and a 4 KiB head buffer
//! (about 24 KiB in all; the file buffer lives only while an answer is
//! sent), and the cap (connections beyond it get a
//! 503 and are closed at once) with the idle and head timeouts of `conn`
//! bound what hostile clients can hold. A thousand idle connections leave
//! the next client served (tests/serve.rs). At the cap, a new client is
//! not refused while a connection has waited [`EVICT_AFTER`] for a head:
//! the one that waited longest is closed to make room, as nginx reuses
//! its idle connections.
//!
//! Protocol decisions (`request`, `range`, `respond`, `files`, `date`,
//! `rate`) do no socket I/O and are tested with byte strings; `conn` and
//! this module own the sockets.

mod conn;
pub(crate) mod files;
pub(crate) mod range;
pub(crate) mod request;
mod respond;

pub use conn::SEND_TIMEOUT;

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::util::token_bucket::TokenBucket;

/// The most connections served at once. Each holds a thread; the kernel
/// and memory bear a few thousand easily, and a client beyond the cap is
/// told 503 rather than left waiting.
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;

/// The stack of a connection thread. The deepest path (a head of 100
/// fields, canonicalize, a listing of 300 names, a range) touched 16 KiB
/// of it in a release build and 28 KiB in a debug one (measured from
/// `/proc/PID/smaps`); 2048 of them reserve 256 MiB of address space, and
/// only the pages touched are memory.
pub const THREAD_STACK: usize = 128 << 10;

/// Connections the kernel completes and holds for the accept loop. std's
/// `TcpListener::bind` asks for 128: a burst of 2000 connects then lost
/// most SYNs, which the clients sent again after 1 s, 3 s … (7.2 s for the
/// burst; nginx, with 511, took 0.05 s). 4096 holds a burst of the
/// connection cap twice over; Linux caps it at `net.core.somaxconn`
/// (4096 since 5.4).
pub const LISTEN_BACKLOG: i32 = 4096;

/// How long a connection must have waited for a head (connected and sent
/// none, sent part of one, or kept alive after an answer) before a full
/// server closes it to serve a new client. nginx reuses such connections
/// at once when it runs out; a few seconds spare a client that has just
/// connected, and make holding the server with silent connections cost
/// the attacker all of them anew every few seconds instead of every 20 s
/// (the idle timeout).
pub const EVICT_AFTER: Duration = Duration::from_secs(3);

/// How long `stop` waits for connection threads to finish.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Receives one line per request.
pub type LogSink = Arc<dyn Fn(&LogLine<'_>) + Send + Sync>;

/// What the server logs about one request.
#[derive(Debug)]
pub struct LogLine<'a> {
    /// The server's own address.
    pub server: SocketAddr,
    /// The client's address.
    pub peer: &'a str,
    /// The request line, control characters escaped.
    pub request: &'a str,
    /// The request target as sent.
    pub target: &'a str,
    /// The status answered.
    pub status: u16,
    /// Body bytes written.
    pub bytes: u64,
    /// Whether the whole answer was written.
    pub complete: bool,
    /// Time from the head to the end of the answer.
    pub millis: u64,
}

impl fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} \"{}\" {} {} {}ms{}",
            self.peer,
            self.request,
            self.status,
            self.bytes,
            self.millis,
            if self.complete { "" } else { " (aborted)" }
        )
    }
}

/// How a server is set up.
#[derive(Clone)]
pub struct Config {
    /// The directory served.
    pub root: PathBuf,
    /// Where to listen; port 0 lets the system choose.
    pub listen: SocketAddr,
    /// Bytes per second for the whole server, if limited.
    pub rate_limit: Option<u64>,
    /// A pause before each answer.
    pub delay: Duration,
    /// The most connections at once.
    pub max_connections: usize,
    /// How long a client may take none of an answer before its connection
    /// is reset ([`SEND_TIMEOUT`] by default).
    pub send_timeout: Duration,
    /// Where request lines go (standard error by default).
    pub log: LogSink,
}

impl Config {
    /// Serves `root` on `listen` with the defaults: no rate limit, no
    /// delay, [`DEFAULT_MAX_CONNECTIONS`], [`SEND_TIMEOUT`], log lines on
    /// standard error.
    pub fn new(root: impl Into<PathBuf>, listen: SocketAddr) -> Config {
        Config {
            root: root.into(),
            listen,
            rate_limit: None,
            delay: Duration::ZERO,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            send_timeout: SEND_TIMEOUT,
            log: Arc::new(|line| {
                // A closed standard error does not stop the server.
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "{line}");
            }),
        }
    }
}

/// State every connection thread shares.
pub struct Shared {
    root: PathBuf,
    addr: SocketAddr,
    rate: Option<Mutex<TokenBucket>>,
    delay: Duration,
    send_timeout: Duration,
    stopping: AtomicBool,
    log: LogSink,
    live: Mutex<Live>,
    drained: Condvar,
    /// When the server started: the clock of [`Waiting`].
    epoch: Instant,
}

/// The connections being served, so `stop` can shut them down and a full
/// server can close the one that waited longest for a head.
#[derive(Default)]
struct Live {
    next_id: u64,
    streams: HashMap<u64, LiveConnection>,
}

/// One connection of [`Live`].
struct LiveConnection {
    stream: TcpStream,
    waiting: Arc<Waiting>,
}

/// Whether a connection waits for a request head, and since when: the
/// milliseconds from the server's start plus one, or 0 while a request is
/// answered. Its thread sets it; the accept loop reads it, without a lock.
#[derive(Debug, Default)]
pub(crate) struct Waiting(AtomicU64);

impl Waiting {
    /// The connection waits for a head from `now` on.
    pub(crate) fn since(&self, epoch: Instant, now: Instant) {
        let millis = now.saturating_duration_since(epoch).as_millis();
        self.0.store(
            u64::try_from(millis).unwrap_or(u64::MAX - 1) + 1,
            Ordering::Relaxed,
        );
    }

    /// A request is being answered.
    pub(crate) fn busy(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// How long the connection has waited for a head, if it waits.
    fn waited(&self, epoch: Instant, now: Instant) -> Option<Duration> {
        let since = self.0.load(Ordering::Relaxed).checked_sub(1)?;
        let at = epoch + Duration::from_millis(since);
        Some(now.saturating_duration_since(at))
    }
}

/// A running server; stops when [`Server::stop`] is called or it is dropped.
pub struct Server {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds and starts accepting in a thread of its own.
    pub fn start(config: Config) -> Result<Server> {
        let root = config
            .root
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| {
                Error::new(ErrorKind::Io, "not a directory").with_subject(config.root.display())
            })?;
        let listener = listen(config.listen)
            .map_err(|e| Error::io(e, format!("listening on {}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(e, config.listen))?;
        let shared = Arc::new(Shared {
            root,
            addr,
            rate: config
                .rate_limit
                .map(|r| Mutex::new(TokenBucket::new(r, Instant::now()))),
            delay: config.delay,
            send_timeout: config.send_timeout,
            stopping: AtomicBool::new(false),
            log: config.log,
            live: Mutex::new(Live::default()),
            drained: Condvar::new(),
            epoch: Instant::now(),
        });
        let max = config.max_connections.max(1);
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("serve-accept".into())
            .spawn(move || accept_loop(listener, accept_shared, max))
            .map_err(|e| Error::io(e, "starting the accept thread"))?;
        Ok(Server {
            shared,
            accept: Some(accept),
        })
    }

    /// The address the server listens on (with the port the system chose).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.shared.live.lock().map_or(0, |l| l.streams.len())
    }

    /// Blocks until the server stops (for the command, forever).
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }

    /// Stops accepting, shuts down every live connection mid-answer (as a
    /// crashed machine would), and waits a little for their threads.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept thread with a connection of our own.
        let mut wake = self.shared.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let Ok(mut live) = self.shared.live.lock() else {
            return;
        };
        for connection in live.streams.values() {
            let _ = connection.stream.shutdown(Shutdown::Both);
        }
        let deadline = Instant::now() + STOP_WAIT;
        while !live.streams.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            live = match self.shared.drained.wait_timeout(live, left) {
                Ok((guard, _)) => guard,
                Err(_) => return,
            };
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shut_down();
        }
    }
}

/// A listening socket on `addr` with a backlog of [`LISTEN_BACKLOG`],
/// set up as std's `TcpListener::bind` sets one up otherwise
/// (`SO_REUSEADDR` on Unix, close-on-exec).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, max: usize) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors, or a connection reset before accept:
                // pause so a persistent error does not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let (id, waiting) = match register(&shared, &stream, max) {
            Some(registered) => registered,
            None => {
                refuse(stream);
                continue;
            }
        };
        let conn_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || {
                conn::serve(stream, &conn_shared, &waiting);
                unregister(&conn_shared, id);
            });
        if spawned.is_err() {
            // The thread never ran; its stream was dropped with the closure.
            unregister(&shared, id);
        }
    }
}

/// Records a live connection, waiting for its first head from now. At the
/// cap, the connection that has waited longest for a head makes room, if
/// it has waited [`EVICT_AFTER`]; else `None`.
fn register(shared: &Shared, stream: &TcpStream, max: usize) -> Option<(u64, Arc<Waiting>)> {
    let mut live = shared.live.lock().ok()?;
    let now = Instant::now();
    if live.streams.len() >= max {
        let (_, oldest) = live
            .streams
            .iter()
            .filter_map(|(&id, c)| Some((c.waiting.waited(shared.epoch, now)?, id)))
            .filter(|&(waited, _)| waited >= EVICT_AFTER)
            .max()?;
        // Its thread sees the end of its stream and leaves.
        if let Some(evicted) = live.streams.remove(&oldest) {
            let _ = evicted.stream.shutdown(Shutdown::Both);
        }
    }
    let clone = stream.try_clone().ok()?;
    let waiting = Arc::new(Waiting::default());
    waiting.since(shared.epoch, now);
    let id = live.next_id;
    live.next_id += 1;
    live.streams.insert(
        id,
        LiveConnection {
            stream: clone,
            waiting: Arc::clone(&waiting),
        },
    );
    Some((id, waiting))
}

fn unregister(shared: &Shared, id: u64) {
    if let Ok(mut live) = shared.live.lock() {
        live.streams.remove(&id);
        shared.drained.notify_all();
    }
}

/// Tells a client beyond the cap to come back later. The answer fits in
/// the socket buffer; the timeout covers a peer that advertises none.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
    );
}
