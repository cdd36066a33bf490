//! Keystone's identity service: users and application credentials,
//! `POST /v3/auth/tokens` with password or application-credential
//! authentication and scoping, and the tokens it has issued.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::catalog::{self, CatalogService};
use super::error::KeystoneError;
use crate::openstack::{hex_id, rfc3339};
use crate::util::random_alnum;

pub(crate) const DOMAIN_ID: &str = "default";
pub(crate) const DOMAIN_NAME: &str = "Default";
pub(crate) const PROJECT_NAME: &str = "service";

/// A token issued.
#[derive(Debug, Clone)]
struct Issued {
    /// `None`: never expires (a TTL too large to represent).
    expires: Option<Instant>,
}

/// What the token request asked to be scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Unscoped,
    Project,
    Domain,
    System,
}

/// The identity service: users, application credentials, tokens.
pub(crate) struct Keystone {
    users: Vec<(String, String)>,
    app_credentials: Vec<(String, String)>,
    token_ttl: Duration,
    region: String,
    tokens: HashMap<String, Issued>,
    /// Every token ever issued, expired ones included.
    history: Vec<String>,
    /// The services the catalog lists, in order.
    catalog: Vec<CatalogService>,
}

/// A token just issued: its id and the response body.
pub(crate) struct NewToken {
    pub token: String,
    pub body: String,
}

pub(crate) fn user_id(name: &str) -> String {
    hex_id(&format!("user:{name}"))
}

pub(crate) fn project_id() -> String {
    hex_id(&format!("project:{PROJECT_NAME}"))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Whether a `{"id": ..}` / `{"name": ..}` domain reference names `Default`
/// (names compare case-insensitively, as Keystone on MySQL does).
fn is_default_domain(domain: &Value) -> Result<bool, KeystoneError> {
    if !domain.is_object() {
        return Err(KeystoneError::schema("domain", "must be an object"));
    }
    if let Some(id) = domain.get("id") {
        return Ok(id.as_str() == Some(DOMAIN_ID));
    }
    if let Some(name) = domain.get("name") {
        return Ok(name.as_str().is_some_and(|n| n.eq_ignore_ascii_case(DOMAIN_NAME)));
    }
    Err(KeystoneError::expecting("id or name", "domain"))
}

impl Keystone {
    pub fn new(
        users: Vec<(String, String)>,
        app_credentials: Vec<(String, String)>,
        token_ttl: Duration,
        region: String,
    ) -> Keystone {
        Keystone {
            users,
            app_credentials,
            token_ttl,
            region,
            tokens: HashMap::new(),
            history: Vec::new(),
            catalog: vec![catalog::identity()],
        }
    }

    /// Sets the services the catalog lists, in order (Keystone only,
    /// [`catalog::identity`], by default).
    pub fn with_catalog(mut self, services: Vec<CatalogService>) -> Keystone {
        self.catalog = services;
        self
    }

    pub fn users(&self) -> &[(String, String)] {
        &self.users
    }

    /// Whether `token` was issued here and has not expired.
    pub fn valid(&self, token: &str) -> bool {
        self.tokens.get(token).is_some_and(|t| t.expires.is_none_or(|at| at > Instant::now()))
    }

    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Makes every token issued so far invalid.
    pub fn expire_all(&mut self) {
        self.tokens.clear();
    }

    /// The index of the user a `{"id"}` or `{"name", "domain"}` reference
    /// names, if any.
    fn find_user(&self, user: &Value) -> Result<Option<usize>, KeystoneError> {
        if !user.is_object() {
            return Err(KeystoneError::schema("user", "must be an object"));
        }
        if let Some(id) = user.get("id") {
            let id = id.as_str().ok_or_else(|| KeystoneError::schema("user/id", "must be a string"))?;
            return Ok(self.users.iter().position(|(name, _)| user_id(name) == id));
        }
        let Some(name) = user.get("name") else { return Err(KeystoneError::expecting("id or name", "user")) };
        let name = name.as_str().ok_or_else(|| KeystoneError::schema("user/name", "must be a string"))?;
        let domain = user.get("domain").ok_or_else(|| KeystoneError::expecting("domain", "user"))?;
        if !is_default_domain(domain)? {
            return Ok(None);
        }
        Ok(self.users.iter().position(|(n, _)| n == name))
    }

    /// Answers `POST /v3/auth/tokens`. `base` is `http://127.0.0.1:PORT`.
    pub fn issue(&mut self, body: &[u8], base: &str) -> Result<NewToken, KeystoneError> {
        let request: Value =
            serde_json::from_slice(body).map_err(|_| KeystoneError::expecting("valid JSON", "request body"))?;
        let auth = request
            .get("auth")
            .filter(|a| a.is_object())
            .ok_or_else(|| KeystoneError::expecting("auth", "request body"))?;
        let identity = auth
            .get("identity")
            .filter(|i| i.is_object())
            .ok_or_else(|| KeystoneError::schema("auth", "'identity' is a required property"))?;
        let methods: Vec<&str> = identity
            .get("methods")
            .and_then(Value::as_array)
            .ok_or_else(|| KeystoneError::schema("identity", "'methods' is a required property"))?
            .iter()
            .map(|m| m.as_str().unwrap_or(""))
            .collect();
        let scope = auth.get("scope");

        let (method, user_index, app_cred) = match methods.as_slice() {
            ["password"] => {
                let user = identity
                    .get("password")
                    .and_then(|p| p.get("user"))
                    .ok_or_else(|| KeystoneError::expecting("user", "password"))?;
                let index = self.find_user(user)?;
                let password = str_field(user, "password");
                match index {
                    Some(i) if password == Some(self.users[i].1.as_str()) => ("password", i, None),
                    _ => return Err(KeystoneError::unauthorized()),
                }
            }
            ["application_credential"] => {
                let cred = identity
                    .get("application_credential")
                    .filter(|c| c.is_object())
                    .ok_or_else(|| KeystoneError::expecting("application_credential", "identity"))?;
                let secret = str_field(cred, "secret")
                    .ok_or_else(|| KeystoneError::expecting("secret", "application_credential"))?;
                let found = if let Some(id) = cred.get("id") {
                    let id = id.as_str().unwrap_or("");
                    self.app_credentials.iter().position(|(i, _)| i == id)
                } else if let Some(name) = str_field(cred, "name") {
                    let user =
                        cred.get("user").ok_or_else(|| KeystoneError::expecting("user", "application_credential"))?;
                    // Credentials belong to the first user.
                    match self.find_user(user)? {
                        Some(0) => self.app_credentials.iter().position(|(i, _)| i == name),
                        _ => None,
                    }
                } else {
                    return Err(KeystoneError::expecting("id or name", "application_credential"));
                };
                if scope.is_some() {
                    return Err(KeystoneError {
                        status: 401,
                        message: "Error authenticating with application credential: Application credentials cannot request a scope.".into(),
                    });
                }
                match found {
                    Some(c) if self.app_credentials[c].1 == secret && !self.users.is_empty() => {
                        ("application_credential", 0, Some(c))
                    }
                    _ => return Err(KeystoneError::unauthorized()),
                }
            }
            [] => return Err(KeystoneError::schema("identity/methods", "[] is too short")),
            _ => {
                return Err(KeystoneError {
                    status: 401,
                    message: "Attempted to authenticate with an unsupported method.".into(),
                })
            }
        };

        let scope = match (app_cred, scope) {
            (Some(_), _) => Scope::Project,
            (None, None) => Scope::Unscoped,
            (None, Some(scope)) => self.scope(scope)?,
        };
        Ok(self.token(method, user_index, app_cred, &scope, base))
    }

    fn scope(&self, scope: &Value) -> Result<Scope, KeystoneError> {
        if !scope.is_object() {
            return Err(KeystoneError::schema("scope", "must be an object"));
        }
        if let Some(project) = scope.get("project") {
            if !project.is_object() {
                return Err(KeystoneError::schema("scope/project", "must be an object"));
            }
            let found = if let Some(id) = project.get("id") {
                id.as_str() == Some(project_id().as_str())
            } else if let Some(name) = project.get("name") {
                let domain = project.get("domain").ok_or_else(|| KeystoneError::expecting("domain", "project"))?;
                is_default_domain(domain)? && name.as_str() == Some(PROJECT_NAME)
            } else {
                return Err(KeystoneError::expecting("id or name", "project"));
            };
            // An unknown project is refused like a bad password.
            return if found { Ok(Scope::Project) } else { Err(KeystoneError::unauthorized()) };
        }
        if let Some(domain) = scope.get("domain") {
            return if is_default_domain(domain)? { Ok(Scope::Domain) } else { Err(KeystoneError::unauthorized()) };
        }
        if scope.get("system").is_some() {
            return Ok(Scope::System);
        }
        Err(KeystoneError::schema("scope", "names no project, domain or system"))
    }

    fn token(&mut self, method: &str, user: usize, app_cred: Option<usize>, scope: &Scope, base: &str) -> NewToken {
        let token = format!("gAAAAAB{}", random_alnum(176));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let expires_at = now.checked_add(self.token_ttl).filter(|d| d.as_secs() < 253_402_300_000);
        let expires = Instant::now().checked_add(self.token_ttl);
        let time = |d: Duration| rfc3339(d.as_secs() as i64, d.subsec_micros());
        let domain = json!({ "id": DOMAIN_ID, "name": DOMAIN_NAME });
        let name = self.users.get(user).map(|(n, _)| n.clone()).unwrap_or_default();
        let mut body = json!({
            "methods": [method],
            "user": { "domain": domain, "id": user_id(&name), "name": name, "password_expires_at": null },
            "audit_ids": [random_alnum(22)],
            "expires_at": time(expires_at.unwrap_or(Duration::from_secs(253_402_300_799))),
            "issued_at": time(now),
        });
        let roles = json!([
            { "id": hex_id("role:admin"), "name": "admin" },
            { "id": hex_id("role:service"), "name": "service" },
        ]);
        match scope {
            Scope::Unscoped => {}
            Scope::Project => {
                body["project"] = json!({ "domain": domain, "id": project_id(), "name": PROJECT_NAME });
                body["is_domain"] = false.into();
            }
            Scope::Domain => body["domain"] = domain.clone(),
            Scope::System => body["system"] = json!({ "all": true }),
        }
        if *scope != Scope::Unscoped {
            body["roles"] = roles;
            body["catalog"] = catalog::render(&self.catalog, &self.region, base);
        }
        if let Some(c) = app_cred {
            let id = self.app_credentials[c].0.clone();
            body["application_credential"] = json!({ "id": id, "name": id, "restricted": true });
        }
        self.history.push(token.clone());
        self.tokens.insert(token.clone(), Issued { expires: expires.filter(|_| expires_at.is_some()) });
        NewToken { token, body: json!({ "token": body }).to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keystone() -> Keystone {
        Keystone::new(
            vec![("watcher".into(), "pw".into())],
            vec![("ac1".into(), "shh".into())],
            Duration::from_secs(60),
            "RegionOne".into(),
        )
    }

    fn issue(k: &mut Keystone, body: Value) -> Result<Value, KeystoneError> {
        k.issue(body.to_string().as_bytes(), "http://127.0.0.1:1").map(|t| {
            assert!(k.valid(&t.token));
            serde_json::from_str(&t.body).unwrap()
        })
    }

    #[test]
    fn password_forms_and_scopes() {
        let mut k = keystone();
        let by_name = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "watcher", "domain": {"name": "default"}, "password": "pw"}}},
            "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}});
        let t = issue(&mut k, by_name).unwrap();
        assert_eq!(t["token"]["project"]["id"], project_id());
        assert_eq!(t["token"]["catalog"][0]["endpoints"].as_array().unwrap().len(), 3);
        let by_id = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user_id("watcher"), "password": "pw"}}},
            "scope": {"project": {"id": project_id()}}}});
        assert!(issue(&mut k, by_id).is_ok());
        let unscoped = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user_id("watcher"), "password": "pw"}}}}});
        assert!(issue(&mut k, unscoped).unwrap()["token"].get("catalog").is_none());
        let wrong = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user_id("watcher"), "password": "no"}}}}});
        assert_eq!(issue(&mut k, wrong).unwrap_err().status, 401);
        let no_domain = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "watcher", "password": "pw"}}}}});
        assert_eq!(issue(&mut k, no_domain).unwrap_err().status, 400);
        let other_project = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user_id("watcher"), "password": "pw"}}},
            "scope": {"project": {"id": "nope"}}}});
        assert_eq!(issue(&mut k, other_project).unwrap_err().status, 401);
        k.expire_all();
        assert!(k.tokens.is_empty());
    }

    #[test]
    fn application_credentials() {
        let mut k = keystone();
        let ok = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "shh"}}}});
        let t = issue(&mut k, ok).unwrap();
        assert_eq!(t["token"]["project"]["name"], "service");
        let scoped = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac1", "secret": "shh"}},
            "scope": {"project": {"id": project_id()}}}});
        let e = issue(&mut k, scoped).unwrap_err();
        assert!(e.message.contains("Application credentials cannot request a scope."), "{e:?}");
        let by_name = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"name": "ac1", "user": {"name": "watcher", "domain": {"id": "default"}}, "secret": "shh"}}}});
        assert!(issue(&mut k, by_name).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let mut k = keystone();
        for body in
            [&b""[..], b"null", b"[]", b"{\"auth\": 1}", b"{\"auth\": {\"identity\": {\"methods\": [1]}}}", b"\xff"]
        {
            assert!(k.issue(body, "http://x").is_err());
        }
        let odd = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": 5}}, "scope": 7}});
        assert_eq!(issue(&mut k, odd).unwrap_err().status, 400);
    }
}
