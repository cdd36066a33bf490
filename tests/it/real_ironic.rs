//! The Ironic backend against the real services: Keystone 30.0.0 and Ironic
//! 39.0.0 from PyPI, on 127.0.0.1 (`tests/peers/real_services.py` sets them
//! up: sqlite, fernet tokens, `auth_strategy = keystone`, fake hardware,
//! nodes moved through Ironic's own state machine, pages of 5 nodes, power
//! changes that take 3 s). They are started once for this test binary and
//! stopped when it exits, however it exits: the supervisor stops them (by
//! their process groups) when its standard input, a pipe held by this
//! process, closes.
//!
//! Needs OPENSTACK_PYTHON: a Python with keystone and ironic, as
//! `scripts/test` sets up. Under CI the variable is required, so these
//! tests cannot silently not run.
//!
//! Nodes: bm-01..bm-10 active and on, bm-11 and bm-12 available and off.
//! bm-01..04 and bm-11 keep their power; bm-05, 06, 07 and 12 are powered.
//! Tests that change power each use their own nodes (they run in parallel).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::common::{path_str, write, Run};
use serde_json::Value;
use watcher_metal::exit_codes as exit;

const NODES: usize = 12;
const PAGE_SIZE: usize = 5;
/// Seconds a fake power change takes.
const POWER_DELAY: u64 = 5;

struct Passwords {
    admin: String,
    ironic: String,
    watcher: String,
    viewer: String,
    /// Has inner and surrounding spaces.
    spaced: String,
}

impl Passwords {
    fn all(&self) -> [&str; 5] {
        [&self.admin, &self.ironic, &self.watcher, &self.viewer, &self.spaced]
    }
}

struct Services {
    keystone: String,
    nodes: Vec<(String, String)>,
    passwords: Passwords,
    /// The supervisor; its stdin stays open until this process exits.
    _supervisor: Mutex<Child>,
}

fn python() -> Option<String> {
    crate::common::peer_python("OPENSTACK_PYTHON", "the real Keystone + Ironic tests")
}

/// A password no one could guess, of letters and digits.
fn random_password(tag: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = format!("{tag}-");
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(Instant::now().elapsed().as_nanos());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn start(python: &str) -> Result<Services, String> {
    let passwords = Passwords {
        admin: random_password("Adm"),
        ironic: random_password("Irn"),
        watcher: random_password("Wat"),
        viewer: random_password("Vie"),
        spaced: format!("  {} inner  spaces ", random_password("Spc")),
    };
    let work = tempfile::Builder::new().prefix("real-ironic-").tempdir().map_err(|e| e.to_string())?.keep();
    let started = Instant::now();
    let mut child = Command::new(python)
        .arg("tests/peers/real_services.py")
        .arg(&work)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    let settings = serde_json::json!({
        "passwords": {
            "admin": passwords.admin, "ironic": passwords.ironic, "watcher": passwords.watcher,
            "viewer": passwords.viewer, "spaced": passwords.spaced,
        },
        "nodes": NODES,
        "page_size": PAGE_SIZE,
        "power_delay": POWER_DELAY.to_string(),
    });
    let stdin = child.stdin.as_mut().ok_or("no stdin")?;
    stdin.write_all(format!("{settings}\n").as_bytes()).map_err(|e| e.to_string())?;
    stdin.flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line).map_err(|e| e.to_string())?;
    let ready: Value = serde_json::from_str(&line).map_err(|_| format!("the supervisor said: {line:?}"))?;
    if let Some(error) = ready["error"].as_str() {
        return Err(format!("the real services did not start: {error}\n{}", ready["log"].as_str().unwrap_or("")));
    }
    eprintln!("real Keystone + Ironic ready in {:.1} s ({})", started.elapsed().as_secs_f64(), ready["timings"]);
    let nodes = ready["nodes"]
        .as_array()
        .ok_or("no nodes")?
        .iter()
        .map(|n| (n["name"].as_str().unwrap_or("").to_owned(), n["uuid"].as_str().unwrap_or("").to_owned()))
        .collect();
    Ok(Services {
        keystone: ready["keystone"].as_str().ok_or("no keystone URL")?.to_owned(),
        nodes,
        passwords,
        _supervisor: Mutex::new(child),
    })
}

/// The services, started on first use; `None` (test skipped) without
/// OPENSTACK_PYTHON outside CI.
fn services() -> Option<&'static Services> {
    static SERVICES: OnceLock<Result<Services, String>> = OnceLock::new();
    let python = python()?;
    match SERVICES.get_or_init(|| start(&python)) {
        Ok(s) => Some(s),
        Err(e) => panic!("{e}"),
    }
}

impl Services {
    fn uuid(&self, name: &str) -> &str {
        &self.nodes.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// `[watcher_clients_auth]` for `user`, with `password_line` as the
    /// password's line.
    fn auth_section(&self, user: &str, password_line: &str) -> String {
        format!(
            "[watcher_clients_auth]\nauth_type = password\nauth_url = {}\nusername = {user}\n{password_line}\n\
             user_domain_name = Default\nproject_name = service\nproject_domain_name = Default\n",
            self.keystone
        )
    }

    /// A directory with a watcher.conf for Watcher's user and a charm
    /// config pointing at it, with `charm_yaml` added.
    fn setup(&self, charm_yaml: &str) -> Setup {
        self.setup_for(&self.auth_section("watcher", &format!("password = {}", self.passwords.watcher)), charm_yaml)
    }

    fn setup_for(&self, auth_section: &str, charm_yaml: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("watcher.conf");
        write(&conf, &format!("[DEFAULT]\ndebug = false\n\n{auth_section}"));
        let config = dir.path().join("charm.yaml");
        write(
            &config,
            &format!("watcher-conf-path: {}\ndrop-in-root: {}\n{charm_yaml}", conf.display(), dir.path().display()),
        );
        Setup { dir, config, passwords: self.passwords.all().map(str::to_owned).to_vec() }
    }
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    passwords: Vec<String>,
}

impl Setup {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("watcher.conf")
    }

    /// Runs `watcher-metal ARGS -c CONFIG`; no password or token shows.
    fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["-c", path_str(&self.config)]);
        self.run_in(None, &all)
    }

    fn run_in(&self, cwd: Option<&Path>, args: &[&str]) -> Run {
        let mut cmd = Command::new(crate::common::bin());
        cmd.args(args).env_remove("JUJU_CONTEXT_ID").env_remove("JUJU_DISPATCH_PATH").stdin(Stdio::null());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let r = Run::from_output(cmd.output().unwrap());
        for secret in &self.passwords {
            assert!(!r.stdout.contains(secret.trim()) && !r.stderr.contains(secret.trim()), "a password shows");
        }
        // Fernet tokens start so.
        assert!(!r.stdout.contains("gAAAAA") && !r.stderr.contains("gAAAAA"), "a token shows");
        r
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        r
    }

    fn json(&self, args: &[&str]) -> Value {
        let r = self.ok(args);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
    }
}

fn code(c: u8) -> i32 {
    i32::from(c)
}

#[test]
fn nodes_are_listed_across_pages_as_ironic_records_them() {
    let Some(s) = services() else { return };
    let setup = s.setup("");
    let v = setup.json(&["nodes", "--format", "json"]);
    assert_eq!(v["backend"], "ironic");
    let nodes = v["nodes"].as_array().unwrap();
    // 12 nodes in pages of 5: three requests, every node once.
    let names: Vec<&str> = nodes.iter().map(|n| n["hostname"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), NODES, "{names:?}");
    let by_name = |name: &str| nodes.iter().find(|n| n["hostname"] == name).unwrap();
    // Nodes no other test powers.
    for name in ["bm-01", "bm-02", "bm-03", "bm-04"] {
        let n = by_name(name);
        assert_eq!(n["id"], s.uuid(name));
        assert_eq!((n["power_state"].as_str(), n["raw_power_state"].as_str()), (Some("on"), Some("power on")));
        assert_eq!((n["provision_state"].as_str(), n["deployed"].as_bool()), (Some("active"), Some(true)));
        assert_eq!(n["hypervisor_match"], format!("hv-{}", &name[3..]));
    }
    let n = by_name("bm-11");
    assert_eq!((n["power_state"].as_str(), n["provision_state"].as_str()), (Some("off"), Some("available")));
    assert_eq!(n["deployed"], false);

    // --live re-reads the conductor's record; the raw value stays Ironic's own.
    let v = setup.json(&["nodes", "--live", "--format", "json"]);
    let live = v["nodes"].as_array().unwrap();
    assert_eq!(live.len(), NODES);
    let bm1 = live.iter().find(|n| n["hostname"] == "bm-01").unwrap();
    assert_eq!((bm1["power_state"].as_str(), bm1["raw_power_state"].as_str()), (Some("on"), Some("power on")));
    let bm11 = live.iter().find(|n| n["hostname"] == "bm-11").unwrap();
    assert_eq!(bm11["raw_power_state"], "power off");

    let r = setup.ok(&["nodes"]);
    assert!(r.stdout.contains(&format!("\n{NODES} nodes (")), "{}", r.stdout);
}

#[test]
fn every_microversion_lists_and_reads_power() {
    let Some(s) = services() else { return };
    for version in ["1.30", "1.1", "1.42", "1.43", "latest"] {
        let setup = s.setup(&format!("ironic-api-version: '{version}'\n"));
        let v = setup.json(&["nodes", "--format", "json"]);
        assert_eq!(v["nodes"].as_array().unwrap().len(), NODES, "{version}");
        let r = setup.ok(&["power", "status", s.uuid("bm-02")]);
        assert!(r.stdout.ends_with(&format!("{}: on\n", s.uuid("bm-02"))), "{version}: {}", r.stdout);
    }
    // By name from 1.5 on.
    let setup = s.setup("ironic-api-version: '1.30'\n");
    let r = setup.ok(&["power", "status", "bm-02"]);
    assert_eq!(r.stdout, format!("bm-02 {}: on\n", s.uuid("bm-02")));
}

#[test]
fn an_unsupported_microversion_names_ironics_range() {
    let Some(s) = services() else { return };
    let setup = s.setup("ironic-api-version: '1.200'\n");
    let r = setup.run(&["nodes"]);
    assert_eq!(r.code, code(exit::IRONIC_MICROVERSION), "{}", r.stderr);
    assert!(r.stderr.contains("Ironic does not support API version 1.200 (it supports 1.1 to 1."), "{}", r.stderr);
    assert!(r.stderr.contains("hint: set ironic-api-version to 1"), "{}", r.stderr);
}

#[test]
fn a_wrong_password_is_keystones_refusal() {
    let Some(s) = services() else { return };
    let setup = s.setup_for(&s.auth_section("watcher", "password = not-the-password"), "");
    for args in [&["nodes"][..], &["power", "status", "bm-01"]] {
        let r = setup.run(args);
        assert_eq!(r.code, code(exit::KEYSTONE_REFUSED), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("error: Keystone refused (401): "), "{}", r.stderr);
        assert!(r.stderr.contains("check the user, password and project in [watcher_clients_auth]"), "{}", r.stderr);
        assert!(!r.stderr.contains("not-the-password"), "{}", r.stderr);
    }
}

#[test]
fn a_quoted_password_with_spaces_logs_in_as_watcher_does() {
    let Some(s) = services() else { return };
    // oslo.config strips the line, then the quotes: the spaces inside stay.
    let setup = s.setup_for(&s.auth_section("spaced", &format!("password = \"{}\"  ", s.passwords.spaced)), "");
    let judge = Run::from_output(
        Command::new(python().unwrap()).arg("tests/peers/keystoneauth_login.py").arg(setup.conf()).output().unwrap(),
    );
    assert_eq!((judge.code, judge.stdout.trim()), (0, "ok"), "keystoneauth: {}", judge.stdout);
    let r = setup.run(&["nodes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Unquoted, the spaces around it are stripped: both fail alike.
    let setup = s.setup_for(&s.auth_section("spaced", &format!("password = {}", s.passwords.spaced)), "");
    let judge = Run::from_output(
        Command::new(python().unwrap()).arg("tests/peers/keystoneauth_login.py").arg(setup.conf()).output().unwrap(),
    );
    assert_eq!(judge.code, 1, "keystoneauth logged in: {}", judge.stdout);
    assert_eq!(setup.run(&["nodes"]).code, code(exit::KEYSTONE_REFUSED));
}

#[test]
fn region_and_refused_connections_name_the_service() {
    let Some(s) = services() else { return };
    let setup = s.setup("ironic-region-name: RegionTwo\n");
    let r = setup.run(&["nodes"]);
    assert_eq!(r.code, code(exit::IRONIC_NO_ENDPOINT), "{}", r.stderr);
    assert!(r.stderr.contains("no baremetal endpoint with interface `public` in region `RegionTwo`"), "{}", r.stderr);

    // The catalog's Ironic is down.
    let setup = s.setup("ironic-endpoint-type: internalURL\nironic-region-name: RegionDown\n");
    let r = setup.run(&["nodes"]);
    assert_eq!(r.code, code(exit::REFUSED), "{}", r.stderr);
    assert!(r.stderr.contains("error: Ironic: connection refused by 127.0.0.1:"), "{}", r.stderr);
    assert!(r.stderr.contains("the catalog's baremetal endpoint"), "{}", r.stderr);

    // Keystone is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let section = s
        .auth_section("watcher", &format!("password = {}", s.passwords.watcher))
        .replace(&s.keystone, &format!("http://127.0.0.1:{port}"));
    let r = s.setup_for(&section, "").run(&["nodes"]);
    assert_eq!(r.code, code(exit::REFUSED), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("error: Keystone: connection refused by 127.0.0.1:{port}")), "{}", r.stderr);
    assert!(r.stderr.contains("auth_url in [watcher_clients_auth]"), "{}", r.stderr);
}

#[test]
fn a_project_that_sees_no_nodes_is_told_why() {
    let Some(s) = services() else { return };
    let setup = s.setup_for(&s.auth_section("viewer", &format!("password = {}", s.passwords.viewer)), "");
    let r = setup.ok(&["nodes"]);
    assert!(r.stdout.ends_with("0 nodes (0 on, 0 off, 0 unknown, 0 error) via ironic\n"), "{}", r.stdout);
    assert!(r.stderr.contains("warning: Ironic lists no nodes for these credentials"), "{}", r.stderr);
    assert!(r.stderr.contains("rbac_service_role_elevated_access"), "{}", r.stderr);
    // Watcher's own user sees them: no warning.
    assert_eq!(s.setup("").ok(&["nodes"]).stderr, "");
}

/// Runs each scenario on its own thread (each waits on power changes).
fn in_parallel(scenarios: &[&(dyn Fn() + Sync)]) {
    std::thread::scope(|scope| {
        let running: Vec<_> = scenarios.iter().map(|f| scope.spawn(f)).collect();
        for r in running {
            if let Err(panic) = r.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

#[test]
fn power_off_and_on_with_wait() {
    let Some(s) = services() else { return };
    let setup = s.setup("");
    let deployed = || {
        let uuid = s.uuid("bm-05");
        let started = Instant::now();
        let r = setup.ok(&["power", "off", "bm-05", "--wait", "--timeout", "60"]);
        assert_eq!(r.stdout, format!("bm-05 {uuid}: off\n"));
        assert!(started.elapsed().as_secs() >= POWER_DELAY, "did not wait for the change");
        let v = setup.json(&["power", "on", uuid, "--wait", "--timeout", "60", "--format", "json"]);
        assert_eq!((v["power_state"].as_str(), v["raw_power_state"].as_str()), (Some("on"), Some("power on")));
        assert_eq!(v["changing_to"], Value::Null);
        let r = setup.ok(&["power", "on", "bm-05"]);
        assert_eq!(r.stdout, format!("bm-05 {uuid}: on (already)\n"));
    };
    let available = || {
        // An available node may be powered on, but not off without --force.
        let uuid = s.uuid("bm-12");
        let r = setup.ok(&["power", "on", "bm-12", "--wait", "--timeout", "60"]);
        assert_eq!(r.stdout, format!("bm-12 {uuid}: on\n"));
        let r = setup.run(&["power", "off", "bm-12"]);
        assert_eq!(r.code, code(exit::POWER_OFF_REFUSED), "{}", r.stderr);
        assert!(r.stderr.contains("it is `available`, not in use"), "{}", r.stderr);
        let r = setup.ok(&["power", "off", "bm-12", "--force", "--wait", "--timeout", "60"]);
        assert_eq!(r.stdout, format!("bm-12 {uuid}: off\n"));
    };
    in_parallel(&[&deployed, &available]);
}

#[test]
fn a_change_in_flight_is_reported_and_seen_through() {
    let Some(s) = services() else { return };
    let setup = s.setup("");
    let opposite = || {
        let uuid = s.uuid("bm-06");
        let r = setup.ok(&["power", "off", "bm-06"]);
        assert_eq!(r.stdout, format!("bm-06 {uuid}: off (requested)\n"));
        // Within the change: Ironic still says on, with the target off.
        let r = setup.ok(&["power", "status", "bm-06"]);
        assert_eq!(r.stdout, format!("bm-06 {uuid}: on (changing to off)\n"));
        // Powering on now: the change in flight finishes, then the node is powered on.
        let r = setup.ok(&["power", "on", "bm-06", "--wait", "--timeout", "60"]);
        assert_eq!(r.stdout, format!("bm-06 {uuid}: on\n"));
        let v = setup.json(&["power", "status", "bm-06", "--format", "json"]);
        assert_eq!((v["power_state"].as_str(), v["changing_to"].as_str()), (Some("on"), None));
    };
    let same = || {
        // Off while going off is waited for, not sent again; on without
        // --wait while going off is refused with its own code.
        let uuid = s.uuid("bm-07");
        setup.ok(&["power", "off", "bm-07"]);
        let r = setup.run(&["power", "on", "bm-07"]);
        assert_eq!(r.code, code(exit::POWER_CHANGING), "{}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("bm-07 (") && r.stderr.contains("is changing its power to off now"), "{}", r.stderr);
        assert!(r.stderr.contains("--wait"), "{}", r.stderr);
        let r = setup.ok(&["power", "off", "bm-07", "--wait", "--timeout", "60"]);
        assert_eq!(r.stdout, format!("bm-07 {uuid}: off\n"));
        setup.ok(&["power", "on", "bm-07", "--wait", "--timeout", "60"]);
    };
    in_parallel(&[&opposite, &same]);
}

#[test]
fn a_relative_watcher_conf_works_for_nodes_and_power() {
    let Some(s) = services() else { return };
    let setup = s.setup("");
    let dir = setup.dir.path();
    let r = setup
        .run_in(Some(dir), &["nodes", "--watcher-conf", "watcher.conf", "--drop-in-root", ".", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), NODES);
    let r = setup.run_in(Some(dir), &["power", "status", "bm-03", "--watcher-conf", "./watcher.conf"]);
    assert_eq!((r.code, r.stdout.clone()), (0, format!("bm-03 {}: on\n", s.uuid("bm-03"))), "{}", r.stderr);
}
