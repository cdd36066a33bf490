"""Writes tests/peers/compat-results.md from what scripts/watcher-compat
measured: for each Watcher version, how it was installed, and what each
step of the MAAS and Ironic paths did (tests/it/watcher_peer.rs's
compat_report), with the upstream defect behind each failure.

Usage: compat_results.py OUT.md RESULTS_DIR VERSION...
RESULTS_DIR holds, per version, install-VERSION.json (written by the
script) and report-VERSION.json (written by the test).
"""

import datetime
import json
import os
import sys

DEFECTS = {
    1: "`BaseMetalHelper.nova_client` passes the OpenStackClients object to openstacksdk as its keystone "
       "session (`get_api_major_version`)",
    2: "`MaasHelper._get_compute_node_by_hostname` passes `detailed=True` to "
       "`NovaHelper.get_compute_node_by_hostname`, which takes no such argument",
    3: "`nova_helper.Hypervisor` has no `to_dict()` (nor `running_vms`), which saving_energy and the "
       "power-off action need",
    4: "with eventlet patching off (the default from 17.0.0), a MAAS call from an OS thread other than the "
       "first that made one waits for `[maas_client] timeout`",
    5: "`DefaultLoader._reload_config` re-parses the configuration with `CONF(default_config_files=...)` and "
       "no project, so oslo.config then reads `<program>.conf.d`, not `watcher.conf.d`: what a drop-in set "
       "is gone once the service has loaded a plugin with options (at start-up)",
}

STEPS = [
    ("maas_decision_engine", "service_start", "options kept after start-up"),
    ("maas_decision_engine", "get_helper", "factory -> MaasHelper"),
    ("maas_decision_engine", "connect_and_list_machines", "connect, machines.list"),
    ("maas_decision_engine", "list_compute_nodes", "list_compute_nodes (Watcher's own Nova code)"),
    ("maas_decision_engine", "list_compute_nodes_nova_faked", "list_compute_nodes (NovaHelper faked)"),
    ("maas_decision_engine", "get_power_state", "get_power_state"),
    ("maas_decision_engine", "get_node", "get_node"),
    ("maas_decision_engine", "set_power_state_direct", "MaasNode.set_power_state off/on"),
    ("maas_decision_engine", "saving_energy", "saving_energy pools and solution"),
    ("maas_applier", "change_node_power_state_off", "applier: power-off action"),
    ("maas_applier", "change_node_power_state_on", "applier: power-on action"),
    ("maas_applier_eventlet", "change_node_power_state_off", "applier, eventlet on: power-off action"),
    ("maas_applier_eventlet", "change_node_power_state_on", "applier, eventlet on: power-on action"),
    ("ironic_decision_engine", "service_start", "Ironic: options kept after start-up"),
    ("ironic_decision_engine", "get_helper", "Ironic: factory -> IronicHelper"),
]

MAAS_KEYS = ("maas_url", "maas_timeout", "maas_api_key_set")
IRONIC_KEYS = ("ironic_api_version", "ironic_endpoint_type", "ironic_region_name")


def step(report, name):
    return next((s for s in report.get("steps", []) if s["name"] == name), None)


def lost_options(report, keys):
    before, after = step(report, "prepare_service"), step(report, "service_start")
    if not (before and after and before["ok"] and after["ok"]):
        return []
    return [k for k in keys if before["detail"].get(k) != after["detail"].get(k)]


def defect(report, s):
    error = s["error"] or ""
    if "get_api_major_version" in error:
        return 1
    if "unexpected keyword argument 'detailed'" in error:
        return 2
    if "to_dict" in error or "running_vms" in error:
        return 3
    if s["error_type"] == "TimeoutError" and "Timeout:" in error:
        return 4
    if s["name"] == "get_helper" and lost_options(report, MAAS_KEYS):
        return 5
    return None


def cell(report, name):
    """(text, defect or None) for one step."""
    if report is None:
        return "not run", None
    if name == "service_start":
        keys = IRONIC_KEYS if report.get("_backend") == "ironic" else MAAS_KEYS
        lost = lost_options(report, keys)
        s = step(report, name)
        if s is None:
            return "not reached", None
        if not s["ok"]:
            return f"fails: `{short(s['error'])}`", defect(report, s)
        if lost:
            return "**lost** " + ", ".join(f"`{k}`" for k in lost), 5
        return "kept", None
    s = step(report, name)
    if s is None:
        return "not reached", None
    if s["ok"]:
        return "works", None
    if needs_keystone(s):
        return "not measured: reached for Keystone (none runs here), past where defect 1 fails", None
    d = defect(report, s)
    return f"fails: `{short(s['error'])}`", d


def needs_keystone(s):
    """Watcher's own Nova code got as far as authenticating with Keystone."""
    error = s["error"] or ""
    return s["error_type"] in ("DiscoveryFailure", "ConnectFailure", "AmbiguousAuthSystem") and ":5000" in error


def short(error, n=110):
    error = " ".join((error or "").split())
    return error if len(error) <= n else error[: n - 3] + "..."


def summary(layout, backend):
    """One cell of the README's table: 'works' or the failing steps with
    their defects."""
    if layout is None:
        return "not run"
    if backend == "ironic":
        r = layout["ironic_decision_engine"]
        lost = lost_options(r, IRONIC_KEYS)
        s = step(r, "get_helper")
        if s is None or not s["ok"]:
            return "fails: " + short(s["error"] if s else "not reached")
        return "helper works; options **lost** at start-up (5)" if lost else "helper works"
    fails = []
    for part, name, label in STEPS:
        if part == "ironic_decision_engine" or part == "maas_applier_eventlet":
            continue
        r = layout[part]
        text, d = cell(r, name)
        if text.startswith("fails") or text.startswith("**lost**"):
            fails.append((label, d))
        elif text.startswith("not reached") and not fails:
            fails.append((label, None))
    if not fails:
        return "works"
    if any(d == 5 for _, d in fails):
        return "fails: `[maas_client]` lost at start-up, Ironic used instead (5)"
    defects = sorted({d for _, d in fails if d})
    unknown = [label for label, d in fails if d is None]
    text = "fails (" + ", ".join(str(d) for d in defects) + ")" if defects else "fails"
    if unknown:
        text += "; also: " + ", ".join(unknown)
    return text


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    out, results, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = []
    for v in versions:
        install = load(os.path.join(results, f"install-{v}.json")) or {"ok": False, "note": "no install record"}
        report = load(os.path.join(results, f"report-{v}.json"))
        if report:
            for layout in report.values():
                layout["ironic_decision_engine"]["_backend"] = "ironic"
        rows.append((v, install, report))

    today = datetime.date.today().isoformat()
    lines = [
        "# Watcher compatibility, measured",
        "",
        f"Measured {today} by `scripts/watcher-compat` ({', '.join(versions)}): each version from PyPI in its own",
        "venv under `target/compat/`, with python-libmaas 0.6.8, run by `tests/peers/watcher_e2e.py` (Watcher's",
        "own code; only Nova faked) on the files the charm's config-changed wrote, against the MAAS simulator",
        "over HTTP (`tests/it/watcher_peer.rs`, `compat_report`). The Ironic path is checked as far as it goes",
        "without Keystone: the factory's choice and the `[ironic_client]` options.",
        "",
        "## Summary (the charm's default layout, then `watcher-conf-mode: merge`)",
        "",
        "| Watcher | dependencies | MAAS (default) | Ironic (default) | MAAS (merge) | Ironic (merge) |",
        "|---|---|---|---|---|---|",
    ]
    for v, install, report in rows:
        if not install.get("ok"):
            lines.append(f"| {v} | {install.get('deps', '?')} | install failed | install failed | | |")
            continue
        default = report and report.get("default")
        merge = report and report.get("merge")
        lines.append(
            f"| {v} | {install.get('deps', '?')} | {summary(default, 'maas')} | {summary(default, 'ironic')} | "
            f"{summary(merge, 'maas')} | {summary(merge, 'ironic')} |"
        )
    lines += ["", "## Upstream defects", ""]
    for n, text in DEFECTS.items():
        lines.append(f"{n}. {text}.")
    lines += ["", "## Installs", ""]
    for v, install, _ in rows:
        extra = f" ({install['note']})" if install.get("note") else ""
        status = "ok" if install.get("ok") else "**failed**"
        lines.append(f"- {v}: {status}, {install.get('seconds', '?')} s, {install.get('deps', '?')}{extra}.")
        if install.get("versions"):
            lines.append("  " + ", ".join(f"{k} {val}" for k, val in sorted(install["versions"].items())) + ".")
        if install.get("loader_reload"):
            lines.append(f"  `DefaultLoader._reload_config`: {install['loader_reload']}.")
        if install.get("error"):
            lines.append(f"  Error: `{short(install['error'], 300)}`")
    for v, install, report in rows:
        if not report:
            continue
        for mode in ("default", "merge"):
            layout = report[mode]
            lines += ["", f"## {v}, {mode} layout ({layout['layout']})", "", "| step | outcome | defect |", "|---|---|---|"]
            for part, name, label in STEPS:
                text, d = cell(layout[part], name)
                lines.append(f"| {label} | {text} | {d or ''} |")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
