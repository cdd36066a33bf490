//! The API key never leaves the places it must be (watcher.conf, and MAAS
//! in the Authorization header): every command and every hook and action,
//! on success and on failure, is run with a known key, and the key and its
//! token-secret part are looked for in all they print and all hook tool
//! calls they make.

mod common;

use std::fs;

use common::*;
use metal_sim::{Fault, FaultRule, MaasSim, MaasSimConfig, SimUser};
use serde_json::json;

struct Sweep {
    secrets: Vec<String>,
    checked: usize,
}

impl Sweep {
    fn new(key: &str) -> Sweep {
        let secret = key.rsplit(':').next().unwrap().to_owned();
        Sweep { secrets: vec![key.to_owned(), secret], checked: 0 }
    }

    fn check(&mut self, what: &str, text: &str) {
        for s in &self.secrets {
            assert!(!text.contains(s.as_str()), "{what} shows the key:\n{text}");
        }
        self.checked += 1;
    }

    fn run(&mut self, args: &[&str]) -> Run {
        let r = run(args);
        self.check(&format!("stdout of {args:?}"), &r.stdout);
        self.check(&format!("stderr of {args:?}"), &r.stderr);
        r
    }
}

#[test]
fn no_command_shows_the_key() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let key = sim.admin_key();
    let mut sweep = Sweep::new(&key);
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, "[DEFAULT]\ndebug = true\n");
    let config = dir.path().join("charm.yaml");
    let good = format!(
        "maas-url: {}\nmaas-api-key: {key}\nmaas-timeout: 2\nwatcher-conf-path: {}\n",
        sim.base_url(),
        conf.display()
    );
    write(&config, &good);
    let c = path_str(&config);
    let machine = sim.machines()[0].clone();

    // render, every mode.
    assert_eq!(sweep.run(&["render", "-c", c, "--check"]).code, 1);
    assert_eq!(sweep.run(&["render", "-c", c]).code, 0);
    let drop_in = dir.path().join("etc/watcher-decision-engine.conf.d/50-watcher-metal.conf");
    assert!(fs::read_to_string(&drop_in).unwrap().contains(&key), "the key did reach the drop-in");
    assert_eq!(sweep.run(&["render", "--merge", "-c", c, "--check"]).code, 1);
    assert_eq!(sweep.run(&["render", "--merge", "-c", c]).code, 0);
    assert!(fs::read_to_string(&conf).unwrap().contains(&key), "the key did reach watcher.conf");
    // watcher.conf now sets the key too: render reports the clash, still without the key.
    assert_eq!(sweep.run(&["render", "-c", c]).code, 0, "the merged sections moved back to the drop-in");
    sweep.run(&["render", "-c", c, "-o", "-"]);
    sweep.run(&["render", "-c", c, "--full", "-o", "-"]);
    sweep.run(&["render", "-c", c, "--check"]);
    // validate, nodes and power, succeeding.
    for args in [
        &["validate", "-c", c][..],
        &["validate", "-c", c, "--format", "json"],
        &["validate", "--watcher-conf", path_str(&conf)],
        &["nodes", "-c", c],
        &["nodes", "-c", c, "--live", "--format", "json"],
        &["power", "status", &machine.system_id, "-c", c],
        &["power", "off", &machine.system_id, "-c", c, "--force"],
        &["power", "on", &machine.system_id, "-c", c, "--format", "json"],
    ] {
        let r = sweep.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    // ... and failing: a server error, a timeout, a refused key.
    sim.add_fault(FaultRule {
        path_contains: "users/".into(),
        op: None,
        times: Some(1),
        fault: Fault::Status { status: 500, content_type: "text/plain".into(), body: key.clone(), retry_after: None },
    });
    assert_eq!(sweep.run(&["validate", "-c", c]).code, 36, "even a server echoing the key is masked");
    sim.add_fault(FaultRule { path_contains: "machines/".into(), op: None, times: Some(1), fault: Fault::Hang });
    assert_eq!(sweep.run(&["nodes", "-c", c]).code, 22);
    let admin = SimUser::admin();
    let wrong = format!("{}:{}:WrongSecretWrongSecretWrongSecre", admin.consumer_key, admin.token_key);
    let mut wrong_sweep = Sweep::new(&wrong);
    write(&config, &good.replace(&key, &wrong));
    assert_eq!(wrong_sweep.run(&["validate", "-c", c]).code, 31);
    assert_eq!(wrong_sweep.run(&["render", "-c", c, "--check"]).code, 1);
    // A malformed key is described, never echoed.
    write(&config, &good.replace(&key, &format!("{key}:extra")));
    assert_eq!(sweep.run(&["render", "-c", c]).code, 3);
    assert_eq!(sweep.run(&["validate", "-c", c]).code, 3);
    assert!(sweep.checked >= 30);
}

#[test]
fn no_hook_or_action_shows_the_key() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let key = sim.admin_key();
    let mut sweep = Sweep::new(&key);
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, "[DEFAULT]\ndebug = true\n");
    let config = |url: &str| {
        json!({"maas-url": url, "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0", "maas-timeout": 2,
               "watcher-conf-path": conf.display().to_string()})
        .to_string()
    };
    let juju = FakeJuju::new(&config(&sim.base_url()), Some(&json!({ "api-key": key }).to_string()));
    let charm_dir = dir.path().display().to_string();
    let dispatch =
        |path: &str| juju.run_with(&["dispatch"], &[("JUJU_DISPATCH_PATH", path), ("JUJU_CHARM_DIR", &charm_dir)]);
    let mut events = vec!["hooks/install", "hooks/config-changed", "hooks/update-status", "hooks/secret-changed"];
    events.extend(["actions/validate-credentials", "actions/list-nodes", "actions/power-status"]);
    juju.set_params(&json!({ "node": sim.machines()[0].hostname, "live": true }).to_string());
    for event in &events {
        let r = dispatch(event);
        assert_eq!(r.code, 0, "{event}: {}", r.stderr);
        sweep.check(&format!("stdout of {event}"), &r.stdout);
        sweep.check(&format!("stderr of {event}"), &r.stderr);
    }
    // Failing paths: MAAS gone, then MAAS echoing the key in an error.
    juju.set_config(&config("http://127.0.0.1:9/MAAS"));
    for event in ["hooks/config-changed", "actions/validate-credentials", "actions/list-nodes"] {
        let r = dispatch(event);
        sweep.check(&format!("stderr of failing {event}"), &r.stderr);
    }
    juju.set_config(&config(&sim.base_url()));
    sim.add_fault(FaultRule {
        path_contains: "users/".into(),
        op: None,
        times: None,
        fault: Fault::Status { status: 403, content_type: "text/plain".into(), body: key.clone(), retry_after: None },
    });
    for event in ["hooks/update-status", "actions/validate-credentials"] {
        dispatch(event);
    }
    assert_eq!(dispatch("hooks/remove").code, 0);
    let calls = juju.calls();
    assert!(calls.contains("status-set") && calls.contains("action-set") && calls.contains("juju-log"));
    sweep.check("the hook tool calls", &calls);
}
