//! The lines the command prints for the library's events.
//!
//! Owns which events a person sees (warnings always, even with `--quiet`:
//! a doubt about the data is not progress output; news of retries unless
//! `--quiet`), and the hints that name the command's own options, which
//! the library's text leaves out.

use partfetch::Event;

/// Prints `event` on standard error, unless `quiet` and it is only news;
/// `clear` first erases the progress line on a terminal.
pub fn say(event: &Event, quiet: bool, clear: bool) {
    let clear = if clear { "\r\x1b[K" } else { "" };
    match event {
        Event::StartingOver { .. } => say!("{clear}partfetch: {event}"),
        _ if event.is_warning() => say!("{clear}partfetch: warning: {event}{}", hint(event)),
        // Told by the progress line and the file itself.
        Event::Resumed { .. } => {}
        _ if quiet => {}
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
