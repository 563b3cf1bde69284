//! `quicprobe demo`: the seed case, end to end, with nothing to install. The
//! lab runs in-process on 127.0.0.1 at an ephemeral port, first with the full
//! chain, then with the leaf alone; quicprobe connects to each strictly.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use quicprobe_verifier::{AlertStyle, ClientFamily, TrustStore};

use crate::cli::DemoArgs;
use crate::commands::live::{LiveFeed, Show};
use crate::engine::config::{run_feed, ClientSetup, ConnectError};
use crate::engine::event_loop::Job;
use crate::engine::outcome::{Outcome, OutcomeKind};
use crate::engine::probe::ProbeSettings;
use crate::engine::request::RequestSpec;
use crate::engine::target::Target;
use crate::exit;
use crate::lab::scenario::{find_scenario, scenario_dirs_tried};
use crate::lab::{self, LabError, LabEvent, LabSpec};
use crate::report::explain::explain_chain;
use crate::report::trace::TraceStyle;

/// One act of the demo: a scenario and what must happen.
struct Act {
    title: &'static str,
    scenario: &'static str,
    expected: OutcomeKind,
}

const ACTS: [Act; 2] = [
    Act {
        title: "The server sends its full chain (leaf + intermediate)",
        scenario: "full-chain",
        expected: OutcomeKind::Ok,
    },
    Act {
        title: "The seed case: the server sends its leaf only",
        scenario: "leaf-only",
        expected: OutcomeKind::VerificationFailed,
    },
];

/// What the demo prints on stdout at the end (`--json`; the acts went to
/// stderr as they played) and whether both acts went as expected.
pub struct DemoOutput {
    pub stdout: String,
    pub exit_code: u8,
}

/// Why the demo could not play.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Its scenarios are not where quicprobe looks (the current directory's
    /// certs/, the installed one, the source checkout's): the name and where.
    #[error("scenario {0} not found (looked in {1})")]
    ScenarioNotFound(String, String),
    #[error("lab: {0}")]
    Lab(#[from] LabError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The event loop ended without an outcome for the demo's connection.
    #[error("no outcome")]
    NoOutcome,
}

impl crate::exit::Failure for DemoError {}

/// Runs both acts: each act's trace on stderr as it happens, as `connect`
/// prints it, then what the lab saw and the verdict matrix. `quiet` (`-q`)
/// prints each act's last line only.
pub fn run(args: &DemoArgs, quiet: bool) -> Result<DemoOutput, DemoError> {
    let mut json = String::new();
    let mut as_expected = true;
    let show = match (args.json, quiet) {
        (true, _) => Show::Nothing,
        (false, true) => Show::SummaryLine,
        (false, false) => Show::Trace(TraceStyle::Native),
    };
    let chatty = show == Show::Trace(TraceStyle::Native);
    for (number, act) in ACTS.iter().enumerate() {
        if chatty {
            eprintln!("== {}. {}", number + 1, act.title);
        }
        let (outcome, server_saw) = play(act, show)?;
        let matched = outcome.end.kind == act.expected;
        as_expected &= matched;
        if args.json {
            let _ = writeln!(json, "{}", outcome.to_json());
        } else if chatty {
            eprint!("{}", act_epilogue(act, &outcome, &server_saw, matched));
        }
    }
    if !args.json {
        eprintln!(
            "demo: {}",
            if as_expected {
                "both outcomes as expected (full chain: ok; leaf only: verification failed, exit 60)"
            } else {
                "an outcome was NOT the expected one"
            }
        );
    }
    Ok(DemoOutput {
        stdout: json,
        exit_code: if as_expected {
            exit::OK
        } else {
            exit::HANDSHAKE_FAILED
        },
    })
}

/// After an act's trace: what the lab saw, which clients would accept the
/// chain, and whether the act went as expected.
fn act_epilogue(act: &Act, outcome: &Outcome, server_saw: &[String], matched: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "* The lab saw: {}", server_saw.join("; "));
    if let Some(analysis) = &outcome.chain.analysis {
        out.push_str(&verdict_matrix(analysis));
    }
    if !matched {
        let _ = writeln!(
            out,
            "demo: expected {}, got {}",
            act.expected.name(),
            outcome.end.kind.name()
        );
    }
    out.push('\n');
    out
}

/// Serves the act's scenario in-process and connects to it once, showing
/// on stderr what `show` says as it goes.
fn play(act: &Act, show: Show) -> Result<(Outcome, Vec<String>), DemoError> {
    let dir = find_scenario(act.scenario).ok_or_else(|| {
        DemoError::ScenarioNotFound(act.scenario.to_owned(), scenario_dirs_tried())
    })?;
    let listen = "127.0.0.1:0".parse().expect("literal address");
    let lab = lab::spawn(LabSpec::for_scenario(&dir, listen))?;
    let trust =
        Arc::new(TrustStore::from_pem_files(&[dir.join("roots.pem")]).map_err(ConnectError::from)?);
    let host = std::fs::read_to_string(dir.join("host")).unwrap_or_else(|_| "localhost".into());
    let target = Target {
        host: host.trim().to_owned(),
        port: lab.addr().port(),
        path: "/".into(),
        requests: vec![RequestSpec::get("/")],
    };
    let setup = ClientSetup {
        trust: trust.clone(),
        alert_style: AlertStyle::Strict,
        alpns: vec!["h3".into()],
        idle_timeout: Duration::from_secs(30),
        keylog: false,
        insecure: false,
        curves: None,
        early_data: false,
        identity: None,
    };
    let settings = ProbeSettings::plain(
        setup.alpns.clone(),
        Duration::from_secs(10),
        setup.idle_timeout,
    );
    let mut feed = LiveFeed::new(vec![Job::new(target, lab.addr())], 1, show, |_, outcome| {
        explain_chain(outcome, &trust)
    });
    run_feed(&mut feed, 1, &setup, &settings, None)?;
    let outcome = feed
        .into_outcomes()
        .into_iter()
        .next()
        .ok_or(DemoError::NoOutcome)?;
    let server_saw = lab_events(&lab);
    let _ = lab.stop();
    Ok((outcome, server_saw))
}

/// What the lab logged about the connection, until it closed it.
fn lab_events(lab: &lab::LabHandle) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(event) = lab.next_event(Duration::from_secs(3)) {
        let done = matches!(event, LabEvent::Closed { .. });
        seen.push(event.to_string());
        if done {
            break;
        }
    }
    seen
}

/// Which client families would have accepted this chain.
fn verdict_matrix(analysis: &quicprobe_verifier::Analysis) -> String {
    let mut out = String::from("* Verdict matrix (same chain, same roots):\n");
    for family in ClientFamily::ALL {
        let accepted = analysis.accepted_by.get(family.key()).copied() == Some(true);
        let _ = writeln!(
            out,
            "*   {:<20} {}",
            family.label(),
            if accepted { "accepts" } else { "rejects" }
        );
    }
    out
}
