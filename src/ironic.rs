//! The Ironic backend: Keystone v3 authentication from watcher.conf's
//! `[watcher_clients_auth]`, the `baremetal` endpoint from the service
//! catalog (honouring `[ironic_client] endpoint_type` and `region_name` as
//! keystoneauth does), and Ironic's node and power API.
//!
//! Differences from Watcher's own client, on purpose: nodes are listed in
//! pages with `detail=True` (one request per page, not one GET per node),
//! every request carries an explicit microversion, and the token is reused
//! until it nears expiry, with one re-authentication on a 401.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use crate::config::{CharmConfig, IronicSettings};
use crate::http::{self, BodyError, HttpOptions, TransportError};
use crate::metal::{Backend, MetalClient, MetalError, Node, PowerReading, PowerState};
use crate::secret::SecretString;

/// The microversion sent when `[ironic_client] api_version` is plain `1`:
/// Rocky's, the first with everything used here (`detail=True` is 1.43).
pub const DEFAULT_MICROVERSION: &str = "1.46";

const MICROVERSION_HEADER: &str = "X-OpenStack-Ironic-API-Version";
const TOKEN_HEADER: &str = "X-Auth-Token";
/// keystoneauth re-authenticates when a token has less than this left.
const MIN_TOKEN_LIFE: Duration = Duration::from_secs(120);
const PAGE_BODY_LIMIT: u64 = 256 * 1024 * 1024;
const SMALL_BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// Which of the two services a failure below HTTP came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Keystone,
    Ironic,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Keystone => "Keystone",
            Peer::Ironic => "Ironic",
        }
    }
}

/// Why an Ironic or Keystone call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IronicError {
    /// `[watcher_clients_auth]` is missing or incomplete.
    Config { message: String },
    /// The connection to Keystone (auth_url) or to Ironic (the catalog's
    /// endpoint) failed.
    Transport { peer: Peer, error: TransportError },
    /// Keystone refused the credentials (or the request).
    Keystone { status: u16, message: String },
    /// The catalog has no matching `baremetal` endpoint.
    NoEndpoint { interface: String, region: Option<String> },
    /// Ironic does not serve the microversion asked for (406).
    Microversion { requested: String, min: Option<String>, max: Option<String> },
    /// Ironic answered an error, with its message.
    Api { status: u16, message: String },
    /// The answer is not what Ironic or Keystone send.
    Unexpected { detail: String },
}

impl fmt::Display for IronicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IronicError::Config { message } => write!(f, "[watcher_clients_auth]: {message}"),
            IronicError::Transport { peer, error } => write!(f, "{}: {error}", peer.name()),
            IronicError::Keystone { status, message } => write!(f, "Keystone refused ({status}): {message}"),
            IronicError::NoEndpoint { interface, region } => write!(
                f,
                "no baremetal endpoint with interface `{interface}`{} in the Keystone catalog",
                region.as_deref().map(|r| format!(" in region `{r}`")).unwrap_or_default()
            ),
            IronicError::Microversion { requested, min, max } => write!(
                f,
                "Ironic does not support API version {requested} (it supports {} to {})",
                min.as_deref().unwrap_or("?"),
                max.as_deref().unwrap_or("?")
            ),
            IronicError::Api { status, message } => write!(f, "Ironic refused ({status}): {message}"),
            IronicError::Unexpected { detail } => write!(f, "unexpected answer: {detail}"),
        }
    }
}

impl std::error::Error for IronicError {}

impl IronicError {
    /// A body from `peer` that could not be read as expected.
    fn body(peer: Peer, e: BodyError) -> IronicError {
        match e {
            BodyError::Transport(error) => IronicError::Transport { peer, error },
            other => IronicError::Unexpected { detail: format!("{}: {}", peer.name(), other.describe_shape()) },
        }
    }
}

impl IronicError {
    pub fn exit_code(&self) -> u8 {
        use crate::error::exit;
        match self {
            IronicError::Config { .. } => exit::IRONIC_CONFIG,
            IronicError::Transport { error, .. } => crate::error::transport_exit_code(error),
            IronicError::Keystone { .. } => exit::KEYSTONE_REFUSED,
            IronicError::NoEndpoint { .. } => exit::IRONIC_NO_ENDPOINT,
            IronicError::Microversion { .. } => exit::IRONIC_MICROVERSION,
            IronicError::Api { .. } | IronicError::Unexpected { .. } => exit::IRONIC_API,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            IronicError::Config { .. } => {
                "Watcher reaches Ironic with the Keystone credentials in [watcher_clients_auth] of watcher.conf; set maas-url to use MAAS instead".into()
            }
            IronicError::Transport { peer: Peer::Keystone, error } => {
                error.hint("auth_url in [watcher_clients_auth] (Keystone)", "[watcher_clients_auth] cafile")
            }
            IronicError::Transport { peer: Peer::Ironic, error } => error.hint(
                "the catalog's baremetal endpoint (`openstack endpoint list --service baremetal`)",
                "[watcher_clients_auth] cafile",
            ),
            IronicError::Keystone { status: 500.., .. } => {
                "Keystone failed on its side: its log says why; retry when it is fixed".into()
            }
            IronicError::Keystone { .. } => "check the user, password and project in [watcher_clients_auth]".into(),
            IronicError::NoEndpoint { .. } => {
                "check ironic-endpoint-type and ironic-region-name against `openstack endpoint list --service baremetal`".into()
            }
            IronicError::Microversion { .. } => "set ironic-api-version to 1 (or to a version Ironic supports)".into(),
            IronicError::Api { status: 409, .. } => "the node is busy; retry when its current operation finishes".into(),
            IronicError::Api { .. } => "Ironic's message says what it expected".into(),
            IronicError::Unexpected { .. } => "check that the endpoint is Ironic's".into(),
        }
    }
}

/// A user or project's domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DomainRef {
    Id(String),
    Name(String),
}

impl DomainRef {
    fn json(&self) -> Value {
        match self {
            DomainRef::Id(id) => json!({ "id": id }),
            DomainRef::Name(name) => json!({ "name": name }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

impl UserRef {
    fn json(&self) -> Value {
        match self {
            UserRef::Id(id) => json!({ "id": id }),
            UserRef::Name { name, domain } => json!({ "name": name, "domain": domain.json() }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Method3 {
    Password { user: UserRef, password: SecretString },
    ApplicationCredential { id: Option<String>, name: Option<String>, user: Option<UserRef>, secret: SecretString },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    ProjectId(String),
    ProjectName { name: String, domain: DomainRef },
    Domain(DomainRef),
    System,
    Unscoped,
}

/// Keystone v3 credentials as keystoneauth reads them from a config section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneAuth {
    auth_url: String,
    method: Method3,
    scope: Scope,
    cafile: Option<String>,
    timeout: Option<Duration>,
}

impl KeystoneAuth {
    /// Reads the options of `[watcher_clients_auth]` (or of the section its
    /// `auth_section` names) from watcher.conf's text.
    pub fn from_watcher_conf(text: &str) -> Result<KeystoneAuth, IronicError> {
        Self::from_sections(&|section| crate::ini::read_section(text, section))
    }

    /// Reads the options of `[watcher_clients_auth]` (or of the section its
    /// `auth_section` names) from the effective configuration: watcher.conf
    /// and its drop-ins.
    pub fn from_layout(layout: &crate::effective::Layout) -> Result<KeystoneAuth, IronicError> {
        Self::from_sections(&|section| layout.section(section))
    }

    /// Reads the credentials from `section(name)`, the options of a section
    /// in file order (the last setting of a key wins).
    fn from_sections(section: &dyn Fn(&str) -> Vec<(String, String)>) -> Result<KeystoneAuth, IronicError> {
        let mut values = section("watcher_clients_auth");
        let last = |values: &[(String, String)], key: &str| {
            // oslo.config has already stripped the value and removed its
            // quotes: spaces inside quotes are part of it.
            values.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
        };
        if let Some(name) = last(&values, "auth_section") {
            values = section(&name);
        }
        let get = |key: &str| last(&values, key);
        let missing = |what: &str| IronicError::Config { message: format!("{what} is not set") };
        if values.is_empty() {
            return Err(IronicError::Config { message: "the section is missing or empty".to_owned() });
        }
        let auth_url = get("auth_url").ok_or_else(|| missing("auth_url"))?;
        let domain = |id_key: &str, name_key: &str| {
            get(id_key)
                .map(DomainRef::Id)
                .or_else(|| get(name_key).map(DomainRef::Name))
                .or_else(|| get("default_domain_id").map(DomainRef::Id))
                .or_else(|| get("default_domain_name").map(DomainRef::Name))
        };
        let user = || -> Option<Result<UserRef, IronicError>> {
            if let Some(id) = get("user_id") {
                return Some(Ok(UserRef::Id(id)));
            }
            let name = get("username").or_else(|| get("user_name"))?;
            Some(match domain("user_domain_id", "user_domain_name") {
                Some(domain) => Ok(UserRef::Name { name, domain }),
                None => Err(IronicError::Config {
                    message: "username is set without user_domain_name or user_domain_id".to_owned(),
                }),
            })
        };
        let auth_type = get("auth_type").or_else(|| get("auth_plugin")).unwrap_or_else(|| "password".to_owned());
        let (method, scoped) = match auth_type.as_str() {
            "password" | "v3password" => {
                let user = user().ok_or_else(|| missing("username (or user_id)"))??;
                let password = get("password").ok_or_else(|| missing("password"))?;
                (Method3::Password { user, password: SecretString::new(password) }, true)
            }
            "v3applicationcredential" | "applicationcredential" | "application_credential" => {
                let secret =
                    get("application_credential_secret").ok_or_else(|| missing("application_credential_secret"))?;
                let id = get("application_credential_id");
                let name = get("application_credential_name");
                let user = user().transpose()?;
                if id.is_none() && (name.is_none() || user.is_none()) {
                    return Err(IronicError::Config {
                        message: "give application_credential_id, or application_credential_name and the user"
                            .to_owned(),
                    });
                }
                (Method3::ApplicationCredential { id, name, user, secret: SecretString::new(secret) }, false)
            }
            other => {
                return Err(IronicError::Config {
                    message: format!("auth_type `{other}` is not supported (use password or v3applicationcredential)"),
                })
            }
        };
        // Application credentials carry their own scope.
        let scope = if !scoped {
            Scope::Unscoped
        } else if let Some(id) = get("project_id").or_else(|| get("tenant_id")) {
            Scope::ProjectId(id)
        } else if let Some(name) = get("project_name").or_else(|| get("tenant_name")) {
            let domain = domain("project_domain_id", "project_domain_name").ok_or_else(|| IronicError::Config {
                message: "project_name is set without project_domain_name or project_domain_id".to_owned(),
            })?;
            Scope::ProjectName { name, domain }
        } else if let Some(id) = get("domain_id") {
            Scope::Domain(DomainRef::Id(id))
        } else if let Some(name) = get("domain_name") {
            Scope::Domain(DomainRef::Name(name))
        } else if get("system_scope").is_some() {
            Scope::System
        } else {
            Scope::Unscoped
        };
        if get("insecure").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(IronicError::Config {
                message: "insecure = true is not supported: TLS is always verified; set cafile instead".to_owned(),
            });
        }
        let timeout = get("timeout").and_then(|t| t.parse::<f64>().ok()).filter(|t| *t > 0.0 && t.is_finite());
        Ok(KeystoneAuth {
            auth_url,
            method,
            scope,
            cafile: get("cafile"),
            timeout: timeout.map(Duration::from_secs_f64),
        })
    }

    /// `POST .../v3/auth/tokens`, as keystoneauth's v3 plugins build it.
    pub fn token_url(&self) -> Result<Url, IronicError> {
        let base = self.auth_url.trim_end_matches('/');
        let text = if base.ends_with("/v3") { format!("{base}/auth/tokens") } else { format!("{base}/v3/auth/tokens") };
        Url::parse(&text).map_err(|e| IronicError::Config { message: format!("auth_url is not a URL ({e})") })
    }

    /// The token request's body. It holds the password or secret: send it,
    /// never show it.
    pub fn request_body(&self) -> Value {
        let identity = match &self.method {
            Method3::Password { user, password } => {
                let mut user = user.json();
                user["password"] = password.expose().into();
                json!({ "methods": ["password"], "password": { "user": user } })
            }
            Method3::ApplicationCredential { id, name, user, secret } => {
                let mut cred = json!({ "secret": secret.expose() });
                if let Some(id) = id {
                    cred["id"] = id.clone().into();
                } else {
                    cred["name"] = name.clone().into();
                    cred["user"] = user.as_ref().map(UserRef::json).unwrap_or(Value::Null);
                }
                json!({ "methods": ["application_credential"], "application_credential": cred })
            }
        };
        let scope = match &self.scope {
            Scope::ProjectId(id) => Some(json!({ "project": { "id": id } })),
            Scope::ProjectName { name, domain } => {
                Some(json!({ "project": { "name": name, "domain": domain.json() } }))
            }
            Scope::Domain(domain) => Some(json!({ "domain": domain.json() })),
            Scope::System => Some(json!({ "system": { "all": true } })),
            Scope::Unscoped => None,
        };
        let mut auth = json!({ "identity": identity });
        if let Some(scope) = scope {
            auth["scope"] = scope;
        }
        json!({ "auth": auth })
    }

    /// `cafile`: the CA bundle keystoneauth trusts for Keystone and the
    /// services it finds in the catalog.
    pub fn cafile(&self) -> Option<&str> {
        self.cafile.as_deref()
    }

    /// `timeout`: seconds for each request, when set.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// `text` with every secret of these credentials, and `token`, masked
    /// (a server may echo what it was sent).
    pub fn mask(&self, text: &str, token: Option<&SecretString>) -> String {
        let mut secrets = self.secrets();
        if let Some(token) = token {
            secrets.push(token.expose());
        }
        crate::secret::mask(text, &secrets)
    }

    /// Every secret in these credentials, for masking.
    pub fn secrets(&self) -> Vec<&str> {
        match &self.method {
            Method3::Password { password, .. } => vec![password.expose()],
            Method3::ApplicationCredential { secret, .. } => vec![secret.expose()],
        }
    }
}

/// A token and the Ironic endpoint found with it.
pub(crate) struct Session {
    pub(crate) token: SecretString,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) endpoint: Url,
}

impl Session {
    /// Whether the token is good for a while yet.
    pub(crate) fn fresh(&self) -> bool {
        self.expires_at.is_none_or(|at| at > SystemTime::now() + MIN_TOKEN_LIFE)
    }
}

/// Keystone's answer to `POST /v3/auth/tokens`: the token's expiry and its
/// service catalog (Ironic and Nova read the same one).
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

#[derive(Deserialize)]
struct CatalogService {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(Deserialize)]
struct CatalogEndpoint {
    interface: String,
    url: String,
    #[serde(default)]
    region_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
}

/// Why a token answer names no service endpoint.
pub(crate) const NO_CATALOG: &str = "Keystone's token has no service catalog (the credentials name no project): set project_name and project_domain_name, or project_id";

impl TokenAnswer {
    /// Whether the token carries a catalog (a scoped token).
    pub(crate) fn has_catalog(&self) -> bool {
        !self.token.catalog.is_empty()
    }

    /// The URL of `service_type`'s endpoint of `interface`, in `region` when
    /// one is given (matched on `region_id` or `region`).
    pub(crate) fn endpoint_url(&self, service_type: &str, interface: &str, region: Option<&str>) -> Option<&str> {
        self.token
            .catalog
            .iter()
            .filter(|s| s.kind == service_type)
            .flat_map(|s| &s.endpoints)
            .find(|e| {
                e.interface == interface
                    && region.is_none_or(|r| e.region_id.as_deref().or(e.region.as_deref()) == Some(r))
            })
            .map(|e| e.url.as_str())
    }

    pub(crate) fn expires_at(&self) -> Option<SystemTime> {
        self.token.expires_at.as_deref().and_then(parse_rfc3339)
    }
}

/// How 409 (node locked) and 503 (no free conductor) are retried, as the
/// official client does.
#[derive(Debug, Clone, Copy)]
pub struct IronicRetry {
    pub max_retries: u32,
    pub interval: Duration,
}

impl Default for IronicRetry {
    fn default() -> Self {
        IronicRetry { max_retries: 5, interval: Duration::from_secs(2) }
    }
}

pub struct IronicClient {
    http: Client,
    auth: KeystoneAuth,
    settings: IronicSettings,
    microversion: String,
    timeout: Duration,
    retry: IronicRetry,
    session: Mutex<Option<Session>>,
}

impl fmt::Debug for IronicClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IronicClient").field("auth_url", &self.auth.auth_url).field("settings", &self.settings).finish()
    }
}

/// The microversion for `[ironic_client] api_version`.
pub fn microversion_for(api_version: &str) -> String {
    if api_version == "1" {
        DEFAULT_MICROVERSION.to_owned()
    } else {
        api_version.to_owned()
    }
}

#[derive(Deserialize)]
struct IronicNode {
    uuid: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    power_state: Option<String>,
    #[serde(default)]
    provision_state: Option<String>,
    #[serde(default)]
    extra: Option<serde_json::Map<String, Value>>,
}

impl IronicNode {
    fn into_node(self) -> Node {
        let provision_state = self.provision_state.unwrap_or_default();
        let hypervisor_match = self
            .extra
            .as_ref()
            .and_then(|e| e.get("compute_node_id"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Node {
            id: self.uuid,
            hostname: self.name.unwrap_or_default(),
            fqdn: String::new(),
            power_state: PowerState::from_ironic(self.power_state.as_deref()),
            raw_power_state: self.power_state,
            deployed: provision_state == "active",
            provision_state,
            hypervisor_match,
        }
    }
}

#[derive(Deserialize)]
struct NodePage {
    nodes: Vec<IronicNode>,
    #[serde(default)]
    next: Option<String>,
}

impl IronicClient {
    pub fn new(
        auth: KeystoneAuth,
        settings: IronicSettings,
        mut http_options: HttpOptions,
        retry: IronicRetry,
    ) -> Result<IronicClient, IronicError> {
        if let Some(timeout) = auth.timeout {
            http_options.timeout = timeout;
        }
        if let (Some(cafile), None) = (&auth.cafile, &http_options.ca_cert_pem) {
            let pem = std::fs::read_to_string(cafile)
                .map_err(|e| IronicError::Config { message: format!("cannot read cafile {cafile}: {e}") })?;
            http_options.ca_cert_pem = Some(pem);
        }
        let http = http::build_client(&http_options, true).map_err(|e| IronicError::Config { message: e.0 })?;
        Ok(IronicClient {
            http,
            microversion: microversion_for(&settings.api_version),
            auth,
            settings,
            timeout: http_options.timeout,
            retry,
            session: Mutex::new(None),
        })
    }

    /// The client Watcher would build: credentials from the effective
    /// `[watcher_clients_auth]` section of watcher-conf-path and its drop-ins,
    /// as the decision engine reads them (it lists the nodes; the applier,
    /// which powers them, reads the same shared drop-ins).
    pub fn from_config(config: &CharmConfig) -> Result<IronicClient, IronicError> {
        let path: &Path = &config.watcher_conf_path;
        let layout = crate::effective::Layout::read(path, config.main_program())
            .map_err(|e| IronicError::Config { message: format!("cannot read the Keystone credentials: {e}") })?;
        if !layout.files.iter().any(|f| f.path == path) {
            return Err(IronicError::Config {
                message: format!("cannot read {} for the Keystone credentials: it does not exist", path.display()),
            });
        }
        let auth = KeystoneAuth::from_layout(&layout)?;
        IronicClient::new(
            auth,
            config.ironic.clone(),
            HttpOptions::new(Duration::from_secs(60)),
            IronicRetry::default(),
        )
    }

    /// keystoneauth drops a trailing `URL` from `endpoint_type`.
    fn interface(&self) -> &str {
        self.settings.endpoint_type.trim_end_matches("URL")
    }

    fn authenticate(&self) -> Result<Session, IronicError> {
        let url = self.auth.token_url()?;
        let response = self
            .http
            .post(url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .body(self.auth.request_body().to_string())
            .timeout(self.timeout)
            .send()
            .map_err(|e| IronicError::Transport {
                peer: Peer::Keystone,
                error: http::classify_transport(&e, &url, self.timeout),
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = http::read_error_body(response);
            return Err(IronicError::Keystone {
                status: status.as_u16(),
                message: clean(&self.masked(&keystone_text(&body), None)),
            });
        }
        let token = response
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(SecretString::new)
            .ok_or_else(|| IronicError::Unexpected { detail: "Keystone sent no X-Subject-Token".to_owned() })?;
        let body: TokenAnswer = http::read_json(response, SMALL_BODY_LIMIT, self.timeout)
            .map_err(|e| IronicError::body(Peer::Keystone, e))?;
        if !body.has_catalog() {
            return Err(IronicError::Config { message: NO_CATALOG.to_owned() });
        }
        let interface = self.interface();
        let region = self.settings.region_name.as_deref();
        let url = body.endpoint_url("baremetal", interface, region).ok_or_else(|| IronicError::NoEndpoint {
            interface: interface.to_owned(),
            region: region.map(str::to_owned),
        })?;
        Ok(Session { token, expires_at: body.expires_at(), endpoint: ironic_base(url)? })
    }

    /// The cached session's token and endpoint, authenticating if needed.
    fn session(&self) -> Result<(SecretString, Url), IronicError> {
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = guard.as_ref().filter(|s| s.fresh()) {
            return Ok((s.token.clone(), s.endpoint.clone()));
        }
        let session = self.authenticate()?;
        let out = (session.token.clone(), session.endpoint.clone());
        *guard = Some(session);
        Ok(out)
    }

    /// `text` (from a Keystone or Ironic answer) with every secret of these
    /// credentials, and the token in use, masked.
    fn masked(&self, text: &str, token: Option<&SecretString>) -> String {
        self.auth.mask(text, token)
    }

    fn invalidate(&self) {
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// One Ironic call: re-authenticates once on 401, retries 409/503.
    fn call(&self, method: Method, path_and_query: &str, body: Option<&Value>) -> Result<Response, IronicError> {
        let mut reauthenticated = false;
        let mut retries = 0;
        loop {
            let (token, endpoint) = self.session()?;
            let url = endpoint
                .join(path_and_query)
                .map_err(|e| IronicError::Unexpected { detail: format!("bad request path ({e})") })?;
            let mut token_value = HeaderValue::from_str(token.expose())
                .map_err(|_| IronicError::Unexpected { detail: "Keystone's token is not a header value".to_owned() })?;
            token_value.set_sensitive(true);
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(ACCEPT, "application/json")
                .header(TOKEN_HEADER, token_value)
                .header(MICROVERSION_HEADER, &self.microversion);
            if let Some(body) = body {
                request = request.header(CONTENT_TYPE, "application/json").body(body.to_string());
            }
            let response = request.timeout(self.timeout).send().map_err(|e| IronicError::Transport {
                peer: Peer::Ironic,
                error: http::classify_transport(&e, &url, self.timeout),
            })?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            match status {
                StatusCode::UNAUTHORIZED if !reauthenticated => {
                    reauthenticated = true;
                    self.invalidate();
                }
                StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE if retries < self.retry.max_retries => {
                    retries += 1;
                    std::thread::sleep(self.retry.interval);
                }
                StatusCode::NOT_ACCEPTABLE => {
                    let headers = response.headers().clone();
                    return Err(IronicError::Microversion {
                        requested: self.microversion.clone(),
                        min: header(&headers, "X-OpenStack-Ironic-API-Minimum-Version"),
                        max: header(&headers, "X-OpenStack-Ironic-API-Maximum-Version"),
                    });
                }
                _ => {
                    let body = http::read_error_body(response);
                    let message = clean(&self.masked(&ironic_fault_text(&body), Some(&token)));
                    return Err(IronicError::Api { status: status.as_u16(), message });
                }
            }
        }
    }

    fn node_path(id: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        format!("v1/nodes/{encoded}")
    }

    fn set_power(&self, id: &str, target: &str) -> Result<(), MetalError> {
        let path = format!("{}/states/power", Self::node_path(id));
        self.call(Method::PUT, &path, Some(&json!({ "target": target }))).map_err(|e| not_found(e, id))?;
        Ok(())
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn not_found(e: IronicError, id: &str) -> MetalError {
    match e {
        IronicError::Api { status: 404, .. } => MetalError::NotFound(id.to_owned()),
        other => MetalError::Ironic(other),
    }
}

impl MetalClient for IronicClient {
    fn backend(&self) -> Backend {
        Backend::Ironic
    }

    /// `GET /v1/nodes/detail`, following `next` links: one request a page.
    /// (`?detail=True` needs microversion 1.43; `/detail` works at every
    /// version Ironic accepts.)
    fn list_nodes(&self) -> Result<Vec<Node>, MetalError> {
        let mut nodes = Vec::new();
        let mut path = "v1/nodes/detail".to_owned();
        loop {
            let response = self.call(Method::GET, &path, None)?;
            let page: NodePage = http::read_json(response, PAGE_BODY_LIMIT, self.timeout)
                .map_err(|e| IronicError::body(Peer::Ironic, e))?;
            let empty = page.nodes.is_empty();
            nodes.extend(page.nodes.into_iter().map(IronicNode::into_node));
            // Only the query of `next` is used: its host may be Ironic's
            // public URL rather than the catalog endpoint in use.
            match page.next.as_deref().and_then(|n| Url::parse(n).ok()).and_then(|u| u.query().map(str::to_owned)) {
                Some(query) if !empty => path = format!("v1/nodes/detail?{query}"),
                _ => break,
            }
        }
        Ok(nodes)
    }

    fn get_node(&self, id: &str) -> Result<Node, MetalError> {
        let response = self.call(Method::GET, &Self::node_path(id), None).map_err(|e| not_found(e, id))?;
        let node: IronicNode = http::read_json(response, SMALL_BODY_LIMIT, self.timeout)
            .map_err(|e| IronicError::body(Peer::Ironic, e))?;
        Ok(node.into_node())
    }

    fn query_power_state(&self, id: &str) -> Result<PowerState, MetalError> {
        Ok(self.read_power(id)?.state)
    }

    /// Ironic has no synchronous BMC query: this reads the conductor's
    /// record (`GET /v1/nodes/{id}/states`), which the conductor refreshes
    /// from the BMC every `[conductor] sync_power_state_interval`, and
    /// `target_power_state`, set while a power change is in flight.
    fn read_power(&self, id: &str) -> Result<PowerReading, MetalError> {
        #[derive(Deserialize)]
        struct States {
            #[serde(default)]
            power_state: Option<String>,
            #[serde(default)]
            target_power_state: Option<String>,
        }
        let path = format!("{}/states", Self::node_path(id));
        let response = self.call(Method::GET, &path, None).map_err(|e| not_found(e, id))?;
        let states: States = http::read_json(response, SMALL_BODY_LIMIT, self.timeout)
            .map_err(|e| IronicError::body(Peer::Ironic, e))?;
        let changing_to = states.target_power_state.as_deref().map(|t| match t {
            // Ironic's targets for a reboot end powered on.
            "rebooting" | "soft rebooting" => PowerState::On,
            other => PowerState::from_ironic(Some(other)),
        });
        Ok(PowerReading {
            state: PowerState::from_ironic(states.power_state.as_deref()),
            raw: states.power_state,
            changing_to,
        })
    }

    fn empty_listing_hint(&self) -> Option<String> {
        Some(
            "Ironic shows a project only the nodes it owns or leases: give Watcher's user the `service` role in \
             Ironic's service project with [DEFAULT] rbac_service_role_elevated_access = true in ironic.conf, \
             use a system-scoped user, or set the nodes' owner to Watcher's project"
                .to_owned(),
        )
    }

    fn power_on(&self, id: &str) -> Result<(), MetalError> {
        self.set_power(id, "power on")
    }

    fn power_off(&self, id: &str) -> Result<(), MetalError> {
        self.set_power(id, "power off")
    }
}

/// The catalog URL with any trailing `/v1` removed, ending in `/`, so that
/// `v1/...` joins below it (as ironicclient trims it).
fn ironic_base(url: &str) -> Result<Url, IronicError> {
    let trimmed = url.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
    Url::parse(&format!("{trimmed}/"))
        .map_err(|e| IronicError::Unexpected { detail: format!("the catalog's baremetal URL is not a URL ({e})") })
}

/// Keystone errors: `{"error": {"code", "title", "message"}}`.
#[cfg(test)]
fn keystone_message(body: &str) -> String {
    clean(&keystone_text(body))
}

/// The message of a Keystone error, whole (mask it, then [`clean`] it).
fn keystone_text(body: &str) -> String {
    let parsed: Option<String> = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.get("message")).and_then(Value::as_str).map(str::to_owned));
    parsed.unwrap_or_else(|| body.to_owned())
}

/// Ironic errors: `{"error_message": "<JSON with faultstring>"}`, where the
/// inner JSON is a string (or, on some versions, already an object).
pub fn ironic_fault(body: &str) -> String {
    clean(&ironic_fault_text(body))
}

/// The message of an Ironic error, whole (mask it, then [`clean`] it).
fn ironic_fault_text(body: &str) -> String {
    let outer: Option<Value> = serde_json::from_str(body).ok();
    let inner = outer.as_ref().and_then(|v| v.get("error_message"));
    let fault = match inner {
        Some(Value::String(text)) => serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("faultstring").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| text.clone()),
        Some(Value::Object(map)) => map.get("faultstring").and_then(Value::as_str).unwrap_or("").to_owned(),
        // Not Ironic's shape: perhaps Keystone's, from an auth middleware.
        _ => return keystone_text(body),
    };
    fault
}

fn clean(text: &str) -> String {
    let line: String =
        text.split(['\n', '\r']).find(|l| !l.trim().is_empty()).unwrap_or("").trim().chars().take(300).collect();
    if line.is_empty() {
        "no reason given".to_owned()
    } else {
        line
    }
}

/// `2015-11-07T02:58:43.578887Z` (or with a `+HH:MM` offset) as a time.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let (year, month, day): (i64, i64, i64) =
        (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let (time, offset_secs) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else if let Some(at) = rest.rfind(['+', '-']) {
        let (t, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':')?;
        (t, sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60))
    } else {
        (rest, 0)
    };
    let mut t = time.split(':');
    let (hour, minute): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let second: f64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || !(0.0..61.0).contains(&second)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 - offset_secs;
    let whole = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(whole) + Duration::from_secs_f64(second))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "[watcher_clients_auth]\nauth_type = password\nauth_url = http://keystone:5000\nusername = watcher\npassword = s3cret\nuser_domain_name = Default\nproject_name = service\nproject_domain_id = default\n";

    #[test]
    fn password_auth_builds_keystones_request() {
        let auth = KeystoneAuth::from_watcher_conf(AUTH).unwrap();
        assert_eq!(auth.token_url().unwrap().as_str(), "http://keystone:5000/v3/auth/tokens");
        assert_eq!(
            auth.request_body(),
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {"name": "watcher", "domain": {"name": "Default"}, "password": "s3cret"}}},
                "scope": {"project": {"name": "service", "domain": {"id": "default"}}}
            }})
        );
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn ids_default_domains_and_v3_urls() {
        let text =
            "[watcher_clients_auth]\nauth_url = https://ks/identity/v3/\nuser_id = u1\npassword = p\nproject_id = p1\n";
        let auth = KeystoneAuth::from_watcher_conf(text).unwrap();
        assert_eq!(auth.token_url().unwrap().as_str(), "https://ks/identity/v3/auth/tokens");
        assert_eq!(auth.request_body()["auth"]["identity"]["password"]["user"], json!({"id": "u1", "password": "p"}));
        assert_eq!(auth.request_body()["auth"]["scope"], json!({"project": {"id": "p1"}}));
        let text = "[watcher_clients_auth]\nauth_url = http://ks:5000\nusername = w\npassword = p\nproject_name = s\ndefault_domain_id = default\n";
        let body = KeystoneAuth::from_watcher_conf(text).unwrap().request_body();
        assert_eq!(body["auth"]["scope"]["project"]["domain"], json!({"id": "default"}));
    }

    #[test]
    fn application_credentials_are_unscoped() {
        let text = "[watcher_clients_auth]\nauth_type = v3applicationcredential\nauth_url = http://ks:5000/v3\napplication_credential_id = ac1\napplication_credential_secret = shh\nproject_name = ignored\n";
        let body = KeystoneAuth::from_watcher_conf(text).unwrap().request_body();
        assert_eq!(
            body,
            json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "shh"}}}})
        );
    }

    #[test]
    fn auth_section_indirection() {
        let text = "[watcher_clients_auth]\nauth_section = keystone_authtoken\n[keystone_authtoken]\nauth_url = http://ks:5000\nusername = w\npassword = p\nuser_domain_id = default\n";
        let body = KeystoneAuth::from_watcher_conf(text).unwrap().request_body();
        assert!(body["auth"].get("scope").is_none());
    }

    #[test]
    fn incomplete_sections_say_what_is_missing() {
        let err = |text: &str| KeystoneAuth::from_watcher_conf(text).unwrap_err().to_string();
        assert_eq!(err("[DEFAULT]\n"), "[watcher_clients_auth]: the section is missing or empty");
        assert_eq!(err("[watcher_clients_auth]\nusername = w\n"), "[watcher_clients_auth]: auth_url is not set");
        assert_eq!(
            err("[watcher_clients_auth]\nauth_url = http://k\nusername = w\npassword = p\n"),
            "[watcher_clients_auth]: username is set without user_domain_name or user_domain_id"
        );
        assert_eq!(
            err("[watcher_clients_auth]\nauth_url = http://k\nuser_id = u\npassword = p\nproject_name = s\n"),
            "[watcher_clients_auth]: project_name is set without project_domain_name or project_domain_id"
        );
        assert!(
            err("[watcher_clients_auth]\nauth_type = v3oidcpassword\nauth_url = http://k\n").contains("not supported")
        );
        assert!(err(&format!("{AUTH}insecure = True\n")).contains("TLS is always verified"));
    }

    #[test]
    fn ironic_faults_are_unwrapped() {
        let body = r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Node abc is locked by host c1, please retry after the current operation is completed.\", \"debuginfo\": null}"}"#;
        assert_eq!(
            ironic_fault(body),
            "Node abc is locked by host c1, please retry after the current operation is completed."
        );
        assert_eq!(ironic_fault(r#"{"error_message": {"faultstring": "x"}}"#), "x");
        assert_eq!(ironic_fault("plain text\nmore"), "plain text");
        assert_eq!(ironic_fault(r#"{"error": {"code": 401, "message": "Token expired"}}"#), "Token expired");
        assert_eq!(
            keystone_message(
                r#"{"error": {"code": 401, "message": "The request you have made requires authentication."}}"#
            ),
            "The request you have made requires authentication."
        );
    }

    #[test]
    fn rfc3339_times() {
        let t = parse_rfc3339("2015-11-07T02:58:43.578887Z").unwrap();
        let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_446_865_123);
        let t2 = parse_rfc3339("2015-11-07T04:58:43+02:00").unwrap();
        assert_eq!(t2.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_446_865_123);
        assert_eq!(parse_rfc3339("2015-13-07T02:58:43Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn microversions_and_bases() {
        assert_eq!(microversion_for("1"), "1.46");
        assert_eq!(microversion_for("1.78"), "1.78");
        assert_eq!(microversion_for("latest"), "latest");
        assert_eq!(ironic_base("http://h:6385/v1/").unwrap().as_str(), "http://h:6385/");
        assert_eq!(ironic_base("http://h/baremetal").unwrap().as_str(), "http://h/baremetal/");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in "(?s).{0,200}") {
            let _ = parse_rfc3339(&text);
            let _ = ironic_fault(&text);
            let _ = KeystoneAuth::from_watcher_conf(&text);
        }
    }
}
