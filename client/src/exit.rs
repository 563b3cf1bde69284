//! Exit codes, the same numbers curl uses so that scripts already know them.
//! `TABLE` is the one list: docs/usage.md and every `--help` are made from it.

/// The handshake completed and the chain verified.
pub const OK: u8 = 0;
/// Bad flags, or input files that cannot be read or parsed.
pub const USAGE: u8 = 2;
/// curl's CURLE_COULDNT_RESOLVE_HOST: a name that has no address (of the
/// family `-4`/`-6` asks for).
pub const RESOLVE_FAILED: u8 = 6;
/// curl's CURLE_COULDNT_CONNECT: nothing accepted the connection (ICMP refused).
pub const REFUSED: u8 = 7;
/// curl's CURLE_PARTIAL_FILE: the connection ended before the response did.
pub const PARTIAL_RESPONSE: u8 = 18;
/// curl's CURLE_HTTP_RETURNED_ERROR: with `-f/--fail`, an HTTP status of 400 or more.
pub const HTTP_ERROR: u8 = 22;
/// curl's CURLE_WRITE_ERROR: a file the user asked for (`-o`, `--json-file`,
/// `--keylog`, `--session-file`, `--qlog-dir`) could not be written.
pub const WRITE_ERROR: u8 = 23;
/// curl's CURLE_OPERATION_TIMEDOUT.
pub const TIMEOUT: u8 = 28;
/// curl's CURLE_SSL_CONNECT_ERROR: any other TLS or QUIC failure.
pub const HANDSHAKE_FAILED: u8 = 35;
/// curl's CURLE_PEER_FAILED_VERIFICATION: the server's chain was rejected.
pub const VERIFICATION_FAILED: u8 = 60;
/// A shell's code for a run stopped by Ctrl-C (128 + SIGINT): what had
/// ended is reported, the rest was abandoned.
pub const INTERRUPTED: u8 = 130;

/// Every exit code and what it means, in one line each.
pub const TABLE: &[(u8, &str)] = &[
    (OK, "ok: the handshake completed and the chain verified (verify: the chain verifies)"),
    (USAGE, "usage: a bad flag or value, a bad target, an input file that cannot be read"),
    (RESOLVE_FAILED, "the name has no address (of the family -4/-6 asks for)"),
    (REFUSED, "refused: ICMP port unreachable, nothing listens on that UDP port"),
    (PARTIAL_RESPONSE, "the connection ended before the response was complete"),
    (HTTP_ERROR, "with -f/--fail: the server answered with an HTTP status of 400 or more"),
    (WRITE_ERROR, "a file asked for (-o, --json-file, --keylog, --session-file, --qlog-dir) could not be written"),
    (TIMEOUT, "timeout: no handshake within --connect-timeout, or past -m/--max-time"),
    (HANDSHAKE_FAILED, "any other TLS or QUIC failure (a TLS alert, ALPN refused, no common version)"),
    (VERIFICATION_FAILED, "the server's certificate chain was rejected"),
    (INTERRUPTED, "interrupted by Ctrl-C: what had ended is reported, the rest abandoned"),
];

/// The exit codes as `--help` lists them.
pub fn help_text() -> String {
    let mut text = String::from("Exit codes (curl's numbers):\n");
    for (code, meaning) in TABLE {
        text.push_str(&format!("  {code:>2}  {meaning}\n"));
    }
    text
}

/// An error that ends a command: its one line on stderr and its exit code.
/// Usage errors are the default; errors that are curl's other failures
/// (a write error, a name that does not resolve) say so.
pub trait Failure: std::fmt::Display {
    fn exit_code(&self) -> u8 {
        USAGE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once() {
        let mut codes: Vec<u8> = TABLE.iter().map(|(code, _)| *code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
        assert!(help_text().contains("23  a file asked for"));
    }
}
