//! The actions: their results as `action-set` keys, failures through
//! `action-fail`, and the status left alone.

use serde_json::json;

use super::{maas, Unit};

#[test]
fn validate_credentials_action() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    let r = unit.dispatch("actions/validate-credentials");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.result("result").as_deref(), Some("success"));
    assert_eq!(unit.result("backend").as_deref(), Some("maas"));
    assert_eq!(unit.result("maas-version").as_deref(), Some("3.5.4"));
    assert_eq!(unit.result("user").as_deref(), Some("admin"));
    assert_eq!(unit.result("is-superuser").as_deref(), Some("true"));
    assert_eq!(unit.result("machines").as_deref(), Some("10"));
    assert!(unit.result("latency-ms").unwrap().parse::<u64>().is_ok());
    assert!(unit.juju.calls_to("action-fail").is_empty());
    assert!(unit.statuses().is_empty(), "actions do not touch the status");

    // A key MAAS does not know.
    let unknown = Unit::new(Some(&sim), "UnknownConsumerKey:UnknownTokenKey123:UnknownSecret0000000000000000000");
    let r = unknown.dispatch("actions/validate-credentials");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unknown.result("result").as_deref(), Some("failure"));
    assert_eq!(unknown.result("stage").as_deref(), Some("authenticate"));
    let fail = unknown.juju.calls_to("action-fail");
    assert_eq!(fail.len(), 1);
    assert!(fail[0][1].starts_with("MAAS rejected the API key: unknown consumer key (401)"), "{:?}", fail[0]);

    // No MAAS configured: one outcome, a failure, said alike in results and message.
    unit.configure(None);
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("actions/validate-credentials").code, 0);
    assert_eq!(unit.result("result").as_deref(), Some("failure"));
    assert_eq!(unit.result("backend").as_deref(), Some("ironic"));
    let fail = unit.juju.calls_to("action-fail");
    assert_eq!(fail.len(), 1);
    assert!(fail[0][1].starts_with(&unit.result("error").unwrap()), "{:?}", fail[0]);
}

#[test]
fn doctor_action_reports_every_check() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    unit.juju.clear_calls();
    let r = unit.dispatch("actions/doctor");
    assert_eq!(r.code, 0, "{}", r.stderr);
    for name in
        ["config", "watcher-version", "python-libmaas", "maas", "maas-tls", "ironic", "nova-pairing", "debug-key-leak"]
    {
        assert!(unit.result(&format!("checks.{name}.status")).is_some(), "checks.{name}.status");
        assert!(unit.result(&format!("checks.{name}.message")).is_some(), "checks.{name}.message");
    }
    assert_eq!(unit.result("checks.maas.status").as_deref(), Some("ok"));
    assert_eq!(unit.result("checks.config.status").as_deref(), Some("ok"));
    // The principal's watcher.conf here has no [watcher_clients_auth]: Nova cannot be asked.
    assert_eq!(unit.result("checks.nova-pairing.status").as_deref(), Some("fail"));
    assert_eq!(unit.result("result").as_deref(), Some("failure"));
    assert_eq!(unit.result("failed").as_deref(), Some("1"));
    let fail = unit.juju.calls_to("action-fail");
    assert_eq!(fail.len(), 1);
    assert!(fail[0][1].starts_with("nova-pairing: cannot list Nova's hypervisors"), "{:?}", fail[0]);
    assert!(unit.statuses().is_empty(), "actions do not touch the status");
}

#[test]
fn list_nodes_action_with_hypervisors() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    let machines = sim.machines();
    let hv = format!("{},{},nosuch.maas", machines[0].fqdn(), machines[1].hostname);
    unit.juju.set_params(&json!({"live": true, "hypervisors": hv}).to_string());
    let r = unit.dispatch("actions/list-nodes");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(unit.juju.calls_to("action-fail").is_empty(), "{:?}", unit.juju.call_list());
    assert_eq!(unit.result("result").as_deref(), Some("success"));
    assert_eq!(unit.result("total").as_deref(), Some("10"));
    let on: usize = unit.result("counts.on").unwrap().parse().unwrap();
    let off: usize = unit.result("counts.off").unwrap().parse().unwrap();
    assert_eq!(on + off, 10);
    assert!(unit.result("nodes").unwrap().starts_with(&machines[0].system_id));
    assert_eq!(unit.result("hypervisors.managed").as_deref(), Some("1"));
    assert_eq!(unit.result("hypervisors.skipped").as_deref(), Some("2"));
    assert!(unit.result("hypervisors.report").unwrap().contains("is the short name of machine fqdn"));
    assert_eq!(sim.stats().by_endpoint.get("GET machines/{id}/?op=query_power_state"), Some(&10));
}

#[test]
fn power_status_action() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    let m = &sim.machines()[2];
    unit.juju.set_params(&json!({ "node": m.hostname }).to_string());
    let r = unit.dispatch("actions/power-status");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.result("node.id").as_deref(), Some(m.system_id.as_str()));
    let want = match m.power_state {
        metal_sim::PowerState::On => "on",
        metal_sim::PowerState::Off => "off",
        metal_sim::PowerState::Unknown => "unknown",
        metal_sim::PowerState::Error => "error",
    };
    assert_eq!(unit.result("power-state").as_deref(), Some(want));

    unit.juju.clear_calls();
    unit.juju.set_params(&json!({ "node": "nosuch" }).to_string());
    assert_eq!(unit.dispatch("actions/power-status").code, 0);
    let fail = unit.juju.calls_to("action-fail");
    assert!(fail[0][1].starts_with("no node `nosuch`"), "{fail:?}");

    // A key pasted as the node's name is not repeated in what the action
    // says, nor in the unit's log.
    let pasted = "Xq7Lm2Vb9Rt4Kw8Zp3:Ha5Jd1Nc6Ye0Uf2Gs7:Pt3Vk8Mb1Qz6Wc4Rn9Lx2Dj5Hf7Sa0Ey";
    unit.juju.clear_calls();
    unit.juju.set_params(&json!({ "node": pasted }).to_string());
    assert_eq!(unit.dispatch("actions/power-status").code, 0);
    let calls = unit.juju.calls();
    assert!(calls.contains("action-fail"), "{calls}");
    for part in pasted.split(':') {
        assert!(!calls.contains(part), "a part of the pasted key is shown: {calls}");
    }
}

/// Every action's outcome in one vocabulary: `result` is `success`, or
/// `failure` exactly when the action failed (`action-fail`), and set once.
#[test]
fn every_action_says_success_or_failure() {
    use metal_sim::nova::{NovaSim, NovaSimConfig, SimHypervisor};
    let sim = maas();
    // Nova knows every machine by its fqdn: a doctor with no failure.
    let nova = NovaSim::start(NovaSimConfig {
        hypervisors: SimHypervisor::generate(sim.machines().len()),
        ..Default::default()
    })
    .unwrap();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    crate::common::write(&unit.conf, &format!("{}\n{}", super::PRINCIPAL_CONF, nova.clients_auth_section()));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let node = sim.machines()[0].hostname.clone();
    let outcome = |action: &str, params: serde_json::Value| {
        unit.juju.clear_calls();
        unit.juju.set_params(&params.to_string());
        let r = unit.dispatch(&format!("actions/{action}"));
        assert_eq!(r.code, 0, "{action}: {}", r.stderr);
        let results: Vec<String> =
            unit.action_results().into_iter().filter(|(k, _)| k == "result").map(|(_, v)| v).collect();
        let failed = !unit.juju.calls_to("action-fail").is_empty();
        assert_eq!(results.len(), 1, "{action}: result set {results:?}");
        assert_eq!(results[0], if failed { "failure" } else { "success" }, "{action} {params}");
        results[0].clone()
    };
    for (action, params) in [
        ("validate-credentials", json!({})),
        ("list-nodes", json!({"live": true})),
        ("power-status", json!({ "node": node })),
        ("doctor", json!({})),
    ] {
        assert_eq!(outcome(action, params), "success", "{action}: {:?}", unit.juju.calls_to("action-fail"));
    }
    assert_eq!(unit.result("failed").as_deref(), Some("0"));
    for (action, params) in
        [("power-status", json!({ "node": "nosuch" })), ("power-status", json!({})), ("no-such-action", json!({}))]
    {
        assert_eq!(outcome(action, params), "failure");
    }
    // MAAS gone: every action that asks it fails alike.
    drop(sim);
    for action in ["validate-credentials", "list-nodes", "doctor"] {
        assert_eq!(outcome(action, json!({})), "failure", "{action}");
    }
    // Bad configuration.
    unit.configure(Some(json!({"maas-url": "not a url"})));
    for action in ["validate-credentials", "list-nodes", "power-status", "doctor"] {
        assert_eq!(outcome(action, json!({ "node": node })), "failure", "{action}");
    }
}
