//! Replays the client's fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same entry points the cargo-fuzz targets call, so that every input fuzzing
//! ever kept, crashes included, is checked by the ordinary test suite.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quicprobe::fuzzing;

/// One input that takes longer than this hangs as far as the test is concerned
/// (a debug build; the fuzzers' release builds run each input in milliseconds).
const SLOWEST_ALLOWED: Duration = Duration::from_secs(10);

/// Every file of `fuzz/corpus/<target>/`; fails when there is none, so that a
/// moved or emptied corpus cannot pass silently.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no corpus files", dir.display());
    files
}

/// Runs `entry` on every corpus file and fails naming each file that
/// panicked or ran too long.
fn replay(target: &str, entry: fn(&[u8])) {
    let mut failures = Vec::new();
    for path in corpus(target) {
        let data = std::fs::read(&path).unwrap();
        let started = Instant::now();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| entry(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{}: panicked: {message}", path.display()));
        }
        let took = started.elapsed();
        if took > SLOWEST_ALLOWED {
            failures.push(format!("{}: took {took:?}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

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
