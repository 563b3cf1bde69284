//! Builds the trust store from `--cacert`/`--capath`, or the system's roots
//! (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle and
//! hashed directory: `TrustStore::system`).

use quicprobe_verifier::{InputError, TrustStore};

use crate::cli::TrustArgs;

/// The roots the user asked for; the system's when they named none.
pub fn load_trust(args: &TrustArgs) -> Result<TrustStore, InputError> {
    let trust = read_trust(args)?;
    // curl -v's "CAfile:" line, with what was loaded from it.
    log::info!("trust store: {}", trust.summary().describe());
    Ok(trust)
}

fn read_trust(args: &TrustArgs) -> Result<TrustStore, InputError> {
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
