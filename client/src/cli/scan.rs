//! The arguments of `quicprobe scan`.

use std::path::PathBuf;

use clap::Args;

use super::TrustArgs;
use crate::engine::target::ResolveEntry;

#[derive(Debug, Args)]
#[command(after_help = super::help::scan())]
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
    #[command(flatten)]
    pub client_cert: super::ClientCertArgs,
    /// ALPNs to offer, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "h3", value_delimiter = ',')]
    pub alpn: Vec<String>,
    /// Dial ADDR for HOST:PORT without asking DNS, as curl's --resolve
    /// HOST:PORT:ADDR[,ADDR]... (the next address is tried when one refuses).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<ResolveEntry>,
    /// Save each target's chain, exactly as sent, as PEM: FILE numbered with
    /// the target's line (chain.pem -> chain-12.pem for line 12).
    #[arg(long, value_name = "FILE")]
    pub save_chain: Option<std::path::PathBuf>,
}
