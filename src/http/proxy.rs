//! Choosing a proxy for a URL.
//!
//! Owns the rules curl users know: `http_proxy` for `http://` URLs,
//! `https_proxy` for `https://` URLs (upper-case forms too, except
//! `HTTP_PROXY`'s lower-case form wins), `no_proxy` to bypass, and an explicit
//! proxy that overrides the environment. How a request travels through the
//! proxy (absolute-form, or `CONNECT`) is `request`'s and `conn`'s.

use crate::error::{Error, ErrorKind, Result};
use crate::url::{Scheme, Url};

/// A proxy setting: the proxy's URL, or why the value cannot be used.
///
/// A value from the environment that cannot be used is an error only for
/// the URLs it would apply to, when they are fetched: a broken
/// `https_proxy` must not stop plain-HTTP downloads, nor let HTTPS ones
/// bypass the proxy the user set.
pub type ProxySetting = std::result::Result<Url, Error>;

/// Which proxy each scheme uses, and which hosts bypass it.
#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    /// The proxy for `http://` URLs.
    pub http: Option<ProxySetting>,
    /// The proxy for `https://` URLs.
    pub https: Option<ProxySetting>,
    /// Domains that bypass the proxy (`no_proxy`), each with the names
    /// under it.
    pub no_proxy: Vec<String>,
}

impl ProxySettings {
    /// Reads `http_proxy`, `https_proxy`, `no_proxy` and their upper-case forms.
    pub fn from_env() -> ProxySettings {
        ProxySettings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`ProxySettings::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxySettings {
        let var = |lower: &'static str, upper: &'static str| {
            let (name, value) = match lookup(lower) {
                Some(value) => (lower, value),
                None => (upper, lookup(upper)?),
            };
            (!value.trim().is_empty()).then_some((name, value))
        };
        let proxy = |(name, value): (&str, String)| {
            parse_proxy(&value).map_err(|e| {
                let message = format!("{name}: {}", e.message());
                Error::new(e.kind(), message).with_subject(value.trim())
            })
        };
        ProxySettings {
            http: var("http_proxy", "HTTP_PROXY").map(proxy),
            https: var("https_proxy", "HTTPS_PROXY").map(proxy),
            no_proxy: var("no_proxy", "NO_PROXY")
                .map(|(_, v)| parse_no_proxy(&v))
                .unwrap_or_default(),
        }
    }

    /// One proxy for every scheme, as `--proxy` gives it; `no_proxy` is kept.
    pub fn set_all(&mut self, proxy: &str) -> Result<()> {
        let proxy = parse_proxy(proxy)?;
        self.http = Some(Ok(proxy.clone()));
        self.https = Some(Ok(proxy));
        Ok(())
    }

    /// The proxy to use for `url`, if any; an error when the setting that
    /// applies cannot be used.
    pub fn for_url(&self, url: &Url) -> Result<Option<&Url>> {
        let setting = match url.scheme() {
            Scheme::Http => self.http.as_ref(),
            Scheme::Https => self.https.as_ref(),
        };
        let Some(setting) = setting else {
            return Ok(None);
        };
        let host = url.host_for_connect();
        let bypass = self.no_proxy.iter().any(|domain| {
            domain == "*"
                || host.eq_ignore_ascii_case(domain)
                || host.len().checked_sub(domain.len() + 1).is_some_and(|cut| {
                    host.as_bytes()[cut] == b'.' && host[cut + 1..].eq_ignore_ascii_case(domain)
                })
        });
        match setting {
            _ if bypass => Ok(None),
            Ok(proxy) => Ok(Some(proxy)),
            Err(unusable) => Err(unusable.clone()),
        }
    }
}

fn parse_proxy(value: &str) -> Result<Url> {
    let value = value.trim();
    let with_scheme = match value.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => value.to_owned(),
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "only http:// proxies are supported",
            )
            .with_subject(value))
        }
        None => format!("http://{value}"),
    };
    Url::parse(&with_scheme).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("invalid proxy ({})", e.message()),
        )
        .with_subject(value)
    })
}

fn parse_no_proxy(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            // A port in the pattern is ignored, as curl does for host matches.
            let p = p.trim_start_matches('[');
            let p = match p.find(']') {
                Some(close) => &p[..close],
                None if p.matches(':').count() == 1 => &p[..p.find(':').unwrap_or(p.len())],
                None => p,
            };
            // `example.com`, `.example.com` and `*.example.com` all mean the
            // domain and every name under it, as in curl.
            match p {
                "*" => p.to_owned(),
                _ => p
                    .strip_prefix("*.")
                    .unwrap_or(p)
                    .trim_start_matches('.')
                    .to_owned(),
            }
        })
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> ProxySettings {
        ProxySettings::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn proxy_for(settings: &ProxySettings, url: &str) -> Option<String> {
        settings
            .for_url(&Url::parse(url).unwrap())
            .unwrap()
            .map(Url::to_string)
    }

    #[test]
    fn each_scheme_uses_its_own_variable() {
        let s = settings(&[("http_proxy", "p1:3128"), ("HTTPS_PROXY", "http://p2:8080")]);
        assert_eq!(
            proxy_for(&s, "http://h/").as_deref(),
            Some("http://p1:3128/")
        );
        assert_eq!(
            proxy_for(&s, "https://h/").as_deref(),
            Some("http://p2:8080/")
        );
    }

    #[test]
    fn no_proxy_matches_hosts_and_subdomains_only() {
        let s = settings(&[
            ("http_proxy", "p:1"),
            ("no_proxy", "example.com, .internal,10.0.0.1:80,*.wild"),
        ]);
        assert_eq!(proxy_for(&s, "http://example.com/"), None);
        assert_eq!(proxy_for(&s, "http://www.example.com/"), None);
        assert!(proxy_for(&s, "http://badexample.com/").is_some());
        assert_eq!(proxy_for(&s, "http://a.internal/"), None);
        assert_eq!(proxy_for(&s, "http://10.0.0.1/"), None);
        assert_eq!(proxy_for(&s, "http://x.wild/"), None);
        // A leading dot or `*.` names the domain itself too, as in curl.
        assert_eq!(proxy_for(&s, "http://internal/"), None);
        assert_eq!(proxy_for(&s, "http://wild/"), None);
        assert!(proxy_for(&s, "http://notinternal/").is_some());
        let all = settings(&[("http_proxy", "p:1"), ("no_proxy", "*")]);
        assert_eq!(proxy_for(&all, "http://anything/"), None);
    }

    #[test]
    fn a_proxy_other_than_http_is_refused_with_one_message() {
        let mut s = ProxySettings::default();
        for proxy in ["https://p:1", "socks5://p:1", "socks5h://p:1"] {
            let err = s.set_all(proxy).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert_eq!(
                err.to_string(),
                format!("only http:// proxies are supported: {proxy}")
            );
        }
        assert!(s.set_all("p:1").is_ok());
        assert!(s.set_all("HTTP://p:1").is_ok());
    }

    #[test]
    fn an_unusable_proxy_variable_fails_only_the_urls_it_applies_to() {
        let s = settings(&[
            ("http_proxy", "p:1"),
            ("HTTPS_PROXY", "socks5://p:2"),
            ("no_proxy", "inside"),
        ]);
        assert_eq!(proxy_for(&s, "http://h/").as_deref(), Some("http://p:1/"));
        assert_eq!(proxy_for(&s, "https://inside/"), None);
        let err = s.for_url(&Url::parse("https://h/").unwrap()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "HTTPS_PROXY: only http:// proxies are supported: socks5://p:2"
        );
    }
}
