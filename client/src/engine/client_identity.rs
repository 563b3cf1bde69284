//! The client certificate, as curl takes it: `--cert FILE` (PEM: the
//! certificate, then its intermediates; the key too when `--key` is not
//! given), `--key FILE`, `--pass` for an encrypted key, and `--cert-type P12`
//! for a PKCS#12 (.pfx) file. Loaded and checked once, before any connection:
//! a key that does not match or a wrong password is a usage error that names
//! the flag and the file, never a failed handshake later.

use std::path::{Path, PathBuf};

use boring::pkcs12::Pkcs12;
use boring::pkey::{PKey, Private};
use boring::ssl::SslContextBuilder;
use boring::x509::X509;
use quicprobe_verifier::{parse_certificates, ChainReport};
use serde::Serialize;

/// `--cert-type`: how the `--cert` file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertType {
    #[default]
    Pem,
    /// PKCS#12 (.pfx, .p12): key, certificate and intermediates in one file.
    P12,
}

/// Where the client certificate comes from, as the command line names it.
#[derive(Debug, Clone)]
pub struct IdentityFiles {
    pub cert: PathBuf,
    pub key: Option<PathBuf>,
    pub pass: Option<String>,
    pub cert_type: CertType,
}

/// Why the client certificate cannot be used; each sentence names the flag
/// and the file, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{flag} {}: cannot read: {source}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The `--cert` file holds no certificate BoringSSL can read.
    #[error("--cert {}: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    /// No private key where one was looked for.
    #[error("{flag} {}: no private key in it{hint}", path.display())]
    NoKey {
        flag: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    #[error("{flag} {}: the private key is encrypted: give its password with --pass", path.display())]
    KeyEncrypted { flag: &'static str, path: PathBuf },
    #[error("{flag} {}: wrong password: --pass does not decrypt the private key", path.display())]
    WrongKeyPassword { flag: &'static str, path: PathBuf },
    #[error(
        "{flag} {}: the private key does not match the certificate in --cert {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        flag: &'static str,
        key: PathBuf,
        cert: PathBuf,
    },
    #[error("--cert {} --cert-type P12: not a PKCS#12 (.pfx) file", path.display())]
    NotPkcs12 { path: PathBuf },
    #[error(
        "--cert {} --cert-type P12: wrong password: {} does not open the PKCS#12 file",
        path.display(),
        if *given { "--pass" } else { "no --pass (the empty password)" }
    )]
    WrongPkcs12Password { path: PathBuf, given: bool },
    #[error("--cert {} --cert-type P12: the PKCS#12 file holds no {missing}", path.display())]
    Pkcs12Incomplete {
        path: PathBuf,
        missing: &'static str,
    },
    #[error("--key {}: a PKCS#12 file (--cert-type P12) holds its own key; drop --key", path.display())]
    KeyWithPkcs12 { path: PathBuf },
    /// BoringSSL refused the certificate or key for the TLS context.
    #[error("--cert {}: BoringSSL cannot use it: {source}", path.display())]
    Tls {
        path: PathBuf,
        source: boring::error::ErrorStack,
    },
}

/// A client certificate ready to be presented: the certificate, the
/// intermediates sent after it, and its private key.
#[derive(Clone)]
pub struct ClientIdentity {
    certificate: X509,
    intermediates: Vec<X509>,
    key: PKey<Private>,
    source: PathBuf,
}

impl std::fmt::Debug for ClientIdentity {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("source", &self.source)
            .field("intermediates", &self.intermediates.len())
            .finish_non_exhaustive()
    }
}

/// What the report says of the certificate we hold: who it names and how
/// many certificates we would send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentitySummary {
    /// The `--cert` file.
    pub file: String,
    pub subject: String,
    pub issuer: String,
    /// SHA-256 of the certificate's DER, lower-case hex with colons.
    pub sha256: String,
    /// Intermediates sent after the certificate.
    pub intermediates: usize,
}

impl ClientIdentity {
    /// Loads and checks the files: the key must match the certificate.
    pub fn load(files: &IdentityFiles) -> Result<Self, IdentityError> {
        match files.cert_type {
            CertType::Pem => load_pem(files),
            CertType::P12 => load_pkcs12(files),
        }
    }

    /// Presents this certificate when a server asks. Only the certificate,
    /// chain and key are set: the verify mode is the verifier's, installed
    /// after this.
    pub fn install(&self, builder: &mut SslContextBuilder) -> Result<(), IdentityError> {
        let tls = |source| IdentityError::Tls {
            path: self.source.clone(),
            source,
        };
        builder.set_certificate(&self.certificate).map_err(tls)?;
        for intermediate in &self.intermediates {
            builder
                .add_extra_chain_cert(intermediate.clone())
                .map_err(tls)?;
        }
        builder.set_private_key(&self.key).map_err(tls)?;
        builder.check_private_key().map_err(tls)
    }

    pub fn summary(&self) -> IdentitySummary {
        let report = ChainReport::describe(std::slice::from_ref(&self.certificate));
        let leaf = report.leaf();
        IdentitySummary {
            file: self.source.display().to_string(),
            subject: leaf.map(|c| c.subject.clone()).unwrap_or_default(),
            issuer: leaf.map(|c| c.issuer.clone()).unwrap_or_default(),
            sha256: leaf.map(|c| c.sha256.clone()).unwrap_or_default(),
            intermediates: self.intermediates.len(),
        }
    }
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| IdentityError::Read {
        flag,
        path: path.to_owned(),
        source,
    })
}

/// PEM: the certificate first, its intermediates after it; the key from
/// `--key`, or from the same file as curl does.
fn load_pem(files: &IdentityFiles) -> Result<ClientIdentity, IdentityError> {
    let cert_bytes = read("--cert", &files.cert)?;
    let mut certificates = parse_certificates(&files.cert, &cert_bytes).map_err(|error| {
        IdentityError::Certificate {
            path: files.cert.clone(),
            reason: reason_without_path(&error.to_string(), &files.cert),
        }
    })?;
    let (flag, key_path, key_bytes) = match &files.key {
        Some(path) => ("--key", path.clone(), read("--key", path)?),
        None => ("--cert", files.cert.clone(), cert_bytes),
    };
    let hint = if files.key.is_none() {
        ": give the key with --key FILE"
    } else {
        ""
    };
    let key = pem_key(flag, &key_path, &key_bytes, files.pass.as_deref(), hint)?;
    let certificate = certificates.remove(0);
    check_match(&certificate, &key, flag, &key_path, &files.cert)?;
    Ok(ClientIdentity {
        certificate,
        intermediates: certificates,
        key,
        source: files.cert.clone(),
    })
}

/// The verifier's reasons start with the path; the flag goes before it here.
fn reason_without_path(text: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    text.strip_prefix(&prefix).unwrap_or(text).to_owned()
}

/// The first private key of a PEM file, decrypted with `pass` if it is encrypted.
fn pem_key(
    flag: &'static str,
    path: &Path,
    bytes: &[u8],
    pass: Option<&str>,
    hint: &'static str,
) -> Result<PKey<Private>, IdentityError> {
    let text = String::from_utf8_lossy(bytes);
    let encrypted = text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED");
    let path = path.to_owned();
    if !encrypted && !text.contains("PRIVATE KEY-----") {
        return Err(IdentityError::NoKey { flag, path, hint });
    }
    match (encrypted, pass) {
        (true, None) => Err(IdentityError::KeyEncrypted { flag, path }),
        (true, Some(pass)) => PKey::private_key_from_pem_passphrase(bytes, pass.as_bytes())
            .map_err(|_| IdentityError::WrongKeyPassword { flag, path }),
        // An unencrypted key with --pass: curl ignores the password too.
        (false, _) => PKey::private_key_from_pem(bytes).map_err(|_| IdentityError::NoKey {
            flag,
            path,
            hint: ": the PRIVATE KEY block is malformed",
        }),
    }
}

fn check_match(
    certificate: &X509,
    key: &PKey<Private>,
    flag: &'static str,
    key_path: &Path,
    cert_path: &Path,
) -> Result<(), IdentityError> {
    let matches = certificate
        .public_key()
        .is_ok_and(|public| public.public_eq(key));
    if matches {
        Ok(())
    } else {
        Err(IdentityError::KeyMismatch {
            flag,
            key: key_path.to_owned(),
            cert: cert_path.to_owned(),
        })
    }
}

/// PKCS#12: key, certificate and intermediates, opened with `--pass`
/// (the empty password when none is given, as Windows exports allow).
fn load_pkcs12(files: &IdentityFiles) -> Result<ClientIdentity, IdentityError> {
    if let Some(key) = &files.key {
        return Err(IdentityError::KeyWithPkcs12 { path: key.clone() });
    }
    let path = files.cert.clone();
    let bytes = read("--cert", &path)?;
    let archive =
        Pkcs12::from_der(&bytes).map_err(|_| IdentityError::NotPkcs12 { path: path.clone() })?;
    let parsed = archive
        .parse2(files.pass.as_deref().unwrap_or(""))
        .map_err(|error| pkcs12_error(&path, &error, files.pass.is_some()))?;
    let certificate = parsed.cert.ok_or_else(|| IdentityError::Pkcs12Incomplete {
        path: path.clone(),
        missing: "certificate",
    })?;
    let key = parsed.pkey.ok_or_else(|| IdentityError::Pkcs12Incomplete {
        path: path.clone(),
        missing: "private key",
    })?;
    check_match(&certificate, &key, "--cert", &path, &path)?;
    let intermediates = parsed
        .ca
        .map(|stack| stack.iter().map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    Ok(ClientIdentity {
        certificate,
        intermediates,
        key,
        source: path,
    })
}

/// BoringSSL parses the archive only with the password, so a wrong password
/// and a damaged file are told apart by its error reason.
fn pkcs12_error(path: &Path, error: &boring::error::ErrorStack, given: bool) -> IdentityError {
    let wrong_password = error
        .errors()
        .iter()
        .any(|e| e.reason().is_some_and(|r| r.contains("PASSWORD")));
    if wrong_password {
        IdentityError::WrongPkcs12Password {
            path: path.to_owned(),
            given,
        }
    } else {
        IdentityError::NotPkcs12 {
            path: path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../certs/client-auth")
            .join(name)
    }

    fn pem(cert: &str, key: Option<&str>, pass: Option<&str>) -> IdentityFiles {
        IdentityFiles {
            cert: set(cert),
            key: key.map(set),
            pass: pass.map(str::to_owned),
            cert_type: CertType::Pem,
        }
    }

    fn p12(pass: Option<&str>) -> IdentityFiles {
        IdentityFiles {
            cert_type: CertType::P12,
            ..pem("client.p12", None, pass)
        }
    }

    #[test]
    fn a_pem_certificate_with_its_intermediate_and_key_loads() {
        let identity =
            ClientIdentity::load(&pem("client.pem", Some("client-key.pem"), None)).expect("loads");
        let summary = identity.summary();
        assert_eq!(summary.intermediates, 1);
        assert!(
            summary.subject.contains("quicprobe test client"),
            "{summary:?}"
        );
    }

    #[test]
    fn the_key_may_be_in_the_certificate_file() {
        let identity =
            ClientIdentity::load(&pem("client-combined.pem", None, None)).expect("loads");
        assert_eq!(identity.summary().intermediates, 1);
    }

    #[test]
    fn a_certificate_file_without_key_and_no_key_flag_says_give_key() {
        let error = ClientIdentity::load(&pem("client.pem", None, None)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no private key in it: give the key with --key FILE"),
            "{error}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_a_mismatch_in_those_words() {
        let error = ClientIdentity::load(&pem("client.pem", Some("other-ca-client-key.pem"), None))
            .unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("--key "), "{text}");
        assert!(
            text.contains(
                "other-ca-client-key.pem: the private key does not match the certificate in --cert"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_encrypted_key_needs_pass_and_the_right_one() {
        let none = ClientIdentity::load(&pem("client.pem", Some("client-key-encrypted.pem"), None));
        assert!(
            matches!(none, Err(IdentityError::KeyEncrypted { .. })),
            "{none:?}"
        );
        let wrong = ClientIdentity::load(&pem(
            "client.pem",
            Some("client-key-encrypted.pem"),
            Some("nope"),
        ));
        assert!(
            matches!(wrong, Err(IdentityError::WrongKeyPassword { .. })),
            "{wrong:?}"
        );
        ClientIdentity::load(&pem(
            "client.pem",
            Some("client-key-encrypted.pem"),
            Some("quicprobe-test"),
        ))
        .expect("the right password opens it");
    }

    #[test]
    fn a_pkcs12_file_opens_with_its_password_only() {
        let identity = ClientIdentity::load(&p12(Some("quicprobe-test"))).expect("opens");
        assert_eq!(identity.summary().intermediates, 1);
        let wrong = ClientIdentity::load(&p12(Some("nope")));
        assert!(
            matches!(wrong, Err(IdentityError::WrongPkcs12Password { .. })),
            "{wrong:?}"
        );
    }

    #[test]
    fn a_pem_file_given_as_pkcs12_is_not_pkcs12() {
        let files = IdentityFiles {
            cert_type: CertType::P12,
            ..pem("client.pem", None, Some("x"))
        };
        let error = ClientIdentity::load(&files).unwrap_err();
        assert!(
            matches!(error, IdentityError::NotPkcs12 { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_key_file_as_certificate_names_cert() {
        let error = ClientIdentity::load(&pem("client-key.pem", None, None)).unwrap_err();
        assert!(error.to_string().starts_with("--cert "), "{error}");
    }
}
