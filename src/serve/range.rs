//! `Range` and `If-Range` (RFC 9110 sections 14.2 and 13.1.5): which bytes
//! of a representation of known length a GET is answered with.
//!
//! Pure functions over header bytes, so every edge case is tested without a
//! socket. What this server answers:
//!
//! | request | answer |
//! |---|---|
//! | no `Range`, or one that does not parse, or a unit other than `bytes` | 200, the whole file |
//! | one satisfiable range (`a-b`, `a-`, `-n`) | 206 with `Content-Range` |
//! | one unsatisfiable range (`a` at or past the end, `-0`, any range of an empty file) | 416 with `Content-Range: bytes */LEN` |
//! | several ranges, at least one satisfiable | 200, the whole file (no `multipart/byteranges`) |
//! | several ranges, none satisfiable | 416 |
//! | `If-Range` that does not match the file's `ETag` or `Last-Modified` | 200, the whole file |
//!
//! Ignoring a `Range` is always allowed (RFC 9110 14.2); sending the whole
//! file instead of a multipart body keeps clients that asked for several
//! ranges correct at the price of bytes they did not ask for.

/// An inclusive byte span `start..=end` of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first byte.
    pub start: u64,
    /// The last byte (inclusive, as in `Content-Range`).
    pub end: u64,
}

impl Span {
    /// The number of bytes in the span.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// How a GET is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the whole file.
    Full,
    /// 206 with one span.
    Partial(Span),
    /// 416: no requested range overlaps the file.
    Unsatisfiable,
}

/// One parsed `range-spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `a-b` or `a-` (`end` = `None`).
    From { start: u64, end: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

/// Decides the answer to a `Range` header value for a file of `len` bytes.
pub fn decide(range: &[u8], len: u64) -> Answer {
    let Some(specs) = parse(range) else {
        return Answer::Full;
    };
    let mut satisfiable = specs.iter().filter_map(|s| span(*s, len));
    match (satisfiable.next(), specs.len()) {
        (None, _) => Answer::Unsatisfiable,
        (Some(span), 1) => Answer::Partial(span),
        (Some(_), _) => Answer::Full,
    }
}

/// Whether an `If-Range` value lets the `Range` apply: an entity tag equal
/// (strong comparison) to `etag`, or an IMF-fixdate equal to the file's
/// `last_modified`. A weak tag, another tag, or an unreadable date do not.
pub fn if_range_holds(if_range: &[u8], etag: &str, last_modified: u64) -> bool {
    let Ok(value) = std::str::from_utf8(if_range) else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') {
        return value == etag;
    }
    crate::http::date::parse(value) == Some(last_modified)
}

/// The specs of a `bytes=` header, or `None` when it is to be ignored.
fn parse(range: &[u8]) -> Option<Vec<Spec>> {
    let text = std::str::from_utf8(range).ok()?.trim();
    let (unit, set) = text.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    for item in set.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue; // the list syntax allows empty elements
        }
        let (first, last) = item.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        specs.push(match (number(first), number(last)) {
            (Some(start), None) if last.is_empty() => Spec::From { start, end: None },
            (Some(start), Some(end)) if end >= start => Spec::From {
                start,
                end: Some(end),
            },
            (None, Some(n)) if first.is_empty() => Spec::Suffix(n),
            _ => return None,
        });
    }
    (!specs.is_empty()).then_some(specs)
}

/// Plain digits as a number; digits beyond `u64` saturate (such a position
/// lies past the end of any file, which is what the client meant).
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// The part of the file a spec selects, if any.
fn span(spec: Spec, len: u64) -> Option<Span> {
    if len == 0 {
        return None;
    }
    match spec {
        Spec::From { start, .. } if start >= len => None,
        Spec::From { start, end } => Some(Span {
            start,
            end: end.map_or(len - 1, |e| e.min(len - 1)),
        }),
        Spec::Suffix(0) => None,
        Spec::Suffix(n) => Some(Span {
            start: len - n.min(len),
            end: len - 1,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(start: u64, end: u64) -> Answer {
        Answer::Partial(Span { start, end })
    }

    #[test]
    fn closed_open_and_suffix_ranges() {
        assert_eq!(decide(b"bytes=0-0", 10), partial(0, 0));
        assert_eq!(decide(b"bytes=2-5", 10), partial(2, 5));
        assert_eq!(decide(b"bytes=7-", 10), partial(7, 9));
        assert_eq!(decide(b"bytes=-3", 10), partial(7, 9));
        assert_eq!(decide(b"BYTES = 1 - 2 ", 10), partial(1, 2));
    }

    #[test]
    fn ranges_past_the_end_are_clipped_or_unsatisfiable() {
        assert_eq!(decide(b"bytes=5-100", 10), partial(5, 9));
        assert_eq!(decide(b"bytes=-100", 10), partial(0, 9));
        assert_eq!(decide(b"bytes=10-", 10), Answer::Unsatisfiable);
        assert_eq!(decide(b"bytes=10-20", 10), Answer::Unsatisfiable);
        assert_eq!(
            decide(b"bytes=99999999999999999999999-", 10),
            Answer::Unsatisfiable
        );
        assert_eq!(decide(b"bytes=-0", 10), Answer::Unsatisfiable);
    }

    #[test]
    fn an_empty_file_satisfies_no_range() {
        assert_eq!(decide(b"bytes=0-", 0), Answer::Unsatisfiable);
        assert_eq!(decide(b"bytes=-5", 0), Answer::Unsatisfiable);
    }

    #[test]
    fn several_ranges_get_the_whole_file_or_416() {
        assert_eq!(decide(b"bytes=0-1,4-5", 10), Answer::Full);
        assert_eq!(decide(b"bytes=0-1,40-50", 10), Answer::Full);
        assert_eq!(decide(b"bytes=20-30,40-", 10), Answer::Unsatisfiable);
        assert_eq!(decide(b"bytes=,2-3,", 10), partial(2, 3));
    }

    #[test]
    fn malformed_ranges_are_ignored() {
        for bad in [
            &b"bytes=5-2"[..],
            b"bytes=abc",
            b"bytes=1-2-3",
            b"bytes=+1-2",
            b"bytes=-",
            b"bytes=",
            b"items=0-1",
            b"0-1",
            b"bytes=0-1,x",
            b"bytes=\xff-",
        ] {
            assert_eq!(decide(bad, 10), Answer::Full, "{:?}", bad);
        }
    }

    #[test]
    fn if_range_matches_strong_etag_or_exact_date_only() {
        let etag = "\"a-1\"";
        let date = crate::http::date::format(784_111_777);
        assert!(if_range_holds(b"\"a-1\"", etag, 784_111_777));
        assert!(if_range_holds(date.as_bytes(), etag, 784_111_777));
        assert!(!if_range_holds(b"\"a-2\"", etag, 784_111_777));
        assert!(!if_range_holds(b"W/\"a-1\"", etag, 784_111_777));
        assert!(!if_range_holds(date.as_bytes(), etag, 784_111_778));
        assert!(!if_range_holds(b"yesterday", etag, 784_111_777));
    }
}
