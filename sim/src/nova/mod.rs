//! A simulated OpenStack Nova (the hypervisor API), with a Keystone v3 in
//! front of it, on 127.0.0.1.
//!
//! It answers as Nova does on the wire: `GET /os-hypervisors/detail` and
//! `GET /os-hypervisors` with `limit`/`marker` paging and a
//! `hypervisors_links` `next` link when a page is full (from 2.33), ids that
//! are integers before 2.53 and UUIDs from 2.53, `with_servers` (2.53; the
//! `servers` list always present when asked for from 2.75),
//! `hypervisor_hostname_pattern`, `running_vms` and the other usage fields
//! up to 2.87 and not from 2.88 (which adds `uptime`); `GET
//! /os-hypervisors/{id}`; microversion headers and 406 outside the range
//! served; 401 for a missing or expired token; Nova's fault bodies.
//! Faults (a status, a delay, a hang, a slow or broken body) can be
//! injected by path at run time.
//!
//! Keystone (the Ironic simulator's) is served under `/identity`; its
//! catalog lists `compute` endpoints `/compute/v2.1` (`public`),
//! `/compute-internal/v2.1` (`internal`) and `/compute-admin/v2.1`
//! (`admin`); `next` links always use the public URL.
//!
//! ```no_run
//! use metal_sim::nova::{NovaSim, NovaSimConfig, SimHypervisor};
//!
//! let sim = NovaSim::start(NovaSimConfig { hypervisors: SimHypervisor::generate(25), page_size: 4, ..Default::default() }).unwrap();
//! let conf = format!("[DEFAULT]\n{}", sim.clients_auth_section()); // watcher.conf
//! # let _ = conf;
//! ```

mod api;
mod model;

use std::io;
use std::sync::Arc;

pub use model::{NovaSimConfig, NovaStats, SimHypervisor};

pub use crate::maas::{Fault, FaultRule};
use crate::server::Server;

/// A running simulated Nova + Keystone. Dropping it (or [`NovaSim::stop`])
/// closes every connection and joins every thread.
pub struct NovaSim {
    server: Server,
    service: Arc<api::NovaService>,
}

impl NovaSim {
    /// Starts a simulator on a free port of 127.0.0.1. Fails on an invalid
    /// version range.
    pub fn start(config: NovaSimConfig) -> io::Result<NovaSim> {
        NovaSim::start_on_port(config, 0)
    }

    /// Starts a simulator on `127.0.0.1:port` (0 = a free port).
    pub fn start_on_port(config: NovaSimConfig, port: u16) -> io::Result<NovaSim> {
        let service = Arc::new(api::NovaService::new(config)?);
        let server = Server::start(port, None, service.clone())?;
        Ok(NovaSim { server, service })
    }

    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// Keystone's URL, `http://127.0.0.1:PORT/identity`.
    pub fn auth_url(&self) -> String {
        format!("http://127.0.0.1:{}/identity", self.port())
    }

    /// Nova's endpoint for a catalog interface (`public`, `internal`,
    /// `admin`; anything else gives the public one).
    pub fn nova_url_for(&self, interface: &str) -> String {
        let prefix = api::INTERFACES.iter().find(|(i, _)| *i == interface).map_or(api::INTERFACES[0].1, |(_, p)| *p);
        format!("http://127.0.0.1:{}{prefix}/v2.1", self.port())
    }

    /// A watcher.conf `[watcher_clients_auth]` section for the first user
    /// (password, user and project names with domain names).
    pub fn clients_auth_section(&self) -> String {
        let (user, password) = self.service.users().first().cloned().unwrap_or_default();
        format!(
            "[watcher_clients_auth]\nauth_type = password\nauth_url = {}\nusername = {user}\npassword = {password}\n\
             user_domain_name = {}\nproject_name = {}\nproject_domain_name = {}\n",
            self.auth_url(),
            crate::ironic::keystone::DOMAIN_NAME,
            crate::ironic::keystone::PROJECT_NAME,
            crate::ironic::keystone::DOMAIN_NAME
        )
    }

    /// Every token issued so far, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.service.issued_tokens()
    }

    /// Makes every token issued so far invalid: Nova answers 401 to them.
    pub fn expire_tokens(&self) {
        self.service.expire_tokens();
    }

    /// Adds a fault rule: requests whose path contains `path_contains` get
    /// the fault (`op` is not used). Rules are checked in the order added.
    pub fn add_fault(&self, rule: FaultRule) {
        self.service.add_fault(rule);
    }

    pub fn clear_faults(&self) {
        self.service.clear_faults();
    }

    /// The hypervisors, in listing order.
    pub fn hypervisors(&self) -> Vec<SimHypervisor> {
        self.service.hypervisors()
    }

    /// Replaces the hypervisors.
    pub fn set_hypervisors(&self, hypervisors: Vec<SimHypervisor>) {
        self.service.set_hypervisors(hypervisors);
    }

    pub fn stats(&self) -> NovaStats {
        self.service.stats()
    }

    pub fn reset_stats(&self) {
        self.service.reset_stats();
    }

    /// Stops the simulator (the same as dropping it).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for NovaSim {
    fn drop(&mut self) {
        self.server.stop();
    }
}
