//! What the charm wrote, over an operator's ordinary day: options renamed,
//! narrowed and moved, the unit removed, another application of the charm
//! on the same machine. Nothing of ours is left behind, no file of the
//! site's or of the other application's is touched.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::{maas, ours_under, Unit, PRINCIPAL_CONF, SECRET_URI};
use crate::common::*;

#[test]
fn renaming_narrowing_moving_and_removing_leave_no_file_of_ours() {
    let sim = maas();
    let key = sim.admin_key();
    let unit = Unit::new(Some(&sim), &key);
    let base = json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI});
    let with = |extra: serde_json::Value| {
        let mut config = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        unit.configure(Some(config));
    };
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let applier_dir = unit.program_dir("watcher-applier");
    // The site put a file of its own where the applier's drop-in was.
    let site = applier_dir.join("50-watcher-metal.conf");
    write(&site, "[DEFAULT]\ndebug = true\n");

    // drop-in-name changed: the old drop-in goes, the site's file stays.
    with(json!({"drop-in-name": "40-watcher-metal.conf"}));
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!unit.drop_in_path().exists(), "the decision engine's old drop-in");
    assert_eq!(fs::read_to_string(&site).unwrap(), "[DEFAULT]\ndebug = true\n");
    assert!(unit.drop_in_dir().join("40-watcher-metal.conf").exists());
    assert!(applier_dir.join("40-watcher-metal.conf").exists());
    assert_eq!(unit.last_status().0, "active", "{:?}", unit.statuses());

    // watcher-services narrowed: the applier keeps no drop-in of ours.
    with(json!({"drop-in-name": "40-watcher-metal.conf", "watcher-services": "watcher-decision-engine"}));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert!(!applier_dir.join("40-watcher-metal.conf").exists());
    assert!(site.exists());

    // drop-in-root moved (to the services' HOME): nothing stays in the old one.
    let home = unit.root.join("home");
    fs::create_dir(&home).unwrap();
    unit.juju.set_watcher_home(&home);
    let moved = json!({"drop-in-name": "40-watcher-metal.conf", "watcher-services": "watcher-decision-engine",
        "drop-in-root": home.display().to_string()});
    with(moved);
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(ours_under(&unit.root, &key), [home.join("watcher-decision-engine.conf.d/40-watcher-metal.conf")]);
    assert!(!unit.drop_in_dir().exists(), "the emptied directory of the old root");
    assert_eq!(unit.last_status().0, "active", "{:?}", unit.statuses());

    // remove: nothing of ours anywhere, the site's file where it was.
    let r = unit.dispatch("hooks/remove");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ours_under(&unit.root, &key), Vec::<std::path::PathBuf>::new());
    assert_eq!(unit.conf(), PRINCIPAL_CONF);
    assert_eq!(fs::read_to_string(&site).unwrap(), "[DEFAULT]\ndebug = true\n");
}

#[test]
fn remove_takes_out_what_earlier_options_named() {
    let sim = maas();
    let key = sim.admin_key();
    let unit = Unit::new(Some(&sim), &key);
    unit.configure(Some(json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI,
        "drop-in-name": "40-a.conf", "maas-ca-cert": sim_ca()})));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert!(unit.drop_in_dir().join("40-a.conf").exists());
    // Renamed along with an option gone bad: the hook writes nothing, and
    // remove can only read the options leniently (another name).
    unit.configure(Some(json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI,
        "drop-in-name": "60-b.conf", "maas-timeout": -1})));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.last_status().0, "blocked");
    let r = unit.dispatch("hooks/remove");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ours_under(&unit.root, &key), Vec::<std::path::PathBuf>::new(), "the key is not left on disk");
    assert!(fs::read_dir(&unit.ca_dir).unwrap().next().is_none(), "the CA certificate is gone");
}

/// A CA certificate `maas-ca-cert` takes (a real one; MAAS here is plain HTTP).
fn sim_ca() -> String {
    metal_sim::MaasSim::start(metal_sim::MaasSimConfig {
        tls: Some(metal_sim::TlsNames::Default),
        ..Default::default()
    })
    .unwrap()
    .ca_pem()
    .unwrap()
}

#[test]
fn co_located_applications_keep_to_their_own_files() {
    let sim = maas();
    let key = sim.admin_key();
    let ca = sim_ca();
    let with_ca = |unit: &Unit, extra: serde_json::Value| {
        let mut config = json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "maas-ca-cert": ca});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        unit.configure(Some(config));
    };
    let a = Unit::new(Some(&sim), &key);
    with_ca(&a, json!({}));
    assert_eq!(a.dispatch("hooks/config-changed").code, 0);
    let a_drop_in = a.drop_in_path();
    let a_before = a.drop_in();

    // Another application of the charm on the machine, with the same options.
    let b = Unit::beside(&a, "watcher-maas-b", Some(&sim), &key);
    with_ca(&b, json!({}));
    let r = b.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (status, message) = b.last_status();
    assert_eq!(status, "blocked");
    assert!(message == format!("set another drop-in-name: watcher-maas wrote {}", a_drop_in.display()), "{message}");
    assert_eq!(a.drop_in(), a_before, "A's drop-in untouched");
    assert!(a_before.contains("for application watcher-maas "));
    assert!(b.restarts().is_empty(), "B changed nothing");

    // With its own drop-in-name, B writes its own files.
    with_ca(&b, json!({"drop-in-name": "60-watcher-maas-b.conf"}));
    assert_eq!(b.dispatch("hooks/config-changed").code, 0);
    let b_drop_in = b.drop_in_dir().join("60-watcher-maas-b.conf");
    assert!(fs::read_to_string(&b_drop_in).unwrap().contains("for application watcher-maas-b "));
    assert!(a.ca_cert().exists() && b.ca_cert().exists() && a.ca_cert() != b.ca_cert());

    // A goes: only A's files go with it.
    assert_eq!(a.dispatch("hooks/remove").code, 0);
    assert!(!a_drop_in.exists() && !a.ca_cert().exists());
    assert!(b_drop_in.exists() && b.ca_cert().exists());
    assert_eq!(b.dispatch("hooks/update-status").code, 0);
    assert_ne!(b.last_status().0, "blocked", "{:?}", b.statuses());

    // B goes: nothing of either is left.
    assert_eq!(b.dispatch("hooks/remove").code, 0);
    assert_eq!(ours_under(&a.root, &key), Vec::<std::path::PathBuf>::new());
    assert!(fs::read_dir(&a.ca_dir).unwrap().next().is_none());
    assert_eq!(a.conf(), PRINCIPAL_CONF);
}

#[test]
fn a_watcher_conf_others_can_read_is_tightened_once_it_holds_the_key() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    fs::set_permissions(&unit.conf, fs::Permissions::from_mode(0o644)).unwrap();
    unit.configure(Some(
        json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "watcher-conf-mode": "merge"}),
    ));
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fs::metadata(&unit.conf).unwrap().permissions().mode() & 0o777, 0o640);
    let warned = unit.juju.calls_to("juju-log").into_iter().any(|c| {
        c.iter().any(|a| a.contains("holds the MAAS API key and was readable by others (mode 0644): now 0640"))
    });
    assert!(warned, "{}", unit.juju.calls());
}
