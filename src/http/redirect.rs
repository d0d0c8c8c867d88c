//! Following redirects.
//!
//! Owns which statuses redirect, where a `Location` leads (resolved against
//! the URL that answered), which targets are refused, and which headers stop
//! at an origin's border: `Authorization`, `Cookie` and
//! `Proxy-Authorization` are never carried to another scheme, host or port
//! (curl's CVE-2018-1000007 and CVE-2022-27776).

use crate::error::{Error, ErrorKind, Result};
use crate::url::{Scheme, Url};
use crate::util::quote::{cut, quote};

/// The default bound on redirect hops, as curl's and browsers' 20.
pub const DEFAULT_MAX_REDIRECTS: u32 = 20;

/// Headers that carry credentials and belong to one origin.
const ORIGIN_BOUND_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// True for the statuses this client follows.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The URL a redirect from `from` with the raw `Location` value `location`
/// leads to. Errors quote the value escaped, and only its first 200 bytes
/// when it is long.
pub fn target(from: &Url, location: Option<&[u8]>) -> Result<Url> {
    let redirect_error = |message: String| Error::new(ErrorKind::Redirect, message);
    let raw =
        location.ok_or_else(|| redirect_error("redirect without a Location header".to_owned()))?;
    let location = std::str::from_utf8(raw).map_err(|_| {
        redirect_error(format!(
            "redirect with a Location that is not UTF-8: {}",
            quote(raw)
        ))
    })?;
    if location.trim().is_empty() {
        return Err(redirect_error(
            "redirect with an empty Location header".to_owned(),
        ));
    }
    let mut next = from.join(location.trim()).map_err(|e| {
        redirect_error(format!(
            "redirect to an unusable location {} ({})",
            quote(raw),
            e.message()
        ))
    })?;
    if next.userinfo().is_none() && next.origin() == from.origin() {
        // Credentials given in the first URL stay with its origin.
        next = next.with_userinfo(from.userinfo());
    }
    Ok(next)
}

/// True when following `from` → `to` downgrades HTTPS to plain HTTP.
pub fn is_downgrade(from: &Url, to: &Url) -> bool {
    from.scheme() == Scheme::Https && to.scheme() == Scheme::Http
}

/// The user's headers that may be sent to `to` after starting at `first`.
pub fn headers_for(first: &Url, to: &Url, headers: &[(String, String)]) -> Vec<(String, String)> {
    let same_origin = first.origin() == to.origin();
    headers
        .iter()
        .filter(|(name, _)| {
            same_origin
                || !ORIGIN_BOUND_HEADERS
                    .iter()
                    .any(|bound| name.eq_ignore_ascii_case(bound))
        })
        .cloned()
        .collect()
}

/// The user's headers that may be sent to another origin than the one
/// they were given for: all but the credentials.
pub fn headers_for_other_origin(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            !ORIGIN_BOUND_HEADERS
                .iter()
                .any(|bound| name.eq_ignore_ascii_case(bound))
        })
        .cloned()
        .collect()
}

/// The error for a chain longer than allowed, naming every hop; when the
/// chain comes back to a URL it has visited, only up to that return (the
/// rest repeats it).
pub fn too_many(chain: &[Url], max: u32) -> Error {
    let repeat = (1..chain.len()).find(|&i| chain[..i].contains(&chain[i]));
    let shown = &chain[..repeat.map_or(chain.len(), |i| i + 1)];
    let hops: Vec<String> = shown
        .iter()
        .map(|u| cut(&u.redacted().to_string()))
        .collect();
    let what = match repeat {
        Some(_) => "a redirect loop",
        None => "the redirects",
    };
    Error::new(
        ErrorKind::Redirect,
        format!("more than {max} redirects, {what}: {}", hops.join(" -> ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_loop_is_named_once_not_repeated_to_the_limit() {
        let (a, b) = (url("http://h/a"), url("http://h/b"));
        let chain = [a.clone(), b.clone(), a.clone(), b.clone(), a.clone()];
        let shown = too_many(&chain, 3).to_string();
        assert_eq!(
            shown,
            "more than 3 redirects, a redirect loop: http://h/a -> http://h/b -> http://h/a"
        );
        let chain = [a, b, url("http://h/c")];
        let shown = too_many(&chain, 1).to_string();
        assert!(
            shown.ends_with("http://h/a -> http://h/b -> http://h/c"),
            "{shown}"
        );
    }

    #[test]
    fn relative_locations_resolve_against_the_answering_url() {
        let next = target(&url("http://h/a/b"), Some(b"../c?d")).unwrap();
        assert_eq!(next.to_string(), "http://h/c?d");
    }

    #[test]
    fn non_http_targets_and_missing_locations_are_refused() {
        let from = url("http://h/");
        assert_eq!(
            target(&from, Some(b"ftp://h/x")).unwrap_err().kind(),
            ErrorKind::Redirect
        );
        assert_eq!(target(&from, None).unwrap_err().kind(), ErrorKind::Redirect);
        assert_eq!(
            target(&from, Some(b"  ")).unwrap_err().kind(),
            ErrorKind::Redirect
        );
    }

    #[test]
    fn a_location_is_named_for_what_is_wrong_with_it_and_quoted_short() {
        let from = url("http://h/");
        let message = |location: Option<&[u8]>| target(&from, location).unwrap_err().to_string();
        assert_eq!(message(None), "redirect without a Location header");
        assert_eq!(
            message(Some(b" ")),
            "redirect with an empty Location header"
        );
        assert_eq!(
            message(Some(b"/caf\xe9")),
            "redirect with a Location that is not UTF-8: \"/caf\\xe9\""
        );
        let mut long = b"ftp://h/".to_vec();
        long.resize(60_000, b'a');
        let shown = message(Some(&long));
        assert!(
            shown.starts_with("redirect to an unusable location \"ftp://h/aaa"),
            "{shown}"
        );
        assert!(shown.contains("\"… (60000 bytes)"), "{shown}");
        assert!(shown.len() < 400, "{} bytes", shown.len());
    }

    #[test]
    fn userinfo_follows_only_within_the_origin() {
        let from = url("http://u:p@h/a");
        assert_eq!(target(&from, Some(b"/b")).unwrap().userinfo(), Some("u:p"));
        assert_eq!(
            target(&from, Some(b"http://other/b")).unwrap().userinfo(),
            None
        );
        assert_eq!(
            target(&from, Some(b"http://h:81/b")).unwrap().userinfo(),
            None
        );
        assert_eq!(
            target(&from, Some(b"https://h/b")).unwrap().userinfo(),
            None
        );
    }

    #[test]
    fn redirect_to_other_origin_drops_credentials_headers() {
        let headers = vec![
            ("Authorization".to_string(), "Bearer x".to_string()),
            ("cookie".to_string(), "a=b".to_string()),
            ("Proxy-Authorization".to_string(), "Basic y".to_string()),
            ("X-Other".to_string(), "kept".to_string()),
        ];
        let first = url("http://h/");
        for other in ["http://h2/", "http://h:8080/", "https://h/"] {
            let kept = headers_for(&first, &url(other), &headers);
            assert_eq!(kept.len(), 1, "{other}");
            assert_eq!(kept[0].0, "X-Other");
        }
        assert_eq!(
            headers_for(&first, &url("http://h/other"), &headers).len(),
            4
        );
    }

    #[test]
    fn https_to_http_drops_credentials_headers_and_userinfo() {
        let headers = vec![
            ("Authorization".to_string(), "Bearer x".to_string()),
            ("Cookie".to_string(), "a=b".to_string()),
            ("Proxy-Authorization".to_string(), "Basic y".to_string()),
            ("X-Other".to_string(), "kept".to_string()),
        ];
        let first = url("https://u:p@h/a");
        let kept = headers_for(&first, &url("http://h/a"), &headers);
        assert_eq!(kept, vec![("X-Other".to_string(), "kept".to_string())]);
        let next = target(&first, Some(b"http://h/a")).unwrap();
        assert_eq!(next.userinfo(), None);
        assert!(is_downgrade(&first, &next));
    }

    #[test]
    fn https_to_http_is_a_downgrade() {
        assert!(is_downgrade(&url("https://h/"), &url("http://h/")));
        assert!(!is_downgrade(&url("http://h/"), &url("https://h/")));
    }
}
