//! The lines the command prints for the library's events and errors.
//!
//! Owns which events a person sees (warnings always, even with `--quiet`:
//! a doubt about the data, or a tracker's warning message, is not progress
//! output; news of retries, of a download resumed, of a tracker that
//! failed and of trackers asked again unless `--quiet`: public torrents list dead trackers, and
//! the others carry on), and the hints that name the command's own
//! options, which the library's text leaves out (found from the events'
//! and errors' types, never from their words).

use partfetch::Event;

use crate::cli::progress::human;

/// Prints `event` on standard error, unless `quiet` and it is only news;
/// `clear` first erases the progress line on a terminal.
pub fn say(event: &Event, quiet: bool, clear: bool) {
    let clear = if clear { "\r\x1b[K" } else { "" };
    match event {
        Event::StartingOver { .. } => say!("{clear}partfetch: {event}"),
        _ if event.is_warning() => say!("{clear}partfetch: warning: {event}{}", hint(event)),
        _ if quiet => {}
        // Once, before the progress line goes on from there.
        Event::Resumed {
            path,
            offset,
            length,
        } => {
            let of = length.map(|n| format!(" of {}", human(n)));
            say!(
                "{clear}partfetch: resuming {} at {}{}",
                path.display(),
                human(*offset),
                of.unwrap_or_default()
            );
        }
        // News, `TrackerFailed` and `NoTrackerAnswered` among them.
        _ => say!("{clear}partfetch: {event}"),
    }
}

/// What the command adds to an event's sentence.
fn hint(event: &Event) -> &'static str {
    match event {
        Event::CheckedByLengthOnly { .. } => " (--checksum would catch another file)",
        _ => "",
    }
}

/// `err` as the command prints it: the library's sentence, with the
/// command's own options named where they are the way out.
pub fn describe(err: &partfetch::Error, d: &crate::cli::args::Download) -> String {
    let mut text = err.to_string();
    let from_cacert = d
        .cacert
        .iter()
        .any(|path| err.subject() == Some(&path.display().to_string()[..]));
    if from_cacert {
        text.push_str(" (given with --cacert)");
    } else if unknown_issuer(err) {
        text.push_str("; --cacert FILE trusts a private CA");
    }
    text
}

/// Whether `err` is a server certificate signed by no authority trusted.
#[cfg(feature = "tls")]
fn unknown_issuer(err: &partfetch::Error) -> bool {
    let io = std::error::Error::source(err).and_then(|s| s.downcast_ref::<std::io::Error>());
    let tls = io
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    matches!(
        tls,
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        ))
    )
}

#[cfg(not(feature = "tls"))]
fn unknown_issuer(_err: &partfetch::Error) -> bool {
    false
}
