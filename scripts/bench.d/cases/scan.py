"""Case `scan` (issue 18): `quicprobe scan` of N targets at K in flight against
a loopback lab of S `quicprobe serve` processes, each on its own 127.x.y.z
address and port (one `serve` listens on one address), the targets spread over
them round-robin, every one with the `full-chain` scenario trusted through
--cacert. Interleaved with it, run for run, `quicprobe connect --repeat N/S
--concurrency K` against the same S servers: the rate the scan is held to
(target: ≥ 0.8× of it). `connect` makes its connections target by target (N/S
to the first server, then to the next); a third client, the scan of a file in
that same order, tells the scan's own cost from the servers' (how a lab of S
single-threaded servers takes its load spread over all of them at once, or
over one or two).

While each client runs, /proc/PID is sampled every 25 ms: open descriptors
(/proc/PID/fd), VmRSS, and, for the scan, how many targets have ended (its
JSON lines so far). Peak RSS is the kernel's high-water mark (wait4's
ru_maxrss, which is VmHWM). "fd growth" is whether descriptors grow with the
targets scanned rather than with the connections in flight: over the steady
state (K ≤ targets ended ≤ N − K, K in flight throughout), the most open in its
second half minus the most open in its first half; a descriptor leaked per
target would add thousands, one socket per connection in flight adds nothing.
"""

import json
import os
import resource
import statistics
import time
from pathlib import Path

from harness import (QUICPROBE, ROOTS, Bench, Failed, Server, cmdline, lab_server, last_json, ratio, run,
                     say, summarise, udp_rcvbuf_errors)

MIB = 1024


def addresses(count: int) -> list[str]:
    """`count` loopback addresses spread over 127.0.0.0/8, none of them 127.0.0.1."""
    return [f"127.18.{i // 4}.{i % 4 * 16 + 2}" for i in range(count)]


class Sampler:
    """Samples a running client's /proc/PID: open descriptors, VmRSS, and
    (when `lines_of` is a file) how many lines it has written."""

    def __init__(self, lines_of: Path | None = None) -> None:
        self.lines_of, self.offset, self.lines = lines_of, 0, 0
        self.samples: list[dict] = []
        self.soft_limit: int | None = None

    def __call__(self, pid: int) -> None:
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            status = Path(f"/proc/{pid}/status").read_text()
            if self.soft_limit is None:
                for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
                    if line.startswith("Max open files"):
                        self.soft_limit = int(line.split()[3])
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            return  # ending, or not yet exec'd
        vmrss = next((int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:")), None)
        if vmrss is None:  # a zombie has no memory left to read
            return
        if self.lines_of:
            with open(self.lines_of, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            self.offset += len(chunk)
            self.lines += chunk.count(b"\n")
        self.samples.append({"fds": fds, "vmrss_kib": vmrss, "lines": self.lines})

    def fds(self) -> dict:
        fds = [s["fds"] for s in self.samples]
        return {"fds_first": fds[0] if fds else None, "fds_max": max(fds) if fds else None}

    def growth(self, key: str, n: int, k: int) -> int | None:
        """Over the steady state (k <= targets ended <= n - k), the most of
        `key` in its second half minus the most in its first half."""
        steady = [s for s in self.samples if k <= s["lines"] <= n - k]
        first = [s[key] for s in steady if s["lines"] < n / 2]
        second = [s[key] for s in steady if s["lines"] >= n / 2]
        if not first or not second:
            return None
        return max(second) - max(first)


def measure(bench: Bench) -> None:
    cfg = bench.cfg
    n, k, count, runs = cfg["scan_targets"], cfg["scan_in_flight"], cfg["scan_servers"], cfg["runs"]
    if n % count:
        raise Failed(f"{n} targets do not spread evenly over {count} servers")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    servers: list[tuple[Server, str, int]] = []
    try:
        for i, address in enumerate(addresses(count)):
            server, port = lab_server(bench.logdir, f"lab-scan-{i + 1}", address=address)
            servers.append((server, address, port))
        endpoints = [f"{address}:{port}" for _, address, port in servers]
        spread_file = bench.logdir / "scan-targets.txt"  # round-robin over the servers
        spread_file.write_text("".join(f"{endpoints[i % count]} localhost\n" for i in range(n)))
        blocks_file = bench.logdir / "scan-targets-in-connect-order.txt"  # N/S to each server in turn
        blocks_file.write_text("".join(f"{endpoints[i // (n // count)]} localhost\n" for i in range(n)))
        scan_out = bench.logdir / "scan-out.jsonl"

        def scan_cmd(targets: Path) -> list:
            return [QUICPROBE, "scan", "--targets", targets, "--concurrency", k, "--alpn", "hq-interop",
                    "--cacert", ROOTS]
        connect_cmd = [QUICPROBE, "-q", "connect", "--alpn", "hq-interop", "--repeat", n // count,
                       "--concurrency", k, "--json", "--cacert", ROOTS, "--sni", "localhost", *endpoints]
        lab = {"servers": count, "endpoints": endpoints, "server_command": servers[0][0].command,
               "targets": n, "in_flight": k, "nofile_soft": soft, "nofile_hard": hard}
        es = bench.entry("scan/lab/quicprobe-scan", "scan", "quicprobe scan", f"lab ×{count}",
                         cmdline(scan_cmd(spread_file)).replace(str(bench.logdir), "$TMP"), **lab)
        eb = bench.entry("scan/lab/quicprobe-scan-connect-order", "scan", "quicprobe scan", f"lab ×{count}",
                         cmdline(scan_cmd(blocks_file)).replace(str(bench.logdir), "$TMP"), **lab)
        ec = bench.entry("scan/lab/quicprobe-connect-repeat", "scan", "quicprobe connect --repeat",
                         f"lab ×{count}", cmdline(connect_cmd), **lab)
        timeout = 60 + n * 0.02

        def server_cpu() -> float:
            return sum(server.cpu_s() for server, _, _ in servers)

        def client(r: dict, sampler: Sampler, cpu0: float, drops0: int) -> dict:
            return {
                "targets_per_second": n / r["wall_s"],
                "wall_s": r["wall_s"],
                "peak_rss_mib": r["maxrss_kib"] / MIB,
                "sampled_max_vmrss_mib": max((s["vmrss_kib"] for s in sampler.samples), default=0) / MIB,
                **sampler.fds(),
                "client_user_s": r["user_s"],
                "client_sys_s": r["sys_s"],
                "client_cpu_ms_per_target": r["cpu_s"] / n * 1000,
                "client_cpu_share": r["cpu_s"] / r["wall_s"],
                "server_cpu_ms_per_target": (server_cpu() - cpu0) / n * 1000,
                "udp_rcvbuf_errors": udp_rcvbuf_errors() - drops0,
                "samples": len(sampler.samples),
                "client_soft_nofile": sampler.soft_limit,
            }

        def scan_once(targets: Path) -> dict:
            sampler = Sampler(lines_of=scan_out)
            cpu0, drops0 = server_cpu(), udp_rcvbuf_errors()
            r = run(scan_cmd(targets), timeout=timeout, stdout_path=scan_out, watch=sampler)
            result = client(r, sampler, cpu0, drops0)
            handshakes, done, outcomes = [], [], {}
            summary = None
            with open(scan_out) as f:
                for line in f:
                    d = json.loads(line)
                    if "summary" in d:
                        summary = d["summary"]
                        continue
                    outcomes[d.get("outcome")] = outcomes.get(d.get("outcome"), 0) + 1
                    if d.get("handshake_ms") is not None:
                        handshakes.append(d["handshake_ms"])
                    done += [s["t_ms"] for s in d.get("stages", []) if s.get("name") == "handshake_done"]
            if summary is None:
                raise Failed(f"no summary line (exit {r['rc']}): {r['stderr'][-300:]}")
            ok = outcomes.get("ok", 0)
            if ok == 0:
                raise Failed(f"no target succeeded (exit {r['rc']}): {outcomes} {r['stderr'][-300:]}")
            if ok != n:
                say(f"scan: {n - ok}/{n} targets failed: { {o: c for o, c in outcomes.items() if o != 'ok'} }")
            handshakes.sort()
            result.update({
                "ok": ok,
                "failed": n - ok,
                "outcomes": outcomes,
                "exit_code": r["rc"],
                "fd_growth": sampler.growth("fds", n, k),
                "rss_growth_mib": None if (g := sampler.growth("vmrss_kib", n, k)) is None else g / MIB,
                # client_finished_sent (handshake_ms) to HANDSHAKE_DONE is the server's turn
                "median_handshake_done_ms": statistics.median(done) if done else None,
                "scan_elapsed_ms": summary["elapsed_ms"],
                "median_handshake_ms": statistics.median(handshakes) if handshakes else None,
                "p90_handshake_ms": handshakes[int(len(handshakes) * 0.9)] if handshakes else None,
                "output_mib": scan_out.stat().st_size / 2**20,
                "stderr": r["stderr"][-300:],
            })
            scan_out.unlink()
            return result

        def connect_once() -> dict:
            sampler = Sampler()
            cpu0, drops0 = server_cpu(), udp_rcvbuf_errors()
            r = run(connect_cmd, timeout=timeout, watch=sampler)
            result = client(r, sampler, cpu0, drops0)
            d = last_json(r["stdout"])
            ok = d.get("successes") or 0
            if ok == 0:
                raise Failed(f"no handshake succeeded (exit {r['rc']}): {r['stderr'][-300:]}")
            if ok != n:
                say(f"connect --repeat: {n - ok}/{n} handshakes failed")
            result.update({
                "ok": ok,
                "failed": n - ok,
                "exit_code": r["rc"],
                "median_handshake_ms": d.get("median_handshake_ms"),
                "p90_handshake_ms": d.get("p90_handshake_ms"),
                "handshakes_per_second_reported": d.get("handshakes_per_second"),
            })
            return result

        for i in range(runs):
            for e, once in ((es, lambda: scan_once(spread_file)), (ec, connect_once),
                            (eb, lambda: scan_once(blocks_file))):
                say(f"{e['id']} run {i + 1}/{runs}")
                bench.attempt(e, once)
                time.sleep(0.5)
    finally:
        for server, _, _ in servers:
            server.stop()
    summarise(es)
    summarise(ec)
    summarise(eb)
    bench.ratios.append(ratio("scan/lab/scan-over-connect-repeat",
                              f"scan of {n:,} targets at {k:,} in flight over {count} lab servers: targets/s "
                              f"/ `connect --repeat`'s handshakes/s against the same servers",
                              es, ec, "targets_per_second"))
    bench.ratios.append(ratio("scan/lab/scan-in-connect-order-over-connect-repeat",
                              f"the same scan, its targets in `connect --repeat`'s order ({n // count:,} to "
                              f"each server in turn): targets/s / `connect --repeat`'s", eb, ec, "targets_per_second"))
    # On this shared 2-core machine the rates swing with everything else that runs; the
    # client's own CPU per target does not, and bounds the rate wherever the client is
    # the bottleneck.
    bench.ratios.append(ratio("scan/lab/connect-repeat-cpu-over-scan-cpu",
                              "client CPU per target: `connect --repeat`'s / the scan's (the rate ratio where "
                              "the client's CPU bounds both)", ec, es, "client_cpu_ms_per_target"))
