//! The HTTP stack every client shares: one way to build a client (no
//! redirects, timeouts, a private CA, the proxies it is given and no other),
//! transport failures turned into diagnoses, and error bodies read for their
//! message. Success bodies are read by `json_body`.

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use url::Url;

use crate::clients::proxy::{Proxies, ProxyUrlError};

/// How much of an error body is kept for messages.
const ERROR_BODY_LIMIT: u64 = 16 * 1024;

/// Options every client of this stack takes.
#[derive(Clone)]
pub struct HttpOptions {
    /// For the whole request, body included.
    pub(crate) timeout: Duration,
    /// PEM certificates trusted beside the system's.
    pub(crate) ca_cert_pem: Option<String>,
    /// Replaces the system resolver (tests use one that never touches DNS).
    pub resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
    /// Idle connections kept per host; raise for concurrent use.
    pub(crate) pool_size: usize,
    /// The proxies requests go through; none unless given (the process's
    /// own environment is never read).
    pub proxies: Proxies,
}

impl HttpOptions {
    /// Options with this whole-request timeout, the system's CA
    /// certificates only, the system resolver, 32 idle connections per
    /// host and no proxy.
    pub fn new(timeout: Duration) -> HttpOptions {
        HttpOptions { timeout, ca_cert_pem: None, resolver: None, pool_size: 32, proxies: Proxies::none() }
    }
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("timeout", &self.timeout)
            .field("ca_cert_pem", &self.ca_cert_pem.is_some())
            .field("custom_resolver", &self.resolver.is_some())
            .field("pool_size", &self.pool_size)
            .field("proxies", &self.proxies)
            .finish()
    }
}

/// Why the HTTP client could not be built: a bad CA certificate, mostly.
/// The caller, which knows where the certificate came from, names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientBuildError {
    /// The CA certificate text is not PEM.
    #[error("not a valid PEM certificate")]
    InvalidPem,
    /// The PEM text holds no certificate.
    #[error("no certificate in the PEM text")]
    NoCertificate,
    /// The TLS stack could not be set up.
    #[error("cannot set up HTTPS: {0}")]
    Https(String),
    /// A proxy variable is not a proxy URL.
    #[error(transparent)]
    Proxy(#[from] ProxyUrlError),
}

impl ClientBuildError {
    /// Whether the CA certificate given is at fault (rather than the TLS
    /// stack).
    pub fn is_about_the_ca(&self) -> bool {
        matches!(self, ClientBuildError::InvalidPem | ClientBuildError::NoCertificate)
    }
}

/// A resolver behind an `Arc<dyn _>`, as reqwest wants a sized type.
struct SharedResolver(Arc<dyn reqwest::dns::Resolve>);

impl reqwest::dns::Resolve for SharedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.0.resolve(name)
    }
}

/// A blocking client that never follows redirects (a redirect is reported,
/// since following one would drop or leak credentials). `https: false`
/// skips loading the system's CA certificates, which a plain-http client
/// never uses (and which is most of a short run's start-up). It goes
/// through `options.proxies` only: reqwest's own reading of the
/// environment's proxies is off.
pub fn build_client(options: &HttpOptions, https: bool) -> Result<Client, ClientBuildError> {
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.timeout)
        .connect_timeout(options.timeout.min(Duration::from_secs(15)))
        .pool_max_idle_per_host(options.pool_size)
        .tcp_nodelay(true)
        .user_agent(concat!("watcher-metal/", env!("CARGO_PKG_VERSION")));
    if !https {
        builder = builder.tls_built_in_root_certs(false);
    }
    if let Some(pem) = &options.ca_cert_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|_| ClientBuildError::InvalidPem)?;
        if certs.is_empty() {
            return Err(ClientBuildError::NoCertificate);
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(resolver) = &options.resolver {
        builder = builder.dns_resolver(Arc::new(SharedResolver(resolver.clone())));
    }
    builder = if options.proxies.is_none() {
        builder.no_proxy()
    } else {
        options.proxies.check()?;
        let proxies = options.proxies.clone();
        builder.proxy(reqwest::Proxy::custom(move |url| proxies.proxy_for(url).ok().flatten()))
    };
    builder.build().map_err(|e| ClientBuildError::Https(e.to_string()))
}

/// A failure below HTTP: the name, the connection, TLS, time, or size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The host name does not resolve.
    #[error("cannot resolve host name `{host}`")]
    Dns {
        /// The URL's host name.
        host: String,
    },
    /// Nothing listens at the address.
    #[error("connection refused by {address}")]
    Refused {
        /// `host:port`, the port the scheme's default when the URL has none.
        address: String,
    },
    /// The proxy the request goes through cannot be reached.
    #[error("{}", proxy_unreachable(proxy, *refused))]
    Proxy {
        /// The proxy's host and port (refused), or its host name (does not
        /// resolve): never its URL, which may hold a password.
        proxy: String,
        /// Refused, or else its name does not resolve.
        refused: bool,
    },
    /// No complete answer within the timeout.
    #[error("no answer within {} s", after.as_secs().max(1))]
    Timeout {
        /// The timeout that ran out.
        after: Duration,
    },
    /// The server's certificate is not signed by a trusted CA.
    #[error("TLS: the server's certificate is not trusted ({detail})")]
    TlsUntrusted {
        /// rustls's reason ("unknown certificate authority", ...).
        detail: String,
    },
    /// The certificate is for another host name.
    #[error("TLS: the server's certificate is not valid for `{host}`")]
    TlsHostname {
        /// The host name the URL asked for.
        host: String,
    },
    /// Another TLS failure (expired certificate, not TLS at all, ...).
    #[error("TLS: {detail}")]
    Tls {
        /// What went wrong, in a few words.
        detail: String,
    },
    /// The answer was larger than the cap.
    #[error("{}", too_large(*limit))]
    TooLarge {
        /// The cap that was passed, in bytes: of the whole answer, or of one
        /// value in it.
        limit: u64,
    },
    /// The connection broke or the answer was not valid HTTP.
    #[error("connection failed: {detail}")]
    Protocol {
        /// What went wrong, in a few words.
        detail: String,
    },
}

/// A size cap passed: of one value (below 16 MiB), or of the whole answer.
fn too_large(limit: u64) -> String {
    if limit < 1024 * 1024 * 16 {
        format!("the answer holds a value larger than the {} KiB limit", limit >> 10)
    } else {
        format!("the answer is larger than the {} MiB limit", limit >> 20)
    }
}

pub(crate) fn is_html(headers: &HeaderMap) -> bool {
    content_type_contains(headers, "html")
}

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    content_type_contains(headers, "json")
}

fn content_type_contains(headers: &HeaderMap, what: &str) -> bool {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.to_ascii_lowercase().contains(what))
}

/// The first non-blank line of a service's message, at most 300
/// characters, for a one-line diagnosis ("no reason given" when empty).
/// Mask secrets in the whole text first: a cut could split one.
pub(crate) fn first_line(text: &str) -> String {
    let line: String =
        text.split(['\n', '\r']).find(|l| !l.trim().is_empty()).unwrap_or("").trim().chars().take(300).collect();
    if line.is_empty() {
        "no reason given".to_owned()
    } else {
        line
    }
}

/// The start of an error body, as text.
pub(crate) fn read_error_body(response: Response) -> String {
    let mut buf = Vec::new();
    let _ = response.take(ERROR_BODY_LIMIT).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Turns a transport failure of a request to `url` by a client built with
/// `proxies` into what the user needs to hear.
pub(crate) fn classify_transport(
    e: &reqwest::Error,
    url: &Url,
    timeout: Duration,
    proxies: &Proxies,
) -> TransportError {
    through_proxy(classify(e, url, timeout), proxies, url)
}

fn classify(e: &reqwest::Error, url: &Url, timeout: Duration) -> TransportError {
    let host = url.host_str().unwrap_or("").to_owned();
    let address = format!("{host}:{}", url.port_or_known_default().unwrap_or(0));
    if e.is_timeout() {
        return TransportError::Timeout { after: timeout };
    }
    let mut messages = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tls) = find_rustls(err) {
            return classify_tls(tls, &host);
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return TransportError::Refused { address },
                io::ErrorKind::TimedOut => return TransportError::Timeout { after: timeout },
                _ => {}
            }
        }
        messages.push(err.to_string());
        source = err.source();
    }
    let all = messages.join(": ");
    if all.contains("dns error") || all.contains("failed to lookup address") {
        return TransportError::Dns { host };
    }
    if all.contains("invalid HTTP") || all.contains("invalid status") {
        return TransportError::Protocol {
            detail: format!("the server at {address} did not answer with valid HTTP (http vs https?)"),
        };
    }
    let last = messages.last().cloned().unwrap_or_else(|| "unknown error".to_owned());
    TransportError::Protocol { detail: last }
}

/// A transport failure of a request to `url` that went through one of
/// `proxies`: the connection was the proxy's, so a refusal or a name that
/// does not resolve is the proxy's (named by its host and port only: its
/// URL may hold a password).
fn through_proxy(error: TransportError, proxies: &Proxies, url: &Url) -> TransportError {
    let Ok(Some(proxy)) = proxies.proxy_for(url) else { return error };
    let host = proxy.host_str().unwrap_or("").to_owned();
    match error {
        TransportError::Refused { .. } => TransportError::Proxy {
            proxy: format!("{host}:{}", proxy.port_or_known_default().unwrap_or(0)),
            refused: true,
        },
        TransportError::Dns { .. } => TransportError::Proxy { proxy: host, refused: false },
        other => other,
    }
}

fn proxy_unreachable(proxy: &str, refused: bool) -> String {
    if refused {
        format!("connection refused by the proxy {proxy}")
    } else {
        format!("cannot resolve the proxy's host name `{proxy}`")
    }
}

/// The rustls error inside `err`, looking through `io::Error` wrappers
/// (whose `source()` skips the wrapped error itself).
fn find_rustls<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = err.downcast_ref::<io::Error>()?.get_ref()?;
    find_rustls(inner)
}

fn classify_tls(e: &rustls::Error, host: &str) -> TransportError {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            TransportError::TlsUntrusted { detail: "unknown certificate authority".to_owned() }
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            TransportError::TlsHostname { host: host.to_owned() }
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            TransportError::Tls { detail: "the server's certificate has expired".to_owned() }
        }
        rustls::Error::InvalidCertificate(other) => TransportError::TlsUntrusted { detail: format!("{other:?}") },
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => {
            TransportError::Tls { detail: "the server does not speak TLS (is the URL http://?)".to_owned() }
        }
        other => TransportError::Tls { detail: other.to_string() },
    }
}
