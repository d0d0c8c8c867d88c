//! `--max-time` and `--max-filesize`: limits on the whole command that the
//! library's own timeouts do not set.
//!
//! Owns watching them (a timer thread for the deadline, each progress
//! report for the size) and stopping the download through the client's
//! [`Cancel`] when one is passed, then telling which one it was: the
//! library only sees a cancelled download. Idle and connect timeouts,
//! which apply to each request, are the library's.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use partfetch::{Cancel, Error, ErrorKind, Progress};

use super::progress::human;

/// Nothing passed.
const NONE: u8 = 0;
/// The deadline passed.
const TIME: u8 = 1;
/// The size passed.
const SIZE: u8 = 2;

/// The limits of one command, and which one stopped it.
pub struct Limits {
    max_time: Option<Duration>,
    max_filesize: Option<u64>,
    cancel: Cancel,
    passed: Arc<AtomicU8>,
}

impl Limits {
    /// Starts the deadline's timer, if there is one; `cancel` stops the
    /// download when a limit is passed.
    pub fn start(max_time: Option<Duration>, max_filesize: Option<u64>, cancel: Cancel) -> Limits {
        let passed = Arc::new(AtomicU8::new(NONE));
        if let Some(deadline) = max_time {
            let (passed, cancel) = (Arc::clone(&passed), cancel.clone());
            // Not joined: the process ends with the command, and a timer
            // that cannot start leaves the command without a deadline
            // rather than failing it.
            let _ = std::thread::Builder::new()
                .name("max-time".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    // One sleep for the whole deadline: one wake-up.
                    std::thread::sleep(deadline);
                    let _ = passed.compare_exchange(NONE, TIME, Ordering::SeqCst, Ordering::SeqCst);
                    cancel.cancel();
                });
        }
        Limits {
            max_time,
            max_filesize,
            cancel,
            passed,
        }
    }

    /// Stops the download when `progress` shows it larger than
    /// `--max-filesize`: the length the server announced, or the bytes
    /// received of a body of no announced length.
    pub fn check(&self, progress: &Progress) {
        let Some(max) = self.max_filesize else {
            return;
        };
        if progress.done > max || progress.total.is_some_and(|total| total > max) {
            let _ = self
                .passed
                .compare_exchange(NONE, SIZE, Ordering::SeqCst, Ordering::SeqCst);
            self.cancel.cancel();
        }
    }

    /// `err`, or, when a limit stopped the download, the error saying
    /// which.
    pub fn explain(&self, err: Error) -> Error {
        if err.kind() != ErrorKind::Cancelled {
            return err;
        }
        match (
            self.passed.load(Ordering::SeqCst),
            self.max_time,
            self.max_filesize,
        ) {
            (TIME, Some(time), _) => Error::new(
                ErrorKind::Network,
                format!(
                    "--max-time {}: the download did not end in time; stopped",
                    seconds(time)
                ),
            ),
            (SIZE, _, Some(size)) => Error::new(
                ErrorKind::Limit,
                format!(
                    "--max-filesize {}: the file is larger; stopped",
                    human(size)
                ),
            ),
            _ => err,
        }
    }
}

/// `2.5 s`, `30 s`: a duration as given, to the millisecond.
fn seconds(duration: Duration) -> String {
    let millis = format!("{:03}", duration.subsec_millis());
    match millis.trim_end_matches('0') {
        "" => format!("{} s", duration.as_secs()),
        fraction => format!("{}.{fraction} s", duration.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_said_as_given() {
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_millis(10_050)), "10.05 s");
    }
}
