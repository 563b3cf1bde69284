//! # quicprobe-verifier
//!
//! Answers one question: *given the certificates a server sent, the name we
//! dialled and a trust store, would a strict client accept it, and if not,
//! exactly why?* BoringSSL (`X509_verify_cert`) decides; this crate explains.
//!
//! It knows nothing of QUIC. The client uses [`install`] to put it into a
//! BoringSSL context; `quicprobe verify` uses [`Analysis::run`] offline.

#![deny(unsafe_code)]

mod aioquic;
pub mod clone;
mod diagnosis;
mod families;
mod ffi;
pub mod flight;
pub mod fuzzing;
mod hook;
mod input;
mod memo;
mod names;
mod report;
mod signatures;
mod trust;
mod verdict;
mod x509_error;

use std::collections::BTreeMap;

use boring::x509::X509;
use serde::Serialize;

pub use aioquic::{aioquic_verdict, openssl_error_string, AioquicCheck, AioquicVerdict};
pub use diagnosis::{
    diagnose, entry_note, Alternative, ChainEntry, Diagnosis, EntryStatus, Evidence, Facts, Fault,
    FetchedCertificate,
};
pub use families::{accepted_by, Case as FamilyCase, ClientFamily};
pub use ffi::{boringssl_alert_for, set_signed_cert_timestamp_list, verify_error_string};
pub use hook::{
    checked_chain, install, set_peer_name, AlertStyle, CheckedChain, OnReject, Policy, Stapled,
    VerdictSlot,
};
pub use input::{parse_certificates, read_certificates, InputError};
pub use names::one_line as name_one_line;
pub use report::{
    ca_issuers_of, is_self_signed, issued_by, same_der, CertificateSummary, ChainReport,
    ChainWarning, AMPLIFICATION_BUDGET_BYTES,
};
pub use trust::{
    RootsEnv, RootsOrigin, SearchTable, SystemRoots, TrustSource, TrustStore, TrustStoreBuilder,
    TrustStoreSummary, DISTRIBUTION_ROOTS,
};
pub use verdict::{every_fault, verify, verify_with, Checks, FoundFault, PeerName, Verdict};
pub use x509_error::X509Error;

/// Everything quicprobe knows about one chain: the verdict, the chain as
/// sent, the diagnosis and which client families would accept it.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub verdict: Verdict,
    /// The certificates as sent, leaf first.
    pub chain: Vec<CertificateSummary>,
    pub warnings: Vec<ChainWarning>,
    pub total_der_bytes: usize,
    /// The size of the server's Handshake flight this chain makes, against
    /// the 64 KiB of CRYPTO data quiche accepts; beside the verdict, never
    /// changing it.
    pub handshake_flight: flight::HandshakeFlight,
    pub diagnosis: Diagnosis,
    /// Faults besides the verdict's: a strict client stops at the first, but
    /// the server's operator has to fix them all. The most useful to a person
    /// first ([`X509Error::rank`]), in BoringSSL's order among equals.
    pub other_faults: Vec<FoundFault>,
    /// Family key (e.g. "aioquic", "dotnet") to whether it would accept.
    pub accepted_by: BTreeMap<&'static str, bool>,
}

impl Analysis {
    /// Verifies `chain` strictly and explains the result.
    pub fn run(chain: &[X509], trust: &TrustStore, name: Option<&PeerName>) -> Self {
        let verdict = verify(chain, trust, name);
        Self::explain(verdict, chain, trust, name)
    }

    /// Explains a verdict already reached for `chain`.
    pub fn explain(
        verdict: Verdict,
        chain: &[X509],
        trust: &TrustStore,
        name: Option<&PeerName>,
    ) -> Self {
        Self::explain_with(verdict, chain, trust, name, Evidence::default())
    }

    /// Explains a verdict with evidence beyond the chain and the store (the
    /// system bundle, certificates fetched over AIA), which can make the
    /// cause of a missing issuer certain.
    pub fn explain_with(
        verdict: Verdict,
        chain: &[X509],
        trust: &TrustStore,
        name: Option<&PeerName>,
        evidence: Evidence,
    ) -> Self {
        let report = ChainReport::describe(chain);
        let diagnosis = diagnose(&Facts {
            verdict: &verdict,
            chain,
            report: &report,
            trust,
            evidence,
        });
        let mut other_faults: Vec<FoundFault> = if verdict.accepted {
            Vec::new()
        } else {
            every_fault(chain, trust, name)
                .into_iter()
                .filter(|f| (Some(f.error), Some(f.depth)) != (verdict.error, verdict.depth))
                .collect()
        };
        // The verdict stays BoringSSL's first fault; the rest are for a person
        // to read, so the ones that say most come first (a stable sort keeps
        // BoringSSL's order among equals).
        other_faults.sort_by_key(|f| std::cmp::Reverse(f.error.rank()));
        let accepted_by = accepted_by(&families::Case {
            chain,
            trust,
            name,
            strict: &verdict,
            diagnosis: &diagnosis,
            other_faults: &other_faults,
            fetched: evidence.fetched,
        });
        Self {
            other_faults,
            verdict,
            chain: report.certificates,
            warnings: report.warnings,
            total_der_bytes: report.total_der_bytes,
            handshake_flight: flight::HandshakeFlight::of(chain),
            diagnosis,
            accepted_by,
        }
    }
}
