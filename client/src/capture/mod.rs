//! Capture, to replay a failure anywhere (issue 17): the chain a server
//! sent, saved exactly as it was sent (`--save-chain`, as `openssl s_client
//! -showcerts` prints it), so that `quicprobe verify --chain` gives the
//! live verdict again offline.

pub mod scenario;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use boring::x509::X509;
use quicprobe_verifier::name_one_line;

use crate::engine::outcome::{Outcome, OutcomeKind};

/// Where `--save-chain FILE` puts each connection's chain: FILE itself when
/// the run makes one connection; with several, FILE numbered before its
/// extension (`chain.pem` → `chain-1.pem`, `chain-2.pem`, ...; `scan` uses
/// the target's line number), so that no chain overwrites another.
#[derive(Debug, Clone)]
pub struct ChainFiles {
    path: PathBuf,
    numbered: bool,
}

impl ChainFiles {
    pub fn new(path: PathBuf, numbered: bool) -> Self {
        Self { path, numbered }
    }

    /// The file for the connection numbered `number` (from 1, or a scan line).
    pub fn path_for(&self, number: usize) -> PathBuf {
        if !self.numbered {
            return self.path.clone();
        }
        let stem = self
            .path
            .file_stem()
            .map_or_else(|| "chain".into(), |s| s.to_string_lossy().into_owned());
        let name = match self.path.extension() {
            Some(ext) => format!("{stem}-{number}.{}", ext.to_string_lossy()),
            None => format!("{stem}-{number}"),
        };
        self.path.with_file_name(name)
    }

    /// Saves the chain `outcome` received, if it received one. A file that
    /// cannot be written is the outcome's write error (exit 23, unless the
    /// connection failed already for a reason of its own).
    pub fn save(&self, number: usize, outcome: &mut Outcome) {
        let Some(checked) = &outcome.chain.checked else {
            return;
        };
        let path = self.path_for(number);
        if let Err(error) = write_chain(&path, &checked.chain) {
            outcome.application.write_error =
                Some(format!("--save-chain {}: {error}", path.display()));
            if outcome.end.kind == OutcomeKind::Ok {
                outcome.end.kind = OutcomeKind::WriteError;
            }
        }
    }
}

/// `connect --save-scenario`: the connection's chain, roots, missing
/// issuers (what --aia-fetch found), what the server was seen to do and the
/// trace, written as a scenario folder.
pub fn save_scenario(
    outcome: &Outcome,
    trust: &quicprobe_verifier::TrustStore,
    renames: &[quicprobe_verifier::clone::Rename],
    out: &Path,
    force: bool,
) -> Result<scenario::Written, scenario::CaptureError> {
    let Some(checked) = &outcome.chain.checked else {
        return Err(scenario::CaptureError::NoChain);
    };
    let missing = outcome
        .chain
        .aia
        .as_ref()
        .map(|aia| {
            aia.evidence()
                .into_iter()
                .map(|fetched| fetched.certificate)
                .collect()
        })
        .unwrap_or_default();
    let capture = scenario::Capture {
        chain: &checked.chain,
        host: checked.verdict.peer_name.as_ref().map(ToString::to_string),
        trust,
        missing,
        seen: Some(seen(outcome)),
        trace: Some(crate::report::trace::render(
            outcome,
            crate::report::trace::TraceStyle::Native,
            0,
        )),
        renames,
    };
    scenario::write_scenario(&capture, out, force)
}

/// What the server was seen to do in `outcome`.
fn seen(outcome: &Outcome) -> crate::lab::scenario::Seen {
    let started = time::OffsetDateTime::now_utc()
        - time::Duration::try_from(outcome.end.elapsed).unwrap_or(time::Duration::ZERO);
    crate::lab::scenario::Seen {
        target: outcome.peer.target.clone(),
        address: outcome.peer.addr.to_string(),
        when: started
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        alpn: outcome.handshake.alpn.clone(),
        transport_parameters: outcome.peer.transport_parameters,
        server_implementation: outcome
            .peer
            .server_guess
            .as_ref()
            .and_then(|guess| guess.implementation.map(str::to_owned)),
    }
}

fn write_chain(path: &Path, chain: &[X509]) -> std::io::Result<()> {
    let text = showcerts(chain).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

/// The chain as `openssl s_client -showcerts` prints it: for each
/// certificate, in the order sent, its depth, subject and issuer, then its
/// PEM. PEM readers skip the lines between blocks.
pub fn showcerts(chain: &[X509]) -> Result<String, boring::error::ErrorStack> {
    let mut out = String::new();
    for (depth, cert) in chain.iter().enumerate() {
        let _ = writeln!(
            out,
            " {depth} s:{}\n   i:{}",
            name_one_line(cert.subject_name()),
            name_one_line(cert.issuer_name())
        );
        out.push_str(&String::from_utf8_lossy(&cert.to_pem()?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_connections_get_numbered_files_beside_the_one_named() {
        let one = ChainFiles::new(PathBuf::from("/tmp/x/chain.pem"), false);
        assert_eq!(one.path_for(3), PathBuf::from("/tmp/x/chain.pem"));
        let many = ChainFiles::new(PathBuf::from("/tmp/x/chain.pem"), true);
        assert_eq!(many.path_for(2), PathBuf::from("/tmp/x/chain-2.pem"));
        let bare = ChainFiles::new(PathBuf::from("saved"), true);
        assert_eq!(bare.path_for(7), PathBuf::from("saved-7"));
    }

    #[test]
    fn a_saved_chain_reads_back_as_the_same_certificates_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/wrong-order");
        let chain = quicprobe_verifier::read_certificates(&dir.join("chain.pem")).unwrap();
        let text = showcerts(&chain).unwrap();
        assert!(text.starts_with(" 0 s:"), "{text}");
        let back =
            quicprobe_verifier::parse_certificates(Path::new("saved"), text.as_bytes()).unwrap();
        let der = |c: &[X509]| c.iter().map(|x| x.to_der().unwrap()).collect::<Vec<_>>();
        assert_eq!(der(&back), der(&chain));
    }
}
