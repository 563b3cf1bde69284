//! `quicprobe connect`: resolve the targets, build one quiche client
//! configuration with the verifier installed, run every connection on the
//! event loop, and report.

use std::fmt::Write;
use std::time::{Duration, Instant};

use quicprobe_verifier::TrustStore;
use serde_json::json;

use crate::aia::{run_aia_check, FetchSettings};
use crate::cli::setup::{addressing, prepare, seconds, writable_file, write_out_format};
use crate::cli::ConnectArgs;
use crate::engine::config::{run_jobs, ConnectError};
use crate::engine::event_loop::Job;
use crate::engine::outcome::overall_exit_code;
use crate::engine::outcome::{Outcome, OutcomeKind};
use crate::engine::target::Target;
use crate::report::explain::explain_chains;
use crate::report::trace::{self, TraceStyle};
use crate::report::write_out::WriteOut;

/// What `connect` prints and the exit code it ends with.
pub struct ConnectOutput {
    pub stdout: String,
    pub exit_code: u8,
    pub outcomes: Vec<Outcome>,
}

/// Runs `quicprobe connect`. `quiet` (`-q`) prints only each connection's
/// final line.
pub fn run(args: &ConnectArgs, quiet: bool) -> Result<ConnectOutput, ConnectError> {
    // Every flag and output file is checked before any name is looked up.
    let (setup, mut settings) = prepare(&args.conn, args.trace_style)?;
    let format = write_out_format(args.conn.write_out.as_deref())?;
    if let Some(path) = &args.json_file {
        writable_file("--json-file", path)?;
    }
    let jobs = jobs(args)?;
    settings.hold = args.hold.map(|hold| seconds("--hold", hold)).transpose()?;
    let trust = setup.trust.clone();
    let started = Instant::now();
    let outcomes = run_jobs(jobs, args.concurrency, &setup, &settings)?;
    let wall = started.elapsed();
    let (stdout, outcomes) = if args.repeat > 1 {
        // The summary needs no per-connection explanation.
        let mut stdout = repeat_report(&outcomes, wall, args.json);
        for outcome in &outcomes {
            write_out(format.as_ref(), outcome, &mut stdout);
        }
        (stdout, outcomes)
    } else {
        let mut outcomes = outcomes;
        // Before the explanation: what the fetch finds is its evidence.
        if args.aia_fetch {
            fetch_missing_issuers(&mut outcomes, &trust, args.aia_connect_to);
        }
        let outcomes = explain_chains(outcomes, &trust);
        let mut stdout = String::new();
        for (index, outcome) in outcomes.iter().enumerate() {
            stdout.push_str(&per_connection_report(
                outcome,
                index,
                args.trace_style,
                args.json,
                quiet,
            ));
            write_out(format.as_ref(), outcome, &mut stdout);
        }
        (stdout, outcomes)
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
    std::fs::write(path, text).map_err(|source| ConnectError::File {
        flag: "--json-file",
        path: path.to_owned(),
        source,
    })
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
        let Some(checked) = outcome
            .chain
            .checked
            .as_ref()
            .filter(|c| !c.verdict.accepted)
        else {
            continue;
        };
        let name = checked.verdict.peer_name.clone();
        outcome.chain.aia = run_aia_check(&checked.chain, trust, name.as_ref(), &settings);
    }
}

fn jobs(args: &ConnectArgs) -> Result<Vec<Job>, ConnectError> {
    if args.repeat == 0 || args.concurrency == 0 {
        return Err(ConnectError::Usage(
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

/// `-w`: one finished connection's write-out, after its report; the
/// `%{stderr}` part goes to stderr.
fn write_out(format: Option<&WriteOut>, outcome: &Outcome, stdout: &mut String) {
    let Some(rendered) = format.map(|f| f.render(outcome)) else {
        return;
    };
    stdout.push_str(&rendered.stdout);
    eprint!("{}", rendered.stderr);
}

/// What one connection prints: its JSON, its summary line (`-q`) or its trace.
fn per_connection_report(
    outcome: &Outcome,
    index: usize,
    style: TraceStyle,
    json: bool,
    quiet: bool,
) -> String {
    let mut out = String::new();
    if json {
        let _ = writeln!(out, "{}", outcome.to_json());
        return out;
    }
    if quiet && style == TraceStyle::Native {
        let _ = writeln!(out, "{}", trace::summary_line(outcome));
        return out;
    }
    out.push_str(&trace::render(outcome, style, index));
    // The native trace ends with it already; a JSON stream must stay JSON.
    if style == TraceStyle::Aioquic {
        let _ = writeln!(out, "{}", trace::summary_line(outcome));
    }
    out
}

/// `--repeat`: how many succeeded, and handshake times among those.
fn repeat_report(outcomes: &[Outcome], wall: Duration, json: bool) -> String {
    let mut times: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.end.kind == OutcomeKind::Ok)
        .filter_map(|o| o.handshake.handshake_ms)
        .collect();
    times.sort_by(f64::total_cmp);
    let successes = outcomes
        .iter()
        .filter(|o| o.end.kind == OutcomeKind::Ok)
        .count();
    let median = percentile(&times, 50);
    let p90 = percentile(&times, 90);
    // Handshakes per second count only those that completed: with none,
    // there is no rate to report.
    let rate = (successes > 0).then(|| successes as f64 / wall.as_secs_f64().max(1e-9));
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| o.end.kind != OutcomeKind::Ok)
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
    let mut out = match rate {
        Some(rate) => format!(
            "{successes}/{} connections succeeded in {:.2} s ({rate:.0} handshakes/s); \
             handshake median {} ms, p90 {} ms\n",
            outcomes.len(),
            wall.as_secs_f64(),
            median.map_or_else(|| "-".into(), |m| format!("{m:.1}")),
            p90.map_or_else(|| "-".into(), |m| format!("{m:.1}")),
        ),
        None => format!(
            "0/{} connections succeeded in {:.2} s: no handshake completed\n",
            outcomes.len(),
            wall.as_secs_f64(),
        ),
    };
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use serde_json::Value;

    use super::*;

    fn outcome(kind: OutcomeKind, handshake_ms: Option<f64>) -> Outcome {
        let mut outcome = Outcome::bare(
            kind,
            "localhost:443".into(),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443),
            "00".into(),
            Vec::new(),
        );
        outcome.handshake.handshake_ms = handshake_ms;
        outcome
    }

    #[test]
    fn without_a_success_the_repeat_summary_gives_no_rate() {
        let outcomes = vec![outcome(OutcomeKind::Timeout, None); 3];
        let json: Value =
            serde_json::from_str(&repeat_report(&outcomes, Duration::from_secs(1), true))
                .expect("JSON");
        assert_eq!(json["successes"], 0);
        assert_eq!(json["handshakes_per_second"], Value::Null);
        let text = repeat_report(&outcomes, Duration::from_secs(1), false);
        assert!(text.starts_with("0/3 connections succeeded"), "{text}");
        assert!(!text.contains("handshakes/s"), "{text}");
    }

    #[test]
    fn the_rate_counts_completed_handshakes_only() {
        let outcomes = vec![
            outcome(OutcomeKind::Ok, Some(2.0)),
            outcome(OutcomeKind::Ok, Some(4.0)),
            outcome(OutcomeKind::Timeout, None),
            outcome(OutcomeKind::Timeout, None),
        ];
        let json: Value =
            serde_json::from_str(&repeat_report(&outcomes, Duration::from_secs(2), true))
                .expect("JSON");
        assert_eq!(json["successes"], 2);
        assert_eq!(json["handshakes_per_second"], 1.0);
    }
}
