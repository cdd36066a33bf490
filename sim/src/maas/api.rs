//! The simulated MAAS region: routing, authentication, the machine
//! endpoints and their power semantics, injected faults, and statistics.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::json::{self, Refs};
use super::model::*;
use super::oauth::{self, AuthInput, AuthResult, Credentials, NonceStore};
use crate::http::{multipart_boundary, nginx_page, parse_multipart, Request, Response};
use crate::server::{lock, ConnInfo, Reply, Service};
use crate::util::{http_date, parse_form, percent_decode, unix_now};

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// Not under `/MAAS/`: the front web server's 404.
    OutsideMaas,
    /// Under `/MAAS/` but no API: Django's 404 page.
    MaasOther,
    /// `/MAAS/api/version/`.
    ApiVersionText,
    /// `/MAAS/api/1.0/...`.
    Api10,
    Version,
    Describe,
    Users,
    Machines,
    Machine(String),
    /// Any other path under `/MAAS/api/2.0/`.
    UnknownApi,
}

fn route(path: &str) -> (Route, Option<String>) {
    let Some(rest) = path.strip_prefix("/MAAS/") else { return (Route::OutsideMaas, None) };
    if rest.starts_with("api/version/") {
        return (Route::ApiVersionText, None);
    }
    if rest.starts_with("api/1.0/") {
        return (Route::Api10, None);
    }
    let Some(api) = rest.strip_prefix("api/2.0/") else { return (Route::MaasOther, None) };
    let r = match api {
        "version/" => Route::Version,
        "describe/" => Route::Describe,
        "users/" => Route::Users,
        "machines/" => Route::Machines,
        _ => {
            let segments: Vec<&str> = api.split('/').collect();
            match segments.as_slice() {
                ["machines", id, ""] if !id.is_empty() => Route::Machine(id.to_string()),
                ["machines", id, op] if !id.is_empty() && op.len() > 3 && op.starts_with("op-") => {
                    return (Route::Machine(id.to_string()), Some(op[3..].to_string()));
                }
                ["users", op] if op.len() > 3 && op.starts_with("op-") => {
                    return (Route::Users, Some(op[3..].to_string()));
                }
                ["machines", op] if op.len() > 3 && op.starts_with("op-") => {
                    return (Route::Machines, Some(op[3..].to_string()));
                }
                _ => Route::UnknownApi,
            }
        }
    };
    (r, None)
}

fn endpoint_key(method: &str, route: &Route, op: Option<&str>, path: &str) -> String {
    let base = match route {
        Route::Version => "version/",
        Route::Describe => "describe/",
        Route::Users => "users/",
        Route::Machines => "machines/",
        Route::Machine(_) => "machines/{id}/",
        _ => return format!("{method} {path}"),
    };
    match op {
        Some(op) => format!("{method} {base}?op={op}"),
        None => format!("{method} {base}"),
    }
}

fn last<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

struct Entry {
    machine: SimMachine,
    /// The machine's JSON, rendered when first needed after a change.
    json: Option<String>,
}

struct Pending {
    index: usize,
    state: PowerState,
    due: Instant,
}

struct Inventory {
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    zone_ids: HashMap<String, usize>,
    pool_ids: HashMap<String, usize>,
    domain_ids: HashMap<String, usize>,
    pending: Vec<Pending>,
    bmc: HashMap<String, BmcFailure>,
}

impl Inventory {
    fn new(machines: Vec<SimMachine>) -> Inventory {
        let mut zone_ids = HashMap::from([("default".to_string(), 1)]);
        let mut pool_ids = HashMap::from([("default".to_string(), 0)]);
        let mut domain_ids = HashMap::from([("maas".to_string(), 0)]);
        let mut by_id = HashMap::new();
        for (i, m) in machines.iter().enumerate() {
            by_id.entry(m.system_id.clone()).or_insert(i);
            let n = zone_ids.len() + 1;
            zone_ids.entry(m.zone.clone()).or_insert(n);
            let n = pool_ids.len();
            pool_ids.entry(m.pool.clone()).or_insert(n);
            let n = domain_ids.len();
            domain_ids.entry(m.domain.clone()).or_insert(n);
        }
        let entries = machines.into_iter().map(|machine| Entry { machine, json: None }).collect();
        Inventory { entries, by_id, zone_ids, pool_ids, domain_ids, pending: Vec::new(), bmc: HashMap::new() }
    }

    /// Applies the power changes that are due.
    fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].due <= now {
                let p = self.pending.remove(i);
                self.set_power(p.index, p.state);
            } else {
                i += 1;
            }
        }
    }

    fn set_power(&mut self, index: usize, state: PowerState) {
        if let Some(e) = self.entries.get_mut(index) {
            if e.machine.power_state != state {
                e.machine.power_state = state;
                e.json = None;
            }
        }
    }

    fn json(&mut self, index: usize) -> &str {
        let refs = {
            let m = &self.entries[index].machine;
            Refs {
                zone_id: self.zone_ids.get(&m.zone).copied().unwrap_or(0),
                pool_id: self.pool_ids.get(&m.pool).copied().unwrap_or(0),
                domain_id: self.domain_ids.get(&m.domain).copied().unwrap_or(0),
            }
        };
        let e = &mut self.entries[index];
        e.json.get_or_insert_with(|| json::machine(&e.machine, index, &refs))
    }
}

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
    faults: Mutex<Vec<FaultRule>>,
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
            faults: Mutex::new(Vec::new()),
            stats: Mutex::new(SimStats::default()),
            power_queries_in_flight: AtomicUsize::new(0),
        }
    }

    pub fn users(&self) -> &[SimUser] {
        &self.users
    }

    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.faults).push(rule);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
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

    /// The first fault rule matching, with its use counted.
    fn take_fault(&self, path: &str, op: Option<&str>) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let i = faults.iter().position(|r| {
            path.contains(&r.path_contains) && r.op.as_deref().is_none_or(|o| Some(o) == op) && r.times != Some(0)
        })?;
        let rule = &mut faults[i];
        let fault = rule.fault.clone();
        if let Some(n) = rule.times.as_mut() {
            *n -= 1;
            if *n == 0 {
                faults.remove(i);
            }
        }
        Some(fault)
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
            errors.push(format!("\"zone\": [{}]", crate::util::json_str(&format!("No such zone(s): {names}."))));
        }
        let unknown_pools: BTreeSet<&str> = pools.iter().copied().filter(|p| !inv.pool_ids.contains_key(*p)).collect();
        if !unknown_pools.is_empty() {
            let names = unknown_pools.into_iter().collect::<Vec<_>>().join(", ");
            errors.push(format!("\"pool\": [{}]", crate::util::json_str(&format!("No such pool(s): {names}."))));
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

/// What is derived from a request before answering it.
struct RequestCtx {
    route: Route,
    /// The decoded path.
    path: String,
    op: Option<String>,
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    urlencoded: bool,
}

impl RequestCtx {
    fn new(req: &Request) -> RequestCtx {
        let path = percent_decode(&req.path);
        let query = parse_form(&req.query);
        let content_type = req.header("content-type").unwrap_or("");
        let urlencoded = content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        let form = if req.method != "POST" {
            Vec::new()
        } else if urlencoded {
            parse_form(&String::from_utf8_lossy(&req.body))
        } else if let Some(boundary) = multipart_boundary(content_type) {
            parse_multipart(&req.body, &boundary)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name, String::from_utf8_lossy(&p.value).into_owned()))
                .collect()
        } else {
            Vec::new()
        };
        let (route, path_op) = route(&path);
        let op = last(&query, "op").filter(|o| !o.is_empty()).or(last(&form, "op").filter(|o| !o.is_empty()));
        let op = op.map(str::to_string).or(path_op);
        RequestCtx { route, path, op, query, form, urlencoded }
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
        let fault = self.take_fault(&req.path, ctx.op.as_deref());
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
        let normal = || finish(self.respond(&req, &ctx, conn));
        match fault {
            None => Reply::Send(normal()),
            Some(Fault::Status { status, content_type, body, retry_after }) => {
                let mut resp = Response::new(status, &content_type, body);
                if let Some(ra) = retry_after {
                    resp = resp.with_header("Retry-After", ra);
                }
                Reply::Send(finish(resp))
            }
            Some(Fault::Delay(d)) => {
                if !conn.stop.sleep(d) {
                    return Reply::Hang;
                }
                Reply::Send(normal())
            }
            Some(Fault::Hang) => Reply::Hang,
            Some(Fault::Trickle { bytes_per_sec }) => Reply::Trickle(normal(), bytes_per_sec),
            Some(Fault::LateTrickle { delay, bytes_per_sec }) => {
                if !conn.stop.sleep(delay) {
                    return Reply::Hang;
                }
                Reply::Trickle(normal(), bytes_per_sec)
            }
            Some(Fault::EndlessBody) => Reply::EndlessBody(finish(Response::new(200, JSON, ""))),
            Some(Fault::CloseMidResponse) => {
                let mut resp = normal();
                if resp.body.len() < 2 {
                    resp.body = b"[{\"system_id\": \"abcdef\"}]".to_vec();
                }
                Reply::CloseMidResponse(resp)
            }
            Some(Fault::HugeContentLength) => {
                Reply::HugeContentLength(finish(Response::new(200, JSON, "[{\"system_id\": \"")))
            }
            Some(Fault::Garbage) => Reply::Garbage,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/MAAS/api/2.0/machines/"), (Route::Machines, None));
        assert_eq!(route("/MAAS/api/2.0/machines/abc123/"), (Route::Machine("abc123".into()), None));
        assert_eq!(
            route("/MAAS/api/2.0/machines/abc123/op-power_on"),
            (Route::Machine("abc123".into()), Some("power_on".into()))
        );
        assert_eq!(route("/MAAS/api/2.0/machines").0, Route::UnknownApi);
        assert_eq!(route("/MAAS/api/2.0/machines/abc123").0, Route::UnknownApi);
        assert_eq!(route("/MAAS/api/2.0/").0, Route::UnknownApi);
        assert_eq!(route("/MAAS/api/1.0/nodes/").0, Route::Api10);
        assert_eq!(route("/MAAS/api/version/").0, Route::ApiVersionText);
        assert_eq!(route("/api/2.0/version/").0, Route::OutsideMaas);
        assert_eq!(route("/MAAS/").0, Route::MaasOther);
    }

    #[test]
    fn endpoint_keys() {
        let k = |m, p: &str, op| endpoint_key(m, &route(p).0, op, p);
        assert_eq!(k("GET", "/MAAS/api/2.0/users/", Some("whoami")), "GET users/?op=whoami");
        assert_eq!(
            k("GET", "/MAAS/api/2.0/machines/x/", Some("query_power_state")),
            "GET machines/{id}/?op=query_power_state"
        );
        assert_eq!(k("GET", "/other", None), "GET /other");
    }
}
