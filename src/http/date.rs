//! HTTP dates (RFC 9110 section 5.6.7) as seconds since the Unix epoch:
//! written as IMF-fixdates (`Sun, 06 Nov 1994 08:49:37 GMT`), read in that
//! form and the two obsolete ones.
//!
//! Owns formatting `Date` and `Last-Modified` (for `serve`), and reading
//! the date form of `If-Range` (`serve`) and of `Retry-After` (the client).
//! Either reader has a safe answer to a date it cannot read: an `If-Range`
//! that never matches gets the whole file, and a `Retry-After` unread
//! leaves the ordinary backoff.

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const LONG_DAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `secs` after the epoch as an IMF-fixdate.
pub fn format(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Reads an HTTP date in any of its three forms: the IMF-fixdate, and the
/// obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`) forms that RFC 9110 still has recipients
/// accept. `None` for anything else, a date before 1970 or one that does
/// not exist (`31 Feb`).
pub fn parse(text: &str) -> Option<u64> {
    let text = text.trim();
    let (year, month, day, time) = imf_fixdate(text)
        .or_else(|| rfc850(text))
        .or_else(|| asctime(text))?;
    let (hour, minute, second) = clock(time)?;
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    if year < 1970 || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year as i64, month, day as i64);
    if civil_from_days(days) != (year as i64, month, day as i64) {
        return None;
    }
    Some(days as u64 * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The parts of a date: year, month name, day of the month, `HH:MM:SS`.
type Parts<'a> = (u64, &'a str, u64, &'a str);

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn imf_fixdate(text: &str) -> Option<Parts<'_>> {
    let (name, rest) = text.split_once(", ")?;
    let [day, month, year, time, "GMT"] = words(rest)[..] else {
        return None;
    };
    DAYS.contains(&name).then_some(())?;
    Some((digits(year, 4)?, month, digits(day, 2)?, time))
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`: a two-digit year is taken as 1970-2069.
fn rfc850(text: &str) -> Option<Parts<'_>> {
    let (name, rest) = text.split_once(", ")?;
    let [date, time, "GMT"] = words(rest)[..] else {
        return None;
    };
    let [day, month, year] = date.split('-').collect::<Vec<_>>()[..] else {
        return None;
    };
    LONG_DAYS.contains(&name).then_some(())?;
    let year = digits(year, 2)?;
    let year = if year < 70 { 2000 + year } else { 1900 + year };
    Some((year, month, digits(day, 2)?, time))
}

/// `Sun Nov  6 08:49:37 1994`
fn asctime(text: &str) -> Option<Parts<'_>> {
    let [name, month, day, time, year] = words(text)[..] else {
        return None;
    };
    DAYS.contains(&name).then_some(())?;
    let day = digits(day, 2).or_else(|| digits(day, 1))?;
    Some((digits(year, 4)?, month, day, time))
}

/// `HH:MM:SS`
fn clock(time: &str) -> Option<(u64, u64, u64)> {
    let mut parts = time.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((digits(h, 2)?, digits(m, 2)?, digits(s, 2)?))
}

/// Exactly `n` ASCII digits.
fn digits(text: &str, n: usize) -> Option<u64> {
    (text.len() == n && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.bytes().fold(0, |v, d| v * 10 + u64::from(d - b'0')))
}

/// The words between spaces (asctime pads a one-digit day with a second
/// space).
fn words(text: &str) -> Vec<&str> {
    text.split(' ').filter(|w| !w.is_empty()).collect()
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a date.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The inverse of [`civil_from_days`].
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_rfc_example_and_the_epoch() {
        assert_eq!(format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn parse_inverts_format() {
        for secs in [0, 784_111_777, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse(&format(secs)), Some(secs), "{}", format(secs));
        }
    }

    #[test]
    fn the_obsolete_forms_are_read_too() {
        let rfc_example = Some(784_111_777);
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), rfc_example);
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), rfc_example);
        assert_eq!(parse("Sun Nov 06 08:49:37 1994"), rfc_example);
        assert_eq!(
            parse("Monday, 30-Nov-26 00:37:01 GMT"),
            parse("Mon, 30 Nov 2026 00:37:01 GMT")
        );
    }

    #[test]
    fn other_forms_and_dates_that_do_not_exist_are_not_read() {
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Thu, 31 Feb 2030 08:49:37 GMT",
            "Thu, 00 Jan 2030 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov 123 08:49:37 1994",
            "\"an-etag\"",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
