//! A simulated MAAS region API (version 2.0) on 127.0.0.1.
//!
//! It answers like MAAS 3.x does on the wire: OAuth 1.0 PLAINTEXT checks
//! with MAAS's refusals, `version/`, `describe/`, `users/?op=whoami`,
//! `machines/` with filters, one machine, `query_power_state`, `power_on`,
//! `power_off`, MAAS's error statuses and bodies, and optionally TLS, the
//! HTTP-to-HTTPS redirect of a TLS-enabled MAAS, or a server that is not
//! MAAS at all. Faults (errors, delays, hangs, broken responses) can be
//! injected at run time.
//!
//! ```no_run
//! use metal_sim::{MaasSim, MaasSimConfig, SimMachine};
//!
//! let sim = MaasSim::start(MaasSimConfig { machines: SimMachine::generate(25), ..Default::default() }).unwrap();
//! let url = sim.base_url(); // http://127.0.0.1:PORT/MAAS
//! let key = sim.admin_key(); // consumer:token:secret
//! # let _ = (url, key);
//! ```

mod api;
mod json;
mod model;
mod oauth;

use std::io;
use std::sync::Arc;

pub use model::{
    status_name, BmcFailure, Fault, FaultRule, MaasSimConfig, PowerState, SimMachine, SimStats, SimUser, TlsNames,
    STATUS_ALLOCATED, STATUS_DEPLOYED, STATUS_DEPLOYING, STATUS_READY,
};

use crate::server::Server;

/// A running simulated MAAS. Dropping it (or [`MaasSim::stop`]) closes every
/// connection and joins every thread.
pub struct MaasSim {
    server: Server,
    service: Arc<api::MaasService>,
    tls: bool,
    ca_pem: Option<String>,
}

impl MaasSim {
    /// Starts a simulator on a free port of 127.0.0.1.
    pub fn start(config: MaasSimConfig) -> io::Result<MaasSim> {
        MaasSim::start_on_port(config, 0)
    }

    /// Starts a simulator on `127.0.0.1:port` (0 = a free port).
    pub fn start_on_port(config: MaasSimConfig, port: u16) -> io::Result<MaasSim> {
        let tls = match &config.tls {
            Some(names) => Some(crate::tls::setup(&names.names())?),
            None => None,
        };
        let (tls_config, ca_pem) = match tls {
            Some(t) => (Some(t.config), Some(t.ca_pem)),
            None => (None, None),
        };
        let is_tls = tls_config.is_some();
        let service = Arc::new(api::MaasService::new(config));
        let server = Server::start(port, tls_config, service.clone())?;
        Ok(MaasSim { server, service, tls: is_tls, ca_pem })
    }

    /// The MAAS URL: `http://127.0.0.1:PORT/MAAS`, or
    /// `https://localhost:PORT/MAAS` with TLS.
    pub fn base_url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}/MAAS", self.port())
        } else {
            format!("http://127.0.0.1:{}/MAAS", self.port())
        }
    }

    /// The API root: [`MaasSim::base_url`] + `/api/2.0/`.
    pub fn api_url(&self) -> String {
        format!("{}/api/2.0/", self.base_url())
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// The PEM of the CA that signed the server certificate (TLS mode only).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// The API key of the first configured user (empty if there is none).
    pub fn admin_key(&self) -> String {
        self.service.users().first().map(SimUser::api_key).unwrap_or_default()
    }

    /// The configured users.
    pub fn users(&self) -> Vec<SimUser> {
        self.service.users().to_vec()
    }

    /// Adds a fault rule (checked after the ones added before).
    pub fn add_fault(&self, rule: FaultRule) {
        self.service.add_fault(rule);
    }

    /// Removes all fault rules.
    pub fn clear_faults(&self) {
        self.service.clear_faults();
    }

    /// Makes power requests for a machine fail (or work again with `None`).
    pub fn set_bmc_failure(&self, system_id: &str, failure: Option<BmcFailure>) {
        self.service.set_bmc_failure(system_id, failure);
    }

    /// Sets a machine's power state now (cancelling a pending change).
    /// `false` if there is no such machine.
    pub fn set_power_state(&self, system_id: &str, state: PowerState) -> bool {
        self.service.set_power_state(system_id, state)
    }

    /// A machine's current state.
    pub fn machine(&self, system_id: &str) -> Option<SimMachine> {
        self.service.machine(system_id)
    }

    /// All machines' current state, in id order.
    pub fn machines(&self) -> Vec<SimMachine> {
        self.service.machines()
    }

    /// What has been served so far.
    pub fn stats(&self) -> SimStats {
        self.service.stats()
    }

    /// Zeroes the statistics.
    pub fn reset_stats(&self) {
        self.service.reset_stats();
    }

    /// Stops the simulator (the same as dropping it).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for MaasSim {
    fn drop(&mut self) {
        self.server.stop();
    }
}
