#!/usr/bin/env python3
"""An aioquic client with `quicprobe connect`'s options, to compare the two
on the same job. aioquic's own DEBUG log goes to stderr (format
'%(asctime)s %(levelname)s %(name)s %(message)s', as connect.py), then
one JSON object goes to stdout:
  {"outcome", "exit_code", "close", "alpn", "last_state",
   "certificates_received", "quic_version", "handshake_ms", "response"}
Exit status = exit_code, curl's numbers: 0 ok, 60 verification failed,
35 other handshake failure, 28 timeout, 7 refused (ICMP); 2 bad usage.

Usage: client.py TARGET [--cacert FILE]... [--resolve HOST:PORT:ADDR[,ADDR]]
                 [--sni NAME] [--alpn h3] [--timeout 10] [--insecure]
TARGET: host:port, [v6]:port, or https://host[:port]/path (https: GET the
path over h3 or hq-interop, whichever was negotiated).
"""

import argparse
import asyncio
import ipaddress
import json
import logging
import socket
import ssl
import sys
import time
from urllib.parse import urlsplit

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    ProtocolNegotiated,
    StreamDataReceived,
)
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import load_pem_x509_certificates

# Closes aioquic sends when it rejects a chain: CRYPTO_ERROR (0x100) + alert
# bad_certificate 42 .. certificate_unknown 46, unknown_ca 48.
CERTIFICATE_ALERTS = {0x100 + a for a in (42, 43, 44, 45, 46, 48)}


class Client(QuicConnectionProtocol):
    def __init__(self, quic: QuicConnection, path: str | None, authority: str) -> None:
        super().__init__(quic)
        self.path, self.authority = path, authority
        self.settled = asyncio.get_running_loop().create_future()  # handshake or close
        self.answered = asyncio.Event()  # response complete or connection gone
        self.peer_closed = False
        self.refused = False
        self.started = time.perf_counter()
        self.handshake_ms: float | None = None
        self.h3: H3Connection | None = None
        self.body_bytes = 0
        self.complete = False

    def datagram_received(self, data, addr) -> None:
        super().datagram_received(data, addr)
        # Only a received CONNECTION_CLOSE leads to DRAINING (ours: CLOSING).
        if self._quic._state == QuicConnectionState.DRAINING:
            self.peer_closed = True
        if self._quic._close_event is not None:
            self.settle(False)

    def error_received(self, exc: Exception) -> None:
        # The socket is connected, so the kernel reports ICMP port unreachable.
        if isinstance(exc, ConnectionRefusedError):
            self.refused = True
            self.settle(False)

    def settle(self, ok: bool) -> None:
        if not self.settled.done():
            self.settled.set_result(ok)
        if not ok:
            self.answered.set()

    def quic_event_received(self, event) -> None:
        # No super(): its StreamWriter bookkeeping would FIN our request stream.
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol == "h3" and self.path:
            self.h3 = H3Connection(self._quic)
        elif isinstance(event, HandshakeCompleted):
            self.handshake_ms = round((time.perf_counter() - self.started) * 1000, 1)
            self.settle(True)
        elif isinstance(event, ConnectionTerminated):
            self.settle(False)
        if self.h3 is not None:
            for h3_event in self.h3.handle_event(event):
                if isinstance(h3_event, DataReceived):
                    self.received(len(h3_event.data), h3_event.stream_ended)
                elif isinstance(h3_event, HeadersReceived) and h3_event.stream_ended:
                    self.received(0, True)
        elif isinstance(event, StreamDataReceived):
            self.received(len(event.data), event.end_stream)

    def received(self, size: int, ended: bool) -> None:
        self.body_bytes += size
        if ended:
            self.complete = True
            self.answered.set()

    def request(self) -> None:
        alpn = self._quic.tls.alpn_negotiated
        stream_id = self._quic.get_next_available_stream_id()
        if alpn == "h3" and self.h3 is not None:
            headers = [(b":method", b"GET"), (b":scheme", b"https"),
                       (b":authority", self.authority.encode()), (b":path", self.path.encode())]
            self.h3.send_headers(stream_id, headers, end_stream=True)
        elif alpn == "hq-interop":
            self._quic.send_stream_data(stream_id, f"GET {self.path}\r\n".encode(), True)
        else:
            self.answered.set()  # nothing we know how to ask for
            return
        self.transmit()


def parse_target(text: str) -> tuple[str, int, str | None]:
    """-> host, port, path (None unless https://)."""
    if text.startswith("https://"):
        url = urlsplit(text)
        return url.hostname, url.port or 443, url.path or "/"
    url = urlsplit("//" + text)
    return url.hostname, url.port or 443, None


def addresses(host: str, port: int, resolve: list[str]) -> list[str]:
    for entry in resolve:  # curl's --resolve HOST:PORT:ADDR[,ADDR]...
        r_host, r_port, addrs = entry.split(":", 2)
        if r_host.lower() == host.lower() and int(r_port) == port:
            return [a.strip("[]") for a in addrs.split(",")]
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)]


async def attempt(args, config: QuicConfiguration, addr: str, port: int, path, authority):
    loop = asyncio.get_running_loop()
    ip = ipaddress.ip_address(addr)
    sock = socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_DGRAM)
    # Bind the loopback for a loopback peer (aioquic's connect() binds "::");
    # connect() so that ICMP port unreachable comes back as ECONNREFUSED.
    sock.bind((str(ip) if ip.is_loopback else "", 0))
    sock.connect((addr, port))
    quic = QuicConnection(configuration=config)
    transport, client = await loop.create_datagram_endpoint(
        lambda: Client(quic, path, authority), sock=sock
    )
    client.connect(sock.getpeername())
    handshake_ok = None  # None: no answer within --timeout
    try:
        handshake_ok = await asyncio.wait_for(asyncio.shield(client.settled), args.timeout)
    except asyncio.TimeoutError:
        pass
    request_timed_out = False
    if handshake_ok and path:
        client.request()
        try:
            await asyncio.wait_for(client.answered.wait(), args.timeout)
        except asyncio.TimeoutError:
            request_timed_out = True
    ended = quic._close_event  # what ended it, if anything, before our own close
    if handshake_ok:  # what happens to the request shows in "response"
        outcome = "timeout" if request_timed_out else "ok"
    elif client.refused:
        outcome, ended = "refused", None
    elif handshake_ok is None:
        outcome, ended = "timeout", None
    elif not client.peer_closed and ended.error_code in CERTIFICATE_ALERTS:
        outcome = "verification_failed"
    else:
        outcome = "handshake_failed"
    if quic._close_event is None:
        client.close()  # aioquic's default close: NO_ERROR, no reason
        if outcome == "ok":
            ended = quic._close_event
    try:  # let the close go out and the closing period end, as aioquic's connect() does
        await asyncio.wait_for(client.wait_closed(), 2)
    except asyncio.TimeoutError:
        pass
    transport.close()
    tls = quic.tls
    return {
        "outcome": outcome,
        "exit_code": {"ok": 0, "verification_failed": 60, "handshake_failed": 35,
                      "timeout": 28, "refused": 7}[outcome],
        "close": None if ended is None else {
            "sent_by": "server" if client.peer_closed else "client",
            "error_code": ended.error_code,
            "reason": ended.reason_phrase,
            "frame_type": ended.frame_type,
        },
        "alpn": tls.alpn_negotiated if tls else None,
        "last_state": tls.state.name if tls else None,
        "certificates_received": (1 + len(tls._peer_certificate_chain))
        if tls and tls._peer_certificate is not None else 0,
        "quic_version": f"0x{quic._version:08x}",
        "handshake_ms": client.handshake_ms,
        "response": {"body_bytes": client.body_bytes, "complete": client.complete}
        if path and client.handshake_ms is not None else None,
    }


def cadata(files: list[str]) -> bytes:
    # Re-encoded, not concatenated raw: aioquic splits cadata on
    # "-----END CERTIFICATE-----\n" and parses every non-empty piece, so a
    # blank line or a comment between certificates raises ValueError inside
    # the handshake, which then hangs until the timeout instead of closing.
    pems = []
    for name in files:
        try:
            with open(name, "rb") as f:
                pems += [c.public_bytes(Encoding.PEM) for c in load_pem_x509_certificates(f.read())]
        except (OSError, ValueError) as error:
            raise ValueError(f"--cacert {name}: {error}") from None
    return b"".join(pems)


async def run(args) -> dict:
    host, port, path = parse_target(args.target)
    config = QuicConfiguration(is_client=True, alpn_protocols=args.alpn.split(","))
    config.server_name = args.sni or host
    if args.insecure:
        config.verify_mode = ssl.CERT_NONE
    if args.cacert:
        config.cadata = cadata(args.cacert)
    authority = host if port == 443 else f"{host}:{port}"
    if ":" in host:
        authority = f"[{host}]" + ("" if port == 443 else f":{port}")
    result = None
    for addr in addresses(host, port, args.resolve):  # the next one when one refuses
        result = await attempt(args, config, addr, port, path, authority)
        if result["outcome"] != "refused":
            break
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="aioquic client mirroring quicprobe connect")
    parser.add_argument("target")
    parser.add_argument("--cacert", action="append", default=[], help="PEM roots (repeatable)")
    parser.add_argument("--resolve", action="append", default=[], help="HOST:PORT:ADDR")
    parser.add_argument("--sni", help="server name to send and to verify")
    parser.add_argument("--alpn", default="h3", help="comma-separated")
    parser.add_argument("--timeout", type=float, default=10, help="seconds")
    parser.add_argument("-k", "--insecure", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s %(message)s", level=logging.DEBUG, stream=sys.stderr
    )
    try:
        cadata(args.cacert)
        host, port, _ = parse_target(args.target)
        if not host:
            raise ValueError(f"no host in {args.target}")
        for entry in args.resolve:
            ipaddress.ip_address(entry.split(":", 2)[2].split(",")[0].strip("[]"))
    except (OSError, ValueError, IndexError) as error:
        print(f"client.py: {error}", file=sys.stderr)
        sys.exit(2)
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    sys.exit(result["exit_code"])


if __name__ == "__main__":
    main()
