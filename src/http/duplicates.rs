//! What a server says of other copies of its resource and of its digest:
//! RFC 6249's `Link: <URL>; rel=duplicate` fields (the mirrors of
//! Metalink/HTTP) and RFC 3230's `Digest: SHA-256=<base64>`.
//!
//! Parsing only, over header values: the mirrors become the download's
//! sources, and the digest its checksum, where a download is opened
//! (`open.rs`, `download/save.rs`). `geo` and `depth` are read past; a
//! mirror's `pri` orders them, the lowest first.

use crate::http::Response;
use crate::url::Url;

/// The most mirrors taken from one answer's `Link` fields: more than the
/// connections of a download would never be asked.
pub const MAX_DUPLICATES: usize = 16;

/// The priority of a `Link` without `pri` (RFC 6249: 1 to 999999, the
/// default the last).
const DEFAULT_PRIORITY: u32 = 999_999;

/// The HTTP(S) mirrors `response`'s `Link: <…>; rel=duplicate` fields
/// name, resolved against its URL, lowest `pri` first (those of equal
/// priority in the order sent), at most [`MAX_DUPLICATES`], the
/// response's own URL left out.
pub fn duplicates(response: &Response) -> Vec<Url> {
    let base = response.url();
    let mut found: Vec<(u32, Url)> = Vec::new();
    for value in response.head().headers_named("link") {
        for (target, priority) in duplicate_links(value) {
            // A URL that parses is HTTP or HTTPS: no other scheme is one.
            let Ok(url) = base.join(target) else {
                continue;
            };
            if url != *base && !found.iter().any(|(_, u)| *u == url) {
                found.push((priority, url));
            }
        }
    }
    found.sort_by_key(|(priority, _)| *priority);
    found.truncate(MAX_DUPLICATES);
    found.into_iter().map(|(_, url)| url).collect()
}

/// The SHA-256 `response`'s `Digest` field gives (RFC 3230, the
/// algorithm's name in any case), if any.
pub fn sha256(response: &Response) -> Option<[u8; 32]> {
    response
        .head()
        .headers_named("digest")
        .find_map(sha256_of_digest)
}

/// Where a `Link` field value is between: its links are separated by
/// commas outside `<…>` and quotes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Outside,
    InTarget,
    InQuote,
}

/// The targets of the links of one `Link` value whose `rel` lists
/// `duplicate`, each with its `pri`.
pub(crate) fn duplicate_links(value: &str) -> Vec<(&str, u32)> {
    let mut links = Vec::new();
    let mut state = LinkState::Outside;
    let mut start = 0;
    for (at, c) in value.char_indices() {
        state = match (state, c) {
            (LinkState::Outside, '<') => LinkState::InTarget,
            (LinkState::InTarget, '>') => LinkState::Outside,
            (LinkState::Outside, '"') => LinkState::InQuote,
            (LinkState::InQuote, '"') => LinkState::Outside,
            (LinkState::Outside, ',') => {
                links.push(&value[start..at]);
                start = at + 1;
                LinkState::Outside
            }
            (state, _) => state,
        };
    }
    links.push(&value[start..]);
    links.into_iter().filter_map(duplicate_link).collect()
}

/// One link, `<target>; param=value; …`, when its `rel` is a duplicate.
fn duplicate_link(link: &str) -> Option<(&str, u32)> {
    let link = link.trim();
    let rest = link.strip_prefix('<')?;
    let end = rest.find('>')?;
    let target = &rest[..end];
    let mut duplicate = false;
    let mut priority = DEFAULT_PRIORITY;
    for param in rest[end + 1..].split(';') {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "rel" => {
                duplicate = value
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("duplicate"))
            }
            "pri" => priority = value.parse().unwrap_or(DEFAULT_PRIORITY),
            _ => {}
        }
    }
    duplicate.then_some((target, priority))
}

/// The SHA-256 of one `Digest` value: `alg=value` pairs separated by
/// commas.
pub(crate) fn sha256_of_digest(value: &str) -> Option<[u8; 32]> {
    value.split(',').find_map(|pair| {
        let (algorithm, encoded) = pair.split_once('=')?;
        if !algorithm.trim().eq_ignore_ascii_case("sha-256") {
            return None;
        }
        crate::util::base64::decode(encoded.trim())?.try_into().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_links_are_read_with_their_priority() {
        let value = "<http://a/f>; rel=duplicate; pri=2; geo=de, \
                     <http://b/f>; rel=\"duplicate\"; pri=1, \
                     <http://c/f,x>; rel=describedby, <http://d/f>; REL=\"other Duplicate\"; depth=1";
        assert_eq!(
            duplicate_links(value),
            [
                ("http://a/f", 2),
                ("http://b/f", 1),
                ("http://d/f", DEFAULT_PRIORITY)
            ]
        );
        assert_eq!(duplicate_links("garbage, <x"), []);
    }

    #[test]
    fn a_sha256_digest_is_read_in_any_case() {
        let empty = crate::sha256::digest(b"");
        let b64 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        assert_eq!(sha256_of_digest(&format!("SHA-256={b64}")), Some(empty));
        assert_eq!(
            sha256_of_digest(&format!("md5=HUXZLQLMuI/KZ5KDcJPcOA==, sha-256={b64}")),
            Some(empty)
        );
        assert_eq!(sha256_of_digest("sha-256=AAAA"), None);
        assert_eq!(sha256_of_digest("sha-256=!!!!"), None);
        assert_eq!(sha256_of_digest(&format!("sha-512={b64}")), None);
    }
}
