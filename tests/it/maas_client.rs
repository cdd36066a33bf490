//! The MAAS client library against the simulator: every call, and the
//! failures that only the library can set up (name resolution).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metal_sim::{BmcFailure, MaasSim, MaasSimConfig, PowerState, SimMachine};
use watcher_metal::clients::http::TransportError;
use watcher_metal::clients::maas::api_key::MaasApiKey;
use watcher_metal::clients::maas::url::MaasUrl;
use watcher_metal::clients::maas::{ClientOptions, MaasClient, MaasError, MachineFilter, StopMode};

fn client_for(sim: &MaasSim) -> MaasClient {
    client_with(&sim.base_url(), &sim.admin_key(), ClientOptions::new(Duration::from_secs(10)))
}

fn client_with(url: &str, key: &str, options: ClientOptions) -> MaasClient {
    MaasClient::new(MaasUrl::parse(url).unwrap(), MaasApiKey::parse(key).unwrap().key, options).unwrap()
}

#[test]
fn lists_and_filters_machines() {
    let sim = MaasSim::start(MaasSimConfig { machines: SimMachine::generate(30), ..Default::default() }).unwrap();
    let client = client_for(&sim);
    let all = client.machines(&MachineFilter::default()).unwrap();
    assert_eq!(all.len(), 30);
    let expected = sim.machines();
    assert_eq!(all[0].system_id, expected[0].system_id);
    assert_eq!(all[0].fqdn, expected[0].fqdn());
    assert_eq!(all[0].hostname, expected[0].hostname);

    let by_host = client
        .machines(&MachineFilter { hostnames: vec![expected[3].hostname.clone()], ..Default::default() })
        .unwrap();
    assert_eq!(by_host.len(), 1);
    assert_eq!(by_host[0].system_id, expected[3].system_id);

    let by_ids = client
        .machines(&MachineFilter {
            ids: vec![expected[1].system_id.clone(), expected[2].system_id.clone()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_ids.len(), 2);

    let zone_b = client.machines(&MachineFilter { zone: Some("zone-b".into()), ..Default::default() }).unwrap();
    assert_eq!(zone_b.len(), expected.iter().filter(|m| m.zone == "zone-b").count());
    assert!(zone_b.iter().all(|m| m.zone.as_ref().is_some_and(|z| z.name == "zone-b")));

    let err = client.machines(&MachineFilter { zone: Some("nowhere".into()), ..Default::default() }).unwrap_err();
    assert!(matches!(&err, MaasError::BadRequest { detail } if detail.contains("No such zone")), "{err}");

    let one = client.machine(&expected[5].system_id).unwrap();
    assert_eq!(one.hostname, expected[5].hostname);
    let missing = client.machine("nosuch").unwrap_err();
    assert!(matches!(missing, MaasError::NotFound { .. }), "{missing}");
}

#[test]
fn power_actions_follow_maas_semantics() {
    let sim = MaasSim::start(MaasSimConfig { machines: SimMachine::generate(30), ..Default::default() }).unwrap();
    let client = client_for(&sim);
    let machines = sim.machines();
    let deployed = machines.iter().find(|m| m.owner.is_some() && m.power_type == "ipmi").unwrap();
    let ready = machines.iter().find(|m| m.owner.is_none()).unwrap();
    let manual = machines.iter().find(|m| m.power_type == "manual" && m.owner.is_some()).unwrap();

    assert_eq!(client.query_power_state(&deployed.system_id).unwrap(), "on");
    let before = client.power_off(&deployed.system_id, StopMode::Hard).unwrap().expect("a machine");
    assert_eq!(before.power_state, "on", "MAAS returns the state from before the action");
    assert_eq!(sim.machine(&deployed.system_id).unwrap().power_state, PowerState::Off);
    client.power_on(&deployed.system_id).unwrap();
    assert_eq!(sim.machine(&deployed.system_id).unwrap().power_state, PowerState::On);

    let err = client.power_on(&ready.system_id).unwrap_err();
    assert_eq!(err, MaasError::Conflict { detail: "Can't start node: it hasn't been allocated.".into() });

    // Manual power: MAAS answers `null`.
    assert_eq!(client.power_off(&manual.system_id, StopMode::Soft).unwrap(), None);
}

#[test]
fn bmc_failures_surface_as_server_errors() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let client = client_for(&sim);
    let id = sim.machines()[0].system_id.clone();
    sim.set_bmc_failure(&id, Some(BmcFailure::Unreachable));
    let err = client.query_power_state(&id).unwrap_err();
    assert!(matches!(&err, MaasError::Server { status: 503, detail } if detail.contains("BMC")), "{err}");
    sim.set_bmc_failure(&id, Some(BmcFailure::Timeout));
    assert!(matches!(client.query_power_state(&id).unwrap_err(), MaasError::Server { status: 504, .. }));
    sim.set_bmc_failure(&id, None);
    assert_eq!(client.query_power_state(&id).unwrap(), "on");
}

/// A resolver that fails every name, so the test never queries DNS.
struct NoSuchHost;

impl reqwest::dns::Resolve for NoSuchHost {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(std::future::ready(Err::<Box<dyn Iterator<Item = SocketAddr> + Send>, _>("no such host".into())))
    }
}

#[test]
fn unresolvable_host_is_a_dns_error() {
    let mut options = ClientOptions::new(Duration::from_secs(5));
    options.http.resolver = Some(Arc::new(NoSuchHost));
    let client = client_with("http://maas.invalid:5240/MAAS", "a:b:c", options);
    let err = client.version().unwrap_err();
    assert_eq!(err, MaasError::Transport(TransportError::Dns { host: "maas.invalid".into() }));
    assert_eq!(err.to_string(), "cannot resolve host name `maas.invalid`");
    assert_eq!(watcher_metal::exit_codes::maas(&err), watcher_metal::exit_codes::DNS);
}

#[test]
fn oversized_answers_are_capped() {
    // A listing is streamed through the cap; an endless body ends in TooLarge
    // or a timeout, never in unbounded memory.
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    sim.add_fault(metal_sim::FaultRule {
        path_contains: "version/".into(),
        op: None,
        times: None,
        fault: metal_sim::Fault::EndlessBody,
    });
    let client = client_with(&sim.base_url(), &sim.admin_key(), ClientOptions::new(Duration::from_secs(3)));
    let err = client.version().unwrap_err();
    assert!(
        matches!(
            err,
            MaasError::Transport(TransportError::TooLarge { .. } | TransportError::Timeout { .. })
                | MaasError::NotMaas { .. }
        ),
        "{err}"
    );
}
