//! Continuing a plain response body that was cut midway.
//!
//! Owns what a plain body of a [`Stream`](crate::Stream) needs to ask for the
//! rest of its resource again when its connection fails after some bytes:
//! the resource's final URL, the validator that makes `If-Range` refuse a
//! resource that changed in between, its length, and how far the body got.
//! The pieces of a segmented download are continued by
//! [`segments`](crate::engine::segments), and a part of a manifest on its
//! next alternative by [`part`](crate::parts::alternatives).

use crate::error::{Error, ErrorKind, Result};
use crate::event::{Event, Retry};
use crate::fetch::retry::backoff;
use crate::fetch::Context;
use crate::http::validator::{same_version, validator_of};
use crate::http::{HttpBody, Request, Response};
use crate::url::Url;

/// Where a plain body stands, to ask for the rest of it again.
#[derive(Clone)]
pub struct Continuation {
    client: Context,
    url: Url,
    validator: String,
    length: u64,
    position: u64,
    /// Cuts in a row at one position, with no byte between them.
    cuts: CutsInARow,
}

/// How many times in a row an answer was cut at the same byte: answers
/// that are accepted and then cut before their first byte (a `206` head,
/// then a close) must count as failed attempts, or asking again would go
/// on for ever.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CutsInARow {
    at: u64,
    count: u32,
}

impl CutsInARow {
    /// An answer was cut at byte `at`; returns the cuts in a row there.
    pub(crate) fn cut_at(&mut self, at: u64) -> u32 {
        if self.count > 0 && self.at == at {
            self.count += 1;
        } else {
            *self = CutsInARow { at, count: 1 };
        }
        self.count
    }
}

impl Continuation {
    /// For the body of `response`, which starts at byte `start` of its
    /// resource, when it can be continued: the server told the resource's
    /// length and gave a validator (a strong `ETag` or a `Last-Modified`).
    /// Without one, the rest asked for again could belong to another
    /// version of the resource, and nothing would show it.
    pub fn of(client: &Context, response: &Response, start: u64) -> Option<Continuation> {
        let length = match response.status() {
            206 => response.content_range()?.2?,
            _ => start + response.content_length()?,
        };
        Some(Continuation {
            client: client.clone(),
            url: response.url().clone(),
            validator: validator_of(response)?,
            length,
            position: start,
            cuts: CutsInARow::default(),
        })
    }

    /// `n` more bytes of the body were handed on.
    pub fn advance(&mut self, n: usize) {
        self.position += n as u64;
    }

    /// The body failed with `err`: the rest of the resource, from where it
    /// stopped, asked for again (with `If-Range`), see `ask_again`.
    /// Otherwise `err`, or why the server's answer cannot continue the body.
    pub fn reopen(&mut self, err: Error) -> Result<HttpBody> {
        let request = Request::get(self.url.clone())
            .range(self.position, None)
            .if_range(self.validator.clone());
        let cuts = self.cuts.cut_at(self.position);
        ask_again(
            &self.client,
            &request,
            err,
            cuts,
            &|| false,
            &|response, cut| {
                let response = response.error_for_status()?;
                same_version(&response, &self.url, Some(&self.validator))?;
                let rest = Some((self.position, self.length - 1, Some(self.length)));
                if response.status() == 206 && response.content_range() == rest {
                    return Ok(response.into_body());
                }
                // The same version (`same_version` passed) sent whole: the
                // server does not honour Range here, and asking again would
                // bring the whole again. Nothing is wrong with the bytes: the
                // failure that counts is the cut.
                let unchanged = response.status() == 200
                    && validator_of(&response).as_deref() == Some(self.validator.as_str());
                if unchanged {
                    return Err(Refused::Final(
                        Error::new(
                            cut.kind(),
                            format!(
                            "cut at byte {}, and asked for the rest, the server sent the whole \
                             resource again: it does not honour Range, and the download \
                             cannot continue",
                            self.position
                        ),
                        )
                        .with_subject(self.url.redacted())
                        .with_causes(vec![cut.clone()]),
                    ));
                }
                Err(Refused::Again(
                    Error::new(
                        ErrorKind::Integrity,
                        format!(
                            "cut at byte {}, and asked again for the rest, the server answered \
                     {} instead: the resource changed, or its server does not honour Range",
                            self.position,
                            match response.content_range() {
                                Some((first, last, _)) => format!("bytes {first}-{last}"),
                                None => format!("status {}", response.status()),
                            }
                        ),
                    )
                    .with_subject(self.url.redacted())
                    .with_causes(vec![cut.clone()]),
                ))
            },
        )
    }
}

/// Why an answer asked for again cannot continue a body.
pub(crate) enum Refused {
    /// A failure like any other: asked again if it may pass.
    Again(Error),
    /// Asking again would get the same answer.
    Final(Error),
}

impl From<Error> for Refused {
    fn from(err: Error) -> Refused {
        Refused::Again(err)
    }
}

/// Sends `request` again after `err` cut the answer that carried its
/// bytes: after a pause, while the failure is one that may pass (see
/// [`Error::is_transient`]), up to the client's retries in all (the cuts
/// in a row at this byte, `cuts`, count as the first), and as long as
/// `cancelled` says no.
/// `accept` checks each answer, given the failure before it, and makes it
/// the body; what it refuses counts as a failure, asked again after when
/// it may pass, unless it is [`Refused::Final`].
pub(crate) fn ask_again(
    client: &Context,
    request: &Request,
    mut err: Error,
    cuts: u32,
    cancelled: &dyn Fn() -> bool,
    accept: &dyn Fn(Response, &Error) -> std::result::Result<HttpBody, Refused>,
) -> Result<HttpBody> {
    let mut attempt = cuts.max(1);
    loop {
        if attempt >= client.retries() || !err.is_transient() || cancelled() {
            return Err(err);
        }
        let wait = backoff(attempt);
        attempt += 1;
        client.emit(Event::Retrying {
            error: err.clone(),
            what: Retry::Rest,
            wait,
            attempt,
            attempts: client.retries(),
        });
        client.pause(wait)?;
        let answered = client.send(request).map_err(Refused::from);
        match answered.and_then(|response| accept(response, &err)) {
            Ok(body) => return Ok(body),
            Err(Refused::Again(failed)) => err = failed,
            Err(Refused::Final(failed)) => return Err(failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_count_in_a_row_only_at_the_same_byte() {
        let mut cuts = CutsInARow::default();
        assert_eq!(cuts.cut_at(5), 1);
        assert_eq!(cuts.cut_at(5), 2);
        assert_eq!(cuts.cut_at(5), 3);
        // Bytes came between: a new run of cuts.
        assert_eq!(cuts.cut_at(9), 1);
        assert_eq!(cuts.cut_at(9), 2);
    }
}
