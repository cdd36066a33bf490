//! OpenStack's services as Watcher's clients reach them: Keystone for the
//! token and the catalog, then Ironic (`baremetal`) and Nova (`compute`),
//! both clients of one core (`service`).

pub mod ironic;
pub mod keystone;
pub mod nova;
pub mod service;
