//! The simulated Keystone and Ironic on one port: the service's state and
//! the knobs a test turns, dispatch of each request to Keystone or to an
//! Ironic endpoint, token checks and microversion negotiation.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use super::errors::{ironic_error, method_not_allowed, JSON};
use super::inventory::Inventory;
use super::model::{IronicSimConfig, IronicStats, SimNode};
use super::routes::{endpoint_key, route, IronicRoute, Route, INTERFACES};
use super::{nodes, power};
use crate::http::{Request, Response};
use crate::keystone::{self, Keystone};
use crate::openstack::{parse_version, uuid_for, version_text};
use crate::server::{lock, ConnInfo, Reply, Service};
use crate::util::{http_date, parse_form, random_u64, unix_now};

const TEXT: &str = "text/plain; charset=utf-8";

const MIN_HEADER: &str = "X-OpenStack-Ironic-API-Minimum-Version";
const MAX_HEADER: &str = "X-OpenStack-Ironic-API-Maximum-Version";
const VERSION_HEADER: &str = "X-OpenStack-Ironic-API-Version";

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
        let baremetal = keystone::service(
            "baremetal",
            "ironic",
            INTERFACES.iter().map(|(i, p)| ((*i).to_owned(), (*p).to_owned())),
        );
        Ok(IronicService {
            page_size: config.page_size.max(1),
            min,
            max,
            // A century stands for "never" and keeps `Instant` arithmetic safe.
            power_delay: config.power_delay.min(Duration::from_secs(100 * 365 * 86_400)),
            keystone: Mutex::new(
                Keystone::new(config.users, config.app_credentials, config.token_ttl, config.region)
                    .with_catalog(vec![baremetal, keystone::catalog_identity()]),
            ),
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
        let i = inv.by_uuid_or_name(ident)?;
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
        let Some(i) = inv.by_uuid_or_name(ident) else { return false };
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
            Route::KeystoneOther => keystone::not_found(),
            Route::KeystoneV3 => {
                if req.method != "GET" && req.method != "HEAD" {
                    return keystone::method_not_allowed();
                }
                Response::new(200, JSON, keystone::v3_doc(base))
            }
            Route::Tokens => {
                if req.method != "POST" {
                    return keystone::method_not_allowed();
                }
                let issued = lock(&self.keystone).issue(&req.body, base);
                let resp = keystone::token_response(&issued);
                match issued {
                    Ok(_) => {
                        self.count(|s| s.tokens_issued += 1);
                        resp.with_header("Vary", "X-Auth-Token")
                    }
                    Err(e) => {
                        self.count(|s| s.rejected_auth += 1);
                        if e.status == 401 {
                            resp.with_header("WWW-Authenticate", keystone::www_authenticate(base))
                        } else {
                            resp
                        }
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
            return keystone::bad_token(base);
        }
        let version = match self.negotiate(req) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        let query = parse_form(&req.query);
        let method = req.method.as_str();
        let resp = match (r, method) {
            (IronicRoute::Nodes, "GET") => {
                nodes::list(&self.inventory, self.page_size, &query, false, version, &public)
            }
            (IronicRoute::NodesDetail, "GET") => {
                nodes::list(&self.inventory, self.page_size, &query, true, version, &public)
            }
            (IronicRoute::Node(id), "GET") => nodes::show(&self.inventory, id, &query, version, &public),
            (IronicRoute::States(id), "GET") => nodes::states(&self.inventory, id, version),
            (IronicRoute::Power(id), "PUT") => {
                power::set_power(&self.inventory, self.power_delay, id, &req.body, version, &public, &req.path)
            }
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
        resp.headers.push(("X-OpenStack-Request-Id".into(), format!("req-{}", uuid_for(random_u64(), 0))));
        Reply::Send(resp)
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
