//! A simulated OpenStack Ironic, with the Keystone v3 in front of it, on
//! 127.0.0.1.
//!
//! It answers as the real services do on the wire: Keystone's
//! `POST /v3/auth/tokens` (password by user name + domain or id, project
//! scope by name + domain or id, application credentials, which may not ask
//! for a scope) with `X-Subject-Token` and a service catalog; tokens that
//! expire; Ironic's microversion headers and 406; `GET /v1/nodes` (plain or
//! `detail=True`, `limit`/`marker` pagination with `next` when a page is
//! full); `GET /v1/nodes/{uuid or name}`; `GET /v1/nodes/{id}/states`; and
//! `PUT /v1/nodes/{id}/states/power` answering 202 and settling later, 400
//! for a bad target and 409 while the node is locked. Errors carry Ironic's
//! double-encoded `error_message` body.
//!
//! Keystone is served under `/identity`; Ironic under `/baremetal` (the
//! catalog's `public` endpoint), `/baremetal-internal` (`internal`) and
//! `/baremetal-admin` (`admin`), so a test can tell which endpoint a client
//! picked. `next` links always use the public URL.
//!
//! ```no_run
//! use metal_sim::ironic::{IronicSim, IronicSimConfig, SimNode};
//!
//! let sim = IronicSim::start(IronicSimConfig { nodes: SimNode::generate(25), ..Default::default() }).unwrap();
//! let conf = format!("[DEFAULT]\n{}", sim.clients_auth_section()); // watcher.conf
//! # let _ = conf;
//! ```

mod errors;
mod inventory;
mod model;
mod nodes;
mod power;
mod routes;
mod service;

use std::io;

pub use model::{IronicSimConfig, IronicStats, SimNode};

use crate::keystone;
use crate::server::Running;
use routes::INTERFACES;
use service::IronicService;

/// A running simulated Ironic + Keystone. Dropping it (or
/// [`IronicSim::stop`]) closes every connection and joins every thread.
pub struct IronicSim {
    running: Running<IronicService>,
}

impl IronicSim {
    /// Starts a simulator on a free port of 127.0.0.1. Fails on an invalid
    /// version range.
    pub fn start(config: IronicSimConfig) -> io::Result<IronicSim> {
        IronicSim::start_on_port(config, 0)
    }

    /// Starts a simulator on `127.0.0.1:port` (0 = a free port).
    pub fn start_on_port(config: IronicSimConfig, port: u16) -> io::Result<IronicSim> {
        Ok(IronicSim { running: Running::start(IronicService::new(config)?, port, None)? })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.running.port()
    }

    /// Keystone's URL, `http://127.0.0.1:PORT/identity` (tokens are issued
    /// at this + `/v3/auth/tokens`).
    pub fn auth_url(&self) -> String {
        self.running.local_url("/identity")
    }

    /// Ironic's public endpoint, `http://127.0.0.1:PORT/baremetal`.
    pub fn ironic_url(&self) -> String {
        self.ironic_url_for("public")
    }

    /// Ironic's endpoint for a catalog interface (`public`, `internal` or
    /// `admin`; anything else gives the public one).
    pub fn ironic_url_for(&self, interface: &str) -> String {
        let prefix = INTERFACES.iter().find(|(i, _)| *i == interface).map_or(INTERFACES[0].1, |(_, p)| *p);
        self.running.local_url(prefix)
    }

    /// A watcher.conf `[watcher_clients_auth]` section for the first user:
    /// password authentication with user and project names and domain
    /// names, as Watcher's install guide writes it.
    pub fn clients_auth_section(&self) -> String {
        let (user, password) = self.running.service().users().first().cloned().unwrap_or_default();
        keystone::clients_auth_section(&self.auth_url(), &user, &password)
    }

    /// The Keystone id of a configured user (a fixed function of the name).
    pub fn user_id(&self, username: &str) -> Option<String> {
        self.running.service().users().iter().any(|(u, _)| u == username).then(|| keystone::user_id(username))
    }

    /// The id of project `service`, the one every user has a role on.
    pub fn project_id(&self) -> String {
        keystone::project_id()
    }

    /// Every token issued so far (expired ones too), oldest first: for
    /// checking that a client never shows one.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.running.service().issued_tokens()
    }

    /// Makes every token issued so far invalid now: Ironic answers 401 to
    /// them. Tokens issued afterwards work.
    pub fn expire_tokens(&self) {
        self.running.service().expire_tokens();
    }

    /// Lets `requests` more authenticated Ironic requests through, then
    /// makes every token issued so far invalid (as
    /// [`IronicSim::expire_tokens`]) just before the next one: a token that
    /// expires in the middle of a client's run.
    pub fn expire_tokens_after(&self, requests: usize) {
        self.running.service().expire_tokens_after(requests);
    }

    /// The next `times` power requests for the node (by UUID) answer 409
    /// `NodeLocked`, as when another operation holds the conductor's lock.
    pub fn lock_node(&self, uuid: &str, times: usize) {
        self.running.service().lock_node(uuid, times);
    }

    /// Sets a node's power state now (by UUID or name), cancelling any
    /// pending change. `false` if there is no such node.
    pub fn set_power_state(&self, node: &str, state: Option<&str>) -> bool {
        self.running.service().set_power_state(node, state)
    }

    /// A node's current state, by UUID (or name).
    pub fn node(&self, uuid: &str) -> Option<SimNode> {
        self.running.service().node(uuid)
    }

    /// All nodes' current state, in listing order.
    pub fn nodes(&self) -> Vec<SimNode> {
        self.running.service().nodes()
    }

    /// What has been served so far.
    pub fn stats(&self) -> IronicStats {
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
