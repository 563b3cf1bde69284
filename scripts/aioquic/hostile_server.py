#!/usr/bin/env python3
"""A hostile QUIC server: one way of misbehaving per run, toward a real client.

Usage: hostile_server.py --listen 127.0.0.1:PORT --case CASE [--seed N]
                         [--chain FILE --key FILE]

It is aioquic's server (the Protocol and configuration of server.py beside
it, so the chain and answers are the same) with a tap on its one UDP socket:
the tap sees every datagram in and out and, depending on the case, adds
crafted packets, swallows real ones, or ends a connection its own way. Why aioquic in
Python rather than quiche in Rust: the hostile packets are a few lines each
with aioquic's header parser and `cryptography` (a Retry tag is one AES-GCM
call), the cases that need a real encrypted connection (a CONNECTION_CLOSE
with a 64 KiB or invalid UTF-8 reason, a stateless reset with the right
token) reach into a live aioquic connection for its 1-RTT keys and token,
and the client under test is quiche, so a quiche server would share its
blind spots. quicprobe's own files are not touched.

Cases (RFC 9000 unless said; "then serves" = the real server answers too, so
a client that discards the hostile packets completes the handshake):

  random-datagrams      answers every client datagram with 3 seeded random
                        datagrams and nothing else
  random-interleaved    2 seeded random datagrams before every real one; then serves
  truncated-long-header before the server's first datagram, every prefix of
                        it cut short, and long headers that lie (connection ID
                        length 21..255, a Length past the end, the fixed bit
                        clear); then serves
  vn-garbage            a Version Negotiation echoing the client's connection
                        IDs whose version list is 7 random bytes (not a whole
                        number of versions); then serves
  vn-wrong-cids         a Version Negotiation offering only a made-up version,
                        for connection IDs the client never used; then serves
  vn-own-version        a Version Negotiation listing QUIC v1 itself, which
                        §6.2 says a client must ignore; then serves
  retry-bad-tag         a Retry whose integrity tag (RFC 9001 §5.8) is wrong
                        in one bit, which §17.2.5.2 says to discard; then serves
  two-retries           the server validates addresses with Retry; after the
                        client answers the first, a second valid Retry, which
                        §17.2.5.2 says to ignore; then serves
  stateless-reset       completes the handshake, then answers the request with
                        a stateless reset (§10.3) carrying the right token and
                        forgets the connection
  close-huge-reason     completes the handshake, then answers the request with
                        a CONNECTION_CLOSE whose reason fills one 65,507-byte
                        datagram (65,459 bytes with quiche's 20-byte connection
                        IDs): as near 64 KiB as UDP over IPv4 allows
  close-overlong-reason the same, but the frame claims a 65,536-byte (64 KiB)
                        reason, more than the packet holds
  close-invalid-utf8    completes the handshake, then a CONNECTION_CLOSE whose
                        reason is not UTF-8

stdout, one flushed line per event: `listening on ADDR`, `injected CASE: WHAT`
for every hostile packet sent, `handshake completed alpn=...`, `stopped`.
127.0.0.1 (or ::1) only; stops on SIGTERM or SIGINT. Bad input: one line on
stderr, exit 2.
"""

import argparse
import asyncio
import importlib.util
import ipaddress
import os
import random
import signal
import sys
from pathlib import Path

from aioquic.asyncio.server import QuicServer
from aioquic.buffer import Buffer, encode_uint_var
from aioquic.quic.events import HandshakeCompleted, StreamDataReceived
from aioquic.quic.packet import QuicPacketType, pull_quic_header
from aioquic.tls import Epoch
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

REPO = Path(__file__).resolve().parents[2]

# RFC 9001 §5.8: the fixed key and nonce of the Retry integrity tag (QUIC v1).
RETRY_KEY = bytes.fromhex("be0c690b9f66575a1d766b54e368c84e")
RETRY_NONCE = bytes.fromhex("461599d35d632bf2239825bb")
QUIC_V1 = 0x00000001
# The largest UDP payload over IPv4: 65,535 - 8 (UDP) - 20 (IP).
MAX_UDP_PAYLOAD = 65_507
TRANSPORT_CLOSE = 0x1C
PROTOCOL_VIOLATION = 0x0A

CASES = [
    "random-datagrams",
    "random-interleaved",
    "truncated-long-header",
    "vn-garbage",
    "vn-wrong-cids",
    "vn-own-version",
    "retry-bad-tag",
    "two-retries",
    "stateless-reset",
    "close-huge-reason",
    "close-overlong-reason",
    "close-invalid-utf8",
]


def load_aioquic_server():
    """server.py beside this file as a module: its Protocol answers requests
    and its configuration() loads a scenario's chain, so both servers agree."""
    spec = importlib.util.spec_from_file_location(
        "aioquic_lab_server", Path(__file__).with_name("server.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LAB = load_aioquic_server()
log, fail = LAB.log, LAB.fail


# --- packets ---------------------------------------------------------------


def long_header(first_byte: int, version: int, dcid: bytes, scid: bytes) -> bytes:
    return (
        bytes([first_byte])
        + version.to_bytes(4, "big")
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
    )


def version_negotiation(dcid: bytes, scid: bytes, versions: bytes) -> bytes:
    """§17.2.1: long header, version 0, then the versions as raw bytes (so a
    test can send a list that is not a whole number of versions)."""
    return long_header(0x80 | random.getrandbits(7), 0, dcid, scid) + versions


def retry_integrity_tag(original_dcid: bytes, retry_without_tag: bytes) -> bytes:
    """RFC 9001 §5.8: AES-128-GCM over nothing, with the Retry pseudo-packet
    (the client's original destination connection ID, then the Retry) as
    associated data."""
    pseudo = bytes([len(original_dcid)]) + original_dcid + retry_without_tag
    return AESGCM(RETRY_KEY).encrypt(RETRY_NONCE, b"", pseudo)


def retry(client_scid: bytes, original_dcid: bytes, new_scid: bytes, token: bytes) -> bytes:
    """§17.2.5: a Retry to the client, with a valid integrity tag."""
    packet = long_header(0xF0, QUIC_V1, client_scid, new_scid) + token
    return packet + retry_integrity_tag(original_dcid, packet)


def flip_last_bit(packet: bytes) -> bytes:
    return packet[:-1] + bytes([packet[-1] ^ 0x01])


def stateless_reset(token: bytes, rng: random.Random) -> bytes:
    """§10.3: looks like a short-header packet (fixed bit set), at least 21
    bytes, the last 16 the token the server gave in its transport parameters."""
    first = 0x40 | rng.getrandbits(6)
    return bytes([first]) + rng.randbytes(26) + token


def transport_close_frame(reason: bytes, declared_length: int | None = None) -> bytes:
    """§19.19: CONNECTION_CLOSE 0x1c; `declared_length` can lie about the reason."""
    length = len(reason) if declared_length is None else declared_length
    return (
        encode_uint_var(TRANSPORT_CLOSE)
        + encode_uint_var(PROTOCOL_VIOLATION)
        + encode_uint_var(0)  # frame type: none in particular
        + encode_uint_var(length)
        + reason
    )


def one_rtt_packet(quic, payload: bytes) -> bytes:
    """A 1-RTT packet of this live aioquic connection, with its keys and its
    next packet number, carrying frames aioquic itself would never write."""
    crypto = quic._cryptos[Epoch.ONE_RTT]
    number = quic._packet_number
    quic._packet_number += 1
    # Short header, 4-byte packet number, the current key phase.
    first = 0x40 | (crypto.send.key_phase << 2) | 0x03
    header = bytes([first]) + quic._peer_cid.cid + number.to_bytes(4, "big")
    return crypto.encrypt_packet(header, payload, number)


def huge_reason(dcid_len: int) -> bytes:
    """As many bytes of reason as one IPv4 datagram can carry in a 1-RTT
    packet: header (1 + CID + 4), frame (1 + 1 + 1 + 4 length bytes), tag 16."""
    overhead = 1 + dcid_len + 4 + 7 + 16
    text = b"hostile reason, one datagram long. "
    size = MAX_UDP_PAYLOAD - overhead
    return (text * (size // len(text) + 1))[:size]


INVALID_UTF8 = b"bad \xff\xfe reason \xc3\x28 lone surrogate \xed\xa0\x80 end \x80"


# --- the tap on the socket ---------------------------------------------------


class Tap:
    """Stands for the server's UDP transport: what aioquic sends goes through
    `sendto`, where the case may add to it or swallow it."""

    def __init__(self, transport, hostile: "HostileServer") -> None:
        self._transport = transport
        self._hostile = hostile

    def sendto(self, data: bytes, addr) -> None:
        if addr in self._hostile.silenced:
            return
        self._hostile.before_server_datagram(data, addr)
        self._transport.sendto(data, addr)

    def raw_sendto(self, data: bytes, addr) -> None:
        self._transport.sendto(data, addr)

    def __getattr__(self, name):
        return getattr(self._transport, name)


class HostileServer(QuicServer):
    """aioquic's QuicServer with the case's hooks on both directions."""

    def __init__(self, *, case: str, rng: random.Random, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.rng = rng
        self.silenced: set = set()
        self._vn_sent = False
        self._bad_retry_sent = False
        self._truncations_sent = False
        self._original_dcid: dict = {}
        self._second_retry_sent = False

    def connection_made(self, transport) -> None:
        self.tap = Tap(transport, self)
        super().connection_made(self.tap)

    def inject(self, data: bytes, addr, what: str) -> None:
        self.tap.raw_sendto(data, addr)
        log(f"injected {self.case}: {what} ({len(data)} bytes)")

    def datagram_received(self, data, addr) -> None:
        if addr in self.silenced:
            return
        if self.case == "random-datagrams":
            for _ in range(3):
                self.inject(self.rng.randbytes(self.rng.randint(1, 1500)), addr, "random datagram")
            return  # nothing real ever answers
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=8)
        except ValueError:
            header = None
        if header is not None and header.packet_type == QuicPacketType.INITIAL:
            self.before_client_initial(header, addr)
        super().datagram_received(data, addr)

    def before_client_initial(self, header, addr) -> None:
        """Cases that answer the client's Initial before the real server does."""
        if self.case.startswith("vn-") and not self._vn_sent:
            self._vn_sent = True
            self.inject(self.vn_for(header), addr, "version negotiation")
        elif self.case == "retry-bad-tag" and not self._bad_retry_sent:
            self._bad_retry_sent = True
            packet = retry(header.source_cid, header.destination_cid, os.urandom(8), os.urandom(24))
            self.inject(flip_last_bit(packet), addr, "retry with a wrong integrity tag")
        elif self.case == "two-retries":
            if not header.token:
                self._original_dcid[addr] = header.destination_cid
            elif not self._second_retry_sent and addr in self._original_dcid:
                self._second_retry_sent = True
                packet = retry(
                    header.source_cid, self._original_dcid[addr], os.urandom(8), os.urandom(40)
                )
                self.inject(packet, addr, "second retry, valid tag")

    def vn_for(self, header) -> bytes:
        # A VN answers with the client's IDs swapped: its DCID is the client's SCID.
        dcid, scid = header.source_cid, header.destination_cid
        if self.case == "vn-garbage":
            return version_negotiation(dcid, scid, self.rng.randbytes(7))
        if self.case == "vn-wrong-cids":
            return version_negotiation(os.urandom(8), os.urandom(8), bytes.fromhex("1a2a3a4a"))
        # vn-own-version: v1 itself, and a reserved greasing version (§15).
        return version_negotiation(dcid, scid, bytes.fromhex("00000001 0a1a2a3a"))

    def before_server_datagram(self, data: bytes, addr) -> None:
        """Cases that put something in front of the real server's datagrams."""
        if self.case == "random-interleaved":
            for _ in range(2):
                self.inject(self.rng.randbytes(self.rng.randint(1, 1500)), addr, "random datagram")
        elif self.case == "truncated-long-header" and not self._truncations_sent:
            self._truncations_sent = True
            for bad, what in lying_long_headers(data):
                self.inject(bad, addr, what)


def lying_long_headers(real: bytes):
    """Every way to cut the server's first datagram short, and long headers
    whose fields lie, each with what it is."""
    for length in list(range(1, 64)) + list(range(64, len(real), 97)):
        yield real[:length], f"first datagram cut to {length} bytes"
    for cid_len in (21, 64, 255):  # §17.2: at most 20 in QUIC v1
        yield bytes([real[0]]) + real[1:5] + bytes([cid_len]) + real[6:64], (
            f"destination connection ID length {cid_len}"
        )
    # An Initial whose Length field says 16,383 bytes: past the end.
    dcid_len = real[5]
    at = 6 + dcid_len
    scid_len = real[at]
    at += 1 + scid_len + 1  # SCID, then an empty token (length 0)
    yield real[:at] + encode_uint_var(16_383) + real[at + 2 : at + 40], "Length past the end"
    yield bytes([real[0] & ~0x40 & 0xFF]) + real[1:], "fixed bit clear"


# --- the connection-level cases ----------------------------------------------


def make_protocol(case: str, rng: random.Random):
    class Protocol(LAB.Protocol):
        """The lab Protocol, except that the cases ending a live connection
        answer the first request their own way."""

        def quic_event_received(self, event) -> None:
            if isinstance(event, HandshakeCompleted):
                self._hostile_ready = True
            if (
                isinstance(event, StreamDataReceived)
                and case in ENDINGS
                and getattr(self, "_hostile_ready", False)
            ):
                self.end_hostilely()
                return
            super().quic_event_received(event)

        def end_hostilely(self) -> None:
            quic = self._quic
            addr = quic._network_paths[0].addr
            datagram, what = ENDINGS[case](quic, rng)
            server = self._transport._hostile
            server.inject(datagram, addr, what)
            # Forget the connection: nothing more goes to or comes from it.
            server.silenced.add(addr)

    return Protocol


def end_with_reset(quic, rng):
    token = quic._host_cids[0].stateless_reset_token
    return stateless_reset(token, rng), "stateless reset with the connection's token"


def end_with_huge_reason(quic, _rng):
    reason = huge_reason(len(quic._peer_cid.cid))
    packet = one_rtt_packet(quic, transport_close_frame(reason))
    return packet, f"CONNECTION_CLOSE with a {len(reason)}-byte reason"


def end_with_overlong_reason(quic, _rng):
    reason = huge_reason(len(quic._peer_cid.cid))
    packet = one_rtt_packet(quic, transport_close_frame(reason, declared_length=65_536))
    return packet, f"CONNECTION_CLOSE claiming a 65536-byte reason, carrying {len(reason)}"


def end_with_invalid_utf8(quic, _rng):
    packet = one_rtt_packet(quic, transport_close_frame(INVALID_UTF8))
    return packet, "CONNECTION_CLOSE with a reason that is not UTF-8"


ENDINGS = {
    "stateless-reset": end_with_reset,
    "close-huge-reason": end_with_huge_reason,
    "close-overlong-reason": end_with_overlong_reason,
    "close-invalid-utf8": end_with_invalid_utf8,
}


# --- running -----------------------------------------------------------------


def loopback_listen(text: str) -> tuple[str, int]:
    host, port = LAB.parse_listen(text)
    if not ipaddress.ip_address(host).is_loopback:
        fail(f"--listen {text}: a hostile server listens on loopback only")
    return host, port


async def run(args: argparse.Namespace) -> None:
    host, port = loopback_listen(args.listen)
    config = LAB.configuration(args)
    rng = random.Random(args.seed)
    random.seed(args.seed)
    loop = asyncio.get_running_loop()
    try:
        _, server = await loop.create_datagram_endpoint(
            lambda: HostileServer(
                case=args.case,
                rng=rng,
                configuration=config,
                create_protocol=make_protocol(args.case, rng),
                retry=args.case == "two-retries",
            ),
            local_addr=(host, port),
        )
    except OSError as error:
        fail(f"cannot listen on {args.listen}: {error.strerror or error}")
    log(f"listening on {LAB.show_addr(server.tap.get_extra_info('sockname'))}")
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    log("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description="hostile QUIC server, one case per run")
    parser.add_argument("--listen", required=True, help="127.0.0.1:PORT or [::1]:PORT")
    parser.add_argument("--case", required=True, choices=CASES)
    parser.add_argument("--seed", type=int, default=1, help="for the random bytes")
    default_dir = REPO / "certs/full-chain"
    parser.add_argument("--chain", default=str(default_dir / "chain.pem"))
    parser.add_argument("--key", default=str(default_dir / "key.pem"))
    parser.add_argument("--alpn", default="h3,hq-interop", help="comma-separated")
    parser.add_argument("--idle-ms", type=int, default=10000, help="idle timeout (ms)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
