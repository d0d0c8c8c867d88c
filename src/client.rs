//! The entry point: a configured client that opens URLs as byte streams.
//!
//! Owns the options a user sets once (timeouts, proxies, trust anchors,
//! headers) and the shared state they configure (the connection pool, the
//! TLS configuration). [`Client::open`] is the one call most users need; it
//! decides which layers a URL's stream goes through.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancel;
#[cfg(feature = "metalink")]
use crate::download::MetalinkDownload;
use crate::download::{Download, TorrentDownload};
use crate::engine::segments::{DEFAULT_CONNECTIONS, MAX_PER_HOST};
use crate::error::Result;
use crate::event::{Event, EventSink};
use crate::fetch::retry::DEFAULT_RETRIES;
use crate::fetch::Context;
use crate::http::conn::ConnectSettings;
use crate::http::exchange::{HttpSettings, Request, Response};
use crate::http::pool::Pool;
use crate::http::proxy::ProxySettings;
use crate::http::redirect::DEFAULT_MAX_REDIRECTS;
use crate::http::request::{check_client_header, check_header};
use crate::manifest::cache::DEFAULT_CACHE_LIMIT;
use crate::manifest::expand::PartRecord;
use crate::open::{self, Resumed, ResumedPieces};
use crate::pieces::{PieceSet, PieceStore};
use crate::source::FixedChunks;
use crate::stream::Stream;
use crate::url::Url;

/// The default time to establish a TCP connection to one address.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The default time a transfer may go without receiving a byte.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest timeout: a shorter one, zero included, is taken as this
/// (the socket calls refuse a zero timeout).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Options for a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_redirects: u32,
    user_agent: String,
    headers: Vec<(String, String)>,
    proxy: Option<String>,
    env_proxy: bool,
    ca_files: Vec<PathBuf>,
    pinned_keys: Vec<String>,
    events: Option<EventSink>,
    cache_limit: u64,
    parallel: usize,
    connections: usize,
    max_per_host: usize,
    retries: u32,
    compressed: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            user_agent: concat!("partfetch/", env!("CARGO_PKG_VERSION")).to_owned(),
            headers: Vec::new(),
            proxy: None,
            env_proxy: true,
            ca_files: Vec::new(),
            pinned_keys: Vec::new(),
            events: None,
            cache_limit: DEFAULT_CACHE_LIMIT,
            parallel: crate::engine::DEFAULT_PARALLEL,
            connections: DEFAULT_CONNECTIONS,
            max_per_host: MAX_PER_HOST,
            retries: DEFAULT_RETRIES,
            compressed: false,
        }
    }
}

impl ClientBuilder {
    /// How long connecting to one address may take (default 15 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(MIN_TIMEOUT);
        self
    }

    /// How long a transfer may receive nothing before it fails (default 30 s).
    /// A slow but steady stream never times out.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(MIN_TIMEOUT);
        self
    }

    /// The most redirects followed for one request (default 20).
    pub fn max_redirects(mut self, max: u32) -> Self {
        self.max_redirects = max;
        self
    }

    /// Replaces `User-Agent: partfetch/VERSION`.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// Adds a header to every request. `Authorization` and `Cookie` headers
    /// are not sent to another origin after a redirect. `Range` and
    /// `If-Range` are refused by [`ClientBuilder::build`]: the client sets
    /// them itself, per request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends every request through this HTTP proxy (overrides the
    /// environment's `http_proxy`/`https_proxy`; `no_proxy` still applies).
    pub fn proxy(mut self, proxy: impl Into<String>) -> Self {
        self.proxy = Some(proxy.into());
        self
    }

    /// Ignores the proxy environment variables.
    pub fn no_env_proxy(mut self) -> Self {
        self.env_proxy = false;
        self
    }

    /// Trusts the CA certificates in this PEM file too, as curl's `--cacert`,
    /// and each of them as a server's own certificate when a server
    /// presents it byte for byte (a self-signed certificate made with
    /// `openssl req -x509`): its names and dates are still checked.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Accepts a server only when its certificate's public key is one of
    /// these, as curl's `--pinnedpubkey`: `sha256//BASE64` (several joined
    /// by `;`), or the path of a PEM or DER public key file. With a pin no
    /// chain to an authority is needed; the certificate's names and dates
    /// are still checked. Repeated, any of the keys given is accepted.
    pub fn pinned_public_key(mut self, pins: impl Into<String>) -> Self {
        self.pinned_keys.push(pins.into());
        self
    }

    /// Calls `sink` with each [`Event`] of the client's downloads: a
    /// request sent again and after how long, a source dropped and why, a
    /// redirect from HTTPS to plain HTTP, a download resumed or started
    /// over. Without it a wait for a busy server (up to a minute when it
    /// says `Retry-After`) looks like a hang. The sink is called on the
    /// thread where the event happened, never while the engine holds a
    /// lock.
    pub fn on_event(mut self, sink: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.events = Some(Arc::new(sink));
        self
    }

    /// The most bytes of `(*)` parts kept per download (default 64 MiB).
    pub fn cache_limit(mut self, bytes: u64) -> Self {
        self.cache_limit = bytes;
        self
    }

    /// How many connections one large resource is fetched over (default 4,
    /// at most [`ClientBuilder::max_per_host`]): a resource of more than 4 MiB whose server honours
    /// `Range` is fetched as pieces, still handed on in order. 1 fetches
    /// everything as one stream.
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections.max(1);
        self
    }

    /// The most connections one download opens to one host (default 16):
    /// `connections` is capped by it, and the parts a manifest fetches at
    /// once share it.
    pub fn max_per_host(mut self, connections: usize) -> Self {
        self.max_per_host = connections.max(1);
        self
    }

    /// How many times a source that fails for a moment (reset, timeout,
    /// 408, 429, 500, 502, 503, 504) is tried in a row before it is dropped (default 5),
    /// with exponential backoff and jitter, longer when the server asks
    /// with `Retry-After`.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries.max(1);
        self
    }

    /// How many parts of a manifest are fetched ahead of the one being
    /// read (default 8, at most [`ClientBuilder::max_per_host`] − 1, as
    /// they may all be on one host), each into a bounded buffer. 1 reads
    /// each part only when it is due, over one connection per server.
    pub fn parallel(mut self, parts: usize) -> Self {
        self.parallel = parts.max(1);
        self
    }

    /// Checks a header as [`ClientBuilder::build`] will: a valid name and
    /// value, and none that the client sets itself per request (`Range`,
    /// `If-Range`, `Content-Length`, `Transfer-Encoding`, an
    /// `Accept-Encoding` other than `identity`). A program that takes
    /// headers from its user checks them as they are given.
    pub fn check_header(name: &str, value: &str) -> Result<()> {
        check_client_header(name, value)
    }

    /// The `Authorization` value of Basic authorization for
    /// Asks for a whole file gzip-encoded (`Accept-Encoding: gzip`, curl's
    /// `--compressed`) and hands on its decoded bytes. It then comes as
    /// one stream over one connection, and a download of it is not
    /// resumed: a range of an encoded body is not the file's. Pieces,
    /// resumes of an earlier run and manifests still go as stored. Needs
    /// the `gzip` feature: without it, [`ClientBuilder::build`] fails.
    pub fn compressed(mut self, compressed: bool) -> Self {
        self.compressed = compressed;
        self
    }

    /// `user:password` as typed (as curl's `-u`: no percent-decoding, a
    /// `%` is part of the password); add it with [`ClientBuilder::header`].
    /// Like every `Authorization` header, it goes to the URL's own origin
    /// only.
    pub fn basic_authorization(user_password: &str) -> String {
        crate::http::request::basic_authorization(user_password)
    }

    /// Checks the options and builds the client.
    pub fn build(self) -> Result<Client> {
        for (name, value) in &self.headers {
            check_client_header(name, value)?;
        }
        check_header("User-Agent", &self.user_agent)?;
        let mut proxies = if self.env_proxy {
            ProxySettings::from_env()
        } else {
            ProxySettings::default()
        };
        if let Some(proxy) = &self.proxy {
            proxies.set_all(proxy)?;
        }
        #[cfg(not(feature = "tls"))]
        if let Some(path) = self.ca_files.first() {
            return Err(crate::Error::new(
                crate::ErrorKind::InvalidInput,
                "a CA file needs HTTPS support, which this build of partfetch lacks",
            )
            .with_subject(path.display()));
        }
        #[cfg(not(feature = "gzip"))]
        if self.compressed {
            return Err(crate::Error::new(
                crate::ErrorKind::InvalidInput,
                "asking for compressed downloads needs gzip support, which this build of \
                 partfetch lacks (the `gzip` feature)",
            ));
        }
        #[cfg(not(feature = "tls"))]
        if let Some(pin) = self.pinned_keys.first() {
            return Err(crate::Error::new(
                crate::ErrorKind::InvalidInput,
                "a pinned public key needs HTTPS support, which this build of partfetch lacks",
            )
            .with_subject(pin));
        }
        #[cfg(feature = "tls")]
        let mut pins = crate::http::verify::PinnedKeys::default();
        #[cfg(feature = "tls")]
        for value in &self.pinned_keys {
            pins.add(value)?;
        }
        let connect = ConnectSettings {
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            #[cfg(feature = "tls")]
            tls: crate::http::tls::client_config(&self.ca_files, &pins)?,
        };
        Ok(Client::from(Context {
            http: Arc::new(HttpSettings {
                connect,
                pool: Arc::new(Pool::new()),
                proxies,
                user_agent: self.user_agent,
                headers: self.headers,
                max_redirects: self.max_redirects,
                events: self.events,
                cancel: Cancel::new(),
                credentials_origin: None,
            }),
            cache_limit: self.cache_limit,
            // The part being read and those ahead may all be on one host.
            parallel: self
                .parallel
                .min(self.max_per_host.saturating_sub(1))
                .max(1),
            connections: self.connections.min(self.max_per_host),
            max_per_host: self.max_per_host,
            retries: self.retries,
            compressed: self.compressed,
        }))
    }
}

/// A configured client. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    ctx: Context,
}

impl Client {
    /// A client with the default options (proxies from the environment).
    pub fn new() -> Result<Client> {
        ClientBuilder::default().build()
    }

    /// Options for a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Sends `request` and returns the response, whatever its status.
    #[doc(hidden)]
    pub fn send(&self, request: &Request) -> Result<Response> {
        self.ctx.send(request)
    }

    /// Sends `HEAD` for `url`, following redirects, and returns the last
    /// response whatever its status (what `curl -I` shows). With
    /// [`ClientBuilder::compressed`] it asks for gzip, as the download's
    /// `GET` would, so the head is the one that download would get.
    pub fn head(&self, url: &str) -> Result<Response> {
        let request = Request::head(Url::parse(url)?);
        #[cfg(feature = "gzip")]
        let request = match self.ctx.compressed {
            true => request.accept_gzip(),
            false => request,
        };
        self.ctx.send(&request)
    }

    /// `GET`s `url`; a status that is not 2xx is an error.
    #[doc(hidden)]
    pub fn get(&self, url: &Url) -> Result<Response> {
        self.ctx.get(url)
    }

    /// Sends `request` as [`Client::send`] does, and again after a pause
    /// while the server answers that it cannot serve it for the moment
    /// (408, 429, 500, 502, 503, 504), up to [`Client::retries`] attempts
    /// in all, waiting at least what `Retry-After` asks on a 429 or 503. A
    /// status that is not 2xx is an error, except those in `pass`,
    /// returned as they are.
    ///
    /// A failure to connect or to get an answer is not tried again: at the
    /// first request it means a wrong address or a host that is down far
    /// more often than a moment's trouble, and the user is better told at
    /// once. (A transfer cut after it started is continued; see
    /// [`Error::is_transient`](crate::Error::is_transient).)
    #[doc(hidden)]
    pub fn send_retrying(&self, request: &Request, pass: &[u16]) -> Result<Response> {
        self.ctx.send_retrying(request, pass)
    }

    /// Opens `url` as a stream of bytes: its body, or, when it is a
    /// manifest, the concatenation of its parts.
    ///
    /// Blocks until the first answer: the connection (up to the connect
    /// timeout per address), and, while the server answers that it cannot
    /// serve for the moment (408, 429, 5xx), the pauses between attempts
    /// ([`Client::send_retrying`]). With the defaults, 5 attempts each
    /// waiting up to the 60 s a `Retry-After` may ask, that is minutes;
    /// [`ClientBuilder::retries`] bounds it, and
    /// [`ClientBuilder::on_event`] tells each pause as it starts.
    pub fn open(&self, url: &str) -> Result<Stream> {
        self.open_mirrored(url, &[])
    }

    /// Opens `url` like [`Client::open`], with `mirrors` that serve the
    /// same bytes: a large resource is then fetched from all of them at
    /// once, each checked by its first answer (same length, same strong
    /// `ETag` when both send one), and a source that fails is dropped while
    /// the others finish (with an [`Event::SourceDropped`]).
    /// When `url` does not answer, the first mirror that does takes its
    /// place.
    ///
    /// The mirrors serve pieces only when the download is split: a
    /// resource of more than 4 MiB whose server honours `Range`, and whose
    /// first piece came slower than 100 MiB/s. Faster than that (a local
    /// network, or loopback), one connection is already as fast as more
    /// would be, and the rest of the resource comes from the first source
    /// as one stream; the mirrors then stand by, in case it stalls.
    ///
    /// When every source fails, the error's kind is that of the first
    /// source's failure, and [`Error::causes`](crate::Error::causes) holds each source's.
    pub fn open_mirrored(&self, url: &str, mirrors: &[&str]) -> Result<Stream> {
        open::open_mirrored(&self.ctx, url, mirrors)
    }

    /// Continues a download of `url` at byte `offset`, as long as the
    /// resource is still the one `validator` (an earlier stream's
    /// [`Stream::validator`]) describes: `Range` with `If-Range`.
    ///
    /// Returns the stream of the bytes from `offset` on and
    /// [`Resumed::AtOffset`], or, when the resource changed or the server
    /// ignores `Range`, the whole resource and [`Resumed::FromStart`] — the
    /// caller must then start over. A resource exactly `offset` long gives
    /// an empty stream.
    #[doc(hidden)]
    pub fn resume(
        &self,
        url: &str,
        offset: u64,
        validator: Option<&str>,
    ) -> Result<(Stream, Resumed)> {
        open::resume(&self.ctx, url, offset, validator)
    }

    /// Continues a download of `url` written into `store` piece by piece
    /// (a [`SegmentedDownload`](crate::engine::download::SegmentedDownload)): `have` are the pieces an earlier run
    /// completed, `length` and `validator` what the server said then.
    ///
    /// Asks for the first missing piece with `If-Range`; when the answer is
    /// that piece of a resource of the same length, the download continues
    /// over the client's connections and `mirrors`, fetching only the
    /// missing pieces. Otherwise the resource changed (or the server no
    /// longer honours `Range`) and [`ResumedPieces::Changed`] carries the
    /// stream of the whole resource.
    #[doc(hidden)]
    pub fn resume_pieces(
        &self,
        url: &str,
        mirrors: &[&str],
        length: u64,
        validator: Option<&str>,
        have: PieceSet,
        store: Arc<dyn PieceStore>,
    ) -> Result<ResumedPieces> {
        open::resume_pieces(&self.ctx, url, mirrors, length, validator, have, store)
    }

    /// Continues a download of the manifest `url` after the parts an
    /// earlier run completed (`done`, from [`Stream::completed_parts`]):
    /// they are skipped without being fetched, and the stream starts with
    /// the part after them. When the manifests no longer list those parts,
    /// the stream fails with [`ErrorKind::ResumeMismatch`](crate::ErrorKind)
    /// before any byte: the caller starts over. Like any stream, it records its
    /// parts, those skipped included, only when asked
    /// ([`Stream::record_parts`]).
    #[doc(hidden)]
    pub fn resume_manifest(&self, url: &str, done: Vec<PartRecord>) -> Result<Stream> {
        open::resume_manifest(&self.ctx, url, done)
    }

    /// A download of `url` to set up and run: saved to a file (resumable,
    /// in pieces over several connections), to a writer, or as the files of
    /// a file sequence. See [`Download`].
    pub fn download(&self, url: &str) -> Download<'_> {
        Download::new(self.ctx.clone(), url)
    }

    /// A BitTorrent download of the `.torrent` at `source` (a file's path,
    /// or an `http(s)` URL fetched through this client), saved into a
    /// directory from the torrent's swarm. See [`TorrentDownload`].
    pub fn torrent(&self, source: &str) -> TorrentDownload<'_> {
        TorrentDownload::new(self.ctx.clone(), source)
    }

    /// A download of the files the Metalink v4 document at `source` lists
    /// (a file's path, or an `http(s)` URL fetched through this client),
    /// each from its mirrors into a directory. See [`MetalinkDownload`].
    #[cfg(feature = "metalink")]
    pub fn metalink(&self, source: &str) -> MetalinkDownload<'_> {
        MetalinkDownload::new(self.ctx.clone(), source)
    }

    /// The stream of `url` in chunks of exactly `chunk_size` bytes, except
    /// the last, which may be shorter: the chunks are handed to the caller,
    /// one at a time, and nothing is written to disk (the command-line
    /// tool's saving to a file, with its resume and checksum, is in the
    /// binary). A `chunk_size` of 0 is taken as 1.
    pub fn download_file(&self, url: &str, chunk_size: usize) -> Result<FixedChunks<Stream>> {
        Ok(FixedChunks::new(self.open(url)?, chunk_size))
    }

    /// Connections one large resource is fetched over.
    pub fn connections(&self) -> usize {
        self.ctx.connections()
    }

    /// Connections one large part of a manifest is fetched over: the
    /// window fetches several parts at once, and together they stay
    /// within the connections one host allows.
    #[doc(hidden)]
    pub fn connections_per_part(&self) -> usize {
        self.ctx.connections_per_part()
    }

    /// The handle that stops this client's downloads from another thread:
    /// its requests, its reads, its pauses between attempts, and the
    /// streams it opened (see [`Cancel`]). Clones of the client share it;
    /// [`Client::with_cancel`] makes one with a handle of its own.
    pub fn cancel_handle(&self) -> Cancel {
        self.ctx.cancel_handle()
    }

    /// A client that shares this one's options and idle connections, with
    /// `cancel` as its own handle: each download of a program that runs
    /// several can be stopped alone, over one pool of connections. This
    /// client's handle does not stop it, nor its handle this client.
    pub fn with_cancel(&self, cancel: Cancel) -> Client {
        Client::from(self.ctx.with_cancel(cancel))
    }

    /// Attempts in a row before a failing source is dropped.
    pub fn retries(&self) -> u32 {
        self.ctx.retries()
    }

    /// How many parts of a manifest are fetched at once.
    pub fn parallel(&self) -> usize {
        self.ctx.parallel()
    }

    /// How many idle connections the pool holds (for tests and diagnostics).
    pub fn idle_connections(&self) -> usize {
        self.ctx.idle_connections()
    }
}

impl From<Context> for Client {
    fn from(ctx: Context) -> Client {
        Client { ctx }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ByteSource;
    use std::io::{Read, Write};

    #[test]
    fn zero_timeouts_are_taken_as_the_shortest_and_still_work() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/f", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut head = [0u8; 1024];
            let _ = socket.read(&mut head).unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
        });
        let client = Client::builder()
            .connect_timeout(Duration::ZERO)
            .idle_timeout(Duration::ZERO)
            .build()
            .unwrap();
        let mut stream = client.open(&url).unwrap();
        let mut body = Vec::new();
        while let Some(chunk) = stream.next_chunk().unwrap() {
            body.extend_from_slice(chunk);
        }
        assert_eq!(body, b"ok");
        server.join().unwrap();
    }
}
