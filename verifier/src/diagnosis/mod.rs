//! What is wrong, in plain words, who must act (the server's operator or the
//! client's trust store), and how sure quicprobe is of it.
//!
//! A cause is written as certain only when the evidence makes it certain.
//! The hard case is a path that stops at an issuer nobody has: the server
//! may have left out an intermediate, or the client may lack a root, and the
//! two look the same to X509_verify_cert. [`issuer`] weighs the evidence
//! (the trust store, the system bundle, certificates fetched over AIA) and
//! says which, or honestly that it cannot tell.

mod classify;
mod corrected;
mod explain;
pub(crate) mod gaps;
mod issuer;

use boring::x509::X509;
use serde::Serialize;

pub use corrected::{ChainEntry, EntryStatus};
pub use gaps::entry_note;

use crate::report::ChainReport;
use crate::trust::{TrustStore, TrustStoreSummary};
use crate::verdict::Verdict;

/// The fault behind a rejection, one variant per thing someone can fix.
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
        /// The certificate whose issuer is missing.
        below: String,
    },
    /// The client lacks the root that issued the chain: the server's chain
    /// is fine, the client's trust store is not.
    MissingRoot {
        root: String,
        /// The certificate the root issued.
        below: String,
        /// Set when the system bundle holds the root that the person's own
        /// trust store lacks.
        in_system_bundle: bool,
    },
    /// The path stops at a CA certificate the server sent, whose issuer is
    /// neither sent nor trusted: a root the client lacks or an intermediate
    /// the server left out, and nothing at hand tells which.
    MissingIssuer {
        missing: String,
        aia_ca_issuers: Option<String>,
        below: String,
    },
    /// The trust store holds an intermediate (not self-signed); strict
    /// clients take no partial chains, so it is not an anchor.
    IntermediateIsNotAnAnchor {
        intermediate: String,
        /// Its issuer: the root the store lacks.
        root: String,
    },
    /// The trust store holds a certificate of the issuer's name with another
    /// key: a re-keyed root, or another CA's root of the same name.
    RootMismatch {
        root: String,
        /// SHA-256 of the trusted certificate that has the name but not the key.
        trusted_sha256: String,
        /// The certificate the real root issued.
        below: String,
    },
    /// The certificates sent issue each other in a loop and never reach a root.
    IssuerLoop { certificates: Vec<String> },
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
    /// A CA's name constraints exclude the leaf's names (errors 47, 48, 67).
    NameConstraintViolation { subject: String },
    /// A signature in the chain does not verify (error 7).
    BadSignature { subject: String },
    /// Any other X509 error, reported by number and text.
    Other { x509_error: i32, text: String },
}

impl Fault {
    /// The JSON `kind`, e.g. "missing_issuer".
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::MissingIntermediate { .. } => "missing_intermediate",
            Self::MissingRoot { .. } => "missing_root",
            Self::MissingIssuer { .. } => "missing_issuer",
            Self::IntermediateIsNotAnAnchor { .. } => "intermediate_is_not_an_anchor",
            Self::RootMismatch { .. } => "root_mismatch",
            Self::IssuerLoop { .. } => "issuer_loop",
            Self::ChainTooLong { .. } => "chain_too_long",
            Self::UntrustedRoot { .. } => "untrusted_root",
            Self::SelfSignedLeaf { .. } => "self_signed_leaf",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::NameMismatch { .. } => "name_mismatch",
            Self::NotACa { .. } => "not_a_ca",
            Self::PathLengthExceeded { .. } => "path_length_exceeded",
            Self::NotForServers { .. } => "not_for_servers",
            Self::NameConstraintViolation { .. } => "name_constraint_violation",
            Self::BadSignature { .. } => "bad_signature",
            Self::Other { .. } => "other",
        }
    }

    /// Whether the fault is that certificates are missing from what the
    /// server sent (for certain or as the likely cause).
    pub fn server_left_certificates_out(&self) -> bool {
        matches!(
            self,
            Self::MissingIntermediate { .. } | Self::MissingIssuer { .. }
        )
    }
}

/// Another cause that fits the same evidence, and what would tell it apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alternative {
    /// A [`Fault::kind`], e.g. "missing_root".
    pub kind: &'static str,
    pub cause: String,
    pub fix: String,
    /// How to find out whether this is the cause.
    pub tell_apart: String,
}

/// The fault, why a client rejects, who must fix what, and how sure that is.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub fault: Fault,
    /// True when the evidence makes the cause certain; false when it is the
    /// likely cause and `alternatives` fit the evidence too.
    pub certain: bool,
    /// What decided the kind, in words.
    pub evidence: String,
    /// What is wrong, in one or two sentences.
    pub cause: String,
    /// What to change, the side at fault first.
    pub fix: String,
    /// Other causes the evidence cannot rule out, each with how to tell.
    pub alternatives: Vec<Alternative>,
    /// The chain the server should send, leaf first, when certificates are
    /// missing or out of order; empty otherwise.
    pub corrected_chain: Vec<ChainEntry>,
    /// The roots this verdict was reached with.
    pub trust_store: TrustStoreSummary,
    /// Problems of the chain as sent that do not cause the rejection.
    pub warnings: Vec<String>,
}

/// A certificate downloaded from an AIA caIssuers URL (`--aia-fetch`).
#[derive(Debug, Clone)]
pub struct FetchedCertificate {
    pub url: String,
    pub certificate: X509,
}

/// What is known besides the chain and the trust store: the evidence that
/// can make a missing issuer's cause certain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// The system bundle, when the person chose their own roots: a root in
    /// it that their file lacks is certainly a missing root.
    pub system_bundle: Option<&'a TrustStore>,
    /// Certificates fetched over AIA, in the order fetched (each the issuer
    /// of the one before, up the chain).
    pub fetched: &'a [FetchedCertificate],
}

/// Everything the diagnosis looks at.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    pub verdict: &'a Verdict,
    /// The certificates as sent, leaf first.
    pub chain: &'a [X509],
    pub report: &'a ChainReport,
    pub trust: &'a TrustStore,
    pub evidence: Evidence<'a>,
}

/// Cause, fix and alternatives, as the diagnosis carries them.
pub(crate) struct Text {
    pub cause: String,
    pub fix: String,
    pub alternatives: Vec<Alternative>,
}

impl Text {
    /// A certain cause: no alternatives.
    pub fn plain(cause: String, fix: String) -> Self {
        Self {
            cause,
            fix,
            alternatives: Vec::new(),
        }
    }
}

/// The fault with how sure it is and why.
pub(crate) struct Finding {
    pub fault: Fault,
    pub certain: bool,
    pub evidence: String,
}

impl Finding {
    fn certain(fault: Fault, evidence: impl Into<String>) -> Self {
        Self {
            fault,
            certain: true,
            evidence: evidence.into(),
        }
    }

    fn likely(fault: Fault, evidence: impl Into<String>) -> Self {
        Self {
            fault,
            certain: false,
            evidence: evidence.into(),
        }
    }
}

/// Explains the verdict of `facts`.
pub fn diagnose(facts: &Facts) -> Diagnosis {
    let finding = classify::classify(facts);
    let corrected_chain = corrected::corrected_chain(facts, &finding.fault);
    let text = explain::explain(facts, &finding, &corrected_chain);
    Diagnosis {
        fault: finding.fault,
        certain: finding.certain,
        evidence: finding.evidence,
        cause: text.cause,
        fix: text.fix,
        alternatives: text.alternatives,
        corrected_chain,
        trust_store: facts.trust.summary(),
        warnings: facts.report.warnings.iter().map(|w| w.explain()).collect(),
    }
}
