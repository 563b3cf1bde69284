//! The verdict: BoringSSL's `X509_verify_cert` over the chain as sent, with
//! strict settings. BoringSSL decides; this module only sets it up and
//! records what it said.

use std::net::IpAddr;

use boring::error::ErrorStack;
use boring::stack::Stack;
use boring::x509::verify::{X509CheckFlags, X509VerifyFlags};
use boring::x509::{X509StoreContext, X509StoreContextRef, X509};
use serde::Serialize;

use crate::ffi;
use crate::trust::TrustStore;

/// X509 verify error numbers quicprobe explains, named as in OpenSSL's
/// `x509_vfy.h` (the numbers are the same in BoringSSL and OpenSSL).
pub mod code {
    pub const OK: i32 = 0;
    pub const UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
    pub const CERT_SIGNATURE_FAILURE: i32 = 7;
    pub const CERT_NOT_YET_VALID: i32 = 9;
    pub const CERT_HAS_EXPIRED: i32 = 10;
    pub const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
    pub const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
    pub const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
    pub const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
    pub const CERT_CHAIN_TOO_LONG: i32 = 22;
    pub const INVALID_CA: i32 = 24;
    pub const PATH_LENGTH_EXCEEDED: i32 = 25;
    pub const INVALID_PURPOSE: i32 = 26;
    pub const CERT_UNTRUSTED: i32 = 27;
    pub const KEYUSAGE_NO_CERTSIGN: i32 = 32;
    pub const PERMITTED_VIOLATION: i32 = 47;
    pub const EXCLUDED_VIOLATION: i32 = 48;
    pub const HOSTNAME_MISMATCH: i32 = 62;
    pub const IP_ADDRESS_MISMATCH: i32 = 64;
    pub const NAME_CONSTRAINTS_WITHOUT_SANS: i32 = 67;
}

/// The name the client dialled, which the leaf must carry in its SAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum PeerName {
    Dns(String),
    Ip(IpAddr),
}

impl PeerName {
    /// An IP literal becomes `Ip`, anything else `Dns` (brackets of `[::1]` are dropped).
    pub fn parse(name: &str) -> Self {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => Self::Ip(ip),
            Err(_) => Self::Dns(name.to_owned()),
        }
    }
}

impl std::fmt::Display for PeerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// What a verification checks beyond the chain itself. `strict()` is
/// quicprobe's; the others model what other client families check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// Require the TLS-server purpose (EKU serverAuth) on the leaf and CAs.
    pub server_purpose: bool,
    /// Fall back to the subject CN when the leaf has no DNS SAN (OpenSSL's
    /// and curl's default; RFC 9525, Chrome, Go and aioquic never do).
    pub cn_fallback: bool,
    /// Take any trusted certificate as an anchor, a trusted intermediate
    /// included (Go's crypto/x509 does; OpenSSL only with
    /// X509_V_FLAG_PARTIAL_CHAIN).
    pub partial_chain: bool,
}

impl Checks {
    /// quicprobe's checks: TLS-server purpose, SAN only.
    pub const fn strict() -> Self {
        Self {
            server_purpose: true,
            cn_fallback: false,
            partial_chain: false,
        }
    }
}

/// An X509 verify error, by number and by its standard text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct X509Error {
    pub code: i32,
    pub text: &'static str,
}

impl X509Error {
    pub fn from_code(code: i32) -> Self {
        Self {
            code,
            text: ffi::verify_error_string(code),
        }
    }
}

/// BoringSSL's answer for one chain.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub accepted: bool,
    /// 0 when accepted.
    pub x509_error: i32,
    /// The standard string, e.g. "unable to get local issuer certificate".
    pub x509_error_string: &'static str,
    /// Depth of the failing certificate in the chain BoringSSL built (0 = leaf).
    pub depth: Option<u32>,
    /// Subject of the certificate at that depth.
    pub certificate: Option<String>,
    /// Issuer of the certificate at that depth (the missing one, for error 20).
    pub certificate_issuer: Option<String>,
    /// Subjects of the chain BoringSSL built, leaf first, as far as it got.
    pub built_chain: Vec<String>,
    /// The certificates of that chain themselves, for the diagnosis to match
    /// by DER and position rather than by name.
    #[serde(skip)]
    pub built_certificates: Vec<X509>,
    /// The name checked against the leaf, if any.
    pub peer_name: Option<PeerName>,
}

impl Verdict {
    pub fn error(&self) -> X509Error {
        X509Error::from_code(self.x509_error)
    }

    /// A verdict for a chain with no certificate at all.
    fn empty_chain() -> Self {
        Self {
            accepted: false,
            x509_error: code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            x509_error_string: "no certificate was sent",
            depth: None,
            certificate: None,
            certificate_issuer: None,
            built_chain: Vec::new(),
            built_certificates: Vec::new(),
            peer_name: None,
        }
    }

    /// The certificate whose issuer verification could not find: the last
    /// of the chain BoringSSL built, for a missing-issuer verdict.
    pub fn stopped_at(&self) -> Option<&X509> {
        self.built_certificates.last()
    }

    /// The certificate at the failing depth of the built chain.
    pub fn failing_certificate(&self) -> Option<&X509> {
        self.built_certificates.get(self.depth? as usize)
    }
}

/// Verifies `chain` (as sent: leaf first) against `trust` for `name`, with
/// quicprobe's strict checks.
pub fn verify(chain: &[X509], trust: &TrustStore, name: Option<&PeerName>) -> Verdict {
    verify_with(chain, trust, name, Checks::strict())
}

/// Verifies with explicitly chosen checks. The chain must be completed from
/// the certificates sent plus the roots: no partial chains (a trusted
/// intermediate is not an anchor), no fetching of missing issuers.
pub fn verify_with(
    chain: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    checks: Checks,
) -> Verdict {
    let Some((leaf, rest)) = chain.split_first() else {
        return Verdict::empty_chain();
    };
    match run_x509_verify_cert(leaf, rest, trust, name, checks) {
        Ok(mut verdict) => {
            verdict.peer_name = name.cloned();
            verdict
        }
        Err(error) => internal_failure(&error, name),
    }
}

fn run_x509_verify_cert(
    leaf: &X509,
    rest: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    checks: Checks,
) -> Result<Verdict, ErrorStack> {
    with_configured_context(leaf, rest, trust, name, checks, |ctx| {
        let accepted = ctx.verify_cert()?;
        Ok(read_outcome(ctx, accepted))
    })
}

/// A store context for `leaf` and the untrusted `rest`, set up with the
/// checks and the name, handed to `body` for one verification.
fn with_configured_context<T>(
    leaf: &X509,
    rest: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    checks: Checks,
    body: impl FnOnce(&mut X509StoreContextRef) -> Result<T, ErrorStack>,
) -> Result<T, ErrorStack> {
    let mut untrusted = Stack::new()?;
    for cert in rest {
        untrusted.push(cert.clone())?;
    }
    let mut context = X509StoreContext::new()?;
    context.init(trust.store(), leaf, &untrusted, |ctx| {
        configure(ctx, name, checks)?;
        body(ctx)
    })
}

fn configure(
    ctx: &mut X509StoreContextRef,
    name: Option<&PeerName>,
    checks: Checks,
) -> Result<(), ErrorStack> {
    if checks.server_purpose && !ffi::set_tls_server_purpose(ctx) {
        return Err(ErrorStack::get());
    }
    let param = ctx.verify_param_mut();
    if !checks.cn_fallback {
        param.set_hostflags(X509CheckFlags::NEVER_CHECK_SUBJECT);
    }
    if checks.partial_chain {
        param.try_set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
    }
    match name {
        Some(PeerName::Dns(host)) => param.set_host(host)?,
        Some(PeerName::Ip(ip)) => param.set_ip(*ip)?,
        None => {}
    }
    Ok(())
}

fn read_outcome(ctx: &X509StoreContextRef, accepted: bool) -> Verdict {
    let error = ctx.verify_result().err().map_or(code::OK, |e| e.as_raw());
    let failing = (!accepted).then(|| ctx.current_cert()).flatten();
    let built: Vec<X509> = ctx
        .chain()
        .map(|chain| chain.iter().map(ToOwned::to_owned).collect())
        .unwrap_or_default();
    Verdict {
        accepted: accepted && error == code::OK,
        x509_error: error,
        x509_error_string: ffi::verify_error_string(error),
        depth: (!accepted).then(|| ctx.error_depth()),
        certificate: failing.map(|c| crate::names::one_line(c.subject_name())),
        certificate_issuer: failing.map(|c| crate::names::one_line(c.issuer_name())),
        built_chain: built
            .iter()
            .map(|c| crate::names::one_line(c.subject_name()))
            .collect(),
        built_certificates: built,
        peer_name: None,
    }
}

/// One fault of a chain: what a client that went on past errors would see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundFault {
    pub x509_error: i32,
    pub x509_error_string: &'static str,
    pub depth: u32,
    /// Subject of the certificate at that depth.
    pub certificate: Option<String>,
}

/// Every fault BoringSSL finds in the chain when told to go on past each
/// one, in the order it found them. The first is the strict verdict's; the
/// others are what a person must also fix.
pub fn every_fault(chain: &[X509], trust: &TrustStore, name: Option<&PeerName>) -> Vec<FoundFault> {
    let Some((leaf, rest)) = chain.split_first() else {
        return Vec::new();
    };
    let found = with_configured_context(leaf, rest, trust, name, Checks::strict(), |ctx| {
        ffi::record_every_fault(ctx);
        let _ = ctx.verify_cert();
        Ok(ffi::take_reported_faults())
    });
    let mut faults: Vec<FoundFault> = found
        .unwrap_or_default()
        .into_iter()
        .map(|f| FoundFault {
            x509_error: f.code,
            x509_error_string: ffi::verify_error_string(f.code),
            depth: f.depth,
            certificate: f.subject,
        })
        .collect();
    let mut seen = Vec::new();
    faults.retain(|f| {
        let key = (f.x509_error, f.depth);
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    faults
}

fn internal_failure(error: &ErrorStack, name: Option<&PeerName>) -> Verdict {
    log::error!("BoringSSL could not run the verification: {error}");
    Verdict {
        accepted: false,
        x509_error: -1,
        x509_error_string: "verification could not run (BoringSSL internal error)",
        depth: None,
        certificate: None,
        certificate_issuer: None,
        built_chain: Vec::new(),
        built_certificates: Vec::new(),
        peer_name: name.cloned(),
    }
}
