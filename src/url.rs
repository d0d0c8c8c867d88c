//! HTTP and HTTPS URLs: parsing, and resolving relative references.
//!
//! Owns the split of a reference into its components (RFC 3986 appendix B),
//! reference resolution (section 5.2, with `remove_dot_segments`) and the
//! checks that make a [`Url`] something this client can fetch: an `http` or
//! `https` scheme, a host (a name, an IPv4 address or a bracketed IPv6
//! literal), a port. Percent-encoding is kept as given; bytes that may not
//! appear in a request target (spaces, non-ASCII) are percent-encoded, and
//! control characters are refused. The fragment is dropped: it is never sent.
//!
//! It does not resolve names or know about proxies; that is `http::conn`.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// The longest URL accepted, in bytes. Manifest lines are at most 8 KiB, and
/// servers commonly refuse request targets beyond that.
pub const MAX_URL_LEN: usize = 16 * 1024;

/// The schemes this client fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP, port 80 by default.
    Http,
    /// HTTP over TLS, port 443 by default.
    Https,
}

impl Scheme {
    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// An absolute `http` or `https` URL, checked and normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    scheme: Scheme,
    userinfo: Option<String>,
    /// Lower-cased; an IPv6 literal keeps its brackets.
    host: String,
    port: Option<u16>,
    /// Starts with `/`.
    path: String,
    query: Option<String>,
}

/// The (scheme, host, port) triple: credentials and cookies never cross it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The scheme.
    pub scheme: Scheme,
    /// The host, lower-cased, IPv6 literals in brackets.
    pub host: String,
    /// The port, the scheme's default filled in.
    pub port: u16,
}

impl Url {
    /// Parses an absolute URL. Surrounding whitespace is ignored.
    pub fn parse(input: &str) -> Result<Url> {
        let input = input.trim();
        let parts = split_reference(input).map_err(|e| e.with_subject(input))?;
        let scheme = parts.scheme.ok_or_else(|| {
            Error::new(ErrorKind::Url, "not an absolute URL (no scheme)").with_subject(input)
        })?;
        let authority = parts
            .authority
            .ok_or_else(|| Error::new(ErrorKind::Url, "URL has no host").with_subject(input))?;
        Url::from_parts(
            scheme,
            authority,
            &remove_dot_segments(parts.path),
            parts.query,
        )
        .map_err(|e| e.with_subject(input))
    }

    /// Resolves `reference` against this URL (RFC 3986 section 5.2).
    pub fn join(&self, reference: &str) -> Result<Url> {
        let reference = reference.trim();
        let r = split_reference(reference).map_err(|e| e.with_subject(reference))?;
        let resolved = if let Some(scheme) = r.scheme {
            let authority = r.authority.ok_or_else(|| {
                Error::new(ErrorKind::Url, "URL has no host").with_subject(reference)
            })?;
            Url::from_parts(scheme, authority, &remove_dot_segments(r.path), r.query)
        } else if let Some(authority) = r.authority {
            Url::from_parts(
                self.scheme.as_str(),
                authority,
                &remove_dot_segments(r.path),
                r.query,
            )
        } else {
            let (path, query) = if r.path.is_empty() {
                (self.path.clone(), r.query.or(self.query.as_deref()))
            } else if r.path.starts_with('/') {
                (remove_dot_segments(r.path), r.query)
            } else {
                let dir = &self.path[..self.path.rfind('/').map_or(0, |i| i + 1)];
                (remove_dot_segments(&format!("{dir}{}", r.path)), r.query)
            };
            let mut url = self.clone();
            url.path = normalise_component(&path, false)?;
            if url.path.is_empty() {
                url.path.push('/');
            }
            url.query = query.map(|q| normalise_component(q, true)).transpose()?;
            // Percent-encoding can triple a reference's length.
            url.within_length_limit()
        };
        resolved.map_err(|e| e.with_subject(reference))
    }

    fn from_parts(scheme: &str, authority: &str, path: &str, query: Option<&str>) -> Result<Url> {
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(Error::new(
                ErrorKind::Url,
                format!("unsupported scheme {scheme:?} (only http and https)"),
            ));
        };
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        if let Some(info) = userinfo {
            check_chars(info, |b| {
                is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'%'
            })?;
        }
        let (host, port_text) = if host_port.starts_with('[') {
            let close = host_port.find(']').ok_or_else(|| {
                Error::new(ErrorKind::Url, "IPv6 address without a closing bracket")
            })?;
            let literal = &host_port[1..close];
            if literal.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(Error::new(ErrorKind::Url, "invalid IPv6 address"));
            }
            let rest = &host_port[close + 1..];
            let port = match rest.strip_prefix(':') {
                Some(p) => p,
                None if rest.is_empty() => "",
                None => return Err(Error::new(ErrorKind::Url, "junk after IPv6 address")),
            };
            (host_port[..=close].to_ascii_lowercase(), port)
        } else {
            let (host, port) = match host_port.rfind(':') {
                Some(colon) => (&host_port[..colon], &host_port[colon + 1..]),
                None => (host_port, ""),
            };
            check_chars(host, |b| is_unreserved(b) || is_sub_delim(b) || b == b'%')?;
            (host.to_ascii_lowercase(), port)
        };
        if host.is_empty() {
            return Err(Error::new(ErrorKind::Url, "URL has an empty host"));
        }
        let port = if port_text.is_empty() {
            None
        } else if port_text.bytes().all(|b| b.is_ascii_digit()) && port_text.len() <= 5 {
            match port_text.parse::<u16>() {
                Ok(p) if p != 0 => Some(p),
                _ => return Err(Error::new(ErrorKind::Url, "port out of range")),
            }
        } else {
            return Err(Error::new(ErrorKind::Url, "invalid port"));
        };
        let port = port.filter(|&p| p != scheme.default_port());
        let mut path = normalise_component(path, false)?;
        if path.is_empty() {
            path.push('/');
        }
        let query = query.map(|q| normalise_component(q, true)).transpose()?;
        let url = Url {
            scheme,
            userinfo: userinfo.filter(|u| !u.is_empty()).map(str::to_owned),
            host,
            port,
            path,
            query,
        };
        url.within_length_limit()
    }

    /// This URL, unless its text is longer than [`MAX_URL_LEN`].
    fn within_length_limit(self) -> Result<Url> {
        if self.to_string().len() > MAX_URL_LEN {
            return Err(Error::new(
                ErrorKind::Limit,
                format!("URL longer than {MAX_URL_LEN} bytes"),
            ));
        }
        Ok(self)
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host as written in the URL (lower-cased; IPv6 in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host in the form a resolver takes (IPv6 without brackets).
    pub fn host_for_connect(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The port, the scheme's default filled in.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// `user:password` as given, still percent-encoded.
    pub fn userinfo(&self) -> Option<&str> {
        self.userinfo.as_deref()
    }

    /// The path, starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query, without its `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The path and query, as sent in an origin-form request line.
    pub fn request_target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }

    /// `host` or `host:port`, as sent in the `Host` header.
    pub fn host_header(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }

    /// Scheme, host and port.
    pub fn origin(&self) -> Origin {
        Origin {
            scheme: self.scheme,
            host: self.host.clone(),
            port: self.port(),
        }
    }

    /// The last segment of the path, percent-encoding kept.
    pub fn last_segment(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }

    /// This URL with `userinfo` as its credentials.
    pub fn with_userinfo(&self, userinfo: Option<&str>) -> Url {
        Url {
            userinfo: userinfo.map(str::to_owned),
            ..self.clone()
        }
    }

    /// The URL without credentials, for messages and logs.
    pub fn redacted(&self) -> Url {
        Url {
            userinfo: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some(info) = &self.userinfo {
            write!(f, "{info}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Url {
    type Err = Error;
    fn from_str(s: &str) -> Result<Url> {
        Url::parse(s)
    }
}

/// The five components of a URI reference (RFC 3986 appendix B).
struct Reference<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn split_reference(input: &str) -> Result<Reference<'_>> {
    if input.len() > MAX_URL_LEN {
        return Err(Error::new(
            ErrorKind::Limit,
            format!("URL longer than {MAX_URL_LEN} bytes"),
        ));
    }
    if let Some(bad) = input.bytes().find(|b| b.is_ascii_control()) {
        return Err(Error::new(
            ErrorKind::Url,
            format!("URL contains control character 0x{bad:02x}"),
        ));
    }
    let mut rest = input;
    if let Some(hash) = rest.find('#') {
        rest = &rest[..hash];
    }
    let mut scheme = None;
    if let Some(colon) = rest.find(':') {
        let candidate = &rest[..colon];
        let valid = candidate
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && candidate
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if valid {
            scheme = Some(candidate);
            rest = &rest[colon + 1..];
        }
    }
    let mut query = None;
    if let Some(q) = rest.find('?') {
        query = Some(&rest[q + 1..]);
        rest = &rest[..q];
    }
    let mut authority = None;
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        authority = Some(&after[..end]);
        rest = &after[end..];
    }
    Ok(Reference {
        scheme,
        authority,
        path: rest,
        query,
    })
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if i == 0 && absolute {
            continue;
        }
        match *segment {
            "." => {
                if i == last {
                    output.push("");
                }
            }
            ".." => {
                output.pop();
                if i == last {
                    output.push("");
                }
            }
            s => output.push(s),
        }
    }
    let joined = output.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

fn check_chars(text: &str, allowed: impl Fn(u8) -> bool) -> Result<()> {
    match text.bytes().find(|&b| !allowed(b)) {
        None => Ok(()),
        Some(b) => Err(Error::new(
            ErrorKind::Url,
            format!("invalid character {:?} in host or user info", b as char),
        )),
    }
}

/// Percent-encodes the bytes that may not stand in a path or query as they
/// are; keeps existing escapes.
fn normalise_component(text: &str, is_query: bool) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        let keep = is_unreserved(b)
            || is_sub_delim(b)
            || matches!(b, b':' | b'@' | b'/' | b'%')
            || (is_query && b == b'?');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_components_and_defaults() {
        let url = Url::parse("HTTP://User:pw@Example.COM:8080/a/b?x=1#frag").unwrap();
        assert_eq!(url.scheme(), Scheme::Http);
        assert_eq!(url.userinfo(), Some("User:pw"));
        assert_eq!(url.host(), "example.com");
        assert_eq!(url.port(), 8080);
        assert_eq!(url.request_target(), "/a/b?x=1");
        assert_eq!(url.to_string(), "http://User:pw@example.com:8080/a/b?x=1");
        let url = Url::parse("https://h").unwrap();
        assert_eq!((url.port(), url.path()), (443, "/"));
        assert_eq!(Url::parse("http://h:80/").unwrap().to_string(), "http://h/");
    }

    #[test]
    fn ipv6_literals_keep_brackets_for_host_header_only() {
        let url = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(url.host(), "[::1]");
        assert_eq!(url.host_for_connect(), "::1");
        assert_eq!(url.host_header(), "[::1]:8080");
        assert!(Url::parse("http://[::g]/").is_err());
        assert!(Url::parse("http://[::1/").is_err());
    }

    #[test]
    fn refuses_what_cannot_be_fetched() {
        for bad in [
            "ftp://h/x",
            "h/x",
            "http:///x",
            "http://h:99999/",
            "http://h:0/",
            "http://h:8a/",
            "http://h/a\nb",
            "http://a b/",
            "",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn percent_encodes_spaces_and_non_ascii_but_keeps_escapes() {
        let url = Url::parse("http://h/a b/é?q=%2F x").unwrap();
        assert_eq!(url.request_target(), "/a%20b/%C3%A9?q=%2F%20x");
    }

    #[test]
    fn resolves_the_rfc_3986_normal_examples() {
        let base = Url::parse("http://a/b/c/d;p?q").unwrap();
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("https://x:8443/y", "https://x:8443/y"),
        ];
        for (reference, expected) in cases {
            assert_eq!(
                base.join(reference).unwrap().to_string(),
                expected,
                "{reference}"
            );
        }
    }

    #[test]
    fn a_resolved_url_parses_again_to_itself() {
        let base = Url::parse("http://a/b/c").unwrap();
        for reference in ["x y", "../%41", "//[::1]:81/p?q", "?a?b", "/é"] {
            let resolved = base.join(reference).unwrap();
            assert_eq!(Url::parse(&resolved.to_string()).unwrap(), resolved);
        }
    }

    #[test]
    fn a_relative_reference_cannot_grow_a_url_past_the_limit() {
        let base = Url::parse("http://h/dir/").unwrap();
        // 6000 spaces are 18 000 bytes once percent-encoded.
        for reference in [
            format!("a{}b", " ".repeat(6000)),
            format!("?a{}b", " ".repeat(6000)),
        ] {
            assert!(reference.len() < MAX_URL_LEN);
            let err = base.join(&reference).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Limit);
            assert_eq!(err.message(), "URL longer than 16384 bytes");
        }
        // Up to the limit, a resolved URL parses again to itself.
        let fits = format!("a{}b", " ".repeat(5000));
        let resolved = base.join(&fits).unwrap();
        assert_eq!(Url::parse(&resolved.to_string()).unwrap(), resolved);
    }

    #[test]
    fn origin_fills_in_default_ports() {
        let a = Url::parse("https://h/x").unwrap();
        let b = Url::parse("https://h:443/y").unwrap();
        let c = Url::parse("http://h/x").unwrap();
        assert_eq!(a.origin(), b.origin());
        assert_ne!(a.origin(), c.origin());
    }
}
