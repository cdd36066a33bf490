//! OpenStack's services as Watcher's clients reach them: Keystone for the
//! token and the catalog, then Ironic (`baremetal`) and Nova (`compute`).

pub mod ironic;
pub mod keystone;
pub mod nova;
