//! The TLS side of a probe: the handshake messages BoringSSL reported,
//! turned into stages, and the verifier's verdict on the chain.

use quicprobe_verifier::CheckedChain;

use super::phase::CloseReason;
use super::Probe;
use crate::engine::handshake::{stage_of, Stage, StageEvent, Traffic};
use crate::engine::message_callback::drain_messages;

impl Probe {
    /// Turns the TLS messages and the verdict of the last call into stages,
    /// the verdict right after the Certificate it judged.
    pub(super) fn record_tls_messages(&mut self, verdict: Option<CheckedChain>) {
        let mut verdict = verdict;
        for message in drain_messages() {
            let Some(stage) = stage_of(&message, &self.settings.alpns, self.sni.as_deref()) else {
                continue;
            };
            if self.stopped_by_verdict() {
                // BoringSSL reads CertificateVerify before it asks for the
                // verdict; after a rejection it is never processed.
                continue;
            }
            if matches!(stage, Stage::CertificateVerify { .. }) {
                // The verdict judged the Certificate before this: when both
                // came in one call (the Certificate in an earlier datagram,
                // CertificateVerify in this one), it goes first, and a
                // rejection ends the handshake before CertificateVerify.
                if let Some(checked) = verdict.take() {
                    self.record_verdict(checked);
                }
                if self.stopped_by_verdict() {
                    continue;
                }
            }
            let is_certificate = matches!(stage, Stage::Certificate { .. });
            let stage = self.with_transport_parameters(stage);
            self.push_stage(stage);
            if is_certificate {
                if let Some(checked) = verdict.take() {
                    self.record_verdict(checked);
                }
            }
        }
        if let Some(checked) = verdict {
            self.record_verdict(checked);
        }
    }

    /// Whether the verdict ended the handshake: a rejection, unless `--insecure`.
    pub(super) fn stopped_by_verdict(&self) -> bool {
        self.checked
            .as_ref()
            .is_some_and(|c| self.stopped_by_verdict_of(c))
    }

    fn stopped_by_verdict_of(&self, checked: &CheckedChain) -> bool {
        !checked.verdict.accepted && !self.settings.insecure
    }

    fn with_transport_parameters(&self, stage: Stage) -> Stage {
        match stage {
            Stage::EncryptedExtensions { alpn, .. } => Stage::EncryptedExtensions {
                alpn,
                transport_parameters: self.conn.peer_transport_params().map(summarise_params),
            },
            other => other,
        }
    }

    fn record_verdict(&mut self, checked: CheckedChain) {
        self.push_stage(Stage::Verdict {
            accepted: checked.verdict.accepted,
            x509_error: checked.verdict.x509_error(),
            reason: checked.reason().to_owned(),
        });
        if let (Some(code), true) = (
            checked.quic_error_code(),
            self.stopped_by_verdict_of(&checked),
        ) {
            // As aioquic does: a transport CONNECTION_CLOSE with 0x100 + alert
            // and the verdict's text as the reason phrase.
            let _ = self.conn.close(false, code, checked.reason().as_bytes());
            self.phase.close(CloseReason::Rejected);
        }
        self.checked = Some(checked);
    }

    pub(super) fn push_stage(&mut self, stage: Stage) {
        let stats = self.conn.stats();
        let traffic = Traffic {
            sent_bytes: stats.sent_bytes,
            sent_packets: stats.sent,
            recv_bytes: stats.recv_bytes,
            recv_packets: stats.recv,
        };
        let confirmed = stage == Stage::HandshakeDone;
        self.stages
            .push(StageEvent::new(stage, self.started.elapsed(), traffic));
        if confirmed {
            // A held connection keeps its stages to the end, and few come
            // after this one: no room for twice as many (96 bytes each).
            self.stages.shrink_to_fit();
        }
    }
}

/// A QUIC version as people know it, e.g. "0x6b3343cf (QUIC v2)".
pub(super) fn version_name(version: u32) -> String {
    let name = match version {
        0x0000_0001 => Some("QUIC v1"),
        0x6b33_43cf => Some("QUIC v2"),
        0xff00_001d => Some("draft-29"),
        v if v & 0x0f0f_0f0f == 0x0a0a_0a0a => Some("reserved, to exercise negotiation"),
        _ => None,
    };
    match name {
        Some(name) => format!("0x{version:08x} ({name})"),
        None => format!("0x{version:08x}"),
    }
}

fn summarise_params(params: &quiche::TransportParams) -> String {
    let unknown: Vec<String> = params
        .unknown_params
        .iter()
        .flatten()
        .map(|p| format!("0x{:x}", p.id))
        .collect();
    format!(
        "max_idle_timeout={}ms max_udp_payload_size={} initial_max_data={} \
         initial_max_streams_bidi={} initial_max_streams_uni={} active_connection_id_limit={}{}",
        params.max_idle_timeout,
        params.max_udp_payload_size,
        params.initial_max_data,
        params.initial_max_streams_bidi,
        params.initial_max_streams_uni,
        params.active_conn_id_limit,
        if unknown.is_empty() {
            String::new()
        } else {
            format!(" other={}", unknown.join(","))
        }
    )
}
