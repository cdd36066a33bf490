"""Renders a whole watcher.conf the way a Python charm does: import Jinja2,
load the templates from disk, render them with the charm options and the
other sections, print the result.

Usage: render_jinja2.py TEMPLATES_DIR CHARM_CONFIG.yaml CONTEXT.yaml

It is the Python counterpart of
`watcher-metal render --full --config CHARM_CONFIG --context CONTEXT --output -`
and prints the same text as that command with --reveal-secrets. The
templates need no Jinja2 extension: every filter and test they use
(select/reject with the `in` test, items, list, `none`) is built into
Jinja2 3.1. Our value formatter (applied to every `{{ ... }}`) becomes
Jinja2's `finalize` hook, written out below as `ini_value`.
"""

import sys
import unicodedata

import jinja2
import yaml


def ini_value(value):
    """A value as oslo.config reads it back (watcher-metal's ini_value):
    None is empty, lists are comma-joined, booleans are lower case, line
    breaks are refused, values with spaces or quotes at the edges are
    quoted."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(ini_value(item) for item in value)
    if isinstance(value, dict):
        raise ValueError("a map cannot be written as an option value")
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise ValueError("a value contains a line break or control character")
    quoted_edges = len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'"
    if text.strip() != text or quoted_edges:
        return f'"{text}"'
    return text


def oslo_literal(value):
    """Charm-config values are made literal for oslo.config ($ doubled)."""
    return None if value is None else str(value).replace("$", "$$")


def charm_options(path):
    """The options of `juju deploy --config`'s {application: {option: value}}
    form, or of a flat map."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if len(data) == 1:
        (only,) = data.values()
        if isinstance(only, dict):
            return only
    return data


def main():
    templates, config_path, context_path = sys.argv[1:4]
    options = charm_options(config_path)
    with open(context_path, encoding="utf-8") as f:
        context = yaml.safe_load(f) or {}

    maas = None
    if options.get("maas-url"):
        maas = {
            "url": oslo_literal(options["maas-url"].strip()),
            "api_key": oslo_literal(options["maas-api-key"].strip()),
            "timeout": int(options.get("maas-timeout", 60)),
        }
    ironic = {
        "api_version": oslo_literal(options.get("ironic-api-version", "1")),
        "endpoint_type": options.get("ironic-endpoint-type", "publicURL"),
        "region_name": oslo_literal(options.get("ironic-region-name")),
    }

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=ini_value,
    )
    text = env.get_template("watcher.conf.j2").render(maas=maas, ironic=ironic, context=context)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
