//! quicprobe against aioquic, the client of the original report: both dial
//! the same lab server, and
//! - `--trace-style aioquic` must give the same lines aioquic logs (timestamps
//!   and connection IDs aside, and without aioquic's loss-recovery and
//!   bookkeeping lines, see `COMPARED`);
//! - the lab must receive the same CONNECTION_CLOSE code from both.
//!
//! aioquic comes from the venv `scripts/setup` makes; its absence is a failure.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use quicprobe::lab::{self, LabHandle, LabSpec};

mod support;

use support::{python, repo, scenario, start_aioquic_server, PeerServer};

fn start_lab(scenario: &str) -> LabHandle {
    start_lab_with(scenario, false)
}

fn start_lab_with(scenario: &str, retry: bool) -> LabHandle {
    let dir = repo().join("certs").join(scenario);
    let mut spec = LabSpec::for_scenario(&dir, "127.0.0.1:0".parse().unwrap());
    spec.retry = retry;
    lab::spawn(spec).unwrap()
}

/// The name a scenario's client dials.
fn host_of(scenario: &str) -> String {
    support::read_line(&repo().join("certs").join(scenario).join("host"))
}

/// aioquic's DEBUG log lines of the `quic` logger, and its result line.
fn aioquic_run(scenario: &str, port: u16) -> (Vec<String>, String) {
    let roots = repo().join("certs").join(scenario).join("roots.pem");
    let output = Command::new(python())
        .arg(repo().join("scripts/aioquic/connect.py"))
        // The lab listens on 127.0.0.1; "localhost" may resolve to ::1 first.
        .args([
            "127.0.0.1",
            &port.to_string(),
            "--server-name",
            &host_of(scenario),
        ])
        .arg("--cafile")
        .arg(roots)
        .output()
        .expect("run aioquic");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let result = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if result.is_empty() {
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        panic!(
            "aioquic printed no result; the end of its log:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    (normalise(&stderr), result)
}

fn quicprobe_run(scenario: &str, port: u16) -> (Vec<String>, i32) {
    let roots = repo().join("certs").join(scenario).join("roots.pem");
    let output = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(["connect", "--trace-style", "aioquic", "--cacert"])
        .arg(roots)
        .args([
            "--resolve",
            &format!("{}:{port}:127.0.0.1", host_of(scenario)),
            &format!("{}:{port}", host_of(scenario)),
        ])
        .env_remove("RUST_LOG")
        .output()
        .expect("run quicprobe");
    // The trace goes to stderr, as aioquic's log does.
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (normalise(&stderr), output.status.code().unwrap_or(-1))
}

/// The kinds of line compared: aioquic's handshake and connection states,
/// negotiation, the error, the close and the keys it drops. Its loss-recovery
/// and bookkeeping lines ("Duplicate CRYPTO data", "Stream N created") depend
/// on timing and have no counterpart.
const COMPARED: [&str; 8] = [
    "Discarding epoch",
    "Retrying with token",
    "TLS State.",
    "QuicConnectionState.",
    "Negotiated protocol",
    "Error: ",
    "Connection close sent",
    "ALPN negotiated",
];

/// `2026-11-27 01:02:03,456 DEBUG quic [0d3c79fddcee7380] message` ->
/// `DEBUG quic message`, keeping only lines both clients log.
fn normalise(log: &str) -> Vec<String> {
    let lines = log
        .lines()
        .filter_map(|line| {
            let rest = line.get(24..)?;
            let (level, rest) = rest.split_once(' ')?;
            let rest = rest.strip_prefix("quic [")?;
            let (_, message) = rest.split_once("] ")?;
            let shared = COMPARED.iter().any(|prefix| message.starts_with(prefix));
            shared.then(|| format!("{level} quic {message}"))
        })
        .collect();
    gather_discards(lines)
}

/// Which keys each client drops is compared, not when: that depends on how
/// the server cut its flight into datagrams (the Initial keys go with the
/// first Handshake packet sent) and on when the client closes (aioquic before
/// HANDSHAKE_DONE, which would drop the Handshake keys). The "Discarding
/// epoch" lines are gathered, in epoch order, before the TERMINATED line.
fn gather_discards(lines: Vec<String>) -> Vec<String> {
    let (mut discards, mut rest): (Vec<String>, Vec<String>) = lines
        .into_iter()
        .partition(|line| line.contains("Discarding epoch"));
    let order = ["Epoch.INITIAL", "Epoch.HANDSHAKE", "Epoch.ONE_RTT"];
    discards.sort_by_key(|line| order.iter().position(|epoch| line.ends_with(epoch)));
    let end = rest
        .iter()
        .position(|line| line.ends_with("-> QuicConnectionState.TERMINATED"))
        .unwrap_or(rest.len());
    rest.splice(end..end, discards);
    rest
}

/// The close the lab received next, as (is_app, code, reason).
fn close_code(lab: &LabHandle) -> Option<(bool, u64, String)> {
    lab.wait_for_close(Duration::from_secs(5))
        .map(|c| (c.is_app, c.error_code, c.reason))
}

#[test]
fn seed_case_traces_match_aioquic_line_by_line_and_the_server_sees_the_same_close() {
    let lab = start_lab("leaf-only");
    let (aioquic_lines, aioquic_result) = aioquic_run("leaf-only", lab.addr().port());
    let aioquic_close = close_code(&lab);
    let (our_lines, exit_code) = quicprobe_run("leaf-only", lab.addr().port());
    let our_close = close_code(&lab);

    assert_eq!(
        aioquic_result,
        "error 298 unable to get local issuer certificate"
    );
    assert_eq!(exit_code, 60);
    assert_eq!(our_lines, aioquic_lines);
    let expected = Some((
        false,
        0x12a,
        "unable to get local issuer certificate".to_owned(),
    ));
    assert_eq!(aioquic_close, expected, "what aioquic sends");
    assert_eq!(our_close, expected, "what quicprobe sends");
}

#[test]
fn successful_handshake_traces_match_aioquic_except_the_close_code() {
    let lab = start_lab("full-chain");
    let (aioquic_lines, aioquic_result) = aioquic_run("full-chain", lab.addr().port());
    let (our_lines, exit_code) = quicprobe_run("full-chain", lab.addr().port());
    assert_eq!(aioquic_result, "ok h3");
    assert_eq!(exit_code, 0);
    // aioquic closes with application code 0; quicprobe with H3_NO_ERROR
    // (0x100, RFC 9114 §8.1), the code HTTP/3 defines for a clean close.
    let mask = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .map(|l| match l.find("Connection close sent (code ") {
                Some(at) => format!("{}Connection close sent (code <app>)", &l[..at]),
                None => l,
            })
            .collect()
    };
    assert_eq!(mask(our_lines), mask(aioquic_lines));
}

#[test]
fn an_expired_leaf_is_closed_with_0x12d_by_both() {
    let lab = start_lab("expired-leaf");
    let (_, aioquic_result) = aioquic_run("expired-leaf", lab.addr().port());
    let aioquic_close = close_code(&lab);
    let (_, exit_code) = quicprobe_run("expired-leaf", lab.addr().port());
    let our_close = close_code(&lab);
    assert_eq!(aioquic_result, "error 301 Certificate is no longer valid");
    assert_eq!(exit_code, 60);
    assert_eq!(aioquic_close.as_ref().map(|c| c.1), Some(0x12d));
    // With the aioquic trace style quicprobe speaks aioquic's words too.
    assert_eq!(our_close, aioquic_close);
}

#[test]
fn retry_is_logged_as_aioquic_logs_it() {
    let lab = start_lab_with("full-chain", true);
    let (aioquic_lines, aioquic_result) = aioquic_run("full-chain", lab.addr().port());
    let (our_lines, exit_code) = quicprobe_run("full-chain", lab.addr().port());
    assert_eq!(aioquic_result, "ok h3");
    assert_eq!(exit_code, 0);
    // The lab's token holds the client's first DCID: 8 bytes from aioquic,
    // 16 from quiche, so the token sizes differ by 8.
    let retry = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .take_while(|l| !l.contains("QuicConnectionState.FIRSTFLIGHT"))
            .map(|l| match l.find("Retrying with token (") {
                Some(at) => format!("{}Retrying with token (N bytes)", &l[..at]),
                None => l.clone(),
            })
            .collect()
    };
    // Both: ClientHello, the Retry with the lab's token, ClientHello again.
    assert_eq!(retry(&our_lines), retry(&aioquic_lines));
    assert!(our_lines
        .iter()
        .any(|l| l.starts_with("INFO quic Retrying with token (")));
}

fn predicted_by_quicprobe(dir: &Path, host: &str) -> bool {
    let name_flag = if host.parse::<std::net::IpAddr>().is_ok() {
        "--ip"
    } else {
        "--host"
    };
    let output = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(["verify", "--json", "--chain"])
        .arg(dir.join("chain.pem"))
        .arg("--cacert")
        .arg(dir.join("roots.pem"))
        .args([name_flag, host])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["accepted_by"]["aioquic"] == true
}

/// Where quicprobe and aioquic genuinely differ on a scenario, and why.
/// Every other scenario must give the same trace and the same close.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "client-auth-eku",
    "aioquic checks no EKU (X509_verify_cert without a purpose) and accepts a \
     clientAuth-only leaf; strict quicprobe requires serverAuth and rejects it",
)];

/// A clean end after a completed handshake, which each client makes in its
/// own way. aioquic closes as soon as its handshake completes, before the
/// server's HANDSHAKE_DONE, and sends that CONNECTION_CLOSE (application
/// error 0) in a Handshake packet only; a server that has already dropped its
/// Handshake keys, as quiche does (RFC 9001 §4.9.2), never reads it, so the
/// lab receives nothing. quicprobe waits for HANDSHAKE_DONE and closes with
/// H3_NO_ERROR (0x100), the clean HTTP/3 close of RFC 9114 §8.1.
fn mask_clean_close(close: Option<(bool, u64, String)>) -> Option<(bool, u64, String)> {
    match close {
        None | Some((true, 0 | 0x100, _)) => Some((true, 0, "(a clean end)".into())),
        other => other,
    }
}

/// The masked lines of a clean close, for the same reason.
fn mask_clean_close_lines(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|line| {
            line.replace(
                "Connection close sent (code 0x100, reason )",
                "Connection close sent (code 0x0, reason )",
            )
        })
        .collect()
}

/// Both clients, one after the other, against one server for one scenario;
/// `received(patience)` is the next close the server got. `None` when the
/// traces and the closes agree, else what differs.
fn disagreement(
    name: &str,
    port: u16,
    mut received: impl FnMut(Duration) -> Option<(bool, u64, String)>,
) -> Option<String> {
    let (aioquic_lines, aioquic_result) = aioquic_run(name, port);
    // After a clean end the server may receive nothing from aioquic (see
    // `mask_clean_close`): no need to wait long for it.
    let patience = if aioquic_result.starts_with("ok") {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(5)
    };
    let aioquic_close = mask_clean_close(received(patience));
    let (our_lines, _) = quicprobe_run(name, port);
    let our_close = mask_clean_close(received(patience));
    let same_trace =
        mask_clean_close_lines(our_lines.clone()) == mask_clean_close_lines(aioquic_lines.clone());
    (!same_trace || our_close != aioquic_close).then(|| {
        format!(
            "aioquic {aioquic_result:?} closed {aioquic_close:?}, quicprobe closed {our_close:?}\n  \
             aioquic:   {aioquic_lines:?}\n  quicprobe: {our_lines:?}"
        )
    })
}

/// Checks one scenario's agreement against its entry in `KNOWN_DIFFERENCES`.
fn judge(name: &str, difference: Option<String>, wrong: &mut Vec<String>) {
    let known = KNOWN_DIFFERENCES.iter().find(|(n, _)| *n == name);
    match (difference, known) {
        (None, None) | (Some(_), Some(_)) => {}
        (None, Some((_, why))) => wrong.push(format!(
            "{name}: listed as a difference ({why}) but both behave the same"
        )),
        (Some(difference), None) => wrong.push(format!("{name}: {difference}")),
    }
}

#[test]
fn every_scenario_gives_aioquics_trace_close_and_predicted_verdict_against_the_lab() {
    let mut wrong = Vec::new();
    // The hostile scenarios are left to client/tests/hostile.rs: they are
    // about bounds (quiche's 64 KiB CRYPTO limit, verify depth, nesting), not
    // about what aioquic says.
    for name in support::scenario_names()
        .into_iter()
        .filter(|name| !support::is_hostile(name))
    {
        let lab = start_lab(&name);
        let difference = disagreement(&name, lab.addr().port(), |patience| {
            lab.wait_for_close(patience)
                .map(|c| (c.is_app, c.error_code, c.reason))
        });
        judge(&name, difference, &mut wrong);
        // `quicprobe verify`'s prediction for aioquic, against aioquic itself.
        let predicted = predicted_by_quicprobe(&scenario(&name), &host_of(&name));
        let (_, aioquic_result) = aioquic_run(&name, lab.addr().port());
        if predicted != aioquic_result.starts_with("ok") {
            wrong.push(format!(
                "{name}: accepted_by.aioquic predicted {predicted}, aioquic says {aioquic_result:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What the aioquic server logged as received, without the frame type:
/// quiche's close API always writes frame type 0 where aioquic writes the
/// frame that failed (6, CRYPTO), a difference in a field no client acts on.
fn close_seen_by_aioquic_server(
    server: &mut PeerServer,
    patience: Duration,
) -> Option<(bool, u64, String)> {
    let line = server.next_line_with("close received:", patience)?;
    let field = |key: &str| {
        let at = line.find(&format!("{key}="))? + key.len() + 1;
        Some(&line[at..])
    };
    let code = field("error_code")?.split_whitespace().next()?;
    let code = u64::from_str_radix(code.trim_start_matches("0x"), 16).ok()?;
    let is_app = field("is_app")?.starts_with("true");
    let reason = field("reason")?;
    let reason = reason[..reason.rfind(" is_app=")?].to_owned();
    let reason: String = serde_json::from_str(&reason).ok()?;
    Some((is_app, code, reason))
}

#[test]
fn every_scenario_gives_aioquics_trace_and_close_against_the_aioquic_server() {
    let mut wrong = Vec::new();
    // The hostile scenarios are left to client/tests/hostile.rs: they are
    // about bounds (quiche's 64 KiB CRYPTO limit, verify depth, nesting), not
    // about what aioquic says.
    for name in support::scenario_names()
        .into_iter()
        .filter(|name| !support::is_hostile(name))
    {
        let mut server = start_aioquic_server(&name, &[]);
        let port = server.port;
        let difference = disagreement(&name, port, |patience| {
            close_seen_by_aioquic_server(&mut server, patience)
        });
        judge(&name, difference, &mut wrong);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `scripts/compare-aioquic`'s engine: exit 0 when the two agree, 1 naming
/// every difference.
#[test]
fn compare_aioquic_exits_0_on_agreement_and_1_listing_the_differences() {
    let run = |scenario: &str| {
        Command::new(python())
            .arg(repo().join("scripts/aioquic/compare.py"))
            .args(["--scenario", scenario])
            .env("QUICPROBE", env!("CARGO_BIN_EXE_quicprobe"))
            .output()
            .expect("run compare.py")
    };
    let agree = run("expired-leaf");
    let text = String::from_utf8_lossy(&agree.stdout);
    assert_eq!(agree.status.code(), Some(0), "{text}");
    assert!(text.contains("Certificate is no longer valid"), "{text}");

    let differ = run("client-auth-eku");
    let text = String::from_utf8_lossy(&differ.stdout);
    assert_eq!(differ.status.code(), Some(1), "{text}");
    assert!(
        text.contains("they differ: outcome, exit code, close code, close reason"),
        "{text}"
    );
    assert!(
        text.contains("--- aioquic") && text.contains("+++ quicprobe"),
        "{text}"
    );
}
