//! A small HTTP/1.1 client: exactly what downloading needs, and no more.
//!
//! In scope: `GET` and `HEAD` over TCP or TLS, response heads parsed with
//! `httparse`, body framing (`Content-Length`, chunked, until close),
//! redirects, keep-alive, `Range`, proxies, timeouts, and (feature `gzip`)
//! a whole body asked for and decoded as gzip.
//! Out of scope: request bodies, other content codings, cookie jars, HTTP/2.
//!
//! The protocol is kept apart from I/O so it can be tested and fuzzed with
//! byte slices: [`request`] writes heads into a buffer, [`response`] parses
//! them and decides the framing, [`chunked`] decodes in place, [`redirect`]
//! decides where to go. [`conn`], [`body`], [`pool`] and [`exchange`] do the
//! reading and writing.

pub mod body;
pub mod chunked;
pub mod coalesce;
pub mod conn;
pub mod date;
#[cfg(feature = "gzip")]
pub mod decoded;
pub mod duplicates;
pub mod exchange;
#[cfg(feature = "gzip")]
pub mod gzip;
pub mod pool;
pub mod proxy;
pub mod ranged;
pub mod redirect;
pub mod request;
pub mod response;
pub mod retry_after;
pub mod socket;
#[cfg(feature = "tls")]
pub mod tls;
pub mod validator;
#[cfg(feature = "tls")]
pub mod verify;
pub mod x509;

pub use body::HttpBody;
pub use exchange::{Request, Response};
