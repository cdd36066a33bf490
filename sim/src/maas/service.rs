//! The simulated MAAS region: its state and the knobs a test turns,
//! authentication, the answers of each endpoint (machines and their power
//! semantics included), injected faults, and statistics.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::inventory::{Inventory, Pending};
use super::json;
use super::model::*;
use super::oauth::{self, AuthInput, AuthResult, Credentials, NonceStore};
use super::routes::{endpoint_key, RequestCtx, Route};
use crate::fault::{self, FaultBodies, FaultRule, FaultRules};
use crate::http::{nginx_page, Request, Response};
use crate::server::{lock, ConnInfo, Reply, Service};
use crate::util::{http_date, json_str, unix_now};

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// MAAS's broken answers.
const FAULT_BODIES: FaultBodies = FaultBodies {
    content_type: JSON,
    short_body: b"[{\"system_id\": \"abcdef\"}]",
    huge_prefix: "[{\"system_id\": \"",
};

/// The state and behaviour of one simulated MAAS.
pub(crate) struct MaasService {
    users: Vec<SimUser>,
    version: String,
    redirect_to_https: bool,
    not_maas: bool,
    clock_offset_secs: i64,
    power_query_delay: Duration,
    power_change_delay: Duration,
    max_concurrent_power_queries: Option<usize>,
    inventory: Mutex<Inventory>,
    nonces: Mutex<NonceStore>,
    faults: FaultRules,
    stats: Mutex<SimStats>,
    power_queries_in_flight: AtomicUsize,
}

/// Who is asking.
enum Caller {
    Anonymous,
    User(usize),
}

impl MaasService {
    pub fn new(config: MaasSimConfig) -> MaasService {
        MaasService {
            users: config.users,
            version: config.version,
            redirect_to_https: config.redirect_to_https,
            not_maas: config.not_maas,
            clock_offset_secs: config.clock_offset_secs,
            power_query_delay: config.power_query_delay,
            power_change_delay: config.power_change_delay,
            max_concurrent_power_queries: config.max_concurrent_power_queries,
            inventory: Mutex::new(Inventory::new(config.machines)),
            nonces: Mutex::new(NonceStore::default()),
            faults: FaultRules::default(),
            stats: Mutex::new(SimStats::default()),
            power_queries_in_flight: AtomicUsize::new(0),
        }
    }

    pub fn users(&self) -> &[SimUser] {
        &self.users
    }

    pub fn add_fault(&self, rule: FaultRule) {
        self.faults.add(rule);
    }

    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    pub fn set_bmc_failure(&self, system_id: &str, failure: Option<BmcFailure>) {
        let mut inv = lock(&self.inventory);
        match failure {
            Some(f) => inv.bmc.insert(system_id.to_string(), f),
            None => inv.bmc.remove(system_id),
        };
    }

    pub fn set_power_state(&self, system_id: &str, state: PowerState) -> bool {
        let mut inv = lock(&self.inventory);
        inv.settle();
        let Some(&i) = inv.by_id.get(system_id) else { return false };
        inv.pending.retain(|p| p.index != i);
        inv.set_power(i, state);
        true
    }

    pub fn machine(&self, system_id: &str) -> Option<SimMachine> {
        let mut inv = lock(&self.inventory);
        inv.settle();
        let i = *inv.by_id.get(system_id)?;
        Some(inv.entries[i].machine.clone())
    }

    pub fn machines(&self) -> Vec<SimMachine> {
        let mut inv = lock(&self.inventory);
        inv.settle();
        inv.entries.iter().map(|e| e.machine.clone()).collect()
    }

    pub fn stats(&self) -> SimStats {
        lock(&self.stats).clone()
    }

    pub fn reset_stats(&self) {
        *lock(&self.stats) = SimStats::default();
    }

    fn now(&self) -> i64 {
        unix_now(self.clock_offset_secs)
    }

    fn authenticate(
        &self,
        req: &Request,
        query: &[(String, String)],
        form: &[(String, String)],
        urlencoded: bool,
    ) -> Result<Caller, Response> {
        let creds: Vec<Credentials<'_>> = self
            .users
            .iter()
            .map(|u| Credentials {
                consumer_key: &u.consumer_key,
                token_key: &u.token_key,
                token_secret: &u.token_secret,
            })
            .collect();
        let input = AuthInput { header: req.header("authorization"), query, form, form_urlencoded: urlencoded };
        let result = oauth::authenticate(&input, &creds, &mut lock(&self.nonces), self.now());
        match result {
            AuthResult::Anonymous => Ok(Caller::Anonymous),
            AuthResult::User(i) => {
                if self.users[i].active {
                    Ok(Caller::User(i))
                } else {
                    Err(Response::new(403, TEXT, "User is not allowed access to this API."))
                }
            }
            AuthResult::Unauthorized(message) => {
                lock(&self.stats).rejected_auth += 1;
                Err(Response::new(401, HTML, message).with_header("WWW-Authenticate", "OAuth realm=\"OAuth\""))
            }
            AuthResult::BadRequest(message) => {
                lock(&self.stats).rejected_auth += 1;
                Err(Response::new(400, TEXT, message))
            }
        }
    }

    /// The answer to a request, before faults.
    fn respond(&self, req: &Request, ctx: &RequestCtx, conn: &ConnInfo<'_>) -> Response {
        if self.not_maas {
            return Response::new(
                200,
                "text/html",
                "<html><head><title>Welcome</title></head><body><h1>It works!</h1><p>This is a web server.</p></body></html>\n",
            );
        }
        if self.redirect_to_https && !req.path.starts_with("/MAAS/api/2.0/machines") {
            let host = req.header("host").unwrap_or("localhost");
            let host = match host.rsplit_once(':') {
                Some((h, port))
                    if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(']') =>
                {
                    h
                }
                _ => host,
            };
            return Response::new(301, "text/html", nginx_page(301))
                .with_header("Location", format!("https://{}:5443{}", host.to_ascii_lowercase(), req.target));
        }
        let method = req.method.as_str();
        let op = ctx.op.as_deref();
        let unrecognised =
            || Response::new(400, TEXT, format!("Unrecognised signature: method={method} op={}", op.unwrap_or("None")));
        let forbidden = || Response::new(401, "text/plain", "Forbidden");
        let not_allowed = || Response::new(405, HTML, "").with_header("Allow", "GET, POST");
        match &ctx.route {
            Route::OutsideMaas => Response::new(404, "text/html", nginx_page(404)),
            Route::MaasOther => Response::new(
                404,
                HTML,
                "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n",
            ),
            Route::ApiVersionText => Response::new(200, "text/plain", "2.0"),
            Route::Api10 => Response::new(410, "text/plain", "The 1.0 API is no longer available. Please use API version 2.0."),
            Route::UnknownApi => Response::new(404, TEXT, format!("Unknown API endpoint: {}.", ctx.path)),
            Route::Version => Response::new(200, JSON, json::version(&self.version)),
            Route::Describe => {
                let scheme = if conn.tls { "https" } else { "http" };
                let host = req.header("host").map(str::to_string).unwrap_or_else(|| format!("127.0.0.1:{}", conn.port));
                Response::new(200, "application/json", json::describe(&format!("{scheme}://{host}")))
            }
            Route::Users | Route::Machines | Route::Machine(_) => {
                let caller = match self.authenticate(req, &ctx.query, &ctx.form, ctx.urlencoded) {
                    Ok(c) => c,
                    Err(resp) => return resp,
                };
                let user = match caller {
                    Caller::User(i) => &self.users[i],
                    Caller::Anonymous => {
                        return match (&ctx.route, method) {
                            (Route::Machines, "GET" | "POST") => unrecognised(),
                            _ => forbidden(),
                        };
                    }
                };
                if method != "GET" && method != "POST" {
                    return not_allowed();
                }
                match (&ctx.route, method, op) {
                    (Route::Users, "GET", Some("whoami")) => Response::new(200, JSON, json::user(user)),
                    (Route::Users, "GET", None) => {
                        let list: Vec<String> = self.users.iter().map(json::user).collect();
                        Response::new(200, JSON, format!("[{}]", list.join(", ")))
                    }
                    (Route::Machines, "GET", None) => self.list_machines(user, &ctx.query),
                    (Route::Machine(id), "GET", None) => self.read_machine(user, id),
                    (Route::Machine(id), "GET", Some("query_power_state")) => self.query_power_state(user, id, conn),
                    (Route::Machine(id), "POST", Some("power_on")) => self.power_action(user, id, PowerState::On),
                    (Route::Machine(id), "POST", Some("power_off")) => self.power_action(user, id, PowerState::Off),
                    _ => unrecognised(),
                }
            }
        }
    }

    fn list_machines(&self, user: &SimUser, query: &[(String, String)]) -> Response {
        let values =
            |key: &str| -> Vec<&str> { query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect() };
        let hostnames = values("hostname");
        let ids = values("id");
        let zones = values("zone");
        let pools = values("pool");
        let mut inv = lock(&self.inventory);
        let mut errors = Vec::new();
        let unknown_zones: BTreeSet<&str> = zones.iter().copied().filter(|z| !inv.zone_ids.contains_key(*z)).collect();
        if !unknown_zones.is_empty() {
            let names = unknown_zones.into_iter().collect::<Vec<_>>().join(", ");
            errors.push(format!("\"zone\": [{}]", json_str(&format!("No such zone(s): {names}."))));
        }
        let unknown_pools: BTreeSet<&str> = pools.iter().copied().filter(|p| !inv.pool_ids.contains_key(*p)).collect();
        if !unknown_pools.is_empty() {
            let names = unknown_pools.into_iter().collect::<Vec<_>>().join(", ");
            errors.push(format!("\"pool\": [{}]", json_str(&format!("No such pool(s): {names}."))));
        }
        if !errors.is_empty() {
            return Response::new(400, JSON, format!("{{{}}}", errors.join(", ")));
        }
        inv.settle();
        let mut body = String::with_capacity(inv.entries.len() * 4096 + 2);
        body.push('[');
        let mut first = true;
        for i in 0..inv.entries.len() {
            let m = &inv.entries[i].machine;
            let keep = visible(user, m)
                && (hostnames.is_empty() || hostnames.contains(&m.hostname.as_str()))
                && (ids.is_empty() || ids.contains(&m.system_id.as_str()))
                && (zones.is_empty() || zones.contains(&m.zone.as_str()))
                && (pools.is_empty() || pools.contains(&m.pool.as_str()));
            if keep {
                if !first {
                    body.push_str(", ");
                }
                first = false;
                body.push_str(inv.json(i));
            }
        }
        body.push(']');
        Response::new(200, JSON, body)
    }

    /// Finds a machine the user may see; the error response otherwise.
    fn find(&self, inv: &Inventory, user: &SimUser, id: &str, edit: bool) -> Result<usize, Response> {
        let not_found = || Response::new(404, "text/plain", "No Machine matches the given query.");
        let i = *inv.by_id.get(id).ok_or_else(not_found)?;
        let m = &inv.entries[i].machine;
        if !visible(user, m) {
            return Err(not_found());
        }
        if edit {
            let may_edit = user.is_superuser || m.owner.as_deref() == Some(user.username.as_str());
            if !may_edit || m.locked {
                return Err(Response::new(403, TEXT, ""));
            }
        }
        Ok(i)
    }

    fn read_machine(&self, user: &SimUser, id: &str) -> Response {
        let mut inv = lock(&self.inventory);
        inv.settle();
        match self.find(&inv, user, id, false) {
            Ok(i) => Response::new(200, JSON, inv.json(i).to_string()),
            Err(resp) => resp,
        }
    }

    fn query_power_state(&self, user: &SimUser, id: &str, conn: &ConnInfo<'_>) -> Response {
        if let Err(resp) = self.find(&lock(&self.inventory), user, id, false) {
            return resp;
        }
        let in_flight = self.power_queries_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = InFlight(&self.power_queries_in_flight);
        {
            let mut stats = lock(&self.stats);
            stats.max_concurrent_power_queries = stats.max_concurrent_power_queries.max(in_flight);
        }
        if self.max_concurrent_power_queries.is_some_and(|max| in_flight > max) {
            return Response::new(503, TEXT, "Unable to connect to any rack controller: no connections available.")
                .with_header("Retry-After", "10");
        }
        if !self.power_query_delay.is_zero() {
            conn.stop.sleep(self.power_query_delay);
        }
        let mut inv = lock(&self.inventory);
        inv.settle();
        let Some(&i) = inv.by_id.get(id) else {
            return Response::new(404, "text/plain", "No Machine matches the given query.");
        };
        if let Some(failure) = inv.bmc.get(id) {
            return bmc_error(failure, &inv.entries[i].machine, "query");
        }
        if inv.entries[i].machine.power_type == "manual" {
            inv.set_power(i, PowerState::Unknown);
        }
        let state = inv.entries[i].machine.power_state;
        Response::new(200, JSON, format!("{{\"state\": \"{state}\"}}"))
    }

    fn power_action(&self, user: &SimUser, id: &str, target: PowerState) -> Response {
        let mut inv = lock(&self.inventory);
        inv.settle();
        let i = match self.find(&inv, user, id, true) {
            Ok(i) => i,
            Err(resp) => return resp,
        };
        let m = &inv.entries[i].machine;
        if target == PowerState::On && m.owner.is_none() {
            return Response::new(409, TEXT, "Can't start node: it hasn't been allocated.");
        }
        if let Some(failure) = inv.bmc.get(id) {
            let action = if target == PowerState::On { "on" } else { "off" };
            return bmc_error(failure, m, action);
        }
        let manual = m.power_type == "manual";
        if manual && target == PowerState::Off {
            return Response::new(200, JSON, "null");
        }
        // The body shows the machine as it was before the action.
        let body = inv.json(i).to_string();
        if target == PowerState::On && inv.entries[i].machine.status == STATUS_ALLOCATED {
            inv.entries[i].machine.status = STATUS_DEPLOYING;
            inv.entries[i].json = None;
        }
        if !manual {
            inv.pending.retain(|p| p.index != i);
            if self.power_change_delay.is_zero() {
                inv.set_power(i, target);
            } else {
                let due = Instant::now() + self.power_change_delay;
                inv.pending.push(Pending { index: i, state: target, due });
            }
        }
        Response::new(200, JSON, body)
    }
}

/// Decrements the in-flight power query count when dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn visible(user: &SimUser, m: &SimMachine) -> bool {
    user.is_superuser || m.owner.is_none() || m.owner.as_deref() == Some(user.username.as_str())
}

fn bmc_error(failure: &BmcFailure, m: &SimMachine, action: &str) -> Response {
    match failure {
        BmcFailure::Unreachable => {
            Response::new(503, TEXT, format!("No rack controllers can access the BMC of node {}", m.hostname))
        }
        BmcFailure::Timeout => {
            Response::new(504, TEXT, format!("Timed out waiting for the power driver of {} ({action}).", m.hostname))
        }
        BmcFailure::Error => Response::new(
            500,
            TEXT,
            format!(
                "Failed to power {action} {}: ({}) Error: Unable to establish IPMI v2 / RMCP+ session",
                m.hostname, m.power_type
            ),
        ),
    }
}

impl Service for MaasService {
    fn handle(&self, req: Request, conn: &ConnInfo<'_>) -> Reply {
        let ctx = RequestCtx::new(&req);
        {
            let mut stats = lock(&self.stats);
            stats.requests += 1;
            *stats
                .by_endpoint
                .entry(endpoint_key(&req.method, &ctx.route, ctx.op.as_deref(), &ctx.path))
                .or_insert(0) += 1;
        }
        let op = ctx.op.as_deref();
        let fault = self
            .faults
            .take(|rule| req.path.contains(&rule.path_contains) && rule.op.as_deref().is_none_or(|o| Some(o) == op));
        let date = http_date(self.now());
        let finish = |mut resp: Response| {
            resp.headers.push(("Date".into(), date.clone()));
            let api =
                !matches!(ctx.route, Route::OutsideMaas | Route::MaasOther | Route::ApiVersionText | Route::Api10);
            if api && !self.not_maas && !(self.redirect_to_https && resp.status == 301) {
                if ctx.route != Route::Describe {
                    resp.headers.push(("X-MAAS-API-Hash".into(), json::api_hash().into()));
                }
                resp.headers.push(("Vary".into(), "Authorization".into()));
            }
            resp
        };
        fault::reply(fault, conn, &FAULT_BODIES, || finish(self.respond(&req, &ctx, conn)), finish)
    }
}
