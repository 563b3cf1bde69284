#!/usr/bin/env python3
"""Raw loopback UDP goodput with the kernel's batching, the bound a QUIC stack that
uses GSO and GRO is measured against (iperf3 -u sends one datagram per system call,
which quicprobe and msquic no longer do).

A sender and a receiver, two processes on 127.0.0.1: the sender writes 64 KiB
buffers that the kernel cuts into DATAGRAM-byte datagrams (UDP_SEGMENT, GSO); the
receiver reads them back coalesced (UDP_GRO) and counts what arrives. Prints one JSON
object: bytes sent and received, seconds, MB/s received, the CPU of each side.

Usage: udp_gso.py [--seconds S] [--datagram BYTES]
"""

import argparse
import json
import os
import resource
import socket
import sys
import time

SOL_UDP = 17
UDP_SEGMENT = 103  # linux/udp.h
UDP_GRO = 104
RECV_BUFFER = 4 * 1024 * 1024  # as quicprobe's sockets
END = b"end"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def receive(sock: socket.socket, report) -> None:
    """Counts bytes until the sender's end marker, or 1 s of silence after data."""
    buffer = bytearray(65535)
    received, first, last = 0, None, None
    cpu0 = cpu_seconds()
    sock.settimeout(5.0)
    while True:
        try:
            n = sock.recv_into(buffer)
        except socket.timeout:
            break
        if n == len(END) and buffer[:n] == END:
            break
        now = time.monotonic()
        first = first or now
        last = now
        received += n
        sock.settimeout(1.0)
    seconds = (last - first) if first and last and last > first else 0.0
    report.write(json.dumps({"received": received, "seconds": seconds,
                             "receiver_cpu_s": cpu_seconds() - cpu0}))
    report.close()


def send(sock: socket.socket, addr, seconds: float, datagram: int) -> dict:
    segments = 65000 // datagram
    payload = bytes(datagram * segments)
    sock.setsockopt(SOL_UDP, UDP_SEGMENT, datagram)
    sent = 0
    cpu0 = cpu_seconds()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sent += sock.sendto(payload, addr)
        except (BlockingIOError, ConnectionRefusedError):
            continue
    sock.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
    for _ in range(3):  # the end marker may be lost like any datagram
        sock.sendto(END, addr)
        time.sleep(0.05)
    return {"sent": sent, "sender_cpu_s": cpu_seconds() - cpu0, "segments_per_send": segments}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--datagram", type=int, default=1350)
    args = parser.parse_args()

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
    receiver.setsockopt(SOL_UDP, UDP_GRO, 1)
    receiver.bind(("127.0.0.1", 0))
    addr = receiver.getsockname()

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        receive(receiver, os.fdopen(write_end, "w"))
        os._exit(0)
    os.close(write_end)
    receiver.close()

    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = send(sender, addr, args.seconds, args.datagram)
    with os.fdopen(read_end) as pipe:
        got = json.loads(pipe.read() or "{}")
    os.waitpid(child, 0)
    if not got.get("seconds"):
        print(json.dumps({"error": "the receiver got nothing", **sent, **got}))
        return 1
    print(json.dumps({**sent, **got, "datagram_bytes": args.datagram,
                      "mb_per_s": got["received"] / got["seconds"] / 1e6,
                      "lost_percent": 100.0 * (1 - got["received"] / max(sent["sent"], 1))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
