//! What `quicprobe -V` and `--version` say: quicprobe's version and commit,
//! and (`--version`) the quiche and boring it was built with, as client/build.rs
//! read them from Cargo.lock. A bug report that pastes `--version` names
//! every part that decides a handshake.

/// `quicprobe -V`: `0.1.0 (git 1a2b3c4)`.
pub const SHORT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("QUICPROBE_GIT_COMMIT"),
    ")"
);

/// `quicprobe --version`: the short line, then one line per library that
/// speaks on the wire.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("QUICPROBE_GIT_COMMIT"),
    ")\nquiche ",
    env!("QUICPROBE_QUICHE_VERSION"),
    "\nboring ",
    env!("QUICPROBE_BORING_VERSION"),
    " (BoringSSL, built by boring-sys ",
    env!("QUICPROBE_BORING_SYS_VERSION"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_quicprobe_quiche_and_boring() {
        let lines: Vec<&str> = LONG.lines().collect();
        assert_eq!(lines.len(), 3, "{LONG}");
        assert!(lines[0].starts_with(env!("CARGO_PKG_VERSION")), "{LONG}");
        assert!(lines[0].contains("(git "), "{LONG}");
        assert!(lines[1].starts_with("quiche 0."), "{LONG}");
        assert!(lines[2].starts_with("boring 5."), "{LONG}");
        assert!(LONG.starts_with(SHORT), "{LONG}");
    }
}
