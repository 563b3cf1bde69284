//! The command line: argument definitions only, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A QUIC client that verifies server certificate chains strictly and tells
/// you exactly what happened in the handshake and why it failed.
#[derive(Debug, Parser)]
#[command(name = "quicprobe", version, propagate_version = true)]
pub struct Cli {
    /// More output (-v: debug, -vv: trace). RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a server's certificate chain offline, before deploying it.
    Verify(VerifyArgs),
}

/// Where the trusted roots come from; the system bundle when neither is given.
#[derive(Debug, Args, Clone, Default)]
pub struct TrustArgs {
    /// A PEM file of roots to trust (repeatable), as curl's --cacert.
    #[arg(long = "cacert", value_name = "FILE")]
    pub cacert: Vec<PathBuf>,
    /// A directory of roots in OpenSSL's hashed layout, as curl's --capath.
    #[arg(long = "capath", value_name = "DIR")]
    pub capath: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The chain exactly as the server would send it (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    pub chain: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The DNS name clients will dial; checked against the leaf's SAN.
    #[arg(long, value_name = "NAME", conflicts_with = "ip")]
    pub host: Option<String>,
    /// The IP address clients will dial; checked against the leaf's IP SAN.
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<std::net::IpAddr>,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
}
