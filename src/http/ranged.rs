//! Answers to `Range` requests: what a first answer says about a resource
//! that can be fetched in pieces ([`FirstPiece`], [`Resource`]), and
//! whether a later answer carries exactly the bytes asked for, of the same
//! version ([`range_answered`]). Protocol only: no sockets, no retries.

use crate::error::{Error, ErrorKind, Result};
use crate::http::validator::{strong_etag, validator_of};
use crate::http::{Request, Response};
use crate::url::Url;

/// What the first response told about the resource.
pub struct Resource {
    /// The URL after redirects: pieces are fetched from here.
    pub url: Url,
    /// The full length (from `Content-Range`).
    pub length: u64,
    /// `If-Range` value for the piece requests, when the server gave one.
    pub validator: Option<String>,
    /// Its strong `ETag`, which a mirror that sends one must match.
    pub etag: Option<String>,
    /// Its `Last-Modified`, which a mirror that sends one must match when
    /// the two cannot be compared by `ETag`.
    pub last_modified: Option<String>,
}

/// What the answer to the first piece's request ([`first_piece_request`])
/// allows.
pub enum FirstPiece {
    /// A 206 from byte 0 of a resource whose length it tells, carrying
    /// the range asked for, or less of it but a piece at least (a server
    /// may cap the length of a range): the rest can come in pieces. The
    /// number is how many bytes it carries.
    Pieces(Resource, u64),
    /// Not a 206 (a server that ignores `Range` answers 200): the body is
    /// the whole resource.
    Whole,
    /// A 416 telling an empty resource (`Content-Range: bytes */0`): a
    /// range from byte 0 of nothing is nothing, so the answer already
    /// gives every byte (the body its `into_empty_body` makes).
    Empty,
    /// A 206 of another range than the one asked for (less than a piece
    /// of it), or of an unknown length; or a 416 of a resource that is
    /// not
    /// empty (a server that does not keep to RFC 9110): its body is neither
    /// piece 0 nor the whole resource, so it is dropped and the resource
    /// asked for again without `Range`.
    AskAgain,
}

/// The request for the first `bytes` of `url`.
pub fn first_piece_request(url: &Url, bytes: u64) -> Request {
    Request::get(url.clone()).range(0, Some(bytes.max(1) - 1))
}

impl FirstPiece {
    /// Reads the answer to [`first_piece_request`] for `asked` bytes, of a
    /// resource cut into pieces of `piece` bytes.
    pub fn of(response: &Response, asked: u64, piece: u64) -> FirstPiece {
        match response.status() {
            206 => {}
            416 if response.unsatisfied_length() == Some(0) => return FirstPiece::Empty,
            416 => return FirstPiece::AskAgain,
            _ => return FirstPiece::Whole,
        }
        let Some((0, last, Some(length))) = response.content_range() else {
            return FirstPiece::AskAgain;
        };
        let (answered, expected) = (last.saturating_add(1), asked.min(length));
        let a_piece_or_more = answered < expected && answered >= piece;
        if length == 0 || !(answered == expected || a_piece_or_more) {
            return FirstPiece::AskAgain;
        }
        let resource = Resource {
            url: response.url().clone(),
            length,
            validator: validator_of(response),
            etag: strong_etag(response),
            last_modified: response.header("last-modified").map(str::to_owned),
        };
        FirstPiece::Pieces(resource, answered)
    }
}

impl Resource {
    /// A resource known from an earlier run: `validator` is the `If-Range`
    /// value it recorded (its `ETag` when it is a strong one, else its
    /// `Last-Modified`).
    pub fn known(url: Url, length: u64, validator: Option<String>) -> Resource {
        let is_etag = |v: &String| v.starts_with('"');
        let etag = validator.clone().filter(is_etag);
        let last_modified = validator.clone().filter(|v| !is_etag(v));
        Resource {
            url,
            length,
            validator,
            etag,
            last_modified,
        }
    }
}

/// Checks that `response` is a 206 carrying exactly bytes `start..=end` of
/// the resource as the first response described it.
pub fn check_range(
    response: &Response,
    url: &Url,
    resource: &Resource,
    start: u64,
    end: u64,
) -> Result<()> {
    let validator = resource.validator.as_deref();
    match range_answered(response, url, resource, validator, start, end)? {
        last if last == end => Ok(()),
        last => Err(Error::new(
            ErrorKind::Protocol,
            format!("asked for bytes {start}-{end}, the server sent {start}-{last}"),
        )
        .with_subject(url.redacted())),
    }
}

/// Checks that `response` is a 206 carrying bytes `start..=last` of the
/// resource as the first response described it, `last` at most `end`
/// (a server may send less than asked); returns `last`.
///
/// A 200 is the whole resource: either it changed (`If-Range` did not
/// match), or the server ignored `Range` this time. When the 200 carries
/// the validator asked for, the version is the same, so it is the latter:
/// a failure that may pass, and the piece is asked for again. Otherwise a
/// change cannot be ruled out, and mixing versions is what must not happen.
pub fn range_answered(
    response: &Response,
    url: &Url,
    resource: &Resource,
    validator: Option<&str>,
    start: u64,
    end: u64,
) -> Result<u64> {
    match (response.status(), response.content_range()) {
        (206, Some((_, _, Some(total)))) if total != resource.length => Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "this source has {total} bytes, the resource {}: not the same file",
                resource.length
            ),
        )
        .with_subject(url.redacted())),
        (206, Some((first, last, total)))
            if first == start && first <= last && last <= end && total == Some(resource.length) =>
        {
            Ok(last)
        }
        (206, _) => Err(Error::new(
            ErrorKind::Protocol,
            format!("asked for bytes {start}-{end}, the server sent another range"),
        )
        .with_subject(url.redacted())),
        (200, _) if validator.is_some() && validator_of(response).as_deref() == validator => {
            Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "asked for bytes {start}-{end}, the server sent the whole resource \
                     (status 200, same version): it ignored Range this time"
                ),
            )
            .with_subject(url.redacted()))
        }
        (status, _) => Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "status {status} to a ranged request with If-Range: the resource changed \
                 during the download, or its server stopped honouring Range"
            ),
        )
        .with_subject(url.redacted())),
    }
}
