//! MAAS URLs: what users write in `maas-url`, and the API root clients use.
//!
//! The rule is the one python-libmaas, the MAAS CLI and gomaasapi share: make
//! the path end with `/`, then append `api/2.0/` unless the path already ends
//! in `/api/X.Y/`. Only API 2.0 exists today; 1.0 is gone (410).

use std::fmt;

use url::Url;

/// A validated MAAS URL: the value as configured, and the API root derived
/// from it.
#[derive(Clone, PartialEq, Eq)]
pub struct MaasUrl {
    configured: String,
    api_root: Url,
}

/// Why a `maas-url` value is not usable. Each has its own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Nothing but whitespace.
    #[error("is empty")]
    Empty,
    /// The `url` crate cannot parse it.
    #[error("is not a URL ({reason})")]
    NotAUrl {
        /// The parser's message.
        reason: String,
    },
    /// A scheme other than `http` or `https`.
    #[error("uses scheme `{scheme}`; MAAS is reached over http or https")]
    Scheme {
        /// The scheme given, e.g. `ftp`.
        scheme: String,
    },
    /// No host, or an empty one.
    #[error("has no host")]
    NoHost,
    /// `user:password@` in the URL.
    #[error("contains a user name or password; MAAS authenticates with the API key, not URL credentials")]
    Credentials,
    /// A `?query` or `#fragment`.
    #[error("has a query string or fragment; give the MAAS base URL only")]
    QueryOrFragment,
    /// The path ends in `/api/X.Y/` with X.Y other than 2.0.
    #[error("points at MAAS API version {version}; only API 2.0 is supported")]
    ApiVersion {
        /// The version in the path, e.g. `1.0`.
        version: String,
    },
    /// Whitespace or a control character inside the trimmed value.
    #[error("contains whitespace or control characters")]
    BadCharacter,
}

impl MaasUrl {
    /// Checks `raw` (trimmed) and derives the API root: `/` then `api/2.0/`
    /// appended to the path, unless it already ends in `/api/2.0/`.
    pub fn parse(raw: &str) -> Result<MaasUrl, UrlError> {
        let configured = raw.trim();
        if configured.is_empty() {
            return Err(UrlError::Empty);
        }
        if configured.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::BadCharacter);
        }
        let url = Url::parse(configured).map_err(|e| UrlError::NotAUrl { reason: e.to_string() })?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(UrlError::Scheme { scheme: other.to_owned() }),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(UrlError::QueryOrFragment);
        }
        let mut path = url.path().to_owned();
        if !path.ends_with('/') {
            path.push('/');
        }
        match api_version_suffix(&path) {
            Some("2.0") => {}
            Some(version) => return Err(UrlError::ApiVersion { version: version.to_owned() }),
            None => path.push_str("api/2.0/"),
        }
        let mut api_root = url;
        api_root.set_path(&path);
        Ok(MaasUrl { configured: configured.to_owned(), api_root })
    }

    /// The URL as the user wrote it (trimmed): what goes into watcher.conf.
    pub(crate) fn as_configured(&self) -> &str {
        &self.configured
    }

    /// The API root, always ending in `/api/2.0/`.
    pub(crate) fn api_root(&self) -> &Url {
        &self.api_root
    }

    /// An endpoint below the API root, e.g. `endpoint("users/")`.
    /// `relative` must not start with `/` and should end with `/`.
    pub(crate) fn endpoint(&self, relative: &str) -> Url {
        let mut url = self.api_root.clone();
        let path = format!("{}{}", self.api_root.path(), relative.trim_start_matches('/'));
        url.set_path(&path);
        url
    }

    /// True when the path before `api/2.0/` is empty: MAAS normally serves
    /// its API under `/MAAS`, so such a URL usually gets 404s.
    pub(crate) fn lacks_base_path(&self) -> bool {
        self.api_root.path() == "/api/2.0/"
    }

    /// The same URL over https on MAAS's TLS port, for hints after a redirect.
    pub(crate) fn https_suggestion(&self) -> String {
        let mut url = self.api_root.clone();
        let _ = url.set_scheme("https");
        let _ = url.set_port(Some(5443));
        let base = url.as_str().trim_end_matches("api/2.0/").trim_end_matches('/');
        base.to_owned()
    }
}

/// `Some("X.Y")` when `path` ends in `/api/X.Y/`.
fn api_version_suffix(path: &str) -> Option<&str> {
    let trimmed = path.strip_suffix('/')?;
    let (before, version) = trimmed.rsplit_once('/')?;
    if !before.ends_with("/api") && before != "api" {
        return None;
    }
    let (major, minor) = version.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(major) && digits(minor)).then_some(version)
}

impl fmt::Debug for MaasUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MaasUrl").field(&self.configured).finish()
    }
}

impl fmt::Display for MaasUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.configured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn root(raw: &str) -> String {
        MaasUrl::parse(raw).unwrap().api_root().to_string()
    }

    #[test]
    fn normalises_like_python_libmaas_and_gomaasapi() {
        assert_eq!(root("http://h:5240/MAAS"), "http://h:5240/MAAS/api/2.0/");
        assert_eq!(root("http://h:5240/MAAS/"), "http://h:5240/MAAS/api/2.0/");
        assert_eq!(root("http://h:5240/MAAS/api/2.0"), "http://h:5240/MAAS/api/2.0/");
        assert_eq!(root("http://h:5240/MAAS/api/2.0/"), "http://h:5240/MAAS/api/2.0/");
        assert_eq!(root("https://maas.example.com:5443/MAAS"), "https://maas.example.com:5443/MAAS/api/2.0/");
        assert_eq!(root("http://h:5240"), "http://h:5240/api/2.0/");
        assert_eq!(root("  http://10.0.0.2:5240/MAAS\n"), "http://10.0.0.2:5240/MAAS/api/2.0/");
        assert_eq!(root("http://[fd00::2]:5240/MAAS"), "http://[fd00::2]:5240/MAAS/api/2.0/");
    }

    #[test]
    fn endpoints_end_with_a_slash_below_the_root() {
        let url = MaasUrl::parse("http://h:5240/MAAS").unwrap();
        assert_eq!(url.endpoint("version/").as_str(), "http://h:5240/MAAS/api/2.0/version/");
        assert_eq!(url.endpoint("/machines/abc/").as_str(), "http://h:5240/MAAS/api/2.0/machines/abc/");
        assert!(!url.lacks_base_path());
        assert!(MaasUrl::parse("http://h:5240/").unwrap().lacks_base_path());
    }

    #[test]
    fn keeps_the_configured_text_for_watcher_conf() {
        let url = MaasUrl::parse(" http://h:5240/MAAS ").unwrap();
        assert_eq!(url.as_configured(), "http://h:5240/MAAS");
    }

    #[test]
    fn suggests_the_tls_url() {
        let url = MaasUrl::parse("http://maas:5240/MAAS").unwrap();
        assert_eq!(url.https_suggestion(), "https://maas:5443/MAAS");
    }

    #[test]
    fn rejects_each_bad_form_with_its_own_reason() {
        let err = |raw: &str| MaasUrl::parse(raw).unwrap_err();
        assert_eq!(err(""), UrlError::Empty);
        assert!(matches!(err("maas:5240"), UrlError::Scheme { .. } | UrlError::NotAUrl { .. }));
        assert!(matches!(err("not a url"), UrlError::BadCharacter));
        assert!(matches!(err("just-text"), UrlError::NotAUrl { .. }));
        assert_eq!(err("ftp://h/MAAS"), UrlError::Scheme { scheme: "ftp".into() });
        assert_eq!(err("http://u:p@h/MAAS"), UrlError::Credentials);
        assert_eq!(err("http://h/MAAS?x=1"), UrlError::QueryOrFragment);
        assert_eq!(err("http://h/MAAS/api/1.0/"), UrlError::ApiVersion { version: "1.0".into() });
        assert_eq!(err("http://h/MA AS"), UrlError::BadCharacter);
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in ".{0,100}") {
            let _ = MaasUrl::parse(&raw);
        }

        #[test]
        fn api_root_always_ends_in_api_2_0(
            scheme in "https?",
            host in "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,5})?",
            port in proptest::option::of(1u16..),
            path in "(/[A-Za-z0-9_-]{1,8}){0,3}/?",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let raw = format!("{scheme}://{host}{port}{path}");
            let url = MaasUrl::parse(&raw).unwrap();
            prop_assert!(url.api_root().path().ends_with("/api/2.0/"));
            // Normalising twice changes nothing.
            let again = MaasUrl::parse(url.api_root().as_str()).unwrap();
            prop_assert_eq!(again.api_root(), url.api_root());
            prop_assert!(url.endpoint("machines/").as_str().ends_with("/api/2.0/machines/"));
        }
    }
}
