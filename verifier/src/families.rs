//! Which families of clients would accept a chain that quicprobe rejects,
//! and why: the seed case is a chain that .NET and Go-on-Windows accept
//! while aioquic does not.
//!
//! Every answer but one comes from re-running BoringSSL with the checks that
//! family makes. The exception is AIA fetching, which quicprobe does only
//! with `--aia-fetch`: for intermediates left out, each named by an AIA
//! caIssuers URL, the fetching families are reported as accepting *if those
//! URLs serve them*; once fetched, the verification with them decides.

use std::collections::BTreeMap;

use boring::x509::X509;
use serde::Serialize;

use crate::diagnosis::{ChainEntry, Diagnosis, EntryStatus, Fault, FetchedCertificate};
use crate::trust::TrustStore;
use crate::verdict::{verify, verify_with, Checks, FoundFault, PeerName, Verdict};

/// A family of TLS clients that verify certificates the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientFamily {
    /// quicprobe itself: BoringSSL, strict.
    Quicprobe,
    /// OpenSSL's libssl (`s_client`, most Linux software).
    Openssl,
    /// curl built on OpenSSL.
    Curl,
    /// aioquic: OpenSSL's chain check with no purpose, service_identity names.
    Aioquic,
    /// quiche with `verify_peer(true)`: BoringSSL's defaults.
    Quiche,
    /// Go's crypto/x509 on Linux.
    GoLinux,
    /// .NET's X509Chain (Windows and Linux), which downloads AIA issuers.
    Dotnet,
    /// Windows CryptoAPI / Schannel, which downloads AIA issuers.
    WindowsCryptoapi,
    /// Chrome's verifier, which downloads AIA issuers.
    Chrome,
}

impl ClientFamily {
    pub const ALL: [ClientFamily; 9] = [
        Self::Quicprobe,
        Self::Openssl,
        Self::Curl,
        Self::Aioquic,
        Self::Quiche,
        Self::GoLinux,
        Self::Dotnet,
        Self::WindowsCryptoapi,
        Self::Chrome,
    ];

    /// The JSON key, e.g. "go_linux".
    pub fn key(self) -> &'static str {
        match self {
            Self::Quicprobe => "quicprobe",
            Self::Openssl => "openssl",
            Self::Curl => "curl",
            Self::Aioquic => "aioquic",
            Self::Quiche => "quiche",
            Self::GoLinux => "go_linux",
            Self::Dotnet => "dotnet",
            Self::WindowsCryptoapi => "windows_cryptoapi",
            Self::Chrome => "chrome",
        }
    }

    /// A name for people, e.g. "Go (Linux)".
    pub fn label(self) -> &'static str {
        match self {
            Self::Quicprobe => "quicprobe",
            Self::Openssl => "OpenSSL",
            Self::Curl => "curl (OpenSSL)",
            Self::Aioquic => "aioquic",
            Self::Quiche => "quiche",
            Self::GoLinux => "Go (Linux)",
            Self::Dotnet => ".NET",
            Self::WindowsCryptoapi => "Windows CryptoAPI",
            Self::Chrome => "Chrome",
        }
    }

    /// What this family checks, in the terms BoringSSL can reproduce.
    fn checks(self) -> Checks {
        let (server_purpose, cn_fallback) = match self {
            Self::Quicprobe | Self::GoLinux | Self::Chrome => (true, false),
            // libssl sets the ssl_server purpose; X509_check_host falls back to CN.
            Self::Openssl | Self::Curl | Self::Quiche => (true, true),
            // aioquic calls X509_verify_cert with no purpose and matches names
            // with service_identity, which ignores the CN.
            Self::Aioquic => (false, false),
            Self::Dotnet | Self::WindowsCryptoapi => (true, true),
        };
        Checks {
            server_purpose,
            cn_fallback,
            // Go's CertPool makes every certificate in Roots an anchor, a
            // trusted intermediate included (crypto/x509 verify.go,
            // buildChains stops at any root in opts.Roots).
            partial_chain: self == Self::GoLinux,
        }
    }

    /// Whether it downloads a missing issuer from the AIA caIssuers URL.
    pub fn fetches_aia(self) -> bool {
        matches!(self, Self::Dotnet | Self::WindowsCryptoapi | Self::Chrome)
    }
}

/// What the families are asked about: the chain, the strict verdict and its
/// diagnosis.
pub struct Case<'a> {
    pub chain: &'a [X509],
    pub trust: &'a TrustStore,
    pub name: Option<&'a PeerName>,
    pub strict: &'a Verdict,
    pub diagnosis: &'a Diagnosis,
    /// The faults found besides the strict verdict's (see `every_fault`).
    pub other_faults: &'a [FoundFault],
    /// Certificates fetched over AIA, when `--aia-fetch` ran.
    pub fetched: &'a [FetchedCertificate],
}

/// For every family, whether it would accept the chain.
pub fn accepted_by(case: &Case) -> BTreeMap<&'static str, bool> {
    let mut answers = BTreeMap::new();
    for family in ClientFamily::ALL {
        let accepted = case.strict.accepted
            || (family.fetches_aia() && aia_would_complete(case))
            || rerun_accepts(case.chain, case.trust, case.name, family.checks());
        answers.insert(family.key(), accepted);
    }
    answers
}

/// Fetching helps only when the fault is intermediates left out, every
/// missing certificate has a caIssuers URL to fetch it from, and nothing
/// else is wrong with what the client can see (a wrong name, say, still
/// fails). A missing root is missing for them too. When the fetch was
/// really made, its result decides.
fn aia_would_complete(case: &Case) -> bool {
    if !matches!(case.diagnosis.fault, Fault::MissingIntermediate { .. }) {
        return false;
    }
    if !case.fetched.is_empty() {
        let fetched: Vec<X509> = case.fetched.iter().map(|f| f.certificate.clone()).collect();
        let mut extended = case.chain.to_vec();
        extended.extend(fetched);
        return verify(&extended, case.trust, case.name).accepted;
    }
    let missing: Vec<&ChainEntry> = case
        .diagnosis
        .corrected_chain
        .iter()
        .filter(|e| e.status == EntryStatus::Missing)
        .collect();
    let every_missing_has_a_url =
        !missing.is_empty() && missing.iter().all(|e| e.get_from.is_some());
    let only_missing_issuers = case
        .other_faults
        .iter()
        .all(|f| f.error.is_missing_issuer());
    every_missing_has_a_url && only_missing_issuers
}

fn rerun_accepts(
    chain: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    checks: Checks,
) -> bool {
    checks != Checks::strict() && verify_with(chain, trust, name, checks).accepted
}
