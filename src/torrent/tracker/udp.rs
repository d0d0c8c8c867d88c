//! The UDP tracker protocol (BEP 15) as a state machine with no socket
//! ([`UdpTracker`]), and a small driver that runs it over a
//! `std::net::UdpSocket` ([`udp_announce`]).
//!
//! ```text
//!   connect ──(action 0: connection id)──▶ announce ──(action 1)──▶ done
//!      ▲  ╲ no answer: resend after 15·2ⁿ s         │
//!      └── connection id older than 60 s ◀──────────┘
//!   any state ──(action 3: message)──▶ failed;  n > 8 ──▶ failed
//! ```
//!
//! Owns the datagrams, the transaction ids, the timers and the bounds on
//! the answer. The machine is given the time (`poll(now)`, `handle(…,
//! now)`, `poll_at()`), so every timer is tested with a made-up clock.
//! Leaves the socket, name resolution and the choice of tracker to the
//! caller.
//!
//! The peers of an answer are 6-byte IPv4 records when the announce went
//! over IPv4 and 18-byte IPv6 records when it went over IPv6 (BEP 15's
//! IPv6 extension): the datagram does not say which, so the machine is told
//! the family ([`UdpTracker::with_peer_family`]) and the driver tells it
//! from the address its socket sends to.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use super::announce::Announce;
use super::http_response::{clamp_interval, compact_peers, message, Family, Peer, Peers};
use crate::cancel::WATCH_INTERVAL;

/// The magic number that opens a connect request.
pub const PROTOCOL_ID: u64 = 0x417_2710_1980;

/// The first wait for an answer; each retransmission doubles it (BEP 15:
/// 15 · 2ⁿ seconds).
pub const BASE_TIMEOUT: Duration = Duration::from_secs(15);

/// The last n of 15 · 2ⁿ: after the wait of 3840 s that follows the 9th
/// send, the announce gives up (BEP 15), some 2 h 8 min after it started.
/// n counts the timeouts of the whole announce, connect and announce
/// requests together, so a tracker that answers connects but never
/// announces cannot keep us going forever.
pub const MAX_RETRANSMISSIONS: u32 = 8;

/// How long a connection id may be used (BEP 15: one minute).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// The largest datagram read: the most a UDP datagram can hold over IPv4,
/// so that no answer is cut by a short buffer.
pub const MAX_DATAGRAM: usize = 65_536;

const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const ERROR: u32 = 3;

/// What a UDP tracker answered to an announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceAnswer {
    /// When to announce again, clamped like an HTTP tracker's.
    pub interval: Duration,
    /// Peers still downloading.
    pub leechers: u32,
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// Distinct usable peers of the announce's address family, at most
    /// `MAX_PEERS`.
    pub peers: Vec<Peer>,
}

/// Why a UDP announce ended without peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpError {
    /// The tracker answered action 3 with this message (at most
    /// `MAX_MESSAGE_BYTES`, lossy UTF-8, shown escaped).
    Tracker(String),
    /// No answer after the last retransmission.
    TimedOut,
    /// An answer with our transaction id that is too short for its action,
    /// has an action other than the one asked for, or a peer list that is
    /// not whole records (6 bytes over IPv4, 18 over IPv6).
    Malformed(&'static str),
    /// The caller's deadline passed first (driver only).
    Deadline,
    /// The socket failed (driver only).
    Io(io::ErrorKind),
}

impl fmt::Display for UdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Debug formatting escapes control characters.
            UdpError::Tracker(text) => write!(f, "tracker refused: {text:?}"),
            UdpError::TimedOut => f.write_str("UDP tracker did not answer"),
            UdpError::Malformed(what) => write!(f, "malformed UDP tracker answer: {what}"),
            UdpError::Deadline => f.write_str("UDP announce ran out of time"),
            UdpError::Io(kind) => write!(f, "UDP tracker socket: {kind}"),
        }
    }
}

impl std::error::Error for UdpError {}

/// Where the exchange stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// A request is to be sent now (the first, or the announce after a
    /// connect answer).
    Ready,
    /// A request is in flight.
    Waiting {
        /// Its action (connect or announce).
        action: u32,
        /// Its transaction id: only an answer with it is read.
        transaction: u32,
        /// When it was (last) sent.
        sent: Instant,
    },
    /// Answered.
    Done,
    /// Given up.
    Failed(UdpError),
}

/// A source of transaction ids.
pub type TransactionIds = Box<dyn FnMut() -> u32 + Send>;

/// One announce to one UDP tracker, as a state machine given the time.
pub struct UdpTracker {
    announce: Announce,
    state: State,
    /// Timeouts so far: the next wait is `base_timeout · 2^timeouts`.
    timeouts: u32,
    base_timeout: Duration,
    connection: Option<(u64, Instant)>,
    transaction_ids: TransactionIds,
    started: Instant,
    /// The format of the answer's peers: that of the address family the
    /// announce is sent over.
    family: Family,
}

impl UdpTracker {
    /// An announce to send, starting at `now`, with BEP 15's timeouts and
    /// random transaction ids.
    pub fn new(announce: Announce, now: Instant) -> UdpTracker {
        UdpTracker {
            announce,
            state: State::Ready,
            timeouts: 0,
            base_timeout: BASE_TIMEOUT,
            connection: None,
            transaction_ids: Box::new(random_u32),
            started: now,
            family: Family::V4,
        }
    }

    /// Reads the answer's peers as `family` records: [`Family::V6`] when
    /// the announce goes over IPv6 (BEP 15 answers each family with its own
    /// peers), [`Family::V4`] (the default) over IPv4.
    pub fn with_peer_family(mut self, family: Family) -> UdpTracker {
        self.family = family;
        self
    }

    /// Waits `base` instead of 15 s before the first retransmission (tests
    /// and impatient callers); the doubling stays.
    pub fn with_base_timeout(mut self, base: Duration) -> UdpTracker {
        self.base_timeout = base;
        self
    }

    /// Takes transaction ids from `ids` instead of at random.
    pub fn with_transaction_ids(mut self, ids: TransactionIds) -> UdpTracker {
        self.transaction_ids = ids;
        self
    }

    /// The next datagram to send at `now`, if any: a connect request, or an
    /// announce while the connection id is under a minute old; a
    /// retransmission once the wait for an answer is over. `Err` once the
    /// exchange has failed (the last wait passed, or the tracker refused).
    pub fn poll(&mut self, now: Instant) -> Result<Option<Vec<u8>>, UdpError> {
        match &self.state {
            State::Done => return Ok(None),
            State::Failed(e) => return Err(e.clone()),
            State::Ready => {}
            State::Waiting { sent, .. } => {
                if now < *sent + self.wait() {
                    return Ok(None);
                }
                if self.timeouts >= MAX_RETRANSMISSIONS {
                    self.state = State::Failed(UdpError::TimedOut);
                    return Err(UdpError::TimedOut);
                }
                self.timeouts += 1;
            }
        }
        Ok(Some(self.send(now)))
    }

    /// When [`poll`](Self::poll) has something to do: now when a request
    /// is ready, the end of the wait for an answer, `None` when done or
    /// failed.
    pub fn poll_at(&self) -> Option<Instant> {
        match &self.state {
            State::Ready => Some(self.started),
            State::Waiting { sent, .. } => Some(*sent + self.wait()),
            State::Done | State::Failed(_) => None,
        }
    }

    /// Reads a datagram received at `now`. One that does not carry the
    /// transaction id of the request in flight (a late or forged answer) is
    /// ignored: `Ok(None)`. A connect answer keeps the connection id
    /// (`Ok(None)`: poll sends the announce); an announce answer ends the
    /// exchange with `Ok(Some(…))`; an error answer with `Err`.
    pub fn handle(
        &mut self,
        datagram: &[u8],
        now: Instant,
    ) -> Result<Option<AnnounceAnswer>, UdpError> {
        let State::Waiting {
            action: asked,
            transaction,
            ..
        } = self.state
        else {
            return Ok(None);
        };
        if datagram.len() < 8 || be32(&datagram[4..8]) != transaction {
            return Ok(None);
        }
        let result = match be32(&datagram[..4]) {
            ERROR => Err(UdpError::Tracker(message(&datagram[8..]))),
            action if action != asked => Err(UdpError::Malformed("action other than asked")),
            CONNECT if datagram.len() < 16 => Err(UdpError::Malformed("short connect answer")),
            CONNECT => {
                self.connection = Some((be64(&datagram[8..16]), now));
                self.state = State::Ready;
                return Ok(None);
            }
            _ => parse_announce_answer(datagram, self.family),
        };
        self.state = match &result {
            Ok(_) => State::Done,
            Err(e) => State::Failed(e.clone()),
        };
        result.map(Some)
    }

    /// The wait after the latest send.
    fn wait(&self) -> Duration {
        self.base_timeout * (1u32 << self.timeouts.min(MAX_RETRANSMISSIONS))
    }

    /// Builds the request due at `now` and waits for its answer. A
    /// retransmission keeps its transaction id, so that a late answer to
    /// the first send still counts.
    fn send(&mut self, now: Instant) -> Vec<u8> {
        let connection = self
            .connection
            .filter(|(_, since)| now.saturating_duration_since(*since) < CONNECTION_LIFETIME);
        let action = if connection.is_some() {
            ANNOUNCE
        } else {
            CONNECT
        };
        let transaction = match self.state {
            State::Waiting {
                action: previous,
                transaction,
                ..
            } if previous == action => transaction,
            _ => (self.transaction_ids)(),
        };
        self.state = State::Waiting {
            action,
            transaction,
            sent: now,
        };
        match connection {
            Some((id, _)) => announce_request(id, transaction, &self.announce),
            None => {
                let mut out = Vec::with_capacity(16);
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction.to_be_bytes());
                out
            }
        }
    }
}

/// The 98-byte announce request of BEP 15.
fn announce_request(connection: u64, transaction: u32, a: &Announce) -> Vec<u8> {
    let mut out = Vec::with_capacity(98);
    out.extend_from_slice(&connection.to_be_bytes());
    out.extend_from_slice(&ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&a.info_hash);
    out.extend_from_slice(&a.peer_id);
    out.extend_from_slice(&a.downloaded.to_be_bytes());
    out.extend_from_slice(&a.left.to_be_bytes());
    out.extend_from_slice(&a.uploaded.to_be_bytes());
    out.extend_from_slice(&a.event.udp_code().to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // IP: the sender's
    out.extend_from_slice(&a.key.to_be_bytes());
    let numwant = a
        .numwant
        .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
    out.extend_from_slice(&numwant.to_be_bytes());
    out.extend_from_slice(&a.port.to_be_bytes());
    out
}

/// An announce answer (action 1, our transaction id already checked):
/// interval, leechers, seeders, then peers as `family` records (6 bytes
/// each over IPv4, 18 over IPv6).
pub fn parse_announce_answer(datagram: &[u8], family: Family) -> Result<AnnounceAnswer, UdpError> {
    if datagram.len() < 20 {
        return Err(UdpError::Malformed("short announce answer"));
    }
    let mut peers = Peers::default();
    compact_peers(&datagram[20..], family, &mut peers).map_err(|_| {
        UdpError::Malformed(match family {
            Family::V4 => "peers not whole 6-byte records",
            Family::V6 => "peers not whole 18-byte records",
        })
    })?;
    Ok(AnnounceAnswer {
        interval: clamp_interval(i64::from(be32(&datagram[8..12]))),
        leechers: be32(&datagram[12..16]),
        seeders: be32(&datagram[16..20]),
        peers: peers.into_vec(),
    })
}

/// Announces to the UDP tracker at `addr`, giving up at `deadline`.
pub fn udp_announce(
    addr: impl ToSocketAddrs,
    announce: Announce,
    deadline: Instant,
) -> Result<AnnounceAnswer, UdpError> {
    let tracker = UdpTracker::new(announce, Instant::now());
    run(addr, tracker, deadline)
}

/// Runs `tracker` over a UDP socket connected to `addr` (so the system
/// drops datagrams from anyone else), sleeping in reads until the next
/// timer, until it answers, fails, or `deadline` passes. The answer's
/// peers are read in the family of the address used ([`peer_family`]).
pub fn run(
    addr: impl ToSocketAddrs,
    tracker: UdpTracker,
    deadline: Instant,
) -> Result<AnnounceAnswer, UdpError> {
    run_while(addr, tracker, deadline, &|| true)
}

/// [`run`], also ending with [`UdpError::Deadline`] once `keep_going`
/// says no: it is asked before each send and at least every
/// [`WATCH_INTERVAL`] while waiting, so that a caller that is stopping gets
/// its thread back without waiting out a 15-second timer. (Resolving the
/// name is the one wait it cannot cut short.)
pub fn run_while(
    addr: impl ToSocketAddrs,
    tracker: UdpTracker,
    deadline: Instant,
    keep_going: &dyn Fn() -> bool,
) -> Result<AnnounceAnswer, UdpError> {
    let io = |e: io::Error| UdpError::Io(e.kind());
    let addr: SocketAddr = addr
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or(UdpError::Io(io::ErrorKind::NotFound))?;
    let mut tracker = tracker.with_peer_family(peer_family(&addr));
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(io)?;
    socket.connect(addr).map_err(io)?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let now = Instant::now();
        if now >= deadline || !keep_going() {
            return Err(UdpError::Deadline);
        }
        while let Some(datagram) = tracker.poll(now)? {
            socket.send(&datagram).map_err(io)?;
        }
        let wake = tracker
            .poll_at()
            .unwrap_or(deadline)
            .min(deadline)
            .min(now + WATCH_INTERVAL);
        let wait = wake.saturating_duration_since(Instant::now());
        // A read timeout of zero means "block forever".
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(io)?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                if let Some(answer) = tracker.handle(&buf[..n], Instant::now())? {
                    return Ok(answer);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
}

/// The family of the peers a tracker at `addr` answers with: that of the
/// packets the announce travels in. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is reached over IPv4.
pub fn peer_family(addr: &SocketAddr) -> Family {
    match addr {
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_none() => Family::V6,
        _ => Family::V4,
    }
}

/// A number that differs from call to call: enough to make a forged
/// answer a 1 in 2³² guess.
fn random_u32() -> u32 {
    (crate::util::random::u64() >> 32) as u32
}

fn be32(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(b)
}

fn be64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

#[cfg(test)]
pub(crate) mod tests;
