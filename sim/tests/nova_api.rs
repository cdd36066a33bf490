//! The simulated Nova over real HTTP: Keystone's catalog, microversions and
//! the fields each has, paging with `hypervisors_links`, `with_servers`,
//! one hypervisor, 401 / 406 / 400, and injected faults.

mod support;

use std::collections::HashSet;

use metal_sim::nova::{Fault, FaultRule, NovaSim, NovaSimConfig, SimHypervisor};
use serde_json::{json, Value};
use support::{Conn, Resp};

struct Client<'a> {
    sim: &'a NovaSim,
    token: String,
}

impl Client<'_> {
    fn new(sim: &NovaSim) -> (Client<'_>, Value) {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "watcher", "domain": {"name": "Default"}, "password": "watcher-pass"}}},
            "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}}});
        let r = Conn::plain(sim.port()).request(
            "POST",
            "/identity/v3/auth/tokens",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let token = r.header("X-Subject-Token").unwrap().to_string();
        (Client { sim, token }, r.json())
    }

    fn get(&self, path: &str, version: Option<&str>) -> Resp {
        let mut headers = vec![("X-Auth-Token", self.token.as_str()), ("Accept", "application/json")];
        let modern = version.map(|v| format!("compute {v}"));
        if let Some(v) = &modern {
            headers.push(("OpenStack-API-Version", v.as_str()));
        }
        Conn::plain(self.sim.port()).request("GET", &format!("/compute/v2.1{path}"), &headers, b"")
    }
}

fn sim(n: usize, page_size: usize) -> NovaSim {
    NovaSim::start(NovaSimConfig { hypervisors: SimHypervisor::generate(n), page_size, ..Default::default() }).unwrap()
}

/// The query of a `next` link.
fn next_query(body: &Value) -> Option<String> {
    let href = body["hypervisors_links"].as_array()?.iter().find(|l| l["rel"] == "next")?["href"].as_str()?.to_owned();
    Some(href.split_once('?')?.1.to_owned())
}

#[test]
fn the_catalog_lists_compute_per_interface() {
    let sim = sim(2, 10);
    let (_, token) = Client::new(&sim);
    let catalog = token["token"]["catalog"].as_array().unwrap();
    let compute = catalog.iter().find(|s| s["type"] == "compute").expect("compute in the catalog");
    let urls: Vec<(String, String)> = compute["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["interface"].as_str().unwrap().to_owned(), e["url"].as_str().unwrap().to_owned()))
        .collect();
    for iface in ["public", "internal", "admin"] {
        assert!(urls.contains(&(iface.to_owned(), sim.nova_url_for(iface))), "{urls:?}");
    }
    assert!(catalog.iter().all(|s| s["type"] != "baremetal"));
}

#[test]
fn pages_follow_nova_max_limit_with_next_links() {
    let sim = sim(8, 3);
    let (c, _) = Client::new(&sim);
    let mut seen = Vec::new();
    let mut path = "/os-hypervisors/detail".to_owned();
    let mut pages = 0;
    loop {
        let r = c.get(&path, Some("2.56"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("OpenStack-API-Version"), Some("compute 2.56"));
        let body = r.json();
        let list = body["hypervisors"].as_array().unwrap();
        assert!(list.len() <= 3);
        seen.extend(list.iter().map(|h| h["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match next_query(&body) {
            Some(q) => path = format!("/os-hypervisors/detail?{q}"),
            None => break,
        }
    }
    // 8 in pages of 3: 3, 3, 2 (a full last page would add an empty one).
    assert_eq!(pages, 3);
    let want: Vec<String> = sim.hypervisors().into_iter().map(|h| h.uuid).collect();
    assert_eq!(seen, want);
    assert_eq!(sim.stats().pages, 3);
    // A client limit above max_limit is capped; below it is honoured.
    assert_eq!(
        c.get("/os-hypervisors/detail?limit=50", Some("2.56")).json()["hypervisors"].as_array().unwrap().len(),
        3
    );
    assert_eq!(
        c.get("/os-hypervisors/detail?limit=2", Some("2.56")).json()["hypervisors"].as_array().unwrap().len(),
        2
    );
    assert_eq!(c.get("/os-hypervisors/detail?marker=nope", Some("2.56")).status, 400);
    assert_eq!(c.get("/os-hypervisors/detail?limit=x", Some("2.56")).status, 400);
}

#[test]
fn fields_change_with_the_microversion() {
    let sim = sim(4, 1000);
    let (c, _) = Client::new(&sim);
    let hs = sim.hypervisors();
    // No header: 2.1, integer ids, everything in one answer, no links.
    let old = c.get("/os-hypervisors/detail?limit=1", None).json();
    assert_eq!(old["hypervisors"].as_array().unwrap().len(), 4);
    assert_eq!(old["hypervisors"][0]["id"], 1);
    assert!(old["hypervisors"][0]["cpu_info"].is_string());
    let mid = c.get("/os-hypervisors/detail?with_servers=true", Some("2.56")).json();
    let first = &mid["hypervisors"][0];
    assert_eq!(first["id"], hs[0].uuid.as_str());
    assert_eq!(first["running_vms"], hs[0].running_vms());
    assert_eq!(first["servers"].as_array().unwrap().len(), hs[0].running_vms());
    // Node 3 has no servers: before 2.75 the list is left out.
    assert!(mid["hypervisors"][2].get("servers").is_none());
    let new = c.get("/os-hypervisors/detail?with_servers=1", Some("2.88")).json();
    assert!(new["hypervisors"][0].get("running_vms").is_none());
    assert!(new["hypervisors"][0].get("vcpus").is_none());
    assert_eq!(new["hypervisors"][2]["servers"], json!([]));
    assert!(new["hypervisors"][0].get("uptime").is_some());
    let latest = c.get("/os-hypervisors/detail", Some("latest"));
    assert_eq!(latest.header("OpenStack-API-Version"), Some("compute 2.96"));
    assert_eq!(c.get("/os-hypervisors/detail?with_servers=maybe", Some("2.56")).status, 400);
    let index = c.get("/os-hypervisors", Some("2.56")).json();
    assert!(index["hypervisors"][0].get("service").is_none());
}

#[test]
fn one_hypervisor_and_the_refusals() {
    let sim = sim(3, 1000);
    let (c, _) = Client::new(&sim);
    let hs = sim.hypervisors();
    let r = c.get(&format!("/os-hypervisors/{}", hs[1].uuid), Some("2.56"));
    assert_eq!(r.json()["hypervisor"]["hypervisor_hostname"], hs[1].hostname.as_str());
    assert_eq!(c.get("/os-hypervisors/2", Some("2.56")).status, 400);
    assert_eq!(c.get("/os-hypervisors/2", None).json()["hypervisor"]["id"], 2);
    let missing = c.get("/os-hypervisors/00000000-0000-4000-8000-000000000000", Some("2.56"));
    assert_eq!(missing.status, 404);
    assert!(missing.json()["itemNotFound"]["message"].as_str().unwrap().contains("could not be found"));
    let r = c.get("/os-hypervisors/detail", Some("2.97"));
    assert_eq!(r.status, 406);
    assert_eq!(
        r.json()["computeFault"]["message"],
        "Version 2.97 is not supported by the API. Minimum is 2.1 and maximum is 2.96."
    );
    assert_eq!(c.get("/os-hypervisors/detail", Some("two")).status, 400);
    let anonymous = Conn::plain(sim.port()).request("GET", "/compute/v2.1/os-hypervisors/detail", &[], b"");
    assert_eq!(anonymous.status, 401);
    sim.expire_tokens();
    assert_eq!(c.get("/os-hypervisors/detail", Some("2.56")).status, 401);
    assert_eq!(sim.stats().rejected_tokens, 2);
    assert_eq!(sim.stats().rejected_versions, 1);
}

#[test]
fn faults_by_path() {
    let sim = sim(3, 1000);
    let (c, _) = Client::new(&sim);
    sim.add_fault(FaultRule {
        path_contains: "os-hypervisors".into(),
        op: None,
        times: Some(1),
        fault: Fault::Status {
            status: 503,
            content_type: "application/json".into(),
            body: "{\"serviceUnavailable\": {\"code\": 503, \"message\": \"down\"}}".into(),
            retry_after: None,
        },
    });
    assert_eq!(c.get("/os-hypervisors/detail", Some("2.56")).status, 503);
    assert_eq!(c.get("/os-hypervisors/detail", Some("2.56")).status, 200);
}

#[test]
fn generated_hypervisors_are_distinct() {
    let hs = SimHypervisor::generate(500);
    assert_eq!(hs.iter().map(|h| &h.uuid).collect::<HashSet<_>>().len(), 500);
    assert_eq!(hs.iter().map(|h| &h.hostname).collect::<HashSet<_>>().len(), 500);
}
