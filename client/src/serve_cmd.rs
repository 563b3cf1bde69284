//! `quicprobe serve`: the lab on the command line, until SIGINT or SIGTERM.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cli::ServeArgs;
use crate::lab::{LabError, LabServer, LabSpec};
use crate::scenario::find_scenario;

/// Why `serve` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("no scenario {0:?} (looked for a folder with chain.pem and key.pem, and in certs/)")]
    UnknownScenario(String),
    #[error("give --scenario NAME, or --chain FILE and --key FILE")]
    NothingToServe,
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
}

/// Runs the lab in the foreground; returns when a signal stops it.
pub fn run(args: &ServeArgs) -> Result<(), ServeError> {
    let spec = spec(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(ServeError::Signals)?;
    }
    let mut server = LabServer::bind(&spec)?;
    let addr = server.local_addr();
    say(&format!(
        "serving {} (key {}), ALPN {}{}",
        spec.chain.display(),
        spec.key.display(),
        spec.alpns.join(","),
        if spec.retry { ", Retry on" } else { "" }
    ));
    for line in chain_lines(&spec.chain) {
        say(&line);
    }
    say(&format!("listening on {addr}"));
    server.run(&stop, &mut |event| say(&event.to_string()))?;
    say("stopped");
    Ok(())
}

fn spec(args: &ServeArgs) -> Result<LabSpec, ServeError> {
    let (chain, key) = match (&args.scenario, &args.chain, &args.key) {
        (Some(name), _, _) => {
            let dir =
                find_scenario(name).ok_or_else(|| ServeError::UnknownScenario(name.clone()))?;
            (dir.join("chain.pem"), dir.join("key.pem"))
        }
        (None, Some(chain), Some(key)) => (chain.clone(), key.clone()),
        _ => return Err(ServeError::NothingToServe),
    };
    Ok(LabSpec {
        chain,
        key,
        listen: args.listen,
        alpns: args.alpn.clone(),
        retry: args.retry,
        compress_certificates: args.compress_certificates,
        ocsp_response: read_optional(args.ocsp_response.as_deref())?,
        sct_list: read_optional(args.sct_list.as_deref())?,
    })
}

/// What the lab will present, so that a replay says what it replays.
fn chain_lines(chain: &std::path::Path) -> Vec<String> {
    let Ok(certificates) = quicprobe_verifier::read_certificates(chain) else {
        return Vec::new();
    };
    let report = quicprobe_verifier::ChainReport::describe(&certificates);
    let mut lines: Vec<String> = report
        .certificates
        .iter()
        .map(|c| format!("  presents [{}] s:{}  i:{}", c.depth, c.subject, c.issuer))
        .collect();
    lines.extend(
        report
            .warnings
            .iter()
            .map(|w| format!("  ! {}", w.explain())),
    );
    lines
}

/// One line on stdout, flushed at once so that a supervising test sees it.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// The bytes of a file given with an option, if one was.
fn read_optional(path: Option<&std::path::Path>) -> Result<Option<Vec<u8>>, ServeError> {
    path.map(|path| {
        std::fs::read(path).map_err(|error| ServeError::Read(path.display().to_string(), error))
    })
    .transpose()
}
