//! A bounded memory of pure results, shared by the report's remembered
//! work (signature checks, the compressed-flight estimate): a scan meets the
//! same certificates target after target, and each answer depends only on
//! the bytes its key digests.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, OnceLock};

/// Results by key, at most `kept` of them; past it the memory starts again
/// (a bound, not a policy: a scan of one CA's hosts needs a handful).
pub struct Memo<K, V> {
    kept: usize,
    results: OnceLock<Mutex<HashMap<K, V>>>,
}

impl<K: Eq + Hash, V: Copy> Memo<K, V> {
    pub const fn new(kept: usize) -> Self {
        Self {
            kept,
            results: OnceLock::new(),
        }
    }

    /// The result remembered for `key`, or `compute`'s, then remembered.
    pub fn get_or_compute(&self, key: K, compute: impl FnOnce() -> V) -> V {
        let results = self.results.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(known) = results.lock().ok().and_then(|map| map.get(&key).copied()) {
            return known;
        }
        let value = compute();
        if let Ok(mut map) = results.lock() {
            if map.len() >= self.kept {
                map.clear();
            }
            map.insert(key, value);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_computed_once_and_the_bound_holds() {
        let memo: Memo<u8, u32> = Memo::new(2);
        let mut calls = 0;
        for _ in 0..3 {
            assert_eq!(
                memo.get_or_compute(1, || {
                    calls += 1;
                    10
                }),
                10
            );
        }
        assert_eq!(calls, 1);
        memo.get_or_compute(2, || 20);
        memo.get_or_compute(3, || 30);
        let held = memo.results.get().unwrap().lock().unwrap().len();
        assert!(held <= 2, "{held}");
    }
}
