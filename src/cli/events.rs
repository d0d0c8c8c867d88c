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
/// `clear` first erases the progress line on a terminal. The heads of
/// requests and responses are shown only when `verbose`, whatever `quiet`
/// says.
pub fn say(event: &Event, quiet: bool, verbose: bool, clear: bool) {
    let clear = if clear { "\r\x1b[K" } else { "" };
    match event {
        Event::RequestSent { head } if verbose => say!("{clear}{}", prefixed("> ", head)),
        Event::ResponseReceived { head } if verbose => say!("{clear}{}", prefixed("< ", head)),
        Event::RequestSent { .. } | Event::ResponseReceived { .. } => {}
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

/// A head as curl -v shows it: each line after `prefix`, the empty line
/// that ends the head included, in one string so that the heads of
/// requests running at once are not mixed line by line. A control
/// character a server sent is escaped, not passed to the terminal.
fn prefixed(prefix: &str, head: &str) -> String {
    let lines: Vec<String> = head
        .strip_suffix("\r\n")
        .unwrap_or(head)
        .split("\r\n")
        .map(|line| {
            let shown: String = line.chars().flat_map(char::escape_default).collect();
            let shown = match line.chars().any(char::is_control) {
                true => shown,
                false => line.to_owned(),
            };
            format!("{prefix}{shown}")
        })
        .collect();
    lines.join("\n")
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
    let from_pin = d.pinned_public_keys.iter().any(|value| {
        err.subject()
            .is_some_and(|subject| subject == value || value.split(';').any(|pin| pin == subject))
    });
    if from_cacert {
        text.push_str(" (given with --cacert)");
    } else if from_pin {
        text.push_str(" (given with --pinnedpubkey)");
    } else if unknown_issuer(err) {
        text.push_str("; --cacert FILE trusts a private CA, or the server's own certificate");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_shown_line_by_line_as_curl_shows_it() {
        let head = "GET /f HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(prefixed("> ", head), "> GET /f HTTP/1.1\n> Host: h\n> ");
        let sneaky = "HTTP/1.1 200 OK\r\nX: a\x1b[2J\r\n\r\n";
        assert_eq!(
            prefixed("< ", sneaky),
            "< HTTP/1.1 200 OK\n< X: a\\u{1b}[2J\n< "
        );
    }
}
