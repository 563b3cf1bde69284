//! How a connection attempt ended, in words, as JSON and as an exit code.

use std::net::SocketAddr;
use std::time::Duration;

use std::collections::BTreeMap;

use quicprobe_verifier::flight::HandshakeFlight;
use quicprobe_verifier::{
    AioquicVerdict, Analysis, CertificateSummary, ChainWarning, CheckedChain, Diagnosis,
    FoundFault, Stapled, Verdict,
};
use serde::Serialize;
use serde_json::Value;

use crate::aia::AiaReport;
use crate::engine::alerts::{self, tls_alert_name};
use crate::engine::fingerprint::ServerGuess;
use crate::engine::flights::FlightReport;
use crate::engine::handshake::{Stage, StageEvent};
use crate::engine::request::Response;
use crate::engine::target::Target;
use crate::exit;
use crate::hex::hex;

/// The ways a connection attempt ends, each with curl's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Ok,
    VerificationFailed,
    HandshakeFailed,
    Timeout,
    Refused,
    /// The server ended the connection before the response was complete.
    PartialResponse,
}

impl OutcomeKind {
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => exit::OK,
            Self::VerificationFailed => exit::VERIFICATION_FAILED,
            Self::HandshakeFailed => exit::HANDSHAKE_FAILED,
            Self::Timeout => exit::TIMEOUT,
            Self::Refused => exit::REFUSED,
            Self::PartialResponse => exit::PARTIAL_RESPONSE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::VerificationFailed => "verification_failed",
            Self::HandshakeFailed => "handshake_failed",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::PartialResponse => "partial_response",
        }
    }
}

/// QUIC's CRYPTO_BUFFER_EXCEEDED (RFC 9000 §20.1).
const CRYPTO_BUFFER_EXCEEDED: u64 = 0xd;

/// How much of a close reason the text shows.
const MAX_REASON_SHOWN: usize = 200;

/// Which end of the connection did something: sent a close, had the
/// shorter idle timeout. In the JSON and the text, "client" or "server".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Server => "server",
        })
    }
}

/// A CONNECTION_CLOSE, sent or received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Close {
    pub sent_by: Side,
    pub is_app: bool,
    pub error_code: u64,
    pub reason: String,
    /// The TLS alert of a CRYPTO_ERROR (0x100 + alert).
    pub tls_alert: Option<u8>,
}

impl Close {
    pub fn from_error(sent_by: Side, error: &quiche::ConnectionError) -> Self {
        Self {
            sent_by,
            is_app: error.is_app,
            error_code: error.error_code,
            reason: String::from_utf8_lossy(&error.reason).into_owned(),
            tls_alert: (!error.is_app)
                .then(|| alerts::tls_alert_of(error.error_code))
                .flatten(),
        }
    }

    /// e.g. `0x12a CRYPTO_ERROR (TLS alert 42 bad_certificate), reason "..."`.
    pub fn describe(&self) -> String {
        let name = if self.is_app {
            "application error".to_owned()
        } else {
            alerts::transport_error_name(self.error_code)
        };
        let reason = if self.reason.is_empty() {
            "no reason given".to_owned()
        } else if self.reason.chars().count() > MAX_REASON_SHOWN {
            // The JSON keeps it whole; one line of text does not need 64 KiB.
            let shown: String = self.reason.chars().take(MAX_REASON_SHOWN).collect();
            format!("reason {shown:?}... ({} bytes in all)", self.reason.len())
        } else {
            format!("reason {:?}", self.reason)
        };
        format!("0x{:x} {name}, {reason}", self.error_code)
    }
}

/// Negotiated TLS parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsSummary {
    pub cipher: Option<String>,
    pub group: Option<String>,
    pub sig_alg: Option<String>,
}

/// Traffic and path figures at the end.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub rtt_ms: f64,
    pub sent_bytes: u64,
    pub recv_bytes: u64,
    pub sent_packets: usize,
    pub recv_packets: usize,
    pub lost: usize,
}

/// Everything known about one finished connection attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub target: String,
    pub addr: SocketAddr,
    /// Our source connection ID, hex (aioquic's trace shows its first 8 bytes).
    pub connection_id: String,
    pub stages: Vec<StageEvent>,
    pub checked: Option<CheckedChain>,
    /// The verifier's explanation of the chain, filled in by the caller.
    pub analysis: Option<Analysis>,
    pub close: Option<Close>,
    pub alpn: Option<String>,
    pub quic_version: String,
    pub tls: TlsSummary,
    pub stats: Stats,
    pub elapsed: Duration,
    /// Milliseconds to the completed handshake, when it completed.
    pub handshake_ms: Option<f64>,
    /// Every request's answer, in request order (`get` makes several).
    pub responses: Vec<Response>,
    /// The bodies bound for stdout, in request order (never in the JSON).
    pub stdout_bodies: Vec<Vec<u8>>,
    /// Why that GET could not be made.
    pub request_error: Option<String>,
    /// Addresses of the target that refused before `addr` was tried.
    pub refused_before: Vec<SocketAddr>,
    /// The handshake's flights and the anti-amplification limit.
    pub flights: Option<FlightReport>,
    /// An established connection that an idle timeout ended.
    pub idle_end: Option<IdleEnd>,
    /// Which implementation the server seems to be, once it has said enough.
    pub server_guess: Option<ServerGuess>,
    /// When our first Handshake packet went out and the Initial keys with it.
    pub initial_keys_dropped_ms: Option<f64>,
    /// `--aia-fetch`: what fetching the missing issuer showed.
    pub aia: Option<AiaReport>,
    /// `--insecure` was in effect: a rejected chain would not stop it.
    pub insecure: bool,
    /// `--session-file`: resumption and 0-RTT.
    pub session: Option<SessionReport>,
}

/// What became of a saved session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SessionReport {
    /// A ticket saved for this host and port was offered.
    pub offered: bool,
    /// The server resumed it: no certificate was sent, the chain was
    /// verified when the session was first made.
    pub resumed: bool,
    /// With --early-data: "accepted", or why 0-RTT was not.
    pub early_data: Option<&'static str>,
}

impl SessionReport {
    pub fn describe(&self) -> String {
        let resumption = match (self.offered, self.resumed) {
            (false, _) => "no saved session for this server yet".to_owned(),
            (true, true) => "resumed a saved session (no certificate is sent on \
                             resumption: the chain was verified when it was saved)"
                .to_owned(),
            (true, false) => "offered a saved session; the server did not resume it".to_owned(),
        };
        match self.early_data {
            Some(reason) => format!("{resumption}; 0-RTT {reason}"),
            None => resumption,
        }
    }
}

/// An idle timeout ended the connection: silently, as RFC 9000 §10.1 has
/// it, so the shorter of the two advertised timeouts says whose it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IdleEnd {
    /// The server when its max_idle_timeout was the shorter one.
    pub by: Side,
    /// The server's max_idle_timeout (0: none).
    pub server_idle_timeout_ms: u64,
    pub our_idle_timeout_ms: u64,
    /// Time since the last datagram from the server.
    pub idle_ms: u64,
    /// Time from the completed handshake to the end.
    pub connected_ms: u64,
}

impl IdleEnd {
    /// A few words for the summary line.
    pub fn brief(&self) -> String {
        let whose = if self.by == Side::Server {
            "the server's"
        } else {
            "our"
        };
        format!(
            "ended by {whose} idle timeout ({} ms)",
            if self.by == Side::Server {
                self.server_idle_timeout_ms
            } else {
                self.our_idle_timeout_ms
            }
        )
    }

    pub fn describe(&self) -> String {
        if self.by == Side::Server {
            format!(
                "the server's idle timeout ({} ms, shorter than our {} ms) ended the \
                 connection after {} ms without traffic; nothing went wrong",
                self.server_idle_timeout_ms, self.our_idle_timeout_ms, self.idle_ms
            )
        } else {
            format!(
                "our idle timeout ({} ms, --idle-timeout) ended the connection after {} ms \
                 without traffic",
                self.our_idle_timeout_ms, self.idle_ms
            )
        }
    }
}

impl Outcome {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: OutcomeKind,
        target: &Target,
        addr: SocketAddr,
        stages: Vec<StageEvent>,
        checked: Option<CheckedChain>,
        close: Option<Close>,
        conn: &quiche::Connection,
        elapsed: Duration,
    ) -> Self {
        // quiche names the ALPN only once the handshake completes; a chain
        // rejected later still had it chosen in EncryptedExtensions.
        let alpn = (!conn.application_proto().is_empty())
            .then(|| String::from_utf8_lossy(conn.application_proto()).into_owned())
            .or_else(|| {
                stages.iter().find_map(|s| match &s.stage {
                    Stage::EncryptedExtensions { alpn, .. } => alpn.clone(),
                    _ => None,
                })
            });
        let handshake_ms = stages
            .iter()
            .find(|s| s.stage == Stage::ClientFinishedSent)
            .map(|s| s.t_ms);
        let connection_id = hex(&conn.source_id());
        let mut outcome = Self::bare(kind, target.authority(), addr, connection_id, stages);
        outcome.tls = tls_summary(&outcome.stages);
        outcome.stats = stats_of(conn);
        outcome.checked = checked;
        outcome.close = close;
        outcome.alpn = alpn;
        outcome.elapsed = elapsed;
        outcome.handshake_ms = handshake_ms;
        outcome
    }

    /// An outcome with only what every connection has; everything learned
    /// later (the chain, the close, responses, flights...) starts empty.
    pub fn bare(
        kind: OutcomeKind,
        target: String,
        addr: SocketAddr,
        connection_id: String,
        stages: Vec<StageEvent>,
    ) -> Self {
        Self {
            kind,
            target,
            addr,
            connection_id,
            stages,
            checked: None,
            analysis: None,
            close: None,
            alpn: None,
            quic_version: "0x00000001".into(),
            tls: TlsSummary::default(),
            stats: Stats::default(),
            elapsed: Duration::ZERO,
            handshake_ms: None,
            responses: Vec::new(),
            stdout_bodies: Vec::new(),
            request_error: None,
            refused_before: Vec::new(),
            flights: None,
            idle_end: None,
            server_guess: None,
            initial_keys_dropped_ms: None,
            aia: None,
            insecure: false,
            session: None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// The last stage reached.
    pub fn last_stage(&self) -> Option<&Stage> {
        self.stages.last().map(|s| &s.stage)
    }

    /// The answer to the GET an https:// URL asks for: the first request's.
    pub fn response(&self) -> Option<&Response> {
        self.responses.first()
    }

    /// One sentence saying what happened, from everything the outcome holds
    /// now (computed when asked, so it can never be stale).
    pub fn explain(&self) -> String {
        match self.kind {
            OutcomeKind::Ok => format!(
                "handshake complete{}{}{}",
                self.alpn
                    .as_deref()
                    .map_or_else(String::new, |a| format!(", ALPN {a}")),
                self.idle_end
                    .map_or_else(String::new, |idle| format!("; then {}", idle.describe())),
                self.insecure_warning()
            ),
            OutcomeKind::VerificationFailed => format!(
                "SSL certificate problem: {}",
                self.checked.as_ref().map_or("rejected", |c| c.reason())
            ),
            OutcomeKind::Refused => format!(
                "connection refused: nothing listens on UDP {} (ICMP port unreachable)",
                self.addr
            ),
            OutcomeKind::Timeout => self.explain_timeout(),
            OutcomeKind::HandshakeFailed => self.explain_close(),
            OutcomeKind::PartialResponse => self.explain_partial(),
        }
    }

    /// Loud words when `--insecure` let a rejected chain through.
    pub fn insecure_warning(&self) -> String {
        match &self.checked {
            Some(checked) if !checked.verdict.accepted => format!(
                " -- INSECURE: the certificate chain was REJECTED (verify error:num={}:{}) \
                 and --insecure ignored it",
                checked.verdict.x509_error(),
                checked.verdict.x509_error_string()
            ),
            _ => String::new(),
        }
    }

    fn explain_partial(&self) -> String {
        if let Some(failed) = self.responses.iter().find(|r| r.error.is_some()) {
            return format!(
                "{}: {} (after {} bytes)",
                failed.path,
                failed.error.as_deref().unwrap_or_default(),
                failed.body_bytes
            );
        }
        let cut = self.responses.iter().find(|r| !r.complete);
        let how = match &self.close {
            None => "the connection ended without a CONNECTION_CLOSE (a stateless reset, \
                     RFC 9000 §10.3: the server lost the connection's state)"
                .to_owned(),
            Some(close) if close.sent_by == Side::Client => format!(
                "quicprobe closed the connection ({}): the server broke the protocol",
                close.describe()
            ),
            Some(close) => format!("the server closed the connection ({})", close.describe()),
        };
        format!(
            "{how} after {} bytes of {}, before it was complete",
            cut.map_or(0, |r| r.body_bytes),
            cut.map_or("the response", |r| r.path.as_str())
        )
    }

    fn explain_timeout(&self) -> String {
        let waited = format!("{:.1} s", self.elapsed.as_secs_f64());
        if let Some(response) = self.response().filter(|r| !r.complete) {
            return format!(
                "the response stalled after {} bytes ({waited})",
                response.body_bytes
            );
        }
        // Datagrams came back, yet no ServerHello could be read from them:
        // the path damages or cuts them (seen under `quicprobe impair
        // --truncate`); "nothing listens" would send the user the wrong way.
        let unreadable_answer = self
            .flights
            .map(|flights| flights.server_flight)
            .filter(|answer| answer.datagrams > 0);
        match (self.last_stage(), unreadable_answer) {
            (None | Some(Stage::ClientHelloSent { .. }), Some(answer)) => format!(
                "the server answered the Initial ({} datagrams, {} bytes) but no \
                 ServerHello could be read from them after {waited}: they arrive damaged \
                 or cut short (a path that truncates datagrams, or an MTU under 1200 bytes)",
                answer.datagrams, answer.bytes
            ),
            (None | Some(Stage::ClientHelloSent { .. }), None) => format!(
                "no answer to the Initial after {waited}: nothing listens on UDP {} or UDP is blocked",
                self.addr
            ),
            (Some(stage), _) => format!(
                "the handshake stalled after {} ({waited})",
                stage.name()
            ),
        }
    }

    fn explain_close(&self) -> String {
        if let Some(offered) = self.stages.iter().find_map(|s| match &s.stage {
            Stage::VersionNegotiation { offered } => Some(offered),
            _ => None,
        }) {
            return format!(
                "the server does not speak QUIC v1: it offered only {} \
                 (quicprobe, through quiche, speaks v1 only)",
                offered.join(", ")
            );
        }
        let Some(close) = &self.close else {
            return "the connection closed before the handshake completed, without a \
                    CONNECTION_CLOSE (a stateless reset, or the server dropped it)"
                .into();
        };
        if close.sent_by == Side::Server && close.tls_alert == Some(120) {
            return format!(
                "server refused ALPN; offered {} ({})",
                self.offered_alpns().join(","),
                close.describe()
            );
        }
        if close.sent_by == Side::Client
            && !close.is_app
            && close.error_code == CRYPTO_BUFFER_EXCEEDED
        {
            return format!(
                "the server's Handshake flight passed the 64 KiB of CRYPTO data quiche \
                 accepts (quiche closes at offset 65,536 of the Handshake CRYPTO stream, \
                 before the chain can be verified): quiche-based clients cannot receive a \
                 certificate chain this large uncompressed, and it is far larger than any client needs; \
                 send the leaf and its intermediates only, or compress certificates (RFC \
                 8879; `quicprobe verify --chain` gives the flight's size with and without) \
                 ({})",
                close.describe()
            );
        }
        match (close.sent_by, close.tls_alert) {
            (Side::Server, Some(alert)) => format!(
                "the server closed the connection with TLS alert {alert} {} ({})",
                tls_alert_name(alert),
                close.describe()
            ),
            (by, _) => format!("the {by} closed the connection: {}", close.describe()),
        }
    }

    fn offered_alpns(&self) -> Vec<String> {
        self.stages
            .iter()
            .find_map(|s| match &s.stage {
                Stage::ClientHelloSent { alpns, .. } => Some(alpns.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The outcome as one JSON object; the documented fields are a contract.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.json_view()).unwrap_or(Value::Null)
    }

    fn json_view(&self) -> OutcomeJson<'_> {
        let analysis = self.analysis.as_ref();
        OutcomeJson {
            exit_code: self.exit_code(),
            outcome: self.kind.name(),
            explanation: self.explain(),
            target: &self.target,
            address: self.addr.to_string(),
            refused_before: self
                .refused_before
                .iter()
                .map(ToString::to_string)
                .collect(),
            close: self.close.as_ref(),
            stages: &self.stages,
            alpn: self.alpn.as_deref(),
            quic_version: &self.quic_version,
            tls: &self.tls,
            stats: &self.stats,
            handshake_ms: self.handshake_ms,
            flights: self.flights.as_ref(),
            idle_end: self.idle_end.as_ref(),
            aioquic_verdict: self.checked.as_ref().and_then(|c| c.aioquic.as_ref()),
            server_implementation: self.server_guess.as_ref(),
            aia: self.aia.as_ref(),
            stapled: self.checked.as_ref().map(|c| c.stapled),
            insecure: self.insecure,
            session: self.session.as_ref(),
            insecure_override: self.kind == OutcomeKind::Ok && !self.insecure_warning().is_empty(),
            response: self.response(),
            responses: &self.responses,
            request_error: self.request_error.as_deref(),
            elapsed_ms: self.elapsed.as_secs_f64() * 1000.0,
            verdict: analysis.map(|a| &a.verdict),
            chain: analysis.map(|a| a.chain.as_slice()),
            warnings: analysis.map(|a| a.warnings.as_slice()),
            other_faults: analysis.map(|a| a.other_faults.as_slice()),
            accepted_by: analysis.map(|a| &a.accepted_by),
            diagnosis: analysis.map(|a| &a.diagnosis),
            handshake_flight: analysis.map(|a| &a.handshake_flight),
        }
    }
}

/// The JSON object of an outcome, the documented contract (docs/usage.md),
/// derived by serde; pinned by `client/tests/json_contract.rs`. The chain's
/// fields are null, or absent for `warnings` and `other_faults`, when no
/// chain was seen.
#[derive(Serialize)]
struct OutcomeJson<'a> {
    exit_code: u8,
    outcome: &'static str,
    explanation: String,
    target: &'a str,
    address: String,
    refused_before: Vec<String>,
    close: Option<&'a Close>,
    stages: &'a [StageEvent],
    alpn: Option<&'a str>,
    quic_version: &'a str,
    tls: &'a TlsSummary,
    stats: &'a Stats,
    handshake_ms: Option<f64>,
    flights: Option<&'a FlightReport>,
    idle_end: Option<&'a IdleEnd>,
    aioquic_verdict: Option<&'a AioquicVerdict>,
    server_implementation: Option<&'a ServerGuess>,
    aia: Option<&'a AiaReport>,
    stapled: Option<Stapled>,
    insecure: bool,
    session: Option<&'a SessionReport>,
    insecure_override: bool,
    response: Option<&'a Response>,
    responses: &'a [Response],
    request_error: Option<&'a str>,
    elapsed_ms: f64,
    verdict: Option<&'a Verdict>,
    chain: Option<&'a [CertificateSummary]>,
    accepted_by: Option<&'a BTreeMap<&'static str, bool>>,
    diagnosis: Option<&'a Diagnosis>,
    handshake_flight: Option<&'a HandshakeFlight>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [ChainWarning]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    other_faults: Option<&'a [FoundFault]>,
}

/// The first failure's exit code, or 0 when every connection succeeded.
pub fn overall_exit_code(outcomes: &[Outcome]) -> u8 {
    outcomes
        .iter()
        .map(Outcome::exit_code)
        .find(|code| *code != 0)
        .unwrap_or(0)
}

fn tls_summary(stages: &[StageEvent]) -> TlsSummary {
    let mut tls = TlsSummary::default();
    for event in stages {
        match &event.stage {
            Stage::ServerHello { cipher, group } => {
                tls.cipher.clone_from(cipher);
                tls.group.clone_from(group);
            }
            Stage::CertificateVerify {
                signature_algorithm,
            } => tls.sig_alg.clone_from(signature_algorithm),
            _ => {}
        }
    }
    tls
}

fn stats_of(conn: &quiche::Connection) -> Stats {
    let stats = conn.stats();
    let rtt = conn
        .path_stats()
        .next()
        .map_or(Duration::ZERO, |path| path.rtt);
    Stats {
        rtt_ms: rtt.as_secs_f64() * 1000.0,
        sent_bytes: stats.sent_bytes,
        recv_bytes: stats.recv_bytes,
        sent_packets: stats.sent,
        recv_packets: stats.recv,
        lost: stats.lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close_with_reason(reason: String) -> Close {
        Close {
            sent_by: Side::Server,
            is_app: false,
            error_code: 0xa,
            reason,
            tls_alert: None,
        }
    }

    #[test]
    fn a_huge_close_reason_is_cut_in_the_text_and_its_size_said() {
        let text = close_with_reason("x".repeat(65_459)).describe();
        assert!(text.len() < 300, "{} characters", text.len());
        assert!(text.contains("(65459 bytes in all)"), "{text}");
    }

    #[test]
    fn a_short_close_reason_is_shown_whole() {
        let text = close_with_reason("bye".into()).describe();
        assert_eq!(text, "0xa PROTOCOL_VIOLATION, reason \"bye\"");
    }
}
