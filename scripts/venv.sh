# Sourced by scripts/test and scripts/lab (bash): the Python venvs under
# target/, each remade only when what it is built from changes.

# venv DIR PIP-ARGUMENTS...: a venv at DIR with `pip install PIP-ARGUMENTS`,
# remade when those arguments or the files they name (-r, -c) change.
venv() {
    local dir=$1
    shift
    local key
    key=$(for a in "$@"; do printf '%s\n' "$a"; if [ -f "$a" ]; then cat "$a"; fi; done | cksum | cut -d' ' -f1)
    if [ ! -f "$dir/.installed-$key" ]; then
        echo "installing $dir from PyPI" >&2
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
        touch "$dir/.installed-$key"
    fi
}

# The venvs the tests run real Watcher, Keystone and Ironic from.
watcher12_venv() {
    venv target/watcher12-venv -c tests/peers/upper-constraints-2024.1.txt -r tests/peers/watcher12-requirements.txt
}
watcher17_venv() {
    venv target/watcher17-venv -r tests/peers/watcher17-requirements.txt
}
openstack_venv() {
    venv target/openstack-venv -r tests/peers/openstack-requirements.txt
}

# lab_pylibs PYTHON: the database driver Watcher's services need in
# scripts/lab (PyMySQL, pure Python), in a directory of its own that the
# lab puts on PYTHONPATH, so that the Watcher venvs stay as scripts/test
# builds them. Remade when tests/lab/requirements.txt changes.
lab_pylibs() {
    local python=$1 dir=target/lab-pylibs
    local key
    key=$(cksum < tests/lab/requirements.txt | cut -d' ' -f1)
    if [ ! -f "$dir/.installed-$key" ]; then
        echo "installing $dir from PyPI" >&2
        rm -rf "$dir"
        "$python" -m pip install --quiet --disable-pip-version-check --target "$dir" -r tests/lab/requirements.txt
        touch "$dir/.installed-$key"
    fi
}
