//! `watcher-metal validate` against the MAAS simulator: success, and one
//! test per failure mode with its exit code, message and hint.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::*;
use metal_sim::{Fault, FaultRule, MaasSim, MaasSimConfig, SimUser, TlsNames};

/// A config file for `url` and `key`, plus extra options.
struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
    secrets: Vec<String>,
}

fn setup(url: &str, key: &str, extra: &[(&str, serde_yaml::Value)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    let mut map = BTreeMap::new();
    map.insert("maas-url".to_owned(), serde_yaml::Value::from(url));
    map.insert("maas-api-key".to_owned(), serde_yaml::Value::from(key));
    map.insert("watcher-conf-path".to_owned(), conf_path(dir.path()).display().to_string().into());
    map.insert("drop-in-root".to_owned(), drop_in_root(&conf_path(dir.path())).display().to_string().into());
    for (k, v) in extra {
        map.insert((*k).to_owned(), v.clone());
    }
    write(&config, &serde_yaml::to_string(&map).unwrap());
    let secret = key.rsplit(':').next().unwrap_or("").to_owned();
    Setup { _dir: dir, config, secrets: vec![key.to_owned(), secret] }
}

impl Setup {
    fn run(&self, extra_args: &[&str]) -> Run {
        let mut args = vec!["validate", "--config", path_str(&self.config)];
        args.extend_from_slice(extra_args);
        let r = run(&args);
        for secret in &self.secrets {
            assert!(!r.stdout.contains(secret.as_str()), "key in stdout: {}", r.stdout);
            assert!(!r.stderr.contains(secret.as_str()), "key in stderr: {}", r.stderr);
        }
        r
    }
}

/// Makes requests to `path` (and `op`) get this answer, `times` times.
#[allow(clippy::too_many_arguments)]
fn answer(
    sim: &MaasSim,
    path: &str,
    op: Option<&str>,
    times: Option<usize>,
    status: u16,
    content_type: &str,
    body: &str,
    retry_after: Option<&str>,
) {
    sim.add_fault(FaultRule {
        path_contains: path.into(),
        op: op.map(str::to_owned),
        times,
        fault: Fault::Status {
            status,
            content_type: content_type.into(),
            body: body.into(),
            retry_after: retry_after.map(str::to_owned),
        },
    });
}

fn sim(config: MaasSimConfig) -> MaasSim {
    MaasSim::start(config).expect("start the MAAS simulator")
}

fn default_sim() -> MaasSim {
    sim(MaasSimConfig::default())
}

/// The `error:` line of stderr (warnings may come before it).
fn error_line(r: &Run) -> &str {
    r.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or("")
}

/// The line after the `error:` line.
fn hint_line(r: &Run) -> &str {
    r.stderr.lines().skip_while(|l| !l.starts_with("error: ")).nth(1).unwrap_or("")
}

#[test]
fn valid_credentials_report_version_user_and_machines() {
    let sim = default_sim();
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    let machines = sim.machines();
    let on = machines.iter().filter(|m| m.power_state == metal_sim::PowerState::On).count();
    let off = machines.iter().filter(|m| m.power_state == metal_sim::PowerState::Off).count();
    assert_eq!(
        r.stdout,
        format!(
            "ok: MAAS 3.5.4 answers at {}/api/2.0/\nok: API key accepted for user admin (administrator)\nok: {} machines visible ({on} on, {off} off, {} other)\n",
            sim.base_url(),
            machines.len(),
            machines.len() - on - off
        )
    );
    // The minimum: version, whoami, one listing.
    let stats = sim.stats();
    assert_eq!(stats.requests, 3, "{:?}", stats.by_endpoint);
    assert_eq!(stats.by_endpoint.get("GET version/"), Some(&1));
    assert_eq!(stats.by_endpoint.get("GET users/?op=whoami"), Some(&1));
    assert_eq!(stats.by_endpoint.get("GET machines/"), Some(&1));
}

#[test]
fn json_output_for_machines() {
    let sim = default_sim();
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&["--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["result"], "ok");
    assert_eq!(v["backend"], "maas");
    assert_eq!(v["maas_version"], "3.5.4");
    assert_eq!(v["user"], "admin");
    assert_eq!(v["is_superuser"], true);
    assert_eq!(v["machines"]["total"], 10);
    assert!(v["latency_ms"].is_u64());
}

#[test]
fn quick_skips_the_listing() {
    let sim = default_sim();
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&["--quick"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2);
    assert_eq!(sim.stats().requests, 2);
}

#[test]
fn non_admin_user_is_reported() {
    let user = SimUser::new("operator");
    let key = user.api_key();
    let sim = sim(MaasSimConfig { users: vec![SimUser::admin(), user], ..MaasSimConfig::default() });
    let s = setup(&sim.base_url(), &key, &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("ok: API key accepted for user operator (non-administrator)\n"));
}

#[test]
fn watcher_conf_can_be_the_source() {
    let sim = default_sim();
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(
        &conf,
        &format!("[DEFAULT]\ndebug = true\n[maas_client]\nurl = {}\napi_key = {}\n", sim.base_url(), sim.admin_key()),
    );
    let r = run(&["validate", "--watcher-conf", path_str(&conf), "--quick"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains(&sim.admin_key()));
}

#[test]
fn unconfigured_maas_is_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    write(&config, "ironic-endpoint-type: internalURL\n");
    let r = run(&["validate", "-c", path_str(&config)]);
    assert_eq!(r.code, 11);
    assert_eq!(error_line(&r), "error: MAAS is not configured (maas-url is unset), so Watcher uses Ironic");
}

#[test]
fn connection_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let s = setup(&format!("http://127.0.0.1:{port}/MAAS"), KEY, &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 21, "{}", r.stderr);
    assert_eq!(error_line(&r), format!("error: connection refused by 127.0.0.1:{port}"));
    assert!(hint_line(&r).contains("5240"));
}

#[test]
fn timeout_when_maas_never_answers() {
    let sim = default_sim();
    sim.add_fault(FaultRule { path_contains: "version/".into(), op: None, times: None, fault: Fault::Hang });
    let s = setup(&sim.base_url(), &sim.admin_key(), &[("maas-timeout", 1.into())]);
    let started = Instant::now();
    let r = s.run(&[]);
    assert_eq!(r.code, 22, "{}", r.stderr);
    assert_eq!(error_line(&r), "error: no answer within 1 s");
    assert!(hint_line(&r).contains("maas-timeout"));
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn tls_with_and_without_the_ca() {
    let sim = sim(MaasSimConfig { tls: Some(TlsNames::Default), ..MaasSimConfig::default() });
    let ca = sim.ca_pem().expect("CA in TLS mode");
    let without = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = without.run(&[]);
    assert_eq!(r.code, 23, "{}", r.stderr);
    assert_eq!(error_line(&r), "error: TLS: the server's certificate is not trusted (unknown certificate authority)");
    assert!(hint_line(&r).contains("maas-ca-cert"));

    let with = setup(&sim.base_url(), &sim.admin_key(), &[("maas-ca-cert", ca.into())]);
    let r = with.run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn tls_hostname_mismatch() {
    let sim =
        sim(MaasSimConfig { tls: Some(TlsNames::Only(vec!["maas.example.com".into()])), ..MaasSimConfig::default() });
    let url = format!("https://localhost:{}/MAAS", sim.port());
    let s = setup(&url, &sim.admin_key(), &[("maas-ca-cert", sim.ca_pem().unwrap().into())]);
    let r = s.run(&[]);
    assert_eq!(r.code, 24, "{}", r.stderr);
    assert_eq!(error_line(&r), "error: TLS: the server's certificate is not valid for `localhost`");
}

#[test]
fn https_url_to_a_plain_http_maas() {
    let sim = default_sim();
    let s = setup(&format!("https://127.0.0.1:{}/MAAS", sim.port()), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 25, "{}", r.stderr);
    assert!(error_line(&r).starts_with("error: TLS: "), "{}", r.stderr);
    assert!(hint_line(&r).contains("http"));
}

#[test]
fn http_url_to_a_tls_maas() {
    let sim = sim(MaasSimConfig { tls: Some(TlsNames::Default), ..MaasSimConfig::default() });
    let s = setup(&format!("http://127.0.0.1:{}/MAAS", sim.port()), &sim.admin_key(), &[("maas-timeout", 5.into())]);
    let r = s.run(&[]);
    assert!([38, 22].contains(&r.code), "{} {}", r.code, r.stderr);
    assert!(hint_line(&r).contains("http"), "{}", r.stderr);
}

#[test]
fn redirect_to_https_becomes_a_hint() {
    let sim = sim(MaasSimConfig { redirect_to_https: true, ..MaasSimConfig::default() });
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 26, "{}", r.stderr);
    assert!(error_line(&r).starts_with("error: MAAS redirects (301) to https://127.0.0.1:5443/MAAS/api/2.0/version/"));
    assert_eq!(
        hint_line(&r),
        "  hint: MAAS has TLS enabled: set maas-url to https://127.0.0.1:5443/MAAS (and maas-ca-cert if its CA is private)"
    );
}

#[test]
fn missing_maas_path_is_a_404_with_a_hint() {
    let sim = default_sim();
    let s = setup(&format!("http://127.0.0.1:{}", sim.port()), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 27, "{}", r.stderr);
    assert_eq!(error_line(&r), format!("error: 404 Not Found for http://127.0.0.1:{}/api/2.0/version/", sim.port()));
    assert!(hint_line(&r).contains("/MAAS"));
}

#[test]
fn api_1_0_answers_gone() {
    let sim = default_sim();
    answer(
        &sim,
        "version/",
        None,
        None,
        410,
        "text/plain",
        "The 1.0 API is no longer available. Please use API version 2.0.",
        None,
    );
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 28, "{}", r.stderr);
}

#[test]
fn each_kind_of_bad_key_has_its_code() {
    let sim = default_sim();
    let admin = SimUser::admin();
    let cases = [
        (format!("XXXXXXXXXXXXXXXXXX:{}:{}", admin.token_key, admin.token_secret), 29, "unknown consumer key"),
        (format!("{}:XXXXXXXXXXXXXXXXXX:{}", admin.consumer_key, admin.token_secret), 30, "unknown or revoked token"),
        (
            format!("{}:{}:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", admin.consumer_key, admin.token_key),
            31,
            "wrong token secret",
        ),
    ];
    for (key, code, words) in cases {
        let s = setup(&sim.base_url(), &key, &[]);
        let r = s.run(&[]);
        assert_eq!(r.code, code, "{}", r.stderr);
        assert!(r.stdout.starts_with("ok: MAAS 3.5.4"), "version passed before the key failed");
        assert!(error_line(&r).contains(words), "{}", r.stderr);
        assert!(hint_line(&r).contains("maas apikey"));
        // Nothing of the key, not even the token key MAAS echoes, is shown.
        for part in key.split(':') {
            assert!(!r.stderr.contains(part) && !r.stdout.contains(part));
        }
    }
}

#[test]
fn clock_skew_is_measured() {
    let sim = sim(MaasSimConfig { clock_offset_secs: 600, ..MaasSimConfig::default() });
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 32, "{}", r.stderr);
    let line = error_line(&r);
    assert!(
        ["599", "600", "601"].iter().any(|n| line.contains(&format!("this machine's clock is {n} s behind MAAS's"))),
        "{line}"
    );
    assert!(hint_line(&r).contains("chrony"));
}

#[test]
fn inactive_user_is_forbidden() {
    let mut user = SimUser::new("disabled");
    user.active = false;
    let key = user.api_key();
    let sim = sim(MaasSimConfig { users: vec![SimUser::admin(), user], ..MaasSimConfig::default() });
    let s = setup(&sim.base_url(), &key, &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 34, "{}", r.stderr);
    assert_eq!(error_line(&r), "error: MAAS forbids this (403): User is not allowed access to this API.");
}

#[test]
fn a_web_server_that_is_not_maas() {
    let sim = sim(MaasSimConfig { not_maas: true, ..MaasSimConfig::default() });
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 35, "{}", r.stderr);
    assert_eq!(error_line(&r), "error: not a MAAS API: the answer is an HTML page, not JSON");
}

#[test]
fn json_that_is_not_maas() {
    let sim = default_sim();
    answer(&sim, "version/", None, None, 200, "application/json", r#"{"status": "ok"}"#, None);
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 35, "{}", r.stderr);
    assert!(error_line(&r).starts_with("error: not a MAAS API: the JSON answer has an unexpected shape"));
}

#[test]
fn server_errors_and_retries() {
    let sim = default_sim();
    answer(&sim, "users/", Some("whoami"), None, 500, "text/plain", "database is on fire", None);
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 36, "{}", r.stderr);
    assert_eq!(error_line(&r), "error: MAAS server error (500): database is on fire");
    assert_eq!(sim.stats().by_endpoint.get("GET users/?op=whoami"), Some(&1), "500 is not retried");

    // 503 with Retry-After is retried, re-signed (a reused nonce would be refused).
    sim.clear_faults();
    answer(&sim, "users/", Some("whoami"), Some(2), 503, "text/plain", "busy", Some("1"));
    let r = s.run(&["--quick"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sim.stats().by_endpoint.get("GET users/?op=whoami"), Some(&4));
}

#[test]
fn retries_are_bounded() {
    let sim = default_sim();
    answer(&sim, "version/", None, None, 409, "text/html", "<html>conflict</html>", Some("0"));
    let s = setup(&sim.base_url(), &sim.admin_key(), &[]);
    let r = s.run(&[]);
    assert_eq!(r.code, 37, "{}", r.stderr);
    assert_eq!(sim.stats().by_endpoint.get("GET version/"), Some(&5), "1 attempt + 4 retries");
}
