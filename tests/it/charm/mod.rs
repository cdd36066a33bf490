//! The charm: `watcher-metal dispatch` run as Juju runs it, with fake hook
//! tools on PATH recording every call, against the MAAS simulator; and the
//! packed `.charm` checked file by file.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use metal_sim::{MaasSim, MaasSimConfig, SimUser};
use serde_json::{json, Value};

const SECRET_URI: &str = "secret:cs3v8m6a8r9s7b6qvcq0";

const PRINCIPAL_CONF: &str = "# rendered by the watcher charm\n[DEFAULT]\ndebug = False\n\n[database]\nconnection = mysql+pymysql://watcher:dbpass@10.0.0.11/watcher\n";

/// A unit: a watcher.conf as the principal charm left it, a charm dir, fake
/// hook tools, and the key the config points at.
struct Unit {
    juju: FakeJuju,
    conf: PathBuf,
    charm_dir: tempfile::TempDir,
    key: String,
}

impl Unit {
    fn new(sim: Option<&MaasSim>, key: &str) -> Unit {
        let charm_dir = tempfile::tempdir().unwrap();
        let conf = charm_dir.path().join("etc-watcher").join("watcher.conf");
        fs::create_dir(conf.parent().unwrap()).unwrap();
        write(&conf, PRINCIPAL_CONF);
        let juju = FakeJuju::new("{}", Some(&json!({ "api-key": key }).to_string()));
        let unit = Unit { juju, conf, charm_dir, key: key.to_owned() };
        unit.configure(sim.map(|s| json!({"maas-url": s.base_url(), "maas-api-key-secret": SECRET_URI})));
        unit
    }

    /// Sets the charm config as `config-get --all` prints it.
    fn configure(&self, maas: Option<Value>) {
        let mut config = json!({
            "maas-url": "", "maas-api-key": "", "maas-api-key-secret": null, "maas-timeout": 120,
            "maas-ca-cert": "", "ironic-api-version": "1", "ironic-endpoint-type": "publicURL",
            "ironic-region-name": "", "watcher-conf-path": self.conf.display().to_string(),
            "watcher-conf-mode": "drop-in", "drop-in-name": "50-watcher-metal.conf",
            "watcher-services": "watcher-decision-engine watcher-applier",
        });
        if let Some(Value::Object(extra)) = maas {
            for (k, v) in extra {
                config[k] = v;
            }
        }
        self.juju.set_config(&config.to_string());
    }

    fn dispatch(&self, path: &str) -> Run {
        let charm_dir = self.charm_dir.path().display().to_string();
        let r = self.juju.run_with(&["dispatch"], &[("JUJU_DISPATCH_PATH", path), ("JUJU_CHARM_DIR", &charm_dir)]);
        self.assert_no_secret(&r);
        r
    }

    /// The key and its secret part appear in no output and no hook tool call.
    fn assert_no_secret(&self, r: &Run) {
        let secret = self.key.rsplit(':').next().unwrap();
        let calls = self.juju.calls();
        for s in [self.key.as_str(), secret] {
            assert!(!r.stdout.contains(s), "secret in stdout: {}", r.stdout);
            assert!(!r.stderr.contains(s), "secret in stderr: {}", r.stderr);
            assert!(!calls.contains(s), "secret in a hook tool call: {calls}");
        }
        for call in self.juju.calls_to("action-set") {
            for kv in &call[1..] {
                let key = kv.split_once('=').map(|(k, _)| k).unwrap_or("");
                assert!(watcher_metal::host::juju::valid_action_key(key), "action-set key `{key}`");
            }
        }
    }

    fn statuses(&self) -> Vec<(String, String)> {
        self.juju.calls_to("status-set").into_iter().map(|c| (c[1].clone(), c[2].clone())).collect()
    }

    fn last_status(&self) -> (String, String) {
        self.statuses().pop().expect("a status-set call")
    }

    fn restarts(&self) -> Vec<String> {
        self.juju.calls_to("systemctl").into_iter().map(|c| c[1..].join(" ")).collect()
    }

    fn action_results(&self) -> Vec<(String, String)> {
        self.juju
            .calls_to("action-set")
            .into_iter()
            .flat_map(|c| c.into_iter().skip(1))
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    }

    fn result(&self, key: &str) -> Option<String> {
        self.action_results().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn conf(&self) -> String {
        fs::read_to_string(&self.conf).unwrap()
    }

    /// The decision engine's drop-in directory (`/etc/watcher-decision-engine.conf.d`).
    fn drop_in_dir(&self) -> PathBuf {
        self.program_dir("watcher-decision-engine")
    }

    fn program_dir(&self, program: &str) -> PathBuf {
        self.conf.parent().unwrap().parent().unwrap().join(format!("{program}.conf.d"))
    }

    fn drop_in_path(&self) -> PathBuf {
        self.drop_in_dir().join("50-watcher-metal.conf")
    }

    fn drop_in(&self) -> String {
        fs::read_to_string(self.drop_in_path()).unwrap()
    }
}

fn maas() -> MaasSim {
    MaasSim::start(MaasSimConfig::default()).unwrap()
}

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
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; drop-in updated".into()));
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
fn a_clash_is_blocked_with_the_file_and_option() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    // watcher.conf is read after the drop-ins: its setting wins.
    write(&unit.conf, &format!("{PRINCIPAL_CONF}\n[maas_client]\nurl = http://elsewhere:5240/MAAS\n"));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert!(
        message.starts_with(&format!(
            "{} sets [maas_client] url, which overrides the charm's setting",
            unit.conf.display()
        )),
        "{message}"
    );
    assert!(message.len() <= 160, "{message}");
    assert!(unit.drop_in().contains("[maas_client]"), "the drop-in is still written");

    // A drop-in that sorts after ours wins too; one that sorts before does not.
    write(&unit.conf, PRINCIPAL_CONF);
    write(&unit.drop_in_dir().join("10-site.conf"), "[maas_client]\ntimeout = 5\n");
    write(&unit.drop_in_dir().join("90-site.conf"), "[ironic_client]\nregion_name = RegionTwo\n");
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let later = unit.drop_in_dir().join("90-site.conf");
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert!(message.starts_with(&format!("{} sets [ironic_client] region_name", later.display())), "{message}");
    assert!(message.len() <= 120, "{message}");
    assert!(unit.juju.calls().contains(&format!("remove `region_name` from [ironic_client] in {}", later.display())));
    fs::remove_file(&later).unwrap();
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.last_status().0, "active");
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
    assert_eq!(
        apt,
        vec![["apt-get", "install", "-y", "-q", "-o", "Dpkg::Options::=--force-confold", "python3-libmaas"]
            .map(String::from)
            .to_vec()]
    );
    assert!(unit
        .statuses()
        .contains(&("maintenance".into(), "installing python3-libmaas (Watcher's MAAS helper needs it)".into())));
    assert_eq!(unit.restarts().len(), 2, "the services load the new module");
    assert_eq!(unit.last_status().0, "active");
    // Installed now: checked, not installed again.
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert!(unit.juju.calls_to("apt-get").is_empty());
    assert!(!unit.juju.calls_to("python3").is_empty(), "still checked");
}

#[test]
fn a_python_libmaas_that_cannot_be_installed_is_blocked_by_name() {
    let sim = maas();
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.juju.set_libmaas_missing(Some("E: Unable to locate package python3-libmaas"));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(
        unit.last_status(),
        ("blocked".into(), "cannot install python3-libmaas: E: Unable to locate package python3-libmaas".into())
    );
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
        ("blocked".into(), "Watcher 11.0.0 has no MAAS support (2024.1, 12.0.0, or later needed)".into())
    );

    unit.juju.set_watcher_version(Some("2:17.0.0-0ubuntu1~cloud0"));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    let (status, message) = unit.last_status();
    assert_eq!(status, "active");
    assert!(
        message.starts_with("Watcher 17.0.0: MAAS power actions will fail (upstream Nova helper defects)"),
        "{message}"
    );

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
fn rejected_key_is_blocked_with_the_diagnosis() {
    let sim = maas();
    let admin = SimUser::admin();
    let wrong = format!("{}:{}:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", admin.consumer_key, admin.token_key);
    let unit = Unit::new(Some(&sim), &wrong);
    let r = unit.dispatch("hooks/config-changed");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (status, message) = unit.last_status();
    assert_eq!(status, "blocked");
    assert!(message.starts_with("MAAS rejected the API key: wrong token secret (401); create a new key"), "{message}");
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
    assert!(message.starts_with(&format!("cannot read the API key from Juju secret {SECRET_URI}")), "{message}");
    assert!(message.len() <= 120, "{message}");
    assert!(unit.juju.calls().contains("juju grant-secret"), "the whole diagnosis is in juju-log");

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
    assert!(message.starts_with("no Watcher here after 31 min (python3-watcher not installed"), "{message}");
    // Watcher arrives: the unit goes on.
    unit.juju.set_watcher_version(Some("2:12.0.0-0ubuntu1"));
    write(&unit.conf, PRINCIPAL_CONF);
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.last_status().0, "active");
    assert!(!since.exists());
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
    assert_eq!(unit.last_status(), ("active".into(), "Ironic backend (maas-url unset); drop-in updated".into()));
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
    assert_eq!(unit.last_status(), ("active".into(), "MAAS 3.5.4, user admin; watcher.conf updated".into()));
    // In this mode a rewrite by the principal is repaired, with a restart.
    write(&unit.conf, PRINCIPAL_CONF);
    unit.juju.clear_calls();
    assert_eq!(unit.dispatch("hooks/update-status").code, 0);
    assert_eq!(unit.conf(), conf);
    assert_eq!(unit.restarts().len(), 2);
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
    assert!(message.starts_with("Watcher would refuse MAAS's certificate: TLS: "), "{message}");
    // update-ca-certificates is a stand-in here: point the store at the installed file.
    let installed = unit.juju.ca_dir().join("watcher-maas.crt");
    let charm_dir = unit.charm_dir.path().display().to_string();
    let store = installed.display().to_string();
    let r = unit.juju.run_with(
        &["dispatch"],
        &[("JUJU_DISPATCH_PATH", "hooks/config-changed"), ("JUJU_CHARM_DIR", &charm_dir), ("SSL_CERT_FILE", &store)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(unit.last_status().0, "active", "{:?}", unit.statuses());
    let installed = unit.juju.ca_dir().join("watcher-maas.crt");
    assert_eq!(fs::read_to_string(&installed).unwrap().trim_end(), ca.trim_end());
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
    let ca_left: Vec<_> = fs::read_dir(unit.juju.ca_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(ca_left.is_empty(), "no CA certificate or lock file: {ca_left:?}");
    let state: Vec<_> = fs::read_dir(unit.charm_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".watcher-metal"))
        .collect();
    assert!(state.is_empty(), "no state files: {state:?}");
    assert!(!unit.juju.ca_dir().join("watcher-maas.crt").exists());
    assert_eq!(unit.juju.calls_to("update-ca-certificates").len(), 1, "the CA bundle is rebuilt");
    assert_eq!(unit.restarts().len(), 2, "restarted once");

    // Merge mode: the managed sections leave watcher.conf.
    let unit = Unit::new(Some(&sim), &sim.admin_key());
    unit.configure(Some(json!({"maas-url": sim.base_url(), "maas-api-key-secret": SECRET_URI, "watcher-conf-mode": "merge", "maas-ca-cert": sim.ca_pem().unwrap()})));
    assert_eq!(unit.dispatch("hooks/config-changed").code, 0);
    assert_eq!(unit.dispatch("hooks/remove").code, 0);
    assert_eq!(unit.conf().trim_end(), PRINCIPAL_CONF.trim_end());
}

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
    assert_eq!(unit.result("result").as_deref(), Some("failed"));
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

// --- the packed charm -------------------------------------------------------

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Lists a zip's entries with their Unix modes, through Python's zipfile.
fn zip_entries(charm: &Path, dest: &Path) -> Vec<(String, u32)> {
    let script = "import json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nz.extractall(sys.argv[2])\nprint(json.dumps([[i.filename, i.external_attr >> 16] for i in z.infolist()]))";
    let out = Command::new("python3").args(["-c", script]).arg(charm).arg(dest).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn packed_charm_has_the_right_files_modes_and_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let charm = dir.path().join("watcher-maas.charm");
    let out = Command::new("scripts/pack-charm").args(["--binary", bin(), "--output"]).arg(&charm).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let unpacked = dir.path().join("unpacked");
    let mut entries = zip_entries(&charm, &unpacked);
    entries.sort();
    let expected = [
        ("LICENSE", 0o100644),
        ("README.md", 0o100644),
        ("THIRD-PARTY-NOTICES.txt", 0o100644),
        ("actions.yaml", 0o100644),
        ("bin/watcher-metal", 0o100755),
        ("config.yaml", 0o100644),
        ("dispatch", 0o100755),
        ("manifest.yaml", 0o100644),
        ("metadata.yaml", 0o100644),
    ];
    let expected: Vec<(String, u32)> = expected.iter().map(|(n, m)| ((*n).to_owned(), *m)).collect();
    assert_eq!(entries, expected);
    assert_eq!(fs::read(unpacked.join("bin/watcher-metal")).unwrap(), fs::read(bin()).unwrap());

    // metadata.yaml: required strings; a container-scoped juju-info subordinate.
    let meta = yaml(&unpacked.join("metadata.yaml"));
    for key in ["name", "summary", "description"] {
        assert!(meta[key].as_str().is_some_and(|s| !s.is_empty()), "metadata {key}");
    }
    assert_eq!(meta["name"], "watcher-maas");
    assert_eq!(meta["subordinate"], true);
    assert_eq!(meta["requires"]["juju-info"]["interface"], "juju-info");
    assert_eq!(meta["requires"]["juju-info"]["scope"], "container");

    // config.yaml: Juju's types, defaults of the right type, and exactly the
    // options the binary knows.
    let config = yaml(&unpacked.join("config.yaml"));
    let options = config["options"].as_mapping().unwrap();
    let mut names: Vec<&str> = options.keys().map(|k| k.as_str().unwrap()).collect();
    names.sort();
    let mut known = watcher_metal::config::KNOWN_OPTIONS.to_vec();
    known.sort();
    assert_eq!(names, known);
    for (name, option) in options {
        let kind = option["type"].as_str().unwrap();
        assert!(["string", "int", "float", "boolean", "secret"].contains(&kind), "{name:?}: {kind}");
        assert!(option["description"].as_str().is_some_and(|d| d.len() > 20), "{name:?} needs a description");
        let default = &option["default"];
        let ok = match kind {
            "string" => default.is_string(),
            "int" => default.is_i64(),
            "secret" => default.is_null(),
            _ => true,
        };
        assert!(ok, "{name:?}: default {default:?} is not a {kind}");
    }
    assert_eq!(options["maas-api-key-secret"]["type"], "secret");

    // actions.yaml: valid names, additionalProperties false everywhere.
    let actions = yaml(&unpacked.join("actions.yaml"));
    let actions = actions.as_mapping().unwrap();
    let mut action_names: Vec<&str> = actions.keys().map(|k| k.as_str().unwrap()).collect();
    action_names.sort();
    assert_eq!(action_names, ["doctor", "list-nodes", "power-status", "validate-credentials"]);
    for (name, action) in actions {
        let name = name.as_str().unwrap();
        assert!(watcher_metal::host::juju::valid_action_key(name) && !name.contains('.'), "{name}");
        assert_eq!(action["additionalProperties"], false, "{name}");
        assert!(action["params"].is_mapping(), "{name}");
        let text = serde_yaml::to_string(action).unwrap();
        assert!(!text.contains("$schema") && !text.contains("$ref"));
    }

    // manifest.yaml: the architecture of the binary packed, one of those
    // charmcraft.yaml builds for.
    let manifest = yaml(&unpacked.join("manifest.yaml"));
    assert_eq!(manifest["bases"][0]["name"], "ubuntu");
    assert_eq!(manifest["bases"][0]["channel"], "24.04");
    let arch = elf_arch(&fs::read(bin()).unwrap()).expect("the test binary is an ELF binary of a charm architecture");
    assert_eq!(manifest["bases"].as_sequence().unwrap().len(), 1);
    assert_eq!(manifest["bases"][0]["architectures"], serde_yaml::to_value([arch]).unwrap());
    let charmcraft = yaml(Path::new("charmcraft.yaml"));
    let mut platforms: Vec<&str> =
        charmcraft["platforms"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    platforms.sort();
    assert_eq!(platforms, CHARM_ARCHES);
    for arch in CHARM_ARCHES {
        let platform = &charmcraft["platforms"][arch];
        assert_eq!(platform["build-on"], platform["build-for"], "{arch} is built natively");
    }

    // LICENSE, and the notices of exactly the crates linked into the binary.
    assert_eq!(fs::read(unpacked.join("LICENSE")).unwrap(), fs::read("LICENSE").unwrap());
    let license = fs::read_to_string("LICENSE").unwrap();
    assert!(license.contains("Apache License\n                           Version 2.0, January 2004"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
    let notices = fs::read_to_string(unpacked.join("THIRD-PARTY-NOTICES.txt")).unwrap();
    let (linked, dev_only) = linked_crates();
    assert!(linked.len() > 50, "{linked:?}");
    for krate in &linked {
        assert!(notices.contains(&format!("\n- {krate}")), "the notices miss {krate}");
    }
    for krate in &dev_only {
        assert!(!notices.contains(&format!("\n- {krate}")), "the notices name {krate}, which is not linked");
    }
    assert!(notices.contains("Permission is hereby granted, free of charge"), "the MIT licence text");

    // pack-charm refuses what is not a binary of a charm architecture, with
    // one line and no charm; a header of another charm architecture gives
    // that architecture's manifest, unless --arch says otherwise.
    let header = fs::read(bin()).unwrap()[..64].to_vec();
    let fake = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        fs::write(&path, data).unwrap();
        path
    };
    let pack = |binary: &Path, args: &[&str]| {
        let charm = dir.path().join("other.charm");
        let _ = fs::remove_file(&charm);
        let out = Command::new("scripts/pack-charm")
            .arg("--binary")
            .arg(binary)
            .args(args)
            .arg("--output")
            .arg(&charm)
            .output()
            .unwrap();
        (out, charm)
    };
    let refused = [
        (fake("script", b"#!/bin/sh\nexit 0\n"), vec![], "not an ELF binary"),
        (fake("empty", b""), vec![], "not an ELF binary"),
        (
            fake("riscv", &elf_with_machine(&header, 243, false)),
            vec![],
            "for riscv (little-endian), not one of amd64, arm64, ppc64el, s390x",
        ),
        (fake("ppc64-be", &elf_with_machine(&header, 21, true)), vec![], "for ppc64 (big-endian)"),
        (fake("arm64", &elf_with_machine(&header, 183, false)), vec!["--arch", "amd64"], "for arm64, not amd64"),
        (dir.path().join("missing"), vec![], "cannot read the binary"),
    ];
    for (binary, args, message) in &refused {
        let (out, charm) = pack(binary, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", binary.display());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&format!("error: {}: ", binary.display())) && stderr.contains(message), "{stderr}");
        assert!(!charm.exists());
    }
    for (name, machine, big_endian, arch) in [("arm64", 183, false, "arm64"), ("s390x", 22, true, "s390x")] {
        let binary = fake(name, &elf_with_machine(&header, machine, big_endian));
        let (out, charm) = pack(&binary, &["--arch", arch]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let unpacked = dir.path().join(format!("unpacked-{arch}"));
        zip_entries(&charm, &unpacked);
        let manifest = yaml(&unpacked.join("manifest.yaml"));
        assert_eq!(manifest["bases"][0]["architectures"], serde_yaml::to_value([arch]).unwrap());
    }

    // dispatch.
    let dispatch = fs::read_to_string(unpacked.join("dispatch")).unwrap();
    assert!(dispatch.starts_with("#!/bin/sh\n"));
    assert!(dispatch.trim_end().ends_with("exec ./bin/watcher-metal dispatch"));
}

/// The architectures the charm is built for (charmcraft.yaml's platforms).
const CHARM_ARCHES: [&str; 4] = ["amd64", "arm64", "ppc64el", "s390x"];

/// A 64-bit ELF header's architecture, as Juju names it (e_machine and the
/// byte order), or None for anything else.
fn elf_arch(elf: &[u8]) -> Option<&'static str> {
    if elf.len() < 20 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        return None;
    }
    let machine = match elf[5] {
        1 => u16::from_le_bytes([elf[18], elf[19]]),
        2 => u16::from_be_bytes([elf[18], elf[19]]),
        _ => return None,
    };
    match (machine, elf[5]) {
        (62, 1) => Some("amd64"),
        (183, 1) => Some("arm64"),
        (21, 1) => Some("ppc64el"),
        (22, 2) => Some("s390x"),
        _ => None,
    }
}

/// A copy of an ELF header for another machine and byte order.
fn elf_with_machine(header: &[u8], machine: u16, big_endian: bool) -> Vec<u8> {
    let mut elf = header.to_vec();
    let swap = (elf[5] == 2) != big_endian;
    elf[5] = if big_endian { 2 } else { 1 };
    if swap {
        elf[16..18].reverse(); // e_type
    }
    let bytes = if big_endian { machine.to_be_bytes() } else { machine.to_le_bytes() };
    elf[18..20].copy_from_slice(&bytes);
    assert_eq!(elf_arch(&elf).is_some(), [62, 183, 21, 22].contains(&machine) && big_endian == (machine == 22));
    elf
}

/// The crates linked into watcher-metal on Linux (`cargo tree`'s normal
/// dependencies), as "name version", and those that only its
/// dev-dependencies bring in; crates of this workspace aside.
fn linked_crates() -> (Vec<String>, Vec<String>) {
    let tree = |edges: &str| {
        let out = Command::new(env!("CARGO"))
            .args(["tree", "--locked", "--offline", "-p", "watcher-metal", "--target", "x86_64-unknown-linux-gnu"])
            .args(["-e", edges, "--prefix", "none", "--format", "{p}"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut crates: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            // "name vX.Y.Z", then "(proc-macro)", "(*)", or "(/path)" for
            // a crate of this workspace.
            .filter(|line| !line.contains(" (/"))
            .map(|line| {
                let mut words = line.split_whitespace();
                let (name, version) = (words.next().unwrap(), words.next().unwrap());
                format!("{name} {}", version.trim_start_matches('v'))
            })
            .collect();
        crates.sort();
        crates.dedup();
        crates
    };
    let linked = tree("normal");
    let dev_only = tree("normal,dev").into_iter().filter(|k| !linked.contains(k)).collect();
    (linked, dev_only)
}
