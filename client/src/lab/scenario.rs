//! Finding a scenario of certs/ by name.

use std::path::{Path, PathBuf};

/// The certs/ folder of the source tree quicprobe was built from.
pub fn built_in_certs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

/// A scenario folder: NAME as a path to a folder holding chain.pem, else
/// `certs/NAME` under the current directory, else under the source tree.
pub fn find_scenario(name: &str) -> Option<PathBuf> {
    let candidates = [
        PathBuf::from(name),
        Path::new("certs").join(name),
        built_in_certs_dir().join(name),
    ];
    candidates
        .into_iter()
        .find(|dir| dir.join("chain.pem").is_file() && dir.join("key.pem").is_file())
}
