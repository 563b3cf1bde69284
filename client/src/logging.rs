//! Where log lines go and how they look. Everything goes to stderr. -v shows
//! what curl's -v shows (resolution, addresses, trust store, ALPN, socket
//! buffers) as curl's `* ` lines; -vv adds quicprobe's own debug lines;
//! -vvv lets every crate speak, quiche's packet trace included. RUST_LOG
//! overrides the level.

use std::io::Write;

use log::Level;

/// The filter for `-q` and each `-v`: other crates stay at warnings until
/// -vvv, so that quiche's trace never drowns quicprobe's own lines.
pub fn filter(quiet: bool, verbose: u8) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,quicprobe=info,quicprobe_verifier=info",
        (false, 2) => "warn,quicprobe=debug,quicprobe_verifier=debug",
        (false, _) => "trace",
    }
}

/// Installs the logger (once per process).
pub fn init(quiet: bool, verbose: u8) {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(filter(quiet, verbose)),
    )
    .target(env_logger::Target::Stderr)
    .format(|buf, record| {
        let line = line(record.target(), record.level(), &record.args().to_string());
        match line {
            Some(line) => writeln!(buf, "{line}"),
            None => writeln!(
                buf,
                "{} {} {}: {}",
                buf.timestamp_millis(),
                record.level(),
                record.target(),
                record.args()
            ),
        }
    })
    .init();
}

/// quicprobe's own lines in curl's words: `* ` for information, the one
/// `quicprobe: ` style for warnings and errors. Other crates' lines (and
/// quicprobe's debug lines) keep a timestamp, level and module (`None`).
fn line(target: &str, level: Level, message: &str) -> Option<String> {
    if !target.starts_with("quicprobe") {
        return None;
    }
    match level {
        Level::Info => Some(format!("* {message}")),
        Level::Warn => Some(format!("quicprobe: warning: {message}")),
        Level::Error => Some(format!("quicprobe: {message}")),
        Level::Debug | Level::Trace => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_levels_keep_other_crates_quiet_until_vvv() {
        assert_eq!(filter(false, 0), "warn");
        assert!(filter(false, 1).starts_with("warn,quicprobe=info"));
        assert!(filter(false, 2).contains("quicprobe=debug"));
        assert_eq!(filter(false, 3), "trace");
        assert_eq!(filter(true, 3), "error");
    }

    #[test]
    fn quicprobe_info_lines_read_like_curls() {
        assert_eq!(
            line(
                "quicprobe::engine::target",
                Level::Info,
                "Host x:1 was resolved."
            ),
            Some("* Host x:1 was resolved.".into())
        );
        assert_eq!(
            line("quicprobe::engine", Level::Warn, "odd"),
            Some("quicprobe: warning: odd".into())
        );
        assert_eq!(line("quiche::tls", Level::Info, "x"), None);
    }
}
