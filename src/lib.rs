//! watcher-metal: renders, validates and operates OpenStack Watcher's
//! metal configuration (`[maas_client]`, `[ironic_client]`) for Juju charms.
//!
//! See ARCHITECTURE.md for the map of modules.

pub mod api_key;
pub mod apply;
pub mod atomic_file;
pub mod backend;
pub mod config;
pub mod dispatch;
pub mod doctor;
pub mod effective;
pub mod error;
pub mod exit_codes;
pub mod http;
pub mod ini;
pub mod ironic;
pub mod json_body;
pub mod juju;
pub mod keystone;
pub mod listing;
pub mod maas;
pub mod maas_url;
pub mod metal;
pub mod nova;
pub mod pairing;
pub mod power;
pub mod render;
pub mod secret;
pub mod source;
pub mod survey;
pub mod system;
pub mod unit;
pub mod validate;
pub mod watcher_version;

pub use error::Error;
