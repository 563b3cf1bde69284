//! Reading certificates from files a person hands us, with one clear error
//! naming the file and the problem when the file is not what it should be.

use std::fs;
use std::path::{Path, PathBuf};

use boring::x509::X509;

/// Why a certificate file could not be used. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Nothing exists at the path.
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    /// The path is a directory where a file was expected.
    #[error("{path}: is a directory, not a file")]
    IsDirectory { path: PathBuf },
    /// The path is a file where a directory was expected (`--capath`).
    #[error("{path}: is not a directory")]
    NotADirectory { path: PathBuf },
    /// The operating system refused to read it.
    #[error("{path}: cannot read: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file has no bytes, or only white space.
    #[error("{path}: file is empty")]
    Empty { path: PathBuf },
    /// The file is not PEM and not a DER certificate.
    #[error("{path}: not a certificate: {found}")]
    NotACertificate { path: PathBuf, found: String },
    /// A `-----BEGIN` line without its `-----END` line: the file was cut short.
    #[error("{path}: truncated PEM: '-----BEGIN {label}-----' has no matching END line")]
    TruncatedPem { path: PathBuf, label: String },
    /// A PEM block whose content is not a well-formed certificate.
    #[error("{path}: certificate #{index} is malformed: {reason}")]
    MalformedCertificate {
        path: PathBuf,
        index: usize,
        reason: String,
    },
    /// A directory that holds no usable certificates.
    #[error("{path}: {problem}")]
    EmptyDirectory { path: PathBuf, problem: String },
    /// A bundle or directory named by OpenSSL's `SSL_CERT_FILE` or
    /// `SSL_CERT_DIR` could not be used; the variable is named so the
    /// person knows what to change.
    #[error("{variable} names {source}")]
    Environment {
        variable: &'static str,
        source: Box<InputError>,
    },
    /// No `--cacert`/`--capath`, no `SSL_CERT_FILE`/`SSL_CERT_DIR`, and none
    /// of the places where distributions keep their roots holds any.
    #[error(
        "no trusted roots found: {tried}; point quicprobe at roots with --cacert FILE, \
         --capath DIR, SSL_CERT_FILE=FILE or SSL_CERT_DIR=DIR[:DIR...]"
    )]
    NoSystemRoots { tried: String },
}

/// One `-----BEGIN X-----` ... `-----END X-----` block of a PEM file.
struct PemBlock<'a> {
    label: &'a str,
    text: &'a str,
}

/// Reads every certificate of a PEM (or single DER) file, in file order.
pub fn read_certificates(path: &Path) -> Result<Vec<X509>, InputError> {
    let bytes = read_file(path)?;
    parse_certificates(path, &bytes)
}

/// Parses certificates from bytes that came from `path` (used in errors).
pub fn parse_certificates(path: &Path, bytes: &[u8]) -> Result<Vec<X509>, InputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Empty {
            path: path.to_owned(),
        });
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return parse_der(path, bytes);
    };
    let blocks = pem_blocks(path, text)?;
    let certificates: Vec<&PemBlock> = blocks.iter().filter(|b| is_certificate(b)).collect();
    if certificates.is_empty() {
        return Err(not_a_certificate(path, &blocks));
    }
    certificates
        .iter()
        .enumerate()
        .map(|(index, block)| {
            X509::from_pem(block.text.as_bytes()).map_err(|error| {
                InputError::MalformedCertificate {
                    path: path.to_owned(),
                    index: index + 1,
                    reason: first_error_reason(&error),
                }
            })
        })
        .collect()
}

fn read_file(path: &Path) -> Result<Vec<u8>, InputError> {
    match fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(InputError::NotFound {
                path: path.to_owned(),
            })
        }
        Ok(meta) if meta.is_dir() => {
            return Err(InputError::IsDirectory {
                path: path.to_owned(),
            })
        }
        _ => {}
    }
    fs::read(path).map_err(|source| InputError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

/// A lone DER certificate is accepted too; anything else binary is garbage.
fn parse_der(path: &Path, bytes: &[u8]) -> Result<Vec<X509>, InputError> {
    X509::from_der(bytes)
        .map(|certificate| vec![certificate])
        .map_err(|_| InputError::NotACertificate {
            path: path.to_owned(),
            found: "binary data that is neither PEM nor a DER certificate".into(),
        })
}

fn is_certificate(block: &PemBlock) -> bool {
    matches!(
        block.label,
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
    )
}

fn not_a_certificate(path: &Path, blocks: &[PemBlock]) -> InputError {
    let found = match blocks.first() {
        Some(block) if block.label.contains("PRIVATE KEY") => format!(
            "it holds a private key ('{}'), not a certificate",
            block.label
        ),
        Some(block) => format!("it holds '{}', not a 'CERTIFICATE' PEM block", block.label),
        None => "no '-----BEGIN CERTIFICATE-----' line".into(),
    };
    InputError::NotACertificate {
        path: path.to_owned(),
        found,
    }
}

/// Splits PEM text into its labelled blocks, refusing a block left open.
fn pem_blocks<'a>(path: &Path, text: &'a str) -> Result<Vec<PemBlock<'a>>, InputError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block_text = &rest[start..];
        let label = block_text[BEGIN.len()..]
            .split("-----")
            .next()
            .unwrap_or_default();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block_text.find(&end_marker) else {
            return Err(InputError::TruncatedPem {
                path: path.to_owned(),
                label: label.to_owned(),
            });
        };
        let block_len = end + end_marker.len();
        blocks.push(PemBlock {
            label,
            text: &block_text[..block_len],
        });
        rest = &block_text[block_len..];
    }
    Ok(blocks)
}

/// BoringSSL's error stack as one short reason.
fn first_error_reason(error: &boring::error::ErrorStack) -> String {
    error
        .errors()
        .first()
        .and_then(|e| e.reason().map(str::to_owned))
        .unwrap_or_else(|| "not valid DER".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::noise;

    #[test]
    fn arbitrary_bytes_give_an_error_or_certificates_never_a_panic() {
        let path = Path::new("noise.pem");
        for seed in 0..500u64 {
            let bytes = noise(seed, (seed as usize * 37) % 3000);
            let _ = parse_certificates(path, &bytes);
        }
    }

    #[test]
    fn mangled_pem_gives_an_error_or_certificates_never_a_panic() {
        let pem = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/full-chain/chain.pem"),
        )
        .unwrap();
        let path = Path::new("mangled.pem");
        for seed in 0..300u64 {
            let mut bytes = pem.clone();
            for (i, flip) in noise(seed, 8).into_iter().enumerate() {
                let at = (usize::from(flip) * 131 + i * 977 + seed as usize) % bytes.len();
                bytes[at] = flip;
            }
            let cut = (seed as usize * 53) % bytes.len();
            let _ = parse_certificates(path, &bytes);
            let _ = parse_certificates(path, &bytes[..cut]);
        }
    }

    #[test]
    fn a_private_key_is_named_as_such() {
        let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let error = parse_certificates(Path::new("key.pem"), key).unwrap_err();
        assert!(error.to_string().contains("private key"), "{error}");
    }
}
