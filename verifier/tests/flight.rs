//! The Handshake flight of the scenarios in certs/ against quiche's 64 KiB
//! CRYPTO limit: the Certificate message sized exactly, the flight estimated,
//! and the hostile scenarios that a quiche client cannot receive.

use std::path::{Path, PathBuf};

use boring::x509::X509;
use quicprobe_verifier::flight::{
    HandshakeFlight, ENCRYPTED_EXTENSIONS_BYTES, FINISHED_BYTES, QUICHE_CRYPTO_LIMIT,
};
use quicprobe_verifier::read_certificates;

fn chain(scenario: &str) -> Vec<X509> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs")
        .join(scenario)
        .join("chain.pem");
    read_certificates(&path).expect("scenario chain")
}

fn der_len(certificate: &X509) -> usize {
    certificate.to_der().expect("DER").len()
}

#[test]
fn the_limit_is_quiches_64_kib_crypto_offset() {
    assert_eq!(QUICHE_CRYPTO_LIMIT, 65_536);
}

#[test]
fn a_two_certificate_chain_has_a_certificate_message_of_exactly_the_tls_13_framing() {
    let chain = chain("full-chain");
    assert_eq!(
        chain.len(),
        2,
        "full-chain sends the leaf and one intermediate"
    );
    let flight = HandshakeFlight::of(&chain);
    // header 4, context length 1, list length 3; per entry 3 + DER + 2.
    let expected = 4 + 1 + 3 + (3 + der_len(&chain[0]) + 2) + (3 + der_len(&chain[1]) + 2);
    assert_eq!(flight.certificate_message_bytes, expected);
}

#[test]
fn the_flight_adds_encrypted_extensions_certificate_verify_and_finished() {
    let chain = chain("full-chain");
    let flight = HandshakeFlight::of(&chain);
    let rest = flight.estimated_flight_bytes - flight.certificate_message_bytes;
    // The lab's leaves are P-256: CertificateVerify is 4 + 2 + 2 + at most 72.
    assert_eq!(
        rest,
        ENCRYPTED_EXTENSIONS_BYTES + (4 + 2 + 2 + 72) + FINISHED_BYTES
    );
    assert_eq!(
        flight.estimated_compressed_flight_bytes.unwrap()
            - flight.compressed_certificate_message_bytes.unwrap(),
        rest
    );
}

#[test]
fn full_chain_is_far_under_the_limit_and_has_no_warning() {
    let flight = HandshakeFlight::of(&chain("full-chain"));
    assert!(
        flight.estimated_flight_bytes < QUICHE_CRYPTO_LIMIT / 10,
        "{flight:?}"
    );
    assert!(!flight.exceeds_limit);
    assert!(!flight.exceeds_limit_compressed);
    assert_eq!(flight.warning(), None);
    assert!(flight.describe().starts_with("Handshake flight: about "));
    assert!(flight.describe().ends_with(", limit 65,536"));
}

#[test]
fn hostile_chain_200_exceeds_the_limit_and_compression_brings_it_under() {
    let chain = chain("hostile-chain-200");
    let flight = HandshakeFlight::of(&chain);
    let der_total: usize = chain.iter().map(der_len).sum();
    assert_eq!(
        flight.certificate_message_bytes,
        4 + 1 + 3 + der_total + 200 * 5
    );
    assert!(flight.exceeds_limit, "{flight:?}");
    // 199 intermediates that differ only in names, keys and signatures: zlib
    // finds the repeated structure within its 32 KiB window.
    assert!(!flight.exceeds_limit_compressed, "{flight:?}");
    let warning = flight.warning().expect("a warning");
    assert!(warning.contains("CRYPTO_BUFFER_EXCEEDED"), "{warning}");
    assert!(
        warning.contains("before the chain is verified"),
        "{warning}"
    );
    assert!(
        warning.contains("unless they offer zlib certificate compression"),
        "{warning}"
    );
}

#[test]
fn hostile_cert_64k_exceeds_the_limit_and_compression_brings_it_under() {
    let chain = chain("hostile-cert-64k");
    let flight = HandshakeFlight::of(&chain);
    assert_eq!(
        flight.certificate_message_bytes,
        4 + 1 + 3 + 3 + der_len(&chain[0]) + 2
    );
    // The certificate alone passes the limit, so it never reaches the verifier.
    assert!(
        flight.certificate_message_bytes > QUICHE_CRYPTO_LIMIT,
        "{flight:?}"
    );
    assert!(flight.exceeds_limit, "{flight:?}");
    // 4,200 DNS names of one pattern deflate to a fraction.
    assert!(!flight.exceeds_limit_compressed, "{flight:?}");
    assert!(
        flight.compressed_certificate_message_bytes.unwrap() < QUICHE_CRYPTO_LIMIT / 4,
        "{flight:?}"
    );
    let warning = flight.warning().expect("a warning");
    assert!(
        warning.contains("before the chain is verified"),
        "{warning}"
    );
    assert!(
        warning.contains("unless they offer zlib certificate compression"),
        "{warning}"
    );
}

#[test]
fn the_description_names_both_sizes_and_the_limit_with_thousands_separators() {
    let flight = HandshakeFlight::of(&chain("hostile-chain-200"));
    let line = flight.describe();
    assert!(line.contains("with zlib compression"), "{line}");
    assert!(line.contains("limit 65,536"), "{line}");
    assert!(line.contains(','), "{line}");
}

#[test]
fn an_empty_chain_is_just_the_framing() {
    let flight = HandshakeFlight::of(&[]);
    assert_eq!(flight.certificate_message_bytes, 4 + 1 + 3);
    assert!(!flight.exceeds_limit);
}
