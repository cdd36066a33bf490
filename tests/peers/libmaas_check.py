"""Cross-checks the MAAS simulator with python-libmaas, a client written
elsewhere: connect with a URL and API key, list the machines, query one
machine's power state, and print a one-line JSON summary.

Usage: libmaas_check.py URL [SYSTEM_ID]  (the API key is read from stdin,
so it never appears in a process listing; it is never printed).
"""

import json
import sys

from maas.client import connect


def main():
    url = sys.argv[1]
    wanted = sys.argv[2] if len(sys.argv) > 2 else None
    apikey = sys.stdin.readline().strip()
    client = connect(url, apikey=apikey)
    machines = client.machines.list()
    if not machines:
        print(json.dumps({"machines": 0}))
        return
    target = machines[0]
    if wanted is not None:
        target = next(m for m in machines if m.system_id == wanted)
    state = target.query_power_state()
    summary = {
        "machines": len(machines),
        "first_fqdn": machines[0].fqdn,
        "first_system_id": machines[0].system_id,
        "system_ids": [m.system_id for m in machines],
        "queried": target.system_id,
        "power_state": state.value,
        "whoami": client.users.whoami().username,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
