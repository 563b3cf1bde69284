//! `quicprobe clone`'s arguments.

use std::path::PathBuf;

use clap::Args;
use quicprobe_verifier::clone::Rename;

use super::TrustArgs;

/// Turn a saved chain into a scenario folder that reproduces its verdict
/// anywhere: every certificate cloned with a key of its own.
#[derive(Debug, Args)]
#[command(after_help = super::help::clone())]
pub struct CloneArgs {
    /// The chain as the server sent it (PEM, leaf first), e.g. from
    /// `connect --save-chain`.
    #[arg(long, value_name = "FILE")]
    pub chain: PathBuf,
    /// The name clients dial, checked against the leaf's SAN (as verify's --host).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Issuers the server left out, known from elsewhere (PEM): cloned into
    /// missing-issuer.pem, never into the chain (repeatable).
    #[arg(long, value_name = "FILE")]
    pub extra: Vec<PathBuf>,
    /// Replace FROM with TO everywhere a name appears (subject, issuer, SAN,
    /// host), to share a failure without production names (repeatable).
    #[arg(long, value_name = "FROM=TO")]
    pub rename: Vec<Rename>,
    /// The scenario folder to write (created; an existing non-empty one only
    /// with --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write into an existing folder, replacing the files a scenario has.
    #[arg(long)]
    pub force: bool,
}
