#!/usr/bin/env python3
"""Back to back: the CPU of two quicprobe binaries, BEFORE and AFTER a change,
in interleaved rounds. With `--vary client` (the default) both clients run
against one lab server (BEFORE's), and the client's CPU is measured; with
`--vary lab` each binary serves as the lab, one BEFORE client runs against
both, and the lab's CPU is measured. Each round runs, for each binary in turn
(the order alternates round by round):
  - sequential handshakes (`connect --repeat N`), CPU per handshake;
  - concurrent handshakes (`connect --repeat M --concurrency K`), the same;
  - a download (`get -o /dev/null` of S bytes over hq-interop), CPU per GB;
  - (client only) memory per idle connection, as the bench's memory case
    measures it: (VmRSS holding H − VmRSS holding 1) / (H − 1), against a
    second lab that logs its handshakes;
  - (client only, with --scan T) `scan` of T targets at K in flight, CPU per target.
Prints one JSON object: per measure and binary the median and min-max, and the
ratio AFTER/BEFORE round by round with its median. Speed is never asserted.

Usage: scripts/bench.d/ab.py BEFORE AFTER [--vary client|lab] [--rounds R]
           [--sequential N] [--concurrent M --in-flight K] [--download BYTES] [--held H]
           [--scan T] [--only MEASURE,...]
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases.bulk import quicprobe_get  # noqa: E402
from cases.handshakes import quicprobe_handshakes  # noqa: E402
from cases.memory import holding  # noqa: E402
from harness import ROOTS, Failed, Server, lab_server, run  # noqa: E402


def handshakes(binary: str, server: Server, port: int, n: int, k: int) -> dict:
    """CPU ms per handshake: the client's and the server's."""
    d = quicprobe_handshakes(server, port, n, k, binary=binary)[1]()
    return {"client": d["client_cpu_ms_per_handshake"], "lab": d["server_cpu_ms_per_handshake"]}


def download(binary: str, server: Server, port: int, size: int) -> dict:
    """CPU s per GB: the client's and the server's."""
    d = quicprobe_get(server, port, size, binary)[1]()
    return {"client": d["client_cpu_s_per_gb"], "lab": d["server_cpu_s_per_gb"]}


def idle_kib_per_connection(binary: str, lab: Server, port: int, held: int) -> float:
    many = holding(binary, lab, port, held)[1]()["vmrss_kib"]
    one = holding(binary, lab, port, 1)[1]()["vmrss_kib"]
    return (many - one) / (held - 1)


def scan(binary: str, port: int, targets: int, k: int, logs: Path) -> float:
    """The client's CPU ms per target of a scan (every line to the one lab)."""
    lines = logs / f"targets-{targets}.txt"
    lines.write_text(f"127.0.0.1:{port} localhost\n" * targets)
    cmd = [binary, "scan", "--targets", lines, "--concurrency", k, "--alpn", "hq-interop", "--cacert", ROOTS]
    r = run(cmd, timeout=300)
    ok = r["stdout"].count('"outcome":"ok"')
    if r["rc"] not in (0, 1) or ok < targets:
        raise Failed(f"{binary}: scan exit {r['rc']}, {ok}/{targets} ok: {r['stderr'][-300:]}")
    return r["cpu_s"] / targets * 1000


def summary(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--vary", choices=["client", "lab"], default="client")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--download", type=int, default=256 << 20)
    parser.add_argument("--held", type=int, default=1000)
    parser.add_argument("--scan", type=int, default=0)
    parser.add_argument("--only", default="", help="measures to run, comma-separated (default: all)")
    args = parser.parse_args()
    binaries = {"before": args.before, "after": args.after}
    with tempfile.TemporaryDirectory() as logs:
        try:
            labs = start_labs(args, binaries, Path(logs))
            results = rounds(args, binaries, labs, Path(logs))
        finally:
            Server.stop_all()
    print(json.dumps(results, indent=1))


def start_labs(args, binaries: dict, logs: Path) -> dict:
    """The lab each side runs against: one for both (BEFORE's) when the
    clients vary, each binary's own when the labs do."""
    if args.vary == "client":
        shared = lab_server(logs, "lab", binary=args.before)
        # Not quiet: the memory measure waits for its handshake lines.
        logging_lab = lab_server(logs, "lab-memory", quiet=False, binary=args.before)
        return {"before": shared, "after": shared, "memory": logging_lab}
    return {which: lab_server(logs, f"lab-{which}", binary=binary) for which, binary in binaries.items()}


def rounds(args, binaries: dict, labs: dict, logs: Path) -> dict:
    side = args.vary
    # The binary that runs as the client for each side.
    client = binaries if side == "client" else {"before": args.before, "after": args.before}
    measures = {
        "sequential_cpu_ms_per_handshake": lambda w: handshakes(client[w], *labs[w], args.sequential, 1)[side],
        "concurrent_cpu_ms_per_handshake": lambda w: handshakes(
            client[w], *labs[w], args.concurrent, args.in_flight)[side],
        "download_cpu_s_per_gb": lambda w: download(client[w], *labs[w], args.download)[side],
    }
    if side == "client":
        measures["idle_kib_per_connection"] = lambda w: idle_kib_per_connection(
            client[w], *labs["memory"], args.held)
    if side == "client" and args.scan:
        measures["scan_cpu_ms_per_target"] = lambda w: scan(client[w], labs[w][1], args.scan, args.in_flight, logs)
    if args.only:
        wanted = set(args.only.split(","))
        measures = {name: measure for name, measure in measures.items() if name in wanted}
    values = {m: {"before": [], "after": []} for m in measures}
    for round_number in range(args.rounds):
        order = ["before", "after"] if round_number % 2 == 0 else ["after", "before"]
        for name, measure in measures.items():
            for which in order:
                values[name][which].append(measure(which))
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    results = {"binaries": binaries, "vary": side, "cpu_of": side, "rounds": args.rounds}
    for name, by_binary in values.items():
        ratios = [a / b for a, b in zip(by_binary["after"], by_binary["before"])]
        results[name] = {
            "before": summary(by_binary["before"]),
            "after": summary(by_binary["after"]),
            "after_over_before": summary(ratios),
        }
    return results


if __name__ == "__main__":
    main()
