//! The simulated Ironic's nodes, the settings of a simulator, and what it
//! has served.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::openstack::uuid_for;

/// A bare-metal node known to the simulated Ironic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimNode {
    pub uuid: String,
    pub name: Option<String>,
    /// `"power on"`, `"power off"`, `"error"`, or `None` when Ironic cannot
    /// tell.
    pub power_state: Option<String>,
    /// `"active"`, `"available"`, `"manageable"`, `"cleaning"`, ...
    pub provision_state: String,
    pub maintenance: bool,
    /// `extra.compute_node_id`: the Nova hypervisor id Watcher pairs the node
    /// with.
    pub compute_node_id: Option<String>,
}

impl SimNode {
    /// `n` nodes, the same every time: distinct version-4 style UUIDs, names
    /// `bm-0001`.. Every 5th node is `available` and powered off with no
    /// `compute_node_id`; the others are `active`, powered on, with
    /// `compute_node_id` `hv-0001`.. (the node's own number). None is in
    /// maintenance.
    pub fn generate(n: usize) -> Vec<SimNode> {
        (1..=n).map(SimNode::generated).collect()
    }

    fn generated(i: usize) -> SimNode {
        let available = i.is_multiple_of(5);
        SimNode {
            uuid: uuid_for(0x6e6f_6465, i as u64),
            name: Some(format!("bm-{i:04}")),
            power_state: Some(if available { "power off" } else { "power on" }.into()),
            provision_state: if available { "available" } else { "active" }.into(),
            maintenance: false,
            compute_node_id: (!available).then(|| format!("hv-{i:04}")),
        }
    }
}

/// Settings of a simulated Ironic (and the Keystone in front of it).
#[derive(Clone, Debug)]
pub struct IronicSimConfig {
    /// The nodes, in the order Ironic lists them.
    pub nodes: Vec<SimNode>,
    /// Keystone users (name, password), all in domain `Default` (id
    /// `default`) with a role on project `service` of that domain.
    pub users: Vec<(String, String)>,
    /// Application credentials (id, secret), owned by the first user and
    /// scoped to project `service`. The id is also the credential's name.
    pub app_credentials: Vec<(String, String)>,
    /// How long a token lives; Ironic answers 401 to an expired token.
    pub token_ttl: Duration,
    /// Ironic's `[api] max_limit`: the most nodes in one page. A full page
    /// carries a `next` link.
    pub page_size: usize,
    /// The microversion range served, e.g. `1.1` to `1.99`; requests outside
    /// it get 406.
    pub min_version: String,
    pub max_version: String,
    /// How long after an accepted power request the power state changes;
    /// `target_power_state` shows the request meanwhile.
    pub power_delay: Duration,
    /// The region of every catalog endpoint.
    pub region: String,
}

impl Default for IronicSimConfig {
    fn default() -> IronicSimConfig {
        IronicSimConfig {
            nodes: SimNode::generate(10),
            users: vec![("watcher".into(), "watcher-pass".into())],
            app_credentials: Vec::new(),
            token_ttl: Duration::from_secs(3600),
            page_size: 1000,
            min_version: "1.1".into(),
            max_version: "1.99".into(),
            power_delay: Duration::ZERO,
            region: "RegionOne".into(),
        }
    }
}

/// What the simulator has served.
#[derive(Clone, Debug, Default)]
pub struct IronicStats {
    /// HTTP requests received and answered.
    pub requests: usize,
    /// Requests per endpoint: `POST /v3/auth/tokens`, `GET /v1/nodes`,
    /// `GET /v1/nodes/detail`, `GET /v1/nodes/{id}`,
    /// `GET /v1/nodes/{id}/states`, `PUT /v1/nodes/{id}/states/power`,
    /// `GET /v1`, `GET /` (Ironic's root), `GET /v3`. Other paths are counted
    /// as `METHOD /full/path`. Refused requests count too.
    pub by_endpoint: BTreeMap<String, usize>,
    /// Ironic API requests per catalog interface they came in on (`public`,
    /// `internal`, `admin`).
    pub by_interface: BTreeMap<String, usize>,
    /// Tokens Keystone issued.
    pub tokens_issued: usize,
    /// Keystone requests refused (400, 401, 404).
    pub rejected_auth: usize,
    /// Ironic requests refused for a missing, unknown or expired token.
    pub rejected_tokens: usize,
    /// Ironic requests refused with 406 (microversion out of range).
    pub rejected_versions: usize,
    /// The `X-OpenStack-Ironic-API-Version` of the latest Ironic request
    /// that sent one.
    pub last_microversion: Option<String>,
    /// Ironic requests without a microversion header.
    pub requests_without_microversion: usize,
}

/// Whether `s` looks like a UUID (Ironic's `is_uuid_like`): 32 hex digits,
/// dashes allowed in the usual places or not at all.
pub(crate) fn is_uuid_like(s: &str) -> bool {
    let plain: String = s.chars().filter(|c| *c != '-').collect();
    let dashed_ok = s.len() == 32 || (s.len() == 36 && [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-'));
    plain.len() == 32 && plain.bytes().all(|b| b.is_ascii_hexdigit()) && dashed_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_nodes() {
        let nodes = SimNode::generate(20);
        assert_eq!(nodes, SimNode::generate(20));
        let uuids: HashSet<_> = nodes.iter().map(|n| n.uuid.clone()).collect();
        assert_eq!(uuids.len(), 20);
        assert!(nodes.iter().all(|n| is_uuid_like(&n.uuid) && n.uuid.len() == 36));
        assert_eq!(nodes[0].name.as_deref(), Some("bm-0001"));
        assert_eq!(
            (nodes[0].provision_state.as_str(), nodes[0].power_state.as_deref(), nodes[0].compute_node_id.as_deref()),
            ("active", Some("power on"), Some("hv-0001"))
        );
        assert_eq!(
            (nodes[4].provision_state.as_str(), nodes[4].power_state.as_deref(), nodes[4].compute_node_id.as_deref()),
            ("available", Some("power off"), None)
        );
    }

    #[test]
    fn uuid_like() {
        assert!(is_uuid_like("1be26c0b-03f2-4d2e-ae87-c02d7f33c123"));
        assert!(is_uuid_like("1be26c0b03f24d2eae87c02d7f33c123"));
        assert!(!is_uuid_like("bm-0001"));
        assert!(!is_uuid_like("1be26c0b-03f2-4d2e-ae87-c02d7f33c12"));
        assert!(!is_uuid_like("1be26c0b-03f2-4d2e-ae87c-02d7f33c123"));
    }
}
