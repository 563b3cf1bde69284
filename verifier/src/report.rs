//! The chain *as the server sent it*: every certificate described, and the
//! faults of the chain as a whole that BoringSSL does not judge (order,
//! duplicates, a needless root, certificates that certify nothing, size).

use base64::Engine as _;
use boring::nid::Nid;
use boring::pkey::Id;
use boring::x509::{X509Ref, X509};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

/// Above this many bytes of certificates a server's first flight is likely
/// to exceed QUIC's anti-amplification budget (3 x a 1200-byte client
/// Initial, RFC 9000 §8.1) and cost the client an extra round trip.
pub const AMPLIFICATION_BUDGET_BYTES: usize = 3 * 1200;

/// One certificate as sent, at its position in the server's list.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateSummary {
    /// Position in the list the server sent (0 = the first, which TLS says is the leaf).
    pub depth: usize,
    pub subject: String,
    pub issuer: String,
    /// Serial number in upper-case hex, as `openssl x509 -serial` shows it.
    pub serial: String,
    /// RFC 3339, UTC.
    pub not_before: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// "EC" or "RSA" or the algorithm's name.
    pub key_type: String,
    pub key_bits: u32,
    /// The named curve of an EC key, e.g. "prime256v1".
    pub curve: Option<String>,
    /// e.g. "ecdsa-with-SHA256".
    pub signature_algorithm: String,
    /// DNS names, IP addresses, URIs and e-mail addresses of the SAN extension.
    pub san: Vec<String>,
    /// The subject's CN, kept apart because strict clients never match it.
    pub common_name: Option<String>,
    /// Where the certificate says its issuer can be downloaded (AIA caIssuers).
    pub aia_ca_issuers: Vec<String>,
    /// The OCSP responders of the AIA extension.
    pub ocsp: Vec<String>,
    pub is_ca: bool,
    pub self_signed: bool,
    /// SHA-256 of the DER, lower-case hex with colons.
    pub sha256: String,
    pub der_bytes: usize,
    /// The certificate itself, exactly as sent (standard base64 of the
    /// DER), so that a chain can be rebuilt from the JSON alone.
    pub der_base64: String,
}

/// A fault of the chain as sent that does not by itself make a strict
/// client reject it; reported as a warning next to the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainWarning {
    /// The certificates are all there but not each followed by its issuer
    /// (RFC 8446 §4.4.2 tolerates it; old clients and some libraries do not).
    WrongOrder { at: usize },
    /// The same certificate is sent more than once.
    Duplicate { at: usize, first_at: usize },
    /// A self-signed root is sent: clients never use it, it only costs bytes.
    NeedlessRoot { at: usize },
    /// A certificate that issued none of the others: it certifies nothing.
    CertifiesNothing { at: usize },
    /// The chain alone is larger than QUIC's anti-amplification budget.
    ExceedsAmplificationBudget { bytes: usize, budget: usize },
    /// The first certificate is a CA, so it is probably not the leaf.
    LeafIsCa,
}

impl ChainWarning {
    /// One sentence a person can act on.
    pub fn explain(&self) -> String {
        match self {
            Self::WrongOrder { at } => format!(
                "certificate #{at} is not the issuer of the one before it: the chain is out of order \
                 (send the leaf first, then each issuer in turn)"
            ),
            Self::Duplicate { at, first_at } => {
                format!("certificate #{at} is a duplicate of #{first_at}: remove it")
            }
            Self::NeedlessRoot { at } => format!(
                "certificate #{at} is a self-signed root: clients must already have it, \
                 sending it only adds bytes"
            ),
            Self::CertifiesNothing { at } => format!(
                "certificate #{at} issued none of the others: it certifies nothing, remove it"
            ),
            Self::ExceedsAmplificationBudget { bytes, budget } => format!(
                "the chain is {bytes} bytes, more than QUIC's {budget}-byte anti-amplification \
                 budget for a server's first flight: expect an extra round trip"
            ),
            Self::LeafIsCa => "the first certificate is a CA certificate, not a server certificate; \
                 the leaf must come first"
                .into(),
        }
    }
}

/// The chain as sent, described certificate by certificate.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub certificates: Vec<CertificateSummary>,
    pub warnings: Vec<ChainWarning>,
    pub total_der_bytes: usize,
}

impl ChainReport {
    /// Describes `chain`, the certificates in the order the server sent them.
    pub fn describe(chain: &[X509]) -> Self {
        let certificates: Vec<CertificateSummary> = chain
            .iter()
            .enumerate()
            .map(|(depth, cert)| summarise(depth, cert))
            .collect();
        let total_der_bytes = certificates.iter().map(|c| c.der_bytes).sum();
        let warnings = chain_warnings(chain, &certificates, total_der_bytes);
        Self {
            certificates,
            warnings,
            total_der_bytes,
        }
    }

    /// The certificate sent first, the one TLS says is the server's own.
    pub fn leaf(&self) -> Option<&CertificateSummary> {
        self.certificates.first()
    }
}

fn summarise(depth: usize, cert: &X509Ref) -> CertificateSummary {
    let der = cert.to_der().unwrap_or_default();
    let parsed = X509Certificate::from_der(&der).ok().map(|(_, c)| c);
    let (key_type, key_bits, curve) = key_description(cert);
    CertificateSummary {
        depth,
        subject: crate::names::one_line(cert.subject_name()),
        issuer: crate::names::one_line(cert.issuer_name()),
        serial: serial_hex(cert),
        not_before: parsed
            .as_ref()
            .map_or_else(String::new, |c| rfc3339(c.validity().not_before)),
        not_after: parsed
            .as_ref()
            .map_or_else(String::new, |c| rfc3339(c.validity().not_after)),
        key_type,
        key_bits,
        curve,
        signature_algorithm: cert
            .signature_algorithm()
            .object()
            .nid()
            .long_name()
            .unwrap_or("unknown")
            .to_owned(),
        san: subject_alt_names(cert),
        common_name: common_name(cert),
        aia_ca_issuers: parsed.as_ref().map(ca_issuers).unwrap_or_default(),
        ocsp: ocsp_responders(cert),
        is_ca: parsed.as_ref().is_some_and(|c| c.is_ca()),
        self_signed: is_self_signed(cert),
        sha256: sha256_fingerprint(&der),
        der_bytes: der.len(),
        der_base64: base64::engine::general_purpose::STANDARD.encode(&der),
    }
}

fn rfc3339(time: x509_parser::time::ASN1Time) -> String {
    time.to_datetime()
        .format(&Rfc3339)
        .unwrap_or_else(|_| time.to_string())
}

fn serial_hex(cert: &X509Ref) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn key_description(cert: &X509Ref) -> (String, u32, Option<String>) {
    let Ok(key) = cert.public_key() else {
        return ("unknown".into(), 0, None);
    };
    let curve = key
        .ec_key()
        .ok()
        .and_then(|ec| ec.group().curve_name())
        .and_then(|nid: Nid| nid.short_name().ok().map(str::to_owned));
    let key_type = match key.id() {
        Id::RSA => "RSA".to_owned(),
        Id::EC => "EC".to_owned(),
        Id::ED25519 => "Ed25519".to_owned(),
        other => format!("{other:?}"),
    };
    (key_type, key.bits(), curve)
}

fn subject_alt_names(cert: &X509Ref) -> Vec<String> {
    let Some(names) = cert.subject_alt_names() else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|name| {
            if let Some(dns) = name.dnsname() {
                Some(format!("DNS:{dns}"))
            } else if let Some(ip) = name.ipaddress() {
                Some(format!("IP:{}", format_ip(ip)))
            } else if let Some(uri) = name.uri() {
                Some(format!("URI:{uri}"))
            } else {
                name.email().map(|email| format!("email:{email}"))
            }
        })
        .collect()
}

fn format_ip(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default()).to_string(),
        _ => hex_colons(bytes),
    }
}

pub(crate) fn common_name(cert: &X509Ref) -> Option<String> {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|entry| entry.data().as_utf8().ok())
        .map(|cn| cn.to_string())
}

/// The AIA caIssuers URLs of any certificate (one fetched, one trusted).
pub fn ca_issuers_of(cert: &X509Ref) -> Vec<String> {
    let der = cert.to_der().unwrap_or_default();
    X509Certificate::from_der(&der)
        .map(|(_, parsed)| ca_issuers(&parsed))
        .unwrap_or_default()
}

fn ca_issuers(cert: &X509Certificate) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let ca_issuers_oid = x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;
    cert.extensions()
        .iter()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => Some(aia),
            _ => None,
        })
        .flat_map(|aia| aia.accessdescs.iter())
        .filter(|desc| desc.access_method == ca_issuers_oid)
        .filter_map(|desc| match desc.access_location {
            GeneralName::URI(uri) => Some(uri.to_owned()),
            _ => None,
        })
        .collect()
}

fn ocsp_responders(cert: &X509Ref) -> Vec<String> {
    cert.ocsp_responders()
        .map(|stack| stack.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default()
}

/// Whether two certificates are the same certificate: the same DER bytes.
/// Names are not enough (a re-keyed root, an issuer loop share them).
pub fn same_der(a: &X509Ref, b: &X509Ref) -> bool {
    match (a.to_der(), b.to_der()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Self-issued and self-signed: the subject is the issuer and its own key
/// verifies its signature.
pub fn is_self_signed(cert: &X509Ref) -> bool {
    issued_by(cert, cert)
}

/// True when `issuer` issued `subject`: names and key identifiers match and
/// `issuer`'s key verifies `subject`'s signature.
pub fn issued_by(subject: &X509Ref, issuer: &X509Ref) -> bool {
    issuer.issued(subject).is_ok() && crate::signatures::signed_by(subject, issuer)
}

pub(crate) fn sha256_fingerprint(der: &[u8]) -> String {
    hex_colons(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

fn hex_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn chain_warnings(
    chain: &[X509],
    summaries: &[CertificateSummary],
    total_der_bytes: usize,
) -> Vec<ChainWarning> {
    let mut warnings = Vec::new();
    if summaries.first().is_some_and(|leaf| leaf.is_ca) {
        warnings.push(ChainWarning::LeafIsCa);
    }
    let duplicates = duplicate_positions(summaries);
    warnings.extend(order_warnings(chain, &duplicates));
    for (at, first_at) in &duplicates {
        warnings.push(ChainWarning::Duplicate {
            at: *at,
            first_at: *first_at,
        });
    }
    for (at, summary) in summaries.iter().enumerate().skip(1) {
        if duplicates.iter().any(|(dup, _)| *dup == at) {
            continue;
        }
        // An unrelated root certifies nothing; a root that issued the
        // certificate before it is merely needless.
        if !issued_any_other(chain, at) {
            warnings.push(ChainWarning::CertifiesNothing { at });
        } else if summary.self_signed {
            warnings.push(ChainWarning::NeedlessRoot { at });
        }
    }
    if total_der_bytes > AMPLIFICATION_BUDGET_BYTES {
        warnings.push(ChainWarning::ExceedsAmplificationBudget {
            bytes: total_der_bytes,
            budget: AMPLIFICATION_BUDGET_BYTES,
        });
    }
    warnings
}

/// Whether the certificate at `at` issued some other certificate of the chain.
fn issued_any_other(chain: &[X509], at: usize) -> bool {
    chain
        .iter()
        .enumerate()
        .any(|(other, subject)| other != at && issued_by(subject, &chain[at]))
}

/// (position, position of its first occurrence) for every repeated certificate.
fn duplicate_positions(summaries: &[CertificateSummary]) -> Vec<(usize, usize)> {
    summaries
        .iter()
        .enumerate()
        .filter_map(|(at, summary)| {
            summaries[..at]
                .iter()
                .position(|earlier| earlier.sha256 == summary.sha256)
                .map(|first_at| (at, first_at))
        })
        .collect()
}

/// The first position whose certificate does not issue its predecessor,
/// when some *later* certificate does: everything is there, in the wrong order.
fn order_warnings(chain: &[X509], duplicates: &[(usize, usize)]) -> Option<ChainWarning> {
    let distinct: Vec<(usize, &X509)> = chain
        .iter()
        .enumerate()
        .filter(|(at, _)| !duplicates.iter().any(|(dup, _)| dup == at))
        .collect();
    distinct.windows(2).enumerate().find_map(|(i, pair)| {
        let (_, subject) = pair[0];
        let (at, next) = pair[1];
        let next_is_issuer = issued_by(subject, next);
        let issuer_comes_later = distinct[i + 2..]
            .iter()
            .any(|(_, later)| issued_by(subject, later));
        (!next_is_issuer && issuer_comes_later).then_some(ChainWarning::WrongOrder { at })
    })
}
