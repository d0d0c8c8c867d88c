//! The scriptable HTTP/1.1 server: accepting, one thread per connection,
//! reading request heads, calling the handler, writing its [`Reply`], the
//! connection count and the request log, and a clean stop on drop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::reply::{Reply, Step};
use super::sleep_unless;

/// A request head longer than this gets a 400 and a closed connection.
const MAX_REQUEST_HEAD: usize = 1024 * 1024;

/// How long a closing connection waits for the peer to finish sending,
/// so that closing does not reset the connection under unread data.
const CLOSE_DRAIN: Duration = Duration::from_millis(500);

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `CONNECT`, ...
    pub method: String,
    /// The request target exactly as sent: `/path?query`, or absolute-form
    /// `http://host:port/path` when sent to a proxy.
    pub target: String,
    /// `HTTP/1.1`
    pub version: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Which connection it came on: 1 for the first accepted, and so on.
    pub connection: usize,
    /// Its place on that connection: 1 for the first request.
    pub index_on_connection: usize,
}

impl Request {
    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the header `name` (any case), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Where this request's `Range: bytes=START-…` starts, if it has one.
    pub fn range_start(&self) -> Option<u64> {
        self.header("range")?
            .strip_prefix("bytes=")?
            .split('-')
            .next()?
            .parse()
            .ok()
    }

    /// The bytes a `Range: bytes=first-last` header asks for.
    pub fn range(&self) -> Option<std::ops::RangeInclusive<u64>> {
        let (first, last) = self
            .header("range")?
            .strip_prefix("bytes=")?
            .split_once('-')?;
        Some(first.parse().ok()?..=last.parse().ok()?)
    }

    /// The path without the query, also for an absolute-form target.
    pub fn path(&self) -> &str {
        let target: &str = self.path_and_query();
        target.split('?').next().unwrap_or(target)
    }

    /// The path and query, also for an absolute-form target.
    pub fn path_and_query(&self) -> &str {
        let t: &str = self.target.as_str();
        match t.find("://") {
            Some(i) => {
                let after: &str = &t[i + 3..];
                match after.find('/') {
                    Some(j) => &after[j..],
                    None => "/",
                }
            }
            None => t,
        }
    }
}

/// How a [`Server`] behaves apart from its handler.
#[derive(Clone, Default)]
pub struct Options {
    /// Close each connection after this many requests, without saying so
    /// (no `Connection: close`), as a server with a keep-alive limit does.
    pub close_after_requests: Option<usize>,
    /// Serve HTTPS with this configuration.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync + 'static;

/// State shared by the accept thread, connection threads and the test.
struct Shared {
    stop: AtomicBool,
    connections: AtomicUsize,
    /// Connections open now, and the most that were open at once.
    open: AtomicUsize,
    most_open: AtomicUsize,
    log: Mutex<Vec<Request>>,
    /// A clone of every accepted socket, to shut down on drop.
    sockets: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The message of the first handler panic.
    handler_panic: Mutex<Option<String>>,
}

/// A running server on `127.0.0.1`; stops on drop.
pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a plain-HTTP server answering every request with `handler`.
    pub fn start<F>(handler: F) -> Server
    where
        F: Fn(&Request) -> Reply + Send + Sync + 'static,
    {
        Server::start_with(Options::default(), handler)
    }

    /// Starts an HTTPS server with the certificate of `pki`.
    #[cfg(feature = "tls")]
    pub fn https<F>(pki: &super::TestPki, handler: F) -> Server
    where
        F: Fn(&Request) -> Reply + Send + Sync + 'static,
    {
        let options: Options = Options {
            tls: Some(pki.server_config()),
            ..Options::default()
        };
        Server::start_with(options, handler)
    }

    /// Starts a server with `options`.
    pub fn start_with<F>(options: Options, handler: F) -> Server
    where
        F: Fn(&Request) -> Reply + Send + Sync + 'static,
    {
        let listener: TcpListener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let shared: Arc<Shared> = Arc::new(Shared {
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            most_open: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            handler_panic: Mutex::new(None),
        });
        #[cfg(feature = "tls")]
        let scheme: &'static str = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        #[cfg(not(feature = "tls"))]
        let scheme: &'static str = "http";
        let handler: Arc<Handler> = Arc::new(handler);
        let accept_shared: Arc<Shared> = Arc::clone(&shared);
        let accept_thread: JoinHandle<()> = thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || accept_loop(listener, accept_shared, handler, options))
            .expect("spawn accept thread");
        Server {
            addr,
            scheme,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` + `path` (`https` for a TLS server).
    pub fn url(&self, path: &str) -> String {
        self.url_on("127.0.0.1", path)
    }

    /// `scheme://HOST:PORT` + `path`, for a host name that reaches 127.0.0.1.
    pub fn url_on(&self, host: &str, path: &str) -> String {
        format!("{}://{}:{}{}", self.scheme, host, self.addr.port(), path)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The most TCP connections that were open at once so far.
    pub fn most_open_connections(&self) -> usize {
        self.shared.most_open.load(Ordering::SeqCst)
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().expect("log lock").clone()
    }

    /// How many requests asked for `path`.
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path() == path).count()
    }

    /// The last request received; panics if there was none.
    pub fn last_request(&self) -> Request {
        self.requests()
            .pop()
            .expect("the server received no request")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop; it sees `stop` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        for socket in self.shared.sockets.lock().expect("sockets lock").iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.shared.threads.lock().expect("threads lock"));
        for t in threads {
            let _ = t.join();
        }
        let message: Option<String> = self.shared.handler_panic.lock().expect("panic lock").take();
        if let Some(message) = message {
            if !thread::panicking() {
                panic!("a test server handler panicked: {message}");
            }
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    handler: Arc<Handler>,
    options: Options,
) {
    for incoming in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(socket) = incoming else { continue };
        let number: usize = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let open: usize = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_open.fetch_max(open, Ordering::SeqCst);
        if let Ok(clone) = socket.try_clone() {
            shared.sockets.lock().expect("sockets lock").push(clone);
        }
        let conn_shared: Arc<Shared> = Arc::clone(&shared);
        let conn_handler: Arc<Handler> = Arc::clone(&handler);
        let conn_options: Options = options.clone();
        let spawned = thread::Builder::new()
            .name(format!("test-conn-{number}"))
            .spawn(move || {
                let shared: Arc<Shared> = Arc::clone(&conn_shared);
                serve_connection(socket, number, conn_shared, conn_handler, conn_options);
                shared.open.fetch_sub(1, Ordering::SeqCst);
            });
        if let Ok(handle) = spawned {
            shared.threads.lock().expect("threads lock").push(handle);
        }
    }
}

/// A plain or TLS server-side stream.
enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            #[cfg(feature = "tls")]
            Conn::Tls(s) => &s.sock,
        }
    }

    /// Ends the connection politely: close_notify for TLS, FIN, then a short
    /// drain so unread request bytes do not turn the close into a reset.
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    fn close(mut self, stop: &AtomicBool) {
        #[cfg(feature = "tls")]
        if let Conn::Tls(s) = &mut self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let tcp: &TcpStream = self.tcp();
        let _ = tcp.shutdown(Shutdown::Write);
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(50)));
        let mut scratch: [u8; 4096] = [0; 4096];
        let mut waited: Duration = Duration::ZERO;
        let mut reader: &TcpStream = tcp;
        while waited < CLOSE_DRAIN && !stop.load(Ordering::SeqCst) {
            match reader.read(&mut scratch) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    waited += Duration::from_millis(50);
                }
                Err(_) => break,
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.flush(),
        }
    }
}

fn serve_connection(
    socket: TcpStream,
    number: usize,
    shared: Arc<Shared>,
    handler: Arc<Handler>,
    options: Options,
) {
    let _ = socket.set_nodelay(true);
    #[cfg(feature = "tls")]
    let mut conn: Conn = match &options.tls {
        Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
            Ok(server) => Conn::Tls(Box::new(rustls::StreamOwned::new(server, socket))),
            Err(_) => return,
        },
        None => Conn::Plain(socket),
    };
    #[cfg(not(feature = "tls"))]
    let mut conn: Conn = Conn::Plain(socket);

    let mut buffer: Vec<u8> = Vec::new();
    let mut served: usize = 0;
    loop {
        let head: Vec<u8> = match read_head(&mut conn, &mut buffer) {
            Ok(Some(head)) => head,
            Ok(None) | Err(_) => return,
        };
        let Some(mut request) = parse_request(&head) else {
            let _ = conn.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            conn.close(&shared.stop);
            return;
        };
        served += 1;
        request.connection = number;
        request.index_on_connection = served;
        if discard_request_body(&mut conn, &mut buffer, &request).is_err() {
            return;
        }
        shared.log.lock().expect("log lock").push(request.clone());

        let reply: Reply = match panic::catch_unwind(AssertUnwindSafe(|| handler(&request))) {
            Ok(reply) => reply,
            Err(payload) => {
                let message: String = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(not a string)".to_owned());
                shared
                    .handler_panic
                    .lock()
                    .expect("panic lock")
                    .get_or_insert(message);
                Reply::status(500).header("Connection", "close")
            }
        };
        let reply = match request.method.as_str() {
            "HEAD" => reply.for_head(),
            _ => reply,
        };
        // Set for each reply: the server's sockets otherwise send at once.
        let _ = conn.tcp().set_nodelay(!reply.split_head);
        let (steps, close_after): (Vec<Step>, bool) = reply.into_steps();
        for step in steps {
            match step {
                Step::Write(bytes) => {
                    if conn.write_all(&bytes).and_then(|()| conn.flush()).is_err() {
                        return;
                    }
                }
                Step::Sleep(d) => sleep_unless(d, &|| shared.stop.load(Ordering::SeqCst)),
                Step::Until(flag, d) => sleep_unless(d, &|| {
                    flag.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst)
                }),
            }
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
        }
        let client_says_close: bool = request
            .header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        let limit_reached: bool = options.close_after_requests.is_some_and(|n| served >= n);
        if close_after || client_says_close || limit_reached || request.version == "HTTP/1.0" {
            conn.close(&shared.stop);
            return;
        }
    }
}

/// Reads until a blank line ends a request head. Bytes after the head stay
/// in `buffer`. `Ok(None)` when the peer closed before a head began.
fn read_head(conn: &mut Conn, buffer: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            let head: Vec<u8> = buffer[..end + 4].to_vec();
            buffer.drain(..end + 4);
            return Ok(Some(head));
        }
        if buffer.len() > MAX_REQUEST_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
        let mut chunk: [u8; 8192] = [0; 8192];
        let n: usize = conn.read(&mut chunk)?;
        if n == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "partial request head",
                ))
            };
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn discard_request_body(
    conn: &mut Conn,
    buffer: &mut Vec<u8>,
    request: &Request,
) -> io::Result<()> {
    let Some(length) = request
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
    else {
        return Ok(());
    };
    while buffer.len() < length {
        let mut chunk: [u8; 8192] = [0; 8192];
        let n: usize = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "partial request body",
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    buffer.drain(..length);
    Ok(())
}

/// Parses a request head (ending in a blank line). `None` if malformed.
pub(crate) fn parse_request(head: &[u8]) -> Option<Request> {
    let text: &str = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let request_line: &str = lines.next()?;
    let mut parts = request_line.split(' ');
    let method: String = parts.next()?.to_owned();
    let target: String = parts.next()?.to_owned();
    let version: String = parts.next()?.to_owned();
    if parts.next().is_some()
        || method.is_empty()
        || target.is_empty()
        || !version.starts_with("HTTP/")
    {
        return None;
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || name.contains(' ') {
            return None;
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Some(Request {
        method,
        target,
        version,
        headers,
        connection: 0,
        index_on_connection: 0,
    })
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
