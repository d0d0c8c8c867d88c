//! The context every fetch of one client runs in: its HTTP settings and
//! connection pool, its cancel handle, where its messages go, and the
//! limits the engine works within (connections, parts ahead, attempts).
//!
//! Owns sending with retries and the messages about waits. It is what
//! the engine, the parts and the manifest layers are given; the public
//! [`Client`](crate::Client) wraps one and adds the entry points.

use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::error::{ErrorKind, Result};
use crate::event::{self, Event, Retry};
use crate::fetch::retry::backoff;
use crate::http::exchange::{self, HttpSettings, Request, Response};
use crate::http::retry_after::retry_after;
use crate::url::Url;

/// A client's settings and shared state, as the layers below the client
/// see them. Cheap to clone; clones share the pool and the cancel handle.
#[derive(Clone)]
pub struct Context {
    pub(crate) http: Arc<HttpSettings>,
    pub(crate) cache_limit: u64,
    pub(crate) parallel: usize,
    pub(crate) connections: usize,
    pub(crate) max_per_host: usize,
    pub(crate) retries: u32,
    /// Whether a whole resource is asked for gzip-encoded and decoded
    /// (`--compressed`); pieces, resumes and manifests go as stored.
    /// Without the `gzip` feature the client refuses to be built with it.
    #[cfg_attr(not(feature = "gzip"), allow(dead_code))]
    pub(crate) compressed: bool,
}

impl Context {
    /// Sends `request` and returns the response, whatever its status.
    pub fn send(&self, request: &Request) -> Result<Response> {
        exchange::send(&self.http, request)
    }

    /// `GET`s `url`; a status that is not 2xx is an error.
    pub fn get(&self, url: &Url) -> Result<Response> {
        self.send(&Request::get(url.clone()))?.error_for_status()
    }

    /// Sends `request`, and again after a pause while the server answers
    /// that it cannot serve it for the moment (408, 429, 500, 502, 503,
    /// 504), up to `attempts` in all, waiting at least what `Retry-After`
    /// asks on a 429 or 503. A status that is not 2xx is an error, except
    /// those in `pass`, returned as they are.
    ///
    /// A failure to connect or to get an answer is not tried again: at the
    /// first request it means a wrong address or a host that is down far
    /// more often than a moment's trouble, and the user is better told at
    /// once. (A transfer cut after it started is continued; see
    /// [`Error::is_transient`](crate::Error::is_transient).)
    pub fn send_attempts(
        &self,
        request: &Request,
        pass: &[u16],
        attempts: u32,
    ) -> Result<Response> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (err, asked_to_wait) = match self.send(request) {
                Ok(response) if pass.contains(&response.status()) => return Ok(response),
                Ok(response) => {
                    let asked_to_wait = retry_after(&response);
                    match response.error_for_status() {
                        Ok(response) => return Ok(response),
                        Err(err) => (err, asked_to_wait),
                    }
                }
                Err(err) => (err, None),
            };
            let answered = matches!(err.kind(), ErrorKind::Status(_));
            if attempt >= attempts || !answered || !err.is_transient() {
                return Err(err);
            }
            let wait = backoff(attempt).max(asked_to_wait.unwrap_or_default());
            self.emit(Event::Retrying {
                error: err.clone(),
                what: Retry::Request,
                wait,
                attempt: attempt + 1,
                attempts,
            });
            self.pause(wait)?;
        }
    }

    /// [`Context::send_attempts`] with the client's retries.
    pub fn send_retrying(&self, request: &Request, pass: &[u16]) -> Result<Response> {
        self.send_attempts(request, pass, self.retries)
    }

    /// `GET`s `url` with [`Context::send_retrying`].
    pub fn get_retrying(&self, url: &Url) -> Result<Response> {
        self.send_retrying(&Request::get(url.clone()), &[])
    }

    /// This context, sending the user's credentials headers only to `url`'s
    /// origin: a manifest listing parts on other hosts, or a mirror, does
    /// not get the `Authorization` or `Cookie` meant for the URL the user
    /// gave (as a redirect to another origin does not).
    pub fn bound_to(&self, url: &Url) -> Context {
        let mut settings = (*self.http).clone();
        settings.credentials_origin = Some(url.origin());
        Context {
            http: Arc::new(settings),
            ..self.clone()
        }
    }

    /// This context with `cancel` as its handle.
    pub fn with_cancel(&self, cancel: Cancel) -> Context {
        let mut settings = (*self.http).clone();
        settings.cancel = cancel;
        Context {
            http: Arc::new(settings),
            ..self.clone()
        }
    }

    /// This context, waiting at most `timeout` (and no longer than its own
    /// setting) for an address to accept a connection. Connecting is the
    /// one wait a cancel cannot cut short, so a caller with a deadline of
    /// its own (a tracker announce) bounds it this way.
    pub fn with_connect_timeout(&self, timeout: Duration) -> Context {
        let mut settings = (*self.http).clone();
        // The socket calls refuse a zero timeout.
        let timeout = timeout.max(Duration::from_millis(1));
        settings.connect.connect_timeout = settings.connect.connect_timeout.min(timeout);
        Context {
            http: Arc::new(settings),
            ..self.clone()
        }
    }

    /// The handle that stops this context's fetches.
    pub fn cancel_handle(&self) -> Cancel {
        self.http.cancel.clone()
    }

    /// Tells the client's event sink, if any, of `event`.
    pub fn emit(&self, event: Event) {
        event::emit(&self.http.events, event);
    }

    /// Sleeps for `wait`, or until cancelled.
    pub fn pause(&self, wait: Duration) -> Result<()> {
        self.http.cancel.pause(wait)
    }

    /// `Ok` unless cancelled.
    pub fn cancelled(&self) -> Result<()> {
        self.http.cancel.check()
    }

    /// Warns when `response` comes compressed although the request asked
    /// for the bytes as stored: they are handed on as sent (as curl does
    /// without `--compressed`), which is seldom what the user wanted.
    pub fn warn_if_encoded(&self, response: &Response) {
        if let Some(coding) = response
            .header("content-encoding")
            .filter(|c| !c.trim().eq_ignore_ascii_case("identity"))
        {
            self.emit(Event::EncodedBody {
                url: response.url().redacted().to_string(),
                coding: coding.to_owned(),
            });
        }
    }

    /// Attempts in a row before a failing source is dropped.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Connections one large resource is fetched over.
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// Connections one large part of a manifest is fetched over: the
    /// window fetches several parts at once, and together they stay
    /// within the connections one host allows.
    pub fn connections_per_part(&self) -> usize {
        // W parts ahead and the current one: W + 1 parts at once.
        (self.max_per_host / (self.parallel + 1)).clamp(1, self.connections)
    }

    /// How many parts of a manifest are fetched at once.
    pub fn parallel(&self) -> usize {
        self.parallel
    }

    /// The most bytes of `(*)` parts kept per download.
    pub fn cache_limit(&self) -> u64 {
        self.cache_limit
    }

    /// How many idle connections the pool holds.
    pub fn idle_connections(&self) -> usize {
        self.http.pool.idle_count()
    }
}

#[cfg(test)]
impl Context {
    /// A context for the tests of the layers below the client (which may
    /// not name it): a fresh pool, no proxy, the crate's roots, 5-second
    /// timeouts, `events` as its sink.
    pub(crate) fn for_tests(events: Option<event::EventSink>) -> Context {
        use crate::http::conn::ConnectSettings;
        let connect = ConnectSettings {
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            #[cfg(feature = "tls")]
            tls: crate::http::tls::client_config(&[] as &[&str], &Default::default())
                .expect("the built-in roots"),
        };
        Context {
            http: Arc::new(HttpSettings {
                connect,
                pool: Arc::new(crate::http::pool::Pool::new()),
                proxies: crate::http::proxy::ProxySettings::default(),
                user_agent: "partfetch-test".into(),
                headers: Vec::new(),
                max_redirects: 5,
                events,
                cancel: Cancel::new(),
                credentials_origin: None,
            }),
            cache_limit: 0,
            parallel: 1,
            connections: 1,
            max_per_host: 2,
            retries: 1,
            compressed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_timeout_given_only_shortens_the_clients() {
        let ctx = Context::for_tests(None);
        let short = ctx.with_connect_timeout(Duration::from_millis(300));
        assert_eq!(
            short.http.connect.connect_timeout,
            Duration::from_millis(300)
        );
        let long = ctx.with_connect_timeout(Duration::from_secs(3600));
        assert_eq!(long.http.connect.connect_timeout, Duration::from_secs(5));
        let zero = ctx.with_connect_timeout(Duration::ZERO);
        assert_eq!(zero.http.connect.connect_timeout, Duration::from_millis(1));
        assert!(Arc::ptr_eq(&short.http.pool, &ctx.http.pool), "one pool");
    }
}
