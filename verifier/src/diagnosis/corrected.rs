//! The chain the server should send: leaf first, each certificate followed
//! by its issuer, every missing one named with where to get it, no root.

use boring::x509::{X509Ref, X509};
use serde::Serialize;

use super::issuer::fetched_issuer_of;
use super::{Facts, Fault};
use crate::names::one_line;
use crate::report::{
    ca_issuers_of, common_name, is_self_signed, issued_by, same_der, sha256_fingerprint,
    ChainWarning,
};
use crate::trust::TrustStore;

/// Whether a certificate of the corrected chain was sent or must be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    Sent,
    Missing,
}

/// One certificate of the corrected chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainEntry {
    pub subject: String,
    pub common_name: Option<String>,
    pub status: EntryStatus,
    /// Its position in what the server sent, when sent.
    pub sent_at: Option<usize>,
    /// SHA-256 of the DER, when the certificate itself is known.
    pub sha256: Option<String>,
    /// Where to get a missing certificate: the AIA caIssuers URL of the one
    /// below it, or null when only its CA can provide it.
    pub get_from: Option<String>,
}

impl ChainEntry {
    fn sent(cert: &X509Ref, at: usize) -> Self {
        Self {
            status: EntryStatus::Sent,
            sent_at: Some(at),
            ..Self::known(cert)
        }
    }

    fn fetched(cert: &X509Ref, url: &str) -> Self {
        Self {
            get_from: Some(url.to_owned()),
            ..Self::known(cert)
        }
    }

    fn known(cert: &X509Ref) -> Self {
        Self {
            subject: one_line(cert.subject_name()),
            common_name: common_name(cert),
            status: EntryStatus::Missing,
            sent_at: None,
            sha256: cert.to_der().ok().map(|der| sha256_fingerprint(&der)),
            get_from: None,
        }
    }

    /// Only the name is known: the issuer named by `below`.
    fn issuer_of(below: &X509Ref) -> Self {
        let name = below.issuer_name();
        Self {
            subject: one_line(name),
            common_name: name
                .entries_by_nid(boring::nid::Nid::COMMONNAME)
                .next()
                .and_then(|entry| entry.data().as_utf8().ok())
                .map(|cn| cn.to_string()),
            status: EntryStatus::Missing,
            sent_at: None,
            sha256: None,
            get_from: ca_issuers_of(below).into_iter().next(),
        }
    }
}

/// The corrected chain for `fault`, or nothing when the server's chain
/// needs no change (or another change first).
pub(crate) fn corrected_chain(facts: &Facts, fault: &Fault) -> Vec<ChainEntry> {
    let reordered = facts.report.warnings.iter().any(|w| {
        matches!(
            w,
            ChainWarning::WrongOrder { .. }
                | ChainWarning::Duplicate { .. }
                | ChainWarning::NeedlessRoot { .. }
                | ChainWarning::CertifiesNothing { .. }
        )
    });
    // A chain that verifies but is sent badly gets its order shown too; a
    // chain rejected for another fault (dates, names, an untrusted root) gets
    // the fix for that fault, not a reordering that would change nothing.
    let accepted_but_untidy = *fault == Fault::None && reordered;
    if !(fault.server_left_certificates_out() || accepted_but_untidy) {
        return Vec::new();
    }
    let Some(leaf) = facts.chain.first() else {
        return Vec::new();
    };
    let mut walk = Walk {
        facts,
        entries: vec![ChainEntry::sent(leaf, 0)],
        used: vec![0],
    };
    walk.up_from(leaf.clone());
    walk.append_the_rest();
    walk.entries
}

/// The walk from the leaf up, issuer by issuer.
struct Walk<'f, 'a> {
    facts: &'f Facts<'a>,
    entries: Vec<ChainEntry>,
    /// Positions of the sent certificates already placed.
    used: Vec<usize>,
}

impl Walk<'_, '_> {
    /// Bounded by what there is to place: each step places one certificate.
    fn up_from(&mut self, mut current: X509) {
        let steps = self.facts.chain.len() + self.facts.evidence.fetched.len() + 1;
        for _ in 0..steps {
            if is_self_signed(&current) || anchored(self.facts.trust, &current) {
                return;
            }
            if let Some(at) = self.sent_issuer(&current) {
                let issuer = &self.facts.chain[at];
                if is_self_signed(issuer) {
                    return; // A root: never sent.
                }
                self.entries.push(ChainEntry::sent(issuer, at));
                self.used.push(at);
                current = issuer.clone();
                continue;
            }
            match fetched_issuer_of(self.facts.evidence.fetched, &current) {
                Some(fetched) if is_self_signed(&fetched.certificate) => return,
                Some(fetched) => {
                    self.entries
                        .push(ChainEntry::fetched(&fetched.certificate, &fetched.url));
                    current = fetched.certificate.clone();
                }
                None => {
                    self.entries.push(ChainEntry::issuer_of(&current));
                    return;
                }
            }
        }
    }

    /// The first sent certificate, not yet placed, that issued `subject`.
    fn sent_issuer(&self, subject: &X509Ref) -> Option<usize> {
        (0..self.facts.chain.len()).find(|at| {
            !self.used.contains(at) && {
                let candidate = &self.facts.chain[*at];
                !same_der(candidate, subject) && issued_by(subject, candidate)
            }
        })
    }

    /// After a gap, the sent certificates that still lead to a trusted
    /// root, lowest first: what the server had above the missing one.
    fn append_the_rest(&mut self) {
        if self.entries.last().map(|e| e.status) != Some(EntryStatus::Missing) {
            return;
        }
        let mut rest: Vec<usize> = (0..self.facts.chain.len())
            .filter(|at| !self.used.contains(at))
            .filter(|at| !is_self_signed(&self.facts.chain[*at]))
            .filter(|at| !self.is_duplicate(*at))
            .filter(|at| self.leads_to_anchor(*at))
            .collect();
        // Lowest first: a certificate that issued none of the others.
        for _ in 0..rest.len() {
            let Some(index) = rest.iter().position(|at| {
                !rest.iter().any(|other| {
                    other != at && issued_by(&self.facts.chain[*other], &self.facts.chain[*at])
                })
            }) else {
                break;
            };
            let at = rest.remove(index);
            self.entries
                .push(ChainEntry::sent(&self.facts.chain[at], at));
            self.used.push(at);
        }
    }

    fn is_duplicate(&self, at: usize) -> bool {
        (0..at).any(|earlier| same_der(&self.facts.chain[earlier], &self.facts.chain[at]))
    }

    /// Whether issuer links through the sent certificates reach the trust store.
    fn leads_to_anchor(&self, at: usize) -> bool {
        let mut current = &self.facts.chain[at];
        for _ in 0..=self.facts.chain.len() {
            if anchored(self.facts.trust, current) {
                return true;
            }
            match self
                .facts
                .chain
                .iter()
                .find(|c| !same_der(c, current) && issued_by(current, c))
            {
                Some(issuer) => current = issuer,
                None => return false,
            }
        }
        false
    }
}

/// Whether a trusted certificate issued `cert`.
fn anchored(trust: &TrustStore, cert: &X509Ref) -> bool {
    trust.roots().iter().any(|root| issued_by(cert, root))
}
