//! The simulated Keystone over real HTTP: password and application
//! credential forms, scopes, the catalog, refusals, and token expiry as
//! Ironic sees it.

mod support;

use std::time::Duration;

use metal_sim::ironic::{IronicSim, IronicSimConfig};
use serde_json::{json, Value};
use support::{Conn, Resp};

const TOKENS: &str = "/identity/v3/auth/tokens";
const NODES: &str = "/baremetal/v1/nodes";

fn post_tokens(sim: &IronicSim, body: &Value) -> Resp {
    Conn::plain(sim.port()).request(
        "POST",
        TOKENS,
        &[("Content-Type", "application/json"), ("Accept", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn password(user: Value, scope: Option<Value>) -> Value {
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": user}}});
    if let Some(scope) = scope {
        auth["scope"] = scope;
    }
    json!({ "auth": auth })
}

fn by_name(pw: &str) -> Value {
    json!({"name": "watcher", "domain": {"name": "Default"}, "password": pw})
}

fn project_scope() -> Value {
    json!({"project": {"name": "service", "domain": {"name": "Default"}}})
}

fn get_nodes(sim: &IronicSim, token: Option<&str>) -> Resp {
    let mut headers = vec![("X-OpenStack-Ironic-API-Version", "1.46")];
    if let Some(t) = token {
        headers.push(("X-Auth-Token", t));
    }
    Conn::plain(sim.port()).request("GET", NODES, &headers, b"")
}

fn issue(sim: &IronicSim) -> String {
    let r = post_tokens(sim, &password(by_name("watcher-pass"), Some(project_scope())));
    assert_eq!(r.status, 201, "{}", r.text());
    r.header("X-Subject-Token").unwrap().to_string()
}

fn assert_unauthorized(r: &Resp) {
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})
    );
}

#[test]
fn password_tokens_carry_the_catalog() {
    let sim = IronicSim::start(IronicSimConfig { region: "RegionTwo".into(), ..Default::default() }).unwrap();
    let r = post_tokens(&sim, &password(by_name("watcher-pass"), Some(project_scope())));
    assert_eq!(r.status, 201, "{}", r.text());
    let token = r.header("X-Subject-Token").expect("X-Subject-Token").to_string();
    assert!(token.len() > 100, "{token}");
    let body = r.json();
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["project"]["name"], "service");
    assert_eq!(t["project"]["id"], sim.project_id());
    assert_eq!(t["user"]["id"], sim.user_id("watcher").unwrap());
    let expires = t["expires_at"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == "2015-11-07T02:58:43.578887Z".len(), "{expires}");
    assert!(expires > t["issued_at"].as_str().unwrap());

    let catalog = t["catalog"].as_array().unwrap();
    let baremetal = catalog.iter().find(|s| s["type"] == "baremetal").unwrap();
    assert_eq!(baremetal["name"], "ironic");
    let endpoints = baremetal["endpoints"].as_array().unwrap();
    let interfaces: Vec<&str> = endpoints.iter().map(|e| e["interface"].as_str().unwrap()).collect();
    assert_eq!(interfaces, ["public", "internal", "admin"]);
    assert!(endpoints.iter().all(|e| e["region"] == "RegionTwo" && e["region_id"] == "RegionTwo"));
    assert_eq!(endpoints[0]["url"], sim.ironic_url());
    assert_eq!(endpoints[1]["url"], sim.ironic_url_for("internal"));
    assert!(catalog.iter().any(|s| s["type"] == "identity" && s["endpoints"][0]["url"] == sim.auth_url()));

    // The token opens Ironic.
    assert_eq!(get_nodes(&sim, Some(&token)).status, 200);
    assert_eq!(sim.stats().tokens_issued, 1);
    assert_eq!(sim.stats().by_endpoint["POST /v3/auth/tokens"], 1);
}

#[test]
fn every_password_form_keystoneauth_sends() {
    let sim = IronicSim::start(IronicSimConfig::default()).unwrap();
    let uid = sim.user_id("watcher").unwrap();
    let pid = sim.project_id();
    let forms = [
        password(json!({"id": uid, "password": "watcher-pass"}), Some(json!({"project": {"id": pid}}))),
        password(
            json!({"name": "watcher", "domain": {"id": "default"}, "password": "watcher-pass"}),
            Some(json!({"project": {"name": "service", "domain": {"id": "default"}}})),
        ),
        // Domain names compare case-insensitively, as on MySQL.
        password(
            json!({"name": "watcher", "domain": {"name": "default"}, "password": "watcher-pass"}),
            Some(json!({"project": {"name": "service", "domain": {"name": "default"}}})),
        ),
        password(by_name("watcher-pass"), Some(json!({"domain": {"id": "default"}}))),
        password(by_name("watcher-pass"), Some(json!({"system": {"all": true}}))),
    ];
    for form in &forms {
        let r = post_tokens(&sim, form);
        assert_eq!(r.status, 201, "{form}: {}", r.text());
        assert!(r.json()["token"]["catalog"].is_array(), "{form}");
    }
    // Unscoped: a token, but no catalog.
    let r = post_tokens(&sim, &password(by_name("watcher-pass"), None));
    assert_eq!(r.status, 201);
    assert!(r.json()["token"].get("catalog").is_none());
}

#[test]
fn refusals() {
    let sim = IronicSim::start(IronicSimConfig {
        users: vec![("watcher".into(), "watcher-pass".into()), ("other".into(), "other-pass".into())],
        ..Default::default()
    })
    .unwrap();
    // Wrong password, unknown user, wrong domain, another user's password,
    // unknown project: all the same 401.
    for form in [
        password(by_name("nope"), Some(project_scope())),
        password(json!({"name": "ghost", "domain": {"name": "Default"}, "password": "watcher-pass"}), None),
        password(json!({"name": "watcher", "domain": {"name": "Other"}, "password": "watcher-pass"}), None),
        password(by_name("other-pass"), None),
        password(json!({"id": "0123", "password": "watcher-pass"}), None),
        password(by_name("watcher-pass"), Some(json!({"project": {"name": "admin", "domain": {"id": "default"}}}))),
        password(by_name("watcher-pass"), Some(json!({"project": {"id": "not-a-project"}}))),
    ] {
        let r = post_tokens(&sim, &form);
        assert_unauthorized(&r);
        assert!(r.header("X-Subject-Token").is_none());
        assert!(r.header("WWW-Authenticate").is_some_and(|v| v.starts_with("Keystone uri=")));
    }
    let other = password(json!({"name": "other", "domain": {"id": "default"}, "password": "other-pass"}), None);
    assert_eq!(post_tokens(&sim, &other).status, 201);

    // Malformed requests are 400 with Keystone's error shape.
    let no_domain = password(json!({"name": "watcher", "password": "watcher-pass"}), None);
    for body in [no_domain, json!({}), json!({"auth": {}}), json!({"auth": {"identity": {"methods": []}}})] {
        let r = post_tokens(&sim, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], 400);
        assert_eq!(r.json()["error"]["title"], "Bad Request");
    }
    let r = Conn::plain(sim.port()).request("POST", TOKENS, &[("Content-Type", "application/json")], b"{not json");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().starts_with("Expecting to find valid JSON"));

    let totp = json!({"auth": {"identity": {"methods": ["totp"], "totp": {}}}});
    let r = post_tokens(&sim, &totp);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["message"], "Attempted to authenticate with an unsupported method.");

    let r = Conn::plain(sim.port()).request("GET", TOKENS, &[], b"");
    assert_eq!(r.status, 405);
    let r = Conn::plain(sim.port()).request("GET", "/identity/v3/users", &[], b"");
    assert_eq!((r.status, r.json()["error"]["code"].as_u64()), (404, Some(404)));
    let r = Conn::plain(sim.port()).request("GET", "/identity/v3", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"]["id"], "v3.14");

    let stats = sim.stats();
    assert_eq!(stats.tokens_issued, 1);
    assert_eq!(stats.rejected_auth, 7 + 5 + 1);
}

#[test]
fn application_credentials() {
    let sim = IronicSim::start(IronicSimConfig {
        app_credentials: vec![("ac-1".into(), "s3cret-ac".into())],
        ..Default::default()
    })
    .unwrap();
    let by_id = |secret: &str| {
        json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": "ac-1", "secret": secret}}}})
    };
    let r = post_tokens(&sim, &by_id("s3cret-ac"));
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert_eq!(body["token"]["methods"], json!(["application_credential"]));
    assert_eq!(body["token"]["project"]["name"], "service");
    assert_eq!(body["token"]["application_credential"]["id"], "ac-1");
    let token = r.header("X-Subject-Token").unwrap().to_string();
    assert_eq!(get_nodes(&sim, Some(&token)).status, 200);

    // By name and owner.
    let by_name = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"name": "ac-1", "user": {"name": "watcher", "domain": {"name": "Default"}}, "secret": "s3cret-ac"}}}});
    assert_eq!(post_tokens(&sim, &by_name).status, 201);

    assert_unauthorized(&post_tokens(&sim, &by_id("wrong")));

    // A scope in the request is refused, even with the right secret.
    let mut scoped = by_id("s3cret-ac");
    scoped["auth"]["scope"] = json!({"project": {"id": sim.project_id()}});
    let r = post_tokens(&sim, &scoped);
    assert_eq!(r.status, 401);
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("Application credentials cannot request a scope."), "{message}");
}

#[test]
fn tokens_expire() {
    let sim = IronicSim::start(IronicSimConfig { token_ttl: Duration::from_secs(1), ..Default::default() }).unwrap();
    let r = post_tokens(&sim, &password(by_name("watcher-pass"), Some(project_scope())));
    let body = r.json();
    let (issued, expires) =
        (body["token"]["issued_at"].as_str().unwrap(), body["token"]["expires_at"].as_str().unwrap());
    assert!(expires > issued, "{issued} {expires}");
    let token = r.header("X-Subject-Token").unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1500));
    let r = get_nodes(&sim, Some(&token));
    assert_unauthorized(&r);
    assert!(r.header("WWW-Authenticate").is_some());
    assert_eq!(sim.stats().rejected_tokens, 1);
}

#[test]
fn expire_tokens_now_and_after_some_requests() {
    let sim = IronicSim::start(IronicSimConfig::default()).unwrap();
    let first = issue(&sim);
    let second = issue(&sim);
    assert_eq!(get_nodes(&sim, Some(&first)).status, 200);
    sim.expire_tokens();
    assert_eq!(get_nodes(&sim, Some(&first)).status, 401);
    assert_eq!(get_nodes(&sim, Some(&second)).status, 401);
    let third = issue(&sim);
    assert_eq!(get_nodes(&sim, Some(&third)).status, 200);

    sim.expire_tokens_after(2);
    assert_eq!(get_nodes(&sim, Some(&third)).status, 200);
    assert_eq!(get_nodes(&sim, Some(&third)).status, 200);
    assert_eq!(get_nodes(&sim, Some(&third)).status, 401);
    let fourth = issue(&sim);
    assert_eq!(get_nodes(&sim, Some(&fourth)).status, 200);
    assert_eq!(get_nodes(&sim, Some(&fourth)).status, 200);

    // No token, an unknown one, an empty one.
    assert_unauthorized(&get_nodes(&sim, None));
    assert_unauthorized(&get_nodes(&sim, Some("gAAAAABnot-a-token")));
    assert_unauthorized(&get_nodes(&sim, Some("")));
    assert_eq!(sim.stats().rejected_tokens, 2 + 1 + 3);
    assert_eq!(sim.stats().tokens_issued, 4);
}

#[test]
fn clients_auth_section_names_the_default_user() {
    let sim = IronicSim::start(IronicSimConfig::default()).unwrap();
    let section = sim.clients_auth_section();
    assert!(section.starts_with("[watcher_clients_auth]\n"), "{section}");
    for line in [
        "auth_type = password".to_string(),
        format!("auth_url = {}", sim.auth_url()),
        "username = watcher".into(),
        "password = watcher-pass".into(),
        "user_domain_name = Default".into(),
        "project_name = service".into(),
        "project_domain_name = Default".into(),
    ] {
        assert!(section.lines().any(|l| l == line), "{line} missing from\n{section}");
    }
    assert!(sim.auth_url().starts_with("http://127.0.0.1:"));
    assert!(sim.ironic_url().ends_with("/baremetal"));
}
