//! Which families of clients would accept a chain that quicprobe rejects,
//! and why: the seed case is a chain that .NET and Go-on-Windows accept
//! while aioquic does not.
//!
//! Every answer but one comes from re-running BoringSSL with the checks that
//! family makes. The exception is AIA fetching, which quicprobe never does:
//! for a chain whose missing issuer is named by an AIA caIssuers URL, the
//! fetching families are reported as accepting *if that URL serves it*.

use std::collections::BTreeMap;

use boring::x509::X509;
use serde::Serialize;

use crate::diagnosis::Fault;
use crate::trust::TrustStore;
use crate::verdict::{code, verify_with, Checks, FoundFault, PeerName, Verdict};

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
        }
    }

    /// Whether it downloads a missing issuer from the AIA caIssuers URL.
    pub fn fetches_aia(self) -> bool {
        matches!(self, Self::Dotnet | Self::WindowsCryptoapi | Self::Chrome)
    }
}

/// For every family, whether it would accept the chain. `other_faults` are
/// the faults found besides the strict verdict's (see `every_fault`).
pub fn accepted_by(
    chain: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    strict: &Verdict,
    fault: &Fault,
    other_faults: &[FoundFault],
) -> BTreeMap<&'static str, bool> {
    let mut answers = BTreeMap::new();
    for family in ClientFamily::ALL {
        let accepted = strict.accepted
            || (family.fetches_aia() && aia_would_complete(fault, other_faults))
            || rerun_accepts(chain, trust, name, family.checks());
        answers.insert(family.key(), accepted);
    }
    answers
}

/// Fetching the missing issuer helps only when nothing else is wrong with
/// what the client can see (a wrong name, say, still fails).
fn aia_would_complete(fault: &Fault, other_faults: &[FoundFault]) -> bool {
    let missing_with_url = matches!(
        fault,
        Fault::MissingIntermediate {
            aia_ca_issuers: Some(_),
            ..
        }
    );
    let only_missing_issuers = other_faults.iter().all(|f| {
        matches!(
            f.x509_error,
            code::UNABLE_TO_GET_ISSUER_CERT
                | code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY
                | code::UNABLE_TO_VERIFY_LEAF_SIGNATURE
        )
    });
    missing_with_url && only_missing_issuers
}

fn rerun_accepts(
    chain: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    checks: Checks,
) -> bool {
    checks != Checks::strict() && verify_with(chain, trust, name, checks).accepted
}
