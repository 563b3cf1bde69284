"""Case `bulk`: one hq-interop download (`GET /N`) from the lab and from the
msquic server, quicprobe (`get`) next to aioquic (scripts/aioquic/bench.py
download), and raw loopback UDP at the same datagram size two ways: iperf3 -u
(one datagram per system call) and udp_gso.py beside this folder (GSO and GRO).
With the AEAD's open of the same bytes (cases/floors.py), udp_gso.py's receiver
is issue 18's download floor; the client's CPU per GB is divided by it.
"""

import json
import time

from cases.floors import aead_floor, download_floor
from harness import (AIOQUIC_BENCH, DATAGRAM, MB, QUICPROBE, ROOT, ROOTS, VENV_PYTHON, Bench, Failed,
                     Server, cmdline, free_port, last_json, ratio, run, say, summarise)


def measure(bench: Bench, servers: dict) -> None:
    runs, size, asize = bench.cfg["runs"], bench.cfg["bulk_bytes"], bench.cfg["aioquic_bulk_bytes"]
    iperf_port = free_port()
    iperf_server = Server("iperf3", ["iperf3", "-s", "-B", "127.0.0.1", "-p", iperf_port, "--forceflush"],
                          bench.logdir)
    jobs = []
    for sname, (server, port) in servers.items():
        command, once = quicprobe_get(server, port, size)
        jobs.append((bench.entry(f"bulk/{sname}/quicprobe", "bulk", "quicprobe", sname, command, bytes=size), once))
    for sname, (server, port) in servers.items():
        command, once = aioquic_get(server, port, asize)
        jobs.append((bench.entry(f"bulk/{sname}/aioquic", "bulk", "aioquic", sname, command, bytes=asize), once))
    command, once = iperf3(iperf_port, bench.cfg["udp_seconds"])
    jobs.append((bench.entry("bulk/raw-udp/iperf3", "bulk", "raw-udp", None, command,
                             server_command=iperf_server.command, datagram_bytes=DATAGRAM,
                             seconds=bench.cfg["udp_seconds"]), once))
    command, once = raw_udp_gso(bench.cfg["udp_seconds"])
    jobs.append((bench.entry("bulk/raw-udp-gso/python", "bulk", "raw-udp-gso", None, command,
                             datagram_bytes=DATAGRAM, seconds=bench.cfg["udp_seconds"]), once))
    command, once = aead_floor(bench.cfg["floor_aead_bytes"])
    jobs.append((bench.entry("bulk/floor/aead", "bulk", "floor", None, command), once))
    try:
        for i in range(runs):
            for e, once in jobs:
                say(f"{e['id']} run {i + 1}/{runs}")
                bench.attempt(e, once)
                time.sleep(0.3)
    finally:
        iperf_server.stop()
    for e, _ in jobs:
        summarise(e)
    floors = {sname: summarise(download_floor(bench, sname)) for sname in servers}
    udp = bench.get("bulk/raw-udp/iperf3")
    udp_gso = bench.get("bulk/raw-udp-gso/python")
    for sname in servers:
        q, a = bench.get(f"bulk/{sname}/quicprobe"), bench.get(f"bulk/{sname}/aioquic")
        bench.ratios.append(ratio(f"bulk/{sname}/quicprobe-vs-aioquic",
                                  f"bulk MB/s from {sname}: quicprobe / aioquic", q, a, "mb_per_s"))
        bench.ratios.append(ratio(f"bulk/{sname}/quicprobe-over-floor",
                                  f"bulk from {sname}: quicprobe client CPU per GB / its floor", q, floors[sname],
                                  "client_cpu_s_per_gb", "floor_s_per_gb"))
        bench.ratios.append(ratio(f"bulk/{sname}/aioquic-cpu-over-quicprobe",
                                  f"bulk from {sname}: aioquic client CPU per GB / quicprobe's", a, q,
                                  "client_cpu_s_per_gb"))
        bench.ratios.append(ratio(f"bulk/{sname}/quicprobe-share-of-raw-udp",
                                  f"bulk MB/s from {sname}: quicprobe / raw UDP goodput", q, udp, "mb_per_s"))
        bench.ratios.append(ratio(f"bulk/{sname}/aioquic-share-of-raw-udp",
                                  f"bulk MB/s from {sname}: aioquic / raw UDP goodput", a, udp, "mb_per_s"))
        bench.ratios.append(ratio(f"bulk/{sname}/quicprobe-share-of-raw-udp-gso",
                                  f"bulk MB/s from {sname}: quicprobe / raw UDP goodput with GSO and GRO",
                                  q, udp_gso, "mb_per_s"))


# What `get` prints after the download: -w, not --json, so that the run is the
# one the issue measures (hq-interop, -o /dev/null, nobody asking for the body's
# digest: --json would hash every byte, issue 18).
WRITE_OUT = ('{"exit_code":%{exit_code},"size_download":%{size_download},'
             '"time_total":%{time_total},"cipher":"%{tls_cipher}"}\n')


def quicprobe_get(server: Server, port: int, size: int, binary=QUICPROBE):
    cmd = [binary, "-q", "get", "--alpn", "hq-interop", "-o", "/dev/null", "-w", WRITE_OUT,
           "--cacert", ROOTS, "--resolve", f"localhost:{port}:127.0.0.1",
           f"https://localhost:{port}/{size}"]

    def once() -> dict:
        cpu0 = server.cpu_s()
        r = run(cmd, timeout=60 + size / 2e6)
        server_cpu = server.cpu_s() - cpu0
        d = last_json(r["stdout"])
        if r["rc"] != 0 or d.get("exit_code") != 0 or d.get("size_download") != size:
            raise Failed(f"exit {r['rc']}, {d}: {r['stderr'][-300:]}")
        seconds = d["time_total"]  # the connection's first packet to its end
        return {
            "mb_per_s": size / seconds / MB,
            "seconds": seconds,
            "process_wall_s": r["wall_s"],
            "client_cpu_s_per_gb": r["cpu_s"] / (size / 1e9),
            "server_cpu_s_per_gb": server_cpu / (size / 1e9),
            "cipher": d.get("cipher"),
            "client_maxrss_kib": r["maxrss_kib"],
        }
    return cmdline(cmd), once


def aioquic_get(server: Server, port: int, size: int):
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


def iperf3(port: int, seconds: float):
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


def raw_udp_gso(seconds: float):
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
