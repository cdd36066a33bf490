//! Listing the nodes, for both faces: the backend's listing (with Nova's
//! hypervisors downloaded at the same time when asked), an optional live
//! power survey (with bounded concurrency), and what Watcher would pair:
//! with a named hypervisor list, or with Nova's own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::clients::openstack::nova::HypervisorListing;
use crate::clients::openstack::service::{OpenStackError, Service};
use crate::config::CharmConfig;
use crate::metal::{Backend, MetalClient, MetalError, Node, PowerReading, PowerState};
use crate::ops::backend;
use crate::ops::Error;
use crate::watcher::pairing::{self, NamedPair, Pairing};

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Ask each node's power now, instead of the service's record.
    pub live: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Match these hypervisor hostnames to nodes, as Watcher would.
    pub hypervisors: Option<Vec<String>>,
    /// Pair the nodes with Nova's hypervisors (ignored with `hypervisors`).
    pub nova: bool,
    /// How the services are reached, as Watcher reaches them.
    pub reach: backend::Reach,
}

/// What was listed.
#[derive(Debug)]
pub struct Listing {
    /// The backend listed: MAAS when `maas-url` is set, else Ironic.
    pub backend: Backend,
    /// Every node, in the backend's order; with [`Request::live`], with the
    /// power state just asked (or why the query failed).
    pub rows: Vec<NodeRow>,
    /// How the named hypervisors pair, with [`Request::hypervisors`].
    pub named: Option<Vec<NamedPair>>,
    /// Nova's hypervisors and the pairing, with [`Request::nova`].
    pub nova: Option<(HypervisorListing, Pairing)>,
    /// Why the listing may be empty though nodes exist (the backend's
    /// access rules), when it is empty.
    pub empty_hint: Option<String>,
}

/// Lists the nodes of `config`'s backend. `progress(done, total)` follows
/// a live survey.
pub fn list(
    config: &CharmConfig,
    request: &Request,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Listing, Error> {
    // Nova's settings are checked before any request.
    let nova = if request.nova && request.hypervisors.is_none() {
        Some(backend::nova_client(config, &request.reach)?)
    } else {
        None
    };
    let client = backend::connect(config, &request.reach, request.concurrency)?;
    // The two listings download at the same time; the backend's nodes
    // become rows as they stream in.
    let mut rows = Vec::new();
    let (listed, listing) = std::thread::scope(|scope| {
        let listing = nova.as_ref().map(|nova| scope.spawn(|| nova.list_hypervisors()));
        let listed = client.each_node(&mut |node| rows.push(NodeRow { node, error: None }));
        let listing = listing.map(|l| l.join().unwrap_or_else(|_| Err(nova_stopped())));
        (listed, listing)
    });
    listed?;
    let listing = listing.transpose()?;
    let empty_hint = if rows.is_empty() { client.empty_listing_hint() } else { None };
    if request.live {
        let total = rows.len();
        let nodes = rows.into_iter().map(|row| row.node).collect();
        rows = live_power_survey(client.as_ref(), nodes, request.concurrency, &|done| progress(done, total));
    }
    let backend = client.backend();
    let (mut named, mut nova) = (None, None);
    if request.hypervisors.is_some() || listing.is_some() {
        // The pairings read the nodes where they are: the rows are taken
        // apart and put back together, not copied.
        let (nodes, errors): (Vec<Node>, Vec<Option<String>>) = rows.into_iter().map(|r| (r.node, r.error)).unzip();
        named = request.hypervisors.as_ref().map(|names| pairing::pair_named(backend, &nodes, names));
        nova = listing.map(|listing| {
            let pairing = pairing::pair(backend, &nodes, &listing.hypervisors);
            (listing, pairing)
        });
        rows = nodes.into_iter().zip(errors).map(|(node, error)| NodeRow { node, error }).collect();
    }
    Ok(Listing { backend, rows, named, nova, empty_hint })
}

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

fn nova_stopped() -> OpenStackError {
    OpenStackError::unexpected(Service::Nova, "the Nova listing stopped unexpectedly")
}
