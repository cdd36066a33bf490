"""Lists MAAS machines with their power states the way Watcher's MAAS metal
helper does, through python-libmaas 0.6.8, and prints a one-line JSON
summary: {"machines": N, "summary": {"on": .., "off": .., ...}}.

Usage: libmaas_nodes.py URL [--live]   (the API key is read from stdin)

Without --live: `client.machines.list()` and each machine's recorded
`power_state` (the counterpart of `watcher-metal nodes`).
With --live: then `machine.query_power_state()` for each machine, one after
another, as Watcher's MaasNode.get_power_state() does (the counterpart of
`watcher-metal nodes --live`). A failed query counts as "error".
"""

import json
import sys
from collections import Counter

from maas.client import connect


def main():
    url = sys.argv[1]
    live = "--live" in sys.argv[2:]
    apikey = sys.stdin.readline().strip()
    client = connect(url, apikey=apikey)
    machines = client.machines.list()
    states = Counter()
    for machine in machines:
        if live:
            try:
                state = machine.query_power_state()
            except Exception as error:  # Watcher would log and go on
                print(f"{machine.system_id}: {error}", file=sys.stderr)
                states["error"] += 1
                continue
        else:
            state = machine.power_state
        states[state.value] += 1
    print(json.dumps({"machines": len(machines), "summary": dict(states)}))


if __name__ == "__main__":
    main()
