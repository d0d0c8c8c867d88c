//! Stopping a client's downloads from another thread.
//!
//! Owns [`Cancel`], the handle a program keeps to stop what a [`Client`]
//! is doing (a user pressed Stop, a deadline passed), and the places that
//! honour it: a request not yet sent, every read (before it, and while it
//! waits for bytes, every [`WATCH_INTERVAL`]), a pause between attempts
//! (at once: the pause sleeps until cancelled or over), and the consumer's
//! waits for pieces and parts. A cancelled download so ends within a
//! quarter of a second with [`ErrorKind::Cancelled`].
//! Connecting is the exception: the system call that waits for an address
//! to answer cannot be interrupted, and ends at the connect timeout at the
//! latest (with `Cancelled` too).
//!
//! [`Client`]: crate::Client

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// How often a wait looks at its cancel handle, and a watched read at its
/// watch ([`Watch`](crate::http::socket::Watch)): the bound on how late a
/// cancel or a given-up answer is noticed.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// A handle that stops the downloads of the client it came from
/// ([`Client::cancel_handle`](crate::Client::cancel_handle)), and of every
/// stream that client opened. It can be cloned and sent to other threads.
///
/// Cancelling is for good: the client's later calls fail at once too. A
/// program that runs several downloads gives each its own handle with
/// [`Client::with_cancel`](crate::Client::with_cancel), over one pool of
/// connections, and one that starts a download again takes a new handle
/// the same way.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<Flag>);

/// The cancelled flag, and what a pause sleeps on until it is set: a
/// pause ends the moment its download is cancelled, with no wake-up
/// before.
#[derive(Debug, Default)]
struct Flag {
    cancelled: AtomicBool,
    lock: Mutex<()>,
    set: Condvar,
}

impl Cancel {
    /// A handle not cancelled yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stops the downloads: each blocking call of the client returns
    /// [`ErrorKind::Cancelled`] within a quarter of a second (a connection
    /// being opened, within the connect timeout).
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        // Taken so that a pause between its look at the flag and its
        // sleep cannot miss the wake-up.
        let _guard = self.0.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.0.set.notify_all();
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }

    /// `Ok` unless cancelled.
    pub(crate) fn check(&self) -> Result<()> {
        match self.is_cancelled() {
            true => Err(cancelled()),
            false => Ok(()),
        }
    }

    /// Sleeps for `wait`, or until cancelled.
    pub(crate) fn pause(&self, wait: Duration) -> Result<()> {
        let until = Instant::now() + wait;
        let mut guard = self.0.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            self.check()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            guard = match self.0.set.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// The error of a cancelled call.
pub(crate) fn cancelled() -> Error {
    Error::new(ErrorKind::Cancelled, "cancelled")
}

/// The error inside an [`std::io::Error`] when a read was stopped by its
/// [`Cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

impl Cancelled {
    /// Whether `e` reports a read stopped by its [`Cancel`].
    pub(crate) fn of(e: &std::io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<Cancelled>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_ends_soon_after_a_cancel_from_another_thread() {
        let cancel = Cancel::new();
        assert!(cancel.pause(Duration::from_millis(1)).is_ok());
        let other = cancel.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            other.cancel();
        });
        let err = cancel.pause(Duration::from_secs(60)).unwrap_err();
        canceller.join().unwrap();
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert!(cancel.is_cancelled());
        assert_eq!(cancel.check().unwrap_err().kind(), ErrorKind::Cancelled);
    }
}
