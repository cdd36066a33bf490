//! The simulated Keystone and Ironic on one port: routing, token checks,
//! microversion negotiation, the node endpoints with pagination, and the
//! power semantics (202, settling later, locks).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::keystone::{keystone_error_body, Keystone, UNAUTHORIZED};
use super::model::{is_uuid_like, parse_version, rfc3339, uuid_for, IronicSimConfig, IronicStats, SimNode};
use crate::http::{Request, Response};
use crate::server::{lock, ConnInfo, Reply, Service};
use crate::util::{http_date, json_str, parse_form, percent_decode, unix_now};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// The catalog interfaces and the path prefix each is served under.
pub(crate) const INTERFACES: [(&str, &str); 3] =
    [("public", "/baremetal"), ("internal", "/baremetal-internal"), ("admin", "/baremetal-admin")];

/// The conductor that holds node locks.
const CONDUCTOR: &str = "ironic-conductor-1";

const MIN_HEADER: &str = "X-OpenStack-Ironic-API-Minimum-Version";
const MAX_HEADER: &str = "X-OpenStack-Ironic-API-Maximum-Version";
const VERSION_HEADER: &str = "X-OpenStack-Ironic-API-Version";

/// Node fields Ironic knows (those `fields=` may name).
const NODE_FIELDS: &[&str] = &[
    "uuid",
    "name",
    "power_state",
    "target_power_state",
    "provision_state",
    "target_provision_state",
    "maintenance",
    "maintenance_reason",
    "fault",
    "instance_uuid",
    "instance_info",
    "driver",
    "driver_info",
    "extra",
    "properties",
    "last_error",
    "console_enabled",
    "reservation",
    "conductor_group",
    "conductor",
    "resource_class",
    "created_at",
    "updated_at",
    "provision_updated_at",
];

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// Neither under `/identity` nor under an Ironic prefix.
    Outside,
    KeystoneV3,
    Tokens,
    KeystoneOther,
    /// An Ironic route, and the interface (index into [`INTERFACES`]).
    Ironic(usize, IronicRoute),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum IronicRoute {
    Root,
    V1,
    Nodes,
    NodesDetail,
    Node(String),
    States(String),
    Power(String),
    Other,
}

fn route(raw_path: &str) -> Route {
    if let Some(rest) = strip_segment_prefix(raw_path, "/identity") {
        return match rest.trim_end_matches('/') {
            "/v3" => Route::KeystoneV3,
            "/v3/auth/tokens" => Route::Tokens,
            _ => Route::KeystoneOther,
        };
    }
    for (i, (_, prefix)) in INTERFACES.iter().enumerate() {
        if let Some(rest) = strip_segment_prefix(raw_path, prefix) {
            return Route::Ironic(i, ironic_route(rest));
        }
    }
    Route::Outside
}

/// `path` without `prefix`, if `prefix` is a whole leading segment of it.
fn strip_segment_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn ironic_route(rest: &str) -> IronicRoute {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<String> =
        if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').map(percent_decode).collect() };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        [] => IronicRoute::Root,
        ["v1"] => IronicRoute::V1,
        ["v1", "nodes"] => IronicRoute::Nodes,
        ["v1", "nodes", "detail"] => IronicRoute::NodesDetail,
        ["v1", "nodes", id] if !id.is_empty() => IronicRoute::Node(id.to_string()),
        ["v1", "nodes", id, "states"] if !id.is_empty() => IronicRoute::States(id.to_string()),
        ["v1", "nodes", id, "states", "power"] if !id.is_empty() => IronicRoute::Power(id.to_string()),
        _ => IronicRoute::Other,
    }
}

fn endpoint_key(method: &str, route: &Route, path: &str) -> String {
    let key = match route {
        Route::Tokens => "/v3/auth/tokens",
        Route::KeystoneV3 => "/v3",
        Route::Ironic(_, r) => match r {
            IronicRoute::Root => "/",
            IronicRoute::V1 => "/v1",
            IronicRoute::Nodes => "/v1/nodes",
            IronicRoute::NodesDetail => "/v1/nodes/detail",
            IronicRoute::Node(_) => "/v1/nodes/{id}",
            IronicRoute::States(_) => "/v1/nodes/{id}/states",
            IronicRoute::Power(_) => "/v1/nodes/{id}/states/power",
            IronicRoute::Other => return format!("{method} {path}"),
        },
        _ => return format!("{method} {path}"),
    };
    format!("{method} {key}")
}

/// Ironic's error body: a JSON object whose `error_message` is itself JSON
/// text, written as Python's `json.dumps` writes it.
pub(crate) fn ironic_error(status: u16, faultstring: &str) -> Response {
    let code = if status >= 500 { "Server" } else { "Client" };
    let inner = format!(
        "{{\"faultcode\": {}, \"faultstring\": {}, \"debuginfo\": null}}",
        json_str(code),
        json_str(faultstring)
    );
    Response::new(status, JSON, format!("{{\"error_message\": {}}}", json_str(&inner)))
}

fn not_found(ident: &str) -> Response {
    ironic_error(404, &format!("Node {ident} could not be found."))
}

fn not_acceptable() -> Response {
    ironic_error(406, "Request not acceptable.")
}

fn method_not_allowed(allow: &str) -> Response {
    ironic_error(405, "The method specified is not allowed for this resource.").with_header("Allow", allow)
}

/// Ironic's `is_valid_logical_name`: RFC 3986 unreserved characters.
fn is_logical_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `oslo_utils.strutils.bool_from_string(strict=True)`.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

fn last<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn version_text(v: (u32, u32)) -> String {
    format!("{}.{}", v.0, v.1)
}

/// The power state a request leads to.
fn final_state(target: &str) -> &'static str {
    match target {
        "power off" | "soft power off" => "power off",
        _ => "power on",
    }
}

/// A node and what Ironic tracks around it.
struct Entry {
    node: SimNode,
    target_power_state: Option<String>,
    /// The power state being reached, and when.
    pending: Option<(&'static str, Instant)>,
    /// Power requests still to be refused as locked.
    locks: usize,
    instance_uuid: Option<String>,
    updated_at: String,
}

struct Inventory {
    entries: Vec<Entry>,
    by_uuid: HashMap<String, usize>,
    created_at: String,
}

impl Inventory {
    fn new(nodes: Vec<SimNode>) -> Inventory {
        let created_at = now_rfc3339();
        let mut by_uuid = HashMap::new();
        let entries = nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| {
                by_uuid.entry(normalise_uuid(&node.uuid)).or_insert(i);
                let instance_uuid = (node.provision_state == "active").then(|| uuid_for(0x696e_7374, i as u64));
                Entry {
                    node,
                    target_power_state: None,
                    pending: None,
                    locks: 0,
                    instance_uuid,
                    updated_at: created_at.clone(),
                }
            })
            .collect();
        Inventory { entries, by_uuid, created_at }
    }

    /// Applies the power changes that are due.
    fn settle(&mut self) {
        let now = Instant::now();
        for e in &mut self.entries {
            if let Some((state, due)) = e.pending {
                if due <= now {
                    e.node.power_state = Some(state.to_string());
                    e.target_power_state = None;
                    e.pending = None;
                    e.updated_at = now_rfc3339();
                }
            }
        }
    }

    fn by_uuid(&self, uuid: &str) -> Option<usize> {
        self.by_uuid.get(&normalise_uuid(uuid)).copied()
    }

    /// A node by UUID, or by name where the version allows names (1.5).
    fn find(&self, ident: &str, version: (u32, u32)) -> Result<usize, Response> {
        if is_uuid_like(ident) {
            return self.by_uuid(ident).ok_or_else(|| not_found(ident));
        }
        if version < (1, 5) {
            return Err(not_found(ident));
        }
        if !is_logical_name(ident) {
            return Err(ironic_error(400, &format!("Expected a logical name or UUID but received {ident}.")));
        }
        self.entries.iter().position(|e| e.node.name.as_deref() == Some(ident)).ok_or_else(|| not_found(ident))
    }
}

fn normalise_uuid(s: &str) -> String {
    s.chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase()).collect()
}

fn now_rfc3339() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_micros()).replace('Z', "+00:00")
}

/// The state and behaviour of one simulated Keystone + Ironic.
pub(crate) struct IronicService {
    page_size: usize,
    min: (u32, u32),
    max: (u32, u32),
    power_delay: Duration,
    keystone: Mutex<Keystone>,
    inventory: Mutex<Inventory>,
    stats: Mutex<IronicStats>,
    /// Ironic API requests still to be answered before every token expires.
    expire_countdown: Mutex<Option<usize>>,
}

impl IronicService {
    pub fn new(config: IronicSimConfig) -> std::io::Result<IronicService> {
        let bad = |what: &str, v: &str| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what} `{v}` is not a version like 1.46"))
        };
        let min = parse_version(&config.min_version).ok_or_else(|| bad("min_version", &config.min_version))?;
        let max = parse_version(&config.max_version).ok_or_else(|| bad("max_version", &config.max_version))?;
        if min.0 != 1 || max.0 != 1 || min > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the version range must be 1.x to 1.y with x <= y",
            ));
        }
        Ok(IronicService {
            page_size: config.page_size.max(1),
            min,
            max,
            // A century stands for "never" and keeps `Instant` arithmetic safe.
            power_delay: config.power_delay.min(Duration::from_secs(100 * 365 * 86_400)),
            keystone: Mutex::new(Keystone::new(config.users, config.app_credentials, config.token_ttl, config.region)),
            inventory: Mutex::new(Inventory::new(config.nodes)),
            stats: Mutex::new(IronicStats::default()),
            expire_countdown: Mutex::new(None),
        })
    }

    pub fn users(&self) -> Vec<(String, String)> {
        lock(&self.keystone).users().to_vec()
    }

    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.keystone).history().to_vec()
    }

    pub fn expire_tokens(&self) {
        lock(&self.keystone).expire_all();
    }

    pub fn expire_tokens_after(&self, requests: usize) {
        *lock(&self.expire_countdown) = Some(requests);
    }

    pub fn lock_node(&self, uuid: &str, times: usize) {
        let mut inv = lock(&self.inventory);
        if let Some(i) = inv.by_uuid(uuid) {
            inv.entries[i].locks = times;
        }
    }

    pub fn node(&self, ident: &str) -> Option<SimNode> {
        let mut inv = lock(&self.inventory);
        inv.settle();
        let i =
            inv.by_uuid(ident).or_else(|| inv.entries.iter().position(|e| e.node.name.as_deref() == Some(ident)))?;
        Some(inv.entries[i].node.clone())
    }

    pub fn nodes(&self) -> Vec<SimNode> {
        let mut inv = lock(&self.inventory);
        inv.settle();
        inv.entries.iter().map(|e| e.node.clone()).collect()
    }

    pub fn set_power_state(&self, ident: &str, state: Option<&str>) -> bool {
        let mut inv = lock(&self.inventory);
        inv.settle();
        let Some(i) =
            inv.by_uuid(ident).or_else(|| inv.entries.iter().position(|e| e.node.name.as_deref() == Some(ident)))
        else {
            return false;
        };
        let e = &mut inv.entries[i];
        e.node.power_state = state.map(str::to_string);
        e.pending = None;
        e.target_power_state = None;
        true
    }

    pub fn stats(&self) -> IronicStats {
        lock(&self.stats).clone()
    }

    pub fn reset_stats(&self) {
        *lock(&self.stats) = IronicStats::default();
    }

    fn count(&self, f: impl FnOnce(&mut IronicStats)) {
        f(&mut lock(&self.stats));
    }

    fn respond(&self, req: &Request, route: &Route, base: &str) -> Response {
        match route {
            Route::Outside => Response::new(404, TEXT, "404 Not Found\n"),
            Route::KeystoneOther => keystone_response(404, "The resource could not be found."),
            Route::KeystoneV3 => {
                if req.method != "GET" && req.method != "HEAD" {
                    return keystone_response(405, "The method you have requested is not allowed for this resource.");
                }
                Response::new(200, JSON, keystone_v3_doc(base))
            }
            Route::Tokens => {
                if req.method != "POST" {
                    return keystone_response(405, "The method you have requested is not allowed for this resource.");
                }
                let issued = lock(&self.keystone).issue(&req.body, base);
                match issued {
                    Ok(t) => {
                        self.count(|s| s.tokens_issued += 1);
                        Response::new(201, JSON, t.body)
                            .with_header("X-Subject-Token", t.token)
                            .with_header("Vary", "X-Auth-Token")
                    }
                    Err(e) => {
                        self.count(|s| s.rejected_auth += 1);
                        let mut resp = Response::new(e.status, JSON, e.body());
                        if e.status == 401 {
                            resp = resp.with_header("WWW-Authenticate", format!("Keystone uri=\"{base}/identity\""));
                        }
                        resp
                    }
                }
            }
            Route::Ironic(iface, r) => {
                let mut resp = self.ironic(req, *iface, r, base);
                resp.headers.push((MIN_HEADER.into(), version_text(self.min)));
                resp.headers.push((MAX_HEADER.into(), version_text(self.max)));
                resp
            }
        }
    }

    /// The microversion a request asks for: the header, or the minimum when
    /// there is none.
    fn negotiate(&self, req: &Request) -> Result<(u32, u32), Response> {
        let header = req.header(VERSION_HEADER).map(str::to_string).or_else(|| {
            let v = req.header("OpenStack-API-Version")?;
            let (service, version) = v.trim().split_once(' ')?;
            service.eq_ignore_ascii_case("baremetal").then(|| version.trim().to_string())
        });
        let Some(text) = header else { return Ok(self.min) };
        if text.trim().eq_ignore_ascii_case("latest") {
            return Ok(self.max);
        }
        let Some(v) = parse_version(&text) else {
            return Err(ironic_error(400, &format!("Invalid value for {VERSION_HEADER} header")));
        };
        let range = format!("[{}, {}]", version_text(self.min), version_text(self.max));
        let refuse = |message: String| {
            self.count(|s| s.rejected_versions += 1);
            Err(ironic_error(406, &message))
        };
        if v.0 != 1 {
            return refuse(format!(
                "Mutually exclusive versions requested. Version {} requested but not supported by this service. \
                 The supported version range is: {range}.",
                version_text(v)
            ));
        }
        if v < self.min || v > self.max {
            return refuse(format!(
                "Version {} was requested but the minor version is not supported by this service. The supported \
                 version range is: {range}.",
                version_text(v)
            ));
        }
        Ok(v)
    }

    fn ironic(&self, req: &Request, iface: usize, r: &IronicRoute, base: &str) -> Response {
        let public = format!("{base}{}", INTERFACES[0].1);
        match r {
            IronicRoute::Root => return Response::new(200, JSON, self.root_doc(&public)),
            IronicRoute::V1 => return Response::new(200, JSON, self.v1_doc(&public)),
            _ => {}
        }
        self.count(|s| *s.by_interface.entry(INTERFACES[iface].0.to_string()).or_insert(0) += 1);
        {
            let mut countdown = lock(&self.expire_countdown);
            match countdown.as_mut() {
                Some(0) => {
                    *countdown = None;
                    self.expire_tokens();
                }
                Some(n) => *n -= 1,
                None => {}
            }
        }
        self.count(|s| match req.header(VERSION_HEADER) {
            Some(h) => s.last_microversion = Some(h.to_string()),
            None => s.requests_without_microversion += 1,
        });
        let token_ok = req.header("X-Auth-Token").is_some_and(|t| lock(&self.keystone).valid(t));
        if !token_ok {
            self.count(|s| s.rejected_tokens += 1);
            return Response::new(401, JSON, keystone_error_body(401, UNAUTHORIZED))
                .with_header("WWW-Authenticate", format!("Keystone uri=\"{base}/identity\""));
        }
        let version = match self.negotiate(req) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        let query = parse_form(&req.query);
        let method = req.method.as_str();
        let resp = match (r, method) {
            (IronicRoute::Nodes, "GET") => self.list_nodes(&query, false, version, &public),
            (IronicRoute::NodesDetail, "GET") => self.list_nodes(&query, true, version, &public),
            (IronicRoute::Node(id), "GET") => self.show_node(id, &query, version, &public),
            (IronicRoute::States(id), "GET") => self.states(id, version),
            (IronicRoute::Power(id), "PUT") => self.power(id, &req.body, version, &public, &req.path),
            (IronicRoute::Nodes | IronicRoute::NodesDetail | IronicRoute::Node(_) | IronicRoute::States(_), _) => {
                method_not_allowed("GET")
            }
            (IronicRoute::Power(_), _) => method_not_allowed("PUT"),
            _ => ironic_error(404, "The resource could not be found."),
        };
        resp.with_header(VERSION_HEADER, version_text(version))
    }

    fn root_doc(&self, public: &str) -> String {
        let v1 = self.version_object(public);
        json!({
            "name": "OpenStack Ironic API",
            "description": "Ironic is an OpenStack project which aims to provision baremetal machines.",
            "default_version": v1,
            "versions": [v1],
        })
        .to_string()
    }

    fn version_object(&self, public: &str) -> Value {
        json!({
            "id": "v1",
            "links": [{ "href": format!("{public}/v1/"), "rel": "self" }],
            "status": "CURRENT",
            "min_version": version_text(self.min),
            "version": version_text(self.max),
        })
    }

    fn v1_doc(&self, public: &str) -> String {
        json!({
            "id": "v1",
            "links": [{ "href": format!("{public}/v1/"), "rel": "self" }],
            "media_types": [{ "base": "application/json", "type": "application/vnd.openstack.ironic.v1+json" }],
            "nodes": [
                { "href": format!("{public}/v1/nodes/"), "rel": "self" },
                { "href": format!("{public}/nodes/"), "rel": "bookmark" },
            ],
            "version": self.version_object(public),
        })
        .to_string()
    }

    fn list_nodes(&self, query: &[(String, String)], detail_path: bool, version: (u32, u32), public: &str) -> Response {
        let detail = match last(query, "detail") {
            None => None,
            Some(v) => match parse_bool(v) {
                Some(b) => Some(b),
                None => return ironic_error(400, &format!("Invalid input for field/attribute detail. Value: '{v}'. Wrong type. Expected 'bool', got 'str'")),
            },
        };
        if detail.is_some() && version < (1, 43) {
            return not_acceptable();
        }
        let fields = match self.fields(query, version) {
            Ok(f) => f,
            Err(resp) => return resp,
        };
        let detailed = detail_path || detail == Some(true);
        if detailed && fields.is_some() {
            return ironic_error(400, "Can not specify ?detail=True and fields in the same request.");
        }
        let limit = match last(query, "limit") {
            None => self.page_size,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX).min(self.page_size),
                Ok(_) => return ironic_error(400, "Limit must be positive"),
                Err(_) => {
                    return ironic_error(
                        400,
                        &format!("Invalid input for field/attribute limit. Value: '{v}'. unable to convert to int"),
                    )
                }
            },
        };
        let mut filters: Vec<(&str, String)> = Vec::new();
        let maintenance = match last(query, "maintenance") {
            None => None,
            Some(v) => match parse_bool(v) {
                Some(b) => {
                    filters.push(("maintenance", b.to_string()));
                    Some(b)
                }
                None => return ironic_error(400, &format!("Invalid input for field/attribute maintenance. Value: '{v}'. Wrong type. Expected 'bool', got 'str'")),
            },
        };
        let associated = match last(query, "associated") {
            None => None,
            Some(v) => match parse_bool(v) {
                Some(b) => {
                    filters.push(("associated", b.to_string()));
                    Some(b)
                }
                None => return ironic_error(400, &format!("Invalid input for field/attribute associated. Value: '{v}'. Wrong type. Expected 'bool', got 'str'")),
            },
        };
        let provision_state = last(query, "provision_state");
        if let Some(p) = provision_state {
            if version < (1, 9) {
                return not_acceptable();
            }
            filters.push(("provision_state", p.to_string()));
        }

        let mut inv = lock(&self.inventory);
        inv.settle();
        let start = match last(query, "marker") {
            None => 0,
            Some(marker) => match inv.by_uuid(marker) {
                Some(i) => i + 1,
                None => return not_found(marker),
            },
        };
        let mut page = Vec::new();
        let mut last_uuid = None;
        for e in inv.entries.iter().skip(start) {
            if page.len() == limit {
                break;
            }
            let keep = maintenance.is_none_or(|m| e.node.maintenance == m)
                && associated.is_none_or(|a| e.instance_uuid.is_some() == a)
                && provision_state.is_none_or(|p| e.node.provision_state == p);
            if !keep {
                continue;
            }
            let node = if detailed {
                node_json(e, &inv.created_at, public, version)
            } else {
                let mut full = node_json(e, &inv.created_at, public, version);
                let wanted: Vec<&str> = match &fields {
                    Some(f) => f.iter().map(String::as_str).collect(),
                    None => vec!["uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance"],
                };
                if let Value::Object(map) = &mut full {
                    map.retain(|k, _| k == "links" || wanted.contains(&k.as_str()));
                }
                full
            };
            last_uuid = Some(e.node.uuid.clone());
            page.push(node);
        }
        let mut body = Map::new();
        let full = page.len() == limit;
        body.insert("nodes".into(), Value::Array(page));
        if let (true, Some(marker)) = (full, last_uuid) {
            let mut args = String::new();
            if let Some(d) = detail {
                args.push_str(&format!("detail={}&", if d { "True" } else { "False" }));
            }
            if let Some(f) = &fields {
                args.push_str(&format!("fields={}&", f.join(",")));
            }
            for (k, v) in &filters {
                let v: String = v
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                args.push_str(&format!("{k}={v}&"));
            }
            let resource = if detail_path { "nodes/detail" } else { "nodes" };
            body.insert("next".into(), format!("{public}/v1/{resource}?{args}limit={limit}&marker={marker}").into());
        }
        Response::new(200, JSON, Value::Object(body).to_string())
    }

    /// The `fields` parameter: field names, checked.
    fn fields(&self, query: &[(String, String)], version: (u32, u32)) -> Result<Option<Vec<String>>, Response> {
        let Some(text) = last(query, "fields") else { return Ok(None) };
        if version < (1, 8) {
            return Err(not_acceptable());
        }
        let fields: Vec<String> = text.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
        let invalid: Vec<&str> = fields.iter().map(String::as_str).filter(|f| !NODE_FIELDS.contains(f)).collect();
        if !invalid.is_empty() {
            return Err(ironic_error(400, &format!("Field(s) \"{}\" are not valid", invalid.join(", "))));
        }
        Ok(Some(fields))
    }

    fn show_node(&self, ident: &str, query: &[(String, String)], version: (u32, u32), public: &str) -> Response {
        let fields = match self.fields(query, version) {
            Ok(f) => f,
            Err(resp) => return resp,
        };
        let mut inv = lock(&self.inventory);
        inv.settle();
        let i = match inv.find(ident, version) {
            Ok(i) => i,
            Err(resp) => return resp,
        };
        let mut node = node_json(&inv.entries[i], &inv.created_at, public, version);
        if let (Some(fields), Value::Object(map)) = (&fields, &mut node) {
            map.retain(|k, _| k == "links" || fields.iter().any(|f| f == k));
        }
        Response::new(200, JSON, node.to_string())
    }

    fn states(&self, ident: &str, version: (u32, u32)) -> Response {
        let mut inv = lock(&self.inventory);
        inv.settle();
        let i = match inv.find(ident, version) {
            Ok(i) => i,
            Err(resp) => return resp,
        };
        let e = &inv.entries[i];
        let mut body = json!({
            "console_enabled": false,
            "last_error": null,
            "power_state": e.node.power_state,
            "provision_state": e.node.provision_state,
            "provision_updated_at": inv.created_at,
            "raid_config": {},
            "target_power_state": e.target_power_state,
            "target_provision_state": null,
            "target_raid_config": {},
        });
        if version >= (1, 75) {
            body["boot_mode"] = "uefi".into();
            body["secure_boot"] = false.into();
        }
        Response::new(200, JSON, body.to_string())
    }

    fn power(&self, ident: &str, body: &[u8], version: (u32, u32), public: &str, raw_path: &str) -> Response {
        let request: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return ironic_error(400, "Invalid request body: expected a JSON object"),
        };
        let Some(target) = request.get("target") else {
            return ironic_error(400, "Missing argument: \"target\"");
        };
        let Some(target) = target.as_str() else {
            return ironic_error(400, "Invalid input for field/attribute target. Value: not a string.");
        };
        let timeout = request.get("timeout").filter(|t| !t.is_null());
        let soft = matches!(target, "soft power off" | "soft rebooting");
        if (soft || timeout.is_some()) && version < (1, 27) {
            return not_acceptable();
        }
        if let Some(t) = timeout {
            if t.as_i64().is_none_or(|n| n <= 0) {
                return ironic_error(400, &format!("Invalid timeout value {t}. Timeout must be a positive integer."));
            }
        }
        let mut inv = lock(&self.inventory);
        inv.settle();
        let i = match inv.find(ident, version) {
            Ok(i) => i,
            Err(resp) => return resp,
        };
        let power_delay = self.power_delay;
        let e = &mut inv.entries[i];
        if !matches!(target, "power on" | "power off" | "rebooting" | "soft rebooting" | "soft power off") {
            return ironic_error(
                400,
                &format!(
                    "The requested action \"{target}\" can not be performed on node \"{ident}\" while it is in state \"{}\".",
                    e.node.power_state.as_deref().unwrap_or("None")
                ),
            );
        }
        if matches!(e.node.provision_state.as_str(), "cleaning" | "clean wait") {
            return ironic_error(
                400,
                &format!(
                    "The requested action \"{target}\" can not be performed on node \"{ident}\" while it is in state \"{}\".",
                    e.node.provision_state
                ),
            );
        }
        // The conductor takes an exclusive lock, held while a change is in
        // progress.
        if e.locks > 0 || e.pending.is_some() {
            e.locks = e.locks.saturating_sub(1);
            return ironic_error(
                409,
                &format!(
                    "Node {} is locked by host {CONDUCTOR}, please retry after the current operation is completed.",
                    e.node.uuid
                ),
            );
        }
        let state = final_state(target);
        let reboot = matches!(target, "rebooting" | "soft rebooting");
        if reboot || e.node.power_state.as_deref() != Some(state) {
            e.target_power_state = Some(state.to_string());
            e.pending = Some((state, Instant::now().checked_add(power_delay).unwrap_or_else(Instant::now)));
            e.updated_at = now_rfc3339();
        }
        if power_delay.is_zero() {
            inv.settle();
        }
        let states_path = raw_path.strip_suffix("/power").unwrap_or(raw_path);
        let location = match states_path.find("/v1/") {
            Some(at) => format!("{public}{}", &states_path[at..]),
            None => format!("{public}/v1/nodes/{ident}/states"),
        };
        Response::new(202, JSON, "").with_header("Location", location)
    }
}

fn keystone_response(status: u16, message: &str) -> Response {
    Response::new(status, JSON, keystone_error_body(status, message))
}

fn keystone_v3_doc(base: &str) -> String {
    json!({ "version": {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{ "rel": "self", "href": format!("{base}/identity/v3/") }],
        "media-types": [{ "base": "application/json", "type": "application/vnd.openstack.identity-v3+json" }],
    }})
    .to_string()
}

/// A node as `GET /v1/nodes/{id}` (and `detail=True`) shows it.
fn node_json(e: &Entry, created_at: &str, public: &str, version: (u32, u32)) -> Value {
    let n = &e.node;
    let mut extra = Map::new();
    if let Some(id) = &n.compute_node_id {
        extra.insert("compute_node_id".into(), id.clone().into());
    }
    let mut node = json!({
        "uuid": n.uuid,
        "name": n.name,
        "power_state": n.power_state,
        "target_power_state": e.target_power_state,
        "provision_state": n.provision_state,
        "target_provision_state": null,
        "maintenance": n.maintenance,
        "maintenance_reason": if n.maintenance { Value::from("Set by an operator") } else { Value::Null },
        "fault": null,
        "instance_uuid": e.instance_uuid,
        "instance_info": {},
        "driver": "ipmi",
        "driver_info": { "ipmi_address": "192.0.2.10", "ipmi_username": "admin", "ipmi_password": "******" },
        "extra": extra,
        "properties": { "cpus": 32, "memory_mb": 131072, "local_gb": 800, "cpu_arch": "x86_64" },
        "last_error": null,
        "console_enabled": false,
        "reservation": if e.pending.is_some() { Value::from(CONDUCTOR) } else { Value::Null },
        "resource_class": "baremetal",
        "created_at": created_at,
        "updated_at": e.updated_at,
        "provision_updated_at": created_at,
        "links": [
            { "href": format!("{public}/v1/nodes/{}", n.uuid), "rel": "self" },
            { "href": format!("{public}/nodes/{}", n.uuid), "rel": "bookmark" },
        ],
    });
    if version >= (1, 46) {
        node["conductor_group"] = "".into();
    }
    if version >= (1, 49) {
        node["conductor"] = CONDUCTOR.into();
    }
    node
}

impl Service for IronicService {
    fn handle(&self, req: Request, conn: &ConnInfo<'_>) -> Reply {
        let route = route(&req.path);
        self.count(|s| {
            s.requests += 1;
            *s.by_endpoint.entry(endpoint_key(&req.method, &route, &req.path)).or_insert(0) += 1;
        });
        let base = format!("http://127.0.0.1:{}", conn.port);
        let mut resp = self.respond(&req, &route, &base);
        resp.headers.push(("Date".into(), http_date(unix_now(0))));
        resp.headers.push(("X-OpenStack-Request-Id".into(), format!("req-{}", uuid_for(crate::util::random_u64(), 0))));
        Reply::Send(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/identity/v3/auth/tokens"), Route::Tokens);
        assert_eq!(route("/identity/v3/"), Route::KeystoneV3);
        assert_eq!(route("/identity/v2.0"), Route::KeystoneOther);
        assert_eq!(route("/identityx"), Route::Outside);
        assert_eq!(route("/baremetal"), Route::Ironic(0, IronicRoute::Root));
        assert_eq!(route("/baremetal/v1/"), Route::Ironic(0, IronicRoute::V1));
        assert_eq!(route("/baremetal-internal/v1/nodes"), Route::Ironic(1, IronicRoute::Nodes));
        assert_eq!(route("/baremetal-admin/v1/nodes/detail"), Route::Ironic(2, IronicRoute::NodesDetail));
        assert_eq!(route("/baremetal/v1/nodes/bm%2D1"), Route::Ironic(0, IronicRoute::Node("bm-1".into())));
        assert_eq!(route("/baremetal/v1/nodes/x/states"), Route::Ironic(0, IronicRoute::States("x".into())));
        assert_eq!(route("/baremetal/v1/nodes/x/states/power"), Route::Ironic(0, IronicRoute::Power("x".into())));
        assert_eq!(route("/baremetal/v1/nodes//states"), Route::Ironic(0, IronicRoute::Other));
        assert_eq!(route("/baremetal/v1/ports"), Route::Ironic(0, IronicRoute::Other));
        assert_eq!(route("/baremetalx/v1"), Route::Outside);
    }

    #[test]
    fn endpoint_keys() {
        let k = |m, p: &str| endpoint_key(m, &route(p), p);
        assert_eq!(k("POST", "/identity/v3/auth/tokens"), "POST /v3/auth/tokens");
        assert_eq!(k("GET", "/baremetal-internal/v1/nodes/abc"), "GET /v1/nodes/{id}");
        assert_eq!(k("PUT", "/baremetal/v1/nodes/abc/states/power"), "PUT /v1/nodes/{id}/states/power");
        assert_eq!(k("GET", "/elsewhere"), "GET /elsewhere");
    }

    #[test]
    fn error_bodies_are_double_encoded() {
        let r = ironic_error(404, "Node x could not be found.");
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Node x could not be found.\", \"debuginfo\": null}"}"#
        );
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn service() -> IronicService {
        IronicService::new(IronicSimConfig { page_size: 3, ..Default::default() }).unwrap()
    }

    fn token(s: &IronicService) -> String {
        let t = lock(&s.keystone)
            .issue(
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "watcher", "domain": {"id": "default"}, "password": "watcher-pass"}}}}})
                    .to_string()
                    .as_bytes(),
                "http://127.0.0.1:1",
            )
            .unwrap();
        t.token
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn any_request_gets_an_answer(
            method in prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD"]),
            prefix in prop::sample::select(vec!["/baremetal", "/baremetal-internal", "/identity", "/x", ""]),
            path in "(/(v1|v3|nodes|detail|states|power|auth|tokens|bm-0001|%[0-9a-fA-F]{0,2}|[^/?#]{0,6})){0,6}/?",
            query in "((limit|marker|detail|fields|maintenance|associated|provision_state)=[^&]{0,8}&?){0,4}",
            version in prop::option::of("(latest|1\\.[0-9]{1,4}|[0-9.]{0,6}|.{0,6})"),
            with_token in any::<bool>(),
            body in prop::collection::vec(any::<u8>(), 0..64),
            json_body in prop::option::of("\\{\"(target|auth|timeout)\": (\"(power on|power off|rebooting|x)\"|[0-9-]{1,4}|null|\\{\\})\\}"),
        ) {
            let s = service();
            let mut headers = Vec::new();
            if let Some(v) = version {
                headers.push((VERSION_HEADER.to_string(), v));
            }
            if with_token {
                headers.push(("X-Auth-Token".to_string(), token(&s)));
            }
            let raw_path = format!("{prefix}{path}");
            let req = Request {
                method: method.to_string(),
                path: raw_path.clone(),
                query: query.clone(),
                target: format!("{raw_path}?{query}"),
                minor_version: 1,
                headers,
                body: json_body.map(String::into_bytes).unwrap_or(body),
            };
            let resp = s.respond(&req, &route(&raw_path), "http://127.0.0.1:1");
            prop_assert!((200..500).contains(&resp.status), "{} {}", resp.status, String::from_utf8_lossy(&resp.body));
        }
    }
}
