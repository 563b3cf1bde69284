#!/usr/bin/env python3
"""The benchmark cases of issue 7, each next to its peer in the same run.
Called by scripts/bench (which installs and builds first); writes one JSON file.

  run.py [--quick] --out FILE

Every client and server is started here, on 127.0.0.1 only, with a timeout;
every server is stopped on the way out (normal end, error, SIGINT, SIGTERM).
The runs of the clients of a case are interleaved (quicprobe run 1, peer run
1, quicprobe run 2, ...), so that a slow spell of the machine hits both.

Times: a client's CPU is its own user+system time from wait4() (quicprobe,
iperf3) or from getrusage() inside the peer script around the work (aioquic,
so that the interpreter's start-up is not charged to it); a server's CPU is the
difference of utime+stime in /proc/PID/stat across the run.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
if not TARGET_DIR.is_absolute():
    TARGET_DIR = ROOT / TARGET_DIR
QUICPROBE = TARGET_DIR / "release" / "quicprobe"
MSQUIC_SERVER = ROOT / "tools/msquic-server/target/release/quicprobe-msquic-server"
VENV_PYTHON = ROOT / ".venv/bin/python"
AIOQUIC_BENCH = ROOT / "scripts/aioquic/bench.py"
AIOQUIC_VERIFY = ROOT / "scripts/aioquic/verify_bench.py"
SCENARIO = "full-chain"
CERTS = ROOT / "certs"
ROOTS = CERTS / SCENARIO / "roots.pem"
DATAGRAM = 1350  # quicprobe's max_udp_payload_size: the raw-UDP peer sends the same
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
MB = 1e6  # MB/s are decimal megabytes; GiB is 2**30
GIB = 1 << 30

FULL = {
    "mode": "full",
    "runs": 5,
    "sequential_handshakes": 500,
    "concurrent_handshakes": 2000,
    "concurrent_in_flight": 200,
    "aioquic_concurrent_handshakes": 2000,
    "bulk_bytes": GIB,
    "aioquic_bulk_bytes": GIB,
    "udp_seconds": 5,
    "idle_connections": 1000,
    "criterion": ["--warm-up-time", "1", "--measurement-time", "3"],
    "aioquic_verify_seconds": 2,
    "profile_bulk_bytes": 256 << 20,
}
QUICK = {
    "mode": "quick",
    "runs": 3,
    "sequential_handshakes": 200,
    "concurrent_handshakes": 2000,
    "concurrent_in_flight": 200,
    "aioquic_concurrent_handshakes": 400,
    "bulk_bytes": 256 << 20,
    "aioquic_bulk_bytes": 32 << 20,
    "udp_seconds": 2,
    "idle_connections": 1000,
    "criterion": ["--warm-up-time", "0.5", "--measurement-time", "1", "--sample-size", "20"],
    "aioquic_verify_seconds": 0.5,
    "profile_bulk_bytes": 128 << 20,
}


T0 = time.monotonic()


def say(message: str) -> None:
    elapsed = int(time.monotonic() - T0)
    print(f"bench [{elapsed // 60}:{elapsed % 60:02d}]: {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    pass


# ---------------------------------------------------------------- processes

_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before exec: the kernel sends it SIGTERM when this script
    ends, however it ends (even SIGKILL), so no server or client outlives it."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmdline(cmd: list) -> str:
    return shlex.join(str(c) for c in cmd).replace(str(ROOT) + "/", "")


def run(cmd: list, timeout: float, env: dict | None = None) -> dict:
    """Runs a client to its end (killed after `timeout` s) and returns its
    stdout, exit code, wall time and own CPU time (wait4)."""
    cmd = [str(c) for c in cmd]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env, preexec_fn=die_with_parent)
        deadline = start + timeout
        try:
            while True:
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    raise Failed(f"timed out after {timeout:.0f} s: {cmdline(cmd)}")
                time.sleep(0.002)
        except BaseException:  # a timeout, or this script being stopped
            child.kill()
            os.wait4(child.pid, 0)
            child.returncode = -9
            raise
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "rc": child.returncode,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace")[-2000:],
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "maxrss_kib": usage.ru_maxrss,
        }


def last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise Failed(f"no JSON in output: {text[-500:]!r}")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_rss_kib(pid: int) -> dict:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0])
    return values


class Server:
    """A server in the background, its output in a log file; ready when its
    'listening on' line appears."""

    live: list["Server"] = []

    def __init__(self, name: str, cmd: list, logdir: Path) -> None:
        self.name, self.cmd = name, [str(c) for c in cmd]
        self.log = logdir / f"{name}.log"
        self.log_file = open(self.log, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log_file, stderr=subprocess.STDOUT, cwd=ROOT,
                                     preexec_fn=die_with_parent)
        Server.live.append(self)
        deadline = time.monotonic() + 30
        while b"listening on" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise Failed(f"{name} did not start: {self.log.read_text(errors='replace')[-800:]}")
            time.sleep(0.05)

    @property
    def command(self) -> str:
        return cmdline(self.cmd)

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    def count(self, needle: str) -> int:
        return self.log.read_text(errors="replace").count(needle)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        if self in Server.live:
            Server.live.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for server in list(cls.live):
            server.stop()


def lab_server(logdir: Path, name: str = "lab", quiet: bool = True) -> tuple[Server, int]:
    port = free_port()
    cmd = [QUICPROBE] + (["-q"] if quiet else []) + [
        "serve", "--scenario", SCENARIO, "--listen", f"127.0.0.1:{port}"]
    return Server(name, cmd, logdir), port


def msquic_server(logdir: Path) -> tuple[Server, int]:
    port = free_port()
    cmd = [MSQUIC_SERVER, "--listen", f"127.0.0.1:{port}",
           "--cert", CERTS / SCENARIO / "chain.pem", "--key", CERTS / SCENARIO / "key.pem",
           "--alpn", "hq-interop"]
    return Server("msquic", cmd, logdir), port


# ---------------------------------------------------------------- statistics

def stats(values: list) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarise(entry: dict) -> dict:
    """Median and min-max over the successful runs, for every numeric field."""
    good = [r for r in entry["runs"] if not r.get("error")]
    keys = [k for k in (good[0] if good else {}) if isinstance(good[0][k], (int, float)) and not isinstance(good[0][k], bool)]
    entry["summary"] = {k: stats([r.get(k) for r in good]) for k in keys}
    entry["failed_runs"] = len(entry["runs"]) - len(good)
    return entry


def median_of(entry: dict | None, metric: str):
    if not entry or not entry.get("summary") or not entry["summary"].get(metric):
        return None
    return entry["summary"][metric]["median"]


def ratio(rid: str, what: str, num: dict, den: dict, metric: str, den_metric: str | None = None) -> dict:
    """Ratio of the medians, and min-max of the run-by-run ratios (run i of the
    one over run i of the other: they ran next to each other)."""
    den_metric = den_metric or metric
    a, b = median_of(num, metric), median_of(den, den_metric)
    if num["runs"] and den["runs"]:
        pairs = [
            x[metric] / y[den_metric]
            for x, y in zip(num["runs"], den["runs"])
            if not x.get("error") and not y.get("error") and x.get(metric) and y.get(den_metric)
        ]
    elif b:  # the denominator is criterion's (no runs): each run of the other over its median
        pairs = [x[metric] / b for x in num["runs"] if not x.get("error") and x.get(metric)]
    else:
        pairs = []
    return {
        "id": rid,
        "what": what,
        "numerator": f"{num['id']}:{metric}",
        "denominator": f"{den['id']}:{den_metric}",
        "median": a / b if a and b else None,
        "min": min(pairs) if pairs else None,
        "max": max(pairs) if pairs else None,
    }


# ---------------------------------------------------------------- the cases

class Bench:
    def __init__(self, cfg: dict, logdir: Path) -> None:
        self.cfg, self.logdir = cfg, logdir
        self.results: list[dict] = []
        self.ratios: list[dict] = []

    def entry(self, rid: str, case: str, client: str, server: str | None, command: str, **extra) -> dict:
        e = {"id": rid, "case": case, "client": client, "server": server, "command": command, "runs": [], **extra}
        self.results.append(e)
        return e

    def get(self, rid: str) -> dict | None:
        return next((e for e in self.results if e["id"] == rid), None)

    def attempt(self, entry: dict, fn) -> None:
        try:
            entry["runs"].append(fn())
        except Exception as error:  # one failed run is recorded; the others go on
            say(f"{entry['id']}: run failed: {error}")
            entry["runs"].append({"error": str(error)[:500]})

    # -- quicprobe connect --repeat, and aioquic handshakes, against a server
    def quicprobe_handshakes(self, server: Server, port: int, n: int, k: int, extra: list | None = None):
        cmd = [QUICPROBE, "-q", "connect", "--alpn", "hq-interop", *(extra or []),
               "--repeat", n, "--concurrency", k, "--json",
               "--cacert", ROOTS, "--resolve", f"localhost:{port}:127.0.0.1", f"localhost:{port}"]

        def once() -> dict:
            cpu0 = server.cpu_s()
            r = run(cmd, timeout=120)
            server_cpu = server.cpu_s() - cpu0
            d = last_json(r["stdout"])
            if d.get("successes") != n:
                raise Failed(f"{d.get('successes')}/{n} handshakes succeeded (exit {r['rc']}): {r['stderr'][-300:]}")
            return {
                "handshakes_per_second": d["handshakes_per_second"],
                "wall_ms": d["wall_ms"],
                "median_handshake_ms": d["median_handshake_ms"],
                "p90_handshake_ms": d["p90_handshake_ms"],
                "client_cpu_ms_per_handshake": r["cpu_s"] / n * 1000,
                "server_cpu_ms_per_handshake": server_cpu / n * 1000,
                "client_maxrss_kib": r["maxrss_kib"],
            }
        return cmdline(cmd), once

    def aioquic_handshakes(self, server: Server, port: int, n: int, k: int):
        cmd = [VENV_PYTHON, AIOQUIC_BENCH, "handshakes", "127.0.0.1", port, "--cafile", ROOTS,
               "--server-name", "localhost", "--alpn", "hq-interop", "--repeat", n, "--concurrency", k]

        def once() -> dict:
            cpu0 = server.cpu_s()
            r = run(cmd, timeout=60 + n * 0.2)
            server_cpu = server.cpu_s() - cpu0
            d = last_json(r["stdout"])
            if d["ok"] != n:
                raise Failed(f"{d['ok']}/{n} handshakes succeeded: {r['stderr'][-300:]}")
            return {
                "handshakes_per_second": d["handshakes_per_second"],
                "wall_ms": d["seconds"] * 1000,
                "median_handshake_ms": d["median_handshake_ms"],
                "p90_handshake_ms": d["p90_handshake_ms"],
                "client_cpu_ms_per_handshake": d["cpu_seconds"] / n * 1000,
                "server_cpu_ms_per_handshake": server_cpu / n * 1000,
            }
        return cmdline(cmd), once

    def handshake_case(self, case: str, servers: dict, n: int, k: int, n_aioquic: int, variants: bool) -> None:
        runs = self.cfg["runs"]
        jobs = []
        for sname, (server, port) in servers.items():
            clients = [("quicprobe", *self.quicprobe_handshakes(server, port, n, k))]
            if variants:
                clients.append(("quicprobe-x25519", *self.quicprobe_handshakes(server, port, n, k, ["--curves", "X25519"])))
            clients.append(("aioquic", *self.aioquic_handshakes(server, port, n_aioquic, k)))
            for client, command, once in clients:
                e = self.entry(f"{case}/{sname}/{client}", case, client, sname, command,
                               handshakes=n_aioquic if client == "aioquic" else n, in_flight=k)
                jobs.append((e, once))
        for i in range(runs):
            for e, once in jobs:
                say(f"{e['id']} run {i + 1}/{runs}")
                self.attempt(e, once)
                time.sleep(0.3)
        for e, _ in jobs:
            summarise(e)
        for sname in servers:
            q, a = self.get(f"{case}/{sname}/quicprobe"), self.get(f"{case}/{sname}/aioquic")
            self.ratios.append(ratio(f"{case}/{sname}/quicprobe-vs-aioquic",
                                     f"{case} handshakes/s against {sname}: quicprobe / aioquic",
                                     q, a, "handshakes_per_second"))
            if variants:
                x = self.get(f"{case}/{sname}/quicprobe-x25519")
                self.ratios.append(ratio(f"{case}/{sname}/quicprobe-x25519-vs-aioquic",
                                         f"{case} handshakes/s against {sname}: quicprobe offering X25519 only (as aioquic) / aioquic",
                                         x, a, "handshakes_per_second"))

    # -- bulk download
    def quicprobe_get(self, server: Server, port: int, size: int):
        cmd = [QUICPROBE, "-q", "get", "--json", "--alpn", "hq-interop", "-o", "/dev/null",
               "--cacert", ROOTS, "--resolve", f"localhost:{port}:127.0.0.1",
               f"https://localhost:{port}/{size}"]

        def once() -> dict:
            cpu0 = server.cpu_s()
            r = run(cmd, timeout=60 + size / 2e6)
            server_cpu = server.cpu_s() - cpu0
            d = last_json(r["stdout"])
            resp = d.get("response") or {}
            if r["rc"] != 0 or not resp.get("complete") or resp.get("body_bytes") != size:
                raise Failed(f"exit {r['rc']}, response {resp}: {r['stderr'][-300:]}")
            seconds = d["elapsed_ms"] / 1000
            return {
                "mb_per_s": size / seconds / MB,
                "seconds": seconds,
                "process_wall_s": r["wall_s"],
                "client_cpu_s_per_gb": r["cpu_s"] / (size / 1e9),
                "server_cpu_s_per_gb": server_cpu / (size / 1e9),
                "lost_packets": d.get("stats", {}).get("lost"),
                "client_maxrss_kib": r["maxrss_kib"],
            }
        return cmdline(cmd), once

    def aioquic_get(self, server: Server, port: int, size: int):
        cmd = [VENV_PYTHON, AIOQUIC_BENCH, "download", "127.0.0.1", port, size,
               "--cafile", ROOTS, "--server-name", "localhost"]

        def once() -> dict:
            cpu0 = server.cpu_s()
            r = run(cmd, timeout=60 + size / 1e6)
            server_cpu = server.cpu_s() - cpu0
            d = last_json(r["stdout"])
            if not d["complete"]:
                raise Failed(f"incomplete: {d} {r['stderr'][-300:]}")
            return {
                "mb_per_s": size / d["seconds"] / MB,
                "seconds": d["seconds"],
                "process_wall_s": r["wall_s"],
                "client_cpu_s_per_gb": d["cpu_seconds"] / (size / 1e9),
                "server_cpu_s_per_gb": server_cpu / (size / 1e9),
            }
        return cmdline(cmd), once

    def iperf3(self, port: int, seconds: float):
        cmd = ["iperf3", "-c", "127.0.0.1", "-p", port, "-u", "-b", "0", "-l", DATAGRAM,
               "-t", seconds, "-J"]

        def once() -> dict:
            r = run(cmd, timeout=seconds + 30)
            d = json.loads(r["stdout"])
            if r["rc"] != 0 or "error" in d:
                raise Failed(f"iperf3: {d.get('error')} {r['stderr'][-300:]}")
            s = d["end"]["sum"]
            received = (s["packets"] - s["lost_packets"]) * DATAGRAM
            return {
                "mb_per_s": received / s["seconds"] / MB,
                "sent_mb_per_s": s["bytes"] / s["seconds"] / MB,
                "lost_percent": s["lost_percent"],
                "seconds": s["seconds"],
                "client_cpu_s_per_gb": r["cpu_s"] / (s["bytes"] / 1e9),
            }
        return cmdline(cmd), once

    def raw_udp_gso(self, seconds: float):
        """Raw UDP with the kernel's batching (GSO send, GRO receive), the same
        datagram size: the bound for a stack that batches, as quicprobe and msquic do."""
        cmd = [VENV_PYTHON, ROOT / "scripts/bench.d/udp_gso.py", "--seconds", seconds, "--datagram", DATAGRAM]

        def once() -> dict:
            r = run(cmd, timeout=seconds + 30)
            d = json.loads(r["stdout"] or "{}")
            if r["rc"] != 0 or "error" in d:
                raise Failed(f"udp_gso.py: {d.get('error')} {r['stderr'][-300:]}")
            return {
                "mb_per_s": d["received"] / d["seconds"] / MB,
                "sent_mb_per_s": d["sent"] / d["seconds"] / MB,
                "lost_percent": d["lost_percent"],
                "seconds": d["seconds"],
                "client_cpu_s_per_gb": d["sender_cpu_s"] / (d["sent"] / 1e9),
                "receiver_cpu_s_per_gb": d["receiver_cpu_s"] / (d["received"] / 1e9),
            }
        return cmdline(cmd), once

    def bulk_case(self, servers: dict) -> None:
        runs, size, asize = self.cfg["runs"], self.cfg["bulk_bytes"], self.cfg["aioquic_bulk_bytes"]
        iperf_port = free_port()
        iperf_server = Server("iperf3", ["iperf3", "-s", "-B", "127.0.0.1", "-p", iperf_port, "--forceflush"],
                              self.logdir)
        jobs = []
        for sname, (server, port) in servers.items():
            command, once = self.quicprobe_get(server, port, size)
            jobs.append((self.entry(f"bulk/{sname}/quicprobe", "bulk", "quicprobe", sname, command, bytes=size), once))
        for sname, (server, port) in servers.items():
            command, once = self.aioquic_get(server, port, asize)
            jobs.append((self.entry(f"bulk/{sname}/aioquic", "bulk", "aioquic", sname, command, bytes=asize), once))
        command, once = self.iperf3(iperf_port, self.cfg["udp_seconds"])
        jobs.append((self.entry("bulk/raw-udp/iperf3", "bulk", "raw-udp", None, command,
                                server_command=iperf_server.command, datagram_bytes=DATAGRAM,
                                seconds=self.cfg["udp_seconds"]), once))
        command, once = self.raw_udp_gso(self.cfg["udp_seconds"])
        jobs.append((self.entry("bulk/raw-udp-gso/python", "bulk", "raw-udp-gso", None, command,
                                datagram_bytes=DATAGRAM, seconds=self.cfg["udp_seconds"]), once))
        try:
            for i in range(runs):
                for e, once in jobs:
                    say(f"{e['id']} run {i + 1}/{runs}")
                    self.attempt(e, once)
                    time.sleep(0.3)
        finally:
            iperf_server.stop()
        for e, _ in jobs:
            summarise(e)
        udp = self.get("bulk/raw-udp/iperf3")
        udp_gso = self.get("bulk/raw-udp-gso/python")
        for sname in servers:
            q, a = self.get(f"bulk/{sname}/quicprobe"), self.get(f"bulk/{sname}/aioquic")
            self.ratios.append(ratio(f"bulk/{sname}/quicprobe-vs-aioquic",
                                     f"bulk MB/s from {sname}: quicprobe / aioquic", q, a, "mb_per_s"))
            self.ratios.append(ratio(f"bulk/{sname}/quicprobe-share-of-raw-udp",
                                     f"bulk MB/s from {sname}: quicprobe / raw UDP goodput", q, udp, "mb_per_s"))
            self.ratios.append(ratio(f"bulk/{sname}/aioquic-share-of-raw-udp",
                                     f"bulk MB/s from {sname}: aioquic / raw UDP goodput", a, udp, "mb_per_s"))
            self.ratios.append(ratio(f"bulk/{sname}/quicprobe-share-of-raw-udp-gso",
                                     f"bulk MB/s from {sname}: quicprobe / raw UDP goodput with GSO and GRO",
                                     q, udp_gso, "mb_per_s"))

    # -- memory with idle connections
    def memory_case(self) -> None:
        runs, n = self.cfg["runs"], self.cfg["idle_connections"]
        lab, port = lab_server(self.logdir, "lab-memory", quiet=False)
        try:
            def held(count: int) -> tuple[str, callable]:
                cmd = [QUICPROBE, "-q", "connect", "--alpn", "hq-interop", "--repeat", count,
                       "--concurrency", count, "--hold", 30, "--json", "--cacert", ROOTS,
                       "--resolve", f"localhost:{port}:127.0.0.1", f"localhost:{port}"]

                def once() -> dict:
                    before = lab.count(": handshake done")
                    child = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, cwd=ROOT, preexec_fn=die_with_parent)
                    try:
                        deadline = time.monotonic() + 30
                        while lab.count(": handshake done") - before < count:
                            if child.poll() is not None or time.monotonic() > deadline:
                                raise Failed(f"only {lab.count(': handshake done') - before}/{count} "
                                             f"connections established (client exit {child.returncode})")
                            time.sleep(0.1)
                        # All established and idle (the lab's idle timeout is 10 s):
                        # settle, then the highest of a few samples.
                        time.sleep(1.0)
                        samples = []
                        for _ in range(4):
                            samples.append(proc_rss_kib(child.pid))
                            time.sleep(0.25)
                        if child.poll() is not None:
                            raise Failed("the client ended before its RSS was read")
                        return {
                            "vmrss_kib": max(s["VmRSS"] for s in samples),
                            "rss_anon_kib": max(s["RssAnon"] for s in samples),
                            "rss_file_kib": max(s["RssFile"] for s in samples),
                            "open_fds": len(os.listdir(f"/proc/{child.pid}/fd")),
                        }
                    finally:
                        if child.poll() is None:
                            child.terminate()
                        try:
                            child.wait(10)
                        except subprocess.TimeoutExpired:
                            child.kill()
                            child.wait()
                return cmdline(cmd), once

            one_cmd, one = held(1)
            many_cmd, many = held(n)
            e1 = self.entry("memory/lab/quicprobe-1", "memory", "quicprobe", "lab", one_cmd, connections=1,
                            server_command=lab.command)
            en = self.entry(f"memory/lab/quicprobe-{n}", "memory", "quicprobe", "lab", many_cmd, connections=n,
                            server_command=lab.command)
            for i in range(runs):
                for e, once in ((e1, one), (en, many)):
                    say(f"{e['id']} run {i + 1}/{runs}")
                    self.attempt(e, once)
                    time.sleep(0.5)
        finally:
            lab.stop()
        summarise(e1)
        summarise(en)
        per = self.entry("memory/lab/quicprobe-per-connection", "memory", "quicprobe", "lab",
                         f"(VmRSS with {n} held - VmRSS with 1 held) / {n - 1}, run by run", connections=n)
        for a, b in zip(en["runs"], e1["runs"]):
            if a.get("error") or b.get("error"):
                per["runs"].append({"error": a.get("error") or b.get("error")})
            else:
                per["runs"].append({
                    "kib_per_connection": (a["vmrss_kib"] - b["vmrss_kib"]) / (n - 1),
                    "anon_kib_per_connection": (a["rss_anon_kib"] - b["rss_anon_kib"]) / (n - 1),
                })
        summarise(per)

    # -- verifier (criterion) and aioquic's verify_certificate
    def verifier_case(self) -> None:
        cmd = ["cargo", "bench", "--locked", "-p", "quicprobe-verifier", "--bench", "verify", "--",
               "--noplot", *self.cfg["criterion"]]
        say("verifier: " + cmdline(cmd))
        r = run(cmd, timeout=900)
        if r["rc"] != 0:
            raise Failed(f"cargo bench failed: {r['stderr'][-800:]}")
        crit = TARGET_DIR / "criterion"

        def criterion(name: str) -> dict:
            est = json.loads((crit / name / "new/estimates.json").read_text())
            sample = json.loads((crit / name / "new/sample.json").read_text())
            per_iter = [t / i / 1000 for t, i in zip(sample["times"], sample["iters"])]
            return {
                "us": {"median": est["median"]["point_estimate"] / 1000, "min": min(per_iter),
                       "max": max(per_iter), "n": len(per_iter),
                       "mean": est["mean"]["point_estimate"] / 1000},
            }

        for label, scenario in (("ecdsa-p256-3-certs", "full-chain"), ("rsa4096-5-certs", "rsa4096-chain")):
            for what in ("verify", "analyse"):
                e = self.entry(f"verifier/{label}/quicprobe-{what}", "verifier", f"quicprobe-{what}", None,
                               cmdline(cmd), scenario=scenario, benchmark=f"{what}/{label}",
                               runs_are="criterion samples (each the mean of many iterations)")
                e["summary"] = criterion(f"{what}_{label}")
                e["failed_runs"] = 0
            peer_cmd = [VENV_PYTHON, AIOQUIC_VERIFY, CERTS, scenario, self.cfg["aioquic_verify_seconds"]]
            e = self.entry(f"verifier/{label}/aioquic", "verifier", "aioquic", None, cmdline(peer_cmd), scenario=scenario)
            for i in range(self.cfg["runs"]):
                def once() -> dict:
                    r = run(peer_cmd, timeout=60)
                    if r["rc"] != 0:
                        raise Failed(r["stderr"][-300:])
                    return {"us": float(r["stdout"].split()[1])}
                self.attempt(e, once)
            summarise(e)
            self.ratios.append(ratio(f"verifier/{label}/aioquic-vs-quicprobe",
                                     f"µs per verification, {label}: aioquic / quicprobe verify",
                                     e, self.get(f"verifier/{label}/quicprobe-verify"), "us"))
        # BoringSSL's floors: one signature check, and every check a chain needs.
        floors = [("one-signature", label) for label in ("ecdsa-p256", "rsa4096")] + \
                 [("chain-signatures", label) for label in ("ecdsa-p256-3-certs", "rsa4096-5-certs")]
        for what, label in floors:
            e = self.entry(f"verifier/{label}/{what}", "verifier", f"boringssl-{what}", None,
                           cmdline(cmd), benchmark=f"{what}/{label}",
                           runs_are="criterion samples (each the mean of many iterations)")
            e["summary"] = criterion(f"{what}_{label}")
            e["failed_runs"] = 0

    # -- profiles
    def profiles(self, servers: dict) -> dict:
        probe = subprocess.run(["perf", "stat", "-e", "instructions", "true"], capture_output=True, text=True) \
            if shutil.which("perf") else None
        hardware = bool(probe) and "not supported" not in probe.stderr and probe.returncode == 0
        out = {"perf": shutil.which("perf") is not None, "hardware_counters": hardware, "profiles": []}
        if not shutil.which("perf"):
            out["note"] = "perf is not installed: profile pending"
            return out
        data = self.logdir / "perf.data"
        check = subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", data, "--", "true"], capture_output=True)
        if check.returncode != 0:
            out["note"] = "perf record -e cpu-clock does not work here: profile pending"
            return out
        out["method"] = ("perf record -e cpu-clock -F 999 (a software timer: this machine's perf has no "
                         "hardware counters), of the quicprobe client only, one extra run outside the "
                         "measured ones; self time by symbol")
        lab, lab_port = servers["lab"]
        ms, ms_port = servers["msquic"]
        size = self.cfg["profile_bulk_bytes"]
        jobs = [
            ("sequential/lab", self.quicprobe_handshakes(lab, lab_port, self.cfg["sequential_handshakes"], 1)[0]),
            ("concurrent/lab", self.quicprobe_handshakes(lab, lab_port, self.cfg["concurrent_handshakes"],
                                                         self.cfg["concurrent_in_flight"])[0]),
            ("bulk/lab", self.quicprobe_get(lab, lab_port, size)[0]),
            ("bulk/msquic", self.quicprobe_get(ms, ms_port, size)[0]),
        ]
        for name, command in jobs:
            say(f"profile {name}")
            rec = ["perf", "record", "-e", "cpu-clock", "-F", "999", "-o", data, "--", *shlex.split(command)]
            r = run(rec, timeout=300)
            if r["rc"] != 0:
                out["profiles"].append({"case": name, "error": r["stderr"][-300:]})
                continue
            rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym",
                                  "--stdio", "-n", "-g", "none", "--percent-limit", "0"],
                                 capture_output=True, text=True, timeout=120)
            out["profiles"].append({"case": name, "command": command, **parse_profile(rep.stdout)})
        data.unlink(missing_ok=True)
        return out


# perf report -n lines: "    12.25%  37  quicprobe  [.] __ecp_nistz256_mul_montx"
PROFILE_LINE = re.compile(r"^\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+\[([.k])\]\s+(.*?)\s*$")
GROUPS = [
    ("qlog events serialized for quicprobe's tap", r"qlog|QlogTap|serde|Serialize|serialize|write_all|fmt::write"),
    ("body SHA-256 (ring)", r"ring_core.*sha"),
    ("ECDSA P-256 (verify, BoringSSL)", r"nistz256|p256|beeu_mod|ecdsa|bn_|BN_|ec_GFp|ec_point|ec_scalar"),
    ("X25519", r"x25519|curve25519|fe4?_|ge_"),
    ("ML-KEM-768 (X25519MLKEM768)", r"mlkem|keccak|MLKEM"),
    ("AES-GCM packet protection", r"aes|gcm|ghash|GCM|AES"),
    ("other TLS (BoringSSL: hashing, handshake)", r"sha|SHA|hmac|HMAC|HKDF|hkdf|bssl::|SSL_|ssl_|CBB|CBS|X509|x509|ASN1|asn1|EVP_|OPENSSL_"),
    ("quiche (QUIC state machine)", r"quiche::|octets::"),
    ("malloc, free, memcpy (libc)", r"malloc|free|realloc|memmove|memcpy|memset|_int_|memcmp|alloc::"),
]


def parse_profile(text: str) -> dict:
    rows = []
    for line in text.splitlines():
        m = PROFILE_LINE.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(3), m.group(4), m.group(5), int(m.group(2))))
    groups: dict[str, float] = {}
    for pct, dso, kind, sym, _ in rows:
        if kind == "k" or dso.startswith("[kernel"):
            name = "kernel (UDP sendmsg/recvmsg, epoll, scheduling)"
        else:
            name = next((g for g, rx in GROUPS if re.search(rx, sym)), None)
            if name is None:
                name = "other libc" if dso.startswith("libc") else f"other {dso}"
        groups[name] = groups.get(name, 0) + pct
    return {
        "samples": sum(r[4] for r in rows),
        "groups": sorted(({"group": g, "percent": round(p, 1)} for g, p in groups.items()),
                         key=lambda x: -x["percent"]),
        "top": [{"percent": p, "dso": d, "symbol": s[:120]} for p, d, _, s, _ in rows[:15]],
    }


# ---------------------------------------------------------------- machine, versions, targets

def sh(cmd: list, default: str = "unknown") -> str:
    try:
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60, cwd=ROOT)
        return (r.stdout or r.stderr).strip() or default
    except (OSError, subprocess.TimeoutExpired):
        return default


def lock_version(lock: Path, name: str) -> str:
    text = lock.read_text()
    m = re.search(rf'\[\[package\]\]\nname = "{re.escape(name)}"\nversion = "([^"]+)"', text)
    return m.group(1) if m else "unknown"


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    pretty = re.search(r'PRETTY_NAME="([^"]*)"', os_release)
    return {
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "memory_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "os": pretty.group(1) if pretty else platform.platform(),
        "virtualised": "hypervisor" in cpuinfo,
    }


def versions() -> dict:
    git = sh(["git", "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "status", "--porcelain", "--", "client", "verifier", "Cargo.toml", "Cargo.lock"], "")
    return {
        "quicprobe": sh([QUICPROBE, "--version"]).replace("quicprobe ", "")
        + f" (git {git}{', with uncommitted changes to client/ or verifier/' if dirty else ''})",
        "quiche": lock_version(ROOT / "Cargo.lock", "quiche"),
        "boring (BoringSSL)": lock_version(ROOT / "Cargo.lock", "boring"),
        "aioquic": sh([VENV_PYTHON, "-c", "import aioquic; print(aioquic.__version__)"]),
        "msquic crate": lock_version(ROOT / "tools/msquic-server/Cargo.lock", "msquic"),
        "rustc": sh(["rustc", "--version"]),
        "python (aioquic)": sh([VENV_PYTHON, "--version"]).replace("Python ", ""),
        "iperf3": sh(["iperf3", "--version"]).splitlines()[0],
        "perf": sh(["perf", "--version"]) if shutil.which("perf") else "not installed",
    }


def targets(bench: Bench) -> list[dict]:
    r = {x["id"]: x for x in bench.ratios}

    def rmed(rid):
        return (r.get(rid) or {}).get("median")

    def ge(value, limit):
        return None if value is None else value >= limit

    def le(value, limit):
        return None if value is None else value <= limit

    def all_met(values):
        return None if any(v is None for v in values) else all(values)

    out = []
    seq = {s: rmed(f"sequential/{s}/quicprobe-vs-aioquic") for s in ("lab", "msquic")}
    out.append({"measure": "sequential handshakes/s", "target": "≥ 20× aioquic",
                "measured": seq, "unit": "x", "met": all_met([ge(v, 20) for v in seq.values()])})
    conc = {s: median_of(bench.get(f"concurrent/{s}/quicprobe"), "handshakes_per_second") for s in ("lab", "msquic")}
    conc_server = {s: median_of(bench.get(f"concurrent/{s}/quicprobe"), "server_cpu_ms_per_handshake") for s in ("lab", "msquic")}
    out.append({"measure": "concurrent handshakes/s, one thread", "target": "≥ 1500/s, with the server's CPU reported beside it",
                "measured": conc, "unit": "/s", "server_cpu_ms_per_handshake": conc_server,
                "met": all_met([ge(v, 1500) for v in conc.values()])})
    bulk = {s: rmed(f"bulk/{s}/quicprobe-vs-aioquic") for s in ("lab", "msquic")}
    share = {s: rmed(f"bulk/{s}/quicprobe-share-of-raw-udp") for s in ("lab", "msquic")}
    share_gso = {s: rmed(f"bulk/{s}/quicprobe-share-of-raw-udp-gso") for s in ("lab", "msquic")}
    out.append({"measure": "bulk download", "target": "≥ 30× aioquic, and ≥ 50% of raw UDP loopback goodput",
                "measured": bulk, "unit": "x", "share_of_raw_udp": share, "share_of_raw_udp_gso": share_gso,
                "met": all_met([ge(v, 30) for v in bulk.values()] + [ge(v, 0.5) for v in share.values()])})
    mem = median_of(bench.get("memory/lab/quicprobe-per-connection"), "kib_per_connection")
    out.append({"measure": "memory per idle connection", "target": "≤ 64 KiB", "measured": {"lab": mem},
                "unit": "KiB", "met": le(mem, 64)})
    v = (bench.get("verifier/ecdsa-p256-3-certs/quicprobe-verify") or {}).get("summary", {}).get("us", {}).get("median")
    out.append({"measure": "verifier", "target": "≤ 100 µs per 3-certificate ECDSA chain", "measured": {"ecdsa-p256-3-certs": v},
                "unit": "µs", "met": le(v, 100)})
    return out


def missing_numbers(results: list[dict]) -> list[str]:
    missing = []
    for e in results:
        if not e.get("summary") or all(v is None for v in e["summary"].values()):
            missing.append(e["id"])
    return missing


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", help="comma-separated cases, for working on this script")
    parser.add_argument("--limit", type=int, default=5400, help="seconds for the whole run")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def stop(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(args.limit)  # the whole run, on top of each step's own timeout

    started = time.time()
    load_start = os.getloadavg()
    logdir = Path(tempfile.mkdtemp(prefix="quicprobe-bench-"))
    bench = Bench(cfg, logdir)
    profiles = None
    server_commands = {}
    case_errors = {}
    only = set(args.only.split(",")) if args.only else None

    def case(name: str, fn) -> None:
        if only and name not in only:
            return
        say(f"case {name}")
        try:
            fn()
        except Failed as error:  # the case is reported as failed; the others still run
            say(f"case {name} failed: {error}")
            case_errors[name] = str(error)[:1000]

    try:
        case("verifier", bench.verifier_case)
        lab, lab_port = lab_server(logdir)
        ms, ms_port = msquic_server(logdir)
        servers = {"lab": (lab, lab_port), "msquic": (ms, ms_port)}
        server_commands = {"lab": lab.command, "msquic": ms.command}
        case("sequential", lambda: bench.handshake_case(
            "sequential", servers, cfg["sequential_handshakes"], 1, cfg["sequential_handshakes"], variants=True))
        case("concurrent", lambda: bench.handshake_case(
            "concurrent", servers, cfg["concurrent_handshakes"], cfg["concurrent_in_flight"],
            cfg["aioquic_concurrent_handshakes"], variants=False))
        case("bulk", lambda: bench.bulk_case(servers))

        def profile() -> None:
            nonlocal profiles
            profiles = bench.profiles(servers)
        case("profile", profile)
        lab.stop()
        ms.stop()
        case("memory", bench.memory_case)
    finally:
        Server.stop_all()
    document = {
        "schema": 1,
        "mode": cfg["mode"],
        "date": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_seconds": round(time.time() - started),
        "machine": {**machine(), "load_average_at_start": [round(x, 2) for x in load_start],
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "versions": versions(),
        "settings": {k: v for k, v in cfg.items() if k != "mode"},
        "servers": server_commands,
        "results": [{k: v for k, v in e.items()} for e in bench.results],
        "ratios": bench.ratios,
        "targets": targets(bench),
        "profiles": profiles,
        "case_errors": case_errors,
    }
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(logdir, ignore_errors=True)
    missing = missing_numbers(bench.results) + [f"case {c}" for c in case_errors]
    say(f"wrote {out} in {document['duration_seconds']} s")
    if missing:
        say("no number for: " + ", ".join(missing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
