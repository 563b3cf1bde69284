//! `quicprobe connect`: resolve the targets, build one quiche client
//! configuration with the verifier installed, run every connection on the
//! event loop, and report.

use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boring::ssl::{SslContextBuilder, SslMethod};
use quicprobe_verifier::{
    install, AlertStyle, Analysis, InputError, OnReject, Policy, TrustStore, VerdictSlot,
};
use serde_json::json;

use crate::aia::{run_aia_check, AiaReport, FetchSettings};
use crate::cli::{AlertStyleArg, ConnectArgs, ConnectionOptions};
use crate::event_loop::{self, Job};
use crate::handshake::install_message_callback;
use crate::outcome::{Outcome, OutcomeKind};
use crate::probe::{ProbeSettings, MAX_DATAGRAM};
use crate::target::{Addressing, Family, Target, TargetError};
use crate::trace::{self, TraceStyle};
use crate::trust::load_trust;

/// Why `connect` could not even start.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}")]
    Setup(String),
}

/// What `connect` prints and the exit code it ends with.
pub struct ConnectOutput {
    pub stdout: String,
    pub exit_code: u8,
    pub outcomes: Vec<Outcome>,
}

/// The client side of a run: the trust store, the TLS policy, the QUIC settings.
#[derive(Debug, Clone)]
pub struct ClientSetup {
    pub trust: Arc<TrustStore>,
    pub alert_style: AlertStyle,
    pub alpns: Vec<String>,
    pub idle_timeout: Duration,
    pub keylog: bool,
    /// `--insecure`: a rejected chain does not stop the handshake.
    pub insecure: bool,
    /// `--curves`: the key exchange groups offered, BoringSSL's names.
    pub curves: Option<String>,
    /// `--early-data`: offer 0-RTT when resuming.
    pub early_data: bool,
}

/// Room kept for transport parameters quiche does not know.
const UNKNOWN_PARAMETER_BYTES: usize = 1024;

/// One quiche client configuration, the verifier installed last, and the
/// slot through which the verifier hands each verdict to the event loop.
pub fn quic_config(setup: &ClientSetup) -> Result<(quiche::Config, VerdictSlot), ConnectError> {
    let tls_error = |e: boring::error::ErrorStack| ConnectError::Setup(format!("TLS setup: {e}"));
    let mut builder = SslContextBuilder::new(SslMethod::tls()).map_err(tls_error)?;
    install_message_callback(&mut builder);
    // Offer certificate compression, to report whether the server uses it.
    builder
        .add_certificate_compression_algorithm(crate::compression::Zlib)
        .map_err(tls_error)?;
    // Ask for what a server can staple to its chain, to report it.
    builder.enable_ocsp_stapling();
    builder.enable_signed_cert_timestamps();
    if let Some(curves) = &setup.curves {
        // The key share decides the ClientHello's size: X25519MLKEM768 makes
        // it two Initial datagrams, which doubles the server's first budget.
        builder
            .set_curves_list(curves)
            .map_err(|_| ConnectError::Setup(format!("--curves {curves}: unknown group")))?;
    }
    let mut policy = Policy::new(setup.trust.clone());
    policy.alert_style = setup.alert_style;
    // Pause instead of alerting, so that the close carries 0x100 + alert and
    // the verdict's reason as aioquic's does (BoringSSL's alert path through
    // quiche gives 0x130 and an empty reason).
    policy.on_reject = if setup.insecure {
        OnReject::Continue
    } else {
        OnReject::Pause
    };
    // Installed last: nothing may call SSL_CTX_set_verify after it.
    let slot = install(&mut builder, policy);
    let quic_error = |e: quiche::Error| ConnectError::Setup(format!("QUIC setup: {e}"));
    let mut config = quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, builder)
        .map_err(quic_error)?;
    let alpns: Vec<&[u8]> = setup.alpns.iter().map(|a| a.as_bytes()).collect();
    config.set_application_protos(&alpns).map_err(quic_error)?;
    config.set_max_idle_timeout(u64::try_from(setup.idle_timeout.as_millis()).unwrap_or(u64::MAX));
    config.set_max_recv_udp_payload_size(MAX_DATAGRAM);
    config.set_max_send_udp_payload_size(MAX_DATAGRAM);
    config.set_initial_max_data(10_000_000);
    config.set_initial_max_stream_data_bidi_local(1_000_000);
    config.set_initial_max_stream_data_bidi_remote(1_000_000);
    config.set_initial_max_stream_data_uni(1_000_000);
    config.set_initial_max_streams_bidi(100);
    config.set_initial_max_streams_uni(100);
    config.set_disable_active_migration(true);
    // Parameters quiche does not know tell which implementation the server is.
    config.enable_track_unknown_transport_parameters(UNKNOWN_PARAMETER_BYTES);
    if setup.keylog {
        config.log_keys();
    }
    if setup.early_data {
        config.enable_early_data();
    }
    Ok((config, slot))
}

/// Runs `quicprobe connect`. `quiet` (`-q`) prints only each connection's
/// final line.
pub fn run(args: &ConnectArgs, quiet: bool) -> Result<ConnectOutput, ConnectError> {
    let jobs = jobs(args)?;
    let (setup, mut settings) = prepare(&args.conn, args.trace_style, seconds(args.timeout)?)?;
    settings.hold = args.hold.map(seconds).transpose()?;
    let trust = setup.trust.clone();
    let started = Instant::now();
    let outcomes = run_jobs(jobs, args.concurrency, &setup, &settings)?;
    let wall = started.elapsed();
    let (stdout, outcomes) = if args.repeat > 1 {
        // The summary needs no per-connection explanation.
        (repeat_report(&outcomes, wall, args.json), outcomes)
    } else {
        let mut outcomes = outcomes;
        // Before the explanation: what the fetch finds is its evidence.
        if args.aia_fetch {
            fetch_missing_issuers(&mut outcomes, &trust, args.aia_connect_to);
        }
        let outcomes = explain_chains(outcomes, &trust);
        (
            per_connection_report(&outcomes, args.trace_style, args.json, quiet),
            outcomes,
        )
    };
    if let Some(path) = &args.json_file {
        write_json_lines(path, &outcomes)?;
    }
    Ok(ConnectOutput {
        stdout,
        exit_code: overall_exit_code(&outcomes),
        outcomes,
    })
}

/// `--json-file`: the outcomes as JSON Lines.
fn write_json_lines(path: &std::path::Path, outcomes: &[Outcome]) -> Result<(), ConnectError> {
    let text: String = outcomes
        .iter()
        .map(|outcome| format!("{}\n", outcome.to_json()))
        .collect();
    std::fs::write(path, text).map_err(|e| ConnectError::Setup(format!("{}: {e}", path.display())))
}

/// `--aia-fetch`: for each chain rejected for a missing issuer with an AIA
/// URL, fetch it and verify again, after the event loop (a fetch blocks).
fn fetch_missing_issuers(
    outcomes: &mut [Outcome],
    trust: &TrustStore,
    connect_to: Option<std::net::SocketAddr>,
) {
    let settings = FetchSettings {
        connect_to,
        ..FetchSettings::default()
    };
    for outcome in outcomes {
        let Some(checked) = outcome.checked.as_ref().filter(|c| !c.verdict.accepted) else {
            continue;
        };
        let name = checked.verdict.peer_name.clone();
        outcome.aia = run_aia_check(&checked.chain, trust, name.as_ref(), &settings);
    }
}

/// Runs jobs on one event loop with one client configuration.
pub fn run_jobs(
    jobs: Vec<Job>,
    concurrency: usize,
    setup: &ClientSetup,
    settings: &ProbeSettings,
) -> Result<Vec<Outcome>, ConnectError> {
    let (mut config, slot) = quic_config(setup)?;
    event_loop::run(jobs, concurrency, &mut config, &slot, settings)
        .map_err(|e| ConnectError::Setup(format!("event loop: {e}")))
}

/// Adds the verifier's explanation to every outcome that saw a chain.
pub fn explain_chains(mut outcomes: Vec<Outcome>, trust: &TrustStore) -> Vec<Outcome> {
    for outcome in &mut outcomes {
        if let Some(checked) = &outcome.checked {
            let name = checked.verdict.peer_name.clone();
            let fetched = outcome
                .aia
                .as_ref()
                .map(AiaReport::evidence)
                .unwrap_or_default();
            let evidence = crate::trust::evidence(trust, !checked.verdict.accepted, &fetched);
            outcome.analysis = Some(Analysis::explain_with(
                checked.verdict.clone(),
                &checked.chain,
                trust,
                name.as_ref(),
                evidence,
            ));
        }
    }
    outcomes
}

fn jobs(args: &ConnectArgs) -> Result<Vec<Job>, ConnectError> {
    if args.repeat == 0 || args.concurrency == 0 {
        return Err(ConnectError::Setup(
            "--repeat and --concurrency must be at least 1".into(),
        ));
    }
    let addressing = addressing(&args.conn);
    let mut jobs = Vec::new();
    for text in &args.targets {
        let target = Target::parse(text)?;
        let addrs = target.addresses(&addressing)?;
        for _ in 0..args.repeat {
            jobs.push(Job {
                target: target.clone(),
                addr: addrs[0],
                fallbacks: addrs[1..].to_vec(),
            });
        }
    }
    Ok(jobs)
}

/// Said once per run on stderr, even with -q (not through the logger, which
/// -q silences): `--insecure` never goes quietly.
fn warn_insecure() {
    eprintln!(
        "quicprobe: WARNING: --insecure: certificate verification failures will NOT stop \
         the connection (each one is still reported)"
    );
}

/// The client side of a run from the shared options: trust, TLS, QUIC and
/// per-connection settings. Warns about `--insecure` and makes the qlog
/// directory; `timeout` is the command's own.
pub fn prepare(
    conn: &ConnectionOptions,
    trace_style: TraceStyle,
    timeout: Duration,
) -> Result<(ClientSetup, ProbeSettings), ConnectError> {
    let trust = Arc::new(load_trust(&conn.trust)?);
    let keylog = conn
        .keylog
        .clone()
        .or_else(|| std::env::var_os("SSLKEYLOGFILE").map(PathBuf::from));
    let setup = ClientSetup {
        trust,
        alert_style: alert_style(conn, trace_style),
        alpns: conn.alpn.clone(),
        idle_timeout: seconds(conn.idle_timeout)?,
        keylog: keylog.is_some(),
        insecure: conn.insecure,
        curves: conn.curves.clone(),
        early_data: conn.early_data,
    };
    if conn.insecure {
        warn_insecure();
    }
    let settings = ProbeSettings {
        alpns: conn.alpn.clone(),
        sni: conn.sni.clone(),
        timeout,
        keylog,
        qlog_dir: conn
            .qlog_dir
            .clone()
            .or_else(|| std::env::var_os("QLOGDIR").map(PathBuf::from)),
        insecure: conn.insecure,
        idle_timeout: setup.idle_timeout,
        hold: None,
        session_file: conn.session_file.clone(),
        early_data: conn.early_data,
        local_ports: conn.local_port,
    };
    if let Some(dir) = &settings.qlog_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| ConnectError::Setup(format!("{}: {e}", dir.display())))?;
    }
    Ok((setup, settings))
}

/// `--resolve`, `--connect-to`, `-4`/`-6`.
pub fn addressing(conn: &ConnectionOptions) -> Addressing {
    Addressing {
        resolve: conn.resolve.clone(),
        connect_to: conn.connect_to.clone(),
        family: Family::from_flags(conn.ipv4, conn.ipv6),
    }
}

/// `--alert-style`, or aioquic's when the trace is to read like aioquic's.
fn alert_style(conn: &ConnectionOptions, trace_style: TraceStyle) -> AlertStyle {
    match conn.alert_style {
        Some(AlertStyleArg::Strict) => AlertStyle::Strict,
        Some(AlertStyleArg::Aioquic) => AlertStyle::Aioquic,
        Some(AlertStyleArg::Boringssl) => AlertStyle::Boringssl,
        None if trace_style == TraceStyle::Aioquic => AlertStyle::Aioquic,
        None => AlertStyle::Strict,
    }
}

/// A positive number of seconds from the command line.
pub fn seconds(value: f64) -> Result<Duration, ConnectError> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| ConnectError::Setup(format!("{value}: not a positive number of seconds")))
}

/// The first failure's exit code, or 0 when every connection succeeded.
pub fn overall_exit_code(outcomes: &[Outcome]) -> u8 {
    outcomes
        .iter()
        .map(Outcome::exit_code)
        .find(|code| *code != 0)
        .unwrap_or(0)
}

fn per_connection_report(
    outcomes: &[Outcome],
    style: TraceStyle,
    json: bool,
    quiet: bool,
) -> String {
    let mut out = String::new();
    for (index, outcome) in outcomes.iter().enumerate() {
        if json {
            let _ = writeln!(out, "{}", outcome.to_json());
            continue;
        }
        if quiet && style == TraceStyle::Native {
            let _ = writeln!(out, "{}", trace::summary_line(outcome));
            continue;
        }
        out.push_str(&trace::render(outcome, style, index));
        // The native trace ends with it already; a JSON stream must stay JSON.
        if style == TraceStyle::Aioquic {
            let _ = writeln!(out, "{}", trace::summary_line(outcome));
        }
    }
    out
}

/// `--repeat`: how many succeeded, and handshake times among those.
fn repeat_report(outcomes: &[Outcome], wall: Duration, json: bool) -> String {
    let mut times: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Ok)
        .filter_map(|o| o.handshake_ms)
        .collect();
    times.sort_by(f64::total_cmp);
    let successes = outcomes
        .iter()
        .filter(|o| o.kind == OutcomeKind::Ok)
        .count();
    let median = percentile(&times, 50);
    let p90 = percentile(&times, 90);
    let rate = outcomes.len() as f64 / wall.as_secs_f64().max(1e-9);
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| o.kind != OutcomeKind::Ok)
        .take(5)
        .map(trace::summary_line)
        .collect();
    if json {
        return format!(
            "{}\n",
            json!({
                "connections": outcomes.len(),
                "successes": successes,
                "median_handshake_ms": median,
                "p90_handshake_ms": p90,
                "wall_ms": wall.as_secs_f64() * 1000.0,
                "handshakes_per_second": rate,
                "exit_code": overall_exit_code(outcomes),
            })
        );
    }
    let mut out = format!(
        "{successes}/{} connections succeeded in {:.2} s ({rate:.0} handshakes/s); \
         handshake median {} ms, p90 {} ms\n",
        outcomes.len(),
        wall.as_secs_f64(),
        median.map_or_else(|| "-".into(), |m| format!("{m:.1}")),
        p90.map_or_else(|| "-".into(), |m| format!("{m:.1}")),
    );
    for line in failures {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], percent: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}
