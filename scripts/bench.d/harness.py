"""What every benchmark case shares: where things are, the clients and servers
(all on 127.0.0.1, each with a timeout, none outliving the run), the statistics,
and `Bench`, the record of one run that the cases write their entries into.

Times: a client's CPU is its own user+system time from wait4() (quicprobe,
iperf3) or from getrusage() inside the peer script around the work (aioquic,
so that the interpreter's start-up is not charged to it); a server's CPU is the
difference of utime+stime in /proc/PID/stat across the run.
"""

import ctypes
import json
import os
import shlex
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
MB = 1e6  # MB/s are decimal megabytes; GiB is 2**30
GIB = 1 << 30


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


def free_port(address: str = "127.0.0.1") -> int:
    """A UDP port free on `address` (a loopback address: 127.x.y.z)."""
    if not address.startswith("127."):
        raise ValueError(f"not a loopback address: {address}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def cmdline(cmd: list) -> str:
    return shlex.join(str(c) for c in cmd).replace(str(ROOT) + "/", "")


def run(cmd: list, timeout: float, env: dict | None = None, stdout_path: Path | None = None,
        watch=None, watch_every: float = 0.025) -> dict:
    """Runs a client to its end (killed after `timeout` s) and returns its
    stdout, exit code, wall time and own CPU time (wait4). With `stdout_path`
    its stdout goes to that file instead (and "stdout" is empty); `watch(pid)`
    is called every `watch_every` s while it runs (to sample /proc/PID)."""
    cmd = [str(c) for c in cmd]
    with (open(stdout_path, "wb") if stdout_path else tempfile.TemporaryFile()) as out, \
            tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env, preexec_fn=die_with_parent)
        deadline = start + timeout
        next_watch = start
        try:
            while True:
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                now = time.perf_counter()
                if now > deadline:
                    raise Failed(f"timed out after {timeout:.0f} s: {cmdline(cmd)}")
                if watch and now >= next_watch:
                    watch(child.pid)
                    next_watch = now + watch_every
                time.sleep(0.002)
        except BaseException:  # a timeout, or this script being stopped
            child.kill()
            os.wait4(child.pid, 0)
            child.returncode = -9
            raise
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        if not stdout_path:
            out.seek(0)
        return {
            "rc": child.returncode,
            "stdout": "" if stdout_path else out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace")[-2000:],
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "user_s": usage.ru_utime,
            "sys_s": usage.ru_stime,
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


def udp_rcvbuf_errors() -> int:
    """The machine's count of UDP datagrams dropped for a full receive buffer
    (RcvbufErrors in /proc/net/snmp): every process's, so read around a run."""
    lines = [l.split() for l in Path("/proc/net/snmp").read_text().splitlines() if l.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


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


def lab_server(logdir: Path, name: str = "lab", quiet: bool = True,
               address: str = "127.0.0.1", binary=QUICPROBE) -> tuple[Server, int]:
    port = free_port(address)
    cmd = [binary] + (["-q"] if quiet else []) + [
        "serve", "--scenario", SCENARIO, "--listen", f"{address}:{port}"]
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


# ---------------------------------------------------------------- the record of a run

class Bench:
    """The run's settings, its scratch directory (server logs), and what the
    cases measured: one entry per client and server, and the ratios between them."""

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
