//! The words for every fault but the missing issuers (see `gaps`): what is
//! wrong, and what to change.

use super::classify::MAX_VERIFY_DEPTH;
use super::corrected::ChainEntry;
use super::gaps::{self, numbered};
use super::{Facts, Fault, Finding, Text};
use crate::report::ChainReport;

/// The text for `finding`.
pub(crate) fn explain(facts: &Facts, finding: &Finding, corrected: &[ChainEntry]) -> Text {
    if let Some(text) = gaps::explain(facts, finding, corrected) {
        return text;
    }
    let (cause, fix) = simple(&finding.fault, facts.report, corrected);
    Text::plain(cause, fix)
}

fn simple(fault: &Fault, report: &ChainReport, corrected: &[ChainEntry]) -> (String, String) {
    match fault {
        Fault::None => accepted_explanation(report, corrected),
        Fault::ChainTooLong { depth, sent } => (
            format!(
                "The server sent {sent} certificates; verification stops at depth {depth}, \
                 past the limit of {MAX_VERIFY_DEPTH} intermediates that OpenSSL and BoringSSL \
                 apply, so the chain never reaches a trusted root. The issuer it names as \
                 missing was sent, beyond that limit."
            ),
            "Send the leaf and the intermediates that lead to a trusted root only: a real \
             chain has one to three intermediates."
                .into(),
        ),
        Fault::UntrustedRoot { root } => (
            format!("The chain ends in the self-signed root '{root}', which the client does not trust."),
            "Use a certificate issued by a CA the clients trust, or have the clients trust this root \
             (quicprobe: --cacert ROOT.pem). Sending the root does not make it trusted."
                .into(),
        ),
        Fault::SelfSignedLeaf { subject } => (
            format!("The server's certificate '{subject}' is self-signed: nothing the client trusts vouches for it."),
            "Replace it with a certificate issued by a trusted CA (for example Let's Encrypt), \
             or give clients this certificate as a root (--cacert) for testing only."
                .into(),
        ),
        Fault::Expired {
            subject,
            depth,
            not_after,
        } => (
            format!("Certificate '{subject}' at depth {depth} expired on {not_after}."),
            format!(
                "Renew it{}, install the new files and restart or reload the server.",
                if *depth == 0 { "" } else { " (or send the current intermediate from your CA)" }
            ),
        ),
        Fault::NotYetValid {
            subject,
            depth,
            not_before,
        } => (
            format!("Certificate '{subject}' at depth {depth} is not valid before {not_before}."),
            "Check the clocks of the machine that issued it and of the client; \
             serve a certificate that is valid now."
                .into(),
        ),
        Fault::NameMismatch {
            dialled,
            san,
            only_in_common_name,
        } => name_mismatch_explanation(dialled, san, *only_in_common_name),
        Fault::NotACa { subject } => (
            format!("'{subject}' issued another certificate in the chain but is not a CA (basicConstraints CA:FALSE or absent)."),
            "Send the real intermediate your CA gave you; a server certificate cannot issue others.".into(),
        ),
        Fault::PathLengthExceeded { subject } => (
            format!("'{subject}' has a pathLenConstraint that forbids the number of CAs below it."),
            "Have the leaf issued by a CA allowed to issue it, or send the shorter chain your CA provides.".into(),
        ),
        Fault::NotForServers { subject } => (
            format!("'{subject}' is not for TLS servers: its extended key usage lacks serverAuth (it is, for example, a client certificate)."),
            "Request a certificate with extendedKeyUsage serverAuth (TLS Web Server Authentication).".into(),
        ),
        Fault::NameConstraintViolation { subject } => (
            format!("A CA's name constraints do not permit the names of '{subject}'."),
            "Have the certificate issued by a CA whose permitted subtrees include its names.".into(),
        ),
        Fault::BadSignature { subject } => (
            format!("The signature on '{subject}' does not verify with its issuer's key: the chain mixes certificates of different keys."),
            "Send the intermediate that really issued the certificate (re-download the chain from your CA).".into(),
        ),
        // Explained by `gaps`.
        Fault::MissingIntermediate { .. }
        | Fault::MissingIssuer { .. }
        | Fault::MissingRoot { .. }
        | Fault::IntermediateIsNotAnAnchor { .. }
        | Fault::RootMismatch { .. }
        | Fault::IssuerLoop { .. } => (String::new(), String::new()),
        Fault::Other { x509_error, text } => (
            format!("BoringSSL rejected the chain: X509 error {x509_error} ({text})."),
            "Look the error up in docs/verification.md; check the chain with `quicprobe verify -v`.".into(),
        ),
    }
}

fn accepted_explanation(report: &ChainReport, corrected: &[ChainEntry]) -> (String, String) {
    if report.warnings.is_empty() {
        return (
            "The chain is complete and valid for this name.".into(),
            "Nothing to fix.".into(),
        );
    }
    let cause =
        "The chain verifies, but it has problems that cost bytes or confuse some clients.".into();
    let fix = if corrected.is_empty() {
        "Send the leaf first, then each intermediate in turn, once each, without the root.".into()
    } else {
        format!(
            "Send the leaf first, then each intermediate in turn, once each, without the root: \
             {}.",
            numbered(corrected)
        )
    };
    (cause, fix)
}

fn name_mismatch_explanation(
    dialled: &str,
    san: &[String],
    only_in_common_name: bool,
) -> (String, String) {
    // An empty list means no SAN, or a SAN with no DNS name or IP address
    // (an otherName only, say): the report lists those two kinds.
    if only_in_common_name {
        return (
            format!(
                "'{dialled}' appears only in the certificate's subject CN, and no SAN entry \
                 carries a DNS name or IP address. Strict clients (RFC 9525, Chrome, Go, \
                 aioquic, quicprobe) match SAN only."
            ),
            format!("Reissue the certificate with subjectAltName DNS:{dialled}."),
        );
    }
    let cause = if san.is_empty() {
        format!(
            "The certificate is not for '{dialled}': no SAN entry carries a DNS name or IP \
             address."
        )
    } else {
        format!(
            "The certificate is not for '{dialled}': it is for {}.",
            san.join(", ")
        )
    };
    (
        cause,
        format!(
            "Serve a certificate whose SAN includes '{dialled}', or dial one of the names it carries."
        ),
    )
}
