"""watcher-metal against the Python stack OpenStack Watcher uses
(python-libmaas, Jinja2), side by side on the same MAAS simulator.

Run it through bench/run, which builds the release binaries and the
Python venv first. Usage:

    bench.py --python VENV_PYTHON --out DIR [--smoke] [--doc BENCHMARKS.md]
    bench.py --report-only --out DIR [--doc BENCHMARKS.md]

Every benchmark checks what each side printed (node counts, power-state
counts, the rendered text, the requests made) and fails the run if it is
wrong. A full run is kept as DIR/runs/RUN.json; the report takes the
newest runs at the same commit (a target counts as met only when each of
three runs meets it, on a quiet machine). --smoke runs everything at tiny
sizes; timings are then meaningless and no target is checked.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import yaml

import report
from harness import (BenchError, MaasSim, NovaSim, RequestCounter, cores, elf_section_names, fixed, load_average,
                     machine_info, quiet_limit, run, spread, summarise, tree_size, wait_for_quiet)

ROOT = Path(__file__).resolve().parent.parent
WATCHER_METAL = "target/release/watcher-metal"
MAAS_SIM = "target/release/maas-sim"
NOVA_SIM = "target/release/nova-sim"
CONCURRENCY = 16  # watcher-metal's default --concurrency, and the simulator's limit
FLOOR_TARGET = 1.3  # the most a listing may take, in times the download of what it reads
ROW_BYTES_TARGET = 400  # bytes of peak memory per machine listed (a row: 368; see BENCHMARKS.md)

SIZES = {
    "full": {
        "render_runs": 50,
        "startup_runs": 50,
        "list_machines": 10_000,
        "list_runs": 10,
        "list_peer_runs": 5,
        "survey_machines": 1_000,
        "survey_delay_ms": 100,
        "survey_runs": 3,
        "survey_peer_runs": 1,
        "validate_machines": 100,
        "validate_runs": 20,
        "nova_machines": 10_000,
        "nova_page_size": 1000,
        "nova_runs": 10,
        "scaling_machines": [10_000, 25_000, 50_000],
        "scaling_runs": 3,
        "hook_machines": 100,
        "hook_runs": 20,
        "stand_in_runs": 20,
        "quiet_wait_s": 600,
    },
    "smoke": {
        "render_runs": 3,
        "startup_runs": 3,
        "list_machines": 20,
        "list_runs": 3,
        "list_peer_runs": 3,
        "survey_machines": 20,
        "survey_delay_ms": 10,
        "survey_runs": 2,
        "survey_peer_runs": 2,
        "validate_machines": 20,
        "validate_runs": 3,
        "nova_machines": 20,
        "nova_page_size": 7,
        "nova_runs": 3,
        "scaling_machines": [20, 50, 100],
        "scaling_runs": 1,
        "hook_machines": 10,
        "hook_runs": 3,
        "stand_in_runs": 2,
        "quiet_wait_s": 0,
    },
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def series(commands, *, warm_up=True, rss=False):
    """Runs each command its number of times, interleaved so that a slow
    moment of the machine hits both sides alike, and checks every output.

    `commands` maps a name to (runs, make) where make() returns (argv,
    stdin bytes or None, check) and check(Run) raises BenchError if the
    output is wrong. With `rss`, peak memory is measured too. Returns
    {name: summary}."""
    done = {name: [] for name in commands}
    if warm_up:
        for runs, make in commands.values():
            argv, stdin, check = make()
            check(run(argv, stdin=stdin))
    for i in range(max(runs for runs, _ in commands.values())):
        for name, (runs, make) in commands.items():
            if i < runs:
                argv, stdin, check = make()
                result = run(argv, stdin=stdin, rss=rss)
                check(result)
                done[name].append(result)
    return {name: summarise(runs) for name, runs in done.items()}


def row(key, benchmark, measure, measure_short, ours, ref, unit, ref_name, ratio, ratio_text, target=None,
        chart="ratio"):
    """One figure of a run (see report.py for the fields). `ours` and `ref`
    are {median, min, max} (`spread`, `fixed`); `ratio` is of the medians
    and is what a target is checked on."""
    met = None
    if target is not None:
        value = target["value"]
        met = {">=": ratio >= value, "<=": ratio <= value, "==": ratio == value}[target["op"]]
    return {
        "key": key,
        "benchmark": benchmark,
        "measure": measure,
        "measure_short": measure_short,
        "ours": ours,
        "ref": ref,
        "ref_name": ref_name,
        "unit": unit,
        "ratio": ratio,
        "ratio_text": ratio_text,
        "target": target,
        "met": met,
        "chart": chart,
    }


def target(op, value, text):
    return {"op": op, "value": value, "text": text}


def parse_json(result, what):
    try:
        return json.loads(result.stdout)
    except ValueError as error:
        raise BenchError(f"{what}: output is not JSON ({error}): {result.stdout[:200]!r}") from None


def expected_states(sim, machines):
    """The power-state counts of the simulator's machines, read with one
    plain signed GET (outside any timing)."""
    request = urllib.request.Request(
        f"{sim.url}/api/2.0/machines/", headers={"Authorization": sim.authorization()}
    )
    with urllib.request.urlopen(request) as response:
        listed = json.load(response)
    if len(listed) != machines:
        raise BenchError(f"the simulator lists {len(listed)} machines, not {machines}")
    return dict(Counter(m["power_state"] for m in listed))


def same_counts(got, want):
    """Power-state counts equal, ignoring zero entries."""
    return {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}


def check_watcher_metal_nodes(machines, states, what):
    def check(result):
        out = parse_json(result, what)
        nodes = out["nodes"]
        if len(nodes) != machines:
            raise BenchError(f"{what}: {len(nodes)} nodes listed, the simulator has {machines}")
        failed = [n for n in nodes if n["power_state"] == "error" or "error" in n]
        if failed:
            raise BenchError(f"{what}: {len(failed)} nodes report an error, e.g. {failed[0]}")
        if not same_counts(out["summary"], states):
            raise BenchError(f"{what}: power states {out['summary']}, the simulator has {states}")

    return check


def check_libmaas_nodes(machines, states, what):
    def check(result):
        out = parse_json(result, what)
        if out["machines"] != machines:
            raise BenchError(f"{what}: {out['machines']} machines listed, the simulator has {machines}")
        if not same_counts(out["summary"], states):
            raise BenchError(f"{what}: power states {out['summary']}, the simulator has {states}")

    return check


def slope(xs, ys):
    """The least-squares slope of ys over xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


# The unit's hook tools and programs for the hook benchmark, as POSIX shell:
# each records its call (name, arguments) and answers as on a Watcher 12.0.0
# unit with python-libmaas installed. Only shell built-ins record, so that a
# stand-in costs little and always the same.
RECORD = """{{ printf '%s' "${{0##*/}}"; for a in "$@"; do printf '\\037%s' "$a"; done; printf '\\n'; }} >> '{log}'\n"""
PACKAGES = {"python3-watcher": "2:12.0.0-0ubuntu1", "python3-libmaas": "0.6.8-0ubuntu1", "python3": "3.12.3-0ubuntu2"}
# systemctl show --property=LoadState,ActiveState UNIT...: every unit loaded
# and running; any other call (try-restart) succeeds.
SYSTEMCTL = r"""if [ "$1" = show ]; then
    shift
    for u in "$@"; do
        case $u in -*) continue ;; esac
        printf 'LoadState=loaded\nActiveState=active\n\n'
    done
fi
exit 0"""
# dpkg-query -W [-f FORMAT | --showformat=FORMAT] PACKAGE...: ${Package},
# ${Version}, ${db:Status-Status}, ${db:Status-Abbrev}, ${Status} and
# backslash escapes, as dpkg-query prints them; exit 1 for an unknown one.
DPKG_QUERY = r"""format='${binary:Package}\t${Version}\n'
while [ $# -gt 0 ]; do
    case $1 in
        -W | --show) ;;
        -f) shift; format=$1 ;;
        -f* | --showformat=*) format=${1#-f}; format=${format#--showformat=}; format=${format#=} ;;
        -*) ;;
        *) break ;;
    esac
    shift
done
code=0
for package in "$@"; do
    case $package in
PACKAGE_CASES        *) echo "dpkg-query: no packages found matching $package" >&2; code=1; continue ;;
    esac
    rest=$format
    out=
    while :; do
        case $rest in
            *'${'*'}'*) ;;
            *) out=$out$rest; break ;;
        esac
        out=$out${rest%%'${'*}
        rest=${rest#*'${'}
        field=${rest%%'}'*}
        rest=${rest#*'}'}
        case $field in
            Package | binary:Package) out=$out$package ;;
            Version) out=$out$version ;;
            db:Status-Status) out=${out}installed ;;
            db:Status-Abbrev) out="${out}ii " ;;
            Status) out="${out}install ok installed" ;;
        esac
    done
    printf '%b' "$out"
done
exit $code
"""


def spawn_and_wait(argv, env):
    """The seconds from spawning `argv` (an absolute path) to its exit,
    spawned as watcher-metal spawns a program (posix_spawn, which does not
    copy this process's memory as fork would), its input and output
    /dev/null."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
        os.waitpid(pid, 0)
        return time.perf_counter() - start
    finally:
        os.close(null)


def dpkg_query_script():
    """The body of a stand-in `dpkg-query` answering as a Watcher 12.0.0
    unit with python3-libmaas would."""
    cases = "".join(f"        {p}) version='{v}' ;;\n" for p, v in PACKAGES.items())
    return DPKG_QUERY.replace("PACKAGE_CASES", cases)


def write_accounts(accounts, home):
    """A unit's passwd and group in `accounts` (read through
    WATCHER_METAL_ETC): the `watcher` user, whose HOME is `home`."""
    accounts.mkdir(exist_ok=True)
    (accounts / "passwd").write_text(f"watcher:x:64061:64061::{home}:/usr/sbin/nologin\n")
    (accounts / "group").write_text("")


def doctor_unit(tmp, config, conf):
    """Makes `config` a Watcher 12.0.0 unit's for `doctor`: watcher.conf
    `conf`, the drop-ins under a root of the run's own (the `watcher` user's
    HOME in the unit's passwd), dpkg-query and Watcher's Python stood in
    for. Returns the environment variables to run with."""
    root = tmp / "drop-in-root"
    root.mkdir(exist_ok=True)
    accounts = tmp / "accounts"
    write_accounts(accounts, root)
    with open(config, "a") as f:
        f.write(f"watcher-conf-path: {conf}\ndrop-in-root: {root}\n")
    unit_bin = tmp / "unit-bin"
    unit_bin.mkdir(exist_ok=True)
    for tool, script in [("dpkg-query", dpkg_query_script()), ("python3", "exit 0")]:
        (unit_bin / tool).write_text(f"#!/bin/sh\n{script}\n")
        (unit_bin / tool).chmod(0o755)
    return {"PATH": f"{unit_bin}:{os.environ.get('PATH', '')}", "WATCHER_METAL_ETC": str(accounts)}


def stand_ins(unit):
    """The stand-ins' scripts, by name, for a unit directory."""
    files = {"config": unit / "config.json", "secret": unit / "secret.json"}
    answers = {
        "config-get": f"exec cat '{files['config']}'",
        "secret-get": f"exec cat '{files['secret']}'",
        "dpkg-query": dpkg_query_script(),
        # Watcher's Python: `import maas.client` works.
        "python3": "exit 0",
        "systemctl": SYSTEMCTL,
    }
    quiet = ["status-set", "juju-log", "application-version-set", "action-get", "action-set", "action-fail",
             "apt-get", "update-ca-certificates"]
    log = unit / "calls.log"
    return {tool: "#!/bin/sh\n" + RECORD.format(log=log) + answers.get(tool, "exit 0") + "\n"
            for tool in [*answers, *quiet]}


class HookUnit:
    """A Juju unit in a directory: a watcher.conf as the principal charm
    left it (`etc/watcher/watcher.conf`), `etc` as the drop-in root (the
    `watcher` user's HOME in the unit's own passwd, so that the drop-ins
    go to `etc/<program>.conf.d/` and are read there), a charm directory,
    and the hook tools and programs stood in for on PATH, for a MAAS at
    `url`. Nothing is written outside the directory."""

    def __init__(self, root, url, api_key):
        self.root = Path(root)
        self.bin = self.root / "bin"
        self.charm = self.root / "charm"
        for d in (self.bin, self.charm, self.root / "etc" / "watcher", self.root / "ca"):
            d.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "etc" / "watcher" / "watcher.conf"
        self.conf.write_text("# rendered by the watcher charm\n[DEFAULT]\ndebug = False\n")
        options = yaml.safe_load((ROOT / "charm" / "config.yaml").read_text())["options"]
        config = {name: option.get("default") for name, option in options.items()}
        config.update({"maas-url": url, "maas-api-key-secret": "secret:bench-maas-api-key",
                       "watcher-conf-path": str(self.conf), "drop-in-root": str(self.root / "etc")})
        accounts = self.root / "accounts"
        write_accounts(accounts, self.root / "etc")
        (self.root / "config.json").write_text(json.dumps(config))
        (self.root / "secret.json").write_text(json.dumps({"api-key": api_key}))
        for tool, script in stand_ins(self.root).items():
            (self.bin / tool).write_text(script)
            (self.bin / tool).chmod(0o755)
        self.env = {
            "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "JUJU_CONTEXT_ID": "watcher-maas/0-bench",
            "JUJU_UNIT_NAME": "watcher-maas/0",
            "JUJU_CHARM_DIR": str(self.charm),
            "WATCHER_METAL_CA_DIR": str(self.root / "ca"),
            "WATCHER_METAL_ETC": str(self.root / "accounts"),
            "HOME": str(self.charm),
            "LANG": "C.UTF-8",
        }

    def dispatch(self, path):
        """`watcher-metal dispatch` for `hooks/NAME`, as a command for `run`."""
        return ["env", "-i", *(f"{k}={v}" for k, v in {**self.env, "JUJU_DISPATCH_PATH": path}.items()),
                str(ROOT / WATCHER_METAL), "dispatch"]

    def take_calls(self):
        """The stand-ins' calls since the last time, as (tool, args...)."""
        log = self.root / "calls.log"
        try:
            text = log.read_text()
        except FileNotFoundError:
            return []
        log.unlink()
        return [tuple(line.split("\x1f")) for line in text.splitlines()]

    def status(self, calls):
        """The last status the hook set."""
        sets = [c[1:] for c in calls if c[0] == "status-set"]
        return sets[-1] if sets else None


class Bench:
    def __init__(self, python, sizes, tmp):
        self.python = str(python)
        self.n = sizes
        self.tmp = Path(tmp)
        self.rows = []
        self.benchmarks = []

    def add(self, title, setup, commands, data):
        self.benchmarks.append({"title": title, "setup": setup, "commands": commands, "data": data})

    # 1. Cold render ------------------------------------------------------
    def render(self):
        files = ["examples/charm-config.yaml", "examples/context.yaml"]
        ours = [WATCHER_METAL, "render", "--full", "--config", files[0], "--context", files[1], "--output", "-"]
        peer = [self.python, "bench/peers/render_jinja2.py", "templates", *files]

        # Both must render the same file (ours masks secrets on a terminal-bound
        # `--output -`, so compare with --reveal-secrets).
        revealed = run(ours + ["--reveal-secrets"]).stdout
        peer_text = run(peer).stdout
        if revealed != peer_text:
            raise BenchError("render: the Jinja2 peer and watcher-metal render different text")
        masked = run(ours).stdout
        if b"api_key = <redacted>" not in masked or b"[ironic_client]" not in masked:
            raise BenchError("render: watcher-metal's output lacks the masked [maas_client] or [ironic_client]")

        def same_as(expected, what):
            def check(result):
                if result.stdout != expected:
                    raise BenchError(f"render: {what} printed something else than before")

            return check

        n = self.n["render_runs"]
        stats = series(
            {
                "ours": (n, lambda: (ours, None, same_as(masked, "watcher-metal"))),
                "peer": (n, lambda: (peer, None, same_as(peer_text, "the Jinja2 peer"))),
            }
        )
        o, p = stats["ours"]["median_s"], stats["peer"]["median_s"]
        self.rows.append(
            row(
                "render", "1. Cold render", f"wall time, {n} runs", "time", spread(stats["ours"]), spread(stats["peer"]),
                "s", "Python + Jinja2", p / o, f"{p / o:.1f}x faster", target(">=", 30, "≥ 30x"),
            )
        )
        self.add(
            "1. Cold render of a whole watcher.conf",
            "whole process each run; the peer's output is checked identical to ours with --reveal-secrets",
            {"ours": " ".join(ours), "peer": " ".join(["target/bench-venv/bin/python", *peer[1:]])},
            stats,
        )
        log(f"render: ours {report.fmt_value(o, 's')}, peer {report.fmt_value(p, 's')}")

    # 2. Listing ----------------------------------------------------------
    def listing(self, sim_binary):
        machines = self.n["list_machines"]
        with MaasSim(sim_binary, machines) as sim:
            config = sim.write_config(self.tmp / "maas.yaml")
            states = expected_states(sim, machines)
            key = (sim.api_key + "\n").encode()
            ours = [WATCHER_METAL, "nodes", "--format", "json", "-c", str(config)]
            peer = [self.python, "bench/peers/libmaas_nodes.py", sim.url]
            floor = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "-H", "@-",
                     f"{sim.url}/api/2.0/machines/"]

            sizes = set()

            def check_floor(result):
                status, size = result.stdout.decode().split()
                if status != "200":
                    raise BenchError(f"listing: curl got HTTP {status}")
                sizes.add(int(size))

            def floor_cmd():
                header = f"Authorization: {sim.authorization()}\n".encode()
                return floor, header, check_floor

            stats = series(
                {
                    "ours": (self.n["list_runs"], lambda: (ours, None, check_watcher_metal_nodes(
                        machines, states, "listing (watcher-metal)"))),
                    "floor": (self.n["list_runs"], floor_cmd),
                    "peer": (self.n["list_peer_runs"], lambda: (peer, key, check_libmaas_nodes(
                        machines, states, "listing (python-libmaas)"))),
                },
                rss=True,
            )
        if len(sizes) != 1:
            raise BenchError(f"listing: the download size varied: {sizes}")
        body = sizes.pop()
        o, p, f = (stats[k]["median_s"] for k in ("ours", "peer", "floor"))
        om, pm = stats["ours"]["median_max_rss_kib"], stats["peer"]["median_max_rss_kib"]
        bench = f"2. List {machines:,} machines"
        runs = f"{self.n['list_runs']} runs (peer {self.n['list_peer_runs']})"
        self.rows += [
            row("list.peer", bench, f"wall time, {runs}", "time", spread(stats["ours"]), spread(stats["peer"]), "s",
                "python-libmaas", p / o, f"{p / o:.1f}x faster", target(">=", 10, "≥ 10x")),
            row("list.rss.peer", bench, f"peak RSS, {runs}", "peak memory", spread(stats["ours"], "rss"),
                spread(stats["peer"], "rss"), "KiB", "python-libmaas", pm / om,
                f"{pm / om:.1f}x less ({om / pm:.2f} of peer)", target(">=", 5, "≤ 1/5")),
            row("list.floor", bench, f"wall time vs. download floor, {self.n['list_runs']} runs", "time vs. floor",
                spread(stats["ours"]), spread(stats["floor"]), "s", "curl, same GET", o / f, f"{o / f:.2f}x the floor",
                target("<=", FLOOR_TARGET, f"≤ {FLOOR_TARGET}x the floor"), chart="floor"),
            row("list.rss", bench, f"peak RSS, {self.n['list_runs']} runs", "peak memory", spread(stats["ours"], "rss"),
                None, "KiB", None, om / 1024, f"{om / 1024:.1f} MiB", target("<=", 16, "≤ 16 MiB"), chart=None),
        ]
        self.add(
            f"2. Power states of {machines:,} machines from one listing",
            f"maas-sim --machines {machines}; the listing answer is {body / 1024 / 1024:.1f} MiB of JSON",
            {
                "ours": f"{WATCHER_METAL} nodes --format json -c CONFIG",
                "peer": "target/bench-venv/bin/python bench/peers/libmaas_nodes.py URL <<< KEY",
                "floor": 'curl -sS -o /dev/null -H "$H" URL/api/2.0/machines/',
            },
            {**stats, "listing_bytes": body, "power_states": states},
        )
        log(f"listing: ours {report.fmt_value(o, 's')}, floor {report.fmt_value(f, 's')}, "
            f"peer {report.fmt_value(p, 's')}")

    # 2b. Pairing with Nova ---------------------------------------------
    def nova(self, maas_binary, nova_binary):
        machines, page_size = self.n["nova_machines"], self.n["nova_page_size"]
        with MaasSim(maas_binary, machines) as sim, NovaSim(nova_binary, machines, page_size=page_size) as nova:
            conf = self.tmp / "watcher.conf"
            conf.write_text(f"[DEFAULT]\n{nova.clients_auth_section()}")
            conf.chmod(0o600)
            config = sim.write_config(self.tmp / "nova.yaml")
            # doctor as on a Watcher 12.0.0 unit, on the files the charm wrote
            # there (under a root of the run's own, as on a unit).
            unit_env = ["env", *(f"{k}={v}" for k, v in doctor_unit(self.tmp, config, conf).items())]
            ours = [WATCHER_METAL, "nodes", "--nova", "--format", "json", "-c", str(config)]
            run([*unit_env, WATCHER_METAL, "render", "-c", str(config)])
            doctor = [*unit_env, WATCHER_METAL, "doctor", "--format", "json", "-c", str(config)]

            # The floor: one curl fetching what watcher-metal fetches, one
            # after another: MAAS's listing, Keystone's token, every page of
            # Nova's hypervisors (their URLs and a token found beforehand).
            token_req = urllib.request.Request(
                f"{nova.auth_url}/v3/auth/tokens", data=nova.token_request().encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(token_req) as response:
                token = response.headers["X-Subject-Token"]
            pages, url = [], f"{nova.nova_url}/os-hypervisors/detail"
            while url:
                pages.append(url)
                request = urllib.request.Request(url, headers={"X-Auth-Token": token,
                                                               "OpenStack-API-Version": "compute 2.56"})
                with urllib.request.urlopen(request) as response:
                    body = json.load(response)
                nxt = [link["href"] for link in body.get("hypervisors_links", []) if link.get("rel") == "next"]
                url = nxt[0] if nxt and body["hypervisors"] else None
            floor = ["curl", "-sS", "-K", "-"]
            sizes = set()

            def quote(text):
                return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

            def floor_cmd():
                lines = [f"url = {quote(sim.url + '/api/2.0/machines/')}",
                         f"header = {quote('Authorization: ' + sim.authorization())}",
                         "output = /dev/null", 'write-out = "%{http_code} %{size_download}\\n"', "next",
                         f"url = {quote(nova.auth_url + '/v3/auth/tokens')}",
                         'header = "Content-Type: application/json"', f"data = {quote(nova.token_request())}",
                         "output = /dev/null", 'write-out = "%{http_code} %{size_download}\\n"']
                for page in pages:
                    lines += ["next", f"url = {quote(page)}", f"header = {quote('X-Auth-Token: ' + token)}",
                              'header = "OpenStack-API-Version: compute 2.56"', "output = /dev/null",
                              'write-out = "%{http_code} %{size_download}\\n"']
                return floor, ("\n".join(lines) + "\n").encode(), check_floor

            def check_floor(result):
                answers = [line.split() for line in result.stdout.decode().splitlines()]
                if len(answers) != len(pages) + 2 or any(a[0] not in ("200", "201") for a in answers):
                    raise BenchError(f"nova: curl got {answers}")
                sizes.add(sum(int(a[1]) for a in answers))

            def check_ours(result):
                out = parse_json(result, "nova (watcher-metal)")
                summary = out["summary"]
                if summary["managed"] != machines or summary["hypervisors"] != machines or summary["near_misses"]:
                    raise BenchError(f"nova: watcher-metal paired {summary}, wanted all {machines} machines")
                if out["nova"]["pages"] != len(pages):
                    raise BenchError(f"nova: watcher-metal read {out['nova']['pages']} pages, Nova has {len(pages)}")

            def check_doctor(result):
                out = parse_json(result, "doctor (watcher-metal)")
                pairing = [c for c in out["checks"] if c["name"] == "nova-pairing"]
                if not pairing or not pairing[0]["message"].startswith(f"{machines} of {machines} nodes pair"):
                    raise BenchError(f"doctor: {pairing}")

            stats = series(
                {
                    "ours": (self.n["nova_runs"], lambda: (ours, None, check_ours)),
                    "doctor": (self.n["nova_runs"], lambda: (doctor, None, check_doctor)),
                    "floor": (self.n["nova_runs"], floor_cmd),
                },
                rss=True,
            )
        if len(sizes) != 1:
            raise BenchError(f"nova: the download size varied: {sizes}")
        body = sizes.pop()
        o, f = stats["ours"]["median_s"], stats["floor"]["median_s"]
        bench = f"2b. Pair {machines:,} machines with Nova"
        measure = f"wall time vs. download floor, {self.n['nova_runs']} runs"
        self.rows.append(
            row("nova.floor", bench, measure, "time vs. floor", spread(stats["ours"]), spread(stats["floor"]), "s",
                "curl, the same GETs one after another", o / f, f"{o / f:.2f}x the floor",
                target("<=", FLOOR_TARGET, f"≤ {FLOOR_TARGET}x the floor"), chart="floor"),
        )
        d = stats["doctor"]["median_s"]
        self.rows.append(
            row("doctor.floor", f"2c. `doctor` with {machines:,} machines and hypervisors", measure, "time vs. floor",
                spread(stats["doctor"]), spread(stats["floor"]), "s", "curl, the same GETs one after another", d / f,
                f"{d / f:.2f}x the floor", target("<=", FLOOR_TARGET, f"≤ {FLOOR_TARGET}x the floor"), chart="floor"),
        )
        self.add(
            f"2b. `nodes --nova`: {machines:,} MAAS machines paired with {machines:,} Nova hypervisors",
            f"maas-sim --machines {machines}; nova-sim --hypervisors {machines} --page-size {page_size} "
            f"({len(pages)} pages at 2.56); both answers are {body / 1024 / 1024:.1f} MiB of JSON",
            {
                "ours": f"{WATCHER_METAL} nodes --nova --format json -c CONFIG",
                "doctor": f"{WATCHER_METAL} doctor --format json -c CONFIG (dpkg-query and python3 stood in for)",
                "floor": "curl -sS -K - (MAAS machines/, Keystone token, each os-hypervisors/detail page)",
            },
            {**stats, "download_bytes": body, "nova_pages": len(pages)},
        )
        log(f"nova: ours {report.fmt_value(o, 's')}, doctor {report.fmt_value(d, 's')}, "
            f"floor {report.fmt_value(f, 's')}")

    # 2d. Peak memory as the listing grows ------------------------------
    def scaling(self, sim_binary):
        sizes = self.n["scaling_machines"]
        peaks = {}
        for machines in sizes:
            with MaasSim(sim_binary, machines) as sim:
                config = sim.write_config(self.tmp / f"scaling-{machines}.yaml")
                ours = [WATCHER_METAL, "nodes", "--format", "json", "-c", str(config)]

                def check(result, machines=machines):
                    nodes = parse_json(result, f"scaling ({machines})")["nodes"]
                    if len(nodes) != machines or any(n["power_state"] == "error" for n in nodes):
                        raise BenchError(f"scaling: {len(nodes)} nodes listed (or in error), the simulator has {machines}")

                stats = series({"ours": (self.n["scaling_runs"], lambda: (ours, None, check))}, warm_up=False, rss=True)
            peaks[machines] = stats["ours"]
        ys = [peaks[m]["median_max_rss_kib"] * 1024 for m in sizes]
        growth = slope(sizes, ys)
        at = ", ".join(f"{y / 1024 / 1024:.1f}" for y in ys)
        names = ", ".join(f"{m:,}" for m in sizes)
        self.rows.append(
            row("list.growth", "2d. Peak memory as the listing grows", f"peak RSS at {names} machines: growth per "
                f"machine (least squares), {self.n['scaling_runs']} runs each", "memory growth", fixed(growth), None,
                "B/machine", None, growth, f"{growth:.0f} B/machine ({at} MiB)",
                target("<=", ROW_BYTES_TARGET, f"≤ {ROW_BYTES_TARGET} B/machine (a row: 368 B)"), chart=None),
        )
        self.add(
            "2d. Peak memory of `nodes` as the listing grows",
            f"maas-sim --machines {names}, one after another",
            {"ours": f"{WATCHER_METAL} nodes --format json -c CONFIG"},
            {"peaks": {str(m): peaks[m] for m in sizes}, "growth_bytes_per_machine": growth},
        )
        log(f"scaling: {growth:.0f} B/machine ({at} MiB at {names})")

    # 6. The update-status hook ----------------------------------------
    def hook(self, sim_binary):
        machines = self.n["hook_machines"]
        with MaasSim(sim_binary, machines) as sim:
            # What the hook asks of MAAS, through a counting relay, on a unit of its own.
            counter = RequestCounter(sim.port)
            counted = HookUnit(self.tmp / "hook-counted", f"http://127.0.0.1:{counter.port}/MAAS", sim.api_key)
            for path in ("hooks/install", "hooks/config-changed"):
                run(counted.dispatch(path))
            counter.take()
            run(counted.dispatch("hooks/update-status"))
            requests = counter.take()
            counter.close()

            unit = HookUnit(self.tmp / "hook", sim.url, sim.api_key)
            for path in ("hooks/install", "hooks/config-changed"):
                run(unit.dispatch(path))
            drop_in = self.tmp / "hook" / "etc" / "watcher-decision-engine.conf.d"
            if not any(drop_in.glob("*.conf")):
                raise BenchError(f"hook: config-changed wrote no drop-in in {drop_in}")
            unit.take_calls()
            update = unit.dispatch("hooks/update-status")
            run(update)
            calls = unit.take_calls()
            status = unit.status(calls)
            if not status or status[0] != "active":
                raise BenchError(f"hook: update-status left the status {status}, not active: calls {calls}")

            def check(result):
                again = unit.take_calls()
                if again != calls:
                    raise BenchError(f"hook: update-status made other calls this time: {again}, before {calls}")

            stats = series({"hook": (self.n["hook_runs"], lambda: (update, None, check))}, warm_up=False)

            # Each stand-in call on its own, as the hook makes it, to take out
            # its time: spawned as the hook spawns it (posix_spawn, no input),
            # from spawn to exit, the calls taken in turn, the median of each.
            samples = {call: [] for call in set(calls)}
            for _ in range(self.n["stand_in_runs"]):
                for call in samples:
                    samples[call].append(spawn_and_wait([str(unit.bin / call[0]), *call[1:]], unit.env))
            unit.take_calls()
            cost = {call: statistics.median(times) for call, times in samples.items()}
        stand_ins_s = sum(cost[c] for c in calls)
        ours = [t - stand_ins_s for t in stats["hook"]["samples_s"]]
        ours_spread = {"median": statistics.median(ours), "min": min(ours), "max": max(ours)}
        tools = Counter(c[0] for c in calls)
        made = ", ".join(f"{t} ×{n}" if n > 1 else t for t, n in sorted(tools.items()))
        o, h = ours_spread["median"], stats["hook"]["median_s"]
        maas = ", ".join(r.split("/api/2.0/", 1)[-1] for r in requests) or "none"
        self.rows.append(
            row("hook", "6. `update-status` hook", f"wall time of `watcher-metal dispatch`, the stand-ins' time taken "
                f"out, {self.n['hook_runs']} runs", "hook", ours_spread, spread(stats["hook"]), "s",
                "the whole hook, stand-ins included", o / h,
                f"{report.fmt_value(o, 's')} ours; stand-ins {report.fmt_value(stand_ins_s, 's')} ({made}); "
                f"MAAS: {maas}", chart=None),
        )
        self.add(
            "6. A whole `update-status` hook on a converged unit",
            f"maas-sim --machines {machines}; `watcher-metal dispatch` with JUJU_DISPATCH_PATH=hooks/update-status, the "
            "hook tools and the unit's programs stood in for by shell scripts on PATH (Watcher 12.0.0, python-libmaas "
            f"installed); each stand-in call, as the hook made it, spawned on its own {self.n['stand_in_runs']} times "
            "(posix_spawn, as watcher-metal spawns it), its median time from spawn to exit taken out of the hook's",
            {"ours": f"env JUJU_DISPATCH_PATH=hooks/update-status ... {WATCHER_METAL} dispatch"},
            {**stats, "calls": [list(c) for c in calls], "stand_in_s": {" ".join(c): cost[c] for c in cost},
             "maas_requests": requests},
        )
        log(f"hook: ours {report.fmt_value(o, 's')} of {report.fmt_value(h, 's')}; {made}; MAAS: {maas}")

    # 3. Live survey ------------------------------------------------------
    def survey(self, sim_binary):
        machines, delay = self.n["survey_machines"], self.n["survey_delay_ms"]
        with MaasSim(sim_binary, machines, power_query_delay_ms=delay,
                     max_concurrent_power_queries=CONCURRENCY) as sim:
            config = sim.write_config(self.tmp / "maas.yaml")
            states = expected_states(sim, machines)
            key = (sim.api_key + "\n").encode()
            ours = [WATCHER_METAL, "nodes", "--live", "--format", "json", "-c", str(config)]
            peer = [self.python, "bench/peers/libmaas_nodes.py", sim.url, "--live"]

            # Through the request counter once: one query per machine, so no
            # query was refused by the simulator's limit and retried.
            counter = RequestCounter(sim.port)
            counted = sim.write_config(self.tmp / "counted.yaml", f"http://127.0.0.1:{counter.port}/MAAS")
            check_watcher_metal_nodes(machines, states, "survey (watcher-metal)")(
                run([WATCHER_METAL, "nodes", "--live", "--format", "json", "-c", str(counted)]))
            requests = counter.take()
            counter.close()
            queries = sum("op=query_power_state" in r for r in requests)
            if queries != machines or len(requests) != machines + 1:
                raise BenchError(f"survey: watcher-metal made {len(requests)} requests, {queries} power queries, "
                                 f"for {machines} machines (a refused query is retried)")

            stats = series(
                {
                    "ours": (self.n["survey_runs"], lambda: (ours, None, check_watcher_metal_nodes(
                        machines, states, "survey (watcher-metal)"))),
                    "peer": (self.n["survey_peer_runs"], lambda: (peer, key, check_libmaas_nodes(
                        machines, states, "survey (python-libmaas)"))),
                },
                warm_up=False,
            )
        o, p = stats["ours"]["median_s"], stats["peer"]["median_s"]
        bench = f"3. Live survey of {machines:,} machines"
        self.rows += [
            row("survey.peer", bench, f"wall time, {self.n['survey_runs']} runs (peer {self.n['survey_peer_runs']})",
                "time", spread(stats["ours"]), spread(stats["peer"]), "s", "python-libmaas, one by one", p / o,
                f"{p / o:.1f}x faster", target(">=", 10, "≥ 10x")),
            row("survey.errors", bench, "nodes in error (sim limit: 16 queries at once)", "errors", fixed(0), fixed(0),
                "nodes", "python-libmaas", 0, f"{machines + 1} requests, no retry", target("==", 0, "0 errors"),
                chart=None),
        ]
        self.add(
            f"3. Live power survey of {machines:,} machines",
            f"maas-sim --machines {machines} --power-query-delay-ms {delay} "
            f"--max-concurrent-power-queries {CONCURRENCY}",
            {
                "ours": f"{WATCHER_METAL} nodes --live --format json -c CONFIG",
                "peer": "target/bench-venv/bin/python bench/peers/libmaas_nodes.py URL --live <<< KEY",
            },
            {**stats, "requests_made_by_ours": len(requests), "power_states": states},
        )
        log(f"survey: ours {report.fmt_value(o, 's')}, peer {report.fmt_value(p, 's')}")

    # 4. Credential check -------------------------------------------------
    def validate(self, sim_binary):
        machines = self.n["validate_machines"]
        with MaasSim(sim_binary, machines) as sim:
            config = sim.write_config(self.tmp / "maas.yaml")
            key = (sim.api_key + "\n").encode()
            ours = [WATCHER_METAL, "validate", "-c", str(config)]
            peer = [self.python, "bench/peers/libmaas_validate.py", sim.url]

            def check_ours(result):
                text = result.stdout.decode()
                if text.count("ok: ") != 3 or f"ok: {machines} machines visible" not in text:
                    raise BenchError(f"validate: unexpected report:\n{text}")

            def check_peer(result):
                out = parse_json(result, "validate (python-libmaas)")
                if out["machines"] != machines or out["user"] != "admin":
                    raise BenchError(f"validate (python-libmaas): unexpected summary {out}")

            # Count the requests of one run of each through the request counter.
            counter = RequestCounter(sim.port)
            proxied = f"http://127.0.0.1:{counter.port}/MAAS"
            check_ours(run([WATCHER_METAL, "validate", "-c", str(sim.write_config(self.tmp / "c.yaml", proxied))]))
            ours_requests = counter.take()
            check_peer(run([self.python, "bench/peers/libmaas_validate.py", proxied], stdin=key))
            peer_requests = counter.take()
            counter.close()
            wanted = ["version/", "users/?op=whoami", "machines/"]
            if [r.split("/api/2.0/", 1)[-1] for r in ours_requests] != wanted:
                raise BenchError(f"validate: requests made: {ours_requests}, wanted GET {wanted}")

            n = self.n["validate_runs"]
            stats = series({"ours": (n, lambda: (ours, None, check_ours)),
                            "peer": (n, lambda: (peer, key, check_peer))})
        o, p = stats["ours"]["median_s"], stats["peer"]["median_s"]
        bench = "4. Credential check"
        self.rows += [
            row("validate.requests", bench, "HTTP requests made", "requests", fixed(len(ours_requests)),
                fixed(len(peer_requests)), "", "python-libmaas", len(ours_requests),
                f"{len(ours_requests)} (peer {len(peer_requests)})", target("==", 3, "3 (version, whoami, listing)"),
                chart=None),
            row("validate.peer", bench, f"wall time, {n} runs", "time", spread(stats["ours"]), spread(stats["peer"]),
                "s", "python-libmaas", p / o, f"{p / o:.1f}x faster"),
        ]
        self.add(
            "4. Credential check",
            f"maas-sim --machines {machines}; requests counted by a relay in front of the simulator",
            {
                "ours": f"{WATCHER_METAL} validate -c CONFIG",
                "peer": "target/bench-venv/bin/python bench/peers/libmaas_validate.py URL <<< KEY",
            },
            {**stats, "requests_ours": ours_requests, "requests_peer": peer_requests},
        )
        log(f"validate: ours {report.fmt_value(o, 's')} in {len(ours_requests)} requests, "
            f"peer {report.fmt_value(p, 's')} in {len(peer_requests)}")

    # 5. Binary size and start-up -----------------------------------------
    def binary(self, site_packages):
        size = Path(WATCHER_METAL).stat().st_size
        sections = elf_section_names(WATCHER_METAL)
        stripped = ".symtab" not in sections and not any(s.startswith(".debug") for s in sections)
        if not stripped:
            raise BenchError(f"{WATCHER_METAL} is not stripped (the release profile strips it)")
        peer_size = tree_size(site_packages, skip=("pip", "setuptools", "_distutils_hack", "pkg_resources",
                                                    "distutils-precedence"))
        ours = [WATCHER_METAL, "--version"]
        peer = [self.python, "-c", "import jinja2, yaml, maas.client"]

        def check_version(result):
            if not result.stdout.startswith(b"watcher-metal "):
                raise BenchError(f"--version printed {result.stdout!r}")

        n = self.n["startup_runs"]
        stats = series({"ours": (n, lambda: (ours, None, check_version)),
                        "peer": (n, lambda: (peer, None, lambda r: None))})
        o, p = stats["ours"]["median_s"], stats["peer"]["median_s"]
        self.rows += [
            row("binary", "5. Binary", "release binary, stripped", "size", fixed(size), fixed(peer_size), "bytes",
                "venv site-packages", peer_size / size, f"{peer_size / size:.1f}x smaller", chart=None),
            row("startup", "5. Start-up", f"`--version`, {n} runs", "--version", spread(stats["ours"]),
                spread(stats["peer"]), "s", "python importing the peers", p / o, f"{p / o:.0f}x faster"),
        ]
        self.add(
            "5. Release binary and start-up",
            "stripped binary vs. the Python packages installed in the venv, interpreter not counted",
            {"ours": f"{WATCHER_METAL} --version",
             "peer": "target/bench-venv/bin/python -c 'import jinja2, yaml, maas.client'"},
            {**stats, "binary_bytes": size, "peer_site_packages_bytes": peer_size},
        )
        log(f"binary: {size} bytes; start-up ours {report.fmt_value(o, 's')}, peer {report.fmt_value(p, 's')}")


def stored_runs(out):
    """Every full run kept in OUT/runs."""
    return [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]


def write_reports(runs, out, doc):
    """chart.svg into `out` and, if given, the results block of `doc`, from
    the runs the report takes."""
    chosen = report.select_runs(runs)
    if not chosen:
        return []
    (out / "chart.svg").write_text(report.svg_chart(chosen, "watcher-metal vs. the Python stack"))
    if doc:
        chart = os.path.relpath(out / "chart.svg", doc.parent)
        report.update_doc(doc, chosen, chart)
    return chosen


LOADED = """
bench: ================================================================
bench: THE MACHINE WAS LOADED AT THE START OF THIS RUN
bench: 1-minute load average {load:.2f} on {cores} cores (quiet: {limit:.2f} or less).
bench: Its timings are recorded, but no target counts as met from it.
bench: ================================================================
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", help="the venv's python, with the Python peers")
    parser.add_argument("--out", required=True, type=Path, help="where runs/ and chart.svg go")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; check that everything runs")
    parser.add_argument("--doc", type=Path, help="regenerate the results block of this Markdown file")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: redraw the chart and the --doc block from OUT/runs")
    args = parser.parse_args()
    args.out = args.out.absolute()
    args.doc = args.doc.absolute() if args.doc else None
    python = Path(args.python).absolute() if args.python else None

    os.chdir(ROOT)
    if args.report_only:
        write_reports(stored_runs(args.out), args.out, args.doc)
        return 0
    if not python:
        parser.error("--python is required to measure")
    mode = "smoke" if args.smoke else "full"
    sizes = SIZES[mode]
    site_packages = next((python.parent.parent / "lib").glob("python3*/site-packages"))
    args.out.mkdir(parents=True, exist_ok=True)

    wait = float(os.environ.get("BENCH_QUIET_WAIT_S", sizes["quiet_wait_s"]))
    load = wait_for_quiet(wait, log)
    loaded = load[0] > quiet_limit()
    if loaded and mode == "full":
        log(LOADED.format(load=load[0], cores=cores(), limit=quiet_limit()))
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="watcher-metal-bench-") as tmp:
        bench = Bench(python, sizes, tmp)
        try:
            bench.render()
            bench.listing(MAAS_SIM)
            bench.nova(MAAS_SIM, NOVA_SIM)
            bench.scaling(MAAS_SIM)
            bench.survey(MAAS_SIM)
            bench.validate(MAAS_SIM)
            bench.binary(site_packages)
            bench.hook(MAAS_SIM)
        except BenchError as error:
            log(f"bench: FAILED: {error}")
            return 1

    machine = machine_info(ROOT, python)
    machine.update({"load_at_start": load, "load_at_end": load_average(), "quiet_limit": quiet_limit(),
                    "loaded": loaded})
    results = {
        "mode": mode,
        "run_id": started.strftime("%Y-%m-%dT%H-%M-%SZ"),
        "date": started.strftime("%Y-%m-%d"),
        "time": started.strftime("%H:%M"),
        "machine": machine,
        "sizes": sizes,
        "rows": bench.rows,
        "benchmarks": bench.benchmarks,
    }
    if args.smoke:
        for r in results["rows"]:
            r["met"] = None  # timings at tiny sizes say nothing
    runs_dir = args.out / "runs"
    runs_dir.mkdir(exist_ok=True)
    if mode == "full":
        # Runs at another commit measured other code: only this one's are kept.
        for old in stored_runs(args.out):
            if old["machine"]["commit"] != machine["commit"]:
                (runs_dir / f"{old['run_id']}.json").unlink()
    (runs_dir / f"{results['run_id']}.json").write_text(json.dumps(results, indent=1) + "\n")
    chosen = write_reports(stored_runs(args.out), args.out, args.doc) if mode == "full" else [results]
    print(report.markdown_table(report.aggregate(chosen), chosen))
    missed = [r for r in results["rows"] if r["met"] is False]
    print(f"\n{mode} run: results in {runs_dir}" + (f"; targets missed in this run: {len(missed)}" if missed else ""))
    if mode == "full":
        print(f"the report takes {len(chosen)} of the {report.RUNS_NEEDED} runs a target needs, at commit "
              f"{machine['commit']}")
    if loaded and mode == "full":
        log(LOADED.format(load=load[0], cores=cores(), limit=quiet_limit()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
