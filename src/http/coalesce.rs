//! Read coalescing: fewer, fuller socket reads during bulk transfers.
//!
//! A receiver faster than its sender finds the socket nearly empty at every
//! read and goes to sleep, so each arriving segment has to wake it — and
//! over loopback or a fast LAN it is the *sender* that pays for those
//! wake-ups. After a read that drained the socket with little, a pause of
//! [`PAUSE`] lets data gather before the next read. Measured against nginx
//! on 127.0.0.1 (BENCHMARKS.md), this cuts nginx's CPU per GiB served over
//! TLS by 10–15 % and our own system time by half, with no loss of
//! throughput: the kernel buffers what arrives meanwhile (100 µs at 1 GB/s
//! is 100 KB, well inside the receive buffer).
//!
//! It never applies within the first [`AFTER`] bytes of a response, so
//! heads, small files and many-part manifests see no added latency; on a
//! slow link the pause is small beside the time between segments.
//!
//! Only TLS connections use it: plain HTTP reads 64 KiB straight into the
//! connection's buffer, mostly full, and the same measurement showed no
//! change in nginx's CPU there.
//!
//! It is no poll: each pause follows a read that brought bytes, so there
//! are never more pauses than arrivals of data, and a connection waiting
//! for bytes makes none.

use std::time::Duration;

/// Bytes a response must have brought before pauses start.
pub const AFTER: u64 = 1024 * 1024;
/// A read shorter than this drained the socket with little.
pub const SMALL_READ: usize = 32 * 1024;
/// The pause before the read that follows a small one.
pub const PAUSE: Duration = Duration::from_micros(100);

/// The state of coalescing on one connection.
#[derive(Debug, Default, Clone)]
pub struct Coalescer {
    received_since_write: u64,
    pause_before_read: bool,
}

impl Coalescer {
    /// Call before a socket read: pauses when the last read was small.
    pub fn before_read(&mut self) {
        if std::mem::take(&mut self.pause_before_read) {
            std::thread::sleep(PAUSE);
        }
    }

    /// Call after a socket read that returned `n` bytes.
    pub fn after_read(&mut self, n: usize) {
        self.received_since_write += n as u64;
        self.pause_before_read = n > 0 && n < SMALL_READ && self.received_since_write > AFTER;
    }

    /// Call when a request is written: a new response starts.
    pub fn on_write(&mut self) {
        *self = Coalescer::default();
    }

    /// Whether the next read will pause (for tests).
    pub fn will_pause(&self) -> bool {
        self.pause_before_read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_only_after_a_small_read_past_the_first_megabyte() {
        let mut c = Coalescer::default();
        c.after_read(100);
        assert!(!c.will_pause(), "no pause within the first MiB");
        c.after_read(AFTER as usize);
        assert!(!c.will_pause(), "a full read needs no pause");
        c.after_read(SMALL_READ - 1);
        assert!(c.will_pause());
        c.before_read();
        assert!(!c.will_pause(), "one pause per small read");
        c.after_read(0);
        assert!(!c.will_pause(), "end of stream: nothing to wait for");
        c.after_read(10);
        assert!(c.will_pause());
        c.on_write();
        assert!(!c.will_pause(), "a new request starts afresh");
        c.after_read(10);
        assert!(!c.will_pause());
    }
}
