//! The native trace: curl `-v` and `openssl s_client` in spirit, one `* `
//! line per stage with its time and the traffic behind it, then what the
//! connection showed and curl's last line.

use std::fmt::Write;
use std::net::SocketAddr;

use super::{summary_line, ConnectionStart};
use crate::engine::handshake::{Stage, StageEvent};
use crate::engine::outcome::Outcome;
use crate::report::render;

pub(super) fn refused(addr: SocketAddr) -> String {
    format!("* {addr}: connection refused; trying the next address\n")
}

pub(super) fn start(start: &ConnectionStart) -> String {
    format!(
        "* Connecting to {} ({}) over QUIC v1\n",
        start.target, start.addr
    )
}

pub(super) fn stage(event: &StageEvent) -> String {
    let (arrow, text) = stage_words(&event.stage);
    let traffic = event.traffic;
    format!(
        "* {:>8.1} ms {arrow} {text}  [out {} B/{} pkt, in {} B/{} pkt]\n",
        event.t_ms,
        traffic.sent_bytes,
        traffic.sent_packets,
        traffic.recv_bytes,
        traffic.recv_packets
    )
}

/// Which way a stage went (`>` sent, `<` received, `=` decided) and what it said.
fn stage_words(stage: &Stage) -> (&'static str, String) {
    match stage {
        Stage::ClientHelloSent { sni, alpns, bytes } => (
            ">",
            format!(
                "ClientHello (1): SNI {}, ALPN {}, {bytes} bytes",
                sni.as_deref().unwrap_or("(none)"),
                alpns.join(",")
            ),
        ),
        Stage::Retry { token_bytes } => (
            "<",
            format!("Retry: the server validates our address ({token_bytes}-byte token)"),
        ),
        Stage::VersionNegotiation { offered } => (
            "<",
            format!(
                "Version Negotiation: the server offers {}",
                offered.join(", ")
            ),
        ),
        Stage::ServerHello { cipher, group } => (
            "<",
            format!(
                "ServerHello (2): {}, {}",
                cipher.as_deref().unwrap_or("?"),
                group.as_deref().unwrap_or("?")
            ),
        ),
        Stage::EncryptedExtensions {
            alpn,
            transport_parameters,
        } => (
            "<",
            format!(
                "EncryptedExtensions (8): ALPN {}{}",
                alpn.as_deref().unwrap_or("(none)"),
                transport_parameters
                    .as_deref()
                    .map_or_else(String::new, |p| format!("; {p}"))
            ),
        ),
        Stage::Certificate {
            certificates,
            bytes,
            compression,
        } => (
            "<",
            format!(
                "Certificate (11): {certificates} certificate{}, {bytes} bytes{}",
                if *certificates == 1 { "" } else { "s" },
                compression.as_ref().map_or_else(String::new, |c| format!(
                    ", compressed (25) with {} to {} bytes on the wire",
                    c.algorithm, c.wire_bytes
                ))
            ),
        ),
        Stage::Verdict {
            accepted,
            x509_error,
            reason,
        } => (
            "=",
            if *accepted {
                "verify return:0 (ok)".into()
            } else {
                format!("verify error:num={x509_error}:{reason}")
            },
        ),
        Stage::CertificateVerify {
            signature_algorithm,
        } => (
            "<",
            format!(
                "CertificateVerify (15): {}",
                signature_algorithm.as_deref().unwrap_or("?")
            ),
        ),
        Stage::CertificateRequest {
            signature_algorithms,
            certificate_authorities,
        } => (
            "<",
            format!(
                "CertificateRequest (13): the server asks for a client certificate; \
                 signature algorithms {}; {}",
                if signature_algorithms.is_empty() {
                    "(none listed)".to_owned()
                } else {
                    signature_algorithms.join(",")
                },
                if certificate_authorities.is_empty() {
                    "no certificate_authorities (any issuer it trusts)".to_owned()
                } else {
                    format!("issued by one of: {}", certificate_authorities.join(" | "))
                }
            ),
        ),
        Stage::ClientCertificateSent {
            certificates,
            bytes,
        } => (
            ">",
            if *certificates == 0 {
                format!(
                    "Certificate (11): empty, we have no client certificate (--cert), {bytes} bytes"
                )
            } else {
                format!(
                    "Certificate (11): client certificate and {} intermediate{}, {bytes} bytes",
                    certificates - 1,
                    if *certificates == 2 { "" } else { "s" }
                )
            },
        ),
        Stage::ClientCertificateVerifySent {
            signature_algorithm,
        } => (
            ">",
            format!(
                "CertificateVerify (15): {}",
                signature_algorithm.as_deref().unwrap_or("?")
            ),
        ),
        Stage::ServerFinished => ("<", "Finished (20)".into()),
        Stage::ClientFinishedSent => (">", "Finished (20)".into()),
        Stage::HandshakeDone => ("<", "HANDSHAKE_DONE".into()),
    }
}

/// What the connection showed besides its stages, then curl's last line.
pub(super) fn finish(outcome: &Outcome) -> String {
    let mut out = String::new();
    if let Some(flights) = &outcome.handshake.flights {
        let _ = writeln!(out, "* Flights: {}", flights.describe());
    }
    if let Some(guess) = &outcome.peer.server_guess {
        let _ = writeln!(out, "* Peer: {}", guess.describe());
    }
    if let Some(checked) = &outcome.chain.checked {
        let _ = writeln!(out, "* Stapled: {}", stapled_words(&checked.stapled));
    }
    if let Some(session) = &outcome.handshake.session {
        let _ = writeln!(out, "* Session: {}", session.describe());
    }
    chain_lines(&mut out, outcome);
    response_line(&mut out, outcome);
    if let Some(error) = &outcome.application.request_error {
        let _ = writeln!(out, "* No request made: {error}");
    }
    if let Some(aia) = &outcome.chain.aia {
        let _ = writeln!(out, "* AIA fetch: {}", aia.describe());
    }
    if let Some(idle) = &outcome.end.idle_end {
        let _ = writeln!(out, "* Idle: {}", idle.describe());
    }
    if let Some(close) = &outcome.end.close {
        let _ = writeln!(
            out,
            "* Close sent by the {}: {}",
            close.sent_by,
            close.describe()
        );
    }
    let _ = writeln!(out, "{}", summary_line(outcome));
    out
}

/// The chain as a tree with the trust store when accepted; the whole
/// analysis (verdict, diagnosis, fix) when not.
fn chain_lines(out: &mut String, outcome: &Outcome) {
    let Some(analysis) = &outcome.chain.analysis else {
        return;
    };
    let text = if analysis.verdict.accepted {
        let mut tree = String::new();
        render::chain_tree(&mut tree, analysis);
        render::trust_store_line(&mut tree, analysis);
        tree
    } else {
        render::analysis(analysis)
    };
    for line in text.lines() {
        let _ = writeln!(out, "* {line}");
    }
}

fn response_line(out: &mut String, outcome: &Outcome) {
    let Some(response) = outcome.response() else {
        return;
    };
    let _ = writeln!(
        out,
        "* Response: {} {}, {} bytes{}{}",
        outcome.handshake.alpn.as_deref().unwrap_or("?"),
        response
            .status
            .map_or_else(|| "(no status line)".to_owned(), |s| s.to_string()),
        response.body_bytes,
        response
            .body_sha256
            .as_deref()
            .map_or_else(String::new, |sha| format!(", sha256 {sha}")),
        if response.complete {
            ""
        } else {
            " (incomplete)"
        }
    );
}

/// What the server stapled to its chain, in words.
fn stapled_words(stapled: &quicprobe_verifier::Stapled) -> String {
    let part = |what: &str, bytes: Option<usize>| match bytes {
        Some(bytes) => format!("{what} ({bytes} bytes)"),
        None => format!("no {what}"),
    };
    format!(
        "{}, {} (both were requested)",
        part("OCSP response", stapled.ocsp_response_bytes),
        part("SCT list", stapled.sct_list_bytes)
    )
}
