//! Watcher's own code on the files the charm writes: python-watcher from
//! PyPI (12.0.0 with the 2024.1 constraints, 17.0.0 with today's newest
//! dependencies) plus python-libmaas 0.6.8, run by
//! `tests/peers/watcher_e2e.py` against the MAAS simulator over HTTP. Only
//! Nova is faked (see the driver's docstring).
//!
//! Each test lays out a principal's watcher.conf at
//! `$HOME/.watcher/watcher.conf`, runs the charm's config-changed hook
//! (`watcher-metal dispatch`, fake hook tools) with `watcher-conf-path`
//! pointing there and `drop-in-root` at `$HOME`, then runs Watcher's
//! services' code on whatever the charm wrote: oslo.config finds
//! `$HOME/<program>.conf.d` by itself, as it finds `/etc/<program>.conf.d`
//! on a unit.
//!
//! Needs WATCHER12_PYTHON and WATCHER17_PYTHON (set by `scripts/test`).
//! Under CI they are required, so the checks cannot silently not run.
//!
//! The 17.0.0 test asserts the known upstream defects, numbered as in the
//! README's "Watcher compatibility" section:
//! 1. `BaseMetalHelper.nova_client` hands the OpenStackClients object to
//!    openstacksdk as its session (`get_api_major_version`).
//! 2. `MaasHelper._get_compute_node_by_hostname` passes `detailed=True` to
//!    `NovaHelper.get_compute_node_by_hostname`, which takes no such argument.
//! 3. `nova_helper.Hypervisor` has no `to_dict()` (nor `running_vms`).
//! 4. With eventlet patching off (17.0.0's default), a MAAS call from an OS
//!    thread other than the first that made one waits for the timeout.
//!
//! A fixed upstream release turns these assertions red on purpose.
//!
//! The 12.0.0 tests need every step to pass, on the charm's default layout
//! and on a merged watcher.conf. Defect 5 of that section (Watcher
//! 12.0.0-16.0.0's plugin loaders re-parse the configuration without the
//! `watcher.conf.d` dirs, so a drop-in there is gone after start-up) fails
//! the default-layout test while the charm's default is that drop-in.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;
use metal_sim::{MaasSim, MaasSimConfig, PowerState, SimMachine};
use serde_json::{json, Value};

const SECRET_URI: &str = "secret:cs3v8m6a8r9s7b6qvcq0";

/// `[maas_client] timeout` the charm writes: how long a call that hits
/// defect 4 waits.
const MAAS_TIMEOUT: u64 = 6;

/// A watcher.conf as the principal charm (charm-watcher) renders it; every
/// address is loopback: nothing of Keystone, RabbitMQ or the database runs,
/// and Watcher never needs them on the paths checked here.
const PRINCIPAL_CONF: &str = "# rendered by the watcher charm
[DEFAULT]
debug = False
transport_url = rabbit://watcher:rabbitpass@127.0.0.1:5672/openstack

[database]
connection = mysql+pymysql://watcher:dbpass@127.0.0.1/watcher

[keystone_authtoken]
auth_type = password
auth_url = http://127.0.0.1:5000
www_authenticate_uri = http://127.0.0.1:5000
project_domain_name = service_domain
user_domain_name = service_domain
project_name = services
username = watcher
password = servicepass

[watcher_clients_auth]
auth_type = password
auth_url = http://127.0.0.1:5000
project_domain_name = service_domain
user_domain_name = service_domain
project_name = services
username = watcher
password = servicepass
";

fn python(var: &str) -> Option<String> {
    peer_python(var, "the Watcher end-to-end check")
}

fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/watcher_e2e.py")
}

/// The simulated MAAS: compute-1..4 are Nova's hypervisors (compute-1 runs
/// two servers, compute-4 is off), spare-5 is deployed but no hypervisor.
struct Cloud {
    sim: MaasSim,
    ids: Vec<String>,
}

impl Cloud {
    fn start() -> Cloud {
        let mut machines = SimMachine::generate(5);
        for (i, m) in machines.iter_mut().enumerate() {
            m.hostname = if i < 4 { format!("compute-{}", i + 1) } else { "spare-5".into() };
            m.domain = "maas".into();
        }
        machines[3].power_state = PowerState::Off;
        let ids = machines.iter().map(|m| m.system_id.clone()).collect();
        let sim = MaasSim::start(MaasSimConfig { machines, ..Default::default() }).unwrap();
        Cloud { sim, ids }
    }

    fn id(&self, n: usize) -> &str {
        &self.ids[n - 1]
    }

    fn power(&self, n: usize) -> PowerState {
        self.sim.machine(self.id(n)).unwrap().power_state
    }

    fn nova_json(&self) -> Value {
        let hv = |n: usize, servers: &[&str]| {
            json!({"hypervisor_hostname": format!("compute-{n}.maas"), "service_host": format!("compute-{n}"),
                   "servers": servers})
        };
        json!({"hypervisors": [hv(1, &["vm-a", "vm-b"]), hv(2, &[]), hv(3, &[]), hv(4, &[])]})
    }

    fn key(&self) -> String {
        self.sim.admin_key()
    }

    fn secret(&self) -> String {
        self.key().rsplit(':').next().unwrap().to_owned()
    }

    fn count(&self, endpoint: &str) -> usize {
        self.sim.stats().by_endpoint.get(endpoint).copied().unwrap_or(0)
    }
}

/// A unit's files: `$HOME/.watcher/watcher.conf` from the principal, then
/// whatever the charm's config-changed wrote.
struct Unit {
    home: tempfile::TempDir,
    juju: FakeJuju,
    charm_dir: tempfile::TempDir,
    principal: String,
}

impl Unit {
    fn conf(&self) -> PathBuf {
        self.home.path().join(".watcher/watcher.conf")
    }

    /// The decision engine's drop-in: `~/watcher-decision-engine.conf.d`
    /// here stands where `/etc/watcher-decision-engine.conf.d` is on a unit
    /// (both are oslo.config default directories, at start-up and after
    /// Watcher's plugin loader parses the configuration again).
    fn drop_in(&self) -> PathBuf {
        self.drop_in_of("watcher-decision-engine")
    }

    fn drop_in_of(&self, program: &str) -> PathBuf {
        self.home.path().join(format!("{program}.conf.d/50-watcher-metal.conf"))
    }

    fn nova_file(&self) -> PathBuf {
        self.home.path().join("nova.json")
    }
}

/// Lays out the principal's watcher.conf and runs the charm's
/// config-changed on it, with `config` over the defaults (`maas-url`
/// unset: the Ironic path). The charm's view of the unit's Watcher
/// (dpkg-query, `python3 -c 'import maas.client'`) is answered by the
/// Python under test.
fn charm_unit(cloud: &Cloud, python: &str, config: Value, principal: &str) -> Unit {
    let home = tempfile::tempdir().unwrap();
    fs::create_dir(home.path().join(".watcher")).unwrap();
    let charm_dir = tempfile::tempdir().unwrap();
    let juju = FakeJuju::new("{}", Some(&json!({ "api-key": cloud.key() }).to_string()));
    let unit = Unit { home, juju, charm_dir, principal: principal.to_owned() };
    write(&unit.conf(), principal);
    write(&unit.nova_file(), &cloud.nova_json().to_string());
    fake_unit_tools(&unit.juju, python);
    unit.juju.set_watcher_home(unit.home.path());

    let mut all = json!({
        "maas-url": "", "maas-api-key": "", "maas-api-key-secret": null, "maas-timeout": MAAS_TIMEOUT,
        "maas-ca-cert": "", "ironic-api-version": "1", "ironic-endpoint-type": "publicURL",
        "ironic-region-name": "", "watcher-conf-path": unit.conf().display().to_string(),
        // HOME: oslo.config's `~/<program>.conf.d`, as `/etc/<program>.conf.d` on a unit.
        "drop-in-root": unit.home.path().display().to_string(),
        "watcher-services": "watcher-decision-engine watcher-applier",
    });
    for (k, v) in config.as_object().unwrap() {
        all[k] = v.clone();
    }
    unit.juju.set_config(&all.to_string());
    let charm_dir = unit.charm_dir.path().display().to_string();
    let r = unit
        .juju
        .run_with(&["dispatch"], &[("JUJU_DISPATCH_PATH", "hooks/config-changed"), ("JUJU_CHARM_DIR", &charm_dir)]);
    assert_no_key(cloud, "the charm", &r.stdout, &r.stderr);
    assert_no_key(cloud, "a hook tool call", &unit.juju.calls(), "");
    assert_eq!(r.code, 0, "config-changed failed:\n{}", r.stderr);
    assert_layout(&unit);
    unit
}

/// The charm config for the simulated MAAS, the key in a Juju secret.
fn maas(cloud: &Cloud) -> Value {
    json!({"maas-url": cloud.sim.base_url(), "maas-api-key-secret": SECRET_URI})
}

/// `dpkg-query` reports the installed python-watcher and python-libmaas as
/// Ubuntu packages, `python3` is the Python under test, `apt-get` must not
/// be needed.
fn fake_unit_tools(juju: &FakeJuju, python: &str) {
    use std::os::unix::fs::PermissionsExt;
    let out = Command::new(python)
        .args([
            "-c",
            "from importlib import metadata as m; print(m.version('python-watcher'), m.version('python-libmaas'))",
        ])
        .output()
        .expect("run the Python under test");
    let versions = String::from_utf8_lossy(&out.stdout);
    let mut versions = versions.split_whitespace();
    let (watcher, libmaas) = (versions.next().expect("python-watcher"), versions.next().expect("python-libmaas"));
    let bin = juju.dir.path().join("bin");
    let tools = [
        (
            "dpkg-query",
            format!(
                "#!/bin/sh\nfor p; do :; done\ncase \"$p\" in\n  python3-watcher) printf 'installed 2:{watcher}-0ubuntu1' ;;\n  \
                 python3-libmaas) printf 'installed {libmaas}-1' ;;\n  *) exit 1 ;;\nesac\n"
            ),
        ),
        ("python3", format!("#!/bin/sh\nexec '{python}' \"$@\"\n")),
        ("apt-get", "#!/bin/sh\necho 'E: apt-get is not available in this test' >&2\nexit 100\n".to_owned()),
    ];
    for (tool, script) in tools {
        let path = bin.join(tool);
        write(&path, &script);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// With a drop-in, the principal's watcher.conf is left byte for byte as
/// the principal wrote it.
fn assert_layout(unit: &Unit) {
    let conf = fs::read_to_string(unit.conf()).unwrap();
    if unit.drop_in().exists() {
        assert_eq!(conf, unit.principal, "the charm wrote a drop-in and also changed watcher.conf");
    } else {
        assert!(conf.starts_with(&unit.principal), "the principal's content is kept:\n{conf}");
    }
}

fn assert_no_key(cloud: &Cloud, who: &str, stdout: &str, stderr: &str) {
    for s in [cloud.key(), cloud.secret()] {
        // Never print the output here: it would hold the key.
        assert!(!stdout.contains(&s), "{who} printed the MAAS key on stdout");
        assert!(!stderr.contains(&s), "{who} printed the MAAS key on stderr");
    }
}

/// A running driver, killed (by its PID) and reaped when dropped.
struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stdout: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(python: &str, unit: &Unit, args: &[&str], env: &[(&str, &str)]) -> Driver {
        let mut cmd = Command::new(python);
        cmd.arg(driver())
            .arg("--nova")
            .arg(unit.nova_file())
            .args(args)
            .env("HOME", unit.home.path())
            .env_remove("OS_WATCHER_DISABLE_EVENTLET_PATCHING")
            .env_remove("PYTHONPATH")
            .current_dir(unit.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run the Watcher driver");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        Driver { child, stdin, lines, stdout: String::new(), stderr: Some(stderr) }
    }

    /// The next line the driver prints, as JSON.
    fn next(&mut self, deadline: Instant, cloud: &Cloud) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match self.lines.recv_timeout(left) {
            Ok(line) => line,
            Err(e) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the Watcher driver printed nothing more ({e}); its stderr:\n{}", self.stderr_masked(cloud))
            }
        };
        self.stdout.push_str(&line);
        self.stdout.push('\n');
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {} bytes", line.len()))
    }

    fn resume(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Its standard error so far (normally empty: the driver keeps
    /// Watcher's output in memory), with the key masked.
    fn stderr_masked(&mut self, cloud: &Cloud) -> String {
        let text = self.stderr.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        text.replace(&cloud.key(), "****").replace(&cloud.secret(), "****")
    }

    /// Waits for the driver's exit; checks it printed no key.
    fn finish(mut self, cloud: &Cloud) {
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert_no_key(cloud, "the Watcher driver", &self.stdout, &stderr);
        self.stderr = Some(std::thread::spawn(move || stderr));
        assert!(status.success(), "the Watcher driver failed:\n{}", self.stderr_masked(cloud));
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(240)
}

/// Runs the driver for one service to the end and returns its report.
fn run(python: &str, cloud: &Cloud, unit: &Unit, args: &[&str], env: &[(&str, &str)]) -> Report {
    let mut d = Driver::start(python, unit, args, env);
    let report = d.next(deadline(), cloud);
    d.finish(cloud);
    Report(report)
}

fn decision_engine(python: &str, cloud: &Cloud, unit: &Unit) -> Report {
    let args = ["--service", "decision-engine", "--power-cycle", cloud.id(2), "--direct", cloud.id(3)];
    run(python, cloud, unit, &args, &[])
}

/// The applier's off and on of compute-2, with `sim_at_pause` called
/// between them (to look at the machine as MAAS itself has it then).
fn applier(python: &str, cloud: &Cloud, unit: &Unit, env: &[(&str, &str)], sim_at_pause: impl FnOnce()) -> Report {
    let args =
        ["--service", "applier", "--power-cycle", cloud.id(2), "--power-cycle-hostname", "compute-2.maas", "--pause"];
    let mut d = Driver::start(python, unit, &args, env);
    let end = deadline();
    let first = d.next(end, cloud);
    // No pause: the driver stopped before the actions (its report says why).
    if first != json!({"paused": "off"}) {
        d.finish(cloud);
        return Report(first);
    }
    sim_at_pause();
    d.resume();
    let report = d.next(end, cloud);
    d.finish(cloud);
    Report(report)
}

struct Report(Value);

impl Report {
    fn step(&self, name: &str) -> &Value {
        self.0["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .unwrap_or_else(|| panic!("no step {name} in the report:\n{}", self.pretty()))
    }

    fn ok(&self, name: &str) -> &Value {
        let s = self.step(name);
        assert_eq!(s["ok"], true, "Watcher {} step {name} failed: {}\n{}", self.version(), s["error"], self.pretty());
        &s["detail"]
    }

    /// The step fails with `error_type` and a message holding `fragment`.
    fn fails(&self, name: &str, error_type: &str, fragment: &str, defect: &str) {
        let s = self.step(name);
        assert_eq!(
            s["ok"],
            false,
            "Watcher {} step {name} passed: is upstream {defect} fixed? Update the README's compatibility table \
             and this test.\n{}",
            self.version(),
            self.pretty()
        );
        let error = s["error"].as_str().unwrap_or_default();
        assert!(
            s["error_type"] == error_type && error.contains(fragment),
            "Watcher {} step {name} failed otherwise than by {defect} ({error_type}: ...{fragment}...): {error}\n{}",
            self.version(),
            self.pretty()
        );
    }

    fn version(&self) -> &str {
        self.0["watcher_version"].as_str().unwrap_or("?")
    }

    /// The report for a failure message (the driver masks the key in it).
    fn pretty(&self) -> String {
        serde_json::to_string_pretty(&self.0).unwrap()
    }

    fn check_common(&self, cloud: &Cloud, version: &str, service: &str) {
        assert_eq!(self.0["watcher_version"], version);
        assert_eq!(self.0["service"], service);
        assert_eq!(self.0["log_has_key"], false, "Watcher logged the key (debug is off)");
        let prepared = self.ok("prepare_service");
        assert_eq!(prepared["maas_url"], cloud.sim.base_url(), "Watcher read another MAAS URL from the files");
        assert_eq!(prepared["maas_timeout"], MAAS_TIMEOUT);
        assert_eq!(prepared["maas_api_key_set"], true);
        // Watcher's plugin loaders re-parse the configuration at start-up:
        // the [maas_client] the charm wrote must survive that.
        // Watcher 12.0.0's DefaultLoader._reload_config calls
        // CONF(default_config_files=...) without the project, so oslo.config
        // then looks for `<program>.conf.d` (watcher-decision-engine.conf.d),
        // not watcher.conf.d: a drop-in there is dropped.
        let started = self.ok("service_start");
        assert_eq!(
            started["maas_url"],
            cloud.sim.base_url(),
            "Watcher {}: [maas_client] is gone once {service} has loaded its plugins, which re-parse the \
             configuration (config dirs read before: {}, after: {})",
            self.version(),
            prepared["config_dir"],
            started["config_dir"]
        );
        assert_eq!(self.ok("get_helper")["helper"], "watcher.common.metal_helper.maas.MaasHelper");
    }
}

fn fqdns(nodes: &Value) -> Vec<String> {
    nodes.as_array().unwrap().iter().map(|n| n["fqdn"].as_str().unwrap().to_owned()).collect()
}

fn compute_fqdns() -> Vec<String> {
    (1..=4).map(|n| format!("compute-{n}.maas")).collect()
}

/// The decision engine's steps that work in every measured release: the
/// conf, the factory, MAAS's machine list, matching on Nova's hypervisor
/// names (spare-5 skipped), power states, and MaasNode.set_power_state.
fn check_maas_side(r: &Report, cloud: &Cloud) {
    let mut all = compute_fqdns();
    all.push("spare-5.maas".into());
    assert_eq!(r.ok("connect_and_list_machines")["machines"], json!(all));
    assert_eq!(fqdns(r.ok("list_compute_nodes_nova_faked")), compute_fqdns());
    assert_eq!(r.0["skipped_hypervisors"], json!(["spare-5.maas"]), "Watcher must skip the machine Nova does not know");
    let states = r.ok("get_power_state");
    for n in 1..=4 {
        assert_eq!(states[cloud.id(n)], cloud.power(n).as_str(), "compute-{n} as Watcher reads it");
    }
    assert_eq!(states[cloud.id(4)], "off");
    assert_eq!(r.ok("set_power_state_direct")["states"], json!(["off", "on"]));
    assert_eq!(cloud.power(3), PowerState::On, "compute-3 is back on in MAAS");
}

/// The charm's default layout.
#[test]
fn watcher_12_runs_on_the_charms_files() {
    let Some(python) = python("WATCHER12_PYTHON") else { return };
    let cloud = Cloud::start();
    let unit = charm_unit(&cloud, &python, maas(&cloud), PRINCIPAL_CONF);
    for program in ["watcher-decision-engine", "watcher-applier"] {
        assert!(unit.drop_in_of(program).exists(), "the charm wrote {program}'s drop-in");
    }
    assert_eq!(fs::read_to_string(unit.conf()).unwrap(), PRINCIPAL_CONF, "watcher.conf is the principal's");
    check_watcher_12(&python, &cloud, &unit);
}

/// `watcher-conf-mode: merge`: the sections in watcher.conf itself.
#[test]
fn watcher_12_runs_on_a_merged_watcher_conf() {
    let Some(python) = python("WATCHER12_PYTHON") else { return };
    let cloud = Cloud::start();
    let mut config = maas(&cloud);
    config["watcher-conf-mode"] = json!("merge");
    let unit = charm_unit(&cloud, &python, config, PRINCIPAL_CONF);
    assert!(!unit.drop_in().exists());
    assert!(fs::read_to_string(unit.conf()).unwrap().contains("[maas_client]"));
    check_watcher_12(&python, &cloud, &unit);
}

/// Every step of Watcher 12.0.0's MAAS path works on `unit`'s files.
fn check_watcher_12(python: &str, cloud: &Cloud, unit: &Unit) {
    let de = decision_engine(python, cloud, unit);
    de.check_common(cloud, "12.0.0", "watcher-decision-engine");
    check_maas_side(&de, cloud);
    assert_eq!(de.0["nova_fake"], "novaclient (HypervisorManager/ServerManager faked, microversion 2.56)");
    assert_eq!(fqdns(de.ok("list_compute_nodes")), compute_fqdns());
    let node = de.ok("get_node");
    assert_eq!(node["system_id"], cloud.id(2));
    assert_eq!(node["hypervisor_hostname"], "compute-2.maas");

    // saving_energy: compute-1 runs servers, compute-2 and -3 are free and
    // on, compute-4 free and off; one free host must stay on, so exactly one
    // of compute-2/-3 is to be powered off.
    let plan = de.ok("saving_energy");
    assert_eq!(plan["metal_helper"], "MaasHelper");
    assert_eq!(plan["compute_model_nodes"], json!(["compute-1", "compute-2", "compute-3", "compute-4"]));
    let mut free_on = vec![cloud.id(2), cloud.id(3)];
    free_on.sort();
    assert_eq!(
        plan["pools"],
        json!({"with_vms": [cloud.id(1)], "free_poweron": free_on, "free_poweroff": [cloud.id(4)]})
    );
    let actions = plan["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{}", de.pretty());
    assert_eq!(actions[0]["action_type"], "change_node_power_state");
    assert_eq!(actions[0]["input_parameters"]["state"], "off");
    let target = actions[0]["input_parameters"]["resource_id"].as_str().unwrap();
    assert!(free_on.contains(&target), "{}", de.pretty());

    // The applier powers compute-2 off (MAAS itself has it off), then on.
    let ap = applier(python, cloud, unit, &[], || {
        assert_eq!(cloud.power(2), PowerState::Off, "MAAS has compute-2 off after Watcher's power-off action");
    });
    ap.check_common(cloud, "12.0.0", "watcher-applier");
    assert_eq!(ap.ok("change_node_power_state_off")["power_state"], "off");
    assert_eq!(ap.ok("change_node_power_state_on")["power_state"], "on");
    assert_eq!(cloud.power(2), PowerState::On, "MAAS has compute-2 on after Watcher's power-on action");

    // Every power change went to MAAS: set_power_state_direct (compute-3)
    // and the two actions (compute-2); nothing was refused.
    assert_eq!(cloud.count("POST machines/{id}/?op=power_off"), 2);
    assert_eq!(cloud.count("POST machines/{id}/?op=power_on"), 2);
    assert_eq!(cloud.sim.stats().rejected_auth, 0);
}

#[test]
fn watcher_17_fails_where_upstream_is_broken() {
    let Some(python) = python("WATCHER17_PYTHON") else { return };
    let cloud = Cloud::start();
    let unit = charm_unit(&cloud, &python, maas(&cloud), PRINCIPAL_CONF);

    let de = decision_engine(&python, &cloud, &unit);
    de.check_common(&cloud, "17.0.0", "watcher-decision-engine");
    assert_eq!(de.0["eventlet_patched"], false);
    check_maas_side(&de, &cloud);
    assert_eq!(de.0["nova_fake"], "openstacksdk (NovaHelper methods faked)");
    de.fails(
        "list_compute_nodes",
        "AttributeError",
        "'OpenStackClients' object has no attribute 'get_api_major_version'",
        "defect 1",
    );
    de.fails("get_node", "TypeError", "unexpected keyword argument 'detailed'", "defect 2");
    de.fails("saving_energy", "AttributeError", "'Hypervisor' object has no attribute 'to_dict'", "defect 3");

    // The applier as 17.0.0 runs by default (no eventlet): the power-off,
    // in the first thread that calls MAAS, reaches defect 2; the power-on,
    // in another thread, waits for [maas_client] timeout (defect 4).
    let ap = applier(&python, &cloud, &unit, &[], || {
        assert_eq!(cloud.power(2), PowerState::On, "Watcher 17.0.0 cannot power compute-2 off");
    });
    ap.check_common(&cloud, "17.0.0", "watcher-applier");
    ap.fails("change_node_power_state_off", "TypeError", "unexpected keyword argument 'detailed'", "defect 2");
    ap.fails("change_node_power_state_on", "TimeoutError", &format!("Timeout: {MAAS_TIMEOUT}s"), "defect 4");

    // With eventlet patching on (defect 4's workaround), both reach defect 2.
    let ap = applier(&python, &cloud, &unit, &[("OS_WATCHER_DISABLE_EVENTLET_PATCHING", "false")], || {});
    ap.check_common(&cloud, "17.0.0", "watcher-applier");
    assert_eq!(ap.0["eventlet_patched"], true);
    for step in ["change_node_power_state_off", "change_node_power_state_on"] {
        ap.fails(step, "TypeError", "unexpected keyword argument 'detailed'", "defect 2");
    }
    assert_eq!(cloud.power(2), PowerState::On);
    // Only set_power_state_direct (compute-3) changed a power state.
    assert_eq!(cloud.count("POST machines/{id}/?op=power_off"), 1);
    assert_eq!(cloud.count("POST machines/{id}/?op=power_on"), 1);
}

/// With `[DEFAULT] debug = true` in the principal's watcher.conf, Watcher
/// logs every option at start-up: 12.0.0 logs `maas_client.api_key` in
/// clear (a Caracal defect), 17.0.0 masks it. The log is captured in the
/// driver's memory; only the verdict is printed.
#[test]
fn debug_logging_shows_the_key_in_12_and_masks_it_in_17() {
    let pythons: Vec<(String, &str)> = [("WATCHER12_PYTHON", "12.0.0"), ("WATCHER17_PYTHON", "17.0.0")]
        .into_iter()
        .filter_map(|(var, version)| python(var).map(|p| (p, version)))
        .collect();
    let cloud = Cloud::start();
    let principal = PRINCIPAL_CONF.replace("debug = False", "debug = True");
    for (python, version) in pythons {
        let unit = charm_unit(&cloud, &python, maas(&cloud), &principal);
        let r = run(&python, &cloud, &unit, &["--debug-leak"], &[]);
        assert_eq!(r.0["watcher_version"], version);
        r.ok("prepare_service");
        let leak = &r.0["debug_leak"];
        assert_eq!(leak["api_key_logged"], true, "{version} logs its options with debug = true");
        let clear = version == "12.0.0";
        assert_eq!(leak["key_in_log"], clear, "{version}: api_key in clear in the log");
        assert_eq!(leak["masked_in_log"], !clear, "{version}: api_key logged as ****");
    }
}

/// Not a check: `scripts/watcher-compat` runs this for each Watcher version
/// with WATCHER_COMPAT_PYTHON and writes what every step did to
/// WATCHER_COMPAT_OUT: the MAAS path (decision engine, applier with and
/// without eventlet patching) and the Ironic path's helper and options
/// (non-default ones, so that losing them shows), on the charm's default
/// layout and on a merged watcher.conf.
#[test]
#[ignore = "run by scripts/watcher-compat"]
fn compat_report() {
    let python = std::env::var("WATCHER_COMPAT_PYTHON").expect("WATCHER_COMPAT_PYTHON");
    let out = std::env::var("WATCHER_COMPAT_OUT").expect("WATCHER_COMPAT_OUT");
    let cloud = Cloud::start();
    let ironic = json!({"ironic-api-version": "1.46", "ironic-endpoint-type": "internalURL",
                        "ironic-region-name": "RegionTwo"});
    let mut layouts = serde_json::Map::new();
    for mode in ["default", "merge"] {
        let with_mode = |mut config: Value| {
            if mode == "merge" {
                config["watcher-conf-mode"] = json!("merge");
            }
            config
        };
        let unit = charm_unit(&cloud, &python, with_mode(maas(&cloud)), PRINCIPAL_CONF);
        let layout = if unit.drop_in().exists() { "drop-in" } else { "watcher.conf" };
        let de = decision_engine(&python, &cloud, &unit);
        let threads = applier(&python, &cloud, &unit, &[], || {});
        let eventlet = applier(&python, &cloud, &unit, &[("OS_WATCHER_DISABLE_EVENTLET_PATCHING", "false")], || {});
        let ironic_unit = charm_unit(&cloud, &python, with_mode(ironic.clone()), PRINCIPAL_CONF);
        let ironic = run(&python, &cloud, &ironic_unit, &["--backend", "ironic"], &[]);
        layouts.insert(
            mode.to_owned(),
            json!({
                "layout": layout,
                "maas_decision_engine": de.0,
                "maas_applier": threads.0,
                "maas_applier_eventlet": eventlet.0,
                "ironic_decision_engine": ironic.0,
            }),
        );
    }
    fs::write(out, serde_json::to_string_pretty(&Value::Object(layouts)).unwrap()).unwrap();
}
