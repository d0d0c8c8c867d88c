//! One connection to a server: the socket, TLS over it, and its read buffer.
//!
//! Owns connecting (every resolved address in order, each with the connect
//! timeout; through a proxy, a `CONNECT` tunnel for HTTPS), the idle-read
//! timeout, and the buffer that response heads and bodies are read into.
//! What the bytes mean is decided by `response`, `chunked` and `body`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::cancel::{Cancel, Cancelled};
use crate::error::{Error, ErrorKind, Result};
use crate::http::response::{parse_head, Head, MAX_HEAD_BYTES};
use crate::http::socket::{GaveUp, IdleTimeout, Socket, Watch};
use crate::url::{Scheme, Url};

/// The size of a connection's read buffer, which bounds the size of a chunk.
/// Measured on loopback with non-blocking reads (`socket`), a GiB took
/// 0.25–0.31 s in reads of 128 KiB, 0.34–0.72 s in reads of 64 KiB, and no
/// less in reads of 256 KiB (BENCHMARKS.md).
pub const READ_BUFFER: usize = 128 * 1024;

/// Timeouts and trust settings that every connection of a client shares.
#[derive(Clone)]
pub struct ConnectSettings {
    /// How long one address may take to accept the TCP connection.
    pub connect_timeout: Duration,
    /// How long a read may wait for the next byte before the transfer fails.
    pub idle_timeout: Duration,
    #[cfg(feature = "tls")]
    /// The TLS configuration (roots, protocol versions).
    pub tls: std::sync::Arc<rustls::ClientConfig>,
}

/// The byte stream under HTTP: plain TCP, or TLS over TCP.
enum Stream {
    Plain(Socket),
    /// Bytes in memory, then end of stream: for tests and fuzzing.
    Memory(std::io::Cursor<Vec<u8>>),
    #[cfg(feature = "tls")]
    Tls(Box<crate::http::tls::TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Memory(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => match s.read(buf) {
                // A peer that closes without close_notify: the body framing
                // decides whether that truncated anything.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Memory(_) => Ok(buf.len()),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Memory(_) => Ok(()),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A connection with its read buffer.
pub struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// A read or a write waited longer than the idle timeout, or a watched
    /// read was given up: the peer is there but silent.
    went_silent: bool,
}

impl Connection {
    /// Opens a connection to `url`'s origin, directly or through `proxy`.
    ///
    /// Through a proxy, plain HTTP goes to the proxy as is (the request line
    /// names the absolute URL) and HTTPS is tunnelled with `CONNECT`.
    pub fn open(url: &Url, proxy: Option<&Url>, settings: &ConnectSettings) -> Result<Connection> {
        let first_hop = proxy.unwrap_or(url);
        let socket = connect(first_hop, settings).map_err(|e| match proxy {
            // Named as the proxy: its address alone reads as the origin's.
            Some(proxy) => Error::new(e.kind(), format!("proxy: {}", e.message()))
                .with_subject(proxy.redacted()),
            None => e,
        })?;
        let mut conn = Connection::over(Stream::Plain(socket));
        if url.scheme() == Scheme::Https {
            if let Some(proxy) = proxy {
                conn.tunnel(url, proxy)?;
            }
            conn = conn.start_tls(url, settings)?;
        }
        Ok(conn)
    }

    /// A connection whose peer sends `bytes` and then closes: the read path
    /// of a real connection with no socket, for tests and fuzzing.
    pub fn from_bytes(bytes: Vec<u8>) -> Connection {
        Connection::over(Stream::Memory(std::io::Cursor::new(bytes)))
    }

    fn over(stream: Stream) -> Connection {
        Connection {
            stream,
            buf: vec![0; READ_BUFFER],
            pos: 0,
            end: 0,
            went_silent: false,
        }
    }

    /// Asks the proxy for a tunnel to `url`'s origin.
    fn tunnel(&mut self, url: &Url, proxy: &Url) -> Result<()> {
        let authority = format!("{}:{}", url.host(), url.port());
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(credentials) = proxy.userinfo() {
            request.push_str(&format!(
                "Proxy-Authorization: Basic {}\r\n",
                crate::http::request::basic_credentials(credentials)
            ));
        }
        request.push_str("\r\n");
        self.send(request.as_bytes())
            .map_err(|e| network(e, "cannot write to the proxy").with_subject(proxy.redacted()))?;
        let head = self
            .read_head()
            .map_err(|e| e.with_subject(proxy.redacted()))?;
        if !(200..300).contains(&head.status) {
            return Err(Error::new(
                ErrorKind::Network,
                format!("proxy refused the tunnel ({} {})", head.status, head.reason),
            )
            .with_subject(proxy.redacted()));
        }
        Ok(())
    }

    #[cfg(feature = "tls")]
    fn start_tls(self, url: &Url, settings: &ConnectSettings) -> Result<Connection> {
        let Stream::Plain(socket) = self.stream else {
            return Ok(self);
        };
        let name = rustls::pki_types::ServerName::try_from(url.host_for_connect().to_owned())
            .map_err(|_| Error::new(ErrorKind::Tls, "host is not a valid TLS server name"))?;
        let tls = rustls::ClientConnection::new(settings.tls.clone(), name)
            .map_err(|e| Error::new(ErrorKind::Tls, e.to_string()))?;
        let stream = crate::http::tls::TlsStream::connect(tls, socket).map_err(tls_error)?;
        Ok(Connection::over(Stream::Tls(Box::new(stream))))
    }

    #[cfg(not(feature = "tls"))]
    fn start_tls(self, _url: &Url, _settings: &ConnectSettings) -> Result<Connection> {
        Err(Error::new(
            ErrorKind::Url,
            "https is not supported: partfetch was built without the `tls` feature",
        ))
    }

    /// Writes all of `bytes` (a request head).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let sent = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush());
        if let Err(e) = &sent {
            self.went_silent |= IdleTimeout::of(e).is_some();
        }
        sent
    }

    /// Reads until a whole response head is buffered and returns it; the
    /// bytes after it stay in the buffer. Interim 1xx responses are skipped.
    pub fn read_head(&mut self) -> Result<Head> {
        loop {
            if let Some((head, used)) = parse_head(self.buffered())? {
                self.consume(used);
                if (100..200).contains(&head.status) && head.status != 101 {
                    continue;
                }
                return Ok(head);
            }
            if self.end - self.pos >= MAX_HEAD_BYTES {
                return Err(parse_head(self.buffered())
                    .err()
                    .unwrap_or_else(|| Error::new(ErrorKind::Limit, "response head too large")));
            }
            if self.fill()? == 0 {
                return Err(Error::new(
                    if self.end == self.pos {
                        ErrorKind::Network
                    } else {
                        ErrorKind::Protocol
                    },
                    "connection closed before a complete response head",
                ));
            }
        }
    }

    /// The bytes read and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Marks `n` buffered bytes consumed; returns where they started.
    pub fn consume(&mut self, n: usize) -> usize {
        let start = self.pos;
        self.pos = (self.pos + n).min(self.end);
        start
    }

    /// The buffer, for lending the range a caller consumed.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Reads more bytes into the buffer; 0 means the peer closed.
    ///
    /// Unconsumed bytes are moved to the front first, so a read always has
    /// room. A read that waits longer than the idle timeout is an error.
    pub fn fill(&mut self) -> Result<usize> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.went_silent |= IdleTimeout::of(&e).is_some() || GaveUp::of(&e).is_some();
                    return Err(read_error(e));
                }
            }
        }
    }

    /// Whether a read or a write failed because the peer sent, or took,
    /// nothing for the idle timeout, or a watched read was given up: the
    /// peer is there but silent, unlike one that closed.
    pub fn went_silent(&self) -> bool {
        self.went_silent
    }

    /// Watches the reads from now on with `watch` (`None`: no more); see
    /// [`Watch`]. A connection in memory has nothing to wait for.
    pub fn set_watch(&mut self, watch: Option<Watch>) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(socket) => socket.set_watch(watch),
            Stream::Memory(_) => Ok(()),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.socket_mut().set_watch(watch),
        }
    }

    /// Gives up a waiting read when `cancel` is cancelled, with
    /// [`ErrorKind::Cancelled`].
    pub fn set_cancel(&mut self, cancel: &Cancel) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(socket) => socket.set_cancel(Some(cancel.clone())),
            Stream::Memory(_) => Ok(()),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.socket_mut().set_cancel(Some(cancel.clone())),
        }
    }

    /// True when a read would not wait: bytes are buffered here or in TLS,
    /// or have arrived on the socket (or it was closed).
    pub fn has_bytes_ready(&mut self) -> bool {
        if self.pos != self.end {
            return true;
        }
        match &mut self.stream {
            Stream::Plain(socket) => socket.has_bytes(),
            Stream::Memory(_) => true,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.has_bytes_ready(),
        }
    }

    /// True when a read would not wait, waiting up to `within` for bytes
    /// to arrive (see [`Connection::has_bytes_ready`]).
    pub fn has_bytes_within(&mut self, within: Duration) -> bool {
        if self.pos != self.end {
            return true;
        }
        match &mut self.stream {
            Stream::Plain(socket) => socket.has_bytes_within(within),
            Stream::Memory(_) => true,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.has_bytes_within(within),
        }
    }

    /// True when the peer has closed or sent unasked-for bytes while idle:
    /// such a connection must not carry another request.
    pub fn is_stale(&self) -> bool {
        if self.pos != self.end {
            return true;
        }
        match &self.stream {
            Stream::Plain(socket) => socket.has_bytes(),
            Stream::Memory(_) => true,
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.socket().has_bytes(),
        }
    }
}

fn connect(url: &Url, settings: &ConnectSettings) -> Result<Socket> {
    let addresses: Vec<SocketAddr> = (url.host_for_connect(), url.port())
        .to_socket_addrs()
        .map_err(|e| {
            Error::new(
                ErrorKind::Network,
                format!("cannot resolve host {} ({e})", url.host()),
            )
            .with_subject(url.redacted())
        })?
        .collect();
    let mut last_error = None;
    for address in &addresses {
        match TcpStream::connect_timeout(address, settings.connect_timeout) {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                return Socket::new(tcp, settings.idle_timeout)
                    .map_err(|e| network(e, "cannot configure socket"));
            }
            Err(e) => last_error = Some((address, e)),
        }
    }
    Err(match last_error {
        Some((address, e)) if e.kind() == io::ErrorKind::TimedOut => Error::new(
            ErrorKind::Network,
            format!(
                "connection to {address} timed out after {}",
                crate::util::duration::describe(settings.connect_timeout)
            ),
        ),
        Some((address, e)) => network(e, &format!("cannot connect to {address}")),
        None => Error::new(
            ErrorKind::Network,
            format!("host {} has no address", url.host()),
        ),
    }
    .with_subject(url.redacted()))
}

fn network(e: io::Error, context: &str) -> Error {
    Error::new(ErrorKind::Network, format!("{context} ({e})")).with_source(e)
}

/// The error for `e` when it is an idle timeout: `what` for how long.
fn idle_timeout(e: &io::Error, kind: ErrorKind, what: &str) -> Option<Error> {
    let IdleTimeout(idle) = IdleTimeout::of(e)?;
    Some(Error::new(
        kind,
        format!(
            "{what} {} (idle timeout)",
            crate::util::duration::describe(idle)
        ),
    ))
}

fn read_error(e: io::Error) -> Error {
    if Cancelled::of(&e) {
        return crate::cancel::cancelled();
    }
    if let Some(err) = idle_timeout(&e, ErrorKind::Network, "no data received for") {
        return err;
    }
    if let Some(gave_up) = GaveUp::of(&e) {
        return Error::new(ErrorKind::Network, gave_up.to_string());
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        let err = Error::new(ErrorKind::Tls, format!("TLS error: {tls}"));
        return err.with_source(e);
    }
    network(e, "read failed")
}

#[cfg(feature = "tls")]
fn tls_error(e: io::Error) -> Error {
    if let Some(err) = idle_timeout(&e, ErrorKind::Tls, "TLS handshake stalled for") {
        return err;
    }
    // The underlying error (a rustls::Error inside the io::Error) stays
    // the source, for a program that tells certificate failures apart.
    let described = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(reason)) => Error::new(
            ErrorKind::Tls,
            format!(
                "TLS certificate not accepted: {}",
                crate::http::tls::describe_certificate_error(reason)
            ),
        ),
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            Error::new(
                ErrorKind::Tls,
                "TLS handshake failed: the server did not answer in TLS (a plain http port?)",
            )
        }
        Some(other) => Error::new(ErrorKind::Tls, format!("TLS handshake failed: {other}")),
        None => Error::new(ErrorKind::Tls, format!("TLS handshake failed ({e})")),
    };
    described.with_source(e)
}
