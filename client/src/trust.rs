//! Builds the trust store from `--cacert`/`--capath`, or the system bundle.

use std::sync::OnceLock;

use quicprobe_verifier::{Evidence, FetchedCertificate, InputError, TrustSource, TrustStore};

use crate::cli::TrustArgs;

/// The roots the user asked for; the system bundle when they named none.
pub fn load_trust(args: &TrustArgs) -> Result<TrustStore, InputError> {
    if args.cacert.is_empty() && args.capath.is_none() {
        return TrustStore::system();
    }
    let mut builder = TrustStore::builder();
    for file in &args.cacert {
        builder.add_pem_file(file)?;
    }
    if let Some(dir) = &args.capath {
        builder.add_hashed_dir(dir)?;
    }
    builder.build()
}

/// The system bundle, loaded at most once per process: when the person
/// chose their own roots, a root their file lacks but the system holds is
/// certainly a missing root (and not an intermediate the server left out).
fn system_bundle() -> Option<&'static TrustStore> {
    static BUNDLE: OnceLock<Option<TrustStore>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| match TrustStore::system() {
            Ok(store) => Some(store),
            Err(error) => {
                log::debug!("system bundle not loaded for the diagnosis: {error}");
                None
            }
        })
        .as_ref()
}

/// The evidence for explaining a verdict reached with `trust`: the system
/// bundle when `trust` is the person's own and the chain was rejected, and
/// what `--aia-fetch` fetched.
pub fn evidence<'a>(
    trust: &TrustStore,
    rejected: bool,
    fetched: &'a [FetchedCertificate],
) -> Evidence<'a> {
    let consult_system = rejected && trust.source() == TrustSource::User;
    Evidence {
        system_bundle: if consult_system {
            system_bundle()
        } else {
            None
        },
        fetched,
    }
}
