//! A blocking MAAS API 2.0 client: OAuth 1.0 PLAINTEXT signing, bounded
//! retries, capped bodies, and errors that say exactly what went wrong.
//!
//! Wire rules this follows (see the MAAS reference notes):
//! - every signed request gets a fresh nonce and timestamp, retries included;
//! - redirects are never followed (a TLS-enabled MAAS answers 301 to https,
//!   and following it would drop or leak the signature);
//! - 503 and 409 with an integer `Retry-After` are retried, a bounded number
//!   of times within a bounded total time, like gomaasapi; nothing else is
//!   retried, so power actions are never sent twice blindly;
//! - bodies are read through a cap, and large listings are parsed as they
//!   stream, so memory stays bounded.

pub mod api_key;
pub mod url;

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use ::url::Url;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, DATE, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub(crate) use crate::clients::http::ClientBuildError;
use crate::clients::http::{classify_transport, is_html, read_error_body, HttpOptions, TransportError};
use crate::clients::json_body::{read_json, read_json_list, BodyError};
use crate::clients::maas::api_key::MaasApiKey;
use crate::clients::maas::url::MaasUrl;

/// The largest non-listing answer read (version, whoami, one machine, errors).
const SMALL_BODY_LIMIT: u64 = 4 * 1024 * 1024;
/// The largest machine listing read (about 20 KiB a machine for tens of
/// thousands of machines). Parsed as it streams, keeping only the fields
/// used, so memory stays far below this.
const LIST_BODY_LIMIT: u64 = 1024 * 1024 * 1024;

/// How 503/409 answers with `Retry-After` are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt (gomaasapi: 4).
    max_retries: u32,
    /// No retry starts if it would end later than this after the first attempt.
    pub(crate) max_total: Duration,
    /// The longest single wait honoured; a longer `Retry-After` is cut to this.
    max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 4, max_total: Duration::from_secs(120), max_wait: Duration::from_secs(30) }
    }
}

/// How a client talks to MAAS: HTTP settings (timeout, CA, pool) and retries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of each request (body included), extra CA, resolver, pool.
    pub http: HttpOptions,
    pub(crate) retry: RetryPolicy,
}

impl ClientOptions {
    /// The default retry policy, and `timeout` for each request, body
    /// included.
    pub fn new(timeout: Duration) -> ClientOptions {
        ClientOptions { http: HttpOptions::new(timeout), retry: RetryPolicy::default() }
    }
}

/// Why a MAAS call failed. Each kind has its own exit code and hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaasError {
    /// Name resolution, connection, TLS, timeout or size.
    #[error(transparent)]
    Transport(TransportError),
    /// MAAS answered with a redirect (usually: TLS is on, use https).
    #[error("MAAS redirects ({status}) to {location}")]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// The `Location` header; empty when there is none.
        location: String,
        /// The https base URL to set as `maas-url` instead, when one can be
        /// told.
        suggestion: Option<String>,
    },
    /// 404: the URL's path is wrong.
    #[error("404 Not Found for {url}")]
    NotFound {
        /// The URL requested, query included.
        url: String,
        /// The answer was an HTML page: a web server, not MAAS's API.
        html: bool,
    },
    /// 410: the URL points at the retired API 1.0.
    #[error("410 Gone: this URL is MAAS's retired API 1.0")]
    Gone,
    /// 401: the consumer key is unknown to MAAS.
    #[error("MAAS rejected the API key: unknown consumer key (401)")]
    InvalidApiKey,
    /// 401: the token key is unknown (key revoked, or from another MAAS).
    #[error("MAAS rejected the API key: unknown or revoked token (401)")]
    InvalidToken,
    /// 401: the token secret does not match.
    #[error("MAAS rejected the API key: wrong token secret (401)")]
    BadSignature,
    /// 401: the request's timestamp is too old for MAAS: clock skew.
    #[error("{}", expired(*skew_secs))]
    ExpiredTimestamp {
        /// MAAS's clock minus this machine's, in seconds (positive: this
        /// machine is behind); `None` when neither MAAS's message nor its
        /// `Date` header tells.
        skew_secs: Option<i64>,
    },
    /// 401: the nonce was seen before.
    #[error("MAAS rejected a reused OAuth nonce (401)")]
    NonceReused,
    /// 401 without OAuth detail ("Forbidden"), or another 401 message.
    #[error("MAAS refused the request (401): {detail}")]
    Unauthorized {
        /// MAAS's words before any quote (which could name a key), or
        /// `no reason given`.
        detail: String,
    },
    /// 403: the user may not do this (inactive user, locked machine, ...).
    #[error("MAAS forbids this (403): {detail}")]
    Forbidden {
        /// MAAS's message (see [`MaasError::BadRequest`]), or `no reason
        /// given`.
        detail: String,
    },
    /// 400: MAAS refused the request's parameters.
    #[error("MAAS refused the request (400): {detail}")]
    BadRequest {
        /// The first line of MAAS's answer, keys masked, at most 200
        /// characters; `an HTML page` for HTML.
        detail: String,
    },
    /// 409: the request conflicts with the machine's state.
    #[error("MAAS refused the action (409): {detail}")]
    Conflict {
        /// MAAS's message (see [`MaasError::BadRequest`]), e.g. `Can't start
        /// node: it hasn't been allocated.`
        detail: String,
    },
    /// 5xx (after any retries).
    #[error("MAAS server error ({status}): {detail}")]
    Server {
        /// The status, 500 to 599.
        status: u16,
        /// MAAS's message (see [`MaasError::BadRequest`]).
        detail: String,
    },
    /// Another unexpected status.
    #[error("unexpected answer {status} from MAAS: {detail}")]
    Status {
        /// The status.
        status: u16,
        /// The answer's message (see [`MaasError::BadRequest`]).
        detail: String,
    },
    /// The answer is not what MAAS's API sends (HTML, not JSON, wrong shape).
    #[error("not a MAAS API: {detail}")]
    NotMaas {
        /// What was wrong with the answer.
        detail: String,
    },
}

/// MAAS refused the request's timestamp: by how much the clocks differ,
/// when it can be told.
fn expired(skew_secs: Option<i64>) -> String {
    match skew_secs {
        Some(skew) => format!(
            "MAAS rejected the request's timestamp (401): this machine's clock is {} s {} MAAS's",
            skew.abs(),
            if skew >= 0 { "behind" } else { "ahead of" }
        ),
        None => "MAAS rejected the request's timestamp as expired (401): clock skew".to_owned(),
    }
}

impl From<TransportError> for MaasError {
    fn from(e: TransportError) -> Self {
        MaasError::Transport(e)
    }
}

impl From<BodyError> for MaasError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Transport(t) => MaasError::Transport(t),
            other => MaasError::NotMaas { detail: other.describe_shape() },
        }
    }
}

/// `GET version/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaasVersion {
    /// MAAS's version, e.g. `3.5.0`.
    pub(crate) version: String,
    /// Empty on current MAAS; older ones put build details here.
    #[serde(default)]
    subversion: String,
    /// The API capabilities MAAS announces, e.g. `networks-management`.
    #[serde(default)]
    capabilities: Vec<String>,
}

/// `GET users/?op=whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The MAAS user the API key belongs to.
    pub username: String,
    /// That user's e-mail address, if MAAS has one.
    #[serde(default)]
    email: Option<String>,
    /// Whether the user is a MAAS administrator.
    #[serde(default)]
    pub is_superuser: bool,
}

/// A named object MAAS nests in a machine (zone, pool, domain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    /// Its name, e.g. `default`.
    pub name: String,
}

/// The fields of a MAAS machine this tool uses; the rest is skipped while
/// parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// MAAS's id for the machine, e.g. `d8n3re`: what the power calls take.
    pub system_id: String,
    /// The short hostname, without the domain.
    pub hostname: String,
    /// `hostname.domain`: what Watcher compares with Nova's
    /// `hypervisor_hostname`. Empty when MAAS sent none.
    #[serde(default)]
    pub fqdn: String,
    /// `on`, `off`, `unknown` or `error`, as MAAS last recorded it (not
    /// asked of the BMC); empty when null.
    #[serde(default, deserialize_with = "null_as_default")]
    pub power_state: String,
    /// The power driver, e.g. `ipmi` or `manual`; empty when null.
    #[serde(default, deserialize_with = "null_as_default")]
    power_type: String,
    /// MAAS's numeric node status (4 Ready, 6 Deployed, 10 Allocated, ...).
    #[serde(default)]
    pub(crate) status: Option<i64>,
    /// The status in words, e.g. `Deployed`; empty when null.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) status_name: String,
    /// The user it is allocated to; `None` when it is not allocated.
    #[serde(default)]
    owner: Option<String>,
    /// Its availability zone.
    #[serde(default)]
    pub zone: Option<Named>,
    /// Its resource pool.
    #[serde(default)]
    pool: Option<Named>,
    /// Locked machines refuse power actions (403).
    #[serde(default)]
    locked: bool,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Server-side filters for `GET machines/`. Empty lists and `None` filter
/// nothing; the filters given all apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineFilter {
    /// Only machines with one of these hostnames (`hostname=`).
    pub hostnames: Vec<String>,
    /// Only machines with one of these system ids (`id=`).
    pub ids: Vec<String>,
    /// Only machines in this zone, by name.
    pub zone: Option<String>,
    /// Only machines in this resource pool, by name.
    pub pool: Option<String>,
}

impl MachineFilter {
    fn query(&self) -> Vec<(&'static str, &str)> {
        let mut q: Vec<(&'static str, &str)> = Vec::new();
        q.extend(self.hostnames.iter().map(|h| ("hostname", h.as_str())));
        q.extend(self.ids.iter().map(|i| ("id", i.as_str())));
        q.extend(self.zone.iter().map(|z| ("zone", z.as_str())));
        q.extend(self.pool.iter().map(|p| ("pool", p.as_str())));
        q
    }
}

/// How `power_off` stops the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Cut the power at once (`stop_mode=hard`, MAAS's default).
    Hard,
    /// Ask the machine to shut down, as far as its power driver can
    /// (`stop_mode=soft`).
    Soft,
}

/// A client of one MAAS's API 2.0, signing with one API key. `Debug` shows
/// no key material.
#[derive(Clone)]
pub struct MaasClient {
    http: Client,
    url: MaasUrl,
    key: MaasApiKey,
    options: ClientOptions,
}

impl fmt::Debug for MaasClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaasClient").field("url", &self.url).field("key", &self.key).finish()
    }
}

impl MaasClient {
    /// A client of `url` signing with `key`. Fails only when the HTTP client
    /// cannot be built (a bad CA certificate, mostly); nothing is sent yet.
    pub fn new(url: MaasUrl, key: MaasApiKey, options: ClientOptions) -> Result<MaasClient, ClientBuildError> {
        let http = crate::clients::http::build_client(&options.http, url.api_root().scheme() == "https")?;
        Ok(MaasClient { http, url, key, options })
    }

    /// The same client (its connections included) with each request, body
    /// included, bounded by `timeout`, and no retry starting later than
    /// `max_total` after a call's first attempt.
    pub(crate) fn bounded(&self, timeout: Duration, max_total: Duration) -> MaasClient {
        let mut client = self.clone();
        client.options.http.timeout = timeout;
        client.options.retry.max_total = client.options.retry.max_total.min(max_total);
        client
    }

    /// The timeout of each request.
    pub(crate) fn timeout(&self) -> Duration {
        self.options.http.timeout
    }

    pub(crate) fn url(&self) -> &MaasUrl {
        &self.url
    }

    /// The `Authorization` header for one request: fresh nonce and
    /// timestamp every time. Marked sensitive so it never shows in Debug.
    fn authorization(&self, method: &Method, url: &Url) -> HeaderValue {
        let token = oauth1_request::Token::from_parts(
            self.key.consumer_key().expose(),
            "",
            self.key.token_key().expose(),
            self.key.token_secret().expose(),
        );
        let mut builder = oauth1_request::Builder::with_token(token, oauth1_request::signature_method::PLAINTEXT);
        builder.version(true);
        // The library wants the URI without its query (query parameters are
        // signed separately, and PLAINTEXT signs neither).
        let mut base = url.clone();
        base.set_query(None);
        base.set_fragment(None);
        let header = encode_signature(&builder.authorize(method.as_str(), base.as_str(), &()));
        let mut value = HeaderValue::from_str(&header).unwrap_or_else(|_| HeaderValue::from_static("OAuth"));
        value.set_sensitive(true);
        value
    }

    fn endpoint_url(&self, endpoint: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.url.endpoint(endpoint);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// Sends one call, retrying 503/409 with `Retry-After` as the policy
    /// allows. Returns the 2xx response, or the classified failure.
    fn send(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
        signed: bool,
    ) -> Result<Response, MaasError> {
        let url = self.endpoint_url(endpoint, query);
        let started = Instant::now();
        let mut retries = 0;
        loop {
            let mut request: RequestBuilder =
                self.http.request(method.clone(), url.clone()).header(ACCEPT, "application/json");
            if signed {
                request = request.header(AUTHORIZATION, self.authorization(&method, &url));
            }
            if let Some(form) = form {
                request = request.header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(encode_form(form));
            }
            // The request's own timeout bounds it whole, body included (the
            // client's alone would apply to each read).
            let response = request
                .timeout(self.options.http.timeout)
                .send()
                .map_err(|e| classify_transport(&e, &url, self.options.http.timeout, &self.options.http.proxies))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if let Some(wait) = retry_wait(&response) {
                let wait = wait.min(self.options.retry.max_wait);
                let fits = started.elapsed() + wait <= self.options.retry.max_total;
                if retries < self.options.retry.max_retries && fits {
                    retries += 1;
                    drop(response);
                    std::thread::sleep(wait);
                    continue;
                }
            }
            return Err(self.classify_status(response, &url));
        }
    }

    fn classify_status(&self, response: Response, url: &Url) -> MaasError {
        let status = response.status();
        let headers = response.headers().clone();
        let html = is_html(&headers);
        let body = read_error_body(response);
        let detail = self.summarise(&body, html);
        match status.as_u16() {
            301 | 302 | 303 | 307 | 308 => {
                let location = headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let suggestion = location
                    .starts_with("https://")
                    .then(|| https_base(&location, self.url.api_root()))
                    .flatten()
                    .or_else(|| (self.url.api_root().scheme() == "http").then(|| self.url.https_suggestion()));
                MaasError::Redirect { status: status.as_u16(), location, suggestion }
            }
            401 => classify_unauthorized(&body, &headers),
            403 => MaasError::Forbidden { detail: if detail.is_empty() { "no reason given".into() } else { detail } },
            404 => MaasError::NotFound { url: url.as_str().to_owned(), html },
            410 => MaasError::Gone,
            400 => MaasError::BadRequest { detail },
            409 => MaasError::Conflict { detail },
            500..=599 => MaasError::Server { status: status.as_u16(), detail },
            other => MaasError::Status { status: other, detail },
        }
    }

    /// The first line of an error body, short, with no key material.
    fn summarise(&self, body: &str, html: bool) -> String {
        if html {
            return "an HTML page".to_owned();
        }
        let line = body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        let line: String = line.chars().filter(|c| !c.is_control()).collect();
        let parts = [
            self.key.whole().expose(),
            self.key.token_secret().expose(),
            self.key.token_key().expose(),
            self.key.consumer_key().expose(),
        ];
        // Masked whole, then cut: a cut could split a secret.
        crate::secret::mask(&line, &parts).chars().take(200).collect()
    }

    fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
        signed: bool,
    ) -> Result<T, MaasError> {
        let response = self.send(Method::GET, endpoint, query, None, signed)?;
        Ok(read_json(response, SMALL_BODY_LIMIT, self.options.http.timeout)?)
    }

    /// `GET version/` (anonymous): proves the URL is a MAAS API.
    pub fn version(&self) -> Result<MaasVersion, MaasError> {
        self.get_json("version/", &[], false)
    }

    /// `GET users/?op=whoami` (signed): proves the key.
    pub(crate) fn whoami(&self) -> Result<WhoAmI, MaasError> {
        self.get_json("users/", &[("op", "whoami")], true)
    }

    /// `GET machines/` with server-side filters, parsed as it streams.
    pub fn machines(&self, filter: &MachineFilter) -> Result<Vec<Machine>, MaasError> {
        let mut machines = Vec::new();
        self.each_machine(filter, |m| machines.push(m))?;
        Ok(machines)
    }

    /// `GET machines/` with server-side filters, each machine handed to
    /// `each` as soon as it is parsed, so that the listing is never held
    /// whole.
    pub fn each_machine(&self, filter: &MachineFilter, each: impl FnMut(Machine)) -> Result<(), MaasError> {
        let response = self.send(Method::GET, "machines/", &filter.query(), None, true)?;
        Ok(read_json_list(response, LIST_BODY_LIMIT, self.options.http.timeout, each)?)
    }

    /// `GET machines/{id}/`.
    pub fn machine(&self, system_id: &str) -> Result<Machine, MaasError> {
        self.get_json(&machine_path(system_id), &[], true)
    }

    /// `GET machines/{id}/?op=query_power_state`: asks the BMC (MAAS may
    /// take up to 60 s). Returns MAAS's state string (`on`, `off`, ...).
    pub fn query_power_state(&self, system_id: &str) -> Result<String, MaasError> {
        #[derive(Deserialize)]
        struct State {
            state: String,
        }
        let state: State = self.get_json(&machine_path(system_id), &[("op", "query_power_state")], true)?;
        Ok(state.state)
    }

    /// `POST machines/{id}/?op=power_on`. MAAS returns the machine (with
    /// its power state from before the action).
    pub fn power_on(&self, system_id: &str) -> Result<Option<Machine>, MaasError> {
        self.power_action(system_id, "power_on", &[])
    }

    /// `POST machines/{id}/?op=power_off`. `None` when MAAS answers `null`:
    /// the power driver cannot stop the machine (e.g. manual power).
    pub fn power_off(&self, system_id: &str, mode: StopMode) -> Result<Option<Machine>, MaasError> {
        let mode = match mode {
            StopMode::Hard => "hard",
            StopMode::Soft => "soft",
        };
        self.power_action(system_id, "power_off", &[("stop_mode", mode)])
    }

    fn power_action(&self, system_id: &str, op: &str, form: &[(&str, &str)]) -> Result<Option<Machine>, MaasError> {
        let response = self.send(Method::POST, &machine_path(system_id), &[("op", op)], Some(form), true)?;
        Ok(read_json(response, SMALL_BODY_LIMIT, self.options.http.timeout)?)
    }

    /// Counts the machines this user can see, by power state, without
    /// keeping them: one listing call, streamed.
    pub(crate) fn count_machines(&self) -> Result<MachineCount, MaasError> {
        #[derive(Deserialize)]
        struct PowerOnly {
            #[serde(default)]
            power_state: Option<String>,
        }
        let response = self.send(Method::GET, "machines/", &[], None, true)?;
        let mut count = MachineCount::default();
        read_json_list(response, LIST_BODY_LIMIT, self.options.http.timeout, |m: PowerOnly| {
            count.add(m.power_state.as_deref());
        })?;
        Ok(count)
    }
}

/// Machines counted by power state while the listing streams by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MachineCount {
    /// Every machine listed.
    pub(crate) total: usize,
    /// Machines whose `power_state` is `on`.
    pub(crate) on: usize,
    /// Machines whose `power_state` is `off`.
    pub(crate) off: usize,
    /// Any other power state (`unknown`, `error`, none).
    pub(crate) other: usize,
}

impl MachineCount {
    fn add(&mut self, power_state: Option<&str>) {
        self.total += 1;
        match power_state {
            Some("on") => self.on += 1,
            Some("off") => self.off += 1,
            _ => self.other += 1,
        }
    }
}

/// The header with `oauth_signature` percent-encoded as RFC 5849 (3.5.1)
/// asks and python-libmaas sends it (`%26secret`): the signing library
/// writes the PLAINTEXT signature (`&secret`) as it is. MAAS decodes either.
fn encode_signature(header: &str) -> String {
    const NAME: &str = "oauth_signature=\"";
    let Some(start) = header.find(NAME).map(|i| i + NAME.len()) else { return header.to_owned() };
    let Some(len) = header[start..].find('"') else { return header.to_owned() };
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let mut out = String::with_capacity(header.len() + 8);
    out.push_str(&header[..start]);
    for b in header[start..start + len].bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(&header[start + len..]);
    out
}

fn machine_path(system_id: &str) -> String {
    // System ids are short alphanumerics; encode anything else so a hostile
    // id cannot change the path.
    let encoded: String = ::url::form_urlencoded::byte_serialize(system_id.as_bytes()).collect();
    format!("machines/{encoded}/")
}

fn encode_form(form: &[(&str, &str)]) -> String {
    let mut serializer = ::url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

/// `Retry-After` as whole seconds, for the statuses worth retrying.
fn retry_wait(response: &Response) -> Option<Duration> {
    if !matches!(response.status(), StatusCode::SERVICE_UNAVAILABLE | StatusCode::CONFLICT) {
        return None;
    }
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// On an expired-timestamp 401 MAAS says `given T and now N`; the `Date`
/// header is the fallback. Positive skew: this machine is behind.
fn classify_unauthorized(body: &str, headers: &HeaderMap) -> MaasError {
    if body.contains("Invalid API key") || body.contains("Invalid consumer") {
        MaasError::InvalidApiKey
    } else if body.contains("Invalid access token") {
        MaasError::InvalidToken
    } else if body.contains("Invalid signature") {
        MaasError::BadSignature
    } else if body.contains("Expired timestamp") {
        let from_body = parse_given_now(body).map(|(given, now)| now - given);
        let from_date = || {
            let date = headers.get(DATE)?.to_str().ok()?;
            let server = httpdate::parse_http_date(date).ok()?;
            Some(signed_secs(server) - signed_secs(SystemTime::now()))
        };
        MaasError::ExpiredTimestamp { skew_secs: from_body.or_else(from_date) }
    } else if body.contains("Nonce already used") {
        MaasError::NonceReused
    } else if body.trim() == "Forbidden" {
        MaasError::Unauthorized { detail: "the request was not accepted as signed".to_owned() }
    } else {
        let line: String = body.lines().next().unwrap_or("").chars().filter(|c| !c.is_control()).take(120).collect();
        // A 401 body may name the token key; keep only the words before any quote.
        let safe = line.split(['\'', '"', ':']).next().unwrap_or("").trim().to_owned();
        MaasError::Unauthorized { detail: if safe.is_empty() { "no reason given".to_owned() } else { safe } }
    }
}

fn signed_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `... given 1700000000 and now 1700000400.12 has ...` -> (given, now).
fn parse_given_now(body: &str) -> Option<(i64, i64)> {
    let after_given = body.split("given ").nth(1)?;
    let given: i64 = after_given.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
    let after_now = after_given.split("now ").nth(1)?;
    let now: i64 = after_now.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
    Some((given, now))
}

/// `https://host:5443/MAAS/api/2.0/version/` -> `https://host:5443/MAAS`,
/// using the API root's path to find where the base ends.
fn https_base(location: &str, api_root: &Url) -> Option<String> {
    let target = Url::parse(location).ok()?;
    let base_path = api_root.path().trim_end_matches("api/2.0/").trim_end_matches('/');
    let mut base = target.clone();
    base.set_path(base_path);
    base.set_query(None);
    Some(base.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maas_expired_timestamp_message() {
        let body = "Authorization Error: 'Expired timestamp: given 1700000000 and now 1700000412.5 has a greater difference than threshold 300'";
        assert_eq!(parse_given_now(body), Some((1700000000, 1700000412)));
        assert_eq!(
            classify_unauthorized(body, &HeaderMap::new()),
            MaasError::ExpiredTimestamp { skew_secs: Some(412) }
        );
        assert_eq!(
            MaasError::ExpiredTimestamp { skew_secs: Some(412) }.to_string(),
            "MAAS rejected the request's timestamp (401): this machine's clock is 412 s behind MAAS's"
        );
    }

    #[test]
    fn unauthorized_bodies_map_to_causes_without_echoing_keys() {
        let h = HeaderMap::new();
        assert_eq!(classify_unauthorized("Authorization Error: Invalid API key.", &h), MaasError::InvalidApiKey);
        assert_eq!(
            classify_unauthorized("Authorization Error: 'Invalid access token: TOKENKEY123'", &h),
            MaasError::InvalidToken
        );
        assert_eq!(classify_unauthorized("Authorization Error: 'Invalid signature. x'", &h), MaasError::BadSignature);
        assert_eq!(classify_unauthorized("Authorization Error: 'Nonce already used: 1'", &h), MaasError::NonceReused);
        let other = classify_unauthorized("Authorization Error: 'Something: SECRETISH'", &h);
        assert!(!other.to_string().contains("SECRETISH"), "{other}");
    }

    #[test]
    fn https_base_keeps_the_maas_path() {
        let root = Url::parse("http://maas:5240/MAAS/api/2.0/").unwrap();
        assert_eq!(
            https_base("https://maas:5443/MAAS/api/2.0/version/", &root).as_deref(),
            Some("https://maas:5443/MAAS")
        );
    }

    #[test]
    fn signature_encoding_touches_only_the_signature() {
        let header = r#"OAuth oauth_consumer_key="CK",oauth_nonce="n&1",oauth_signature="&TS""#;
        assert_eq!(
            encode_signature(header),
            r#"OAuth oauth_consumer_key="CK",oauth_nonce="n&1",oauth_signature="%26TS""#
        );
        assert_eq!(encode_signature("OAuth x=\"1\""), "OAuth x=\"1\"");
    }

    #[test]
    fn machine_paths_are_encoded() {
        assert_eq!(machine_path("abc123"), "machines/abc123/");
        assert_eq!(machine_path("../users"), "machines/..%2Fusers/");
    }

    #[test]
    fn machine_count_by_power_state() {
        let mut count = MachineCount::default();
        for state in [Some("on"), Some("off"), Some("error"), None] {
            count.add(state);
        }
        assert_eq!(count, MachineCount { total: 4, on: 1, off: 1, other: 2 });
    }

    #[test]
    fn machine_parses_realistic_json_with_nulls() {
        let json = r#"{"system_id":"d8n3re","hostname":"newname","fqdn":"newname.ubnt","owner":null,
            "power_state":"on","power_type":"manual","status":10,"status_name":"Allocated","status_message":null,
            "zone":{"name":"zone-south","id":3},"pool":null,"locked":false,"interface_set":[],"boot_interface":null}"#;
        let m: Machine = serde_json::from_str(json).unwrap();
        assert_eq!(m.system_id, "d8n3re");
        assert_eq!(m.zone, Some(Named { name: "zone-south".into() }));
        assert_eq!(m.pool, None);
        assert_eq!(m.owner, None);
    }

    #[test]
    fn signed_header_is_plaintext_with_fresh_nonce() {
        let key = MaasApiKey::parse("CK:TK:TS.secret~x").unwrap().key;
        let client = MaasClient::new(
            MaasUrl::parse("http://127.0.0.1:1/MAAS").unwrap(),
            key,
            ClientOptions::new(Duration::from_secs(1)),
        )
        .unwrap();
        let url = Url::parse("http://127.0.0.1:1/MAAS/api/2.0/users/?op=whoami").unwrap();
        let a = client.authorization(&Method::GET, &url);
        let b = client.authorization(&Method::GET, &url);
        assert!(a.is_sensitive());
        assert_eq!(format!("{a:?}"), "Sensitive");
        let params = |v: &HeaderValue| -> Vec<(String, String)> {
            let text = v.to_str().unwrap().strip_prefix("OAuth ").unwrap().to_owned();
            text.split(',')
                .map(|p| {
                    let (k, v) = p.trim().split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect()
        };
        let pa = params(&a);
        let get = |ps: &[(String, String)], k: &str| ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get(&pa, "oauth_consumer_key").as_deref(), Some("CK"));
        assert_eq!(get(&pa, "oauth_token").as_deref(), Some("TK"));
        assert_eq!(get(&pa, "oauth_signature_method").as_deref(), Some("PLAINTEXT"));
        assert_eq!(get(&pa, "oauth_version").as_deref(), Some("1.0"));
        // "&" + the secret, percent-encoded for the header: "%26" + secret
        // (a key holds only unreserved characters, which stay as they are).
        assert_eq!(get(&pa, "oauth_signature").as_deref(), Some("%26TS.secret~x"));
        assert!(get(&pa, "oauth_timestamp").unwrap().parse::<u64>().is_ok());
        assert_ne!(get(&pa, "oauth_nonce"), get(&params(&b), "oauth_nonce"));
    }

    proptest::proptest! {
        #[test]
        fn answers_of_any_shape_never_panic(text in "(?s).{0,400}") {
            let _ = classify_unauthorized(&text, &HeaderMap::new());
            let _ = parse_given_now(&text);
        }
    }
}
