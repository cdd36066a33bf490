//! The integration tests, one binary with a module each (as uv and
//! rust-analyzer keep theirs): the binary run as a process against the
//! simulators, the charm with fake hook tools, the library's clients, faults
//! on the wire, the real programs as judges (`tests/peers/`), and the
//! layering of `src/`. `common` has the helpers and fake hook tools.
//!
//! Run one module with `cargo test --test it render::`, one test with
//! `cargo test --test it render::merge_keeps_crlf_line_endings -- --exact`.

mod common;

mod architecture;
mod charm;
mod doctor;
mod effective_oslo;
mod exit_codes;
mod faults;
mod ironic;
mod json_errors;
mod libmaas_peer;
mod listing_damage;
mod maas_client;
mod nodes;
mod nova;
mod oslo_roundtrip;
mod proxies;
mod real_ironic;
mod render;
mod secrets;
mod substitution;
mod validate;
mod watcher_peer;
