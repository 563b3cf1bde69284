//! How a connection attempt ended, in words, as JSON and as an exit code.

use std::net::SocketAddr;
use std::time::Duration;

use quicprobe_verifier::{Analysis, CheckedChain};
use serde::Serialize;

use crate::aia::AiaReport;
use crate::engine::fingerprint::ServerGuess;
use crate::engine::flights::FlightReport;
use crate::engine::handshake::{Stage, StageEvent};
use crate::engine::request::Response;
use crate::engine::target::Target;
use crate::exit;
use crate::hex::hex;

mod ending;
mod explain;
mod json;

pub use ending::{Close, IdleEnd, SessionReport, Side};

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

/// Everything known about one finished connection attempt, in five
/// records: who and where, the handshake, the chain and its verdict, the
/// application, and how it ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub peer: Peer,
    pub handshake: Handshake,
    pub chain: ChainCheck,
    pub application: Application,
    pub end: End,
}

/// Who was dialled, where, and who answered.
#[derive(Debug, Clone)]
pub struct Peer {
    pub target: String,
    pub addr: SocketAddr,
    /// Addresses of the target that refused before `addr` was tried.
    pub refused_before: Vec<SocketAddr>,
    /// Our source connection ID, hex (aioquic's trace shows its first 8 bytes).
    pub connection_id: String,
    /// Which implementation the server seems to be, once it has said enough.
    pub server_guess: Option<ServerGuess>,
}

/// The handshake: its stages and what they settled.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub stages: Vec<StageEvent>,
    pub quic_version: String,
    pub alpn: Option<String>,
    pub tls: TlsSummary,
    /// Milliseconds to the completed handshake, when it completed.
    pub handshake_ms: Option<f64>,
    /// The handshake's flights and the anti-amplification limit.
    pub flights: Option<FlightReport>,
    /// When our first Handshake packet went out and the Initial keys with it.
    pub initial_keys_dropped_ms: Option<f64>,
    /// The index in `stages` of the last stage recorded before that packet
    /// went out: a live trace prints the drop right after that stage (not in
    /// the JSON; `initial_keys_dropped_ms` is).
    pub initial_keys_dropped_after_stage: Option<usize>,
    /// `--session-file`: resumption and 0-RTT.
    pub session: Option<SessionReport>,
}

/// The server's chain: the verdict reached in the handshake, its
/// explanation, and what fetching its missing issuers showed.
#[derive(Debug, Clone, Default)]
pub struct ChainCheck {
    pub checked: Option<CheckedChain>,
    /// The verifier's explanation of the chain, filled in by the caller.
    pub analysis: Option<Analysis>,
    /// `--aia-fetch`: what fetching the missing issuers showed.
    pub aia: Option<AiaReport>,
    /// `--insecure` was in effect: a rejected chain would not stop it.
    pub insecure: bool,
}

/// What was asked of the server once connected.
#[derive(Debug, Clone, Default)]
pub struct Application {
    /// Every request's answer, in request order (`get` makes several).
    pub responses: Vec<Response>,
    /// The bodies bound for stdout, in request order (never in the JSON).
    pub stdout_bodies: Vec<Vec<u8>>,
    /// Why the requests could not be made.
    pub request_error: Option<String>,
}

/// How the connection ended.
#[derive(Debug, Clone)]
pub struct End {
    pub kind: OutcomeKind,
    pub close: Option<Close>,
    /// An established connection that an idle timeout ended.
    pub idle_end: Option<IdleEnd>,
    pub stats: Stats,
    pub elapsed: Duration,
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
        outcome.handshake.tls = tls_summary(&outcome.handshake.stages);
        outcome.end.stats = stats_of(conn);
        outcome.chain.checked = checked;
        outcome.end.close = close;
        outcome.handshake.alpn = alpn;
        outcome.end.elapsed = elapsed;
        outcome.handshake.handshake_ms = handshake_ms;
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
            peer: Peer {
                target,
                addr,
                refused_before: Vec::new(),
                connection_id,
                server_guess: None,
            },
            handshake: Handshake {
                stages,
                quic_version: "0x00000001".into(),
                alpn: None,
                tls: TlsSummary::default(),
                handshake_ms: None,
                flights: None,
                initial_keys_dropped_ms: None,
                initial_keys_dropped_after_stage: None,
                session: None,
            },
            chain: ChainCheck::default(),
            application: Application::default(),
            end: End {
                kind,
                close: None,
                idle_end: None,
                stats: Stats::default(),
                elapsed: Duration::ZERO,
            },
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.end.kind.exit_code()
    }

    /// The last stage reached.
    pub fn last_stage(&self) -> Option<&Stage> {
        self.handshake.stages.last().map(|s| &s.stage)
    }

    /// The answer to the GET an https:// URL asks for: the first request's.
    pub fn response(&self) -> Option<&Response> {
        self.application.responses.first()
    }
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
