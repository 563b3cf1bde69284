//! Renders a finished connection: the stages in curl `-v` spirit (native), as
//! aioquic 1.x logs them (so the two traces can be compared line by line), or
//! as one JSON object per stage.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::engine::handshake::{Stage, StageEvent};
use crate::engine::outcome::{Outcome, OutcomeKind, Side};
use crate::report::render;

/// How stages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceStyle {
    #[default]
    Native,
    Aioquic,
    Json,
}

/// The trace of one connection in the chosen style.
pub fn render(outcome: &Outcome, style: TraceStyle, index: usize) -> String {
    match style {
        TraceStyle::Native => native(outcome),
        TraceStyle::Aioquic => aioquic(outcome),
        TraceStyle::Json => json_lines(outcome, index),
    }
}

/// curl's last line: `quicprobe: (60) SSL certificate problem: ...`.
pub fn summary_line(outcome: &Outcome) -> String {
    match outcome.end.kind {
        OutcomeKind::Ok => format!(
            "quicprobe: ok: {} ({}) {}{}, handshake {} ms, rtt {:.1} ms{}{}",
            outcome.peer.target,
            outcome.peer.addr,
            outcome.handshake.alpn.as_deref().unwrap_or("-"),
            tls_words(outcome),
            outcome
                .handshake
                .handshake_ms
                .map_or_else(|| "?".into(), |ms| format!("{ms:.1}")),
            outcome.end.stats.rtt_ms,
            outcome
                .end
                .idle_end
                .map_or_else(String::new, |idle| format!(", {}", idle.brief())),
            outcome.insecure_warning()
        ),
        _ => format!(
            "quicprobe: ({}) {} ({}): {}",
            outcome.exit_code(),
            outcome.peer.target,
            outcome.peer.addr,
            outcome.explain()
        ),
    }
}

fn tls_words(outcome: &Outcome) -> String {
    let parts: Vec<&str> = [
        &outcome.handshake.tls.cipher,
        &outcome.handshake.tls.group,
        &outcome.handshake.tls.sig_alg,
    ]
    .into_iter()
    .filter_map(|p| p.as_deref())
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(", {}", parts.join("/"))
    }
}

fn native(outcome: &Outcome) -> String {
    let mut out = String::new();
    for refused in &outcome.peer.refused_before {
        let _ = writeln!(
            out,
            "* {refused}: connection refused; trying the next address"
        );
    }
    let _ = writeln!(
        out,
        "* Connecting to {} ({}) over QUIC v1",
        outcome.peer.target, outcome.peer.addr
    );
    for event in &outcome.handshake.stages {
        let _ = writeln!(out, "{}", native_stage_line(event));
    }
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
    if let Some(analysis) = &outcome.chain.analysis {
        if analysis.verdict.accepted {
            let mut tree = String::new();
            render::chain_tree(&mut tree, analysis);
            render::trust_store_line(&mut tree, analysis);
            for line in tree.lines() {
                let _ = writeln!(out, "* {line}");
            }
        } else {
            for line in render::analysis(analysis).lines() {
                let _ = writeln!(out, "* {line}");
            }
        }
    }
    if let Some(response) = outcome.response() {
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

fn native_stage_line(event: &StageEvent) -> String {
    let (arrow, text) = match &event.stage {
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
                format!("Certificate (11): empty, we have no client certificate (--cert), {bytes} bytes")
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
    };
    let traffic = event.traffic;
    format!(
        "* {:>8.1} ms {arrow} {text}  [out {} B/{} pkt, in {} B/{} pkt]",
        event.t_ms,
        traffic.sent_bytes,
        traffic.sent_packets,
        traffic.recv_bytes,
        traffic.recv_packets
    )
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

/// One JSON object per line: each stage, then the outcome (`"name": "outcome"`,
/// with the fields of `--json`), each tagged with the connection's index.
fn json_lines(outcome: &Outcome, index: usize) -> String {
    let mut out = String::new();
    let stages = outcome
        .handshake
        .stages
        .iter()
        .map(|event| serde_json::to_value(event).unwrap_or_default());
    let mut last = outcome.to_json();
    if let Some(object) = last.as_object_mut() {
        object.insert("name".into(), json!("outcome"));
    }
    for mut value in stages.chain(std::iter::once(last)) {
        if let Some(object) = value.as_object_mut() {
            object.insert("connection".into(), json!(index));
        }
        let _ = writeln!(out, "{value}");
    }
    out
}

/// The lines aioquic 1.x logs at DEBUG for the same handshake, with logging
/// format `%(asctime)s %(levelname)s %(name)s %(message)s`.
fn aioquic(outcome: &Outcome) -> String {
    let start = SystemTime::now()
        .checked_sub(outcome.end.elapsed)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let cid: String = outcome.peer.connection_id.chars().take(16).collect();
    let mut lines: Vec<(f64, &'static str, String)> = Vec::new();
    let mut line = |event_ms: f64, level: &'static str, message: String| {
        lines.push((event_ms, level, message));
    };
    let mut connected = false;
    let mut discarded = Epochs::default();
    for event in &outcome.handshake.stages {
        let t = event.t_ms;
        match &event.stage {
            Stage::ClientHelloSent { .. } => line(
                t,
                "DEBUG",
                "TLS State.CLIENT_HANDSHAKE_START -> State.CLIENT_EXPECT_SERVER_HELLO".into(),
            ),
            Stage::Retry { token_bytes } => line(
                t,
                "INFO",
                format!("Retrying with token ({token_bytes} bytes)"),
            ),
            Stage::ServerHello { .. } => {
                if !connected {
                    connected = true;
                    line(
                        t,
                        "DEBUG",
                        "QuicConnectionState.FIRSTFLIGHT -> QuicConnectionState.CONNECTED".into(),
                    );
                    line(
                        t,
                        "INFO",
                        "Negotiated protocol version 0x00000001 (VERSION_1)".into(),
                    );
                }
                line(
                    t,
                    "DEBUG",
                    "TLS State.CLIENT_EXPECT_SERVER_HELLO -> State.CLIENT_EXPECT_ENCRYPTED_EXTENSIONS"
                        .into(),
                );
            }
            Stage::EncryptedExtensions { .. } => line(
                t,
                "DEBUG",
                "TLS State.CLIENT_EXPECT_ENCRYPTED_EXTENSIONS -> \
                 State.CLIENT_EXPECT_CERTIFICATE_REQUEST_OR_CERTIFICATE"
                    .into(),
            ),
            Stage::Certificate { .. } => line(
                t,
                "DEBUG",
                "TLS State.CLIENT_EXPECT_CERTIFICATE_REQUEST_OR_CERTIFICATE -> \
                 State.CLIENT_EXPECT_CERTIFICATE_VERIFY"
                    .into(),
            ),
            Stage::Verdict {
                accepted: false,
                reason,
                ..
            } => {
                let code = outcome.end.close.as_ref().map_or(0x12a, |c| c.error_code);
                line(
                    t,
                    "WARNING",
                    format!("Error: {code}, reason: {reason}, frame_type: 6"),
                );
                line(
                    t,
                    "INFO",
                    format!("Connection close sent (code 0x{code:X}, reason {reason})"),
                );
                line(
                    t,
                    "DEBUG",
                    "QuicConnectionState.CONNECTED -> QuicConnectionState.CLOSING".into(),
                );
            }
            Stage::CertificateVerify { .. } => line(
                t,
                "DEBUG",
                "TLS State.CLIENT_EXPECT_CERTIFICATE_VERIFY -> State.CLIENT_EXPECT_FINISHED".into(),
            ),
            Stage::ServerFinished => line(
                t,
                "DEBUG",
                "TLS State.CLIENT_EXPECT_FINISHED -> State.CLIENT_POST_HANDSHAKE".into(),
            ),
            Stage::ClientFinishedSent => {
                if let Some(alpn) = &outcome.handshake.alpn {
                    line(t, "INFO", format!("ALPN negotiated protocol {alpn}"));
                }
            }
            // HANDSHAKE_DONE confirms the handshake: the Handshake keys go.
            Stage::HandshakeDone => discarded.discard(Epoch::Handshake, t, &mut line),
            _ => {}
        }
    }
    // Once a Handshake packet went out, the Initial keys went too.
    if let Some(at) = outcome.handshake.initial_keys_dropped_ms {
        discarded.discard(Epoch::Initial, (at * 10.0).round() / 10.0, &mut line);
    }
    let end_ms = outcome.end.elapsed.as_secs_f64() * 1000.0;
    if outcome.end.kind == OutcomeKind::Ok {
        if let Some(close) = outcome
            .end
            .close
            .as_ref()
            .filter(|c| c.sent_by == Side::Client)
        {
            line(
                end_ms,
                "INFO",
                format!(
                    "Connection close sent (code 0x{:X}, reason {})",
                    close.error_code, close.reason
                ),
            );
            line(
                end_ms,
                "DEBUG",
                "QuicConnectionState.CONNECTED -> QuicConnectionState.CLOSING".into(),
            );
        }
    }
    if connected {
        // The end of the close drops every key still held.
        for epoch in [Epoch::Initial, Epoch::Handshake, Epoch::OneRtt] {
            discarded.discard(epoch, end_ms, &mut line);
        }
        line(
            end_ms,
            "DEBUG",
            "QuicConnectionState.CLOSING -> QuicConnectionState.TERMINATED".into(),
        );
    }
    // In time order; lines of the same moment keep the order they were made in.
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = String::new();
    for (event_ms, level, message) in lines {
        // A time past what SystemTime holds (or not a number) prints as the start.
        let at = Duration::try_from_secs_f64(event_ms.max(0.0) / 1000.0)
            .ok()
            .and_then(|offset| start.checked_add(offset))
            .unwrap_or(start);
        let _ = writeln!(out, "{} {level} quic [{cid}] {message}", asctime(at));
    }
    out
}

/// aioquic's packet number spaces, as it names them in its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    Initial,
    Handshake,
    OneRtt,
}

impl Epoch {
    fn name(self) -> &'static str {
        match self {
            Self::Initial => "Epoch.INITIAL",
            Self::Handshake => "Epoch.HANDSHAKE",
            Self::OneRtt => "Epoch.ONE_RTT",
        }
    }
}

/// The epochs whose keys are gone; each is logged once, as aioquic does.
#[derive(Debug, Default)]
struct Epochs(Vec<Epoch>);

impl Epochs {
    fn discard(
        &mut self,
        epoch: Epoch,
        at_ms: f64,
        line: &mut impl FnMut(f64, &'static str, String),
    ) {
        if !self.0.contains(&epoch) {
            self.0.push(epoch);
            line(at_ms, "DEBUG", format!("Discarding epoch {}", epoch.name()));
        }
    }
}

/// Python logging's default asctime: `2026-11-27 01:02:03,456` (UTC here).
fn asctime(at: SystemTime) -> String {
    let since_epoch = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    // Past the year 9999 (the time crate's range), the last moment it holds.
    let datetime = time::Duration::try_from(since_epoch)
        .ok()
        .and_then(|offset| time::OffsetDateTime::UNIX_EPOCH.checked_add(offset))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc());
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        datetime.year(),
        u8::from(datetime.month()),
        datetime.day(),
        datetime.hour(),
        datetime.minute(),
        datetime.second(),
        datetime.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_past_the_year_9999_prints_the_last_moment_not_a_panic() {
        // Found by fuzzing (fuzz/corpus/aioquic_trace/crash-time-overflow).
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(asctime(far), "9999-12-31 23:59:59,999");
    }
}
