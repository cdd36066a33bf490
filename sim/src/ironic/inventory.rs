//! The simulated Ironic's nodes as it tracks them: target power states,
//! changes still settling, conductor locks, lookups by UUID or name, and a
//! node's JSON.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::errors::{ironic_error, not_found};
use super::model::{is_uuid_like, SimNode};
use crate::http::Response;
use crate::openstack::{rfc3339, uuid_for};

/// The conductor that holds node locks.
pub(super) const CONDUCTOR: &str = "ironic-conductor-1";

/// Ironic's `is_valid_logical_name`: RFC 3986 unreserved characters.
fn is_logical_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A node and what Ironic tracks around it.
pub(super) struct Entry {
    pub node: SimNode,
    pub target_power_state: Option<String>,
    /// The power state being reached, and when.
    pub pending: Option<(&'static str, Instant)>,
    /// Power requests still to be refused as locked.
    pub locks: usize,
    pub instance_uuid: Option<String>,
    pub updated_at: String,
}

pub(super) struct Inventory {
    pub entries: Vec<Entry>,
    by_uuid: HashMap<String, usize>,
    pub created_at: String,
}

impl Inventory {
    pub fn new(nodes: Vec<SimNode>) -> Inventory {
        let created_at = now_rfc3339();
        let mut by_uuid = HashMap::new();
        let entries = nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| {
                by_uuid.entry(normalise_uuid(&node.uuid)).or_insert(i);
                let instance_uuid = (node.provision_state == "active").then(|| uuid_for(0x696e_7374, i as u64));
                Entry {
                    node,
                    target_power_state: None,
                    pending: None,
                    locks: 0,
                    instance_uuid,
                    updated_at: created_at.clone(),
                }
            })
            .collect();
        Inventory { entries, by_uuid, created_at }
    }

    /// Applies the power changes that are due.
    pub fn settle(&mut self) {
        let now = Instant::now();
        for e in &mut self.entries {
            if let Some((state, due)) = e.pending {
                if due <= now {
                    e.node.power_state = Some(state.to_string());
                    e.target_power_state = None;
                    e.pending = None;
                    e.updated_at = now_rfc3339();
                }
            }
        }
    }

    pub fn by_uuid(&self, uuid: &str) -> Option<usize> {
        self.by_uuid.get(&normalise_uuid(uuid)).copied()
    }

    /// A node by UUID or, failing that, by name, whatever the version.
    pub fn by_uuid_or_name(&self, ident: &str) -> Option<usize> {
        self.by_uuid(ident).or_else(|| self.entries.iter().position(|e| e.node.name.as_deref() == Some(ident)))
    }

    /// A node by UUID, or by name where the version allows names (1.5).
    pub fn find(&self, ident: &str, version: (u32, u32)) -> Result<usize, Response> {
        if is_uuid_like(ident) {
            return self.by_uuid(ident).ok_or_else(|| not_found(ident));
        }
        if version < (1, 5) {
            return Err(not_found(ident));
        }
        if !is_logical_name(ident) {
            return Err(ironic_error(400, &format!("Expected a logical name or UUID but received {ident}.")));
        }
        self.entries.iter().position(|e| e.node.name.as_deref() == Some(ident)).ok_or_else(|| not_found(ident))
    }
}

fn normalise_uuid(s: &str) -> String {
    s.chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase()).collect()
}

pub(super) fn now_rfc3339() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_micros()).replace('Z', "+00:00")
}

/// A node as `GET /v1/nodes/{id}` (and `detail=True`) shows it.
pub(super) fn node_json(e: &Entry, created_at: &str, public: &str, version: (u32, u32)) -> Value {
    let n = &e.node;
    let mut extra = Map::new();
    if let Some(id) = &n.compute_node_id {
        extra.insert("compute_node_id".into(), id.clone().into());
    }
    let mut node = json!({
        "uuid": n.uuid,
        "name": n.name,
        "power_state": n.power_state,
        "target_power_state": e.target_power_state,
        "provision_state": n.provision_state,
        "target_provision_state": null,
        "maintenance": n.maintenance,
        "maintenance_reason": if n.maintenance { Value::from("Set by an operator") } else { Value::Null },
        "fault": null,
        "instance_uuid": e.instance_uuid,
        "instance_info": {},
        "driver": "ipmi",
        "driver_info": { "ipmi_address": "192.0.2.10", "ipmi_username": "admin", "ipmi_password": "******" },
        "extra": extra,
        "properties": { "cpus": 32, "memory_mb": 131072, "local_gb": 800, "cpu_arch": "x86_64" },
        "last_error": null,
        "console_enabled": false,
        "reservation": if e.pending.is_some() { Value::from(CONDUCTOR) } else { Value::Null },
        "resource_class": "baremetal",
        "created_at": created_at,
        "updated_at": e.updated_at,
        "provision_updated_at": created_at,
        "links": [
            { "href": format!("{public}/v1/nodes/{}", n.uuid), "rel": "self" },
            { "href": format!("{public}/nodes/{}", n.uuid), "rel": "bookmark" },
        ],
    });
    if version >= (1, 46) {
        node["conductor_group"] = "".into();
    }
    if version >= (1, 49) {
        node["conductor"] = CONDUCTOR.into();
    }
    node
}
