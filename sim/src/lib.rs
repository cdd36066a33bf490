//! Simulators of bare-metal APIs for tests and benchmarks.
//!
//! [`MaasSim`] is a MAAS region API (2.0) served over real HTTP/1.1 (or
//! HTTPS) on 127.0.0.1 only, started and stopped by a test. Each simulator
//! owns its port, threads and state, so many can run at once in one process.

pub mod ironic;
pub mod maas;
pub mod nova;

mod http;
mod server;
mod tls;
mod util;

pub use util::wait_for_stdin_close;

pub use maas::*;
