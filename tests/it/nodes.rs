//! `watcher-metal nodes` and `watcher-metal power` against the MAAS simulator.

use std::time::Duration;

use crate::common::*;
use metal_sim::{BmcFailure, Fault, FaultRule, MaasSim, MaasSimConfig, PowerState, SimMachine};

fn config_for(sim: &MaasSim, dir: &tempfile::TempDir, timeout: u32) -> std::path::PathBuf {
    let path = dir.path().join("charm.yaml");
    write(
        &path,
        &format!(
            "maas-url: {}\nmaas-api-key: {}\nmaas-timeout: {timeout}\nwatcher-conf-path: {}\ndrop-in-root: {}\n",
            sim.base_url(),
            sim.admin_key(),
            conf_path(dir.path()).display(),
            drop_in_root(&conf_path(dir.path())).display()
        ),
    );
    path
}

struct Env {
    sim: MaasSim,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Env {
    fn new(config: MaasSimConfig) -> Env {
        Env::with_timeout(config, 10)
    }

    fn with_timeout(config: MaasSimConfig, timeout: u32) -> Env {
        let sim = MaasSim::start(config).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = config_for(&sim, &dir, timeout);
        Env { sim, _dir: dir, config }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-c", path_str(&self.config)]);
        let r = run(&all);
        let key = self.sim.admin_key();
        let secret = key.rsplit(':').next().unwrap();
        for s in [key.as_str(), secret] {
            assert!(!r.stdout.contains(s) && !r.stderr.contains(s), "key leaked");
        }
        r
    }
}

fn state_str(s: &PowerState) -> &'static str {
    match s {
        PowerState::On => "on",
        PowerState::Off => "off",
        PowerState::Unknown => "unknown",
        PowerState::Error => "error",
    }
}

#[test]
fn nodes_table_and_json() {
    let env = Env::new(MaasSimConfig::default());
    let machines = env.sim.machines();
    let r = env.run(&["nodes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("HOSTNAME") && lines[0].contains("POWER"));
    assert_eq!(lines.len(), machines.len() + 2);
    for (line, m) in lines[1..].iter().zip(&machines) {
        assert!(line.starts_with(&m.system_id), "{line}");
        assert!(line.contains(&m.fqdn()));
        assert!(line.contains(state_str(&m.power_state)));
    }
    assert!(lines.last().unwrap().ends_with("via maas"));

    let r = env.run(&["nodes", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["backend"], "maas");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), machines.len());
    assert_eq!(nodes[0]["id"], machines[0].system_id.as_str());
    assert_eq!(nodes[0]["fqdn"], machines[0].fqdn().as_str());
    assert_eq!(nodes[0]["power_state"], state_str(&machines[0].power_state));
    let on = machines.iter().filter(|m| m.power_state == PowerState::On).count();
    assert_eq!(v["summary"]["on"], on);
    // One listing call; no per-machine requests without --live.
    assert_eq!(env.sim.stats().by_endpoint.get("GET machines/"), Some(&2));
    assert_eq!(env.sim.stats().by_endpoint.get("GET machines/{id}/?op=query_power_state"), None);
}

#[test]
fn live_survey_survives_failing_and_hanging_bmcs() {
    let env = Env::with_timeout(MaasSimConfig { machines: SimMachine::generate(12), ..Default::default() }, 2);
    let machines = env.sim.machines();
    env.sim.set_bmc_failure(&machines[1].system_id, Some(BmcFailure::Unreachable));
    env.sim.set_bmc_failure(&machines[2].system_id, Some(BmcFailure::Error));
    env.sim.add_fault(FaultRule {
        path_contains: format!("machines/{}/", machines[3].system_id),
        op: Some("query_power_state".into()),
        times: None,
        fault: Fault::Hang,
    });
    let r = env.run(&["nodes", "--live", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 12);
    assert_eq!(nodes[1]["power_state"], "error");
    assert!(nodes[1]["error"].as_str().unwrap().contains("503"), "{}", nodes[1]);
    assert_eq!(nodes[2]["power_state"], "error");
    assert!(nodes[2]["error"].as_str().unwrap().contains("500"));
    assert_eq!(nodes[3]["power_state"], "error");
    assert_eq!(nodes[3]["error"], "no answer within 2 s");
    assert_eq!(nodes[0]["power_state"], state_str(&machines[0].power_state));
    assert!(nodes[0].get("error").is_none());
    assert_eq!(v["summary"]["error"], 3);
}

#[test]
fn live_survey_respects_the_concurrency_limit() {
    let env = Env::new(MaasSimConfig {
        machines: SimMachine::generate(40),
        power_query_delay: Duration::from_millis(40),
        max_concurrent_power_queries: Some(4),
        ..Default::default()
    });
    let r = env.run(&["nodes", "--live", "--concurrency", "4", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["summary"]["error"], 0, "no query was turned away");
    let stats = env.sim.stats();
    assert!(stats.max_concurrent_power_queries <= 4);
    assert!(stats.max_concurrent_power_queries >= 2, "queries ran in parallel");
    assert_eq!(stats.by_endpoint.get("GET machines/{id}/?op=query_power_state"), Some(&40));
}

#[test]
fn hypervisor_report_uses_watchers_rule() {
    let env = Env::new(MaasSimConfig::default());
    let m = env.sim.machines();
    let list = format!("{}\n{}\n{}\nghost.maas\n", m[0].fqdn(), m[1].hostname, m[2].fqdn().to_uppercase());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hypervisors.txt");
    write(&file, &list);
    let r = env.run(&["nodes", "--hypervisors", path_str(&file)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[1].starts_with(&m[0].fqdn()) && lines[1].contains("manages") && lines[1].contains(&m[0].system_id));
    assert!(
        lines[2].contains("skips")
            && lines[2].contains(&format!("is the short name of machine fqdn `{}`", m[1].fqdn()))
    );
    assert!(lines[3].contains("differs only in case"));
    assert!(lines[4].contains("no MAAS machine has fqdn `ghost.maas`"));
    assert_eq!(*lines.last().unwrap(), "1 of 4 hypervisors can be power-managed by Watcher via maas");

    // The same from stdin, as JSON.
    let mut args = vec!["nodes", "--hypervisors", "-", "--format", "json", "-c"];
    args.push(path_str(&env.config));
    let r = run_with(&args, &[], Some(&list));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((v["managed"].as_u64(), v["skipped"].as_u64()), (Some(1), Some(3)));
    assert_eq!(v["hypervisors"][1]["near_miss"], m[1].fqdn().as_str());

    let r = env.run(&["nodes", "--hypervisors", "/nonexistent/list"]);
    assert_eq!(r.code, 45);
}

#[test]
fn power_status_on_off_and_wait() {
    let env = Env::new(MaasSimConfig { power_change_delay: Duration::from_millis(300), ..Default::default() });
    let m = env.sim.machines();
    let deployed =
        m.iter().find(|x| x.owner.is_some() && x.power_type == "ipmi" && x.power_state == PowerState::On).unwrap();

    let r = env.run(&["power", "status", &deployed.hostname]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{} {}: on\n", deployed.hostname, deployed.system_id));

    let r = env.run(&["power", "on", &deployed.system_id]);
    assert_eq!(r.stdout, format!("{} {}: on (already)\n", deployed.hostname, deployed.system_id));

    let r = env.run(&["power", "off", &deployed.fqdn(), "--wait", "--timeout", "30"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{} {}: off\n", deployed.hostname, deployed.system_id));
    assert_eq!(env.sim.machine(&deployed.system_id).unwrap().power_state, PowerState::Off);

    let r = env.run(&["power", "on", &deployed.system_id, "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((v["power_state"].as_str(), v["note"].as_str()), (Some("on"), Some("requested")));
}

#[test]
fn power_refusals_are_explained() {
    let env = Env::new(MaasSimConfig::default());
    let m = env.sim.machines();
    let ready = m.iter().find(|x| x.owner.is_none()).unwrap();
    assert_eq!(ready.power_state, PowerState::Off);

    let r = env.run(&["power", "on", &ready.hostname]);
    assert_eq!(r.code, 44, "{}", r.stderr);
    assert!(r.stderr.starts_with(&format!(
        "error: MAAS will not power on {} ({}): it is `Ready`, and MAAS powers on only machines that are allocated or deployed",
        ready.hostname, ready.system_id
    )), "{}", r.stderr);
    assert!(r.stderr.contains("hint: deploy (or allocate) the machine in MAAS first"));

    // Power-off of a machine that is not deployed needs --force.
    env.sim.set_power_state(&ready.system_id, PowerState::On);
    let r = env.run(&["power", "off", &ready.system_id]);
    assert_eq!(r.code, 42, "{}", r.stderr);
    assert!(r.stderr.contains("refusing to power off"));
    assert_eq!(env.sim.machine(&ready.system_id).unwrap().power_state, PowerState::On);
    let r = env.run(&["power", "off", &ready.system_id, "--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let r = env.run(&["power", "status", "no-such-node"]);
    assert_eq!(r.code, 40);
    assert!(r.stderr.starts_with("error: no node `no-such-node`"));
}

#[test]
fn wait_gives_up_after_the_timeout() {
    let env = Env::new(MaasSimConfig { power_change_delay: Duration::from_secs(30), ..Default::default() });
    let m = env.sim.machines();
    let deployed =
        m.iter().find(|x| x.owner.is_some() && x.power_type == "ipmi" && x.power_state == PowerState::On).unwrap();
    let r = env.run(&["power", "off", &deployed.system_id, "--wait", "--timeout", "2"]);
    assert_eq!(r.code, 43, "{}", r.stderr);
    assert!(r.stderr.contains("is still on after 2 s"));
}

#[test]
fn hypervisors_and_config_cannot_both_read_stdin() {
    let env = Env::new(MaasSimConfig::default());
    let options = std::fs::read_to_string(&env.config).unwrap();
    let r = run_refusing_stdin(&["nodes", "-c", "-", "--hypervisors", "-"], &options);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "error: --config and --hypervisors both read standard input (-)\n  hint: give --hypervisors a file (or --config)\n"
    );
    assert_eq!(env.sim.stats().requests, 0, "nothing is asked of MAAS");
}

/// A hypervisor list saved with a byte order mark: the mark is not part of
/// the first hostname.
#[test]
fn a_byte_order_mark_is_not_part_of_the_first_hypervisor() {
    let env = Env::new(MaasSimConfig::default());
    let m = env.sim.machines();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hypervisors.txt");
    write(&file, &format!("\u{feff}{}\n", m[0].fqdn()));
    let r = env.run(&["nodes", "--hypervisors", path_str(&file), "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["hypervisors"][0]["hypervisor"], m[0].fqdn().as_str(), "{v}");
    assert_eq!(v["managed"], 1, "{v}");
}

/// Runs the binary with `stdin` offered on standard input, which it may
/// refuse to read (it exits first: the write then fails, as it may).
pub(crate) fn run_refusing_stdin(args: &[&str], stdin: &str) -> Run {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(bin())
        .args(args)
        .env_remove("JUJU_CONTEXT_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    Run::from_output(child.wait_with_output().unwrap())
}
