//! The size of a server's Handshake flight against quiche's 64 KiB limit.
//!
//! In QUIC the server's TLS 1.3 messages after ServerHello travel in CRYPTO
//! frames of the Handshake packet number space: EncryptedExtensions,
//! Certificate (or CompressedCertificate, RFC 8879), CertificateVerify and
//! Finished, one byte stream starting at offset 0. quiche refuses any CRYPTO
//! frame that reaches offset 65,536 of that stream, so a chain that makes the
//! flight that long never gets through to a quiche-based client. The
//! Certificate message is computed exactly from the DER; the other three are
//! estimated from what a quiche server sends (see the constants).

use std::io::Write;

use boring::pkey::Id;
use boring::x509::X509;
use serde::Serialize;

/// The CRYPTO stream offset quiche will not let a peer reach, per packet
/// number space (Initial, Handshake, 1-RTT each have their own stream).
///
/// quiche 0.30.0, `quiche/src/lib.rs`: `const MAX_CRYPTO_STREAM_OFFSET: u64
/// = 1 << 16;` and, in `Connection::process_frame` for `Frame::Crypto`,
/// `if data.max_off() >= MAX_CRYPTO_STREAM_OFFSET { return
/// Err(Error::CryptoBufferExceeded); }`, where `max_off()` is the frame's
/// offset plus its length (`quiche/src/range_buf.rs`). `Connection::recv`
/// then closes the connection with transport error 0xd
/// (CRYPTO_BUFFER_EXCEEDED, RFC 9000 §20.1) and an empty reason.
///
/// So what is bounded is the *end offset* of the CRYPTO data, not what is
/// buffered: quiche hands in-order data to BoringSSL as soon as it arrives,
/// yet still refuses the frame carrying byte 65,536 (offset 65,535) or any
/// later one. The largest Handshake flight a quiche client takes is 65,535
/// bytes. Seen over loopback with hostile-chain-200: the client took the
/// Handshake CRYPTO frame ending at 64,897, refused the next one (64,897 to
/// 66,024) and closed with 0xd. BoringSSL's own bounds are looser and never the binding ones here:
/// a client takes a Certificate message, and a decompressed certificate
/// list, of up to `max_cert_list` (`SSL_MAX_CERT_LIST_DEFAULT`, 102,400 bytes)
/// and buffers up to twice that per level (`SSL_quic_max_handshake_flight_len`).
pub const QUICHE_CRYPTO_LIMIT: usize = 1 << 16;

/// EncryptedExtensions as a quiche server sends it, rounded up: the message
/// header (4), the extensions length (2), ALPN (4 + 2 + 1 + the protocol,
/// 11 for "h3") and QUIC transport parameters (4 + about 100: the original
/// and initial source connection ids of up to 20 bytes each, a stateless
/// reset token of 16, and a dozen varint limits). Server name and early data
/// acknowledgements add a few bytes more, a longer ALPN its length, a Retry
/// up to 22. Against quicprobe's lab (ALPN h3, no Retry) EncryptedExtensions
/// measured 107 to 109 bytes, so estimated flights run about 13 bytes long:
/// full-chain 1,194 estimated, 1,181 on the wire (qlog, Handshake CRYPTO).
pub const ENCRYPTED_EXTENSIONS_BYTES: usize = 120;

/// Finished: the message header and an HMAC as long as the cipher suite's
/// hash. 32 is SHA-256 (TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256,
/// what quiche and BoringSSL negotiate first); TLS_AES_256_GCM_SHA384 would
/// add 16.
pub const FINISHED_BYTES: usize = 4 + 32;

/// The handshake message header: type (1) and length (3).
const HANDSHAKE_HEADER_BYTES: usize = 4;

/// The largest a u24 length can say; BoringSSL will not compress a body longer.
const MAX_U24: usize = (1 << 24) - 1;

/// The server's Handshake flight, sized for a chain as a server would send it.
#[derive(Debug, Clone, Serialize)]
pub struct HandshakeFlight {
    /// The TLS 1.3 Certificate message, header included, exactly: no
    /// extensions on any entry (no stapled OCSP response or SCT list).
    pub certificate_message_bytes: usize,
    /// EncryptedExtensions, Certificate, CertificateVerify and Finished.
    pub estimated_flight_bytes: usize,
    /// The CompressedCertificate message (RFC 8879 §4) with zlib, header
    /// included; `None` when the list is too long for BoringSSL to compress.
    pub compressed_certificate_message_bytes: Option<usize>,
    /// The flight with CompressedCertificate in place of Certificate.
    pub estimated_compressed_flight_bytes: Option<usize>,
    /// [`QUICHE_CRYPTO_LIMIT`]: a flight must end below this offset.
    pub limit: usize,
    /// The flight reaches the limit: a quiche client closes with 0xd.
    pub exceeds_limit: bool,
    /// It reaches the limit even compressed (or cannot be compressed).
    pub exceeds_limit_compressed: bool,
}

impl HandshakeFlight {
    /// Sizes the flight of a server that sends `chain` in this order, the
    /// first certificate's key signing CertificateVerify.
    pub fn of(chain: &[X509]) -> Self {
        // Re-encoding a parsed certificate fails only when memory does.
        let ders: Vec<Vec<u8>> = chain.iter().filter_map(|c| c.to_der().ok()).collect();
        let body = certificate_body(&ders);
        let certificate_message_bytes = HANDSHAKE_HEADER_BYTES + body.len();
        let compressed_certificate_message_bytes = compressed_certificate_message_len(&body);
        let rest = ENCRYPTED_EXTENSIONS_BYTES
            + chain.first().map_or(0, certificate_verify_bytes)
            + FINISHED_BYTES;
        let estimated_flight_bytes = rest + certificate_message_bytes;
        let estimated_compressed_flight_bytes =
            compressed_certificate_message_bytes.map(|c| rest + c);
        let limit = QUICHE_CRYPTO_LIMIT;
        let exceeds_limit = estimated_flight_bytes >= limit;
        HandshakeFlight {
            certificate_message_bytes,
            estimated_flight_bytes,
            compressed_certificate_message_bytes,
            estimated_compressed_flight_bytes,
            limit,
            exceeds_limit,
            exceeds_limit_compressed: estimated_compressed_flight_bytes
                .map_or(exceeds_limit, |bytes| bytes >= limit),
        }
    }

    /// One line, always: "Handshake flight: about 3,120 bytes (2,400 with
    /// zlib compression), limit 65,536".
    pub fn describe(&self) -> String {
        format!(
            "Handshake flight: about {} bytes{}, limit {}",
            grouped(self.estimated_flight_bytes),
            self.compressed_clause(""),
            grouped(self.limit)
        )
    }

    /// One sentence when a quiche client would refuse the flight, saying
    /// whether certificate compression would rescue it; `None` otherwise.
    pub fn warning(&self) -> Option<String> {
        if !self.exceeds_limit {
            return None;
        }
        // Only a Certificate message that ends inside the limit is complete
        // before the refused frame arrives, and so reaches the verifier.
        let when = if ENCRYPTED_EXTENSIONS_BYTES + self.certificate_message_bytes >= self.limit {
            "before the chain is verified"
        } else {
            "after the chain is verified but before the handshake can finish"
        };
        let outcome = if self.exceeds_limit_compressed {
            format!("quiche-based clients (quicprobe, quiche, ...) will close with CRYPTO_BUFFER_EXCEEDED (0xd) {when}")
        } else {
            format!(
                "quiche-based clients (quicprobe, quiche, ...) will close with CRYPTO_BUFFER_EXCEEDED (0xd) {when} \
                 unless they offer zlib certificate compression and the server uses it, which brings the flight under \
                 the limit (quicprobe offers it, plain quiche does not)"
            )
        };
        Some(format!(
            "the server's Handshake flight would be about {} bytes{}, more than the {} bytes of CRYPTO data quiche \
             accepts: {outcome}",
            grouped(self.estimated_flight_bytes),
            self.compressed_clause(" certificate"),
            grouped(self.limit - 1),
        ))
    }

    /// " (M with zlib compression)", or nothing when it cannot be compressed.
    fn compressed_clause(&self, what: &str) -> String {
        self.estimated_compressed_flight_bytes
            .map_or_else(String::new, |bytes| {
                format!(" ({} with zlib{what} compression)", grouped(bytes))
            })
    }
}

/// The Certificate message body (RFC 8446 §4.4.2) as BoringSSL builds it in
/// `tls13_add_certificate`: an empty request context (1), the list length
/// (3), and per certificate its length (3), its DER and an empty extensions
/// list (2). This body, without the handshake header, is what BoringSSL hands
/// to a certificate compressor.
fn certificate_body(ders: &[Vec<u8>]) -> Vec<u8> {
    let list_len: usize = ders.iter().map(|der| 3 + der.len() + 2).sum();
    let mut body = Vec::with_capacity(1 + 3 + list_len);
    body.push(0);
    push_u24(&mut body, list_len);
    for der in ders {
        push_u24(&mut body, der.len());
        body.extend_from_slice(der);
        body.extend_from_slice(&[0, 0]);
    }
    body
}

/// CompressedCertificate (RFC 8879 §4): header (4), algorithm (2),
/// uncompressed length (3), compressed length (3) and the body zlib-deflated
/// at flate2's default level, as quicprobe's lab compressor does.
///
/// Remembered by the body's digest: deflating a chain costs a scan about as
/// much as the rest of a target's report, and a scan meets the same chain
/// target after target.
fn compressed_certificate_message_len(body: &[u8]) -> Option<usize> {
    static LENGTHS: crate::memo::Memo<[u8; 32], Option<usize>> = crate::memo::Memo::new(256);
    let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, body)
        .as_ref()
        .try_into()
        .ok()?;
    LENGTHS.get_or_compute(key, || deflated_message_len(body))
}

fn deflated_message_len(body: &[u8]) -> Option<usize> {
    if body.len() > MAX_U24 {
        return None;
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).ok()?;
    let compressed = encoder.finish().ok()?;
    Some(HANDSHAKE_HEADER_BYTES + 2 + 3 + 3 + compressed.len())
}

/// CertificateVerify: header (4), signature scheme (2), signature length (2)
/// and the longest signature the leaf's key can make: an ECDSA signature is
/// DER (72 bytes at most on P-256, 104 on P-384, 139 on P-521), RSA-PSS is as
/// long as the modulus, Ed25519 64 and Ed448 114.
fn certificate_verify_bytes(leaf: &X509) -> usize {
    let signature = leaf.public_key().map_or(72, |key| match key.id() {
        Id::RSA => (key.bits() as usize).div_ceil(8),
        Id::EC => match key.bits() {
            0..=256 => 72,
            257..=384 => 104,
            _ => 139,
        },
        Id::ED25519 => 64,
        Id::ED448 => 114,
        _ => key.size(),
    });
    HANDSHAKE_HEADER_BYTES + 2 + 2 + signature
}

fn push_u24(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
}

/// 65536 -> "65,536".
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_compressed_length_is_the_deflated_one() {
        let bodies = [vec![0u8; 3000], (0..=255u8).cycle().take(5000).collect()];
        for body in &bodies {
            for _ in 0..2 {
                assert_eq!(
                    compressed_certificate_message_len(body),
                    deflated_message_len(body)
                );
            }
        }
        assert_ne!(
            compressed_certificate_message_len(&bodies[0]),
            compressed_certificate_message_len(&bodies[1])
        );
    }
}
