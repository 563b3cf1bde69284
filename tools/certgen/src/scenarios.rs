//! The scenarios: one function each, building exactly the PKI and the chain the
//! scenario is about, and stating the verdict a strict BoringSSL client reaches.
//!
//! "Strict" is: X509_verify_cert with roots.pem as the only trust, the rest of
//! chain.pem as untrusted certificates, no partial chains, purpose TLS server (EKU must
//! allow serverAuth), the name checked against the SAN only
//! (X509_CHECK_FLAG_NEVER_CHECK_SUBJECT), at the current time. Depths are indexes in
//! the chain BoringSSL built, 0 = leaf.

use std::fmt;

use boring::x509::X509VerifyError;
use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, NameConstraints};
use serde::Serialize;

use crate::der;
use crate::diagnosis::{missing, sent, Diagnosis, FaultKind};
use crate::pki::{
    authority_info_access, ca_params, leaf_params, Ca, Dates, KeyKind, Leaf, Result, LAB_ORG,
};

/// The verdict a strict client reaches.
#[derive(Clone, Copy)]
pub enum Expected {
    Accepted,
    /// BoringSSL's X509_V_ERR_* code and the depth it reports.
    Rejected {
        error: X509VerifyError,
        depth: u32,
    },
}

/// The format of the `expected` file: `accepted` or `rejected <code> <depth>`.
impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Accepted => f.write_str("accepted"),
            Expected::Rejected { error, depth } => {
                write!(f, "rejected {} {depth}", error.as_raw())
            }
        }
    }
}

fn rejected(error: X509VerifyError, depth: u32) -> Expected {
    Expected::Rejected { error, depth }
}

/// Where the client's trust comes from; the `trust` file says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustSource {
    /// `--cacert roots.pem`.
    Cacert,
    /// No `--cacert`: the system bundle, which the tests point at `system-bundle.pem`
    /// with `SSL_CERT_FILE` (roots.pem holds the same certificates, so that tools that
    /// always pass `--cacert roots.pem` reach the same verdict).
    System,
}

/// The contents of the `trust` file.
impl fmt::Display for TrustSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrustSource::Cacert => "cacert",
            TrustSource::System => "system",
        })
    }
}

/// Everything written into one scenario folder.
pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    /// The name to dial: a DNS name or an IP literal.
    pub host: &'static str,
    pub expected: Expected,
    /// What quicprobe's diagnosis says, without `--aia-fetch`.
    pub diagnosis: Diagnosis,
    /// What it says with `--aia-fetch` (the AIA server serving missing-issuer.pem),
    /// for the scenarios where fetching changes the answer.
    pub diagnosis_with_aia_fetch: Option<Diagnosis>,
    /// PEM certificates in the order the server sends them.
    pub chain: Vec<String>,
    /// The leaf private key, PKCS#8 PEM.
    pub key_pem: String,
    /// PEM certificates the client trusts.
    pub roots: Vec<String>,
    /// Written to the `trust` file when set. The older scenarios have no such file,
    /// which means `--cacert`.
    pub trust_source: Option<TrustSource>,
    /// PEM certificates of a stand-in system bundle, written to `system-bundle.pem`.
    pub system_bundle: Option<Vec<String>>,
    /// Further files, e.g. the intermediate a server failed to send.
    pub extra_files: Vec<(&'static str, String)>,
    /// A pathological input for the hostile-server tests (client/tests/hostile.rs):
    /// why it is hostile and what becomes of it over QUIC, written to the `hostile`
    /// file. Tests that walk the whole catalogue treat these explicitly.
    pub hostile: Option<&'static str>,
}

impl Scenario {
    /// A scenario dialling `localhost`, sending only `leaf` so far and trusting nothing
    /// so far; the scenario functions add the rest.
    fn new(name: &'static str, description: &'static str, leaf: &Leaf) -> Scenario {
        Scenario {
            name,
            description,
            host: "localhost",
            expected: Expected::Accepted,
            diagnosis: Diagnosis::certain(FaultKind::None),
            diagnosis_with_aia_fetch: None,
            chain: vec![leaf.pem()],
            key_pem: leaf.key_pem(),
            roots: Vec::new(),
            trust_source: None,
            system_bundle: None,
            extra_files: Vec::new(),
            hostile: None,
        }
    }

    /// Appends certificates to what the server sends, after the leaf.
    fn send(mut self, pems: impl IntoIterator<Item = String>) -> Scenario {
        self.chain.extend(pems);
        self
    }

    fn trust(mut self, root: &Ca) -> Scenario {
        self.roots.push(root.pem());
        self
    }

    fn trust_all(self, roots: &[&Ca]) -> Scenario {
        roots
            .iter()
            .fold(self, |scenario, root| scenario.trust(root))
    }

    fn dial(mut self, host: &'static str) -> Scenario {
        self.host = host;
        self
    }

    fn expect(mut self, expected: Expected) -> Scenario {
        self.expected = expected;
        self
    }

    fn diagnose(mut self, diagnosis: Diagnosis) -> Scenario {
        self.diagnosis = diagnosis;
        self
    }

    fn diagnose_with_aia_fetch(mut self, diagnosis: Diagnosis) -> Scenario {
        self.diagnosis_with_aia_fetch = Some(diagnosis);
        self
    }

    fn trust_source(mut self, source: TrustSource) -> Scenario {
        self.trust_source = Some(source);
        self
    }

    fn system_bundle(mut self, roots: &[&Ca]) -> Scenario {
        self.system_bundle = Some(roots.iter().map(|root| root.pem()).collect());
        self
    }

    /// The catalogue's promises about itself: the diagnosis agrees with the verdict
    /// and keeps quicprobe's rules, an AIA answer has certificates to fetch, and a
    /// system-trust scenario has a bundle.
    fn check(&self) -> Result<()> {
        let in_scenario = |err: String| format!("{}: {err}", self.name);
        let accepted = matches!(self.expected, Expected::Accepted);
        self.diagnosis.check(accepted).map_err(in_scenario)?;
        if let Some(with_fetch) = &self.diagnosis_with_aia_fetch {
            with_fetch.check(accepted).map_err(in_scenario)?;
            if !self.has_file("missing-issuer.pem") {
                return Err(in_scenario("an AIA answer but no missing-issuer.pem".into()).into());
            }
        }
        if self.trust_source == Some(TrustSource::System) && self.system_bundle.is_none() {
            return Err(in_scenario("system trust without a system-bundle.pem".into()).into());
        }
        Ok(())
    }

    fn has_file(&self, name: &str) -> bool {
        self.extra_files.iter().any(|(file, _)| *file == name)
    }

    fn hostile(mut self, why: &'static str) -> Scenario {
        self.hostile = Some(why);
        self
    }

    fn with_file(mut self, name: &'static str, contents: String) -> Scenario {
        self.extra_files.push((name, contents));
        self
    }
}

/// The common lab PKI most scenarios issue under: root -> intermediate.
pub struct LabPki {
    pub root: Ca,
    intermediate: Ca,
}

impl LabPki {
    pub fn generate() -> Result<LabPki> {
        let root = Ca::root(
            ca_params("quicprobe Lab Root CA", LAB_ORG)?,
            KeyKind::EcdsaP256,
        )?;
        let intermediate = lab_intermediate("quicprobe Lab Intermediate CA", &root)?;
        Ok(LabPki { root, intermediate })
    }

    /// A sound leaf for `names`, issued by the lab intermediate.
    fn leaf(&self, names: &[&str]) -> Result<Leaf> {
        self.intermediate
            .issue_leaf(leaf_params(names)?, KeyKind::EcdsaP256)
    }

    /// A chain that verifies but should be just `leaf` and the lab intermediate (it
    /// sends a needless root, a duplicate or an unrelated certificate too).
    fn corrected_to_full_chain(&self, leaf: &Leaf) -> Diagnosis {
        Diagnosis::certain(FaultKind::None).corrected([sent(leaf), sent(&self.intermediate)])
    }
}

/// The path stops at a CA certificate the server sent whose issuer is nowhere: the
/// client may lack a root, or the server may have left out an intermediate.
fn missing_issuer() -> Diagnosis {
    Diagnosis::not_certain(
        FaultKind::MissingIssuer,
        &[FaultKind::MissingRoot, FaultKind::MissingIntermediate],
    )
}

/// The path stops at the leaf: its issuer may be an intermediate the server left out
/// (servers that send only the leaf are common, so that comes first) or a root the
/// client lacks (a leaf issued straight from a root).
fn missing_intermediate_at_leaf() -> Diagnosis {
    Diagnosis::not_certain(FaultKind::MissingIntermediate, &[FaultKind::MissingRoot])
}

/// A sound ECDSA intermediate with the given CN, issued by `issuer`.
fn lab_intermediate(common_name: &str, issuer: &Ca) -> Result<Ca> {
    Ca::issued_by(ca_params(common_name, LAB_ORG)?, KeyKind::EcdsaP256, issuer)
}

/// A self-signed ECDSA root of a PKI other than the lab's.
fn other_root(common_name: &str) -> Result<Ca> {
    Ca::root(ca_params(common_name, LAB_ORG)?, KeyKind::EcdsaP256)
}

/// Every scenario, in catalogue order.
pub fn all(lab: &LabPki) -> Result<Vec<Scenario>> {
    let builders: [fn(&LabPki) -> Result<Scenario>; 36] = [
        full_chain,
        leaf_only,
        missing_intermediate,
        wrong_order,
        extra_unrelated,
        root_included,
        untrusted_root,
        self_signed_leaf,
        expired_leaf,
        expired_intermediate,
        not_yet_valid_leaf,
        hostname_mismatch,
        wildcard_match,
        wildcard_nonmatch,
        ip_san,
        ip_mismatch,
        cn_without_san,
        intermediate_not_ca,
        pathlen_exceeded,
        client_auth_eku,
        name_constraints,
        rsa4096_chain,
        cross_signed,
        duplicate_certificate,
        client_lacks_root,
        no_cacert_private_root,
        trusted_intermediate_only,
        leaf_from_private_root,
        two_missing_intermediates,
        missing_and_misordered,
        rekeyed_root,
        root_in_system_bundle,
        hostile_chain_200,
        hostile_cert_64k,
        hostile_nested_asn1,
        hostile_issuer_loop,
    ];
    let scenarios: Vec<Scenario> = builders
        .iter()
        .map(|build| build(lab))
        .collect::<Result<_>>()?;
    for scenario in &scenarios {
        scenario.check()?;
    }
    Ok(scenarios)
}

fn full_chain(lab: &LabPki) -> Result<Scenario> {
    Ok(Scenario::new(
        "full-chain",
        "Leaf and intermediate, as a correctly configured server sends them",
        &lab.leaf(&["localhost"])?,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root))
}

/// The seed case: a Let's-Encrypt-like PKI where the server sends the leaf alone (a
/// server configured with cert.pem instead of fullchain.pem). Browsers often recover
/// by fetching the AIA caIssuers URL or from their intermediate cache; a strict client
/// does not, so the leaf's issuer cannot be found.
fn leaf_only(_lab: &LabPki) -> Result<Scenario> {
    let isrg_root = Ca::root(
        ca_params(
            "ISRG Root X1 (quicprobe lab)",
            "Internet Security Research Group (quicprobe lab)",
        )?,
        KeyKind::EcdsaP256,
    )?;
    let r11 = Ca::issued_by(
        ca_params("R11 (quicprobe lab)", "Let's Encrypt (quicprobe lab)")?,
        KeyKind::EcdsaP256,
        &isrg_root,
    )?;
    let mut params = leaf_params(&["localhost"])?;
    params.custom_extensions.push(authority_info_access(
        "http://r11.i.lencr.test/",
        "http://r11.o.lencr.test",
    ));
    let leaf = r11.issue_leaf(params, KeyKind::EcdsaP256)?;
    let corrected = [sent(&leaf), missing(&r11)];
    Ok(Scenario::new(
        "leaf-only",
        "Let's-Encrypt-like PKI; the server sends only the leaf (cert.pem instead of fullchain.pem)",
        &leaf,
    )
    .trust(&isrg_root)
    .with_file("missing-issuer.pem", r11.pem())
    .expect(rejected(X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0))
    // Only fetching R11 from the leaf's AIA URL shows it is an intermediate.
    .diagnose(missing_intermediate_at_leaf().corrected(corrected.clone()))
    .diagnose_with_aia_fetch(
        Diagnosis::certain(FaultKind::MissingIntermediate).corrected(corrected),
    ))
}

/// root -> A -> B, both intermediates issued by the lab PKI.
fn two_intermediates(lab: &LabPki) -> Result<(Ca, Ca)> {
    let a = lab_intermediate("quicprobe Lab Intermediate A", &lab.root)?;
    let b = lab_intermediate("quicprobe Lab Intermediate B", &a)?;
    Ok((a, b))
}

fn missing_intermediate(lab: &LabPki) -> Result<Scenario> {
    let (a, b) = two_intermediates(lab)?;
    let leaf = b.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "missing-intermediate",
        "root -> A -> B -> leaf; the server sends leaf and B but not A",
        &leaf,
    )
    .send([b.pem()])
    .trust(&lab.root)
    .with_file("missing-issuer.pem", a.pem())
    // The chain ends at B, whose issuer A is nowhere: reported at B's depth.
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        1,
    ))
    // B has no AIA, so nothing tells whether A is a root or an intermediate.
    .diagnose(missing_issuer().corrected([sent(&leaf), sent(&b), missing(&a)])))
}

/// Path building looks issuers up among all certificates sent, in any order, so a
/// misordered chain verifies; RFC 8446 4.4.2 allows it. Worth a warning only.
fn wrong_order(lab: &LabPki) -> Result<Scenario> {
    let (a, b) = two_intermediates(lab)?;
    let leaf = b.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "wrong-order",
        "root -> A -> B -> leaf, sent as leaf, A, B (intermediates reversed)",
        &leaf,
    )
    .send([a.pem(), b.pem()])
    .trust(&lab.root)
    .diagnose(Diagnosis::certain(FaultKind::None).corrected([sent(&leaf), sent(&b), sent(&a)])))
}

fn extra_unrelated(lab: &LabPki) -> Result<Scenario> {
    let unrelated = other_root("quicprobe Unrelated Root CA")?;
    let leaf = lab.leaf(&["localhost"])?;
    Ok(Scenario::new(
        "extra-unrelated",
        "Leaf, intermediate and an unrelated CA certificate from another PKI",
        &leaf,
    )
    .send([lab.intermediate.pem(), unrelated.pem()])
    .trust(&lab.root)
    .diagnose(lab.corrected_to_full_chain(&leaf)))
}

/// Sending the root is wasted bytes, not an error: the trusted copy is found first.
fn root_included(lab: &LabPki) -> Result<Scenario> {
    let leaf = lab.leaf(&["localhost"])?;
    Ok(Scenario::new(
        "root-included",
        "Leaf, intermediate and the (trusted) root itself",
        &leaf,
    )
    .send([lab.intermediate.pem(), lab.root.pem()])
    .trust(&lab.root)
    .diagnose(lab.corrected_to_full_chain(&leaf)))
}

fn untrusted_root(lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Untrusted Root CA")?;
    let intermediate = lab_intermediate("quicprobe Untrusted Intermediate CA", &root)?;
    let leaf = intermediate.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "untrusted-root",
        "Leaf, intermediate and root of a PKI the client does not trust",
        &leaf,
    )
    .send([intermediate.pem(), root.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::SELF_SIGNED_CERT_IN_CHAIN, 2))
    .diagnose(Diagnosis::certain(FaultKind::UntrustedRoot)))
}

/// BoringSSL only counts a certificate as self-signed (EXFLAG_SS) if its keyUsage, when
/// present, allows keyCertSign. With the usual leaf keyUsage digitalSignature BoringSSL
/// reports 20 at depth 0 instead (OpenSSL 3.0 still says 18). This leaf therefore has no
/// keyUsage at all, like `rcgen::generate_simple_self_signed` output, and both agree on 18.
fn self_signed_leaf(lab: &LabPki) -> Result<Scenario> {
    let mut params = leaf_params(&["localhost"])?;
    params.key_usages.clear();
    Ok(Scenario::new(
        "self-signed-leaf",
        "A self-signed leaf for localhost (not a CA), no issuer at all",
        &Leaf::self_signed(params)?,
    )
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::DEPTH_ZERO_SELF_SIGNED_CERT, 0))
    .diagnose(Diagnosis::certain(FaultKind::SelfSignedLeaf)))
}

fn expired_leaf(lab: &LabPki) -> Result<Scenario> {
    let mut params = leaf_params(&["localhost"])?;
    Dates::Expired.apply(&mut params);
    let leaf = lab.intermediate.issue_leaf(params, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "expired-leaf",
        "The leaf expired on 2021-01-01 (valid 2020-01-01 to 2021-01-01)",
        &leaf,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::CERT_HAS_EXPIRED, 0))
    .diagnose(Diagnosis::certain(FaultKind::Expired)))
}

fn expired_intermediate(lab: &LabPki) -> Result<Scenario> {
    let mut params = ca_params("quicprobe Lab Expired Intermediate CA", LAB_ORG)?;
    Dates::Expired.apply(&mut params);
    let intermediate = Ca::issued_by(params, KeyKind::EcdsaP256, &lab.root)?;
    let leaf = intermediate.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "expired-intermediate",
        "The intermediate expired on 2021-01-01; the leaf itself is valid",
        &leaf,
    )
    .send([intermediate.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::CERT_HAS_EXPIRED, 1))
    .diagnose(Diagnosis::certain(FaultKind::Expired)))
}

fn not_yet_valid_leaf(lab: &LabPki) -> Result<Scenario> {
    let mut params = leaf_params(&["localhost"])?;
    Dates::NotYetValid.apply(&mut params);
    let leaf = lab.intermediate.issue_leaf(params, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "not-yet-valid-leaf",
        "The leaf is valid only from 2090-01-01 (to 2099-12-31)",
        &leaf,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::CERT_NOT_YET_VALID, 0))
    .diagnose(Diagnosis::certain(FaultKind::NotYetValid)))
}

fn hostname_mismatch(lab: &LabPki) -> Result<Scenario> {
    Ok(Scenario::new(
        "hostname-mismatch",
        "The leaf is for other.example.test; the client dials localhost",
        &lab.leaf(&["other.example.test"])?,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::HOSTNAME_MISMATCH, 0))
    .diagnose(Diagnosis::certain(FaultKind::NameMismatch)))
}

fn wildcard_match(lab: &LabPki) -> Result<Scenario> {
    Ok(Scenario::new(
        "wildcard-match",
        "Leaf SAN *.lab.test; the client dials www.lab.test",
        &lab.leaf(&["*.lab.test"])?,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root)
    .dial("www.lab.test"))
}

/// A wildcard covers exactly one label (RFC 6125 6.4.3).
fn wildcard_nonmatch(lab: &LabPki) -> Result<Scenario> {
    Ok(Scenario::new(
        "wildcard-nonmatch",
        "Leaf SAN *.lab.test; the client dials deep.www.lab.test (a wildcard covers one label)",
        &lab.leaf(&["*.lab.test"])?,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root)
    .dial("deep.www.lab.test")
    .expect(rejected(X509VerifyError::HOSTNAME_MISMATCH, 0))
    .diagnose(Diagnosis::certain(FaultKind::NameMismatch)))
}

fn ip_san(lab: &LabPki) -> Result<Scenario> {
    Ok(Scenario::new(
        "ip-san",
        "Leaf SAN IP:127.0.0.1 and DNS:localhost; the client dials 127.0.0.1",
        &lab.leaf(&["127.0.0.1", "localhost"])?,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root)
    .dial("127.0.0.1"))
}

fn ip_mismatch(lab: &LabPki) -> Result<Scenario> {
    Ok(Scenario::new(
        "ip-mismatch",
        "Leaf SAN IP:127.0.0.2 only; the client dials 127.0.0.1",
        &lab.leaf(&["127.0.0.2"])?,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root)
    .dial("127.0.0.1")
    .expect(rejected(X509VerifyError::IP_ADDRESS_MISMATCH, 0))
    .diagnose(Diagnosis::certain(FaultKind::NameMismatch)))
}

/// The name is only in the CN. Strict clients (RFC 9525, Chrome, Go, aioquic) ignore
/// the CN; the OpenSSL CLI falls back to it and accepts.
fn cn_without_san(lab: &LabPki) -> Result<Scenario> {
    let mut params = leaf_params(&["localhost"])?;
    params.subject_alt_names.clear();
    let leaf = lab.intermediate.issue_leaf(params, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "cn-without-san",
        "Leaf CN=localhost with no subjectAltName extension at all",
        &leaf,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::HOSTNAME_MISMATCH, 0))
    .diagnose(Diagnosis::certain(FaultKind::NameMismatch)))
}

/// Keeps keyUsage keyCertSign, so the intermediate is still found as the leaf's issuer
/// and the failure is the basicConstraints check, not a missing issuer.
fn intermediate_not_ca(lab: &LabPki) -> Result<Scenario> {
    let mut params = ca_params("quicprobe Lab Not-a-CA Intermediate", LAB_ORG)?;
    params.is_ca = IsCa::ExplicitNoCa;
    let intermediate = Ca::issued_by(params, KeyKind::EcdsaP256, &lab.root)?;
    let leaf = intermediate.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "intermediate-not-ca",
        "The intermediate has basicConstraints CA:FALSE",
        &leaf,
    )
    .send([intermediate.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::INVALID_CA, 1))
    .diagnose(Diagnosis::certain(FaultKind::NotACa)))
}

/// A (pathlen:0) may only issue leaves, but it issued the CA B. Reported at A's depth.
fn pathlen_exceeded(lab: &LabPki) -> Result<Scenario> {
    let mut params = ca_params("quicprobe Lab Intermediate A (pathlen 0)", LAB_ORG)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let a = Ca::issued_by(params, KeyKind::EcdsaP256, &lab.root)?;
    let b = lab_intermediate("quicprobe Lab Intermediate B", &a)?;
    let leaf = b.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "pathlen-exceeded",
        "root -> A (pathlen:0) -> B -> leaf; A may not issue the CA B",
        &leaf,
    )
    .send([b.pem(), a.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::PATH_LENGTH_EXCEEDED, 2))
    .diagnose(Diagnosis::certain(FaultKind::PathLengthExceeded)))
}

fn client_auth_eku(lab: &LabPki) -> Result<Scenario> {
    let mut params = leaf_params(&["localhost"])?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = lab.intermediate.issue_leaf(params, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "client-auth-eku",
        "The leaf's extendedKeyUsage is clientAuth only (no serverAuth)",
        &leaf,
    )
    .send([lab.intermediate.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::INVALID_PURPOSE, 0))
    .diagnose(Diagnosis::certain(FaultKind::NotForServers)))
}

/// The violating name is the leaf's, so the error is reported at depth 0.
fn name_constraints(lab: &LabPki) -> Result<Scenario> {
    let mut params = ca_params("quicprobe Lab Constrained Intermediate CA", LAB_ORG)?;
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName("allowed.test".into())],
        excluded_subtrees: Vec::new(),
    });
    let intermediate = Ca::issued_by(params, KeyKind::EcdsaP256, &lab.root)?;
    let leaf = intermediate.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "name-constraints",
        "The intermediate permits only DNS names under allowed.test; the leaf is for localhost",
        &leaf,
    )
    .send([intermediate.pem()])
    .trust(&lab.root)
    .expect(rejected(X509VerifyError::PERMITTED_VIOLATION, 0))
    .diagnose(Diagnosis::certain(FaultKind::NameConstraintViolation)))
}

/// Large certificates: about 5.5 KB of DER sent, more than the 3x anti-amplification
/// budget a server has after a 1200-byte client Initial, so the Certificate message
/// spans several packets and flights.
fn rsa4096_chain(_lab: &LabPki) -> Result<Scenario> {
    let rsa = KeyKind::Rsa4096;
    let root = Ca::root(ca_params("quicprobe RSA Root CA", LAB_ORG)?, rsa)?;
    let i1 = Ca::issued_by(
        ca_params("quicprobe RSA Intermediate 1", LAB_ORG)?,
        rsa,
        &root,
    )?;
    let i2 = Ca::issued_by(
        ca_params("quicprobe RSA Intermediate 2", LAB_ORG)?,
        rsa,
        &i1,
    )?;
    let i3 = Ca::issued_by(
        ca_params("quicprobe RSA Intermediate 3", LAB_ORG)?,
        rsa,
        &i2,
    )?;
    let leaf = i3.issue_leaf(leaf_params(&["localhost"])?, rsa)?;
    Ok(Scenario::new(
        "rsa4096-chain",
        "All RSA-4096: root -> I1 -> I2 -> I3 -> leaf, sent as leaf, I3, I2, I1",
        &leaf,
    )
    .send([i3.pem(), i2.pem(), i1.pem()])
    .trust(&root))
}

/// Like Let's Encrypt from 2021: the server sends the cross-signature of its new root X
/// by an old root Y (X'), for old clients that only trust Y. A client trusting X finds
/// it before following X' (BoringSSL always, OpenSSL by default: trusted first).
fn cross_signed(_lab: &LabPki) -> Result<Scenario> {
    let new_root = other_root("quicprobe Cross New Root X")?;
    let old_root = other_root("quicprobe Cross Old Root Y")?;
    let intermediate = lab_intermediate("quicprobe Cross Intermediate R", &new_root)?;
    let new_root_by_old = new_root.cross_signed_by(&old_root)?;
    let leaf = intermediate.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "cross-signed",
        "Sent leaf, R, X' (new root X cross-signed by untrusted old root Y); X is trusted",
        &leaf,
    )
    .send([intermediate.pem(), new_root_by_old.pem()])
    .trust(&new_root))
}

fn duplicate_certificate(lab: &LabPki) -> Result<Scenario> {
    let leaf = lab.leaf(&["localhost"])?;
    Ok(Scenario::new(
        "duplicate-certificate",
        "Leaf, intermediate, and the same intermediate again",
        &leaf,
    )
    .send([lab.intermediate.pem(), lab.intermediate.pem()])
    .trust(&lab.root)
    .diagnose(lab.corrected_to_full_chain(&leaf)))
}

/// Organisation of the public-looking roots of the stand-in system bundles: they read
/// like a public CA's and still say they are test certificates.
const PUBLIC_ORG: &str = "quicprobe Public Trust (test)";

/// A self-signed ECDSA root that looks like one of a system bundle.
fn public_root(common_name: &str) -> Result<Ca> {
    Ca::root(ca_params(common_name, PUBLIC_ORG)?, KeyKind::EcdsaP256)
}

/// An intermediate from `params` under `root`, and a sound leaf for localhost under it.
fn intermediate_and_leaf(root: &Ca, params: rcgen::CertificateParams) -> Result<(Ca, Leaf)> {
    let intermediate = Ca::issued_by(params, KeyKind::EcdsaP256, root)?;
    let leaf = intermediate.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok((intermediate, leaf))
}

/// The root the client trusts in the scenarios where it lacks the right one.
fn client_root() -> Result<Ca> {
    other_root("quicprobe Client Trusted Root CA")
}

/// The server is right and the client is not: the full chain is sent, but the client
/// does not trust the private root. Seen from the client this is the same as a server
/// that left out an intermediate above I (compare `missing-intermediate`), so the
/// diagnosis must offer both; its corrected chain is the one that reading asks for,
/// which names P as missing because the client cannot know P is a root.
fn client_lacks_root(_lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Private Root CA")?;
    let (intermediate, leaf) = intermediate_and_leaf(
        &root,
        ca_params("quicprobe Private Intermediate CA", LAB_ORG)?,
    )?;
    Ok(Scenario::new(
        "client-lacks-root",
        "Private root P -> I -> leaf, sent as leaf, I (correct); the client trusts only an \
         unrelated root, not P",
        &leaf,
    )
    .send([intermediate.pem()])
    .trust(&client_root()?)
    .trust_source(TrustSource::Cacert)
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        1,
    ))
    .diagnose(missing_issuer().corrected([sent(&leaf), sent(&intermediate), missing(&root)])))
}

/// The commonest private-PKI mistake: the user forgot `--cacert`, so a private chain is
/// checked against the system bundle, which cannot hold its root. The verdict is the one
/// of `client-lacks-root`; what differs is the trust store the diagnosis reports
/// (`system`) and the fix it should lead with (pass --cacert).
fn no_cacert_private_root(_lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Internal Root CA")?;
    let (intermediate, leaf) = intermediate_and_leaf(
        &root,
        ca_params("quicprobe Internal Intermediate CA", LAB_ORG)?,
    )?;
    let bundle = [
        public_root("quicprobe Global Root G1")?,
        public_root("quicprobe Secure Server Root S1")?,
        public_root("quicprobe Universal Root U1")?,
    ];
    let bundle: Vec<&Ca> = bundle.iter().collect();
    Ok(Scenario::new(
        "no-cacert-private-root",
        "Private root P -> I -> leaf, sent as leaf, I; the client gives no --cacert, and the \
         system bundle lacks P",
        &leaf,
    )
    .send([intermediate.pem()])
    .trust_all(&bundle)
    .system_bundle(&bundle)
    .trust_source(TrustSource::System)
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        1,
    ))
    .diagnose(missing_issuer().corrected([sent(&leaf), sent(&intermediate), missing(&root)])))
}

/// The client trusts the issuing intermediate instead of the root (the CA file handed
/// out was the wrong one). A strict client builds no partial chains: a trusted
/// certificate that is not self-signed is no anchor, so the path ends at I with I's
/// issuer nowhere. BoringSSL reports 2 (unable to get issuer certificate), not 20 (...
/// locally), because the top of the path it built came from the trust store.
fn trusted_intermediate_only(_lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Corporate Root CA")?;
    let (intermediate, leaf) = intermediate_and_leaf(
        &root,
        ca_params("quicprobe Corporate Intermediate CA", LAB_ORG)?,
    )?;
    Ok(Scenario::new(
        "trusted-intermediate-only",
        "Root P -> I -> leaf, sent as leaf, I; the client trusts I instead of P (a trusted \
         intermediate is not an anchor)",
        &leaf,
    )
    .send([intermediate.pem()])
    .trust(&intermediate)
    .trust_source(TrustSource::Cacert)
    .expect(rejected(X509VerifyError::UNABLE_TO_GET_ISSUER_CERT, 1))
    .diagnose(Diagnosis::certain(FaultKind::IntermediateIsNotAnAnchor)))
}

/// A root that issues leaves itself (small private CAs, test setups): the server rightly
/// sends the leaf alone, and the client lacks the root. Without fetching this is
/// indistinguishable from `leaf-only`, so the diagnosis leans to a missing intermediate;
/// `--aia-fetch` fetches the issuer, finds it self-signed, and is sure it is a missing root.
fn leaf_from_private_root(_lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Direct Issuing Root CA")?;
    let mut params = leaf_params(&["localhost"])?;
    params.custom_extensions.push(authority_info_access(
        "http://ca.leaf-from-private-root.test/root.der",
        "http://ocsp.leaf-from-private-root.test",
    ));
    let leaf = root.issue_leaf(params, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "leaf-from-private-root",
        "Root R issues the leaf directly, sent alone (correct); the client does not trust R; \
         the leaf's AIA points at R",
        &leaf,
    )
    .trust(&client_root()?)
    .trust_source(TrustSource::Cacert)
    .with_file("missing-issuer.pem", root.pem())
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        0,
    ))
    .diagnose(missing_intermediate_at_leaf().corrected([sent(&leaf), missing(&root)]))
    .diagnose_with_aia_fetch(Diagnosis::certain(FaultKind::MissingRoot)))
}

/// Two intermediates left out. Without fetching, only the first gap shows (the leaf's
/// issuer B), and a fix that adds B alone fails again at A; following AIA hop by hop
/// (leaf -> B -> A) finds both, so the fix names both.
fn two_missing_intermediates(_lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Two-Missing Root CA")?;
    let a = lab_intermediate("quicprobe Two-Missing Intermediate A", &root)?;
    let mut b_params = ca_params("quicprobe Two-Missing Intermediate B", LAB_ORG)?;
    b_params.custom_extensions.push(authority_info_access(
        "http://ca.two-missing.test/a.der",
        "http://ocsp.two-missing.test",
    ));
    let b = Ca::issued_by(b_params, KeyKind::EcdsaP256, &a)?;
    let mut params = leaf_params(&["localhost"])?;
    params.custom_extensions.push(authority_info_access(
        "http://ca.two-missing.test/b.der",
        "http://ocsp.two-missing.test",
    ));
    let leaf = b.issue_leaf(params, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "two-missing-intermediates",
        "root -> A -> B -> leaf, sent as the leaf alone; the leaf's AIA points at B and B's at A",
        &leaf,
    )
    .trust(&root)
    .trust_source(TrustSource::Cacert)
    .with_file("missing-issuer.pem", b.pem() + &a.pem())
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        0,
    ))
    .diagnose(missing_intermediate_at_leaf().corrected([sent(&leaf), missing(&b)]))
    .diagnose_with_aia_fetch(
        Diagnosis::certain(FaultKind::MissingIntermediate).corrected([
            sent(&leaf),
            missing(&b),
            missing(&a),
        ]),
    ))
}

/// Two faults at once: B is left out, and A is sent before C. The path stops at C (the
/// sent A does not help: nothing sent links C to it), and the corrected chain must both
/// insert B and move A after it, with A kept since it leads to the root.
fn missing_and_misordered(_lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Misordered Root CA")?;
    let a = lab_intermediate("quicprobe Misordered Intermediate A", &root)?;
    let b = lab_intermediate("quicprobe Misordered Intermediate B", &a)?;
    let mut c_params = ca_params("quicprobe Misordered Intermediate C", LAB_ORG)?;
    c_params.custom_extensions.push(authority_info_access(
        "http://ca.misordered.test/b.der",
        "http://ocsp.misordered.test",
    ));
    let c = Ca::issued_by(c_params, KeyKind::EcdsaP256, &b)?;
    let leaf = c.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    let corrected = [sent(&leaf), sent(&c), missing(&b), sent(&a)];
    Ok(Scenario::new(
        "missing-and-misordered",
        "root -> A -> B -> C -> leaf, sent as leaf, A, C: B left out and A out of order; C's \
         AIA points at B",
        &leaf,
    )
    .send([a.pem(), c.pem()])
    .trust(&root)
    .trust_source(TrustSource::Cacert)
    .with_file("missing-issuer.pem", b.pem())
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        1,
    ))
    .diagnose(missing_issuer().corrected(corrected.clone()))
    .diagnose_with_aia_fetch(
        Diagnosis::certain(FaultKind::MissingIntermediate).corrected(corrected),
    ))
}

/// The CA re-keyed its root under the same name, and the client trusts the other key.
/// Path building finds the trusted root by I's issuer name, but I's
/// authorityKeyIdentifier names the other key, so it is not I's issuer: 20 at I, as if
/// the root were missing. Only comparing the names (and keys) of the trust store's
/// certificates tells the truth.
fn rekeyed_root(_lab: &LabPki) -> Result<Scenario> {
    const ROOT_NAME: &str = "quicprobe Rekeyed Root CA";
    let root = other_root(ROOT_NAME)?;
    let rekeyed = other_root(ROOT_NAME)?;
    let (intermediate, leaf) = intermediate_and_leaf(
        &root,
        ca_params("quicprobe Rekeyed Intermediate CA", LAB_ORG)?,
    )?;
    Ok(Scenario::new(
        "rekeyed-root",
        "Root X -> I -> leaf, sent as leaf, I; the client trusts a re-keyed X (the same name, \
         another key)",
        &leaf,
    )
    .send([intermediate.pem()])
    .trust(&rekeyed)
    .trust_source(TrustSource::Cacert)
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        1,
    ))
    .diagnose(Diagnosis::certain(FaultKind::RootMismatch)))
}

/// `--cacert` replaces the system bundle, and the public root the chain leads to is only
/// in the bundle: the user's file lacks it. Run with SSL_CERT_FILE=system-bundle.pem
/// and --cacert roots.pem, quicprobe finds the missing root in the bundle and can say
/// with certainty that the client lacks a root (drop --cacert or add that root).
fn root_in_system_bundle(_lab: &LabPki) -> Result<Scenario> {
    let root = public_root("quicprobe Public Root R1")?;
    let (intermediate, leaf) = intermediate_and_leaf(
        &root,
        ca_params("quicprobe Public Issuing CA 1", PUBLIC_ORG)?,
    )?;
    let others = [
        public_root("quicprobe Global Root G2")?,
        public_root("quicprobe Universal Root U2")?,
    ];
    Ok(Scenario::new(
        "root-in-system-bundle",
        "Public-looking root R1 -> I -> leaf, sent as leaf, I; R1 is in the system bundle but \
         not in the client's --cacert file",
        &leaf,
    )
    .send([intermediate.pem()])
    .trust(&client_root()?)
    .system_bundle(&[&others[0], &root, &others[1]])
    .trust_source(TrustSource::Cacert)
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        1,
    ))
    .diagnose(Diagnosis::certain(FaultKind::MissingRoot)))
}

/// Certificates in `hostile-chain-200`: the leaf and 199 intermediates, twice
/// BoringSSL's (and OpenSSL's) default verify depth of 100.
const LONG_CHAIN_LEN: usize = 200;

/// root -> I1 -> ... -> I199 -> leaf, every certificate sent: a path builder must stop
/// at its depth limit rather than walk (or sign-check) all of them. BoringSSL stops
/// adding issuers past depth 100 and then reports the last certificate it kept (I99, at
/// depth 101) as having no issuer: 20, where OpenSSL says 22 (certificate chain too
/// long) at the same depth.
fn hostile_chain_200(_lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Hostile Long Chain Root")?;
    let mut intermediates: Vec<Ca> = Vec::with_capacity(LONG_CHAIN_LEN - 1);
    for n in 1..LONG_CHAIN_LEN {
        let issuer = intermediates.last().unwrap_or(&root);
        let ca = lab_intermediate(&format!("quicprobe Hostile Chain I{n}"), issuer)?;
        intermediates.push(ca);
    }
    let issuer = intermediates.last().expect("at least one intermediate");
    let leaf = issuer.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "hostile-chain-200",
        "200 certificates sent: the leaf and 199 intermediates under one trusted root, \
         twice the default verify depth of 100",
        &leaf,
    )
    .send(intermediates.iter().rev().map(Ca::pem))
    .trust(&root)
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        101,
    ))
    .diagnose(Diagnosis::certain(FaultKind::ChainTooLong))
    .hostile(HOSTILE_TOO_BIG_FOR_QUIC))
}

/// What the oversized scenarios do to a QUIC handshake, measured (client/tests/hostile.rs).
const HOSTILE_TOO_BIG_FOR_QUIC: &str = "more than 64 KiB of Certificate message: over QUIC, \
     quiche's 64 KiB CRYPTO buffer limit ends the handshake before the chain is verified";

/// The smallest DER size of the `hostile-cert-64k` leaf.
const BIG_CERT_MIN_DER: usize = 64 * 1024;

/// A leaf of more than 64 KiB of DER: its SAN lists thousands of names, none of them
/// the one dialled, so the name check must walk all of them and then reject.
fn hostile_cert_64k(_lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Hostile Big Leaf Root")?;
    // 16 bytes of DER per name: 4,200 names make about 67 KB.
    let names: Vec<String> = (0..4200).map(|n| format!("h{n:04}.big.test")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut params = leaf_params(&refs)?;
    params.distinguished_name = crate::pki::subject("quicprobe Hostile 64 KiB Leaf", LAB_ORG);
    let leaf = root.issue_leaf(params, KeyKind::EcdsaP256)?;
    let der_len = pem_der_len(&leaf.pem());
    assert!(
        der_len >= BIG_CERT_MIN_DER,
        "the 64 KiB leaf is only {der_len} bytes"
    );
    Ok(Scenario::new(
        "hostile-cert-64k",
        "A leaf of more than 64 KiB of DER: a SAN of 4,200 DNS names, none of them localhost",
        &leaf,
    )
    .trust(&root)
    .expect(rejected(X509VerifyError::HOSTNAME_MISMATCH, 0))
    .diagnose(Diagnosis::certain(FaultKind::NameMismatch))
    .hostile(HOSTILE_TOO_BIG_FOR_QUIC))
}

/// The DER size of one PEM certificate: base64 is 4 characters per 3 bytes.
fn pem_der_len(pem: &str) -> usize {
    let base64: usize = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(|line| line.trim().len())
        .sum();
    base64 / 4 * 3 - pem.trim_end().matches('=').count()
}

/// Levels of SEQUENCE in `hostile-nested-asn1`.
const NESTING_DEPTH: usize = 5000;

/// The leaf's only SAN entry is an otherName whose value is 5,000 nested SEQUENCEs: every
/// SAN parser (BoringSSL's, x509-parser's, OpenSSL's) reads it, and one that recurses per
/// level would run out of stack. No DNS name, so the name check rejects it (the OpenSSL
/// CLI, which falls back to the CN when the SAN has no DNS name, accepts it).
fn hostile_nested_asn1(_lab: &LabPki) -> Result<Scenario> {
    const ID_CE_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
    // Under 32473, the private enterprise number RFC 5612 reserves for documentation.
    const NESTED_OTHER_NAME: &[u64] = &[1, 3, 6, 1, 4, 1, 32473, 1];
    let root = other_root("quicprobe Hostile Nested ASN.1 Root")?;
    let mut params = leaf_params(&["localhost"])?;
    params.subject_alt_names.clear();
    let nested = der::nested_sequences(NESTING_DEPTH);
    let san = der::sequence(&[der::other_name_general_name(NESTED_OTHER_NAME, &nested)]);
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            ID_CE_SUBJECT_ALT_NAME,
            san,
        ));
    let leaf = root.issue_leaf(params, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "hostile-nested-asn1",
        "The leaf's only SAN entry is an otherName holding 5,000 nested SEQUENCEs (no DNS name)",
        &leaf,
    )
    .trust(&root)
    .expect(rejected(X509VerifyError::HOSTNAME_MISMATCH, 0))
    .diagnose(Diagnosis::certain(FaultKind::NameMismatch))
    .hostile("deeply nested ASN.1 in the leaf's SAN; small enough (about 20 KB) to reach the verifier over QUIC"))
}

/// CA A is issued by CA B and B by A; the leaf by A. Nothing leads to the trusted root,
/// which issued neither.
fn hostile_issuer_loop(_lab: &LabPki) -> Result<Scenario> {
    let root = other_root("quicprobe Hostile Loop Root")?;
    let (a, b) = Ca::issuer_loop(
        ca_params("quicprobe Hostile Loop CA A", LAB_ORG)?,
        ca_params("quicprobe Hostile Loop CA B", LAB_ORG)?,
    )?;
    let leaf = a.issue_leaf(leaf_params(&["localhost"])?, KeyKind::EcdsaP256)?;
    Ok(Scenario::new(
        "hostile-issuer-loop",
        "Leaf, A, B where A is issued by B and B by A: the issuers loop, and never reach a root",
        &leaf,
    )
    .send([a.pem(), b.pem()])
    .trust(&root)
    .expect(rejected(
        X509VerifyError::UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        2,
    ))
    .diagnose(Diagnosis::certain(FaultKind::IssuerLoop))
    .hostile("issuers that loop (A by B, B by A); a path builder that does not remember where it has been never ends"))
}
