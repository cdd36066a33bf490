//! Keystone v3: the credentials of `[watcher_clients_auth]` as
//! keystoneauth reads them, the token request, and the service catalog of
//! its answer. Ironic and Nova authenticate through here; each finds its
//! own endpoint in the catalog.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::blocking::Client;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use crate::clients::http::{self, TransportError};
use crate::clients::json_body::{self, BodyError};
use crate::clients::proxy::Proxies;
use crate::secret::SecretString;

/// keystoneauth re-authenticates when a token has less than this left.
const MIN_TOKEN_LIFE: Duration = Duration::from_secs(120);
/// The largest token answer read (the catalog of a big cloud fits).
const TOKEN_BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// Why the credentials could not be used, or Keystone refused them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeystoneError {
    /// `[watcher_clients_auth]` is missing, incomplete or unusable.
    #[error("[watcher_clients_auth]: {message}")]
    Config {
        /// What is missing or wrong.
        message: String,
    },
    /// The connection to Keystone (`auth_url`) failed.
    #[error("Keystone: {0}")]
    Transport(TransportError),
    /// Keystone refused the credentials (or failed: 5xx).
    #[error("Keystone refused ({status}): {message}")]
    Refused {
        /// The HTTP status Keystone answered (401, 5xx, ...).
        status: u16,
        /// The first line of Keystone's error message, credentials masked.
        message: String,
    },
    /// The answer is not Keystone's.
    #[error("unexpected answer from Keystone: {detail}")]
    Unexpected {
        /// What was wrong with it.
        detail: String,
    },
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
    /// Reads `[watcher_clients_auth]` (or the section its `auth_section`
    /// names) through `section(name)`, which gives a section's options in
    /// file order (the last setting of a key wins), as oslo.config parsed
    /// them.
    pub fn from_sections(section: &dyn Fn(&str) -> Vec<(String, String)>) -> Result<KeystoneAuth, KeystoneError> {
        let mut values = section("watcher_clients_auth");
        let last = |values: &[(String, String)], key: &str| {
            // oslo.config has already stripped the value and removed its
            // quotes: spaces inside quotes are part of it.
            crate::clients::last_setting(values, key).cloned().filter(|v| !v.is_empty())
        };
        if let Some(name) = last(&values, "auth_section") {
            values = section(&name);
        }
        let get = |key: &str| last(&values, key);
        let missing = |what: &str| KeystoneError::Config { message: format!("{what} is not set") };
        if values.is_empty() {
            return Err(KeystoneError::Config { message: "the section is missing or empty".to_owned() });
        }
        let auth_url = get("auth_url").ok_or_else(|| missing("auth_url"))?;
        let domain = |id_key: &str, name_key: &str| {
            get(id_key)
                .map(DomainRef::Id)
                .or_else(|| get(name_key).map(DomainRef::Name))
                .or_else(|| get("default_domain_id").map(DomainRef::Id))
                .or_else(|| get("default_domain_name").map(DomainRef::Name))
        };
        let user = || -> Option<Result<UserRef, KeystoneError>> {
            if let Some(id) = get("user_id") {
                return Some(Ok(UserRef::Id(id)));
            }
            let name = get("username").or_else(|| get("user_name"))?;
            Some(match domain("user_domain_id", "user_domain_name") {
                Some(domain) => Ok(UserRef::Name { name, domain }),
                None => Err(KeystoneError::Config {
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
                    return Err(KeystoneError::Config {
                        message: "give application_credential_id, or application_credential_name and the user"
                            .to_owned(),
                    });
                }
                (Method3::ApplicationCredential { id, name, user, secret: SecretString::new(secret) }, false)
            }
            other => {
                return Err(KeystoneError::Config {
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
            let domain = domain("project_domain_id", "project_domain_name").ok_or_else(|| KeystoneError::Config {
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
            return Err(KeystoneError::Config {
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
    pub(crate) fn token_url(&self) -> Result<Url, KeystoneError> {
        let base = self.auth_url.trim_end_matches('/');
        let text = if base.ends_with("/v3") { format!("{base}/auth/tokens") } else { format!("{base}/v3/auth/tokens") };
        Url::parse(&text).map_err(|e| KeystoneError::Config { message: format!("auth_url is not a URL ({e})") })
    }

    /// The token request's body. It holds the password or secret: send it,
    /// never show it.
    fn request_body(&self) -> Value {
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
    pub(crate) fn cafile(&self) -> Option<&str> {
        self.cafile.as_deref()
    }

    /// `timeout`: seconds for each request, when set.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// `text` with every secret of these credentials, and `token`, masked
    /// (a server may echo what it was sent).
    pub(crate) fn mask(&self, text: &str, token: Option<&SecretString>) -> String {
        let mut secrets = self.secrets();
        if let Some(token) = token {
            secrets.push(token.expose());
        }
        crate::secret::mask(text, &secrets)
    }

    /// Every secret in these credentials, for masking.
    fn secrets(&self) -> Vec<&str> {
        match &self.method {
            Method3::Password { password, .. } => vec![password.expose()],
            Method3::ApplicationCredential { secret, .. } => vec![secret.expose()],
        }
    }
}

/// A token, and the endpoint of the service it was asked for.
pub(crate) struct Session {
    pub(crate) token: Token,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) endpoint: Url,
}

impl Session {
    /// Whether the token is good for a while yet.
    fn fresh(&self) -> bool {
        self.expires_at.is_none_or(|at| at > SystemTime::now() + MIN_TOKEN_LIFE)
    }
}

/// The session a client reuses until its token nears expiry.
#[derive(Default)]
pub(crate) struct SessionCache(Mutex<Option<Session>>);

impl SessionCache {
    /// The cached token and endpoint, or `open`'s when there is none or the
    /// token is about to expire.
    pub(crate) fn get<E>(&self, open: impl FnOnce() -> Result<Session, E>) -> Result<(Token, Url), E> {
        let mut guard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = guard.as_ref().filter(|s| s.fresh()) {
            return Ok((s.token.clone(), s.endpoint.clone()));
        }
        let session = open()?;
        let out = (session.token.clone(), session.endpoint.clone());
        *guard = Some(session);
        Ok(out)
    }

    /// Forgets the session (the service refused its token).
    pub(crate) fn invalidate(&self) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// A token Keystone issued: its value, for masking what a service echoes,
/// and the same as an `X-Auth-Token` header value, marked sensitive.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) secret: SecretString,
    pub(crate) header: HeaderValue,
}

/// What Keystone answered a token request with.
pub(crate) struct Issued {
    pub(crate) token: Token,
    pub(crate) answer: TokenAnswer,
}

/// `POST /v3/auth/tokens` with `auth`'s credentials. A token without a
/// service catalog (unscoped credentials) is refused: no service can be
/// found with it. `client` was built with `proxies`.
pub(crate) fn authenticate(
    client: &Client,
    auth: &KeystoneAuth,
    timeout: Duration,
    proxies: &Proxies,
) -> Result<Issued, KeystoneError> {
    let url = auth.token_url()?;
    let response = client
        .post(url.clone())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/json")
        .body(auth.request_body().to_string())
        .timeout(timeout)
        .send()
        .map_err(|e| KeystoneError::Transport(http::classify_transport(&e, &url, timeout, proxies)))?;
    let status = response.status();
    if !status.is_success() {
        let body = http::read_error_body(response);
        return Err(KeystoneError::Refused {
            status: status.as_u16(),
            message: http::first_line(&auth.mask(&error_text(&body), None)),
        });
    }
    let token = response
        .headers()
        .get("X-Subject-Token")
        .and_then(|v| {
            let mut header = v.clone();
            header.set_sensitive(true);
            Some(Token { secret: SecretString::new(v.to_str().ok()?), header })
        })
        .ok_or_else(|| KeystoneError::Unexpected { detail: "no X-Subject-Token header".to_owned() })?;
    let answer: TokenAnswer = json_body::read_json(response, TOKEN_BODY_LIMIT, timeout).map_err(|e| match e {
        BodyError::Transport(e) => KeystoneError::Transport(e),
        other => KeystoneError::Unexpected { detail: other.describe_shape() },
    })?;
    if answer.token.catalog.is_empty() {
        return Err(KeystoneError::Config { message: NO_CATALOG.to_owned() });
    }
    Ok(Issued { token, answer })
}

/// Why a token answer names no service endpoint.
const NO_CATALOG: &str = "Keystone's token has no service catalog (the credentials name no project): set project_name and project_domain_name, or project_id";

/// The message of a Keystone error (`{"error": {"message": ...}}`), or the
/// body itself; whole (mask it, then take its first line).
pub(crate) fn error_text(body: &str) -> String {
    let parsed: Option<String> = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.get("message")).and_then(Value::as_str).map(str::to_owned));
    parsed.unwrap_or_else(|| body.to_owned())
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

impl TokenAnswer {
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

    /// When the token expires, if Keystone said so in RFC 3339.
    pub(crate) fn expires_at(&self) -> Option<SystemTime> {
        let text = self.token.expires_at.as_deref()?;
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok().map(Into::into)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The options of section `name` of an INI text in file order: as much
    /// of oslo.config's syntax as these tests write (no continuation lines,
    /// no comments after values).
    pub(crate) fn read_section(text: &str, name: &str) -> Vec<(String, String)> {
        let mut current = None;
        let mut options = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = Some(header.to_owned());
            } else if current.as_deref() == Some(name) && !line.starts_with(['#', ';']) {
                if let Some((key, value)) = line.split_once('=') {
                    options.push((key.trim().to_owned(), value.trim().to_owned()));
                }
            }
        }
        options
    }

    fn from_watcher_conf(text: &str) -> Result<KeystoneAuth, KeystoneError> {
        KeystoneAuth::from_sections(&|section| read_section(text, section))
    }

    const AUTH: &str = "[watcher_clients_auth]\nauth_type = password\nauth_url = http://keystone:5000\nusername = watcher\npassword = s3cret\nuser_domain_name = Default\nproject_name = service\nproject_domain_id = default\n";

    #[test]
    fn password_auth_builds_keystones_request() {
        let auth = from_watcher_conf(AUTH).unwrap();
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
        let auth = from_watcher_conf(text).unwrap();
        assert_eq!(auth.token_url().unwrap().as_str(), "https://ks/identity/v3/auth/tokens");
        assert_eq!(auth.request_body()["auth"]["identity"]["password"]["user"], json!({"id": "u1", "password": "p"}));
        assert_eq!(auth.request_body()["auth"]["scope"], json!({"project": {"id": "p1"}}));
        let text = "[watcher_clients_auth]\nauth_url = http://ks:5000\nusername = w\npassword = p\nproject_name = s\ndefault_domain_id = default\n";
        let body = from_watcher_conf(text).unwrap().request_body();
        assert_eq!(body["auth"]["scope"]["project"]["domain"], json!({"id": "default"}));
    }

    #[test]
    fn application_credentials_are_unscoped() {
        let text = "[watcher_clients_auth]\nauth_type = v3applicationcredential\nauth_url = http://ks:5000/v3\napplication_credential_id = ac1\napplication_credential_secret = shh\nproject_name = ignored\n";
        let body = from_watcher_conf(text).unwrap().request_body();
        assert_eq!(
            body,
            json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "shh"}}}})
        );
    }

    #[test]
    fn auth_section_indirection() {
        let text = "[watcher_clients_auth]\nauth_section = keystone_authtoken\n[keystone_authtoken]\nauth_url = http://ks:5000\nusername = w\npassword = p\nuser_domain_id = default\n";
        let body = from_watcher_conf(text).unwrap().request_body();
        assert!(body["auth"].get("scope").is_none());
    }

    #[test]
    fn incomplete_sections_say_what_is_missing() {
        let err = |text: &str| from_watcher_conf(text).unwrap_err().to_string();
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

    fn answer(expires_at: &str) -> TokenAnswer {
        serde_json::from_value(json!({"token": {"expires_at": expires_at, "catalog": []}})).unwrap()
    }

    #[test]
    fn expiry_times_are_rfc3339() {
        let secs =
            |text: &str| answer(text).expires_at().map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(secs("2015-11-07T02:58:43.578887Z"), Some(1_446_865_123));
        assert_eq!(secs("2015-11-07T04:58:43+02:00"), Some(1_446_865_123));
        assert_eq!(secs("2015-13-07T02:58:43Z"), None);
        assert_eq!(secs("yesterday"), None);
    }

    #[test]
    fn keystone_messages_are_unwrapped() {
        assert_eq!(
            error_text(r#"{"error": {"code": 401, "message": "The request you have made requires authentication."}}"#),
            "The request you have made requires authentication."
        );
        assert_eq!(error_text("plain"), "plain");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in "(?s).{0,200}") {
            let _ = from_watcher_conf(&text);
            let _ = error_text(&text);
            let _ = answer(&text).expires_at();
        }
    }
}
