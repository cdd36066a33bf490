//! The simulated Nova's hypervisors, the settings of a simulator, and what
//! it has served.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::openstack::uuid_for;

/// A hypervisor (compute node) known to the simulated Nova.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimHypervisor {
    /// The compute node's UUID: its `id` from microversion 2.53.
    pub uuid: String,
    /// Its integer id: its `id` before 2.53.
    pub int_id: u64,
    /// `hypervisor_hostname`.
    pub hostname: String,
    /// The compute service's host (`service.host`).
    pub service_host: String,
    /// `up` or `down`.
    pub state: String,
    /// `enabled` or `disabled`.
    pub status: String,
    /// `QEMU`, `ironic`, ...
    pub hypervisor_type: String,
    /// The servers on it, (name, uuid); `running_vms` is their number.
    pub servers: Vec<(String, String)>,
}

impl SimHypervisor {
    /// A hypervisor named `hostname`, up, enabled, QEMU, `vms` servers; its
    /// ids a fixed function of `i`.
    pub fn new(i: u64, hostname: &str, vms: usize) -> SimHypervisor {
        SimHypervisor {
            uuid: uuid_for(0x6876_7276, i),
            int_id: i,
            hostname: hostname.to_owned(),
            service_host: hostname.split('.').next().unwrap_or("").to_owned(),
            state: "up".into(),
            status: "enabled".into(),
            hypervisor_type: "QEMU".into(),
            servers: (0..vms).map(|v| (format!("vm-{i}-{v}"), uuid_for(0x7365_7276 ^ i, v as u64))).collect(),
        }
    }

    /// `n` hypervisors, the same every time, whose hostnames are the fqdns
    /// of the MAAS simulator's generated machines (`node-0001.maas`..):
    /// ids distinct UUIDs (integers 1..); node i runs `i % 3` servers; every
    /// 11th is `down`, every 13th `disabled`.
    pub fn generate(n: usize) -> Vec<SimHypervisor> {
        (1..=n as u64)
            .map(|i| {
                let mut h = SimHypervisor::new(i, &format!("node-{i:04}.maas"), (i % 3) as usize);
                if i % 11 == 0 {
                    h.state = "down".into();
                }
                if i % 13 == 0 {
                    h.status = "disabled".into();
                }
                h
            })
            .collect()
    }

    pub fn running_vms(&self) -> usize {
        self.servers.len()
    }
}

/// Settings of a simulated Nova (and the Keystone in front of it).
#[derive(Clone, Debug)]
pub struct NovaSimConfig {
    /// The hypervisors, in the order Nova lists them.
    pub hypervisors: Vec<SimHypervisor>,
    /// Keystone users (name, password), in domain `Default` with a role on
    /// project `service`.
    pub users: Vec<(String, String)>,
    pub token_ttl: Duration,
    /// Nova's `[api] max_limit`: the most hypervisors a page holds, whatever
    /// `limit` asks; a full page carries a `next` link (from 2.33).
    pub page_size: usize,
    /// The microversion range served (Nova 2024.1: 2.1 to 2.96); requests
    /// outside it get 406.
    pub min_version: String,
    pub max_version: String,
    /// The region of every catalog endpoint.
    pub region: String,
}

impl Default for NovaSimConfig {
    fn default() -> NovaSimConfig {
        NovaSimConfig {
            hypervisors: SimHypervisor::generate(10),
            users: vec![("watcher".into(), "watcher-pass".into())],
            token_ttl: Duration::from_secs(3600),
            page_size: 1000,
            min_version: "2.1".into(),
            max_version: "2.96".into(),
            region: "RegionOne".into(),
        }
    }
}

/// What the simulator has served.
#[derive(Clone, Debug, Default)]
pub struct NovaStats {
    /// HTTP requests received and answered (faulty answers included).
    pub requests: usize,
    /// Requests per endpoint: `POST /v3/auth/tokens`,
    /// `GET /os-hypervisors/detail`, `GET /os-hypervisors`,
    /// `GET /os-hypervisors/{id}`, `GET /` (compute's root); others as
    /// `METHOD /full/path`.
    pub by_endpoint: BTreeMap<String, usize>,
    /// Nova requests per catalog interface (`public`, `internal`, `admin`).
    pub by_interface: BTreeMap<String, usize>,
    pub tokens_issued: usize,
    /// Keystone requests refused.
    pub rejected_auth: usize,
    /// Nova requests refused for a missing, unknown or expired token.
    pub rejected_tokens: usize,
    /// Nova requests refused with 406.
    pub rejected_versions: usize,
    /// The microversion of the latest Nova request (as negotiated).
    pub last_microversion: Option<String>,
    /// Hypervisor listing pages served.
    pub pages: usize,
    /// Listing requests that asked for `with_servers`.
    pub with_servers_requests: usize,
    /// Listing requests that sent `limit`.
    pub limit_requests: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_hypervisors() {
        let hs = SimHypervisor::generate(30);
        assert_eq!(hs, SimHypervisor::generate(30));
        assert_eq!(hs.iter().map(|h| h.uuid.clone()).collect::<HashSet<_>>().len(), 30);
        assert_eq!(hs[0].hostname, "node-0001.maas");
        assert_eq!(hs[0].service_host, "node-0001");
        assert_eq!((hs[0].running_vms(), hs[2].running_vms()), (1, 0));
        assert_eq!((hs[10].state.as_str(), hs[12].status.as_str()), ("down", "disabled"));
        assert_eq!(hs[0].uuid.len(), 36);
    }
}
