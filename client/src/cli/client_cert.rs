//! `--cert`, `--key`, `--pass`, `--cert-type`: the client certificate, as
//! curl takes it.

use std::path::PathBuf;

use clap::Args;

use crate::engine::client_identity::{CertType, IdentityFiles};

/// The client certificate presented when a server asks for one.
#[derive(Debug, Args, Clone, Default)]
pub struct ClientCertArgs {
    /// Client certificate, as curl's --cert: PEM with the certificate first
    /// and its intermediates after it (the key too when --key is not given),
    /// or a PKCS#12 (.pfx) file with --cert-type P12.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); it must match --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The password of an encrypted --key, or of a --cert-type P12 file.
    #[arg(long, value_name = "PHRASE", requires = "cert")]
    pub pass: Option<String>,
    /// How --cert is encoded.
    #[arg(
        long,
        value_enum,
        value_name = "TYPE",
        ignore_case = true,
        default_value = "PEM",
        requires = "cert"
    )]
    pub cert_type: CertTypeArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CertTypeArg {
    /// PEM certificate(s), the key in --key or in the same file.
    #[default]
    #[value(name = "PEM")]
    Pem,
    /// PKCS#12 (.pfx, .p12): key, certificate and intermediates; --pass opens it.
    #[value(name = "P12")]
    P12,
}

impl ClientCertArgs {
    /// The files to load, when --cert is given.
    pub fn files(&self) -> Option<IdentityFiles> {
        Some(IdentityFiles {
            cert: self.cert.clone()?,
            key: self.key.clone(),
            pass: self.pass.clone(),
            cert_type: match self.cert_type {
                CertTypeArg::Pem => CertType::Pem,
                CertTypeArg::P12 => CertType::P12,
            },
        })
    }
}
