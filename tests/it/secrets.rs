//! The API key never leaves the places it must be (watcher.conf, and MAAS
//! in the Authorization header): every command and every hook and action,
//! on success and on failure, is run with a known key, and the key and its
//! token-secret part are looked for in all they print and all hook tool
//! calls they make.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::*;
use metal_sim::{Fault, FaultRule, MaasSim, MaasSimConfig, SimUser};
use serde_json::json;

struct Sweep {
    secrets: Vec<String>,
    checked: usize,
    /// `WATCHER_METAL_ETC` for the commands run.
    accounts: Option<PathBuf>,
}

impl Sweep {
    fn new(key: &str) -> Sweep {
        let secret = key.rsplit(':').next().unwrap().to_owned();
        Sweep { secrets: vec![key.to_owned(), secret], checked: 0, accounts: None }
    }

    fn check(&mut self, what: &str, text: &str) {
        for s in &self.secrets {
            assert!(!text.contains(s.as_str()), "{what} shows the key:\n{text}");
        }
        self.checked += 1;
    }

    fn run(&mut self, args: &[&str]) -> Run {
        let accounts = self.accounts.as_ref().map(|a| a.display().to_string());
        let env: Vec<(&str, &str)> = accounts.iter().map(|a| ("WATCHER_METAL_ETC", a.as_str())).collect();
        let r = run_with(args, &env, None);
        self.check(&format!("stdout of {args:?}"), &r.stdout);
        self.check(&format!("stderr of {args:?}"), &r.stderr);
        r
    }

    /// Runs `args`, expecting exit `code` and `stdout` and `stderr` to hold
    /// the given texts (and not the key).
    fn expect(&mut self, args: &[&str], code: i32, stdout: &[&str], stderr: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, code, "{args:?}:\n{}{}", r.stdout, r.stderr);
        for text in stdout {
            assert!(r.stdout.contains(text), "stdout of {args:?} lacks {text:?}:\n{}", r.stdout);
        }
        for text in stderr {
            assert!(r.stderr.contains(text), "stderr of {args:?} lacks {text:?}:\n{}", r.stderr);
        }
        if stderr.is_empty() {
            assert_eq!(r.stderr, "", "{args:?}");
        }
        r
    }

    /// The files under `dir` that hold the key: each must be one of `allowed`
    /// and readable by its owner and group only.
    fn check_files(&self, dir: &Path, allowed: &[PathBuf]) -> Vec<PathBuf> {
        let mut holding = Vec::new();
        let mut dirs = vec![dir.to_owned()];
        while let Some(d) = dirs.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if self
                    .secrets
                    .iter()
                    .any(|s| fs::read_to_string(&path).unwrap_or_default().contains(s.as_str()))
                {
                    holding.push(path);
                }
            }
        }
        holding.sort();
        for path in &holding {
            assert!(allowed.contains(path), "{} holds the key", path.display());
            let mode = fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o007, 0, "{} holds the key and is mode {mode:o}", path.display());
        }
        holding
    }
}

const REDACTED_KEY: &str = "\napi_key = <redacted>\n";

#[test]
fn no_command_shows_the_key() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let key = sim.admin_key();
    let mut sweep = Sweep::new(&key);
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, "[DEFAULT]\ndebug = true\n");
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o640)).unwrap();
    sweep.accounts = Some(accounts_with_home(dir.path(), &drop_in_root(&conf)));
    let config = dir.path().join("charm.yaml");
    let good = format!(
        "maas-url: {}\nmaas-api-key: {key}\nmaas-timeout: 2\nwatcher-conf-path: {}\ndrop-in-root: {}\n",
        sim.base_url(),
        conf.display(),
        drop_in_root(&conf).display()
    );
    write(&config, &good);
    let c = path_str(&config);
    let machine = sim.machines()[0].clone();

    // render, every mode.
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let drop_ins = ["watcher-decision-engine", "watcher-applier"]
        .map(|program| dir.path().join(format!("etc/{program}.conf.d/50-watcher-metal.conf")));
    let diff = format!("+++ {}\n", drop_ins[0].display());
    sweep.expect(&["render", "-c", c, "--check"], 1, &[&diff, "\n+api_key = <redacted>\n"], &[]);
    let created = format!("created {}\n", drop_ins[0].display());
    sweep.expect(&["render", "-c", c], 0, &[&created], &[]);
    let holding = sweep.check_files(dir.path(), &[config.clone(), drop_ins[0].clone(), drop_ins[1].clone()]);
    assert_eq!(holding.len(), 3, "the key did reach both drop-ins: {holding:?}");
    let diff = format!("+++ {}\n", conf.display());
    sweep.expect(&["render", "--merge", "-c", c, "--check"], 1, &[&diff, "\n+api_key = <redacted>\n"], &[]);
    let updated = format!("updated {}\n", conf.display());
    sweep.expect(&["render", "--merge", "-c", c], 0, &[&updated], &[]);
    let holding = sweep.check_files(dir.path(), &[config.clone(), conf.clone()]);
    assert_eq!(holding.len(), 2, "the key did reach watcher.conf: {holding:?}");
    // watcher.conf sets the key now: render moves the sections back to the drop-ins.
    sweep.expect(&["render", "-c", c], 0, &[&created, &updated], &[]);
    sweep.check_files(dir.path(), &[config.clone(), drop_ins[0].clone(), drop_ins[1].clone()]);
    sweep.expect(&["render", "-c", c, "-o", "-"], 0, &["[maas_client]\n", REDACTED_KEY], &[]);
    sweep.expect(&["render", "-c", c, "--full", "-o", "-"], 0, &["[maas_client]\n", REDACTED_KEY], &[]);
    assert_eq!(sweep.expect(&["render", "-c", c, "--check"], 0, &[], &[]).stdout, "");
    // validate, nodes and power, succeeding.
    let id = machine.system_id.as_str();
    let accepted = "ok: API key accepted for user admin";
    let root = drop_in_root(&conf);
    for (args, stdout) in [
        (&["validate", "-c", c][..], accepted),
        (&["validate", "-c", c, "--format", "json"], r#""result":"ok""#),
        (&["validate", "--watcher-conf", path_str(&conf), "--drop-in-root", path_str(&root)], accepted),
        (&["nodes", "-c", c], "nodes (9 on, 1 off, 0 unknown, 0 error) via maas"),
        (&["nodes", "-c", c, "--live", "--format", "json"], r#""backend":"maas""#),
        (&["power", "status", id, "-c", c], &format!("{id}: on")),
        (&["power", "off", id, "-c", c, "--force"], &format!("{id}: off (requested)")),
        (&["power", "on", id, "-c", c, "--format", "json"], r#""power_state":"on""#),
    ] {
        sweep.expect(args, 0, &[stdout], &[]);
    }
    // ... and failing: a server error, a timeout, a refused key.
    sim.add_fault(FaultRule {
        path_contains: "users/".into(),
        op: None,
        times: Some(1),
        fault: Fault::Status { status: 500, content_type: "text/plain".into(), body: key.clone(), retry_after: None },
    });
    // Even a server echoing the key is quoted, masked.
    sweep.expect(&["validate", "-c", c], 36, &[], &["error: MAAS server error (500): <redacted>\n"]);
    sim.add_fault(FaultRule { path_contains: "machines/".into(), op: None, times: Some(1), fault: Fault::Hang });
    sweep.expect(&["nodes", "-c", c], 22, &[], &["error: no answer within 2 s\n"]);
    let admin = SimUser::admin();
    let wrong = format!("{}:{}:WrongSecretWrongSecretWrongSecre", admin.consumer_key, admin.token_key);
    let mut wrong_sweep = Sweep::new(&wrong);
    wrong_sweep.accounts = sweep.accounts.clone();
    write(&config, &good.replace(&key, &wrong));
    wrong_sweep.expect(
        &["validate", "-c", c],
        31,
        &[],
        &["error: MAAS rejected the API key: wrong token secret (401)\n"],
    );
    wrong_sweep.expect(&["render", "-c", c, "--check"], 1, &["only secret values differ (masked)"], &[]);
    // A malformed key is described, never echoed.
    write(&config, &good.replace(&key, &format!("{key}:extra")));
    let described = "error: maas-api-key: the API key has 4 colon-separated part(s); a MAAS API key has 3";
    sweep.expect(&["render", "-c", c], 3, &[], &[described]);
    sweep.expect(&["validate", "-c", c], 3, &[], &[described]);
    assert!(sweep.checked >= 30);

    // A CA's private key pasted with its certificate is refused by name:
    // no line of it is shown, and no file but the config holds it.
    let tls = MaasSim::start(MaasSimConfig { tls: Some(metal_sim::TlsNames::Default), ..Default::default() }).unwrap();
    let pasted = format!("{}{PASTED_KEY}", tls.ca_pem().unwrap());
    let indented: String = pasted.lines().map(|l| format!("  {l}\n")).collect();
    write(&config, &format!("{good}maas-ca-cert: |\n{indented}"));
    let mut key_sweep = Sweep {
        secrets: PASTED_KEY.lines().filter(|l| !l.starts_with("-----")).map(str::to_owned).collect(),
        checked: 0,
        accounts: None,
    };
    let refused = "error: maas-ca-cert: block 2 is a private key (PRIVATE KEY), which must not be installed\n";
    for args in [&["render", "-c", c][..], &["validate", "-c", c], &["doctor", "-c", c]] {
        let r = key_sweep.run(args);
        assert!(r.stderr.contains(refused), "{args:?}: {}", r.stderr);
        assert_ne!(r.code, 0, "{args:?}");
    }
    key_sweep.run(&["validate", "-c", c, "--format", "json"]);
    assert_eq!(key_sweep.check_files(dir.path(), std::slice::from_ref(&config)), [config]);
}

/// A test CA's private key (EC P-256, of no certificate in use anywhere).
const PASTED_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUuQfDGDOyHp1qFa/
VQ71jnESZlKTH14qE6dCN9mh7tChRANCAASKqC90qId0/uJ/OOURNhWayoBksBjN
Rf2oasrlP9AgSKpsTv2uJPWL/EMoSlq3FVuseV/qWnTeCGIZ9q51sVxF
-----END PRIVATE KEY-----
";

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
               "watcher-conf-path": conf.display().to_string(), "drop-in-root": drop_in_root(&conf)})
        .to_string()
    };
    let juju = FakeJuju::new(&config(&sim.base_url()), Some(&json!({ "api-key": key }).to_string()));
    juju.set_watcher_home(&drop_in_root(&conf));
    let charm_dir = dir.path().display().to_string();
    let files = Sweep::new(&key);
    // Runs `event`, checks all it prints and every hook tool call it makes,
    // and returns those calls.
    let mut dispatch = |event: &str| -> Vec<Call> {
        juju.clear_calls();
        let r = juju.run_with(&["dispatch"], &[("JUJU_DISPATCH_PATH", event), ("JUJU_CHARM_DIR", &charm_dir)]);
        assert_eq!(r.code, 0, "{event}: {}", r.stderr);
        sweep.check(&format!("stdout of {event}"), &r.stdout);
        sweep.check(&format!("stderr of {event}"), &r.stderr);
        let calls = juju.call_list();
        sweep.check(&format!("the hook tool calls of {event}"), &format!("{calls:?}"));
        calls
    };
    let said = |calls: &[Call], tool: &str| -> Vec<String> {
        calls.iter().filter(|c| c[0] == tool).map(|c| c[1..].join(" ")).collect()
    };
    let mut events = vec!["hooks/install", "hooks/config-changed", "hooks/update-status", "hooks/secret-changed"];
    events.extend(["actions/validate-credentials", "actions/list-nodes", "actions/power-status"]);
    juju.set_params(&json!({ "node": sim.machines()[0].hostname, "live": true }).to_string());
    for event in &events {
        let calls = dispatch(event);
        if event.starts_with("hooks/") {
            let status = said(&calls, "status-set");
            assert!(status.last().is_some_and(|s| s.starts_with("active ")), "{event}: {status:?}");
        } else {
            assert_eq!(said(&calls, "action-fail"), Vec::<String>::new(), "{event}");
            let result = said(&calls, "action-set");
            assert!(result.iter().any(|r| r.split(' ').any(|kv| kv == "result=success")), "{event}: {result:?}");
        }
    }
    let holding = sweep_files(&files, &dir, &conf);
    assert_eq!(holding.len(), 2, "the key did reach both drop-ins: {holding:?}");

    // Failing paths: MAAS gone, then MAAS echoing the key in an error.
    juju.set_config(&config("http://127.0.0.1:9/MAAS"));
    let refused = "connection refused by 127.0.0.1:9";
    let calls = dispatch("hooks/config-changed");
    let status = said(&calls, "status-set");
    assert!(status.last().is_some_and(|s| s.starts_with("waiting ") && s.contains(refused)), "{status:?}");
    for action in ["actions/validate-credentials", "actions/list-nodes"] {
        let failed = said(&dispatch(action), "action-fail");
        assert!(failed.len() == 1 && failed[0].contains(refused), "{action}: {failed:?}");
    }
    juju.set_config(&config(&sim.base_url()));
    sim.add_fault(FaultRule {
        path_contains: "users/".into(),
        op: None,
        times: None,
        fault: Fault::Status { status: 403, content_type: "text/plain".into(), body: key.clone(), retry_after: None },
    });
    let forbidden = "MAAS forbids this (403): <redacted>; check the MAAS user is active";
    let calls = dispatch("hooks/update-status");
    let status = said(&calls, "status-set");
    let fix_first = "blocked check the key's MAAS user: MAAS forbids this (403): <redacted>";
    assert!(status.last().is_some_and(|s| s.starts_with(fix_first)), "{status:?}");
    assert!(said(&calls, "juju-log").iter().any(|l| l.contains(forbidden)), "the whole reason is logged");
    let failed = said(&dispatch("actions/validate-credentials"), "action-fail");
    assert!(failed.len() == 1 && failed[0].starts_with(forbidden), "{failed:?}");
    sweep_files(&files, &dir, &conf);

    let calls = dispatch("hooks/remove");
    let removed = said(&calls, "juju-log");
    assert!(removed.iter().any(|l| l.ends_with("50-watcher-metal.conf")), "{removed:?}");
    assert_eq!(sweep_files(&files, &dir, &conf), Vec::<PathBuf>::new(), "remove takes the key away");
    assert_eq!(sweep.checked, 3 * (events.len() + 6), "every dispatch was checked");
}

/// Checks the files of the unit (`dir`) and of the fake Juju: the key
/// may be only in the drop-ins and watcher.conf.
fn sweep_files(sweep: &Sweep, dir: &tempfile::TempDir, conf: &Path) -> Vec<PathBuf> {
    let etc = dir.path().join("etc");
    let drop_ins = ["watcher-decision-engine", "watcher-applier"]
        .map(|program| etc.join(format!("{program}.conf.d/50-watcher-metal.conf")));
    sweep.check_files(dir.path(), &[drop_ins[0].clone(), drop_ins[1].clone(), conf.to_owned()])
}

/// Whether any part of `key` (its first 8 characters, in any case) is in
/// `text`.
fn shows_part_of(key: &str, text: &str) -> bool {
    let text = text.to_lowercase();
    key.split(':').any(|part| text.contains(&part[..8].to_lowercase()))
}

/// A MAAS key pasted into an option that is not the key's: refused, and
/// never echoed, whole or in part, by any command, hook or status; as a
/// service name it names no directory and no unit to restart.
#[test]
fn a_key_pasted_into_the_wrong_option_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, "[DEFAULT]\ndebug = false\n");
    let options = [
        "maas-url",
        "maas-api-key-secret",
        "maas-timeout",
        "maas-ca-cert",
        "ironic-api-version",
        "ironic-endpoint-type",
        "ironic-region-name",
        "watcher-conf-path",
        "watcher-conf-mode",
        "drop-in-name",
        "watcher-services",
    ];
    let config = dir.path().join("charm.yaml");
    for option in options {
        for value in [KEY.to_owned(), KEY[..60].to_owned(), format!("watcher-applier {KEY}")] {
            let mut map = json!({ "watcher-conf-path": conf.display().to_string() });
            map[option] = json!(value);
            write(&config, &serde_yaml::to_string(&map).unwrap());
            let r = run(&["render", "-c", path_str(&config), "-o", "-"]);
            assert_eq!(r.code, 3, "{option}: {}", r.stderr);
            assert!(!shows_part_of(KEY, &r.stdout) && !shows_part_of(KEY, &r.stderr), "{option}: {}", r.stderr);
            assert!(
                r.stderr.contains(&format!("{option}: holds what looks like a MAAS API key (not shown)")),
                "{}",
                r.stderr
            );
        }
    }

    // In a hook: blocked, in words that do not show it; no unit named by it
    // is restarted and no directory named by it is made.
    let juju = FakeJuju::new("{}", None);
    let charm_dir = dir.path().display().to_string();
    for option in ["ironic-api-version", "watcher-services", "maas-url"] {
        let mut map = json!({ "watcher-conf-path": conf.display().to_string() });
        map[option] = json!(KEY);
        juju.set_config(&map.to_string());
        juju.clear_calls();
        let r = juju
            .run_with(&["dispatch"], &[("JUJU_DISPATCH_PATH", "hooks/config-changed"), ("JUJU_CHARM_DIR", &charm_dir)]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let calls = juju.calls();
        assert!(!shows_part_of(KEY, &calls) && !shows_part_of(KEY, &r.stderr), "{option}: {calls}");
        let status = juju.calls_to("status-set").pop().unwrap();
        assert_eq!(status[1], "blocked", "{option}: {status:?}");
        assert!(
            status[2].contains(&format!("{option}: holds what looks like a MAAS API key (not shown)")),
            "{status:?}"
        );
        assert!(juju.calls_to("systemctl").is_empty(), "{option}: {calls}");
    }
    let made: Vec<String> = fs::read_dir(dir.path().join("etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(made.iter().all(|name| !shows_part_of(KEY, name)), "{made:?}");
}
