//! How Watcher and oslo.config behave: the effective configuration each
//! Watcher program reads, oslo.config's INI dialect, Watcher's pairing of nodes with Nova's
//! hypervisors, and what each Watcher version can do.

pub mod effective;
pub mod ini;
pub mod pairing;
pub mod version;
