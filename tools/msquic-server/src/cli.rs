//! The command line: what the server listens on, which certificate it sends
//! and which ALPNs it accepts.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A QUIC test server on msquic for quicprobe's interop tests.
///
/// hq-interop: `GET /N` is answered with N bytes of "abc...xyz0...9" repeated.
/// Any other ALPN: every bidirectional stream is echoed back.
#[derive(Debug, Parser)]
#[command(name = "quicprobe-msquic-server", version)]
pub struct Args {
    /// Address to listen on, e.g. 127.0.0.1:4433.
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Certificate chain (PEM), leaf first; sent to clients exactly as written.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,

    /// Private key (PEM) of the leaf certificate.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,

    /// ALPNs to accept, comma-separated and/or repeated, in order of preference.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "hq-interop,h3,sample"
    )]
    pub alpn: Vec<String>,

    /// Answer every connection attempt with a Retry first.
    #[arg(long)]
    pub retry: bool,

    /// Idle timeout in milliseconds (0 disables it).
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    pub idle_ms: u64,

    /// Require a client certificate (QUIC_CREDENTIAL_FLAG_REQUIRE_CLIENT_AUTHENTICATION),
    /// verified by OpenSSL against --client-ca: none gives certificate_required (116).
    #[arg(long, requires = "client_ca")]
    pub require_client_cert: bool,

    /// The PEM roots a client certificate must chain to
    /// (QUIC_CREDENTIAL_FLAG_SET_CA_CERTIFICATE_FILE). Required by
    /// --require-client-cert: on Linux msquic's own certificate check
    /// (certificates_posix.c) rejects every certificate, so only OpenSSL's
    /// built-in verification with a CA file can accept one.
    #[arg(long, value_name = "FILE", requires = "require_client_cert")]
    pub client_ca: Option<PathBuf>,
}

/// Exit code for bad input, the same as clap's own usage errors.
pub const EXIT_USAGE: i32 = 2;

/// Parses the command line; on bad input prints one error line and exits 2.
pub fn parse_or_exit() -> Args {
    let mut args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => fail(&first_paragraph(&err.to_string())),
    };
    match clean_alpn_list(&args.alpn) {
        Ok(alpn) => args.alpn = alpn,
        Err(message) => fail(&message),
    }
    args
}

/// Prints `message` as the single error line and exits with [`EXIT_USAGE`].
pub fn fail(message: &str) -> ! {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    eprintln!("quicprobe-msquic-server: error: {message}");
    std::process::exit(EXIT_USAGE)
}

/// clap's message is the error, a blank line, then usage and tips; the error
/// part (which may list missing arguments on further lines) becomes one line.
fn first_paragraph(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    lines.join(" ")
}

/// Trims the entries and drops empty ones (`--alpn "h3, sample,"`); an ALPN
/// must be 1..=255 bytes on the wire, and msquic needs at least one.
fn clean_alpn_list(raw: &[String]) -> Result<Vec<String>, String> {
    let alpn: Vec<String> = raw
        .iter()
        .map(|entry| entry.trim().to_string())
        .filter(|entry| !entry.is_empty())
        .collect();
    if alpn.is_empty() {
        return Err("--alpn needs at least one protocol name".to_string());
    }
    if let Some(long) = alpn.iter().find(|entry| entry.len() > 255) {
        return Err(format!("ALPN '{long}' is longer than 255 bytes"));
    }
    Ok(alpn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn alpn_list_is_trimmed_and_empty_entries_dropped() {
        let cleaned = clean_alpn_list(&strings(&[" h3", "", "sample "])).unwrap();
        assert_eq!(cleaned, strings(&["h3", "sample"]));
    }

    #[test]
    fn missing_arguments_are_named_on_the_error_line() {
        let err = Args::try_parse_from(["x", "--listen", "127.0.0.1:1"]).unwrap_err();
        let line = first_paragraph(&err.to_string());
        assert!(
            line.contains("--cert <FILE>") && line.contains("--key <FILE>"),
            "{line}"
        );
        assert!(!line.contains("Usage"), "{line}");
    }

    #[test]
    fn empty_alpn_list_is_an_error() {
        assert!(clean_alpn_list(&strings(&["", " "])).is_err());
    }

    #[test]
    fn alpn_is_comma_separated_and_repeatable() {
        let args = Args::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:1",
            "--cert",
            "c",
            "--key",
            "k",
            "--alpn",
            "a,b",
            "--alpn",
            "c",
        ])
        .unwrap();
        assert_eq!(args.alpn, strings(&["a", "b", "c"]));
        assert_eq!(args.idle_ms, 30_000);
        assert!(!args.retry);
    }
}
