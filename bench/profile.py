"""Where watcher-metal's instructions go at 10,000 machines: the listing
(benchmark 2), `nodes --nova` (2b) and `doctor` (2c) run once each under
valgrind's callgrind, and the instructions of each part counted. Instruction
counts do not depend on what else the machine is doing, so the breakdown
holds on a busy machine, where wall times do not.

Run it through `bench/run --profile`, which builds the binary with symbols
(into target/bench-profile, the release profile otherwise unchanged).

    profile.py --binary PATH [--machines N]

Notes on reading the counts: all threads are counted together (the
reading thread of the HTTP client and the second parsing thread included);
glibc's `rep movsb` copies count one instruction per byte, so large copies
weigh more here than in time.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import doctor_unit
from harness import BenchError, MaasSim, NovaSim

ROOT = Path(__file__).resolve().parent.parent

# The parts: the instructions spent in (inclusive) a function, all its
# calls; callgrind merges the copies of a generic function. The parts of
# the first group do not overlap; `self` parts count the instructions of
# the functions themselves, wherever they are called from.
PARTS = [
    ("the MAAS listing, main thread: reading, its parts", "incl", r"MaasClient>::each_node\b"),
    ("Nova's listing thread: Keystone, pages, its parts", "incl", r"NovaClient::list_hypervisors\b"),
    ("parts of both listings parsed by the second threads", "incl", r"json_body::second_thread\b"),
    ("pairing", "incl", r"watcher::pairing::pair\b"),
    ("output (JSON written)", "incl", r"cli::report::(print_nodes|print_nova_report|write_json_line)\b"),
    ("freeing what was listed, at exit", "incl", r"drop_in_place<watcher_metal::ops::listing::Listing>"),
]
ACROSS = [
    ("parsing the listings' elements, all threads (the parts)", "incl", r"json_body::part\b"),
    ("  of which skimming (json_skim::skim_object)", "incl", r"json_skim::skim_object\b"),
    ("allocation (malloc, free, realloc)", "self",
     r"^\S*:(_int_malloc|_int_free|malloc|free|realloc|_int_realloc|malloc_consolidate|cfree|unlink_chunk\S*)$"),
    ("copies (memcpy, memmove, memset)", "self", r"__mem(cpy|move|set)_"),
]


def annotate(out_file, inclusive):
    args = ["callgrind_annotate", "--threshold=100"] + (["--inclusive=yes"] if inclusive else []) + [out_file]
    text = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(\S.*)$", line)
        if m and ":" in m.group(2):
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    total = next(int(m.group(1).replace(",", "")) for m in
                 [re.match(r"\s*([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", line) for line in text.splitlines()] if m)
    return total, rows


def part(rows, pattern, summed):
    """The largest count of a function matching `pattern` (the lines of a
    function inlined from other files are parts of it); with `summed`, the
    counts of every matching function added up."""
    found = [count for count, name in rows if re.search(pattern, name.split(" [")[0])]
    if not found:
        return 0
    return sum(found) if summed else max(found)


def profile(binary, argv, env, label):
    with tempfile.NamedTemporaryFile(prefix="callgrind-") as out:
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", binary, *argv],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        total, inclusive = annotate(out.name, True)
        _, own = annotate(out.name, False)
    print(f"\n{label}: {total / 1e6:.0f} M instructions")
    def show(name, count):
        print(f"  {name:<56} {count / 1e6:7.1f} M  {count / total:6.1%}")

    accounted = 0
    for name, _, pattern in PARTS:
        count = part(inclusive, pattern, False)
        accounted += count
        if count:
            show(name, count)
    show("start-up, configuration, the rest", total - accounted)
    print("  across the parts above:")
    for name, kind, pattern in ACROSS:
        show(name, part(inclusive, pattern, False) if kind == "incl" else part(own, pattern, True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, type=Path, help="watcher-metal built with symbols")
    parser.add_argument("--machines", type=int, default=10_000)
    args = parser.parse_args()
    os.chdir(ROOT)
    binary = str(args.binary.absolute())
    n = args.machines
    with tempfile.TemporaryDirectory(prefix="watcher-metal-profile-") as tmp, \
            MaasSim("target/release/maas-sim", n) as sim, NovaSim("target/release/nova-sim", n) as nova:
        tmp = Path(tmp)
        conf = tmp / "watcher.conf"
        conf.write_text(f"[DEFAULT]\n{nova.clients_auth_section()}")
        conf.chmod(0o600)
        config = sim.write_config(tmp / "maas.yaml")
        # As benchmark 2c: the drop-ins rendered under a root of the run's
        # own, doctor on a Watcher 12.0.0 unit whose dpkg-query and Python
        # are stood in for.
        env = dict(os.environ, **doctor_unit(tmp, config, conf))
        subprocess.run([binary, "render", "-c", str(config)], env=env, stdout=subprocess.DEVNULL, check=True)
        print(f"callgrind, {n:,} machines (and {n:,} hypervisors); instructions, all threads")
        profile(binary, ["nodes", "--format", "json", "-c", str(config)], env, f"2. nodes ({n:,} machines)")
        profile(binary, ["nodes", "--nova", "--format", "json", "-c", str(config)], env, "2b. nodes --nova")
        profile(binary, ["doctor", "--format", "json", "-c", str(config)], env, "2c. doctor")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, subprocess.CalledProcessError) as error:
        print(f"profile: FAILED: {error}", file=sys.stderr)
        sys.exit(1)
