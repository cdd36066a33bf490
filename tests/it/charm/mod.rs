//! The charm: `watcher-metal dispatch` run as Juju runs it, with fake hook
//! tools on PATH recording every call, against the MAAS simulator; and the
//! packed `.charm` checked file by file. A module per concern: the hooks
//! when the unit converges, the statuses when it cannot, remove, the
//! actions, the packing. Here, the unit they all drive.

mod actions;
mod hooks;
mod packing;
mod proxies;
mod remove;
mod status;

use std::fs;
use std::path::PathBuf;

use crate::common::*;
use metal_sim::{MaasSim, MaasSimConfig};
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
