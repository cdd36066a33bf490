//! Ironic as a metal backend: its nodes, its conductor's power record, and
//! its power-state targets.

use serde_json::Value;

use super::{Backend, MetalClient, MetalError, Node, PowerReading, PowerState};
use crate::clients::openstack::ironic::{IronicClient, IronicNode};
use crate::clients::openstack::service::OpenStackError;

impl Node {
    /// The node an Ironic node is.
    fn from_ironic(n: IronicNode) -> Node {
        let provision_state = n.provision_state.unwrap_or_default();
        let hypervisor_match = n
            .extra
            .as_ref()
            .and_then(|e| e.get("compute_node_id"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Node {
            id: n.uuid,
            hostname: n.name.unwrap_or_default(),
            fqdn: String::new(),
            power_state: PowerState::from_ironic(n.power_state.as_deref()),
            raw_power_state: n.power_state,
            deployed: provision_state == "active",
            provision_state,
            hypervisor_match,
        }
    }
}

/// Ironic's 404 for a node is the trait's `NotFound`.
fn not_found(e: OpenStackError, id: &str) -> MetalError {
    match e.api_status() {
        Some(404) => MetalError::NotFound(id.to_owned()),
        _ => MetalError::Ironic(e),
    }
}

impl MetalClient for IronicClient {
    fn backend(&self) -> Backend {
        Backend::Ironic
    }

    fn list_nodes(&self) -> Result<Vec<Node>, MetalError> {
        Ok(self.nodes()?.into_iter().map(Node::from_ironic).collect())
    }

    fn get_node(&self, id: &str) -> Result<Node, MetalError> {
        self.node(id).map(Node::from_ironic).map_err(|e| not_found(e, id))
    }

    fn query_power_state(&self, id: &str) -> Result<PowerState, MetalError> {
        Ok(self.read_power(id)?.state)
    }

    /// The conductor's record (Ironic has no synchronous BMC query), and
    /// `target_power_state`, set while a power change is in flight.
    fn read_power(&self, id: &str) -> Result<PowerReading, MetalError> {
        let states = self.states(id).map_err(|e| not_found(e, id))?;
        let changing_to = states.target_power_state.as_deref().map(|t| match t {
            // Ironic's targets for a reboot end powered on.
            "rebooting" | "soft rebooting" => PowerState::On,
            other => PowerState::from_ironic(Some(other)),
        });
        Ok(PowerReading {
            state: PowerState::from_ironic(states.power_state.as_deref()),
            raw: states.power_state,
            changing_to,
        })
    }

    fn empty_listing_hint(&self) -> Option<String> {
        Some(
            "Ironic shows a project only the nodes it owns or leases: give Watcher's user the `service` role in \
             Ironic's service project with [DEFAULT] rbac_service_role_elevated_access = true in ironic.conf, \
             use a system-scoped user, or set the nodes' owner to Watcher's project"
                .to_owned(),
        )
    }

    fn power_on(&self, id: &str) -> Result<(), MetalError> {
        self.set_power_state(id, "power on").map_err(|e| not_found(e, id))
    }

    fn power_off(&self, id: &str) -> Result<(), MetalError> {
        self.set_power_state(id, "power off").map_err(|e| not_found(e, id))
    }
}
