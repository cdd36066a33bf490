//! The JSON documents the simulated MAAS serves: machines (with the fields
//! MAAS 3.x shows and the ones gomaasapi requires), users, `version/` and the
//! `describe/` API description python-libmaas builds its client from.

use serde_json::{json, Value};

use super::model::{status_name, SimMachine, SimUser, STATUS_DEPLOYED, STATUS_READY};
use crate::util::json_str;

/// The API path prefix.
pub(crate) const API: &str = "/MAAS/api/2.0/";

/// What `version/` lists as capabilities.
pub(crate) const CAPABILITIES: [&str; 9] = [
    "networks-management",
    "static-ipaddresses",
    "ipv6-deployment-ubuntu",
    "devices-management",
    "storage-deployment-ubuntu",
    "network-deployment-ubuntu",
    "bridging-interface-ubuntu",
    "bridging-automatic-ubuntu",
    "authenticate-api",
];

/// Ids of the zone, pool and domain objects a machine refers to.
pub(crate) struct Refs {
    pub zone_id: usize,
    pub pool_id: usize,
    pub domain_id: usize,
}

/// A small deterministic number from a machine's index, for varied but
/// stable hardware facts.
fn spread(index: usize, modulo: usize) -> usize {
    (index.wrapping_mul(2_654_435_761) >> 7) % modulo
}

/// The JSON object MAAS returns for a machine. `index` is its position
/// (database id - 1).
pub(crate) fn machine(m: &SimMachine, index: usize, refs: &Refs) -> String {
    let id = &m.system_id;
    let deployed = m.status == STATUS_DEPLOYED;
    let ready = m.status == STATUS_READY;
    let cpu_count = [8, 16, 32, 64][spread(index, 4)];
    let memory = [32768, 65536, 131072, 262144][spread(index + 1, 4)];
    let ip = format!("10.{}.{}.{}", 20 + index / 62_500, (index / 250) % 250, index % 250 + 2);
    let ip_addresses = if deployed { format!("[{}]", json_str(&ip)) } else { "[]".into() };
    let owner = m.owner.as_deref().map(json_str).unwrap_or_else(|| "null".into());
    let (osystem, distro, hwe) =
        if deployed { ("\"ubuntu\"", "\"jammy\"", "\"ga-22.04\"") } else { ("\"\"", "\"\"", "null") };
    let pool_description = if m.pool == "default" { "Default pool" } else { "" };
    let uuid = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        index * 7919 + 1,
        index % 65536,
        index % 4096,
        (index * 31) % 4096,
        index * 104_729 + 17
    );
    let status_message = match m.status {
        STATUS_DEPLOYED => "\"Deployed\"",
        STATUS_READY => "\"Ready\"",
        _ => "null",
    };
    format!(
        concat!(
            "{{\"resource_uri\": \"{api}machines/{id}/\", \"system_id\": {sid}, \"hostname\": {hostname}, ",
            "\"description\": \"\", \"hardware_uuid\": \"{uuid}\", ",
            "\"domain\": {{\"authoritative\": true, \"ttl\": null, \"is_default\": {domain_default}, \"name\": {domain}, ",
            "\"resource_record_count\": 0, \"id\": {domain_id}, \"resource_uri\": \"{api}domains/{domain_id}/\"}}, ",
            "\"fqdn\": {fqdn}, \"owner\": {owner}, \"owner_data\": {{}}, \"locked\": {locked}, ",
            "\"cache_sets\": [], \"bcaches\": [], \"bios_boot_method\": \"uefi\", \"boot_interface\": null, ",
            "\"architecture\": \"amd64/generic\", \"min_hwe_kernel\": \"\", \"hwe_kernel\": {hwe}, ",
            "\"cpu_count\": {cpu_count}, \"cpu_speed\": 2400, \"memory\": {memory}, \"swap_size\": null, ",
            "\"storage\": 960197.124096, \"status\": {status}, \"status_name\": {status_name}, ",
            "\"status_message\": {status_message}, \"status_action\": \"\", ",
            "\"osystem\": {osystem}, \"distro_series\": {distro}, \"ephemeral_deploy\": false, ",
            "\"error_description\": \"\", \"netboot\": {netboot}, ",
            "\"power_type\": {power_type}, \"power_state\": \"{power_state}\", \"tag_names\": [], ",
            "\"address_ttl\": null, \"ip_addresses\": {ip_addresses}, \"interface_set\": [], ",
            "\"zone\": {{\"name\": {zone}, \"description\": \"\", \"id\": {zone_id}, \"resource_uri\": {zone_uri}}}, ",
            "\"pool\": {{\"name\": {pool}, \"description\": \"{pool_description}\", \"id\": {pool_id}, \"resource_uri\": \"{api}resourcepool/{pool_id}/\"}}, ",
            "\"disable_ipv4\": false, \"boot_disk\": null, \"blockdevice_set\": [], \"physicalblockdevice_set\": [], ",
            "\"virtualblockdevice_set\": [], \"volume_groups\": [], \"raids\": [], \"special_filesystems\": [], ",
            "\"parent\": null, \"default_gateways\": {{\"ipv4\": {{\"gateway_ip\": null, \"link_id\": null}}, ",
            "\"ipv6\": {{\"gateway_ip\": null, \"link_id\": null}}}}, ",
            "\"current_commissioning_result_id\": {crid}, \"current_testing_result_id\": {trid}, ",
            "\"current_installation_result_id\": {irid}, ",
            "\"commissioning_status\": 2, \"commissioning_status_name\": \"Passed\", ",
            "\"testing_status\": 2, \"testing_status_name\": \"Passed\", ",
            "\"cpu_test_status\": -1, \"cpu_test_status_name\": \"Unknown\", ",
            "\"memory_test_status\": -1, \"memory_test_status_name\": \"Unknown\", ",
            "\"network_test_status\": -1, \"network_test_status_name\": \"Unknown\", ",
            "\"storage_test_status\": 2, \"storage_test_status_name\": \"Passed\", ",
            "\"interface_test_status\": -1, \"interface_test_status_name\": \"Unknown\", ",
            "\"other_test_status\": -1, \"other_test_status_name\": \"Unknown\", ",
            "\"hardware_info\": {{\"system_vendor\": \"Simulated\", \"system_product\": \"SIM-1U\", ",
            "\"system_family\": \"Unknown\", \"system_version\": \"1.0\", \"system_sku\": \"Unknown\", ",
            "\"system_serial\": \"SN{serial:08}\", \"cpu_model\": \"Simulated CPU @ 2.40GHz\", ",
            "\"mainboard_vendor\": \"Simulated\", \"mainboard_product\": \"Unknown\", ",
            "\"mainboard_serial\": \"Unknown\", \"mainboard_version\": \"Unknown\", ",
            "\"mainboard_firmware_vendor\": \"Simulated\", \"mainboard_firmware_date\": \"01/01/2024\", ",
            "\"mainboard_firmware_version\": \"1.0\", \"chassis_vendor\": \"Simulated\", \"chassis_type\": \"Rack Mount Chassis\", ",
            "\"chassis_serial\": \"Unknown\", \"chassis_version\": \"Unknown\"}}, ",
            "\"numanode_set\": [{{\"index\": 0, \"memory\": {memory}, \"cores\": [{cores}]}}], ",
            "\"workload_annotations\": {{}}, \"last_sync\": null, \"sync_interval\": null, \"next_sync\": null, ",
            "\"enable_hw_sync\": false, \"enable_kernel_crash_dump\": false, \"is_dpu\": false, ",
            "\"node_type\": 0, \"node_type_name\": \"Machine\"}}"
        ),
        api = API,
        id = id,
        sid = json_str(id),
        hostname = json_str(&m.hostname),
        uuid = uuid,
        domain_default = m.domain == "maas",
        domain = json_str(&m.domain),
        domain_id = refs.domain_id,
        fqdn = json_str(&m.fqdn()),
        owner = owner,
        locked = m.locked,
        hwe = hwe,
        cpu_count = cpu_count,
        memory = memory,
        status = m.status,
        status_name = json_str(status_name(m.status)),
        status_message = status_message,
        osystem = osystem,
        distro = distro,
        netboot = ready,
        power_type = json_str(&m.power_type),
        power_state = m.power_state.as_str(),
        ip_addresses = ip_addresses,
        zone = json_str(&m.zone),
        zone_id = refs.zone_id,
        zone_uri = json_str(&format!("{API}zones/{}/", m.zone)),
        pool = json_str(&m.pool),
        pool_description = pool_description,
        pool_id = refs.pool_id,
        crid = index * 3 + 1,
        trid = index * 3 + 2,
        irid = if deployed { (index * 3 + 3).to_string() } else { "null".into() },
        serial = index + 1,
        cores = (0..cpu_count).map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
    )
}

/// `users/?op=whoami` and the entries of `users/`.
pub(crate) fn user(u: &SimUser) -> String {
    json!({
        "is_superuser": u.is_superuser,
        "username": u.username,
        "email": format!("{}@example.com", u.username),
        "is_local": true,
        "resource_uri": format!("{API}users/{}/", u.username),
    })
    .to_string()
}

/// `version/`.
pub(crate) fn version(version: &str) -> String {
    json!({ "capabilities": CAPABILITIES, "version": version, "subversion": "" }).to_string()
}

fn action(method: &str, name: &str, op: Option<&str>, doc: &str) -> Value {
    json!({ "method": method, "name": name, "op": op, "restful": op.is_none(), "doc": doc })
}

fn handler(name: &str, doc: &str, path: &str, params: &[&str], actions: Vec<Value>, base: &str) -> Value {
    json!({
        "name": name,
        "doc": doc,
        "path": path,
        "params": params,
        "actions": actions,
        "uri": format!("{base}{path}"),
    })
}

/// The `describe/` document: the handlers this simulator serves, with
/// absolute URIs on `base` (scheme and host of the request).
pub(crate) fn describe(base: &str) -> String {
    let version = handler(
        "VersionHandler",
        "Information about this MAAS instance.",
        &format!("{API}version/"),
        &[],
        vec![action("GET", "read", None, "Read version and capabilities.")],
        base,
    );
    let users = handler(
        "UsersHandler",
        "Manage the user accounts of this MAAS.",
        &format!("{API}users/"),
        &[],
        vec![
            action("GET", "read", None, "List users."),
            action("GET", "whoami", Some("whoami"), "Returns the currently logged in user."),
        ],
        base,
    );
    let machines = handler(
        "MachinesHandler",
        "Manage the collection of all the machines in the MAAS.",
        &format!("{API}machines/"),
        &[],
        vec![action(
            "GET",
            "read",
            None,
            "List machines.\n\n:param hostname: Only machines with this hostname.\n:param id: Only machines with this system id.\n:param zone: Only machines in this zone.\n:param pool: Only machines in this resource pool.",
        )],
        base,
    );
    let anon_machines =
        handler("AnonMachinesHandler", "Anonymous machine operations.", &format!("{API}machines/"), &[], vec![], base);
    let machine = handler(
        "MachineHandler",
        "Manage an individual machine.",
        &format!("{API}machines/{{system_id}}/"),
        &["system_id"],
        vec![
            action("POST", "power_off", Some("power_off"), "Power off a node.\n\n:param stop_mode: 'soft' or 'hard'.\n:param comment: Optional comment for the event log."),
            action("POST", "power_on", Some("power_on"), "Turn on a node.\n\n:param user_data: base64-encoded user data.\n:param comment: Optional comment for the event log."),
            action("GET", "query_power_state", Some("query_power_state"), "Query the power state of a node."),
            action("GET", "read", None, "Read a node."),
        ],
        base,
    );
    let resources = vec![
        json!({ "name": "MachineHandler", "anon": null, "auth": machine }),
        json!({ "name": "MachinesHandler", "anon": anon_machines, "auth": machines }),
        json!({ "name": "UsersHandler", "anon": null, "auth": users }),
        json!({ "name": "VersionHandler", "anon": version, "auth": null }),
    ];
    let mut handlers: Vec<Value> =
        resources.iter().filter(|r| !r["anon"].is_null()).map(|r| r["anon"].clone()).collect();
    handlers.extend(resources.iter().filter(|r| !r["auth"].is_null()).map(|r| r["auth"].clone()));
    json!({ "doc": "MAAS API", "hash": api_hash(), "resources": resources, "handlers": handlers }).to_string()
}

/// The API description hash (`X-MAAS-API-Hash`), fixed for this simulator.
pub(crate) fn api_hash() -> &'static str {
    "5c1f9b6a0e3d4c2b8a7f6e5d4c3b2a1908f7e6d5"
}
