"""Starts scripts/lab's real Keystone (and real Ironic for --backend ironic)
with tests/peers/real_services.py's own code, seeds them, prints one JSON
line and exits, leaving the servers running (each in a session of its own;
scripts/lab stops them by PID).

Usage: OPENSTACK-VENV/bin/python openstack_up.py < settings.json

settings.json (one line on stdin, so that no password is in argv):
  {"work": DIR, "keystone_port": N, "passwords": {"admin", "watcher", "ironic"},
   "endpoints": {"infra-optim": URL, "compute": URL, "placement": URL},
   "ironic": null | {"port": N, "compute_node_ids": [UUID, ...]}}
Output: {"keystone": URL, "ironic": URL|null, "nodes": [{"name", "uuid",
"compute_node_id"}], "pids": {"keystone": PID, "ironic": PID}} or
{"error": ..., "log": ...} with exit status 1.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
import real_services as rs  # noqa: E402

SERVICE_NAMES = {"infra-optim": "watcher", "compute": "nova", "placement": "placement",
                 "baremetal": "ironic"}


def seed(ks, passwords, endpoints):
    admin = rs.token(ks, "admin", passwords["admin"], {"system": {"all": True}})

    def find_or_create(kind, name, body):
        _, _, found = rs.request("GET", "%s/v3/%s?name=%s" % (ks, kind, name), admin)
        if found[kind]:
            return found[kind][0]["id"]
        _, _, made = rs.request("POST", "%s/v3/%s" % (ks, kind), admin, {kind[:-1]: body})
        return made[kind[:-1]]["id"]

    project = find_or_create("projects", "service", {"name": "service", "domain_id": "default"})
    roles = {name: find_or_create("roles", name, {"name": name}) for name in ("admin", "service")}
    for user in ("watcher", "ironic"):
        if user not in passwords:
            continue
        uid = find_or_create("users", user, {"name": user, "domain_id": "default",
                                             "password": passwords[user]})
        for role in ("admin", "service"):
            rs.request("PUT", "%s/v3/projects/%s/users/%s/roles/%s" % (
                ks, project, uid, roles[role]), admin)
    for kind, url in endpoints.items():
        service = find_or_create("services", SERVICE_NAMES[kind],
                                 {"name": SERVICE_NAMES[kind], "type": kind})
        for interface in ("public", "internal", "admin"):
            rs.request("POST", ks + "/v3/endpoints", admin, {"endpoint": {
                "service_id": service, "interface": interface, "region_id": "RegionOne",
                "url": url}})


def ironic_nodes(ks, url, passwords, compute_node_ids):
    """Ironic's nodes, through its state machine by real_services.seed_nodes,
    then each paired with a hypervisor (extra.compute_node_id) and powered on
    (a node without VMs that is on is what saving_energy powers off)."""
    nodes = rs.seed_nodes(ks, url, passwords, len(compute_node_ids))
    admin = rs.token(ks, "admin", passwords["admin"], {"system": {"all": True}})
    version = {"X-OpenStack-Ironic-API-Version": "latest"}
    for node, hv in zip(nodes, compute_node_ids):
        rs.request("PATCH", "%s/v1/nodes/%s" % (url, node["uuid"]), admin, [
            {"op": "replace", "path": "/extra/compute_node_id", "value": hv}], version)
        node["compute_node_id"] = hv
        rs.request("PUT", "%s/v1/nodes/%s/states/power" % (url, node["uuid"]), admin,
                   {"target": "power on"}, version)

    def powered():
        for node in nodes:
            _, _, states = rs.request("GET", "%s/v1/nodes/%s/states" % (url, node["uuid"]),
                                      admin, headers=version)
            if states["power_state"] != "power on" or states["target_power_state"]:
                return False
        return True
    rs.wait_until("Ironic nodes powered on", powered, 120)
    return nodes


def main():
    settings = json.loads(sys.stdin.readline())
    work, passwords = settings["work"], settings["passwords"]
    venv_bin = os.path.dirname(sys.executable)
    endpoints = dict(settings["endpoints"])
    ironic = settings.get("ironic")
    out = {"keystone": None, "ironic": None, "nodes": [], "pids": {}}
    try:
        ks_url = "http://127.0.0.1:%d" % settings["keystone_port"]
        if ironic:
            ironic_url = "http://127.0.0.1:%d" % ironic["port"]
            endpoints["baremetal"] = ironic_url
            conf = rs.ironic_conf(work, ironic["port"], ks_url, passwords, 1000, 0)
            schema = rs.start([os.path.join(venv_bin, "ironic-dbsync"), "--config-file", conf,
                               "create_schema"], os.path.join(work, "ironic-dbsync.log"))
        rs.keystone(work, settings["keystone_port"], passwords, venv_bin)
        out["keystone"] = ks_url
        out["pids"]["keystone"] = rs.CHILDREN[-1].pid
        seed(ks_url, passwords, endpoints)
        if ironic:
            rs.wait_all([schema], "ironic-dbsync")
            child = rs.ironic(conf, ironic["port"], venv_bin)
            out["pids"]["ironic"] = child.pid
            out["ironic"] = ironic_url
            out["nodes"] = ironic_nodes(ks_url, ironic_url, passwords, ironic["compute_node_ids"])
    except (rs.Failure, rs.Fatal, OSError, KeyError) as e:
        rs.stop_children()
        print(json.dumps({"error": rs.mask(str(e), passwords),
                          "log": rs.log_tail(work, passwords)}), flush=True)
        sys.exit(1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
