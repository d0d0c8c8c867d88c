//! Fetching over HTTP with the settings of one client: what the engine,
//! the parts and the manifest layers get instead of the [`Client`].
//!
//! - [`context`]: the settings, connection pool, cancel handle and
//!   message sinks of a client, and sending with retries;
//! - [`retry`]: how long to wait between attempts;
//! - [`continuation`]: asking again for the rest of a body cut midway.
//!
//! Why a layer of its own: the engine needs a client's settings and its
//! pool, but the client's entry points (`open`, `resume`, `download`) are
//! built on the engine. With the context below both, no layer reaches up.
//!
//! [`Client`]: crate::Client

pub mod context;
pub mod continuation;
pub mod retry;

pub use context::Context;
