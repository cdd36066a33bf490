//! Which HTTP proxy a request goes through, from a process environment's
//! proxy variables read the way Python's requests reads them (the library
//! under keystoneauth, which OpenStack clients use): `<scheme>_proxy` in any
//! case, the all-lowercase name winning and an empty one unsetting it
//! (urllib's `getproxies_environment`); `all_proxy` when the scheme has none;
//! no proxy for a host that `no_proxy` names (requests'
//! `should_bypass_proxies`: a suffix of the host, with or without its port,
//! or an IPv4 network in CIDR form; then urllib's `proxy_bypass_environment`:
//! `*`, or a domain and its subdomains).
//!
//! The requests read is 2.31, Ubuntu 24.04's `python3-requests`, which every
//! Watcher on that base runs with: its suffix is a plain one (`ample.com`
//! bypasses `example.com`); later releases match whole labels only.
//!
//! [`Proxies::none`] is a client that ignores the environment, as an
//! aiohttp session does unless it is made with `trust_env=True`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use url::Url;

use crate::secret::SecretString;

/// The proxy variables of one environment. Proxy URLs may hold a password:
/// `Debug` shows only the proxies' hosts and ports.
#[derive(Clone, Default)]
pub struct Proxies {
    /// urllib's `getproxies_environment()`: scheme (`http`, `https`,
    /// `all`, `no`, ...) to the variable's value.
    by_scheme: BTreeMap<String, SecretString>,
    /// requests' own reading of the bypass list: `no_proxy`, or `NO_PROXY`
    /// when that is unset or empty.
    no_proxy: Option<String>,
}

/// A proxy variable whose value is not a proxy URL. Only the variable is
/// named: the value may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} in the environment is not an http or https proxy URL")]
pub struct ProxyUrlError {
    /// `https_proxy`, `all_proxy`, ...
    pub variable: String,
}

impl Proxies {
    /// No proxy for any request.
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// The proxies of an environment given as its variables, in the
    /// environment's order.
    pub fn from_environment<K: AsRef<str>, V: AsRef<str>>(vars: &[(K, V)]) -> Proxies {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        let mut by_scheme = BTreeMap::new();
        // Two passes, as urllib makes them: any case first, then the names
        // whose suffix is lowercase, so that `http_proxy` wins over
        // `HTTP_PROXY` and an empty one unsets it.
        for (name, value) in &vars {
            let name = name.to_lowercase();
            if let Some(scheme) = name.strip_suffix("_proxy").filter(|_| !value.is_empty()) {
                by_scheme.insert(scheme.to_owned(), SecretString::new(*value));
            }
        }
        // urllib forgets HTTP_PROXY in a CGI script, where a client's
        // `Proxy:` header can set it.
        if vars.iter().any(|(name, _)| *name == "REQUEST_METHOD") {
            by_scheme.remove("http");
        }
        for (name, value) in &vars {
            if name.ends_with("_proxy") {
                let name = name.to_lowercase();
                let scheme = &name[..name.len() - "_proxy".len()];
                if value.is_empty() {
                    by_scheme.remove(scheme);
                } else {
                    by_scheme.insert(scheme.to_owned(), SecretString::new(*value));
                }
            }
        }
        let get = |wanted: &str| vars.iter().rev().find(|(name, _)| *name == wanted).map(|(_, v)| *v);
        let no_proxy = [get("no_proxy"), get("NO_PROXY")].into_iter().flatten().find(|v| !v.is_empty());
        Proxies { by_scheme, no_proxy: no_proxy.map(str::to_owned) }
    }

    /// Whether no request goes through a proxy.
    pub fn is_none(&self) -> bool {
        ["http", "https", "all"].iter().all(|s| !self.by_scheme.contains_key(*s))
    }

    /// The proxy a request to `url` goes through, as the variable gave it;
    /// `None` to connect directly.
    fn raw_for(&self, url: &Url) -> Option<(&'static str, &SecretString)> {
        let host = hostname(url)?;
        if self.bypasses(url, &host) {
            return None;
        }
        let scheme = match url.scheme() {
            "http" => "http",
            "https" => "https",
            _ => return self.by_scheme.get("all").map(|p| ("all", p)),
        };
        self.by_scheme.get(scheme).map(|p| (scheme, p)).or_else(|| self.by_scheme.get("all").map(|p| ("all", p)))
    }

    /// The proxy a request to `url` goes through; `None` to connect
    /// directly; an error when the variable that applies is not a URL.
    pub fn proxy_for(&self, url: &Url) -> Result<Option<Url>, ProxyUrlError> {
        match self.raw_for(url) {
            None => Ok(None),
            Some((scheme, value)) => {
                proxy_url(value.expose()).map(Some).ok_or_else(|| ProxyUrlError { variable: format!("{scheme}_proxy") })
            }
        }
    }

    /// Every proxy a request could go through is a URL.
    pub(crate) fn check(&self) -> Result<(), ProxyUrlError> {
        for scheme in ["http", "https", "all"] {
            if let Some(value) = self.by_scheme.get(scheme) {
                if proxy_url(value.expose()).is_none() {
                    return Err(ProxyUrlError { variable: format!("{scheme}_proxy") });
                }
            }
        }
        Ok(())
    }

    /// Whether `no_proxy` names the URL's host: requests' check, then
    /// urllib's.
    fn bypasses(&self, url: &Url, host: &str) -> bool {
        if let Some(no_proxy) = &self.no_proxy {
            let compact = no_proxy.replace(' ', "");
            let entries = compact.split(',').filter(|e| !e.is_empty());
            if let Ok(ip) = host.parse::<Ipv4Addr>() {
                for entry in entries {
                    match cidr(entry) {
                        Some((network, bits)) => {
                            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                            if u32::from(ip) & mask == u32::from(network) & mask {
                                return true;
                            }
                        }
                        None if entry == host => return true,
                        None => {}
                    }
                }
            } else {
                let with_port = match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                };
                if entries.into_iter().any(|e| host.ends_with(e) || with_port.ends_with(e)) {
                    return true;
                }
            }
        }
        let Some(no) = self.by_scheme.get("no") else { return false };
        let no = no.expose();
        if no == "*" {
            return true;
        }
        // urllib splits a port off the host (`::1` reads as `:` port 1).
        let host_only = split_port(host);
        no.split(',').map(str::trim).filter(|n| !n.is_empty()).any(|name| {
            let name = name.trim_start_matches('.').to_lowercase();
            let dotted = format!(".{name}");
            host_only == name || host == name || host_only.ends_with(&dotted) || host.ends_with(&dotted)
        })
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (scheme, value) in &self.by_scheme {
            let shown = match proxy_url(value.expose()) {
                _ if scheme == "no" => value.expose().to_owned(),
                Some(url) => format!("{}:{}", url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0)),
                None => "<not a URL>".to_owned(),
            };
            map.entry(scheme, &shown);
        }
        map.finish()
    }
}

/// The URL's host as Python's `urlparse(url).hostname` gives it: lowercase,
/// an IPv6 address without its brackets.
fn hostname(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(host.trim_start_matches('[').trim_end_matches(']').to_lowercase())
}

/// urllib's `_splitport`: `host:digits` loses `:digits`.
fn split_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((before, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => before,
        _ => host,
    }
}

/// An IPv4 network as requests' `is_valid_cidr` accepts it (`a.b.c.d/n`,
/// n from 1 to 32).
fn cidr(entry: &str) -> Option<(Ipv4Addr, u32)> {
    let (address, bits) = entry.split_once('/')?;
    if bits.contains('/') {
        return None;
    }
    let bits: u32 = bits.parse().ok().filter(|b| (1..=32).contains(b))?;
    Some((address.parse().ok()?, bits))
}

/// A proxy variable's value as a URL, as requests reads it
/// (`prepend_scheme_if_needed` over urllib3's `parse_url`): `http://` when
/// it starts with no scheme, where a scheme is a letter, then letters,
/// digits, `+`, `-` or `.`, then `:` (so `proxy:3128` reads as the scheme
/// `proxy`, but `10.0.0.1:3128` as a host and port); only http and https
/// proxies.
fn proxy_url(value: &str) -> Option<Url> {
    let has_scheme = value.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let text = if has_scheme { value.to_owned() } else { format!("http://{value}") };
    let url = Url::parse(&text).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty())).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        Proxies::from_environment(vars)
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.proxy_for(&Url::parse(url).unwrap()).unwrap().map(|u| u.to_string())
    }

    #[test]
    fn the_scheme_then_all() {
        let p = proxies(&[("http_proxy", "http://p1:3128"), ("ALL_PROXY", "10.0.0.9:8080")]);
        assert_eq!(via(&p, "http://keystone:5000/v3").as_deref(), Some("http://p1:3128/"));
        assert_eq!(via(&p, "https://keystone:5000/v3").as_deref(), Some("http://10.0.0.9:8080/"));
        assert!(!p.is_none());
        assert!(Proxies::none().is_none());
        assert_eq!(via(&Proxies::none(), "http://keystone:5000/"), None);
    }

    #[test]
    fn lowercase_wins_and_an_empty_one_unsets() {
        let p = proxies(&[("HTTP_PROXY", "http://upper:1"), ("http_proxy", "http://lower:2")]);
        assert_eq!(via(&p, "http://h/").as_deref(), Some("http://lower:2/"));
        let p = proxies(&[("HTTP_PROXY", "http://upper:1"), ("http_proxy", "")]);
        assert_eq!(via(&p, "http://h/"), None);
        let p = proxies(&[("HTTPS_PROXY", "http://upper:1")]);
        assert_eq!(via(&p, "https://h/").as_deref(), Some("http://upper:1/"));
    }

    #[test]
    fn no_proxy_suffixes_networks_and_star() {
        let p = proxies(&[("http_proxy", "http://p:1"), ("no_proxy", "example.com, 10.0.0.0/8,h:8080")]);
        assert_eq!(via(&p, "http://keystone.example.com/"), None);
        assert_eq!(via(&p, "http://10.1.2.3:5000/"), None);
        assert_eq!(via(&p, "http://h:8080/"), None);
        assert!(via(&p, "http://h:8081/").is_some());
        assert!(via(&p, "http://11.1.2.3/").is_some());
        // requests' check is a plain suffix: `ample.com` matches too.
        let p = proxies(&[("http_proxy", "http://p:1"), ("NO_PROXY", "ample.com")]);
        assert_eq!(via(&p, "http://example.com/"), None);
        let p = proxies(&[("http_proxy", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(via(&p, "http://anything/"), None);
    }

    #[test]
    fn a_value_that_is_not_a_url_is_named_by_its_variable_only() {
        let p = proxies(&[("https_proxy", "socks5://user:pw@p:1080")]);
        let e = p.proxy_for(&Url::parse("https://h/").unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "https_proxy in the environment is not an http or https proxy URL");
        assert_eq!(p.check(), Err(e));
        // requests reads `proxy:3128` as the scheme `proxy`.
        assert!(proxies(&[("http_proxy", "proxy:3128")]).check().is_err());
        assert_eq!(proxies(&[("http_proxy", "http://p:1")]).check(), Ok(()));
    }

    #[test]
    fn debug_shows_no_password() {
        let p = proxies(&[("http_proxy", "http://user:s3cret@proxy:3128"), ("no_proxy", "localhost")]);
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("user"), "{shown}");
        assert!(shown.contains("proxy:3128") && shown.contains("localhost"), "{shown}");
    }
}
