//! The verdict: BoringSSL's `X509_verify_cert` over the chain as sent, with
//! strict settings. BoringSSL decides; this module only sets it up and
//! records what it said.

use std::net::IpAddr;

use boring::error::ErrorStack;
use boring::stack::Stack;
use boring::x509::verify::{X509CheckFlags, X509VerifyFlags};
use boring::x509::{X509StoreContext, X509StoreContextRef, X509};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::ffi;
use crate::trust::TrustStore;
use crate::x509_error::X509Error;

/// `X509_V_OK`: BoringSSL found nothing wrong.
const X509_V_OK: i32 = boring_sys::X509_V_OK;

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

/// BoringSSL's answer for one chain.
///
/// In JSON the error is `x509_error`, its number (0 when accepted, -1 when
/// the verification could not run), and `x509_error_string`, its text ("ok"
/// when accepted).
#[derive(Debug, Clone)]
pub struct Verdict {
    pub accepted: bool,
    /// Why the chain was rejected; `None` exactly when it was accepted.
    pub error: Option<X509Error>,
    /// Depth of the failing certificate in the chain BoringSSL built (0 = leaf).
    pub depth: Option<u32>,
    /// Subject of the certificate at that depth.
    pub certificate: Option<String>,
    /// Issuer of the certificate at that depth (the missing one, for error 20).
    pub certificate_issuer: Option<String>,
    /// The chain BoringSSL built, leaf first, as far as it got: for the
    /// diagnosis to match by DER and position rather than by name; in JSON
    /// as its subjects (`built_chain`), formatted only then.
    pub built_certificates: Vec<X509>,
    /// The name checked against the leaf, if any.
    pub peer_name: Option<PeerName>,
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Verdict", 8)?;
        out.serialize_field("accepted", &self.accepted)?;
        out.serialize_field("x509_error", &self.x509_error())?;
        out.serialize_field("x509_error_string", self.x509_error_string())?;
        out.serialize_field("depth", &self.depth)?;
        out.serialize_field("certificate", &self.certificate)?;
        out.serialize_field("certificate_issuer", &self.certificate_issuer)?;
        out.serialize_field("built_chain", &self.built_chain())?;
        out.serialize_field("peer_name", &self.peer_name)?;
        out.end()
    }
}

impl Verdict {
    /// Subjects of the chain BoringSSL built, leaf first, as far as it got.
    /// Formatted when asked: a handshake's verdict never needs them, and
    /// formatting names was a measurable share of the verifier's time.
    pub fn built_chain(&self) -> Vec<String> {
        self.built_certificates
            .iter()
            .map(|c| crate::names::one_line(c.subject_name()))
            .collect()
    }

    /// The error's number as OpenSSL prints it ("verify error:num=20"): 0
    /// when accepted, -1 when the verification could not run.
    pub fn x509_error(&self) -> i32 {
        self.error.map_or(X509_V_OK, X509Error::code)
    }

    /// The error's standard text, e.g. "unable to get local issuer
    /// certificate"; "ok" when accepted.
    pub fn x509_error_string(&self) -> &'static str {
        self.error
            .map_or_else(|| ffi::verify_error_string(X509_V_OK), X509Error::text)
    }

    /// A verdict for a chain with no certificate at all.
    fn empty_chain() -> Self {
        Self {
            accepted: false,
            error: Some(X509Error::NoCertificate),
            depth: None,
            certificate: None,
            certificate_issuer: None,
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
    let raw = ctx.verify_result().err().map_or(X509_V_OK, |e| e.as_raw());
    let accepted = accepted && raw == X509_V_OK;
    let failing = (!accepted).then(|| ctx.current_cert()).flatten();
    let built: Vec<X509> = ctx
        .chain()
        .map(|chain| chain.iter().map(ToOwned::to_owned).collect())
        .unwrap_or_default();
    Verdict {
        accepted,
        // A rejection BoringSSL gave no number for stays a rejection: Other(0).
        error: (!accepted).then(|| X509Error::from_code(raw)),
        depth: (!accepted).then(|| ctx.error_depth()),
        certificate: failing.map(|c| crate::names::one_line(c.subject_name())),
        certificate_issuer: failing.map(|c| crate::names::one_line(c.issuer_name())),
        built_certificates: built,
        peer_name: None,
    }
}

/// One fault of a chain: what a client that went on past errors would see.
///
/// In JSON the error is `x509_error` (its number) and `x509_error_string`
/// (its text), as in [`Verdict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFault {
    pub error: X509Error,
    pub depth: u32,
    /// Subject of the certificate at that depth.
    pub certificate: Option<String>,
}

impl Serialize for FoundFault {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("FoundFault", 4)?;
        out.serialize_field("x509_error", &self.error.code())?;
        out.serialize_field("x509_error_string", self.error.text())?;
        out.serialize_field("depth", &self.depth)?;
        out.serialize_field("certificate", &self.certificate)?;
        out.end()
    }
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
            error: X509Error::from_code(f.code),
            depth: f.depth,
            certificate: f.subject,
        })
        .collect();
    let mut seen = Vec::new();
    faults.retain(|f| {
        let key = (f.error, f.depth);
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
        error: Some(X509Error::InternalFailure),
        depth: None,
        certificate: None,
        certificate_issuer: None,
        built_certificates: Vec::new(),
        peer_name: name.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Verdict` as it was serialized before it held an `X509Error`: the
    /// JSON contract the hand-written `Serialize` must keep byte for byte.
    #[derive(Serialize)]
    struct VerdictJson<'a> {
        accepted: bool,
        x509_error: i32,
        x509_error_string: &'a str,
        depth: Option<u32>,
        certificate: Option<&'a str>,
        certificate_issuer: Option<&'a str>,
        built_chain: &'a [String],
        peer_name: Option<&'a PeerName>,
    }

    /// `FoundFault` as it was serialized before.
    #[derive(Serialize)]
    struct FoundFaultJson<'a> {
        x509_error: i32,
        x509_error_string: &'a str,
        depth: u32,
        certificate: Option<&'a str>,
    }

    fn verdict(error: Option<X509Error>) -> Verdict {
        Verdict {
            accepted: error.is_none(),
            error,
            depth: error.map(|_| 1),
            certificate: Some("CN=leaf".into()),
            certificate_issuer: Some("CN=R11".into()),
            built_certificates: Vec::new(),
            peer_name: Some(PeerName::parse("localhost")),
        }
    }

    fn json_as_before(v: &Verdict, x509_error: i32, x509_error_string: &str) -> String {
        serde_json::to_string(&VerdictJson {
            accepted: v.accepted,
            x509_error,
            x509_error_string,
            depth: v.depth,
            certificate: v.certificate.as_deref(),
            certificate_issuer: v.certificate_issuer.as_deref(),
            built_chain: &v.built_chain(),
            peer_name: v.peer_name.as_ref(),
        })
        .unwrap()
    }

    #[test]
    fn an_accepted_verdict_serializes_as_error_0_ok() {
        let v = verdict(None);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            json_as_before(&v, 0, "ok")
        );
    }

    #[test]
    fn a_rejection_serializes_as_boringssls_number_and_words() {
        let v = verdict(Some(X509Error::UnableToGetIssuerCertLocally));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            json_as_before(&v, 20, "unable to get local issuer certificate")
        );
        let v = verdict(Some(X509Error::Other(23)));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            json_as_before(&v, 23, "certificate revoked")
        );
    }

    #[test]
    fn a_verification_that_could_not_run_serializes_as_minus_1() {
        let v = verdict(Some(X509Error::InternalFailure));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            json_as_before(
                &v,
                -1,
                "verification could not run (BoringSSL internal error)"
            )
        );
    }

    #[test]
    fn an_empty_chain_serializes_as_20_no_certificate_was_sent() {
        let v = Verdict::empty_chain();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            json_as_before(&v, 20, "no certificate was sent")
        );
    }

    #[test]
    fn a_found_fault_serializes_as_number_words_depth_certificate() {
        let fault = FoundFault {
            error: X509Error::HostnameMismatch,
            depth: 0,
            certificate: Some("CN=leaf".into()),
        };
        let before = serde_json::to_string(&FoundFaultJson {
            x509_error: 62,
            x509_error_string: "Hostname mismatch",
            depth: 0,
            certificate: Some("CN=leaf"),
        })
        .unwrap();
        assert_eq!(serde_json::to_string(&fault).unwrap(), before);
    }
}
