//! The HTTP stack MAAS and Ironic share: one way to build a client (no
//! redirects, timeouts, a private CA), bodies read through a size cap and
//! parsed as they stream, and transport failures turned into diagnoses.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use url::Url;

/// How much of an error body is kept for messages.
pub const ERROR_BODY_LIMIT: u64 = 16 * 1024;

/// Options every client of this stack takes.
#[derive(Clone)]
pub struct HttpOptions {
    /// For the whole request, body included.
    pub timeout: Duration,
    /// PEM certificates trusted beside the system's.
    pub ca_cert_pem: Option<String>,
    /// Replaces the system resolver (tests use one that never touches DNS).
    pub resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
    /// Idle connections kept per host; raise for concurrent use.
    pub pool_size: usize,
}

impl HttpOptions {
    pub fn new(timeout: Duration) -> HttpOptions {
        HttpOptions { timeout, ca_cert_pem: None, resolver: None, pool_size: 32 }
    }
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("timeout", &self.timeout)
            .field("ca_cert_pem", &self.ca_cert_pem.is_some())
            .field("custom_resolver", &self.resolver.is_some())
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// Why the HTTP client could not be built: a bad CA certificate, mostly.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientBuildError(pub String);

/// A resolver behind an `Arc<dyn _>`, as reqwest wants a sized type.
struct SharedResolver(Arc<dyn reqwest::dns::Resolve>);

impl reqwest::dns::Resolve for SharedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.0.resolve(name)
    }
}

/// A blocking client that never follows redirects (a redirect is reported,
/// since following one would drop or leak credentials).
pub fn build_client(options: &HttpOptions) -> Result<Client, ClientBuildError> {
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.timeout)
        .connect_timeout(options.timeout.min(Duration::from_secs(15)))
        .pool_max_idle_per_host(options.pool_size)
        .tcp_nodelay(true)
        .user_agent(concat!("watcher-metal/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &options.ca_cert_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|_| ClientBuildError("maas-ca-cert: not a valid PEM certificate".to_owned()))?;
        if certs.is_empty() {
            return Err(ClientBuildError("maas-ca-cert: no certificate in the PEM text".to_owned()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(resolver) = &options.resolver {
        builder = builder.dns_resolver(Arc::new(SharedResolver(resolver.clone())));
    }
    builder.build().map_err(|e| ClientBuildError(format!("cannot set up HTTPS: {e}")))
}

/// A failure below HTTP: the name, the connection, TLS, time, or size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The host name does not resolve.
    Dns { host: String },
    /// Nothing listens at the address.
    Refused { address: String },
    /// No complete answer within the timeout.
    Timeout { after: Duration },
    /// The server's certificate is not signed by a trusted CA.
    TlsUntrusted { detail: String },
    /// The certificate is for another host name.
    TlsHostname { host: String },
    /// Another TLS failure (expired certificate, not TLS at all, ...).
    Tls { detail: String },
    /// The answer was larger than the cap.
    TooLarge { limit: u64 },
    /// The connection broke or the answer was not valid HTTP.
    Protocol { detail: String },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Dns { host } => write!(f, "cannot resolve host name `{host}`"),
            TransportError::Refused { address } => write!(f, "connection refused by {address}"),
            TransportError::Timeout { after } => write!(f, "no answer within {} s", after.as_secs().max(1)),
            TransportError::TlsUntrusted { detail } => {
                write!(f, "TLS: the server's certificate is not trusted ({detail})")
            }
            TransportError::TlsHostname { host } => {
                write!(f, "TLS: the server's certificate is not valid for `{host}`")
            }
            TransportError::Tls { detail } => write!(f, "TLS: {detail}"),
            TransportError::TooLarge { limit } if *limit < 1024 * 1024 * 16 => {
                write!(f, "the answer holds a value larger than the {} KiB limit", limit >> 10)
            }
            TransportError::TooLarge { limit } => write!(f, "the answer is larger than the {} MiB limit", limit >> 20),
            TransportError::Protocol { detail } => write!(f, "connection failed: {detail}"),
        }
    }
}

impl TransportError {
    /// What to do, for a service reached at the URL in `option`.
    pub fn hint(&self, option: &str, ca_option: &str) -> String {
        match self {
            TransportError::Dns { .. } => format!("check the host name in {option}, or use an IP address"),
            TransportError::Refused { .. } => {
                format!("check the host and port in {option} and that the service is running")
            }
            TransportError::Timeout { .. } => {
                "check that the service is reachable from this machine (firewall, routing), or raise the timeout"
                    .to_owned()
            }
            TransportError::TlsUntrusted { .. } => {
                format!("set {ca_option} to the PEM of the CA that signed the server's certificate")
            }
            TransportError::TlsHostname { .. } => {
                format!("use the host name the server's certificate names in {option}, or reissue the certificate")
            }
            TransportError::Tls { .. } | TransportError::Protocol { .. } => {
                format!("check the scheme in {option} (https for TLS, http otherwise) and any proxy on the way")
            }
            TransportError::TooLarge { .. } => "narrow the request (filters)".to_owned(),
        }
    }
}

/// Why a 2xx body could not be read as the JSON expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    Transport(TransportError),
    /// An HTML page instead of JSON.
    Html,
    /// Not JSON, or JSON of another shape (`json_declared`: the server said
    /// it was JSON).
    Shape {
        json_declared: bool,
        detail: String,
    },
}

impl BodyError {
    /// The words for a `Shape` or `Html` error.
    pub fn describe_shape(&self) -> String {
        match self {
            BodyError::Html => "the answer is an HTML page, not JSON".to_owned(),
            BodyError::Shape { json_declared: true, detail } => {
                format!("the JSON answer has an unexpected shape ({detail})")
            }
            BodyError::Shape { json_declared: false, detail } => format!("the answer is not JSON ({detail})"),
            BodyError::Transport(e) => e.to_string(),
        }
    }
}

pub fn is_html(headers: &HeaderMap) -> bool {
    content_type_contains(headers, "html")
}

pub fn is_json(headers: &HeaderMap) -> bool {
    content_type_contains(headers, "json")
}

fn content_type_contains(headers: &HeaderMap, what: &str) -> bool {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.to_ascii_lowercase().contains(what))
}

/// The start of an error body, as text.
pub fn read_error_body(response: Response) -> String {
    let mut buf = Vec::new();
    let _ = response.take(ERROR_BODY_LIMIT).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The longest JSON string accepted in an answer. The parser buffers each
/// string it keeps whole, so this bounds memory against a server that sends
/// one endless string.
pub const MAX_JSON_STRING: usize = 1024 * 1024;

/// A reader over a response body that stops, recording why in `stopped`,
/// when more than `limit` bytes arrive, when one JSON string runs longer
/// than [`MAX_JSON_STRING`], or when `deadline` passes (the HTTP client's
/// timeout applies to each read, not to the whole body).
struct Capped<R> {
    inner: R,
    remaining: u64,
    limit: u64,
    deadline: Option<Instant>,
    timeout: Duration,
    in_string: bool,
    escaped: bool,
    string_len: usize,
    stopped: Rc<Cell<Option<TransportError>>>,
}

impl<R> Capped<R> {
    fn new(inner: R, limit: u64) -> Capped<R> {
        Capped {
            inner,
            remaining: limit,
            limit,
            deadline: None,
            timeout: Duration::ZERO,
            in_string: false,
            escaped: false,
            string_len: 0,
            stopped: Rc::new(Cell::new(None)),
        }
    }

    fn with_deadline(mut self, timeout: Duration) -> Capped<R> {
        self.deadline = Some(Instant::now() + timeout);
        self.timeout = timeout;
        self
    }

    fn stop(&self, why: TransportError) -> io::Error {
        let message = why.to_string();
        self.stopped.set(Some(why));
        io::Error::other(message)
    }

    /// Follows string boundaries through `bytes`; false if one is too long.
    fn track_strings(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.in_string {
                self.string_len += 1;
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                if self.string_len > MAX_JSON_STRING {
                    return false;
                }
            } else if b == b'"' {
                self.in_string = true;
                self.string_len = 0;
            }
        }
        true
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(self.stop(TransportError::Timeout { after: self.timeout }));
        }
        if self.remaining == 0 {
            // One probe byte tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(self.stop(TransportError::TooLarge { limit: self.limit })),
            };
        }
        let max = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..max]) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => return Err(self.stop(TransportError::Timeout { after: self.timeout })),
            Err(e) => return Err(e),
        };
        self.remaining -= n as u64;
        if !self.track_strings(&buf[..n]) {
            return Err(self.stop(TransportError::TooLarge { limit: MAX_JSON_STRING as u64 }));
        }
        Ok(n)
    }
}

/// A read that timed out: the HTTP client wraps its own error in `io::Error`.
fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
        || e.get_ref().and_then(|inner| inner.downcast_ref::<reqwest::Error>()).is_some_and(reqwest::Error::is_timeout)
}

/// Parses a 2xx JSON answer as it streams, through the size cap, so that
/// memory holds only what `T` keeps.
pub fn read_json<T: DeserializeOwned>(response: Response, limit: u64, timeout: Duration) -> Result<T, BodyError> {
    let headers = response.headers().clone();
    if is_html(&headers) {
        return Err(BodyError::Html);
    }
    let json_declared = is_json(&headers);
    let capped = Capped::new(response, limit).with_deadline(timeout);
    let stopped = capped.stopped.clone();
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(64 * 1024, capped));
    let value = T::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(|e| match stopped.take() {
        Some(why) => BodyError::Transport(why),
        None if e.is_io() => BodyError::Transport(body_io_error(&e, timeout)),
        None => BodyError::Shape { json_declared, detail: describe_json_error(&e) },
    })
}

/// serde_json's error without any quoted input.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "truncated",
        serde_json::error::Category::Io => "read error",
    };
    format!("{kind} at line {}, column {}", e.line(), e.column())
}

/// A failure of the connection while the body streamed in. serde_json
/// keeps only the I/O error's kind, which is enough to tell a timeout.
fn body_io_error(e: &serde_json::Error, timeout: Duration) -> TransportError {
    match e.io_error_kind() {
        Some(io::ErrorKind::TimedOut) => TransportError::Timeout { after: timeout },
        _ => TransportError::Protocol { detail: format!("the answer broke off ({})", describe_json_error(e)) },
    }
}

/// Turns a transport failure into what the user needs to hear.
pub fn classify_transport(e: &reqwest::Error, url: &Url, timeout: Duration) -> TransportError {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_stops_past_the_limit() {
        let mut ok = Capped::new(&b"12345"[..], 5);
        let mut out = Vec::new();
        assert_eq!(ok.read_to_end(&mut out).unwrap(), 5);
        let mut over = Capped::new(&b"123456"[..], 5);
        assert!(over.read_to_end(&mut Vec::new()).is_err());
        assert_eq!(over.stopped.take(), Some(TransportError::TooLarge { limit: 5 }));
    }

    #[test]
    fn capped_reader_refuses_an_endless_string() {
        let mut long = b"[\"ok\", \"esc\\\" still in\", \"".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_JSON_STRING + 10));
        let mut reader = Capped::new(&long[..], u64::MAX);
        assert!(reader.read_to_end(&mut Vec::new()).is_err());
        assert_eq!(reader.stopped.take(), Some(TransportError::TooLarge { limit: MAX_JSON_STRING as u64 }));
        // Many short strings are fine, however long the whole.
        let many = "\"abc\",".repeat(400_000);
        let mut reader = Capped::new(many.as_bytes(), u64::MAX);
        assert_eq!(reader.read_to_end(&mut Vec::new()).unwrap(), many.len());
    }

    #[test]
    fn capped_reader_enforces_the_deadline() {
        let mut reader = Capped::new(&b"[1, 2, 3]"[..], 100).with_deadline(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        assert!(reader.read(&mut [0u8; 4]).is_err());
        assert_eq!(reader.stopped.take(), Some(TransportError::Timeout { after: Duration::ZERO }));
    }
}
