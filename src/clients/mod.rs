//! Protocol clients: each speaks one service's protocol (MAAS, Keystone,
//! Ironic, Nova) over the shared HTTP stack, takes plain settings, and
//! knows nothing of charms, templates or the CLI.

pub mod http;
pub mod json_body;
pub mod maas;
pub mod openstack;
