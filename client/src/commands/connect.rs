//! `quicprobe connect`: resolve the targets, build one quiche client
//! configuration with the verifier installed, run every connection on the
//! event loop, and report.

use std::fmt::Write;
use std::time::{Duration, Instant};

use quicprobe_verifier::TrustStore;
use serde_json::json;

use crate::aia::{run_aia_check, FetchSettings};
use crate::capture;
use crate::cli::setup::{
    addressing, chain_files, prepare, seconds, wants_body_digest, writable_file, write_out_format,
};
use crate::cli::ConnectArgs;
use crate::commands::live::{LiveFeed, Show};
use crate::engine::config::{run_feed, ConnectError};
use crate::engine::event_loop::Job;
use crate::engine::outcome::overall_exit_code;
use crate::engine::outcome::{Outcome, OutcomeKind};
use crate::engine::target::Target;
use crate::exit;
use crate::report::explain::explain_chain;
use crate::report::write_out::WriteOut;

/// What `connect` prints on stdout at the end (the trace went to stderr as
/// it happened) and the exit code it ends with.
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
    let json_output = args.json || args.json_file.is_some() || args.trace_style.is_data();
    settings.body_digest = wants_body_digest(json_output, format.as_ref());
    if let Some(path) = &args.json_file {
        writable_file("--json-file", path)?;
    }
    if let Some(dir) = &args.save_scenario {
        capture::scenario::check_folder(dir, args.force).map_err(|_| ConnectError::File {
            flag: "--save-scenario",
            path: dir.clone(),
            source: std::io::Error::other(capture::scenario::OCCUPIED),
        })?;
    }
    let jobs = jobs(args)?;
    settings.hold = args.hold.map(|hold| seconds("--hold", hold)).transpose()?;
    let trust = setup.trust.clone();
    let planned = jobs.len();
    let repeat = args.repeat > 1;
    let aia_fetch = args.aia_fetch.then_some(args.aia_connect_to);
    // Each connection is explained as it ends, so that its trace can end
    // with the explanation; the AIA fetch first, its evidence.
    let chains = chain_files(args.conn.save_chain.as_deref(), planned > 1)?;
    let finish = |index: usize, mut outcome: Outcome| {
        if let Some(files) = &chains {
            files.save(index + 1, &mut outcome);
        }
        if repeat {
            // The summary needs no per-connection explanation.
            return outcome;
        }
        if let Some(connect_to) = aia_fetch {
            fetch_missing_issuers(&mut outcome, &trust, connect_to);
        }
        explain_chain(outcome, &trust)
    };
    let mut feed = LiveFeed::new(jobs, args.concurrency, show(args, quiet), finish);
    // Ctrl-C during a run of several connections reports those that ended.
    let stop = (planned > 1).then(|| feed.stop_flag());
    let started = Instant::now();
    run_feed(&mut feed, args.concurrency, &setup, &settings, stop)?;
    let wall = started.elapsed();
    let interrupted = feed.was_stopped();
    let outcomes = feed.into_outcomes();
    let run = RunSummary {
        planned,
        wall,
        interrupted,
    };
    let stdout = if repeat {
        let mut stdout = repeat_report(&outcomes, &run, args.json);
        for outcome in &outcomes {
            write_out(format.as_ref(), outcome, &mut stdout);
        }
        stdout
    } else {
        if interrupted {
            eprintln!("{}", run.interrupted_line(outcomes.len()));
        }
        per_connection_data(&outcomes, args.json, format.as_ref())
    };
    if let Some(path) = &args.json_file {
        write_json_lines(path, &outcomes)?;
    }
    let captured = save_scenario(args, &outcomes, &trust);
    let exit_code = if interrupted {
        exit::INTERRUPTED
    } else {
        captured.unwrap_or_else(|| overall_exit_code(&outcomes))
    };
    Ok(ConnectOutput {
        stdout,
        exit_code,
        outcomes,
    })
}

/// `--save-scenario DIR`: the one connection captured as a scenario. What
/// was written goes to stderr; a failure to write it is the run's exit code
/// (23), any other failure to capture is said and leaves the code alone.
fn save_scenario(args: &ConnectArgs, outcomes: &[Outcome], trust: &TrustStore) -> Option<u8> {
    let (dir, outcome) = (args.save_scenario.as_ref()?, outcomes.first()?);
    match capture::save_scenario(outcome, trust, &args.rename, dir, args.force) {
        Ok(written) => {
            eprint!("{}", crate::commands::clone::summary(&written));
            None
        }
        Err(error) => {
            eprintln!("quicprobe: --save-scenario {}: {error}", dir.display());
            error.is_write_error().then_some(exit::WRITE_ERROR)
        }
    }
}

/// What is printed of each connection as it goes: with `--json` nothing
/// (the objects come at the end, in job order), with `--repeat` the last
/// line of the first failures, with `-q` each last line, else the trace.
fn show(args: &ConnectArgs, quiet: bool) -> Show {
    if args.json {
        Show::Nothing
    } else if args.repeat > 1 {
        Show::Failures {
            limit: FAILURES_SHOWN,
        }
    } else if quiet && !args.trace_style.is_data() {
        Show::SummaryLine
    } else {
        Show::Trace(args.trace_style)
    }
}

/// With `--repeat`, how many failing connections get their last line.
const FAILURES_SHOWN: usize = 5;

/// How a run went as a whole.
struct RunSummary {
    planned: usize,
    wall: Duration,
    /// Ctrl-C stopped it.
    interrupted: bool,
}

impl RunSummary {
    fn interrupted_line(&self, ended: usize) -> String {
        format!(
            "quicprobe: interrupted after {:.2} s: {ended} of {} connections ended; \
             the rest were abandoned",
            self.wall.as_secs_f64(),
            self.planned
        )
    }
}

/// What goes to stdout for each connection, in job order: its JSON object
/// (`--json`, one per line), then its `-w` write-out.
fn per_connection_data(outcomes: &[Outcome], json: bool, format: Option<&WriteOut>) -> String {
    let mut stdout = String::new();
    for outcome in outcomes {
        if json {
            let _ = writeln!(stdout, "{}", outcome.to_json());
        }
        write_out(format, outcome, &mut stdout);
    }
    stdout
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

/// `--aia-fetch`: a chain rejected for a missing issuer with an AIA URL
/// gets it fetched and verified again. A fetch blocks the loop (2 s, up to 4
/// hops at most), which only connections in flight beside it notice.
fn fetch_missing_issuers(
    outcome: &mut Outcome,
    trust: &TrustStore,
    connect_to: Option<std::net::SocketAddr>,
) {
    let settings = FetchSettings {
        connect_to,
        ..FetchSettings::default()
    };
    let Some(checked) = outcome
        .chain
        .checked
        .as_ref()
        .filter(|c| !c.verdict.accepted)
    else {
        return;
    };
    let name = checked.verdict.peer_name.clone();
    outcome.chain.aia = run_aia_check(&checked.chain, trust, name.as_ref(), &settings);
}

fn jobs(args: &ConnectArgs) -> Result<Vec<Job>, ConnectError> {
    if args.repeat == 0 || args.concurrency == 0 {
        return Err(ConnectError::Usage(
            "--repeat and --concurrency must be at least 1".into(),
        ));
    }
    if args.save_scenario.is_some() && (args.repeat > 1 || args.targets.len() > 1) {
        return Err(ConnectError::Usage(
            "--save-scenario captures one connection: give one target and no --repeat".into(),
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

/// `-w`: one finished connection's write-out, after its data; the
/// `%{stderr}` part goes to stderr.
fn write_out(format: Option<&WriteOut>, outcome: &Outcome, stdout: &mut String) {
    let Some(rendered) = format.map(|f| f.render(outcome)) else {
        return;
    };
    stdout.push_str(&rendered.stdout);
    eprint!("{}", rendered.stderr);
}

/// `--repeat`: how many succeeded, and handshake times among those. The
/// failures' last lines went to stderr as they ended (the first few); this
/// comes last, on stdout.
fn repeat_report(outcomes: &[Outcome], run: &RunSummary, json: bool) -> String {
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
    let wall = run.wall.as_secs_f64();
    // Handshakes per second count only those that completed: with none,
    // there is no rate to report.
    let rate = (successes > 0).then(|| successes as f64 / wall.max(1e-9));
    if json {
        return format!(
            "{}\n",
            json!({
                "connections": outcomes.len(),
                "planned": run.planned,
                "interrupted": run.interrupted,
                "successes": successes,
                "median_handshake_ms": median,
                "p90_handshake_ms": p90,
                "wall_ms": wall * 1000.0,
                "handshakes_per_second": rate,
                "exit_code": if run.interrupted { exit::INTERRUPTED } else { overall_exit_code(outcomes) },
            })
        );
    }
    let mut out = String::new();
    let unshown = (outcomes.len() - successes).saturating_sub(FAILURES_SHOWN);
    if unshown > 0 {
        let _ = writeln!(out, "({unshown} more failed connections not shown)");
    }
    if run.interrupted {
        let _ = writeln!(out, "{}", run.interrupted_line(outcomes.len()));
    }
    let _ = match rate {
        Some(rate) => writeln!(
            out,
            "{successes}/{} connections succeeded in {wall:.2} s ({rate:.0} handshakes/s); \
             handshake median {} ms, p90 {} ms",
            outcomes.len(),
            median.map_or_else(|| "-".into(), |m| format!("{m:.1}")),
            p90.map_or_else(|| "-".into(), |m| format!("{m:.1}")),
        ),
        None => writeln!(
            out,
            "0/{} connections succeeded in {wall:.2} s: no handshake completed",
            outcomes.len(),
        ),
    };
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

    fn run(seconds: u64) -> RunSummary {
        RunSummary {
            planned: 4,
            wall: Duration::from_secs(seconds),
            interrupted: false,
        }
    }

    #[test]
    fn without_a_success_the_repeat_summary_gives_no_rate() {
        let outcomes = vec![outcome(OutcomeKind::Timeout, None); 3];
        let json: Value =
            serde_json::from_str(&repeat_report(&outcomes, &run(1), true)).expect("JSON");
        assert_eq!(json["successes"], 0);
        assert_eq!(json["handshakes_per_second"], Value::Null);
        let text = repeat_report(&outcomes, &run(1), false);
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
            serde_json::from_str(&repeat_report(&outcomes, &run(2), true)).expect("JSON");
        assert_eq!(json["successes"], 2);
        assert_eq!(json["handshakes_per_second"], 1.0);
    }
}
