"""Reads a rendered watcher.conf with Watcher's own option definitions.

Usage: python oslo_roundtrip.py WATCHER_CONF < expected.json
       python oslo_roundtrip.py --serve

--serve answers requests, one JSON line each on stdin, with one JSON line on
stdout, for the differential property tests: a request is
{"text": FILE_TEXT, "options": {SECTION: [KEY, ...]}}; every KEY is
registered as a StrOpt in its SECTION, FILE_TEXT is read as the only config
file, and the answer is {"values": {SECTION: {KEY: VALUE}}} with VALUE a
string, null (unset) or {"error": EXCEPTION_CLASS}, or {"error": CLASS} when
the file does not parse.

WATCHER_CONF is read as Watcher's decision engine reads it: the drop-in
directories first, then the file itself.

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


def serve():
    import tempfile
    for line in sys.stdin:
        request = json.loads(line)
        with tempfile.NamedTemporaryFile("w", suffix=".conf", encoding="utf-8",
                                         newline="", delete=False) as f:
            f.write(request["text"])
            path = f.name
        try:
            conf = cfg.ConfigOpts()
            for group, keys in request["options"].items():
                for key in keys:
                    conf.register_opt(cfg.StrOpt(key), group=group)
            try:
                conf(args=["--config-file", path], default_config_files=[],
                     default_config_dirs=[])
            except Exception as e:
                answer = {"error": type(e).__name__}
            else:
                values = {}
                for group, keys in request["options"].items():
                    values[group] = {}
                    for key in keys:
                        try:
                            values[group][key] = conf[group][key]
                        except Exception as e:
                            values[group][key] = {"error": type(e).__name__}
                answer = {"values": values}
        finally:
            os.unlink(path)
        print(json.dumps(answer), flush=True)


def main():
    if sys.argv[1] == "--serve":
        serve()
        return
    conf_path = sys.argv[1]
    expected = json.load(sys.stdin)
    conf = cfg.ConfigOpts()
    for name in ("maas_client", "ironic_client"):
        load_conf_module(name).register_opts(conf)
    # As the decision engine: --config-file, and the default config dirs
    # read first, watcher.conf.d beside it and watcher-decision-engine.conf.d
    # beside that directory (/etc/watcher/watcher.conf.d and
    # /etc/watcher-decision-engine.conf.d on a unit).
    conf_dir = os.path.dirname(conf_path)
    dirs = [os.path.join(conf_dir, "watcher.conf.d"),
            os.path.join(os.path.dirname(conf_dir), "watcher-decision-engine.conf.d")]
    conf(args=["--config-file", conf_path], project="watcher",
         default_config_files=[],
         default_config_dirs=[d for d in dirs if os.path.isdir(d)])
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
