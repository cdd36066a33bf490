//! Connections: keep-alive and request framing, TLS with the simulator's
//! CA, the HTTPS redirect of a TLS-enabled MAAS, a server that is not MAAS,
//! parallel simulators, stopping, and the `maas-sim` binary.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use metal_sim::*;
use support::*;

const VERSION: &str = "/MAAS/api/2.0/version/";

#[test]
fn keep_alive_framing_and_close() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let mut c = Conn::plain(sim.port());
    for _ in 0..3 {
        let r = c.request("GET", VERSION, &[("Accept", "application/json,*/*;q=0.9")], b"");
        assert_eq!((r.status, r.header("connection")), (200, None));
    }
    // A chunked request body carrying the op and the power_off form.
    let id = sim.machines()[0].system_id.clone();
    let a = admin_auth(&sim);
    let head = format!(
        "POST /MAAS/api/2.0/machines/{id}/ HTTP/1.1\r\nhost: 127.0.0.1\r\nAUTHORIZATION: {a}\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    c.send_raw(head.as_bytes());
    c.send_raw(b"5\r\nop=po\r\n13\r\nwer_off&stop_mode=h\r\n3\r\nard\r\n0\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(sim.machine(&id).unwrap().power_state, PowerState::Off);

    // Two pipelined requests, the second asking to close.
    c.send_raw(b"GET /MAAS/api/version/ HTTP/1.1\r\nHost: x\r\n\r\nGET /MAAS/api/version/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(c.read_response().unwrap().text(), "2.0");
    let r = c.read_response().unwrap();
    assert_eq!((r.text().as_str(), r.header("connection")), ("2.0", Some("close")));
    assert!(c.at_eof());

    // HTTP/1.0 closes unless asked otherwise.
    let mut c = Conn::plain(sim.port());
    c.send_raw(b"GET /MAAS/api/version/ HTTP/1.0\r\n\r\n");
    assert_eq!(c.read_response().unwrap().status, 200);
    assert!(c.at_eof());

    // Expect: 100-continue gets an interim answer before the body is sent.
    let mut c = Conn::plain(sim.port());
    let a = admin_auth(&sim);
    c.send_raw(format!("POST /MAAS/api/2.0/machines/{id}/?op=power_on HTTP/1.1\r\nHost: x\r\nAuthorization: {a}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n").as_bytes());
    let mut interim = [0u8; 25];
    c.stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send_raw(b"comment=x");
    assert_eq!(c.read_response().unwrap().status, 200);
}

#[test]
fn malformed_requests_get_400_and_the_server_survives() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    for raw in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"[..],
        b"GET /MAAS/api/2.0/version/ HTTP/1.1\r\nContent-Length: banana\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let mut c = Conn::plain(sim.port());
        c.send_raw(raw);
        let r = c.read_response().unwrap();
        assert_eq!(r.status, 400, "{raw:?}");
        assert!(c.at_eof());
    }
    // A head too large.
    let mut c = Conn::plain(sim.port());
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(100_000));
    c.send_raw(big.as_bytes());
    assert_eq!(c.read_response().unwrap().status, 413);
    // A client that disappears mid-request.
    let mut c = Conn::plain(sim.port());
    c.send_raw(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc");
    drop(c);
    assert_eq!(get(&sim, VERSION, None).status, 200);
}

#[test]
fn tls_with_the_simulators_ca() {
    let sim = MaasSim::start(MaasSimConfig { tls: Some(TlsNames::Default), ..Default::default() }).unwrap();
    assert_eq!(sim.base_url(), format!("https://localhost:{}/MAAS", sim.port()));
    let ca = sim.ca_pem().unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    for name in ["localhost", "127.0.0.1"] {
        let mut c = Conn::tls(sim.port(), Some(&ca), name).unwrap();
        let r = c.request("GET", VERSION, &[], b"");
        assert_eq!(r.status, 200);
        let mut c = Conn::tls(sim.port(), Some(&ca), name).unwrap();
        c.send_raw(format!("GET /MAAS/api/2.0/describe/ HTTP/1.1\r\nHost: {name}:{}\r\n\r\n", sim.port()).as_bytes());
        let d = c.read_response().unwrap().json();
        let uri = d["handlers"][0]["uri"].as_str().unwrap().to_string();
        assert!(uri.starts_with(&format!("https://{name}:{}/MAAS/api/2.0/", sim.port())), "{uri}");
    }
    let r = Conn::tls(sim.port(), Some(&ca), "localhost").unwrap().request(
        "GET",
        "/MAAS/api/2.0/users/?op=whoami",
        &[("Authorization", &admin_auth(&sim))],
        b"",
    );
    assert_eq!(r.status, 200);

    // Without the CA, the certificate is not trusted.
    let err = Conn::tls(sim.port(), None, "localhost").err().expect("untrusted certificate accepted");
    assert!(err.to_string().to_lowercase().contains("unknownissuer"), "{err}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut c = Conn::plain(sim.port());
    c.send("GET", VERSION, &[], b"");
    assert!(c.read_response().is_err() || c.at_eof());
}

#[test]
fn tls_hostname_mismatch() {
    let sim = MaasSim::start(MaasSimConfig {
        tls: Some(TlsNames::Only(vec!["maas.example.com".into()])),
        ..Default::default()
    })
    .unwrap();
    let ca = sim.ca_pem().unwrap();
    let err = Conn::tls(sim.port(), Some(&ca), "localhost").err().expect("name mismatch accepted");
    assert!(err.to_string().to_lowercase().contains("not valid for name"), "{err}");
    let mut c = Conn::tls(sim.port(), Some(&ca), "maas.example.com").unwrap();
    assert_eq!(c.request("GET", VERSION, &[], b"").status, 200);
}

#[test]
fn redirect_to_https_like_a_tls_enabled_maas() {
    let sim = MaasSim::start(MaasSimConfig { redirect_to_https: true, ..Default::default() }).unwrap();
    let mut c = Conn::plain(sim.port());
    c.send_raw(
        format!("GET /MAAS/api/2.0/users/?op=whoami HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", sim.port()).as_bytes(),
    );
    let r = c.read_response().unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://127.0.0.1:5443/MAAS/api/2.0/users/?op=whoami"));
    assert_eq!(get(&sim, VERSION, None).status, 301);
    // machines/ is still served over HTTP.
    assert_eq!(get(&sim, "/MAAS/api/2.0/machines/", Some(&admin_auth(&sim))).status, 200);
    assert_eq!(get(&sim, "/MAAS/api/2.0/machines/", None).status, 400);
}

#[test]
fn a_server_that_is_not_maas() {
    let sim = MaasSim::start(MaasSimConfig { not_maas: true, ..Default::default() }).unwrap();
    for path in [VERSION, "/MAAS/api/2.0/machines/", "/", "/MAAS/api/2.0/describe/"] {
        let r = get(&sim, path, Some(&admin_auth(&sim)));
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.text().starts_with("<html>"));
    }
}

#[test]
fn many_simulators_in_parallel_and_stop_frees_the_port() {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let sim = MaasSim::start(MaasSimConfig { machines: SimMachine::generate(i + 1), ..Default::default() })
                    .unwrap();
                let mut c = Conn::plain(sim.port());
                let a = admin_auth(&sim);
                let n = c.request("GET", "/MAAS/api/2.0/machines/", &[("Authorization", &a)], b"").json();
                assert_eq!(n.as_array().unwrap().len(), i + 1);
                let port = sim.port();
                // An idle keep-alive connection stays open while stopping.
                drop(sim);
                assert!(c.at_eof());
                port
            })
        })
        .collect();
    for h in handles {
        let port = h.join().unwrap();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still open");
    }
}

#[test]
fn the_binary_prints_its_url_and_key_and_stops_when_stdin_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_maas-sim"))
        .args(["--machines", "12", "--tls"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = info["url"].as_str().unwrap();
    let port: u16 = url.trim_start_matches("https://localhost:").trim_end_matches("/MAAS").parse().unwrap();
    let key = info["api_key"].as_str().unwrap();
    assert_eq!(key, SimUser::admin().api_key());
    let ca_file = info["ca_pem_file"].as_str().unwrap().to_string();
    let ca = std::fs::read_to_string(&ca_file).unwrap();
    let mut c = Conn::tls(port, Some(&ca), "localhost").unwrap();
    let a = auth(&SimUser::admin());
    let list = c.request("GET", "/MAAS/api/2.0/machines/", &[("Authorization", &a)], b"").json();
    assert_eq!(list.as_array().unwrap().len(), 12);

    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"ignored\n").unwrap();
    drop(stdin);
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        assert!(waited < Duration::from_secs(30), "maas-sim did not exit");
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
    assert!(child.wait().unwrap().success());
    assert!(!std::path::Path::new(&ca_file).exists());
}

#[test]
fn random_and_mangled_input_never_stops_the_server() {
    use std::net::{Shutdown, TcpStream};
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let id = sim.machines()[0].system_id.clone();
    let valid = format!(
        "POST /MAAS/api/2.0/machines/{id}/?op=power_off HTTP/1.1\r\nHost: h\r\nAuthorization: {}\r\nContent-Type: multipart/form-data; boundary=\"b\"\r\nContent-Length: 60\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"stop_mode\"\r\n\r\nsoft\r\n--b--",
        admin_auth(&sim)
    )
    .into_bytes();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let mut input = valid.clone();
        if round % 3 == 0 {
            input = (0..(next() % 300)).map(|_| next() as u8).collect();
        } else {
            for _ in 0..(1 + next() % 8) {
                let i = (next() as usize) % input.len();
                match next() % 3 {
                    0 => input[i] = next() as u8,
                    1 => {
                        input.remove(i);
                    }
                    _ => {
                        let specials = b"%\"=,;:\r\n\x00\xff";
                        input.insert(i, specials[(next() as usize) % specials.len()]);
                    }
                }
            }
        }
        let mut s = TcpStream::connect(("127.0.0.1", sim.port())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.write_all(&input);
        let _ = s.shutdown(Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
        if !sink.is_empty() {
            assert!(sink.starts_with(b"HTTP/1.1 "), "round {round}: {:?}", String::from_utf8_lossy(&sink));
        }
    }
    assert_eq!(get(&sim, VERSION, None).status, 200);
}
