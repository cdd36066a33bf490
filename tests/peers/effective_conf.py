"""What Watcher's services read from a layout of configuration files.

Usage: python effective_conf.py < cases.json

cases.json is a list of {"home": DIR, "conf": PATH}. For each case HOME is
set to DIR and the process is watcher-decision-engine (sys.argv[0], which
oslo.config takes the program name from): Watcher's own
watcher.common.config.parse_args runs with "--config-file PATH", as the
service runs, so oslo.config finds the drop-in directories (watcher.conf.d
and watcher-decision-engine.conf.d under ~/.watcher and ~) by itself. Then
the configuration is parsed again the way Watcher's plugin loader
(watcher/common/loader/default.py, _reload_config) does when it loads a
plugin with options. Prints a JSON list: per case, {"startup": ...,
"reloaded": ...}, each mapping "group.option" to its value as text, or null
when no file sets it.
"""

import json
import os
import sys

PROGRAM = "watcher-decision-engine"
MANAGED = {
    "maas_client": ["url", "api_key", "timeout"],
    "ironic_client": ["api_version", "endpoint_type", "region_name"],
}


def values(cfg):
    result = {}
    for group, options in MANAGED.items():
        for option in options:
            value = getattr(getattr(cfg.CONF, group), option)
            location = cfg.CONF.get_location(option, group)
            from_file = location is not None and location.location == cfg.Locations.user
            result["%s.%s" % (group, option)] = str(value) if from_file and value is not None else None
    return result


def main():
    for system_dir in ("/etc/watcher/watcher.conf.d", "/etc/watcher.conf.d",
                       "/etc/watcher/%s.conf.d" % PROGRAM, "/etc/%s.conf.d" % PROGRAM):
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
        sys.argv = ["/usr/bin/" + PROGRAM, "--config-file", case["conf"]]
        config.parse_args(sys.argv)
        startup = values(cfg)
        # watcher.common.loader.default.DefaultLoader._reload_config
        cfg.CONF(default_config_files=cfg.CONF.default_config_files)
        results.append({"startup": startup, "reloaded": values(cfg)})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
