#!/usr/bin/env python3
"""The benchmark cases of issue 7, each next to its peer in the same run.
Called by scripts/bench (which installs and builds first); writes one JSON file.

  run.py [--quick] [--only CASE,...] --out FILE

The cases, in the order they run, each in its own module of cases/: verifier
(criterion, before any server starts), then against the lab and the msquic
server: sequential and concurrent (handshakes.py), bulk, profile (profiles.py);
then, with those servers stopped, memory, and scan (against its own lab of
several servers). harness.py holds what they share; results.py the machine,
versions and targets written beside their numbers.

With --only, only the cases named run, and when FILE already holds a run of the
same mode, their entries replace that run's entries of the same cases (the rest
is kept, and `partial_runs` records what was run when): the page rendered from
it then keeps the other cases' figures instead of losing them.

Every client and server is started on 127.0.0.1 only, with a timeout; every
server is stopped on the way out (normal end, error, SIGINT, SIGTERM). The runs
of the clients of a case are interleaved (quicprobe run 1, peer run 1, quicprobe
run 2, ...), so that a slow spell of the machine hits both.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from cases import bulk, handshakes, memory, profiles, scan, verifier
from harness import GIB, Bench, Failed, Server, lab_server, msquic_server, say
from results import machine, missing_numbers, targets, versions

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
    "floor_iterations": 300,
    "floor_aead_bytes": 256 << 20,
    "scan_targets": 10_000,
    "scan_in_flight": 1000,
    "scan_servers": 8,
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
    "floor_iterations": 60,
    "floor_aead_bytes": 32 << 20,
    "scan_targets": 1000,
    "scan_in_flight": 200,
    "scan_servers": 4,
}
CASES = ("verifier", "sequential", "concurrent", "bulk", "profile", "memory", "scan")
SERVED = {"sequential", "concurrent", "bulk", "profile"}  # the cases run against the lab and msquic


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
    profile_report = None
    server_commands = {}
    case_errors = {}
    only = set(args.only.split(",")) if args.only else None
    if only and only - set(CASES):
        parser.error(f"unknown case(s) {', '.join(sorted(only - set(CASES)))}; the cases: {', '.join(CASES)}")

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
        case("verifier", lambda: verifier.measure(bench))
        if not only or only & SERVED:
            lab, lab_port = lab_server(logdir)
            ms, ms_port = msquic_server(logdir)
            servers = {"lab": (lab, lab_port), "msquic": (ms, ms_port)}
            server_commands = {"lab": lab.command, "msquic": ms.command}
            case("sequential", lambda: handshakes.sequential(bench, servers))
            case("concurrent", lambda: handshakes.concurrent(bench, servers))
            case("bulk", lambda: bulk.measure(bench, servers))

            def profile() -> None:
                nonlocal profile_report
                profile_report = profiles.measure(bench, servers)
            case("profile", profile)
            lab.stop()
            ms.stop()
        case("memory", lambda: memory.measure(bench))
        case("scan", lambda: scan.measure(bench))
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
        "profiles": profile_report,
        "case_errors": case_errors,
    }
    written = document
    if only and out.exists():
        previous = json.loads(out.read_text())
        if previous.get("mode") == cfg["mode"]:
            written = merged(previous, document, only)
            say(f"{', '.join(sorted(only))}: replaced in {out}, the other cases kept from its run of "
                f"{previous['date']}")
    out.write_text(json.dumps(written, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(logdir, ignore_errors=True)
    missing = missing_numbers(bench.results) + [f"case {c}" for c in case_errors]
    say(f"wrote {out} in {document['duration_seconds']} s")
    if missing:
        say("no number for: " + ", ".join(missing))
        return 1
    return 0


def merged(previous: dict, document: dict, only: set) -> dict:
    """`previous` with the entries, ratios and errors of the cases in `only`
    replaced by `document`'s, its targets recomputed from the result, and the
    partial run recorded in `partial_runs` (when, how long, which quicprobe)."""
    def ran(key: str) -> bool:
        return key.split("/")[0] in only

    out = dict(previous)
    out["results"] = [e for e in previous["results"] if not ran(e["id"]) and e["case"] not in only] \
        + document["results"]
    out["ratios"] = [r for r in previous["ratios"] if not ran(r["id"])] + document["ratios"]
    out["settings"] = {**previous["settings"], **document["settings"]}
    out["servers"] = {**previous.get("servers", {}), **document["servers"]}
    out["case_errors"] = {**{c: v for c, v in previous.get("case_errors", {}).items() if c not in only},
                          **document["case_errors"]}
    if "profile" in only:
        out["profiles"] = document["profiles"]
    out["partial_runs"] = [p for p in previous.get("partial_runs", []) if not set(p["cases"]) <= only] + [{
        "cases": sorted(only),
        "date": document["date"],
        "duration_seconds": document["duration_seconds"],
        "load_average_at_start": document["machine"]["load_average_at_start"],
        "load_average_at_end": document["machine"]["load_average_at_end"],
        "quicprobe": document["versions"]["quicprobe"],
    }]
    bench = Bench({"mode": out["mode"], **out["settings"]}, Path("."))
    bench.results, bench.ratios = out["results"], out["ratios"]
    out["targets"] = targets(bench)
    return out


if __name__ == "__main__":
    sys.exit(main())
