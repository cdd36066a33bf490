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

mod model;
mod service;

use std::io;

pub use model::{NovaSimConfig, NovaStats, SimHypervisor};

pub use crate::fault::{Fault, FaultRule};
use crate::keystone;
use crate::server::Running;
use service::{NovaService, INTERFACES};

/// A running simulated Nova + Keystone. Dropping it (or [`NovaSim::stop`])
/// closes every connection and joins every thread.
pub struct NovaSim {
    running: Running<NovaService>,
}

impl NovaSim {
    /// Starts a simulator on a free port of 127.0.0.1. Fails on an invalid
    /// version range.
    pub fn start(config: NovaSimConfig) -> io::Result<NovaSim> {
        NovaSim::start_on_port(config, 0)
    }

    /// Starts a simulator on `127.0.0.1:port` (0 = a free port).
    pub fn start_on_port(config: NovaSimConfig, port: u16) -> io::Result<NovaSim> {
        Ok(NovaSim { running: Running::start(NovaService::new(config)?, port, None)? })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.running.port()
    }

    /// Keystone's URL, `http://127.0.0.1:PORT/identity`.
    pub fn auth_url(&self) -> String {
        self.running.local_url("/identity")
    }

    /// Nova's endpoint for a catalog interface (`public`, `internal`,
    /// `admin`; anything else gives the public one).
    pub fn nova_url_for(&self, interface: &str) -> String {
        let prefix = INTERFACES.iter().find(|(i, _)| *i == interface).map_or(INTERFACES[0].1, |(_, p)| *p);
        self.running.local_url(&format!("{prefix}/v2.1"))
    }

    /// A watcher.conf `[watcher_clients_auth]` section for the first user
    /// (password, user and project names with domain names).
    pub fn clients_auth_section(&self) -> String {
        let (user, password) = self.running.service().users().first().cloned().unwrap_or_default();
        keystone::clients_auth_section(&self.auth_url(), &user, &password)
    }

    /// Every token issued so far, oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.running.service().issued_tokens()
    }

    /// Makes every token issued so far invalid: Nova answers 401 to them.
    pub fn expire_tokens(&self) {
        self.running.service().expire_tokens();
    }

    /// Adds a fault rule: requests whose path contains `path_contains` get
    /// the fault (`op` is not used). Rules are checked in the order added.
    pub fn add_fault(&self, rule: FaultRule) {
        self.running.service().add_fault(rule);
    }

    /// Removes all fault rules.
    pub fn clear_faults(&self) {
        self.running.service().clear_faults();
    }

    /// The hypervisors, in listing order.
    pub fn hypervisors(&self) -> Vec<SimHypervisor> {
        self.running.service().hypervisors()
    }

    /// Replaces the hypervisors.
    pub fn set_hypervisors(&self, hypervisors: Vec<SimHypervisor>) {
        self.running.service().set_hypervisors(hypervisors);
    }

    /// What has been served so far.
    pub fn stats(&self) -> NovaStats {
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
