//! Ironic's power endpoint, `PUT /v1/nodes/{id}/states/power`: the checks
//! Ironic makes, 409 while the conductor holds the node's lock, and 202 with
//! the change settling after the configured delay.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::errors::{ironic_error, not_acceptable, JSON};
use super::inventory::{now_rfc3339, Inventory, CONDUCTOR};
use crate::http::Response;
use crate::server::lock;

/// The power state a request leads to.
fn final_state(target: &str) -> &'static str {
    match target {
        "power off" | "soft power off" => "power off",
        _ => "power on",
    }
}

/// Answers a power request for node `ident`; `raw_path` is the request's
/// path (the `Location` answered points at its `states`).
pub(super) fn set_power(
    inventory: &Mutex<Inventory>,
    power_delay: Duration,
    ident: &str,
    body: &[u8],
    version: (u32, u32),
    public: &str,
    raw_path: &str,
) -> Response {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return ironic_error(400, "Invalid request body: expected a JSON object"),
    };
    let Some(target) = request.get("target") else {
        return ironic_error(400, "Missing argument: \"target\"");
    };
    let Some(target) = target.as_str() else {
        return ironic_error(400, "Invalid input for field/attribute target. Value: not a string.");
    };
    let timeout = request.get("timeout").filter(|t| !t.is_null());
    let soft = matches!(target, "soft power off" | "soft rebooting");
    if (soft || timeout.is_some()) && version < (1, 27) {
        return not_acceptable();
    }
    if let Some(t) = timeout {
        if t.as_i64().is_none_or(|n| n <= 0) {
            return ironic_error(400, &format!("Invalid timeout value {t}. Timeout must be a positive integer."));
        }
    }
    let mut inv = lock(inventory);
    inv.settle();
    let i = match inv.find(ident, version) {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let e = &mut inv.entries[i];
    if !matches!(target, "power on" | "power off" | "rebooting" | "soft rebooting" | "soft power off") {
        return ironic_error(
                400,
                &format!(
                    "The requested action \"{target}\" can not be performed on node \"{ident}\" while it is in state \"{}\".",
                    e.node.power_state.as_deref().unwrap_or("None")
                ),
            );
    }
    if matches!(e.node.provision_state.as_str(), "cleaning" | "clean wait") {
        return ironic_error(
                400,
                &format!(
                    "The requested action \"{target}\" can not be performed on node \"{ident}\" while it is in state \"{}\".",
                    e.node.provision_state
                ),
            );
    }
    // The conductor takes an exclusive lock, held while a change is in
    // progress.
    if e.locks > 0 || e.pending.is_some() {
        e.locks = e.locks.saturating_sub(1);
        return ironic_error(
            409,
            &format!(
                "Node {} is locked by host {CONDUCTOR}, please retry after the current operation is completed.",
                e.node.uuid
            ),
        );
    }
    let state = final_state(target);
    let reboot = matches!(target, "rebooting" | "soft rebooting");
    if reboot || e.node.power_state.as_deref() != Some(state) {
        e.target_power_state = Some(state.to_string());
        e.pending = Some((state, Instant::now().checked_add(power_delay).unwrap_or_else(Instant::now)));
        e.updated_at = now_rfc3339();
    }
    if power_delay.is_zero() {
        inv.settle();
    }
    let states_path = raw_path.strip_suffix("/power").unwrap_or(raw_path);
    let location = match states_path.find("/v1/") {
        Some(at) => format!("{public}{}", &states_path[at..]),
        None => format!("{public}/v1/nodes/{ident}/states"),
    };
    Response::new(202, JSON, "").with_header("Location", location)
}
