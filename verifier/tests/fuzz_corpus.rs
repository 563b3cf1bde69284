//! Replays the verifier's fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same entry points the cargo-fuzz targets call, so that every input fuzzing
//! ever kept, crashes included, is checked by the ordinary test suite.

use std::path::Path;

use quicprobe_verifier::fuzzing;
use quicprobe_verifier::fuzzing::replay_corpus;

/// Fails naming every corpus file of `target` that panicked or ran too long,
/// or the corpus directory if it is missing or empty.
fn replay(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let failures = replay_corpus(&dir, entry);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn chain_analysis_corpus_replays_without_panic() {
    replay("chain_analysis", fuzzing::chain_analysis);
}

#[test]
fn trust_store_corpus_replays_without_panic() {
    replay("trust_store", fuzzing::trust_store);
}
