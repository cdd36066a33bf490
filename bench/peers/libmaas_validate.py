"""Checks MAAS credentials with python-libmaas 0.6.8, the counterpart of
`watcher-metal validate`: connect (libmaas reads `describe/`), ask who the
key belongs to (`users/?op=whoami`), and list the machines. Prints a
one-line JSON summary.

Usage: libmaas_validate.py URL   (the API key is read from stdin)
"""

import json
import sys

from maas.client import connect


def main():
    url = sys.argv[1]
    apikey = sys.stdin.readline().strip()
    client = connect(url, apikey=apikey)
    user = client.users.whoami()
    machines = client.machines.list()
    print(json.dumps({"user": user.username, "is_superuser": user.is_admin, "machines": len(machines)}))


if __name__ == "__main__":
    main()
