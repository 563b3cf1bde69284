//! `quicprobe serve`: the lab on the command line, until SIGINT or SIGTERM.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cli::ServeArgs;
use crate::lab::aia::{self, AiaServer};
use crate::lab::scenario::{find_scenario, scenario_dirs_tried, Seen};
use crate::lab::{ClientAuth, LabError, LabServer, LabSpec};
use quicprobe_verifier::flight::HandshakeFlight;

/// Why `serve` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The name, and the certs/ folders looked in.
    #[error(
        "no scenario {0:?} (looked for a folder of that name with chain.pem and key.pem, \
         then in {1})"
    )]
    UnknownScenario(String, String),
    #[error("give --scenario NAME, or --chain FILE and --key FILE")]
    NothingToServe,
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}")]
    Scenario(String),
}

impl crate::exit::Failure for ServeError {}

/// Runs the lab in the foreground; returns when a signal stops it. `quiet`
/// (`-q`) prints only `listening on ADDR` and `stopped` (and warnings).
pub fn run(args: &ServeArgs, quiet: bool) -> Result<(), ServeError> {
    let (spec, replay) = spec(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(ServeError::Signals)?;
    }
    let mut server = LabServer::bind(&spec)?;
    let addr = server.local_addr();
    let certificates = quicprobe_verifier::read_certificates(&spec.chain).unwrap_or_default();
    if !quiet {
        replay.iter().for_each(|line| say(line));
        announce(&spec, &certificates);
    }
    flight_lines(&certificates, quiet);
    // Held until serve stops: dropping it stops the AIA server.
    let _aia = match args.aia_serve {
        Some(listen) => Some(start_aia(args, listen, &certificates)?),
        None => None,
    };
    say(&format!("listening on {addr}"));
    server.run(&stop, &mut |event| {
        if !quiet {
            say(&event.to_string());
        }
    })?;
    say("stopped");
    Ok(())
}

/// What the lab serves and how, before it listens.
fn announce(spec: &LabSpec, certificates: &[boring::x509::X509]) {
    say(&format!(
        "serving {} (key {}), ALPN {}{}",
        spec.chain.display(),
        spec.key.display(),
        spec.alpns.join(","),
        if spec.retry { ", Retry on" } else { "" }
    ));
    if let Some(auth) = &spec.client_auth {
        say(&format!(
            "asks for a client certificate issued under {} ({})",
            auth.ca.display(),
            if auth.required {
                "required: certificate_required (116) without one"
            } else {
                "optional"
            }
        ));
    }
    for line in chain_lines(certificates) {
        say(&line);
    }
}

/// `--aia-serve ADDR`: the scenario's missing issuers at their AIA paths.
fn start_aia(
    args: &ServeArgs,
    listen: std::net::SocketAddr,
    chain: &[boring::x509::X509],
) -> Result<AiaServer, ServeError> {
    let name = args.scenario.clone().unwrap_or_default();
    let dir = find_scenario(&name)
        .ok_or_else(|| ServeError::UnknownScenario(name.clone(), scenario_dirs_tried()))?;
    let path = dir.join("missing-issuer.pem");
    if !path.is_file() {
        return Err(ServeError::Scenario(format!(
            "--aia-serve: {} has no missing-issuer.pem: no missing issuer is known to serve",
            dir.display()
        )));
    }
    let missing = quicprobe_verifier::read_certificates(&path)
        .map_err(|error| ServeError::Scenario(error.to_string()))?;
    let routes = aia::routes(chain, &missing);
    if routes.is_empty() {
        return Err(ServeError::Scenario(format!(
            "--aia-serve: no certificate of {} names a missing issuer in an http:// caIssuers URL",
            dir.display()
        )));
    }
    let server = AiaServer::start(listen, routes.clone())
        .map_err(|error| ServeError::Read(format!("--aia-serve {listen}"), error))?;
    for (path, (url, _)) in &routes {
        say(&format!("AIA: serves {url} (path {path})"));
    }
    say(&format!(
        "AIA: answering http requests on {}",
        server.addr()
    ));
    Ok(server)
}

/// The lab's spec, and for a captured scenario the line that says what it replays.
fn spec(args: &ServeArgs) -> Result<(LabSpec, Option<String>), ServeError> {
    let (chain, key, seen) = match (&args.scenario, &args.chain, &args.key) {
        (Some(name), _, _) => {
            let dir = find_scenario(name)
                .ok_or_else(|| ServeError::UnknownScenario(name.clone(), scenario_dirs_tried()))?;
            let seen = Seen::read(&dir).map_err(ServeError::Scenario)?;
            (dir.join("chain.pem"), dir.join("key.pem"), seen)
        }
        (None, Some(chain), Some(key)) => (chain.clone(), key.clone(), None),
        _ => return Err(ServeError::NothingToServe),
    };
    let mut spec = LabSpec {
        chain,
        key,
        listen: args.listen,
        alpns: args.alpn.clone(),
        retry: args.retry,
        compress_certificates: args.compress_certificates,
        ocsp_response: read_optional(args.ocsp_response.as_deref())?,
        sct_list: read_optional(args.sct_list.as_deref())?,
        client_auth: args.client_ca.clone().map(|ca| ClientAuth {
            ca,
            required: args.require_client_cert,
        }),
        transport_parameters: None,
    };
    let replay = seen.map(|seen| spec.answer_as_seen(&seen));
    Ok((spec, replay))
}

/// What the lab will present, so that a replay says what it replays.
fn chain_lines(certificates: &[boring::x509::X509]) -> Vec<String> {
    if certificates.is_empty() {
        return Vec::new();
    }
    let report = quicprobe_verifier::ChainReport::describe(certificates);
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

/// The size of the Handshake flight the chain makes, on stdout, and on
/// stderr the warning that quiche clients cannot take it, when they cannot:
/// a lab that serves such a chain should say why its clients close with 0xd.
fn flight_lines(certificates: &[boring::x509::X509], quiet: bool) {
    if certificates.is_empty() {
        return;
    }
    let flight = HandshakeFlight::of(certificates);
    if !quiet {
        say(&format!("  {}", flight.describe()));
    }
    if let Some(warning) = flight.warning() {
        eprintln!("quicprobe: WARNING: {warning}");
    }
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
