//! The client-certificate set (`certs/client-auth/`): what a client presents to a
//! server that asks for a certificate, in every form curl and .NET users hold it.
//! Not a scenario (no `expected` file), so the tests that walk the server-chain
//! catalogue never meet it; the server side of those tests is `full-chain`.

use boring::pkcs12::Pkcs12;
use boring::pkey::PKey;
use boring::stack::Stack;
use boring::symm::Cipher;
use boring::x509::X509;
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyUsagePurpose};

use crate::pki::{ca_params, subject, Ca, KeyKind, Leaf, Result, LAB_ORG};

/// The folder's name under certs/.
pub const FOLDER: &str = "client-auth";

/// The password of the encrypted key and of the PKCS#12 file; published, as are the keys.
pub const PASSWORD: &str = "quicprobe-test";

/// The client PKI: root -> intermediate -> client, and a client of another root.
pub struct ClientAuthSet {
    /// (file name, contents) of every file of the folder.
    pub text_files: Vec<(&'static str, String)>,
    pub binary_files: Vec<(&'static str, Vec<u8>)>,
}

impl ClientAuthSet {
    pub fn generate() -> Result<ClientAuthSet> {
        let root = Ca::root(
            ca_params("quicprobe Client Root CA", LAB_ORG)?,
            KeyKind::EcdsaP256,
        )?;
        let intermediate = Ca::issued_by(
            ca_params("quicprobe Client Intermediate CA", LAB_ORG)?,
            KeyKind::EcdsaP256,
            &root,
        )?;
        let client =
            intermediate.issue_leaf(client_params("quicprobe test client")?, KeyKind::EcdsaP256)?;
        let other_root = Ca::root(
            ca_params("quicprobe Other Client Root CA", LAB_ORG)?,
            KeyKind::EcdsaP256,
        )?;
        let stranger = other_root.issue_leaf(
            client_params("quicprobe stranger client")?,
            KeyKind::EcdsaP256,
        )?;

        let chain = format!("{}{}", client.pem(), intermediate.pem());
        let text_files = vec![
            ("client-ca.pem", root.pem()),
            ("client.pem", chain.clone()),
            ("client-leaf-only.pem", client.pem()),
            ("client-key.pem", client.key_pem()),
            ("client-key-encrypted.pem", encrypted_key(&client)?),
            (
                "client-combined.pem",
                format!("{chain}{}", client.key_pem()),
            ),
            ("other-ca-client.pem", stranger.pem()),
            ("other-ca-client-key.pem", stranger.key_pem()),
            ("password", format!("{PASSWORD}\n")),
        ];
        let binary_files = vec![("client.p12", pkcs12(&client, &intermediate)?)];
        Ok(ClientAuthSet {
            text_files,
            binary_files,
        })
    }
}

/// A TLS client certificate: keyUsage digitalSignature, EKU clientAuth, no SAN
/// (client certificates name a person or a service in the subject).
fn client_params(common_name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = subject(common_name, LAB_ORG);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(crate::pki::random_serial()?);
    crate::pki::Dates::Valid.apply(&mut params);
    Ok(params)
}

/// The key as encrypted PKCS#8 PEM ("BEGIN ENCRYPTED PRIVATE KEY"), for `--pass`.
fn encrypted_key(leaf: &Leaf) -> Result<String> {
    let key = PKey::private_key_from_pem(leaf.key_pem().as_bytes())?;
    let pem =
        key.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), PASSWORD.as_bytes())?;
    Ok(String::from_utf8(pem)?)
}

/// A PKCS#12 (.pfx) file with the key, the certificate and its intermediate, as
/// Windows and .NET export it.
fn pkcs12(leaf: &Leaf, intermediate: &Ca) -> Result<Vec<u8>> {
    let key = PKey::private_key_from_pem(leaf.key_pem().as_bytes())?;
    let cert = X509::from_pem(leaf.pem().as_bytes())?;
    let mut extra = Stack::new()?;
    extra.push(X509::from_pem(intermediate.pem().as_bytes())?)?;
    let mut builder = Pkcs12::builder();
    builder.ca(extra);
    Ok(builder
        .build(PASSWORD, "quicprobe test client", &key, &cert)?
        .to_der()?)
}
