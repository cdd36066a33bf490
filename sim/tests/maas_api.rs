//! The simulated MAAS API over real HTTP: authentication, routes, machine
//! listing and filters, power semantics, BMC failures and statistics.

mod support;

use std::time::{Duration, Instant};

use metal_sim::*;
use support::*;

const MACHINES: &str = "/MAAS/api/2.0/machines/";
const WHOAMI: &str = "/MAAS/api/2.0/users/?op=whoami";

fn sim() -> MaasSim {
    MaasSim::start(MaasSimConfig { machines: SimMachine::generate(30), ..Default::default() }).unwrap()
}

fn whoami(sim: &MaasSim, header: &str) -> Resp {
    get(sim, WHOAMI, Some(header))
}

fn header(params: &[(&str, String)], quoted: bool, sep: &str) -> String {
    let parts: Vec<String> =
        params.iter().map(|(k, v)| if quoted { format!("{k}=\"{v}\"") } else { format!("{k}={v}") }).collect();
    format!("OAuth {}", parts.join(sep))
}

#[test]
fn accepts_each_client_header_form() {
    let sim = sim();
    let u = &sim.users()[0];
    // python-libmaas (oauthlib): realm="OAuth", quoted, %26.
    let r = whoami(&sim, &auth(u));
    assert_eq!((r.status, r.json()["username"].as_str()), (200, Some("admin")), "{}", r.text());
    assert_eq!(r.json()["is_superuser"], true);
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));

    // gomaasapi: realm="MAAS+API", every value query-escaped, map order.
    let go = header(
        &[
            ("oauth_signature", format!("%26{}", u.token_secret)),
            ("oauth_nonce", "0123456789abcdef0123456789abcdef".into()),
            ("realm", "MAAS+API".into()),
            ("oauth_token", u.token_key.clone()),
            ("oauth_version", "1.0".into()),
            ("oauth_consumer_key", u.consumer_key.clone()),
            ("oauth_timestamp", now().to_string()),
            ("oauth_signature_method", "PLAINTEXT".into()),
        ],
        true,
        ", ",
    );
    assert_eq!(whoami(&sim, &go).status, 200);

    // The documented curl form: unquoted, literal &, no realm, no spaces.
    let curl = header(
        &[
            ("oauth_version", "1.0".into()),
            ("oauth_signature_method", "PLAINTEXT".into()),
            ("oauth_consumer_key", u.consumer_key.clone()),
            ("oauth_token", u.token_key.clone()),
            ("oauth_signature", format!("&{}", u.token_secret)),
            ("oauth_nonce", nonce()),
            ("oauth_timestamp", now().to_string()),
        ],
        false,
        ",",
    );
    assert_eq!(whoami(&sim, &curl).status, 200);

    // OAuth parameters in the query string instead of a header.
    let q = format!(
        "{WHOAMI}&oauth_consumer_key={}&oauth_token={}&oauth_signature=%26{}&oauth_signature_method=PLAINTEXT&oauth_timestamp={}&oauth_nonce={}",
        u.consumer_key,
        u.token_key,
        u.token_secret,
        now(),
        nonce()
    );
    assert_eq!(get(&sim, &q, None).status, 200);

    // ... or in a form-encoded POST body.
    let id = sim.machines()[0].system_id.clone();
    let form = format!(
        "stop_mode=hard&oauth_consumer_key={}&oauth_token={}&oauth_signature=%26{}&oauth_signature_method=PLAINTEXT&oauth_timestamp={}&oauth_nonce={}",
        u.consumer_key,
        u.token_key,
        u.token_secret,
        now(),
        nonce()
    );
    let r = post_form(&sim, &format!("{MACHINES}{id}/?op=power_off"), None, &form);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(sim.stats().rejected_auth, 0);
}

struct Bad {
    consumer: String,
    token: String,
    signature: String,
    timestamp: String,
    nonce: String,
    version: &'static str,
}

impl Bad {
    fn valid(u: &SimUser) -> Bad {
        Bad {
            consumer: u.consumer_key.clone(),
            token: u.token_key.clone(),
            signature: format!("%26{}", u.token_secret),
            timestamp: now().to_string(),
            nonce: nonce(),
            version: "1.0",
        }
    }

    fn header(&self) -> String {
        format!(
            "OAuth realm=\"OAuth\", oauth_nonce=\"{}\", oauth_timestamp=\"{}\", oauth_version=\"{}\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"{}\"",
            self.nonce, self.timestamp, self.version, self.consumer, self.token, self.signature
        )
    }
}

fn assert_401(r: &Resp, body: &str) {
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.text(), body);
    assert_eq!(r.header("www-authenticate"), Some("OAuth realm=\"OAuth\""));
}

#[test]
fn refuses_bad_credentials_like_maas() {
    let sim = sim();
    let u = sim.users()[0].clone();

    let r = whoami(&sim, &Bad { consumer: "NoSuchConsumerKey1".into(), ..Bad::valid(&u) }.header());
    assert_401(&r, "Authorization Error: Invalid API key.");

    let r = whoami(&sim, &Bad { token: "NoSuchTokenKey1234".into(), ..Bad::valid(&u) }.header());
    assert_401(&r, "Authorization Error: 'Invalid access token: NoSuchTokenKey1234'");

    let r = whoami(&sim, &Bad { signature: "%26wrongsecret".into(), ..Bad::valid(&u) }.header());
    assert_eq!(r.status, 401);
    assert!(r.text().starts_with("Authorization Error: 'Invalid signature."), "{}", r.text());
    assert!(!r.text().contains(&u.token_secret), "the expected secret must not be echoed");

    let old = (now() - 1000).to_string();
    let r = whoami(&sim, &Bad { timestamp: old.clone(), ..Bad::valid(&u) }.header());
    assert_eq!(r.status, 401);
    let prefix = format!("Authorization Error: 'Expired timestamp: given {old} and now ");
    assert!(r.text().starts_with(&prefix), "{}", r.text());
    assert!(r.text().ends_with(" has a greater difference than threshold 300'"), "{}", r.text());

    // A clock ahead of the server's is fine (the check is one-sided).
    let r = whoami(&sim, &Bad { timestamp: (now() + 3600).to_string(), ..Bad::valid(&u) }.header());
    assert_eq!(r.status, 200);

    let used = Bad::valid(&u);
    assert_eq!(whoami(&sim, &used.header()).status, 200);
    let r = whoami(&sim, &used.header());
    assert_401(&r, &format!("Authorization Error: 'Nonce already used: {}'", used.nonce));

    let r = whoami(&sim, &Bad { version: "2.0", ..Bad::valid(&u) }.header());
    assert_401(&r, "Authorization Error: 'OAuth version 2.0 not supported.'");

    let r = whoami(&sim, &Bad { timestamp: "soon".into(), ..Bad::valid(&u) }.header());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("oauth_timestamp"), "{}", r.text());
    assert!(r.text().contains("unexpected type"), "{}", r.text());

    assert_eq!(sim.stats().rejected_auth, 7);
}

#[test]
fn inactive_users_and_other_users_keys() {
    let mut carol = SimUser::new("carol");
    carol.active = false;
    let bob = SimUser::new("bob");
    let sim = MaasSim::start(MaasSimConfig {
        users: vec![SimUser::admin(), bob.clone(), carol.clone()],
        machines: SimMachine::generate(20),
        ..Default::default()
    })
    .unwrap();
    let r = whoami(&sim, &auth(&carol));
    assert_eq!((r.status, r.text().as_str()), (403, "User is not allowed access to this API."));
    let r = whoami(&sim, &auth(&bob));
    assert_eq!((r.json()["username"].as_str(), r.json()["is_superuser"].as_bool()), (Some("bob"), Some(false)));

    // A non-superuser sees only machines that are free or its own.
    let list = get(&sim, MACHINES, Some(&auth(&bob))).json();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|m| m["hostname"].as_str().unwrap()).collect();
    assert_eq!(names, ["node-0010", "node-0020"]);
    let admin_owned = &sim.machines()[0].system_id;
    let r = get(&sim, &format!("{MACHINES}{admin_owned}/"), Some(&auth(&bob)));
    assert_eq!((r.status, r.text().as_str()), (404, "No Machine matches the given query."));
    // It may see a free machine, but not power it.
    let free = &sim.machines()[9].system_id;
    let r = post_form(&sim, &format!("{MACHINES}{free}/?op=power_on"), Some(&auth(&bob)), "");
    assert_eq!((r.status, r.body.len()), (403, 0));
}

#[test]
fn clock_offset_moves_the_date_and_the_timestamp_check() {
    let ten_years = 10 * 365 * 86_400;
    let sim = MaasSim::start(MaasSimConfig { clock_offset_secs: ten_years, ..Default::default() }).unwrap();
    let r = whoami(&sim, &admin_auth(&sim));
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Expired timestamp"), "{}", r.text());
    let date = r.header("date").unwrap().to_string();
    let year_now = 1970 + now() / 31_556_952;
    let expected = [year_now + 9, year_now + 10, year_now + 11];
    assert!(expected.iter().any(|y| date.contains(&format!(" {y} "))), "{date}");
    assert!(date.ends_with(" GMT"), "{date}");
}

#[test]
fn anonymous_requests_get_maas_answers() {
    let sim = sim();
    let id = sim.machines()[0].system_id.clone();
    let r = get(&sim, MACHINES, None);
    assert_eq!((r.status, r.text().as_str()), (400, "Unrecognised signature: method=GET op=None"));
    let r = get(&sim, WHOAMI, None);
    assert_eq!((r.status, r.text().as_str()), (401, "Forbidden"));
    assert_eq!(r.header("www-authenticate"), None);
    let r = get(&sim, &format!("{MACHINES}{id}/"), None);
    assert_eq!((r.status, r.text().as_str()), (401, "Forbidden"));
    let r = post_form(&sim, &format!("{MACHINES}{id}/?op=power_on"), None, "");
    assert_eq!((r.status, r.text().as_str()), (401, "Forbidden"));
    // An incomplete OAuth header is no OAuth request: anonymous.
    let r = get(&sim, WHOAMI, Some("OAuth oauth_consumer_key=\"x\", oauth_token=\"y\""));
    assert_eq!((r.status, r.text().as_str()), (401, "Forbidden"));
    assert_eq!(sim.stats().rejected_auth, 0);
    // version/ ignores credentials, even wrong ones.
    let r = get(&sim, "/MAAS/api/2.0/version/", Some("OAuth oauth_consumer_key=\"x\", oauth_token=\"y\", oauth_signature=\"z\", oauth_signature_method=\"PLAINTEXT\", oauth_timestamp=\"1\", oauth_nonce=\"n\""));
    assert_eq!(r.status, 200);
}

#[test]
fn routes_versions_and_headers() {
    let sim = MaasSim::start(MaasSimConfig { version: "3.5.0~rc1".into(), ..Default::default() }).unwrap();
    let r = get(&sim, "/MAAS/api/2.0/version/", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
    let v = r.json();
    assert_eq!((v["version"].as_str(), v["subversion"].as_str()), (Some("3.5.0~rc1"), Some("")));
    assert!(v["capabilities"].as_array().unwrap().iter().any(|c| c == "authenticate-api"));
    assert!(r.header("x-maas-api-hash").is_some());
    assert_eq!(r.header("vary"), Some("Authorization"));
    assert!(r.header("date").unwrap().ends_with("GMT"));

    let r = get(&sim, "/MAAS/api/version/", None);
    assert_eq!((r.status, r.text().as_str(), r.header("content-type")), (200, "2.0", Some("text/plain")));
    let r = get(&sim, "/MAAS/api/1.0/nodes/", None);
    assert_eq!((r.status, r.text().as_str()), (410, "The 1.0 API is no longer available. Please use API version 2.0."));
    let r = get(&sim, "/MAAS/api/2.0/nodes/", Some(&admin_auth(&sim)));
    assert_eq!((r.status, r.text().as_str()), (404, "Unknown API endpoint: /MAAS/api/2.0/nodes/."));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let r = get(&sim, "/MAAS/api/2.0/machines", Some(&admin_auth(&sim)));
    assert_eq!((r.status, r.text().as_str()), (404, "Unknown API endpoint: /MAAS/api/2.0/machines."));
    // Without /MAAS: the front web server's HTML 404.
    let r = get(&sim, "/api/2.0/version/", None);
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("<html>"));

    let r = get(&sim, "/MAAS/api/2.0/machines/?op=frobnicate", Some(&admin_auth(&sim)));
    assert_eq!((r.status, r.text().as_str()), (400, "Unrecognised signature: method=GET op=frobnicate"));
    let mut c = Conn::plain(sim.port());
    let auth = admin_auth(&sim);
    let r = c.request("PUT", MACHINES, &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
}

#[test]
fn describe_has_absolute_uris_from_the_host_header() {
    let sim = sim();
    let mut c = Conn::plain(sim.port());
    c.send_raw(b"GET /MAAS/api/2.0/describe/ HTTP/1.1\r\nHost: maas.example:5240\r\n\r\n");
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")));
    let d = r.json();
    let machine = d["resources"].as_array().unwrap().iter().find(|x| x["name"] == "MachineHandler").unwrap();
    assert_eq!(machine["auth"]["uri"], "http://maas.example:5240/MAAS/api/2.0/machines/{system_id}/");
    assert_eq!(machine["auth"]["params"], serde_json::json!(["system_id"]));
    let ops: Vec<&str> =
        machine["auth"]["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(ops, ["power_off", "power_on", "query_power_state", "read"]);
    assert!(d["handlers"].as_array().unwrap().len() >= 5);
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|m| m["system_id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn lists_and_filters_machines() {
    let sim = sim();
    let all = sim.machines();
    let a = admin_auth(&sim);
    let list = get(&sim, MACHINES, Some(&a)).json();
    assert_eq!(ids(&list), all.iter().map(|m| m.system_id.clone()).collect::<Vec<_>>());
    let first = &list[0];
    assert_eq!(first["fqdn"], "node-0001.maas");
    assert_eq!(first["domain"]["name"], "maas");
    assert_eq!(first["zone"]["name"], "default");
    assert_eq!(first["pool"]["name"], "default");
    assert_eq!((first["status"].as_u64(), first["status_name"].as_str()), (Some(6), Some("Deployed")));
    assert_eq!((first["power_state"].as_str(), first["power_type"].as_str()), (Some("on"), Some("ipmi")));
    assert_eq!((first["node_type"].as_u64(), first["node_type_name"].as_str()), (Some(0), Some("Machine")));
    assert_eq!(first["owner"], "admin");
    assert_eq!(first["resource_uri"], format!("/MAAS/api/2.0/machines/{}/", all[0].system_id));
    for field in ["interface_set", "blockdevice_set", "physicalblockdevice_set", "tag_names", "ip_addresses"] {
        assert!(first[field].is_array(), "{field}");
    }
    assert!(first["boot_interface"].is_null() && first["hardware_info"].is_object() && first["owner_data"].is_object());
    assert!(list[9]["owner"].is_null());

    let q = |query: &str| get(&sim, &format!("{MACHINES}?{query}"), Some(&admin_auth(&sim)));
    assert_eq!(
        ids(&q("hostname=node-0003&hostname=node-0005").json()),
        [all[2].system_id.clone(), all[4].system_id.clone()]
    );
    assert_eq!(ids(&q("hostname=node-0003.maas").json()), Vec::<String>::new(), "MAAS matches short hostnames");
    assert_eq!(ids(&q(&format!("id={}", all[7].system_id)).json()), [all[7].system_id.clone()]);
    assert_eq!(q("zone=zone-b").json().as_array().unwrap().len(), 10);
    assert_eq!(q("pool=default&zone=default").json().as_array().unwrap().len(), 20);
    let r = q("zone=nowhere");
    assert_eq!((r.status, r.header("content-type")), (400, Some("application/json; charset=utf-8")));
    assert_eq!(r.json(), serde_json::json!({"zone": ["No such zone(s): nowhere."]}));
    assert_eq!(q("pool=deep").json(), serde_json::json!({"pool": ["No such pool(s): deep."]}));

    let one = get(&sim, &format!("{MACHINES}{}/", all[3].system_id), Some(&admin_auth(&sim)));
    assert_eq!(one.json()["hostname"], "node-0004");
    let r = get(&sim, &format!("{MACHINES}nosuch/"), Some(&admin_auth(&sim)));
    assert_eq!((r.status, r.text().as_str()), (404, "No Machine matches the given query."));
}

#[test]
fn lists_ten_thousand_machines() {
    let sim = MaasSim::start(MaasSimConfig { machines: SimMachine::generate(10_000), ..Default::default() }).unwrap();
    let list = get(&sim, MACHINES, Some(&admin_auth(&sim))).json();
    assert_eq!(list.as_array().unwrap().len(), 10_000);
    assert_eq!(list[9_999]["hostname"], "node-10000");
    let one = get(&sim, &format!("{MACHINES}?hostname=node-10000"), Some(&admin_auth(&sim))).json();
    assert_eq!(one, serde_json::json!([list[9_999]]));
}

fn post(sim: &MaasSim, id: &str, op: &str, form: &str) -> Resp {
    post_form(sim, &format!("{MACHINES}{id}/?op={op}"), Some(&admin_auth(sim)), form)
}

#[test]
fn power_on_and_off_semantics() {
    let sim = sim();
    let ms = sim.machines();
    let id = &ms[0].system_id;

    // The answer shows the machine before the action; the state then changes.
    let r = post(&sim, id, "power_off", "stop_mode=soft&comment=maintenance");
    assert_eq!((r.status, r.json()["power_state"].as_str()), (200, Some("on")), "{}", r.text());
    assert_eq!(sim.machine(id).unwrap().power_state, PowerState::Off);
    let r = get(&sim, &format!("{MACHINES}{id}/?op=query_power_state"), Some(&admin_auth(&sim)));
    assert_eq!(r.json(), serde_json::json!({"state": "off"}));
    // Again: fine.
    assert_eq!(post(&sim, id, "power_off", "").status, 200);

    // op in a multipart body (as python-libmaas sends), no op in the URL.
    let boundary = "===============123==";
    let body = format!(
        "--{boundary}\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: form-data; name=\"op\"\r\n\r\ncG93ZXJfb24=\r\n\r\n--{boundary}--"
    );
    let ct = format!("multipart/form-data; boundary=\"{boundary}\"");
    let auth = admin_auth(&sim);
    let r = Conn::plain(sim.port()).request(
        "POST",
        &format!("{MACHINES}{id}/"),
        &[("Content-Type", &ct), ("Authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!((r.status, r.json()["power_state"].as_str()), (200, Some("off")), "{}", r.text());
    assert_eq!(sim.machine(id).unwrap().power_state, PowerState::On);

    // The op-NAME path form.
    let r = post_form(&sim, &format!("{MACHINES}{id}/op-power_off"), Some(&admin_auth(&sim)), "");
    assert_eq!(r.status, 200);
    assert_eq!(sim.machine(id).unwrap().power_state, PowerState::Off);

    // A Ready (unallocated) machine cannot be started.
    let ready = &ms[9].system_id;
    let r = post(&sim, ready, "power_on", "");
    assert_eq!((r.status, r.text().as_str()), (409, "Can't start node: it hasn't been allocated."));
    assert_eq!(post(&sim, ready, "power_off", "").status, 200);

    // A manual machine cannot be stopped by MAAS: 200 with null; its state is unknown.
    let manual = &ms[24].system_id;
    let r = post(&sim, manual, "power_off", "");
    assert_eq!((r.status, r.text().as_str()), (200, "null"));
    let r = get(&sim, &format!("{MACHINES}{manual}/?op=query_power_state"), Some(&admin_auth(&sim)));
    assert_eq!(r.json()["state"], "unknown");

    let r = post(&sim, id, "frobnicate", "");
    assert_eq!((r.status, r.text().as_str()), (400, "Unrecognised signature: method=POST op=frobnicate"));
    let r = post(&sim, "nosuch", "power_on", "");
    assert_eq!(r.status, 404);
}

#[test]
fn locked_machines_refuse_power_changes() {
    let mut machines = SimMachine::generate(3);
    machines[1].locked = true;
    let sim = MaasSim::start(MaasSimConfig { machines, ..Default::default() }).unwrap();
    let id = sim.machines()[1].system_id.clone();
    for op in ["power_on", "power_off"] {
        let r = post(&sim, &id, op, "");
        assert_eq!((r.status, r.body.len()), (403, 0), "{op}");
    }
    assert_eq!(sim.machine(&id).unwrap().power_state, PowerState::On);
    assert_eq!(get(&sim, &format!("{MACHINES}{id}/"), Some(&admin_auth(&sim))).json()["locked"], true);
}

#[test]
fn power_changes_and_queries_take_their_time() {
    let sim = MaasSim::start(MaasSimConfig {
        power_change_delay: Duration::from_millis(300),
        power_query_delay: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap();
    let id = sim.machines()[0].system_id.clone();
    let started = Instant::now();
    assert_eq!(post(&sim, &id, "power_off", "").status, 200);
    while sim.machine(&id).unwrap().power_state != PowerState::Off {
        assert!(started.elapsed() < Duration::from_secs(30), "power state never changed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.elapsed() >= Duration::from_millis(300));

    let started = Instant::now();
    let r = get(&sim, &format!("{MACHINES}{id}/?op=query_power_state"), Some(&admin_auth(&sim)));
    assert_eq!(r.json()["state"], "off");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn pending_power_change_is_not_visible_early() {
    let sim =
        MaasSim::start(MaasSimConfig { power_change_delay: Duration::from_secs(600), ..Default::default() }).unwrap();
    let id = sim.machines()[0].system_id.clone();
    assert_eq!(post(&sim, &id, "power_off", "").status, 200);
    assert_eq!(sim.machine(&id).unwrap().power_state, PowerState::On);
    let r = get(&sim, &format!("{MACHINES}{id}/?op=query_power_state"), Some(&admin_auth(&sim)));
    assert_eq!(r.json()["state"], "on");
    assert!(sim.set_power_state(&id, PowerState::Error));
    assert_eq!(get(&sim, &format!("{MACHINES}{id}/"), Some(&admin_auth(&sim))).json()["power_state"], "error");
}

#[test]
fn too_many_power_queries_get_503_retry_after() {
    let sim = std::sync::Arc::new(
        MaasSim::start(MaasSimConfig {
            power_query_delay: Duration::from_secs(5),
            max_concurrent_power_queries: Some(1),
            ..Default::default()
        })
        .unwrap(),
    );
    let id = sim.machines()[0].system_id.clone();
    let target = format!("{MACHINES}{id}/?op=query_power_state");
    let slow = {
        let (sim, target) = (sim.clone(), target.clone());
        std::thread::spawn(move || get(&sim, &target, Some(&admin_auth(&sim))).status)
    };
    let started = Instant::now();
    while sim.stats().max_concurrent_power_queries == 0 {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = get(&sim, &target, Some(&admin_auth(&sim)));
    assert_eq!((r.status, r.header("retry-after")), (503, Some("10")), "{}", r.text());
    assert_eq!(slow.join().unwrap(), 200);
    assert_eq!(sim.stats().max_concurrent_power_queries, 2);
}

#[test]
fn bmc_failures() {
    let sim = sim();
    let m = sim.machines()[0].clone();
    let query = format!("{MACHINES}{}/?op=query_power_state", m.system_id);
    sim.set_bmc_failure(&m.system_id, Some(BmcFailure::Unreachable));
    let r = get(&sim, &query, Some(&admin_auth(&sim)));
    assert_eq!(
        (r.status, r.text(), r.header("retry-after")),
        (503, format!("No rack controllers can access the BMC of node {}", m.hostname), None)
    );
    assert_eq!(post(&sim, &m.system_id, "power_off", "").status, 503);
    assert_eq!(sim.machine(&m.system_id).unwrap().power_state, PowerState::On);
    sim.set_bmc_failure(&m.system_id, Some(BmcFailure::Timeout));
    assert_eq!(get(&sim, &query, Some(&admin_auth(&sim))).status, 504);
    sim.set_bmc_failure(&m.system_id, Some(BmcFailure::Error));
    let r = get(&sim, &query, Some(&admin_auth(&sim)));
    assert_eq!(r.status, 500);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    sim.set_bmc_failure(&m.system_id, None);
    assert_eq!(get(&sim, &query, Some(&admin_auth(&sim))).json()["state"], "on");
}

#[test]
fn counts_requests_per_endpoint() {
    let sim = sim();
    let id = sim.machines()[0].system_id.clone();
    get(&sim, "/MAAS/api/2.0/version/", None);
    get(&sim, WHOAMI, Some(&admin_auth(&sim)));
    get(&sim, MACHINES, Some(&admin_auth(&sim)));
    get(&sim, &format!("{MACHINES}{id}/"), Some(&admin_auth(&sim)));
    get(&sim, &format!("{MACHINES}{id}/?op=query_power_state"), Some(&admin_auth(&sim)));
    get(&sim, &format!("{MACHINES}{id}/?op=query_power_state"), Some(&admin_auth(&sim)));
    post(&sim, &id, "power_on", "");
    get(&sim, "/elsewhere", None);
    let s = sim.stats();
    assert_eq!(s.requests, 8);
    let count = |k: &str| s.by_endpoint.get(k).copied().unwrap_or(0);
    assert_eq!(count("GET version/"), 1);
    assert_eq!(count("GET users/?op=whoami"), 1);
    assert_eq!(count("GET machines/"), 1);
    assert_eq!(count("GET machines/{id}/"), 1);
    assert_eq!(count("GET machines/{id}/?op=query_power_state"), 2);
    assert_eq!(count("POST machines/{id}/?op=power_on"), 1);
    assert_eq!(count("GET /elsewhere"), 1);
    assert_eq!(s.max_concurrent_power_queries, 1);
    sim.reset_stats();
    assert_eq!(sim.stats().requests, 0);
}
