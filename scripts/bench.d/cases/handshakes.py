"""Cases `sequential` and `concurrent`: full handshakes with strict
verification against the lab and the msquic server, quicprobe (`connect
--repeat N --concurrency K`) next to aioquic (scripts/aioquic/bench.py
handshakes). Sequential also runs quicprobe offering X25519 only, as aioquic does. Each
round of runs also measures the handshake's floor (cases/floors.py), and the
client's CPU per handshake is divided by it run by run.
"""

import time

from cases.floors import handshake_floor
from harness import (AIOQUIC_BENCH, QUICPROBE, ROOTS, VENV_PYTHON, Bench, Failed, Server, cmdline,
                     last_json, ratio, run, say, summarise)


def sequential(bench: Bench, servers: dict) -> None:
    cfg = bench.cfg
    handshake_case(bench, "sequential", servers, cfg["sequential_handshakes"], 1, cfg["sequential_handshakes"],
                   variants=True)


def concurrent(bench: Bench, servers: dict) -> None:
    cfg = bench.cfg
    handshake_case(bench, "concurrent", servers, cfg["concurrent_handshakes"], cfg["concurrent_in_flight"],
                   cfg["aioquic_concurrent_handshakes"], variants=False)


def quicprobe_handshakes(server: Server, port: int, n: int, k: int, extra: list | None = None,
                         binary=QUICPROBE):
    cmd = [binary, "-q", "connect", "--alpn", "hq-interop", *(extra or []),
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


def aioquic_handshakes(server: Server, port: int, n: int, k: int):
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


def handshake_case(bench: Bench, case: str, servers: dict, n: int, k: int, n_aioquic: int, variants: bool) -> None:
    runs = bench.cfg["runs"]
    jobs = []
    for sname, (server, port) in servers.items():
        clients = [("quicprobe", *quicprobe_handshakes(server, port, n, k))]
        if variants:
            clients.append(("quicprobe-x25519", *quicprobe_handshakes(server, port, n, k, ["--curves", "X25519"])))
        clients.append(("aioquic", *aioquic_handshakes(server, port, n_aioquic, k)))
        for client, command, once in clients:
            e = bench.entry(f"{case}/{sname}/{client}", case, client, sname, command,
                            handshakes=n_aioquic if client == "aioquic" else n, in_flight=k)
            jobs.append((e, once))
    command, once = handshake_floor(bench.cfg["floor_iterations"])
    floor = bench.entry(f"{case}/floor/boringssl", case, "floor", None, command)
    jobs.append((floor, once))
    for i in range(runs):
        for e, once in jobs:
            say(f"{e['id']} run {i + 1}/{runs}")
            bench.attempt(e, once)
            time.sleep(0.3)
    for e, _ in jobs:
        summarise(e)
    for sname in servers:
        q, a = bench.get(f"{case}/{sname}/quicprobe"), bench.get(f"{case}/{sname}/aioquic")
        bench.ratios.append(ratio(f"{case}/{sname}/quicprobe-vs-aioquic",
                                  f"{case} handshakes/s against {sname}: quicprobe / aioquic",
                                  q, a, "handshakes_per_second"))
        if variants:
            x = bench.get(f"{case}/{sname}/quicprobe-x25519")
            bench.ratios.append(ratio(f"{case}/{sname}/quicprobe-x25519-vs-aioquic",
                                      f"{case} handshakes/s against {sname}: quicprobe offering X25519 only (as aioquic) / aioquic",
                                      x, a, "handshakes_per_second"))
    floor_ratios(bench, case, servers, variants)


def floor_ratios(bench: Bench, case: str, servers: dict, variants: bool) -> None:
    """Issue 18: quicprobe's CPU per handshake over its floor (target ≤ 1.5×),
    and aioquic's over quicprobe's (target ≥ 10×), for each key exchange."""
    floor = bench.get(f"{case}/floor/boringssl")
    groups = [("quicprobe", "X25519MLKEM768", "floor_x25519mlkem768_ms")]
    if variants:
        groups.append(("quicprobe-x25519", "X25519", "floor_x25519_ms"))
    for sname in servers:
        a = bench.get(f"{case}/{sname}/aioquic")
        for client, group, floor_metric in groups:
            q = bench.get(f"{case}/{sname}/{client}")
            bench.ratios.append(ratio(f"{case}/{sname}/{client}-over-floor",
                                      f"{case}, against {sname}: quicprobe ({group}) client CPU per handshake / "
                                      f"its floor", q, floor, "client_cpu_ms_per_handshake", floor_metric))
            bench.ratios.append(ratio(f"{case}/{sname}/aioquic-cpu-over-{client}",
                                      f"{case}, against {sname}: aioquic client CPU per handshake / quicprobe's "
                                      f"({group})", a, q, "client_cpu_ms_per_handshake"))
