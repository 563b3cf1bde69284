//! quicprobe against aioquic, the client of the original report: both dial
//! the same lab server, and
//! - `--trace-style aioquic` must give the same lines aioquic logs (timestamps
//!   and connection IDs aside, and without aioquic's loss-recovery and
//!   bookkeeping lines, see `COMPARED`);
//! - the lab must receive the same CONNECTION_CLOSE code from both.
//!
//! aioquic comes from the venv `scripts/setup` makes; its absence is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use quicprobe::lab::{self, LabHandle, LabSpec};

mod support;

use support::{python, repo};

fn start_lab(scenario: &str) -> LabHandle {
    start_lab_with(scenario, false)
}

fn start_lab_with(scenario: &str, retry: bool) -> LabHandle {
    let dir = repo().join("certs").join(scenario);
    let mut spec = LabSpec::for_scenario(&dir, "127.0.0.1:0".parse().unwrap());
    spec.retry = retry;
    lab::spawn(spec).unwrap()
}

/// aioquic's DEBUG log lines of the `quic` logger, and its result line.
fn aioquic_run(scenario: &str, port: u16) -> (Vec<String>, String) {
    let roots = repo().join("certs").join(scenario).join("roots.pem");
    let output = Command::new(python())
        .arg(repo().join("scripts/peers/aioquic_connect.py"))
        // The lab listens on 127.0.0.1; "localhost" may resolve to ::1 first.
        .args(["127.0.0.1", &port.to_string(), "--server-name", "localhost"])
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
            &format!("localhost:{port}:127.0.0.1"),
            &format!("localhost:{port}"),
        ])
        .env_remove("RUST_LOG")
        .output()
        .expect("run quicprobe");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (normalise(&stdout), output.status.code().unwrap_or(-1))
}

/// The kinds of line compared: aioquic's handshake and connection states,
/// negotiation, the error and the close. Its loss-recovery and bookkeeping
/// lines ("Discarding epoch", "Duplicate CRYPTO data", "Stream N created")
/// depend on timing and have no counterpart.
const COMPARED: [&str; 7] = [
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
    log.lines()
        .filter_map(|line| {
            let rest = line.get(24..)?;
            let (level, rest) = rest.split_once(' ')?;
            let rest = rest.strip_prefix("quic [")?;
            let (_, message) = rest.split_once("] ")?;
            let shared = COMPARED.iter().any(|prefix| message.starts_with(prefix));
            shared.then(|| format!("{level} quic {message}"))
        })
        .collect()
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
    assert_eq!(aioquic_close.map(|c| c.1), Some(0x12d));
    // Same code; the reason is the verdict's standard text, where aioquic
    // writes its own sentence.
    assert_eq!(
        our_close,
        Some((false, 0x12d, "certificate has expired".to_owned()))
    );
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

/// quicprobe's prediction for aioquic (`accepted_by.aioquic`, computed by
/// re-running BoringSSL with aioquic's checks) against real aioquic, for
/// every scenario.
#[test]
fn accepted_by_aioquic_matches_real_aioquic_on_every_scenario() {
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(repo().join("certs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("expected").is_file())
        .collect();
    scenarios.sort();
    let mut wrong = Vec::new();
    for dir in scenarios {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let host = std::fs::read_to_string(dir.join("host")).unwrap();
        let lab = start_lab(&name);
        let output = Command::new(python())
            .arg(repo().join("scripts/peers/aioquic_connect.py"))
            .args(["127.0.0.1", &lab.addr().port().to_string()])
            .args(["--server-name", host.trim(), "--cafile"])
            .arg(dir.join("roots.pem"))
            .output()
            .unwrap();
        let result = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let aioquic_accepts = result.starts_with("ok");
        let predicted = predicted_by_quicprobe(&dir, host.trim());
        if aioquic_accepts != predicted {
            wrong.push(format!(
                "{name}: aioquic says {result:?}, quicprobe predicted accepted={predicted}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
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
