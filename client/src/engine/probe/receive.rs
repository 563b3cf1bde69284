//! The receive side of a probe: every datagram into quiche, Retry and
//! version negotiation traced only when quiche takes them, loss recovery
//! noted.

use std::time::Instant;

use quicprobe_verifier::VerdictSlot;

use super::tls::version_name;
use super::Probe;
use crate::engine::datapath::{Arrival, SendSpace};
use crate::engine::flights::Received;
use crate::engine::handshake::Stage;

impl Probe {
    /// Takes one datagram the run's socket received for this connection,
    /// and during the handshake answers it at once (see below).
    pub fn receive(&mut self, arrival: Arrival<'_>, slot: &VerdictSlot, space: &mut SendSpace) {
        // As the connected socket of old did: only the server's address counts.
        let from_server =
            arrival.from.ip() == self.addr.ip() && arrival.from.port() == self.addr.port();
        if !from_server {
            log::debug!("{}: datagram from {} ignored", self.addr, arrival.from);
            return;
        }
        self.local_ip_seen = arrival.to.or(self.local_ip_seen);
        self.recv_datagram(arrival.datagram, slot);
        self.answer_during_handshake(space);
    }

    /// Until the handshake is complete, what quiche has to send goes out
    /// after each datagram, as aioquic sends after each datagram it
    /// receives: our Handshake ACK (and with it the drop of our Initial
    /// keys, RFC 9001 §4.9.1) follows the first datagram that carried
    /// Handshake data, not the last of its batch, and each of our ACKs widens
    /// the server's anti-amplification budget as soon as it can. After the
    /// handshake the batch is read whole, then flushed once: aioquic delays
    /// its 1-RTT ACKs too, and a download wants fewer, larger sends.
    fn answer_during_handshake(&mut self, space: &mut SendSpace) {
        if !self.conn.is_established() {
            self.flush_into(space);
        }
    }

    fn recv_datagram(&mut self, datagram: &mut [u8], slot: &VerdictSlot) {
        self.last_received = Instant::now();
        let claim = self.long_header_claim(datagram);
        let len = datagram.len();
        let info = quiche::RecvInfo {
            from: self.addr,
            to: self.local,
        };
        slot.expect_name(Some(self.peer_name.clone()));
        let processed_before = self
            .established_at
            .is_none()
            .then(|| self.conn.stats().recv);
        let result = self.conn.recv(datagram, info);
        let kind = match claim.filter(|claim| claim.taken(&self.conn)) {
            Some(claim) => {
                self.push_stage(claim.stage);
                claim.kind
            }
            None => Received::Other,
        };
        self.flights.on_received(len, kind);
        if kind == Received::Other && processed_before == Some(self.conn.stats().recv) {
            self.flights.on_unusable();
        }
        let verdict = slot.take();
        self.record_tls_messages(verdict);
        if let Err(error) = result {
            log::debug!("{}: quiche recv: {error}", self.addr);
        }
        if self.conn.is_established() && self.established_at.is_none() {
            self.established_at = Some(Instant::now());
            self.note_loss_recovery();
            self.flights.on_established();
        }
    }

    /// Probe timeouts and losses during the handshake mean the flights hold
    /// retransmissions (see [`flights::Disturbance`]).
    pub(super) fn note_loss_recovery(&mut self) {
        if let Some(path) = self.conn.path_stats().next() {
            self.flights.on_recovery(path.total_pto_count, path.lost);
        }
    }

    /// What a long header claims: a Retry or a version negotiation, which
    /// only the packet header shows. Whether quiche took it is known only
    /// after `conn.recv` (see [`Claim::taken`]): a Retry with a bad integrity
    /// tag, a second Retry, or a version negotiation for other connection IDs
    /// or listing our own version are ignored, and are no round trip.
    fn long_header_claim(&self, datagram: &[u8]) -> Option<Claim> {
        const LONG_HEADER: u8 = 0x80;
        if datagram.first()? & LONG_HEADER == 0 {
            return None;
        }
        let mut copy = datagram.to_vec();
        let header = quiche::Header::from_slice(&mut copy, quiche::MAX_CONN_ID_LEN).ok()?;
        match header.ty {
            quiche::Type::Retry => Some(Claim {
                stage: Stage::Retry {
                    token_bytes: header.token.as_ref().map_or(0, Vec::len),
                },
                kind: Received::Retry,
                // A Retry quiche follows gives it a new destination ID.
                taken_if: TakenIf::DestinationChanges(self.conn.destination_id().to_vec()),
            }),
            quiche::Type::VersionNegotiation => {
                let versions = header.versions.clone().unwrap_or_default();
                Some(Claim {
                    taken_if: TakenIf::Now(self.takes_version_negotiation(&header, &versions)),
                    stage: Stage::VersionNegotiation {
                        offered: versions.iter().map(|v| version_name(*v)).collect(),
                    },
                    kind: Received::VersionNegotiation,
                })
            }
            _ => None,
        }
    }

    /// quiche's own tests for a version negotiation (RFC 9000 §6.2): the
    /// first, before any packet was processed, for our connection IDs, and
    /// not listing the version we speak.
    fn takes_version_negotiation(&self, header: &quiche::Header, versions: &[u32]) -> bool {
        let first = !self
            .stages
            .iter()
            .any(|s| matches!(s.stage, Stage::VersionNegotiation { .. }));
        first
            && self.conn.stats().recv == 0
            && header.dcid.as_ref() == self.conn.source_id().as_ref()
            && header.scid.as_ref() == self.conn.destination_id().as_ref()
            && !versions.contains(&quiche::PROTOCOL_VERSION)
    }
}

/// A Retry or version negotiation seen in a long header, to be traced only
/// if quiche takes it.
struct Claim {
    stage: Stage,
    kind: Received,
    taken_if: TakenIf,
}

enum TakenIf {
    /// Known before `conn.recv`, from quiche's own rules.
    Now(bool),
    /// The destination connection ID before `conn.recv`.
    DestinationChanges(Vec<u8>),
}

impl Claim {
    fn taken(&self, conn: &quiche::Connection) -> bool {
        match &self.taken_if {
            TakenIf::Now(taken) => *taken,
            TakenIf::DestinationChanges(before) => {
                conn.destination_id().as_ref() != before.as_slice()
            }
        }
    }
}
