"""Runs a real Keystone and a real Ironic on 127.0.0.1 for the test suite.

Usage: python real_services.py WORKDIR < settings.json

The first line of standard input is a JSON object:
  {"passwords": {"admin": ..., "ironic": ..., "watcher": ..., "viewer": ...},
   "nodes": N, "page_size": N, "power_delay": SECONDS}
(passwords come on stdin, never on a command line). Then:

- Keystone (sqlite, fernet tokens) is set up with keystone-manage and served
  by cheroot on a free port; users `watcher` (roles service and admin on
  project `service`, as a Watcher deployment has it), `viewer` (reader on
  `service` only) and `ironic` (Ironic's own service user) are created, and
  the catalog gets Ironic's public, internal and admin endpoints in
  RegionOne.
- Ironic (sqlite, auth_strategy = keystone, fake-hardware, rpc_transport =
  none, API and conductor in one `ironic` process) is started on a free port
  with [api] max_limit = page_size, so that listings come in pages.
- N nodes bm-01.. are created through Ironic's API and moved through its
  state machine: enroll -> manageable -> available -> active (the last two
  stay available).

When everything answers, one line of JSON goes to stdout:
  {"keystone": URL, "ironic": URL, "nodes": [{"name", "uuid"}...],
   "timings": {...}}
Then this process waits for standard input to end, which happens when the
test binary exits however it exits (the pipe closes with it), and stops
Keystone and Ironic by their process groups. It also stops them when it is
itself terminated. (No PR_SET_PDEATHSIG: it fires when the *thread* that
started this process ends, which in a test binary is one test's thread.)
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CHILDREN = []


DEAD = socket.socket()


def dead_port():
    """A port that refuses connections for as long as this process lives:
    bound, never listened on."""
    if not DEAD.getsockname()[1]:
        DEAD.bind(("127.0.0.1", 0))
    return DEAD.getsockname()[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_children():
    for child in CHILDREN:
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 10
    for child in CHILDREN:
        try:
            child.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()


def mask(text, passwords):
    for secret in sorted(passwords.values(), key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text


def log_tail(work, passwords):
    """The last lines of the services' logs, secrets masked."""
    lines = []
    for name in ("keystone.log", "ironic.log"):
        try:
            with open(os.path.join(work, name), errors="replace") as f:
                lines += ["%s: %s" % (name, l.rstrip()) for l in f.readlines()[-15:]]
        except OSError:
            pass
    return mask("\n".join(lines), passwords)


WORK = []


def on_signal(signum, _frame):
    stop_children()
    for work in WORK:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(128 + signum)


def write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Failure(Exception):
    pass


class Fatal(Exception):
    """A failure that waiting longer will not mend."""


def run(argv, log, env=None):
    with open(log, "ab") as out:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              env=env, start_new_session=True)
    if done.returncode != 0:
        raise Failure("%s failed (exit %d), see %s" % (os.path.basename(argv[0]),
                                                     done.returncode, log))


def wait_all(children, what):
    for child in children:
        if child.wait() != 0:
            raise Failure("%s failed (exit %d)" % (what, child.returncode))


def start(argv, log, env=None):
    out = open(log, "ab")
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             env=env, start_new_session=True)
    CHILDREN.append(child)
    return child


def request(method, url, token=None, body=None, headers=None, expect=(200, 201, 202, 204)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            status, hdrs = resp.status, resp.headers
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, e.headers
    if status not in expect:
        raise Failure("%s %s answered %d: %s" % (method, url.split("?")[0], status,
                                                 raw[:300].decode(errors="replace")))
    return status, hdrs, (json.loads(raw) if raw else None)


def wait_until(what, check, timeout, child=None):
    deadline = time.time() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, Failure):
            pass
        if child is not None and child.poll() is not None:
            raise Failure("%s exited with %d while starting" % (what, child.returncode))
        if time.time() > deadline:
            raise Failure("%s not ready after %d s" % (what, timeout))
        time.sleep(0.2)


def keystone(work, port, passwords, venv_bin):
    conf = os.path.join(work, "keystone.conf")
    log = os.path.join(work, "keystone.log")
    write(conf, """[DEFAULT]
use_stderr = true
[database]
connection = sqlite:///{work}/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = {work}/fernet-keys
[fernet_receipts]
key_repository = {work}/fernet-keys
[credential]
key_repository = {work}/credential-keys
[identity]
# bcrypt's cheapest cost: every login is quick.
password_hash_rounds = 4
""".format(work=work))
    manage = [os.path.join(venv_bin, "keystone-manage"), "--config-file", conf]
    user = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
    # Independent steps, at once (each spends seconds importing Keystone).
    wait_all([start(manage + ["db_sync"], log + ".db"),
              start(manage + ["fernet_setup"] + user, log + ".fernet"),
              start(manage + ["credential_setup"] + user, log + ".credential")], "keystone-manage")
    url = "http://127.0.0.1:%d" % port
    env = dict(os.environ, OS_BOOTSTRAP_PASSWORD=passwords["admin"])
    run(manage + ["bootstrap", "--bootstrap-username", "admin",
                  "--bootstrap-project-name", "admin", "--bootstrap-role-name", "admin",
                  "--bootstrap-service-name", "keystone",
                  "--bootstrap-admin-url", url + "/v3", "--bootstrap-public-url", url + "/v3",
                  "--bootstrap-internal-url", url + "/v3",
                  "--bootstrap-region-id", "RegionOne"], log, env=env)
    env = dict(os.environ, OS_KEYSTONE_CONFIG_FILES=conf)
    child = start([sys.executable, __file__, "--serve-keystone", str(port)], log, env=env)
    wait_until("Keystone", lambda: request("GET", url + "/v3")[0] == 200, 60, child)
    return url


def serve_keystone(port):
    """Keystone's public WSGI application under cheroot (a pure-Python
    server). Keystone parses sys.argv, so the flags are taken off first."""
    sys.argv = sys.argv[:1]
    from cheroot import wsgi
    from keystone.server import wsgi as keystone_wsgi
    app = keystone_wsgi.initialize_public_application()
    # One request at a time: Keystone on sqlite fails (500) under
    # concurrent logins.
    server = wsgi.Server(("127.0.0.1", port), app, numthreads=1)
    server.safe_start()


def token(keystone_url, user, password, scope):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}, "scope": scope}}
    _, headers, _ = request("POST", keystone_url + "/v3/auth/tokens", body=body)
    return headers["X-Subject-Token"]


def seed_keystone(ks, passwords, ironic_url):
    admin = token(ks, "admin", passwords["admin"], {"system": {"all": True}})

    def find_or_create(kind, name, body):
        _, _, found = request("GET", "%s/v3/%s?name=%s" % (ks, kind, name), admin)
        if found[kind]:
            return found[kind][0]["id"]
        _, _, made = request("POST", "%s/v3/%s" % (ks, kind), admin, {kind[:-1]: body})
        return made[kind[:-1]]["id"]

    project = find_or_create("projects", "service", {"name": "service", "domain_id": "default"})
    roles = {name: find_or_create("roles", name, {"name": name})
             for name in ("admin", "reader", "service")}
    grants = {"ironic": ("admin", "service"), "watcher": ("admin", "service"), "viewer": ("reader",),
              "spaced": ("service",)}
    for user, user_roles in grants.items():
        uid = find_or_create("users", user, {"name": user, "domain_id": "default",
                                             "password": passwords[user]})
        for role in user_roles:
            request("PUT", "%s/v3/projects/%s/users/%s/roles/%s" % (ks, project, uid, roles[role]), admin)
    service = find_or_create("services", "ironic", {"name": "ironic", "type": "baremetal"})
    for interface in ("public", "internal", "admin"):
        request("POST", ks + "/v3/endpoints", admin, {"endpoint": {
            "service_id": service, "interface": interface, "region_id": "RegionOne",
            "url": ironic_url}})
    # A region whose internal Ironic endpoint is down: nothing listens on
    # its port. (Only internal, so that a client with no region set still
    # finds RegionOne's public endpoint first.)
    request("POST", ks + "/v3/regions", admin, {"region": {"id": "RegionDown"}})
    request("POST", ks + "/v3/endpoints", admin, {"endpoint": {
        "service_id": service, "interface": "internal", "region_id": "RegionDown",
        "url": "http://127.0.0.1:%d" % dead_port()}})


def ironic_conf(work, port, ks, passwords, page_size, power_delay):
    conf = os.path.join(work, "ironic.conf")
    write(conf, """[DEFAULT]
auth_strategy = keystone
host = test-conductor
rpc_transport = none
use_stderr = true
enabled_hardware_types = fake-hardware
enabled_bios_interfaces = no-bios
enabled_boot_interfaces = fake
enabled_console_interfaces = no-console
enabled_deploy_interfaces = fake
enabled_firmware_interfaces = no-firmware
enabled_inspect_interfaces = no-inspect
enabled_management_interfaces = fake
enabled_network_interfaces = noop
enabled_power_interfaces = fake
enabled_raid_interfaces = no-raid
enabled_rescue_interfaces = no-rescue
enabled_storage_interfaces = noop
enabled_vendor_interfaces = no-vendor
default_network_interface = noop
rbac_service_role_elevated_access = true
[api]
host_ip = 127.0.0.1
port = {port}
max_limit = {page_size}
[database]
connection = sqlite:///{work}/ironic.db
[conductor]
automated_clean = false
sync_power_state_interval = -1
heartbeat_interval = 1
[dhcp]
dhcp_provider = none
[fake]
power_delay = {power_delay}
[oslo_concurrency]
lock_path = {work}/locks
[keystone_authtoken]
www_authenticate_uri = {ks}
auth_url = {ks}
auth_type = password
username = ironic
password = {password}
user_domain_id = default
project_name = service
project_domain_id = default
""".format(port=port, work=work, ks=ks, password=passwords["ironic"], page_size=page_size,
           power_delay=power_delay))
    return conf


def ironic(conf, port, venv_bin):
    """Ironic's API and conductor in one process, once it answers."""
    child = start([os.path.join(venv_bin, "ironic"), "--config-file", conf],
                  os.path.join(os.path.dirname(conf), "ironic.log"))
    url = "http://127.0.0.1:%d" % port
    wait_until("Ironic", lambda: request("GET", url + "/v1")[0] == 200, 120, child)
    return child


def stop(child):
    os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    CHILDREN.remove(child)


def seed_nodes(ks, ironic_url, passwords, count):
    admin = token(ks, "admin", passwords["admin"], {"system": {"all": True}})
    version = {"X-OpenStack-Ironic-API-Version": "latest"}
    nodes = []
    for i in range(1, count + 1):
        name = "bm-%02d" % i
        _, _, node = request("POST", ironic_url + "/v1/nodes", admin, {
            "name": name, "driver": "fake-hardware",
            "extra": {"compute_node_id": "hv-%02d" % i}}, version)
        nodes.append({"name": name, "uuid": node["uuid"]})

    def move(which, target, want):
        for node in which:
            request("PUT", "%s/v1/nodes/%s/states/provision" % (ironic_url, node["uuid"]),
                    admin, {"target": target}, version)

        def settled():
            for node in which:
                _, _, states = request("GET", "%s/v1/nodes/%s/states" % (ironic_url, node["uuid"]),
                                       admin, headers=version)
                if states["provision_state"] != want:
                    if states["last_error"]:
                        raise Fatal("node %s: %s" % (node["name"], states["last_error"]))
                    return False
            return True
        wait_until("nodes %s" % want, settled, 120)

    move(nodes, "manage", "manageable")
    move(nodes, "provide", "available")
    move(nodes[:-2], "active", "active")
    # Deployed nodes on, the others off, as the fake BMC then reports them.
    for i, node in enumerate(nodes):
        target = "power on" if i < len(nodes) - 2 else "power off"
        request("PUT", "%s/v1/nodes/%s/states/power" % (ironic_url, node["uuid"]),
                admin, {"target": target}, version)

    def powered():
        for node in nodes:
            _, _, states = request("GET", "%s/v1/nodes/%s/states" % (ironic_url, node["uuid"]),
                                   admin, headers=version)
            if states["target_power_state"] or not states["power_state"]:
                return False
        return True
    wait_until("power states", powered, 120)
    return nodes


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-keystone":
        serve_keystone(int(sys.argv[2]))
        return
    work = os.path.abspath(sys.argv[1])
    WORK.append(work)
    settings = json.loads(sys.stdin.readline())
    passwords = settings.pop("passwords")
    count = settings.pop("nodes")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    venv_bin = os.path.dirname(sys.executable)
    timings = {}
    started = time.time()
    try:
        ks_port, ironic_port = free_port(), free_port()
        ks = "http://127.0.0.1:%d" % ks_port
        ironic_url = "http://127.0.0.1:%d" % ironic_port
        # Nodes are seeded with instant power changes; Ironic is then
        # restarted with the slow ones the tests need.
        conf = ironic_conf(work, ironic_port, ks, passwords, settings["page_size"], 0)
        schema = start([os.path.join(venv_bin, "ironic-dbsync"), "--config-file", conf,
                        "create_schema"], os.path.join(work, "ironic-dbsync.log"))
        keystone(work, ks_port, passwords, venv_bin)
        timings["keystone"] = round(time.time() - started, 1)
        seed_keystone(ks, passwords, ironic_url)
        timings["keystone_seeded"] = round(time.time() - started, 1)
        wait_all([schema], "ironic-dbsync")
        child = ironic(conf, ironic_port, venv_bin)
        timings["ironic"] = round(time.time() - started, 1)
        nodes = seed_nodes(ks, ironic_url, passwords, count)
        timings["nodes_seeded"] = round(time.time() - started, 1)
        stop(child)
        ironic_conf(work, ironic_port, ks, passwords, settings["page_size"], settings["power_delay"])
        ironic(conf, ironic_port, venv_bin)
        timings["ironic_restarted"] = round(time.time() - started, 1)
    except (Failure, Fatal, OSError) as e:
        stop_children()
        print(json.dumps({"error": mask(str(e), passwords), "log": log_tail(work, passwords)}),
              flush=True)
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(1)
    print(json.dumps({"keystone": ks, "ironic": ironic_url, "nodes": nodes,
                      "timings": timings}), flush=True)
    # Until the test binary closes our stdin (at its exit, however it exits).
    while sys.stdin.buffer.read(65536):
        pass
    stop_children()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
