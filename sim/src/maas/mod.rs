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

mod inventory;
mod json;
mod model;
mod oauth;
mod routes;
mod service;

use std::io;

pub use model::{
    status_name, BmcFailure, MaasSimConfig, PowerState, SimMachine, SimStats, SimUser, TlsNames, STATUS_ALLOCATED,
    STATUS_DEPLOYED, STATUS_DEPLOYING, STATUS_READY,
};

pub use crate::fault::{Fault, FaultRule};
use crate::server::Running;
use service::MaasService;

/// A running simulated MAAS. Dropping it (or [`MaasSim::stop`]) closes every
/// connection and joins every thread.
pub struct MaasSim {
    running: Running<MaasService>,
    ca_pem: Option<String>,
}

impl MaasSim {
    /// Starts a simulator on a free port of 127.0.0.1.
    pub fn start(config: MaasSimConfig) -> io::Result<MaasSim> {
        MaasSim::start_on_port(config, 0)
    }

    /// Starts a simulator on `127.0.0.1:port` (0 = a free port).
    pub fn start_on_port(config: MaasSimConfig, port: u16) -> io::Result<MaasSim> {
        let (tls_config, ca_pem) = match &config.tls {
            Some(names) => {
                let tls = crate::tls::setup(&names.names())?;
                (Some(tls.config), Some(tls.ca_pem))
            }
            None => (None, None),
        };
        Ok(MaasSim { running: Running::start(MaasService::new(config), port, tls_config)?, ca_pem })
    }

    /// The MAAS URL: `http://127.0.0.1:PORT/MAAS`, or
    /// `https://localhost:PORT/MAAS` with TLS.
    pub fn base_url(&self) -> String {
        if self.ca_pem.is_some() {
            format!("https://localhost:{}/MAAS", self.port())
        } else {
            self.running.local_url("/MAAS")
        }
    }

    /// The API root: [`MaasSim::base_url`] + `/api/2.0/`.
    pub fn api_url(&self) -> String {
        format!("{}/api/2.0/", self.base_url())
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.running.port()
    }

    /// The PEM of the CA that signed the server certificate (TLS mode only).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// The API key of the first configured user (empty if there is none).
    pub fn admin_key(&self) -> String {
        self.running.service().users().first().map(SimUser::api_key).unwrap_or_default()
    }

    /// The configured users.
    pub fn users(&self) -> Vec<SimUser> {
        self.running.service().users().to_vec()
    }

    /// Adds a fault rule (checked after the ones added before).
    pub fn add_fault(&self, rule: FaultRule) {
        self.running.service().add_fault(rule);
    }

    /// Removes all fault rules.
    pub fn clear_faults(&self) {
        self.running.service().clear_faults();
    }

    /// Makes power requests for a machine fail (or work again with `None`).
    pub fn set_bmc_failure(&self, system_id: &str, failure: Option<BmcFailure>) {
        self.running.service().set_bmc_failure(system_id, failure);
    }

    /// Sets a machine's power state now (cancelling a pending change).
    /// `false` if there is no such machine.
    pub fn set_power_state(&self, system_id: &str, state: PowerState) -> bool {
        self.running.service().set_power_state(system_id, state)
    }

    /// A machine's current state.
    pub fn machine(&self, system_id: &str) -> Option<SimMachine> {
        self.running.service().machine(system_id)
    }

    /// All machines' current state, in id order.
    pub fn machines(&self) -> Vec<SimMachine> {
        self.running.service().machines()
    }

    /// What has been served so far.
    pub fn stats(&self) -> SimStats {
        self.running.service().stats()
    }

    /// Zeroes the statistics.
    pub fn reset_stats(&self) {
        self.running.service().reset_stats();
    }

    /// Stops the simulator (the same as dropping it).
    pub fn stop(self) {
        drop(self);
    }
}
