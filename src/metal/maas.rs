//! MAAS as a metal backend: machines as nodes, and a hard power-off, as
//! Watcher's MAAS helper does it.

use super::{Backend, MetalClient, MetalError, Node, PowerReading, PowerState};
use crate::clients::maas::{MaasClient, MaasError, Machine, MachineFilter, StopMode};

impl Node {
    /// The node a MAAS machine is.
    fn from_maas(m: Machine) -> Node {
        let deployed = m.status == Some(6) || m.status_name.eq_ignore_ascii_case("deployed");
        Node {
            power_state: PowerState::from_maas(&m.power_state),
            raw_power_state: Some(m.power_state),
            provision_state: m.status_name,
            hypervisor_match: (!m.fqdn.is_empty()).then(|| m.fqdn.clone()),
            id: m.system_id,
            hostname: m.hostname,
            fqdn: m.fqdn,
            deployed,
        }
    }
}

impl MetalClient for MaasClient {
    fn backend(&self) -> Backend {
        Backend::Maas
    }

    fn list_nodes(&self) -> Result<Vec<Node>, MetalError> {
        let mut nodes = Vec::new();
        self.each_node(&mut |node| nodes.push(node))?;
        Ok(nodes)
    }

    fn each_node(&self, each: &mut dyn FnMut(Node)) -> Result<(), MetalError> {
        Ok(self.each_machine(&MachineFilter::default(), |m| each(Node::from_maas(m)))?)
    }

    fn get_node(&self, id: &str) -> Result<Node, MetalError> {
        match self.machine(id) {
            Ok(m) => Ok(Node::from_maas(m)),
            Err(MaasError::NotFound { .. }) => Err(MetalError::NotFound(id.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    fn query_power_state(&self, id: &str) -> Result<PowerState, MetalError> {
        Ok(PowerState::from_maas(&MaasClient::query_power_state(self, id)?))
    }

    fn read_power(&self, id: &str) -> Result<PowerReading, MetalError> {
        let raw = MaasClient::query_power_state(self, id)?;
        Ok(PowerReading::settled(PowerState::from_maas(&raw), Some(raw)))
    }

    fn power_on(&self, id: &str) -> Result<(), MetalError> {
        MaasClient::power_on(self, id)?;
        Ok(())
    }

    /// A hard power-off, as Watcher does it.
    fn power_off(&self, id: &str) -> Result<(), MetalError> {
        MaasClient::power_off(self, id, StopMode::Hard)?;
        Ok(())
    }
}
