//! The unit the binary runs on: Juju's hook tools, the system's programs,
//! Watcher's user and group, and files written atomically.

pub mod accounts;
pub mod atomic_file;
pub mod juju;
pub mod service_env;
pub mod system;
