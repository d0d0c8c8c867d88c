//! The TCP socket under a connection: how it reads, writes and waits, and
//! the idle timeout.
//!
//! The socket is non-blocking, and a read that finds it empty waits for the
//! next byte with a blocking one-byte `peek` under a socket timeout
//! (`SO_RCVTIMEO`, the idle timeout), then reads again without blocking.
//! Why not simply block in the read: Linux's receive call on a blocking
//! socket goes on taking packets off the socket's backlog while the buffer
//! has room, so the reader does the TCP work of every packet, and on
//! loopback the sender's transmissions that its acknowledgements release;
//! a non-blocking receive takes what is queued and returns. Measured
//! against nginx on 127.0.0.1 (`bench/reads.sh`, BENCHMARKS.md), 1 GiB in
//! 128 KiB reads took 0.24–0.33 s so and 0.56–0.89 s blocking, in one run.
//! std offers no `poll`, so the wait is the peek, which copies one byte.
//!
//! A read may also be watched ([`Watch`]): while it waits, it wakes every
//! [`WATCH_INTERVAL`] to ask whether its bytes are still wanted, so that a
//! download that no longer needs them (another copy arrived, the stream
//! was dropped, a stalled source is being replaced) gets its thread back
//! at once instead of after the idle timeout. A read of a client that can
//! be cancelled ([`Cancel`]) wakes the same way to look at it, and looks
//! at it before each read too.
//!
//! Each read that brings bytes acknowledges them at once (`util::tcp::quick_ack`):
//! a server that writes a response's head and body in two sends without
//! `TCP_NODELAY` holds the body back until the head is acknowledged, and
//! Linux delays that acknowledgement by up to 40 ms on a connection that
//! has just sent a request.
//!
//! Owns only that; what a timeout means to a transfer is `conn`'s.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cancel::{Cancel, Cancelled};
use crate::util::tcp::quick_ack;

pub use crate::cancel::WATCH_INTERVAL;

/// Asked by a waiting read, every [`WATCH_INTERVAL`], with how long the
/// read has waited for its next byte: `false` gives the read up (with
/// [`GaveUp`]).
#[derive(Clone)]
pub struct Watch(Arc<dyn Fn(Duration) -> bool + Send + Sync>);

impl Watch {
    /// A watch that asks `keep_waiting`.
    pub fn new(keep_waiting: impl Fn(Duration) -> bool + Send + Sync + 'static) -> Watch {
        Watch(Arc::new(keep_waiting))
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

/// A connected TCP socket that waits at most `idle_timeout` for each read
/// and each write.
pub struct Socket {
    tcp: TcpStream,
    idle_timeout: Duration,
    watch: Option<Watch>,
    cancel: Option<Cancel>,
}

/// The error inside an [`io::Error`] when a read's [`Watch`] gave it up,
/// after waiting this long for a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GaveUp(pub Duration);

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "given up after {} without data",
            crate::util::duration::describe(self.0)
        )
    }
}

impl std::error::Error for GaveUp {}

impl GaveUp {
    /// The wait that `e` reports giving up, if it reports one.
    pub fn of(e: &io::Error) -> Option<GaveUp> {
        e.get_ref()?.downcast_ref::<GaveUp>().copied()
    }
}

/// The error inside an [`io::Error`] of kind `TimedOut` when the peer sent
/// nothing, or took nothing, for the idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleTimeout(pub Duration);

impl std::fmt::Display for IdleTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "timed out after {} (idle timeout)",
            crate::util::duration::describe(self.0)
        )
    }
}

impl std::error::Error for IdleTimeout {}

impl IdleTimeout {
    /// The idle timeout that `e` reports, if it reports one.
    pub fn of(e: &io::Error) -> Option<IdleTimeout> {
        e.get_ref()?.downcast_ref::<IdleTimeout>().copied()
    }
}

impl Socket {
    /// Takes over `tcp`, which may be blocking (as `connect` leaves it).
    ///
    /// `idle_timeout` must not be zero (a zero socket timeout is refused).
    pub fn new(tcp: TcpStream, idle_timeout: Duration) -> io::Result<Socket> {
        // The timeouts apply only while waiting, when the socket is blocking.
        tcp.set_read_timeout(Some(idle_timeout))?;
        tcp.set_write_timeout(Some(idle_timeout))?;
        tcp.set_nonblocking(true)?;
        Ok(Socket {
            tcp,
            idle_timeout,
            watch: None,
            cancel: None,
        })
    }

    /// Watches the reads from now on with `watch` (`None`: no more).
    pub fn set_watch(&mut self, watch: Option<Watch>) -> io::Result<()> {
        let was_watched = self.is_watched();
        self.watch = watch;
        self.set_read_timeout(was_watched)
    }

    /// Gives up a waiting read when `cancel` is cancelled.
    pub fn set_cancel(&mut self, cancel: Option<Cancel>) -> io::Result<()> {
        let was_watched = self.is_watched();
        self.cancel = cancel;
        self.set_read_timeout(was_watched)
    }

    fn is_watched(&self) -> bool {
        self.watch.is_some() || self.cancel.is_some()
    }

    /// A watched wait wakes every interval: the socket timeout is the
    /// interval, and the idle timeout is counted in [`Socket::wait_for_bytes`].
    fn set_read_timeout(&self, was_watched: bool) -> io::Result<()> {
        if was_watched == self.is_watched() {
            return Ok(());
        }
        self.tcp.set_read_timeout(Some(self.read_timeout()))
    }

    /// True when a read would not wait: bytes have arrived, the peer closed,
    /// or the socket failed (the read reports how).
    pub fn has_bytes(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(self.tcp.peek(&mut probe), Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// True when a read would not wait, waiting up to `within` (and no
    /// longer than the idle timeout) for that in the socket: for a caller
    /// with a deadline of its own, which would otherwise have to poll.
    pub fn has_bytes_within(&self, within: Duration) -> bool {
        let within = within.min(self.idle_timeout);
        if within.is_zero() || self.tcp.set_read_timeout(Some(within)).is_err() {
            return self.has_bytes();
        }
        let mut probe = [0u8; 1];
        let waited = self.blocking(|tcp| tcp.peek(&mut probe));
        let restored = self.tcp.set_read_timeout(Some(self.read_timeout()));
        match waited {
            // A socket that waits with the wrong timeout from now on fails
            // the next read, which reports it.
            _ if restored.is_err() => true,
            Err(e) if IdleTimeout::of(&e).is_some() => false,
            _ => true,
        }
    }

    /// The socket timeout a wait of a read runs under.
    fn read_timeout(&self) -> Duration {
        if self.is_watched() {
            WATCH_INTERVAL.min(self.idle_timeout)
        } else {
            self.idle_timeout
        }
    }

    /// Waits until a read would not wait, at most the idle timeout, and
    /// only as long as the watch, if any, wants to.
    fn wait_for_bytes(&self) -> io::Result<()> {
        let mut probe = [0u8; 1];
        if !self.is_watched() {
            return self.blocking(|tcp| tcp.peek(&mut probe)).map(drop);
        }
        let started = Instant::now();
        loop {
            match self.blocking(|tcp| tcp.peek(&mut probe)) {
                Err(e) if IdleTimeout::of(&e).is_some() => {
                    let waited = started.elapsed();
                    if self.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
                        return Err(io::Error::other(Cancelled));
                    }
                    if waited >= self.idle_timeout {
                        return Err(e);
                    }
                    if self.watch.as_ref().is_some_and(|watch| !(watch.0)(waited)) {
                        return Err(io::Error::other(GaveUp(waited)));
                    }
                }
                other => return other.map(drop),
            }
        }
    }

    /// Runs `op` with the socket blocking, so that it waits under the
    /// socket timeouts; an operation that runs out of time gives
    /// [`IdleTimeout`].
    fn blocking<T>(&self, mut op: impl FnMut(&TcpStream) -> io::Result<T>) -> io::Result<T> {
        self.tcp.set_nonblocking(false)?;
        let result = loop {
            match op(&self.tcp) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.tcp.set_nonblocking(true)?;
        result.map_err(|e| match e.kind() {
            // Linux reports an expired socket timeout as EAGAIN.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                io::Error::new(io::ErrorKind::TimedOut, IdleTimeout(self.idle_timeout))
            }
            _ => e,
        })
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Looked at on every read, not only while waiting: bytes that keep
        // coming would otherwise carry a cancelled download to its end.
        if self.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
            return Err(io::Error::other(Cancelled));
        }
        loop {
            match (&self.tcp).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_for_bytes()?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(n) if n > 0 => {
                    quick_ack(&self.tcp);
                    return Ok(n);
                }
                other => return other,
            }
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match (&self.tcp).write(buf) {
            // The send buffer is full: wait for room, with the timeout.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.blocking(|mut tcp| tcp.write(buf))
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    fn pair(idle_timeout: Duration) -> (Socket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (Socket::new(client, idle_timeout).unwrap(), server)
    }

    #[test]
    fn a_read_waits_for_bytes_that_come_later() {
        let (mut client, mut server) = pair(Duration::from_secs(10));
        assert!(!client.has_bytes(), "nothing sent yet");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            server.write_all(b"late").unwrap();
            server
        });
        let mut bytes = [0u8; 4];
        client.read_exact(&mut bytes).unwrap();
        assert_eq!(&bytes, b"late");
        assert!(!client.has_bytes(), "everything was read");
        let server = writer.join().unwrap();
        drop(server);
        assert_eq!(client.read(&mut bytes).unwrap(), 0, "the peer closed");
        assert!(
            client.has_bytes(),
            "a closed peer does not make a read wait"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn every_read_that_brings_bytes_leaves_quick_acknowledgements_on() {
        use std::os::linux::net::TcpStreamExt;
        let (mut client, mut server) = pair(Duration::from_secs(10));
        for round in 0..3 {
            client.tcp.set_quickack(false).unwrap();
            client.write_all(b"request").unwrap();
            server.read_exact(&mut [0u8; 7]).unwrap();
            server.write_all(b"head").unwrap();
            client.read_exact(&mut [0u8; 4]).unwrap();
            assert!(client.tcp.quickack().unwrap(), "round {round}");
        }
    }

    #[test]
    fn a_bounded_wait_for_bytes_ends_with_them_or_at_its_end() {
        let (mut client, mut server) = pair(Duration::from_secs(10));
        assert!(!client.has_bytes_within(Duration::from_millis(50)));
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            server.write_all(b"late").unwrap();
            server
        });
        assert!(client.has_bytes_within(Duration::from_secs(10)));
        let _server = writer.join().unwrap();
        assert_eq!(client.read(&mut [0u8; 16]).unwrap(), 4);
        assert_eq!(
            client.tcp.read_timeout().unwrap(),
            Some(Duration::from_secs(10)),
            "the idle timeout is back for the reads"
        );
        // Watched, the reads wait an interval at a time (as the kernel
        // rounds it), and go on doing so.
        client.set_watch(Some(Watch::new(|_| true))).unwrap();
        let watched = client.tcp.read_timeout().unwrap();
        assert!(!client.has_bytes_within(Duration::from_millis(10)));
        assert_eq!(client.tcp.read_timeout().unwrap(), watched);
    }

    #[test]
    fn a_read_that_waits_longer_than_the_idle_timeout_fails() {
        let (mut client, _server) = pair(Duration::from_millis(200));
        let started = Instant::now();
        let e = client.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            IdleTimeout::of(&e),
            Some(IdleTimeout(Duration::from_millis(200)))
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn a_watched_read_is_given_up_when_its_watch_says_so() {
        let (mut client, mut server) = pair(Duration::from_secs(30));
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        client
            .set_watch(Some(Watch::new(move |waited| {
                seen.lock().unwrap().push(waited);
                waited < Duration::from_millis(600)
            })))
            .unwrap();
        let e = client.read(&mut [0u8; 16]).unwrap_err();
        let GaveUp(waited) = GaveUp::of(&e).expect("given up, not timed out");
        assert!(waited >= Duration::from_millis(600));
        let asked = asked.lock().unwrap().clone();
        assert!(asked.len() >= 3, "asked every interval: {asked:?}");
        assert!(asked.windows(2).all(|w| w[0] < w[1]));
        // Unwatched again, a read waits for the byte that comes.
        client.set_watch(None).unwrap();
        server.write_all(b"x").unwrap();
        assert_eq!(client.read(&mut [0u8; 16]).unwrap(), 1);
    }

    #[test]
    fn a_watched_read_still_times_out_after_the_idle_timeout() {
        let (mut client, _server) = pair(Duration::from_millis(600));
        client.set_watch(Some(Watch::new(|_| true))).unwrap();
        let e = client.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(
            IdleTimeout::of(&e),
            Some(IdleTimeout(Duration::from_millis(600)))
        );
    }

    #[test]
    fn a_write_into_a_full_send_buffer_waits_then_times_out() {
        let (mut client, server) = pair(Duration::from_millis(200));
        // The server reads nothing, so its receive buffer and the client's
        // send buffer fill, and then a write has to wait.
        let block = vec![0u8; 1 << 20];
        let mut written = 0usize;
        let e = loop {
            match client.write(&block) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
            assert!(written < 1 << 30, "the buffers never filled");
        };
        assert_eq!(
            IdleTimeout::of(&e),
            Some(IdleTimeout(Duration::from_millis(200)))
        );
        drop(server);
    }

    #[test]
    fn a_write_waits_for_room_while_the_peer_reads() {
        let (mut client, mut server) = pair(Duration::from_secs(10));
        let total = 32 << 20;
        let reader = std::thread::spawn(move || {
            let mut sink = vec![0u8; 1 << 16];
            let mut seen = 0;
            while seen < total {
                std::thread::sleep(Duration::from_micros(200));
                seen += server.read(&mut sink).unwrap();
            }
            seen
        });
        client.write_all(&vec![7u8; total]).unwrap();
        assert_eq!(reader.join().unwrap(), total);
    }
}
