//! The charm: `watcher-metal dispatch` run as Juju runs it, with fake hook
//! tools on PATH recording every call, against the MAAS simulator; and the
//! packed `.charm` checked file by file. A module per concern: the hooks
//! when the unit converges, the statuses when it cannot, remove, what the
//! charm wrote over an operator's day, the actions, the packing. Here, the
//! unit they all drive.

mod actions;
mod hooks;
mod packing;
mod proxies;
mod remove;
mod status;
mod written;

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use metal_sim::{MaasSim, MaasSimConfig};
use serde_json::{json, Value};

const SECRET_URI: &str = "secret:cs3v8m6a8r9s7b6qvcq0";

const PRINCIPAL_CONF: &str = "# rendered by the watcher charm\n[DEFAULT]\ndebug = False\n\n[database]\nconnection = mysql+pymysql://watcher:dbpass@10.0.0.11/watcher\n";

/// A unit: a watcher.conf as the principal charm left it, a charm dir, fake
/// hook tools, and the key the config points at. The charm dir stands for
/// the machine too: watcher.conf is `<charm dir>/etc-watcher/watcher.conf`
/// and the drop-in root (where the drop-ins of `/etc/<program>.conf.d` go,
/// and Watcher's user's HOME here) is the charm dir itself.
struct Unit {
    juju: FakeJuju,
    conf: PathBuf,
    /// `drop-in-root`.
    root: PathBuf,
    charm_dir: tempfile::TempDir,
    /// The Juju application (`JUJU_UNIT_NAME` is `<application>/0`).
    application: String,
    /// The system's CA directory.
    ca_dir: PathBuf,
    key: String,
}

impl Unit {
    fn new(sim: Option<&MaasSim>, key: &str) -> Unit {
        let charm_dir = tempfile::tempdir().unwrap();
        let conf = charm_dir.path().join("etc-watcher").join("watcher.conf");
        fs::create_dir(conf.parent().unwrap()).unwrap();
        write(&conf, PRINCIPAL_CONF);
        let juju = FakeJuju::new("{}", Some(&json!({ "api-key": key }).to_string()));
        let root = charm_dir.path().to_owned();
        juju.set_watcher_home(&root);
        let ca_dir = juju.ca_dir();
        let application = "watcher-maas".to_owned();
        let unit = Unit { juju, conf, root, charm_dir, application, ca_dir, key: key.to_owned() };
        unit.configure(sim.map(|s| json!({"maas-url": s.base_url(), "maas-api-key-secret": SECRET_URI})));
        unit
    }

    /// A unit of another application of the charm on `other`'s machine:
    /// the same watcher.conf, drop-in root and CA directory, its own charm
    /// dir and hook tools.
    fn beside(other: &Unit, application: &str, sim: Option<&MaasSim>, key: &str) -> Unit {
        let charm_dir = tempfile::tempdir().unwrap();
        let juju = FakeJuju::new("{}", Some(&json!({ "api-key": key }).to_string()));
        juju.set_watcher_home(&other.root);
        let unit = Unit {
            juju,
            conf: other.conf.clone(),
            root: other.root.clone(),
            charm_dir,
            application: application.to_owned(),
            ca_dir: other.ca_dir.clone(),
            key: key.to_owned(),
        };
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
            "drop-in-root": self.root.display().to_string(),
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
        self.dispatch_with(path, &[])
    }

    /// `dispatch` with more of the environment.
    fn dispatch_with(&self, path: &str, env: &[(&str, &str)]) -> Run {
        let charm_dir = self.charm_dir.path().display().to_string();
        let unit_name = format!("{}/0", self.application);
        let ca_dir = self.ca_dir.display().to_string();
        let mut all = vec![
            ("JUJU_DISPATCH_PATH", path),
            ("JUJU_CHARM_DIR", charm_dir.as_str()),
            ("JUJU_UNIT_NAME", unit_name.as_str()),
            ("WATCHER_METAL_CA_DIR", ca_dir.as_str()),
        ];
        all.extend_from_slice(env);
        let r = self.juju.run_with(&["dispatch"], &all);
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

    /// The restarts asked of systemctl (not its `show` queries).
    fn restarts(&self) -> Vec<String> {
        self.juju.calls_to("systemctl").into_iter().filter(|c| c[1] != "show").map(|c| c[1..].join(" ")).collect()
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
        self.root.join(format!("{program}.conf.d"))
    }

    /// The CA certificate of this unit's application.
    fn ca_cert(&self) -> PathBuf {
        self.ca_dir.join(format!("watcher-metal-{}.crt", self.application))
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

/// Every file under `dir` that holds `key`'s secret part or one of our
/// markers, the charm directories' own state left out.
fn ours_under(dir: &Path, key: &str) -> Vec<PathBuf> {
    let secret = key.rsplit(':').next().unwrap();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text = fs::read_to_string(&path).unwrap_or_default();
                if text.contains(secret) || text.contains("by watcher-metal") {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    found
}
