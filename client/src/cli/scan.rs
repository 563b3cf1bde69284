//! The arguments of `quicprobe scan`.

use std::path::PathBuf;

use clap::Args;

use super::TrustArgs;
use crate::engine::target::ResolveEntry;

const AFTER_HELP: &str = "\
Output (JSON Lines on stdout), one object per target line in the order the targets end \
(sort on `line` for file order):
  a connection: `connect --json`'s object, plus \"line\" and \"input\"
  a name that does not resolve: outcome \"resolve_failed\" (exit code 6, curl's)
  a bad line: {\"line\", \"input\", \"outcome\": \"bad_line\", \"error\"} (exit code 2)
then {\"summary\": {targets, outcomes, bad_lines, slowest, elapsed_ms, exit_code}}.

Exit code: 0 when every line is ok; otherwise that of the first failing line in the file \
(60 verification failed, 35 handshake failed, 28 timeout, 7 refused or no socket, \
6 not resolved, 2 bad line); 2 alone, with one line on stderr, when the targets file cannot be read.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ScanArgs {
    /// The targets, one per line: `host[:port] [sni]` (port 443 by default,
    /// `[v6addr]:port` for IPv6; SNI, and the name the certificate must
    /// carry, is the host unless given). `#` starts a comment; blank lines
    /// are skipped. A bad line gets its own `bad_line` object and the
    /// others still run.
    #[arg(long, value_name = "FILE")]
    pub targets: PathBuf,
    /// Keep up to N connections in flight at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 50,
        allow_negative_numbers = true
    )]
    pub concurrency: usize,
    /// Give up on a handshake after this many seconds (counted from its
    /// first packet, not from the start of the scan), as curl's
    /// --connect-timeout; `--timeout` is its alias. 5 s, not connect's 10:
    /// a scan meets many dead targets, and each would hold a slot that long.
    #[arg(
        long = "connect-timeout",
        visible_alias = "timeout",
        value_name = "SECS",
        default_value_t = 5.0,
        allow_negative_numbers = true
    )]
    pub timeout: f64,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// ALPNs to offer, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "h3", value_delimiter = ',')]
    pub alpn: Vec<String>,
    /// Dial ADDR for HOST:PORT without asking DNS, as curl's --resolve
    /// HOST:PORT:ADDR[,ADDR]... (the next address is tried when one refuses).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<ResolveEntry>,
}
