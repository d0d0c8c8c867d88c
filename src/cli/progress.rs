//! The progress line on standard error.
//!
//! Owns when to draw (each time the library reports on a terminal, at most
//! ten times a second, rewritten in place; one plain line every few
//! seconds elsewhere, when asked) and what a line says: bytes, total and
//! percent when known, the rate, what runs in parallel, time left; at the
//! end, the time taken; and, on a terminal, fitting that line to its width
//! by dropping the fields that matter least (`terminal.rs` tells the
//! width). The figures are the library's
//! ([`partfetch::Progress`]).

use std::io::Write;
use std::time::{Duration, Instant};

use partfetch::Progress;

use super::terminal::Width;

/// `12.3 MiB`
pub use partfetch::human_size as human;

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
    /// The terminal's width, asked at the first redraw.
    terminal: Option<Width>,
}

impl Line {
    /// A progress display in `mode`.
    pub fn new(mode: Mode) -> Line {
        Line {
            mode,
            last_draw: None,
            last: None,
            width: 0,
            terminal: None,
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
            let line = self.line(progress);
            self.draw(&line, false);
        }
    }

    /// Draws the final line and ends it.
    pub fn finish(&mut self) {
        if let Some(last) = self.last.take() {
            let line = self.line(&last);
            self.draw(&line, true);
        }
    }

    /// The line for `progress`: on a terminal, within its width, read
    /// again at each redraw; in a log, whole.
    fn line(&mut self, progress: &Progress) -> String {
        match self.mode {
            Mode::Terminal => {
                let columns = self
                    .terminal
                    .get_or_insert_with(Width::of_terminal)
                    .columns();
                render_within(progress, columns)
            }
            _ => render(progress),
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
                let columns = line.chars().count();
                let pad = self.width.saturating_sub(columns);
                self.width = columns;
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

/// How much a field of the line matters: when the line is too wide, the
/// fields that matter least go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Weight {
    /// What runs in parallel: connections, sources, parts ahead.
    Detail,
    /// Counts of parts and files, the peers of a torrent.
    Count,
    /// What a torrent uploaded, and its ratio.
    Upload,
    /// The rate, and the time left or taken.
    Rate,
    /// Bytes done, of how many, and the percentage: never dropped, only
    /// cut when nothing else is left.
    Done,
}

/// The line for `p`, as wide as it comes.
fn render(p: &Progress) -> String {
    join(&fields(p))
}

/// The line for `p` in at most `width` columns (one fewer than the
/// terminal's: text in the last column makes some terminals wrap):
/// the least important fields dropped first, the rest cut, never wrapped.
fn render_within(p: &Progress, width: usize) -> String {
    let max = width.saturating_sub(1).max(1);
    let mut fields = fields(p);
    while join(&fields).chars().count() > max {
        // The least important; of those, the last.
        let Some(at) = (0..fields.len())
            .rev()
            .filter(|&i| fields[i].0 != Weight::Done)
            .min_by_key(|&i| fields[i].0)
        else {
            break;
        };
        fields.remove(at);
    }
    join(&fields).chars().take(max).collect()
}

fn join(fields: &[(Weight, String)]) -> String {
    let texts: Vec<&str> = fields.iter().map(|(_, text)| text.as_str()).collect();
    texts.join("  ")
}

/// The fields of the line for `p`, in the order shown, with their weight.
// Integer arithmetic throughout: floats would add 20 KB to the binary.
fn fields(p: &Progress) -> Vec<(Weight, String)> {
    let mut fields = Vec::new();
    let mut done = human(p.done).to_string();
    if let Some(total) = p.total {
        let percent = (u128::from(p.done) * 100 / u128::from(total.max(1))).min(100);
        done.push_str(&format!(" / {} {percent:3}%", human(total)));
    }
    fields.push((Weight::Done, done));
    if p.seeding && !p.finished {
        fields.push((Weight::Rate, "seeding".to_owned()));
    } else {
        fields.push((Weight::Rate, format!("{}/s", human(p.rate))));
    }
    if let Some(uploaded) = p.uploaded.filter(|&u| u > 0 || p.seeding) {
        let mut up = format!("up {}", human(uploaded));
        if !p.finished {
            up.push_str(&format!(" {}/s", human(p.upload_rate)));
        }
        fields.push((Weight::Upload, up));
        if p.seeding {
            // Uploaded ÷ the torrent's length, in hundredths.
            let hundredths = u128::from(uploaded) * 100 / u128::from(p.total.unwrap_or(0).max(1));
            fields.push((
                Weight::Upload,
                format!("ratio {}.{:02}", hundredths / 100, hundredths % 100),
            ));
        }
    }
    if let Some(parts) = p.parts {
        fields.push((Weight::Count, format!("parts {parts}")));
    }
    if !p.finished {
        match (p.fetching, p.sources) {
            (Some(fetching), Some(sources)) => {
                fields.push((Weight::Detail, format!("{fetching} conn, {sources} src")));
            }
            (Some(ahead), None) if ahead > 0 => {
                fields.push((Weight::Detail, format!("{ahead} ahead")))
            }
            _ => {}
        }
    }
    if let Some(files) = p.files {
        fields.push((Weight::Count, format!("files {files}")));
    }
    if let (Some(peers), false) = (p.peers, p.finished) {
        fields.push((
            Weight::Count,
            format!(
                "peers {}/{} ({} seeds)",
                peers.connected, peers.known, peers.seeds
            ),
        ));
    }
    if p.finished {
        let seconds = (p.elapsed.as_millis() + 500) / 1000;
        fields.push((Weight::Rate, format!("in {}", clock(seconds as u64))));
    } else if let Some(eta) = p.eta().filter(|_| !p.seeding) {
        fields.push((Weight::Rate, format!("ETA {}", clock(eta.as_secs()))));
    }
    fields
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
    fn times_read_like_a_person_writes_them() {
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

    fn busy_download() -> Progress {
        let mut p = Progress::default();
        p.total = Some(200 << 20);
        p.done = 50 << 20;
        p.rate = 10 << 20;
        p.elapsed = Duration::from_secs(5);
        p.parts = Some(12);
        p.fetching = Some(4);
        p.sources = Some(2);
        p.files = Some(3);
        p
    }

    #[test]
    fn a_line_wider_than_the_terminal_drops_the_least_important_fields_first() {
        let p = busy_download();
        let whole = render(&p);
        assert_eq!(render_within(&p, 200), whole);
        assert!(whole.contains("4 conn, 2 src") && whole.contains("parts 12"));
        let narrow = render_within(&p, 60);
        assert!(narrow.chars().count() < 60, "{narrow}");
        assert!(!narrow.contains("conn"), "the detail goes first: {narrow}");
        assert!(
            narrow.starts_with("50.0 MiB / 200.0 MiB  25%  10.0 MiB/s"),
            "{narrow}"
        );
        assert!(narrow.contains("ETA "), "{narrow}");
        let narrower = render_within(&p, 40);
        assert!(narrower.chars().count() < 40, "{narrower}");
        assert!(!narrower.contains("parts") && !narrower.contains("files"));
        assert!(narrower.contains("10.0 MiB/s"), "{narrower}");
        let tiny = render_within(&p, 12);
        assert_eq!(tiny, "50.0 MiB / ", "cut, never wrapped");
    }
}
