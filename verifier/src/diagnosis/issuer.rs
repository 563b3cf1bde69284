//! Why a path stops at an issuer that is neither sent nor trusted.
//!
//! X509_verify_cert says only "unable to get local issuer certificate". The
//! same words cover a server that left out an intermediate and a client that
//! lacks a root, and the fixes are on opposite sides. Decisive evidence is
//! looked for in this order; without it, the answer says what is likely and
//! what else fits. Certificates are matched by DER and by signature, never
//! by subject alone: loops and re-keyed roots share names.

use std::cmp::Ordering;

use boring::x509::{X509Ref, X509};

use super::{Facts, Fault, FetchedCertificate, Finding};
use crate::names::one_line;
use crate::report::{ca_issuers_of, is_self_signed, issued_by, same_der, sha256_fingerprint};
use crate::trust::TrustSource;

/// The certificate the path stopped at.
pub(crate) struct Stop<'a> {
    pub certificate: &'a X509,
}

impl Stop<'_> {
    pub fn subject(&self) -> String {
        one_line(self.certificate.subject_name())
    }

    pub fn issuer(&self) -> String {
        one_line(self.certificate.issuer_name())
    }

    fn aia(&self) -> Option<String> {
        ca_issuers_of(self.certificate).into_iter().next()
    }
}

/// Weighs the evidence for a missing issuer above `stop`.
pub(crate) fn classify_missing_issuer(facts: &Facts, stop: &Stop) -> Finding {
    if let Some(finding) = issuer_loop(facts, stop) {
        return finding;
    }
    if let Some(finding) = trusted_intermediate(facts, stop) {
        return finding;
    }
    if let Some(finding) = rekeyed_root(facts, stop) {
        return finding;
    }
    if let Some(finding) = root_in_system_bundle(facts, stop) {
        return finding;
    }
    if let Some(finding) = fetched_issuer(facts, stop) {
        return finding;
    }
    undecided(facts, stop)
}

/// A sent certificate issued `stop` but is already on the path below it:
/// the issuers loop.
fn issuer_loop(facts: &Facts, stop: &Stop) -> Option<Finding> {
    let on_path = &facts.verdict.built_certificates;
    let looping = facts.chain.iter().find(|sent| {
        issued_by(stop.certificate, sent) && on_path.iter().any(|c| same_der(c, sent))
    })?;
    let mut certificates: Vec<String> = on_path
        .iter()
        .skip_while(|c| !same_der(c, looping))
        .map(|c| one_line(c.subject_name()))
        .collect();
    certificates.push(one_line(looping.subject_name()));
    Some(Finding::certain(
        Fault::IssuerLoop { certificates },
        format!(
            "'{}' was sent and issued '{}', but it is already on the path below it: \
             the issuers loop",
            one_line(looping.subject_name()),
            stop.subject()
        ),
    ))
}

/// The trust store holds the stopping certificate, or another sent one,
/// that is not self-signed.
fn trusted_intermediate(facts: &Facts, stop: &Stop) -> Option<Finding> {
    let candidates = std::iter::once(stop.certificate).chain(facts.chain.iter());
    let trusted = candidates
        .filter(|cert| !is_self_signed(cert))
        .find(|cert| facts.trust.holds(cert))?;
    let intermediate = one_line(trusted.subject_name());
    Some(Finding::certain(
        Fault::IntermediateIsNotAnAnchor {
            intermediate: intermediate.clone(),
            root: one_line(trusted.issuer_name()),
        },
        format!("the trust store holds '{intermediate}', which is not self-signed"),
    ))
}

/// The trust store holds a certificate named like the issuer that did not
/// issue `stop`: same name, another key.
fn rekeyed_root(facts: &Facts, stop: &Stop) -> Option<Finding> {
    let namesake = facts
        .trust
        .roots()
        .iter()
        .find(|root| same_name(root, stop.certificate) && !issued_by(stop.certificate, root))?;
    let sha256 = namesake
        .to_der()
        .map(|der| sha256_fingerprint(&der))
        .unwrap_or_default();
    Some(Finding::certain(
        Fault::RootMismatch {
            root: stop.issuer(),
            trusted_sha256: sha256.clone(),
            below: stop.subject(),
        },
        format!(
            "the trust store holds a certificate named '{}' (sha256 {sha256}), but its key \
             did not sign '{}'",
            stop.issuer(),
            stop.subject()
        ),
    ))
}

/// The person chose their own roots, and the system bundle holds the one
/// that issued `stop`.
fn root_in_system_bundle(facts: &Facts, stop: &Stop) -> Option<Finding> {
    if facts.trust.source() != TrustSource::User {
        return None;
    }
    let bundle = facts.evidence.system_bundle?;
    let root = bundle
        .roots()
        .iter()
        .find(|root| issued_by(stop.certificate, root))?;
    let paths: Vec<String> = bundle
        .sources()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    Some(Finding::certain(
        Fault::MissingRoot {
            root: one_line(root.subject_name()),
            below: stop.subject(),
            in_system_bundle: true,
        },
        format!(
            "the system bundle {} holds '{}', which issued '{}', and the trust store given \
             does not",
            paths.join(", "),
            one_line(root.subject_name()),
            stop.subject()
        ),
    ))
}

/// `--aia-fetch` downloaded the certificate that issued `stop`.
fn fetched_issuer(facts: &Facts, stop: &Stop) -> Option<Finding> {
    let fetched = fetched_issuer_of(facts.evidence.fetched, stop.certificate)?;
    let name = one_line(fetched.certificate.subject_name());
    if is_self_signed(&fetched.certificate) {
        return Some(Finding::certain(
            Fault::MissingRoot {
                root: name.clone(),
                below: stop.subject(),
                in_system_bundle: false,
            },
            format!(
                "{} serves '{name}', which is self-signed: a root",
                fetched.url
            ),
        ));
    }
    Some(Finding::certain(
        Fault::MissingIntermediate {
            missing: name.clone(),
            aia_ca_issuers: Some(fetched.url.clone()),
            below: stop.subject(),
        },
        format!(
            "{} serves '{name}', which is not self-signed: an intermediate",
            fetched.url
        ),
    ))
}

/// The fetched certificate that issued `subject`, if one did.
pub(crate) fn fetched_issuer_of<'f>(
    fetched: &'f [FetchedCertificate],
    subject: &X509Ref,
) -> Option<&'f FetchedCertificate> {
    fetched.iter().find(|f| issued_by(subject, &f.certificate))
}

/// No decisive evidence: what is likely, honestly marked so.
fn undecided(facts: &Facts, stop: &Stop) -> Finding {
    let at_leaf = facts
        .chain
        .first()
        .is_some_and(|leaf| same_der(leaf, stop.certificate));
    if at_leaf {
        return Finding::likely(
            Fault::MissingIntermediate {
                missing: stop.issuer(),
                aia_ca_issuers: stop.aia(),
                below: stop.subject(),
            },
            "the path stops at the leaf; public CAs never issue server certificates \
             straight from a root (CA/Browser Forum Baseline Requirements), so its issuer \
             is most likely an intermediate",
        );
    }
    Finding::likely(
        Fault::MissingIssuer {
            missing: stop.issuer(),
            aia_ca_issuers: stop.aia(),
            below: stop.subject(),
        },
        format!(
            "the path stops at '{}', a CA certificate the server sent; its issuer is neither \
             sent nor trusted, and nothing at hand says whether it is a root or an intermediate",
            stop.subject()
        ),
    )
}

/// Whether `candidate`'s subject is `subject`'s issuer name.
fn same_name(candidate: &X509Ref, subject: &X509Ref) -> bool {
    candidate
        .subject_name()
        .try_cmp(subject.issuer_name())
        .is_ok_and(|order| order == Ordering::Equal)
}
