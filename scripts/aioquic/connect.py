"""Connects to a QUIC server with aioquic, as the original report did, and
prints aioquic's own DEBUG log (format '%(asctime)s %(levelname)s %(name)s
%(message)s') on stderr, then one result line on stdout:
    ok <alpn>           the handshake completed
    error <code> <reason>   aioquic closed the connection (e.g. 298 / 0x12A)

Usage: connect.py HOST PORT --cafile ROOTS [--server-name NAME] [--alpn h3]
        [--repeat N --concurrency K]   (benchmark mode: prints "<ok> <total> <seconds>")
       connect.py --batch               (many connections, one at a time, in one process)

--batch reads one JSON object per stdin line, {"host", "port", "cafile",
"server_name", "alpn"} (the last two optional), connects to each in turn, and
prints one JSON line per connection on stdout: {"result": the result line
above, "log": aioquic's log lines of that connection, formatted as above}.
One process for a whole catalogue saves the interpreter's start per
connection; one connection at a time keeps each log its own.
"""

import argparse
import asyncio
import json
import logging
import sys
import time

from aioquic.asyncio.client import connect
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated


def configuration(args: argparse.Namespace) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=[args.alpn])
    config.load_verify_locations(cafile=args.cafile)
    config.server_name = args.server_name or args.host
    return config


async def handshake_once(args: argparse.Namespace) -> str:
    try:
        async with connect(args.host, args.port, configuration=configuration(args)) as client:
            alpn = client._quic.tls.alpn_negotiated
            client.close()
            return f"ok {alpn}"
    except ConnectionError as error:
        return f"error {error}"


async def repeat(args: argparse.Namespace) -> None:
    semaphore = asyncio.Semaphore(args.concurrency)
    results: list[str] = []

    async def one() -> None:
        async with semaphore:
            results.append(await handshake_once(args))

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(args.repeat)))
    elapsed = time.perf_counter() - start
    ok = sum(1 for r in results if r.startswith("ok"))
    print(f"{ok} {len(results)} {elapsed:.3f}")


class Recorder(logging.Handler):
    """Keeps the close aioquic sends, to print it as the result line."""

    def __init__(self) -> None:
        super().__init__()
        self.error: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        at = message.find("Error: ")
        if at >= 0 and self.error is None:
            # "Error: 298, reason: unable to get local issuer certificate, frame_type: 6"
            code, _, rest = message[at + len("Error: "):].partition(", reason: ")
            reason = rest.rsplit(", frame_type:", 1)[0]
            self.error = f"error {code} {reason}"


class Collector(logging.Handler):
    """Keeps the formatted log lines of the connection under way."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def batch() -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    collector = Collector()
    logging.getLogger("quic").addHandler(collector)
    logging.getLogger("quic").propagate = False  # stdout carries the results only
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        args = argparse.Namespace(
            host=job["host"], port=int(job["port"]), cafile=job["cafile"],
            server_name=job.get("server_name"), alpn=job.get("alpn", "h3"),
        )
        recorder = Recorder()
        logging.getLogger("quic").addHandler(recorder)
        collector.lines = []
        try:
            result = asyncio.run(asyncio.wait_for(handshake_once(args), 10))
        except TimeoutError:
            result = "timeout"
        logging.getLogger("quic").removeHandler(recorder)
        print(json.dumps({"result": recorder.error or result, "log": collector.lines}), flush=True)


def main() -> None:
    if sys.argv[1:] == ["--batch"]:
        batch()
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--server-name")
    parser.add_argument("--alpn", default="h3")
    parser.add_argument("--repeat", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    if args.repeat:
        asyncio.run(repeat(args))
        return
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s %(message)s", level=logging.DEBUG, stream=sys.stderr
    )
    recorder = Recorder()
    logging.getLogger("quic").addHandler(recorder)
    try:
        result = asyncio.run(asyncio.wait_for(handshake_once(args), 10))
    except TimeoutError:
        result = "timeout"
    print(recorder.error or result)


if __name__ == "__main__":
    main()
