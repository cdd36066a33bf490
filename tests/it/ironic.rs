//! The Ironic backend against the simulated Keystone + Ironic: `nodes` and
//! `power` through the real binary (MAAS unset, credentials from
//! watcher.conf's `[watcher_clients_auth]`), and the library client where a
//! test must act between two calls.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{conf_path, drop_in_root, path_str, run, write, Run};
use metal_sim::ironic::{IronicSim, IronicSimConfig, SimNode};
use serde_json::Value;
use watcher_metal::clients::http::HttpOptions;
use watcher_metal::clients::openstack::ironic::{IronicClient, IronicRetry, IronicSettings};
use watcher_metal::clients::openstack::keystone::KeystoneAuth;
use watcher_metal::exit_codes as exit;
use watcher_metal::metal::{MetalClient, PowerState};

/// A password that must never be shown.
const PASSWORD: &str = "Ir0nic-Pa55word-xyzzy";

/// A simulator, and a charm config whose watcher-conf-path holds its
/// credentials.
struct Setup {
    sim: IronicSim,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(config: IronicSimConfig) -> Setup {
        Setup::with(config, "")
    }

    /// `charm_yaml`: more charm options, one a line.
    fn with(config: IronicSimConfig, charm_yaml: &str) -> Setup {
        let sim =
            IronicSim::start(IronicSimConfig { users: vec![("watcher".into(), PASSWORD.into())], ..config }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let conf = conf_path(dir.path());
        write(&conf, &format!("[DEFAULT]\ndebug = false\n\n{}", sim.clients_auth_section()));
        let config = dir.path().join("charm.yaml");
        write(
            &config,
            &format!(
                "watcher-conf-path: {}\ndrop-in-root: {}\n{charm_yaml}",
                conf.display(),
                drop_in_root(&conf).display()
            ),
        );
        Setup { sim, dir, config }
    }

    fn conf_path(&self) -> PathBuf {
        conf_path(self.dir.path())
    }

    /// Runs `watcher-metal ARGS -c CONFIG` and checks that no secret shows.
    fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-c", path_str(&self.config)]);
        let r = run(&all);
        self.assert_no_secret(&r);
        r
    }

    fn assert_no_secret(&self, r: &Run) {
        let tokens = self.sim.issued_tokens();
        for secret in tokens.iter().map(String::as_str).chain([PASSWORD]) {
            assert!(!r.stdout.contains(secret), "secret in stdout:\n{}", r.stdout);
            assert!(!r.stderr.contains(secret), "secret in stderr:\n{}", r.stderr);
        }
        assert!(
            !r.stdout.contains("gAAAAAB") && !r.stderr.contains("gAAAAAB"),
            "a token shows:\n{}{}",
            r.stdout,
            r.stderr
        );
    }

    fn json(&self, args: &[&str]) -> Value {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
    }

    fn count(&self, endpoint: &str) -> usize {
        self.sim.stats().by_endpoint.get(endpoint).copied().unwrap_or(0)
    }

    /// The library client Watcher's configuration gives, with quick retries.
    fn client(&self) -> IronicClient {
        let text = std::fs::read_to_string(self.conf_path()).unwrap();
        let auth =
            KeystoneAuth::from_sections(&|section| watcher_metal::watcher::ini::read_section(&text, section)).unwrap();
        let retry = IronicRetry { max_retries: 5, interval: Duration::from_millis(20) };
        IronicClient::new(auth, IronicSettings::default(), HttpOptions::new(Duration::from_secs(20)), retry).unwrap()
    }
}

/// Ten nodes: bm-0003 with no known power state, the 5th and 10th
/// available and off, the rest active and on.
fn nodes_with_unknown() -> Vec<SimNode> {
    let mut nodes = SimNode::generate(10);
    nodes[2].power_state = None;
    nodes
}

fn uuid_of(sim: &IronicSim, name: &str) -> String {
    sim.node(name).unwrap().uuid
}

#[test]
fn nodes_table_uses_ironic_when_maas_is_unset() {
    let s = Setup::new(IronicSimConfig { nodes: nodes_with_unknown(), ..Default::default() });
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 12, "{}", r.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["ID", "HOSTNAME", "POWER", "STATE", "NOTE"]);
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(first, [uuid_of(&s.sim, "bm-0001").as_str(), "bm-0001", "on", "active"]);
    let third: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(&third[1..], ["bm-0003", "unknown", "active"]);
    let fifth: Vec<&str> = lines[5].split_whitespace().collect();
    assert_eq!(&fifth[1..], ["bm-0005", "off", "available"]);
    assert_eq!(lines[11], "10 nodes (7 on, 2 off, 1 unknown, 0 error) via ironic");

    // One token, one listing request with the detail, no per-node GETs.
    let stats = s.sim.stats();
    assert_eq!(stats.tokens_issued, 1);
    assert_eq!(s.count("POST /v3/auth/tokens"), 1);
    assert_eq!(s.count("GET /v1/nodes/detail"), 1);
    assert_eq!(s.count("GET /v1/nodes/{id}"), 0);
    assert_eq!(stats.last_microversion.as_deref(), Some("1.46"));
    assert_eq!(stats.requests_without_microversion, 0);
    assert_eq!(stats.by_interface.get("public"), Some(&1));
}

#[test]
fn nodes_json_maps_power_states_as_watcher_does() {
    let mut nodes = nodes_with_unknown();
    nodes[0].power_state = Some("error".into());
    nodes[1].power_state = Some("soft power off".into());
    let s = Setup::new(IronicSimConfig { nodes, ..Default::default() });
    let v = s.json(&["nodes", "--format", "json"]);
    assert_eq!(v["backend"], "ironic");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 10);
    let by_name = |name: &str| nodes.iter().find(|n| n["hostname"] == name).unwrap().clone();
    let cases = [
        ("bm-0001", "unknown", Value::from("error")),
        ("bm-0002", "off", Value::from("soft power off")),
        ("bm-0003", "unknown", Value::Null),
        ("bm-0004", "on", Value::from("power on")),
        ("bm-0005", "off", Value::from("power off")),
    ];
    for (name, state, raw) in cases {
        let n = by_name(name);
        assert_eq!(n["power_state"], state, "{name}");
        assert_eq!(n["raw_power_state"], raw, "{name}");
    }
    let n4 = by_name("bm-0004");
    assert_eq!(n4["id"], uuid_of(&s.sim, "bm-0004"));
    assert_eq!(n4["hypervisor_match"], "hv-0004");
    assert_eq!(n4["provision_state"], "active");
    assert_eq!(n4["deployed"], true);
    assert_eq!(n4["fqdn"], "");
    assert_eq!(by_name("bm-0005")["deployed"], false);
    assert_eq!(by_name("bm-0005")["hypervisor_match"], Value::Null);
    assert_eq!(v["summary"], serde_json::json!({"on": 5, "off": 3, "unknown": 2, "error": 0}));
}

#[test]
fn listing_follows_next_one_request_per_page() {
    let s = Setup::new(IronicSimConfig { nodes: SimNode::generate(10), page_size: 3, ..Default::default() });
    let v = s.json(&["nodes", "--format", "json"]);
    let ids: Vec<&str> = v["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    let expected: Vec<String> = s.sim.nodes().into_iter().map(|n| n.uuid).collect();
    assert_eq!(ids, expected);
    // 3 + 3 + 3 + 1.
    assert_eq!(s.count("GET /v1/nodes/detail"), 4);
    assert_eq!(s.count("GET /v1/nodes/{id}"), 0);
    assert_eq!(s.sim.stats().tokens_issued, 1);

    // Exactly full pages: the last `next` leads to an empty page.
    let s = Setup::new(IronicSimConfig { nodes: SimNode::generate(9), page_size: 3, ..Default::default() });
    assert_eq!(s.json(&["nodes", "--format", "json"])["nodes"].as_array().unwrap().len(), 9);
    assert_eq!(s.count("GET /v1/nodes/detail"), 4);
}

#[test]
fn a_token_expiring_between_pages_costs_one_reauthentication() {
    let s = Setup::new(IronicSimConfig { nodes: SimNode::generate(10), page_size: 3, ..Default::default() });
    s.sim.expire_tokens_after(2);
    let v = s.json(&["nodes", "--format", "json"]);
    assert_eq!(v["nodes"].as_array().unwrap().len(), 10);
    let stats = s.sim.stats();
    assert_eq!(stats.tokens_issued, 2, "{stats:?}");
    assert_eq!(stats.rejected_tokens, 1);
    // The refused third page is asked again with the new token.
    assert_eq!(s.count("GET /v1/nodes/detail"), 5);

    // Between two commands: each run authenticates anew.
    s.sim.expire_tokens();
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.sim.stats().tokens_issued, 3);
    assert_eq!(s.sim.stats().rejected_tokens, 1);
}

#[test]
fn the_library_client_reauthenticates_once_when_its_token_expires() {
    let s = Setup::new(IronicSimConfig::default());
    let client = s.client();
    assert_eq!(client.list_nodes().unwrap().len(), 10);
    assert_eq!(client.list_nodes().unwrap().len(), 10);
    assert_eq!(s.sim.stats().tokens_issued, 1, "the token is reused");
    s.sim.expire_tokens();
    assert_eq!(client.list_nodes().unwrap().len(), 10);
    let stats = s.sim.stats();
    assert_eq!((stats.tokens_issued, stats.rejected_tokens), (2, 1));
    assert_eq!(s.count("GET /v1/nodes/detail"), 4);
    // One node by uuid and by name, and its recorded power state.
    let uuid = uuid_of(&s.sim, "bm-0002");
    assert_eq!(client.get_node(&uuid).unwrap().hostname, "bm-0002");
    assert_eq!(client.get_node("bm-0002").unwrap().id, uuid);
    assert_eq!(client.query_power_state("bm-0002").unwrap(), PowerState::On);
    assert_eq!(s.sim.stats().tokens_issued, 2);
}

#[test]
fn the_library_client_retries_a_locked_node() {
    let s = Setup::new(IronicSimConfig::default());
    let client = s.client();
    let uuid = uuid_of(&s.sim, "bm-0001");
    s.sim.lock_node(&uuid, 3);
    client.power_off(&uuid).unwrap();
    assert_eq!(s.count("PUT /v1/nodes/{id}/states/power"), 4);
    assert_eq!(s.sim.node(&uuid).unwrap().power_state.as_deref(), Some("power off"));
    // More locks than retries: the conductor's message comes through.
    s.sim.lock_node(&uuid, 10);
    let err = client.power_on(&uuid).unwrap_err().to_string();
    assert!(err.starts_with("Ironic refused (409): Node "), "{err}");
    assert!(err.contains("is locked by host ironic-conductor-1, please retry"), "{err}");
}

#[test]
fn hypervisors_match_on_compute_node_id() {
    let s = Setup::new(IronicSimConfig::default());
    let list = s.dir.path().join("hypervisors.txt");
    write(&list, "# openstack hypervisor list -f value -c ID\nhv-0001\nhv-0003\nbm-0005\nhv-0042\n");
    let v = s.json(&["nodes", "--hypervisors", path_str(&list), "--format", "json"]);
    assert_eq!(v["backend"], "ironic");
    assert_eq!((v["managed"].as_u64(), v["skipped"].as_u64()), (Some(2), Some(2)));
    let hv = v["hypervisors"].as_array().unwrap();
    assert_eq!(hv[0]["node_id"], uuid_of(&s.sim, "bm-0001"));
    assert_eq!(hv[0]["power_state"], "on");
    assert_eq!(hv[1]["node_id"], uuid_of(&s.sim, "bm-0003"));
    let reason = hv[2]["reason"].as_str().unwrap();
    assert!(reason.contains("is named `bm-0005` but has no extra.compute_node_id"), "{reason}");
    assert!(hv[3]["reason"].as_str().unwrap().starts_with("no Ironic node has extra.compute_node_id `hv-0042`"));

    let r = s.run(&["nodes", "--hypervisors", path_str(&list)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.lines().any(|l| l.starts_with("hv-0001") && l.contains("manages")), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.starts_with("hv-0042") && l.contains("skips")), "{}", r.stdout);
    assert!(r.stdout.ends_with("2 of 4 hypervisors can be power-managed by Watcher via ironic\n"), "{}", r.stdout);
}

#[test]
fn power_status_by_uuid_and_by_name() {
    let s = Setup::new(IronicSimConfig { nodes: nodes_with_unknown(), ..Default::default() });
    let uuid = uuid_of(&s.sim, "bm-0001");
    let r = s.run(&["power", "status", &uuid]);
    assert_eq!((r.code, r.stdout.as_str()), (0, format!("bm-0001 {uuid}: on\n").as_str()), "{}", r.stderr);
    let r = s.run(&["power", "status", "bm-0005"]);
    assert_eq!(r.stdout, format!("bm-0005 {}: off\n", uuid_of(&s.sim, "bm-0005")));
    let v = s.json(&["power", "status", "bm-0003", "--format", "json"]);
    assert_eq!(v["power_state"], "unknown");
    assert_eq!(v["id"], uuid_of(&s.sim, "bm-0003"));
    assert_eq!(s.count("GET /v1/nodes/{id}/states"), 3);
    assert_eq!(s.count("PUT /v1/nodes/{id}/states/power"), 0);

    let r = s.run(&["power", "status", "bm-9999"]);
    assert_eq!(r.code, i32::from(exit::NODE_NOT_FOUND), "{}", r.stderr);
    assert!(r.stderr.contains("no node `bm-9999`"), "{}", r.stderr);
}

#[test]
fn power_off_and_on_with_wait() {
    let s = Setup::new(IronicSimConfig { power_delay: Duration::from_millis(300), ..Default::default() });
    let uuid = uuid_of(&s.sim, "bm-0002");
    let r = s.run(&["power", "off", "bm-0002", "--wait", "--timeout", "120"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("bm-0002 {uuid}: off\n"));
    assert_eq!(s.sim.node(&uuid).unwrap().power_state.as_deref(), Some("power off"));
    assert_eq!(s.count("PUT /v1/nodes/{id}/states/power"), 1);

    let v = s.json(&["power", "on", &uuid, "--wait", "--timeout", "120", "--format", "json"]);
    assert_eq!((v["power_state"].as_str(), v["note"].as_str()), (Some("on"), None));
    assert_eq!(s.sim.node(&uuid).unwrap().power_state.as_deref(), Some("power on"));
    assert_eq!(s.count("PUT /v1/nodes/{id}/states/power"), 2);

    // Without --wait: requested; already there: nothing sent.
    let r = s.run(&["power", "off", "bm-0003"]);
    assert_eq!((r.code, r.stdout.clone()), (0, format!("bm-0003 {}: off (requested)\n", uuid_of(&s.sim, "bm-0003"))));
    let r = s.run(&["power", "on", "bm-0004"]);
    assert_eq!(r.stdout, format!("bm-0004 {}: on (already)\n", uuid_of(&s.sim, "bm-0004")));
    assert_eq!(s.count("PUT /v1/nodes/{id}/states/power"), 3);
    assert_eq!(s.sim.stats().last_microversion.as_deref(), Some("1.46"));
}

#[test]
fn a_locked_node_is_retried() {
    let s = Setup::new(IronicSimConfig::default());
    let uuid = uuid_of(&s.sim, "bm-0001");
    s.sim.lock_node(&uuid, 1);
    let r = s.run(&["power", "off", "bm-0001"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("bm-0001 {uuid}: off (requested)\n"));
    assert_eq!(s.count("PUT /v1/nodes/{id}/states/power"), 2);
    assert_eq!(s.sim.node(&uuid).unwrap().power_state.as_deref(), Some("power off"));
}

#[test]
fn power_off_of_a_node_not_in_use_needs_force() {
    let mut nodes = SimNode::generate(10);
    nodes[4].power_state = Some("power on".into());
    let s = Setup::new(IronicSimConfig { nodes, ..Default::default() });
    let uuid = uuid_of(&s.sim, "bm-0005");
    let r = s.run(&["power", "off", "bm-0005"]);
    assert_eq!(r.code, i32::from(exit::POWER_OFF_REFUSED), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("refusing to power off bm-0005 ({uuid}): it is `available`, not in use")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(s.count("PUT /v1/nodes/{id}/states/power"), 0);
    assert_eq!(s.sim.node(&uuid).unwrap().power_state.as_deref(), Some("power on"));

    let r = s.run(&["power", "off", "bm-0005", "--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.count("PUT /v1/nodes/{id}/states/power"), 1);
    assert_eq!(s.sim.node(&uuid).unwrap().power_state.as_deref(), Some("power off"));
}

#[test]
fn a_wrong_password_is_keystones_refusal() {
    let s = Setup::new(IronicSimConfig::default());
    let wrong = "Not-The-Right-Pa55word";
    let conf = std::fs::read_to_string(s.conf_path()).unwrap().replace(PASSWORD, wrong);
    write(&s.conf_path(), &conf);
    for args in [&["nodes"][..], &["power", "status", "bm-0001"]] {
        let r = s.run(args);
        assert_eq!(r.code, i32::from(exit::KEYSTONE_REFUSED), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("Keystone refused (401): The request you have made requires authentication."),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("check the user, password and project in [watcher_clients_auth]"), "{}", r.stderr);
        assert!(!r.stderr.contains(wrong) && !r.stdout.contains(wrong), "{}", r.stderr);
    }
    assert_eq!(s.sim.stats().tokens_issued, 0);
    assert_eq!(s.count("GET /v1/nodes/detail"), 0);
}

#[test]
fn application_credentials_from_watcher_conf() {
    let s = Setup::new(IronicSimConfig {
        app_credentials: vec![("a1b2c3".into(), "App-Cred-Secret-123".into())],
        ..Default::default()
    });
    write(
        &s.conf_path(),
        &format!(
            "[watcher_clients_auth]\nauth_type = v3applicationcredential\nauth_url = {}/v3\n\
             application_credential_id = a1b2c3\napplication_credential_secret = App-Cred-Secret-123\n",
            s.sim.auth_url()
        ),
    );
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("App-Cred-Secret-123") && !r.stderr.contains("App-Cred-Secret-123"));
    assert_eq!(s.sim.stats().tokens_issued, 1);
}

#[test]
fn endpoint_type_and_region_pick_the_catalog_entry() {
    let s =
        Setup::with(IronicSimConfig::default(), "ironic-endpoint-type: internalURL\nironic-region-name: RegionOne\n");
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let stats = s.sim.stats();
    assert_eq!(stats.by_interface.get("internal"), Some(&1), "{stats:?}");
    assert_eq!(stats.by_interface.get("public"), None);

    let s = Setup::with(IronicSimConfig::default(), "ironic-region-name: RegionTwo\n");
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, i32::from(exit::IRONIC_NO_ENDPOINT), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("no baremetal endpoint with interface `public` in region `RegionTwo` in the Keystone catalog"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("ironic-endpoint-type and ironic-region-name"), "{}", r.stderr);
    assert_eq!(s.count("GET /v1/nodes/detail"), 0);

    let s = Setup::with(
        IronicSimConfig { region: "RegionTwo".into(), ..Default::default() },
        "ironic-endpoint-type: adminURL\nironic-region-name: RegionTwo\n",
    );
    let r = s.run(&["power", "status", "bm-0001"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.sim.stats().by_interface.get("admin"), Some(&2));
}

#[test]
fn microversions_follow_ironic_api_version() {
    let s = Setup::with(IronicSimConfig::default(), "ironic-api-version: '1.200'\n");
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, i32::from(exit::IRONIC_MICROVERSION), "{}", r.stderr);
    assert!(r.stderr.contains("Ironic does not support API version 1.200 (it supports 1.1 to 1.99)"), "{}", r.stderr);
    assert!(r.stderr.contains("set ironic-api-version to 1"), "{}", r.stderr);
    assert_eq!(s.sim.stats().rejected_versions, 1);

    let s = Setup::with(IronicSimConfig::default(), "ironic-api-version: '1.78'\n");
    let r = s.run(&["power", "status", "bm-0001"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.sim.stats().last_microversion.as_deref(), Some("1.78"));

    // Below 1.43 (no `?detail=True`), listing still works.
    let s = Setup::with(IronicSimConfig::default(), "ironic-api-version: '1.30'\n");
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.sim.stats().last_microversion.as_deref(), Some("1.30"));

    let s = Setup::with(IronicSimConfig::default(), "ironic-api-version: latest\n");
    assert_eq!(s.run(&["nodes"]).code, 0);
    assert_eq!(s.sim.stats().last_microversion.as_deref(), Some("latest"));
}

#[test]
fn a_missing_section_or_an_unreachable_keystone_is_reported() {
    let s = Setup::new(IronicSimConfig::default());
    write(&s.conf_path(), "[DEFAULT]\ndebug = true\n");
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, i32::from(exit::KEYSTONE_CONFIG), "{}", r.stderr);
    assert!(r.stderr.contains("[watcher_clients_auth]: the section is missing or empty"), "{}", r.stderr);

    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let section = s.sim.clients_auth_section().replace(&s.sim.auth_url(), &format!("http://127.0.0.1:{port}/identity"));
    write(&s.conf_path(), &section);
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, i32::from(exit::REFUSED), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("error: Keystone: connection refused by 127.0.0.1:{port}")), "{}", r.stderr);
    assert_eq!(s.sim.stats().requests, 0);
}

/// A server on 127.0.0.1 that echoes each request (headers and body) in its
/// error answers, as a broken proxy or a debug-mode service might. With
/// `keystone_ok`, a token request gets a token (`tok-` followed by the
/// port) and a catalog whose baremetal endpoint is this server; every
/// other request gets `status`. Serves `requests` requests, then stops.
fn echo_server(status: u16, keystone_ok: bool, requests: usize) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let base = url.clone();
    let handle = std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok((mut conn, _)) = listener.accept() else { return };
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the body Content-Length announces.
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let (status, headers, body) = if keystone_ok && text.starts_with("POST ") {
                let body = serde_json::json!({"token": {"expires_at": "2999-01-01T00:00:00Z", "catalog": [
                    {"type": "baremetal", "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": base}]}
                ]}})
                .to_string();
                (201, format!("X-Subject-Token: tok-{}\r\n", base.rsplit(':').next().unwrap()), body)
            } else {
                let echoed = text.replace(['\r', '\n', '"', '\\'], " ");
                let body = format!(
                    "{{\"error\": {{\"code\": {status}, \"message\": \"{echoed}\"}}, \"error_message\": \"{echoed}\"}}"
                );
                (status, String::new(), body)
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status} Answer\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, handle)
}

#[test]
fn error_bodies_that_echo_secrets_are_masked() {
    let s = Setup::new(IronicSimConfig::default());
    // Keystone's answer echoes the request, password included.
    let (url, server) = echo_server(401, false, 1);
    write(&s.conf_path(), &s.sim.clients_auth_section().replace(&s.sim.auth_url(), &url));
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, i32::from(exit::KEYSTONE_REFUSED), "{}", r.stderr);
    assert!(r.stderr.contains("Keystone refused (401): POST ") && r.stderr.contains("<redacted>"), "{}", r.stderr);
    server.join().unwrap();

    // Ironic's answer echoes the request, token included.
    let (url, server) = echo_server(400, true, 2);
    write(&s.conf_path(), &s.sim.clients_auth_section().replace(&s.sim.auth_url(), &url));
    let r = s.run(&["nodes"]);
    assert_eq!(r.code, i32::from(exit::IRONIC_API), "{}", r.stderr);
    let token = format!("tok-{}", url.rsplit(':').next().unwrap());
    assert!(r.stderr.contains("Ironic refused (400): GET ") && r.stderr.contains("<redacted>"), "{}", r.stderr);
    assert!(!r.stderr.contains(&token), "{}", r.stderr);
    server.join().unwrap();
}
