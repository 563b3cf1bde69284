"""The rest of bench/results.json: the machine, the versions of everything
measured, the targets of issue 18 against what was measured, and which entries
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
    """Issue 18's table: each row's measure, its floor or peer measured in the
    same run, its target, and the ratios (one per server or key exchange)."""
    r = {x["id"]: x for x in bench.ratios}

    def ratios(pairs: dict) -> dict:
        return {label: (r.get(rid) or {}).get("median") for label, rid in pairs.items()}

    def met(values: dict, test) -> bool | None:
        return None if not values or any(v is None for v in values.values()) else all(map(test, values.values()))

    rows = []

    def row(measure: str, floor: str, target: str, values: dict, test, unit: str = "×") -> None:
        rows.append({"measure": measure, "floor": floor, "target": target, "measured": values,
                     "unit": unit, "met": met(values, test)})

    row("client CPU per handshake (full-chain ECDSA, no cache; sequential and 200 in flight)",
        "the handshake's public-key work in BoringSSL for the negotiated group: key share (X25519MLKEM768 or "
        "X25519), the chain's 2 signatures, the CertificateVerify (`floors handshake`)",
        "≤ 1.5× the floor",
        ratios({f"{case} {s}, {g}": f"{case}/{s}/{c}-over-floor"
                for case in ("sequential", "concurrent") for s in ("lab", "msquic")
                for c, g in (("quicprobe", "X25519MLKEM768"), ("quicprobe-x25519", "X25519"))
                if f"{case}/{s}/{c}-over-floor" in r}),
        lambda v: v <= 1.5)
    row("the same, against aioquic's client CPU per handshake",
        "aioquic 1.7.2, same server, offering X25519",
        "≥ 10× less",
        ratios({f"{case} {s}, quicprobe {g}": f"{case}/{s}/aioquic-cpu-over-{c}"
                for case in ("sequential", "concurrent") for s in ("lab", "msquic")
                for c, g in (("quicprobe", "X25519MLKEM768"), ("quicprobe-x25519", "X25519"))
                if f"{case}/{s}/aioquic-cpu-over-{c}" in r}),
        lambda v: v >= 10)
    row("client CPU per GB downloaded (hq-interop, `-o /dev/null`)",
        "a plain UDP socket's receiver with GRO from a GSO sender (udp_gso.py), plus the negotiated AEAD's open "
        "of the same bytes (`floors aead`)",
        "≤ 2× the floor",
        ratios({s: f"bulk/{s}/quicprobe-over-floor" for s in ("lab", "msquic")}), lambda v: v <= 2)
    row("the same, against aioquic's client CPU per GB", "aioquic 1.7.2, same server", "≥ 25× less",
        ratios({s: f"bulk/{s}/aioquic-cpu-over-quicprobe" for s in ("lab", "msquic")}), lambda v: v >= 25)
    row("verifier, 3-certificate ECDSA chain",
        "BoringSSL's own checks of the same chain's signatures (`X509::verify` of each link), back to back "
        "in the same criterion run",
        "≤ 1.05×",
        ratios({"ecdsa-p256-3-certs": "verifier/ecdsa-p256-3-certs/quicprobe-over-floor"}), lambda v: v <= 1.05)
    n = bench.cfg.get("idle_connections")
    mem = median_of(bench.get("memory/lab/quicprobe-per-connection"), "kib_per_connection")
    row(f"memory per idle connection, {n} connections", "—", "≤ 32 KiB", {"lab": mem}, lambda v: v <= 32, "KiB")
    rows.append(scan_row(bench))
    return rows


def scan_row(bench: Bench) -> dict:
    """`scan`: peak RSS (median of the runs), descriptors grown over the steady
    state (the most of any run: one leak is enough), the rate over `connect
    --repeat`'s against the same servers; and no target may fail."""
    n, k = bench.cfg.get("scan_targets", 10_000), bench.cfg.get("scan_in_flight", 1000)
    row = {"measure": f"`scan` of {n:,} targets at {k:,} in flight", "floor": "`connect --repeat` against the "
           "same lab servers, interleaved run by run (the rate)",
           "target": "RSS ≤ 64 MiB, no fd growth, rate ≥ 0.8× the `connect --repeat` rate",
           "measured": {}, "unit": "mixed", "units": {}, "met": None}
    scan = bench.get("scan/lab/quicprobe-scan")
    r = next((x for x in bench.ratios if x["id"] == "scan/lab/scan-over-connect-repeat"), None)
    if not scan or not scan.get("summary"):
        row["note"] = "not measured in this run"
        return row
    good = [x for x in scan["runs"] if not x.get("error")]
    growth = [x["fd_growth"] for x in good if x.get("fd_growth") is not None]
    values = {"peak RSS": (median_of(scan, "peak_rss_mib"), " MiB"),
              "fd growth": (max(growth) if growth else None, ""),
              "rate": ((r or {}).get("median"), "× `connect --repeat`'s"),
              "targets failed": (sum(x.get("failed", 0) for x in good), f" of {n * len(good):,}")}
    row["measured"] = {label: v for label, (v, _) in values.items()}
    row["units"] = {label: u for label, (_, u) in values.items()}
    rss, grew, rate, failed = (row["measured"][x] for x in values)
    if None not in (rss, grew, rate):
        row["met"] = rss <= 64 and grew <= 0 and rate >= 0.8 and failed == 0
    return row


def missing_numbers(results: list[dict]) -> list[str]:
    missing = []
    for e in results:
        if not e.get("summary") or all(v is None for v in e["summary"].values()):
            missing.append(e["id"])
    return missing
