//! A tiny HTTP proxy that only does `CONNECT`: it answers
//! `CONNECT host:port` with 200 and then copies bytes both ways between
//! the client and `127.0.0.1:port` (whatever the host, so tests never leave
//! the machine). Any other method gets 405. It logs the request lines and
//! counts connections; it stops and joins its threads on drop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::server::{find, parse_request, Request};

struct Shared {
    stop: AtomicBool,
    connections: AtomicUsize,
    log: Mutex<Vec<Request>>,
    sockets: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A running `CONNECT` proxy on `127.0.0.1`.
pub struct TunnelProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl TunnelProxy {
    /// Starts the proxy.
    pub fn start() -> TunnelProxy {
        let listener: TcpListener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr: SocketAddr = listener.local_addr().expect("proxy addr");
        let shared: Arc<Shared> = Arc::new(Shared {
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let accept_shared: Arc<Shared> = Arc::clone(&shared);
        let accept_thread: JoinHandle<()> = thread::Builder::new()
            .name("test-tunnel".to_owned())
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn proxy");
        TunnelProxy {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// `http://127.0.0.1:PORT`, for `--proxy` or `https_proxy`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// The requests received (normally `CONNECT host:port`).
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().expect("log lock").clone()
    }
}

impl Drop for TunnelProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        for s in self.shared.sockets.lock().expect("sockets lock").iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.shared.threads.lock().expect("threads lock"));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = incoming else { continue };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = client.try_clone() {
            shared.sockets.lock().expect("sockets lock").push(clone);
        }
        let conn_shared: Arc<Shared> = Arc::clone(&shared);
        if let Ok(h) = thread::Builder::new()
            .name("test-tunnel-conn".to_owned())
            .spawn(move || {
                let _ = tunnel(client, &conn_shared);
            })
        {
            shared.threads.lock().expect("threads lock").push(h);
        }
    }
}

fn tunnel(mut client: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    let mut buffer: Vec<u8> = Vec::new();
    let end: usize = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > 64 * 1024 {
            return Ok(());
        }
        let mut chunk: [u8; 4096] = [0; 4096];
        let n: usize = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let Some(request) = parse_request(&buffer[..end]) else {
        client.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    };
    shared.log.lock().expect("log lock").push(request.clone());
    if request.method != "CONNECT" {
        client.write_all(
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let port: Option<u16> = request
        .target
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok());
    let upstream: TcpStream = match port.map(|p| TcpStream::connect(("127.0.0.1", p))) {
        Some(Ok(s)) => s,
        _ => {
            client.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
    };
    if let Ok(clone) = upstream.try_clone() {
        shared.sockets.lock().expect("sockets lock").push(clone);
    }
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let mut upstream_write: TcpStream = upstream.try_clone()?;
    // Anything the client sent after the CONNECT head goes on first.
    upstream_write.write_all(&buffer[end..])?;
    let mut client_read: TcpStream = client.try_clone()?;
    let up: JoinHandle<()> = thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(Shutdown::Write);
    });
    let mut upstream_read: TcpStream = upstream;
    let _ = io::copy(&mut upstream_read, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}
