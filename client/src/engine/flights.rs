//! The handshake's flights on the wire, and what QUIC's anti-amplification
//! limit (RFC 9000 §8.1) made of them.
//!
//! Until a server has validated the client's address it may send at most
//! three times the bytes it has received from it. A client that sends one
//! 1200-byte Initial gives the server 3600 bytes; a certificate chain that
//! does not fit makes the server stop and wait for the client's next
//! datagram, which costs a round trip. The flights are counted in UDP
//! payload bytes at our socket, which is what the server's budget counts.

use serde::Serialize;

/// What crossed the wire during the handshake, as it happens.
#[derive(Debug, Clone, Default)]
pub struct FlightLog {
    /// Bytes and datagrams we sent before the server's first answer.
    client_initial: Volume,
    /// Bytes and datagrams the server sent until our handshake completed.
    server_flight: Volume,
    heard_from_server: bool,
    /// A Retry proves our address: the server's budget no longer applies.
    validated_by_retry: bool,
    /// Round trips spent before the real handshake: Retry, version negotiation.
    restarts: u32,
    complete: bool,
    disturbance: Disturbance,
}

/// Signs that the handshake was not one clean exchange. The flights then
/// hold retransmissions, duplicates or damaged datagrams, and neither the
/// anti-amplification limit nor the round trips can be read from them
/// (seen through `quicprobe impair`: a truncating path made the server's
/// "flight" 794 datagrams).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Disturbance {
    /// Datagrams from the server of which quiche could use nothing:
    /// damaged, cut short, duplicated, or ahead of their keys.
    pub unusable_datagrams: usize,
    /// Our probe timeouts (RFC 9002 §6.2) before the handshake completed.
    pub probe_timeouts: usize,
    /// Our packets declared lost before the handshake completed.
    pub lost_packets: usize,
}

impl Disturbance {
    fn any(&self) -> bool {
        self.unusable_datagrams + self.probe_timeouts + self.lost_packets > 0
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.unusable_datagrams, "unusable datagram"),
            (self.probe_timeouts, "probe timeout"),
            (self.lost_packets, "lost packet"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", plural(*n)))
        .collect();
        parts.join(", ")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub bytes: usize,
    pub datagrams: usize,
}

impl Volume {
    fn add(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.datagrams += 1;
    }
}

/// A datagram from the server, as far as the flights care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Retry,
    VersionNegotiation,
    Other,
}

impl FlightLog {
    pub fn on_sent(&mut self, bytes: usize) {
        if !self.heard_from_server && !self.complete {
            self.client_initial.add(bytes);
        }
    }

    /// Whether any datagram of ours has left (the server answering proves one did).
    pub fn sent_any(&self) -> bool {
        self.client_initial.datagrams > 0 || self.heard_from_server || self.complete
    }

    pub fn on_received(&mut self, bytes: usize, kind: Received) {
        if self.complete {
            return;
        }
        match kind {
            // Both answer our first flight and make us send a new one.
            Received::Retry | Received::VersionNegotiation => {
                self.validated_by_retry |= kind == Received::Retry;
                self.restarts += 1;
                self.client_initial = Volume::default();
                self.server_flight = Volume::default();
                self.heard_from_server = false;
            }
            Received::Other => {
                self.heard_from_server = true;
                self.server_flight.add(bytes);
            }
        }
    }

    /// A datagram from the server gave quiche nothing it could use.
    pub fn on_unusable(&mut self) {
        if !self.complete {
            self.disturbance.unusable_datagrams += 1;
        }
    }

    /// Our loss recovery so far: probe timeouts and packets declared lost.
    /// Frozen once the handshake completes.
    pub fn on_recovery(&mut self, probe_timeouts: usize, lost_packets: usize) {
        if !self.complete {
            self.disturbance.probe_timeouts = probe_timeouts;
            self.disturbance.lost_packets = lost_packets;
        }
    }

    /// Our handshake completed: the server's first flight is all in.
    pub fn on_established(&mut self) {
        self.complete = true;
    }

    pub fn report(&self) -> FlightReport {
        let budget_bytes = (!self.validated_by_retry).then_some(3 * self.client_initial.bytes);
        let disturbed = self.disturbance.any();
        let amplification_limited = (!disturbed).then(|| {
            self.heard_from_server
                && budget_bytes.is_some_and(|budget| self.server_flight.bytes > budget)
        });
        let round_trips = amplification_limited
            .filter(|_| self.complete)
            .map(|limited| 1 + self.restarts + u32::from(limited));
        FlightReport {
            client_initial: self.client_initial,
            server_flight: self.server_flight,
            server_flight_complete: self.complete,
            budget_bytes,
            amplification_limited,
            validated_by_retry: self.validated_by_retry,
            round_trips,
            disturbance: disturbed.then_some(self.disturbance),
        }
    }
}

/// What a server operator can do when the chain costs a round trip.
const SHRINK_THE_FLIGHT: &str = "to save it, make the server's flight smaller: an ECDSA \
    leaf and intermediates (smaller keys and signatures than RSA), a shorter chain (no root, \
    no unneeded intermediates), or certificate compression (RFC 8879)";

/// The flights of one handshake, for the trace and the JSON outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlightReport {
    /// Our first flight: what the server's budget is three times.
    pub client_initial: Volume,
    /// The server's first flight, up to its Finished.
    pub server_flight: Volume,
    /// False when the handshake never completed: the flight is what came.
    pub server_flight_complete: bool,
    /// Three times our first flight; none once a Retry validated our address.
    pub budget_bytes: Option<usize>,
    /// The server's flight did not fit its budget, so it had to wait for
    /// our next datagram before sending the rest: one more round trip.
    /// None when the handshake was disturbed: the flight is not the server's.
    pub amplification_limited: Option<bool>,
    pub validated_by_retry: bool,
    /// Round trips to the server's Finished, deduced from the flights:
    /// one, plus Retry or version negotiation, plus the amplification stall.
    /// None when the handshake did not complete or was disturbed.
    pub round_trips: Option<u32>,
    /// Why nothing is deduced from the flights; None for a clean handshake.
    pub disturbance: Option<Disturbance>,
}

impl FlightReport {
    /// The server's flight as a multiple of our first flight.
    pub fn ratio(&self) -> f64 {
        if self.client_initial.bytes == 0 {
            return 0.0;
        }
        self.server_flight.bytes as f64 / self.client_initial.bytes as f64
    }

    /// One line for the trace.
    pub fn describe(&self) -> String {
        let ours = format!(
            "our first flight {} B in {} datagram{}",
            self.client_initial.bytes,
            self.client_initial.datagrams,
            plural(self.client_initial.datagrams)
        );
        let theirs = format!(
            "the server's flight{} {} B in {} datagram{} ({:.1}x)",
            if self.server_flight_complete {
                ""
            } else {
                " so far"
            },
            self.server_flight.bytes,
            self.server_flight.datagrams,
            plural(self.server_flight.datagrams),
            self.ratio()
        );
        if let Some(disturbance) = self.disturbance {
            return format!(
                "{ours}; {theirs}; loss or damage during the handshake ({}): these counts \
                 include retransmissions, so neither the anti-amplification limit nor the \
                 round trips can be read from them",
                disturbance.describe()
            );
        }
        let verdict = match self.budget_bytes {
            None => "no anti-amplification limit after Retry".to_owned(),
            Some(budget) if self.amplification_limited == Some(true) => format!(
                "over the 3x anti-amplification limit ({budget} B): the server had to wait \
                 for our next datagram, 1 extra round trip ({SHRINK_THE_FLIGHT})"
            ),
            Some(budget) => format!("within the 3x anti-amplification limit ({budget} B)"),
        };
        // No Finished, so no count of the round trips it took.
        let Some(round_trips) = self.round_trips else {
            return format!("{ours}; {theirs}; {verdict}");
        };
        format!(
            "{ours}; {theirs}; {verdict}; {round_trips} round trip{} to the server's Finished",
            plural(round_trips as usize)
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Whether a datagram we send carries a Handshake packet. A client drops its
/// Initial keys once it sends one (RFC 9001 §4.9.1), which aioquic logs as
/// "Discarding epoch Epoch.INITIAL". Packet types and lengths are not
/// header-protected, so coalesced long-header packets can be walked.
pub fn carries_handshake_packet(datagram: &[u8]) -> bool {
    const HANDSHAKE: u8 = 2;
    let mut rest = datagram;
    while let Some(&first) = rest.first() {
        if first & 0x80 == 0 {
            return false; // a short header runs to the end of the datagram
        }
        let packet_type = (first >> 4) & 0x03;
        if packet_type == HANDSHAKE {
            return true;
        }
        match long_packet_len(rest, packet_type) {
            Some(len) if len <= rest.len() => rest = &rest[len..],
            _ => return false,
        }
    }
    false
}

/// The length of the long-header packet at the start of `packet`.
pub(crate) fn long_packet_len(packet: &[u8], packet_type: u8) -> Option<usize> {
    const INITIAL: u8 = 0;
    let mut at = 1 + 4; // first byte, version
    let dcid_len = usize::from(*packet.get(at)?);
    at += 1 + dcid_len;
    let scid_len = usize::from(*packet.get(at)?);
    at += 1 + scid_len;
    if packet_type == INITIAL {
        let (token_len, used) = varint(packet.get(at..)?)?;
        at += used + usize::try_from(token_len).ok()?;
    }
    let (payload_len, used) = varint(packet.get(at..)?)?;
    at.checked_add(used)?
        .checked_add(usize::try_from(payload_len).ok()?)
}

/// A QUIC variable-length integer (RFC 9000 §16) and its size in bytes.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let len = 1usize << (first >> 6);
    let mut value = u64::from(first & 0x3f);
    for byte in bytes.get(1..len)? {
        value = (value << 8) | u64::from(*byte);
    }
    Some((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(sent: &[usize], received: &[usize]) -> FlightLog {
        let mut log = FlightLog::default();
        for bytes in sent {
            log.on_sent(*bytes);
        }
        for bytes in received {
            log.on_received(*bytes, Received::Other);
        }
        log.on_established();
        log
    }

    #[test]
    fn a_flight_within_three_times_ours_takes_one_round_trip() {
        let report = log_of(&[1200, 1200], &[1200; 5]).report();
        assert_eq!(report.budget_bytes, Some(7200));
        assert_eq!(report.amplification_limited, Some(false));
        assert_eq!(report.round_trips, Some(1));
    }

    #[test]
    fn a_flight_over_three_times_ours_costs_a_round_trip() {
        let report = log_of(&[1200], &[1200, 1200, 1200, 500]).report();
        assert_eq!(report.amplification_limited, Some(true));
        assert_eq!(report.round_trips, Some(2));
        assert!(report.describe().contains("1 extra round trip"));
        assert!(report.describe().contains("an ECDSA leaf"));
    }

    #[test]
    fn a_disturbed_handshake_deduces_nothing_from_its_flights() {
        let mut log = FlightLog::default();
        log.on_sent(1200);
        for _ in 0..794 {
            log.on_received(1075, Received::Other);
            log.on_unusable();
        }
        log.on_recovery(2, 0);
        log.on_established();
        // After completion nothing more counts.
        log.on_unusable();
        log.on_recovery(9, 9);
        let report = log.report();
        assert_eq!(report.amplification_limited, None);
        assert_eq!(report.round_trips, None);
        let disturbance = report.disturbance.expect("disturbed");
        assert_eq!(disturbance.unusable_datagrams, 794);
        assert_eq!(disturbance.probe_timeouts, 2);
        let line = report.describe();
        assert!(
            line.contains("794 unusable datagrams, 2 probe timeouts"),
            "{line}"
        );
        assert!(
            !line.contains("ECDSA"),
            "no flight advice on a disturbed handshake: {line}"
        );
        assert!(!line.contains("round trip to"), "{line}");
    }

    #[test]
    fn a_clean_handshake_has_no_disturbance() {
        let mut log = log_of(&[1200], &[1200]);
        log.on_recovery(0, 0);
        assert_eq!(log.report().disturbance, None);
    }

    #[test]
    fn what_we_send_after_the_server_answers_is_not_our_first_flight() {
        let mut log = FlightLog::default();
        log.on_sent(1200);
        log.on_received(1200, Received::Other);
        log.on_sent(1200);
        assert_eq!(log.report().client_initial.bytes, 1200);
    }

    #[test]
    fn retry_lifts_the_limit_and_counts_a_round_trip() {
        let mut log = FlightLog::default();
        log.on_sent(1200);
        log.on_received(100, Received::Retry);
        log.on_sent(1200);
        log.on_received(9000, Received::Other);
        log.on_established();
        let report = log.report();
        assert_eq!(report.budget_bytes, None);
        assert_eq!(report.amplification_limited, Some(false));
        assert_eq!(report.round_trips, Some(2));
        assert_eq!(report.client_initial.bytes, 1200);
    }

    #[test]
    fn an_unfinished_flight_claims_no_round_trips() {
        let mut log = FlightLog::default();
        log.on_sent(1200);
        log.on_received(1220, Received::Other);
        let text = log.report().describe();
        assert!(text.contains("the server's flight so far 1220 B"), "{text}");
        assert!(!text.contains("round trip"), "{text}");
    }

    /// A long-header packet of `packet_type` with a `payload`-byte body.
    fn long_packet(packet_type: u8, payload: usize) -> Vec<u8> {
        let mut packet = vec![0xc0 | (packet_type << 4), 0, 0, 0, 1, 4, 1, 2, 3, 4, 0];
        if packet_type == 0 {
            packet.push(0); // no token
        }
        packet.extend_from_slice(&[0x40 | (payload >> 8) as u8, payload as u8]);
        packet.extend(std::iter::repeat_n(0, payload));
        packet
    }

    #[test]
    fn a_handshake_packet_is_found_behind_an_initial() {
        let mut datagram = long_packet(0, 300);
        assert!(!carries_handshake_packet(&datagram));
        datagram.extend(long_packet(2, 40));
        assert!(carries_handshake_packet(&datagram));
        assert!(carries_handshake_packet(&long_packet(2, 10)));
        assert!(!carries_handshake_packet(&[0x40, 1, 2, 3]));
    }

    #[test]
    fn truncated_packets_are_not_read_past_their_end() {
        let datagram = long_packet(0, 300);
        for cut in 0..datagram.len() {
            assert!(!carries_handshake_packet(&datagram[..cut]));
        }
    }

    #[test]
    fn nothing_after_the_handshake_counts() {
        let mut log = log_of(&[1200], &[1000]);
        log.on_received(50_000, Received::Other);
        log.on_sent(1200);
        assert_eq!(log.report().server_flight.bytes, 1000);
        assert_eq!(log.report().client_initial.bytes, 1200);
    }
}
