//! `Range` and `If-Range` (RFC 9110 sections 14.2 and 13.1.5): which bytes
//! of a representation of known length a GET is answered with.
//!
//! Pure functions over header bytes, so every edge case is tested without a
//! socket. A `Range` is read as nginx reads one: the value must start with
//! `bytes=` (any case, no space around `=`), spaces may surround the
//! numbers, `-` and `,`, and a range set that does not parse after
//! `bytes=` is answered 416, as RFC 9110 section 15.5.17 allows ("invalid
//! ranges"). What this server answers:
//!
//! | request | answer |
//! |---|---|
//! | no `Range`, one that does not start with `bytes=` (`bytes = 0-5`, `items=0-1`), or several `Range` fields | 200, the whole file |
//! | a range set that does not parse (`bytes=abc`, `bytes=0-0,` with its empty last element, `bytes=0-1-2`, a number past 2^63) | 416 |
//! | exactly one satisfiable range (`a-b`, `a-`, `-n`), whatever the unsatisfiable others | 206 with `Content-Range` |
//! | no satisfiable range (`a` at or past the end, `b` < `a`, `-0`, any range of an empty file) | 416 with `Content-Range: bytes */LEN` |
//! | several satisfiable ranges | 200, the whole file (nginx: `multipart/byteranges`) |
//! | `If-Range` that does not match the file's `ETag` or `Last-Modified` | 200, the whole file |
//!
//! Sending the whole file instead of a multipart body keeps clients that
//! asked for several ranges correct at the price of bytes they did not
//! ask for. README ("Publishing") lists where this differs from nginx.

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

/// What a `Range` value says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Parsed {
    /// Not a byte range: the whole file.
    Ignored,
    /// `bytes=` followed by what does not parse: 416.
    Malformed,
    /// The ranges asked for.
    Specs(Vec<Spec>),
}

/// Decides the answer to a `Range` header value for a file of `len` bytes.
pub fn decide(range: &[u8], len: u64) -> Answer {
    let specs = match parse(range) {
        Parsed::Ignored => return Answer::Full,
        Parsed::Malformed => return Answer::Unsatisfiable,
        Parsed::Specs(specs) => specs,
    };
    let mut satisfiable = specs.iter().filter_map(|s| span(*s, len));
    match (satisfiable.next(), satisfiable.next()) {
        (None, _) => Answer::Unsatisfiable,
        (Some(span), None) => Answer::Partial(span),
        (Some(_), Some(_)) => Answer::Full,
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

/// The specs of a `Range` value, read as nginx's `ngx_http_range_parse`
/// reads them: `bytes=`, then `range-spec`s separated by `,`, each `a-b`,
/// `a-` or `-n`, with spaces allowed around the numbers, `-` and `,`.
fn parse(range: &[u8]) -> Parsed {
    let value = range.trim_ascii();
    let Some(set) = value
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case(b"bytes="))
        .map(|_| &value[6..])
        .filter(|set| !set.is_empty())
    else {
        return Parsed::Ignored;
    };
    let mut at = 0;
    let mut specs = Vec::new();
    loop {
        skip_spaces(set, &mut at);
        let spec = if set.get(at) == Some(&b'-') {
            at += 1;
            let Some(n) = digits(set, &mut at) else {
                return Parsed::Malformed;
            };
            Spec::Suffix(n)
        } else {
            let Some(start) = digits(set, &mut at) else {
                return Parsed::Malformed;
            };
            skip_spaces(set, &mut at);
            if set.get(at) != Some(&b'-') {
                return Parsed::Malformed;
            }
            at += 1;
            skip_spaces(set, &mut at);
            let end = match set.get(at) {
                None | Some(b',') => None,
                Some(_) => match digits(set, &mut at) {
                    Some(end) => Some(end),
                    None => return Parsed::Malformed,
                },
            };
            Spec::From { start, end }
        };
        specs.push(spec);
        skip_spaces(set, &mut at);
        match set.get(at) {
            None => return Parsed::Specs(specs),
            Some(b',') => at += 1,
            Some(_) => return Parsed::Malformed,
        }
    }
}

fn skip_spaces(text: &[u8], at: &mut usize) {
    while text.get(*at) == Some(&b' ') {
        *at += 1;
    }
}

/// The digits at `at` as a number (advancing past them): none, or more
/// than an `i64` holds (a file offset, as nginx's `off_t`), is `None`.
fn digits(text: &[u8], at: &mut usize) -> Option<u64> {
    let start = *at;
    let mut n: u64 = 0;
    while let Some(d) = text.get(*at).filter(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        *at += 1;
    }
    (*at > start && n <= i64::MAX as u64).then_some(n)
}

/// The part of the file a spec selects, if any.
fn span(spec: Spec, len: u64) -> Option<Span> {
    if len == 0 {
        return None;
    }
    match spec {
        Spec::From { start, .. } if start >= len => None,
        Spec::From {
            start,
            end: Some(end),
        } if end < start => None,
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
        assert_eq!(decide(b"BYTES= 1 - 2 ", 10), partial(1, 2));
    }

    #[test]
    fn ranges_past_the_end_are_clipped_or_unsatisfiable() {
        assert_eq!(decide(b"bytes=5-100", 10), partial(5, 9));
        assert_eq!(decide(b"bytes=-100", 10), partial(0, 9));
        assert_eq!(decide(b"bytes=10-", 10), Answer::Unsatisfiable);
        assert_eq!(decide(b"bytes=10-20", 10), Answer::Unsatisfiable);
        assert_eq!(
            decide(b"bytes=9223372036854775807-", 10),
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
    fn several_ranges_get_the_whole_file_one_satisfiable_its_206_none_416() {
        assert_eq!(decide(b"bytes=0-1,4-5", 10), Answer::Full);
        assert_eq!(decide(b"bytes=0-1 , 4-5", 10), Answer::Full);
        assert_eq!(decide(b"bytes=0-1,40-50", 10), partial(0, 1));
        assert_eq!(decide(b"bytes=5-2,0-1", 10), partial(0, 1));
        assert_eq!(decide(b"bytes=20-30,40-", 10), Answer::Unsatisfiable);
    }

    #[test]
    fn what_is_not_a_byte_range_is_ignored_as_nginx_ignores_it() {
        for ignored in [
            &b"bytes = 0 - 5"[..],
            b"bytes =0-5",
            b"bytes",
            b"bytes=",
            b"items=0-1",
            b"0-1",
        ] {
            assert_eq!(
                decide(ignored, 10),
                Answer::Full,
                "{:?}",
                String::from_utf8_lossy(ignored)
            );
        }
    }

    #[test]
    fn a_range_set_that_does_not_parse_is_416_as_nginx_answers_it() {
        for bad in [
            &b"bytes=0-0,"[..],
            b"bytes=,2-3",
            b"bytes=0-0,,1-1",
            b"bytes=5-2",
            b"bytes=abc",
            b"bytes=1-2-3",
            b"bytes=+1-2",
            b"bytes=-",
            b"bytes=- 5",
            b"bytes=0-1,x",
            b"bytes=\xff-",
            b"bytes=0\t-1",
            b"bytes=99999999999999999999999-",
            b"bytes=0-99999999999999999999999",
            b"bytes=9223372036854775808-",
        ] {
            assert_eq!(
                decide(bad, 10),
                Answer::Unsatisfiable,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
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
