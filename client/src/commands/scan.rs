//! `quicprobe scan`: every target of a file on one event loop, a bounded
//! number at a time, names resolved by a small pool of threads beside it,
//! one JSON line per target as it ends, then a summary.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quicprobe_verifier::{AlertStyle, InputError};

use crate::cli::setup::{chain_files, seconds};
use crate::cli::trust::load_trust;
use crate::cli::ScanArgs;
use crate::engine::client_identity::ClientIdentity;
use crate::engine::config::{quic_config, ClientSetup, ConnectError};
use crate::engine::event_loop::EventLoop;
use crate::engine::probe::ProbeSettings;
use crate::scan::{self, Resolver, ScanFeed, ScanReport};

/// The idle timeout offered to servers; a scan closes as soon as the
/// handshake is done, so it only has to outlast that.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a scan could not start, or stopped (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("--targets {0}")]
    TargetsFile(#[from] scan::TargetsFileError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Setup(#[from] ConnectError),
    #[error("scan: {0}")]
    Io(#[from] io::Error),
}

impl crate::exit::Failure for ScanError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Setup(error) => error.exit_code(),
            _ => crate::exit::USAGE,
        }
    }
}

/// Runs `quicprobe scan`, writing JSON Lines to `out` as targets end, in
/// the order they end; returns the exit code.
pub fn run(args: &ScanArgs, out: &mut dyn Write) -> Result<u8, ScanError> {
    run_with_resolver(args, scan::system_resolver(), out)
}

/// `run`, with names looked up by `resolver` (tests make lookups slow or fail).
pub fn run_with_resolver(
    args: &ScanArgs,
    resolver: Resolver,
    out: &mut dyn Write,
) -> Result<u8, ScanError> {
    let mut settings = probe_settings(args)?;
    let lines = scan::read_targets_file(&args.targets)?;
    let trust = Arc::new(load_trust(&args.trust)?);
    let identity = crate::cli::setup::client_identity(&args.client_cert)?;
    let setup = ClientSetup {
        trust: trust.clone(),
        alert_style: AlertStyle::Strict,
        alpns: args.alpn.clone(),
        idle_timeout: IDLE_TIMEOUT,
        keylog: false,
        insecure: false,
        curves: None,
        early_data: false,
        identity: identity.clone(),
    };
    settings.client_certificate = identity.as_ref().map(ClientIdentity::summary);
    let (mut config, slot) = quic_config(&setup)?;
    let event_loop = EventLoop::new(args.concurrency)?;
    let started = Instant::now();
    let mut feed = ScanFeed::new(&lines, trust, ScanReport::new(out));
    feed.chains = chain_files(args.save_chain.as_deref(), true)?;
    let lookups = feed.route_lines(&args.resolve)?;
    feed.answers = Some(scan::spawn_resolvers(
        lookups,
        scan::RESOLVER_THREADS,
        resolver,
        event_loop.waker(),
    )?);
    event_loop.run(&mut feed, &mut config, &slot, &settings)?;
    feed.report_unanswered()?;
    Ok(feed.report.finish(started.elapsed())?)
}

fn probe_settings(args: &ScanArgs) -> Result<ProbeSettings, ScanError> {
    if args.concurrency == 0 {
        return Err(ScanError::Usage("--concurrency must be at least 1".into()));
    }
    let timeout = seconds("--connect-timeout", args.timeout)?;
    Ok(ProbeSettings::plain(
        args.alpn.clone(),
        timeout,
        IDLE_TIMEOUT,
    ))
}
