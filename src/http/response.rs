//! The response head, and the body framing it implies.
//!
//! Owns parsing a head out of a byte buffer with `httparse` (returning
//! `Ok(None)` for "send more bytes" rather than assuming a whole buffer),
//! the limits on its size, and the RFC 9112 section 6.3 decision of how the
//! body is delimited. It does no I/O: the caller owns the buffer and the
//! bound on how long it keeps growing it.

use crate::error::{Error, ErrorKind, Result};

/// The largest response head accepted. Real servers send a few KiB; curl's
/// CVE-2023-38039 came from letting a server grow headers without bound.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The most header fields accepted in one head (and in one trailer section).
pub const MAX_HEADERS: usize = 100;

/// A parsed status line and header section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The reason phrase, lossily decoded.
    pub reason: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The header fields in the order received, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive), if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .find_map(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// The first value of header `name` (case-insensitive) as received,
    /// text or not, without surrounding whitespace.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim_ascii())
    }

    /// Every value of header `name` that is text, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// Whether a comma-separated header `name` lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The `Content-Length`, when present and valid (see [`framing`] for checks).
    pub fn content_length(&self) -> Option<u64> {
        content_length(self).ok().flatten()
    }

    /// The head as it came, line by line with CRLF and the empty line that
    /// ends it: the status line, then each field in order (values lossily
    /// decoded).
    pub fn text(&self) -> String {
        let mut text = format!("HTTP/1.{} {}", self.minor_version, self.status);
        if !self.reason.is_empty() {
            text.push(' ');
            text.push_str(&self.reason);
        }
        text.push_str("\r\n");
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {}\r\n", String::from_utf8_lossy(value)));
        }
        text.push_str("\r\n");
        text
    }
}

/// Parses a response head from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or the head and the number
/// of bytes it took. A head larger than [`MAX_HEAD_BYTES`] or with more than
/// [`MAX_HEADERS`] fields is an error, complete or not.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let status = httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response(&mut response, buf);
    match status {
        Ok(httparse::Status::Partial) => {
            if buf.len() >= MAX_HEAD_BYTES {
                Err(head_too_large())
            } else {
                Ok(None)
            }
        }
        Ok(httparse::Status::Complete(len)) => {
            if len > MAX_HEAD_BYTES {
                return Err(head_too_large());
            }
            let head = Head {
                status: response.code.unwrap_or(0),
                reason: response.reason.unwrap_or("").to_owned(),
                minor_version: response.version.unwrap_or(1),
                headers: response
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), h.value.to_vec()))
                    .collect(),
            };
            Ok(Some((head, len)))
        }
        Err(httparse::Error::TooManyHeaders) => Err(Error::new(
            ErrorKind::Limit,
            format!("response has more than {MAX_HEADERS} header fields"),
        )),
        Err(e) => Err(Error::new(
            ErrorKind::Protocol,
            format!("malformed response head ({e})"),
        )),
    }
}

fn head_too_large() -> Error {
    Error::new(
        ErrorKind::Limit,
        format!("response head larger than {MAX_HEAD_BYTES} bytes"),
    )
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// The framing of a response body, and whether the connection may carry
/// another request afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPlan {
    /// How the body ends.
    pub framing: Framing,
    /// Whether the connection can be reused once the body has been read.
    pub reusable: bool,
}

/// Decides the framing of the body that follows `head` (RFC 9112 6.3).
///
/// `Transfer-Encoding` other than a single `chunked` is refused: this client
/// asks for `identity` and cannot undo other codings. `Content-Length` values
/// must all agree and be plain digits (`+5` and `5, 6` are refused). With both
/// headers, chunked wins and the connection is not reused, since the sender
/// may be trying to smuggle a second response.
pub fn framing(head: &Head, request_was_head: bool) -> Result<BodyPlan> {
    let keep_alive = if head.minor_version == 0 {
        head.has_token("connection", "keep-alive")
    } else {
        !head.has_token("connection", "close")
    };
    let no_body = request_was_head
        || (100..200).contains(&head.status)
        || head.status == 204
        || head.status == 304;
    if no_body {
        return Ok(BodyPlan {
            framing: Framing::Empty,
            reusable: keep_alive,
        });
    }
    let codings: Vec<&str> = head
        .headers_named("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let length = content_length(head)?;
    if !codings.is_empty() {
        if codings.len() == 1 && codings[0].eq_ignore_ascii_case("chunked") {
            return Ok(BodyPlan {
                framing: Framing::Chunked,
                reusable: keep_alive && length.is_none(),
            });
        }
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "unsupported Transfer-Encoding \"{}\" (only chunked is accepted)",
                codings.join(", ")
            ),
        ));
    }
    Ok(match length {
        Some(n) => BodyPlan {
            framing: Framing::Length(n),
            reusable: keep_alive,
        },
        None => BodyPlan {
            framing: Framing::UntilClose,
            reusable: false,
        },
    })
}

fn content_length(head: &Head) -> Result<Option<u64>> {
    let mut found: Option<u64> = None;
    for (name, value) in &head.headers {
        if !name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        for item in value.split(|&b| b == b',') {
            let item = item.trim_ascii();
            let valid = !item.is_empty() && item.len() <= 19 && item.iter().all(u8::is_ascii_digit);
            let parsed = valid
                .then(|| std::str::from_utf8(item).ok()?.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "invalid Content-Length \"{}\"",
                            String::from_utf8_lossy(value).trim()
                        ),
                    )
                })?;
            match found {
                Some(previous) if previous != parsed => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("conflicting Content-Length values {previous} and {parsed}"),
                    ))
                }
                _ => found = Some(parsed),
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes()).unwrap().unwrap().0
    }

    fn plan(text: &str) -> Result<BodyPlan> {
        framing(&head(text), false)
    }

    #[test]
    fn partial_head_asks_for_more_bytes() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
            .unwrap()
            .is_none());
        let (h, used) = parse_head(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nBODY")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, used), (200, 25));
        assert_eq!(h.header("a"), Some("b"));
    }

    #[test]
    fn oversized_heads_are_refused_before_completion() {
        let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES, b'a');
        let err = parse_head(&big).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limit);
    }

    #[test]
    fn too_many_headers_are_refused() {
        let mut text = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..=MAX_HEADERS {
            text.push_str(&format!("X-{i}: y\r\n"));
        }
        text.push_str("\r\n");
        assert_eq!(
            parse_head(text.as_bytes()).unwrap_err().kind(),
            ErrorKind::Limit
        );
    }

    #[test]
    fn ten_thousand_headers_are_refused_complete_or_cut_at_the_head_limit() {
        let mut text = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..10_000 {
            text.push_str(&format!("X-{i}: y\r\n"));
        }
        text.push_str("\r\n");
        assert!(text.len() > MAX_HEAD_BYTES);
        // Whole, and as much of it as a connection buffers before giving up.
        for buf in [text.as_bytes(), &text.as_bytes()[..MAX_HEAD_BYTES]] {
            let err = parse_head(buf).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Limit);
            assert_eq!(err.message(), "response has more than 100 header fields");
        }
    }

    #[test]
    fn content_length_frames_and_keeps_alive() {
        let p = plan("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(
            p,
            BodyPlan {
                framing: Framing::Length(5),
                reusable: true
            }
        );
        let p = plan("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!p.reusable);
        let p = plan("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert!(!p.reusable);
    }

    #[test]
    fn malformed_or_conflicting_content_length_is_refused() {
        for bad in ["+5", "5, 6", "-1", "5a", "", "99999999999999999999"] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(
                plan(&text).unwrap_err().kind(),
                ErrorKind::Protocol,
                "{bad:?}"
            );
        }
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert!(plan(text).is_err());
        let same = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n";
        assert_eq!(plan(same).unwrap().framing, Framing::Length(5));
    }

    #[test]
    fn chunked_wins_over_content_length_and_forbids_reuse() {
        let p = plan("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        assert_eq!(
            p,
            BodyPlan {
                framing: Framing::Chunked,
                reusable: false
            }
        );
    }

    #[test]
    fn transfer_codings_other_than_chunked_are_refused() {
        for te in [
            "gzip, chunked",
            "chunked, gzip",
            "chunked, chunked",
            "identity",
        ] {
            let text = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(plan(&text).unwrap_err().kind(), ErrorKind::Protocol, "{te}");
        }
    }

    #[test]
    fn no_length_means_until_close() {
        let p = plan("HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert_eq!(
            p,
            BodyPlan {
                framing: Framing::UntilClose,
                reusable: false
            }
        );
    }

    #[test]
    fn head_requests_and_bodiless_statuses_have_no_body() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        assert_eq!(framing(&h, true).unwrap().framing, Framing::Empty);
        for status in ["204 No Content", "304 Not Modified", "100 Continue"] {
            let p = plan(&format!("HTTP/1.1 {status}\r\nContent-Length: 3\r\n\r\n")).unwrap();
            assert_eq!(p.framing, Framing::Empty, "{status}");
        }
    }

    #[test]
    fn a_head_reads_back_as_it_came() {
        let raw = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1/9\r\nX-A: b\r\n\r\n";
        let (head, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(used, raw.len());
        assert_eq!(head.text().as_bytes(), raw);
    }
}
