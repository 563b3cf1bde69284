"""Case `profile`: where the quicprobe client spends its CPU in the
sequential, concurrent and bulk cases: one extra run of each under
`perf record -e cpu-clock`, outside the measured ones, summed by symbol
group (kernel, ECDSA, AES-GCM, quiche, ...), then by who owns the time above
the floor (quiche, BoringSSL, quicprobe, the allocator, the kernel), with the
share spent allocating and how much of that BoringSSL's own allocations are
(malloc called from OPENSSL_malloc: no Rust allocator reaches those).
"""

import re
import shlex
import shutil
import subprocess

from cases.bulk import quicprobe_get
from cases.handshakes import quicprobe_handshakes
from harness import Bench, run, say


def measure(bench: Bench, servers: dict) -> dict:
    probe = subprocess.run(["perf", "stat", "-e", "instructions", "true"], capture_output=True, text=True) \
        if shutil.which("perf") else None
    hardware = bool(probe) and "not supported" not in probe.stderr and probe.returncode == 0
    out = {"perf": shutil.which("perf") is not None, "hardware_counters": hardware, "profiles": []}
    if not shutil.which("perf"):
        out["note"] = "perf is not installed: profile pending"
        return out
    data = bench.logdir / "perf.data"
    check = subprocess.run(["perf", "record", "-e", "cpu-clock", "-o", data, "--", "true"], capture_output=True)
    if check.returncode != 0:
        out["note"] = "perf record -e cpu-clock does not work here: profile pending"
        return out
    out["method"] = ("perf record -e cpu-clock -F 999 --call-graph dwarf (a software timer: this machine's "
                     "perf has no hardware counters), of the quicprobe client only, one extra run outside the "
                     "measured ones; self time by symbol, the callers only to tell whose allocation it is")
    lab, lab_port = servers["lab"]
    ms, ms_port = servers["msquic"]
    size = bench.cfg["profile_bulk_bytes"]
    jobs = [
        ("sequential/lab", quicprobe_handshakes(lab, lab_port, bench.cfg["sequential_handshakes"], 1)[0]),
        ("concurrent/lab", quicprobe_handshakes(lab, lab_port, bench.cfg["concurrent_handshakes"],
                                                bench.cfg["concurrent_in_flight"])[0]),
        ("bulk/lab", quicprobe_get(lab, lab_port, size)[0]),
        ("bulk/msquic", quicprobe_get(ms, ms_port, size)[0]),
    ]
    for name, command in jobs:
        say(f"profile {name}")
        # DWARF call graphs: neither libc's malloc nor BoringSSL keeps frame
        # pointers, and who called malloc is the question (issue 18). Small
        # runs at 999 Hz keep perf.data to a few tens of MB.
        rec = ["perf", "record", "-e", "cpu-clock", "-F", "999", "--call-graph", "dwarf,16384",
               "-o", data, "--", *shlex.split(command)]
        r = run(rec, timeout=300)
        if r["rc"] != 0:
            out["profiles"].append({"case": name, "error": r["stderr"][-300:]})
            continue
        script = subprocess.run(["perf", "script", "--no-inline", "-i", data, "-F", "ip,sym,dso"],
                                capture_output=True, text=True, timeout=600)
        out["profiles"].append({"case": name, "command": command, **parse_samples(script.stdout)})
    data.unlink(missing_ok=True)
    return out


GROUPS = [
    ("qlog events serialized for quicprobe's tap", r"qlog|QlogTap|serde|Serialize|serialize|write_all|fmt::write"),
    ("body SHA-256 (ring)", r"ring_core.*sha"),
    ("ECDSA P-256 (verify, BoringSSL)", r"nistz256|p256|beeu_mod|ecdsa|bn_|BN_|ec_GFp|ec_point|ec_scalar"),
    ("X25519", r"x25519|curve25519|fe4?_|ge_"),
    ("ML-KEM-768 (X25519MLKEM768)", r"mlkem|keccak|MLKEM"),
    ("AES-GCM packet protection", r"aes|gcm|ghash|GCM|AES"),
    ("other TLS (BoringSSL: hashing, handshake)", r"sha|SHA|hmac|HMAC|HKDF|hkdf|bssl::|SSL_|ssl_|CBB|CBS|X509|x509|ASN1|asn1|EVP_|OPENSSL_"),
    ("quiche (QUIC state machine)", r"quiche::|octets::"),
    ("malloc, free, memcpy (libc)", r"malloc|free|realloc|memmove|memcpy|memset|_int_|memcmp|alloc::"),
]


# Who owns the time above the floor. The floor's own groups are the public-key
# work (handshakes) and AES-GCM (downloads); everything else is above it.
FLOOR_GROUPS = {"ECDSA P-256 (verify, BoringSSL)", "X25519", "ML-KEM-768 (X25519MLKEM768)", "AES-GCM packet protection"}
ALLOCATOR = r"malloc|free|realloc|calloc|_int_|cfree|unlink_chunk|tcache|__rust_alloc|__rust_dealloc|__rdl_|alloc::alloc"
OWNERS = [
    ("allocator (malloc, free)", ALLOCATOR),
    ("memcpy, memmove (libc)", r"memmove|memcpy|memset|memcmp"),
    ("body SHA-256 (ring)", r"ring_core"),
    ("qlog serialisation", r"qlog|QlogTap|serde"),
    ("quiche", r"quiche::|octets::"),
    ("quicprobe", r"quicprobe"),
    ("BoringSSL above the floor (hashes, HKDF, handshake, X.509 parsing)",
     r"bssl::|SSL|ssl_|EVP_|X509|x509|ASN1|asn1|CBB|CBS|OPENSSL_|CRYPTO_|sha|SHA|hmac|HMAC|HKDF|aes|gcm|BN_|bn_|EC_|ec_"),
]


def owner(dso: str, sym: str) -> str:
    if dso.startswith("[kernel") or dso == "[unknown]" and not sym:
        return "kernel"
    found = next((o for o, rx in OWNERS if re.search(rx, sym)), None)
    if found:
        return found
    if dso.startswith("quicprobe") and "::" not in sym and not sym.startswith("<"):
        return "BoringSSL above the floor (hashes, HKDF, handshake, X.509 parsing)"  # a C symbol
    return "other Rust (std, mio, ...)" if dso.startswith("quicprobe") else f"other ({dso})"


def group(dso: str, sym: str) -> str:
    if dso.startswith("[kernel"):
        return "kernel (UDP sendmsg/recvmsg, epoll, scheduling)"
    name = next((g for g, rx in GROUPS if re.search(rx, sym)), None)
    if name is None:
        name = "other libc" if dso.startswith("libc") else f"other {dso}"
    return name


# perf script -F ip,sym,dso: a sample is a block of frames, leaf first,
# "\t    7f12ab  malloc (/usr/lib/x86_64-linux-gnu/libc.so.6)", blocks apart by a blank line.
FRAME = re.compile(r"^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")


def samples(text: str):
    frames = []
    for line in text.splitlines():
        m = FRAME.match(line)
        if m:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            frames.append((m.group(2).rsplit("/", 1)[-1], "" if sym == "[unknown]" else sym))
        elif not line.strip() and frames:
            yield frames
            frames = []
    if frames:
        yield frames


def parse_samples(text: str) -> dict:
    """Self time by symbol group and by owner; the allocator's share and how
    much of it BoringSSL's own allocations are (an OPENSSL_ frame above malloc)."""
    groups, owners, symbols = {}, {}, {}
    total = alloc = boringssl_alloc = 0
    for frames in samples(text):
        dso, sym = frames[0]
        total += 1
        g = group(dso, sym)
        groups[g] = groups.get(g, 0) + 1
        if g in FLOOR_GROUPS:
            continue
        o = owner(dso, sym)
        owners[o] = owners.get(o, 0) + 1
        symbols[(dso, sym or "[unknown]", o)] = symbols.get((dso, sym or "[unknown]", o), 0) + 1
        if o.startswith("allocator"):
            alloc += 1
            if any(f[1].startswith("OPENSSL_") for f in frames[1:]):
                boringssl_alloc += 1
    pct = lambda n: round(100.0 * n / total, 1) if total else 0.0
    above = total - sum(n for g, n in groups.items() if g in FLOOR_GROUPS)
    return {
        "samples": total,
        "groups": sorted(({"group": g, "percent": pct(n)} for g, n in groups.items()), key=lambda x: -x["percent"]),
        "floor_percent": pct(total - above),
        "above_floor_percent": pct(above),
        "owners": sorted(({"owner": o, "percent": pct(n)} for o, n in owners.items()), key=lambda x: -x["percent"]),
        "allocation_percent": pct(alloc),
        "boringssl_allocation_percent": pct(boringssl_alloc),
        "top": [{"percent": pct(n), "dso": d, "owner": o, "symbol": s[:120]}
                for (d, s, o), n in sorted(symbols.items(), key=lambda kv: -kv[1])[:15]],
    }
