//! Which version of a resource an answer is: its validator (a strong
//! `ETag`, else `Last-Modified`), and whether an answer is of the version
//! an earlier one named. Protocol only: headers in, verdicts out.

use crate::error::{Error, ErrorKind, Result};
use crate::http::Response;
use crate::url::Url;

/// A response's strong `ETag`, if it has one.
pub fn strong_etag(response: &Response) -> Option<String> {
    response
        .header("etag")
        .filter(|etag| !etag.starts_with("W/"))
        .map(str::to_owned)
}

/// The `If-Range` value a response allows: its strong `ETag`, else its
/// `Last-Modified`.
pub fn validator_of(response: &Response) -> Option<String> {
    strong_etag(response).or_else(|| response.header("last-modified").map(str::to_owned))
}

/// Checks that `response` comes from the version of the resource that
/// `validator` (its `If-Range` value: the strong `ETag`, else the
/// `Last-Modified`, of an earlier answer) names, when both tell one. A
/// server that honours `Range` but not `If-Range` would otherwise mix two
/// versions in one file.
pub fn same_version(response: &Response, url: &Url, validator: Option<&str>) -> Result<()> {
    match (validator, validator_of(response)) {
        (Some(ours), Some(theirs)) if ours != theirs => Err(Error::new(
            ErrorKind::Integrity,
            format!("the resource changed during the download ({ours} became {theirs})"),
        )
        .with_subject(url.redacted())),
        _ => Ok(()),
    }
}
