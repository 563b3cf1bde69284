#!/usr/bin/env python3
"""Back to back: the client CPU of two quicprobe binaries, BEFORE and AFTER a
change, in interleaved rounds against one lab server (BEFORE's, so that the
server is the same for both). Each round runs, for each binary in turn (the
order alternates round by round):
  - sequential handshakes (`connect --repeat N`), client CPU per handshake;
  - concurrent handshakes (`connect --repeat M --concurrency K`), the same;
  - a download (`get -o /dev/null` of S bytes over hq-interop), client CPU per GB;
  - `connect --hold` of H idle connections at once, their peak RSS per connection.
Prints one JSON object: per measure and binary the median and min-max, and the
ratio AFTER/BEFORE round by round with its median. Speed is never asserted.

Usage: scripts/bench.d/ab.py BEFORE AFTER [--rounds R] [--sequential N]
           [--concurrent M --in-flight K] [--download BYTES] [--held H]
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases.bulk import quicprobe_get  # noqa: E402
from harness import ROOTS, SCENARIO, Failed, Server, free_port, last_json, run  # noqa: E402


def handshakes(binary: str, port: int, n: int, k: int) -> float:
    cmd = [binary, "-q", "connect", "--alpn", "hq-interop", "--repeat", n, "--concurrency", k, "--json",
           "--cacert", ROOTS, "--resolve", f"localhost:{port}:127.0.0.1", f"localhost:{port}"]
    r = run(cmd, timeout=120)
    d = last_json(r["stdout"])
    if d.get("successes") != n:
        raise Failed(f"{binary}: {d.get('successes')}/{n} handshakes: {r['stderr'][-300:]}")
    return r["cpu_s"] / n * 1000


def held_rss(binary: str, port: int, held: int) -> float:
    """Peak RSS per connection of `held` idle connections held at once (the
    process's whole peak, so its fixed part is shared among them)."""
    cmd = [binary, "-q", "connect", "--alpn", "hq-interop", "--repeat", held, "--concurrency", held,
           "--hold", "2", "--json", "--cacert", ROOTS, "--resolve", f"localhost:{port}:127.0.0.1",
           f"localhost:{port}"]
    r = run(cmd, timeout=120)
    d = last_json(r["stdout"])
    if d.get("successes") != held:
        raise Failed(f"{binary}: {d.get('successes')}/{held} held: {r['stderr'][-300:]}")
    return r["maxrss_kib"] / held


def summary(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--download", type=int, default=256 << 20)
    parser.add_argument("--held", type=int, default=1000)
    args = parser.parse_args()
    binaries = {"before": args.before, "after": args.after}
    port = free_port()
    with tempfile.TemporaryDirectory() as logs:
        server = Server("lab", [args.before, "-q", "serve", "--scenario", SCENARIO,
                                "--listen", f"127.0.0.1:{port}"], Path(logs))
        try:
            results = rounds(args, binaries, server, port)
        finally:
            server.stop()
    print(json.dumps(results, indent=1))


def rounds(args, binaries: dict, server: Server, port: int) -> dict:
    measures = {
        "sequential_cpu_ms_per_handshake": lambda b: handshakes(b, port, args.sequential, 1),
        "concurrent_cpu_ms_per_handshake": lambda b: handshakes(b, port, args.concurrent, args.in_flight),
        "download_cpu_s_per_gb": lambda b: quicprobe_get(server, port, args.download, b)[1]()[
            "client_cpu_s_per_gb"],
        "held_peak_rss_kib_per_connection": lambda b: held_rss(b, port, args.held),
    }
    values = {m: {"before": [], "after": []} for m in measures}
    for round_number in range(args.rounds):
        order = ["before", "after"] if round_number % 2 == 0 else ["after", "before"]
        for name, measure in measures.items():
            for which in order:
                values[name][which].append(measure(binaries[which]))
        print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    results = {"binaries": binaries, "rounds": args.rounds}
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
