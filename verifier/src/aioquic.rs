//! What aioquic 1.7 says about a chain, in its order and its words, so that
//! quicprobe can close a connection exactly as aioquic would and a trace can
//! be compared with aioquic's line by line.
//!
//! aioquic's `tls.verify_certificate` checks, and stops at the first failure:
//! 1. the leaf's dates: alert 45, "Certificate is not valid yet" / "Certificate
//!    is no longer valid";
//! 2. the name, with service_identity (SAN only): alert 42, "hostname 'x'
//!    doesn't match DNSPattern(pattern=b'...')";
//! 3. the chain, with OpenSSL's `X509_verify_cert` and no purpose: alert 42
//!    and OpenSSL's error string.
//!
//! Steps 2 and 3 are reproduced here; the chain is judged by BoringSSL with
//! aioquic's checks and its error put in OpenSSL 3's words, which differ from
//! BoringSSL's for a few errors (`openssl_error_string`).

use std::net::IpAddr;

use boring::x509::{X509Ref, X509};
use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::trust::TrustStore;
use crate::verdict::{verify_with, Checks, PeerName};
use crate::x509_error::X509Error;

/// Which of aioquic's checks failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AioquicCheck {
    Dates,
    Name,
    Chain,
}

/// aioquic's answer for one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AioquicVerdict {
    pub accepted: bool,
    /// The TLS alert aioquic sends: 45 for the leaf's dates, 42 otherwise.
    pub alert: Option<u8>,
    /// Its reason phrase, word for word.
    pub reason: Option<String>,
    pub failed_check: Option<AioquicCheck>,
}

impl AioquicVerdict {
    fn accepted() -> Self {
        Self {
            accepted: true,
            alert: None,
            reason: None,
            failed_check: None,
        }
    }

    fn rejected(check: AioquicCheck, reason: String) -> Self {
        Self {
            accepted: false,
            alert: Some(if check == AioquicCheck::Dates { 45 } else { 42 }),
            reason: Some(reason),
            failed_check: Some(check),
        }
    }
}

/// aioquic's verdict on `chain` (as sent, leaf first) for `name`.
pub fn aioquic_verdict(
    chain: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
) -> AioquicVerdict {
    let Some(leaf) = chain.first() else {
        // aioquic never gets this far without a certificate.
        return AioquicVerdict::rejected(AioquicCheck::Chain, "no certificate was sent".into());
    };
    if let Some(reason) = date_problem(leaf) {
        return AioquicVerdict::rejected(AioquicCheck::Dates, reason.into());
    }
    if let Some(reason) = name.and_then(|name| name_problem(leaf, name)) {
        return AioquicVerdict::rejected(AioquicCheck::Name, reason);
    }
    let chain_only = Checks {
        server_purpose: false,
        cn_fallback: false,
        partial_chain: false,
    };
    let verdict = verify_with(chain, trust, None, chain_only);
    if verdict.accepted {
        AioquicVerdict::accepted()
    } else {
        let reason = verdict
            .error
            .map_or(verdict.x509_error_string(), openssl_error_string);
        AioquicVerdict::rejected(AioquicCheck::Chain, reason.into())
    }
}

fn date_problem(leaf: &X509Ref) -> Option<&'static str> {
    let der = leaf.to_der().ok()?;
    let (_, parsed) = X509Certificate::from_der(&der).ok()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() {
        Some("Certificate is not valid yet")
    } else if now > validity.not_after.timestamp() {
        Some("Certificate is no longer valid")
    } else {
        None
    }
}

/// A SAN entry as service_identity sees it (URIs and SRV names are left
/// out: no server certificate quicprobe meets carries them).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Dns(String),
    Ip(IpAddr),
}

impl Pattern {
    /// Python's repr, as aioquic puts it in the reason.
    fn repr(&self) -> String {
        match self {
            Self::Dns(pattern) => format!("DNSPattern(pattern=b{})", python_quote(pattern)),
            Self::Ip(IpAddr::V4(ip)) => format!(
                "IPAddressPattern(pattern=IPv4Address({}))",
                python_quote(&ip.to_string())
            ),
            Self::Ip(IpAddr::V6(ip)) => format!(
                "IPAddressPattern(pattern=IPv6Address({}))",
                python_quote(&ip.to_string())
            ),
        }
    }

    fn matches(&self, name: &PeerName) -> bool {
        match (self, name) {
            (Self::Dns(pattern), PeerName::Dns(host)) => dns_matches(pattern, host),
            (Self::Ip(pattern), PeerName::Ip(ip)) => pattern == ip,
            _ => false,
        }
    }
}

fn san_patterns(leaf: &X509Ref) -> Vec<Pattern> {
    let Some(names) = leaf.subject_alt_names() else {
        return Vec::new();
    };
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in names.iter() {
        if let Some(host) = name.dnsname() {
            dns.push(Pattern::Dns(host.trim().to_ascii_lowercase()));
        } else if let Some(ip) = name.ipaddress().and_then(ip_from_bytes) {
            ips.push(Pattern::Ip(ip));
        }
    }
    // service_identity lists DNS names first, then URIs, then IP addresses.
    dns.extend(ips);
    dns
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn name_problem(leaf: &X509Ref, name: &PeerName) -> Option<String> {
    let patterns = san_patterns(leaf);
    if patterns.is_empty() {
        return Some("Certificate does not contain any `subjectAltName`s.".into());
    }
    if patterns.iter().any(|p| p.matches(name)) {
        return None;
    }
    let name = python_quote(&name.to_string());
    Some(match patterns.as_slice() {
        [one] => format!("hostname {name} doesn't match {}", one.repr()),
        many => format!(
            "hostname {name} doesn't match either of {}",
            many.iter()
                .map(Pattern::repr)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// service_identity's rule: a wildcard is the whole leftmost label and
/// stands for exactly one label.
fn dns_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(first, host_rest)| !first.is_empty() && host_rest == rest),
        None => pattern == host,
    }
}

/// Python's `repr` of a str (or the body of a bytes literal) made of
/// printable ASCII: single quotes unless the text holds one and no double.
fn python_quote(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => out.push_str(&format!("\\x{:02x}", u32::from(c) & 0xff)),
        }
    }
    out.push(quote);
    out
}

/// OpenSSL 3's text for a verify error where it differs from BoringSSL's
/// (aioquic reports OpenSSL's, through pyOpenSSL).
pub fn openssl_error_string(error: X509Error) -> &'static str {
    match error {
        X509Error::Other(1) => "unspecified certificate verification error",
        X509Error::CertNotYetValid => {
            "certificate is not yet valid or the system clock is incorrect"
        }
        X509Error::DepthZeroSelfSignedCert => "self-signed certificate",
        X509Error::SelfSignedCertInChain => "self-signed certificate in certificate chain",
        X509Error::InvalidPurpose => "unsuitable certificate purpose",
        X509Error::Other(44) => "different CRL scope",
        X509Error::Other(45) => "unsupported extension feature",
        X509Error::HostnameMismatch => "hostname mismatch",
        X509Error::Other(63) => "email address mismatch",
        X509Error::Other(65) => "invalid certificate verification context",
        X509Error::Other(66) => "issuer certificate lookup error",
        other => other.text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_exactly_one_label() {
        assert!(dns_matches("*.lab.test", "www.lab.test"));
        assert!(dns_matches("*.lab.test", "WWW.Lab.Test."));
        assert!(!dns_matches("*.lab.test", "deep.www.lab.test"));
        assert!(!dns_matches("*.lab.test", "lab.test"));
        assert!(dns_matches("localhost", "localhost"));
        assert!(!dns_matches("localhost", "localhost.example"));
    }

    #[test]
    fn reprs_are_pythons() {
        assert_eq!(
            Pattern::Dns("other.example.test".into()).repr(),
            "DNSPattern(pattern=b'other.example.test')"
        );
        assert_eq!(
            Pattern::Ip("127.0.0.2".parse().unwrap()).repr(),
            "IPAddressPattern(pattern=IPv4Address('127.0.0.2'))"
        );
        assert_eq!(
            Pattern::Ip("::1".parse().unwrap()).repr(),
            "IPAddressPattern(pattern=IPv6Address('::1'))"
        );
        assert_eq!(python_quote("it's"), "\"it's\"");
        assert_eq!(python_quote("a'\"b"), "'a\\'\"b'");
    }

    #[test]
    fn openssl_words_replace_boringssl_words_only_where_they_differ() {
        assert_eq!(
            openssl_error_string(X509Error::SelfSignedCertInChain),
            "self-signed certificate in certificate chain"
        );
        assert_eq!(
            openssl_error_string(X509Error::UnableToGetIssuerCertLocally),
            "unable to get local issuer certificate"
        );
    }
}
