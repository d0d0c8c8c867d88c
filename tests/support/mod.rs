//! Test support: an in-process, scriptable HTTP/1.1 server (plain and TLS),
//! a `CONNECT` tunnelling proxy, and a runner for the `partfetch` binary.
//!
//! In scope:
//! - [`Server`]: binds `127.0.0.1:0`, one thread per connection, answers each
//!   request with whatever a handler closure `Fn(&Request) -> Reply` returns,
//!   keeps connections alive, counts connections, logs requests, and stops
//!   (unblocking and joining every thread it started) when dropped.
//! - [`Reply`]: any status, headers and body; chunked bodies with extensions
//!   and trailers; close-delimited, truncated, stalled, paced and raw
//!   responses; redirects; byte ranges.
//! - [`TestPki`] (feature `tls`): a CA and a server certificate made at test
//!   time, the CA written to a PEM file for `--cacert`.
//! - [`TunnelProxy`]: a tiny HTTP proxy that only does `CONNECT`.
//! - [`Blackhole`]: a listening port whose accept queue is full, so a
//!   connect to it hangs (for connect timeouts without leaving 127.0.0.1).
//! - [`cli`]: runs the binary with a deadline and no proxy variables from the
//!   environment; [`TempDir`]; deterministic test data.
//! - [`gzip`]: bytes as a gzip member, for a server to send encoded.
//! - [`tool`]: every other program a test runs, [`require_tool`] to find
//!   one and [`skip`] to give up visibly (a failure under `CI`).
//!
//! Out of scope: request bodies (read and discarded when a Content-Length
//! says so), pipelining beyond what arrives in order on one connection,
//! anything but 127.0.0.1.
//!
//! Use it from an integration test file with `mod support;`.
#![allow(dead_code, unused_imports)]

pub mod cli;
pub mod gzip;
mod reply;
pub mod seed;
pub mod serve_proc;
mod server;
#[cfg(feature = "tls")]
mod tls;
pub mod tool;
mod tunnel;

pub use reply::{Body, Chunk, Ranges, Reply, Step};
pub use serve_proc::ServeProcess;
pub use server::{Options, Request, Server};
#[cfg(feature = "tls")]
pub use tls::{OpensslCertificate, TestPki};
pub use tool::{require_tool, run_tool, skip, transmission_show_hash};
pub use tunnel::TunnelProxy;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh name under the system temporary directory, unique within this
/// process and across processes (pid + counter + time).
pub fn unique_temp_path(label: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n: usize = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos: u128 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "partfetch-test-{label}-{}-{n}-{nanos}",
        std::process::id()
    ))
}

/// A directory under the system temporary directory, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates an empty directory with a unique name.
    pub fn new(label: &str) -> TempDir {
        let path: PathBuf = unique_temp_path(label);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The names of the entries in the directory, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.path)
            .expect("read temp dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A client with `connections` per download and no proxy from the
/// environment.
pub fn client(connections: usize) -> partfetch::Client {
    partfetch::Client::builder()
        .no_env_proxy()
        .connections(connections)
        .build()
        .unwrap()
}

/// The whole stream `client` opens for `url`, read to its end.
pub fn read_stream(client: &partfetch::Client, url: &str) -> partfetch::Result<Vec<u8>> {
    use partfetch::ByteSource;
    let mut stream = client.open(url)?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next_chunk()? {
        out.extend_from_slice(chunk);
    }
    Ok(out)
}

/// `len` bytes that look random, the same for the same `seed` (xorshift64*).
pub fn test_data(len: usize, seed: u64) -> Vec<u8> {
    let mut state: u64 = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out: Vec<u8> = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word: u64 = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A listener on 127.0.0.1 whose accept queue has been filled by
/// connections it never accepts: the kernel then drops new SYNs, so a
/// connect to [`Blackhole::addr`] neither succeeds nor is refused.
pub struct Blackhole {
    listener: std::net::TcpListener,
    held: Vec<std::net::TcpStream>,
}

impl Blackhole {
    /// Fills the accept queue. Panics if the kernel keeps accepting (then a
    /// connect-timeout test cannot be made deterministic here).
    pub fn new() -> Blackhole {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind blackhole");
        let addr = listener.local_addr().expect("blackhole addr");
        let mut held: Vec<std::net::TcpStream> = Vec::new();
        // Full once two connects in a row time out (one could be a slow
        // machine rather than a dropped SYN).
        let mut timeouts_in_a_row: u32 = 0;
        for _ in 0..10_000 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => {
                    held.push(s);
                    timeouts_in_a_row = 0;
                }
                Err(_) => {
                    timeouts_in_a_row += 1;
                    if timeouts_in_a_row == 2 {
                        return Blackhole { listener, held };
                    }
                }
            }
        }
        panic!(
            "could not fill the accept queue of {addr} after {} connections",
            held.len()
        );
    }

    /// The address whose connects hang.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.listener.local_addr().expect("blackhole addr")
    }
}

/// Sleeps for `duration` in short steps, returning early once `stop()` is
/// true. Lets server threads that stall or delay end promptly on drop.
pub(crate) fn sleep_unless(duration: Duration, stop: &dyn Fn() -> bool) {
    let end: Instant = Instant::now() + duration;
    loop {
        if stop() {
            return;
        }
        let now: Instant = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Whether the files at `expected` and `got` hold the same bytes; if not,
/// why, naming the first offset where they differ. Reads 1 MiB at a time,
/// so files of any size compare in flat memory.
pub fn compare_files(expected: &Path, got: &Path) -> Result<(), String> {
    use std::fs::File;
    use std::io::Read;
    fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(filled)
    }
    let open = |p: &Path| File::open(p).map_err(|e| format!("open {}: {e}", p.display()));
    let (mut a, mut b) = (open(expected)?, open(got)?);
    let len = |f: &File| f.metadata().map(|m| m.len()).unwrap_or(0);
    let (len_a, len_b) = (len(&a), len(&b));
    if len_a != len_b {
        return Err(format!("{} has {len_b} bytes, not {len_a}", got.display()));
    }
    let (mut buf_a, mut buf_b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset: u64 = 0;
    loop {
        let n = read_full(&mut a, &mut buf_a).map_err(|e| e.to_string())?;
        let m = read_full(&mut b, &mut buf_b).map_err(|e| e.to_string())?;
        if buf_a[..n] != buf_b[..m] {
            let at = buf_a[..n]
                .iter()
                .zip(&buf_b[..m])
                .position(|(x, y)| x != y)
                .unwrap_or(n.min(m));
            return Err(format!(
                "{} differs from {} at byte {}",
                got.display(),
                expected.display(),
                offset + at as u64
            ));
        }
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

/// Polls `done` every 10 ms until it is true; panics after `deadline`.
#[track_caller]
pub fn wait_until(deadline: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "gave up waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Kills a child process when dropped, so a failing assertion leaves no
/// process behind.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
