//! `watcher-metal nodes --nova` against the MAAS and Nova simulators: the
//! pairs Watcher makes (expected values worked out here from the simulators'
//! data and Watcher's rule, not from the code under test), near misses,
//! running VMs, saving_energy's pools, microversions, faults, and secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::common::*;
use metal_sim::nova::{Fault, FaultRule, NovaSim, NovaSimConfig, SimHypervisor};
use metal_sim::{MaasSim, MaasSimConfig, PowerState, SimMachine};
use serde_json::Value;

const NOVA_PASSWORD: &str = "watcher-pass";

struct Env {
    maas: MaasSim,
    nova: NovaSim,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Env {
    fn new(machines: Vec<SimMachine>, hypervisors: Vec<SimHypervisor>, page_size: usize, extra_conf: &str) -> Env {
        Env::with_nova(machines, NovaSimConfig { hypervisors, page_size, ..Default::default() }, extra_conf)
    }

    fn with_nova(machines: Vec<SimMachine>, nova: NovaSimConfig, extra_conf: &str) -> Env {
        let maas = MaasSim::start(MaasSimConfig { machines, ..Default::default() }).unwrap();
        let nova = NovaSim::start(nova).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let conf = conf_path(dir.path());
        write(&conf, &format!("[DEFAULT]\ndebug = false\n\n{}\n{extra_conf}", nova.clients_auth_section()));
        let config = dir.path().join("charm.yaml");
        write(
            &config,
            &format!(
                "maas-url: {}\nmaas-api-key: {}\nmaas-timeout: 10\nwatcher-conf-path: {}\ndrop-in-root: {}\n",
                maas.base_url(),
                maas.admin_key(),
                conf.display(),
                drop_in_root(&conf).display()
            ),
        );
        Env { maas, nova, dir, config }
    }

    fn conf_path(&self) -> std::path::PathBuf {
        conf_path(self.dir.path())
    }

    /// Runs `nodes --nova ARGS`, checking that no secret is printed.
    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["nodes", "--nova"];
        all.extend_from_slice(args);
        all.extend(["-c", path_str(&self.config)]);
        let r = run(&all);
        let key = self.maas.admin_key();
        let mut secrets = vec![key.clone(), key.rsplit(':').next().unwrap().to_owned(), NOVA_PASSWORD.to_owned()];
        secrets.extend(self.nova.issued_tokens());
        for s in &secrets {
            assert!(!r.stdout.contains(s.as_str()) && !r.stderr.contains(s.as_str()), "a secret was printed");
        }
        r
    }

    fn json(&self) -> Value {
        let r = self.run(&["--format", "json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }
}

/// 20 machines `node-0001.maas`.. (10 and 20 Ready and off, the rest
/// Deployed and on), and hypervisors: 1-12 generated (exact fqdns, i % 3
/// servers), 13 by its short name, 14 in capitals, 15 in another domain, 16
/// and 20 exact with no servers, and one no machine has.
fn fleet() -> (Vec<SimMachine>, Vec<SimHypervisor>) {
    let machines = SimMachine::generate(20);
    let mut hypervisors = SimHypervisor::generate(12);
    hypervisors.push(SimHypervisor::new(13, "node-0013", 0));
    hypervisors.push(SimHypervisor::new(14, "NODE-0014.MAAS", 1));
    hypervisors.push(SimHypervisor::new(15, "node-0015.example.com", 0));
    hypervisors.push(SimHypervisor::new(16, "node-0016.maas", 0));
    hypervisors.push(SimHypervisor::new(20, "node-0020.maas", 0));
    hypervisors.push(SimHypervisor::new(99, "node-0099.maas", 0));
    (machines, hypervisors)
}

/// Watcher's rule, from the simulators' own data: machine → hypervisor
/// whose hostname is its fqdn exactly.
fn expected_pairs(machines: &[SimMachine], hypervisors: &[SimHypervisor]) -> BTreeMap<String, SimHypervisor> {
    let by_name: BTreeMap<&str, &SimHypervisor> = hypervisors.iter().map(|h| (h.hostname.as_str(), h)).collect();
    machines
        .iter()
        .filter_map(|m| by_name.get(m.fqdn().as_str()).map(|h| (m.system_id.clone(), (*h).clone())))
        .collect()
}

/// saving_energy's pool for a MAAS machine and its hypervisor.
fn expected_pool(m: &SimMachine, h: &SimHypervisor) -> &'static str {
    match (h.running_vms(), m.power_state) {
        (0, PowerState::On) => "power_off_candidate",
        (0, PowerState::Off) => "power_on_reserve",
        (0, _) => "ignored",
        _ => "busy",
    }
}

#[test]
fn pairs_exactly_what_watcher_pairs_with_vms_and_pools() {
    let (machines, hypervisors) = fleet();
    let env = Env::new(machines.clone(), hypervisors.clone(), 3, "");
    let v = env.json();
    let want = expected_pairs(&machines, &hypervisors);
    assert_eq!(want.len(), 14, "the fixture pairs 1-12, 16 and 20");

    let rows = v["hypervisors"].as_array().unwrap();
    assert_eq!(rows.len(), hypervisors.len());
    let got: BTreeMap<String, String> = rows
        .iter()
        .filter(|r| r["watcher"] == "manages")
        .map(|r| (r["node_id"].as_str().unwrap().to_owned(), r["id"].as_str().unwrap().to_owned()))
        .collect();
    let want_ids: BTreeMap<String, String> = want.iter().map(|(m, h)| (m.clone(), h.uuid.clone())).collect();
    assert_eq!(got, want_ids);
    assert_eq!(v["summary"]["managed"], 14);

    // Every hypervisor with its state, status and running VMs, as Nova has them.
    for (row, h) in rows.iter().zip(&hypervisors) {
        assert_eq!(row["hostname"], h.hostname.as_str());
        assert_eq!(row["state"], h.state.as_str());
        assert_eq!(row["status"], h.status.as_str());
        assert_eq!(row["running_vms"], h.running_vms(), "{}", h.hostname);
    }
    // saving_energy's pool for every pair.
    let by_id: BTreeMap<&str, &SimMachine> = machines.iter().map(|m| (m.system_id.as_str(), m)).collect();
    for row in rows.iter().filter(|r| r["watcher"] == "manages") {
        let m = by_id[row["node_id"].as_str().unwrap()];
        assert_eq!(row["saving_energy"], expected_pool(m, &want[&m.system_id]), "{}", m.fqdn());
    }
    let pools = |pool: &str| rows.iter().filter(|r| r["saving_energy"] == pool).count();
    assert_eq!(pools("power_on_reserve"), 1, "node-0020 is off with no VMs");
    assert_eq!(v["summary"]["power_off_candidates"], pools("power_off_candidate"));

    // Every near miss named, with the machine it was meant for.
    let misses: BTreeSet<(String, String, String)> = v["near_misses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["hypervisor"].as_str().unwrap().into(),
                m["kind"].as_str().unwrap().into(),
                m["node_key"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect: BTreeSet<(String, String, String)> = [
        ("node-0013", "short_name", "node-0013.maas"),
        ("NODE-0014.MAAS", "case", "node-0014.maas"),
        ("node-0015.example.com", "other_domain", "node-0015.maas"),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
    .collect();
    assert_eq!(misses, expect);
    let unknown = rows.iter().find(|r| r["hostname"] == "node-0099.maas").unwrap();
    assert_eq!(unknown["watcher"], "skips");
    assert_eq!(unknown["reason"], "no MAAS machine has fqdn `node-0099.maas`");
    let unpaired: BTreeSet<&str> =
        v["unpaired_nodes"].as_array().unwrap().iter().map(|u| u["node_name"].as_str().unwrap()).collect();
    let want_unpaired: BTreeSet<String> =
        machines.iter().filter(|m| !want.contains_key(&m.system_id)).map(SimMachine::fqdn).collect();
    assert_eq!(unpaired, want_unpaired.iter().map(String::as_str).collect());

    // Paged a few at a time, as Nova pages without a limit: Watcher's own
    // pages. A full page carries a next link, so 18 in threes is 6 pages
    // and an empty one.
    let stats = env.nova.stats();
    assert_eq!(hypervisors.len(), 18);
    assert_eq!(stats.pages, 7);
    assert_eq!(stats.limit_requests, 0);
    assert_eq!(stats.last_microversion.as_deref(), Some("2.56"));
    assert_eq!(stats.with_servers_requests, 0);
    assert_eq!(v["nova"]["pages"], 7);
    assert_eq!(v["nova"]["running_vms_from"], "running_vms");
    // Pairs past Nova's first page are flagged: novaclient reads one page.
    let first_page: BTreeSet<&str> = hypervisors[..3].iter().map(|h| h.hostname.as_str()).collect();
    let beyond = want.values().filter(|h| !first_page.contains(h.hostname.as_str())).count();
    assert_eq!(v["summary"]["beyond_first_page"], beyond);
    assert!(v["warnings"][0].as_str().unwrap().contains("first page"));
}

#[test]
fn the_table_names_every_near_miss_and_shows_vms() {
    let (machines, hypervisors) = fleet();
    let env = Env::new(machines.clone(), hypervisors, 1000, "");
    let r = env.run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = |host: &str| {
        r.stdout.lines().find(|l| l.starts_with(&format!("{host} "))).unwrap_or_else(|| panic!("{}", r.stdout))
    };
    let cols = |host: &str| line(host).split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let id = |i: usize| machines[i - 1].system_id.clone();
    // HYPERVISOR STATE STATUS VMS WATCHER NODE POWER SAVING_ENERGY
    assert_eq!(cols("node-0002.maas")[..7], ["node-0002.maas", "up", "enabled", "2", "manages", &id(2), "on"]);
    assert!(line("node-0003.maas").contains("power-off candidate"));
    assert!(line("node-0020.maas").contains("power-on reserve"));
    assert!(line("node-0011.maas").contains(" down "), "MAAS pairs are kept when the hypervisor is down");
    assert!(line("node-0013").contains("skips"));
    for needle in [
        format!(
            "node-0013 is the short name of machine fqdn `node-0013.maas` (node {}); Watcher compares exactly",
            id(13)
        ),
        format!("NODE-0014.MAAS differs only in case from `node-0014.maas` (node {})", id(14)),
        format!("node-0015.example.com has another domain than machine fqdn `node-0015.maas` (node {})", id(15)),
    ] {
        assert!(r.stdout.contains(&needle), "missing {needle}:\n{}", r.stdout);
    }
    assert!(
        r.stdout.contains("14 of 18 hypervisors can be power-managed by Watcher via maas; 3 near misses, 6 nodes without a hypervisor"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Nova: 18 hypervisors in 1 page(s) at microversion 2.56; running VMs from running_vms"));
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn microversions_at_and_after_2_88_count_the_servers() {
    let (machines, hypervisors) = fleet();
    for (version, answered) in [("2.88", "2.88"), ("latest", "2.96")] {
        let env =
            Env::new(machines.clone(), hypervisors.clone(), 4, &format!("[nova_client]\napi_version = {version}\n"));
        let v = env.json();
        assert_eq!(v["nova"]["microversion"], answered);
        assert_eq!(v["nova"]["running_vms_from"], "servers");
        for (row, h) in v["hypervisors"].as_array().unwrap().iter().zip(&hypervisors) {
            assert_eq!(row["running_vms"], h.running_vms(), "{version} {}", h.hostname);
        }
        let stats = env.nova.stats();
        assert_eq!(stats.with_servers_requests, stats.pages);
        assert_eq!(v["summary"]["managed"], 14);
    }
    // Below 2.88 Watcher's running_vms is read, and servers are not listed.
    let env = Env::new(machines.clone(), hypervisors.clone(), 1000, "[nova_client]\napi_version = 2.87\n");
    let v = env.json();
    assert_eq!(v["nova"]["running_vms_from"], "running_vms");
    assert_eq!(env.nova.stats().with_servers_requests, 0);
}

#[test]
fn microversions_watcher_or_nova_refuse() {
    let (machines, hypervisors) = fleet();
    let env = Env::new(machines.clone(), hypervisors.clone(), 1000, "[nova_client]\napi_version = 2.53\n");
    let r = env.run(&[]);
    assert_eq!(r.code, 55, "{}", r.stderr);
    assert!(r.stderr.contains("api_version 2.53 is below 2.56, the lowest Watcher accepts"), "{}", r.stderr);
    assert_eq!((env.maas.stats().requests, env.nova.stats().requests), (0, 0), "refused before any request");

    let nova = NovaSimConfig { hypervisors, max_version: "2.87".into(), ..Default::default() };
    let env = Env::with_nova(machines, nova, "[nova_client]\napi_version = 2.88\n");
    let r = env.run(&[]);
    assert_eq!(r.code, 57, "{}", r.stderr);
    assert!(r.stderr.contains("Nova does not support API version 2.88: Version 2.88 is not supported by the API. Minimum is 2.1 and maximum is 2.87."), "{}", r.stderr);
    assert!(r.stderr.contains("hint: set [nova_client] api_version"));
}

#[test]
fn endpoint_type_and_region_pick_the_catalog_entry() {
    let (machines, hypervisors) = fleet();
    let env = Env::new(
        machines.clone(),
        hypervisors.clone(),
        1000,
        "[nova_client]\nendpoint_type = internalURL\nregion_name = RegionOne\n",
    );
    let v = env.json();
    assert_eq!(v["nova"]["endpoint"], format!("{}/", env.nova.nova_url_for("internal")));
    assert_eq!(env.nova.stats().by_interface.get("internal"), Some(&1));
    let env = Env::new(machines, hypervisors, 1000, "[nova_client]\nregion_name = RegionTwo\n");
    let r = env.run(&[]);
    assert_eq!(r.code, 56, "{}", r.stderr);
    assert!(r
        .stderr
        .contains("no compute endpoint with interface `public` in region `RegionTwo` in the Keystone catalog"));
}

fn status_fault(status: u16, body: &str) -> FaultRule {
    FaultRule {
        path_contains: "os-hypervisors".into(),
        op: None,
        times: None,
        fault: Fault::Status { status, content_type: "application/json".into(), body: body.into(), retry_after: None },
    }
}

#[test]
fn nova_and_keystone_failures_have_their_codes() {
    let (machines, hypervisors) = fleet();
    let env = Env::new(machines, hypervisors, 1000, "");
    env.nova.add_fault(status_fault(
        403,
        r#"{"forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:os-hypervisors:list-detail to be performed."}}"#,
    ));
    let r = env.run(&[]);
    assert_eq!(r.code, 58, "{}", r.stderr);
    assert!(r.stderr.contains(
        "error: Nova refused (403): Policy doesn't allow os_compute_api:os-hypervisors:list-detail to be performed."
    ));
    assert!(r.stderr.contains("hint: listing hypervisors needs an admin role"));
    env.nova.clear_faults();
    env.nova.add_fault(status_fault(500, "<html><body>Internal Server Error</body></html>"));
    let r = env.run(&[]);
    assert_eq!(r.code, 58);
    assert_eq!(r.stderr.lines().count(), 2, "one line and a hint: {}", r.stderr);
    env.nova.clear_faults();
    // A server that echoes a secret back: the message is masked (run() checks).
    env.nova.add_fault(status_fault(
        400,
        &format!(r#"{{"badRequest": {{"code": 400, "message": "bad login watcher/{NOVA_PASSWORD}"}}}}"#),
    ));
    let r = env.run(&[]);
    assert_eq!(r.code, 58);
    assert!(r.stderr.contains("Nova refused (400): bad login watcher/"), "{}", r.stderr);
    env.nova.clear_faults();

    // Keystone refusing the password, and a section that is missing.
    let conf = env.conf_path();
    let text = std::fs::read_to_string(&conf).unwrap();
    write(&conf, &text.replace(&format!("password = {NOVA_PASSWORD}"), "password = wrong-one"));
    let r = env.run(&[]);
    assert_eq!(r.code, 51, "{}", r.stderr);
    assert!(r.stderr.contains("Keystone refused (401)"));
    assert!(!r.stderr.contains("wrong-one"));
    write(&conf, "[DEFAULT]\ndebug = false\n");
    let r = env.run(&[]);
    assert_eq!(r.code, 50, "{}", r.stderr);
    assert!(r.stderr.contains("[watcher_clients_auth]: the section is missing or empty"));
}

#[test]
fn transport_faults_end_with_a_diagnosis_in_time() {
    let (machines, hypervisors) = fleet();
    let env = Env::new(machines, hypervisors, 1000, "");
    let conf = env.conf_path();
    let text = std::fs::read_to_string(&conf).unwrap();
    write(&conf, &text.replace("[watcher_clients_auth]\n", "[watcher_clients_auth]\ntimeout = 2\n"));
    for (fault, code, words) in [
        (Fault::Hang, 22, "no answer within 2 s"),
        (Fault::Trickle { bytes_per_sec: 100 }, 22, "no answer within 2 s"),
        (Fault::CloseMidResponse, 38, "connection failed"),
        (Fault::Garbage, 38, "connection failed"),
    ] {
        env.nova.clear_faults();
        env.nova.add_fault(FaultRule {
            path_contains: "os-hypervisors".into(),
            op: None,
            times: None,
            fault: fault.clone(),
        });
        let started = Instant::now();
        let r = env.run(&[]);
        assert_eq!(r.code, code, "{fault:?}: {}", r.stderr);
        assert!(r.stderr.contains(words), "{fault:?}: {}", r.stderr);
        assert!(started.elapsed() < Duration::from_secs(20), "{fault:?} took {:?}", started.elapsed());
    }
}

#[test]
fn an_expired_token_is_renewed_once() {
    let (machines, hypervisors) = fleet();
    let env = Env::new(machines, hypervisors, 1000, "");
    // The first listing request is refused as an expired token would be.
    env.nova.add_fault(FaultRule {
        path_contains: "os-hypervisors".into(),
        op: None,
        times: Some(1),
        fault: Fault::Status {
            status: 401,
            content_type: "application/json".into(),
            body: r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#.into(),
            retry_after: None,
        },
    });
    let v = env.json();
    assert_eq!(v["summary"]["managed"], 14);
    assert_eq!(env.nova.stats().tokens_issued, 2);
}

#[test]
fn nothing_paired_is_reported_not_hidden() {
    let machines = SimMachine::generate(3);
    let hypervisors = vec![SimHypervisor::new(1, "node-0001", 0), SimHypervisor::new(2, "node-0002", 1)];
    let env = Env::new(machines, hypervisors, 1000, "");
    let r = env.run(&[]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains(
            "0 of 2 hypervisors can be power-managed by Watcher via maas; 2 near misses, 3 nodes without a hypervisor"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("saving_energy (default parameters): 0 power-off candidates"));
}

#[test]
fn hypervisors_file_and_nova_are_exclusive() {
    let r = run(&["nodes", "--nova", "--hypervisors", "-", "-c", "/nonexistent.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}
