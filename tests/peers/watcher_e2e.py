"""Runs OpenStack Watcher's own code on a watcher.conf layout, as one of
its services would, against a MAAS (the simulator) over HTTP with
python-libmaas, and prints a JSON report of each step: {"watcher_version",
"service", "eventlet_patched", "nova_fake", "steps": [{"name", "ok",
"error", "error_type", "where", "detail"}, ...], "log_has_key", ...}.

Usage: HOME=DIR watcher_e2e.py --nova NOVA.json
           [--service decision-engine|applier] [--backend maas|ironic]
           [--power-cycle SYSTEM_ID --power-cycle-hostname FQDN]
           [--direct SYSTEM_ID] [--pause] [--debug-leak]

Configuration is found as Watcher's services find it: the process runs as
`watcher-<service> --config-file $HOME/.watcher/watcher.conf` (also its
sys.argv, which Watcher's plugin loaders parse again), and oslo.config reads
its default config dirs (`~/.watcher/watcher.conf.d`, ...) by itself. The
MAAS URL and key come from the files only. Start-up is emulated as far as
the metal path depends on it: the console script's eventlet set-up,
prepare_service, then what the daemon loads through Watcher's plugin
loaders (the decision engine its compute collector, the applier its
workflow engine), which re-parse the configuration.

decision-engine: the factory, connect and list MAAS's machines,
MaasHelper.list_compute_nodes (with Watcher's own Nova code, then with
Nova faked), get_power_state, get_node, MaasNode.set_power_state off/on
(--direct), and the saving_energy strategy (its compute model built by
Watcher's Nova collector from the fake Nova).
applier: change_node_power_state off, then on, of --power-cycle, each made
by the applier's ActionFactory and run in a fresh worker thread (as
taskflow runs each action plan), the state read back through MaasNode.

Only Nova (and Placement) is faked, at the boundary the installed Watcher
calls, with the real signatures (`mock.patch.object(..., autospec=True)`) and
the version's own return types:
- Watcher with openstacksdk (17.0.0): `NovaHelper` methods that reach the
  SDK, returning `nova_helper.Hypervisor` / `Server` dataclasses
  (`list_compute_nodes` first runs with `get_compute_node_list` unfaked).
- Watcher with novaclient (12.0.0): novaclient's `HypervisorManager` and
  `ServerManager`, returning novaclient resources as Nova 2.56 answers.
Nothing on the MAAS path is faked. NOVA.json: {"hypervisors":
[{"hypervisor_hostname": FQDN, "service_host": NAME, "servers": [NAME...]}]}.

Everything Watcher and oslo print (logs included: 12.0.0 logs the API key
with `debug = true`) is kept in memory and never printed; the report gets
log lines only with the key's parts masked. --debug-leak only reports
whether the captured start-up log holds the key in clear or masked.

--pause: after the power-off action, print {"paused": "off"} and wait for a
line on stdin before powering on (so the caller can look at MAAS itself).
"""

import argparse
import io
import json
import os
import re
import sys
import traceback

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def bootstrap():
    """Imports Watcher's service entry modules as its console scripts do:
    `watcher.cmd.eventlet` (newer releases: eventlet patching only when
    OS_WATCHER_DISABLE_EVENTLET_PATCHING is false) or `watcher.cmd` (older
    releases: always eventlet.monkey_patch())."""
    try:
        import watcher.cmd.eventlet  # noqa: F401
    except ImportError:
        import watcher.cmd  # noqa: F401


class Secrets:
    def __init__(self):
        self.values = []

    def add_key(self, key):
        if key:
            self.values = sorted({key, *[p for p in key.split(":") if len(p) >= 8]}, key=len, reverse=True)

    def mask(self, text):
        text = ANSI.sub("", text)
        for v in self.values:
            text = text.replace(v, "****")
        return text

    def found_in(self, text):
        return any(v in text for v in self.values)


SECRETS = Secrets()


def where(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    out = []
    for f in frames[-3:]:
        path = f.filename
        if "site-packages/" in path:
            path = path.split("site-packages/", 1)[1]
        else:
            path = os.path.basename(path)
        out.append(f"{path}:{f.lineno} in {f.name}")
    return out


class Report:
    def __init__(self):
        self.steps = []

    def step(self, name, fn):
        try:
            detail = fn()
            self.steps.append({"name": name, "ok": True, "error": None, "error_type": None, "where": [],
                               "detail": detail})
            return True, detail
        except Exception as exc:  # the report records every failure
            self.steps.append({"name": name, "ok": False, "error_type": type(exc).__name__,
                               "error": SECRETS.mask(f"{type(exc).__name__}: {exc}"),
                               "where": where(exc), "detail": None})
            return False, None

    def skip(self, name, why):
        self.steps.append({"name": name, "ok": False, "error_type": "Skipped", "error": f"Skipped: {why}",
                           "where": [], "detail": None})


# ---------------------------------------------------------------- fake Nova

def uuid_for(name):
    import uuid
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


class FakeCloud:
    """The compute nodes and servers the fake Nova reports."""

    def __init__(self, spec):
        self.hypervisors = []
        self.servers = []
        for h in spec["hypervisors"]:
            servers = [{"uuid": uuid_for("server." + s), "name": s} for s in h.get("servers", [])]
            self.hypervisors.append({
                "id": uuid_for("hypervisor." + h["hypervisor_hostname"]),
                "hypervisor_hostname": h["hypervisor_hostname"],
                "hypervisor_type": h.get("hypervisor_type", "QEMU"),
                "state": h.get("state", "up"),
                "status": h.get("status", "enabled"),
                "service_host": h["service_host"],
                "service_id": uuid_for("service." + h["service_host"]),
                "servers": servers,
                "vcpus": 16, "memory_mb": 65536, "local_gb": 500,
            })
            for s in servers:
                self.servers.append({"uuid": s["uuid"], "name": s["name"], "host": h["service_host"],
                                     "hypervisor_hostname": h["hypervisor_hostname"]})

    def match(self, pattern):
        # Nova's hypervisor_hostname_pattern / search: a substring match.
        return [h for h in self.hypervisors if pattern in h["hypervisor_hostname"]]

    def servers_on(self, host):
        return [s for s in self.servers if host is None or s["host"] == host]


FLAVOR = {"original_name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20, "ephemeral": 0, "swap": 0,
          "extra_specs": {}}
PROJECT = "0b2c3f9e0c2b4d6d8a7e6f5a4b3c2d1e"


def inventories_dicts():
    return {
        "VCPU": {"total": 16, "reserved": 0, "min_unit": 1, "max_unit": 16, "step_size": 1, "allocation_ratio": 4.0},
        "MEMORY_MB": {"total": 65536, "reserved": 512, "min_unit": 1, "max_unit": 65536, "step_size": 1,
                      "allocation_ratio": 1.0},
        "DISK_GB": {"total": 500, "reserved": 0, "min_unit": 1, "max_unit": 500, "step_size": 1,
                    "allocation_ratio": 1.0},
    }


def fake_nova(cloud, real_node_list=False):
    """Patches the Nova boundary of the installed Watcher; returns the patchers
    (started) and which style was faked. real_node_list=True leaves the
    call behind MaasHelper.list_compute_nodes unfaked where it is Watcher's
    own code (NovaHelper.get_compute_node_list with openstacksdk)."""
    import dataclasses
    from unittest import mock

    from watcher.common import nova_helper
    from watcher.common import placement_helper

    patches = []

    def patch(owner, name, side_effect):
        if not hasattr(owner, name):
            return
        p = mock.patch.object(owner, name, autospec=True, side_effect=side_effect)
        p.start()
        patches.append(p)

    sdk_style = dataclasses.is_dataclass(getattr(nova_helper, "Hypervisor", None))
    if sdk_style:
        Hypervisor = nova_helper.Hypervisor
        Server = nova_helper.Server

        def build(cls, values):
            return cls(**{f.name: values.get(f.name) for f in dataclasses.fields(cls)})

        def hypervisor(h, servers):
            # openstacksdk asks Nova for 2.88: no vcpus/memory/disk numbers.
            return build(Hypervisor, {
                "uuid": h["id"], "hypervisor_hostname": h["hypervisor_hostname"],
                "hypervisor_type": h["hypervisor_type"], "state": h["state"], "status": h["status"],
                "service_host": h["service_host"], "service_id": h["service_id"],
                "service_disabled_reason": None, "servers": list(h["servers"]) if servers else [],
            })

        def get_compute_node_list(self, filter_ironic_nodes=True):
            nodes = [hypervisor(h, False) for h in cloud.hypervisors]
            if filter_ironic_nodes:
                nodes = [n for n in nodes if n.hypervisor_type != "ironic"]
            return nodes

        def get_compute_node_by_name(self, node_name, servers=False, detailed=False):
            return [hypervisor(h, servers) for h in cloud.match(node_name)]

        def get_instance_list(self, filters=None, marker=None, limit=-1):
            host = (filters or {}).get("host", (filters or {}).get("compute_host"))
            return [build(Server, {
                "uuid": s["uuid"], "name": s["name"], "created": "2026-01-01T00:00:00Z", "host": s["host"],
                "vm_state": "active", "task_state": None, "power_state": 1, "status": "ACTIVE",
                "flavor": dict(FLAVOR), "tenant_id": PROJECT, "locked": False, "metadata": {},
                "availability_zone": "nova", "pinned_availability_zone": None, "image": uuid_for("image"),
                "hypervisor_hostname": s["hypervisor_hostname"],
            }) for s in cloud.servers_on(host)]

        if not real_node_list:
            patch(nova_helper.NovaHelper, "get_compute_node_list", get_compute_node_list)
        patch(nova_helper.NovaHelper, "get_compute_node_by_name", get_compute_node_by_name)
        patch(nova_helper.NovaHelper, "get_instance_list", get_instance_list)
        patch(nova_helper.NovaHelper, "get_aggregate_list", lambda self: [])
        patch(nova_helper.NovaHelper, "get_service_list", lambda self: [])

        Inventory = getattr(placement_helper, "Inventory", None)

        def get_inventories(self, rp_uuid):
            invs = inventories_dicts()
            if dataclasses.is_dataclass(Inventory):
                return {k: Inventory(**v) for k, v in invs.items()}
            return invs

        patch(placement_helper.PlacementHelper, "get_inventories", get_inventories)
        return patches, "openstacksdk (NovaHelper methods faked)"

    # novaclient style: what Nova answers at microversion 2.56.
    from novaclient import exceptions as nova_exc
    from novaclient.v2 import hypervisors as nova_hv
    from novaclient.v2 import servers as nova_servers

    def hv_info(h, detailed, servers):
        info = {"id": h["id"], "hypervisor_hostname": h["hypervisor_hostname"], "state": h["state"],
                "status": h["status"]}
        if detailed:
            info.update({
                "hypervisor_type": h["hypervisor_type"], "hypervisor_version": 6002000, "host_ip": "127.0.0.1",
                "vcpus": h["vcpus"], "vcpus_used": len(h["servers"]), "memory_mb": h["memory_mb"],
                "memory_mb_used": 512 + 2048 * len(h["servers"]), "free_ram_mb": 0, "local_gb": h["local_gb"],
                "local_gb_used": 20 * len(h["servers"]), "free_disk_gb": 0, "disk_available_least": 0,
                "current_workload": 0, "running_vms": len(h["servers"]), "cpu_info": "{}",
                "service": {"host": h["service_host"], "id": h["service_id"], "disabled_reason": None},
            })
        if servers and h["servers"]:
            info["servers"] = [dict(s) for s in h["servers"]]
        return info

    def hv_list(self, detailed=True, marker=None, limit=None):
        return [nova_hv.Hypervisor(self, hv_info(h, detailed, False), loaded=True) for h in cloud.hypervisors]

    def hv_search(self, hypervisor_match, servers=False, detailed=False):
        found = cloud.match(hypervisor_match)
        if not found:
            raise nova_exc.NotFound(404, "No hypervisor matching '%s' could be found." % hypervisor_match)
        return [nova_hv.Hypervisor(self, hv_info(h, detailed, servers), loaded=True) for h in found]

    def server_list(self, detailed=True, search_opts=None, marker=None, limit=None, sort_keys=None,
                    sort_dirs=None):
        host = (search_opts or {}).get("host")
        return [nova_servers.Server(self, {
            "id": s["uuid"], "name": s["name"], "status": "ACTIVE", "tenant_id": PROJECT,
            "user_id": "c0ffee", "metadata": {}, "flavor": dict(FLAVOR), "locked": False,
            "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:task_state": None, "OS-EXT-STS:power_state": 1,
            "OS-EXT-SRV-ATTR:host": s["host"], "OS-EXT-SRV-ATTR:hypervisor_hostname": s["hypervisor_hostname"],
            "OS-EXT-AZ:availability_zone": "nova", "created": "2026-01-01T00:00:00Z",
        }, loaded=True) for s in cloud.servers_on(host)]

    patch(nova_hv.HypervisorManager, "list", hv_list)
    patch(nova_hv.HypervisorManager, "search", hv_search)
    patch(nova_servers.ServerManager, "list", server_list)
    patch(placement_helper.PlacementHelper, "get_inventories", lambda self, rp_uuid: inventories_dicts())
    return patches, "novaclient (HypervisorManager/ServerManager faked, microversion 2.56)"


# ---------------------------------------------------------------- the steps

def conf_path():
    return os.path.join(os.path.expanduser("~"), ".watcher", "watcher.conf")


def prepare(service_name):
    from oslo_config import cfg
    from watcher.common import service

    argv = [service_name, "--config-file", conf_path()]
    # The daemon's own command line: Watcher's plugin loaders parse it again.
    sys.argv = list(argv)
    service.prepare_service(argv, cfg.CONF)
    SECRETS.add_key(cfg.CONF.maas_client.api_key)
    return dict({"argv": argv, "default_config_dirs": cfg.find_config_dirs(project="watcher"),
                 "config_dir": list(cfg.CONF.config_dir or [])}, **options())


def options():
    """The options Watcher's metal path reads (never the key itself)."""
    from oslo_config import cfg

    conf = cfg.CONF
    return {
        "maas_url": conf.maas_client.url,
        "maas_timeout": conf.maas_client.timeout,
        "maas_api_key_set": bool(conf.maas_client.api_key),
        "ironic_api_version": conf.ironic_client.api_version,
        "ironic_endpoint_type": conf.ironic_client.endpoint_type,
        "ironic_region_name": conf.ironic_client.region_name,
    }


def service_start(service_name):
    """What the daemon loads at start-up, through Watcher's plugin loaders
    (which re-parse the configuration when a plugin has options):
    the decision engine its cluster data model collectors
    (DecisionEngineManager / DecisionEngineSchedulingService, through
    CollectorManager), the applier
    its workflow engine (DefaultApplier.engine, on the first action plan)."""
    from oslo_config import cfg

    if service_name == "watcher-decision-engine":
        from watcher.decision_engine.model.collector import manager

        # The compute collector (the one saving_energy uses); loading
        # them all would also ask Keystone's catalog about Cinder.
        manager.CollectorManager().get_cluster_model_collector("compute")
        loaded = ["compute"]
    else:
        from watcher.applier.loading import default as applier_loading

        name = cfg.CONF.watcher_applier.workflow_engine
        applier_loading.DefaultWorkFlowEngineLoader().load(name=name, context=None, applier_manager=None)
        loaded = [name]
    return dict({"loaded": loaded, "config_dir": list(cfg.CONF.config_dir or [])}, **options())


def node_detail(node):
    return {"system_id": node.get_id(), "fqdn": node._maas_node.fqdn,
            "hypervisor_hostname": node.get_hypervisor_hostname()}


def helper_kind(helper, expected):
    name = type(helper).__name__
    if name != expected:
        raise RuntimeError(f"get_helper returned {name}, not {expected}")
    return {"helper": f"{type(helper).__module__}.{name}"}


def fresh_worker():
    """A new pool for one run, as taskflow's parallel engine makes for each
    action plan: green threads when eventlet patched the process, native
    threads otherwise (Watcher 17's default)."""
    import eventlet.patcher
    import futurist

    if eventlet.patcher.is_monkey_patched("thread"):
        return futurist.GreenThreadPoolExecutor(1)
    return futurist.ThreadPoolExecutor(1)


def in_worker(fn, wait):
    executor = fresh_worker()
    try:
        return executor.submit(fn).result(timeout=wait)
    finally:
        executor.shutdown(wait=False)


def decision_engine_steps(report, args, cloud):
    from oslo_config import cfg
    from watcher.common import clients
    from watcher.common import utils
    from watcher.common.metal_helper import factory

    timeout = cfg.CONF.maas_client.timeout
    osc = clients.OpenStackClients()
    ok, _ = report.step("get_helper", lambda: helper_kind(factory.get_helper(osc), "MaasHelper"))
    if not ok:
        return
    helper = factory.get_helper(osc)

    def connect():
        client = helper._client
        machines = utils.async_compat_call(client.machines.list, timeout=timeout)
        return {"machines": sorted(m.fqdn for m in machines)}

    ok, _ = report.step("connect_and_list_machines", connect)
    if not ok:
        return

    # MaasHelper.list_compute_nodes with Watcher's own Nova code down to
    # the Nova API (with openstacksdk, nothing of Watcher is faked here).
    patches, style = fake_nova(cloud, real_node_list=True)
    report.nova_style = style
    try:
        report.step("list_compute_nodes", lambda: [node_detail(n) for n in helper.list_compute_nodes()])
    finally:
        for p in patches:
            p.stop()

    patches, _ = fake_nova(cloud)
    try:
        fresh = factory.get_helper(osc)
        ok, _ = report.step("list_compute_nodes_nova_faked", lambda: [
            node_detail(n) for n in fresh.list_compute_nodes()])
        nodes = fresh.list_compute_nodes() if ok else []
        report.step("get_power_state", lambda: {n.get_id(): n.get_power_state().value for n in nodes})
        report.step("get_node", lambda: node_detail(fresh.get_node(args.power_cycle)))

        direct = next((n for n in nodes if n.get_id() == (args.direct or args.power_cycle)), None)
        if direct is None:
            report.skip("set_power_state_direct", "the node is not among the compute nodes")
        else:
            def set_direct():
                seen = []
                for state in ("off", "on"):
                    direct.set_power_state(state)
                    seen.append(direct.get_power_state().value)
                if seen != ["off", "on"]:
                    raise RuntimeError(f"MAAS reported {seen} after off, on")
                return {"system_id": direct.get_id(), "states": seen}
            report.step("set_power_state_direct", set_direct)

        def saving_energy():
            from watcher.decision_engine.loading import default as de_loading

            strategy = de_loading.DefaultStrategyLoader().load("saving_energy", osc=osc)
            strategy.audit_scope = []
            strategy.input_parameters = utils.Struct({"free_used_percent": 10.0, "min_free_hosts_num": 1})
            solution = strategy.execute()
            model = strategy.compute_model.get_all_compute_nodes().values()
            return {
                "metal_helper": type(strategy.metal_helper).__name__,
                "compute_model_nodes": sorted(n.hostname for n in model),
                "pools": {
                    "with_vms": sorted(n.get_id() for n in strategy.with_vms_node_pool),
                    "free_poweron": sorted(n.get_id() for n in strategy.free_poweron_node_pool),
                    "free_poweroff": sorted(n.get_id() for n in strategy.free_poweroff_node_pool),
                },
                "actions": [{"action_type": a["action_type"], "input_parameters": dict(a["input_parameters"])}
                            for a in solution.actions],
            }

        report.step("saving_energy", saving_energy)
    finally:
        for p in patches:
            p.stop()


def applier_steps(report, args, cloud):
    """change_node_power_state off, then on, each as the applier runs an
    action plan: made by its ActionFactory (loader + schema check), then
    pre_condition, execute, post_condition in a fresh worker; the state is
    then read back through Watcher's MaasNode (a query to MAAS) in that
    worker."""
    import types

    from oslo_config import cfg
    from watcher.applier.actions import factory as action_factory
    from watcher.common import clients
    from watcher.common.metal_helper import factory

    osc = clients.OpenStackClients()
    wait = cfg.CONF.maas_client.timeout * 3 + 30
    ok, _ = report.step("get_helper", lambda: helper_kind(factory.get_helper(osc), "MaasHelper"))
    if not ok:
        return
    hostname = args.power_cycle_hostname
    patches, style = fake_nova(cloud)
    report.nova_style = style
    try:
        for state in ("off", "on"):
            def run(state=state):
                db_action = types.SimpleNamespace(action_type="change_node_power_state", input_parameters={
                    "resource_id": args.power_cycle, "resource_name": hostname, "state": state})
                action = action_factory.ActionFactory().make_action(db_action, osc=osc)
                action.pre_condition()
                result = action.execute()
                action.post_condition()
                if result is not True:
                    raise RuntimeError(f"the action returned {result!r}")
                node = next(n for n in factory.get_helper(osc).list_compute_nodes()
                            if n.get_id() == args.power_cycle)
                now = node.get_power_state().value
                if now != state:
                    raise RuntimeError(f"MAAS reports {now} after the action, not {state}")
                return {"power_state": now}
            report.step(f"change_node_power_state_{state}", lambda run=run: in_worker(run, wait))
            if state == "off" and args.pause:
                emit({"paused": "off"})
                sys.stdin.readline()
    finally:
        for p in patches:
            p.stop()


def ironic_steps(report):
    """The Ironic path as far as it goes without Keystone: the factory's
    choice (the Ironic client itself needs Keystone's catalog)."""
    from watcher.common import clients
    from watcher.common.metal_helper import factory

    osc = clients.OpenStackClients()
    report.step("get_helper", lambda: helper_kind(factory.get_helper(osc), "IronicHelper"))


def emit(obj):
    REAL_STDOUT.write(json.dumps(obj) + "\n")
    REAL_STDOUT.flush()


REAL_STDOUT = sys.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", choices=["decision-engine", "applier"], default="decision-engine")
    parser.add_argument("--nova", help="the fake Nova's compute nodes (JSON file)")
    parser.add_argument("--backend", choices=["maas", "ironic"], default="maas")
    parser.add_argument("--power-cycle", help="system_id get_node and the power actions use")
    parser.add_argument("--power-cycle-hostname", help="its hypervisor hostname (the action's resource_name)")
    parser.add_argument("--direct", help="system_id for MaasNode.set_power_state (default: --power-cycle)")
    parser.add_argument("--pause", action="store_true")
    parser.add_argument("--debug-leak", action="store_true")
    args = parser.parse_args()
    service_name = "watcher-" + args.service

    # Everything Watcher, oslo and eventlet print stays in memory.
    captured = io.StringIO()
    sys.stdout = sys.stderr = captured
    report = Report()
    report.nova_style = None
    out = {}
    try:
        bootstrap()
        import eventlet.patcher
        from importlib import metadata

        out = {"watcher_version": metadata.version("python-watcher"), "service": service_name,
               "eventlet_patched": eventlet.patcher.is_monkey_patched("thread")}
        ok, _ = report.step("prepare_service", lambda: prepare(service_name))
        if args.debug_leak:
            text = captured.getvalue()
            out["debug_leak"] = {
                "api_key_logged": "maas_client.api_key" in text,
                "key_in_log": SECRETS.found_in(text),
                "masked_in_log": re.search(r"maas_client\.api_key\s*=\s*\*\*\*\*", text) is not None,
            }
        elif ok:
            ok, _ = report.step("service_start", lambda: service_start(service_name))
        if ok and not args.debug_leak:
            if args.backend == "ironic":
                ironic_steps(report)
            else:
                with open(args.nova) as f:
                    cloud = FakeCloud(json.load(f))
                if args.service == "applier":
                    applier_steps(report, args, cloud)
                else:
                    decision_engine_steps(report, args, cloud)
    except BaseException as exc:
        report.steps.append({"name": "driver", "ok": False, "error_type": type(exc).__name__,
                             "error": SECRETS.mask(f"{type(exc).__name__}: {exc}"), "where": where(exc),
                             "detail": None})
    text = captured.getvalue()
    out["nova_fake"] = report.nova_style
    out["steps"] = report.steps
    out["log_has_key"] = SECRETS.found_in(text)
    out["log_tail"] = [SECRETS.mask(line) for line in text.splitlines()[-60:]]
    out["skipped_hypervisors"] = sorted({ANSI.sub("", line.rsplit("Cannot find hypervisor ", 1)[1]).strip()
                                         for line in text.splitlines() if "Cannot find hypervisor " in line})
    emit(out)
    # Worker threads (a timed-out MAAS call, eventlet's pool) may linger.
    os._exit(0)


if __name__ == "__main__":
    main()
