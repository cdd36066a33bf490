//! Proxies in hooks and actions: the hook's own environment (where Juju's
//! legacy `http-proxy` puts `http_proxy`) changes nothing. MAAS is reached
//! directly, as python-libmaas reaches it; Keystone and Ironic through the
//! proxies of Watcher's services' systemd environment.

use serde_json::json;

use super::{maas, Unit, PRINCIPAL_CONF};
use crate::common::*;
use crate::proxies::{proxy_environment, RecordingProxy};
use metal_sim::ironic::{IronicSim, IronicSimConfig, SimNode};

/// Runs `dispatch` for `path` with `env` added to the hook's environment.
fn dispatch_with(unit: &Unit, path: &str, env: &[(&'static str, String)]) -> Run {
    let charm_dir = unit.charm_dir.path().display().to_string();
    let mut all: Vec<(&str, &str)> = vec![("JUJU_DISPATCH_PATH", path), ("JUJU_CHARM_DIR", &charm_dir)];
    all.extend(env.iter().map(|(k, v)| (*k, v.as_str())));
    let r = unit.juju.run_with(&["dispatch"], &all);
    unit.assert_no_secret(&r);
    assert_eq!(r.code, 0, "{path}: {}", r.stderr);
    r
}

#[test]
fn the_hooks_http_proxy_changes_nothing_for_maas() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    let proxy = RecordingProxy::start();
    let env = proxy_environment(&proxy.url());
    for path in ["hooks/install", "hooks/config-changed", "hooks/update-status"] {
        dispatch_with(&unit, path, &env);
        assert_eq!(unit.last_status().0, "active", "{path}: {:?}", unit.statuses());
    }
    dispatch_with(&unit, "actions/validate-credentials", &env);
    assert_eq!(unit.result("result").as_deref(), Some("success"));
    unit.juju.set_params(&json!({ "live": true }).to_string());
    dispatch_with(&unit, "actions/list-nodes", &env);
    unit.juju.set_params(&json!({ "node": sim.machines()[0].hostname }).to_string());
    dispatch_with(&unit, "actions/power-status", &env);
    dispatch_with(&unit, "actions/doctor", &env);
    assert_eq!(unit.result("checks.maas.status").as_deref(), Some("ok"));
    assert!(
        unit.juju.calls_to("action-fail").iter().all(|c| c[1].starts_with("nova-pairing")),
        "{:?}",
        unit.juju.calls_to("action-fail")
    );
    assert_eq!(proxy.seen(), Vec::<String>::new(), "MAAS was asked through the hook's proxy");
}

#[test]
fn keystone_and_ironic_go_through_the_services_proxies_not_the_hooks() {
    let sim = IronicSim::start(IronicSimConfig { nodes: SimNode::generate(3), ..Default::default() }).unwrap();
    let unit = Unit::new(None, KEY);
    write(&unit.conf, &format!("{PRINCIPAL_CONF}\n{}", sim.clients_auth_section()));
    let (services, hook) = (RecordingProxy::start(), RecordingProxy::start());
    let env = proxy_environment(&hook.url());
    unit.juju.set_systemd(
        &format!(
            "Environment=HOME=/var/lib/watcher\nLoadState=loaded\nUnsetEnvironment=\nEnvironment=\"http_proxy={}\"\n",
            services.url()
        ),
        "LANG=C.UTF-8\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
    );
    dispatch_with(&unit, "hooks/config-changed", &env);
    unit.juju.set_params("{}");
    dispatch_with(&unit, "actions/list-nodes", &env);
    assert_eq!(unit.result("total").as_deref(), Some("3"), "{:?}", unit.juju.calls_to("action-fail"));
    unit.juju.set_params(&json!({ "node": "bm-0002" }).to_string());
    dispatch_with(&unit, "actions/power-status", &env);
    assert_eq!(unit.result("node.hostname").as_deref(), Some("bm-0002"), "{:?}", unit.juju.calls_to("action-fail"));

    let base = format!("http://127.0.0.1:{}", sim.port());
    let seen: Vec<String> = services.seen().iter().map(|l| l.replacen(&base, "", 1)).collect();
    assert!(seen.iter().filter(|l| *l == "POST /identity/v3/auth/tokens").count() >= 2, "{seen:?}");
    assert!(seen.iter().any(|l| l.starts_with("GET /baremetal/v1/nodes")), "{seen:?}");
    assert_eq!(hook.seen(), Vec::<String>::new(), "Keystone or Ironic was asked through the hook's proxy");
    let shows = unit.juju.calls_to("systemctl");
    assert!(shows.iter().any(|c| c[1] == "show" && c.last().unwrap() == "watcher-decision-engine"), "{shows:?}");
}
