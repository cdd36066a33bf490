//! What we render loads in Watcher's own option definitions (python-watcher
//! with oslo.config) and reads back equal to the charm config.
//!
//! Needs WATCHER_METAL_PYTHON: a Python with python-watcher (installed with
//! --no-deps) and oslo.config, as `scripts/test` sets up. Under CI the
//! variable is required, so the check cannot silently not run.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

fn python() -> Option<String> {
    match std::env::var("WATCHER_METAL_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var_os("CI").is_some() => panic!("WATCHER_METAL_PYTHON must be set under CI"),
        _ => {
            eprintln!("WATCHER_METAL_PYTHON is not set: oslo.config round trip not run (scripts/test sets it)");
            None
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    DropIn,
    Merge,
    Full,
}

/// Renders `charm_yaml` (into the drop-in beside `existing`, merged into it,
/// or --full) and checks what oslo.config reads from the result, drop-ins
/// first, against `expected`.
fn round_trip(charm_yaml: &str, existing: Option<&str>, mode: Mode, expected: Value) {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("watcher.conf");
    if let Some(text) = existing {
        write(&conf, text);
    }
    let config = dir.path().join("charm.yaml");
    write(&config, &format!("{charm_yaml}watcher-conf-path: {}\n", conf.display()));
    let mut args = vec!["render", "-c", path_str(&config)];
    match mode {
        Mode::DropIn => {}
        Mode::Merge => args.push("--merge"),
        Mode::Full => args.extend(["--full", "--context", "examples/context.yaml"]),
    }
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let mut child = Command::new(python)
        .arg("tests/peers/oslo_roundtrip.py")
        .arg(&conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the oslo.config check");
    child.stdin.take().unwrap().write_all(expected.to_string().as_bytes()).unwrap();
    let out = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!((out.code, out.stdout.trim()), (0, "ok"), "{}", out.stderr);
}

#[test]
fn maas_and_ironic_values_read_back_equal() {
    round_trip(
        &format!(
            "maas-url: http://10.0.0.2:5240/MAAS\nmaas-api-key: {KEY}\nmaas-timeout: 90\nironic-api-version: '1.78'\nironic-endpoint-type: internalURL\nironic-region-name: RegionOne\n"
        ),
        Some("[DEFAULT]\ndebug = true\n\n[maas_client]\nurl = http://old/MAAS\ntimeout = 5\n"),
        Mode::Merge,
        json!({
            "maas_client": {"url": "http://10.0.0.2:5240/MAAS", "api_key": KEY, "timeout": 90},
            "ironic_client": {"api_version": "1.78", "endpoint_type": "internalURL", "region_name": "RegionOne"},
        }),
    );
}

#[test]
fn the_drop_in_is_read_beside_the_principals_watcher_conf() {
    round_trip(
        &format!(
            "maas-url: http://10.0.0.2:5240/MAAS\nmaas-api-key: {KEY}\nironic-api-version: '1.78'\nironic-region-name: RegionOne\n"
        ),
        Some("[DEFAULT]\ndebug = true\n\n[maas_client]\n\n[database]\nconnection = sqlite://\n"),
        Mode::DropIn,
        json!({
            "maas_client": {"url": "http://10.0.0.2:5240/MAAS", "api_key": KEY, "timeout": 120},
            "ironic_client": {"api_version": "1.78", "endpoint_type": "publicURL", "region_name": "RegionOne"},
        }),
    );
}

#[test]
fn dollar_signs_and_quotes_are_read_literally() {
    // oslo.config substitutes $name and strips matching outer quotes.
    round_trip(
        &format!("maas-url: http://10.0.0.2:5240/MAAS$x\nmaas-api-key: {KEY}\nironic-region-name: '\"Region$One\"'\n"),
        Some("[DEFAULT]\n"),
        Mode::DropIn,
        json!({
            "maas_client": {"url": "http://10.0.0.2:5240/MAAS$x", "api_key": KEY, "timeout": 120},
            "ironic_client": {"region_name": "\"Region$One\""},
        }),
    );
}

#[test]
fn without_maas_watcher_sees_no_url_and_uses_ironic() {
    round_trip(
        "maas-url: ''\n",
        Some("[maas_client]\nurl = http://old/MAAS\napi_key = a:b:c\n"),
        Mode::Merge,
        json!({
            "maas_client": {"url": null, "api_key": null, "timeout": 60},
            "ironic_client": {"api_version": "1", "endpoint_type": "publicURL", "region_name": null},
        }),
    );
}

#[test]
fn full_render_loads_too() {
    round_trip(
        &format!("maas-url: https://maas.example.com:5443/MAAS\nmaas-api-key: {KEY}\n"),
        None,
        Mode::Full,
        json!({
            "maas_client": {"url": "https://maas.example.com:5443/MAAS", "api_key": KEY, "timeout": 120},
            "ironic_client": {"endpoint_type": "publicURL"},
        }),
    );
}
