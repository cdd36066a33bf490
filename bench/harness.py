"""Plumbing for the benchmarks: timing a process (wall time, peak RSS),
running the MAAS simulator, signing a raw MAAS request, counting the HTTP
requests a client makes, and describing the machine and its load.

Standard library only, so that it runs with any Python 3.9+.
"""

import json
import os
import platform
import secrets
import select
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


class BenchError(Exception):
    """A step failed: a command errored or printed something wrong."""


GNU_TIME = "/usr/bin/time"


@dataclass
class Run:
    """One finished process."""

    seconds: float
    max_rss_kib: Optional[int]
    returncode: int
    stdout: bytes
    stderr: bytes


def run(cmd, *, stdin=None, rss=False, expect_code=0):
    """Runs `cmd` to completion and measures its wall time, from spawn to
    exit. With `rss`, it runs under GNU time (`/usr/bin/time -f %M`) to
    get the peak resident set size of that process alone (the rusage of a
    child forked from this Python process would count Python's own memory,
    which a fork carries over an exec). `stdin` (bytes) is fed to it;
    output is captured in files, so a large output cannot stall it.
    Raises BenchError when the exit code is not `expect_code`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss_file:
        argv = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *cmd] if rss else list(cmd)
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=out,
            stderr=err,
        )
        if stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        proc.wait()
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        max_rss = None
        if rss:
            # GNU time writes "Command exited with non-zero status N" first on failure.
            lines = rss_file.read().split()
            max_rss = int(lines[-1]) if lines and lines[-1].isdigit() else None
        result = Run(seconds, max_rss, proc.returncode, out.read(), err.read())
    if expect_code is not None and result.returncode != expect_code:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-15:]
        raise BenchError(
            f"`{' '.join(map(str, cmd))}` exited with {result.returncode}, expected {expect_code}:\n  "
            + "\n  ".join(tail)
        )
    return result


def summarise(runs):
    """Median and spread of a series of runs, plus the raw samples."""
    seconds = [r.seconds for r in runs]
    summary = {
        "runs": len(runs),
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "samples_s": [round(s, 6) for s in seconds],
    }
    rss = [r.max_rss_kib for r in runs if r.max_rss_kib is not None]
    if rss:
        summary["median_max_rss_kib"] = statistics.median(rss)
        summary["min_max_rss_kib"] = min(rss)
        summary["max_max_rss_kib"] = max(rss)
        summary["samples_max_rss_kib"] = rss
    return summary


def spread(stats, what="s"):
    """{median, min, max} of a summary's seconds (`s`) or peak RSS (`rss`)."""
    if what == "rss":
        return {"median": stats["median_max_rss_kib"], "min": stats["min_max_rss_kib"],
                "max": stats["max_max_rss_kib"]}
    return {"median": stats["median_s"], "min": stats["min_s"], "max": stats["max_s"]}


def fixed(value):
    """A figure computed once (no spread)."""
    return {"median": value, "min": value, "max": value}


class MaasSim:
    """A `maas-sim` process serving on 127.0.0.1 while the context is open.
    Its standard input is a pipe: closing it (or this process dying) stops
    the simulator."""

    def __init__(self, binary, machines, *, power_query_delay_ms=0, max_concurrent_power_queries=None):
        self.cmd = [str(binary), "--machines", str(machines)]
        if power_query_delay_ms:
            self.cmd += ["--power-query-delay-ms", str(power_query_delay_ms)]
        if max_concurrent_power_queries is not None:
            self.cmd += ["--max-concurrent-power-queries", str(max_concurrent_power_queries)]
        self.proc = None
        self.url = self.api_key = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise BenchError(f"`{' '.join(self.cmd)}` printed nothing (exit {self.proc.returncode})")
        info = json.loads(line)
        self.url, self.api_key = info["url"], info["api_key"]
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    @property
    def port(self):
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def write_config(self, path, url=None):
        """A watcher-metal charm config (YAML) for this simulator, mode 0600."""
        path = Path(path)
        path.write_text(f"maas-url: {url or self.url}\nmaas-api-key: {self.api_key}\n")
        path.chmod(0o600)
        return path

    def authorization(self):
        """An OAuth 1.0 PLAINTEXT `Authorization` header as MAAS wants it,
        with a fresh nonce and timestamp (the simulator refuses a nonce it
        has seen)."""
        consumer, token, secret = self.api_key.split(":")
        return (
            f'OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", '
            f'oauth_consumer_key="{consumer}", oauth_token="{token}", '
            f'oauth_signature="&{secret}", oauth_nonce="{secrets.token_hex(16)}", '
            f'oauth_timestamp="{int(time.time())}"'
        )


class NovaSim:
    """A `nova-sim` process (Nova's hypervisor API and a Keystone) serving on
    127.0.0.1 while the context is open; closing its standard input stops
    it. Its hypervisors' hostnames are the fqdns of maas-sim's machines."""

    def __init__(self, binary, hypervisors, *, page_size=1000):
        self.cmd = [str(binary), "--hypervisors", str(hypervisors), "--page-size", str(page_size)]
        self.proc = None
        self.info = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise BenchError(f"`{' '.join(self.cmd)}` printed nothing (exit {self.proc.returncode})")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    @property
    def auth_url(self):
        return self.info["auth_url"]

    @property
    def nova_url(self):
        return self.info["nova_url"]

    def clients_auth_section(self):
        return self.info["clients_auth_section"]

    def token_request(self):
        """The body of Keystone's token request for the simulator's user."""
        return json.dumps({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.info["username"], "domain": {"name": "Default"}, "password": self.info["password"]}}},
            "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}}})


class RequestCounter:
    """A TCP relay in front of a server on 127.0.0.1 that records the
    request line of every HTTP request passing through (request heads are
    parsed; bodies are skipped by Content-Length). Keep-alive connections
    and pipelining are handled; chunked request bodies are not (none of
    the clients measured sends one)."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.requests = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self._closing = True
        self._listener.close()

    def take(self):
        """The requests recorded so far (`METHOD TARGET`), then forgets them."""
        time.sleep(0.05)  # let the relay threads finish parsing
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def _accept(self):
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client):
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        pending = b""  # request bytes not yet parsed
        body_left = 0
        with client, upstream:
            peers = {client: upstream, upstream: client}
            while True:
                readable, _, _ = select.select(list(peers), [], [], 30)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
                    if sock is client:
                        pending, body_left = self._parse(pending + data, body_left)

    def _parse(self, buf, body_left):
        while True:
            if body_left:
                skip = min(body_left, len(buf))
                buf, body_left = buf[skip:], body_left - skip
                if body_left:
                    return buf, body_left
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return buf, 0
            head = buf[:end].decode("latin-1").split("\r\n")
            buf = buf[end + 4 :]
            method, target = head[0].split(" ")[:2]
            with self._lock:
                self.requests.append(f"{method} {target}")
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    body_left = int(value.strip())


def elf_section_names(path):
    """The section names of a 64-bit ELF file (empty if it is not one)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return []
    endian = "<" if data[5] == 1 else ">"
    (shoff,) = struct.unpack_from(endian + "Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)

    def section(i):
        return struct.unpack_from(endian + "IIQQQQIIQQ", data, shoff + i * shentsize)

    names_at = section(shstrndx)[4]
    names = []
    for i in range(shnum):
        start = names_at + section(i)[0]
        names.append(data[start : data.index(b"\0", start)].decode())
    return names


def tree_size(path, skip=()):
    """Bytes of all files under `path`, leaving out top-level entries whose
    name starts with one of `skip`."""
    total = 0
    for entry in Path(path).iterdir():
        if entry.name.startswith(tuple(skip)):
            continue
        if entry.is_file():
            total += entry.stat().st_size
        else:
            for dirpath, _, files in os.walk(entry):
                total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def load_average():
    """The 1-, 5- and 15-minute load averages."""
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def cores():
    return len(os.sched_getaffinity(0))


def quiet_limit():
    """The 1-minute load average above which the machine counts as loaded:
    half a process waiting per core."""
    return 0.5 * cores()


def wait_for_quiet(max_wait_s, log):
    """Waits up to `max_wait_s` for the 1-minute load average to fall to
    `quiet_limit()` (a build just finished, or an earlier run, leaves it
    high for a minute or two). Returns the load average then."""
    deadline = time.monotonic() + max_wait_s
    said = 0.0
    while True:
        load = load_average()
        if load[0] <= quiet_limit() or time.monotonic() >= deadline:
            return load
        if time.monotonic() - said >= 30:
            log(f"bench: load average {load[0]:.2f} on {cores()} cores (quiet is {quiet_limit():.2f} or less): "
                f"waiting up to {deadline - time.monotonic():.0f} s more")
            said = time.monotonic()
        time.sleep(5)


def command_output(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info(root, python):
    """What the figures were measured on."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    os_name = platform.system()
    os_release = Path("/etc/os-release")
    if os_release.exists():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    commit = command_output(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    # What the benchmarks write themselves does not make the code differ.
    dirty = command_output(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)BENCHMARKS.md", ":(exclude)bench/results"])
    return {
        "nproc": cores(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": os_name,
        "kernel": platform.release(),
        "rustc": command_output(["rustc", "--version"]),
        "python": command_output([str(python), "--version"]),
        "commit": commit,
        "uncommitted_changes": bool(dirty),
    }
