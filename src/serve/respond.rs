//! From a request head to an answer: status, header fields, and a body to
//! send (nothing, bytes, or a span of an open file).
//!
//! Owns the HTTP decisions of a static file server — methods, `Host`,
//! redirects to a directory's slash form, validators, `Range`/`If-Range`,
//! and writing the response head. The bytes on the wire and the connection
//! are `conn`'s; paths are `files`'; ranges are `range`'s.

use std::fs::File;
use std::path::Path;

use super::files::{self, Refusal, Resolved};
use super::range::{self, Answer};
use super::request::RequestHead;

/// What is sent after the head.
#[derive(Debug)]
pub enum Body {
    /// These bytes (a listing, an error text).
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `start`.
    File {
        /// The open file.
        file: File,
        /// The first byte sent.
        start: u64,
        /// How many bytes are sent.
        len: u64,
    },
}

impl Body {
    /// The body's length, for `Content-Length`.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

/// An answer, before it is written.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header fields besides the framing and connection ones.
    pub headers: Vec<(&'static str, String)>,
    /// The body (its length is sent even for HEAD).
    pub body: Body,
    /// The connection must close after this answer.
    pub close: bool,
}

impl Reply {
    /// A short plain-text answer with `status`.
    pub fn error(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".to_owned())],
            body: Body::Bytes(format!("{status} {}\n", reason(status)).into_bytes()),
            close: false,
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// Answers `head` from the directory `root` (canonical).
pub fn respond(root: &Path, head: &RequestHead) -> Reply {
    let is_get = head.method == "GET";
    if !is_get && head.method != "HEAD" {
        let mut reply = Reply::error(405).with("Allow", "GET, HEAD");
        reply.close = head.has_body();
        return reply;
    }
    // RFC 9112 3.2: an HTTP/1.1 request without exactly one Host is a 400.
    if head.minor_version == 1 && head.single("host").is_none() {
        let mut reply = Reply::error(400);
        reply.close = true;
        return reply;
    }
    let target = head.origin_target();
    let mut reply = match files::resolve(root, &target) {
        Err(Refusal::BadPath) => Reply::error(400),
        Err(Refusal::NotFound) => Reply::error(404),
        Ok(Resolved::Dir { .. }) if !path_of(&target).ends_with('/') => {
            let (path, query) = target.split_at(path_of(&target).len());
            // `//host` in a Location is another host (a network-path
            // reference): the leading slashes the path resolved through
            // are one.
            let path = format!("/{}", path.trim_start_matches('/'));
            Reply::error(301).with("Location", format!("{path}/{query}"))
        }
        Ok(Resolved::Dir { path, dir }) => match files::listing_of(&dir, &path) {
            Ok(text) => Reply {
                status: 200,
                headers: vec![("Content-Type", "text/plain; charset=utf-8".to_owned())],
                body: Body::Bytes(text),
                close: false,
            },
            Err(_) => Reply::error(403),
        },
        Ok(Resolved::File { path, file, meta }) => {
            let len = meta.len();
            let etag = files::etag(&meta);
            let modified = files::modified_secs(&meta);
            // Range is defined for GET only (RFC 9110 14.2); several Range
            // fields are malformed and ignored.
            let range = head.single("range").filter(|_| is_get);
            let applies = head
                .single("if-range")
                .is_none_or(|v| range::if_range_holds(v, &etag, modified));
            let answer = match range {
                Some(r) if applies => range::decide(r, len),
                _ => Answer::Full,
            };
            let reply = match answer {
                Answer::Full => Reply {
                    status: 200,
                    headers: Vec::new(),
                    body: Body::File {
                        file,
                        start: 0,
                        len,
                    },
                    close: false,
                },
                Answer::Partial(span) => Reply {
                    status: 206,
                    headers: Vec::new(),
                    body: Body::File {
                        file,
                        start: span.start,
                        len: span.len(),
                    },
                    close: false,
                }
                .with(
                    "Content-Range",
                    format!("bytes {}-{}/{len}", span.start, span.end),
                ),
                Answer::Unsatisfiable => {
                    Reply::error(416).with("Content-Range", format!("bytes */{len}"))
                }
            };
            let reply = if reply.status == 416 {
                reply
            } else {
                reply.with("Content-Type", files::content_type(&path))
            };
            reply
                .with("Accept-Ranges", "bytes")
                .with("ETag", etag)
                .with("Last-Modified", crate::http::date::format(modified))
        }
    };
    reply.close |= head.has_body();
    reply
}

/// Writes the status line and header section of `reply` to `out`; `close`
/// decides the `Connection` field, `http10_keep_alive` echoes a 1.0
/// client's `keep-alive`.
pub fn write_head(
    out: &mut Vec<u8>,
    reply: &Reply,
    close: bool,
    http10_keep_alive: bool,
    now: u64,
) {
    use std::fmt::Write;
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\nServer: partfetch/{}\r\nDate: {}\r\nContent-Length: {}\r\n",
        reply.status,
        reason(reply.status),
        env!("CARGO_PKG_VERSION"),
        crate::http::date::format(now),
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    } else if http10_keep_alive {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
}

/// The path part of a target (before `?` or `#`).
fn path_of(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or("")
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Root(std::path::PathBuf);

    impl Root {
        fn new(label: &str) -> Root {
            let p = std::env::temp_dir()
                .join(format!("partfetch-respond-{label}-{}", std::process::id()));
            std::fs::create_dir_all(p.join("dir")).unwrap();
            std::fs::write(p.join("ten.bin"), b"0123456789").unwrap();
            std::fs::write(p.join("film.parts"), b"a\n").unwrap();
            Root(p.canonicalize().unwrap())
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ask(root: &Root, text: &str) -> Reply {
        let head = super::super::request::parse(text.as_bytes())
            .unwrap()
            .unwrap()
            .0;
        respond(&root.0, &head)
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn range_and_if_range_choose_the_status() {
        let root = Root::new("range");
        let full = ask(&root, "GET /ten.bin HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((full.status, full.body.len()), (200, 10));
        let etag = header(&full, "etag").unwrap().to_owned();
        let part = ask(
            &root,
            "GET /ten.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=-3\r\n\r\n",
        );
        assert_eq!((part.status, part.body.len()), (206, 3));
        assert_eq!(header(&part, "content-range"), Some("bytes 7-9/10"));
        let past = ask(
            &root,
            "GET /ten.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=10-\r\n\r\n",
        );
        assert_eq!(past.status, 416);
        assert_eq!(header(&past, "content-range"), Some("bytes */10"));
        let same = format!(
            "GET /ten.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=2-\r\nIf-Range: {etag}\r\n\r\n"
        );
        assert_eq!(ask(&root, &same).status, 206);
        let changed =
            "GET /ten.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=2-\r\nIf-Range: \"x\"\r\n\r\n";
        assert_eq!(ask(&root, changed).status, 200);
        let head = ask(
            &root,
            "HEAD /ten.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=2-\r\n\r\n",
        );
        assert_eq!((head.status, head.body.len()), (200, 10));
    }

    #[test]
    fn manifests_directories_and_refusals() {
        let root = Root::new("misc");
        let parts = ask(&root, "GET /film.parts HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(header(&parts, "content-type"), Some("text/parts-manifest"));
        let redirect = ask(&root, "GET /dir?x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(redirect.status, 301);
        assert_eq!(header(&redirect, "location"), Some("/dir/?x"));
        // Not `//dir/`, which a browser would read as the host `dir`.
        let doubled = ask(&root, "GET //dir HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(header(&doubled, "location"), Some("/dir/"));
        let absolute = ask(&root, "GET http://h/film.parts HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(absolute.status, 200);
        let redirect = ask(&root, "GET http://h/dir?x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(header(&redirect, "location"), Some("/dir/?x"));
        let listing = ask(&root, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(matches!(&listing.body, Body::Bytes(b) if b == b"dir/\nfilm.parts\nten.bin\n"));
        assert_eq!(
            ask(&root, "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n").status,
            404
        );
        assert_eq!(
            ask(&root, "GET /../x HTTP/1.1\r\nHost: h\r\n\r\n").status,
            400
        );
        assert_eq!(ask(&root, "GET / HTTP/1.1\r\n\r\n").status, 400);
        let post = ask(
            &root,
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
        );
        assert_eq!((post.status, post.close), (405, true));
    }
}
