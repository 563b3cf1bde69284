//! From BoringSSL's verdict to the fault a person can fix.

use boring::x509::X509;

use super::issuer::{classify_missing_issuer, Stop};
use super::{Facts, Fault, Finding};
use crate::report::{issued_by, same_der, CertificateSummary, ChainReport};
use crate::verdict::PeerName;
use crate::x509_error::X509Error;

/// BoringSSL's and OpenSSL's default verification depth: chain building
/// stops past this many intermediates.
pub(crate) const MAX_VERIFY_DEPTH: u32 = 100;

/// The fault behind the verdict of `facts`, and how sure that is.
pub(crate) fn classify(facts: &Facts) -> Finding {
    let verdict = facts.verdict;
    let Some(error) = verdict.error else {
        return Finding::certain(Fault::None, "BoringSSL accepted the chain");
    };
    let evidence = format!("X509 error {} ({})", error.code(), error.text());
    match error {
        X509Error::NoCertificate => Finding::certain(other_fault(error), "no certificate was sent"),
        e if e.is_missing_issuer() => missing_issuer(facts, error),
        X509Error::CertSignatureFailure => Finding::certain(bad_signature(facts), evidence),
        _ => Finding::certain(fault_of_error(facts, error), evidence),
    }
}

/// The certificate at the failing depth, described.
fn failing_summary(facts: &Facts) -> Option<CertificateSummary> {
    let failing = facts.verdict.failing_certificate()?;
    summary_of(facts.report, failing)
}

/// The report's description of `cert`, matched by DER; a certificate that
/// was not sent (it came from the trust store) is described on its own.
fn summary_of(report: &ChainReport, cert: &X509) -> Option<CertificateSummary> {
    let described = ChainReport::describe(std::slice::from_ref(cert));
    let own = described.certificates.into_iter().next()?;
    Some(
        report
            .certificates
            .iter()
            .find(|c| c.sha256 == own.sha256)
            .cloned()
            .unwrap_or(own),
    )
}

/// An error quicprobe does not explain further, by number and text.
fn other_fault(error: X509Error) -> Fault {
    Fault::Other {
        x509_error: error.code(),
        text: error.text().to_owned(),
    }
}

fn fault_of_error(facts: &Facts, error: X509Error) -> Fault {
    let verdict = facts.verdict;
    let subject = verdict.certificate.clone().unwrap_or_default();
    let depth = verdict.depth.unwrap_or(0);
    let failing = failing_summary(facts);
    match error {
        X509Error::SelfSignedCertInChain => Fault::UntrustedRoot { root: subject },
        X509Error::DepthZeroSelfSignedCert => Fault::SelfSignedLeaf { subject },
        X509Error::CertHasExpired => Fault::Expired {
            subject,
            depth,
            not_after: failing.map(|c| c.not_after).unwrap_or_default(),
        },
        X509Error::CertNotYetValid => Fault::NotYetValid {
            subject,
            depth,
            not_before: failing.map(|c| c.not_before).unwrap_or_default(),
        },
        X509Error::HostnameMismatch | X509Error::IpAddressMismatch => name_mismatch(facts),
        X509Error::InvalidCa => Fault::NotACa { subject },
        X509Error::PathLengthExceeded => Fault::PathLengthExceeded { subject },
        X509Error::InvalidPurpose => Fault::NotForServers { subject },
        X509Error::PermittedViolation
        | X509Error::ExcludedViolation
        | X509Error::NameConstraintsWithoutSans => Fault::NameConstraintViolation { subject },
        other => other_fault(other),
    }
}

/// Errors 20, 2 and 21: the path stops at a certificate whose issuer is
/// neither sent nor trusted.
fn missing_issuer(facts: &Facts, error: X509Error) -> Finding {
    let verdict = facts.verdict;
    let Some(certificate) = verdict.stopped_at().or(facts.chain.first()) else {
        return Finding::certain(other_fault(error), "no certificate was sent");
    };
    let depth = verdict.depth.unwrap_or(0);
    let stop = Stop { certificate };
    // BoringSSL treats a certificate as self-signed only when its keyUsage
    // allows keyCertSign; a self-issued server certificate with
    // digitalSignature alone comes back as error 20. Name it for what it is.
    if stop.subject() == stop.issuer() {
        let fault = if depth == 0 {
            Fault::SelfSignedLeaf {
                subject: stop.subject(),
            }
        } else {
            Fault::UntrustedRoot {
                root: stop.subject(),
            }
        };
        return Finding::certain(fault, "the certificate is self-issued");
    }
    if depth >= MAX_VERIFY_DEPTH && issuer_was_sent(facts, certificate) {
        return Finding::certain(
            Fault::ChainTooLong {
                depth,
                sent: facts.chain.len(),
            },
            format!("the issuer was sent, past the verify depth limit of {MAX_VERIFY_DEPTH}"),
        );
    }
    classify_missing_issuer(facts, &stop)
}

/// Whether a sent certificate, other than `cert` itself, issued it.
fn issuer_was_sent(facts: &Facts, cert: &X509) -> bool {
    facts
        .chain
        .iter()
        .any(|sent| !same_der(sent, cert) && issued_by(cert, sent))
}

/// Error 7. When the certificate that fails to verify it is a trusted one
/// the server did not send, the client's root has the right name and the
/// wrong key.
fn bad_signature(facts: &Facts) -> Fault {
    let verdict = facts.verdict;
    let subject = verdict.certificate.clone().unwrap_or_default();
    let issuer = verdict
        .depth
        .and_then(|depth| verdict.built_certificates.get(depth as usize + 1));
    let trusted_unsent = issuer.filter(|issuer| {
        facts.trust.holds(issuer) && !facts.chain.iter().any(|sent| same_der(sent, issuer))
    });
    match trusted_unsent {
        Some(root) => Fault::RootMismatch {
            root: crate::names::one_line(root.subject_name()),
            trusted_sha256: root
                .to_der()
                .map(|der| crate::report::sha256_fingerprint(&der))
                .unwrap_or_default(),
            below: subject,
        },
        _ => Fault::BadSignature { subject },
    }
}

fn name_mismatch(facts: &Facts) -> Fault {
    let leaf = facts.report.leaf();
    let dialled = facts
        .verdict
        .peer_name
        .as_ref()
        .map(PeerName::to_string)
        .unwrap_or_default();
    let only_in_common_name = leaf.is_some_and(|leaf| {
        leaf.san.is_empty()
            && leaf
                .common_name
                .as_deref()
                .is_some_and(|cn| cn.eq_ignore_ascii_case(&dialled))
    });
    Fault::NameMismatch {
        dialled,
        san: leaf.map(|l| l.san.clone()).unwrap_or_default(),
        only_in_common_name,
    }
}
