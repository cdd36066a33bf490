//! Ironic's node and power API, reached through the `baremetal` endpoint
//! of Keystone's catalog (honouring `[ironic_client] endpoint_type` and
//! `region_name` as keystoneauth does).
//!
//! Differences from Watcher's own client, on purpose: nodes are listed in
//! pages with `detail=True` (one request per page, not one GET per node),
//! every request carries an explicit microversion, and the token is reused
//! until it nears expiry, with one re-authentication on a 401.

use std::fmt;
use std::time::Duration;

use reqwest::blocking::Response;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use crate::clients::http::HttpOptions;
use crate::clients::openstack::keystone::{self, KeystoneAuth};
use crate::clients::openstack::service::{ErrorKind, OpenStackError, Service, ServiceClient, Supported};

/// The microversion sent when `[ironic_client] api_version` is plain `1`:
/// Rocky's, the first with everything used here (`detail=True` is 1.43).
const DEFAULT_MICROVERSION: &str = "1.46";

const MICROVERSION_HEADER: &str = "X-OpenStack-Ironic-API-Version";
const PAGE_BODY_LIMIT: u64 = 256 * 1024 * 1024;
const SMALL_BODY_LIMIT: u64 = 4 * 1024 * 1024;

/// The default of `[ironic_client] api_version`.
pub(crate) const DEFAULT_API_VERSION: &str = "1";
/// The default of `[ironic_client] endpoint_type`.
pub(crate) const DEFAULT_ENDPOINT_TYPE: &str = "publicURL";

/// `[ironic_client]` as Watcher reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IronicSettings {
    /// `api_version`: `1` (the default microversion) or `1.N`.
    pub(crate) api_version: String,
    /// `endpoint_type`: the catalog interface, with or without `URL`.
    pub(crate) endpoint_type: String,
    /// `region_name`: the catalog region; any when unset.
    pub(crate) region_name: Option<String>,
}

impl Default for IronicSettings {
    fn default() -> Self {
        IronicSettings {
            api_version: DEFAULT_API_VERSION.to_owned(),
            endpoint_type: DEFAULT_ENDPOINT_TYPE.to_owned(),
            region_name: None,
        }
    }
}

/// How 409 (node locked) and 503 (no free conductor) are retried, as the
/// official client does.
#[derive(Debug, Clone, Copy)]
pub struct IronicRetry {
    /// Retries after the first attempt (5); 0 reports the first 409/503.
    pub max_retries: u32,
    /// The wait before each retry (2 s).
    pub interval: Duration,
}

impl Default for IronicRetry {
    fn default() -> Self {
        IronicRetry { max_retries: 5, interval: Duration::from_secs(2) }
    }
}

/// A client of one Ironic, through one set of Keystone credentials.
pub struct IronicClient {
    core: ServiceClient,
    settings: IronicSettings,
    microversion: String,
    retry: IronicRetry,
}

impl fmt::Debug for IronicClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IronicClient").field("auth", &self.core.auth).field("settings", &self.settings).finish()
    }
}

/// The microversion for `[ironic_client] api_version`.
fn microversion_for(api_version: &str) -> String {
    if api_version == "1" {
        DEFAULT_MICROVERSION.to_owned()
    } else {
        api_version.to_owned()
    }
}

/// A node as Ironic describes it (the fields read here).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IronicNode {
    pub(crate) uuid: String,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) power_state: Option<String>,
    #[serde(default)]
    pub(crate) provision_state: Option<String>,
    #[serde(default)]
    pub(crate) extra: Option<serde_json::Map<String, Value>>,
}

/// `GET /v1/nodes/{id}/states`: the conductor's power record, and the
/// target of a power change in flight.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NodeStates {
    #[serde(default)]
    pub(crate) power_state: Option<String>,
    #[serde(default)]
    pub(crate) target_power_state: Option<String>,
}

/// A page of `GET /v1/nodes/detail` besides its nodes, which stream one at
/// a time (`nodes` is read here as empty, so that serde_json judges it
/// missing, repeated or not a list as in the whole page).
#[derive(Deserialize)]
struct NodePageRest {
    #[allow(dead_code)]
    nodes: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    next: Option<String>,
}

impl IronicClient {
    /// A client for these credentials and settings; `auth`'s `timeout` and
    /// `cafile`, when set, take the place of `http_options`'.
    pub fn new(
        auth: KeystoneAuth,
        settings: IronicSettings,
        http_options: HttpOptions,
        retry: IronicRetry,
    ) -> Result<IronicClient, OpenStackError> {
        let core = ServiceClient::new(
            Service::Ironic,
            auth,
            http_options,
            &settings.endpoint_type,
            settings.region_name.clone(),
        )?;
        Ok(IronicClient { core, microversion: microversion_for(&settings.api_version), settings, retry })
    }

    /// One Ironic call: re-authenticates once on 401, retries 409/503.
    fn call(&self, method: Method, path_and_query: &str, body: Option<&Value>) -> Result<Response, OpenStackError> {
        let mut retries = 0;
        loop {
            let (response, token) = self.core.send(method.clone(), path_and_query, |request| {
                let request = request.header(MICROVERSION_HEADER, &self.microversion);
                match body {
                    Some(body) => request.header(CONTENT_TYPE, "application/json").body(body.to_string()),
                    None => request,
                }
            })?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            match status {
                StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE if retries < self.retry.max_retries => {
                    retries += 1;
                    std::thread::sleep(self.retry.interval);
                }
                StatusCode::NOT_ACCEPTABLE => {
                    let headers = response.headers();
                    let supported = Supported::Range {
                        min: header(headers, "X-OpenStack-Ironic-API-Minimum-Version"),
                        max: header(headers, "X-OpenStack-Ironic-API-Maximum-Version"),
                    };
                    return Err(self
                        .core
                        .error(ErrorKind::Microversion { requested: self.microversion.clone(), supported }));
                }
                _ => {
                    let message = self.core.refusal(response, &token, ironic_fault_text);
                    return Err(self.core.error(ErrorKind::Api { status: status.as_u16(), message }));
                }
            }
        }
    }

    fn node_path(id: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        format!("v1/nodes/{encoded}")
    }

    fn read<T: serde::de::DeserializeOwned>(&self, path: &str, limit: u64) -> Result<T, OpenStackError> {
        let response = self.call(Method::GET, path, None)?;
        self.core.read_json(response, limit)
    }

    /// `GET /v1/nodes/detail`, following `next` links: one request a page.
    /// (`?detail=True` needs microversion 1.43; `/detail` works at every
    /// version Ironic accepts.)
    pub(crate) fn nodes(&self) -> Result<Vec<IronicNode>, OpenStackError> {
        let mut nodes = Vec::new();
        let mut path = "v1/nodes/detail".to_owned();
        loop {
            let response = self.call(Method::GET, &path, None)?;
            let before = nodes.len();
            let page: NodePageRest =
                self.core.read_json_page(response, PAGE_BODY_LIMIT, "nodes", |node| nodes.push(node))?;
            let empty = nodes.len() == before;
            // Only the query of `next` is used: its host may be Ironic's
            // public URL rather than the catalog endpoint in use.
            match page.next.as_deref().and_then(|n| Url::parse(n).ok()).and_then(|u| u.query().map(str::to_owned)) {
                Some(query) if !empty => path = format!("v1/nodes/detail?{query}"),
                _ => break,
            }
        }
        Ok(nodes)
    }

    /// `GET /v1/nodes/{id}` (a UUID or a name).
    pub(crate) fn node(&self, id: &str) -> Result<IronicNode, OpenStackError> {
        self.read(&Self::node_path(id), SMALL_BODY_LIMIT)
    }

    /// `GET /v1/nodes/{id}/states`. Ironic has no synchronous BMC query:
    /// this is the conductor's record, which it refreshes from the BMC every
    /// `[conductor] sync_power_state_interval`.
    pub(crate) fn states(&self, id: &str) -> Result<NodeStates, OpenStackError> {
        self.read(&format!("{}/states", Self::node_path(id)), SMALL_BODY_LIMIT)
    }

    /// `PUT /v1/nodes/{id}/states/power` with `target` (`power on`,
    /// `power off`).
    pub(crate) fn set_power_state(&self, id: &str, target: &str) -> Result<(), OpenStackError> {
        let path = format!("{}/states/power", Self::node_path(id));
        self.call(Method::PUT, &path, Some(&json!({ "target": target })))?;
        Ok(())
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The message of an Ironic error, whole (mask it, then take its first
/// line): Ironic answers `{"error_message": "<JSON with faultstring>"}`,
/// where the inner JSON is a string (or, on some versions, already an
/// object).
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
        _ => return keystone::error_text(body),
    };
    fault
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first line of an Ironic error's message, as the client reports it.
    fn ironic_fault(body: &str) -> String {
        crate::clients::http::first_line(&ironic_fault_text(body))
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
    }

    #[test]
    fn microversions() {
        assert_eq!(microversion_for("1"), "1.46");
        assert_eq!(microversion_for("1.78"), "1.78");
        assert_eq!(microversion_for("latest"), "latest");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in "(?s).{0,200}") {
            let _ = ironic_fault(&text);
        }
    }
}
