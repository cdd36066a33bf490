"""What Watcher's services read from a layout of configuration files.

Usage: python effective_conf.py < cases.json

cases.json is a list of {"home": DIR, "conf": PATH}. For each case HOME is
set to DIR and Watcher's own watcher.common.config.parse_args runs with
["watcher-decision-engine", "--config-file", PATH], as the services run, so
oslo.config finds the drop-in directories (~/.watcher/watcher.conf.d, ...)
by itself. Prints a JSON list: per case, for each managed option
"group.option", its value as text, or null when no file sets it.
"""

import json
import os
import sys

MANAGED = {
    "maas_client": ["url", "api_key", "timeout"],
    "ironic_client": ["api_version", "endpoint_type", "region_name"],
}


def main():
    for system_dir in ("/etc/watcher/watcher.conf.d", "/etc/watcher.conf.d"):
        if os.path.exists(system_dir):
            sys.exit("%s exists on this machine and would be read too" % system_dir)
    cases = json.load(sys.stdin)

    from oslo_config import cfg
    from watcher import conf as _registers_options  # noqa: F401
    from watcher.common import config
    from watcher.common import service as _registers_service_options  # noqa: F401

    results = []
    for case in cases:
        os.environ["HOME"] = case["home"]
        config.parse_args(["watcher-decision-engine", "--config-file", case["conf"]])
        result = {}
        for group, options in MANAGED.items():
            for option in options:
                value = getattr(getattr(cfg.CONF, group), option)
                location = cfg.CONF.get_location(option, group)
                from_file = location is not None and location.location == cfg.Locations.user
                result["%s.%s" % (group, option)] = str(value) if from_file and value is not None else None
        results.append(result)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
