//! The simulated Ironic over real HTTP: microversions, node listing and
//! pagination, one node, states, power changes (202, settling, 400, 409),
//! Ironic's error bodies, endpoints per interface, and statistics.

mod support;

use std::time::{Duration, Instant};

use metal_sim::ironic::{IronicSim, IronicSimConfig, SimNode};
use serde_json::{json, Value};
use support::{Conn, Resp};

const V: &str = "X-OpenStack-Ironic-API-Version";

struct Client<'a> {
    sim: &'a IronicSim,
    token: String,
}

impl Client<'_> {
    fn new(sim: &IronicSim) -> Client<'_> {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "watcher", "domain": {"name": "Default"}, "password": "watcher-pass"}}},
            "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}}});
        let r = Conn::plain(sim.port()).request(
            "POST",
            "/identity/v3/auth/tokens",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        Client { sim, token: r.header("X-Subject-Token").unwrap().to_string() }
    }

    /// A request under `/baremetal` with the token and `version` (if any).
    fn call(&self, method: &str, path: &str, version: Option<&str>, body: &[u8]) -> Resp {
        let mut headers = vec![("X-Auth-Token", self.token.as_str()), ("Accept", "application/json")];
        if let Some(v) = version {
            headers.push((V, v));
        }
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        Conn::plain(self.sim.port()).request(method, &format!("/baremetal{path}"), &headers, body)
    }

    fn get(&self, path: &str) -> Resp {
        self.call("GET", path, Some("1.46"), b"")
    }

    fn power(&self, node: &str, target: &str) -> Resp {
        let body = json!({ "target": target }).to_string();
        self.call("PUT", &format!("/v1/nodes/{node}/states/power"), Some("1.46"), body.as_bytes())
    }
}

/// The faultstring inside Ironic's double-encoded error body.
fn faultstring(r: &Resp) -> String {
    let outer = r.json();
    let inner: Value = serde_json::from_str(outer["error_message"].as_str().expect("error_message is a string"))
        .expect("error_message holds JSON");
    assert_eq!(inner["debuginfo"], Value::Null);
    inner["faultstring"].as_str().unwrap().to_string()
}

fn sim_with(config: IronicSimConfig) -> IronicSim {
    IronicSim::start(config).unwrap()
}

#[test]
fn microversions() {
    let sim = sim_with(IronicSimConfig::default());
    let c = Client::new(&sim);
    let version_headers = |r: &Resp| {
        (
            r.header("X-OpenStack-Ironic-API-Minimum-Version").map(str::to_string),
            r.header("X-OpenStack-Ironic-API-Maximum-Version").map(str::to_string),
            r.header(V).map(str::to_string),
        )
    };
    let range =
        |current: Option<&str>| (Some("1.1".to_string()), Some("1.99".to_string()), current.map(str::to_string));
    let r = c.call("GET", "/v1/nodes", None, b"");
    assert_eq!((r.status, version_headers(&r)), (200, range(Some("1.1"))));
    let r = c.call("GET", "/v1/nodes", Some("latest"), b"");
    assert_eq!(version_headers(&r), range(Some("1.99")));
    let r = c.call("GET", "/v1/nodes", Some("1.46"), b"");
    assert_eq!(version_headers(&r), range(Some("1.46")));
    assert_eq!(sim.stats().last_microversion.as_deref(), Some("1.46"));
    assert_eq!(sim.stats().requests_without_microversion, 1);

    for (asked, text) in [("1.200", "Version 1.200 was requested but the minor version is not supported by this service. The supported version range is: [1.1, 1.99]."),
        ("1.0", "Version 1.0 was requested but the minor version is not supported by this service. The supported version range is: [1.1, 1.99]."),
        ("2.1", "Mutually exclusive versions requested. Version 2.1 requested but not supported by this service. The supported version range is: [1.1, 1.99].")]
    {
        let r = c.call("GET", "/v1/nodes", Some(asked), b"");
        assert_eq!(r.status, 406, "{asked}");
        assert_eq!(version_headers(&r), range(None), "{asked}");
        assert_eq!(faultstring(&r), text);
    }
    let r = c.call("GET", "/v1/nodes/x/states", Some("1.x"), b"");
    assert_eq!(r.status, 400);
    assert!(faultstring(&r).contains("Invalid value for X-OpenStack-Ironic-API-Version"));

    // The standard header works too.
    let r = Conn::plain(sim.port()).request(
        "GET",
        "/baremetal/v1/nodes",
        &[("X-Auth-Token", c.token.as_str()), ("OpenStack-API-Version", "baremetal 1.50")],
        b"",
    );
    assert_eq!(r.header(V), Some("1.50"));

    // A 401 still tells the range.
    let r = Conn::plain(sim.port()).request("GET", "/baremetal/v1/nodes", &[(V, "1.46")], b"");
    assert_eq!((r.status, version_headers(&r).0), (401, Some("1.1".to_string())));

    // The version documents need no token.
    let r = Conn::plain(sim.port()).request("GET", "/baremetal/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["default_version"]["min_version"], "1.1");
    assert_eq!(r.json()["default_version"]["version"], "1.99");
    let r = Conn::plain(sim.port()).request("GET", "/baremetal/v1", &[], b"");
    assert_eq!(r.json()["version"]["version"], "1.99");
    assert_eq!(sim.stats().rejected_versions, 3);

    // A narrower range.
    let sim =
        sim_with(IronicSimConfig { min_version: "1.31".into(), max_version: "1.46".into(), ..Default::default() });
    let c = Client::new(&sim);
    assert_eq!(c.call("GET", "/v1/nodes", Some("1.47"), b"").status, 406);
    assert_eq!(c.call("GET", "/v1/nodes", None, b"").header(V), Some("1.31"));
    assert!(IronicSim::start(IronicSimConfig { min_version: "one".into(), ..Default::default() }).is_err());
    assert!(IronicSim::start(IronicSimConfig {
        min_version: "1.50".into(),
        max_version: "1.2".into(),
        ..Default::default()
    })
    .is_err());
}

#[test]
fn listing_plain_and_detailed() {
    let sim = sim_with(IronicSimConfig::default());
    let c = Client::new(&sim);
    let r = c.get("/v1/nodes");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert!(body.get("next").is_none(), "a page of 1000 holds 10 nodes");
    let nodes = body["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 10);
    let mut keys: Vec<&str> = nodes[0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["instance_uuid", "links", "maintenance", "name", "power_state", "provision_state", "uuid"]);
    let expected = sim.nodes();
    assert_eq!(nodes[0]["uuid"], expected[0].uuid);
    assert_eq!(nodes[0]["name"], "bm-0001");
    assert_eq!(nodes[0]["power_state"], "power on");
    assert_eq!(nodes[4]["provision_state"], "available");

    for path in ["/v1/nodes?detail=True", "/v1/nodes/detail"] {
        let body = c.get(path).json();
        let nodes = body["nodes"].as_array().unwrap();
        assert_eq!(nodes[0]["extra"], json!({"compute_node_id": "hv-0001"}), "{path}");
        assert_eq!(nodes[4]["extra"], json!({}));
        assert_eq!(nodes[0]["target_power_state"], Value::Null);
        assert_eq!(nodes[0]["conductor_group"], "");
    }
    // detail= needs 1.43.
    assert_eq!(c.call("GET", "/v1/nodes?detail=True", Some("1.42"), b"").status, 406);
    // Filters and fields.
    let available = c.get("/v1/nodes?provision_state=available").json();
    assert_eq!(available["nodes"].as_array().unwrap().len(), 2);
    let r = c.get("/v1/nodes?fields=uuid,extra");
    let first = &r.json()["nodes"][0];
    assert_eq!(first["extra"]["compute_node_id"], "hv-0001");
    assert!(first.get("name").is_none());
    assert!(faultstring(&c.get("/v1/nodes?fields=bogus")).contains("bogus"));
    assert_eq!(c.get("/v1/nodes?fields=uuid&detail=True").status, 400);
    assert_eq!(c.get("/v1/nodes?maintenance=maybe").status, 400);
    assert_eq!(c.get("/v1/nodes?maintenance=true").json()["nodes"], json!([]));
    assert_eq!(c.get("/v1/nodes?associated=false").json()["nodes"].as_array().unwrap().len(), 2);
}

#[test]
fn pagination_follows_next() {
    let sim = sim_with(IronicSimConfig { page_size: 3, ..Default::default() });
    let c = Client::new(&sim);
    let mut path = "/v1/nodes?detail=True".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = c.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let body = r.json();
        let nodes = body["nodes"].as_array().unwrap();
        pages += 1;
        seen.extend(nodes.iter().map(|n| n["uuid"].as_str().unwrap().to_string()));
        let Some(next) = body["next"].as_str() else {
            assert_eq!(nodes.len(), 1, "only the last page is short");
            break;
        };
        assert_eq!(nodes.len(), 3);
        let marker = nodes[2]["uuid"].as_str().unwrap();
        assert_eq!(next, format!("{}/v1/nodes?detail=True&limit=3&marker={marker}", sim.ironic_url()));
        assert!(nodes[0]["extra"].is_object(), "next keeps detail=True");
        path = next.strip_prefix(&sim.ironic_url()).unwrap().to_string();
    }
    assert_eq!(pages, 4);
    let all: Vec<String> = sim.nodes().into_iter().map(|n| n.uuid).collect();
    assert_eq!(seen, all);
    assert_eq!(sim.stats().by_endpoint["GET /v1/nodes"], 4);

    // An explicit smaller limit; a larger one is capped at max_limit.
    let body = c.get("/v1/nodes?limit=2").json();
    assert_eq!(body["nodes"].as_array().unwrap().len(), 2);
    assert!(body["next"].as_str().unwrap().ends_with(&format!("limit=2&marker={}", all[1])));
    assert_eq!(c.get("/v1/nodes?limit=50").json()["nodes"].as_array().unwrap().len(), 3);
    // A page that ends exactly at the last node still has next; the page after is empty.
    let body = c.get(&format!("/v1/nodes?limit=3&marker={}", all[6])).json();
    assert_eq!(body["nodes"].as_array().unwrap().len(), 3);
    let next = body["next"].as_str().unwrap().strip_prefix(&sim.ironic_url()).unwrap().to_string();
    let last = c.get(&next).json();
    assert_eq!(last["nodes"], json!([]));
    assert!(last.get("next").is_none());

    for (path, status) in [("/v1/nodes?limit=0", 400), ("/v1/nodes?limit=-2", 400), ("/v1/nodes?limit=x", 400)] {
        assert_eq!(c.get(path).status, status, "{path}");
    }
    assert_eq!(faultstring(&c.get("/v1/nodes?limit=0")), "Limit must be positive");
    let unknown = "00000000-0000-4000-8000-000000000000";
    let r = c.get(&format!("/v1/nodes?marker={unknown}"));
    assert_eq!((r.status, faultstring(&r)), (404, format!("Node {unknown} could not be found.")));
}

#[test]
fn one_node_by_uuid_or_name() {
    let sim = sim_with(IronicSimConfig::default());
    let c = Client::new(&sim);
    let n = &sim.nodes()[1];
    let by_uuid = c.get(&format!("/v1/nodes/{}", n.uuid)).json();
    assert_eq!(by_uuid["name"], "bm-0002");
    assert_eq!(by_uuid["extra"]["compute_node_id"], "hv-0002");
    assert_eq!(by_uuid["links"][0]["href"], format!("{}/v1/nodes/{}", sim.ironic_url(), n.uuid));
    let by_name = c.get("/v1/nodes/bm-0002").json();
    assert_eq!(by_name, by_uuid);
    assert_eq!(c.get(&format!("/v1/nodes/{}", n.uuid.to_uppercase())).status, 200);

    let r = c.get("/v1/nodes/no-such-node");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.text(),
        r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Node no-such-node could not be found.\", \"debuginfo\": null}"}"#
    );
    // Names need 1.5; before that a name is just not found.
    assert_eq!(c.call("GET", "/v1/nodes/bm-0002", Some("1.4"), b"").status, 404);
    let r = c.get("/v1/nodes/bad%20name");
    assert_eq!((r.status, faultstring(&r)), (400, "Expected a logical name or UUID but received bad name.".into()));

    let states = c.get("/v1/nodes/bm-0002/states").json();
    assert_eq!(states["power_state"], "power on");
    assert_eq!(states["provision_state"], "active");
    assert_eq!(states["target_power_state"], Value::Null);
    assert!(states.get("boot_mode").is_none());
    assert_eq!(c.call("GET", "/v1/nodes/bm-0002/states", Some("1.78"), b"").json()["boot_mode"], "uefi");
    assert_eq!(c.get("/v1/nodes/ghost/states").status, 404);

    // Wrong methods and unknown resources.
    assert_eq!(c.call("DELETE", "/v1/nodes/bm-0002", Some("1.46"), b"").status, 405);
    assert_eq!(c.call("GET", "/v1/nodes/bm-0002/states/power", Some("1.46"), b"").status, 405);
    assert_eq!(c.get("/v1/ports").status, 404);

    let stats = sim.stats();
    assert_eq!(stats.by_endpoint["GET /v1/nodes/{id}"], 6);
    assert_eq!(stats.by_endpoint["GET /v1/nodes/{id}/states"], 3);
}

#[test]
fn power_changes_settle_after_the_delay() {
    let sim = sim_with(IronicSimConfig { power_delay: Duration::from_secs(3600), ..Default::default() });
    let c = Client::new(&sim);
    let n = sim.nodes()[0].clone();
    let r = c.power(&n.uuid, "power off");
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.body.is_empty());
    assert_eq!(r.header("Location"), Some(format!("{}/v1/nodes/{}/states", sim.ironic_url(), n.uuid).as_str()));
    // Meanwhile: the target is shown, the state is unchanged, and the node
    // is locked by the conductor doing the change.
    let states = c.get(&format!("/v1/nodes/{}/states", n.uuid)).json();
    assert_eq!(
        (states["power_state"].as_str(), states["target_power_state"].as_str()),
        (Some("power on"), Some("power off"))
    );
    assert_eq!(c.get(&format!("/v1/nodes/{}", n.uuid)).json()["reservation"], "ironic-conductor-1");
    let r = c.power(&n.uuid, "power on");
    assert_eq!(r.status, 409);
    assert_eq!(sim.node(&n.uuid).unwrap().power_state.as_deref(), Some("power on"));

    let sim = sim_with(IronicSimConfig { power_delay: Duration::from_millis(200), ..Default::default() });
    let c = Client::new(&sim);
    let n = sim.nodes()[0].clone();
    assert_eq!(c.power("bm-0001", "power off").status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states = c.get("/v1/nodes/bm-0001/states").json();
        if states["power_state"] == "power off" {
            assert_eq!(states["target_power_state"], Value::Null);
            break;
        }
        assert_eq!(states["target_power_state"], "power off");
        assert!(Instant::now() < deadline, "the power change never settled");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sim.node(&n.uuid).unwrap().power_state.as_deref(), Some("power off"));
}

#[test]
fn power_requests_without_delay_and_their_refusals() {
    let mut nodes = SimNode::generate(3);
    nodes[2].provision_state = "cleaning".into();
    nodes[1].power_state = None;
    let sim = sim_with(IronicSimConfig { nodes, ..Default::default() });
    let c = Client::new(&sim);
    let n = sim.nodes();

    assert_eq!(c.power(&n[0].uuid, "power off").status, 202);
    assert_eq!(sim.node(&n[0].uuid).unwrap().power_state.as_deref(), Some("power off"));
    assert_eq!(c.get(&format!("/v1/nodes/{}/states", n[0].uuid)).json()["power_state"], "power off");
    // Asking for the current state is no error.
    assert_eq!(c.power(&n[0].uuid, "power off").status, 202);
    // A node whose state Ironic does not know can be powered on.
    assert_eq!(c.power("bm-0002", "power on").status, 202);
    assert_eq!(sim.node("bm-0002").unwrap().power_state.as_deref(), Some("power on"));
    assert_eq!(c.power("bm-0001", "rebooting").status, 202);
    assert_eq!(sim.node("bm-0001").unwrap().power_state.as_deref(), Some("power on"));

    let r = c.power(&n[0].uuid, "off");
    assert_eq!(r.status, 400);
    assert_eq!(
        faultstring(&r),
        format!(
            "The requested action \"off\" can not be performed on node \"{}\" while it is in state \"power on\".",
            n[0].uuid
        )
    );
    let r = c.call("PUT", &format!("/v1/nodes/{}/states/power", n[0].uuid), Some("1.46"), b"{}");
    assert_eq!((r.status, faultstring(&r)), (400, "Missing argument: \"target\"".to_string()));
    let r = c.call("PUT", &format!("/v1/nodes/{}/states/power", n[0].uuid), Some("1.46"), b"not json");
    assert_eq!(r.status, 400);
    assert_eq!(c.power("bm-0003", "power off").status, 400, "cleaning nodes refuse power changes");
    assert_eq!(c.power("ghost", "power off").status, 404);
    // Soft power off needs 1.27.
    let soft = json!({"target": "soft power off", "timeout": 30}).to_string();
    let path = format!("/v1/nodes/{}/states/power", n[0].uuid);
    assert_eq!(c.call("PUT", &path, Some("1.26"), soft.as_bytes()).status, 406);
    assert_eq!(c.call("PUT", &path, Some("1.27"), soft.as_bytes()).status, 202);
    assert_eq!(sim.node("bm-0001").unwrap().power_state.as_deref(), Some("power off"));
    let bad_timeout = json!({"target": "power on", "timeout": -1}).to_string();
    assert_eq!(c.call("PUT", &path, Some("1.27"), bad_timeout.as_bytes()).status, 400);

    // Locked twice, then accepted.
    sim.lock_node(&n[0].uuid, 2);
    for _ in 0..2 {
        let r = c.power(&n[0].uuid, "power on");
        assert_eq!(r.status, 409);
        assert_eq!(
            faultstring(&r),
            format!(
                "Node {} is locked by host ironic-conductor-1, please retry after the current operation is completed.",
                n[0].uuid
            )
        );
        assert_eq!(r.json().as_object().unwrap().len(), 1);
    }
    assert_eq!(c.power(&n[0].uuid, "power on").status, 202);
    assert_eq!(sim.node(&n[0].uuid).unwrap().power_state.as_deref(), Some("power on"));
    assert!(sim.set_power_state("bm-0001", None));
    assert_eq!(c.get("/v1/nodes/bm-0001").json()["power_state"], Value::Null);
    assert!(sim.stats().by_endpoint["PUT /v1/nodes/{id}/states/power"] >= 15);
}

#[test]
fn endpoints_per_interface_and_statistics() {
    let sim = sim_with(IronicSimConfig { page_size: 4, ..Default::default() });
    let c = Client::new(&sim);
    let internal = Conn::plain(sim.port()).request(
        "GET",
        "/baremetal-internal/v1/nodes",
        &[("X-Auth-Token", c.token.as_str()), (V, "1.46")],
        b"",
    );
    assert_eq!(internal.status, 200);
    // next links use the public URL, whatever endpoint was used.
    assert!(internal.json()["next"].as_str().unwrap().starts_with(&format!("{}/v1/nodes?", sim.ironic_url())));
    let admin = Conn::plain(sim.port()).request(
        "GET",
        "/baremetal-admin/v1/nodes/bm-0001",
        &[("X-Auth-Token", c.token.as_str()), (V, "1.46")],
        b"",
    );
    assert_eq!(admin.status, 200);
    c.get("/v1/nodes");
    let stats = sim.stats();
    assert_eq!(stats.by_interface.get("internal"), Some(&1));
    assert_eq!(stats.by_interface.get("admin"), Some(&1));
    assert_eq!(stats.by_interface.get("public"), Some(&1));
    assert_eq!(stats.requests, 4);
    assert_eq!(stats.by_endpoint["GET /v1/nodes"], 2);
    assert_eq!(Conn::plain(sim.port()).request("GET", "/elsewhere", &[], b"").status, 404);
    assert_eq!(sim.stats().by_endpoint["GET /elsewhere"], 1);
    sim.reset_stats();
    assert_eq!(sim.stats().requests, 0);
}

#[test]
fn keep_alive_and_garbage_never_break_the_server() {
    let sim = sim_with(IronicSimConfig::default());
    let c = Client::new(&sim);
    let mut conn = Conn::plain(sim.port());
    let auth = [("X-Auth-Token", c.token.as_str()), (V, "1.46")];
    for _ in 0..3 {
        assert_eq!(conn.request("GET", "/baremetal/v1/nodes", &auth, b"").status, 200);
    }
    let paths = [
        "/baremetal/v1/nodes/%ff%fe",
        "/baremetal/v1/nodes/%",
        "/baremetal/v1/nodes/\u{e9}",
        "/baremetal/v1/nodes?limit=99999999999999999999999",
        "/baremetal/v1/nodes?marker=&limit=",
        "/baremetal/v1/nodes?detail=&fields=",
        "/baremetal/v1/nodes/x/states/power/extra",
        "/baremetal//v1//nodes",
        "/identity/v3/auth/tokens?x=%",
    ];
    let bodies: [&[u8]; 6] =
        [b"", b"null", b"[]", b"{\"target\": 5}", b"{\"target\": \"power on\", \"timeout\": \"x\"}", b"\xff\xfe"];
    for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
        for path in paths {
            for body in bodies {
                let mut one = Conn::plain(sim.port());
                one.send_raw(&raw(method, path, &auth, body));
                let r = one.read_response().expect("an answer");
                assert!(r.status >= 200 && r.status < 500, "{method} {path}: {}", r.status);
            }
        }
    }
    for body in bodies {
        let r = Conn::plain(sim.port()).request("PUT", "/baremetal/v1/nodes/bm-0001/states/power", &auth, body);
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(body));
    }
    assert_eq!(conn.request("GET", "/baremetal/v1/nodes", &auth, b"").status, 200);
}

fn raw(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
