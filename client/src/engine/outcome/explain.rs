//! The one sentence that says what happened to a connection, computed
//! from the outcome when asked.

use super::{Outcome, OutcomeKind, Side};
use crate::engine::alerts::tls_alert_name;
use crate::engine::handshake::Stage;

/// QUIC's CRYPTO_BUFFER_EXCEEDED (RFC 9000 §20.1).
const CRYPTO_BUFFER_EXCEEDED: u64 = 0xd;

impl Outcome {
    /// One sentence saying what happened, from everything the outcome holds
    /// now (computed when asked, so it can never be stale).
    pub fn explain(&self) -> String {
        match self.end.kind {
            OutcomeKind::Ok => format!(
                "handshake complete{}{}{}{}",
                self.handshake
                    .alpn
                    .as_deref()
                    .map_or_else(String::new, |a| format!(", ALPN {a}")),
                self.handshake
                    .client_certificate
                    .as_ref()
                    .map_or_else(String::new, |c| c.note_on_success()),
                self.end
                    .idle_end
                    .map_or_else(String::new, |idle| format!("; then {}", idle.describe())),
                self.insecure_warning()
            ),
            OutcomeKind::VerificationFailed => format!(
                "SSL certificate problem: {}",
                self.chain
                    .checked
                    .as_ref()
                    .map_or("rejected", |c| c.reason())
            ),
            OutcomeKind::Refused => format!(
                "connection refused: nothing listens on UDP {} (ICMP port unreachable)",
                self.peer.addr
            ),
            OutcomeKind::Timeout => self.explain_timeout(),
            OutcomeKind::HandshakeFailed => self.explain_close(),
            OutcomeKind::PartialResponse => self.explain_partial(),
            OutcomeKind::HttpError => format!(
                "the requested URL returned error: {} (-f/--fail)",
                self.application
                    .responses
                    .iter()
                    .find_map(|r| r.status.filter(|s| *s >= 400))
                    .unwrap_or_default()
            ),
            OutcomeKind::WriteError => format!(
                "failure writing output: {}",
                self.application
                    .write_error
                    .as_deref()
                    .unwrap_or("a file could not be written")
            ),
        }
    }

    /// Loud words when `--insecure` let a rejected chain through.
    pub fn insecure_warning(&self) -> String {
        match &self.chain.checked {
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
        if let Some(failed) = self
            .application
            .responses
            .iter()
            .find(|r| r.error.is_some())
        {
            return format!(
                "{}: {} (after {} bytes)",
                failed.path,
                failed.error.as_deref().unwrap_or_default(),
                failed.body_bytes
            );
        }
        let cut = self.application.responses.iter().find(|r| !r.complete);
        let how = match &self.end.close {
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
        let waited = format!("{} s", seconds_text(self.end.elapsed));
        // "within 0.001 s (--connect-timeout)": the limit as given, not rounded away.
        let within = self.end.limit.map_or_else(
            || format!("after {waited}"),
            |limit| format!("within {} s ({})", seconds_text(limit.limit), limit.flag),
        );
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
            .handshake
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
            // Silence proves nothing about the server: a refusal would have
            // come back as ICMP port unreachable (exit 7), so say only what is known.
            (None | Some(Stage::ClientHelloSent { .. }), None) => format!(
                "no answer to the Initial {within}: the server at UDP {} did not answer in \
                 time (it may be down, slow or far, or UDP may be blocked on the way)",
                self.peer.addr
            ),
            (Some(stage), _) => format!(
                "the handshake stalled after {} (no handshake {within})",
                stage.name()
            ),
        }
    }

    fn explain_close(&self) -> String {
        if let Some(offered) = self.handshake.stages.iter().find_map(|s| match &s.stage {
            Stage::VersionNegotiation { offered } => Some(offered),
            _ => None,
        }) {
            return format!(
                "the server does not speak QUIC v1: it offered only {} \
                 (quicprobe, through quiche, speaks v1 only)",
                offered.join(", ")
            );
        }
        let Some(close) = &self.end.close else {
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
        if let Some(words) = self
            .handshake
            .client_certificate
            .as_ref()
            .and_then(|c| c.explain_close(close))
        {
            return words;
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

    /// The ALPNs the ClientHello offered.
    fn offered_alpns(&self) -> Vec<String> {
        self.handshake
            .stages
            .iter()
            .find_map(|s| match &s.stage {
                Stage::ClientHelloSent { alpns, .. } => Some(alpns.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// Seconds with as many decimals as it takes (up to milliseconds), so that
/// a limit of 0.001 s never reads "0.0 s": 10, 2.5, 0.001.
pub fn seconds_text(duration: std::time::Duration) -> String {
    let text = format!("{:.3}", duration.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "0" && !duration.is_zero() {
        // Under a millisecond: still not zero.
        return format!("{:.6}", duration.as_secs_f64());
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::seconds_text;

    #[test]
    fn seconds_keep_the_precision_they_were_given() {
        assert_eq!(seconds_text(Duration::from_secs(10)), "10");
        assert_eq!(seconds_text(Duration::from_millis(2500)), "2.5");
        assert_eq!(seconds_text(Duration::from_millis(1)), "0.001");
        assert_eq!(seconds_text(Duration::from_micros(5)), "0.000005");
        assert_eq!(seconds_text(Duration::ZERO), "0");
    }
}
