//! What the test server sends back: a [`Reply`] is a status, headers and a
//! [`Body`] that says how the body is framed (or mis-framed) on the wire.
//!
//! A reply is rendered into [`Step`]s (bytes to write, pauses) by
//! [`Reply::into_steps`]; the server writes them and then keeps the
//! connection open or closes it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::server::Request;

/// One thing the server does on the wire.
#[derive(Clone, Debug)]
pub enum Step {
    /// Write these bytes (and flush).
    Write(Vec<u8>),
    /// Wait this long without writing or closing.
    Sleep(Duration),
    /// Wait without writing or closing until the test sets the flag, or
    /// this long at most: a stall that ends when the test has seen what it
    /// waits for, and cannot hang it when it never does.
    Until(Arc<AtomicBool>, Duration),
}

/// One chunk of a chunked body.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// The chunk's data.
    pub data: Vec<u8>,
    /// Written after the size, e.g. `;name=value`; empty for none.
    pub extension: String,
}

/// How the body is sent.
#[derive(Clone, Debug)]
pub enum Body {
    /// `Content-Length` framing; the header is added unless the reply
    /// already has one (so a test can lie or duplicate it).
    Sized(Vec<u8>),
    /// No length header; the connection is closed after the bytes.
    CloseDelimited(Vec<u8>),
    /// `Transfer-Encoding: chunked` (added unless the reply already has a
    /// Transfer-Encoding header).
    Chunked {
        /// The data chunks, before the last (zero-size) chunk.
        chunks: Vec<Chunk>,
        /// Trailer fields after the last chunk.
        trailers: Vec<(String, String)>,
        /// Whether the last chunk is sent; if not, the connection is
        /// closed after the data chunks.
        complete: bool,
    },
    /// Steps written as they are after the head; no framing header is
    /// added; the connection is closed afterwards unless the steps write
    /// exactly the `Content-Length` the reply carries.
    Steps(Vec<Step>),
}

/// Whether [`Reply::file`] honours a `Range` request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranges {
    /// `Range: bytes=a-b`, `a-`, `-n` get 206 with Content-Range; an
    /// unsatisfiable range gets 416.
    Honour,
    /// Always 200 with the whole body.
    Ignore,
    /// Like `Honour`, but a 206 carries at most this many bytes from the
    /// first one asked for (some servers cap the size of a range).
    Capped(u64),
}

/// A response, built by a handler.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The reason phrase; a standard one when `None`.
    pub reason: Option<String>,
    /// Header fields, in order, as written.
    pub headers: Vec<(String, String)>,
    /// The body and its framing.
    pub body: Body,
    /// Waited before anything is written.
    pub delay: Duration,
    /// Close the connection after this reply (without saying so unless a
    /// `Connection: close` header is added too).
    pub close: bool,
    /// If set, these steps are the whole response: no head is rendered, and
    /// the connection is closed afterwards.
    pub raw: Option<Vec<Step>>,
    /// Written with Nagle's algorithm on (no `TCP_NODELAY`), the head and the
    /// body in two sends, as Python's `http.server` does: the body waits
    /// until the client acknowledges the head.
    pub split_head: bool,
    /// The answer to a HEAD request: the head as a GET's, no body, as a
    /// real server answers (set by the server, see [`Reply::for_head`]).
    pub head_only: bool,
}

impl Reply {
    /// `status` with an empty sized body.
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            reason: None,
            headers: Vec::new(),
            body: Body::Sized(Vec::new()),
            delay: Duration::ZERO,
            close: false,
            raw: None,
            split_head: false,
            head_only: false,
        }
    }

    /// 200 with `body` and a Content-Length.
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(200).body(Body::Sized(body.into()))
    }

    /// `status` with a short text body and a Content-Length.
    pub fn status(status: u16) -> Reply {
        Reply::new(status).body(Body::Sized(
            format!("{} {}\n", status, standard_reason(status)).into_bytes(),
        ))
    }

    /// A redirect to `location`, with a small body (so a client must read
    /// or skip it to reuse the connection).
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::new(status)
            .header("Location", location)
            .body(Body::Sized(format!("moved to {location}\n").into_bytes()))
    }

    /// 200 with a chunked body made of `chunks` (no extensions) and no trailers.
    pub fn chunked<I, C>(chunks: I) -> Reply
    where
        I: IntoIterator<Item = C>,
        C: Into<Vec<u8>>,
    {
        Reply::new(200).body(Body::Chunked {
            chunks: chunks
                .into_iter()
                .map(|c| Chunk {
                    data: c.into(),
                    extension: String::new(),
                })
                .collect(),
            trailers: Vec::new(),
            complete: true,
        })
    }

    /// 200 with `body` and no length: the end is the connection closing.
    pub fn close_delimited(body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(200).body(Body::CloseDelimited(body.into()))
    }

    /// 200 that declares `Content-Length: declared` but sends only `sent`,
    /// then closes.
    pub fn truncated(declared: u64, sent: impl Into<Vec<u8>>) -> Reply {
        let sent: Vec<u8> = sent.into();
        Reply::new(200)
            .header("Content-Length", &declared.to_string())
            .body(Body::Steps(vec![Step::Write(sent)]))
    }

    /// 200 that declares `Content-Length: declared`, sends `sent`, then
    /// waits `stall` without closing (and closes after that).
    pub fn stall(declared: u64, sent: impl Into<Vec<u8>>, stall: Duration) -> Reply {
        Reply::new(200)
            .header("Content-Length", &declared.to_string())
            .body(Body::Steps(vec![
                Step::Write(sent.into()),
                Step::Sleep(stall),
            ]))
    }

    /// 200 with a Content-Length, its body written `piece` bytes at a time
    /// with `pause` between pieces.
    pub fn paced(body: &[u8], piece: usize, pause: Duration) -> Reply {
        let mut steps: Vec<Step> = Vec::new();
        for (i, part) in body.chunks(piece.max(1)).enumerate() {
            if i > 0 {
                steps.push(Step::Sleep(pause));
            }
            steps.push(Step::Write(part.to_vec()));
        }
        Reply::new(200)
            .header("Content-Length", &body.len().to_string())
            .body(Body::Steps(steps))
    }

    /// These bytes are the whole response; then the connection is closed.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::raw_steps(vec![Step::Write(bytes.into())])
    }

    /// These steps are the whole response; then the connection is closed.
    pub fn raw_steps(steps: Vec<Step>) -> Reply {
        let mut reply: Reply = Reply::new(200);
        reply.raw = Some(steps);
        reply
    }

    /// `body` as a file: 200, or 206 with Content-Range for a single
    /// `Range: bytes=...` when `ranges` is [`Ranges::Honour`], or 416.
    pub fn file(request: &Request, body: &[u8], ranges: Ranges) -> Reply {
        let total: u64 = body.len() as u64;
        let range: Option<&str> = match ranges {
            Ranges::Honour | Ranges::Capped(_) => request.header("range"),
            Ranges::Ignore => None,
        };
        let reply: Reply = match range.map(|r| parse_range(r, total)) {
            None | Some(RangeSpec::Invalid) => Reply::ok(body.to_vec()),
            Some(RangeSpec::Unsatisfiable) => {
                Reply::new(416).header("Content-Range", &format!("bytes */{total}"))
            }
            Some(RangeSpec::Bytes(first, last)) => {
                let last = match ranges {
                    Ranges::Capped(cap) => last.min(first + cap.max(1) - 1),
                    _ => last,
                };
                Reply::new(206)
                    .header("Content-Range", &format!("bytes {first}-{last}/{total}"))
                    .body(Body::Sized(body[first as usize..=last as usize].to_vec()))
            }
        };
        match ranges {
            Ranges::Honour | Ranges::Capped(_) => reply.header("Accept-Ranges", "bytes"),
            Ranges::Ignore => reply,
        }
    }

    /// Adds a header field (after any already there).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: Body) -> Reply {
        self.body = body;
        self
    }

    /// Replaces the reason phrase.
    pub fn reason(mut self, reason: &str) -> Reply {
        self.reason = Some(reason.to_owned());
        self
    }

    /// Waits `delay` before answering.
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Writes the head and the body in two sends with Nagle's algorithm on
    /// (see [`Reply::split_head`](Reply#structfield.split_head)).
    pub fn split_head(mut self) -> Reply {
        self.split_head = true;
        self
    }

    /// Closes the connection after this reply, without a header saying so.
    pub fn then_close(mut self) -> Reply {
        self.close = true;
        self
    }

    /// This reply as the answer to a HEAD: the same head, no body. A raw
    /// reply is written as scripted.
    pub fn for_head(mut self) -> Reply {
        self.head_only = true;
        self
    }

    /// Whether a header named `name` (any case) is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The bytes and pauses to send, and whether to close afterwards.
    pub fn into_steps(self) -> (Vec<Step>, bool) {
        let mut steps: Vec<Step> = Vec::new();
        if !self.delay.is_zero() {
            steps.push(Step::Sleep(self.delay));
        }
        if let Some(raw) = self.raw {
            steps.extend(raw);
            return (steps, true);
        }
        let says_close: bool = self
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        let mut head: String = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status,
            self.reason
                .as_deref()
                .unwrap_or(standard_reason(self.status))
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let has_length: bool = self.has_header("content-length");
        let has_te: bool = self.has_header("transfer-encoding");
        let (body_steps, close_after): (Vec<Step>, bool) = match self.body {
            Body::Sized(bytes) => {
                if !has_length {
                    head.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
                }
                (vec![Step::Write(bytes)], false)
            }
            Body::CloseDelimited(bytes) => (vec![Step::Write(bytes)], true),
            Body::Chunked {
                chunks,
                trailers,
                complete,
            } => {
                if !has_te {
                    head.push_str("Transfer-Encoding: chunked\r\n");
                }
                let mut out: Vec<u8> = Vec::new();
                for chunk in chunks {
                    out.extend_from_slice(
                        format!("{:x}{}\r\n", chunk.data.len(), chunk.extension).as_bytes(),
                    );
                    out.extend_from_slice(&chunk.data);
                    out.extend_from_slice(b"\r\n");
                }
                if complete {
                    out.extend_from_slice(b"0\r\n");
                    for (name, value) in trailers {
                        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                    }
                    out.extend_from_slice(b"\r\n");
                }
                (vec![Step::Write(out)], !complete)
            }
            // Kept alive only when the steps write exactly the length the
            // head announces, as a real server's paced response would.
            Body::Steps(body_steps) => {
                let written: usize = body_steps
                    .iter()
                    .map(|step| match step {
                        Step::Write(bytes) => bytes.len(),
                        _ => 0,
                    })
                    .sum();
                let announced: Option<usize> = self
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok());
                (body_steps, announced != Some(written))
            }
        };
        head.push_str("\r\n");
        steps.push(Step::Write(head.into_bytes()));
        if self.head_only {
            return (steps, self.close || says_close);
        }
        steps.extend(body_steps);
        (steps, self.close || says_close || close_after)
    }
}

/// A parsed single `Range` header.
enum RangeSpec {
    /// First and last byte, inclusive, within the body.
    Bytes(u64, u64),
    /// Well-formed but outside the body.
    Unsatisfiable,
    /// Not something this server understands: ignored (200).
    Invalid,
}

fn parse_range(header: &str, total: u64) -> RangeSpec {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeSpec::Invalid;
    };
    if spec.contains(',') {
        return RangeSpec::Invalid;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeSpec::Invalid;
    };
    let (first, last): (&str, &str) = (first.trim(), last.trim());
    if first.is_empty() {
        // `-n`: the last n bytes.
        let Ok(n) = last.parse::<u64>() else {
            return RangeSpec::Invalid;
        };
        if n == 0 || total == 0 {
            return RangeSpec::Unsatisfiable;
        }
        return RangeSpec::Bytes(total.saturating_sub(n), total - 1);
    }
    let Ok(first) = first.parse::<u64>() else {
        return RangeSpec::Invalid;
    };
    let last: u64 = if last.is_empty() {
        total.saturating_sub(1)
    } else {
        match last.parse::<u64>() {
            Ok(l) if l >= first => l.min(total.saturating_sub(1)),
            _ => return RangeSpec::Invalid,
        }
    };
    if first >= total {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Bytes(first, last)
}

/// The usual reason phrase for `status`.
pub fn standard_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}
