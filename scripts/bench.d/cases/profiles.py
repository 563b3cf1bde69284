"""Case `profile`: where the quicprobe client spends its CPU in the
sequential, concurrent and bulk cases: one extra run of each under
`perf record -e cpu-clock`, outside the measured ones, summed by symbol
group (kernel, ECDSA, AES-GCM, quiche, ...).
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
    out["method"] = ("perf record -e cpu-clock -F 999 (a software timer: this machine's perf has no "
                     "hardware counters), of the quicprobe client only, one extra run outside the "
                     "measured ones; self time by symbol")
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
        rec = ["perf", "record", "-e", "cpu-clock", "-F", "999", "-o", data, "--", *shlex.split(command)]
        r = run(rec, timeout=300)
        if r["rc"] != 0:
            out["profiles"].append({"case": name, "error": r["stderr"][-300:]})
            continue
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym",
                              "--stdio", "-n", "-g", "none", "--percent-limit", "0"],
                             capture_output=True, text=True, timeout=120)
        out["profiles"].append({"case": name, "command": command, **parse_profile(rep.stdout)})
    data.unlink(missing_ok=True)
    return out


# perf report -n lines: "    12.25%  37  quicprobe  [.] __ecp_nistz256_mul_montx"
PROFILE_LINE = re.compile(r"^\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+\[([.k])\]\s+(.*?)\s*$")
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


def parse_profile(text: str) -> dict:
    rows = []
    for line in text.splitlines():
        m = PROFILE_LINE.match(line)
        if m:
            rows.append((float(m.group(1)), m.group(3), m.group(4), m.group(5), int(m.group(2))))
    groups: dict[str, float] = {}
    for pct, dso, kind, sym, _ in rows:
        if kind == "k" or dso.startswith("[kernel"):
            name = "kernel (UDP sendmsg/recvmsg, epoll, scheduling)"
        else:
            name = next((g for g, rx in GROUPS if re.search(rx, sym)), None)
            if name is None:
                name = "other libc" if dso.startswith("libc") else f"other {dso}"
        groups[name] = groups.get(name, 0) + pct
    return {
        "samples": sum(r[4] for r in rows),
        "groups": sorted(({"group": g, "percent": round(p, 1)} for g, p in groups.items()),
                         key=lambda x: -x["percent"]),
        "top": [{"percent": p, "dso": d, "symbol": s[:120]} for p, d, _, s, _ in rows[:15]],
    }
