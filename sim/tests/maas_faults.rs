//! Injected faults, each seen from a raw client connection.

mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use metal_sim::*;
use support::*;

const VERSION: &str = "/MAAS/api/2.0/version/";
const MACHINES: &str = "/MAAS/api/2.0/machines/";

fn sim_with(fault: Fault, times: Option<usize>) -> MaasSim {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    sim.add_fault(FaultRule { path_contains: "version/".into(), op: None, times, fault });
    sim
}

#[test]
fn status_faults_count_down_and_respect_op() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    sim.add_fault(FaultRule {
        path_contains: "machines/".into(),
        op: None,
        times: Some(2),
        fault: Fault::Status {
            status: 409,
            content_type: "text/html; charset=utf-8".into(),
            body: "<h1>Conflict</h1>".into(),
            retry_after: Some("5".into()),
        },
    });
    for _ in 0..2 {
        let r = get(&sim, MACHINES, Some(&admin_auth(&sim)));
        assert_eq!((r.status, r.header("retry-after"), r.text().as_str()), (409, Some("5"), "<h1>Conflict</h1>"));
    }
    assert_eq!(get(&sim, MACHINES, Some(&admin_auth(&sim))).status, 200);

    let id = sim.machines()[0].system_id.clone();
    sim.add_fault(FaultRule {
        path_contains: "machines/".into(),
        op: Some("query_power_state".into()),
        times: None,
        fault: Fault::Status {
            status: 503,
            content_type: "text/plain; charset=utf-8".into(),
            body: "busy".into(),
            retry_after: Some("10".into()),
        },
    });
    let query = format!("{MACHINES}{id}/?op=query_power_state");
    for _ in 0..3 {
        assert_eq!(get(&sim, &query, Some(&admin_auth(&sim))).status, 503);
    }
    assert_eq!(get(&sim, &format!("{MACHINES}{id}/"), Some(&admin_auth(&sim))).status, 200);
    sim.clear_faults();
    assert_eq!(get(&sim, &query, Some(&admin_auth(&sim))).status, 200);
    // Faulty answers are counted too.
    assert_eq!(sim.stats().by_endpoint["GET machines/{id}/?op=query_power_state"], 4);
}

#[test]
fn delay_answers_normally_later() {
    let sim = sim_with(Fault::Delay(Duration::from_millis(400)), Some(1));
    let started = Instant::now();
    assert_eq!(get(&sim, VERSION, None).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn hang_never_answers_and_does_not_block_stop() {
    use std::io::Write;
    let sim = sim_with(Fault::Hang, None);
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", sim.port())).unwrap();
    raw.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    raw.write_all(b"GET /MAAS/api/2.0/version/ HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 16];
    // Only this client's read timeout ends the wait.
    let err = raw.read(&mut buf).unwrap_err();
    assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err}");
    let started = Instant::now();
    sim.stop();
    assert!(started.elapsed() < Duration::from_secs(10), "stop waited for the hung connection");
    // Stopping closed the connection.
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(raw.read(&mut buf), Ok(0) | Err(_)));
}

#[test]
fn trickle_sends_a_valid_response_slowly() {
    let sim = sim_with(Fault::Trickle { bytes_per_sec: 1000 }, None);
    let started = Instant::now();
    let r = get(&sim, VERSION, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["subversion"], "");
    // Well over 200 bytes at 1000 bytes/s.
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn endless_body_never_ends() {
    let sim = sim_with(Fault::EndlessBody, None);
    let mut c = Conn::plain(sim.port());
    c.send("GET", VERSION, &[], b"");
    let (status, headers) = c.read_head().unwrap();
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked"));
    let mut total = 0;
    while total < 4 * 1024 * 1024 {
        let chunk = c.read_chunk().unwrap().expect("the body must not end");
        total += chunk.len();
    }
    drop(c);
    sim.stop();
}

#[test]
fn close_mid_response_cuts_the_body() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    sim.add_fault(FaultRule {
        path_contains: "machines/".into(),
        op: None,
        times: Some(1),
        fault: Fault::CloseMidResponse,
    });
    let mut c = Conn::plain(sim.port());
    let a = admin_auth(&sim);
    c.send("GET", MACHINES, &[("Authorization", &a)], b"");
    let (status, headers) = c.read_head().unwrap();
    assert_eq!(status, 200);
    let length: usize =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).unwrap().1.parse().unwrap();
    assert!(length > 1000);
    let err = c.read_exact_body(length).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    // The next request is served normally.
    assert_eq!(get(&sim, MACHINES, Some(&admin_auth(&sim))).status, 200);
}

#[test]
fn huge_content_length_then_close() {
    let sim = sim_with(Fault::HugeContentLength, None);
    let mut c = Conn::plain(sim.port());
    c.send("GET", VERSION, &[], b"");
    let (status, headers) = c.read_head().unwrap();
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-length") && v == "2147483648"));
    let err = c.read_exact_body(1024).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn garbage_is_not_http() {
    let sim = sim_with(Fault::Garbage, None);
    let mut c = Conn::plain(sim.port());
    c.send("GET", VERSION, &[], b"");
    let mut all = Vec::new();
    c.stream.read_to_end(&mut all).unwrap();
    assert!(!all.is_empty());
    assert!(!all.starts_with(b"HTTP/"));
}

#[test]
fn faults_match_in_order_and_other_paths_are_untouched() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let status = |code: u16| Fault::Status {
        status: code,
        content_type: "text/plain".into(),
        body: String::new(),
        retry_after: None,
    };
    sim.add_fault(FaultRule {
        path_contains: "users/".into(),
        op: Some("whoami".into()),
        times: Some(1),
        fault: status(500),
    });
    sim.add_fault(FaultRule { path_contains: "users/".into(), op: None, times: Some(1), fault: status(502) });
    let whoami = "/MAAS/api/2.0/users/?op=whoami";
    assert_eq!(get(&sim, whoami, Some(&admin_auth(&sim))).status, 500);
    assert_eq!(get(&sim, whoami, Some(&admin_auth(&sim))).status, 502);
    assert_eq!(get(&sim, whoami, Some(&admin_auth(&sim))).status, 200);
    assert_eq!(get(&sim, VERSION, None).status, 200);
}
