#!/usr/bin/env python3
"""A small aioquic QUIC server, to see a certificate scenario from aioquic's
side: what a client sends back when it rejects the chain.

Usage: server.py --listen HOST:PORT --chain FILE --key FILE
                 [--chain FILE --key FILE ...]
                 [--alpn h3,hq-interop] [--retry] [--idle-ms N]

Several --chain/--key pairs (with port 0) serve each chain on a port of its own
from one process, one "listening on" line each, in order; every other line is
then prefixed with the address of the server it concerns ("127.0.0.1:40123: ").

stdout, one flushed line per event:
    listening on 127.0.0.1:40123
    connection from 127.0.0.1:PORT
    handshake completed alpn=h3
    close received: error_code=0x12a frame_type=6 reason="..." is_app=false
    closed locally: error_code=0x0 frame_type=none reason="" is_app=true
    idle timeout
    stopped
Requests: hq-interop `GET /N` -> N pattern bytes; h3 `GET /` -> "aioquic
server\\n", `GET /bytes/N` -> N pattern bytes; any other ALPN echoes bidi
streams. Pattern byte i is PATTERN[i % 36]. Bad input: one line on stderr, exit 2.
"""

import argparse
import asyncio
import ipaddress
import json
import signal
import sys

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnectionState
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    ProtocolNegotiated,
    StreamDataReceived,
)
from aioquic.quic.packet import QuicErrorCode, QuicFrameType
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from cryptography.x509 import load_pem_x509_certificates

PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789"
MAX_BODY = 64 * 1024 * 1024


def log(line: str) -> None:
    print(line, flush=True)


# The line prefix of each listening address, when several chains are served.
PREFIXES: dict[str, str] = {}


def log_for(transport, line: str) -> None:
    """An event of one server: prefixed with its address when there are several."""
    address = show_addr(transport.get_extra_info("sockname")) if transport else ""
    log(PREFIXES.get(address, "") + line)


def fail(message: str) -> None:
    print(f"server.py: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def pattern(n: int) -> bytes:
    n = max(0, min(n, MAX_BODY))
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def show_addr(addr: tuple) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe(event: ConnectionTerminated) -> str:
    # aioquic reports frame_type None only for APPLICATION_CLOSE (0x1d): a
    # TRANSPORT_CLOSE (0x1c) always carries a frame type, even 0.
    frame = "none" if event.frame_type is None else str(event.frame_type)
    app = "true" if event.frame_type is None else "false"
    return (
        f"error_code=0x{event.error_code:x} frame_type={frame} "
        f"reason={json.dumps(event.reason_phrase)} is_app={app}"
    )


class Protocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._seen = False
        self._peer_closed = False
        self._h3: H3Connection | None = None
        self._hq_requests: dict[int, bytes | None] = {}

    def datagram_received(self, data, addr) -> None:
        if not self._seen:
            self._seen = True
            log_for(self._transport, f"connection from {show_addr(addr)}")
        super().datagram_received(data, addr)
        # A received CONNECTION_CLOSE is the only way into DRAINING (a local
        # close goes to CLOSING), and aioquic only emits ConnectionTerminated
        # after the 3*PTO draining period, so log it here, when it arrives.
        if not self._peer_closed and self._quic._state == QuicConnectionState.DRAINING:
            self._peer_closed = True
            log_for(self._transport, f"close received: {describe(self._quic._close_event)}")

    def quic_event_received(self, event) -> None:
        # Deliberately not calling super(): for a new stream it builds a
        # StreamWriter, hands it to the (no-op) stream handler and drops it,
        # and the dropped writer's __del__ sends FIN: every request would get
        # an empty answer before ours.
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol == "h3":
            self._h3 = H3Connection(self._quic)
        elif isinstance(event, HandshakeCompleted):
            log_for(self._transport, f"handshake completed alpn={event.alpn_protocol}")
        elif isinstance(event, ConnectionTerminated):
            if self._peer_closed:
                return  # already logged when it arrived
            if (
                event.error_code == QuicErrorCode.INTERNAL_ERROR
                and event.frame_type == QuicFrameType.PADDING
                and event.reason_phrase == "Idle timeout"
            ):
                log_for(self._transport, "idle timeout")
            else:
                log_for(self._transport, f"closed locally: {describe(event)}")
        if self._h3 is not None:
            for h3_event in self._h3.handle_event(event):
                if isinstance(h3_event, HeadersReceived):
                    self._answer_h3(h3_event)
        elif isinstance(event, StreamDataReceived) and event.stream_id % 4 == 0:
            if self._quic.tls.alpn_negotiated == "hq-interop":
                self._answer_hq(event)
            else:  # echo, FIN included
                self._quic.send_stream_data(event.stream_id, event.data, event.end_stream)
        self.transmit()

    def _answer_hq(self, event: StreamDataReceived) -> None:
        # Buffer up to the request line; None marks a stream already answered.
        request = self._hq_requests.get(event.stream_id, b"")
        if request is None:
            return
        request += event.data
        if b"\n" not in request and not event.end_stream:
            self._hq_requests[event.stream_id] = request[:4096]
            return
        self._hq_requests[event.stream_id] = None
        parts = request.split(b"\n", 1)[0].split()
        number = parts[1].decode("ascii", "replace").lstrip("/") if len(parts) > 1 else ""
        body = pattern(int(number)) if number.isdigit() else b""
        self._quic.send_stream_data(event.stream_id, body, end_stream=True)

    def _answer_h3(self, event: HeadersReceived) -> None:
        path = dict(event.headers).get(b":path", b"/").decode("ascii", "replace")
        status, body = b"404", b"not found\n"
        if path == "/":
            status, body = b"200", b"aioquic server\n"
        elif path.startswith("/bytes/") and path[7:].isdigit():
            status, body = b"200", pattern(int(path[7:]))
        headers = [(b":status", status), (b"content-length", str(len(body)).encode())]
        self._h3.send_headers(event.stream_id, headers)
        self._h3.send_data(event.stream_id, body, end_stream=True)


def configuration(
    args: argparse.Namespace, chain: str | None = None, key_file: str | None = None
) -> QuicConfiguration:
    """The server configuration for one chain (by default args.chain, args.key)."""
    chain = chain or args.chain
    key_file = key_file or args.key
    # Built by hand rather than with load_cert_chain (which would send the same
    # list) to give a clear error per file and to check the key fits the leaf.
    config = QuicConfiguration(
        is_client=False,
        alpn_protocols=[a for a in args.alpn.split(",") if a],
        idle_timeout=args.idle_ms / 1000.0,
    )
    try:
        with open(chain, "rb") as f:
            certificates = load_pem_x509_certificates(f.read())
    except (OSError, ValueError) as error:
        fail(f"--chain {chain}: {error}")
    try:
        with open(key_file, "rb") as f:
            key = load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as error:
        fail(f"--key {key_file}: {error}")
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != certificates[0].public_key().public_bytes(*spki):
        fail(f"--key {key_file} does not match the first certificate of {chain}")
    # Sent exactly in file order, duplicates and strangers included.
    config.certificate, config.certificate_chain = certificates[0], certificates[1:]
    config.private_key = key
    return config


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        if not sep or not host or not 0 <= int(port) <= 65535:
            raise ValueError
        ipaddress.ip_address(host)
    except ValueError:
        fail(f"--listen {text}: expected IP:PORT or [IPv6]:PORT")
    return host, int(port)


async def run(args: argparse.Namespace) -> None:
    host, port = parse_listen(args.listen)
    if len(args.chain) != len(args.key):
        fail("give one --key per --chain")
    if len(args.chain) > 1 and port != 0:
        fail(f"--listen {args.listen}: several chains need port 0 (a port each)")
    servers = []
    for chain, key in zip(args.chain, args.key):
        config = configuration(args, chain, key)
        try:
            server = await serve(
                host, port, configuration=config, create_protocol=Protocol, retry=args.retry
            )
        except OSError as error:
            fail(f"cannot listen on {args.listen}: {error.strerror or error}")
        address = show_addr(server._transport.get_extra_info("sockname"))
        if len(args.chain) > 1:
            PREFIXES[address] = f"{address}: "
        log(f"listening on {address}")
        servers.append(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()  # sends CONNECTION_CLOSE to the clients still connected
    log("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description="aioquic QUIC server for certificate scenarios")
    parser.add_argument("--listen", required=True, help="HOST:PORT or [v6]:PORT; port 0 = any")
    parser.add_argument("--chain", required=True, action="append",
                        help="PEM chain, leaf first, sent as is (repeatable, with --key)")
    parser.add_argument("--key", required=True, action="append",
                        help="the leaf's PEM private key (one per --chain)")
    parser.add_argument("--alpn", default="h3,hq-interop", help="comma-separated")
    parser.add_argument("--retry", action="store_true", help="validate addresses with Retry")
    parser.add_argument("--idle-ms", type=int, default=60000, help="idle timeout (ms)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
