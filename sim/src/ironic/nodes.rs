//! Ironic's node endpoints: `GET /v1/nodes` (and `/detail`) with filters,
//! `fields` and `limit`/`marker` pagination, `GET /v1/nodes/{id}`, and
//! `GET /v1/nodes/{id}/states`.

use std::sync::Mutex;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::errors::{ironic_error, not_acceptable, not_found, JSON};
use super::inventory::{node_json, Inventory};
use crate::http::Response;
use crate::openstack::bool_from_string;
use crate::server::lock;
use crate::util::last;

/// What a query value in a `next` link escapes: all but RFC 3986's
/// unreserved characters.
const UNRESERVED_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Node fields Ironic knows (those `fields=` may name).
const NODE_FIELDS: &[&str] = &[
    "uuid",
    "name",
    "power_state",
    "target_power_state",
    "provision_state",
    "target_provision_state",
    "maintenance",
    "maintenance_reason",
    "fault",
    "instance_uuid",
    "instance_info",
    "driver",
    "driver_info",
    "extra",
    "properties",
    "last_error",
    "console_enabled",
    "reservation",
    "conductor_group",
    "conductor",
    "resource_class",
    "created_at",
    "updated_at",
    "provision_updated_at",
];

/// `GET /v1/nodes` (`detail_path` false) or `GET /v1/nodes/detail`.
pub(super) fn list(
    inventory: &Mutex<Inventory>,
    page_size: usize,
    query: &[(String, String)],
    detail_path: bool,
    version: (u32, u32),
    public: &str,
) -> Response {
    let detail = match last(query, "detail") {
        None => None,
        Some(v) => match bool_from_string(v) {
            Some(b) => Some(b),
            None => {
                return ironic_error(
                    400,
                    &format!(
                    "Invalid input for field/attribute detail. Value: '{v}'. Wrong type. Expected 'bool', got 'str'"
                ),
                )
            }
        },
    };
    if detail.is_some() && version < (1, 43) {
        return not_acceptable();
    }
    let fields = match fields(query, version) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let detailed = detail_path || detail == Some(true);
    if detailed && fields.is_some() {
        return ironic_error(400, "Can not specify ?detail=True and fields in the same request.");
    }
    let limit = match last(query, "limit") {
        None => page_size,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX).min(page_size),
            Ok(_) => return ironic_error(400, "Limit must be positive"),
            Err(_) => {
                return ironic_error(
                    400,
                    &format!("Invalid input for field/attribute limit. Value: '{v}'. unable to convert to int"),
                )
            }
        },
    };
    let mut filters: Vec<(&str, String)> = Vec::new();
    let maintenance = match last(query, "maintenance") {
            None => None,
            Some(v) => match bool_from_string(v) {
                Some(b) => {
                    filters.push(("maintenance", b.to_string()));
                    Some(b)
                }
                None => return ironic_error(400, &format!("Invalid input for field/attribute maintenance. Value: '{v}'. Wrong type. Expected 'bool', got 'str'")),
            },
        };
    let associated = match last(query, "associated") {
            None => None,
            Some(v) => match bool_from_string(v) {
                Some(b) => {
                    filters.push(("associated", b.to_string()));
                    Some(b)
                }
                None => return ironic_error(400, &format!("Invalid input for field/attribute associated. Value: '{v}'. Wrong type. Expected 'bool', got 'str'")),
            },
        };
    let provision_state = last(query, "provision_state");
    if let Some(p) = provision_state {
        if version < (1, 9) {
            return not_acceptable();
        }
        filters.push(("provision_state", p.to_string()));
    }

    let mut inv = lock(inventory);
    inv.settle();
    let start = match last(query, "marker") {
        None => 0,
        Some(marker) => match inv.by_uuid(marker) {
            Some(i) => i + 1,
            None => return not_found(marker),
        },
    };
    let mut page = Vec::new();
    let mut last_uuid = None;
    for e in inv.entries.iter().skip(start) {
        if page.len() == limit {
            break;
        }
        let keep = maintenance.is_none_or(|m| e.node.maintenance == m)
            && associated.is_none_or(|a| e.instance_uuid.is_some() == a)
            && provision_state.is_none_or(|p| e.node.provision_state == p);
        if !keep {
            continue;
        }
        let node = if detailed {
            node_json(e, &inv.created_at, public, version)
        } else {
            let mut full = node_json(e, &inv.created_at, public, version);
            let wanted: Vec<&str> = match &fields {
                Some(f) => f.iter().map(String::as_str).collect(),
                None => vec!["uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance"],
            };
            if let Value::Object(map) = &mut full {
                map.retain(|k, _| k == "links" || wanted.contains(&k.as_str()));
            }
            full
        };
        last_uuid = Some(e.node.uuid.clone());
        page.push(node);
    }
    let mut body = Map::new();
    let full = page.len() == limit;
    body.insert("nodes".into(), Value::Array(page));
    if let (true, Some(marker)) = (full, last_uuid) {
        let mut args = String::new();
        if let Some(d) = detail {
            args.push_str(&format!("detail={}&", if d { "True" } else { "False" }));
        }
        if let Some(f) = &fields {
            args.push_str(&format!("fields={}&", f.join(",")));
        }
        for (k, v) in &filters {
            args.push_str(&format!("{k}={}&", utf8_percent_encode(v, UNRESERVED_ESCAPED)));
        }
        let resource = if detail_path { "nodes/detail" } else { "nodes" };
        body.insert("next".into(), format!("{public}/v1/{resource}?{args}limit={limit}&marker={marker}").into());
    }
    Response::new(200, JSON, Value::Object(body).to_string())
}

/// The `fields` parameter: field names, checked.
fn fields(query: &[(String, String)], version: (u32, u32)) -> Result<Option<Vec<String>>, Response> {
    let Some(text) = last(query, "fields") else { return Ok(None) };
    if version < (1, 8) {
        return Err(not_acceptable());
    }
    let fields: Vec<String> = text.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
    let invalid: Vec<&str> = fields.iter().map(String::as_str).filter(|f| !NODE_FIELDS.contains(f)).collect();
    if !invalid.is_empty() {
        return Err(ironic_error(400, &format!("Field(s) \"{}\" are not valid", invalid.join(", "))));
    }
    Ok(Some(fields))
}

/// `GET /v1/nodes/{id}`.
pub(super) fn show(
    inventory: &Mutex<Inventory>,
    ident: &str,
    query: &[(String, String)],
    version: (u32, u32),
    public: &str,
) -> Response {
    let fields = match fields(query, version) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let mut inv = lock(inventory);
    inv.settle();
    let i = match inv.find(ident, version) {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let mut node = node_json(&inv.entries[i], &inv.created_at, public, version);
    if let (Some(fields), Value::Object(map)) = (&fields, &mut node) {
        map.retain(|k, _| k == "links" || fields.iter().any(|f| f == k));
    }
    Response::new(200, JSON, node.to_string())
}

/// `GET /v1/nodes/{id}/states`.
pub(super) fn states(inventory: &Mutex<Inventory>, ident: &str, version: (u32, u32)) -> Response {
    let mut inv = lock(inventory);
    inv.settle();
    let i = match inv.find(ident, version) {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let e = &inv.entries[i];
    let mut body = json!({
        "console_enabled": false,
        "last_error": null,
        "power_state": e.node.power_state,
        "provision_state": e.node.provision_state,
        "provision_updated_at": inv.created_at,
        "raid_config": {},
        "target_power_state": e.target_power_state,
        "target_provision_state": null,
        "target_raid_config": {},
    });
    if version >= (1, 75) {
        body["boot_mode"] = "uefi".into();
        body["secure_boot"] = false.into();
    }
    Response::new(200, JSON, body.to_string())
}
