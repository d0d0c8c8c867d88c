//! The terminal's width, for the progress line.
//!
//! Asking the terminal itself (`ioctl(TIOCGWINSZ)`) takes unsafe code,
//! which this crate forbids, so `stty size` asks it: once at the start, and
//! again after each resize (`SIGWINCH`, caught with the `ctrl-c` feature's
//! signal-hook), so that a redraw costs no process. `COLUMNS`, when it
//! holds a number, comes first, as in curl.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The width assumed when nothing tells it.
pub const DEFAULT_WIDTH: usize = 80;

/// The width of the terminal on standard error, kept up to date.
pub struct Width {
    columns: usize,
    /// Set by `SIGWINCH`: the width is asked again at the next redraw.
    resized: Arc<AtomicBool>,
}

impl Width {
    /// The width now, and a watch on resizes.
    pub fn of_terminal() -> Width {
        let resized = Arc::new(AtomicBool::new(false));
        #[cfg(feature = "ctrl-c")]
        let _ = signal_hook::flag::register(signal_hook::consts::SIGWINCH, Arc::clone(&resized));
        Width {
            columns: ask(),
            resized,
        }
    }

    /// The width in columns, asked again if the terminal was resized.
    pub fn columns(&mut self) -> usize {
        if self.resized.swap(false, Ordering::SeqCst) {
            self.columns = ask();
        }
        self.columns
    }
}

/// `COLUMNS`, else `stty size` of the controlling terminal, else
/// [`DEFAULT_WIDTH`].
fn ask() -> usize {
    let from_env = std::env::var("COLUMNS").ok().and_then(|c| columns_of(&c));
    from_env
        .or_else(|| stty_size().and_then(|size| columns_of(size.split_whitespace().nth(1)?)))
        .unwrap_or(DEFAULT_WIDTH)
}

/// What `stty size` prints for the controlling terminal: `ROWS COLUMNS`.
fn stty_size() -> Option<String> {
    let tty = std::fs::File::open("/dev/tty").ok()?;
    let output = std::process::Command::new("stty")
        .arg("size")
        .stdin(tty)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A width from text: a positive number, blanks around it allowed.
fn columns_of(text: &str) -> Option<usize> {
    text.trim().parse::<usize>().ok().filter(|&c| c > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_width_is_a_positive_number() {
        assert_eq!(columns_of("132"), Some(132));
        assert_eq!(columns_of(" 40 "), Some(40));
        for unusable in ["", "0", "-5", "wide", "80x24"] {
            assert_eq!(columns_of(unusable), None, "{unusable:?}");
        }
    }
}
