//! An announce to an HTTP or HTTPS tracker, through the client's own HTTP
//! stack (`fetch::Context`): its proxies, its TLS roots, its connection
//! pool and its cancel handle.
//!
//! Owns the exchange: the `GET` of the announce URL, the deadline on it
//! (connecting included), the bound on the body read
//! ([`MAX_RESPONSE_BYTES`]) and turning each failure into a
//! [`TrackerError`]. Leaves the URL to
//! [`super::announce`](mod@super::announce), the parsing to
//! [`super::http_response`], and which tracker to ask to the tiers.

use std::sync::Arc;
use std::time::Instant;

use super::announce::{announce_url_with_id, Announce};
use super::answer::Answer;
use super::error::{BadAnswer, TrackerError};
use super::http_response::{HttpAnswer, HttpError, MAX_RESPONSE_BYTES};
use crate::error::ErrorKind;
use crate::fetch::Context;
use crate::http::exchange::{Request, Response};
use crate::http::socket::Watch;
use crate::source::ByteSource;
use crate::url::Url;

/// Asked while an announce waits (at least every quarter second) and
/// before each send: `false` gives the announce up with
/// [`TrackerError::Cancelled`].
///
/// Shared (an `Arc`): the HTTP exchange's watch keeps it for as long as
/// the connection may be read.
pub type KeepGoing = Arc<dyn Fn() -> bool + Send + Sync>;

/// Announces to the HTTP(S) tracker at `tracker` (`tracker_id`, from its
/// previous answer, sent back), giving up at `deadline` or as soon as
/// `keep_going` says no (both looked at every quarter second while
/// waiting for bytes). `tracker` is the announce URL of the torrent; the
/// name shown in errors is `shown`.
pub fn http_announce(
    ctx: &Context,
    tracker: &str,
    shown: &str,
    announce: &Announce,
    tracker_id: Option<&[u8]>,
    deadline: Instant,
    keep_going: &KeepGoing,
) -> Result<Answer, TrackerError> {
    let url = Url::parse(&announce_url_with_id(tracker, announce, tracker_id)).map_err(|e| {
        TrackerError::BadUrl {
            tracker: shown.to_owned(),
            why: e.message().to_owned(),
        }
    })?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(TrackerError::TimedOut {
            tracker: shown.to_owned(),
        });
    }
    let watched = keep_going.clone();
    let request =
        Request::get(url).watch(Watch::new(move |_| Instant::now() < deadline && watched()));
    let failed = |error: crate::Error| {
        if !keep_going() || error.kind() == ErrorKind::Cancelled {
            TrackerError::Cancelled {
                tracker: shown.to_owned(),
            }
        } else if Instant::now() >= deadline {
            TrackerError::TimedOut {
                tracker: shown.to_owned(),
            }
        } else {
            TrackerError::Network {
                tracker: shown.to_owned(),
                error,
            }
        }
    };
    let mut response = ctx
        .with_connect_timeout(left)
        .send(&request)
        .map_err(failed)?;
    let status = response.status();
    if !(200..300).contains(&status) {
        return Err(TrackerError::Status {
            tracker: shown.to_owned(),
            status,
        });
    }
    let malformed = |why| TrackerError::Malformed {
        tracker: shown.to_owned(),
        why,
    };
    let body = match read_bounded(&mut response) {
        Ok(Some(body)) => body,
        Ok(None) => return Err(malformed(BadAnswer::TooLarge)),
        Err(e) => return Err(failed(e)),
    };
    match HttpAnswer::parse(&body) {
        Ok(answer) => Ok(answer.into()),
        Err(HttpError::Failure(reason)) => Err(TrackerError::Failure {
            tracker: shown.to_owned(),
            reason,
        }),
        Err(e) => Err(malformed(BadAnswer::Http(e))),
    }
}

/// The body of `response`, or `None` when it is longer than
/// [`MAX_RESPONSE_BYTES`] (told by its `Content-Length` before any byte is
/// read, else found on reading one byte too many): a tracker cannot make
/// us hold more.
fn read_bounded(response: &mut Response) -> crate::Result<Option<Vec<u8>>> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.next_chunk()? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(chunk);
    }
    Ok(Some(body))
}

#[cfg(test)]
pub(crate) mod tests;
