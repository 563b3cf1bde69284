//! What is wrong, in plain words, and what the server's operator should do.

use serde::Serialize;

use crate::report::{CertificateSummary, ChainReport};
use crate::verdict::{code, PeerName, Verdict};

/// The fault behind a rejection, one variant per thing a server operator can
/// fix. Ranked by how useful it is to a person: the first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Nothing is wrong: a strict client accepts the chain.
    None,
    /// The server did not send an intermediate the chain needs, and the
    /// client does not have it (error 20, or 2). The seed case.
    MissingIntermediate {
        /// The name of the certificate that was not sent.
        missing: String,
        /// Where the certificate below it says the missing one can be downloaded.
        aia_ca_issuers: Option<String>,
    },
    /// The issuer was sent, but past the verification depth limit (100
    /// certificates, as OpenSSL's default): the chain is too long to verify.
    ChainTooLong {
        /// Where verification gave up.
        depth: u32,
        /// How many certificates the server sent.
        sent: usize,
    },
    /// The chain ends in a root the client does not trust (error 19).
    UntrustedRoot { root: String },
    /// The server's certificate signed itself (error 18).
    SelfSignedLeaf { subject: String },
    /// A certificate's notAfter is in the past (error 10).
    Expired {
        subject: String,
        depth: u32,
        not_after: String,
    },
    /// A certificate's notBefore is in the future (error 9).
    NotYetValid {
        subject: String,
        depth: u32,
        not_before: String,
    },
    /// The leaf's SAN does not carry the name or address dialled (62, 64).
    NameMismatch {
        dialled: String,
        san: Vec<String>,
        /// Set when the name is only in the subject CN, which strict clients ignore.
        only_in_common_name: bool,
    },
    /// A certificate that issued another is not a CA (error 24).
    NotACa { subject: String },
    /// A CA's pathLenConstraint forbids the CAs below it (error 25).
    PathLengthExceeded { subject: String },
    /// The leaf is not for TLS servers: its EKU lacks serverAuth (error 26).
    NotForServers { subject: String },
    /// A CA's name constraints exclude the leaf's names (errors 47, 48, 71).
    NameConstraintViolation { subject: String },
    /// A signature in the chain does not verify (error 7).
    BadSignature { subject: String },
    /// Any other X509 error, reported by number and text.
    Other { x509_error: i32, text: String },
}

/// The fault, why a client rejects, and the server-side fix.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub fault: Fault,
    /// What is wrong, in one or two sentences.
    pub cause: String,
    /// What the server's operator should change.
    pub fix: String,
    /// Problems of the chain as sent that do not cause the rejection.
    pub warnings: Vec<String>,
}

/// Explains `verdict` for the chain described by `report`.
pub fn diagnose(verdict: &Verdict, report: &ChainReport) -> Diagnosis {
    let fault = classify(verdict, report);
    let (cause, fix) = explain(&fault, verdict, report);
    Diagnosis {
        fault,
        cause,
        fix,
        warnings: report.warnings.iter().map(|w| w.explain()).collect(),
    }
}

fn classify(verdict: &Verdict, report: &ChainReport) -> Fault {
    if verdict.accepted {
        return Fault::None;
    }
    let subject = verdict.certificate.clone().unwrap_or_default();
    let depth = verdict.depth.unwrap_or(0);
    let failing = failing_certificate(verdict, report);
    // BoringSSL treats a certificate as self-signed only when its keyUsage
    // allows keyCertSign; a self-issued server certificate with
    // digitalSignature alone comes back as error 20. Name it for what it is.
    let self_issued = failing.is_some_and(|c| c.subject == c.issuer);
    match verdict.x509_error {
        code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY | code::UNABLE_TO_GET_ISSUER_CERT
            if self_issued && depth == 0 =>
        {
            Fault::SelfSignedLeaf { subject }
        }
        code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY | code::UNABLE_TO_GET_ISSUER_CERT
            if self_issued =>
        {
            Fault::UntrustedRoot { root: subject }
        }
        code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY | code::UNABLE_TO_GET_ISSUER_CERT
            if depth >= MAX_VERIFY_DEPTH && was_sent(verdict, report) =>
        {
            Fault::ChainTooLong {
                depth,
                sent: report.certificates.len(),
            }
        }
        code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | code::UNABLE_TO_GET_ISSUER_CERT
        | code::UNABLE_TO_VERIFY_LEAF_SIGNATURE => Fault::MissingIntermediate {
            missing: verdict.certificate_issuer.clone().unwrap_or_default(),
            aia_ca_issuers: failing.and_then(|c| c.aia_ca_issuers.first().cloned()),
        },
        code::SELF_SIGNED_CERT_IN_CHAIN => Fault::UntrustedRoot { root: subject },
        code::DEPTH_ZERO_SELF_SIGNED_CERT => Fault::SelfSignedLeaf { subject },
        code::CERT_HAS_EXPIRED => Fault::Expired {
            subject,
            depth,
            not_after: failing.map(|c| c.not_after.clone()).unwrap_or_default(),
        },
        code::CERT_NOT_YET_VALID => Fault::NotYetValid {
            subject,
            depth,
            not_before: failing.map(|c| c.not_before.clone()).unwrap_or_default(),
        },
        code::HOSTNAME_MISMATCH | code::IP_ADDRESS_MISMATCH => name_mismatch(verdict, report),
        code::INVALID_CA => Fault::NotACa { subject },
        code::PATH_LENGTH_EXCEEDED => Fault::PathLengthExceeded { subject },
        code::INVALID_PURPOSE => Fault::NotForServers { subject },
        code::PERMITTED_VIOLATION
        | code::EXCLUDED_VIOLATION
        | code::NAME_CONSTRAINTS_WITHOUT_SANS => Fault::NameConstraintViolation { subject },
        code::CERT_SIGNATURE_FAILURE => Fault::BadSignature { subject },
        other => Fault::Other {
            x509_error: other,
            text: verdict.x509_error_string.to_owned(),
        },
    }
}

/// The certificate BoringSSL stopped at, among those the server sent.
fn failing_certificate<'r>(
    verdict: &Verdict,
    report: &'r ChainReport,
) -> Option<&'r CertificateSummary> {
    let subject = verdict.certificate.as_deref()?;
    report.certificates.iter().find(|c| c.subject == subject)
}

fn name_mismatch(verdict: &Verdict, report: &ChainReport) -> Fault {
    let leaf = report.leaf();
    let dialled = verdict
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

/// BoringSSL's and OpenSSL's default verification depth: chain building
/// stops past this many intermediates.
const MAX_VERIFY_DEPTH: u32 = 100;

/// Whether the issuer the verdict names as missing is among the
/// certificates the server sent.
fn was_sent(verdict: &Verdict, report: &ChainReport) -> bool {
    verdict
        .certificate_issuer
        .as_deref()
        .is_some_and(|issuer| report.certificates.iter().any(|c| c.subject == issuer))
}

fn explain(fault: &Fault, verdict: &Verdict, report: &ChainReport) -> (String, String) {
    match fault {
        Fault::None => accepted_explanation(report),
        Fault::MissingIntermediate {
            missing,
            aia_ca_issuers,
        } => missing_intermediate(verdict, missing, aia_ca_issuers.as_deref()),
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
        Fault::Other { x509_error, text } => (
            format!("BoringSSL rejected the chain: X509 error {x509_error} ({text})."),
            "Look the error up in docs/verification.md; check the chain with `quicprobe verify -v`.".into(),
        ),
    }
}

fn accepted_explanation(report: &ChainReport) -> (String, String) {
    if report.warnings.is_empty() {
        (
            "The chain is complete and valid for this name.".into(),
            "Nothing to fix.".into(),
        )
    } else {
        (
            "The chain verifies, but it has problems that cost bytes or confuse some clients."
                .into(),
            "Send the leaf first, then each intermediate in turn, once each, without the root."
                .into(),
        )
    }
}

fn missing_intermediate(verdict: &Verdict, missing: &str, aia: Option<&str>) -> (String, String) {
    let below = verdict.certificate.as_deref().unwrap_or("the leaf");
    let depth = verdict.depth.unwrap_or(0);
    let location = aia.map_or_else(
        || " The certificate carries no AIA caIssuers URL saying where to find it.".to_owned(),
        |url| format!(" The certificate says it can be downloaded from {url} (AIA caIssuers)."),
    );
    let cause = format!(
        "The server did not send the intermediate certificate '{missing}', which issued \
         '{below}' (depth {depth}), and the client does not have it.{location} \
         Strict clients (OpenSSL, aioquic, curl, quiche, Go on Linux) do not fetch it and \
         fail with \"unable to get local issuer certificate\"; clients that follow AIA \
         (.NET, Windows, Chrome) fetch it and connect, which hides the fault."
    );
    let fix = format!(
        "Configure the server with the full chain: the leaf followed by '{missing}'{}. \
         With certbot use fullchain.pem, not cert.pem; for msquic point \
         QUIC_CERTIFICATE_FILE.CertificateFile (or the PEM you load) at the full chain.",
        aia.map_or_else(String::new, |url| format!(" (get it from {url})"))
    );
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
