"""The rest of bench/results.json: the machine, the versions of everything
measured, the targets of issue 7 against what was measured, and which entries
have no number.
"""

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from harness import QUICPROBE, ROOT, VENV_PYTHON, Bench, median_of


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
