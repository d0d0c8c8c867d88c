//! One request and its response, over a pooled connection, through redirects.
//!
//! Owns the sequence that ties the protocol pieces to a connection:
//!
//! ```text
//!   take idle connection ─┬─ send head ─ read head ─ framing ─┬─ redirect? ── next hop
//!   or open a new one     │  (a reused connection that fails  │
//!                         │   before any byte is reopened)    └─ Response { body }
//! ```
//!
//! It returns every status to the caller; [`Response::error_for_status`]
//! turns the unsuccessful ones into typed errors.

use std::sync::Arc;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, EventSink};
use crate::http::body::{HttpBody, ReturnTo};
use crate::http::conn::{ConnectSettings, Connection};
use crate::http::pool::{Pool, PoolKey};
use crate::http::proxy::ProxySettings;
use crate::http::redirect;
use crate::http::request::{self, ByteRange, Method, RequestParts};
use crate::http::response::{framing, Head};
use crate::http::socket::Watch;
use crate::source::ByteSource;
use crate::url::{Scheme, Url};

/// The most bytes of a redirect's body read to keep its connection; a
/// longer body is dropped with the connection.
const REDIRECT_BODY_DRAIN: u64 = 64 * 1024;

/// What every exchange of a client shares.
#[derive(Clone)]
pub(crate) struct HttpSettings {
    pub(crate) connect: ConnectSettings,
    pub(crate) pool: Arc<Pool>,
    pub(crate) proxies: ProxySettings,
    pub(crate) user_agent: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) max_redirects: u32,
    pub(crate) events: Option<EventSink>,
    /// Stops this client's requests and reads.
    pub(crate) cancel: Cancel,
    /// When set, the user's `Authorization`, `Cookie` and
    /// `Proxy-Authorization` go only to this origin: that of the URL the
    /// user asked for, not the other hosts a manifest lists.
    pub(crate) credentials_origin: Option<crate::url::Origin>,
}

/// A request to send: a method, a URL, an optional range, extra headers.
#[derive(Debug, Clone)]
pub struct Request {
    url: Url,
    method: Method,
    range: Option<ByteRange>,
    if_range: Option<String>,
    headers: Vec<(String, String)>,
    watch: Option<Watch>,
    accept_gzip: bool,
}

impl Request {
    /// A `GET` of `url`.
    pub fn get(url: Url) -> Request {
        Request {
            url,
            method: Method::Get,
            range: None,
            if_range: None,
            headers: Vec::new(),
            watch: None,
            accept_gzip: false,
        }
    }

    /// A `HEAD` of `url`.
    pub fn head(url: Url) -> Request {
        Request {
            method: Method::Head,
            ..Request::get(url)
        }
    }

    /// Asks for bytes `start..=end` (or `start..` with `None`).
    pub fn range(mut self, start: u64, end: Option<u64>) -> Request {
        self.range = Some(ByteRange { start, end });
        self
    }

    /// Sends `If-Range` with the range, so a changed resource comes whole.
    pub fn if_range(mut self, validator: impl Into<String>) -> Request {
        self.if_range = Some(validator.into());
        self
    }

    /// Asks for the body gzip-encoded, unless a range is asked for (a range
    /// goes as stored). The caller decodes what comes
    /// ([`GunzipBody`](crate::http::decoded::GunzipBody)).
    #[cfg(feature = "gzip")]
    pub(crate) fn accept_gzip(mut self) -> Request {
        self.accept_gzip = true;
        self
    }

    /// Adds a header; names and values with line breaks are refused.
    pub fn header(mut self, name: &str, value: &str) -> Result<Request> {
        request::check_header(name, value)?;
        self.headers.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// Watches the waits for the response and its body with `watch`, which
    /// may give them up (see [`Watch`]).
    pub(crate) fn watch(mut self, watch: Watch) -> Request {
        self.watch = Some(watch);
        self
    }

    /// The URL requested.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// A response: its head, the URL that gave it, and its body.
pub struct Response {
    head: Head,
    url: Url,
    redirects: Vec<Url>,
    body: HttpBody,
    /// The proxy that relayed a plain-HTTP request, whose own refusals
    /// (403, 407, 502) come as the answer.
    proxy: Option<Url>,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The head, with every header.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The first value of header `name`, case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The URL that answered, after redirects.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Every URL requested, the first one included.
    pub fn redirect_chain(&self) -> &[Url] {
        &self.redirects
    }

    /// The length of the body when the server announced it.
    pub fn content_length(&self) -> Option<u64> {
        if self.head.has_token("transfer-encoding", "chunked") {
            return None;
        }
        self.head.content_length()
    }

    /// `(first, last, total)` from a `Content-Range: bytes a-b/n` header.
    pub fn content_range(&self) -> Option<(u64, u64, Option<u64>)> {
        let value = self.header("content-range")?.strip_prefix("bytes ")?;
        let (span, total) = value.split_once('/')?;
        let (first, last) = span.trim().split_once('-')?;
        let total = match total.trim() {
            "*" => None,
            n => Some(n.parse().ok()?),
        };
        Some((first.parse().ok()?, last.parse().ok()?, total))
    }

    /// The length a 416 tells in `Content-Range: bytes */LENGTH`: the
    /// resource's whole length, past which the range asked for began.
    pub fn unsatisfied_length(&self) -> Option<u64> {
        if self.head.status != 416 {
            return None;
        }
        let length = self.header("content-range")?.strip_prefix("bytes */")?;
        length.trim().parse().ok()
    }

    /// The body of this answer dropped, its connection kept when the body is
    /// short, and an empty body in its place. For a 416 that tells an empty
    /// resource ([`Response::unsatisfied_length`] of 0): a range from byte
    /// 0 of nothing is nothing, so the answer already gives every byte and
    /// asking again without `Range` would cost a second request for none.
    pub(crate) fn into_empty_body(self) -> HttpBody {
        let url = self.url.clone();
        self.body.discard(REDIRECT_BODY_DRAIN);
        HttpBody::empty(url)
    }

    /// The body.
    pub fn body(&mut self) -> &mut HttpBody {
        &mut self.body
    }

    /// The body, owning the connection.
    pub fn into_body(self) -> HttpBody {
        self.body
    }

    /// This response if its status is 2xx; otherwise the typed error:
    /// 404 and 410 are [`ErrorKind::NotFound`], the rest [`ErrorKind::Status`].
    pub fn error_for_status(self) -> Result<Response> {
        let status = self.head.status;
        if (200..300).contains(&status) {
            return Ok(self);
        }
        let kind = match status {
            404 | 410 => ErrorKind::NotFound,
            _ => ErrorKind::Status(status),
        };
        let mut message = match kind {
            ErrorKind::NotFound => format!("not found ({status})"),
            _ if self.head.reason.is_empty() => format!("HTTP status {status}"),
            _ => format!("HTTP status {status} {}", self.head.reason),
        };
        if let Some(proxy) = &self.proxy {
            // The answer may be the proxy's rather than the origin's.
            message.push_str(&format!(" (through the proxy {})", proxy.redacted()));
        }
        let url = self.url.redacted();
        self.body.discard(REDIRECT_BODY_DRAIN);
        Err(Error::new(kind, message).with_subject(url))
    }
}

impl ByteSource for Response {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        self.body.next_chunk()
    }
}

/// Sends `request`, following redirects up to the configured bound.
pub(crate) fn send(settings: &HttpSettings, request: &Request) -> Result<Response> {
    let first = &request.url;
    if let Some(validator) = &request.if_range {
        // A validator comes from a server or from a file saved by an
        // earlier run; either may hold what would end the header line.
        request::check_header("If-Range", validator)
            .map_err(|e| e.with_subject(first.redacted()))?;
    }
    let mut all_headers = match &settings.credentials_origin {
        Some(origin) if *origin != first.origin() => {
            redirect::headers_for_other_origin(&settings.headers)
        }
        _ => settings.headers.clone(),
    };
    all_headers.extend(request.headers.iter().cloned());
    let mut url = first.clone();
    let mut chain = vec![url.clone()];
    loop {
        settings.cancel.check()?;
        let headers = redirect::headers_for(first, &url, &all_headers);
        let (head, body) = exchange(settings, request, &url, &headers)?;
        // A part of a resource is never the whole of it: taken for the
        // resource, a 206 to a request without Range would end a download
        // short, as if complete (RFC 9110 15.3.7: sent only for a Range).
        let asked_for_a_range = request.range.is_some()
            || all_headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("range"));
        if head.status == 206 && !asked_for_a_range {
            return Err(Error::new(
                ErrorKind::Protocol,
                "206 Partial Content to a request without Range",
            )
            .with_subject(url.redacted()));
        }
        if !redirect::is_redirect(head.status) {
            let proxy = match url.scheme() {
                Scheme::Http => settings.proxies.for_url(&url).ok().flatten().cloned(),
                Scheme::Https => None,
            };
            return Ok(Response {
                head,
                url,
                redirects: chain,
                body,
                proxy,
            });
        }
        let next = redirect::target(&url, head.header_bytes("location"))
            .map_err(|e| e.with_subject(url.redacted()))?;
        body.discard(REDIRECT_BODY_DRAIN);
        chain.push(next.clone());
        if chain.len() > settings.max_redirects as usize + 1 {
            return Err(
                redirect::too_many(&chain, settings.max_redirects).with_subject(first.redacted())
            );
        }
        if redirect::is_downgrade(&url, &next) {
            let event = Event::InsecureRedirect {
                from: url.redacted().to_string(),
                to: next.redacted().to_string(),
            };
            crate::event::emit(&settings.events, event);
        }
        url = next;
    }
}

/// One request on one connection: the head and the body that follows it.
fn exchange(
    settings: &HttpSettings,
    request: &Request,
    url: &Url,
    headers: &[(String, String)],
) -> Result<(Head, HttpBody)> {
    let proxy = settings
        .proxies
        .for_url(url)
        .map_err(|e| e.with_subject(url.redacted()))?;
    let key = PoolKey::new(url, proxy);
    let mut bytes = Vec::with_capacity(512);
    request::write_head(
        &mut bytes,
        &RequestParts {
            method: request.method,
            url,
            // HTTPS through a proxy is tunnelled, so the request is origin-form.
            via_proxy: proxy.filter(|_| url.scheme() == Scheme::Http),
            user_agent: &settings.user_agent,
            range: request.range,
            if_range: request.if_range.as_deref(),
            extra: headers,
            accept_gzip: request.accept_gzip,
        },
    );
    loop {
        let (mut conn, reused) = match settings.pool.take(&key) {
            Some(conn) => (conn, true),
            None => (
                Connection::open(url, proxy, &settings.connect).map_err(|e| {
                    // A connect cannot be interrupted; cancelled meanwhile,
                    // its failure (a timeout, most likely) is not the news.
                    settings
                        .cancel
                        .check()
                        .err()
                        .unwrap_or(e)
                        .with_subject(url.redacted())
                })?,
                false,
            ),
        };
        conn.set_watch(request.watch.clone())
            .and_then(|()| conn.set_cancel(&settings.cancel))
            .map_err(|e| {
                Error::new(ErrorKind::Network, format!("cannot configure socket ({e})"))
                    .with_subject(url.redacted())
            })?;
        if let Err(e) = conn.send(&bytes) {
            // A peer that takes nothing for the idle timeout is not a
            // connection it closed: sending again would double the wait.
            if reused && !conn.went_silent() {
                continue;
            }
            return Err(
                Error::new(ErrorKind::Network, format!("cannot send the request ({e})"))
                    .with_subject(url.redacted()),
            );
        }
        if settings.events.is_some() {
            let head = String::from_utf8_lossy(&bytes).into_owned();
            crate::event::emit(&settings.events, Event::RequestSent { head });
        }
        let head = match conn.read_head() {
            Ok(head) => head,
            // A kept-alive connection the server closed meanwhile: GET and
            // HEAD are idempotent, so the request goes again on a new one.
            // One that stayed open and silent for the idle timeout is an
            // answer that never came, as on a new connection.
            Err(e) if reused && e.kind() == ErrorKind::Network && !conn.went_silent() => continue,
            Err(e) => return Err(e.with_subject(url.redacted())),
        };
        if settings.events.is_some() {
            let text = head.text();
            crate::event::emit(&settings.events, Event::ResponseReceived { head: text });
        }
        let plan = framing(&head, request.method == Method::Head)
            .map_err(|e| e.with_subject(url.redacted()))?;
        let return_to = plan.reusable.then(|| ReturnTo {
            pool: settings.pool.clone(),
            key: key.clone(),
        });
        let body = HttpBody::new(conn, plan.framing, return_to, url.clone());
        return Ok((head, body));
    }
}
