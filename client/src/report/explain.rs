//! The verifier's explanation attached to each outcome that saw a chain,
//! with the evidence that can make a missing issuer's cause certain: the
//! system bundle, and what `--aia-fetch` fetched.

use std::sync::OnceLock;

use quicprobe_verifier::{Analysis, Evidence, FetchedCertificate, TrustSource, TrustStore};

use crate::aia::AiaReport;
use crate::engine::outcome::Outcome;

/// Adds the verifier's explanation to an outcome that saw a chain.
pub fn explain_chain(mut outcome: Outcome, trust: &TrustStore) -> Outcome {
    if let Some(checked) = &outcome.chain.checked {
        let name = checked.verdict.peer_name.clone();
        let fetched = outcome
            .chain
            .aia
            .as_ref()
            .map(AiaReport::evidence)
            .unwrap_or_default();
        let evidence = evidence(trust, !checked.verdict.accepted, &fetched);
        outcome.chain.analysis = Some(Analysis::explain_with(
            checked.verdict.clone(),
            &checked.chain,
            trust,
            name.as_ref(),
            evidence,
        ));
    }
    outcome
}

/// The system bundle, loaded at most once per process: when the person
/// chose their own roots, a root their file lacks but the system holds is
/// certainly a missing root (and not an intermediate the server left out).
pub(crate) fn system_bundle() -> Option<&'static TrustStore> {
    static BUNDLE: OnceLock<Option<TrustStore>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| match TrustStore::system() {
            Ok(store) => Some(store),
            Err(error) => {
                log::debug!("system bundle not loaded for the diagnosis: {error}");
                None
            }
        })
        .as_ref()
}

/// The evidence for explaining a verdict reached with `trust`: the system
/// bundle when `trust` is the person's own and the chain was rejected, and
/// what `--aia-fetch` fetched.
pub fn evidence<'a>(
    trust: &TrustStore,
    rejected: bool,
    fetched: &'a [FetchedCertificate],
) -> Evidence<'a> {
    let consult_system = rejected && trust.source() == TrustSource::User;
    Evidence {
        system_bundle: if consult_system {
            system_bundle()
        } else {
            None
        },
        fetched,
    }
}
