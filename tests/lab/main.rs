//! Watcher's own services, started by `scripts/lab` on 127.0.0.1 and
//! configured by the charm, power machines through Watcher's REST API.
//!
//! One lab per backend (MAAS, Ironic, then MAAS with Watcher 17.0.0) is
//! brought up once with `scripts/lab up`, its scenarios run (each caught on
//! its own, so one failure does not hide the next), and `scripts/lab down`
//! always runs (a guard dropped however the suite ends). The last line is
//! `N passed, N failed`.
//!
//! Prerequisites: root (the lab installs Debian packages and starts
//! RabbitMQ and MariaDB, which drop to their own users) and the venvs that
//! `scripts/test` builds (`WATCHER12_PYTHON`, `WATCHER17_PYTHON`,
//! `OPENSTACK_PYTHON`). Without them the suite says `SKIPPED:` on stderr and
//! exits 0, except under CI (`CI=true`), where that is a failure.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// A scenario's outcome: `Err` says what was wrong.
type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A lab brought up by `scripts/lab up`, brought down when dropped.
struct Lab {
    dir: PathBuf,
    info: Value,
    http: reqwest::blocking::Client,
    /// Keep DIR (its logs) after `down`: a scenario failed.
    keep: std::cell::Cell<bool>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let started = Instant::now();
        let status = Command::new(repo().join("scripts/lab"))
            .args(["down", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
        eprintln!("lab: down in {:.1} s ({status:?})", started.elapsed().as_secs_f64());
        if self.keep.get() {
            eprintln!("lab: logs kept in {}", self.dir.join("logs").display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs a `scripts/lab` command on the lab; its last stdout line as JSON.
fn lab_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Value, String> {
    let mut cmd = Command::new(repo().join("scripts/lab"));
    cmd.arg(args[0]).arg("--dir").arg(dir).args(&args[1..]).stdin(Stdio::null()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|e| format!("cannot run scripts/lab: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    let value: Value =
        serde_json::from_str(last).map_err(|_| format!("scripts/lab {} printed no JSON: {stdout}", args[0]))?;
    if !out.status.success() {
        return Err(format!("scripts/lab {} exited {:?}: {last}", args[0], out.status.code()));
    }
    Ok(value)
}

impl Lab {
    fn up(name: &str, args: &[&str]) -> Result<Lab, String> {
        let dir = std::env::temp_dir().join(format!("watcher-metal-lab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let bin = env!("CARGO_BIN_EXE_watcher-metal");
        let sim = Path::new(bin).with_file_name("maas-sim");
        let sim = sim.to_str().unwrap_or_default().to_owned();
        let mut lab = Lab { dir, info: Value::Null, http, keep: std::cell::Cell::new(true) };
        let started = Instant::now();
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        lab.info = lab_command(&lab.dir, &all, &[("LAB_WATCHER_METAL", bin), ("LAB_MAAS_SIM", &sim)])?;
        lab.keep.set(false);
        eprintln!("lab: {name} up in {:.1} s", started.elapsed().as_secs_f64());
        Ok(lab)
    }

    fn run(&self, args: &[&str]) -> Result<Value, String> {
        lab_command(&self.dir, args, &[])
    }

    fn str(&self, pointer: &str) -> String {
        self.info.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    fn pid(&self, status: &Value, service: &str) -> Option<u64> {
        status.pointer(&format!("/pids/{service}")).and_then(Value::as_u64)
    }

    /// The admin's token, scoped to its project (for Watcher).
    fn token(&self) -> Result<String, String> {
        self.token_for(json!({"project": {"name": self.str("/keystone/project_name"),
            "domain": {"name": self.str("/keystone/project_domain_name")}}}))
    }

    /// The admin's token with `scope` (system scope sees every Ironic node).
    fn token_for(&self, scope: Value) -> Result<String, String> {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": self.str("/keystone/username"), "domain": {"name": self.str("/keystone/user_domain_name")},
            "password": self.str("/keystone/password")}}},
            "scope": scope}});
        let resp = self
            .http
            .post(format!("{}/auth/tokens", self.str("/keystone/auth_url")))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .map_err(|e| format!("Keystone: {e}"))?;
        ensure!(resp.status().as_u16() == 201, "Keystone answered {} to the admin login", resp.status());
        resp.headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| "Keystone gave no token".to_owned())
    }

    fn watcher(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let token = self.token()?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.str("/watcher_api")))
            .header("X-Auth-Token", token)
            .header("OpenStack-API-Version", "infra-optim 1.0");
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.send().map_err(|e| format!("watcher-api {path}: {e}"))?;
        let status = resp.status();
        let text = resp.text().map_err(|e| format!("watcher-api {path}: {e}"))?;
        ensure!(status.is_success(), "watcher-api answered {status} to {path}: {text}");
        serde_json::from_str(&text).map_err(|_| format!("watcher-api {path}: not JSON: {text}"))
    }

    /// A ONESHOT saving_energy audit with auto_trigger, waited for until it
    /// and its action plans are done.
    fn audit(&self) -> Result<Audit, String> {
        let made = self.watcher(
            reqwest::Method::POST,
            "/v1/audits",
            Some(&json!({"audit_type": "ONESHOT", "goal": "saving_energy", "strategy": "saving_energy", "auto_trigger": true})),
        )?;
        let uuid = made["uuid"].as_str().ok_or("the audit has no uuid")?.to_owned();
        let started = Instant::now();
        let state = poll(Duration::from_secs(240), || {
            let audit = self.watcher(reqwest::Method::GET, &format!("/v1/audits/{uuid}"), None)?;
            let state = audit["state"].as_str().unwrap_or_default().to_owned();
            Ok(["SUCCEEDED", "FAILED", "CANCELLED", "SUSPENDED"].contains(&state.as_str()).then_some(state))
        })?;
        let plans = poll(Duration::from_secs(240), || {
            let plans = self.watcher(reqwest::Method::GET, &format!("/v1/action_plans?audit_uuid={uuid}"), None)?;
            let states: Vec<String> = plans["action_plans"]
                .as_array()
                .map(|a| a.iter().map(|p| p["state"].as_str().unwrap_or_default().to_owned()).collect())
                .unwrap_or_default();
            let done = states.iter().all(|s| ["SUCCEEDED", "FAILED", "CANCELLED", "SUPERSEDED"].contains(&s.as_str()));
            Ok(done.then_some(states))
        })?;
        let actions = self.watcher(reqwest::Method::GET, &format!("/v1/actions/detail?audit_uuid={uuid}"), None)?;
        let actions = actions["actions"].as_array().cloned().unwrap_or_default();
        eprintln!(
            "lab: audit {uuid}: {state}, plans {plans:?}, {} actions, in {:.1} s",
            actions.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(Audit { uuid, state, plans, actions })
    }

    fn maas_auth(&self) -> String {
        let key = self.str("/maas/api_key");
        let parts: Vec<&str> = key.split(':').collect();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        format!(
            "OAuth oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"&{}\", oauth_nonce=\"{}\", oauth_timestamp=\"{now}\"",
            parts.first().unwrap_or(&""),
            parts.get(1).unwrap_or(&""),
            parts.get(2).unwrap_or(&""),
            fastnonce()
        )
    }

    /// system_id -> power_state, read back from MAAS's API.
    fn maas_power(&self) -> Result<BTreeMap<String, String>, String> {
        let url = format!("{}/api/2.0/machines/", self.str("/maas/url"));
        let resp =
            self.http.get(url).header("Authorization", self.maas_auth()).send().map_err(|e| format!("MAAS: {e}"))?;
        ensure!(resp.status().is_success(), "MAAS answered {}", resp.status());
        let machines = json_body(resp, "MAAS")?;
        Ok(machines
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        (
                            m["system_id"].as_str().unwrap_or_default().to_owned(),
                            m["power_state"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Powers every machine of the lab's hosts on again (through MAAS's API).
    fn maas_power_all_on(&self) -> Outcome {
        for id in self.host_ids("maas_system_id") {
            let url = format!("{}/api/2.0/machines/{id}/?op=power_on", self.str("/maas/url"));
            let resp = self
                .http
                .post(url)
                .header("Authorization", self.maas_auth())
                .send()
                .map_err(|e| format!("MAAS: {e}"))?;
            ensure!(resp.status().is_success(), "MAAS answered {} to power_on {id}", resp.status());
        }
        poll(Duration::from_secs(30), || Ok(self.maas_power()?.values().all(|s| s == "on").then_some(())))
    }

    fn host_ids(&self, key: &str) -> Vec<String> {
        self.info["hosts"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h[key].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// (id, running_vms) of the lab's hosts.
    fn hosts(&self, key: &str) -> Vec<(String, u64)> {
        self.info["hosts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| Some((h[key].as_str()?.to_owned(), h["running_vms"].as_u64().unwrap_or(0))))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// node uuid -> power_state, read back from Ironic's API.
    fn ironic_power(&self) -> Result<BTreeMap<String, String>, String> {
        let token = self.token_for(json!({"system": {"all": true}}))?;
        let url = format!("{}/v1/nodes/detail", self.str("/ironic/url"));
        let resp = self
            .http
            .get(url)
            .header("X-Auth-Token", token)
            .header("X-OpenStack-Ironic-API-Version", "1.80")
            .send()
            .map_err(|e| format!("Ironic: {e}"))?;
        ensure!(resp.status().is_success(), "Ironic answered {}", resp.status());
        let nodes = json_body(resp, "Ironic")?;
        Ok(nodes["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| {
                        (
                            n["uuid"].as_str().unwrap_or_default().to_owned(),
                            n["power_state"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("logs").join(format!("{name}.log"))).unwrap_or_default()
    }

    fn drop_in(&self, program: &str) -> String {
        std::fs::read_to_string(self.dir.join("home").join(format!("{program}.conf.d/50-watcher-metal.conf")))
            .unwrap_or_default()
    }
}

fn json_body(resp: reqwest::blocking::Response, what: &str) -> Result<Value, String> {
    let text = resp.text().map_err(|e| format!("{what}: {e}"))?;
    serde_json::from_str(&text).map_err(|_| format!("{what}: not JSON: {text}"))
}

fn fastnonce() -> String {
    let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{n:x}{}", std::process::id())
}

struct Audit {
    uuid: String,
    state: String,
    plans: Vec<String>,
    actions: Vec<Value>,
}

impl Audit {
    /// The resource ids of the actions that powered a node off, each SUCCEEDED.
    fn powered_off(&self) -> Result<Vec<String>, String> {
        let mut ids = Vec::new();
        for a in &self.actions {
            ensure!(a["action_type"] == "change_node_power_state", "unexpected action {a}");
            ensure!(a["state"] == "SUCCEEDED", "action not SUCCEEDED: {a}");
            if a["input_parameters"]["state"] == "off" {
                ids.push(a["input_parameters"]["resource_id"].as_str().unwrap_or_default().to_owned());
            }
        }
        Ok(ids)
    }
}

fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Result<Option<T>, String>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = check();
        match last {
            Ok(Some(v)) => return Ok(v),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(500)),
            Ok(None) => return Err(format!("not done after {} s", timeout.as_secs())),
            Err(e) if Instant::now() < deadline && e.contains("error sending request") => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The audit powered off MAAS machines without VMs (read back from MAAS),
/// at least one, and none with VMs.
fn check_maas_audit(lab: &Lab, audit: &Audit) -> Outcome {
    ensure!(audit.state == "SUCCEEDED", "audit {} is {}", audit.uuid, audit.state);
    ensure!(!audit.plans.is_empty() && audit.plans.iter().all(|s| s == "SUCCEEDED"), "action plans: {:?}", audit.plans);
    let off = audit.powered_off()?;
    ensure!(!off.is_empty(), "the action plan powers nothing off");
    let power = lab.maas_power()?;
    for (id, vms) in lab.hosts("maas_system_id") {
        let state = power.get(&id).map(String::as_str).unwrap_or("missing");
        if vms > 0 {
            ensure!(state == "on" && !off.contains(&id), "machine {id} with {vms} VMs is {state}");
        } else if off.contains(&id) {
            ensure!(state == "off", "machine {id} was powered off by the plan but MAAS says {state}");
        }
    }
    Ok(())
}

fn maas_audit(lab: &Lab) -> Outcome {
    let audit = lab.audit()?;
    check_maas_audit(lab, &audit)?;
    let doctor = lab.run(&["action", "doctor"])?;
    ensure!(doctor["results"]["result"] == "success" && doctor["results"]["failed"] == "0", "doctor: {doctor}");
    // drop-in-root is the services' HOME, which the charm knows from the
    // lab's passwd: no warning that Watcher does not read the drop-ins.
    ensure!(!doctor.to_string().contains("do not read the drop-ins"), "doctor: {doctor}");
    Ok(())
}

fn config_maas_timeout_restarts(lab: &Lab) -> Outcome {
    let before = lab.run(&["status"])?;
    lab.run(&["config", "maas-timeout=97"])?;
    let after = lab.run(&["status"])?;
    for service in ["watcher-decision-engine", "watcher-applier"] {
        let (old, new) = (lab.pid(&before, service), lab.pid(&after, service));
        ensure!(new.is_some() && new != old, "{service} was not restarted: pid {old:?} then {new:?}");
        let drop_in = lab.drop_in(service);
        ensure!(drop_in.contains("timeout = 97"), "{service}'s drop-in has no timeout = 97:\n{drop_in}");
        // The new process started after the drop-in was written: it read 97.
        let started = std::fs::metadata(format!("/proc/{}", new.unwrap_or(0))).and_then(|m| m.modified());
        let written = std::fs::metadata(lab.dir.join("home").join(format!("{service}.conf.d/50-watcher-metal.conf")))
            .and_then(|m| m.modified());
        ensure!(
            matches!((&started, &written), (Ok(s), Ok(w)) if s >= w),
            "{service} started {started:?}, before its drop-in {written:?}"
        );
    }
    ensure!(lab.pid(&before, "watcher-api") == lab.pid(&after, "watcher-api"), "watcher-api was restarted too");
    lab.maas_power_all_on()?;
    check_maas_audit(lab, &lab.audit()?)
}

fn principal_rewrite_keeps_maas(lab: &Lab) -> Outcome {
    let before = lab.run(&["status"])?;
    lab.run(&["principal"])?;
    let after = lab.run(&["status"])?;
    for service in ["watcher-api", "watcher-decision-engine", "watcher-applier"] {
        ensure!(lab.pid(&before, service) != lab.pid(&after, service), "{service} was not restarted");
    }
    let conf = std::fs::read_to_string(lab.dir.join("home/watcher/watcher.conf")).unwrap_or_default();
    ensure!(!conf.contains("[maas_client]"), "the principal's watcher.conf has [maas_client]");
    lab.maas_power_all_on()?;
    check_maas_audit(lab, &lab.audit()?)
}

fn hook_remove_falls_back_to_ironic(lab: &Lab) -> Outcome {
    let out = lab.run(&["hook", "remove"])?;
    ensure!(out["exit"] == 0, "remove: {out}");
    for service in ["watcher-decision-engine", "watcher-applier"] {
        ensure!(lab.drop_in(service).is_empty(), "{service}'s drop-in is still there");
    }
    lab.maas_power_all_on()?;
    let log_before = lab.log("watcher-decision-engine").len();
    let audit = lab.audit()?;
    let power = lab.maas_power()?;
    ensure!(power.values().all(|s| s == "on"), "MAAS powered something off after remove: {power:?}");
    ensure!(audit.actions.is_empty(), "actions after remove: {:?}", audit.actions);
    // Watcher's metal helper is Ironic's: this lab's catalog has no
    // baremetal endpoint, so the strategy fails looking for it.
    let log = lab.log("watcher-decision-engine");
    let new = log.get(log_before..).unwrap_or_default();
    ensure!(audit.state == "FAILED", "audit is {} after remove (Ironic has no endpoint here)", audit.state);
    ensure!(
        new.contains("self._osc.ironic()") && new.contains("endpoint for baremetal service not found"),
        "the decision engine's log does not show the Ironic helper looking for Ironic:\n{}",
        tail(new)
    );
    // Back as it was, for anything after this.
    lab.run(&["hook", "install"])?;
    lab.run(&["hook", "config-changed"])?;
    Ok(())
}

fn ironic_audit(lab: &Lab) -> Outcome {
    let audit = lab.audit()?;
    ensure!(audit.state == "SUCCEEDED", "audit {} is {}", audit.uuid, audit.state);
    ensure!(!audit.plans.is_empty() && audit.plans.iter().all(|s| s == "SUCCEEDED"), "action plans: {:?}", audit.plans);
    let off = audit.powered_off()?;
    ensure!(!off.is_empty(), "the action plan powers nothing off");
    let power = lab.ironic_power()?;
    for (id, vms) in lab.hosts("ironic_node_id") {
        let state = power.get(&id).map(String::as_str).unwrap_or("missing");
        if vms > 0 {
            ensure!(state == "power on" && !off.contains(&id), "node {id} with {vms} VMs is {state}");
        } else if off.contains(&id) {
            ensure!(state == "power off", "node {id} was powered off by the plan but Ironic says {state}");
        }
    }
    Ok(())
}

/// Watcher 17.0.0's services, on the charm's drop-ins: the decision engine
/// reads them (the MAAS helper is chosen) and then fails as the
/// compatibility table says (README "Watcher compatibility", defect 1):
/// `BaseMetalHelper.nova_client` hands the OpenStackClients object to
/// openstacksdk as its session. The audit FAILS, no action plan, MAAS
/// untouched. A fixed release turns this red.
fn watcher17_known_upstream_failure(lab: &Lab) -> Outcome {
    let log_before = lab.log("watcher-decision-engine").len();
    let audit = lab.audit()?;
    ensure!(audit.state == "FAILED", "Watcher 17.0.0's audit is {} (the known defect is fixed?)", audit.state);
    ensure!(audit.plans.is_empty() && audit.actions.is_empty(), "plans {:?}, actions {:?}", audit.plans, audit.actions);
    let power = lab.maas_power()?;
    ensure!(power.values().all(|s| s == "on"), "MAAS powered something off: {power:?}");
    let log = lab.log("watcher-decision-engine");
    let new = log.get(log_before..).unwrap_or_default();
    for needle in [
        "metal_helper/maas.py",
        "in list_compute_nodes",
        "AttributeError: 'OpenStackClients' object has no attribute 'get_api_major_version'",
    ] {
        ensure!(new.contains(needle), "the decision engine's log has no `{needle}`:\n{}", tail(new));
    }
    Ok(())
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

type Scenario = (&'static str, fn(&Lab) -> Outcome);

struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, outcome: Outcome, took: Duration) {
        match outcome {
            Ok(()) => {
                self.passed += 1;
                println!("test lab::{name} ... ok ({:.1} s)", took.as_secs_f64());
            }
            Err(e) => {
                self.failed += 1;
                println!("test lab::{name} ... FAILED ({:.1} s)\n    {e}", took.as_secs_f64());
            }
        }
    }
}

fn suite(tally: &mut Tally, name: &str, args: &[&str], scenarios: &[Scenario]) {
    let started = Instant::now();
    let lab = match Lab::up(name, args) {
        Ok(lab) => lab,
        Err(e) => {
            for (scenario, _) in scenarios {
                tally.record(scenario, Err(format!("scripts/lab up {}: {e}", args.join(" "))), started.elapsed());
            }
            return;
        }
    };
    for (scenario, run) in scenarios {
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&lab))).unwrap_or_else(|_| Err("panicked".to_owned()));
        if outcome.is_err() {
            lab.keep.set(true);
        }
        tally.record(scenario, outcome, t.elapsed());
    }
    drop(lab);
    eprintln!("lab: {name} suite took {:.1} s", started.elapsed().as_secs_f64());
}

/// What is missing for the lab, if anything.
fn missing_prerequisite() -> Option<String> {
    // The effective uid, from /proc/self/status (no libc call needed).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        return Some("the lab needs root (Debian packages, RabbitMQ and MariaDB's own users)".to_owned());
    }
    for var in ["WATCHER12_PYTHON", "WATCHER17_PYTHON", "OPENSTACK_PYTHON"] {
        if std::env::var_os(var).is_none() {
            return Some(format!("{var} is not set (scripts/test sets it)"));
        }
    }
    None
}

fn main() {
    if let Some(why) = missing_prerequisite() {
        if std::env::var("CI").as_deref() == Ok("true") {
            eprintln!("lab: {why}: required under CI");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
        eprintln!("SKIPPED: lab: {why}");
        return;
    }
    let mut tally = Tally { passed: 0, failed: 0 };
    suite(
        &mut tally,
        "maas",
        &["--backend", "maas"],
        &[
            ("maas_audit_powers_idle_machines_off", maas_audit),
            ("config_maas_timeout_restarts_and_applies", config_maas_timeout_restarts),
            ("principal_rewrite_keeps_maas", principal_rewrite_keeps_maas),
            ("hook_remove_falls_back_to_ironic", hook_remove_falls_back_to_ironic),
        ],
    );
    suite(&mut tally, "ironic", &["--backend", "ironic"], &[("ironic_audit_powers_idle_nodes_off", ironic_audit)]);
    suite(
        &mut tally,
        "watcher17",
        &["--backend", "maas", "--watcher", "17.0.0"],
        &[("watcher17_known_upstream_failure", watcher17_known_upstream_failure)],
    );
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed > 0 {
        std::process::exit(1);
    }
}
