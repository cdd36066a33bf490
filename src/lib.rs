//! watcher-metal: renders, validates and operates OpenStack Watcher's
//! metal configuration (`[maas_client]`, `[ironic_client]`) for Juju charms.
//!
//! The folders are the layers, each importing only from those below it
//! (see ARCHITECTURE.md): the charm face (`charm`; the CLI face is the
//! binary's `cli`), the operations both faces call (`ops`), Watcher and its
//! files (`watcher`), the charm's options (`config`), the metal backends
//! (`metal`), the protocol clients (`clients`), and the host (`host`).

pub mod charm;
pub mod clients;
pub mod config;
pub mod exit_codes;
pub mod host;
pub mod metal;
pub mod ops;
pub mod secret;
pub mod watcher;
