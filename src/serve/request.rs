//! The request head: parsed out of a byte buffer with `httparse`, bounded
//! in bytes as the client bounds response heads ([`MAX_HEAD_BYTES`]), and
//! in fields by [`MAX_REQUEST_FIELDS`].
//!
//! Owns the request line and header fields, the size limits, and what the
//! head says about the connection (keep-alive, a request body that would
//! have to be skipped). No I/O: the connection loop owns the buffer, the
//! socket and the timeouts; `Ok(None)` means "read more".

use crate::http::response::{MAX_HEADERS, MAX_HEAD_BYTES};

/// The most header fields a request may have. nginx bounds a head by its
/// bytes only (lines of 8 KiB, 32 KiB in all), and clients send more than
/// the 100 fields a response may have here (a browser's cookies one field
/// each): within the 64 KiB a head may take, a thousand are accepted,
/// which keeps what one head becomes in memory near 100 KiB.
pub const MAX_REQUEST_FIELDS: usize = 1000;

/// A parsed request line and header section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, as sent (`GET`, `HEAD`, …).
    pub method: String,
    /// The request target, as sent (`/a/b?c`).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The header fields in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why a head was refused; each maps to the status sent before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x syntax.
    Malformed,
    /// Larger than [`MAX_HEAD_BYTES`] or more than [`MAX_REQUEST_FIELDS`]
    /// fields.
    TooLarge,
    /// HTTP/2 or later in an HTTP/1 request line.
    Version,
}

impl HeadError {
    /// The status that answers this error.
    pub fn status(self) -> u16 {
        match self {
            HeadError::Malformed => 400,
            HeadError::TooLarge => 431,
            HeadError::Version => 505,
        }
    }
}

/// Parses a request head from the start of `buf`: `Ok(None)` when more
/// bytes are needed, else the head and the bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    // Most heads fit the fields on the stack; more are parsed again into
    // as many as the head has lines, up to the bound.
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match parse_into(buf, &mut fields) {
        Err(HeadError::TooLarge) if buf.len() <= MAX_HEAD_BYTES => {
            let lines = buf.iter().filter(|&&b| b == b'\n').count();
            let mut fields = vec![httparse::EMPTY_HEADER; lines.min(MAX_REQUEST_FIELDS)];
            parse_into(buf, &mut fields)
        }
        answer => answer,
    }
}

/// [`parse`] with room for `fields.len()` fields.
fn parse_into<'b>(
    buf: &'b [u8],
    fields: &mut [httparse::Header<'b>],
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut request = httparse::Request::new(fields);
    match request.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(len)) => Ok(Some((
            RequestHead {
                method: request.method.unwrap_or("").to_owned(),
                target: request.path.unwrap_or("").to_owned(),
                minor_version: request.version.unwrap_or(1),
                headers: request
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), h.value.to_vec()))
                    .collect(),
            },
            len,
        ))),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(httparse::Error::Version | httparse::Error::NewLine) => match other_version(buf) {
            Ok(None) if buf.len() >= MAX_HEAD_BYTES => Err(HeadError::TooLarge),
            answer => answer,
        },
        Err(_) => Err(HeadError::Malformed),
    }
}

/// A request line whose version httparse does not take (it takes HTTP/1.0
/// and HTTP/1.1), answered as nginx answers it: HTTP/1.2 to 1.999 as
/// HTTP/1.1 (RFC 9110 section 6.2: a later minor version is understood
/// as the highest this server speaks), HTTP/2 and later 505, anything
/// else 400. A first line not yet complete asks for more, unless its
/// version already says 2 or later.
fn other_version(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        let partial = buf.rsplit(|&b| b == b' ').next().unwrap_or(b"");
        return match version(partial) {
            Some((major, _)) if major >= 2 => Err(HeadError::Version),
            _ if b"HTTP/1.".starts_with(partial) || partial.starts_with(b"HTTP/1.") => Ok(None),
            _ => Err(HeadError::Malformed),
        };
    };
    let line = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    let start = line.iter().rposition(|&b| b == b' ').map_or(0, |i| i + 1);
    match version(&line[start..]) {
        Some((major, _)) if major >= 2 => Err(HeadError::Version),
        Some((1, minor)) if minor >= 2 => {
            let mut copy = Vec::with_capacity(buf.len());
            copy.extend_from_slice(&buf[..start]);
            copy.extend_from_slice(b"HTTP/1.1");
            copy.extend_from_slice(&buf[line.len()..]);
            let longer = line.len() - start - b"HTTP/1.1".len();
            match parse(&copy)? {
                Some((head, used)) => Ok(Some((head, used + longer))),
                None => Ok(None),
            }
        }
        _ => Err(HeadError::Malformed),
    }
}

/// `HTTP/MAJOR.MINOR` (or `HTTP/MAJOR` while the rest is to come), each
/// of one to three digits.
fn version(token: &[u8]) -> Option<(u16, u16)> {
    let rest = token.strip_prefix(b"HTTP/")?;
    let (major, minor) = match rest.iter().position(|&b| b == b'.') {
        Some(dot) => (&rest[..dot], Some(&rest[dot + 1..])),
        None => (rest, None),
    };
    let number = |digits: &[u8]| -> Option<u16> {
        if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    Some((number(major)?, minor.map_or(Some(0), number)?))
}

/// Whether `buf`, which held no complete head before its last `new` bytes,
/// may hold one now: a blank line ends every head. Parsing only then keeps
/// a client that sends one byte at a time from costing a parse per byte.
pub fn may_be_complete(buf: &[u8], new: usize) -> bool {
    let from = buf.len().saturating_sub(new + 3);
    let tail = &buf[from..];
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

impl RequestHead {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The value of header `name` when it occurs exactly once.
    pub fn single<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        let mut values = self.values(name);
        let first = values.next()?;
        values.next().is_none().then_some(first)
    }

    /// Whether a comma-separated header `name` lists `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The target in origin form (`/path?query`). An absolute-form target
    /// (`http://host/path`, which RFC 9112 §3.2.2 has a server accept, as
    /// nginx does whatever the scheme) loses its scheme and authority, and
    /// is `/` when it names no path; this server serves one directory
    /// whatever the host. Other targets are as sent.
    pub fn origin_target(&self) -> std::borrow::Cow<'_, str> {
        let target = self.target.as_str();
        let Some((scheme, rest)) = target.split_once("://") else {
            return target.into();
        };
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !is_scheme {
            return target.into();
        }
        let path = &rest[rest.find(['/', '?', '#']).unwrap_or(rest.len())..];
        if path.starts_with('/') {
            path.into()
        } else {
            format!("/{path}").into()
        }
    }

    /// Whether the client lets the connection carry another request:
    /// HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.has_token("connection", "keep-alive")
        } else {
            !self.has_token("connection", "close")
        }
    }

    /// Whether a request body follows the head. This server reads none, so
    /// such a connection is closed after the answer rather than guessing
    /// where the next request starts.
    pub fn has_body(&self) -> bool {
        self.values("transfer-encoding").next().is_some()
            || self
                .values("content-length")
                .any(|v| v.iter().any(|&b| b != b'0'))
    }

    /// The request line with control bytes escaped, for the log.
    pub fn line_for_log(&self) -> String {
        let mut line = String::new();
        for c in format!(
            "{} {} HTTP/1.{}",
            self.method, self.target, self.minor_version
        )
        .chars()
        {
            if c.is_control() || c == '"' {
                line.extend(c.escape_default());
            } else {
                line.push(c);
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> RequestHead {
        parse(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn parses_a_head_and_leaves_pipelined_bytes() {
        let buf = b"GET /a?b HTTP/1.1\r\nHost: h\r\nRange: bytes=0-\r\n\r\nGET /next";
        let (head, used) = parse(buf).unwrap().unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/a?b");
        assert_eq!(head.single("range"), Some(&b"bytes=0-"[..]));
        assert_eq!(&buf[used..], b"GET /next");
    }

    #[test]
    fn partial_heads_ask_for_more_until_the_limit() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost:"), Ok(None));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(parse(&big), Err(HeadError::TooLarge));
        let many = |fields: usize| {
            let mut head = b"GET / HTTP/1.1\r\n".to_vec();
            for i in 0..fields {
                head.extend_from_slice(format!("X{i}: y\r\n").as_bytes());
            }
            head.extend_from_slice(b"\r\n");
            head
        };
        for fields in [MAX_HEADERS, MAX_HEADERS + 1, 200, MAX_REQUEST_FIELDS] {
            let (head, used) = parse(&many(fields)).unwrap().unwrap();
            assert_eq!((head.headers.len(), used), (fields, many(fields).len()));
        }
        assert_eq!(
            parse(&many(MAX_REQUEST_FIELDS + 1)),
            Err(HeadError::TooLarge)
        );
        assert_eq!(
            parse(b"\x16\x03\x01 hello\r\n\r\n"),
            Err(HeadError::Malformed)
        );
    }

    #[test]
    fn later_versions_are_http11_or_505_as_nginx_answers_them() {
        let (h, used) = parse(b"GET / HTTP/1.2\r\nHost: h\r\n\r\nGET")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.minor_version, h.single("host"), used),
            (1, Some(&b"h"[..]), 27)
        );
        let (h, used) = parse(b"GET /a HTTP/1.10\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.target.as_str(), h.minor_version, used), ("/a", 1, 20));
        for newer in [
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            b"GET / HTTP/3.0\r\nHost: h\r\n\r\n",
            b"GET / HTTP/11.1\r\n\r\n",
            b"GET / HTTP/2",
        ] {
            assert_eq!(
                parse(newer),
                Err(HeadError::Version),
                "{:?}",
                String::from_utf8_lossy(newer)
            );
        }
        assert_eq!(HeadError::Version.status(), 505);
        for bad in [
            &b"GET / HTTP/0.9\r\n\r\n"[..],
            b"GET / HTTP/1.1x\r\n\r\n",
            b"GET / HTTP/x\r\n\r\n",
            b"GET / HTTP/1.1234\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Err(HeadError::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(b"GET / HTTP/1.2"), Ok(None));
    }

    #[test]
    fn a_blank_line_is_looked_for_only_in_the_new_bytes() {
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(may_be_complete(buf, 1));
        assert!(may_be_complete(buf, buf.len()));
        assert!(!may_be_complete(b"GET / HTTP/1.1\r\nHo", 2));
        assert!(may_be_complete(b"GET / HTTP/1.0\n\n", 1));
    }

    #[test]
    fn an_absolute_form_target_is_its_path_and_query() {
        let target = |t: &str| {
            let mut h = head("GET / HTTP/1.1\r\n\r\n");
            h.target = t.to_owned();
            h.origin_target().into_owned()
        };
        assert_eq!(target("/a?b"), "/a?b");
        assert_eq!(target("http://h/a/b?c"), "/a/b?c");
        assert_eq!(target("HTTPS://h:8080/a"), "/a");
        assert_eq!(target("http://u@h"), "/");
        assert_eq!(target("http://h?x=1"), "/?x=1");
        assert_eq!(target("ftp://h/a"), "/a");
        // Not a scheme: left for the path checks to refuse.
        assert_eq!(target("1http://h/a"), "1http://h/a");
        assert_eq!(target("*"), "*");
        assert_eq!(
            head("GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n").origin_target(),
            "/x"
        );
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        assert!(head("GET / HTTP/1.1\r\n\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive());
    }

    #[test]
    fn bodies_are_noticed() {
        assert!(!head("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").has_body());
        assert!(head("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").has_body());
        assert!(head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").has_body());
    }

    #[test]
    fn log_line_escapes_what_a_terminal_would_act_on() {
        let mut h = head("GET / HTTP/1.1\r\n\r\n");
        h.target = "/\u{1b}[2J\"".to_owned();
        assert_eq!(h.line_for_log(), "GET /\\u{1b}[2J\\\" HTTP/1.1");
    }
}
