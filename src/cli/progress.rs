//! The progress line on standard error.
//!
//! Owns when to draw (each time the library reports on a terminal, at most
//! ten times a second, rewritten in place; one plain line every few
//! seconds elsewhere, when asked) and what a line says: bytes, total and
//! percent when known, the rate, what runs in parallel, time left; at the
//! end, the time taken. The figures are the library's
//! ([`partfetch::Progress`]).

use std::io::Write;
use std::time::{Duration, Instant};

use partfetch::Progress;

/// How often a line is printed when standard error is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(3);

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

/// Draws the line from the library's reports.
pub struct Line {
    mode: Mode,
    last_draw: Option<Instant>,
    /// The report that ended the download: drawn by [`Line::finish`] once
    /// it is known to have succeeded.
    last: Option<Progress>,
    width: usize,
}

impl Line {
    /// A progress display in `mode`.
    pub fn new(mode: Mode) -> Line {
        Line {
            mode,
            last_draw: None,
            last: None,
            width: 0,
        }
    }

    /// Takes a report, redrawing when it is time.
    pub fn show(&mut self, progress: &Progress) {
        if self.mode == Mode::Off {
            return;
        }
        if progress.finished {
            self.last = Some(progress.clone());
            return;
        }
        let due = match self.mode {
            Mode::Log => self.last_draw.is_none_or(|at| at.elapsed() >= LOG_INTERVAL),
            _ => true,
        };
        if due {
            self.last_draw = Some(Instant::now());
            self.draw(&render(progress), false);
        }
    }

    /// Draws the final line and ends it.
    pub fn finish(&mut self) {
        if let Some(last) = self.last.take() {
            self.draw(&render(&last), true);
        }
    }

    /// Clears a terminal line before an error message is printed.
    pub fn clear(&mut self) {
        if self.mode == Mode::Terminal && self.width > 0 {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(self.width));
            self.width = 0;
        }
    }

    fn draw(&mut self, line: &str, last: bool) {
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

/// The line for `p`.
// Integer arithmetic throughout: floats would add 20 KB to the binary.
fn render(p: &Progress) -> String {
    let mut line = human(p.done).to_string();
    if let Some(total) = p.total {
        let percent = (u128::from(p.done) * 100 / u128::from(total.max(1))).min(100);
        line.push_str(&format!(" / {} {percent:3}%", human(total)));
    }
    if p.seeding && !p.finished {
        line.push_str("  seeding");
    } else {
        line.push_str(&format!("  {}/s", human(p.rate)));
    }
    if let Some(uploaded) = p.uploaded.filter(|&u| u > 0 || p.seeding) {
        line.push_str(&format!("  up {}", human(uploaded)));
        if !p.finished {
            line.push_str(&format!(" {}/s", human(p.upload_rate)));
        }
        if p.seeding {
            // Uploaded ÷ the torrent's length, in hundredths.
            let hundredths = u128::from(uploaded) * 100 / u128::from(p.total.unwrap_or(0).max(1));
            line.push_str(&format!(
                "  ratio {}.{:02}",
                hundredths / 100,
                hundredths % 100
            ));
        }
    }
    if let Some(parts) = p.parts {
        line.push_str(&format!("  parts {parts}"));
    }
    if !p.finished {
        match (p.fetching, p.sources) {
            (Some(fetching), Some(sources)) => {
                line.push_str(&format!("  {fetching} conn, {sources} src"));
            }
            (Some(ahead), None) if ahead > 0 => line.push_str(&format!("  {ahead} ahead")),
            _ => {}
        }
    }
    if let Some(files) = p.files {
        line.push_str(&format!("  files {files}"));
    }
    if let (Some(peers), false) = (p.peers, p.finished) {
        line.push_str(&format!(
            "  peers {}/{} ({} seeds)",
            peers.connected, peers.known, peers.seeds
        ));
    }
    if p.finished {
        let seconds = (p.elapsed.as_millis() + 500) / 1000;
        line.push_str(&format!("  in {}", clock(seconds as u64)));
    } else if let Some(eta) = p.eta().filter(|_| !p.seeding) {
        line.push_str(&format!("  ETA {}", clock(eta.as_secs())));
    }
    line
}

/// The line that closes a download unless `--quiet`, on a terminal or
/// not: `big.iso done: 200.0 MiB in 12.3 s (16.2 MiB/s)`. The rate is this
/// run's mean; a resumed download says how much this run fetched.
pub fn summary(name: &str, bytes: u64, resumed_from: u64, elapsed: Duration) -> String {
    let fetched = bytes.saturating_sub(resumed_from);
    let millis = elapsed.as_millis().max(1);
    let rate = (u128::from(fetched) * 1000 / millis).min(u128::from(u64::MAX)) as u64;
    let time = match millis {
        // Tenths of a second, rounded.
        0..60_000 => {
            let tenths = (millis + 50) / 100;
            format!("{}.{} s", tenths / 10, tenths % 10)
        }
        _ => clock(elapsed.as_secs()),
    };
    let size = match resumed_from {
        0 => human(bytes),
        _ => format!("{} ({} of it this run)", human(bytes), human(fetched)),
    };
    format!("{name} done: {size} in {time} ({}/s)", human(rate))
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

    #[test]
    fn the_summary_names_the_file_its_size_time_and_mean_rate() {
        assert_eq!(
            summary("big.iso", 200 << 20, 0, Duration::from_millis(12_500)),
            "big.iso done: 200.0 MiB in 12.5 s (16.0 MiB/s)"
        );
        assert_eq!(
            summary("big.iso", 200 << 20, 100 << 20, Duration::from_secs(65)),
            "big.iso done: 200.0 MiB (100.0 MiB of it this run) in 1:05 (1.5 MiB/s)"
        );
        assert_eq!(
            summary("-", 5, 0, Duration::ZERO),
            "- done: 5 B in 0.0 s (4.9 KiB/s)"
        );
    }

    #[test]
    fn a_seeding_torrent_shows_its_upload_rate_and_ratio_not_a_download_rate() {
        let mut p = Progress::default();
        p.total = Some(200 << 20);
        p.done = 200 << 20;
        p.rate = 7;
        p.uploaded = Some(300 << 20);
        p.upload_rate = 5 << 20;
        p.seeding = true;
        p.peers = Some(partfetch::PeerCounts {
            connected: 3,
            known: 5,
            seeds: 0,
        });
        let line = render(&p);
        assert!(
            line.contains("seeding  up 300.0 MiB 5.0 MiB/s  ratio 1.50"),
            "{line}"
        );
        assert!(line.contains("peers 3/5 (0 seeds)"), "{line}");
        assert!(!line.contains("7 B/s"), "{line}");
    }
}
