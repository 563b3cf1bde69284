//! The client certificate's part of an outcome: whether the server asked
//! for one and what for, what we sent, and the words for a server that
//! required or rejected it (TLS alerts 116, 42-49).

use serde::Serialize;

use super::{Close, Side};
use crate::engine::alerts::tls_alert_name;
use crate::engine::client_identity::IdentitySummary;
use crate::engine::handshake::{Stage, StageEvent};

/// TLS 1.3's certificate_required (RFC 8446 §6.2): the server needs a
/// client certificate and got an empty Certificate.
const CERTIFICATE_REQUIRED: u8 = 116;

/// What happened to the client certificate in one handshake. In the JSON as
/// `client_certificate`: null when the server asked for none and no `--cert`
/// was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientCertificateReport {
    /// The server sent a CertificateRequest.
    pub requested: bool,
    /// The signature algorithms it accepts (from the CertificateRequest).
    pub signature_algorithms: Vec<String>,
    /// The issuers it named (certificate_authorities); empty when it named none.
    pub certificate_authorities: Vec<String>,
    /// We sent a non-empty Certificate.
    pub sent: bool,
    /// Certificates in the Certificate we sent: ours and its intermediates.
    pub certificates: usize,
    /// The `--cert` file, when one was given.
    pub file: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    /// SHA-256 of our certificate's DER, lower-case hex with colons.
    pub sha256: Option<String>,
}

impl ClientCertificateReport {
    /// The report from the handshake's stages and the certificate we held;
    /// None when neither side had anything to do with client certificates.
    pub fn of(stages: &[StageEvent], held: Option<&IdentitySummary>) -> Option<Self> {
        let request = stages.iter().find_map(|s| match &s.stage {
            Stage::CertificateRequest {
                signature_algorithms,
                certificate_authorities,
            } => Some((signature_algorithms, certificate_authorities)),
            _ => None,
        });
        let certificates = stages.iter().find_map(|s| match s.stage {
            Stage::ClientCertificateSent { certificates, .. } => Some(certificates),
            _ => None,
        });
        if request.is_none() && held.is_none() {
            return None;
        }
        Some(Self {
            requested: request.is_some(),
            signature_algorithms: request.map(|r| r.0.clone()).unwrap_or_default(),
            certificate_authorities: request.map(|r| r.1.clone()).unwrap_or_default(),
            sent: certificates.is_some_and(|n| n > 0),
            certificates: certificates.unwrap_or(0),
            file: held.map(|h| h.file.clone()),
            subject: held.map(|h| h.subject.clone()),
            issuer: held.map(|h| h.issuer.clone()),
            sha256: held.map(|h| h.sha256.clone()),
        })
    }

    /// What was sent, e.g. `CN=client, O=x (issued by CN=CA), sent with 1 intermediate`.
    fn what_was_sent(&self) -> String {
        let intermediates = self.certificates.saturating_sub(1);
        format!(
            "{} (issued by {}), sent with {intermediates} intermediate{}",
            self.subject.as_deref().unwrap_or("(unknown subject)"),
            self.issuer.as_deref().unwrap_or("?"),
            if intermediates == 1 { "" } else { "s" }
        )
    }

    /// The issuers the server named, as a clause, or nothing.
    fn named_issuers(&self) -> String {
        if self.certificate_authorities.is_empty() {
            String::new()
        } else {
            format!(
                "; it named these issuers in its CertificateRequest: {}",
                self.certificate_authorities.join(" | ")
            )
        }
    }

    /// The sentence for a server's close that is about the client
    /// certificate: required and not sent, or sent and rejected. None when the
    /// close is about something else.
    pub fn explain_close(&self, close: &Close) -> Option<String> {
        let alert = close.tls_alert.filter(|_| close.sent_by == Side::Server)?;
        let code = close.describe();
        if alert == CERTIFICATE_REQUIRED && !self.sent {
            return Some(format!(
                "the server requires a client certificate and none was sent: pass --cert FILE \
                 --key FILE (or --cert FILE --cert-type P12 --pass PHRASE){} ({code})",
                self.named_issuers()
            ));
        }
        if !is_certificate_alert(alert) {
            return None;
        }
        if self.sent {
            return Some(format!(
                "the server rejected the client certificate {}: TLS alert {alert} {}, {}. \
                 Client side: {}; server side: {} ({code})",
                self.what_was_sent(),
                tls_alert_name(alert),
                alert_meaning(alert),
                client_fix(alert),
                server_fix(alert),
            ));
        }
        self.requested.then(|| {
            format!(
                "the server asked for a client certificate and none was sent, then closed with \
                 TLS alert {alert} {}: pass --cert FILE --key FILE{} ({code})",
                tls_alert_name(alert),
                self.named_issuers()
            )
        })
    }

    /// A few words for a completed handshake: the server asked and went on
    /// without one, or took ours.
    pub fn note_on_success(&self) -> String {
        match (self.requested, self.sent) {
            (true, false) => "; the server asked for a client certificate, none was sent \
                              (--cert), and it went on without one"
                .to_owned(),
            (true, true) => format!("; client certificate {} accepted", self.what_was_sent()),
            _ => String::new(),
        }
    }
}

/// The alerts a TLS server sends about a certificate it received.
fn is_certificate_alert(alert: u8) -> bool {
    matches!(alert, 42..=46 | 48 | 49 | CERTIFICATE_REQUIRED)
}

fn alert_meaning(alert: u8) -> &'static str {
    match alert {
        42 => "the server could not verify it",
        43 => "the server does not support its type (its key, or an extendedKeyUsage without clientAuth)",
        44 => "the server found it revoked",
        45 => "the server found it expired or not yet valid",
        48 => "the server could not reach a CA it trusts from it (unknown issuer)",
        49 => "the server verified it but does not let it in",
        _ => "the server would not accept it",
    }
}

fn client_fix(alert: u8) -> &'static str {
    match alert {
        45 => "renew the certificate",
        44 => "get a new certificate; this one is revoked",
        43 => "use a certificate whose key type the server accepts and whose extendedKeyUsage includes clientAuth",
        49 => "use a certificate the server's access rules allow",
        _ => "check --cert holds the certificate then its intermediates, issued under a CA the server trusts for clients",
    }
}

fn server_fix(alert: u8) -> &'static str {
    match alert {
        45 | 44 => "check the server's clock and revocation data",
        49 => "allow this certificate's subject in the server's access rules",
        _ => "check the server trusts its issuer (its client CA) and can build the chain from what was sent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::handshake::Traffic;

    fn event(stage: Stage) -> StageEvent {
        StageEvent::new(stage, std::time::Duration::ZERO, Traffic::default())
    }

    fn held() -> IdentitySummary {
        IdentitySummary {
            file: "client.pem".into(),
            subject: "CN=client".into(),
            issuer: "CN=Client CA".into(),
            sha256: "aa".into(),
            intermediates: 1,
        }
    }

    fn close(alert: u8) -> Close {
        Close {
            sent_by: Side::Server,
            is_app: false,
            error_code: 0x100 + u64::from(alert),
            reason: String::new(),
            tls_alert: Some(alert),
        }
    }

    fn request() -> StageEvent {
        event(Stage::CertificateRequest {
            signature_algorithms: vec![],
            certificate_authorities: vec![],
        })
    }

    #[test]
    fn nothing_to_report_without_request_or_certificate() {
        assert_eq!(ClientCertificateReport::of(&[], None), None);
    }

    #[test]
    fn certificate_required_says_none_was_sent_and_what_to_pass() {
        let stages = [
            request(),
            event(Stage::ClientCertificateSent {
                certificates: 0,
                bytes: 8,
            }),
        ];
        let report = ClientCertificateReport::of(&stages, None).expect("requested");
        let text = report
            .explain_close(&close(116))
            .expect("about the certificate");
        assert!(
            text.starts_with(
                "the server requires a client certificate and none was sent: pass --cert"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_rejected_certificate_names_it_and_both_sides() {
        let stages = [
            request(),
            event(Stage::ClientCertificateSent {
                certificates: 2,
                bytes: 900,
            }),
        ];
        let report = ClientCertificateReport::of(&stages, Some(&held())).expect("held");
        let text = report
            .explain_close(&close(48))
            .expect("about the certificate");
        assert!(text.contains("rejected the client certificate CN=client (issued by CN=Client CA), sent with 1 intermediate:"), "{text}");
        assert!(
            text.contains("Client side:") && text.contains("server side:"),
            "{text}"
        );
    }

    #[test]
    fn other_alerts_are_not_about_the_certificate() {
        let report = ClientCertificateReport::of(&[request()], None).expect("requested");
        assert_eq!(report.explain_close(&close(120)), None);
    }
}
