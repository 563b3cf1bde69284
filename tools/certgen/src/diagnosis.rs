//! The diagnosis quicprobe should give for a scenario: what is at fault, how sure it
//! can be, what else could explain the failure, and the chain the server should send.
//! Written into scenarios.json, where the tests compare it with quicprobe's
//! `diagnosis` (same field names and snake_case kinds as its JSON report).

use serde::Serialize;

use crate::pki::{Ca, Leaf};

/// Why a chain fails, as quicprobe names it (`diagnosis.fault.kind`). Only the kinds
/// some scenario is about; `bad_signature` and `other` have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The chain verifies.
    None,
    /// The path stops at an issuer that is an intermediate the server did not send.
    MissingIntermediate,
    /// The path stops at an issuer that is a root the client does not trust.
    MissingRoot,
    /// The path stops at a CA certificate the server sent, and nothing tells whether
    /// its issuer is a root the client lacks or an intermediate the server left out.
    MissingIssuer,
    /// The client trusts a certificate of the chain that is not self-signed; a strict
    /// client (no partial chains) does not end a path there.
    IntermediateIsNotAnAnchor,
    /// The client trusts a root with the issuer's name but another key.
    RootMismatch,
    /// The issuers go round in a circle and never reach a root.
    IssuerLoop,
    /// The path is longer than the verify depth.
    ChainTooLong,
    /// The chain ends at a self-signed root the client does not trust.
    UntrustedRoot,
    /// The leaf is self-signed.
    SelfSignedLeaf,
    /// A certificate's notAfter has passed.
    Expired,
    /// A certificate's notBefore has not come yet.
    NotYetValid,
    /// The leaf is not for the name dialled.
    NameMismatch,
    /// An issuer is not a CA (basicConstraints CA:FALSE).
    NotACa,
    /// A CA issued more levels of CA than its pathLenConstraint allows.
    PathLengthExceeded,
    /// The leaf's extendedKeyUsage does not allow serverAuth.
    NotForServers,
    /// A name of the leaf is outside a CA's name constraints.
    NameConstraintViolation,
}

impl FaultKind {
    /// The kinds whose fix is adding certificates to what the server sends.
    fn is_left_out(self) -> bool {
        matches!(
            self,
            FaultKind::MissingIntermediate | FaultKind::MissingIssuer
        )
    }

    /// The JSON spelling, for the README's table.
    pub fn json_name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .expect("a fault kind serialises to a string")
    }
}

/// Whether a certificate of the corrected chain is already sent or must be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStatus {
    Sent,
    Missing,
}

/// One certificate of the corrected chain, by its subject CN.
#[derive(Clone, Debug, Serialize)]
pub struct ChainEntry {
    pub common_name: String,
    pub status: ChainStatus,
}

/// A certificate the corrected chain names.
pub trait Named {
    fn common_name(&self) -> &str;
}

impl Named for Ca {
    fn common_name(&self) -> &str {
        Ca::common_name(self)
    }
}

impl Named for Leaf {
    fn common_name(&self) -> &str {
        Leaf::common_name(self)
    }
}

/// A certificate the server sends and should keep sending.
pub fn sent(cert: &impl Named) -> ChainEntry {
    ChainEntry {
        common_name: cert.common_name().to_owned(),
        status: ChainStatus::Sent,
    }
}

/// A certificate the server must add.
pub fn missing(cert: &impl Named) -> ChainEntry {
    ChainEntry {
        common_name: cert.common_name().to_owned(),
        status: ChainStatus::Missing,
    }
}

/// The expected diagnosis of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    pub kind: FaultKind,
    /// False when the evidence fits `alternatives` as well.
    pub certain: bool,
    /// The other kinds the evidence fits, most likely first.
    pub alternatives: Vec<FaultKind>,
    /// The chain the server should send, leaf first, roots never included: the path
    /// from the leaf upwards (sent or missing), then any other sent certificates that
    /// lead to the trusted root. Empty unless certificates are missing or the sent
    /// chain is out of order, has duplicates, a needless root or an unrelated
    /// certificate.
    pub corrected_chain: Vec<ChainEntry>,
}

impl Diagnosis {
    /// A diagnosis nothing else fits, with nothing to correct in the chain.
    pub fn certain(kind: FaultKind) -> Diagnosis {
        Diagnosis {
            kind,
            certain: true,
            alternatives: Vec::new(),
            corrected_chain: Vec::new(),
        }
    }

    /// The most likely kind, and the others the evidence fits as well.
    pub fn not_certain(kind: FaultKind, alternatives: &[FaultKind]) -> Diagnosis {
        Diagnosis {
            kind,
            certain: false,
            alternatives: alternatives.to_vec(),
            corrected_chain: Vec::new(),
        }
    }

    /// The chain the server should send instead.
    pub fn corrected(mut self, chain: impl IntoIterator<Item = ChainEntry>) -> Diagnosis {
        self.corrected_chain = chain.into_iter().collect();
        self
    }

    /// The rules quicprobe's diagnosis keeps (client/tests/diagnosis.rs checks them on
    /// its output), checked here so that the catalogue cannot state a diagnosis that
    /// breaks them.
    pub fn check(&self, accepted: bool) -> Result<(), String> {
        if accepted != (self.kind == FaultKind::None) {
            return Err(format!(
                "kind {:?} for a chain that is {}",
                self.kind,
                if accepted { "accepted" } else { "rejected" }
            ));
        }
        if self.certain != self.alternatives.is_empty() {
            return Err("certain exactly when there are no alternatives".into());
        }
        if self.alternatives.contains(&self.kind) {
            return Err("the kind is among its own alternatives".into());
        }
        let any_missing = self
            .corrected_chain
            .iter()
            .any(|entry| entry.status == ChainStatus::Missing);
        if any_missing != self.kind.is_left_out() {
            return Err(format!(
                "missing certificates in the corrected chain exactly for missing \
                 intermediates or issuers, not for {:?}",
                self.kind
            ));
        }
        Ok(())
    }
}
