#!/usr/bin/env python3
"""Runs hostile cases many times and tallies what the client said: the
numbers behind docs/reliability.md's "Hostile servers" table.

Usage: hostile_batch.py [--quicprobe PATH] [--runs N] [--timeout S] CASE...
       CASE is a hostile_server.py case, `serve:SCENARIO` (the lab
       serving a hostile scenario) or `verify:SCENARIO` (`quicprobe verify
       --chain` on its files, timed).

One line per case: runs, then each (outcome, exit code, stages that matter)
with its count, the slowest run, and how many runs panicked or died by a
signal. The seed of run i is i (1-based). 127.0.0.1 only.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv/bin/python"


class Server:
    """A child server that prints `listening on ADDR`; killed on exit."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "listening on" in line:
                self.port = int(line.rsplit(":", 1)[1])
                return
        self.stop()
        raise SystemExit(f"{argv}: did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def server_for(case: str, seed: int, quicprobe: str) -> tuple[Server, str]:
    """The server of a case and the scenario whose roots the client trusts."""
    if case.startswith("serve:"):
        name = case.split(":", 1)[1]
        argv = [quicprobe, "serve", "--scenario", str(REPO / "certs" / name), "--listen", "127.0.0.1:0"]
        return Server(argv), name
    argv = [str(PYTHON), str(Path(__file__).with_name("hostile_server.py")), "--listen", "127.0.0.1:0",
            "--case", case, "--seed", str(seed)]
    return Server(argv), "full-chain"


def connect_once(case: str, seed: int, args) -> tuple[str, float, bool]:
    server, roots_of = server_for(case, seed, args.quicprobe)
    try:
        port = server.port
        argv = [args.quicprobe, "connect", "--json", "--timeout", str(args.timeout),
                "--cacert", str(REPO / "certs" / roots_of / "roots.pem"),
                "--resolve", f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/"]
        started = time.monotonic()
        run = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                             env={**os.environ, "RUST_BACKTRACE": "1"}, timeout=120)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    bad = "panicked" in run.stderr or run.returncode < 0
    try:
        report = json.loads(run.stdout.splitlines()[0])
    except (IndexError, ValueError):
        return f"no JSON, exit {run.returncode}", elapsed, bad
    stages = [s["name"] for s in report["stages"]]
    marks = [s for s in ("version_negotiation", "retry", "verdict") if s in stages]
    close = report.get("close") or {}
    closed = f" close {close.get('sent_by')} 0x{close.get('error_code', 0):x}" if close else ""
    return f"{report['outcome']} {report['exit_code']}{closed} {marks}", elapsed, bad


def verify_once(name: str, args) -> tuple[str, float, bool]:
    d = REPO / "certs" / name
    argv = [args.quicprobe, "verify", "--json", "--chain", str(d / "chain.pem"),
            "--cacert", str(d / "roots.pem"), "--host", (d / "host").read_text().strip()]
    started = time.monotonic()
    run = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "RUST_BACKTRACE": "1"})
    elapsed = time.monotonic() - started
    verdict = json.loads(run.stdout)["verdict"]
    bad = "panicked" in run.stderr or run.returncode < 0
    return f"exit {run.returncode} error {verdict['x509_error']} depth {verdict['depth']}", elapsed, bad


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quicprobe", default=str(REPO / "target/debug/quicprobe"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=5)
    parser.add_argument("cases", nargs="+")
    args = parser.parse_args()
    for case in args.cases:
        results, slowest, bad = collections.Counter(), 0.0, 0
        for seed in range(1, args.runs + 1):
            if case.startswith("verify:"):
                result, elapsed, failed = verify_once(case.split(":", 1)[1], args)
            else:
                result, elapsed, failed = connect_once(case, seed, args)
            results[result] += 1
            slowest, bad = max(slowest, elapsed), bad + failed
        tally = "; ".join(f"{n}x {r}" for r, n in results.most_common())
        print(f"{case}: {args.runs} runs: {tally}; slowest {slowest:.3f} s; panics/aborts {bad}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
