"""aioquic as the peer of scripts/bench: handshakes and a bulk download, timed
the way quicprobe times its own, printed as one JSON object on stdout.

  bench.py handshakes HOST PORT --cafile ROOTS [--server-name NAME]
           [--alpn hq-interop] [--repeat N] [--concurrency K] [--timeout 10]
      N full handshakes with strict verification (aioquic's default
      CERT_REQUIRED against ROOTS), K in flight. One handshake, as quicprobe
      counts it: a fresh UDP socket, the handshake until HANDSHAKE_DONE
      arrives, then the client's CONNECTION_CLOSE is sent and the socket
      closed. aioquic's own connect() would then wait out the closing period
      (3 PTO, ~90 ms on loopback here), which is not handshake work, so this
      does not use it.
      -> {"ok", "total", "seconds", "handshakes_per_second",
          "median_handshake_ms", "p90_handshake_ms", "cpu_seconds"}

  bench.py download HOST PORT BYTES --cafile ROOTS [--server-name NAME]
           [--timeout 600]
      hq-interop `GET /BYTES` on one connection, the body counted and dropped.
      -> {"bytes", "complete", "seconds" (connection start to last byte),
          "transfer_seconds" (request to last byte), "handshake_ms",
          "cpu_seconds" (this process, over "seconds": the interpreter's
          start-up and imports are left out)}

Only loopback addresses are accepted: this is a benchmark peer.
"""

import argparse
import asyncio
import ipaddress
import json
import resource
import socket
import statistics
import sys
import time

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamDataReceived


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Client(QuicConnectionProtocol):
    def __init__(self, quic: QuicConnection) -> None:
        super().__init__(quic)
        loop = asyncio.get_running_loop()
        self.confirmed = loop.create_future()  # HANDSHAKE_DONE received, or failure
        self.handshake_at: float | None = None
        self.body = 0
        self.done = loop.create_future()  # the response's FIN, or failure

    def datagram_received(self, data, addr) -> None:
        super().datagram_received(data, addr)
        # aioquic marks the handshake confirmed when HANDSHAKE_DONE arrives.
        if self._quic._handshake_confirmed and not self.confirmed.done():
            self.confirmed.set_result(True)

    def quic_event_received(self, event) -> None:
        if isinstance(event, HandshakeCompleted):
            self.handshake_at = time.perf_counter()
        elif isinstance(event, StreamDataReceived):
            self.body += len(event.data)
            if event.end_stream and not self.done.done():
                self.done.set_result(True)
        elif isinstance(event, ConnectionTerminated):
            for future in (self.confirmed, self.done):
                if not future.done():
                    future.set_result(False)


def loopback(host: str) -> str:
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"bench.py: {host}: only loopback addresses are allowed")
    return host


async def open_connection(args, alpn: str):
    loop = asyncio.get_running_loop()
    config = QuicConfiguration(is_client=True, alpn_protocols=[alpn])
    config.load_verify_locations(cafile=args.cafile)
    config.server_name = args.server_name
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((args.host, 0))
    transport, client = await loop.create_datagram_endpoint(
        lambda: Client(QuicConnection(configuration=config)), sock=sock
    )
    client.connect((args.host, args.port))
    return transport, client


async def one_handshake(args) -> float | None:
    start = time.perf_counter()
    transport, client = await open_connection(args, args.alpn)
    try:
        ok = await asyncio.wait_for(client.confirmed, args.timeout)
    except asyncio.TimeoutError:
        ok = False
    elapsed = time.perf_counter() - start
    client.close()  # CONNECTION_CLOSE goes out now (close() transmits)
    transport.close()
    return elapsed * 1000 if ok else None


async def handshakes(args) -> dict:
    semaphore = asyncio.Semaphore(args.concurrency)
    times: list[float | None] = []

    async def one() -> None:
        async with semaphore:
            times.append(await one_handshake(args))

    cpu0 = cpu_seconds()
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(args.repeat)))
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    ok = sorted(t for t in times if t is not None)
    return {
        "ok": len(ok),
        "total": len(times),
        "seconds": round(seconds, 4),
        "handshakes_per_second": round(len(ok) / seconds, 1),
        "median_handshake_ms": round(statistics.median(ok), 2) if ok else None,
        "p90_handshake_ms": round(ok[int(0.9 * (len(ok) - 1))], 2) if ok else None,
        "cpu_seconds": round(cpu, 3),
    }


async def download(args) -> dict:
    cpu0 = cpu_seconds()
    start = time.perf_counter()
    transport, client = await open_connection(args, "hq-interop")
    complete = False
    requested = None
    try:
        if await asyncio.wait_for(client.confirmed, 10):
            requested = time.perf_counter()
            stream_id = client._quic.get_next_available_stream_id()
            client._quic.send_stream_data(stream_id, f"GET /{args.bytes}\r\n".encode(), True)
            client.transmit()
            complete = await asyncio.wait_for(client.done, args.timeout)
    except asyncio.TimeoutError:
        pass
    end = time.perf_counter()
    cpu = cpu_seconds() - cpu0
    client.close()
    transport.close()
    return {
        "bytes": client.body,
        "complete": bool(complete and client.body == args.bytes),
        "seconds": round(end - start, 4),
        "transfer_seconds": round(end - requested, 4) if requested else None,
        "handshake_ms": round((client.handshake_at - start) * 1000, 2) if client.handshake_at else None,
        "cpu_seconds": round(cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("handshakes", "download"):
        p = sub.add_parser(name)
        p.add_argument("host", type=loopback)
        p.add_argument("port", type=int)
        if name == "download":
            p.add_argument("bytes", type=int)
        p.add_argument("--cafile", required=True)
        p.add_argument("--server-name", default="localhost")
        if name == "handshakes":
            p.add_argument("--alpn", default="hq-interop")
            p.add_argument("--repeat", type=int, default=1)
            p.add_argument("--concurrency", type=int, default=1)
        p.add_argument("--timeout", type=float, default=10 if name == "handshakes" else 600)
    args = parser.parse_args()
    result = asyncio.run(handshakes(args) if args.mode == "handshakes" else download(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
