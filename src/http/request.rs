//! Writing a request head.
//!
//! Owns the request line (origin-form, or absolute-form through a proxy), the
//! headers every request carries, `Range` and `If-Range`, Basic credentials,
//! and the check that no header smuggles a line break. It writes into a
//! byte buffer; sending it is the connection's job.

use crate::error::{Error, ErrorKind, Result};
use crate::url::Url;

/// The request method. Downloads only ever read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// A byte range to ask for: `start-` or `start-end` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// The last byte, inclusive; `None` for "to the end".
    pub end: Option<u64>,
}

/// Everything a request head says besides what the URL says.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    /// The method.
    pub method: Method,
    /// The URL being fetched.
    pub url: &'a Url,
    /// True when the request goes to a proxy in absolute-form.
    pub via_proxy: Option<&'a Url>,
    /// `User-Agent`.
    pub user_agent: &'a str,
    /// An optional `Range`.
    pub range: Option<ByteRange>,
    /// An optional `If-Range` validator (an ETag or an HTTP date).
    pub if_range: Option<&'a str>,
    /// Headers given by the user, already checked with [`check_header`].
    pub extra: &'a [(String, String)],
    /// Asks for the body gzip-encoded (`Accept-Encoding: gzip`), which is
    /// only done without a range: see [`write_head`].
    pub accept_gzip: bool,
}

/// Writes the head of `parts` into `out`.
pub fn write_head(out: &mut Vec<u8>, parts: &RequestParts<'_>) {
    let url = parts.url;
    let target = match parts.via_proxy {
        Some(_) => url.redacted().to_string(),
        None => url.request_target(),
    };
    let has = |name: &str| {
        parts
            .extra
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let mut head = format!("{} {target} HTTP/1.1\r\n", parts.method.as_str());
    if !has("host") {
        head.push_str(&format!("Host: {}\r\n", url.host_header()));
    }
    if !has("user-agent") {
        head.push_str(&format!("User-Agent: {}\r\n", parts.user_agent));
    }
    if !has("accept") {
        head.push_str("Accept: */*\r\n");
    }
    // A range of an encoded body is not that range of the file (RFC 9110
    // 8.4.1: the coding applies to the whole representation), so pieces and
    // resumes always ask for the bytes as stored, whatever was asked.
    if parts.accept_gzip && parts.range.is_none() {
        head.push_str("Accept-Encoding: gzip\r\n");
    } else {
        head.push_str("Accept-Encoding: identity\r\n");
    }
    if !has("connection") {
        head.push_str("Connection: keep-alive\r\n");
    }
    if let Some(range) = parts.range {
        match range.end {
            Some(end) => head.push_str(&format!("Range: bytes={}-{end}\r\n", range.start)),
            None => head.push_str(&format!("Range: bytes={}-\r\n", range.start)),
        }
        if let Some(validator) = parts.if_range {
            head.push_str(&format!("If-Range: {validator}\r\n"));
        }
    }
    if let (Some(credentials), false) = (url.userinfo(), has("authorization")) {
        head.push_str(&format!(
            "Authorization: Basic {}\r\n",
            basic_credentials(credentials)
        ));
    }
    if let Some(credentials) = parts.via_proxy.and_then(Url::userinfo) {
        head.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            basic_credentials(credentials)
        ));
    }
    for (name, value) in parts.extra {
        if name.eq_ignore_ascii_case("accept-encoding") {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
}

/// Checks a user-given header: a token name, and no CR, LF or NUL anywhere.
pub fn check_header(name: &str, value: &str) -> Result<()> {
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !name_ok {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid header name {name:?}"),
        ));
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("header {name} contains a line break or NUL"),
        ));
    }
    // A request of this client has no body: a length or a coding for one
    // would have the server wait for bytes that never come, or read the
    // next request as them.
    if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the header {name} cannot be added: requests here have no body"),
        ));
    }
    // Pieces and resumes are byte ranges of the stored file, which a
    // compressed answer's ranges are not; the client asks for `identity`.
    if name.eq_ignore_ascii_case("accept-encoding")
        && !value.trim().eq_ignore_ascii_case("identity")
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the header {name}: {value} cannot be added: partfetch asks for the bytes as \
                 stored (identity), since ranges of a compressed answer are not the file's"
            ),
        ));
    }
    Ok(())
}

/// Checks a header to send with every request of a client: what
/// [`check_header`] checks, and that it is none of those the client writes
/// itself for each request. `Range` (and `If-Range`, which only goes with
/// it) ask for the bytes a resume or a piece needs; a fixed one beside
/// them would be a second `Range`, which a server ignores or answers as
/// it pleases, and alone it would make every piece the same bytes.
pub fn check_client_header(name: &str, value: &str) -> Result<()> {
    check_header(name, value)?;
    if name.eq_ignore_ascii_case("range") || name.eq_ignore_ascii_case("if-range") {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "partfetch sets Range itself, and If-Range with it (to resume and to \
                 fetch in pieces): the header {name} cannot be added"
            ),
        ));
    }
    Ok(())
}

/// `user:password` (percent-encoded, as in a URL) as Basic credentials.
pub fn basic_credentials(userinfo: &str) -> String {
    crate::util::base64::encode(&percent_decode(userinfo))
}

/// The `Authorization` value for `user:password` as typed (curl's `-u`):
/// no percent-decoding, since a `%` there is part of the password.
pub fn basic_authorization(user_password: &str) -> String {
    format!(
        "Basic {}",
        crate::util::base64::encode(user_password.as_bytes())
    )
}

/// Decodes `%XX` escapes; malformed escapes stay as they are.
pub fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(parts: &RequestParts<'_>) -> String {
        let mut out = Vec::new();
        write_head(&mut out, parts);
        String::from_utf8(out).unwrap()
    }

    fn parts<'a>(url: &'a Url, extra: &'a [(String, String)]) -> RequestParts<'a> {
        RequestParts {
            method: Method::Get,
            url,
            via_proxy: None,
            user_agent: "partfetch/test",
            range: None,
            if_range: None,
            extra,
            accept_gzip: false,
        }
    }

    #[test]
    fn userinfo_becomes_basic_authorization() {
        let url = Url::parse("http://Aladdin:open%20sesame@h/").unwrap();
        let head = head_of(&parts(&url, &[]));
        assert!(head.contains("Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
    }

    #[test]
    fn sends_the_standard_headers_and_ranges() {
        let url = Url::parse("http://h:8080/a?b").unwrap();
        let mut p = parts(&url, &[]);
        p.range = Some(ByteRange {
            start: 10,
            end: None,
        });
        p.if_range = Some("\"etag\"");
        let head = head_of(&p);
        assert!(head.starts_with("GET /a?b HTTP/1.1\r\nHost: h:8080\r\n"));
        for line in [
            "User-Agent: partfetch/test",
            "Accept-Encoding: identity",
            "Connection: keep-alive",
            "Range: bytes=10-",
            "If-Range: \"etag\"",
        ] {
            assert!(head.contains(&format!("{line}\r\n")), "{line}");
        }
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn gzip_is_asked_for_a_whole_body_and_never_with_a_range() {
        let url = Url::parse("http://h/a.txt").unwrap();
        let mut p = parts(&url, &[]);
        p.accept_gzip = true;
        assert!(head_of(&p).contains("\r\nAccept-Encoding: gzip\r\n"));
        p.range = Some(ByteRange {
            start: 0,
            end: Some(99),
        });
        let ranged = head_of(&p);
        assert!(ranged.contains("\r\nAccept-Encoding: identity\r\n"));
        assert!(!ranged.contains("gzip"));
    }

    #[test]
    fn proxied_requests_use_absolute_form_without_credentials() {
        let url = Url::parse("http://u:p@h/x").unwrap();
        let proxy = Url::parse("http://pu:pp@proxy:3128").unwrap();
        let mut p = parts(&url, &[]);
        p.via_proxy = Some(&proxy);
        let head = head_of(&p);
        assert!(head.starts_with("GET http://h/x HTTP/1.1\r\n"));
        assert!(head.contains("Proxy-Authorization: Basic cHU6cHA=\r\n"));
    }

    #[test]
    fn header_injection_is_refused() {
        assert!(check_header("X-A", "b\r\nEvil: 1").is_err());
        assert!(check_header("X A", "b").is_err());
        assert!(check_header("", "b").is_err());
        assert!(check_header("X-A", "b c").is_ok());
        for name in ["Range", "range", "IF-RANGE"] {
            assert!(check_header(name, "bytes=0-9").is_ok());
            assert!(check_client_header(name, "bytes=0-9").is_err(), "{name}");
        }
        assert!(check_client_header("X-Range", "1").is_ok());
        for (name, value) in [
            ("Content-Length", "5"),
            ("transfer-encoding", "chunked"),
            ("Accept-Encoding", "gzip"),
        ] {
            let err = check_header(name, value).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains(name), "{err}");
        }
        assert!(check_header("Accept-Encoding", "identity").is_ok());
    }

    #[test]
    fn percent_decoding_leaves_malformed_escapes() {
        assert_eq!(percent_decode("a%20b%zz%4"), b"a b%zz%4");
    }
}
