//! Surveys over many nodes: live power queries with bounded concurrency,
//! and which hypervisors Watcher will be able to power-manage.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::clients::openstack::nova::Hypervisor;

use crate::metal::{Backend, MetalClient, MetalError, Node, PowerReading, PowerState};

/// A node and, after a live survey, what its BMC said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRow {
    /// The node as listed; after a live survey its power state (and raw
    /// state) are what the query returned.
    #[serde(flatten)]
    pub node: Node,
    /// Why the live query failed; the power state is then `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Asks every node's power state with at most `concurrency` queries in
/// flight. Failed or timed-out queries do not stop the survey: those nodes
/// get `error` and the reason. `progress` is called with the number done.
pub(crate) fn live_power_survey(
    client: &dyn MetalClient,
    nodes: Vec<Node>,
    concurrency: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<NodeRow> {
    let total = nodes.len();
    let results: Vec<Mutex<Option<Result<PowerReading, MetalError>>>> = (0..total).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let workers = concurrency.clamp(1, total.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(node) = nodes.get(i) else { break };
                let outcome = client.read_power(&node.id);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(outcome);
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            });
        }
    });
    nodes
        .into_iter()
        .zip(results)
        .map(|(mut node, result)| {
            let outcome = result.into_inner().ok().flatten();
            match outcome {
                Some(Ok(reading)) => {
                    node.power_state = reading.state;
                    node.raw_power_state = reading.raw;
                    NodeRow { node, error: None }
                }
                Some(Err(e)) => {
                    node.power_state = PowerState::Error;
                    NodeRow { node, error: Some(e.to_string()) }
                }
                None => {
                    node.power_state = PowerState::Error;
                    NodeRow { node, error: Some("not queried".to_owned()) }
                }
            }
        })
        .collect()
}

/// Counts rows by power state, in a fixed order.
pub fn count_by_power_state(rows: &[NodeRow]) -> [(PowerState, usize); 4] {
    let mut counts = [(PowerState::On, 0), (PowerState::Off, 0), (PowerState::Unknown, 0), (PowerState::Error, 0)];
    for row in rows {
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == row.node.power_state) {
            slot.1 += 1;
        }
    }
    counts
}

/// Whether Watcher can power-manage a hypervisor, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HypervisorMatch {
    /// The hypervisor name as given (trimmed), in the list's order.
    pub hypervisor: String,
    /// The node Watcher will pair with this hypervisor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// That node's power state as the node listing gave it (not queried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_state: Option<PowerState>,
    /// For a skipped hypervisor: the node it was probably meant to match.
    #[serde(skip_serializing_if = "Option::is_none")]
    near_miss: Option<String>,
    /// For a skipped hypervisor: why no node pairs with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl HypervisorMatch {
    /// Whether a node pairs with it, so Watcher can power-manage it.
    pub fn managed(&self) -> bool {
        self.node_id.is_some()
    }
}

/// Reads hypervisor names one a line, as `openstack hypervisor list -f value
/// -c "Hypervisor Hostname"` prints them; blank lines and `#` comments skip.
pub fn parse_hypervisor_list(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// Applies Watcher's own rule ([`crate::watcher::pairing::pair`]) to hypervisors
/// known by name only: a MAAS machine manages the hypervisor whose hostname
/// equals the machine's fqdn, exactly; an Ironic node manages the hypervisor
/// whose id is the node's `extra.compute_node_id`. Anything else is
/// skipped, with the nearest miss named (short name vs fqdn, case).
pub(crate) fn match_hypervisors(backend: Backend, nodes: &[Node], hypervisors: &[String]) -> Vec<HypervisorMatch> {
    let named: Vec<Hypervisor> = hypervisors.iter().map(|h| Hypervisor::named(h)).collect();
    let pairing = crate::watcher::pairing::pair(backend, nodes, &named);
    let mut out: Vec<HypervisorMatch> = hypervisors
        .iter()
        .map(|hv| HypervisorMatch {
            hypervisor: hv.clone(),
            node_id: None,
            power_state: None,
            near_miss: None,
            reason: None,
        })
        .collect();
    for m in &pairing.managed {
        if let Some(slot) = out.get_mut(m.hypervisor_index).filter(|s| s.node_id.is_none()) {
            slot.node_id = Some(m.node_id.clone());
            slot.power_state = Some(m.power_state);
        }
    }
    for u in &pairing.unpaired_hypervisors {
        if let Some(slot) = out.get_mut(u.index) {
            slot.near_miss = u.near_miss.and_then(|i| pairing.near_misses.get(i)).map(|m| m.node_key.clone());
            slot.reason = Some(u.reason.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::metal::test_node as node;

    #[test]
    fn maas_matching_is_exact_with_helpful_near_misses() {
        let nodes = [
            node("aaa111", "compute-1", "compute-1.maas", Some("compute-1.maas")),
            node("bbb222", "compute-2", "compute-2.maas", Some("compute-2.maas")),
            node("ccc333", "compute-3", "compute-3.maas", Some("compute-3.maas")),
        ];
        let hvs = parse_hypervisor_list("compute-1.maas\n\n# comment\ncompute-2\nCompute-3.MAAS\ncompute-9.maas\n");
        let m = match_hypervisors(Backend::Maas, &nodes, &hvs);
        assert!(m[0].managed());
        assert_eq!(m[0].node_id.as_deref(), Some("aaa111"));
        assert!(!m[1].managed());
        assert_eq!(m[1].near_miss.as_deref(), Some("compute-2.maas"));
        assert!(m[1].reason.as_deref().unwrap().starts_with("is the short name of machine fqdn `compute-2.maas`"));
        assert!(m[2].reason.as_deref().unwrap().starts_with("differs only in case from `compute-3.maas`"));
        assert_eq!(m[3].reason.as_deref(), Some("no MAAS machine has fqdn `compute-9.maas`"));
        assert_eq!(m[3].near_miss, None);
    }

    #[test]
    fn ironic_matching_uses_compute_node_id() {
        let nodes = [node("uuid-1", "bm-1", "", Some("hv-id-1")), node("uuid-2", "bm-2", "", None)];
        let m = match_hypervisors(Backend::Ironic, &nodes, &["hv-id-1".into(), "bm-2".into(), "hv-x".into()]);
        assert!(m[0].managed());
        assert!(m[1].reason.as_deref().unwrap().contains("has no extra.compute_node_id"));
        assert!(m[2].reason.as_deref().unwrap().starts_with("no Ironic node has extra.compute_node_id `hv-x`"));
    }
}
