//! The hooks as Juju runs them, when the unit can converge: what each
//! writes, what it restarts and the status it leaves (drop-ins, merge mode
//! and the move out of it, python-libmaas and apt's lock, the CA
//! certificate, a failed restart), what update-status asks of the machine,
//! the time a hook waits for a silent MAAS, teardown hooks that call
//! nothing; and dispatch paths that name no hook or action.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use metal_sim::{MaasSim, MaasSimConfig};
use serde_json::json;

use super::{maas, Unit, PRINCIPAL_CONF, SECRET_URI};
use crate::common::*;

#[test]
fn config_changed_writes_the_drop_in_restarts_and_goes_active() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.conf(), PRINCIPAL_CONF, "the principal's watcher.conf is not touched");
    let drop_in = unit.drop_in();
    assert!(drop_in.contains(&format!("[maas_client]\n# Managed by watcher-metal from the charm config; local edits are replaced.\nurl = {}\napi_key = {}\ntimeout = 120\n", sim.base_url(), sim.admin_key())), "{drop_in}");
    assert!(drop_in.contains("[ironic_client]\n"));
    // The directory and the file are owned like watcher.conf, so the services can read them.
    // The applier reads the same settings from its own directory.
    let applier = unit.program_dir("watcher-applier").join("50-watcher-metal.conf");
    assert_eq!(fs::read_to_string(&applier).unwrap(), drop_in);
    let conf_meta = fs::metadata(&unit.conf).unwrap();
    for (path, mode) in [(unit.drop_in_dir(), 0o750), (unit.drop_in_path(), 0o640), (applier, 0o640)] {
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{}", path.display());
        assert_eq!((meta.uid(), meta.gid()), (conf_meta.uid(), conf_meta.gid()), "{}", path.display());
    }
    assert_eq!(unit.restarts(), ["try-restart watcher-decision-engine", "try-restart watcher-applier"]);
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; drop-in written".into()));
    assert_eq!(
        unit.juju.calls_to("secret-get"),
        vec![["secret-get", SECRET_URI, "--format=json", "--refresh"].map(String::from).to_vec()],
        "every hook reads the latest revision"
    );

    // Nothing changed: no restart, and the status says so.
    unit.juju.clear_calls();
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(unit.restarts().is_empty());
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin".into()));
}

#[test]
fn every_other_hook_converges_too() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    for hook in ["start", "upgrade-charm", "leader-elected", "juju-info-relation-joined", "juju-info-relation-changed"]
    {
        let _ = fs::remove_file(unit.drop_in_path());
        unit.juju.clear_calls();
        let r = unit.dispatch(&format!("hooks/{hook}"));
        assert_eq!(r.code, 0, "{hook}: {}", r.stderr);
        assert!(unit.drop_in().contains("[maas_client]"), "{hook}");
        assert_eq!(unit.restarts().len(), 2, "{hook}");
        assert_eq!(unit.last_status().0, "active", "{hook}");
    }
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/stop").code, 0);
    assert!(unit.juju.call_list().is_empty(), "stop does nothing");
}

#[test]
fn teardown_hooks_ask_nothing_of_maas() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    assert_eq!(unit.dispatch("hooks/install").code, 0);
    let before = sim.stats().requests;
    for hook in ["juju-info-relation-broken", "stop", "remove"] {
        unit.juju.clear_calls();
        let r = unit.dispatch(&format!("hooks/{hook}"));
        assert_eq!(r.code, 0, "{hook}: {}", r.stderr);
        assert_eq!(sim.stats().requests, before, "{hook} called MAAS");
        if hook == "juju-info-relation-broken" {
            assert!(unit.juju.call_list().is_empty(), "relation-broken does nothing: {}", unit.juju.calls());
            assert!(unit.drop_in_path().exists(), "remove takes the files out, not relation-broken");
        }
    }
    assert!(!unit.drop_in_path().exists());
}

#[test]
fn a_hook_waits_15_s_for_a_maas_that_never_answers() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    sim.add_fault(metal_sim::FaultRule {
        path_contains: "version/".into(),
        op: None,
        times: None,
        fault: metal_sim::Fault::Hang,
    });
    let started = std::time::Instant::now();
    let r = unit.dispatch("hooks/config-changed");
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Recorded, not asserted: the time a hook holds the machine lock.
    eprintln!("config-changed with a silent MAAS (maas-timeout 120) took {took:?}");
    assert_eq!(
        unit.last_status(),
        ("waiting".into(), "MAAS (re-checked by update-status): cannot use maas-url: no answer within 15 s".into())
    );
    assert!(unit.juju.calls().contains("a hook waits 15 s for MAAS in all, the doctor action maas-timeout"));
    // It cannot be known whether the key works: it is written.
    assert!(unit.drop_in().contains(&sim.admin_key()));
    assert_eq!(unit.restarts().len(), 2);
}

#[test]
fn the_principal_rewriting_watcher_conf_restarts_nothing() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    assert_eq!(unit.dispatch("hooks/install").code, 0);
    let drop_in = unit.drop_in();
    // The principal charm re-renders watcher.conf on each of its hooks.
    let rewritten = format!("{PRINCIPAL_CONF}\n[watcher_decision_engine]\ncontinuous_audit_interval = 30\n");
    write(&unit.conf, &rewritten);
    unit.juju.clear_calls();
    let before = sim.stats().requests;
    let r = unit.dispatch("hooks/update-status");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.conf(), rewritten, "watcher.conf stays as the principal wrote it");
    assert_eq!(unit.drop_in(), drop_in);
    assert!(unit.restarts().is_empty(), "{:?}", unit.restarts());
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin".into()));
    // Cheap: version and whoami only.
    assert_eq!(sim.stats().requests - before, 2);

    // A drop-in removed by hand is put back, and the services restarted.
    fs::remove_file(unit.drop_in_path()).unwrap();
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.drop_in(), drop_in);
    assert_eq!(unit.restarts().len(), 2);
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; repaired drop-in".into()));
    // Cheap: the key was tried (version and whoami), and not checked again.
    assert_eq!(sim.stats().requests - before, 4);
}

#[test]
fn sections_an_earlier_merge_wrote_are_migrated_once() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.configure(Some(
        json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "watcher-conf-mode": "merge"}),
    ));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert!(unit.conf().contains("[maas_client]"), "merge mode writes into watcher.conf");
    assert!(!unit.drop_in_path().exists());

    // Upgraded to drop-in mode: the merged sections leave watcher.conf.
    unit.configure(Some(json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI})));
    unit.juju.clear_calls();
    let r = unit.dispatch("hooks/upgrade-charm");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.conf(), PRINCIPAL_CONF, "every other byte of watcher.conf stays");
    assert!(unit.drop_in().contains("[maas_client]"));
    assert_eq!(unit.restarts().len(), 2, "one restart for the move");
    assert!(unit.juju.calls().contains("removed the sections an earlier merge wrote"));
    assert_eq!(unit.last_status().0, "active");

    // Sections without the marker are someone else's: never edited, but a clash.
    let theirs = format!("{PRINCIPAL_CONF}\n[maas_client]\ntimeout = 30\n");
    write(&unit.conf, &theirs);
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.conf(), theirs);
    assert!(unit.restarts().is_empty());
    assert_eq!(unit.last_status().0, "blocked", "{:?}", unit.statuses());
}

#[test]
fn python_libmaas_is_installed_when_watcher_cannot_import_it() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    assert_eq!(unit.dispatch("hooks/install").code, 0);
    unit.juju.set_libmaas_missing(None);
    unit.juju.clear_calls();
    let r = unit.dispatch("hooks/update-status");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let apt = unit.juju.calls_to("apt-get");
    assert_eq!(apt, vec![APT_INSTALL.map(String::from).to_vec()]);
    assert!(unit
        .statuses()
        .contains(&("maintenance".into(), "installing python3-libmaas (Watcher's MAAS helper needs it)".into())));
    assert_eq!(unit.restarts().len(), 2, "the services load the new module");
    assert_eq!(unit.last_status().0, "active");
    // Installed now, and the packages as they were: not installed again,
    // not even imported again.
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert!(unit.juju.calls_to("apt-get").is_empty());
    assert!(unit.juju.calls_to("python3").is_empty(), "imported once per package state");
    assert_eq!(unit.last_status().0, "active");
}

/// How the charm runs apt: waiting up to 30 s for its lock.
const APT_INSTALL: [&str; 9] = [
    "apt-get",
    "install",
    "-y",
    "-q",
    "-o",
    "DPkg::Lock::Timeout=30",
    "-o",
    "Dpkg::Options::=--force-confold",
    "python3-libmaas",
];

#[test]
fn one_apt_lock_failure_never_blocks() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.juju.set_libmaas_missing(None);
    // unattended-upgrades takes the lock just as apt's own wait ends.
    unit.juju.set_apt_locked(1);
    let r = unit.dispatch("hooks/install");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.juju.calls_to("apt-get"), vec![APT_INSTALL.map(String::from).to_vec(); 2], "tried again");
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; drop-in written".into()));
    assert!(!unit.statuses().iter().any(|(s, _)| s == "blocked"), "{:?}", unit.statuses());
    assert_eq!(unit.restarts().len(), 2, "restarted once, with python-libmaas there");
}

#[test]
fn a_held_apt_lock_waits_and_watcher_gets_no_maas_settings_until_python_libmaas_imports() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.juju.set_libmaas_missing(None);
    unit.juju.set_apt_locked(2);
    let r = unit.dispatch("hooks/install");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        unit.last_status(),
        (
            "waiting".into(),
            "waiting for apt's lock (another install runs) to install python3-libmaas; then the MAAS settings".into()
        )
    );
    assert!(unit.juju.calls().contains("unattended-upgr"), "apt's line is in juju-log");
    assert!(!unit.drop_in_path().exists(), "no MAAS setting Watcher cannot import");
    assert!(unit.restarts().is_empty());

    // The lock is free by the next update-status: installed, written, one restart.
    unit.juju.clear_calls();
    let r = unit.dispatch("hooks/update-status");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.juju.calls_to("apt-get").len(), 1);
    assert!(unit.drop_in().contains("[maas_client]"));
    assert_eq!(unit.restarts().len(), 2);
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; drop-in written".into()));
}

#[test]
fn update_status_asks_dpkg_once_and_python_only_when_the_packages_change() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    assert_eq!(unit.dispatch("hooks/install").code, 0);
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    let dpkg = unit.juju.calls_to("dpkg-query");
    assert_eq!(dpkg.len(), 1, "{dpkg:?}");
    assert!(["python3-watcher", "python3-libmaas"].iter().all(|p| dpkg[0].iter().any(|a| a == p)), "{dpkg:?}");
    assert!(unit.juju.calls_to("python3").is_empty(), "nothing changed: no import");
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin".into()));
    // Watcher upgraded: the import is checked again.
    unit.juju.set_watcher_version(Some("2:13.0.0-0ubuntu1"));
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.juju.calls_to("python3").len(), 1);
}

#[test]
fn the_watcher_version_is_the_application_version() {
    let unit = Unit::new(None, KEY);
    unit.juju.set_watcher_version(Some("2:12.0.0-0ubuntu1~cloud0"));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(
        unit.juju.calls_to("application-version-set"),
        vec![vec!["application-version-set".to_owned(), "12.0.0".to_owned()]]
    );
    assert_eq!(unit.last_status(), ("active".into(), "Ironic backend (maas-url unset); drop-in written".into()));
}

#[test]
fn without_maas_the_unit_uses_ironic_and_drops_maas_client() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    unit.configure(None);
    unit.juju.clear_calls();
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!unit.drop_in().contains("[maas_client]"));
    assert!(unit.drop_in().contains("[ironic_client]"));
    assert_eq!(unit.conf(), PRINCIPAL_CONF);
    assert_eq!(unit.restarts().len(), 2);
    assert_eq!(unit.last_status(), ("active".into(), "Ironic backend (maas-url unset); drop-in updated".into()));
}

#[test]
fn merge_mode_still_merges_into_watcher_conf() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.configure(Some(
        json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "watcher-conf-mode": "merge"}),
    ));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let conf = unit.conf();
    assert!(conf.starts_with(PRINCIPAL_CONF), "the principal's content is kept");
    assert!(conf.contains(&format!("url = {}\n", sim.base_url())));
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; watcher.conf written".into()));
    // In this mode a rewrite by the principal loses the sections; they are
    // written again, with a restart.
    write(&unit.conf, PRINCIPAL_CONF);
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.conf(), conf);
    assert_eq!(unit.restarts().len(), 2);
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; watcher.conf written".into()));
    // Edited in place, they are repaired.
    write(&unit.conf, &conf.replace("timeout = 120", "timeout = 5"));
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.conf(), conf);
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; repaired watcher.conf".into()));
}

#[test]
fn failed_restart_fails_the_hook_and_is_retried() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    write(&unit.juju.dir.path().join("systemctl-fails"), "");
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 12, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: systemctl try-restart watcher-decision-engine: Job failed"));
    // Juju retries the hook: the file is already right, the restart is still owed.
    fs::remove_file(unit.juju.dir.path().join("systemctl-fails")).unwrap();
    unit.juju.clear_calls();
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.restarts().len(), 2);
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert!(unit.restarts().is_empty());
}

#[test]
fn maas_ca_cert_is_installed_for_watcher_too() {
    let sim = MaasSim::start(MaasSimConfig { tls: Some(metal_sim::TlsNames::Default), ..Default::default() }).unwrap();
    let ca = sim.ca_pem().unwrap();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.configure(Some(json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "maas-ca-cert": ca})));
    // Before the CA is in the system's store (which is all Watcher trusts), the unit is blocked.
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert!(
        message.starts_with("set maas-ca-cert to MAAS's CA: Watcher would refuse MAAS's certificate: TLS: "),
        "{message}"
    );
    // update-ca-certificates is a stand-in here: point the store at the installed file.
    // The file starts with our marker, a comment every PEM reader skips.
    let installed = unit.ca_cert();
    let store = installed.display().to_string();
    let r = unit.dispatch_with("hooks/config-changed", &[("SSL_CERT_FILE", &store)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.last_status().0, "active", "{:?}", unit.statuses());
    let text = fs::read_to_string(&installed).unwrap();
    assert!(text.starts_with("# Written by watcher-metal for application watcher-maas "), "{text}");
    assert!(text.trim_end().ends_with(ca.trim_end()), "{text}");
    assert_eq!(unit.juju.calls_to("update-ca-certificates").len(), 1);

    // Unchanged: nothing rebuilt. Unset: removed and rebuilt.
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert!(unit.juju.calls_to("update-ca-certificates").is_empty());
    unit.configure(None);
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert!(!installed.exists());
    assert_eq!(unit.juju.calls_to("update-ca-certificates").len(), 1);
}

#[test]
fn unknown_dispatch_paths_are_usage_errors() {
    let unit = Unit::new(None, KEY);
    let r = unit.dispatch("elsewhere/x");
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("error: JUJU_DISPATCH_PATH `elsewhere/x` names no hook or action"));
    let r = unit.dispatch("actions/bogus");
    assert_eq!(r.code, 0);
    assert_eq!(unit.juju.calls_to("action-fail")[0][1], "unknown action `bogus`");
}
