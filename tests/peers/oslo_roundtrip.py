"""Reads a rendered watcher.conf with Watcher's own option definitions.

Usage: python oslo_roundtrip.py WATCHER_CONF < expected.json

WATCHER_CONF is read as Watcher's services read it: its drop-in directory
(watcher.conf.d beside it) first, then the file itself.

expected.json maps group -> option -> expected value (null for unset). The
modules watcher/conf/maas_client.py and ironic_client.py from the installed
python-watcher are loaded by file path, since importing the watcher package
pulls in the whole service. Prints "ok", or one line per mismatch naming the
option (never its value, which may be secret), and exits 1.
"""

import importlib.util
import json
import os
import sys

from oslo_config import cfg


def load_conf_module(name):
    spec = importlib.util.find_spec("watcher")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("python-watcher is not installed in this interpreter")
    path = os.path.join(spec.submodule_search_locations[0], "conf", name + ".py")
    module_spec = importlib.util.spec_from_file_location("watcher_conf_" + name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def main():
    conf_path = sys.argv[1]
    expected = json.load(sys.stdin)
    conf = cfg.ConfigOpts()
    for name in ("maas_client", "ironic_client"):
        load_conf_module(name).register_opts(conf)
    # As Watcher's services: --config-file, and the drop-in directory beside
    # it (one of oslo.config's default config dirs on a unit) read first.
    drop_ins = os.path.join(os.path.dirname(conf_path), "watcher.conf.d")
    conf(args=["--config-file", conf_path], project="watcher",
         default_config_files=[],
         default_config_dirs=[drop_ins] if os.path.isdir(drop_ins) else [])
    mismatches = []
    for group, options in expected.items():
        for option, want in options.items():
            got = getattr(getattr(conf, group), option)
            if got != want:
                mismatches.append("[%s] %s differs (%s vs %s expected)"
                                  % (group, option, type(got).__name__, type(want).__name__))
    if mismatches:
        print("\n".join(mismatches))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
