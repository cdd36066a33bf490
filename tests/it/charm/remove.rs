//! The remove hook: the drop-ins, the CA certificate, the merged sections
//! and the charm's state files go, and nothing else.

use std::fs;

use metal_sim::{MaasSim, MaasSimConfig};
use serde_json::json;

use super::{Unit, PRINCIPAL_CONF, SECRET_URI};

#[test]
fn remove_leaves_nothing_behind() {
    let sim = MaasSim::start(MaasSimConfig { tls: Some(metal_sim::TlsNames::Default), ..Default::default() }).unwrap();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.configure(Some(
        json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "maas-ca-cert": sim.ca_pem().unwrap()}),
    ));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert!(unit.drop_in_path().exists());
    unit.juju.clear_calls();
    let r = unit.dispatch("hooks/remove");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.conf(), PRINCIPAL_CONF);
    assert!(!unit.drop_in_dir().exists(), "the drop-in, its lock file and the emptied directory are gone");
    let left: Vec<_> = fs::read_dir(unit.conf.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["watcher.conf"], "no lock or temp file beside watcher.conf");
    let ca_left: Vec<_> = fs::read_dir(&unit.ca_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(ca_left.is_empty(), "no CA certificate or lock file: {ca_left:?}");
    let state: Vec<_> = fs::read_dir(unit.charm_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".watcher-metal"))
        .collect();
    assert!(state.is_empty(), "no state files: {state:?}");
    assert!(!unit.ca_cert().exists());
    assert_eq!(unit.juju.calls_to("update-ca-certificates").len(), 1, "the CA bundle is rebuilt");
    assert_eq!(unit.restarts().len(), 2, "restarted once");

    // Merge mode: the managed sections leave watcher.conf.
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.configure(Some(json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "watcher-conf-mode": "merge", "maas-ca-cert": sim.ca_pem().unwrap()})));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.dispatch("hooks/remove").code, 0);
    assert_eq!(unit.conf().trim_end(), PRINCIPAL_CONF.trim_end());
}
