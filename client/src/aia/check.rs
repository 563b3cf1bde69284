//! The AIA check: when the strict verdict is a missing issuer named by a
//! caIssuers URL, fetch it, verify again with it as an untrusted
//! intermediate, and go on up the chain while each fetched certificate's own
//! issuer is missing too.

use std::time::Instant;

use boring::x509::X509;
use quicprobe_verifier::{ca_issuers_of, same_der, verify, PeerName, TrustStore, Verdict};

use super::report::{AiaOutcome, AiaReport};
use super::{fetch, FetchSettings, FetchedIssuer};

/// Verifies `chain` strictly again, with the `fetched` certificates added
/// after it as untrusted intermediates (never as trust anchors), as an
/// AIA-fetching client would.
pub fn verify_with_fetched(
    chain: &[X509],
    fetched: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
) -> Verdict {
    let mut extended = chain.to_vec();
    extended.extend(fetched.iter().cloned());
    verify(&extended, trust, name)
}

/// The AIA caIssuers URL an AIA-fetching client would download for this
/// verdict: set only when the verdict is a missing issuer (X509 errors 20, 2,
/// 21) above a certificate that is not self-issued and carries such a URL
/// (the first, when it carries several).
pub fn missing_issuer_url(chain: &[X509], verdict: &Verdict) -> Option<String> {
    if !verdict.error.is_some_and(|e| e.is_missing_issuer()) {
        return None;
    }
    let stop = verdict.stopped_at().or(chain.first())?;
    let self_issued = stop
        .subject_name()
        .try_cmp(stop.issuer_name())
        .is_ok_and(|order| order.is_eq());
    if self_issued {
        return None;
    }
    ca_issuers_of(stop).into_iter().next()
}

/// How many certificates an AIA check fetches up the chain at most: a real
/// chain has one to three intermediates.
pub const MAX_HOPS: usize = 4;

/// When the strict verdict for `chain` is a missing issuer named by an AIA
/// caIssuers URL, fetches it and verifies again; `None` otherwise (no
/// network then). The connection is still rejected: this is a report.
pub fn run_aia_check(
    chain: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    settings: &FetchSettings,
) -> Option<AiaReport> {
    let verdict = verify(chain, trust, name);
    let url = missing_issuer_url(chain, &verdict)?;
    Some(run_aia_check_at(&url, chain, trust, name, settings))
}

/// Fetches `url` as the missing issuer of `chain` and verifies again,
/// whatever the strict verdict; while the chain still lacks an issuer named
/// by a caIssuers URL of a fetched certificate, fetches that too, up to
/// [`MAX_HOPS`] fetches, so that two missing intermediates are both found.
pub fn run_aia_check_at(
    url: &str,
    chain: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    settings: &FetchSettings,
) -> AiaReport {
    let started = Instant::now();
    let mut earlier: Vec<FetchedIssuer> = Vec::new();
    let mut extended = chain.to_vec();
    let mut next = url.to_owned();
    loop {
        let fetched = match fetch(&next, settings) {
            Ok(fetched) => fetched,
            Err(error) => {
                let outcome = AiaOutcome::FetchFailed {
                    error,
                    elapsed: started.elapsed(),
                };
                return report(url, earlier, outcome);
            }
        };
        extended.extend(fetched.certificates.iter().cloned());
        let verdict = verify(&extended, trust, name);
        if verdict.accepted {
            return report(url, earlier, AiaOutcome::Accepted { fetched, verdict });
        }
        // Only a path that now stops at what was just fetched has moved up:
        // its issuer is the next hop. Anything else (a wrong certificate
        // served) ends the check, so no URL is fetched twice or out of turn.
        let moved_up = verdict
            .stopped_at()
            .is_some_and(|stop| fetched.certificates.iter().any(|c| same_der(c, stop)));
        let seen = |u: &String| *u == fetched.url || earlier.iter().any(|f| f.url == *u);
        let above = missing_issuer_url(&extended, &verdict).filter(|u| moved_up && !seen(u));
        match above {
            Some(url_above) if earlier.len() + 1 < MAX_HOPS => {
                earlier.push(fetched);
                next = url_above;
            }
            _ => return report(url, earlier, AiaOutcome::StillRejected { fetched, verdict }),
        }
    }
}

fn report(url: &str, earlier: Vec<FetchedIssuer>, outcome: AiaOutcome) -> AiaReport {
    AiaReport {
        url: url.to_owned(),
        earlier,
        outcome,
    }
}
