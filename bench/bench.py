"""watcher-metal against the Python stack OpenStack Watcher uses
(python-libmaas, Jinja2), side by side on the same MAAS simulator.

Run it through bench/run, which builds the release binaries and the
Python venv first. Usage:

    bench.py --python VENV_PYTHON --out DIR [--smoke] [--doc BENCHMARKS.md]
    bench.py --report-only --out DIR [--doc BENCHMARKS.md]

Every benchmark checks what each side printed (node counts, power-state
counts, the rendered text, the requests made) and fails the run if it is
wrong. --smoke runs everything at tiny sizes; timings are then
meaningless and no target is checked.
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import urllib.request
from collections import Counter
from pathlib import Path

import report
from harness import BenchError, MaasSim, NovaSim, RequestCounter, elf_section_names, machine_info, run, summarise, tree_size

ROOT = Path(__file__).resolve().parent.parent
WATCHER_METAL = "target/release/watcher-metal"
MAAS_SIM = "target/release/maas-sim"
NOVA_SIM = "target/release/nova-sim"
CONCURRENCY = 16  # watcher-metal's default --concurrency, and the simulator's limit

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


def row(benchmark, measure, measure_short, ours, peer, unit, peer_name, ratio, ratio_text, target=None,
        chart="ratio"):
    """One line of the results table (see report.py for the fields)."""
    met = None
    if target is not None:
        value = target["value"]
        met = {">=": ratio >= value, "<=": ratio <= value, "==": ratio == value}[target["op"]]
    return {
        "benchmark": benchmark,
        "measure": measure,
        "measure_short": measure_short,
        "ours": ours,
        "peer": peer,
        "peer_name": peer_name,
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
                "1. Cold render", f"wall time, median of {n}", "time", o, p, "s", "Python + Jinja2",
                p / o, f"{p / o:.1f}x faster", target(">=", 30, "≥ 30x"),
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
        self.rows += [
            row(bench, f"wall time, median of {self.n['list_runs']} (peer {self.n['list_peer_runs']})", "time",
                o, p, "s", "python-libmaas", p / o, f"{p / o:.1f}x faster", target(">=", 10, "≥ 10x")),
            row(bench, "peak RSS, median", "peak memory", om, pm, "KiB", "python-libmaas", pm / om,
                f"{pm / om:.1f}x less ({om / pm:.2f} of peer)", target(">=", 5, "≤ 1/5")),
            row(bench, "wall time vs. download floor", "time vs. floor", o, f, "s", "curl, same GET",
                o / f, f"{o / f:.2f}x the floor", target("<=", 2, "≤ 2x the floor"), chart="floor"),
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
            with open(config, "a") as f:
                f.write(f"watcher-conf-path: {conf}\n")
            ours = [WATCHER_METAL, "nodes", "--nova", "--format", "json", "-c", str(config)]
            # doctor as on a Watcher 12.0.0 unit: its dpkg-query and Python stood in for.
            unit_bin = self.tmp / "unit-bin"
            unit_bin.mkdir(exist_ok=True)
            for tool, script in [("dpkg-query", "echo 'installed 2:12.0.0-0ubuntu1'"), ("python3", "exit 0")]:
                (unit_bin / tool).write_text(f"#!/bin/sh\n{script}\n")
                (unit_bin / tool).chmod(0o755)
            doctor = ["env", f"PATH={unit_bin}:{os.environ.get('PATH', '')}", WATCHER_METAL, "doctor", "--format",
                      "json", "-c", str(config)]

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
        self.rows.append(
            row(bench, f"wall time vs. download floor, median of {self.n['nova_runs']}", "time vs. floor", o, f, "s",
                "curl, the same GETs one after another", o / f, f"{o / f:.2f}x the floor",
                target("<=", 1.5, "≤ 1.5x the floor"), chart="floor"),
        )
        d = stats["doctor"]["median_s"]
        self.rows.append(
            row(f"2c. `doctor` with {machines:,} machines and hypervisors",
                f"wall time vs. download floor, median of {self.n['nova_runs']}", "time vs. floor", d, f, "s",
                "curl, the same GETs one after another", d / f, f"{d / f:.2f}x the floor",
                target("<=", 1.5, "≤ 1.5x the floor"), chart="floor"),
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
            row(bench, f"wall time, median of {self.n['survey_runs']} (peer {self.n['survey_peer_runs']})",
                "time", o, p, "s", "python-libmaas, one by one", p / o, f"{p / o:.1f}x faster",
                target(">=", 10, "≥ 10x")),
            row(bench, "nodes in error (sim limit: 16 queries at once)", "errors", 0, 0, "nodes",
                "python-libmaas", 0, f"{machines + 1} requests, no retry", target("==", 0, "0 errors"),
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
            row(bench, "HTTP requests made", "requests", len(ours_requests), len(peer_requests), "", "python-libmaas",
                len(ours_requests), f"{len(ours_requests)} (peer {len(peer_requests)})",
                target("==", 3, "3 (version, whoami, listing)"), chart=None),
            row(bench, f"wall time, median of {n}", "time", o, p, "s", "python-libmaas", p / o,
                f"{p / o:.1f}x faster"),
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
            row("5. Binary", "release binary, stripped", "size", size, peer_size, "bytes",
                "venv site-packages", peer_size / size, f"{peer_size / size:.1f}x smaller", chart=None),
            row("5. Start-up", f"`--version`, median of {n}", "--version", o, p, "s",
                "python importing the peers", p / o, f"{p / o:.0f}x faster"),
        ]
        self.add(
            "5. Release binary and start-up",
            "stripped binary vs. the Python packages installed in the venv, interpreter not counted",
            {"ours": f"{WATCHER_METAL} --version",
             "peer": "target/bench-venv/bin/python -c 'import jinja2, yaml, maas.client'"},
            {**stats, "binary_bytes": size, "peer_site_packages_bytes": peer_size},
        )
        log(f"binary: {size} bytes; start-up ours {report.fmt_value(o, 's')}, peer {report.fmt_value(p, 's')}")


def write_reports(results, out, doc):
    """chart.svg into `out`, and the results block of `doc` if given."""
    (out / "chart.svg").write_text(report.svg_chart(results["rows"], "watcher-metal vs. the Python stack"))
    if doc:
        chart = os.path.relpath(out / "chart.svg", doc.parent)
        report.update_doc(doc, results, chart)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", help="the venv's python, with the Python peers")
    parser.add_argument("--out", required=True, type=Path, help="where latest.json and chart.svg go")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; check that everything runs")
    parser.add_argument("--doc", type=Path, help="regenerate the results block of this Markdown file")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: redraw the chart and the --doc block from OUT/latest.json")
    args = parser.parse_args()
    args.out = args.out.absolute()
    args.doc = args.doc.absolute() if args.doc else None
    python = Path(args.python).absolute() if args.python else None

    os.chdir(ROOT)
    if args.report_only:
        results = json.loads((args.out / "latest.json").read_text())
        write_reports(results, args.out, args.doc)
        return 0
    if not python:
        parser.error("--python is required to measure")
    mode = "smoke" if args.smoke else "full"
    site_packages = next((python.parent.parent / "lib").glob("python3*/site-packages"))
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="watcher-metal-bench-") as tmp:
        bench = Bench(python, SIZES[mode], tmp)
        try:
            bench.render()
            bench.listing(MAAS_SIM)
            bench.nova(MAAS_SIM, NOVA_SIM)
            bench.survey(MAAS_SIM)
            bench.validate(MAAS_SIM)
            bench.binary(site_packages)
        except BenchError as error:
            log(f"bench: FAILED: {error}")
            return 1

    results = {
        "mode": mode,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "machine": machine_info(ROOT, python),
        "sizes": SIZES[mode],
        "rows": bench.rows,
        "benchmarks": bench.benchmarks,
    }
    if args.smoke:
        for r in results["rows"]:
            r["met"] = None  # timings at tiny sizes say nothing
    (args.out / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    write_reports(results, args.out, args.doc)

    print(report.markdown_table(results["rows"]))
    missed = [r for r in results["rows"] if r["met"] is False]
    print(f"\n{mode} run: results in {args.out}" + (f"; targets missed: {len(missed)}" if missed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
