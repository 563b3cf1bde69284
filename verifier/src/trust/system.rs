//! The system's roots, found the way OpenSSL-based tools find them.
//!
//! OpenSSL's two variables come first: `SSL_CERT_FILE` (one PEM bundle) and
//! `SSL_CERT_DIR` (hashed directories separated by ':', read like
//! `--capath`); when both are set both are loaded, as OpenSSL does. When
//! either is set, the environment alone names the roots and nothing else is
//! searched (as rustls-native-certs does): a person who sets them wants
//! those roots, and a test that sets them hides the machine's. Otherwise the
//! places where Linux distributions keep their roots are searched, from one
//! table ([`DISTRIBUTION_ROOTS`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{hashed_entries, TrustSource, TrustStore};
use crate::input::InputError;

/// Where distributions keep their roots: the bundle files and the hashed
/// `certs/` directory under each of `dirs`, tried in order.
pub struct SearchTable {
    /// Directories that hold a bundle or a `certs/` hashed directory.
    pub dirs: &'static [&'static str],
    /// Names of the bundle under each directory, tried in order.
    pub bundles: &'static [&'static str],
}

/// The search of the `openssl-probe` crate (0.1.6, `candidate_cert_dirs`
/// and `probe` in src/lib.rs), which rust-openssl, curl's Rust users and
/// cargo rely on; it covers Debian/Ubuntu (/etc/ssl/certs/ca-certificates.crt),
/// Fedora/RHEL (/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem,
/// /etc/pki/tls/certs/ca-bundle.crt), openSUSE (/etc/ssl/ca-bundle.pem),
/// Alpine and Arch (/etc/ssl/cert.pem) and more. Kept in its order: the
/// first bundle found and the first hashed directory found are loaded.
/// Only the Linux entries are kept (its Android and Haiku ones are not).
pub const DISTRIBUTION_ROOTS: SearchTable = SearchTable {
    dirs: &[
        "/var/ssl",
        "/usr/share/ssl",
        "/usr/local/ssl",
        "/usr/local/openssl",
        "/usr/local/etc/openssl",
        "/usr/local/share",
        "/usr/lib/ssl",
        "/usr/ssl",
        "/etc/openssl",
        "/etc/pki/ca-trust/extracted/pem",
        "/etc/pki/tls",
        "/etc/ssl",
        "/etc/certs",
        "/opt/etc/ssl",
    ],
    bundles: &[
        "cert.pem",
        "certs.pem",
        "ca-bundle.pem",
        "cacert.pem",
        "ca-certificates.crt",
        "certs/ca-certificates.crt",
        "certs/ca-root-nss.crt",
        "certs/ca-bundle.crt",
        "CARootCertificates.pem",
        "tls-ca-bundle.pem",
    ],
};

/// OpenSSL's two variables, as read from the process (or set by a test).
#[derive(Debug, Clone, Default)]
pub struct RootsEnv {
    /// `SSL_CERT_FILE`: one PEM bundle.
    pub cert_file: Option<PathBuf>,
    /// `SSL_CERT_DIR`: hashed directories separated by ':'.
    pub cert_dir: Option<OsString>,
}

impl RootsEnv {
    /// The variables of this process; an empty one counts as unset.
    pub fn from_process() -> Self {
        Self {
            cert_file: non_empty(std::env::var_os("SSL_CERT_FILE")).map(PathBuf::from),
            cert_dir: non_empty(std::env::var_os("SSL_CERT_DIR")),
        }
    }

    fn is_set(&self) -> bool {
        self.cert_file.is_some() || self.cert_dir.is_some()
    }
}

fn non_empty(value: Option<OsString>) -> Option<OsString> {
    value.filter(|v| !v.is_empty())
}

/// Who named the system's roots: decides how a failure to read them is
/// worded (a variable the person set, or a file the distribution ships).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootsOrigin {
    Environment,
    Distribution,
}

/// Where the system's roots are, in the order they are loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemRoots {
    pub origin: RootsOrigin,
    /// Bundles: `SSL_CERT_FILE`, or the first bundle of the table.
    pub files: Vec<PathBuf>,
    /// Hashed directories: each of `SSL_CERT_DIR`, or the first of the table.
    pub dirs: Vec<PathBuf>,
}

impl SystemRoots {
    /// Finds the system's roots: the environment's, else the first bundle
    /// and hashed directory of [`DISTRIBUTION_ROOTS`] under `root` (`/` in
    /// production, a temporary directory in tests). Nothing is read yet.
    pub fn search(root: &Path, env: &RootsEnv) -> Result<Self, InputError> {
        if env.is_set() {
            return Ok(Self::from_env(env));
        }
        let found = Self::from_table(root);
        if found.files.is_empty() && found.dirs.is_empty() {
            return Err(InputError::NoSystemRoots {
                tried: tried_places(root),
            });
        }
        Ok(found)
    }

    fn from_env(env: &RootsEnv) -> Self {
        let dirs = env
            .cert_dir
            .as_deref()
            .map(|list| {
                std::env::split_paths(list)
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            origin: RootsOrigin::Environment,
            files: env.cert_file.iter().cloned().collect(),
            dirs,
        }
    }

    /// openssl-probe's walk: the first bundle and the first `certs/`
    /// directory found, possibly under different entries of the table.
    fn from_table(root: &Path) -> Self {
        let mut found = Self {
            origin: RootsOrigin::Distribution,
            files: Vec::new(),
            dirs: Vec::new(),
        };
        for dir in DISTRIBUTION_ROOTS.dirs {
            let base = under(root, dir);
            if found.files.is_empty() {
                found.files.extend(first_bundle(&base));
            }
            let certs = base.join("certs");
            // A certs/ without hashed names (Fedora's holds only bundles)
            // cannot be read as OpenSSL reads a directory: not a root store.
            if found.dirs.is_empty() && hashed_entries(&certs).is_ok_and(|e| !e.is_empty()) {
                found.dirs.push(certs);
            }
            if !found.files.is_empty() && !found.dirs.is_empty() {
                break;
            }
        }
        found
    }

    /// Reads every bundle and directory into one store.
    pub fn load(&self) -> Result<TrustStore, InputError> {
        let mut builder = TrustStore::builder();
        for file in &self.files {
            builder
                .add_pem_file(file)
                .map_err(|e| self.named(e, "SSL_CERT_FILE"))?;
        }
        for dir in &self.dirs {
            builder
                .add_hashed_dir(dir)
                .map_err(|e| self.named(e, "SSL_CERT_DIR"))?;
        }
        let mut store = builder.build()?;
        store.source = TrustSource::System;
        Ok(store)
    }

    /// A variable's error says which variable, so the person knows what to fix.
    fn named(&self, error: InputError, variable: &'static str) -> InputError {
        match self.origin {
            RootsOrigin::Environment => InputError::Environment {
                variable,
                source: Box::new(error),
            },
            RootsOrigin::Distribution => error,
        }
    }
}

/// `dir` (absolute) as seen from `root`.
fn under(root: &Path, dir: &str) -> PathBuf {
    root.join(dir.trim_start_matches('/'))
}

fn first_bundle(base: &Path) -> Option<PathBuf> {
    DISTRIBUTION_ROOTS
        .bundles
        .iter()
        .map(|name| base.join(name))
        .find(|path| path.is_file())
}

/// What the no-roots error says was tried, in one line.
fn tried_places(root: &Path) -> String {
    let dirs: Vec<String> = DISTRIBUTION_ROOTS
        .dirs
        .iter()
        .map(|dir| under(root, dir).display().to_string())
        .collect();
    format!(
        "SSL_CERT_FILE and SSL_CERT_DIR are unset, and none of {} holds a bundle ({}) \
         or a hashed certs/ directory",
        dirs.join(", "),
        DISTRIBUTION_ROOTS.bundles.join(", ")
    )
}
