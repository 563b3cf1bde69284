#!/usr/bin/env python3
"""Runs aioquic (scripts/aioquic/client.py) and quicprobe against the same
target and says where they differ: a side-by-side table, then a unified diff
of the two traces in aioquic's log format, normalised for timestamps and
connection IDs. Exit 0 when the behaviour agrees, 1 listing every difference,
2 on bad usage.

Usage: compare.py TARGET [--cacert FILE]... [--resolve HOST:PORT:ADDR]
                  [--sni NAME] [--alpn h3] [--timeout 10]
       compare.py --scenario NAME ...   (serves certs/NAME with the lab first)
       compare.py --markdown-table      (every scenario against the lab, as a
                                         Markdown table)
       compare.py --write-doc docs/aioquic.md   (that table, put in the file
                                         between its "generated table" markers)
Environment: QUICPROBE, the quicprobe binary (default target/debug/quicprobe).
"""

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "scripts/aioquic/client.py"
QUICPROBE = os.environ.get("QUICPROBE", str(REPO / "target/debug/quicprobe"))

# aioquic's lines that depend on timers and losses, not on the handshake, and
# that quicprobe has no counterpart for (client/tests/aioquic_compare.rs holds
# the same list; docs/aioquic.md says why).
TIMING_LINES = ("Duplicate CRYPTO data received", "Loss detection triggered",
                "Sending PING", "Received PING")
LOG_LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) quic \[[0-9a-f]+\] (?P<message>.*)$")

# After a completed handshake each client ends in its own clean way:
# aioquic with application error 0, quicprobe with H3_NO_ERROR (0x100) for
# h3 (RFC 9114 §8.1). Both are a clean end, not a difference.
CLEAN_CODES = {0x0, 0x100}

# Scenarios where the two clients genuinely differ (docs/aioquic.md explains;
# client/tests/aioquic_compare.rs holds the same list).
NAMED_DIFFERENCES = {"client-auth-eku": "aioquic checks no EKU"}


def normalise(log: str) -> list[str]:
    """aioquic-format lines -> 'LEVEL message', raw up to the close
    (CONNECTED -> CLOSING) or, on success, up to 'ALPN negotiated protocol':
    after that each client ends in its own clean way. Only the timestamps,
    the connection IDs and TIMING_LINES are taken out."""
    kept = []
    for line in log.splitlines():
        match = LOG_LINE.match(line)
        if match and not match["message"].startswith(TIMING_LINES):
            kept.append(f'{match["level"]} {match["message"]}')
            if (match["message"].endswith("QuicConnectionState.CONNECTED -> QuicConnectionState.CLOSING")
                    or match["message"].startswith("ALPN negotiated protocol ")):
                break
    return kept


def last_tls_state(lines: list[str]) -> str | None:
    states = [l.rsplit("State.", 1)[1] for l in lines if " TLS State." in l]
    return states[-1] if states else None


def client_args(args: argparse.Namespace) -> list[str]:
    out = [args.target]
    for cacert in args.cacert:
        out += ["--cacert", cacert]
    for resolve in args.resolve:
        out += ["--resolve", resolve]
    if args.sni:
        out += ["--sni", args.sni]
    out += ["--alpn", args.alpn, "--timeout", str(args.timeout)]
    return out


def run_aioquic(args: argparse.Namespace) -> tuple[dict, list[str]]:
    done = subprocess.run([sys.executable, str(CLIENT), *client_args(args)],
                          capture_output=True, text=True, timeout=args.timeout + 30)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        sys.exit(f"compare-aioquic: the aioquic client printed no result: {done.stderr[-2000:]}")
    return result, normalise(done.stderr)


def run_quicprobe(args: argparse.Namespace) -> tuple[dict, list[str]]:
    with tempfile.TemporaryDirectory() as scratch:
        outcome_file = Path(scratch) / "outcome.json"
        # X25519 only, as aioquic offers: with the same ClientHello the server
        # cuts its flight into the same datagrams, and where the Initial keys
        # are dropped depends on that cut.
        done = subprocess.run([QUICPROBE, "connect", "--trace-style", "aioquic", "--curves", "X25519",
                               "--json-file", str(outcome_file), *client_args(args)],
                              capture_output=True, text=True, timeout=args.timeout + 30)
        if not outcome_file.exists():
            sys.exit(f"compare-aioquic: quicprobe failed: {done.stderr.strip()}")
        outcome = json.loads(outcome_file.read_text().splitlines()[0])
    # The trace goes to stderr, as aioquic's log does.
    return outcome, normalise(done.stderr)


def close_words(close: dict | None) -> tuple[str, str]:
    if not close:
        return "-", "-"
    code = close["error_code"]
    return (f'0x{code:x} ({close["sent_by"]})', close.get("reason") or "")


def rows(aioquic: dict, aioquic_lines: list[str], ours: dict, our_lines: list[str]):
    """(what, aioquic's value, quicprobe's value, whether they agree)."""
    a_code, a_reason = close_words(aioquic.get("close"))
    q_code, q_reason = close_words(ours.get("close"))
    clean = (aioquic["outcome"] == ours["outcome"] == "ok"
             and (aioquic.get("close") or {}).get("error_code", 0) in CLEAN_CODES
             and (ours.get("close") or {}).get("error_code", 0) in CLEAN_CODES)
    our_certificates = len(ours.get("chain") or [])
    a_ms, q_ms = aioquic.get("handshake_ms"), ours.get("handshake_ms")
    return [
        ("outcome", aioquic["outcome"], ours["outcome"], aioquic["outcome"] == ours["outcome"]),
        ("exit code", aioquic["exit_code"], ours["exit_code"],
         aioquic["exit_code"] == ours["exit_code"]),
        ("close code", a_code, q_code, clean or a_code == q_code),
        ("close reason", a_reason, q_reason, clean or a_reason == q_reason),
        ("last TLS state", last_tls_state(aioquic_lines), last_tls_state(our_lines),
         last_tls_state(aioquic_lines) == last_tls_state(our_lines)),
        ("certificates received", aioquic.get("certificates_received"), our_certificates,
         aioquic.get("certificates_received") == our_certificates),
        ("ALPN", aioquic.get("alpn"), ours.get("alpn"), aioquic.get("alpn") == ours.get("alpn")),
        ("QUIC version", aioquic.get("quic_version"), ours.get("quic_version"),
         aioquic.get("quic_version") == ours.get("quic_version")),
        # Timing is reported, never compared.
        ("handshake ms", f"{a_ms:.1f}" if a_ms else "-", f"{q_ms:.1f}" if q_ms else "-", True),
    ]


def compare(args: argparse.Namespace) -> int:
    aioquic, aioquic_lines = run_aioquic(args)
    ours, our_lines = run_quicprobe(args)
    table = rows(aioquic, aioquic_lines, ours, our_lines)
    width = max(len(str(r[1])) for r in table) + 2
    print(f'{"":24}{"aioquic":{width}}quicprobe')
    for what, a, q, same in table:
        print(f'{what:24}{str(a):{width}}{q}{"" if same else "   <- differs"}')
    diff = list(difflib.unified_diff(aioquic_lines, our_lines, "aioquic", "quicprobe", lineterm=""))
    print()
    print("\n".join(diff) if diff else "traces: identical (normalised)")
    differences = [what for what, _, _, same in table if not same] + (["trace"] if diff else [])
    if differences:
        print(f"\ncompare-aioquic: they differ: {', '.join(differences)}")
        return 1
    print("\ncompare-aioquic: same behaviour")
    return 0


class Lab:
    """quicprobe's lab serving a scenario on 127.0.0.1, stopped on exit."""

    def __init__(self, scenario: str) -> None:
        self.process = subprocess.Popen([QUICPROBE, "serve", "--scenario", scenario,
                                         "--listen", "127.0.0.1:0"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 10
        self.port = None
        while self.port is None and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith("listening on 127.0.0.1:"):
                self.port = int(line.rsplit(":", 1)[1])
        if self.port is None:
            self.process.kill()
            sys.exit(f"compare-aioquic: the lab did not start for {scenario}")

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def scenario_target(args: argparse.Namespace, scenario: str, port: int) -> None:
    folder = REPO / "certs" / scenario
    host = (folder / "host").read_text().strip()
    args.target = f"{host}:{port}"
    args.cacert = [str(folder / "roots.pem")]
    args.resolve = [f"{host}:{port}:127.0.0.1"]


def markdown_table(args: argparse.Namespace) -> tuple[list[str], int]:
    """Every scenario of certs/ against the lab: one table row each. The hostile
    ones are left out, as in client/tests/aioquic_compare.rs: they are about
    bounds (quiche's 64 KiB CRYPTO limit, verify depth), not about what aioquic
    says, and client/tests/hostile.rs runs them."""
    out = ["| scenario | aioquic | quicprobe (aioquic style) | same? |", "|---|---|---|---|"]
    status = 0
    for folder in sorted(p for p in (REPO / "certs").iterdir()
                         if (p / "expected").is_file() and not (p / "hostile").is_file()):
        with Lab(folder.name) as lab:
            scenario_target(args, folder.name, lab.port)
            aioquic, aioquic_lines = run_aioquic(args)
            ours, our_lines = run_quicprobe(args)
        table = rows(aioquic, aioquic_lines, ours, our_lines)
        same = all(r[3] for r in table) and aioquic_lines == our_lines
        named = NAMED_DIFFERENCES.get(folder.name)
        status |= 0 if same or named else 1
        verdict = "yes" if same else f"no: {named}" if named else "**no**"

        def cell(result: dict) -> str:
            code, reason = close_words(result.get("close"))
            if result["outcome"] == "ok":
                return "ok"
            return f'{result["outcome"]} {code.split()[0]} "{reason}"'

        out.append(f'| {folder.name} | {cell(aioquic)} | {cell(ours)} | {verdict} |')
    return out, status


BEGIN, END = "<!-- BEGIN generated table -->", "<!-- END generated table -->"


def write_doc(args: argparse.Namespace, path: Path) -> int:
    """Replaces the text between the markers of `path` with a fresh table."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"compare-aioquic: {path} has no {BEGIN} ... {END} markers")
    table, status = markdown_table(args)
    import aioquic
    version = subprocess.run([QUICPROBE, "--version"], capture_output=True, text=True).stdout.strip()
    stamp = (f"Generated by `scripts/compare-aioquic --write-doc {path.relative_to(REPO)}` on "
             f"{time.strftime('%Y-%m-%d')}: aioquic {aioquic.__version__} and {version}, "
             "each against `quicprobe serve --scenario NAME`; every scenario but the hostile "
             "ones (client/tests/hostile.rs runs those).")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{stamp}\n\n" + "\n".join(table) + f"\n{END}{tail}")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?")
    parser.add_argument("--cacert", action="append", default=[])
    parser.add_argument("--resolve", action="append", default=[])
    parser.add_argument("--sni")
    parser.add_argument("--alpn", default="h3")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--scenario")
    parser.add_argument("--markdown-table", action="store_true")
    parser.add_argument("--write-doc", type=Path)
    args = parser.parse_args()
    if args.markdown_table:
        table, status = markdown_table(args)
        print("\n".join(table))
        return status
    if args.write_doc:
        return write_doc(args, args.write_doc.resolve())
    if args.scenario:
        if not (REPO / "certs" / args.scenario / "chain.pem").is_file():
            parser.error(f"no scenario {args.scenario} in certs/")
        with Lab(args.scenario) as lab:
            scenario_target(args, args.scenario, lab.port)
            return compare(args)
    if not args.target:
        parser.error("a TARGET or --scenario NAME is needed")
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
