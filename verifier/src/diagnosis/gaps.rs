//! The words for a chain that stops at an issuer nobody has: who must act,
//! the side at fault first, and the other possible cause when the evidence
//! cannot rule it out.

use super::corrected::{ChainEntry, EntryStatus};
use super::{Alternative, Facts, Fault, Finding, Text};
use crate::trust::TrustSource;

/// The text for the faults of this module; `None` for every other fault.
pub(crate) fn explain(facts: &Facts, finding: &Finding, corrected: &[ChainEntry]) -> Option<Text> {
    let store = facts.trust.summary().describe();
    let text = match &finding.fault {
        Fault::MissingIntermediate { missing, below, .. } => {
            missing_intermediate(facts, finding, corrected, missing, below)
        }
        Fault::MissingIssuer {
            missing,
            below,
            aia_ca_issuers,
        } => {
            let gap = Gap {
                facts,
                missing,
                below,
                url: aia_ca_issuers.as_deref(),
            };
            missing_issuer(&gap, &store, corrected)
        }
        Fault::MissingRoot {
            root,
            below,
            in_system_bundle,
        } => missing_root(facts, finding, root, below, *in_system_bundle),
        Fault::IntermediateIsNotAnAnchor { intermediate, root } => Text::plain(
            format!(
                "The trust store ({store}) holds '{intermediate}', which is not self-signed: an \
                 intermediate, not a root. Strict clients (OpenSSL, BoringSSL, aioquic, curl, \
                 quiche) take no partial chains: a trusted intermediate is not an anchor, so \
                 they still need its issuer '{root}', which is neither sent nor trusted. Go, \
                 which takes any trusted certificate as an anchor, connects."
            ),
            format!(
                "On the client: trust the root '{root}' that issued '{intermediate}' (put it in \
                 the --cacert file, beside or instead of the intermediate). The server's chain \
                 is not at fault."
            ),
        ),
        Fault::RootMismatch {
            root,
            trusted_sha256,
            below,
        } => Text::plain(
            format!(
                "The trust store ({store}) holds a certificate named '{root}' (sha256 \
                 {trusted_sha256}), but not the one that issued '{below}': the keys differ. The \
                 root was re-keyed, or another CA's root has the same name."
            ),
            format!(
                "On the client: trust the '{root}' that really issued the chain (get the current \
                 one from the CA and replace the old one in the trust store; its subject key \
                 identifier matches the authority key identifier of '{below}'). If it is the \
                 server that moved to a new root the clients do not have yet, serve the chain \
                 of the old root until they do."
            ),
        ),
        Fault::IssuerLoop { certificates } => Text::plain(
            format!(
                "The certificates the server sent issue each other in a loop ({}) and never \
                 reach a root: a path builder that does not remember where it has been never \
                 ends, and BoringSSL stops with \"unable to get local issuer certificate\".",
                certificates
                    .iter()
                    .map(|c| format!("'{c}'"))
                    .collect::<Vec<_>>()
                    .join(" issued by ")
            ),
            "On the server: replace the intermediates with the chain your CA issued: the leaf, \
             then its issuer, each in turn, up to (not including) a root the clients trust."
                .into(),
        ),
        _ => return None,
    };
    Some(text)
}

/// A missing issuer and the certificate below it.
struct Gap<'a> {
    facts: &'a Facts<'a>,
    missing: &'a str,
    below: &'a str,
    url: Option<&'a str>,
}

impl Gap<'_> {
    fn missing_root_alternative(&self, cause: String) -> Alternative {
        Alternative {
            kind: "missing_root",
            cause,
            fix: client_side_fix(self.facts, self.missing),
            tell_apart: self.tell_apart(),
        }
    }

    /// How to settle root against intermediate.
    fn tell_apart(&self) -> String {
        let ask = format!(
            "ask the CA whether '{}' is a root (a root is self-signed: its subject is its issuer)",
            self.missing
        );
        match self.url {
            Some(url) => format!(
                "run again with --aia-fetch: it downloads '{}' from {url}; a self-signed \
                 certificate is a root, any other an intermediate. Or {ask}.",
                self.missing
            ),
            None => {
                format!("No certificate says where to download it (no AIA caIssuers URL): {ask}.")
            }
        }
    }
}

fn missing_intermediate(
    facts: &Facts,
    finding: &Finding,
    corrected: &[ChainEntry],
    missing: &str,
    below: &str,
) -> Text {
    let all_missing = missing_names(corrected);
    let depth = facts.verdict.depth.unwrap_or(0);
    let lead = if finding.certain {
        format!(
            "The server did not send the intermediate certificate '{missing}', which issued \
             '{below}' (depth {depth}), and the client does not have it ({}).",
            finding.evidence
        )
    } else {
        format!(
            "Most likely the server did not send the intermediate certificate '{missing}', which \
             issued '{below}' (depth {depth}), and the client does not have it: public CAs never \
             issue server certificates straight from a root."
        )
    };
    let also = if all_missing.len() > 1 {
        format!(" Missing in all: {}.", quoted(&all_missing))
    } else {
        String::new()
    };
    let cause = format!(
        "{lead}{also} Strict clients (OpenSSL, aioquic, curl, quiche, Go on Linux) do not fetch \
         missing certificates and fail with \"unable to get local issuer certificate\"; {}",
        aia_clause(corrected)
    );
    let fix = format!(
        "On the server: send the full chain, in order: {}. With certbot use fullchain.pem, not \
         cert.pem; for msquic point QUIC_CERTIFICATE_FILE.CertificateFile (or the PEM you load) \
         at the full chain.",
        numbered(corrected)
    );
    let url = corrected
        .iter()
        .find(|e| e.status == EntryStatus::Missing)
        .and_then(|e| e.get_from.as_deref());
    let gap = Gap {
        facts,
        missing,
        below,
        url,
    };
    let alternatives = if finding.certain {
        Vec::new()
    } else {
        vec![gap.missing_root_alternative(format!(
            "If your CA issues server certificates straight from its root (a private CA can), \
             '{missing}' is that root and the client lacks it."
        ))]
    };
    Text {
        cause,
        fix,
        alternatives,
    }
}

fn missing_issuer(gap: &Gap, store: &str, corrected: &[ChainEntry]) -> Text {
    let (missing, below) = (gap.missing, gap.below);
    let depth = gap.facts.verdict.depth.unwrap_or(0);
    let cause = format!(
        "The path stops at '{below}' (depth {depth}), a CA certificate the server sent: its \
         issuer '{missing}' is neither sent nor in the trust store ({store}). Either the client \
         lacks the root '{missing}', or the server left out the intermediate '{missing}'; \
         nothing at hand can tell which."
    );
    let server_fix = format!("send the full chain, in order: {}", numbered(corrected));
    let fix = format!(
        "If '{missing}' is a root, on the client: {} If '{missing}' is an intermediate, on the \
         server: {server_fix}. To tell which, {}",
        client_side_fix(gap.facts, missing),
        lowercase_first(&gap.tell_apart())
    );
    let alternatives = vec![
        gap.missing_root_alternative(format!(
            "The client lacks the root '{missing}'; the server's chain is complete."
        )),
        Alternative {
            kind: "missing_intermediate",
            cause: format!(
                "The server left out the intermediate '{missing}', which issued '{below}'."
            ),
            fix: format!("On the server: {server_fix}."),
            tell_apart: gap.tell_apart(),
        },
    ];
    Text {
        cause,
        fix,
        alternatives,
    }
}

fn missing_root(
    facts: &Facts,
    finding: &Finding,
    root: &str,
    below: &str,
    in_system_bundle: bool,
) -> Text {
    let cause = format!(
        "The client lacks the root '{root}', which issued '{below}': {}. The server's chain is \
         complete; sending the root would change nothing (a root the client does not trust is \
         error 19). A root missing from the trust store is missing for every client family \
         that uses the same store.",
        finding.evidence
    );
    let fix = if in_system_bundle {
        format!(
            "On the client: add '{root}' to your --cacert file, or leave --cacert out to use the \
             system bundle, which holds it. The server needs no change."
        )
    } else {
        format!(
            "On the client, if you trust '{root}': {} Otherwise the server needs a certificate \
             from a CA its clients trust.",
            client_side_fix(facts, root)
        )
    };
    Text::plain(cause, fix)
}

/// What the client does to trust `root`, for the store it used.
fn client_side_fix(facts: &Facts, root: &str) -> String {
    match facts.trust.source() {
        TrustSource::User => format!(
            "add the certificate of '{root}' to the --cacert file (or pass it with another \
             --cacert; aioquic: cafile)."
        ),
        TrustSource::System => format!(
            "pass --cacert with the certificate of '{root}' (curl: --cacert, aioquic: cafile), \
             or install it in the system bundle (Debian: copy it to \
             /usr/local/share/ca-certificates/ and run update-ca-certificates)."
        ),
    }
}

/// Whether AIA-fetching clients get what is missing, in words.
fn aia_clause(corrected: &[ChainEntry]) -> String {
    let missing: Vec<&ChainEntry> = corrected
        .iter()
        .filter(|e| e.status == EntryStatus::Missing)
        .collect();
    if !missing.is_empty() && missing.iter().all(|e| e.get_from.is_some()) {
        "clients that follow AIA (.NET, Windows, Chrome) fetch what is missing from the \
         caIssuers URL and connect, which hides the fault."
            .into()
    } else {
        "no certificate says where to download what is missing (no AIA caIssuers URL), so \
         clients that follow AIA (.NET, Windows, Chrome) fail too."
            .into()
    }
}

/// `1. 'leaf' (sent), 2. 'B' (missing: get it from URL)`.
pub(crate) fn numbered(corrected: &[ChainEntry]) -> String {
    corrected
        .iter()
        .enumerate()
        .map(|(i, entry)| format!("{}. '{}' ({})", i + 1, entry.subject, entry_note(entry)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `sent as #1`, `missing: get it from URL`, `missing: get it from your CA`.
pub fn entry_note(entry: &ChainEntry) -> String {
    match (entry.status, entry.sent_at, entry.get_from.as_deref()) {
        (EntryStatus::Sent, Some(at), _) => format!("sent as #{at}"),
        (EntryStatus::Sent, None, _) => "sent".into(),
        (EntryStatus::Missing, _, Some(url)) => format!("missing: get it from {url}"),
        (EntryStatus::Missing, _, None) => "missing: get it from your CA".into(),
    }
}

fn missing_names(corrected: &[ChainEntry]) -> Vec<String> {
    corrected
        .iter()
        .filter(|e| e.status == EntryStatus::Missing)
        .map(|e| e.subject.clone())
        .collect()
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().collect::<String>() + chars.as_str()
    })
}
