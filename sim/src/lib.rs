//! Simulators of bare-metal APIs for tests and benchmarks.
//!
//! [`MaasSim`] is a MAAS region API (2.0), [`ironic::IronicSim`] an Ironic
//! and [`nova::NovaSim`] a Nova hypervisor API, each with the Keystone in
//! front of it, served over real HTTP/1.1 (or HTTPS) on 127.0.0.1 only,
//! started and stopped by a test. Each simulator owns its port, threads and
//! state, so many can run at once in one process. [`cli`] is what the
//! simulators' binaries share.

pub mod cli;
pub mod ironic;
pub mod maas;
pub mod nova;

mod fault;
mod http;
mod keystone;
mod multipart;
mod openstack;
mod server;
mod tls;
mod util;

pub use util::wait_for_stdin_close;

pub use maas::*;
