//! What a client of an OpenStack service behind Keystone does whichever
//! the service (Ironic, Nova): `cafile` and `timeout` of the credentials
//! over the HTTP options, the token and the service's endpoint from
//! Keystone's catalog (by service type, interface and region, as
//! keystoneauth picks it) reused until the token nears expiry, one
//! re-authentication on a 401, the service's echoed messages masked, and
//! one error type that names the service.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::clients::http::{self, ClientBuildError, HttpOptions, TransportError};
use crate::clients::json_body::{self, BodyError};
use crate::clients::openstack::keystone::{self, KeystoneAuth, KeystoneError, Session, SessionCache, Token};

/// The OpenStack service a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Ironic, catalog type `baremetal`.
    Ironic,
    /// Nova, catalog type `compute`.
    Nova,
}

impl Service {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Service::Ironic => "Ironic",
            Service::Nova => "Nova",
        }
    }

    /// Its type in Keystone's catalog.
    pub fn service_type(self) -> &'static str {
        match self {
            Service::Ironic => "baremetal",
            Service::Nova => "compute",
        }
    }

    /// The base URL requests join below: the catalog's URL ending in `/`;
    /// for Ironic without a trailing `/v1` (as ironicclient trims it), so
    /// that `v1/...` joins below it.
    fn base(self, url: &str) -> String {
        let trimmed = url.trim_end_matches('/');
        let trimmed = match self {
            Service::Ironic => trimmed.strip_suffix("/v1").unwrap_or(trimmed),
            Service::Nova => trimmed,
        };
        format!("{trimmed}/")
    }
}

/// Why a call to an OpenStack service (or the Keystone call before it)
/// failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(*.service, .kind))]
pub struct OpenStackError {
    /// The service called.
    pub service: Service,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What went wrong calling an OpenStack service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Keystone refused the credentials, or they are unusable.
    Keystone(KeystoneError),
    /// The service's own settings are unusable (Nova's `api_version`).
    Config {
        /// What is wrong.
        message: String,
    },
    /// Below HTTP, talking to the service (the catalog's endpoint).
    Transport(TransportError),
    /// The catalog has no matching endpoint of the service's type.
    NoEndpoint {
        /// The interface looked for (`public`, `internal`, `admin`: a
        /// trailing `URL` dropped).
        interface: String,
        /// The region looked for; `None`: any region.
        region: Option<String>,
    },
    /// The service does not serve the microversion asked for (406).
    Microversion {
        /// The microversion sent.
        requested: String,
        /// What the service said it serves.
        supported: Supported,
    },
    /// The service answered an error, with its message.
    Api {
        /// The HTTP status, after any retries.
        status: u16,
        /// The first line of the service's message, secrets masked.
        message: String,
    },
    /// The answer is not what the service or Keystone send.
    Unexpected {
        /// What was wrong with it.
        detail: String,
    },
}

/// The microversions a service says it serves, on a 406.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supported {
    /// The range in its headers (Ironic); `None` where it did not say.
    Range {
        /// The lowest.
        min: Option<String>,
        /// The highest.
        max: Option<String>,
    },
    /// The first line of its message (Nova), secrets masked.
    Said(String),
}

fn describe(service: Service, kind: &ErrorKind) -> String {
    let name = service.name();
    match kind {
        ErrorKind::Keystone(e) => e.to_string(),
        ErrorKind::Config { message } => message.clone(),
        ErrorKind::Transport(error) => format!("{name}: {error}"),
        ErrorKind::NoEndpoint { interface, region } => format!(
            "no {} endpoint with interface `{interface}`{} in the Keystone catalog",
            service.service_type(),
            region.as_deref().map(|r| format!(" in region `{r}`")).unwrap_or_default()
        ),
        ErrorKind::Microversion { requested, supported: Supported::Range { min, max } } => format!(
            "{name} does not support API version {requested} (it supports {} to {})",
            min.as_deref().unwrap_or("?"),
            max.as_deref().unwrap_or("?")
        ),
        ErrorKind::Microversion { requested, supported: Supported::Said(message) } => {
            format!("{name} does not support API version {requested}: {message}")
        }
        ErrorKind::Api { status, message } => format!("{name} refused ({status}): {message}"),
        // Ironic's wording has always put the service in the detail.
        ErrorKind::Unexpected { detail } if service == Service::Ironic => format!("unexpected answer: {detail}"),
        ErrorKind::Unexpected { detail } => format!("unexpected answer from {name}: {detail}"),
    }
}

impl OpenStackError {
    /// A failure of `service`.
    pub fn new(service: Service, kind: ErrorKind) -> OpenStackError {
        OpenStackError { service, kind }
    }

    /// `service`'s credentials are unusable.
    pub(crate) fn keystone(service: Service, e: KeystoneError) -> OpenStackError {
        OpenStackError::new(service, ErrorKind::Keystone(e))
    }

    /// An answer of `service` that is not what it sends.
    pub fn unexpected(service: Service, detail: impl Into<String>) -> OpenStackError {
        OpenStackError::new(service, ErrorKind::Unexpected { detail: detail.into() })
    }

    /// The HTTP status the service answered with, for an API error.
    pub fn api_status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Api { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// A client of one OpenStack service through one set of Keystone
/// credentials: the session, the catalog and the re-authentication.
pub(crate) struct ServiceClient {
    service: Service,
    /// Without the system's CA certificates when Keystone is plain http
    /// (start-up cost); an https endpoint gets `https`.
    http: Client,
    https: OnceLock<Result<Client, ClientBuildError>>,
    http_options: HttpOptions,
    pub(crate) auth: KeystoneAuth,
    interface: String,
    region: Option<String>,
    timeout: Duration,
    session: SessionCache,
}

impl fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("service", &self.service)
            .field("auth", &self.auth)
            .field("interface", &self.interface)
            .field("region", &self.region)
            .finish()
    }
}

impl ServiceClient {
    /// A client of `service` for these credentials, at the catalog's
    /// `endpoint_type` (keystoneauth drops a trailing `URL`) in `region`
    /// (any when `None`); `auth`'s `timeout` and `cafile`, when set, take
    /// the place of `http_options`'.
    pub(crate) fn new(
        service: Service,
        auth: KeystoneAuth,
        mut http_options: HttpOptions,
        endpoint_type: &str,
        region: Option<String>,
    ) -> Result<ServiceClient, OpenStackError> {
        let config = |message: String| OpenStackError::keystone(service, KeystoneError::Config { message });
        if let Some(timeout) = auth.timeout() {
            http_options.timeout = timeout;
        }
        if let (Some(cafile), None) = (auth.cafile(), &http_options.ca_cert_pem) {
            let pem =
                std::fs::read_to_string(cafile).map_err(|e| config(format!("cannot read cafile {cafile}: {e}")))?;
            http_options.ca_cert_pem = Some(pem);
        }
        let https = auth.token_url().map(|u| u.scheme() == "https").unwrap_or(true);
        let http = http::build_client(&http_options, https).map_err(|e| config(cafile_error(&e)))?;
        let https_client = OnceLock::new();
        if https {
            let _ = https_client.set(Ok(http.clone()));
        }
        Ok(ServiceClient {
            service,
            http,
            https: https_client,
            timeout: http_options.timeout,
            http_options,
            auth,
            interface: endpoint_type.trim_end_matches("URL").to_owned(),
            region,
            session: SessionCache::default(),
        })
    }

    /// A failure of this client's service.
    pub(crate) fn error(&self, kind: ErrorKind) -> OpenStackError {
        OpenStackError::new(self.service, kind)
    }

    fn client_for(&self, url: &Url) -> Result<&Client, OpenStackError> {
        if url.scheme() != "https" {
            return Ok(&self.http);
        }
        let built = self.https.get_or_init(|| http::build_client(&self.http_options, true));
        built.as_ref().map_err(|e| self.error(ErrorKind::Keystone(KeystoneError::Config { message: cafile_error(e) })))
    }

    fn authenticate(&self) -> Result<Session, OpenStackError> {
        let keystone = |e| self.error(ErrorKind::Keystone(e));
        let token_url = self.auth.token_url().map_err(keystone)?;
        let proxies = &self.http_options.proxies;
        let issued = keystone::authenticate(self.client_for(&token_url)?, &self.auth, self.timeout, proxies)
            .map_err(keystone)?;
        let service_type = self.service.service_type();
        let region = self.region.as_deref();
        let url = issued.answer.endpoint_url(service_type, &self.interface, region).ok_or_else(|| {
            self.error(ErrorKind::NoEndpoint { interface: self.interface.clone(), region: self.region.clone() })
        })?;
        let endpoint = Url::parse(&self.service.base(url)).map_err(|e| {
            self.error(ErrorKind::Unexpected { detail: format!("the catalog's {service_type} URL is not a URL ({e})") })
        })?;
        Ok(Session { token: issued.token, expires_at: issued.answer.expires_at(), endpoint })
    }

    /// The endpoint the catalog gives for these settings.
    pub(crate) fn endpoint(&self) -> Result<Url, OpenStackError> {
        Ok(self.session.get(|| self.authenticate())?.1)
    }

    /// One request below the endpoint, with the token and `prepare`'s
    /// headers and body; re-authenticates once on a 401. Any other answer
    /// is the caller's, with the token it was sent with (to mask what the
    /// service echoes).
    pub(crate) fn send(
        &self,
        method: Method,
        path_and_query: &str,
        prepare: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<(Response, Token), OpenStackError> {
        let mut reauthenticated = false;
        loop {
            let (token, endpoint) = self.session.get(|| self.authenticate())?;
            let url = endpoint
                .join(path_and_query)
                .map_err(|e| self.error(ErrorKind::Unexpected { detail: format!("bad request path ({e})") }))?;
            let request = self
                .client_for(&url)?
                .request(method.clone(), url.clone())
                .header(ACCEPT, "application/json")
                .header("X-Auth-Token", token.header.clone());
            let response = prepare(request).timeout(self.timeout).send().map_err(|e| {
                self.error(ErrorKind::Transport(http::classify_transport(
                    &e,
                    &url,
                    self.timeout,
                    &self.http_options.proxies,
                )))
            })?;
            if response.status() == StatusCode::UNAUTHORIZED && !reauthenticated {
                reauthenticated = true;
                self.session.invalidate();
                continue;
            }
            return Ok((response, token));
        }
    }

    /// The first line of an error answer's message, as `fault_text` finds
    /// it in the body, with the credentials and `token` masked first.
    pub(crate) fn refusal(&self, response: Response, token: &Token, fault_text: fn(&str) -> String) -> String {
        let body = http::read_error_body(response);
        http::first_line(&self.auth.mask(&fault_text(&body), Some(&token.secret)))
    }

    /// A successful answer's JSON body, within `limit` bytes and the
    /// timeout.
    pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        response: Response,
        limit: u64,
    ) -> Result<T, OpenStackError> {
        json_body::read_json(response, limit, self.timeout).map_err(|e| self.body_error(e))
    }

    /// A successful answer that is a page of a listing: the elements of its
    /// member `list` handed to `each` as they stream in, the rest parsed as
    /// `R` (see [`json_body::read_json_page`]).
    pub(crate) fn read_json_page<T: serde::de::DeserializeOwned + Send, R: serde::de::DeserializeOwned>(
        &self,
        response: Response,
        limit: u64,
        list: &str,
        each: impl FnMut(T),
    ) -> Result<R, OpenStackError> {
        json_body::read_json_page(response, limit, self.timeout, list, each).map_err(|e| self.body_error(e))
    }

    /// A body that could not be read as expected.
    pub(crate) fn body_error(&self, e: BodyError) -> OpenStackError {
        match e {
            BodyError::Transport(error) => self.error(ErrorKind::Transport(error)),
            other => {
                let shape = other.describe_shape();
                let detail = match self.service {
                    Service::Ironic => format!("Ironic: {shape}"),
                    Service::Nova => shape,
                };
                self.error(ErrorKind::Unexpected { detail })
            }
        }
    }
}

/// A CA bundle from `cafile` that cannot be used, in `cafile`'s name.
fn cafile_error(e: &ClientBuildError) -> String {
    if e.is_about_the_ca() {
        format!("cafile: {e}")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_and_wording_per_service() {
        assert_eq!(Service::Ironic.base("http://h:6385/v1/"), "http://h:6385/");
        assert_eq!(Service::Ironic.base("http://h/baremetal"), "http://h/baremetal/");
        assert_eq!(Service::Nova.base("http://h:8774/v2.1"), "http://h:8774/v2.1/");
        let no_endpoint =
            |service| OpenStackError::new(service, ErrorKind::NoEndpoint { interface: "public".into(), region: None });
        assert_eq!(
            no_endpoint(Service::Ironic).to_string(),
            "no baremetal endpoint with interface `public` in the Keystone catalog"
        );
        assert_eq!(
            no_endpoint(Service::Nova).to_string(),
            "no compute endpoint with interface `public` in the Keystone catalog"
        );
        assert_eq!(OpenStackError::unexpected(Service::Nova, "x").to_string(), "unexpected answer from Nova: x");
        assert_eq!(
            OpenStackError::keystone(Service::Nova, KeystoneError::Unexpected { detail: "y".into() }).to_string(),
            "unexpected answer from Keystone: y"
        );
        assert_eq!(cafile_error(&ClientBuildError::InvalidPem), "cafile: not a valid PEM certificate");
    }
}
