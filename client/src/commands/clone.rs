//! `quicprobe clone`: a saved chain turned into a scenario folder (see
//! `capture::scenario`), offline.

use quicprobe_verifier::{read_certificates, InputError};

use crate::capture::scenario::{write_scenario, Capture, CaptureError, Written};
use crate::cli::clone::CloneArgs;
use crate::cli::trust::load_trust;
use crate::engine::config::ConnectError;
use crate::exit;

/// Why no scenario was written.
#[derive(Debug, thiserror::Error)]
pub enum CloneCommandError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Trust(#[from] ConnectError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

impl exit::Failure for CloneCommandError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Capture(error) if error.is_write_error() => exit::WRITE_ERROR,
            Self::Trust(error) => error.exit_code(),
            _ => exit::USAGE,
        }
    }
}

/// Clones the chain and writes the folder; returns what to print.
pub fn run(args: &CloneArgs) -> Result<String, CloneCommandError> {
    let chain = read_certificates(&args.chain)?;
    let trust = load_trust(&args.trust)?;
    let mut missing = Vec::new();
    for path in &args.extra {
        missing.extend(read_certificates(path)?);
    }
    let capture = Capture {
        chain: &chain,
        host: args.host.clone(),
        trust: &trust,
        missing,
        seen: None,
        trace: None,
        renames: &args.rename,
    };
    let written = write_scenario(&capture, &args.out, args.force)?;
    Ok(summary(&written))
}

/// What was written, and how to replay it.
pub fn summary(written: &Written) -> String {
    format!(
        "quicprobe: wrote {} ({}): expected {}{}\nreplay: quicprobe serve --scenario {}\n",
        written.dir.display(),
        written.files.join(", "),
        written.expected,
        if written.leaf_is_ca {
            "; the leaf is a CA certificate, keep key.pem to the lab"
        } else {
            ""
        },
        written.dir.display()
    )
}
