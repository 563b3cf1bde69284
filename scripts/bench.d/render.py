#!/usr/bin/env python3
"""Writes the tables of docs/benchmarks.md from bench/results.json.

  render.py RESULTS DOC_IN DOC_OUT   replace every block between
                                     <!-- bench:NAME --> and <!-- /bench:NAME -->
  render.py --summary RESULTS        a short plain-text summary on stdout

Only the text between the markers is generated; everything else in the page
(the method, the analysis) is left as it is. A marker pair missing from the
page, or a block name the page does not know, is an error (exit 2).
"""

import json
import re
import sys
from pathlib import Path


def num(v, unit: str = "") -> str:
    if v is None:
        return "—"
    if v == 0:
        return "0" + unit
    a = abs(v)
    if float(v).is_integer() and a >= 1:
        return f"{v:,.0f}{unit}"
    text = f"{v:,.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 0.1 else f"{v:.3f}"
    return text + unit


def spread(s: dict | None, unit: str = "", scale: float = 1.0) -> str:
    if not s:
        return "—"
    med, lo, hi = s["median"] * scale, s["min"] * scale, s["max"] * scale
    return f"{num(med, unit)} ({num(lo)}–{num(hi)})"


def pct(v) -> str:
    return "—" if v is None else f"{v * 100:.0f} %"


def ratio_text(r: dict | None, as_percent: bool = False) -> str:
    if not r or r.get("median") is None:
        return "—"
    if r.get("min") is None:  # criterion against criterion: medians only
        return f"{r['median'] * 100:.0f} %" if as_percent else f"{r['median']:.2f}×"
    if as_percent:
        return f"{r['median'] * 100:.0f} % ({r['min'] * 100:.0f}–{r['max'] * 100:.0f})"
    return f"{r['median']:.2f}× ({r['min']:.2f}–{r['max']:.2f})"


class Doc:
    def __init__(self, data: dict) -> None:
        self.d = data
        self.by_id = {e["id"]: e for e in data["results"]}
        self.ratios = {r["id"]: r for r in data["ratios"]}

    def s(self, rid: str, metric: str) -> dict | None:
        e = self.by_id.get(rid)
        return (e or {}).get("summary", {}).get(metric)

    def ok(self, rid: str) -> str:
        e = self.by_id.get(rid)
        if not e:
            return "—"
        n = len(e["runs"])
        return f"{n - e.get('failed_runs', 0)}/{n}"

    # -- blocks
    def machine(self) -> str:
        m, v, st = self.d["machine"], self.d["versions"], self.d["settings"]
        lines = [
            f"Run of {self.d['date']}, `scripts/bench{' --quick' if self.d['mode'] == 'quick' else ''}` "
            f"({self.d['mode']}: {st['runs']} runs of each case, {self.d['duration_seconds'] // 60} min "
            f"{self.d['duration_seconds'] % 60} s in all).",
            "",
            "| machine | |",
            "|---|---|",
            f"| CPU | {m['cpu_model']}, {m['cores']} cores{' (virtual machine)' if m.get('virtualised') else ''} |",
            f"| memory | {m['memory_gib']} GiB |",
            f"| kernel | {m['kernel']} |",
            f"| OS | {m['os']} |",
            f"| load average at start / end | {' '.join(map(str, m['load_average_at_start']))} / "
            f"{' '.join(map(str, m['load_average_at_end']))} |",
            "",
            "| software | version |",
            "|---|---|",
        ]
        lines += [f"| {k} | {val} |" for k, val in v.items()]
        for p in self.d.get("partial_runs", []):
            cases = ",".join(p["cases"])
            lines += ["", f"Case{'s' if len(p['cases']) > 1 else ''} `{cases}`: run of {p['date']} "
                          f"(`scripts/bench{' --quick' if self.d['mode'] == 'quick' else ''} --only {cases}`, "
                          f"{p['duration_seconds'] // 60} min {p['duration_seconds'] % 60} s; load average at start "
                          f"/ end {' '.join(map(str, p['load_average_at_start']))} / "
                          f"{' '.join(map(str, p['load_average_at_end']))}; quicprobe "
                          f"{' '.join(p['quicprobe'].split())}), merged into this run's results: its tables are "
                          f"that run's, the others this one's."]
        return "\n".join(lines)

    def targets(self) -> str:
        lines = ["| measure | floor / peer, measured in the same run | target | measured ratio | met |",
                 "|---|---|---|---|---|"]
        for t in self.d["targets"]:
            if t["unit"] == "×":
                measured = "; ".join(f"{num(v)}× ({k})" for k, v in t["measured"].items())
            elif t["unit"] == "mixed":  # each value its own unit, named by its label
                measured = "; ".join(f"{k} {num(v) if v else '0'}{t['units'][k]}" for k, v in t["measured"].items()
                                     if v is not None)
            else:
                measured = "; ".join(num(v, " " + t["unit"]) for v in t["measured"].values())
            measured = measured or t.get("note", "—")
            met = {True: "yes", False: "**no**", None: "no figure"}[t["met"]]
            lines.append(f"| {t['measure']} | {t['floor']} | {t['target']} | {measured} | {met} |")
        return "\n".join(lines) + "\n\n" + self.floors()

    def floors(self) -> str:
        """The floors themselves, each component, so that a ratio can be checked."""
        lines = ["| floor | component | median (min–max over the runs) |", "|---|---|---|"]
        parts = [("x25519_share_us", "X25519 key share and shared secret", " µs"),
                 ("mlkem768_share_us", "ML-KEM-768 key generation and decapsulation", " µs"),
                 ("chain_signatures_us", "the chain's signatures (`X509::verify` × 2)", " µs"),
                 ("certificate_verify_us", "CertificateVerify (ECDSA P-256, SHA-256)", " µs"),
                 ("floor_x25519mlkem768_ms", "**handshake floor, X25519MLKEM768**", " ms"),
                 ("floor_x25519_ms", "**handshake floor, X25519**", " ms")]
        for case in ("sequential", "concurrent"):
            rid = f"{case}/floor/boringssl"
            if rid in self.by_id:
                lines += [f"| {case} | {label} | {spread(self.s(rid, key), unit)} |" for key, label, unit in parts]
        for server in ("lab", "msquic"):
            rid = f"bulk/floor/{server}"
            if rid in self.by_id:
                e = self.by_id[rid]
                lines += [f"| bulk from {server} | receiving with GRO (udp_gso.py's receiver) | "
                          f"{spread(self.s(rid, 'receive_s_per_gb'), ' s/GB')} |",
                          f"| bulk from {server} | {e.get('cipher', '?').upper().replace('_', '-')} open, 1200 B "
                          f"records | {spread(self.s(rid, 'aead_s_per_gb'), ' s/GB')} |",
                          f"| bulk from {server} | **download floor** | {spread(self.s(rid, 'floor_s_per_gb'), ' s/GB')} |"]
        rid = "verifier/ecdsa-p256-3-certs/chain-signatures"
        if rid in self.by_id:
            lines.append(f"| verifier | the chain's signatures (criterion) | {spread(self.s(rid, 'us'), ' µs')} |")
        return "\n".join(lines)

    def handshakes(self, case: str) -> str:
        st = self.d["settings"]
        clients = [("quicprobe", "quicprobe"), ("quicprobe-x25519", "quicprobe `--curves X25519`"), ("aioquic", "aioquic")]
        lines = [
            "| server | client | handshakes | in flight | handshakes/s | handshake ms (median of medians) | p90 ms | client CPU ms / handshake | server CPU ms / handshake | runs ok |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for server in ("lab", "msquic"):
            for cid, label in clients:
                rid = f"{case}/{server}/{cid}"
                e = self.by_id.get(rid)
                if not e:
                    continue
                lines.append(
                    f"| {server} | {label} | {e['handshakes']} | {e['in_flight']} | "
                    f"{spread(self.s(rid, 'handshakes_per_second'))} | "
                    f"{num((self.s(rid, 'median_handshake_ms') or {}).get('median'))} | "
                    f"{num((self.s(rid, 'p90_handshake_ms') or {}).get('median'))} | "
                    f"{spread(self.s(rid, 'client_cpu_ms_per_handshake'))} | "
                    f"{spread(self.s(rid, 'server_cpu_ms_per_handshake'))} | {self.ok(rid)} |")
        lines += ["", "| ratio | median (run-by-run min–max) |", "|---|---|"]
        for r in self.d["ratios"]:
            if r["id"].startswith(case + "/"):
                lines.append(f"| {r['what']} | {ratio_text(r)} |")
        return "\n".join(lines)

    def med(self, rid: str, metric: str):
        return (self.s(rid, metric) or {}).get("median")

    def sequential(self) -> str:
        lines = []
        for server in ("lab", "msquic"):
            server_ms = self.med(f"sequential/{server}/quicprobe", "server_cpu_ms_per_handshake")
            peer = self.med(f"sequential/{server}/aioquic", "handshakes_per_second")
            client_ms = self.med(f"sequential/{server}/quicprobe", "client_cpu_ms_per_handshake")
            if server_ms and peer and client_ms:
                lines.append(
                    f"- against {server}: 20× aioquic would be {num(20 * peer)}/s, {num(1000 / (20 * peer))} ms "
                    f"per handshake for client, server and loopback together; the server alone takes "
                    f"{num(server_ms)} ms of CPU per handshake, so even a client costing nothing would stop at "
                    f"{num(1000 / server_ms)}/s ({num(1000 / server_ms / peer)}× aioquic). quicprobe's own CPU "
                    f"per handshake is {num(client_ms)} ms, aioquic's "
                    f"{num(self.med(f'sequential/{server}/aioquic', 'client_cpu_ms_per_handshake'))} ms.")
        block = self.handshakes("sequential")
        return block + ("\n\nBounds, from the medians above:\n\n" + "\n".join(lines) if lines else "")

    def concurrent(self) -> str:
        lines = []
        for server in ("lab", "msquic"):
            client_ms = self.med(f"concurrent/{server}/quicprobe", "client_cpu_ms_per_handshake")
            if client_ms:
                lines.append(
                    f"- against {server}: quicprobe's one thread spends {num(client_ms)} ms of CPU per handshake, "
                    f"so one thread tops out near {num(1000 / client_ms)}/s however idle the other core; 1500/s needs "
                    f"≤ {num(1000 / 1500)} ms.")
        block = self.handshakes("concurrent")
        return block + ("\n\nBounds, from the medians above:\n\n" + "\n".join(lines) if lines else "")

    def bulk(self) -> str:
        lines = [
            "| from | client | size | MB/s | client CPU s / GB | server CPU s / GB | share of raw UDP | runs ok |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for server in ("lab", "msquic"):
            for client in ("quicprobe", "aioquic"):
                rid = f"bulk/{server}/{client}"
                e = self.by_id.get(rid)
                if not e:
                    continue
                share = self.ratios.get(f"bulk/{server}/{client}-share-of-raw-udp")
                lines.append(
                    f"| {server} | {client} | {mib(e['bytes'])} | {spread(self.s(rid, 'mb_per_s'))} | "
                    f"{spread(self.s(rid, 'client_cpu_s_per_gb'))} | {spread(self.s(rid, 'server_cpu_s_per_gb'))} | "
                    f"{ratio_text(share, as_percent=True)} | {self.ok(rid)} |")
        lines += filter(None, [
            self.raw_udp_row("bulk/raw-udp/iperf3", "raw UDP (iperf3 -u", "—", "100 %"),
            self.raw_udp_row("bulk/raw-udp-gso/python", "raw UDP with GSO and GRO (scripts/bench.d/udp_gso.py",
                             None, "—"),
        ])
        lines += ["", "| ratio | median (run-by-run min–max) |", "|---|---|"]
        for r in self.d["ratios"]:
            if r["id"].startswith("bulk/"):
                lines.append(f"| {r['what']} | {ratio_text(r, as_percent='share' in r['id'])} |")
        bounds = []
        udp = self.med("bulk/raw-udp/iperf3", "mb_per_s")
        for server in ("lab", "msquic"):
            c = self.med(f"bulk/{server}/quicprobe", "client_cpu_s_per_gb")
            sv = self.med(f"bulk/{server}/quicprobe", "server_cpu_s_per_gb")
            peer = self.med(f"bulk/{server}/aioquic", "mb_per_s")
            if c and sv and peer:
                bounds.append(
                    f"- from {server}: quicprobe's CPU per GB alone caps it near {num(1000 / c)} MB/s, the server's "
                    f"near {num(1000 / sv)} MB/s (each has one core of the two, and the kernel's loopback work is "
                    f"charged to both); 30× aioquic would be {num(30 * peer)} MB/s"
                    + (f", {num(30 * peer / udp)}× the raw UDP goodput of {num(udp)} MB/s." if udp else "."))
        if bounds:
            lines += ["", "Bounds, from the medians above:", ""] + bounds
        return "\n".join(lines)

    def raw_udp_row(self, rid: str, label: str, receiver_cpu: str | None, share: str) -> str | None:
        """One raw-UDP peer's row of the bulk table; `receiver_cpu` None means measured."""
        e = self.by_id.get(rid)
        if not e:
            return None
        sent = num((self.s(rid, "sent_mb_per_s") or {}).get("median"))
        lost = num((self.s(rid, "lost_percent") or {}).get("median"))
        receiver = receiver_cpu or f"{spread(self.s(rid, 'receiver_cpu_s_per_gb'))} (receiver)"
        return (f"| loopback | {label}, {e['datagram_bytes']} B datagrams, {e['seconds']} s) | — | "
                f"{spread(self.s(rid, 'mb_per_s'))} received (sent {sent}, lost {lost} %) | "
                f"{spread(self.s(rid, 'client_cpu_s_per_gb'))} (sender) | {receiver} | {share} | {self.ok(rid)} |")

    def memory(self) -> str:
        n = self.d["settings"]["idle_connections"]
        lines = ["| connections held idle | VmRSS KiB | RssAnon KiB | open fds | runs ok |", "|---|---|---|---|---|"]
        for count in (1, n):
            rid = f"memory/lab/quicprobe-{count}"
            lines.append(f"| {count} | {spread(self.s(rid, 'vmrss_kib'))} | {spread(self.s(rid, 'rss_anon_kib'))} | "
                         f"{num((self.s(rid, 'open_fds') or {}).get('median'))} | {self.ok(rid)} |")
        rid = "memory/lab/quicprobe-per-connection"
        lines += ["", f"**Per idle connection: {spread(self.s(rid, 'kib_per_connection'), ' KiB')}** "
                      f"(anonymous memory only: {spread(self.s(rid, 'anon_kib_per_connection'), ' KiB')}), "
                      f"= (VmRSS with {n} held − VmRSS with 1 held) / {n - 1}, run by run."]
        return "\n".join(lines)

    def scan(self) -> str:
        rs, rc = "scan/lab/quicprobe-scan", "scan/lab/quicprobe-connect-repeat"
        e = self.by_id.get(rs)
        if not e:
            return "Not measured in this run (`scripts/bench --only scan` measures it alone)."
        rb = "scan/lab/quicprobe-scan-connect-order"
        clients = [(rid, label) for rid, label in ((rs, "`scan`"), (rc, "`connect --repeat`"),
                                                    (rb, "`scan`, targets in `connect`'s order"))
                   if rid in self.by_id]
        lines = [f"{e['targets']:,} targets at {e['in_flight']:,} in flight against {e['servers']} lab servers "
                 f"({', '.join(e['endpoints'])}), each `connect --repeat` target {e['targets'] // e['servers']:,} "
                 "times.", "",
                 "| client | targets/s | wall s | client CPU ms / target | its user / sys s | client CPU / wall "
                 "| server CPU ms / target | handshake ms (median of medians) | p90 ms | HANDSHAKE_DONE at, ms "
                 "| UDP receive drops | targets failed | runs ok |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for rid, label in clients:
            lines.append(
                f"| {label} | {spread(self.s(rid, 'targets_per_second'))} | {spread(self.s(rid, 'wall_s'))} | "
                f"{spread(self.s(rid, 'client_cpu_ms_per_target'))} | {num(self.med(rid, 'client_user_s'))} / "
                f"{num(self.med(rid, 'client_sys_s'))} | {spread(self.s(rid, 'client_cpu_share'), ' %', 100)} | "
                f"{spread(self.s(rid, 'server_cpu_ms_per_target'))} | {num(self.med(rid, 'median_handshake_ms'))} | "
                f"{num(self.med(rid, 'p90_handshake_ms'))} | {num(self.med(rid, 'median_handshake_done_ms'))} | "
                f"{spread(self.s(rid, 'udp_rcvbuf_errors'))} | "
                f"{sum(r.get('failed', 0) for r in self.by_id[rid]['runs'] if not r.get('error'))} | {self.ok(rid)} |")
        lines += ["", "| client | peak RSS MiB (VmHWM) | highest VmRSS sampled, MiB | open fds at the first sample | "
                      "most open fds | fd growth over the steady state | VmRSS growth over it, MiB |",
                  "|---|---|---|---|---|---|---|"]
        for rid, label in clients:
            growth = [r["fd_growth"] for r in self.by_id[rid]["runs"] if r.get("fd_growth") is not None]
            lines.append(
                f"| {label} | {spread(self.s(rid, 'peak_rss_mib'))} | {spread(self.s(rid, 'sampled_max_vmrss_mib'))} | "
                f"{spread(self.s(rid, 'fds_first'))} | {spread(self.s(rid, 'fds_max'))} | "
                f"{', '.join(map(str, growth)) + ' (run by run)' if growth else '— (no progress to sample)'} | "
                f"{spread(self.s(rid, 'rss_growth_mib'))} |")
        r = self.ratios.get("scan/lab/scan-over-connect-repeat")
        row = next((t for t in self.d["targets"] if t["measure"].startswith("`scan`")), None)
        if row and row["measured"]:
            m = row["measured"]

            def verdict(ok: bool | None) -> str:
                return "—" if ok is None else "yes" if ok else "**no**"
            lines += ["", "| target | measured | met |", "|---|---|---|",
                      f"| peak RSS ≤ 64 MiB | {spread(self.s(rs, 'peak_rss_mib'), ' MiB')} | "
                      f"{verdict(None if m['peak RSS'] is None else m['peak RSS'] <= 64)} |",
                      f"| no fd growth | most over the runs: {m['fd growth']} | "
                      f"{verdict(None if m['fd growth'] is None else m['fd growth'] <= 0)} |",
                      f"| rate ≥ 0.8× `connect --repeat`'s | {ratio_text(r)} | "
                      f"{verdict(None if m['rate'] is None else m['rate'] >= 0.8)} |",
                      f"| every target succeeds | {m['targets failed']} failed{row['units']['targets failed']} | "
                      f"{verdict(m['targets failed'] == 0)} |"]
        rbo = self.ratios.get("scan/lab/scan-in-connect-order-over-connect-repeat")
        if rbo:
            lines += ["", f"The scan of the same targets in `connect --repeat`'s order (each server's share in "
                          f"turn): {ratio_text(rbo)} `connect --repeat`'s rate. HANDSHAKE_DONE at: the median time "
                          "from the ClientHello to the server's HANDSHAKE_DONE, when the target's slot frees (the "
                          "handshake ms end at the client's Finished)."]
        rcpu = self.ratios.get("scan/lab/connect-repeat-cpu-over-scan-cpu")
        if rcpu:
            lines += ["", f"Client CPU per target, `connect --repeat`'s over the scan's: {ratio_text(rcpu)}, the "
                          "rate ratio where the client's own CPU is what bounds both."]
        soft = self.med(rs, "client_soft_nofile")
        lines += ["", f"Open files: this machine's limits are soft {e['nofile_soft']:,}, hard {e['nofile_hard']:,} "
                      f"(`ulimit -Sn`, `ulimit -Hn`); the connections share one socket per address family, so "
                      f"quicprobe needs no more descriptors for more in flight (it raises its soft limit only "
                      f"for `--qlog-dir`, one file per connection); during the scan the soft limit was "
                      f"{num(soft) if soft else '—'} (/proc/PID/limits)."]
        return "\n".join(lines)

    def verifier(self) -> str:
        lines = [
            "| chain | quicprobe `verify` µs | quicprobe `analyse` µs | aioquic µs | aioquic / quicprobe `verify` |",
            "|---|---|---|---|---|",
        ]
        names = {"ecdsa-p256-3-certs": "ECDSA P-256: leaf + intermediate sent, root trusted (`full-chain`)",
                 "rsa4096-5-certs": "RSA-4096: leaf + 3 intermediates sent, root trusted (`rsa4096-chain`)"}
        for label, name in names.items():
            lines.append(
                f"| {name} | {spread(self.s(f'verifier/{label}/quicprobe-verify', 'us'))} | "
                f"{spread(self.s(f'verifier/{label}/quicprobe-analyse', 'us'))} | "
                f"{spread(self.s(f'verifier/{label}/aioquic', 'us'))} | "
                f"{ratio_text(self.ratios.get(f'verifier/{label}/aioquic-vs-quicprobe'))} |")
        floor = [f"{label} {spread(self.s(f'verifier/{label}/one-signature', 'us'), ' µs')}"
                 for label in ("ecdsa-p256", "rsa4096")]
        lines += ["", "The floor, one certificate signature checked by BoringSSL: " + "; ".join(floor) + "."]
        # Absent from results written before the chain-signatures benchmark existed.
        chain_floor = [f"{label} {spread(self.s(f'verifier/{label}/chain-signatures', 'us'), ' µs')}"
                       for label in names if self.s(f"verifier/{label}/chain-signatures", "us")]
        if chain_floor:
            lines += ["", "The floor of a whole verification, every signature `X509_verify_cert` checks "
                          "for the chain (2 for ECDSA, 4 for RSA-4096), keys already parsed: "
                      + "; ".join(chain_floor) + "."]
        return "\n".join(lines)

    def ratios_block(self) -> str:
        lines = ["| ratio | median (run-by-run min–max) |", "|---|---|"]
        for r in self.d["ratios"]:
            lines.append(f"| {r['what']} | {ratio_text(r, as_percent='share' in r['id'])} |")
        return "\n".join(lines)

    def profiles(self) -> str:
        p = self.d.get("profiles") or {}
        if not p.get("profiles"):
            return p.get("note", "No profile in this run (profile pending).")
        out = [p.get("method", "") + ".", ""]
        for prof in p["profiles"]:
            if prof.get("error"):
                out += [f"`{prof['case']}`: perf failed: {prof['error']}", ""]
                continue
            out += [f"**{prof['case']}** ({prof['samples']} samples; `{prof['command']}`)", ""]
            if "owners" in prof:  # absent from results written before issue 18
                out += [f"The floor's own work (the groups it names) is {prof['floor_percent']:.0f} % of the "
                        f"samples; the {prof['above_floor_percent']:.0f} % above it goes to:", "",
                        "| above the floor | % of the client's CPU |", "|---|---|"]
                out += [f"| {o['owner']} | {o['percent']:.1f} |" for o in prof["owners"] if o["percent"] >= 0.5]
                out += ["", f"Allocation (malloc, free and their internals) is {prof['allocation_percent']:.1f} % of "
                            f"the client's CPU, of which {prof['boringssl_allocation_percent']:.1f} points are "
                            "BoringSSL's own (called from `OPENSSL_malloc`/`OPENSSL_free`, which no Rust allocator "
                            "reaches).", ""]
            out += ["<details><summary>by symbol group, and the top symbols above the floor</summary>", "",
                    "| group | % of the client's CPU |", "|---|---|"]
            out += [f"| {g['group']} | {g['percent']:.1f} |" for g in prof["groups"] if g["percent"] >= 1.0]
            out += ["", "| % | object | owner | symbol |", "|---|---|---|---|"]
            out += [f"| {t['percent']:.1f} | {t['dso']} | {t.get('owner', '')} | `{t['symbol'].replace('|', '¦')}` |"
                    for t in prof["top"][:12]]
            out += ["", "</details>", ""]
        return "\n".join(out).rstrip()

    def commands(self) -> str:
        lines = ["```sh", "# servers"]
        lines += [f"{name}: {cmd}" for name, cmd in self.d.get("servers", {}).items()]
        seen = set()
        for e in self.d["results"]:
            for key in ("server_command",):
                if e.get(key) and e[key] not in seen:
                    seen.add(e[key])
                    lines.append(f"{e['id'].split('/')[0]} server: {e[key]}")
        lines.append("# clients (ports change from run to run)")
        for e in self.d["results"]:
            if e["command"] not in seen:
                seen.add(e["command"])
                lines.append(f"{e['id']}: {e['command']}")
        lines.append("```")
        return "\n".join(lines)


def mib(n: int) -> str:
    return f"{n >> 30} GiB" if n >= 1 << 30 else f"{n >> 20} MiB"


BLOCKS = {
    "machine": Doc.machine,
    "targets": Doc.targets,
    "sequential": Doc.sequential,
    "concurrent": Doc.concurrent,
    "bulk": Doc.bulk,
    "memory": Doc.memory,
    "verifier": Doc.verifier,
    "scan": Doc.scan,
    "ratios": Doc.ratios_block,
    "profiles": Doc.profiles,
    "commands": Doc.commands,
}
MARKER = re.compile(r"(<!-- bench:(\w+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)


def render(data: dict, text: str) -> str:
    doc = Doc(data)
    found = set()

    def replace(m: re.Match) -> str:
        name = m.group(2)
        if name not in BLOCKS:
            sys.exit(f"render.py: unknown block {name!r}")
        found.add(name)
        return m.group(1) + BLOCKS[name](doc).rstrip() + "\n" + m.group(4)

    text = MARKER.sub(replace, text)
    missing = set(BLOCKS) - found
    if missing:
        print(f"render.py: the page has no block for: {', '.join(sorted(missing))}", file=sys.stderr)
        sys.exit(2)
    if data.get("mode") == "quick":
        text = with_quick_banner(text, data)
    return text


def with_quick_banner(text: str, data: dict) -> str:
    """A quick run fills the committed page's tables only: say so under its
    title, since the prose around them quotes the full run it was written for."""
    title, _, rest = text.partition("\n")
    banner = (f"> **Quick run of {data.get('date', '?')}** (`scripts/bench --quick`: fewer runs, "
              "smaller sizes). Only the tables between the `bench:` markers and the plot are "
              "this run's; the text around them was written for the committed full run "
              "(docs/benchmarks.md) and quotes its figures, not these.")
    return f"{title}\n\n{banner}\n{rest}"


def summary(data: dict) -> str:
    doc = Doc(data)
    lines = [f"{data['mode']} run of {data['date']}, {data['duration_seconds']} s", doc.targets()]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        print(summary(json.loads(Path(sys.argv[2]).read_text())))
        return
    if len(sys.argv) != 4:
        sys.exit("usage: render.py RESULTS DOC_IN DOC_OUT | render.py --summary RESULTS")
    data = json.loads(Path(sys.argv[1]).read_text())
    text = render(data, Path(sys.argv[2]).read_text())
    Path(sys.argv[3]).write_text(text)


if __name__ == "__main__":
    main()
