//! TCP socket settings that more than one protocol needs.

use std::net::TcpStream;

/// Acknowledges at once what `tcp` has received and not yet acknowledged.
///
/// Linux delays the acknowledgement of data that arrives on a connection
/// that seems interactive (it sent a request and is waiting for the answer)
/// by up to 40 ms, hoping to send it with data of its own. A server that
/// writes a response's head and its body in two sends without
/// `TCP_NODELAY` (Python's `http.server` in HTTP/1.1, many small
/// application servers) then holds the body back under Nagle's algorithm
/// until that acknowledgement comes: 40 ms per response on a kept-alive
/// connection, whatever its size. A BitTorrent peer that writes a message's
/// header and its block apart is held back the same way.
///
/// Setting `TCP_QUICKACK` sends an acknowledgement that is due now, and
/// quick-ack mode lasts only until the kernel next decides the connection
/// is interactive, so it is set again after every read that brought bytes:
/// one `setsockopt` per read, which costs nothing measurable on a GiB over
/// loopback. Measured with `bench/nagle.sh` (BENCHMARKS.md). A failure
/// changes nothing but the speed, so it is ignored.
#[cfg(target_os = "linux")]
pub fn quick_ack(tcp: &TcpStream) {
    use std::os::linux::net::TcpStreamExt;
    let _ = tcp.set_quickack(true);
}

/// Other systems have no `TCP_QUICKACK` that std offers.
#[cfg(not(target_os = "linux"))]
pub fn quick_ack(_tcp: &TcpStream) {}
