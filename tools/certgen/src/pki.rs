//! Building blocks for the scenario PKIs: keys, validity windows, CA and leaf
//! certificates. Scenarios start from the sane defaults here and change only the one
//! property they are about.

use boring::{nid::Nid, pkey::PKey, rsa::Rsa, x509::X509};
use rcgen::{
    date_time_ymd, BasicConstraints, Certificate, CertificateParams, CustomExtension,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use time::OffsetDateTime;

use crate::der;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Organisation of every lab certificate, so nobody mistakes them for real ones.
pub const LAB_ORG: &str = "quicprobe lab";

/// The key algorithm of a certificate's subject.
#[derive(Clone, Copy, Debug)]
pub enum KeyKind {
    /// rcgen's default and what most modern servers use.
    EcdsaP256,
    /// The heavyweight case: large certificates and slow signatures.
    Rsa4096,
}

/// Generates a fresh key pair.
pub fn generate_key(kind: KeyKind) -> Result<KeyPair> {
    match kind {
        KeyKind::EcdsaP256 => Ok(KeyPair::generate()?),
        KeyKind::Rsa4096 => generate_rsa4096(),
    }
}

/// rcgen's ring backend can sign with RSA but cannot generate RSA keys, so BoringSSL
/// generates the key and hands it over as PKCS#8.
fn generate_rsa4096() -> Result<KeyPair> {
    let key = PKey::from_rsa(Rsa::generate(4096)?)?;
    let pem = String::from_utf8(key.private_key_to_pem_pkcs8()?)?;
    Ok(KeyPair::from_pem_and_sign_algo(
        &pem,
        &rcgen::PKCS_RSA_SHA256,
    )?)
}

/// The validity window of a certificate. Fixed dates, so the expected verdicts hold
/// for decades without regenerating.
#[derive(Clone, Copy, Debug)]
pub enum Dates {
    /// 2024-01-01 .. 2099-12-31.
    Valid,
    /// 2020-01-01 .. 2021-01-01.
    Expired,
    /// 2090-01-01 .. 2099-12-31.
    NotYetValid,
}

impl Dates {
    fn window(self) -> (OffsetDateTime, OffsetDateTime) {
        match self {
            Dates::Valid => (date_time_ymd(2024, 1, 1), date_time_ymd(2099, 12, 31)),
            Dates::Expired => (date_time_ymd(2020, 1, 1), date_time_ymd(2021, 1, 1)),
            Dates::NotYetValid => (date_time_ymd(2090, 1, 1), date_time_ymd(2099, 12, 31)),
        }
    }

    /// Sets notBefore/notAfter on `params`.
    pub fn apply(self, params: &mut CertificateParams) {
        (params.not_before, params.not_after) = self.window();
    }
}

/// A random positive serial number. rcgen's default derives the serial from the public
/// key, which would give a cross-signed certificate the same serial as the original.
pub fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    boring::rand::rand_bytes(&mut bytes)?;
    // Positive, and no leading zero byte so the encoding keeps all 16 bytes.
    bytes[0] = (bytes[0] & 0x7f).max(1);
    Ok(SerialNumber::from_slice(&bytes))
}

/// A subject name `CN=<common_name>, O=<organisation>`.
pub fn subject(common_name: &str, organisation: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    // Encoded most general first, as real CAs do, so that RFC 4514 order
    // (what quicprobe and `openssl -nameopt RFC2253` print) reads CN first.
    name.push(DnType::OrganizationName, organisation);
    name.push(DnType::CommonName, common_name);
    name
}

/// Parameters of a sound CA certificate: CA:TRUE with no path length limit,
/// keyUsage keyCertSign + cRLSign, valid dates, random serial.
pub fn ca_params(common_name: &str, organisation: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(common_name, organisation);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(random_serial()?);
    Dates::Valid.apply(&mut params);
    Ok(params)
}

/// Parameters of a sound TLS server certificate for `names` (DNS names or IP
/// literals, all put in the SAN; the first also becomes the CN, as public CAs do):
/// keyUsage digitalSignature, EKU serverAuth, no basicConstraints, valid dates.
pub fn leaf_params(names: &[&str]) -> Result<CertificateParams> {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = CertificateParams::new(names.clone())?;
    params.distinguished_name = subject(&names[0], LAB_ORG);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.serial_number = Some(random_serial()?);
    Dates::Valid.apply(&mut params);
    Ok(params)
}

/// An Authority Information Access extension (RFC 5280 4.2.2.1) with an OCSP responder
/// and a caIssuers URL, in that order, as Let's Encrypt writes it. rcgen has no
/// built-in support, so it is hand-encoded:
/// `SEQUENCE OF SEQUENCE { accessMethod OID, accessLocation GeneralName }`.
pub fn authority_info_access(ca_issuers_uri: &str, ocsp_uri: &str) -> CustomExtension {
    const ID_PE_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
    const ID_AD_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
    const ID_AD_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];

    let access_description =
        |method: &[u64], uri: &str| der::sequence(&[der::oid(method), der::uri_general_name(uri)]);
    let content = der::sequence(&[
        access_description(ID_AD_OCSP, ocsp_uri),
        access_description(ID_AD_CA_ISSUERS, ca_issuers_uri),
    ]);
    // Non-critical, as RFC 5280 requires for AIA.
    CustomExtension::from_oid_content(ID_PE_AUTHORITY_INFO_ACCESS, content)
}

/// The subject CN of `cert`, read back from its DER so that what the catalogue states
/// about a certificate (scenarios.json's corrected chains) is what the certificate says.
fn common_name_of(cert: &Certificate) -> Result<String> {
    let x509 = X509::from_der(cert.der())?;
    let entry = x509
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .ok_or("a certificate without a subject CN")?;
    Ok(entry.data().as_utf8()?.to_string())
}

/// A CA: its certificate plus what is needed to issue certificates under it.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    cert: Certificate,
    common_name: String,
}

impl Ca {
    /// A self-signed root. Roots carry no authorityKeyIdentifier, like real ones
    /// (ISRG Root X1 has none).
    pub fn root(params: CertificateParams, kind: KeyKind) -> Result<Ca> {
        let key = generate_key(kind)?;
        let cert = params.self_signed(&key)?;
        Ca::new(params, key, cert)
    }

    /// An intermediate (or any CA certificate) issued by `issuer`.
    pub fn issued_by(mut params: CertificateParams, kind: KeyKind, issuer: &Ca) -> Result<Ca> {
        let key = generate_key(kind)?;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &issuer.issuer())?;
        Ca::new(params, key, cert)
    }

    /// Another certificate for this CA's subject and key, issued by `issuer`: a
    /// cross-signature. Clients that reach this CA through either certificate end up
    /// with the same issuer name and key, so both paths verify the same children.
    pub fn cross_signed_by(&self, issuer: &Ca) -> Result<Certificate> {
        let mut params = self.params.clone();
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        Ok(params.signed_by(&self.key, &issuer.issuer())?)
    }

    /// Two CAs that issued each other: A's certificate is signed by B and B's by A, so
    /// following issuers from either goes round for ever unless the path builder
    /// notices. Neither is self-signed, so neither can be a trust anchor.
    pub fn issuer_loop(
        a_params: CertificateParams,
        b_params: CertificateParams,
    ) -> Result<(Ca, Ca)> {
        let (a_key, b_key) = (
            generate_key(KeyKind::EcdsaP256)?,
            generate_key(KeyKind::EcdsaP256)?,
        );
        let a = Ca::signed_with(a_params.clone(), a_key, &b_params, &b_key)?;
        let b = Ca::signed_with(b_params, b_key, &a_params, &a.key)?;
        Ok((a, b))
    }

    /// A CA certificate for `key`, signed by the CA described by `issuer` and `issuer_key`.
    fn signed_with(
        mut params: CertificateParams,
        key: KeyPair,
        issuer: &CertificateParams,
        issuer_key: &KeyPair,
    ) -> Result<Ca> {
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &Issuer::from_params(issuer, issuer_key))?;
        Ca::new(params, key, cert)
    }

    fn new(params: CertificateParams, key: KeyPair, cert: Certificate) -> Result<Ca> {
        let common_name = common_name_of(&cert)?;
        Ok(Ca {
            params,
            key,
            cert,
            common_name,
        })
    }

    /// Issues an end-entity certificate from `params` with a fresh key.
    pub fn issue_leaf(&self, mut params: CertificateParams, kind: KeyKind) -> Result<Leaf> {
        let key = generate_key(kind)?;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer())?;
        Leaf::new(key, cert)
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn common_name(&self) -> &str {
        &self.common_name
    }
}

/// An end-entity certificate and its private key.
pub struct Leaf {
    key: KeyPair,
    cert: Certificate,
    common_name: String,
}

impl Leaf {
    /// A leaf signed by its own key.
    pub fn self_signed(params: CertificateParams) -> Result<Leaf> {
        let key = generate_key(KeyKind::EcdsaP256)?;
        let cert = params.self_signed(&key)?;
        Leaf::new(key, cert)
    }

    fn new(key: KeyPair, cert: Certificate) -> Result<Leaf> {
        let common_name = common_name_of(&cert)?;
        Ok(Leaf {
            key,
            cert,
            common_name,
        })
    }

    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The private key as PKCS#8 PEM ("BEGIN PRIVATE KEY"), which every server loads.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}
