//! One client connection: read heads, answer them in order, until the
//! client or a limit ends it.
//!
//! Owns the socket I/O and the per-connection limits: the wait for a next
//! request ([`IDLE_TIMEOUT`]), the time a started head may take
//! ([`HEAD_TIMEOUT`], against clients that trickle bytes), the head size
//! (`request::parse`), and the time a client may go without taking any of
//! the response ([`SEND_TIMEOUT`]). Pipelined requests are answered in
//! order from the bytes already buffered. What to answer is `respond`'s.
//!
//! A client that stops taking an answer is reset, not closed: a graceful
//! close hands the kernel megabytes that the client will never take, and
//! the kernel would keep the connection in FIN-WAIT-1, probing a window
//! that stays shut, for minutes after the send timeout (seen: 100–140 s
//! for a client that asked for 1 GiB and never read). `SO_LINGER` 0 on an
//! answer cut short turns the close into a reset, and `TCP_USER_TIMEOUT`
//! (Linux) tells the kernel to give up on data no one takes within the
//! send timeout, also for an answer written whole into the socket buffer
//! before the connection closed.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::request::{self, RequestHead};
use super::respond::{self, Body, Reply};
use super::{LogLine, Shared, Waiting};
use crate::http::response::MAX_HEAD_BYTES;

/// How long a kept-alive connection may wait for its next request. Short
/// enough that idle clients give their thread back soon, long enough for a
/// client working through a manifest part by part.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a head may take once its first byte arrived.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a client may take none of the response before its connection
/// is reset (nginx's `send_timeout` is 60 s too).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The buffer a file body is read into and written from: large enough
/// that system calls cost little next to the copies, small enough that a
/// thousand busy connections fit in memory.
const FILE_BUFFER: usize = 256 << 10;

/// How long a connection closed after an error or an unread body goes on
/// reading what the client still sends (see [`linger`]); nginx's
/// `lingering_time` is 30 s, but a client whose answer is sent needs only
/// the time to notice it.
const LINGER: Duration = Duration::from_secs(5);

/// How long the lingering waits for the client's next bytes before closing
/// (nginx's `lingering_timeout` is 5 s).
const LINGER_QUIET: Duration = Duration::from_secs(1);

/// The step a request head is read in, and what its buffer keeps between
/// requests: most heads fit, and a longer one (up to `MAX_HEAD_BYTES`)
/// grows it for as long as it is read.
const HEAD_BUFFER: usize = 4 << 10;

/// Bytes per step under `--rate-limit`, so the pace is smooth.
const RATE_STEP: usize = 16 << 10;

/// How a head read ended.
enum Next {
    Request(RequestHead),
    /// The client left or went quiet: close without answering.
    Closed,
    /// Answer this status, then close.
    Refuse(u16),
}

/// Serves `stream` until it closes.
pub fn serve(mut stream: TcpStream, shared: &Shared, waiting: &Waiting) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(shared.send_timeout));
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(&stream).set_tcp_user_timeout(Some(shared.send_timeout));
    let mut buf = Vec::with_capacity(HEAD_BUFFER);
    loop {
        // What a long head took is given back before the wait for the next.
        if buf.capacity() > HEAD_BUFFER && buf.len() <= HEAD_BUFFER {
            buf.shrink_to(HEAD_BUFFER);
        }
        let head = match read_head(&mut stream, &mut buf, shared) {
            Next::Request(head) => head,
            Next::Closed => return,
            Next::Refuse(status) => {
                let mut reply = Reply::error(status);
                reply.close = true;
                let framing = Framing {
                    is_head: false,
                    close: true,
                    http10_keep_alive: false,
                };
                if send(&mut stream, reply, framing, shared).is_ok() {
                    linger(&mut stream);
                }
                return;
            }
        };
        waiting.busy();
        let started = Instant::now();
        if !shared.delay.is_zero() {
            // `--delay`: the wait asked for, one sleep per request.
            std::thread::sleep(shared.delay);
        }
        let reply = respond::respond(&shared.root, &head);
        let status = reply.status;
        let close = reply.close || !head.keep_alive() || shared.stopping.load(Ordering::Relaxed);
        let framing = Framing {
            is_head: head.method == "HEAD",
            close,
            http10_keep_alive: head.minor_version == 0 && !close,
        };
        let (bytes, complete) = match send(&mut stream, reply, framing, shared) {
            Ok(n) => (n, true),
            Err(n) => (n, false),
        };
        (shared.log)(&LogLine {
            server: shared.addr,
            peer: &peer,
            request: &head.line_for_log(),
            target: &head.target,
            status,
            bytes,
            complete,
            millis: started.elapsed().as_millis() as u64,
        });
        if !complete {
            reset(&stream);
            return;
        }
        if close {
            // A body never read, or requests after this one: the client
            // may still be sending.
            if head.has_body() || !buf.is_empty() {
                linger(&mut stream);
            }
            return;
        }
        waiting.since(shared.epoch, Instant::now());
    }
}

/// Closes the sending side of `stream` after an answer and reads what the
/// client still sends (a head past the limit, a body this server does not
/// read) until it stops, for [`LINGER`] at most, before the connection is
/// closed. Closing with bytes unread makes the kernel send a reset, and a
/// reset can reach the client before it has read the answer, which is then
/// lost: nginx's `lingering_close`.
fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut sink = vec![0u8; HEAD_BUFFER];
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        let _ = stream.set_read_timeout(Some(left.min(LINGER_QUIET)));
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Makes the coming close of `stream` a reset: what is left in its send
/// buffer is dropped at once instead of being offered, for minutes, to a
/// client that took none of it.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Reads until `buf` starts with a complete head.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>, shared: &Shared) -> Next {
    let waiting_since = Instant::now();
    let mut head_started = None;
    let mut fresh = buf.len();
    loop {
        if !buf.is_empty() {
            if fresh > 0 && request::may_be_complete(buf, fresh) || buf.len() >= MAX_HEAD_BYTES {
                match request::parse(buf) {
                    Ok(Some((head, used))) => {
                        buf.drain(..used);
                        return Next::Request(head);
                    }
                    Ok(None) => {}
                    Err(e) => return Next::Refuse(e.status()),
                }
            }
            head_started.get_or_insert_with(Instant::now);
        }
        if shared.stopping.load(Ordering::Relaxed) {
            return Next::Closed;
        }
        let deadline = match head_started {
            Some(t) => t + HEAD_TIMEOUT,
            None => waiting_since + IDLE_TIMEOUT,
        };
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return match head_started {
                Some(_) => Next::Refuse(408),
                None => Next::Closed,
            };
        };
        let _ = stream.set_read_timeout(Some(left));
        let old = buf.len();
        let want = (MAX_HEAD_BYTES + 1 - old).min(HEAD_BUFFER);
        buf.resize(old + want, 0);
        match stream.read(&mut buf[old..]) {
            Ok(0) => {
                buf.truncate(old);
                return Next::Closed;
            }
            Ok(n) => {
                buf.truncate(old + n);
                fresh = n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                buf.truncate(old);
                fresh = 0;
            }
            Err(_) => {
                buf.truncate(old);
                // A timeout with part of a head is answered 408 above.
                if head_started.is_some() && Instant::now() >= deadline {
                    continue;
                }
                return Next::Closed;
            }
        }
    }
}

/// How the answer to one request is framed on this connection.
#[derive(Clone, Copy)]
struct Framing {
    is_head: bool,
    close: bool,
    http10_keep_alive: bool,
}

/// Writes `reply`; the body bytes sent, `Err` with those sent so far when
/// the connection failed (or a file shrank under us).
fn send(
    stream: &mut TcpStream,
    reply: Reply,
    framing: Framing,
    shared: &Shared,
) -> Result<u64, u64> {
    let mut out = Vec::with_capacity(512);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    respond::write_head(
        &mut out,
        &reply,
        framing.close,
        framing.http10_keep_alive,
        now,
    );
    match reply.body {
        Body::Bytes(bytes) if !framing.is_head => {
            out.extend_from_slice(&bytes);
            stream.write_all(&out).map_err(|_| 0u64)?;
            Ok(bytes.len() as u64)
        }
        Body::File { file, start, len } if !framing.is_head => {
            stream.write_all(&out).map_err(|_| 0u64)?;
            send_file(stream, file, start, len, shared)
        }
        _ => stream.write_all(&out).map(|_| 0).map_err(|_| 0u64),
    }
}

/// Sends `len` bytes of `file` from `start`, paced by the server's token
/// bucket when it has one.
///
/// Plain `read` + `write_all` through one large buffer: std's `io::copy`
/// will not use `sendfile` from a file to a socket (a later change to the
/// file could show in bytes already "sent"), and falls back to an 8 KiB
/// buffer. With [`FILE_BUFFER`] the system calls are few and the cost is
/// one extra copy through the cache (BENCHMARKS.md compares with nginx's
/// `sendfile`).
fn send_file(
    stream: &mut TcpStream,
    mut file: std::fs::File,
    start: u64,
    len: u64,
    shared: &Shared,
) -> Result<u64, u64> {
    file.seek(SeekFrom::Start(start)).map_err(|_| 0u64)?;
    let step = if shared.rate.is_some() {
        RATE_STEP
    } else {
        FILE_BUFFER
    };
    // For this answer only: a kept-alive connection waiting for its next
    // request holds no file buffer (a thousand of them held 256 MiB).
    let mut file_buf = vec![0u8; step.min(len.try_into().unwrap_or(usize::MAX)).max(1)];
    let mut sent = 0;
    while sent < len {
        if shared.stopping.load(Ordering::Relaxed) {
            return Err(sent);
        }
        let want = (len - sent).min(step as u64) as usize;
        let n = match file.read(&mut file_buf[..want]) {
            Ok(0) | Err(_) => return Err(sent), // the file shrank: the length was a lie
            Ok(n) => n,
        };
        if let Some(bucket) = &shared.rate {
            let wait = match bucket.lock() {
                Ok(mut b) => b.take(n as u64, Instant::now()),
                Err(_) => Duration::ZERO,
            };
            // `--rate-limit`: exactly until the bucket allows these
            // bytes (a zero wait makes no system call).
            std::thread::sleep(wait);
        }
        stream.write_all(&file_buf[..n]).map_err(|_| sent)?;
        sent += n as u64;
    }
    Ok(sent)
}
