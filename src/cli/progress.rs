//! The progress line on standard error.
//!
//! Owns when to draw (at most ten times a second on a terminal, rewritten in
//! place; one plain line every few seconds elsewhere, when asked) and what a
//! line says: bytes, total and percent when known, the rate over the last
//! few seconds (so it follows a link that speeds up or slows down), time
//! left at that rate.

use std::io::Write;
use std::time::{Duration, Instant};

/// How often a terminal line is redrawn at most.
const TERMINAL_INTERVAL: Duration = Duration::from_millis(100);

/// How often a line is printed when standard error is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(3);

/// The rate shown is measured over about this long.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// How the progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing.
    Off,
    /// One line rewritten in place with `\r`.
    Terminal,
    /// A new line every few seconds, for logs.
    Log,
}

/// Counts bytes and draws the line.
pub struct Progress {
    mode: Mode,
    started: Instant,
    last_draw: Instant,
    bytes: u64,
    /// Bytes already there when this run started (a resumed download):
    /// counted as done, not in the rate.
    skipped: u64,
    /// (when, bytes) at recent draws, oldest first, for the rate.
    samples: std::collections::VecDeque<(Instant, u64)>,
    total: Option<u64>,
    parts: Option<u64>,
    files: Option<u64>,
    /// Pieces or parts being fetched at once, and sources in use.
    activity: Option<(usize, Option<usize>)>,
    width: usize,
}

impl Progress {
    /// A progress display in `mode`.
    pub fn new(mode: Mode) -> Progress {
        let now = Instant::now();
        Progress {
            mode,
            started: now,
            last_draw: now,
            bytes: 0,
            skipped: 0,
            samples: std::collections::VecDeque::new(),
            total: None,
            parts: None,
            files: None,
            activity: None,
            width: 0,
        }
    }

    /// Sets the expected total, when the server announced one.
    pub fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
    }

    /// Sets the number of manifest parts done.
    pub fn set_parts(&mut self, parts: u64) {
        self.parts = Some(parts);
    }

    /// Sets what runs in parallel now (see `Stream::activity`).
    pub fn set_activity(&mut self, activity: Option<(usize, Option<usize>)>) {
        self.activity = activity;
    }

    /// Sets the number of sequence files written.
    pub fn set_files(&mut self, files: u64) {
        self.files = Some(files);
    }

    /// Counts `n` bytes that an earlier run received (a resumed download).
    pub fn skip(&mut self, n: u64) {
        self.bytes += n;
        self.skipped += n;
    }

    /// Counts bytes up to `done` in all (for a download that knows its
    /// total rather than each chunk).
    pub fn reach(&mut self, done: u64) {
        let n = done.saturating_sub(self.bytes);
        self.add(n as usize);
    }

    /// Adds `n` received bytes, redrawing when it is time.
    pub fn add(&mut self, n: usize) {
        self.bytes += n as u64;
        if self.mode == Mode::Off {
            return;
        }
        let interval = match self.mode {
            Mode::Terminal => TERMINAL_INTERVAL,
            _ => LOG_INTERVAL,
        };
        let now = Instant::now();
        if now.duration_since(self.last_draw) >= interval {
            self.last_draw = now;
            self.draw(false);
        }
    }

    /// Draws the final line and ends it.
    pub fn finish(&mut self) {
        if self.mode != Mode::Off {
            self.draw(true);
        }
    }

    /// Clears a terminal line before an error message is printed.
    pub fn clear(&mut self) {
        if self.mode == Mode::Terminal && self.width > 0 {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(self.width));
            self.width = 0;
        }
    }

    fn draw(&mut self, last: bool) {
        // Integer arithmetic throughout: floats would add 20 KB to the binary.
        let now = Instant::now();
        let elapsed_ms = self.started.elapsed().as_millis().max(1);
        let received = self.bytes - self.skipped;
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let (since, base) = self
            .samples
            .front()
            .copied()
            .unwrap_or((self.started, self.skipped));
        let rate = if last {
            (u128::from(received) * 1000 / elapsed_ms) as u64
        } else {
            let window_ms = now.duration_since(since).as_millis().max(1);
            (u128::from(self.bytes - base) * 1000 / window_ms) as u64
        };
        self.samples.push_back((now, self.bytes));
        let mut line = human(self.bytes).to_string();
        if let Some(total) = self.total {
            let percent = (u128::from(self.bytes) * 100 / u128::from(total.max(1))).min(100);
            line.push_str(&format!(" / {} {percent:3}%", human(total)));
        }
        line.push_str(&format!("  {}/s", human(rate)));
        if let Some(parts) = self.parts {
            line.push_str(&format!("  parts {parts}"));
        }
        if !last {
            match self.activity {
                Some((fetching, Some(sources))) => {
                    line.push_str(&format!("  {fetching} conn, {sources} src"));
                }
                Some((ahead, None)) if ahead > 0 => line.push_str(&format!("  {ahead} ahead")),
                _ => {}
            }
        }
        if let Some(files) = self.files {
            line.push_str(&format!("  files {files}"));
        }
        if last {
            line.push_str(&format!(
                "  in {}",
                clock(((elapsed_ms + 500) / 1000) as u64)
            ));
        } else if let Some(total) = self.total {
            if rate > 0 && total > self.bytes {
                line.push_str(&format!(
                    "  ETA {}",
                    clock((total - self.bytes).div_ceil(rate))
                ));
            }
        }
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            Mode::Terminal => {
                let pad = self.width.saturating_sub(line.len());
                self.width = line.len();
                write!(
                    err,
                    "\r{line}{}{}",
                    " ".repeat(pad),
                    if last { "\n" } else { "" }
                )
            }
            _ => writeln!(err, "{line}"),
        };
        let _ = err.flush();
    }
}

/// `12.3 MiB`
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while unit < UNITS.len() - 1 && bytes >> (10 * unit) >= 1024 {
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    let scale = 1u128 << (10 * unit);
    let tenths = (u128::from(bytes) * 10 + scale / 2) / scale;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// `1:02:03` or `2:03`
fn clock(s: u64) -> String {
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_like_a_person_writes_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(64 << 20), "64.0 MiB");
        assert_eq!(human(1023 << 20), "1023.0 MiB");
        assert_eq!(human((1 << 30) - 1), "1024.0 MiB");
        assert_eq!(clock(65), "1:05");
        assert_eq!(clock(3725), "1:02:05");
    }
}
