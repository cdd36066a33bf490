//! The simulated Keystone and Nova on one port: routing, token checks,
//! microversion negotiation, the hypervisor endpoints with paging and the
//! fields each microversion has, and injected faults.

use std::sync::Mutex;

use serde_json::{json, Map, Value};

use super::model::{NovaSimConfig, NovaStats, SimHypervisor};
use crate::fault::{self, FaultBodies, FaultRule, FaultRules};
use crate::http::{Request, Response};
use crate::keystone::{self, Keystone};
use crate::openstack::{bool_from_string, parse_version, uuid_for, version_text};
use crate::server::{lock, ConnInfo, Reply, Service};
use crate::util::{http_date, json_str, last, parse_form, percent_decode, unix_now};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// The catalog interfaces and the path prefix each is served under; the
/// catalog URL is the prefix + `/v2.1`.
/// Nova's broken answers.
const FAULT_BODIES: FaultBodies =
    FaultBodies { content_type: JSON, short_body: b"{\"hypervisors\": [{\"id\": 1}]}", huge_prefix: "{\"hyp" };

pub(crate) const INTERFACES: [(&str, &str); 3] =
    [("public", "/compute"), ("internal", "/compute-internal"), ("admin", "/compute-admin")];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Outside,
    Tokens,
    KeystoneOther,
    /// A compute route and the interface (index into [`INTERFACES`]).
    Nova(usize, NovaRoute),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NovaRoute {
    Root,
    Detail,
    Index,
    Show(String),
    Other,
}

fn route(raw_path: &str) -> Route {
    if raw_path == "/identity/v3/auth/tokens" || raw_path == "/identity/v3/auth/tokens/" {
        return Route::Tokens;
    }
    if raw_path == "/identity" || raw_path.starts_with("/identity/") {
        return Route::KeystoneOther;
    }
    for (i, (_, prefix)) in INTERFACES.iter().enumerate() {
        let Some(rest) = raw_path.strip_prefix(prefix) else { continue };
        if !(rest.is_empty() || rest.starts_with('/')) {
            continue;
        }
        let rest = rest.trim_end_matches('/');
        let nova = match rest {
            "" | "/v2.1" => NovaRoute::Root,
            "/v2.1/os-hypervisors" => NovaRoute::Index,
            "/v2.1/os-hypervisors/detail" => NovaRoute::Detail,
            other => match other.strip_prefix("/v2.1/os-hypervisors/") {
                Some(id) if !id.is_empty() && !id.contains('/') => NovaRoute::Show(percent_decode(id)),
                _ => NovaRoute::Other,
            },
        };
        return Route::Nova(i, nova);
    }
    Route::Outside
}

fn endpoint_key(method: &str, route: &Route, path: &str) -> String {
    let name = match route {
        Route::Tokens => "/v3/auth/tokens",
        Route::Nova(_, NovaRoute::Root) => "/",
        Route::Nova(_, NovaRoute::Detail) => "/os-hypervisors/detail",
        Route::Nova(_, NovaRoute::Index) => "/os-hypervisors",
        Route::Nova(_, NovaRoute::Show(_)) => "/os-hypervisors/{id}",
        _ => path,
    };
    format!("{method} {name}")
}

/// Nova's fault body: `{"itemNotFound": {"code": 404, "message": ...}}`.
pub(crate) fn nova_error(status: u16, message: &str) -> Response {
    let name = match status {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    };
    Response::new(status, JSON, format!("{{\"{name}\": {{\"code\": {status}, \"message\": {}}}}}", json_str(message)))
}

fn is_uuid_like(s: &str) -> bool {
    let plain: String = s.chars().filter(|c| *c != '-').collect();
    plain.len() == 32 && plain.bytes().all(|b| b.is_ascii_hexdigit()) && (s.len() == 32 || s.len() == 36)
}

pub(crate) struct NovaService {
    keystone: Mutex<Keystone>,
    hypervisors: Mutex<Vec<SimHypervisor>>,
    page_size: usize,
    min: (u32, u32),
    max: (u32, u32),
    faults: FaultRules,
    stats: Mutex<NovaStats>,
}

impl NovaService {
    pub fn new(config: NovaSimConfig) -> std::io::Result<NovaService> {
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad {what} version"));
        let min = parse_version(&config.min_version).ok_or_else(|| bad("minimum"))?;
        let max = parse_version(&config.max_version).ok_or_else(|| bad("maximum"))?;
        if min > max {
            return Err(bad("range of"));
        }
        let compute: Vec<(String, String)> =
            INTERFACES.iter().map(|(i, p)| ((*i).to_owned(), format!("{p}/v2.1"))).collect();
        let keystone = Keystone::new(config.users, Vec::new(), config.token_ttl, config.region)
            .with_catalog(vec![keystone::catalog_identity(), keystone::service("compute", "nova", compute)]);
        Ok(NovaService {
            keystone: Mutex::new(keystone),
            hypervisors: Mutex::new(config.hypervisors),
            page_size: config.page_size.max(1),
            min,
            max,
            faults: FaultRules::default(),
            stats: Mutex::new(NovaStats::default()),
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

    pub fn add_fault(&self, rule: FaultRule) {
        self.faults.add(rule);
    }

    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    pub fn hypervisors(&self) -> Vec<SimHypervisor> {
        lock(&self.hypervisors).clone()
    }

    pub fn set_hypervisors(&self, hypervisors: Vec<SimHypervisor>) {
        *lock(&self.hypervisors) = hypervisors;
    }

    pub fn stats(&self) -> NovaStats {
        lock(&self.stats).clone()
    }

    pub fn reset_stats(&self) {
        *lock(&self.stats) = NovaStats::default();
    }

    fn count(&self, f: impl FnOnce(&mut NovaStats)) {
        f(&mut lock(&self.stats));
    }

    fn respond(&self, req: &Request, route: &Route, base: &str) -> Response {
        match route {
            Route::Outside => Response::new(404, TEXT, "404 Not Found\n"),
            Route::KeystoneOther => keystone::not_found(),
            Route::Tokens => {
                if req.method != "POST" {
                    return keystone::method_not_allowed();
                }
                let issued = lock(&self.keystone).issue(&req.body, base);
                self.count(|s| match issued {
                    Ok(_) => s.tokens_issued += 1,
                    Err(_) => s.rejected_auth += 1,
                });
                keystone::token_response(&issued)
            }
            Route::Nova(iface, r) => self.nova(req, *iface, r, base),
        }
    }

    /// The microversion a request asks for: a header, or 2.1 without one.
    fn negotiate(&self, req: &Request) -> Result<(u32, u32), Response> {
        let header = req
            .header("OpenStack-API-Version")
            .and_then(|v| {
                let (service, version) = v.trim().split_once(' ')?;
                service.eq_ignore_ascii_case("compute").then(|| version.trim().to_string())
            })
            .or_else(|| req.header("X-OpenStack-Nova-API-Version").map(str::to_string));
        let Some(text) = header else { return Ok((2, 1)) };
        if text.trim().eq_ignore_ascii_case("latest") {
            return Ok(self.max);
        }
        let Some(v) = parse_version(&text) else {
            return Err(nova_error(
                400,
                &format!(
                    "API Version String {} is of invalid format. Must be of format MajorNum.MinorNum.",
                    text.trim()
                ),
            ));
        };
        if v < self.min || v > self.max {
            self.count(|s| s.rejected_versions += 1);
            return Err(nova_error(
                406,
                &format!(
                    "Version {} is not supported by the API. Minimum is {} and maximum is {}.",
                    version_text(v),
                    version_text(self.min),
                    version_text(self.max)
                ),
            ));
        }
        Ok(v)
    }

    fn nova(&self, req: &Request, iface: usize, r: &NovaRoute, base: &str) -> Response {
        let public = format!("{base}{}/v2.1", INTERFACES[0].1);
        if *r == NovaRoute::Root {
            let doc = json!({"version": {"id": "v2.1", "status": "CURRENT", "version": version_text(self.max),
                "min_version": version_text(self.min), "links": [{"rel": "self", "href": format!("{public}/")}]}});
            return Response::new(200, JSON, doc.to_string());
        }
        self.count(|s| *s.by_interface.entry(INTERFACES[iface].0.to_string()).or_insert(0) += 1);
        let token = req.header("X-Auth-Token").unwrap_or("");
        if !lock(&self.keystone).valid(token) {
            self.count(|s| s.rejected_tokens += 1);
            return keystone::bad_token(base);
        }
        let v = match self.negotiate(req) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        self.count(|s| s.last_microversion = Some(version_text(v)));
        let resp = if req.method != "GET" && req.method != "HEAD" {
            nova_error(405, "The method specified is not allowed for this resource.")
        } else {
            let params = parse_form(&req.query);
            match r {
                NovaRoute::Detail => self.list(&params, true, v, &public),
                NovaRoute::Index => self.list(&params, false, v, &public),
                NovaRoute::Show(id) => self.show(id, &params, v),
                _ => nova_error(404, "The resource could not be found."),
            }
        };
        let version = version_text(v);
        resp.with_header("OpenStack-API-Version", format!("compute {version}"))
            .with_header("X-OpenStack-Nova-API-Version", version)
            .with_header("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
    }

    fn with_servers(&self, params: &[(String, String)], v: (u32, u32)) -> Result<bool, Response> {
        if v < (2, 53) {
            return Ok(false);
        }
        match last(params, "with_servers") {
            None => Ok(false),
            Some(text) => bool_from_string(text).ok_or_else(|| {
                nova_error(400, &format!("Invalid input for query parameters with_servers. Value: {text}."))
            }),
        }
    }

    fn list(&self, params: &[(String, String)], detail: bool, v: (u32, u32), public: &str) -> Response {
        let with_servers = match self.with_servers(params, v) {
            Ok(w) => w,
            Err(resp) => return resp,
        };
        let pattern = (v >= (2, 53)).then(|| last(params, "hypervisor_hostname_pattern")).flatten();
        let paged = v >= (2, 33);
        let limit_param = if paged { last(params, "limit") } else { None };
        let marker = if paged { last(params, "marker") } else { None };
        if pattern.is_some() && (limit_param.is_some() || marker.is_some()) {
            return nova_error(
                400,
                "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.",
            );
        }
        let limit = match limit_param {
            None => self.page_size,
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) => n.min(self.page_size),
                Err(_) => return nova_error(400, &format!("Invalid input for query parameters limit. Value: {text}.")),
            },
        };
        self.count(|s| {
            s.pages += 1;
            s.with_servers_requests += usize::from(with_servers);
            s.limit_requests += usize::from(limit_param.is_some());
        });
        let all = lock(&self.hypervisors);
        let id_of = |h: &SimHypervisor| if v >= (2, 53) { h.uuid.clone() } else { h.int_id.to_string() };
        let items: Vec<&SimHypervisor> = if let Some(pattern) = pattern {
            let found: Vec<_> = all.iter().filter(|h| h.hostname.contains(pattern)).collect();
            if found.is_empty() {
                return nova_error(404, &format!("No hypervisor matching '{pattern}' could be found."));
            }
            found
        } else {
            let start = match marker {
                None => 0,
                Some(m) => match all.iter().position(|h| id_of(h) == m) {
                    Some(i) => i + 1,
                    None => return nova_error(400, &format!("marker [{m}] not found")),
                },
            };
            let take = if paged { limit } else { usize::MAX };
            all.iter().skip(start).take(take).collect()
        };
        let list: Vec<Value> = items.iter().map(|h| hypervisor_json(h, detail, with_servers, v)).collect();
        let mut body = Map::new();
        body.insert("hypervisors".into(), Value::Array(list));
        if paged && pattern.is_none() && limit > 0 && items.len() == limit {
            if let Some(last_item) = items.last() {
                let mut next: Vec<(String, String)> = params.iter().filter(|(k, _)| k != "marker").cloned().collect();
                next.push(("marker".into(), id_of(last_item)));
                next.sort();
                let query: Vec<String> = next.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let path = if detail { "os-hypervisors/detail" } else { "os-hypervisors" };
                body.insert(
                    "hypervisors_links".into(),
                    json!([{"rel": "next", "href": format!("{public}/{path}?{}", query.join("&"))}]),
                );
            }
        }
        Response::new(200, JSON, Value::Object(body).to_string())
    }

    fn show(&self, id: &str, params: &[(String, String)], v: (u32, u32)) -> Response {
        let with_servers = match self.with_servers(params, v) {
            Ok(w) => w,
            Err(resp) => return resp,
        };
        let not_found = || nova_error(404, &format!("Hypervisor with ID '{id}' could not be found."));
        let all = lock(&self.hypervisors);
        let found = if v >= (2, 53) {
            if !is_uuid_like(id) {
                return nova_error(400, &format!("Invalid uuid {id}"));
            }
            all.iter().find(|h| h.uuid == id)
        } else {
            let Ok(n) = id.parse::<u64>() else { return not_found() };
            all.iter().find(|h| h.int_id == n)
        };
        match found {
            Some(h) => {
                Response::new(200, JSON, json!({ "hypervisor": hypervisor_json(h, true, with_servers, v) }).to_string())
            }
            None => not_found(),
        }
    }
}

/// A hypervisor as Nova shows it at microversion `v`.
fn hypervisor_json(h: &SimHypervisor, detail: bool, with_servers: bool, v: (u32, u32)) -> Value {
    let uuid_ids = v >= (2, 53);
    let mut o = Map::new();
    o.insert("id".into(), if uuid_ids { h.uuid.clone().into() } else { h.int_id.into() });
    o.insert("hypervisor_hostname".into(), h.hostname.clone().into());
    o.insert("state".into(), h.state.clone().into());
    o.insert("status".into(), h.status.clone().into());
    if detail {
        o.insert("hypervisor_type".into(), h.hypervisor_type.clone().into());
        o.insert("hypervisor_version".into(), 8_002_000.into());
        o.insert("host_ip".into(), format!("10.0.{}.{}", h.int_id / 250 % 250, h.int_id % 250 + 1).into());
        o.insert(
            "service".into(),
            json!({
                "id": if uuid_ids { Value::from(uuid_for(0x7376_6373, h.int_id)) } else { Value::from(h.int_id + 100) },
                "host": h.service_host,
                "disabled_reason": if h.status == "disabled" { Value::from("maintenance") } else { Value::Null },
            }),
        );
    }
    if detail && v <= (2, 87) {
        let vms = h.running_vms() as u64;
        for (key, value) in [
            ("vcpus", 64),
            ("memory_mb", 262_144),
            ("local_gb", 1800),
            ("vcpus_used", vms * 2),
            ("memory_mb_used", 512 + vms * 4096),
            ("local_gb_used", vms * 20),
            ("free_ram_mb", 262_144 - 512 - vms * 4096),
            ("free_disk_gb", 1800 - vms * 20),
            ("current_workload", 0),
            ("running_vms", vms),
            ("disk_available_least", 1700),
        ] {
            o.insert(key.into(), value.into());
        }
        let cpu = json!({"arch": "x86_64", "model": "Cascadelake-Server", "vendor": "Intel",
            "topology": {"cells": 2, "sockets": 2, "cores": 16, "threads": 2}, "features": ["avx512f", "vmx", "ssse3"]});
        o.insert("cpu_info".into(), if v <= (2, 27) { cpu.to_string().into() } else { cpu });
    }
    if detail && v >= (2, 88) {
        o.insert("uptime".into(), Value::Null);
    }
    if with_servers && (!h.servers.is_empty() || v >= (2, 75)) {
        let servers: Vec<Value> = h.servers.iter().map(|(name, uuid)| json!({"name": name, "uuid": uuid})).collect();
        o.insert("servers".into(), Value::Array(servers));
    }
    Value::Object(o)
}

impl Service for NovaService {
    fn handle(&self, req: Request, conn: &ConnInfo<'_>) -> Reply {
        let route = route(&req.path);
        self.count(|s| {
            s.requests += 1;
            *s.by_endpoint.entry(endpoint_key(&req.method, &route, &req.path)).or_insert(0) += 1;
        });
        let base = format!("http://127.0.0.1:{}", conn.port);
        let date = http_date(unix_now(0));
        let finish = |mut resp: Response| {
            resp.headers.push(("Date".into(), date.clone()));
            resp
        };
        let fault = self.faults.take(|rule| req.path.contains(&rule.path_contains));
        fault::reply(fault, conn, &FAULT_BODIES, || finish(self.respond(&req, &route, &base)), finish)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/identity/v3/auth/tokens"), Route::Tokens);
        assert_eq!(route("/identity/v3"), Route::KeystoneOther);
        assert_eq!(route("/compute/v2.1/"), Route::Nova(0, NovaRoute::Root));
        assert_eq!(route("/compute-internal/v2.1/os-hypervisors/detail"), Route::Nova(1, NovaRoute::Detail));
        assert_eq!(route("/compute-admin/v2.1/os-hypervisors"), Route::Nova(2, NovaRoute::Index));
        assert_eq!(route("/compute/v2.1/os-hypervisors/abc"), Route::Nova(0, NovaRoute::Show("abc".into())));
        assert_eq!(route("/compute/v2.1/servers"), Route::Nova(0, NovaRoute::Other));
        assert_eq!(route("/computex"), Route::Outside);
    }

    #[test]
    fn fields_follow_the_microversion() {
        let h = SimHypervisor::new(3, "c3.maas", 2);
        let old = hypervisor_json(&h, true, false, (2, 1));
        assert_eq!(old["id"], 3);
        assert_eq!(old["running_vms"], 2);
        assert!(old["cpu_info"].is_string());
        let mid = hypervisor_json(&h, true, true, (2, 56));
        assert_eq!(mid["id"], h.uuid.as_str());
        assert!(mid["cpu_info"].is_object());
        assert_eq!(mid["servers"].as_array().unwrap().len(), 2);
        let new = hypervisor_json(&h, true, false, (2, 88));
        assert!(new.get("running_vms").is_none() && new.get("vcpus").is_none());
        let empty = SimHypervisor::new(4, "c4.maas", 0);
        assert!(hypervisor_json(&empty, true, true, (2, 74)).get("servers").is_none());
        assert_eq!(hypervisor_json(&empty, true, true, (2, 75))["servers"], json!([]));
        assert!(hypervisor_json(&h, false, false, (2, 56)).get("service").is_none());
    }
}
