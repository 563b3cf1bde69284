//! What an AIA check showed, told to people (one sentence) and to
//! programs (the JSON).

use std::time::Duration;

use quicprobe_verifier::{FetchedCertificate, Verdict};
use serde::{Serialize, Serializer};

use super::{AiaError, AiaErrorKind, BodyFormat, FetchedIssuer};

/// What fetching the missing issuers showed, hop by hop up the chain. The
/// connection is still rejected: this is a report of what AIA-fetching
/// clients would do.
#[derive(Debug, Clone)]
pub struct AiaReport {
    /// The caIssuers URL of the certificate whose issuer is missing.
    pub url: String,
    /// Certificates fetched before the last hop, lowest first: each was an
    /// intermediate whose own issuer was missing too.
    pub earlier: Vec<FetchedIssuer>,
    /// The last hop.
    pub outcome: AiaOutcome,
}

/// The three ends of an AIA check.
#[derive(Debug, Clone)]
pub enum AiaOutcome {
    /// Fetched, and the chain with it verifies.
    Accepted {
        fetched: FetchedIssuer,
        verdict: Verdict,
    },
    /// Fetched, but the chain with it is still rejected.
    StillRejected {
        fetched: FetchedIssuer,
        verdict: Verdict,
    },
    /// Nothing usable was fetched.
    FetchFailed { error: AiaError, elapsed: Duration },
}

/// The JSON form of an [`AiaReport`] (what `Serialize` writes).
#[derive(Debug, Clone, Serialize)]
pub struct AiaJson<'a> {
    pub url: &'a str,
    pub fetched: bool,
    /// Bytes of the body, when fetched.
    pub bytes: Option<usize>,
    /// Time of the fetch (to the failure, if it failed), in milliseconds.
    pub ms: f64,
    pub format: Option<BodyFormat>,
    pub content_type: Option<&'a str>,
    /// The subjects of the certificates served.
    pub fetched_subjects: Vec<String>,
    /// The fetch error, `url: problem`.
    pub error: Option<String>,
    pub accepted_with_fetched: bool,
    /// The strict verdict with the fetched certificates added.
    pub verdict_with_fetched: Option<&'a Verdict>,
    /// Every hop, lowest first: the URL and the subjects it served.
    pub hops: Vec<AiaHopJson<'a>>,
}

/// One fetch of an AIA check, in the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct AiaHopJson<'a> {
    pub url: &'a str,
    pub fetched_subjects: Vec<String>,
}

impl AiaReport {
    /// True when the chain verifies once the missing issuer is fetched.
    pub fn accepted_with_fetched(&self) -> bool {
        matches!(self.outcome, AiaOutcome::Accepted { .. })
    }

    /// One sentence for people. An accepted fetch is worded for what
    /// [`run_aia_check`](super::run_aia_check) reports: a chain strict
    /// clients reject for a missing issuer.
    pub fn describe(&self) -> String {
        match &self.outcome {
            AiaOutcome::Accepted { .. } => format!(
                "rejected by strict clients (OpenSSL, aioquic, curl, quiche); accepted by \
                 AIA-fetching clients (.NET, Windows, Chrome): {}",
                self.served()
            ),
            AiaOutcome::StillRejected { fetched, verdict } => format!(
                "AIA-fetching clients would fail too: {}{} serves {}, but with it the chain is \
                 still rejected: {} (X509 error {}){}",
                self.fetched_before(),
                fetched.url,
                quoted_subjects(fetched),
                verdict.x509_error_string(),
                verdict.x509_error(),
                at_certificate(verdict)
            ),
            AiaOutcome::FetchFailed { error, .. } => match error.kind {
                AiaErrorKind::UnsupportedScheme { .. } | AiaErrorKind::BadUrl(_) => format!(
                    "{}the AIA caIssuers URL was not fetched: {error}",
                    self.fetched_before()
                ),
                _ => format!(
                    "AIA-fetching clients would fail too: {}{error}",
                    self.fetched_before()
                ),
            },
        }
    }

    /// `the intermediate is served at URL ('B', 1017 bytes in 1.2 ms)`, or
    /// every hop when there were several.
    fn served(&self) -> String {
        let hops: Vec<String> = self
            .all_fetched()
            .into_iter()
            .map(|fetched| {
                format!(
                    "{} ({}, {} bytes in {} ms)",
                    fetched.url,
                    quoted_subjects(fetched),
                    fetched.bytes,
                    millis(fetched.elapsed)
                )
            })
            .collect();
        if hops.len() == 1 {
            format!("the intermediate is served at {}", hops[0])
        } else {
            format!("the intermediates are served at {}", hops.join(", then "))
        }
    }

    /// `after fetching 'B' from URL, ` when earlier hops served certificates.
    fn fetched_before(&self) -> String {
        self.earlier
            .iter()
            .map(|f| format!("after fetching {} from {}, ", quoted_subjects(f), f.url))
            .collect()
    }

    /// The JSON form.
    pub fn json(&self) -> AiaJson<'_> {
        let (fetched, verdict, error, elapsed) = match &self.outcome {
            AiaOutcome::Accepted { fetched, verdict }
            | AiaOutcome::StillRejected { fetched, verdict } => {
                (Some(fetched), Some(verdict), None, fetched.elapsed)
            }
            AiaOutcome::FetchFailed { error, elapsed } => (None, None, Some(error), *elapsed),
        };
        AiaJson {
            url: &self.url,
            fetched: fetched.is_some(),
            bytes: fetched.map(|f| f.bytes),
            ms: millis(elapsed),
            format: fetched.map(|f| f.format),
            content_type: fetched.and_then(|f| f.content_type.as_deref()),
            fetched_subjects: fetched.map(FetchedIssuer::subjects).unwrap_or_default(),
            error: error.map(ToString::to_string),
            accepted_with_fetched: self.accepted_with_fetched(),
            verdict_with_fetched: verdict,
            hops: self
                .all_fetched()
                .into_iter()
                .map(|f| AiaHopJson {
                    url: &f.url,
                    fetched_subjects: f.subjects(),
                })
                .collect(),
        }
    }

    /// Every fetch that served certificates, lowest first.
    pub fn all_fetched(&self) -> Vec<&FetchedIssuer> {
        let last = match &self.outcome {
            AiaOutcome::Accepted { fetched, .. } | AiaOutcome::StillRejected { fetched, .. } => {
                Some(fetched)
            }
            AiaOutcome::FetchFailed { .. } => None,
        };
        self.earlier.iter().chain(last).collect()
    }

    /// The fetched certificates with their URLs: the evidence the diagnosis
    /// weighs (a fetched root is a missing root, an intermediate a missing
    /// intermediate).
    pub fn evidence(&self) -> Vec<FetchedCertificate> {
        self.all_fetched()
            .into_iter()
            .flat_map(|fetched| {
                fetched
                    .certificates
                    .iter()
                    .map(|certificate| FetchedCertificate {
                        url: fetched.url.clone(),
                        certificate: certificate.clone(),
                    })
            })
            .collect()
    }
}

impl Serialize for AiaReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

fn quoted_subjects(fetched: &FetchedIssuer) -> String {
    fetched
        .subjects()
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn at_certificate(verdict: &Verdict) -> String {
    match (verdict.depth, verdict.certificate.as_deref()) {
        (Some(depth), Some(subject)) => format!(" at depth {depth}, '{subject}'"),
        (Some(depth), None) => format!(" at depth {depth}"),
        _ => String::new(),
    }
}

/// Milliseconds to a tenth, as the stages write them.
fn millis(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 10_000.0).round() / 10.0
}
