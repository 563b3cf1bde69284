"""The floors of issue 18, measured by client/examples/floors.rs through
BoringSSL's own API (the `boring` crate), each run interleaved with the runs of
the case it bounds: a handshake's public-key work (the key share for the
negotiated group, the chain's signatures, the CertificateVerify) and the AEAD
open of a download's bytes. The download floor adds the receiver's CPU of
udp_gso.py (plain UDP socket, GRO, from a GSO sender), measured in the bulk case.
"""

import json

from harness import CERTS, SCENARIO, TARGET_DIR, Bench, Failed, cmdline, run

FLOORS = TARGET_DIR / "release" / "examples" / "floors"


def handshake_floor(iterations: int):
    cmd = [FLOORS, "handshake", "--certs", CERTS / SCENARIO, "--iterations", iterations]

    def once() -> dict:
        return _json(run(cmd, timeout=120))
    return cmdline(cmd), once


def aead_floor(size: int):
    cmd = [FLOORS, "aead", "--bytes", size, "--record", 1200]

    def once() -> dict:
        return _json(run(cmd, timeout=120))
    return cmdline(cmd), once


def _json(r: dict) -> dict:
    if r["rc"] != 0:
        raise Failed(f"floors: exit {r['rc']}: {r['stderr'][-300:]}")
    return json.loads(r["stdout"])


# The TLS names of the ciphers quicprobe may negotiate, as floors.rs names them.
CIPHERS = {"TLS_AES_128_GCM_SHA256": "aes_128_gcm", "TLS_AES_256_GCM_SHA384": "aes_256_gcm"}


def negotiated_cipher(bench: Bench, server: str) -> str:
    """The cipher quicprobe's downloads from `server` negotiated (its JSON's
    handshake.tls.cipher), as the floor must open with the same one."""
    runs = (bench.get(f"bulk/{server}/quicprobe") or {}).get("runs", [])
    names = {r.get("cipher") for r in runs if not r.get("error")}
    known = [CIPHERS[n] for n in names if n in CIPHERS]
    if len(known) != 1:
        raise Failed(f"bulk from {server}: negotiated {names or 'nothing'}, no AEAD floor for it")
    return known[0]


def download_floor(bench: Bench, server: str) -> dict:
    """Per run: the GRO receiver's CPU per GB plus the negotiated cipher's open
    per GB, run i of each (they ran in the same round of the bulk case)."""
    udp, aead = bench.get("bulk/raw-udp-gso/python"), bench.get("bulk/floor/aead")
    cipher = negotiated_cipher(bench, server)
    e = bench.entry(f"bulk/floor/{server}", "bulk", "floor", server,
                    f"receiver_cpu_s_per_gb of bulk/raw-udp-gso/python + {cipher} of bulk/floor/aead, run by run",
                    cipher=cipher)
    for u, a in zip(udp["runs"] if udp else [], aead["runs"] if aead else []):
        if u.get("error") or a.get("error"):
            e["runs"].append({"error": u.get("error") or a.get("error")})
        else:
            key = f"{cipher}_open_s_per_gb"
            e["runs"].append({"floor_s_per_gb": u["receiver_cpu_s_per_gb"] + a[key],
                              "receive_s_per_gb": u["receiver_cpu_s_per_gb"], "aead_s_per_gb": a[key]})
    return e
