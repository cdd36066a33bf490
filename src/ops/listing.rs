//! Listing the nodes, for both faces: the backend's listing (with Nova's
//! hypervisors downloaded at the same time when asked), an optional live
//! power survey, and what Watcher would pair: with a named hypervisor list,
//! or with Nova's own.

use crate::clients::openstack::nova::HypervisorListing;
use crate::clients::openstack::service::{OpenStackError, Service};
use crate::metal::Backend;
use crate::ops::backend;
use crate::ops::survey::{self, HypervisorMatch, NodeRow};
use crate::watcher::pairing::{self, Pairing};
use crate::{config::CharmConfig, Error};

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
}

/// What was listed.
#[derive(Debug)]
pub struct Listing {
    /// The backend listed: MAAS when `maas-url` is set, else Ironic.
    pub backend: Backend,
    /// Every node, in the backend's order; with [`Request::live`], with the
    /// power state just asked (or why the query failed).
    pub rows: Vec<NodeRow>,
    /// How the named hypervisors match, with [`Request::hypervisors`].
    pub matches: Option<Vec<HypervisorMatch>>,
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
    let nova = if request.nova && request.hypervisors.is_none() { Some(backend::nova_client(config)?) } else { None };
    let client = backend::connect(config, request.concurrency)?;
    // The two listings download at the same time.
    let (nodes, listing) = std::thread::scope(|scope| {
        let listing = nova.as_ref().map(|nova| scope.spawn(|| nova.list_hypervisors()));
        let nodes = client.list_nodes();
        let listing = listing.map(|l| l.join().unwrap_or_else(|_| Err(nova_stopped())));
        (nodes, listing)
    });
    let nodes = nodes?;
    let listing = listing.transpose()?;
    let empty_hint = if nodes.is_empty() { client.empty_listing_hint() } else { None };
    let rows = if request.live {
        let total = nodes.len();
        survey::live_power_survey(client.as_ref(), nodes, request.concurrency, &|done| progress(done, total))
    } else {
        nodes.into_iter().map(|node| NodeRow { node, error: None }).collect()
    };
    let backend = client.backend();
    let matches = request.hypervisors.as_ref().map(|names| {
        let nodes: Vec<_> = rows.iter().map(|r| r.node.clone()).collect();
        survey::match_hypervisors(backend, &nodes, names)
    });
    let nova = listing.map(|listing| {
        let nodes: Vec<_> = rows.iter().map(|r| r.node.clone()).collect();
        let pairing = pairing::pair(backend, &nodes, &listing.hypervisors);
        (listing, pairing)
    });
    Ok(Listing { backend, rows, matches, nova, empty_hint })
}

fn nova_stopped() -> OpenStackError {
    OpenStackError::unexpected(Service::Nova, "the Nova listing stopped unexpectedly")
}
