"""Logs in as Watcher does, from a watcher.conf's [watcher_clients_auth].

Usage: python keystoneauth_login.py WATCHER_CONF

Registers keystoneauth's session and auth options on the group as
watcher/conf/clients_auth.py does, loads the auth plugin from the file with
oslo.config, and asks Keystone for a token (the request Watcher makes before
any Ironic call). Prints "ok", or the exception's class name (never its
text, which could hold a secret) and exits 1.
"""

import sys

from keystoneauth1 import loading as ka_loading
from oslo_config import cfg

GROUP = "watcher_clients_auth"


def main():
    conf = cfg.ConfigOpts()
    ka_loading.register_session_conf_options(conf, GROUP)
    ka_loading.register_auth_conf_options(conf, GROUP)
    conf(args=["--config-file", sys.argv[1]], project="watcher",
         default_config_files=[], default_config_dirs=[])
    try:
        auth = ka_loading.load_auth_from_conf_options(conf, GROUP)
        session = ka_loading.load_session_from_conf_options(conf, GROUP, auth=auth)
        session.get_token()
    except Exception as e:  # the class names the failure
        print(type(e).__name__)
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
