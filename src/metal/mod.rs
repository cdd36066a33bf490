//! The metal client: one trait over MAAS and Ironic, the node type both
//! return, and power states mapped exactly as Watcher maps them. Each
//! backend's protocol client knows nothing of this trait: the adapters in
//! `maas` and `ironic` below map their answers onto it. Which backend to
//! use is decided above this module (`backend::connect`).

use std::fmt;

use serde::Serialize;

use crate::clients::maas::MaasError;
use crate::clients::openstack::service::OpenStackError;

mod ironic;
mod maas;

/// Watcher's power states (`watcher.common.metal_helper.constants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    /// Powered on (Ironic: also rebooting).
    On,
    /// Powered off.
    Off,
    /// Any state Watcher does not map, or none reported.
    Unknown,
    /// MAAS reports a power error, or a live query of the node failed.
    Error,
}

impl PowerState {
    /// Watcher's name of the state: `on`, `off`, `unknown` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
            PowerState::Error => "error",
        }
    }

    /// MAAS's `power_state` / `query_power_state` values are Watcher's own;
    /// anything else is unknown.
    fn from_maas(state: &str) -> PowerState {
        match state {
            "on" => PowerState::On,
            "off" => PowerState::Off,
            "error" => PowerState::Error,
            _ => PowerState::Unknown,
        }
    }

    /// Watcher's `POWER_STATES_MAP` for Ironic: anything else (including
    /// null and Ironic's own "error") is unknown.
    fn from_ironic(state: Option<&str>) -> PowerState {
        match state {
            Some("power on" | "rebooting" | "soft reboot") => PowerState::On,
            Some("power off" | "soft power off") => PowerState::Off,
            _ => PowerState::Unknown,
        }
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's power as the service reports it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PowerReading {
    /// Watcher's reading of it.
    pub state: PowerState,
    /// The service's own string (`"power on"`, `"on"`, ...).
    pub raw: Option<String>,
    /// A change the service is making now (Ironic's `target_power_state`),
    /// mapped as Watcher maps power states; MAAS has none.
    pub changing_to: Option<PowerState>,
}

impl PowerReading {
    /// A reading with no change in flight.
    pub(crate) fn settled(state: PowerState, raw: Option<String>) -> PowerReading {
        PowerReading { state, raw, changing_to: None }
    }

    /// The state is `target` and nothing is changing it.
    pub(crate) fn is(&self, target: PowerState) -> bool {
        self.state == target && self.changing_to.is_none()
    }
}

/// Which bare-metal service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// MAAS, Watcher's choice when `[maas_client] url` is set.
    Maas,
    /// Ironic, through Keystone's catalog, when MAAS is not configured.
    Ironic,
}

impl Backend {
    /// `maas` or `ironic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Maas => "maas",
            Backend::Ironic => "ironic",
        }
    }
}

/// A bare-metal node as both backends describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// MAAS `system_id` or Ironic `uuid`: what Watcher's actions name.
    pub id: String,
    /// MAAS hostname or Ironic name (may be empty for Ironic).
    pub hostname: String,
    /// MAAS fully qualified domain name; empty for Ironic.
    pub fqdn: String,
    /// The power state the service last recorded, mapped as Watcher maps it.
    pub power_state: PowerState,
    /// The backend's own power state string (`"power on"`, `"on"`, ...).
    pub(crate) raw_power_state: Option<String>,
    /// MAAS status name (`Deployed`, `Ready`, ...) or Ironic provision state.
    pub provision_state: String,
    /// What Watcher matches a Nova hypervisor against: MAAS `fqdn`, or
    /// Ironic `extra.compute_node_id` (a hypervisor id, when set).
    pub(crate) hypervisor_match: Option<String>,
    /// Deployed (MAAS) or active (Ironic): a node in use, whose power-off
    /// is what Watcher does.
    pub(crate) deployed: bool,
}

impl Node {
    /// The name a node is shown by: its fqdn (what Watcher pairs a MAAS
    /// machine by), else its hostname (or Ironic name; may be empty).
    pub fn display_name(&self) -> &str {
        if self.fqdn.is_empty() {
            &self.hostname
        } else {
            &self.fqdn
        }
    }
}

/// Why a metal operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetalError {
    /// The MAAS request failed.
    #[error(transparent)]
    Maas(#[from] MaasError),
    /// The Ironic request (or its Keystone authentication) failed.
    #[error(transparent)]
    Ironic(#[from] OpenStackError),
    /// No node has this id, hostname or fqdn.
    #[error("no node `{0}`")]
    NotFound(String),
    /// The name is the hostname or fqdn of several nodes.
    #[error("`{name}` matches {count} nodes")]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// How many nodes it matches (at least 2).
        count: usize,
    },
}

/// Watcher's metal helper, minus Nova: list, read and power nodes.
pub trait MetalClient: Send + Sync {
    /// Which service this client talks to.
    fn backend(&self) -> Backend;
    /// Every node, with the power state the service last recorded.
    fn list_nodes(&self) -> Result<Vec<Node>, MetalError>;
    /// Every node, as [`MetalClient::list_nodes`], each handed to `each` as
    /// soon as it is read where the listing streams (MAAS's), so that a
    /// caller keeping rows of its own never holds the listing twice.
    fn each_node(&self, each: &mut dyn FnMut(Node)) -> Result<(), MetalError> {
        self.list_nodes()?.into_iter().for_each(each);
        Ok(())
    }
    /// One node by id (or by name where the service resolves names).
    fn get_node(&self, id: &str) -> Result<Node, MetalError>;
    /// The power state asked of the BMC now (MAAS `query_power_state`), or
    /// the service's current record where it has no such call (Ironic: the
    /// conductor's record, which it refreshes from the BMC periodically).
    fn query_power_state(&self, id: &str) -> Result<PowerState, MetalError>;
    /// As [`MetalClient::query_power_state`], with the service's own string
    /// and any change in flight.
    fn read_power(&self, id: &str) -> Result<PowerReading, MetalError> {
        let state = self.query_power_state(id)?;
        Ok(PowerReading::settled(state, Some(state.as_str().to_owned())))
    }
    /// What to check when a listing is empty though nodes may exist (access
    /// rules that hide them), if the service has such rules.
    fn empty_listing_hint(&self) -> Option<String> {
        None
    }
    /// Asks the service to power the node on, without waiting for it (MAAS
    /// `op=power_on`, Ironic target `power on`).
    fn power_on(&self, id: &str) -> Result<(), MetalError>;
    /// Asks the service for a hard power-off, as Watcher does, without
    /// waiting for it (MAAS `op=power_off` with `stop_mode=hard`, Ironic
    /// target `power off`).
    fn power_off(&self, id: &str) -> Result<(), MetalError>;
}

/// Looks a node up by id, then by hostname or fqdn.
pub(crate) fn resolve_node(client: &dyn MetalClient, wanted: &str) -> Result<Node, MetalError> {
    match client.get_node(wanted) {
        Ok(node) => Ok(node),
        Err(MetalError::NotFound(_)) => find_node(&client.list_nodes()?, wanted).cloned(),
        Err(e) => Err(e),
    }
}

/// Finds a node by id, hostname or fqdn (case-insensitively for names).
fn find_node<'a>(nodes: &'a [Node], wanted: &str) -> Result<&'a Node, MetalError> {
    if let Some(node) = nodes.iter().find(|n| n.id == wanted) {
        return Ok(node);
    }
    let matches: Vec<&Node> = nodes
        .iter()
        .filter(|n| {
            (!n.hostname.is_empty() && n.hostname.eq_ignore_ascii_case(wanted))
                || (!n.fqdn.is_empty() && n.fqdn.eq_ignore_ascii_case(wanted))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(MetalError::NotFound(wanted.to_owned())),
        many => Err(MetalError::Ambiguous { name: wanted.to_owned(), count: many.len() }),
    }
}

/// A deployed, powered-on node for tests.
#[cfg(test)]
pub(crate) fn test_node(id: &str, hostname: &str, fqdn: &str, hypervisor: Option<&str>) -> Node {
    Node {
        id: id.into(),
        hostname: hostname.into(),
        fqdn: fqdn.into(),
        power_state: PowerState::On,
        raw_power_state: None,
        provision_state: "Deployed".into(),
        hypervisor_match: hypervisor.map(str::to_owned),
        deployed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ironic_states_map_as_watcher_maps_them() {
        let cases = [
            (Some("power on"), PowerState::On),
            (Some("power off"), PowerState::Off),
            (Some("rebooting"), PowerState::On),
            (Some("soft power off"), PowerState::Off),
            (Some("soft reboot"), PowerState::On),
            (Some("soft rebooting"), PowerState::Unknown),
            (Some("error"), PowerState::Unknown),
            (Some("SomeOtherState"), PowerState::Unknown),
            (None, PowerState::Unknown),
        ];
        for (raw, want) in cases {
            assert_eq!(PowerState::from_ironic(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn maas_states_map_as_watcher_maps_them() {
        for (raw, want) in [
            ("on", PowerState::On),
            ("off", PowerState::Off),
            ("error", PowerState::Error),
            ("unknown", PowerState::Unknown),
            ("SomeOtherState", PowerState::Unknown),
        ] {
            assert_eq!(PowerState::from_maas(raw), want);
        }
    }

    fn node(id: &str, hostname: &str, fqdn: &str) -> Node {
        test_node(id, hostname, fqdn, None)
    }

    #[test]
    fn find_node_by_id_hostname_or_fqdn() {
        let nodes = [node("abc123", "node-1", "node-1.maas"), node("def456", "node-2", "node-2.maas")];
        assert_eq!(find_node(&nodes, "def456").unwrap().id, "def456");
        assert_eq!(find_node(&nodes, "NODE-1").unwrap().id, "abc123");
        assert_eq!(find_node(&nodes, "node-2.maas").unwrap().id, "def456");
        assert_eq!(find_node(&nodes, "node-3").unwrap_err(), MetalError::NotFound("node-3".into()));
        let twins = [node("a", "x", ""), node("b", "x", "")];
        assert_eq!(find_node(&twins, "x").unwrap_err(), MetalError::Ambiguous { name: "x".into(), count: 2 });
    }
}
