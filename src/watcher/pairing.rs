//! Watcher's pairing of bare-metal nodes with Nova hypervisors, and what its
//! saving_energy strategy would do with each pair.
//!
//! The rule is Watcher 12.0.0's (`watcher.common.metal_helper`):
//! - MAAS: `MaasHelper.list_compute_nodes` maps every hypervisor by
//!   `hypervisor_hostname` (a later duplicate replaces an earlier one) and
//!   keeps a machine only when its `fqdn` is a key of that map, exactly;
//!   any other machine is one INFO line ("Cannot find hypervisor") and is
//!   skipped.
//! - Ironic: `IronicHelper.list_compute_nodes` skips a node without
//!   `extra.compute_node_id` (a WARNING) and asks Nova for the hypervisor
//!   with that id; an id Nova does not know makes that call, and so the
//!   whole listing, fail.
//!
//! saving_energy (`SavingEnergy.get_hosts_pool`) then sorts each pair: a
//! hypervisor of type `ironic` is not in its compute model (skipped); an
//! Ironic node whose hypervisor is not `up` is skipped; with no running VMs
//! a node that is on is a power-off candidate, one that is off a power-on
//! reserve, any other power state is skipped; with VMs it is busy. It does
//! not look at the hypervisor's status (enabled or disabled).
//!
//! Everything here is a pure function of the two listings, in time linear
//! in their lengths.

use std::collections::HashMap;

use serde::Serialize;

use crate::clients::openstack::nova::Hypervisor;
use crate::metal::{Backend, Node, PowerState};

/// saving_energy's default `free_used_percent`.
const FREE_USED_PERCENT: f64 = 10.0;
/// saving_energy's default `min_free_hosts_num`.
const MIN_FREE_HOSTS_NUM: f64 = 1.0;

/// Which of saving_energy's pools a pair falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SavingEnergy {
    /// On, no running VMs: saving_energy may power it off.
    PowerOffCandidate,
    /// Off, no running VMs: saving_energy may power it on.
    PowerOnReserve,
    /// Has running VMs: left alone.
    Busy,
    /// Skipped by the strategy (the note says why).
    Ignored,
}

impl SavingEnergy {
    /// The pool in words for a table, e.g. `power-off candidate`.
    pub fn as_str(self) -> &'static str {
        match self {
            SavingEnergy::PowerOffCandidate => "power-off candidate",
            SavingEnergy::PowerOnReserve => "power-on reserve",
            SavingEnergy::Busy => "busy",
            SavingEnergy::Ignored => "ignored",
        }
    }
}

/// A node Watcher manages, with its hypervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Managed {
    /// MAAS `system_id` or Ironic uuid: what Watcher's actions name.
    pub node_id: String,
    /// MAAS fqdn, or Ironic name.
    pub node_name: String,
    /// The node's power state as its listing gave it.
    pub power_state: PowerState,
    /// The hypervisor's position in the list given to `pair`.
    pub hypervisor_index: usize,
    /// The hypervisor's Nova id.
    hypervisor_id: String,
    /// The hypervisor's `hypervisor_hostname`.
    hypervisor_hostname: String,
    /// The hypervisor's `up`/`down`; `None` when unknown.
    state: Option<String>,
    /// The hypervisor's `enabled`/`disabled`; `None` when unknown.
    status: Option<String>,
    /// VMs running on the hypervisor; `None` when unknown.
    running_vms: Option<u64>,
    /// `None` when it cannot be told (VM count or state unknown).
    pub saving_energy: Option<SavingEnergy>,
    /// Why it is ignored or unknown; that Nova has it disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The hypervisor came on a later page of Nova's listing than the first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    beyond_first_page: bool,
}

/// How a name nearly matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
enum MissKind {
    /// The hypervisor hostname and a machine's fqdn differ only in case.
    Case,
    /// The hypervisor hostname is a machine's short name (no domain).
    ShortName,
    /// Same short name, another domain.
    OtherDomain,
    /// An Ironic node named like the hypervisor has no `compute_node_id`.
    NoComputeNodeId,
    /// An Ironic node's `compute_node_id` is the hypervisor's hostname, not
    /// its id.
    HostnameNotId,
}

/// A hypervisor that was probably meant to pair with a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearMiss {
    /// How the names differ.
    kind: MissKind,
    /// The hypervisor's `hypervisor_hostname`.
    pub hypervisor: String,
    /// The hypervisor's Nova id.
    hypervisor_id: String,
    /// The node's MAAS `system_id` or Ironic uuid.
    node_id: String,
    /// What Watcher compared: the machine's fqdn, or the node's
    /// `compute_node_id` (or name, when it has none).
    pub(crate) node_key: String,
    /// Whether that node is paired with another hypervisor already.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    node_paired: bool,
    /// One line, e.g. "is the short name of machine fqdn `x` (node y);
    /// Watcher compares exactly".
    pub message: String,
}

/// A node Watcher skips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnpairedNode {
    /// MAAS `system_id` or Ironic uuid.
    pub node_id: String,
    /// MAAS fqdn (the hostname when it has none), or Ironic name.
    pub node_name: String,
    /// One line: why Watcher skips it, naming the near miss if there is one.
    pub reason: String,
    /// Watcher's whole node listing fails because of it (Ironic: a
    /// `compute_node_id` Nova does not know).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    breaks_listing: bool,
}

/// A hypervisor no node pairs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnpairedHypervisor {
    /// Its position in the list given to `pair`.
    pub index: usize,
    /// Its `hypervisor_hostname`.
    hostname: String,
    /// Its Nova id.
    id: String,
    /// One line: why no node pairs with it.
    pub reason: String,
    /// Index into [`Pairing::near_misses`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near_miss: Option<usize>,
}

/// What saving_energy would plan with its default parameters, over the
/// pairs whose pool is known.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SavingEnergyPlan {
    /// The `free_used_percent` planned with, in percent of busy nodes.
    free_used_percent: f64,
    /// The `min_free_hosts_num` planned with.
    min_free_hosts_num: f64,
    /// Free nodes it keeps on: `int(max(busy * percent / 100, min))`.
    pub keep_on: usize,
    /// How many candidates it powers off (chosen at random).
    pub power_off: usize,
    /// How many reserves it powers on (chosen at random).
    pub power_on: usize,
}

/// The counts a summary needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Nodes listed.
    pub(crate) nodes: usize,
    /// Hypervisors listed.
    pub hypervisors: usize,
    /// Nodes Watcher manages (pairs).
    pub managed: usize,
    /// Unpaired hypervisors with a near miss.
    pub near_misses: usize,
    /// Nodes Watcher skips.
    pub unpaired_nodes: usize,
    /// Hypervisors no node pairs with.
    unpaired_hypervisors: usize,
    /// Pairs in [`SavingEnergy::PowerOffCandidate`].
    pub power_off_candidates: usize,
    /// Pairs in [`SavingEnergy::PowerOnReserve`].
    pub power_on_reserve: usize,
    /// Pairs in [`SavingEnergy::Busy`].
    pub busy: usize,
    /// Pairs in [`SavingEnergy::Ignored`].
    pub ignored: usize,
    /// Pairs whose pool cannot be told.
    pub unknown: usize,
    /// Pairs whose hypervisor is past the first page of Nova's listing.
    beyond_first_page: usize,
    /// Nodes that make Watcher's whole listing fail.
    breaking_nodes: usize,
}

/// Watcher's pairing of one node listing with one hypervisor listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pairing {
    /// The backend whose rule was applied.
    pub backend: Backend,
    /// The counts of everything below.
    pub summary: Summary,
    /// What Watcher's `list_compute_nodes` returns, in node order.
    pub managed: Vec<Managed>,
    /// At most one for each unpaired hypervisor, in hypervisor order.
    pub near_misses: Vec<NearMiss>,
    /// The nodes Watcher skips, in node order.
    pub unpaired_nodes: Vec<UnpairedNode>,
    /// The hypervisors no node pairs with, in hypervisor order.
    pub unpaired_hypervisors: Vec<UnpairedHypervisor>,
    /// What saving_energy would do with the pairs.
    pub plan: SavingEnergyPlan,
    /// Things about the whole pairing (one line each).
    pub warnings: Vec<String>,
}

fn short_lower(name: &str) -> String {
    name.split('.').next().unwrap_or("").to_ascii_lowercase()
}

/// Pairs `nodes` with `hypervisors` as Watcher does for `backend`, and says
/// what saving_energy would do with each pair.
pub(crate) fn pair(backend: Backend, nodes: &[Node], hypervisors: &[Hypervisor]) -> Pairing {
    let mut managed = Vec::new();
    let mut unpaired_nodes = Vec::new();
    // The hypervisor each node pairs with, and which hypervisors are taken.
    let mut node_pair: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut hv_paired = vec![false; hypervisors.len()];
    // Hypervisors Watcher's hostname map drops (an earlier duplicate).
    let mut shadowed: HashMap<usize, usize> = HashMap::new();
    let mut breaking = Vec::new();

    match backend {
        Backend::Maas => {
            let mut by_hostname: HashMap<&str, usize> = HashMap::with_capacity(hypervisors.len());
            for (i, hv) in hypervisors.iter().enumerate() {
                if let Some(earlier) = by_hostname.insert(hv.hostname.as_str(), i) {
                    shadowed.insert(earlier, i);
                }
            }
            for (n, node) in nodes.iter().enumerate() {
                if let Some(&i) = (!node.fqdn.is_empty()).then(|| by_hostname.get(node.fqdn.as_str())).flatten() {
                    node_pair[n] = Some(i);
                    hv_paired[i] = true;
                }
            }
        }
        Backend::Ironic => {
            let by_id: HashMap<&str, usize> = hypervisors.iter().enumerate().map(|(i, h)| (h.id.as_str(), i)).collect();
            for (n, node) in nodes.iter().enumerate() {
                if let Some(&i) = node.hypervisor_match.as_deref().and_then(|id| by_id.get(id)) {
                    node_pair[n] = Some(i);
                    hv_paired[i] = true;
                } else if node.hypervisor_match.is_some() {
                    breaking.push(n);
                }
            }
        }
    }

    // Near misses, for each hypervisor no node pairs with.
    let mut by_lower: HashMap<String, Vec<usize>> = HashMap::new();
    let mut by_short: HashMap<String, Vec<usize>> = HashMap::new();
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (n, node) in nodes.iter().enumerate() {
        match backend {
            Backend::Maas if !node.fqdn.is_empty() => {
                by_lower.entry(node.fqdn.to_ascii_lowercase()).or_default().push(n);
                by_short.entry(short_lower(&node.fqdn)).or_default().push(n);
            }
            Backend::Maas => {}
            Backend::Ironic => {
                if node.hypervisor_match.is_none() && !node.hostname.is_empty() {
                    by_lower.entry(node.hostname.to_ascii_lowercase()).or_default().push(n);
                    by_short.entry(short_lower(&node.hostname)).or_default().push(n);
                }
                if let Some(key) = node.hypervisor_match.as_deref() {
                    by_key.entry(key).or_default().push(n);
                }
            }
        }
    }
    // Prefer a node that is not paired already.
    let pick = |candidates: Option<&Vec<usize>>| -> Option<usize> {
        let c = candidates?;
        c.iter().copied().find(|&n| node_pair[n].is_none()).or_else(|| c.first().copied())
    };

    let mut near_misses = Vec::new();
    let mut unpaired_hypervisors = Vec::new();
    // The near miss that names each node, for its own reason.
    let mut node_miss: HashMap<usize, usize> = HashMap::new();
    for (i, hv) in hypervisors.iter().enumerate() {
        if hv_paired[i] {
            continue;
        }
        if let Some(&later) = shadowed.get(&i) {
            // Only when the later one of the same name is what Watcher keeps.
            unpaired_hypervisors.push(UnpairedHypervisor {
                index: i,
                hostname: hv.hostname.clone(),
                id: hv.id.clone(),
                reason: format!(
                    "hypervisor {} has the same hostname and is listed later; Watcher keeps only the last one",
                    hypervisors[later].id
                ),
                near_miss: None,
            });
            continue;
        }
        let found = match backend {
            Backend::Maas => maas_near_miss(hv, nodes, &by_lower, &by_short, &pick),
            Backend::Ironic => ironic_near_miss(hv, nodes, &by_lower, &by_short, &by_key, &pick),
        };
        let (near_miss, reason) = match found {
            Some((kind, n, key, message)) => {
                let index = near_misses.len();
                node_miss.entry(n).or_insert(index);
                near_misses.push(NearMiss {
                    kind,
                    hypervisor: hv.hostname.clone(),
                    hypervisor_id: hv.id.clone(),
                    node_id: nodes[n].id.clone(),
                    node_key: key,
                    node_paired: node_pair[n].is_some(),
                    message: message.clone(),
                });
                (Some(index), message)
            }
            None => (None, no_match_reason(backend, hv)),
        };
        unpaired_hypervisors.push(UnpairedHypervisor {
            index: i,
            hostname: hv.hostname.clone(),
            id: hv.id.clone(),
            reason,
            near_miss,
        });
    }

    for (n, node) in nodes.iter().enumerate() {
        let name = node.display_name().to_owned();
        let Some(i) = node_pair[n] else {
            let miss = node_miss.get(&n).map(|&m| &near_misses[m]);
            let breaks = backend == Backend::Ironic && node.hypervisor_match.is_some();
            let reason = match (backend, miss) {
                (_, Some(m)) => format!("near miss: hypervisor `{}` {}", m.hypervisor, m.message),
                (Backend::Maas, None) if node.fqdn.is_empty() => "has no fqdn".to_owned(),
                (Backend::Maas, None) => format!("no hypervisor has hostname `{}`", node.fqdn),
                (Backend::Ironic, None) => match &node.hypervisor_match {
                    Some(id) => format!(
                        "extra.compute_node_id `{id}` names no Nova hypervisor: Watcher's lookup of it fails, and with it the whole node listing"
                    ),
                    None => "has no extra.compute_node_id (Watcher logs a warning and skips it)".to_owned(),
                },
            };
            unpaired_nodes.push(UnpairedNode {
                node_id: node.id.clone(),
                node_name: name,
                reason,
                breaks_listing: breaks,
            });
            continue;
        };
        let hv = &hypervisors[i];
        let (saving_energy, note) = verdict(backend, hv, node.power_state);
        managed.push(Managed {
            node_id: node.id.clone(),
            node_name: name,
            power_state: node.power_state,
            hypervisor_index: i,
            hypervisor_id: hv.id.clone(),
            hypervisor_hostname: hv.hostname.clone(),
            state: hv.state.clone(),
            status: hv.status.clone(),
            running_vms: hv.running_vms,
            saving_energy,
            note,
            beyond_first_page: hv.page.is_some_and(|p| p > 0),
        });
    }

    let count = |pool: SavingEnergy| managed.iter().filter(|m| m.saving_energy == Some(pool)).count();
    let summary = Summary {
        nodes: nodes.len(),
        hypervisors: hypervisors.len(),
        managed: managed.len(),
        near_misses: near_misses.len(),
        unpaired_nodes: unpaired_nodes.len(),
        unpaired_hypervisors: unpaired_hypervisors.len(),
        power_off_candidates: count(SavingEnergy::PowerOffCandidate),
        power_on_reserve: count(SavingEnergy::PowerOnReserve),
        busy: count(SavingEnergy::Busy),
        ignored: count(SavingEnergy::Ignored),
        unknown: managed.iter().filter(|m| m.saving_energy.is_none()).count(),
        beyond_first_page: managed.iter().filter(|m| m.beyond_first_page).count(),
        breaking_nodes: breaking.len(),
    };
    let plan = plan(summary.busy, summary.power_off_candidates, summary.power_on_reserve);
    let mut warnings = Vec::new();
    if summary.breaking_nodes > 0 {
        warnings.push(format!(
            "{} Ironic node(s) name a hypervisor Nova does not have: Watcher's node listing fails on the first of them",
            summary.breaking_nodes
        ));
    }
    if summary.beyond_first_page > 0 {
        let first = hypervisors.iter().filter(|h| h.page == Some(0)).count();
        warnings.push(format!(
            "{} pair(s) have their hypervisor past the first page of Nova's listing ({first} hypervisors a page): Watcher 12.0.0 to 15.0.0 read only the first page, so they do not manage them; raise Nova's [api] max_limit above the number of hypervisors",
            summary.beyond_first_page
        ));
    }
    Pairing { backend, summary, managed, near_misses, unpaired_nodes, unpaired_hypervisors, plan, warnings }
}

type Found = Option<(MissKind, usize, String, String)>;

fn maas_near_miss(
    hv: &Hypervisor,
    nodes: &[Node],
    by_lower: &HashMap<String, Vec<usize>>,
    by_short: &HashMap<String, Vec<usize>>,
    pick: &dyn Fn(Option<&Vec<usize>>) -> Option<usize>,
) -> Found {
    let exactly = "; Watcher compares exactly";
    if hv.hostname.is_empty() {
        return None;
    }
    if let Some(n) = pick(by_lower.get(&hv.hostname.to_ascii_lowercase())) {
        let key = nodes[n].fqdn.clone();
        let message = format!("differs only in case from `{key}` (node {}){exactly}", nodes[n].id);
        return Some((MissKind::Case, n, key, message));
    }
    let n = pick(by_short.get(&short_lower(&hv.hostname)))?;
    let key = nodes[n].fqdn.clone();
    let (kind, why) = if hv.hostname.contains('.') {
        (MissKind::OtherDomain, "has another domain than")
    } else {
        (MissKind::ShortName, "is the short name of")
    };
    let message = format!("{why} machine fqdn `{key}` (node {}){exactly}", nodes[n].id);
    Some((kind, n, key, message))
}

fn ironic_near_miss(
    hv: &Hypervisor,
    nodes: &[Node],
    by_lower: &HashMap<String, Vec<usize>>,
    by_short: &HashMap<String, Vec<usize>>,
    by_key: &HashMap<&str, Vec<usize>>,
    pick: &dyn Fn(Option<&Vec<usize>>) -> Option<usize>,
) -> Found {
    if hv.id != hv.hostname && !hv.hostname.is_empty() {
        if let Some(n) = pick(by_key.get(hv.hostname.as_str())) {
            let message = format!(
                "is what Ironic node {} has as extra.compute_node_id; Watcher wants the hypervisor's id there, `{}`",
                nodes[n].id, hv.id
            );
            return Some((MissKind::HostnameNotId, n, hv.hostname.clone(), message));
        }
    }
    let n = pick(by_lower.get(&hv.hostname.to_ascii_lowercase()))
        .or_else(|| pick(by_short.get(&short_lower(&hv.hostname))))?;
    let target = if hv.id == hv.hostname { "the hypervisor's id".to_owned() } else { format!("`{}`", hv.id) };
    let message = format!(
        "Ironic node {} is named `{}` but has no extra.compute_node_id; set it to {target}",
        nodes[n].id, nodes[n].hostname
    );
    Some((MissKind::NoComputeNodeId, n, nodes[n].hostname.clone(), message))
}

fn no_match_reason(backend: Backend, hv: &Hypervisor) -> String {
    match backend {
        Backend::Maas => format!("no MAAS machine has fqdn `{}`", hv.hostname),
        // A hand-made list gives one name for both.
        Backend::Ironic if hv.id == hv.hostname => {
            format!("no Ironic node has extra.compute_node_id `{}` (give hypervisor ids for Ironic)", hv.id)
        }
        Backend::Ironic => format!("no Ironic node has extra.compute_node_id `{}`", hv.id),
    }
}

/// saving_energy's pool for one pair, and why when it is skipped or unknown.
fn verdict(backend: Backend, hv: &Hypervisor, power: PowerState) -> (Option<SavingEnergy>, Option<String>) {
    let disabled = (hv.status.as_deref() == Some("disabled"))
        .then_some("disabled in Nova, which saving_energy does not check".to_owned());
    if hv.hypervisor_type.as_deref() == Some("ironic") {
        return (
            Some(SavingEnergy::Ignored),
            Some("a bare-metal (ironic) hypervisor, which Watcher's compute model leaves out".to_owned()),
        );
    }
    if backend == Backend::Ironic {
        match hv.state.as_deref() {
            Some("up") => {}
            None => return (None, Some("the hypervisor's state is unknown".to_owned())),
            Some(state) => {
                return (
                    Some(SavingEnergy::Ignored),
                    Some(format!(
                        "the hypervisor is {state}; saving_energy skips Ironic nodes whose hypervisor is not up"
                    )),
                )
            }
        }
    }
    match hv.running_vms {
        None => (None, Some("running VMs unknown".to_owned())),
        Some(0) => match power {
            PowerState::On => (Some(SavingEnergy::PowerOffCandidate), disabled),
            PowerState::Off => (Some(SavingEnergy::PowerOnReserve), disabled),
            other => (
                Some(SavingEnergy::Ignored),
                Some(format!("power state {other}: saving_energy ignores nodes neither on nor off")),
            ),
        },
        Some(_) => (Some(SavingEnergy::Busy), disabled),
    }
}

/// `SavingEnergy.save_energy` with the default parameters.
fn plan(busy: usize, candidates: usize, reserve: usize) -> SavingEnergyPlan {
    let need = (busy as f64 * FREE_USED_PERCENT / 100.0).max(MIN_FREE_HOSTS_NUM);
    // Python's int() of a non-negative float truncates.
    let keep_on = need as usize;
    let (power_off, power_on) =
        if candidates > keep_on { (candidates - keep_on, 0) } else { (0, reserve.min(keep_on - candidates)) };
    SavingEnergyPlan {
        free_used_percent: FREE_USED_PERCENT,
        min_free_hosts_num: MIN_FREE_HOSTS_NUM,
        keep_on,
        power_off,
        power_on,
    }
}

/// Why Watcher 12.0.0-15.0.0, which read only the first page of Nova's
/// hypervisor listing, do not see a hypervisor on page `page` (from 0);
/// `None` on the first page.
pub fn unseen_page(page: usize) -> Option<String> {
    (page > 0).then(|| format!("page {} of Nova's listing: Watcher 12.0.0-15.0.0 do not see it", page + 1))
}

/// What Watcher does with one hypervisor of a [`Pairing`].
#[derive(Debug, Clone, Copy)]
pub enum Handling<'a> {
    /// A node pairs with it: Watcher manages it.
    Managed(&'a Managed),
    /// No node pairs with it, and why; the node it was probably meant to
    /// match, if any.
    Skipped(&'a UnpairedHypervisor, Option<&'a NearMiss>),
    /// Neither (a hypervisor the pairing did not see).
    Unknown,
}

impl Pairing {
    /// How Watcher handles each of the `count` hypervisors paired, in their
    /// order (the first node paired with a hypervisor is the one Watcher
    /// uses).
    pub fn handling(&self, count: usize) -> Vec<Handling<'_>> {
        let mut out = vec![Handling::Unknown; count];
        for m in &self.managed {
            if let Some(slot) = out.get_mut(m.hypervisor_index).filter(|v| matches!(v, Handling::Unknown)) {
                *slot = Handling::Managed(m);
            }
        }
        for u in &self.unpaired_hypervisors {
            if let Some(slot) = out.get_mut(u.index).filter(|v| !matches!(v, Handling::Managed(_))) {
                *slot = Handling::Skipped(u, u.near_miss.and_then(|i| self.near_misses.get(i)));
            }
        }
        out
    }
}

/// A hypervisor known by name, and the node Watcher pairs with it (or why
/// none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedPair {
    /// The hypervisor name as given (trimmed), in the list's order.
    pub hypervisor: String,
    /// The node Watcher will pair with this hypervisor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// That node's power state as the node listing gave it (not queried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_state: Option<PowerState>,
    /// For a skipped hypervisor: the node it was probably meant to pair with.
    #[serde(skip_serializing_if = "Option::is_none")]
    near_miss: Option<String>,
    /// For a skipped hypervisor: why no node pairs with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl NamedPair {
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

/// Applies Watcher's own rule ([`pair`]) to hypervisors
/// known by name only: a MAAS machine manages the hypervisor whose hostname
/// equals the machine's fqdn, exactly; an Ironic node manages the hypervisor
/// whose id is the node's `extra.compute_node_id`. Anything else is
/// skipped, with the nearest miss named (short name vs fqdn, case).
pub(crate) fn pair_named(backend: Backend, nodes: &[Node], hypervisors: &[String]) -> Vec<NamedPair> {
    let named: Vec<Hypervisor> = hypervisors.iter().map(|h| Hypervisor::named(h)).collect();
    let pairing = pair(backend, nodes, &named);
    let handling = pairing.handling(hypervisors.len());
    hypervisors
        .iter()
        .zip(handling)
        .map(|(hv, handling)| {
            let mut out =
                NamedPair { hypervisor: hv.clone(), node_id: None, power_state: None, near_miss: None, reason: None };
            match handling {
                Handling::Managed(m) => {
                    out.node_id = Some(m.node_id.clone());
                    out.power_state = Some(m.power_state);
                }
                Handling::Skipped(u, near) => {
                    out.near_miss = near.map(|m| m.node_key.clone());
                    out.reason = Some(u.reason.clone());
                }
                Handling::Unknown => {}
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metal::test_node as node;

    fn hv(id: &str, hostname: &str, state: &str, status: &str, vms: u64) -> Hypervisor {
        Hypervisor {
            id: id.into(),
            hostname: hostname.into(),
            state: Some(state.into()),
            status: Some(status.into()),
            hypervisor_type: Some("QEMU".into()),
            service_host: Some(hostname.split('.').next().unwrap_or("").into()),
            running_vms: Some(vms),
            page: Some(0),
        }
    }

    fn off(mut n: Node) -> Node {
        n.power_state = PowerState::Off;
        n
    }

    #[test]
    fn maas_pairs_exact_fqdns_only_and_names_near_misses() {
        let nodes = [
            node("a1", "c1", "c1.maas", Some("c1.maas")),
            node("a2", "c2", "c2.maas", Some("c2.maas")),
            node("a3", "c3", "c3.maas", Some("c3.maas")),
            node("a4", "c4", "c4.maas", Some("c4.maas")),
            node("a5", "ctrl", "ctrl.maas", Some("ctrl.maas")),
            off(node("a6", "c6", "c6.maas", Some("c6.maas"))),
        ];
        let hvs = [
            hv("u1", "c1.maas", "up", "enabled", 0),
            hv("u2", "c2", "up", "enabled", 1),
            hv("u3", "C3.MAAS", "up", "enabled", 0),
            hv("u4", "c4.example.com", "up", "enabled", 0),
            hv("u6", "c6.maas", "down", "disabled", 0),
            hv("u9", "c9.maas", "up", "enabled", 0),
        ];
        let p = pair(Backend::Maas, &nodes, &hvs);
        let ids: Vec<_> = p.managed.iter().map(|m| (m.node_id.as_str(), m.hypervisor_id.as_str())).collect();
        assert_eq!(ids, [("a1", "u1"), ("a6", "u6")]);
        assert_eq!(p.managed[0].saving_energy, Some(SavingEnergy::PowerOffCandidate));
        // MAAS: a down hypervisor is not skipped, and status is not checked.
        assert_eq!(p.managed[1].saving_energy, Some(SavingEnergy::PowerOnReserve));
        assert!(p.managed[1].note.as_deref().unwrap().contains("disabled"));
        let kinds: Vec<_> = p.near_misses.iter().map(|m| (m.hypervisor.as_str(), m.kind, m.node_id.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("c2", MissKind::ShortName, "a2"),
                ("C3.MAAS", MissKind::Case, "a3"),
                ("c4.example.com", MissKind::OtherDomain, "a4")
            ]
        );
        assert_eq!(p.unpaired_hypervisors.len(), 4);
        assert_eq!(p.unpaired_hypervisors[3].reason, "no MAAS machine has fqdn `c9.maas`");
        let unpaired: Vec<_> = p.unpaired_nodes.iter().map(|u| u.node_id.as_str()).collect();
        assert_eq!(unpaired, ["a2", "a3", "a4", "a5"]);
        assert_eq!(p.unpaired_nodes[3].reason, "no hypervisor has hostname `ctrl.maas`");
        assert!(p.unpaired_nodes[0].reason.starts_with("near miss: hypervisor `c2` is the short name of"));
        assert_eq!((p.summary.managed, p.summary.near_misses, p.summary.unpaired_nodes), (2, 3, 4));
    }

    #[test]
    fn duplicate_hostnames_keep_the_last_as_watchers_map_does() {
        let nodes = [node("a1", "c1", "c1.maas", Some("c1.maas"))];
        let hvs = [hv("old", "c1.maas", "down", "enabled", 0), hv("new", "c1.maas", "up", "enabled", 2)];
        let p = pair(Backend::Maas, &nodes, &hvs);
        assert_eq!(p.managed[0].hypervisor_id, "new");
        assert_eq!(p.managed[0].saving_energy, Some(SavingEnergy::Busy));
        assert!(p.unpaired_hypervisors[0].reason.contains("keeps only the last one"));
    }

    #[test]
    fn ironic_pairs_on_compute_node_id() {
        let mut bare = node("n3", "bm-3", "", None);
        bare.hostname = "compute-3".into();
        let nodes = [
            node("n1", "bm-1", "", Some("u1")),
            node("n2", "bm-2", "", Some("u2")),
            bare,
            node("n4", "bm-4", "", Some("compute-4")),
            node("n5", "bm-5", "", Some("gone")),
        ];
        let hvs = [
            hv("u1", "compute-1", "up", "enabled", 0),
            hv("u2", "compute-2", "down", "enabled", 0),
            hv("u3", "compute-3", "up", "enabled", 0),
            hv("u4", "compute-4", "up", "enabled", 0),
        ];
        let p = pair(Backend::Ironic, &nodes, &hvs);
        assert_eq!(p.managed.len(), 2);
        assert_eq!(p.managed[0].saving_energy, Some(SavingEnergy::PowerOffCandidate));
        // Ironic: a hypervisor that is not up is skipped.
        assert_eq!(p.managed[1].saving_energy, Some(SavingEnergy::Ignored));
        let kinds: Vec<_> = p.near_misses.iter().map(|m| (m.node_id.as_str(), m.kind)).collect();
        assert_eq!(kinds, [("n3", MissKind::NoComputeNodeId), ("n4", MissKind::HostnameNotId)]);
        assert!(p.near_misses[0].message.ends_with("set it to `u3`"));
        let broken: Vec<_> = p.unpaired_nodes.iter().filter(|u| u.breaks_listing).map(|u| u.node_id.as_str()).collect();
        assert_eq!(broken, ["n4", "n5"]);
        assert_eq!(p.summary.breaking_nodes, 2);
        assert!(!p.warnings.is_empty());
    }

    #[test]
    fn saving_energy_pools_and_plan() {
        let mut unknown = node("a4", "c4", "c4.maas", None);
        unknown.power_state = PowerState::Unknown;
        let nodes = [
            node("a1", "c1", "c1.maas", None),
            node("a2", "c2", "c2.maas", None),
            off(node("a3", "c3", "c3.maas", None)),
            unknown,
            node("a5", "c5", "c5.maas", None),
        ];
        let mut bm = hv("u5", "c5.maas", "up", "enabled", 0);
        bm.hypervisor_type = Some("ironic".into());
        let hvs = [
            hv("u1", "c1.maas", "up", "enabled", 0),
            hv("u2", "c2.maas", "up", "enabled", 5),
            hv("u3", "c3.maas", "down", "enabled", 0),
            hv("u4", "c4.maas", "up", "enabled", 0),
            bm,
        ];
        let p = pair(Backend::Maas, &nodes, &hvs);
        let pools: Vec<_> = p.managed.iter().map(|m| m.saving_energy).collect();
        use SavingEnergy::*;
        assert_eq!(pools, [Some(PowerOffCandidate), Some(Busy), Some(PowerOnReserve), Some(Ignored), Some(Ignored)]);
        // 1 busy: keep int(max(0.1, 1)) = 1 free node on; one candidate, so nothing to do.
        assert_eq!((p.plan.keep_on, p.plan.power_off, p.plan.power_on), (1, 0, 0));
        assert_eq!(plan(0, 3, 2), SavingEnergyPlan { keep_on: 1, power_off: 2, power_on: 0, ..plan(0, 0, 0) });
        assert_eq!(plan(25, 0, 5).keep_on, 2);
        assert_eq!(plan(25, 0, 5).power_on, 2);
        assert_eq!(plan(30, 1, 0).power_on, 0);
    }

    #[test]
    fn later_pages_are_flagged() {
        let nodes = [node("a1", "c1", "c1.maas", None), node("a2", "c2", "c2.maas", None)];
        let mut second = hv("u2", "c2.maas", "up", "enabled", 0);
        second.page = Some(1);
        let p = pair(Backend::Maas, &nodes, &[hv("u1", "c1.maas", "up", "enabled", 0), second]);
        assert_eq!(p.summary.beyond_first_page, 1);
        assert!(p.warnings[0].contains("first page"));
    }

    #[test]
    fn a_named_list_knows_no_vms() {
        let nodes = [node("a1", "c1", "c1.maas", None)];
        let p = pair(Backend::Maas, &nodes, &[Hypervisor::named("c1.maas")]);
        assert_eq!(p.managed[0].saving_energy, None);
        assert_eq!(p.summary.unknown, 1);
    }
}

#[cfg(test)]
mod hypervisor_list_tests {
    use super::*;

    use crate::metal::test_node as node;

    #[test]
    fn maas_pairing_is_exact_with_helpful_near_misses() {
        let nodes = [
            node("aaa111", "compute-1", "compute-1.maas", Some("compute-1.maas")),
            node("bbb222", "compute-2", "compute-2.maas", Some("compute-2.maas")),
            node("ccc333", "compute-3", "compute-3.maas", Some("compute-3.maas")),
        ];
        let hvs = parse_hypervisor_list("compute-1.maas\n\n# comment\ncompute-2\nCompute-3.MAAS\ncompute-9.maas\n");
        let m = pair_named(Backend::Maas, &nodes, &hvs);
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
    fn ironic_pairing_uses_compute_node_id() {
        let nodes = [node("uuid-1", "bm-1", "", Some("hv-id-1")), node("uuid-2", "bm-2", "", None)];
        let m = pair_named(Backend::Ironic, &nodes, &["hv-id-1".into(), "bm-2".into(), "hv-x".into()]);
        assert!(m[0].managed());
        assert!(m[1].reason.as_deref().unwrap().contains("has no extra.compute_node_id"));
        assert!(m[2].reason.as_deref().unwrap().starts_with("no Ironic node has extra.compute_node_id `hv-x`"));
    }
}
