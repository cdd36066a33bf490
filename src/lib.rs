//! watcher-metal: renders, validates and operates OpenStack Watcher's
//! metal configuration (`[maas_client]`, `[ironic_client]`) for Juju charms.
//!
//! See ARCHITECTURE.md for the map of modules.

pub mod api_key;
pub mod apply;
pub mod atomic_file;
pub mod config;
pub mod dispatch;
pub mod doctor;
pub mod effective;
pub mod error;
pub mod http;
pub mod ini;
pub mod ironic;
pub mod juju;
pub mod maas;
pub mod maas_url;
pub mod metal;
pub mod nova;
pub mod pairing;
pub mod render;
pub mod secret;
pub mod survey;
pub mod system;
pub mod validate;
pub mod watcher_version;

pub use error::Error;
