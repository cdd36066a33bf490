"""A Nova and Placement stand-in on 127.0.0.1 for scripts/lab (stdlib only).

Usage: python3 nova_placement.py HOSTS.json PORT

HOSTS.json: {"hosts": [{"hypervisor": FQDN, "uuid": UUID, "service_host": NAME,
"servers": [{"id": UUID, "name": NAME}]}]}

It answers what Watcher 12.0.0's compute model collector
(watcher/decision_engine/model/collector/nova.py), its Nova and Placement
helpers (watcher/common/{nova,placement}_helper.py), its metal helpers
(watcher/common/metal_helper/{maas,ironic}.py) and watcher-metal call, on
the wire as Nova 2.1-2.96 and Placement 1.0-1.39 do:

  /compute[/v2.1]                      version documents
  /compute/v2.1/os-hypervisors[/detail] listing, ?hypervisor_hostname_pattern=,
                                       ?with_servers=, limit/marker
  /compute/v2.1/os-hypervisors/ID      one hypervisor
  /compute/v2.1/servers[/detail]       ?host=, ?limit=, ?all_tenants=
  /compute/v2.1/servers/ID
  /compute/v2.1/os-services            ?binary=, ?host=
  /compute/v2.1/os-aggregates, /os-availability-zone[/detail], /flavors[/detail]
  /placement[/]                        version document
  /placement/resource_providers[?name=], /resource_providers/ID,
  .../inventories, .../usages, .../traits, /placement/allocations/ID

Fields follow the microversion asked (X-OpenStack-Nova-API-Version or
OpenStack-API-Version: compute X): hypervisor ids are UUIDs from 2.53,
integers before; `running_vms` and the usage fields are left out from
2.88. Any non-empty X-Auth-Token is accepted (the tokens come from the
lab's real Keystone; checking them is Keystone's and keystonemiddleware's
business, which the lab tests through watcher-api). Every request is
counted; GET /_lab/stats answers the counts.
"""

import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NOVA_MAX = (2, 96)
PLACEMENT_MAX = (1, 39)
VCPUS, MEMORY_MB, DISK_GB = 16, 65536, 500
FLAVOR = {"vcpus": 2, "ram": 4096, "disk": 20, "ephemeral": 0, "swap": 0,
          "original_name": "m1.medium", "extra_specs": {}}
PROJECT = "0c5e8b2fd8ac4b3e8a3c0f1d7e0c1a01"

HOSTS = []
STATS = {}
LOCK = threading.Lock()


def parse_version(text, default):
    match = re.match(r"^\s*(\d+)\.(\d+)\s*$", text or "")
    if text and text.strip() == "latest":
        return None
    return (int(match.group(1)), int(match.group(2))) if match else default


def nova_version(headers):
    raw = headers.get("X-OpenStack-Nova-API-Version")
    if raw is None:
        api = headers.get("OpenStack-API-Version", "")
        if api.startswith("compute "):
            raw = api[len("compute "):]
    version = parse_version(raw, (2, 1))
    return NOVA_MAX if version is None else version


def hypervisor(host, index, version, with_servers):
    servers = host["servers"]
    used_vcpus = FLAVOR["vcpus"] * len(servers)
    used_ram = FLAVOR["ram"] * len(servers)
    used_disk = FLAVOR["disk"] * len(servers)
    body = {
        "id": host["uuid"] if version >= (2, 53) else index + 1,
        "hypervisor_hostname": host["hypervisor"],
        "state": "up",
        "status": "enabled",
        "hypervisor_type": "QEMU",
        "hypervisor_version": 8002000,
        "host_ip": "127.0.0.1",
        "service": {"host": host["service_host"],
                    "id": host["service_uuid"] if version >= (2, 53) else index + 1,
                    "disabled_reason": None},
        "cpu_info": "{}",
    }
    if version < (2, 88):
        body.update({
            "vcpus": VCPUS, "memory_mb": MEMORY_MB, "local_gb": DISK_GB,
            "vcpus_used": used_vcpus, "memory_mb_used": used_ram, "local_gb_used": used_disk,
            "free_ram_mb": MEMORY_MB - used_ram, "free_disk_gb": DISK_GB - used_disk,
            "current_workload": 0, "running_vms": len(servers),
            "disk_available_least": DISK_GB - used_disk,
        })
    else:
        body["uptime"] = None
    if with_servers and version >= (2, 53) and (servers or version >= (2, 75)):
        body["servers"] = [{"name": s["name"], "uuid": s["id"]} for s in servers]
    return body


def server(host, srv, detail):
    if not detail:
        return {"id": srv["id"], "name": srv["name"], "links": []}
    return {
        "id": srv["id"], "name": srv["name"], "status": "ACTIVE",
        "tenant_id": PROJECT, "user_id": PROJECT, "metadata": {}, "locked": False,
        "flavor": FLAVOR, "image": "", "created": "2026-12-01T00:00:00Z",
        "updated": "2026-12-01T00:00:00Z", "addresses": {}, "links": [],
        "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:task_state": None,
        "OS-EXT-STS:power_state": 1, "OS-EXT-SRV-ATTR:host": host["service_host"],
        "OS-EXT-SRV-ATTR:hypervisor_hostname": host["hypervisor"],
        "OS-EXT-SRV-ATTR:instance_name": "instance-%s" % srv["id"][:8],
        "OS-EXT-AZ:availability_zone": "nova",
    }


def version_doc(base):
    return {"id": "v2.1", "status": "CURRENT", "version": "%d.%d" % NOVA_MAX,
            "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": base + "/v2.1/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


def placement_doc():
    return {"versions": [{"id": "v1.0", "max_version": "%d.%d" % PLACEMENT_MAX,
                          "min_version": "1.0", "status": "CURRENT", "links": []}]}


def inventories(host):
    return {"VCPU": {"total": VCPUS, "reserved": 0, "allocation_ratio": 4.0, "min_unit": 1,
                     "max_unit": VCPUS, "step_size": 1},
            "MEMORY_MB": {"total": MEMORY_MB, "reserved": 512, "allocation_ratio": 1.0,
                          "min_unit": 1, "max_unit": MEMORY_MB, "step_size": 1},
            "DISK_GB": {"total": DISK_GB, "reserved": 0, "allocation_ratio": 1.0,
                        "min_unit": 1, "max_unit": DISK_GB, "step_size": 1}}


def usages(host):
    n = len(host["servers"])
    return {"VCPU": FLAVOR["vcpus"] * n, "MEMORY_MB": FLAVOR["ram"] * n,
            "DISK_GB": FLAVOR["disk"] * n}


def provider(host):
    return {"uuid": host["uuid"], "name": host["hypervisor"], "generation": 1,
            "parent_provider_uuid": None, "root_provider_uuid": host["uuid"], "links": []}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def send(self, status, body, headers=None):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def error(self, status, message, placement=False):
        if placement:
            self.send(status, {"errors": [{"status": status, "title": "error", "detail": message}]})
        else:
            name = {400: "badRequest", 401: "unauthorized", 404: "itemNotFound"}.get(status,
                                                                                    "computeFault")
            self.send(status, {name: {"code": status, "message": message}})

    def do_POST(self):
        self.drain()
        self.error(405, "read-only stand-in")

    do_PUT = do_DELETE = do_PATCH = do_POST

    def drain(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def do_GET(self):
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path.rstrip("/") or "/"
        query = dict(urllib.parse.parse_qsl(parsed.query))
        key = re.sub(r"/[0-9a-f-]{32,36}(?=/|$)", "/{id}", path)
        with LOCK:
            STATS[key] = STATS.get(key, 0) + 1
        if path == "/_lab/stats":
            with LOCK:
                return self.send(200, dict(STATS))
        base = "http://%s" % self.headers.get("Host", "127.0.0.1")
        if path.startswith("/placement"):
            return self.placement(path[len("/placement"):] or "/", query)
        if not path.startswith("/compute"):
            return self.error(404, "no such path")
        rest = path[len("/compute"):]
        if rest in ("", "/"):
            return self.send(200, {"versions": [version_doc(base + "/compute")]})
        if rest == "/v2.1":
            return self.send(200, {"version": version_doc(base + "/compute")})
        if not self.headers.get("X-Auth-Token"):
            return self.error(401, "The request you have made requires authentication.")
        version = nova_version(self.headers)
        if version > NOVA_MAX or version < (2, 1):
            return self.error(406, "Version not supported")
        headers = {"X-OpenStack-Nova-API-Version": "%d.%d" % version,
                   "OpenStack-API-Version": "compute %d.%d" % version,
                   "Vary": "X-OpenStack-Nova-API-Version"}
        rest = rest[len("/v2.1"):]
        found = self.nova(rest, query, version)
        if found is None:
            return self.error(404, "Not found: %s" % rest)
        status, body = found
        self.send(status, body, headers)

    def nova(self, rest, query, version):
        truthy = str(query.get("with_servers", "")).lower() in ("1", "true", "yes", "on")
        if rest in ("/os-hypervisors", "/os-hypervisors/detail"):
            detail = rest.endswith("/detail")
            pattern = query.get("hypervisor_hostname_pattern")
            hosts = [(i, h) for i, h in enumerate(HOSTS)
                     if pattern is None or pattern in h["hypervisor"]]
            if pattern is not None and not hosts:
                return 404, {"itemNotFound": {"code": 404, "message":
                             "No hypervisor matching '%s' could be found." % pattern}}
            marker = query.get("marker")
            if marker is not None:
                ids = [str(h["uuid"] if version >= (2, 53) else i + 1) for i, h in hosts]
                if marker not in ids:
                    return 400, {"badRequest": {"code": 400, "message": "marker not found"}}
                hosts = hosts[ids.index(marker) + 1:]
            if query.get("limit"):
                hosts = hosts[:int(query["limit"])]
            items = []
            for i, h in hosts:
                body = hypervisor(h, i, version, truthy)
                if not detail:
                    body = {k: body[k] for k in ("id", "hypervisor_hostname", "state", "status")
                            if k in body} | ({"servers": body["servers"]} if "servers" in body else {})
                items.append(body)
            return 200, {"hypervisors": items}
        match = re.match(r"^/os-hypervisors/([^/]+)$", rest)
        if match:
            wanted = urllib.parse.unquote(match.group(1))
            for i, h in enumerate(HOSTS):
                if wanted in (h["uuid"], str(i + 1)):
                    return 200, {"hypervisor": hypervisor(h, i, version, truthy)}
            return 404, {"itemNotFound": {"code": 404, "message":
                         "Hypervisor with ID %s could not be found." % wanted}}
        if rest in ("/servers", "/servers/detail"):
            host = query.get("host")
            items = [server(h, s, rest.endswith("/detail")) for h in HOSTS for s in h["servers"]
                     if host is None or host == h["service_host"]]
            marker = query.get("marker")
            if marker is not None:
                ids = [s["id"] for s in items]
                items = items[ids.index(marker) + 1:] if marker in ids else []
            if query.get("limit") and int(query["limit"]) > 0:
                items = items[:int(query["limit"])]
            return 200, {"servers": items}
        match = re.match(r"^/servers/([^/]+)$", rest)
        if match:
            for h in HOSTS:
                for s in h["servers"]:
                    if s["id"] == match.group(1):
                        return 200, {"server": server(h, s, True)}
            return None
        if rest == "/os-services":
            items = []
            for i, h in enumerate(HOSTS):
                if query.get("binary", "nova-compute") != "nova-compute":
                    continue
                if query.get("host") not in (None, h["service_host"]):
                    continue
                items.append({"id": h["service_uuid"] if version >= (2, 53) else i + 1,
                              "binary": "nova-compute", "host": h["service_host"], "zone": "nova",
                              "status": "enabled", "state": "up", "disabled_reason": None,
                              "forced_down": False, "updated_at": "2026-12-01T00:00:00.000000"})
            return 200, {"services": items}
        if rest == "/os-aggregates":
            return 200, {"aggregates": []}
        if rest in ("/os-availability-zone", "/os-availability-zone/detail"):
            return 200, {"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {
                "available": True}, "hosts": {h["service_host"]: {} for h in HOSTS}}]}
        if rest in ("/flavors", "/flavors/detail"):
            return 200, {"flavors": [dict(FLAVOR, id="1", name="m1.medium", links=[])]}
        return None

    def placement(self, rest, query):
        if rest == "/":
            return self.send(200, placement_doc())
        if not self.headers.get("X-Auth-Token"):
            return self.error(401, "The request you have made requires authentication.", True)
        headers = {"OpenStack-API-Version": "placement %s" % (
            self.headers.get("OpenStack-API-Version", "placement 1.0").split(" ")[-1])}
        if rest == "/resource_providers":
            items = [provider(h) for h in HOSTS
                     if query.get("name") in (None, h["hypervisor"])]
            return self.send(200, {"resource_providers": items}, headers)
        match = re.match(r"^/resource_providers/([^/]+)(/inventories|/usages|/traits)?$", rest)
        if match:
            host = next((h for h in HOSTS if h["uuid"] == match.group(1)), None)
            if host is None:
                return self.error(404, "No resource provider with uuid %s found" % match.group(1),
                                  True)
            what = match.group(2)
            if what is None:
                body = provider(host)
            elif what == "/inventories":
                body = {"inventories": inventories(host), "resource_provider_generation": 1}
            elif what == "/usages":
                body = {"usages": usages(host), "resource_provider_generation": 1}
            else:
                body = {"traits": ["COMPUTE_NET_ATTACH_INTERFACE"],
                        "resource_provider_generation": 1}
            return self.send(200, body, headers)
        match = re.match(r"^/allocations/([^/]+)$", rest)
        if match:
            for h in HOSTS:
                if any(s["id"] == match.group(1) for s in h["servers"]):
                    return self.send(200, {"allocations": {h["uuid"]: {"resources": {
                        "VCPU": FLAVOR["vcpus"], "MEMORY_MB": FLAVOR["ram"],
                        "DISK_GB": FLAVOR["disk"]}}}, "project_id": PROJECT,
                        "user_id": PROJECT}, headers)
            return self.send(200, {"allocations": {}}, headers)
        return self.error(404, "Not found: %s" % rest, True)


def main():
    with open(sys.argv[1]) as f:
        HOSTS.extend(json.load(f)["hosts"])
    server_ = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
    server_.daemon_threads = True
    server_.serve_forever()


if __name__ == "__main__":
    main()
