//! Keystone's answers on the wire, as the Ironic and Nova simulators serve
//! them: error responses, the 401 for a bad token, the token response, the
//! `/v3` version document, and the watcher.conf section that logs in.

use serde_json::json;

use super::error::{keystone_error_body, KeystoneError, UNAUTHORIZED};
use super::tokens::{NewToken, DOMAIN_NAME, PROJECT_NAME};
use crate::http::Response;

const JSON: &str = "application/json";

/// A Keystone error response.
pub(crate) fn error_response(status: u16, message: &str) -> Response {
    Response::new(status, JSON, keystone_error_body(status, message))
}

/// 405 for a method a Keystone resource does not take.
pub(crate) fn method_not_allowed() -> Response {
    error_response(405, "The method you have requested is not allowed for this resource.")
}

/// 404 for a path Keystone does not serve.
pub(crate) fn not_found() -> Response {
    error_response(404, "The resource could not be found.")
}

/// The `WWW-Authenticate` value pointing at this Keystone; `base` is
/// `http://127.0.0.1:PORT`.
pub(crate) fn www_authenticate(base: &str) -> String {
    format!("Keystone uri=\"{base}/identity\"")
}

/// The 401 a service behind Keystone answers to a missing, unknown or
/// expired token.
pub(crate) fn bad_token(base: &str) -> Response {
    error_response(401, UNAUTHORIZED).with_header("WWW-Authenticate", www_authenticate(base))
}

/// The answer to `POST /v3/auth/tokens`: 201 with `X-Subject-Token`, or the
/// refusal.
pub(crate) fn token_response(issued: &Result<NewToken, KeystoneError>) -> Response {
    match issued {
        Ok(t) => Response::new(201, JSON, t.body.clone()).with_header("X-Subject-Token", t.token.clone()),
        Err(e) => Response::new(e.status, JSON, e.body()),
    }
}

/// `GET /identity/v3`: the version document.
pub(crate) fn v3_doc(base: &str) -> String {
    json!({ "version": {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{ "rel": "self", "href": format!("{base}/identity/v3/") }],
        "media-types": [{ "base": "application/json", "type": "application/vnd.openstack.identity-v3+json" }],
    }})
    .to_string()
}

/// A watcher.conf `[watcher_clients_auth]` section: password
/// authentication with user and project names and domain names, as
/// Watcher's install guide writes it.
pub(crate) fn clients_auth_section(auth_url: &str, user: &str, password: &str) -> String {
    format!(
        "[watcher_clients_auth]\nauth_type = password\nauth_url = {auth_url}\nusername = {user}\npassword = {password}\n\
         user_domain_name = {DOMAIN_NAME}\nproject_name = {PROJECT_NAME}\nproject_domain_name = {DOMAIN_NAME}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        let r = bad_token("http://127.0.0.1:5");
        assert_eq!(r.status, 401);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            format!("{{\"error\": {{\"code\": 401, \"title\": \"Unauthorized\", \"message\": \"{UNAUTHORIZED}\"}}}}")
        );
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "WWW-Authenticate" && v == "Keystone uri=\"http://127.0.0.1:5/identity\""));
        assert_eq!(token_response(&Err(KeystoneError { status: 400, message: "x".into() })).status, 400);
    }

    #[test]
    fn auth_section() {
        let s = clients_auth_section("http://127.0.0.1:5/identity", "watcher", "pw");
        assert!(s.starts_with("[watcher_clients_auth]\nauth_type = password\nauth_url = http://127.0.0.1:5/identity\n"));
        assert!(s.ends_with("project_name = service\nproject_domain_name = Default\n"));
    }
}
