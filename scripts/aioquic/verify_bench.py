"""Times aioquic's own certificate verification (aioquic.tls.verify_certificate:
leaf dates, service_identity name check, OpenSSL X509_verify_cert through
pyOpenSSL) on a scenario from certs/, as the peer for scripts/bench.

Usage: verify_bench.py CERTS_DIR SCENARIO [SECONDS]
Prints one line: "<scenario> <microseconds per verification> <iterations>".
"""

import sys
import time
from pathlib import Path

from aioquic.tls import verify_certificate
from cryptography import x509


def main() -> None:
    scenario = Path(sys.argv[1]) / sys.argv[2]
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    chain = x509.load_pem_x509_certificates((scenario / "chain.pem").read_bytes())
    roots = (scenario / "roots.pem").read_bytes()
    host = (scenario / "host").read_text().strip()
    leaf, rest = chain[0], chain[1:]
    verify_certificate(leaf, rest, host, cadata=roots)  # raises if it would not verify
    iterations = 0
    start = time.perf_counter()
    deadline = start + budget
    while time.perf_counter() < deadline:
        for _ in range(50):
            verify_certificate(leaf, rest, host, cadata=roots)
        iterations += 50
    elapsed = time.perf_counter() - start
    print(f"{sys.argv[2]} {elapsed / iterations * 1e6:.1f} {iterations}")


if __name__ == "__main__":
    main()
