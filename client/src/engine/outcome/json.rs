//! The outcome's JSON object, the documented contract (docs/usage.md),
//! derived by serde from a view of the outcome; pinned by
//! `client/tests/json_contract.rs`.

use std::collections::BTreeMap;

use quicprobe_verifier::flight::HandshakeFlight;
use quicprobe_verifier::{
    AioquicVerdict, CertificateSummary, ChainWarning, Diagnosis, FoundFault, Stapled, Verdict,
};
use serde::Serialize;
use serde_json::Value;

use super::{
    ClientCertificateReport, Close, IdleEnd, Outcome, OutcomeKind, SessionReport, Stats, TlsSummary,
};
use crate::aia::AiaReport;
use crate::engine::fingerprint::ServerGuess;
use crate::engine::flights::FlightReport;
use crate::engine::handshake::StageEvent;
use crate::engine::params::ServerParameters;
use crate::engine::request::Response;

impl Outcome {
    /// The outcome as one JSON object; the documented fields are a contract.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.json_view()).unwrap_or(Value::Null)
    }

    fn json_view(&self) -> OutcomeJson<'_> {
        let analysis = self.chain.analysis.as_ref();
        OutcomeJson {
            exit_code: self.exit_code(),
            outcome: self.end.kind.name(),
            explanation: self.explain(),
            target: &self.peer.target,
            address: self.peer.addr.to_string(),
            refused_before: self
                .peer
                .refused_before
                .iter()
                .map(ToString::to_string)
                .collect(),
            close: self.end.close.as_ref(),
            stages: &self.handshake.stages,
            alpn: self.handshake.alpn.as_deref(),
            quic_version: &self.handshake.quic_version,
            tls: &self.handshake.tls,
            stats: &self.end.stats,
            handshake_ms: self.handshake.handshake_ms,
            flights: self.handshake.flights.as_ref(),
            idle_end: self.end.idle_end.as_ref(),
            aioquic_verdict: self.chain.checked.as_ref().and_then(|c| c.aioquic.as_ref()),
            server_implementation: self.peer.server_guess.as_ref(),
            transport_parameters: self.peer.transport_parameters.as_ref(),
            aia: self.chain.aia.as_ref(),
            stapled: self.chain.checked.as_ref().map(|c| c.stapled),
            insecure: self.chain.insecure,
            session: self.handshake.session.as_ref(),
            client_certificate: self.handshake.client_certificate.as_ref(),
            insecure_override: self.end.kind == OutcomeKind::Ok
                && !self.insecure_warning().is_empty(),
            response: self.response(),
            responses: &self.application.responses,
            request_error: self.application.request_error.as_deref(),
            elapsed_ms: self.end.elapsed.as_secs_f64() * 1000.0,
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
    /// The transport parameters the server sent (RFC 9000 §18.2).
    transport_parameters: Option<&'a ServerParameters>,
    aia: Option<&'a AiaReport>,
    stapled: Option<Stapled>,
    insecure: bool,
    session: Option<&'a SessionReport>,
    client_certificate: Option<&'a ClientCertificateReport>,
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
