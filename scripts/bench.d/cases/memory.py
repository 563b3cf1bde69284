"""Case `memory`: the RSS of one quicprobe process holding 1 and then N idle
established connections to the lab (`connect --hold`); per connection, the
difference over N - 1, run by run.
"""

import os
import subprocess
import time

from harness import (QUICPROBE, ROOT, ROOTS, Bench, Failed, Server, cmdline, die_with_parent, lab_server,
                     proc_rss_kib, say, summarise)


def holding(binary, lab: Server, port: int, count: int) -> tuple[str, callable]:
    """A client holding `count` idle connections to `lab` (which must log its
    handshakes: not quiet), and a function that runs it once and returns its
    memory once every connection is established and idle."""
    cmd = [binary, "-q", "connect", "--alpn", "hq-interop", "--repeat", count,
           "--concurrency", count, "--hold", 30, "--json", "--cacert", ROOTS,
           "--resolve", f"localhost:{port}:127.0.0.1", f"localhost:{port}"]

    def once() -> dict:
        before = lab.count(": handshake done")
        child = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, cwd=ROOT, preexec_fn=die_with_parent)
        try:
            deadline = time.monotonic() + 30
            while lab.count(": handshake done") - before < count:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise Failed(f"only {lab.count(': handshake done') - before}/{count} "
                                 f"connections established (client exit {child.returncode})")
                time.sleep(0.1)
            # All established and idle (the lab's idle timeout is 10 s):
            # settle, then the highest of a few samples.
            time.sleep(1.0)
            samples = []
            for _ in range(4):
                samples.append(proc_rss_kib(child.pid))
                time.sleep(0.25)
            if child.poll() is not None:
                raise Failed("the client ended before its RSS was read")
            return {
                "vmrss_kib": max(s["VmRSS"] for s in samples),
                "rss_anon_kib": max(s["RssAnon"] for s in samples),
                "rss_file_kib": max(s["RssFile"] for s in samples),
                "open_fds": len(os.listdir(f"/proc/{child.pid}/fd")),
            }
        finally:
            if child.poll() is None:
                child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return cmdline(cmd), once


def measure(bench: Bench) -> None:
    runs, n = bench.cfg["runs"], bench.cfg["idle_connections"]
    lab, port = lab_server(bench.logdir, "lab-memory", quiet=False)
    try:
        def held(count: int) -> tuple[str, callable]:
            return holding(QUICPROBE, lab, port, count)

        one_cmd, one = held(1)
        many_cmd, many = held(n)
        e1 = bench.entry("memory/lab/quicprobe-1", "memory", "quicprobe", "lab", one_cmd, connections=1,
                         server_command=lab.command)
        en = bench.entry(f"memory/lab/quicprobe-{n}", "memory", "quicprobe", "lab", many_cmd, connections=n,
                         server_command=lab.command)
        for i in range(runs):
            for e, once in ((e1, one), (en, many)):
                say(f"{e['id']} run {i + 1}/{runs}")
                bench.attempt(e, once)
                time.sleep(0.5)
    finally:
        lab.stop()
    summarise(e1)
    summarise(en)
    per = bench.entry("memory/lab/quicprobe-per-connection", "memory", "quicprobe", "lab",
                      f"(VmRSS with {n} held - VmRSS with 1 held) / {n - 1}, run by run", connections=n)
    for a, b in zip(en["runs"], e1["runs"]):
        if a.get("error") or b.get("error"):
            per["runs"].append({"error": a.get("error") or b.get("error")})
        else:
            per["runs"].append({
                "kib_per_connection": (a["vmrss_kib"] - b["vmrss_kib"]) / (n - 1),
                "anon_kib_per_connection": (a["rss_anon_kib"] - b["rss_anon_kib"]) / (n - 1),
            })
    summarise(per)
