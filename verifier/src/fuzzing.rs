//! The entry points of the cargo-fuzz targets in `fuzz/`, kept in the crate
//! so that the fuzz targets and the tests that replay `fuzz/corpus/` call the
//! same code and cannot drift apart. Each takes arbitrary bytes and must
//! return without panicking, whatever the bytes are.
//!
//! Nothing here touches the network or the file system: certificates come
//! from the bytes, and the fixed trust store and chain are compiled in.

use std::path::Path;

use boring::x509::X509;

use crate::{aioquic_verdict, parse_certificates, verify, Analysis, PeerName, TrustStore};

/// The roots of the `full-chain` scenario: the fixed trust store that fuzzed
/// chains are verified against.
const FIXED_ROOTS_PEM: &[u8] = include_bytes!("../../certs/full-chain/roots.pem");

/// The `full-chain` scenario's chain: what a fuzzed trust store is asked to verify.
const FIXED_CHAIN_PEM: &[u8] = include_bytes!("../../certs/full-chain/chain.pem");

/// The name most scenarios are dialled by.
const FIXED_HOST: &str = "localhost";

/// More certificates than any server sends; the rest of a DER sequence is ignored.
const MAX_DER_CERTIFICATES: usize = 256;

thread_local! {
    static FIXED_TRUST: TrustStore = {
        let mut builder = TrustStore::builder();
        builder
            .add_pem_bytes(Path::new("certs/full-chain/roots.pem"), FIXED_ROOTS_PEM)
            .expect("the full-chain scenario's roots are valid PEM");
        builder.build().expect("a store of valid roots builds")
    };
    static FIXED_CHAIN: Vec<X509> =
        parse_certificates(Path::new("certs/full-chain/chain.pem"), FIXED_CHAIN_PEM)
            .expect("the full-chain scenario's chain is valid PEM");
}

/// Fuzz target `chain_analysis`: the bytes as a certificate file (PEM, or one
/// DER certificate) and as a sequence of DER certificates back to back, as a
/// TLS Certificate message lists them; every chain found is verified against
/// the fixed trust store, described, diagnosed, and judged as aioquic would.
pub fn chain_analysis(data: &[u8]) {
    match parse_certificates(Path::new("fuzz.pem"), data) {
        Ok(chain) => analyse(&chain),
        Err(error) => {
            let _ = error.to_string();
        }
    }
    let sequence = der_sequence(data);
    if !sequence.is_empty() {
        analyse(&sequence);
    }
}

/// Fuzz target `trust_store`: the bytes as a `--cacert` file; a store that
/// loads is built and used to verify the `full-chain` scenario's chain.
pub fn trust_store(data: &[u8]) {
    let mut builder = TrustStore::builder();
    if let Err(error) = builder.add_pem_bytes(Path::new("fuzz-roots.pem"), data) {
        let _ = error.to_string();
        return;
    }
    let store = match builder.build() {
        Ok(store) => store,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let _ = format!("{store:?}");
    FIXED_CHAIN.with(|chain| {
        let name = PeerName::parse(FIXED_HOST);
        let verdict = verify(chain, &store, Some(&name));
        let _ = verdict.x509_error_string();
    });
}

/// Everything `quicprobe verify` works out for a chain.
fn analyse(chain: &[X509]) {
    FIXED_TRUST.with(|trust| {
        let name = PeerName::parse(FIXED_HOST);
        let analysis = Analysis::run(chain, trust, Some(&name));
        for warning in &analysis.warnings {
            let _ = warning.explain();
        }
        let _ = analysis.verdict.x509_error_string();
        let _ = aioquic_verdict(chain, trust, Some(&name));
    });
}

/// Certificates laid end to end in DER, each a SEQUENCE with a definite
/// length. Stops at the first one that does not parse; a last certificate
/// cut short is still handed to BoringSSL, which must refuse it.
fn der_sequence(mut data: &[u8]) -> Vec<X509> {
    let mut chain = Vec::new();
    while !data.is_empty() && chain.len() < MAX_DER_CERTIFICATES {
        let len = der_element_len(data).unwrap_or(data.len()).min(data.len());
        let Ok(certificate) = X509::from_der(&data[..len]) else {
            break;
        };
        chain.push(certificate);
        data = &data[len..];
    }
    chain
}

/// The length, header included, of the DER element at the start of `data`:
/// None for an indefinite or absurd length.
fn der_element_len(data: &[u8]) -> Option<usize> {
    let first = usize::from(*data.get(1)?);
    if first < 0x80 {
        return Some(2 + first);
    }
    let octets = first & 0x7f;
    if octets == 0 || octets > 4 {
        return None;
    }
    let length = data
        .get(2..2 + octets)?
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    2usize.checked_add(octets)?.checked_add(length)
}

/// Deterministic pseudo-random bytes for the garbage-input tests of both
/// crates: the same `seed` gives the same bytes on every run and machine.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// One corpus input that takes longer than this counts as a hang when the
/// ordinary test suite replays it (a debug build; the fuzzers' release builds
/// run each input in milliseconds).
pub const SLOWEST_REPLAY: std::time::Duration = std::time::Duration::from_secs(10);

/// Replays `fuzz/corpus/TARGET` of this workspace through `entry` and panics
/// naming every file that failed (see [`replay_corpus`]): the assertion
/// behind both crates' corpus tests.
pub fn assert_corpus_replays(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let failures = replay_corpus(&dir, entry);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Replays every file of `fuzz/corpus/TARGET` (`corpus_dir`) through
/// `entry`, for the tests of both crates: one line per file that panicked or
/// ran longer than [`SLOWEST_REPLAY`], and one when the directory is missing
/// or empty, so that a moved or emptied corpus cannot pass silently.
pub fn replay_corpus(corpus_dir: &Path, entry: fn(&[u8])) -> Vec<String> {
    let files = match corpus_files(corpus_dir) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => return vec![format!("{}: no corpus files", corpus_dir.display())],
        Err(error) => return vec![format!("{}: {error}", corpus_dir.display())],
    };
    files
        .iter()
        .filter_map(|path| replay_one(path, entry).err())
        .collect()
}

fn corpus_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn replay_one(path: &Path, entry: fn(&[u8])) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let started = std::time::Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry(&data)));
    let took = started.elapsed();
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        return Err(format!("{}: panicked: {message}", path.display()));
    }
    if took > SLOWEST_REPLAY {
        return Err(format!("{}: took {took:?}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_sequence_splits_certificates_laid_end_to_end() {
        let chain = parse_certificates(Path::new("chain.pem"), FIXED_CHAIN_PEM).unwrap();
        let mut bytes = Vec::new();
        for certificate in &chain {
            bytes.extend(certificate.to_der().unwrap());
        }
        assert_eq!(der_sequence(&bytes).len(), chain.len());
        assert_eq!(
            der_sequence(&bytes[..bytes.len() - 1]).len(),
            chain.len() - 1
        );
    }
}
