//! Replays the verifier's fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same entry points the cargo-fuzz targets call, so that every input fuzzing
//! ever kept, crashes included, is checked by the ordinary test suite.

use quicprobe_verifier::fuzzing;
use quicprobe_verifier::fuzzing::assert_corpus_replays as replay;

#[test]
fn chain_analysis_corpus_replays_without_panic() {
    replay("chain_analysis", fuzzing::chain_analysis);
}

#[test]
fn trust_store_corpus_replays_without_panic() {
    replay("trust_store", fuzzing::trust_store);
}
