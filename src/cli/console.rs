//! Lines for people: messages on standard error, reports on standard
//! output.
//!
//! Owns what happens when the reader of either has gone (`2>&1 | head`,
//! `partfetch demo | head`): `eprintln!` and `println!` panic on a closed
//! stream, which aborts a download over a message about it. A message that
//! cannot be written is dropped ([`say!`]); a report whose reader has gone
//! ends the program quietly, with status 0 ([`show!`]), as the download
//! itself does when standard output closes.

/// Writes a line to standard error, dropping it if standard error is
/// closed.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Writes to standard output (a line with `show!`, as it is with
/// `show!(@ ...)`); if its reader has gone, exits with status 0.
macro_rules! show {
    (@ $($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if write!(out, $($arg)*).and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    }};
    ($($arg:tt)*) => {
        show!(@ "{}\n", format_args!($($arg)*))
    };
}
