//! `watcher-metal doctor`, run as a process on a layout like a Watcher
//! unit's, against the MAAS simulator, with Watcher's programs (dpkg-query,
//! python3) stood in for on PATH.

use std::fs;
use std::path::PathBuf;

use crate::common::*;
use metal_sim::nova::{NovaSim, NovaSimConfig, SimHypervisor};
use metal_sim::{MaasSim, MaasSimConfig};
use serde_json::{json, Value};

/// A watcher.conf as the principal writes it, and our drop-in beside it.
struct Machine {
    juju: FakeJuju,
    dir: tempfile::TempDir,
}

impl Machine {
    fn new(principal: &str, drop_in: Option<&str>) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        write(&conf_path(dir.path()), principal);
        if let Some(text) = drop_in {
            // Where the charm writes it: /etc/watcher-decision-engine.conf.d on a unit.
            let program = dir.path().join("etc/watcher-decision-engine.conf.d");
            fs::create_dir(&program).unwrap();
            write(&program.join("50-watcher-metal.conf"), text);
        }
        let juju = FakeJuju::new("{}", None);
        // `<dir>/etc` stands for /etc here: the services' HOME, as far as
        // the drop-in root is concerned.
        juju.set_watcher_home(&dir.path().join("etc"));
        Machine { juju, dir }
    }

    fn conf(&self) -> PathBuf {
        conf_path(self.dir.path())
    }

    fn drop_in_dir(&self) -> PathBuf {
        self.dir.path().join("etc/watcher-decision-engine.conf.d")
    }

    /// `doctor --format json` and its checks by name.
    fn doctor(&self) -> (Run, Value) {
        let conf = self.conf();
        let root = drop_in_root(&conf);
        let r = self.juju.run(&[
            "doctor",
            "--watcher-conf",
            path_str(&conf),
            "--drop-in-root",
            path_str(&root),
            "--format",
            "json",
        ]);
        let value: Value = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
        (r, value)
    }
}

/// A Nova whose hypervisors are `hypervisors`, and the principal's
/// watcher.conf with `[watcher_clients_auth]` for its Keystone.
fn nova(hypervisors: Vec<SimHypervisor>) -> NovaSim {
    NovaSim::start(NovaSimConfig { hypervisors, ..Default::default() }).unwrap()
}

fn principal_with(nova: &NovaSim, defaults: &str) -> String {
    format!("{defaults}\n{}", nova.clients_auth_section())
}

fn drop_in(sim: &MaasSim) -> String {
    format!("[maas_client]\nurl = {}\napi_key = {}\ntimeout = 30\n", sim.base_url(), sim.admin_key())
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}"))
}

fn status(report: &Value, name: &str) -> String {
    check(report, name)["status"].as_str().unwrap().to_owned()
}

fn assert_no_key(r: &Run, key: &str) {
    let secret = key.rsplit(':').next().unwrap();
    assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret), "the key was printed");
}

#[test]
fn a_healthy_unit_passes_every_check() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    // Nova knows every machine by its fqdn.
    let nova = nova(SimHypervisor::generate(sim.machines().len()));
    let m = Machine::new(&principal_with(&nova, "[DEFAULT]\ndebug = false\n"), Some(&drop_in(&sim)));
    let (r, report) = m.doctor();
    assert_no_key(&r, &sim.admin_key());
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let names: Vec<&str> = report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["config", "watcher-version", "python-libmaas", "maas", "maas-tls", "ironic", "nova-pairing", "debug-key-leak"]
    );
    for c in report["checks"].as_array().unwrap() {
        assert!(c["message"].is_string() && c["hint"].is_string(), "{c}");
        assert!(["ok", "skip"].contains(&c["status"].as_str().unwrap()), "{c}");
    }
    assert_eq!(status(&report, "maas"), "ok");
    assert!(check(&report, "maas")["message"]
        .as_str()
        .unwrap()
        .contains("user admin (administrator), 10 machines visible"));
    assert_eq!(
        check(&report, "config")["message"],
        "read 50-watcher-metal.conf, watcher.conf; url, api_key, timeout from 50-watcher-metal.conf"
    );
    assert_eq!(report["files"], json!([m.drop_in_dir().join("50-watcher-metal.conf"), m.conf()]));

    // The text form says the same, one line a check.
    let text = m.juju.run(&[
        "doctor",
        "--watcher-conf",
        path_str(&m.conf()),
        "--drop-in-root",
        path_str(m.drop_in_dir().parent().unwrap()),
    ]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.starts_with("ok    config "), "{}", text.stdout);
    assert!(text.stdout.ends_with("8 checks: 0 failed, 0 warned\n"), "{}", text.stdout);
    assert!(
        check(&report, "nova-pairing")["message"]
            .as_str()
            .unwrap()
            .starts_with("10 of 10 nodes pair with Nova's 10 hypervisors"),
        "{report}"
    );
}

#[test]
fn a_near_miss_warns_and_no_pair_fails() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let machines = sim.machines();
    // One hypervisor by its short name, the others exact.
    let mut hypervisors = SimHypervisor::generate(machines.len() - 1);
    let last = machines.last().unwrap().fqdn();
    let short = last.split('.').next().unwrap().to_owned();
    hypervisors.push(SimHypervisor::new(machines.len() as u64, &short, 0));
    let near = nova(hypervisors);
    let m = Machine::new(&principal_with(&near, "[DEFAULT]\n"), Some(&drop_in(&sim)));
    let (r, report) = m.doctor();
    assert_eq!(r.code, 0, "a near miss is a warning: {}", r.stdout);
    let pairing = check(&report, "nova-pairing");
    assert_eq!(pairing["status"], "warn", "{pairing}");
    assert!(pairing["message"].as_str().unwrap().starts_with("9 of 10 nodes pair"), "{pairing}");
    assert!(pairing["hint"].as_str().unwrap().contains(&short), "the near miss is named: {pairing}");

    // Nova knows none of them by their fqdn: nothing Watcher could manage.
    let none = nova(
        machines
            .iter()
            .enumerate()
            .map(|(i, m)| SimHypervisor::new(i as u64 + 1, &m.fqdn().to_uppercase(), 0))
            .collect(),
    );
    let m = Machine::new(&principal_with(&none, "[DEFAULT]\n"), Some(&drop_in(&sim)));
    let (r, report) = m.doctor();
    assert_eq!(r.code, 14);
    let pairing = check(&report, "nova-pairing");
    assert_eq!(pairing["status"], "fail");
    assert!(pairing["message"].as_str().unwrap().starts_with("no node Watcher could manage: 0 of 10"), "{pairing}");
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    // Caracal with debug on, no python-libmaas, and watcher.conf overriding our timeout.
    let m = Machine::new("[DEFAULT]\ndebug = True\n[maas_client]\ntimeout = 5\n", Some(&drop_in(&sim)));
    m.juju.set_libmaas_missing(None);
    let (r, report) = m.doctor();
    assert_no_key(&r, &sim.admin_key());
    assert_eq!(r.code, 14, "{}", r.stdout);
    assert_eq!(status(&report, "config"), "fail");
    assert_eq!(
        check(&report, "config")["message"].as_str().unwrap(),
        format!("{} sets [maas_client] timeout, which overrides the charm's setting", m.conf().display())
    );
    assert_eq!(status(&report, "python-libmaas"), "fail");
    assert_eq!(status(&report, "maas"), "ok", "the checks after a failure still run");
    assert_eq!(status(&report, "debug-key-leak"), "warn");
    assert!(check(&report, "debug-key-leak")["hint"].as_str().unwrap().contains("juju config watcher debug=false"));

    // Watcher 17: the key is masked, but its MAAS path has upstream defects.
    m.juju.set_watcher_version(Some("2:17.0.0-0ubuntu1"));
    let (r, report) = m.doctor();
    assert_eq!(r.code, 14);
    assert_eq!(status(&report, "debug-key-leak"), "ok");
    assert_eq!(status(&report, "watcher-version"), "fail");
    assert!(check(&report, "watcher-version")["message"].as_str().unwrap().starts_with("use Watcher 12.0.0-15.0.0"));

    // Before 2024.1 there is no MAAS helper at all.
    m.juju.set_watcher_version(Some("2:11.0.0-0ubuntu1"));
    let (r, report) = m.doctor();
    assert_eq!(r.code, 14);
    assert_eq!(
        check(&report, "watcher-version")["message"],
        "Watcher 11.0.0 has no MAAS support (2024.1, 12.0.0, or later needed)"
    );
}

#[test]
fn warnings_do_not_fail_and_a_dead_maas_does() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let nova = nova(SimHypervisor::generate(sim.machines().len()));
    let m = Machine::new(&principal_with(&nova, "[DEFAULT]\ndebug = true\n"), Some(&drop_in(&sim)));
    let (r, report) = m.doctor();
    assert_eq!((r.code, status(&report, "debug-key-leak")), (0, "warn".to_owned()), "{}", r.stdout);
    let key = sim.admin_key();
    let url = sim.base_url();
    drop(sim);
    let (r, report) = m.doctor();
    assert_no_key(&r, &key);
    assert_eq!(r.code, 14);
    let maas = check(&report, "maas");
    assert_eq!(maas["status"], "fail");
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert_eq!(maas["message"], format!("cannot use maas-url: connection refused by 127.0.0.1:{port}"));
    assert!(!maas["hint"].as_str().unwrap().is_empty());
}

#[test]
fn tls_is_checked_as_watcher_sees_it() {
    let sim = MaasSim::start(MaasSimConfig { tls: Some(metal_sim::TlsNames::Default), ..Default::default() }).unwrap();
    let ca = sim.ca_pem().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, "[DEFAULT]\n");
    // The charm options carry the CA, so our own check passes; the system
    // store, which is all python-libmaas trusts, does not have it.
    let charm = dir.path().join("charm.yaml");
    let options = json!({
        "maas-url": sim.base_url(), "maas-api-key": sim.admin_key(), "maas-ca-cert": ca,
        "watcher-conf-path": conf, "drop-in-root": drop_in_root(&conf),
    });
    write(&charm, &serde_yaml::to_string(&options).unwrap());
    let juju = FakeJuju::new("{}", None);
    juju.set_watcher_home(&drop_in_root(&conf));
    // The drop-ins Watcher reads MAAS's settings from.
    assert_eq!(juju.run(&["render", "-c", path_str(&charm)]).code, 0);
    let r = juju.run(&["doctor", "-c", path_str(&charm), "--format", "json"]);
    assert_no_key(&r, &sim.admin_key());
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(status(&report, "maas"), "ok", "{report}");
    let tls = check(&report, "maas-tls");
    assert_eq!(tls["status"], "fail", "{tls}");
    assert!(tls["message"].as_str().unwrap().starts_with("Watcher would refuse MAAS's certificate: TLS: "), "{tls}");
    assert!(tls["hint"].as_str().unwrap().contains("system's CA store"));
    assert_eq!(r.code, 14);
}

#[test]
fn an_unreadable_layout_is_the_first_finding() {
    let dir = tempfile::tempdir().unwrap();
    let juju = FakeJuju::new("{}", None);
    let missing = conf_path(dir.path());
    let r = juju.run(&["doctor", "--watcher-conf", path_str(&missing), "--format", "json"]);
    assert_eq!(r.code, 14, "{}", r.stderr);
    let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(status(&report, "config"), "fail");
    assert_eq!(status(&report, "maas"), "skip");
    // A charm options file that is broken is a plain error, with its own code.
    let bad = dir.path().join("charm.yaml");
    write(&bad, "maas-url: [\n");
    assert_eq!(juju.run(&["doctor", "-c", path_str(&bad)]).code, 4);
}

/// Which metal helper Watcher 12.0.0's own factory builds from `conf`,
/// with its drop-ins found under `home` as on a unit (`/etc`): its service
/// start-up (`parse_args`) and `metal_helper.factory.get_helper`.
fn watcher_picks(home: &std::path::Path, conf: &std::path::Path) -> Option<String> {
    let python = peer_python("WATCHER12_PYTHON", "Watcher's own choice of metal helper")?;
    let script = "import os, sys\nfrom unittest import mock\nos.environ['HOME'] = sys.argv[1]\nsys.argv = ['/usr/bin/watcher-decision-engine', '--config-file', sys.argv[2]]\nfrom watcher import conf as _conf\nfrom watcher.common import config\nfrom watcher.common import service as _service\nconfig.parse_args(sys.argv)\nfrom watcher.common.metal_helper import factory\nprint(type(factory.get_helper(mock.MagicMock())).__name__)\n";
    let out = std::process::Command::new(python).args(["-c", script, path_str(home), path_str(conf)]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

/// The charm's options say Ironic; the files Watcher reads say MAAS (the
/// drop-ins of an earlier configuration): the doctor checks what Watcher
/// uses, MAAS, as Watcher's own factory picks it, and warns that the
/// options differ.
#[test]
fn the_backend_and_its_values_come_from_the_files_watcher_reads() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let m = Machine::new("[DEFAULT]\ndebug = false\n", Some(&drop_in(&sim)));
    let ironic = m.dir.path().join("charm.yaml");
    write(
        &ironic,
        &format!(
            "watcher-conf-path: {}\ndrop-in-root: {}\nmaas-timeout: 7\n",
            m.conf().display(),
            drop_in_root(&m.conf()).display()
        ),
    );
    let r = m.juju.run(&["doctor", "-c", path_str(&ironic), "--format", "json"]);
    assert_no_key(&r, &sim.admin_key());
    let report: Value =
        serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr));
    assert_eq!(status(&report, "maas"), "ok", "{report}");
    assert!(check(&report, "maas")["message"].as_str().unwrap().contains("10 machines visible"), "{report}");
    assert_eq!(check(&report, "ironic")["message"], "Watcher uses MAAS ([maas_client] url is set)");
    assert_eq!(status(&report, "python-libmaas"), "ok");
    let config = check(&report, "config");
    assert_eq!(config["status"], "warn", "{config}");
    assert_eq!(
        config["message"],
        "Watcher reads another [maas_client] url than the charm's options give; it uses MAAS, as its files say"
    );
    if let Some(helper) = watcher_picks(&m.dir.path().join("etc"), &m.conf()) {
        assert_eq!(helper, "MaasHelper");
    }

    // An empty `url =` in watcher.conf, read last: Watcher uses Ironic, and
    // so does the doctor, even with MAAS in the charm's options.
    write(&m.conf(), &format!("[DEFAULT]\ndebug = false\n[maas_client]\nurl =\napi_key = {}\n", sim.admin_key()));
    let maas_options = m.dir.path().join("maas.yaml");
    write(
        &maas_options,
        &format!(
            "watcher-conf-path: {}\ndrop-in-root: {}\nmaas-url: {}\nmaas-api-key: {}\n",
            m.conf().display(),
            drop_in_root(&m.conf()).display(),
            sim.base_url(),
            sim.admin_key()
        ),
    );
    let requests = sim.stats().requests;
    let root = drop_in_root(&m.conf());
    let conf = m.conf();
    for source in [
        vec!["--watcher-conf", path_str(&conf), "--drop-in-root", path_str(&root)],
        vec!["-c", path_str(&maas_options)],
    ] {
        let r = m.juju.run(&[&["doctor", "--format", "json"], source.as_slice()].concat());
        assert_no_key(&r, &sim.admin_key());
        let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
        assert_eq!(check(&report, "maas")["message"], "[maas_client] url is unset: Watcher uses Ironic", "{source:?}");
        assert_eq!(status(&report, "ironic"), "fail", "no Keystone here: {report}");
    }
    assert_eq!(sim.stats().requests, requests, "MAAS is not asked: Watcher would not ask it");
    if let Some(helper) = watcher_picks(&m.dir.path().join("etc"), &m.conf()) {
        assert_eq!(helper, "IronicHelper");
    }
}

/// Damages a machine's files as `what` says; returns what the report must
/// name, and whether only the charm's options (which name the applier)
/// reach the damage.
fn damage(m: &Machine, what: &str) -> (String, bool) {
    use std::os::unix::fs::PermissionsExt;
    let drop_in = m.drop_in_dir().join("50-watcher-metal.conf");
    let applier = m.dir.path().join("etc/watcher-applier.conf.d");
    match what {
        "watcher.conf not UTF-8" => {
            fs::write(m.conf(), b"[DEFAULT]\ndebug = \xff\n").unwrap();
            (format!("{} is not UTF-8 text", m.conf().display()), false)
        }
        "a drop-in not UTF-8" => {
            fs::write(&drop_in, b"[x]\ny = \xfe\n").unwrap();
            (format!("{} is not UTF-8 text", drop_in.display()), false)
        }
        "the drop-in directory, a file" => {
            fs::remove_dir_all(m.drop_in_dir()).unwrap();
            write(&m.drop_in_dir(), "not a directory\n");
            (format!("{} is not a regular file", m.drop_in_dir().display()), false)
        }
        "the applier's directory, a file" => {
            write(&applier, "not a directory\n");
            (format!("{} is not a regular file", applier.display()), true)
        }
        "watcher.conf unreadable" => {
            fs::set_permissions(m.conf(), fs::Permissions::from_mode(0o000)).unwrap();
            (format!("cannot read {}", m.conf().display()), false)
        }
        other => panic!("{other}"),
    }
}

/// What cannot be read is the config check's failure; every check is
/// still reported, in text and in JSON, and the exit code is 14.
#[test]
fn files_that_cannot_be_read_are_reported_with_every_check() {
    let names =
        ["config", "watcher-version", "python-libmaas", "maas", "maas-tls", "ironic", "nova-pairing", "debug-key-leak"];
    let mut cases = vec![
        "watcher.conf not UTF-8",
        "a drop-in not UTF-8",
        "the drop-in directory, a file",
        "the applier's directory, a file",
    ];
    if !running_as_root() {
        cases.push("watcher.conf unreadable");
    }
    for what in cases {
        let m = Machine::new("[DEFAULT]\ndebug = false\n", Some("[ironic_client]\napi_version = 1\n"));
        let (cause, charm_only) = damage(&m, what);
        let charm = m.dir.path().join("charm.yaml");
        let conf = m.conf();
        let root = drop_in_root(&conf);
        write(&charm, &format!("watcher-conf-path: {}\ndrop-in-root: {}\n", conf.display(), root.display()));
        let mut sources = vec![vec!["-c", path_str(&charm)]];
        if !charm_only {
            sources.push(vec!["--watcher-conf", path_str(&conf), "--drop-in-root", path_str(&root)]);
        }
        for source in sources {
            let r = m.juju.run(&[&["doctor", "--format", "json"], source.as_slice()].concat());
            assert_eq!(r.code, 14, "{what} {source:?}: {}{}", r.stdout, r.stderr);
            let report: Value =
                serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{what}: {e}: {}", r.stdout));
            let got: Vec<&str> =
                report["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
            assert_eq!(got, names, "{what}");
            let config = check(&report, "config");
            assert_eq!(config["status"], "fail", "{what}: {config}");
            let message = config["message"].as_str().unwrap();
            assert!(
                message.starts_with("cannot read what Watcher reads: ") && message.contains(&cause),
                "{what}: {message}"
            );
            assert!(!config["hint"].as_str().unwrap().is_empty(), "{what}");
            let text = m.juju.run(&[&["doctor"], source.as_slice()].concat());
            assert_eq!(text.code, 14, "{what}");
            assert!(
                text.stdout.starts_with("fail  config           cannot read what Watcher reads"),
                "{what}: {}",
                text.stdout
            );
            assert!(text.stdout.ends_with("8 checks: 1 failed, 0 warned\n"), "{what}: {}", text.stdout);
        }
    }
}

/// No watcher.conf and no drop-in: nothing is "ok".
#[test]
fn no_files_at_all_is_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let charm = dir.path().join("charm.yaml");
    let root = drop_in_root(&conf);
    write(&charm, &format!("watcher-conf-path: {}\ndrop-in-root: {}\n", conf.display(), root.display()));
    let juju = FakeJuju::new("{}", None);
    for source in
        [vec!["--watcher-conf", path_str(&conf), "--drop-in-root", path_str(&root)], vec!["-c", path_str(&charm)]]
    {
        let r = juju.run(&[&["doctor", "--format", "json"], source.as_slice()].concat());
        assert_eq!(r.code, 14, "{source:?}: {}{}", r.stdout, r.stderr);
        let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
        let config = check(&report, "config");
        assert_eq!(config["status"], "fail", "{config}");
        assert_eq!(
            config["message"],
            format!("{} does not exist: Watcher's services cannot start without it", conf.display())
        );
    }
}
