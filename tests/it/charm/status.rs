//! What the unit says when it cannot converge: `blocked` when a person
//! must act (bad config, a clash, a rejected key, which is never written, an
//! unknown service, an unsupported Watcher), `waiting` when it may pass by
//! itself (MAAS down or failing, no watcher.conf yet), the fix first.

use std::fs;

use metal_sim::{MaasSim, MaasSimConfig, SimUser};
use serde_json::json;

use super::{maas, Unit, PRINCIPAL_CONF, SECRET_URI};
use crate::common::*;

#[test]
fn a_clash_is_blocked_with_the_file_and_option() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    // watcher.conf is read after the drop-ins: its setting wins.
    write(&unit.conf, &format!("{PRINCIPAL_CONF}\n[maas_client]\nurl = http://elsewhere:5240/MAAS\n"));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert_eq!(
        message,
        format!("remove url from [maas_client] in {}: it overrides the charm's setting", unit.conf.display())
    );
    assert!(unit.juju.calls().contains("sets [maas_client] url, which overrides the charm's setting"));
    assert!(unit.drop_in().contains("[maas_client]"), "the drop-in is still written");

    // A drop-in that sorts after ours wins too; one that sorts before does not.
    write(&unit.conf, PRINCIPAL_CONF);
    write(&unit.drop_in_dir().join("10-site.conf"), "[maas_client]\ntimeout = 5\n");
    write(&unit.drop_in_dir().join("90-site.conf"), "[ironic_client]\nregion_name = RegionTwo\n");
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let later = unit.drop_in_dir().join("90-site.conf");
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert!(
        message.starts_with(&format!("remove region_name from [ironic_client] in {}", later.display())),
        "{message}"
    );
    assert!(message.len() <= 120, "{message}");
    assert!(unit.juju.calls().contains(&format!("remove `region_name` from [ironic_client] in {}", later.display())));
    fs::remove_file(&later).unwrap();
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.last_status().0, "active");
}

#[test]
fn a_python_libmaas_that_cannot_be_installed_is_blocked_by_name() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.juju.set_libmaas_missing(Some("E: Unable to locate package python3-libmaas"));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(
        unit.last_status(),
        (
            "blocked".into(),
            "make python3-libmaas installable (MAAS settings wait for it): E: Unable to locate package python3-libmaas"
                .into()
        )
    );
    assert!(!unit.drop_in_path().exists(), "no MAAS setting Watcher cannot import");
    assert!(unit.restarts().is_empty());
    // Without MAAS nothing needs it.
    unit.configure(None);
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert!(unit.juju.calls_to("apt-get").is_empty() && unit.juju.calls_to("python3").is_empty());
    assert_eq!(unit.last_status().0, "active");
}

#[test]
fn watcher_versions_are_checked() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.juju.set_watcher_version(Some("2:11.0.0-0ubuntu1"));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(
        unit.last_status(),
        (
            "blocked".into(),
            "upgrade Watcher to 12.0.0 (2024.1) or later, or unset maas-url: Watcher 11.0.0 has no MAAS support".into()
        )
    );

    // 16.0.0 and 17.0.0 cannot power a machine through MAAS: blocked, the
    // ways out first; the whole reason in the log.
    unit.juju.set_watcher_version(Some("2:17.0.0-0ubuntu1~cloud0"));
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert_eq!(
        message,
        "use Watcher 12.0.0-15.0.0, or unset maas-url to use Ironic: Watcher 17.0.0's MAAS power actions fail upstream"
    );
    assert!(message.len() <= 120);
    assert!(unit.juju.calls().contains("get_node and saving_energy fail"), "the reason is logged");

    // Caracal logs the key in clear with debug on: warned, with the fix.
    unit.juju.set_watcher_version(Some("2:12.0.0-0ubuntu1"));
    write(&unit.conf, &PRINCIPAL_CONF.replace("debug = False", "debug = True"));
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    let (status, message) = unit.last_status();
    assert_eq!(status, "active");
    assert_eq!(message, "debug=true logs the MAAS key in clear; MAAS 3.5.4, user admin");
    assert!(unit.juju.calls().contains("juju config watcher debug=false"));
    write(&unit.conf, PRINCIPAL_CONF);
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin".into()));
}

#[test]
fn bad_config_is_blocked_not_an_error() {
    let unit = Unit::new(None, KEY);
    unit.configure(Some(json!({"maas-url": "http://10.0.0.2:5240/MAAS"})));
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.last_status(), ("blocked".into(), "maas-url: is set but no API key is".into()));
    assert_eq!(unit.conf(), PRINCIPAL_CONF, "nothing written");
    assert!(unit.restarts().is_empty());
    let logs = unit.juju.calls_to("juju-log");
    assert!(logs.iter().any(|c| c.last().unwrap().contains("maas apikey")), "the hint is logged: {logs:?}");

    unit.configure(Some(json!({"maas-url": "ftp://x", "maas-api-key": KEY, "maas-timeout": 0})));
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0);
    assert_eq!(
        unit.last_status(),
        (
            "blocked".into(),
            "maas-url: uses scheme `ftp`; MAAS is reached over http or https (and 1 more problem)".into()
        )
    );
}

#[test]
fn a_rejected_key_is_never_applied() {
    let sim = maas();
    let admin = SimUser::admin();
    let wrong = format!("{}:{}:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", admin.consumer_key, admin.token_key);
    let unit = Unit::new(Some(&sim), &wrong);
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        unit.last_status(),
        (
            "blocked".into(),
            "set a key MAAS accepts: MAAS rejected the API key: wrong token secret (401); nothing written".into()
        )
    );
    assert!(unit.juju.calls().contains("maas apikey --generate"), "the whole hint is in juju-log");
    assert!(!unit.drop_in_path().exists());
    assert!(unit.restarts().is_empty());

    // The key that works, then a new revision of the secret MAAS rejects:
    // the drop-ins keep the working key and Watcher is not restarted.
    let secret = unit.juju.dir.path().join("secret.json");
    write(&secret, &json!({ "api-key": admin.api_key() }).to_string());
    assert_eq!(unit.dispatch("hooks/secret-changed").code, 0);
    assert_eq!(unit.last_status().0, "active");
    let working = unit.drop_in();
    write(&secret, &json!({ "api-key": wrong }).to_string());
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/secret-changed").code, 0);
    assert_eq!(
        unit.last_status(),
        (
            "blocked".into(),
            "set a key MAAS accepts: MAAS rejected the API key: wrong token secret (401); Watcher keeps the previous key"
                .into()
        )
    );
    assert_eq!(unit.drop_in(), working);
    assert!(unit.restarts().is_empty());
    // update-status tries the new revision again, and keeps refusing it.
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.drop_in(), working);
    assert_eq!(unit.last_status().0, "blocked");
}

#[test]
fn an_unknown_service_name_is_blocked_by_name() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.configure(Some(json!({
        "maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI,
        "watcher-services": "watcher-decision-engine watcher-aplier",
    })));
    unit.juju.set_missing_units(&["watcher-aplier"]);
    for hook in ["config-changed", "update-status"] {
        let r = unit.dispatch(&format!("hooks/{hook}"));
        assert_eq!(r.code, 0, "{hook}: {}", r.stderr);
        assert_eq!(
            unit.last_status(),
            (
                "blocked".into(),
                "remove watcher-aplier from watcher-services, or install it: no systemd unit of that name here".into()
            ),
            "{hook}"
        );
    }
    assert!(unit.restarts().is_empty());
    // Fixed: the unit converges.
    unit.configure(Some(json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI})));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.last_status().0, "active");
}

#[test]
fn unreachable_maas_waits_and_is_rechecked() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let unit = Unit::new(None, KEY);
    unit.configure(Some(json!({"maas-url": format!("http://127.0.0.1:{port}/MAAS"), "maas-api-key": KEY})));
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (status, message) = unit.last_status();
    assert_eq!(status, "waiting", "a person cannot fix a MAAS that is down");
    assert_eq!(
        message,
        format!("MAAS (re-checked by update-status): cannot use maas-url: connection refused by 127.0.0.1:{port}")
    );
    assert!(unit.juju.calls().contains("check the host and port in maas-url"), "the hint is in juju-log");
    assert!(message.len() <= 120, "{message}");
    // A name that does not resolve is a mistake to fix: blocked.
    unit.configure(Some(json!({"maas-url": "http://maas.invalid:5240/MAAS", "maas-api-key": KEY})));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.last_status().0, "blocked");
}

#[test]
fn secret_problems_are_blocked_and_secret_changed_refreshes() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    fs::remove_file(unit.juju.dir.path().join("secret.json")).unwrap();
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert_eq!(
        message,
        format!("run juju grant-secret {SECRET_URI} watcher-maas: this unit cannot read maas-api-key-secret")
    );
    assert!(message.len() <= 120, "{message}");
    let logged = format!("cannot read the API key from Juju secret {SECRET_URI}: secret-get: failed");
    assert!(unit.juju.calls().contains(&logged), "the whole diagnosis is in juju-log");

    write(&unit.juju.dir.path().join("secret.json"), &json!({ "api-key": sim.admin_key() }).to_string());
    unit.juju.clear_calls();
    let r = unit.dispatch("hooks/secret-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.juju.calls_to("secret-get")[0][1..], [SECRET_URI, "--format=json", "--refresh"]);
    assert_eq!(unit.last_status().0, "active");
}

#[test]
fn missing_watcher_conf_waits() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    fs::remove_file(&unit.conf).unwrap();
    let r = unit.dispatch("hooks/install");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (status, message) = unit.last_status();
    assert_eq!(status, "waiting");
    assert!(message.starts_with(&format!("waiting for {}", unit.conf.display())));
    assert!(!unit.conf.exists());

    // Half an hour later with no Watcher installed: this is not a Watcher unit.
    unit.juju.set_watcher_version(None);
    let since = unit.charm_dir.path().join(".watcher-metal-waiting-since");
    let then = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 31 * 60;
    write(&since, &then.to_string());
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert!(message.starts_with("relate to the Watcher charm: no python3-watcher and no "), "{message}");
    assert!(message.ends_with(" here after 31 min"), "{message}");
    // Watcher arrives: the unit goes on, its first write said as one.
    unit.juju.set_watcher_version(Some("2:12.0.0-0ubuntu1"));
    write(&unit.conf, PRINCIPAL_CONF);
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; drop-in written".into()));
    assert!(!since.exists());
}

#[test]
fn a_maas_answering_5xx_waits() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    sim.add_fault(metal_sim::FaultRule {
        path_contains: "version/".into(),
        op: None,
        times: None,
        fault: metal_sim::Fault::Status {
            status: 502,
            content_type: "text/plain".into(),
            body: "Bad Gateway".into(),
            retry_after: None,
        },
    });
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    let (status, message) = unit.last_status();
    assert_eq!(status, "waiting", "{message}");
    assert!(message.starts_with("MAAS (re-checked by update-status): "), "{message}");
    sim.clear_faults();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.last_status().0, "active");
}

#[test]
fn a_site_file_at_the_drop_in_path_is_blocked_and_kept() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    let site = unit.program_dir("watcher-applier").join("50-watcher-metal.conf");
    fs::create_dir(site.parent().unwrap()).unwrap();
    write(&site, "[DEFAULT]\ndebug = true\n");
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert_eq!(message, format!("rename or remove {}: it is not a drop-in of ours", site.display()));
    let logged = format!(
        "blocked: {} is not a drop-in watcher-metal wrote; refusing to replace it; rename or remove it by hand",
        site.display()
    );
    assert!(unit.juju.calls().contains(&logged), "the log has the whole message");
    assert_eq!(fs::read_to_string(&site).unwrap(), "[DEFAULT]\ndebug = true\n");
    assert!(!unit.drop_in_path().exists(), "nothing is written");
    assert!(unit.restarts().is_empty());

    // Removed by hand: the next hook writes both drop-ins.
    fs::remove_file(&site).unwrap();
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.last_status().0, "active");
    assert!(fs::read_to_string(&site).unwrap().starts_with("# Written by watcher-metal"));
}

/// A test CA's private key (EC P-256), pasted by mistake after a certificate.
const PASTED_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUuQfDGDOyHp1qFa/
VQ71jnESZlKTH14qE6dCN9mh7tChRANCAASKqC90qId0/uJ/OOURNhWayoBksBjN
Rf2oasrlP9AgSKpsTv2uJPWL/EMoSlq3FVuseV/qWnTeCGIZ9q51sVxF
-----END PRIVATE KEY-----
";

#[test]
fn a_ca_option_that_is_not_only_certificates_is_blocked_before_anything_is_written() {
    let sim = MaasSim::start(MaasSimConfig { tls: Some(metal_sim::TlsNames::Default), ..Default::default() }).unwrap();
    let ca = sim.ca_pem().unwrap();
    let unit = Unit::new(None, &sim.admin_key());
    let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    for (pem, said) in [
        (
            format!("{ca}{PASTED_KEY}"),
            "maas-ca-cert: block 2 is a private key (PRIVATE KEY), which must not be installed",
        ),
        (format!("{ca}{garbage}"), "maas-ca-cert: block 2 is not an X.509 certificate (its DER does not parse)"),
    ] {
        unit.configure(Some(
            json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "maas-ca-cert": pem}),
        ));
        unit.juju.clear_calls();
        let r = unit.dispatch("hooks/config-changed");
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(unit.last_status(), ("blocked".into(), said.into()));
        assert!(!unit.ca_cert().exists(), "no CA installed");
        assert!(unit.juju.calls_to("update-ca-certificates").is_empty());
        assert!(unit.restarts().is_empty());
        assert!(!unit.drop_in_path().exists(), "no drop-in written");
        let calls = unit.juju.calls();
        for line in PASTED_KEY.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!calls.contains(line) && !r.stdout.contains(line) && !r.stderr.contains(line), "the key is shown");
        }
    }
    // The certificate alone is installed.
    unit.configure(Some(json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "maas-ca-cert": ca})));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert!(unit.ca_cert().exists());
}

/// In merge mode the applier's view is checked too: a drop-in of its own
/// that sets `[maas_client] url` blocks the unit, as in drop-in mode.
#[test]
fn a_clash_for_a_later_service_blocks_in_merge_mode() {
    let unit = Unit::new(None, KEY);
    unit.configure(Some(json!({ "watcher-conf-mode": "merge" })));
    let site = unit.program_dir("watcher-applier").join("60-site.conf");
    fs::create_dir_all(site.parent().unwrap()).unwrap();
    write(&site, "[maas_client]\nurl = http://elsewhere:5240/MAAS\n");
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked", "{message}");
    assert!(
        message.starts_with(&format!(
            "remove url from [maas_client] in {}: it overrides the charm's setting",
            site.display()
        )),
        "{message}"
    );
    fs::remove_file(&site).unwrap();
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.last_status().0, "active");
}
