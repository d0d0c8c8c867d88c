//! `Retry-After`: how long a busy server (429, 503) asks a client to wait,
//! in seconds or as an HTTP date, capped so that no server can hold a
//! download for long.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::Response;

/// The longest `Retry-After` honoured; a server asking for more is
/// dropped as a source rather than waited for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `Retry-After` on a 429 or 503, at most [`MAX_RETRY_AFTER`]: seconds, or
/// an HTTP date (the time until then by this machine's clock; a date
/// passed is no wait). A value that is neither leaves the ordinary backoff.
pub fn retry_after(response: &Response) -> Option<Duration> {
    if !matches!(response.status(), 429 | 503) {
        return None;
    }
    retry_after_value(response.header("retry-after")?, SystemTime::now())
}

/// How long `value`, a `Retry-After`, asks to wait at `now`.
fn retry_after_value(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than a u64 holds is still "a long time".
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let then = UNIX_EPOCH + Duration::from_secs(crate::http::date::parse(value)?);
        then.duration_since(now).unwrap_or_default()
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_within_the_cap() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let read = |value| retry_after_value(value, now);
        assert_eq!(read("7"), Some(Duration::from_secs(7)));
        assert_eq!(read(" 0 "), Some(Duration::ZERO));
        assert_eq!(read("99999999999999999999999"), Some(MAX_RETRY_AFTER));
        // The RFC's example date is `now`; dates after it are waits.
        assert_eq!(read("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(
            read("Sun, 06 Nov 1994 08:49:49 GMT"),
            Some(Duration::from_secs(12))
        );
        assert_eq!(read("Sun, 06 Nov 1994 08:40:00 GMT"), Some(Duration::ZERO));
        assert_eq!(read("Mon, 07 Nov 1994 08:49:37 GMT"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            read("Sunday, 06-Nov-94 08:49:49 GMT"),
            Some(Duration::from_secs(12))
        );
        for unread in ["", "-1", "1.5", "soon", "Thu, 31 Feb 1994 08:49:49 GMT"] {
            assert_eq!(read(unread), None, "{unread:?}");
        }
    }
}
