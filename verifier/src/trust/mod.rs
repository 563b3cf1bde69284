//! The roots a client trusts: `--cacert` files, a `--capath` hashed
//! directory, or the system's roots (`system`: found as OpenSSL finds them).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use boring::x509::store::{X509Store, X509StoreBuilder};
use boring::x509::X509;
use serde::Serialize;

use crate::input::{parse_certificates, read_certificates, InputError};

mod system;

pub use system::{RootsEnv, RootsOrigin, SearchTable, SystemRoots, DISTRIBUTION_ROOTS};

/// Who chose the roots: the person (`--cacert`, `--capath`) or the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustSource {
    User,
    System,
}

/// The trust store as every verdict names it (`diagnosis.trust_store`):
/// where the roots came from, every file and directory loaded in order, and
/// how many certificates they held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustStoreSummary {
    pub source: TrustSource,
    pub paths: Vec<PathBuf>,
    pub certificates: usize,
}

impl TrustStoreSummary {
    /// One line for people, e.g. `--cacert roots.pem (3 certificates)` or
    /// `system bundle /etc/ssl/certs/ca-certificates.crt, system directory
    /// /etc/ssl/certs (146 certificates)`.
    pub fn describe(&self) -> String {
        let paths: Vec<String> = self
            .paths
            .iter()
            .map(|path| {
                let flag = match (self.source, path.is_dir()) {
                    (TrustSource::System, true) => "system directory",
                    (TrustSource::System, false) => "system bundle",
                    (TrustSource::User, true) => "--capath",
                    (TrustSource::User, false) => "--cacert",
                };
                format!("{flag} {}", path.display())
            })
            .collect();
        let paths = if paths.is_empty() {
            "no roots loaded".to_owned()
        } else {
            paths.join(", ")
        };
        let plural = if self.certificates == 1 { "" } else { "s" };
        format!("{paths} ({} certificate{plural})", self.certificates)
    }
}

/// A set of trusted roots, built once and shared by every verification.
pub struct TrustStore {
    store: X509Store,
    roots: Vec<X509>,
    sources: Vec<PathBuf>,
    source: TrustSource,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("roots", &self.roots.len())
            .field("sources", &self.sources)
            .finish()
    }
}

/// Collects roots from several places before freezing them into a store.
#[derive(Default)]
pub struct TrustStoreBuilder {
    roots: Vec<X509>,
    sources: Vec<PathBuf>,
}

impl TrustStoreBuilder {
    /// Adds every certificate of a PEM file (`--cacert`).
    pub fn add_pem_file(&mut self, path: &Path) -> Result<&mut Self, InputError> {
        self.roots.extend(read_certificates(path)?);
        self.sources.push(path.to_owned());
        Ok(self)
    }

    /// Adds every certificate of PEM (or single DER) bytes that came from
    /// `source`, which names them in errors and in [`TrustStore::sources`].
    pub fn add_pem_bytes(&mut self, source: &Path, bytes: &[u8]) -> Result<&mut Self, InputError> {
        self.roots.extend(parse_certificates(source, bytes)?);
        self.sources.push(source.to_owned());
        Ok(self)
    }

    /// Adds every certificate of an OpenSSL hashed directory (`--capath`):
    /// the files named `<8 hex digits>.<n>` that `openssl rehash` makes.
    pub fn add_hashed_dir(&mut self, dir: &Path) -> Result<&mut Self, InputError> {
        let entries = hashed_entries(dir)?;
        if entries.is_empty() {
            return Err(InputError::EmptyDirectory {
                path: dir.to_owned(),
                problem: "no hashed certificate names (like 1a2b3c4d.0) in it; \
                          run 'openssl rehash' on it first"
                    .into(),
            });
        }
        for entry in entries {
            self.roots.extend(read_certificates(&entry)?);
        }
        self.sources.push(dir.to_owned());
        Ok(self)
    }

    /// Freezes the roots into a BoringSSL store. A root listed twice (a
    /// bundle plus the hashed directory made from it, as on Debian) is one
    /// root: kept once, counted once.
    pub fn build(&self) -> Result<TrustStore, InputError> {
        let mut builder = X509StoreBuilder::new().map_err(store_error)?;
        let mut seen = HashSet::new();
        let mut roots = Vec::with_capacity(self.roots.len());
        for root in &self.roots {
            let der = root.to_der().map_err(store_error)?;
            if seen.insert(der) {
                builder.add_cert(root).map_err(store_error)?;
                roots.push(root.clone());
            }
        }
        Ok(TrustStore {
            store: builder.build(),
            roots,
            sources: self.sources.clone(),
            source: TrustSource::User,
        })
    }
}

impl TrustStore {
    /// Starts an empty builder.
    pub fn builder() -> TrustStoreBuilder {
        TrustStoreBuilder::default()
    }

    /// The roots of one or more PEM files.
    pub fn from_pem_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self, InputError> {
        let mut builder = Self::builder();
        for path in paths {
            builder.add_pem_file(path.as_ref())?;
        }
        builder.build()
    }

    /// The system's roots: `SSL_CERT_FILE` and `SSL_CERT_DIR`, else the
    /// distributions' places ([`SystemRoots::search`] from `/`).
    pub fn system() -> Result<Self, InputError> {
        Self::system_in(Path::new("/"), &RootsEnv::from_process())
    }

    /// The system's roots as [`TrustStore::system`] finds them, with the
    /// distributions' places under `root` and the variables of `env`.
    pub fn system_in(root: &Path, env: &RootsEnv) -> Result<Self, InputError> {
        SystemRoots::search(root, env)?.load()
    }

    /// The BoringSSL store, for `X509StoreContext::init`.
    pub fn store(&self) -> &X509Store {
        &self.store
    }

    /// The trusted roots themselves.
    pub fn roots(&self) -> &[X509] {
        &self.roots
    }

    /// The files and directories the roots came from.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// Whether the person or the system chose these roots.
    pub fn source(&self) -> TrustSource {
        self.source
    }

    /// What every verdict says of this store.
    pub fn summary(&self) -> TrustStoreSummary {
        TrustStoreSummary {
            source: self.source,
            paths: self.sources.clone(),
            certificates: self.roots.len(),
        }
    }

    /// Whether the store holds a certificate with exactly these DER bytes:
    /// matched by DER, never by name (a re-keyed root shares its name).
    pub fn holds(&self, cert: &X509) -> bool {
        let Ok(der) = cert.to_der() else {
            return false;
        };
        self.roots
            .iter()
            .any(|root| root.to_der().is_ok_and(|d| d == der))
    }
}

fn hashed_entries(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let meta = fs::metadata(dir).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => InputError::NotFound {
            path: dir.to_owned(),
        },
        _ => InputError::Unreadable {
            path: dir.to_owned(),
            source,
        },
    })?;
    if !meta.is_dir() {
        return Err(InputError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    let listing = fs::read_dir(dir).map_err(|source| InputError::Unreadable {
        path: dir.to_owned(),
        source,
    })?;
    let mut entries: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| is_hashed_name(path))
        .collect();
    entries.sort();
    Ok(entries)
}

/// `openssl rehash` names: eight hex digits, a dot, a sequence number.
fn is_hashed_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some((hash, sequence)) = name.split_once('.') else {
        return false;
    };
    hash.len() == 8
        && hash.chars().all(|c| c.is_ascii_hexdigit())
        && !sequence.is_empty()
        && sequence.chars().all(|c| c.is_ascii_digit())
}

fn store_error(error: boring::error::ErrorStack) -> InputError {
    InputError::Unreadable {
        path: PathBuf::from("<trust store>"),
        source: std::io::Error::other(error.to_string()),
    }
}
