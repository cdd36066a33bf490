"""Which proxy requests (the HTTP library under keystoneauth, so under
Watcher's Keystone, Ironic and Nova clients) sends a request through.

Reads JSON lines {"env": [[NAME, VALUE], ...], "url": URL} on stdin. For
each, the process environment is replaced by env and the proxy chosen as
Session.request chooses it (merge_environment_settings, trust_env on, as
keystoneauth's session has it), then as the adapter picks it
(select_proxy, prepend_scheme_if_needed). Prints one JSON line each: null
for a direct connection, {"scheme", "host", "port", "user"} for a proxy,
or "invalid" when requests could not parse it.
"""

import json
import os
import sys

import requests
from requests.utils import prepend_scheme_if_needed, select_proxy
from urllib3.util import parse_url

DEFAULT_PORTS = {"http": 80, "https": 443}


def chosen(session, url):
    proxies = session.merge_environment_settings(url, {}, None, None, None)["proxies"]
    proxy = select_proxy(url, proxies)
    if not proxy:
        return None
    try:
        parsed = parse_url(prepend_scheme_if_needed(proxy, "http"))
    except Exception:
        return "invalid"
    return {
        "scheme": parsed.scheme,
        "host": parsed.host,
        "port": parsed.port or DEFAULT_PORTS.get(parsed.scheme),
        "user": parsed.auth.split(":")[0] if parsed.auth else None,
    }


def main():
    session = requests.Session()
    for line in sys.stdin:
        case = json.loads(line)
        os.environ.clear()
        os.environ.update({name: value for name, value in case["env"]})
        print(json.dumps(chosen(session, case["url"])), flush=True)


if __name__ == "__main__":
    main()
