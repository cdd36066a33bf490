//! `--format json` on failure: every command that takes it prints one JSON
//! object on standard output, `{"error": {"code", "message", "hint"}}`,
//! the same as the `error:`/`hint:` lines on standard error and the exit
//! code, with anything shaped like a MAAS API key masked.

use crate::common::*;
use metal_sim::{MaasSim, MaasSimConfig};
use serde_json::Value;

/// The error object of a failed run, checked against its exit code and
/// standard error.
fn error_of(r: &Run) -> Value {
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 1, "one line of JSON: {}", r.stdout);
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr));
    let error = v["error"].clone();
    assert_eq!(error["code"], r.code, "{v}");
    let message = error["message"].as_str().unwrap();
    assert!(r.stderr.contains(&format!("error: {message}\n")), "{v}\n{}", r.stderr);
    let hint = error["hint"].as_str().unwrap();
    if !hint.is_empty() {
        assert!(r.stderr.contains(&format!("  hint: {hint}\n")), "{v}\n{}", r.stderr);
    }
    error
}

#[test]
fn every_json_command_prints_its_failure_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let no_key = dir.path().join("no-key.yaml");
    write(&no_key, &format!("maas-url: http://127.0.0.1:9/MAAS\nwatcher-conf-path: {}\n", conf.display()));
    let broken = dir.path().join("broken.yaml");
    write(&broken, "maas-url: [\n");
    for command in [vec!["validate"], vec!["nodes"], vec!["power", "status", "node-1"], vec!["doctor"]] {
        // The options break a rule; cannot be parsed.
        for (config, code) in [(&no_key, 3), (&broken, 4)] {
            let args = [command.as_slice(), &["--format", "json", "-c", path_str(config)]].concat();
            let r = run(&args);
            let error = error_of(&r);
            assert_eq!(error["code"], code, "{args:?}");
            if code == 3 {
                assert_eq!(error["message"], "maas-url: is set but no API key is", "{args:?}");
                assert!(error["hint"].as_str().unwrap().starts_with("set maas-api-key-secret"), "{args:?}");
            }
            // The text form prints nothing on standard output.
            let text = run(&[command.as_slice(), &["-c", path_str(config)]].concat());
            assert_eq!((text.code, text.stdout.as_str()), (code, ""), "{args:?}");
        }
        // Flags the parser refuses: its own message on standard error.
        for format in [&["--format", "json"][..], &["--format=json"]] {
            let r = run(&[command.as_slice(), format, &["--no-such-flag"]].concat());
            assert_eq!(r.code, 2);
            let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
            assert_eq!(v["error"]["code"], 2);
            assert_eq!(v["error"]["message"], "unexpected argument '--no-such-flag' found");
            assert!(r.stderr.starts_with("error: unexpected argument '--no-such-flag' found\n"), "{}", r.stderr);
        }
    }
}

#[test]
fn failures_on_the_wire_are_json_too_and_mask_a_key() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    let options = |url: &str| {
        format!(
            "maas-url: {url}\nmaas-api-key: {}\nwatcher-conf-path: {}\n",
            sim.admin_key(),
            conf_path(dir.path()).display()
        )
    };
    write(&config, &options(&sim.base_url()));
    // No such node: the name given is shown, unless it is shaped like a key.
    let r = run(&["power", "status", "no-such-node", "--format", "json", "-c", path_str(&config)]);
    assert_eq!(error_of(&r)["code"], 40);
    let r = run(&["power", "status", KEY, "--format", "json", "-c", path_str(&config)]);
    r.assert_no_secret();
    let error = error_of(&r);
    assert_eq!(error["code"], 40);
    assert!(error["message"].as_str().unwrap().contains("<redacted>"), "{error}");
    // MAAS refuses the connection.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    write(&config, &options(&format!("http://127.0.0.1:{port}/MAAS")));
    for command in [vec!["nodes"], vec!["power", "status", "node-1"]] {
        let r = run(&[command.as_slice(), &["--format", "json", "-c", path_str(&config)]].concat());
        assert_no_admin_key(&r, &sim.admin_key());
        let error = error_of(&r);
        assert_eq!(error["code"], 21, "{command:?}");
        assert!(error["message"].as_str().unwrap().contains("connection refused"), "{error}");
    }
    // validate reports how far it got, with the same error object.
    let r = run(&["validate", "--format", "json", "-c", path_str(&config)]);
    assert_eq!(r.code, 21);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((v["result"].as_str(), v["stage"].as_str()), (Some("failed"), Some("reach")), "{v}");
    assert_eq!(v["error"]["code"], 21, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("connection refused"), "{v}");
    assert!(v["error"]["hint"].as_str().unwrap().contains("maas-url"), "{v}");
}

fn assert_no_admin_key(r: &Run, key: &str) {
    let secret = key.rsplit(':').next().unwrap();
    assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret), "the key was printed");
}
