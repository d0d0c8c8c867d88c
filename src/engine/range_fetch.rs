//! Asking a source for a range of the resource: the HTTP side of a
//! segmented download's pieces.
//!
//! Owns the request for bytes `start..=end` (with `If-Range`, and a
//! [`Watch`] on a worker's waits), the checks that the answer is of the
//! resource's version and, for a mirror's first answer, the same file,
//! asking again for the rest when a server sends less than asked,
//! retrying one piece on its own when there are no workers, and the rest
//! of an answer whose first bytes went elsewhere ([`ReadOn`]). What a failure
//! does to the schedule is [`Scheduler`](crate::pieces::scheduler::Scheduler)'s,
//! told through [`Failed::ended`].

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, Retry};
use crate::fetch::retry::backoff;
use crate::fetch::Context;
use crate::http::ranged::{range_answered, Resource};
use crate::http::retry_after::retry_after;
use crate::http::socket::Watch;
use crate::http::validator::{same_version, strong_etag, validator_of};
use crate::http::{HttpBody, Request, Response};
use crate::pieces::scheduler::Ended;
use crate::source::ByteSource;
use crate::url::Url;

/// A piece that could not be fetched, and how long the server asked to
/// wait before asking again (`Retry-After` on a 429 or 503).
pub(super) struct Failed {
    err: Error,
    retry_after: Option<Duration>,
    /// Not a failure: another copy of the piece arrived first, after
    /// this many bytes of this one.
    lost_race: Option<u64>,
    /// The store could not take the bytes, or the client was cancelled: no
    /// source is to blame, no other source would do better, and the
    /// download cannot go on.
    local: bool,
}

impl Failed {
    /// The store could not take the bytes.
    pub(super) fn local(err: Error) -> Failed {
        Failed {
            err,
            retry_after: None,
            lost_race: None,
            local: true,
        }
    }

    /// Another copy of the piece arrived first, after `bytes` of this one
    /// (or the download stopped).
    pub(super) fn lost_race(bytes: u64) -> Failed {
        Failed {
            err: Error::new(ErrorKind::Io, "another copy of the piece arrived first"),
            retry_after: None,
            lost_race: Some(bytes),
            local: false,
        }
    }

    /// How the request ended, for the schedule.
    pub(super) fn ended(self) -> Ended {
        match self {
            Failed {
                err, local: true, ..
            } => Ended::Local(err),
            Failed {
                lost_race: Some(bytes),
                ..
            } => Ended::LostRace { bytes },
            Failed {
                err, retry_after, ..
            } => Ended::Failed { err, retry_after },
        }
    }
}

impl From<Error> for Failed {
    fn from(err: Error) -> Failed {
        Failed {
            local: err.kind() == ErrorKind::Cancelled,
            err,
            retry_after: None,
            lost_race: None,
        }
    }
}

/// A source as a request to it needs it.
#[derive(Clone, Copy)]
pub(super) struct Asking<'a> {
    pub(super) url: &'a Url,
    /// Its `If-Range` value.
    pub(super) validator: Option<&'a str>,
    /// Its first answer matched the resource already.
    pub(super) verified: bool,
    /// What the request's waits ask (a worker's; none for the consumer's).
    pub(super) watch: Option<&'a Watch>,
}

/// Takes the bytes of an answer as they arrive, with their offsets.
pub(super) type Deliver<'a> = dyn FnMut(u64, &[u8]) -> Result<(), Failed> + 'a;

/// Fetches bytes `start..=end` of the resource from `url`, handing them to
/// `deliver` with their offsets as they arrive; returns the validator the
/// answer carried. A source's first answer (`verified` false) is checked
/// against the resource: same length, same strong `ETag` when both have
/// one.
pub(super) fn fetch_range(
    client: &Context,
    to: &Asking,
    resource: &Resource,
    (start, end): (u64, u64),
    deliver: &mut Deliver,
) -> Result<Option<String>, Failed> {
    let (url, validator) = (to.url, to.validator);
    // A server may send less than asked (some cap the size of a range):
    // the rest is then asked for again, from where it stopped.
    let mut from = start;
    let mut seen_validator = None;
    // Answers in a row that ignored Range: asked again here, so that the
    // bytes already in are not fetched again.
    let mut ignored = 0;
    while from <= end {
        let response = ask_for_range(client, to, resource, from, end)?;
        let last = match range_answered(&response, url, resource, validator, from, end) {
            Ok(last) => last,
            Err(err)
                if response.status() == 200
                    && err.kind() == ErrorKind::Protocol
                    && ignored + 1 < client.retries() =>
            {
                drop(response);
                ignored += 1;
                client.pause(backoff(ignored))?;
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        ignored = 0;
        if from == start {
            seen_validator = validator_of(&response);
        }
        let mut body = response.into_body();
        while let Some(chunk) = body.next_chunk()? {
            if chunk.len() as u64 > last + 1 - from {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("bytes {from}-{last}: the body is longer"),
                )
                .with_subject(url.redacted())
                .into());
            }
            deliver(from, chunk)?;
            from += chunk.len() as u64;
        }
        if from != last + 1 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "bytes {start}-{end}: {} of {} bytes",
                    from - start,
                    end - start + 1
                ),
            )
            .with_subject(url.redacted())
            .into());
        }
    }
    Ok(seen_validator)
}

/// Fetches bytes `start..=end` of the resource (a piece) from its own
/// URL, retrying transient failures unless `cancelled` says the download
/// is over, and hands them to `deliver` (with their offsets).
pub(super) fn fetch_with_retries(
    client: &Context,
    resource: &Resource,
    (start, end): (u64, u64),
    cancelled: &dyn Fn() -> bool,
    deliver: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let to = Asking {
            url: &resource.url,
            validator: resource.validator.as_deref(),
            verified: true,
            watch: None,
        };
        let fetched = fetch_range(client, &to, resource, (start, end), &mut |offset, bytes| {
            deliver(offset, bytes).map_err(Failed::local)
        });
        match fetched {
            Ok(_) => return Ok(()),
            Err(Failed {
                err,
                retry_after,
                local: false,
                ..
            }) if attempt < client.retries() && err.is_transient() => {
                if cancelled() {
                    return Err(err);
                }
                let wait = backoff(attempt).max(retry_after.unwrap_or_default());
                client.emit(Event::Retrying {
                    error: err.clone(),
                    what: Retry::Request,
                    wait,
                    attempt: attempt + 1,
                    attempts: client.retries(),
                });
                client.pause(wait)?;
            }
            Err(failed) => return Err(failed.err),
        }
    }
}

/// Asks `url` for bytes `from..=end` of the resource; an answer that is
/// not of the resource's version, or (`verified` false: a mirror's first
/// answer) not the same file, is refused.
fn ask_for_range(
    client: &Context,
    to: &Asking,
    resource: &Resource,
    from: u64,
    end: u64,
) -> Result<Response, Failed> {
    let Asking {
        url,
        validator,
        verified,
        watch,
    } = *to;
    let mut request = Request::get(url.clone()).range(from, Some(end));
    if let Some(validator) = validator {
        request = request.if_range(validator.to_owned());
    }
    if let Some(watch) = watch {
        request = request.watch(watch.clone());
    }
    let response = client.send(&request)?;
    let retry_after = retry_after(&response);
    let response = response.error_for_status().map_err(|err| Failed {
        err,
        retry_after,
        lost_race: None,
        local: false,
    })?;
    if let (Some(theirs), Some(ours)) = (strong_etag(&response), &resource.etag) {
        if &theirs != ours {
            let what = if verified {
                format!("the resource changed during the download (ETag {ours} became {theirs})")
            } else {
                format!("this source's ETag {theirs} differs from {ours}: not the same file")
            };
            return Err(Error::new(ErrorKind::Integrity, what)
                .with_subject(url.redacted())
                .into());
        }
    } else if !verified {
        // A mirror's first answer, with no pair of ETags to compare (a
        // server may not send one): the modification times must agree, or
        // a different file of the same length would be mixed in.
        let times = (response.header("last-modified"), &resource.last_modified);
        if let (Some(theirs), Some(ours)) = times {
            if theirs != ours {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "this source's Last-Modified ({theirs}) differs from {ours}: \
                         not the same file"
                    ),
                )
                .with_subject(url.redacted())
                .into());
            }
        }
    }
    same_version(&response, url, validator)?;
    Ok(response)
}

/// The rest of an answer whose first bytes went elsewhere: the first
/// answer, whose first piece the consumer reads itself and whose later
/// pieces the one stream or a worker reads on. It lends the bytes of the
/// last chunk the piece did not take, then the body's.
pub(super) struct ReadOn {
    /// The offset of the next byte lent.
    at: u64,
    /// Where the answer's bytes end (exclusive).
    end: u64,
    /// Bytes past the piece's end in its last chunk, lent first.
    spill: Vec<u8>,
    spill_lent: bool,
    body: HttpBody,
}

impl ReadOn {
    /// The answer `body` for bytes up to `end` (exclusive), read up to
    /// `at`, `spill` the bytes from `at` on that were read already.
    pub(super) fn new(body: HttpBody, spill: Vec<u8>, at: u64, end: u64) -> ReadOn {
        ReadOn {
            at,
            end,
            spill,
            spill_lent: false,
            body,
        }
    }

    /// Where its bytes end (exclusive).
    pub(super) fn end(&self) -> u64 {
        self.end
    }

    /// The chunk the last `next_chunk` lent.
    pub(super) fn last_chunk(&self) -> &[u8] {
        if self.spill_lent {
            &self.spill
        } else {
            self.body.last_chunk()
        }
    }

    /// Whether the next `next_chunk` lends bytes without waiting.
    pub(super) fn has_payload_ready(&mut self) -> bool {
        (!self.spill.is_empty() && !self.spill_lent) || self.body.has_payload_ready()
    }

    /// Watches the waits for the rest of the body (see [`Watch`]).
    pub(super) fn set_watch(&mut self, watch: Option<Watch>) -> std::io::Result<()> {
        self.body.set_watch(watch)
    }

    /// Hands every byte left, with its offset, to `deliver`; an answer
    /// that ends before its end is an error.
    pub(super) fn deliver_to(mut self, url: &Url, deliver: &mut Deliver) -> Result<(), Failed> {
        while let Some(n) = self.next_chunk()?.map(<[u8]>::len) {
            deliver(self.at - n as u64, self.last_chunk())?;
        }
        if self.at < self.end {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("the answer ended at byte {}, before {}", self.at, self.end),
            )
            .with_subject(url.redacted())
            .into());
        }
        Ok(())
    }
}

impl ByteSource for ReadOn {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        if self.spill_lent {
            self.spill_lent = false;
            self.spill = Vec::new();
        } else if !self.spill.is_empty() {
            self.spill_lent = true;
            self.at += self.spill.len() as u64;
            return Ok(Some(&self.spill));
        }
        match self.body.next_chunk()? {
            Some(chunk) => {
                self.at += chunk.len() as u64;
                Ok(Some(chunk))
            }
            None => Ok(None),
        }
    }
}
