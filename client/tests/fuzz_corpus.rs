//! Replays the client's fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same entry points the cargo-fuzz targets call, so that every input fuzzing
//! ever kept, crashes included, is checked by the ordinary test suite.

use quicprobe::fuzzing;
use quicprobe_verifier::fuzzing::assert_corpus_replays as replay;

#[test]
fn target_parse_corpus_replays_without_panic() {
    replay("target_parse", fuzzing::target_parse);
}

#[test]
fn scan_file_corpus_replays_without_panic() {
    replay("scan_file", fuzzing::scan_file);
}

#[test]
fn aioquic_trace_corpus_replays_without_panic() {
    replay("aioquic_trace", fuzzing::aioquic_trace);
}
