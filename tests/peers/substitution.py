"""oslo.config's `$` substitution on a batch of files, for tests/it/substitution.rs.

Usage: python substitution.py < requests.json

The input is a JSON list of requests, {"text": FILE_TEXT, "options":
{SECTION: [KEY, ...]}}: every KEY is registered as a StrOpt in its SECTION
and FILE_TEXT is read as the only config file. The output is a JSON list of
answers, one per request: {"values": {SECTION: {KEY: VALUE}}} with VALUE a
string, null (unset) or {"error": EXCEPTION_CLASS} (RecursionError for a
loop), or {"error": CLASS} when the file does not parse.
"""

import json
import os
import sys
import tempfile

from oslo_config import cfg


def answer(request):
    with tempfile.NamedTemporaryFile("w", suffix=".conf", encoding="utf-8",
                                     newline="", delete=False) as f:
        f.write(request["text"])
        path = f.name
    try:
        conf = cfg.ConfigOpts()
        # DEFAULT's options are registered without a group: a group named
        # "DEFAULT" would be another group, which `$name` never looks in.
        for group, keys in request["options"].items():
            for key in keys:
                conf.register_opt(cfg.StrOpt(key), group=None if group == "DEFAULT" else group)
        try:
            conf(args=["--config-file", path], default_config_files=[],
                 default_config_dirs=[])
        except Exception as e:
            return {"error": type(e).__name__}
        values = {}
        for group, keys in request["options"].items():
            values[group] = {}
            for key in keys:
                try:
                    values[group][key] = conf[key] if group == "DEFAULT" else conf[group][key]
                except (Exception, RecursionError) as e:
                    values[group][key] = {"error": type(e).__name__}
        return {"values": values}
    finally:
        os.unlink(path)


def main():
    requests = json.load(sys.stdin)
    json.dump([answer(r) for r in requests], sys.stdout)


if __name__ == "__main__":
    main()
