//! `--session-file` and `--early-data` against the lab: resumption, 0-RTT,
//! and that a session never carries a connection past strict verification.

mod support;

use std::path::Path;

use quicprobe::lab::{self, LabHandle, LabSpec};
use serde_json::Value;
use support::{json_of, quicprobe, scenario};

fn start_lab(name: &str) -> LabHandle {
    lab::spawn(LabSpec::for_scenario(
        &scenario(name),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .unwrap()
}

fn connect(lab: &LabHandle, name: &str, session: &Path, extra: &[&str]) -> (i32, Value) {
    let port = lab.addr().port();
    let mut args = vec![
        "connect".to_owned(),
        "--json".to_owned(),
        "--session-file".to_owned(),
        session.display().to_string(),
        "--cacert".to_owned(),
        scenario(name).join("roots.pem").display().to_string(),
        "--resolve".to_owned(),
        format!("localhost:{port}:127.0.0.1"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(format!("https://localhost:{port}/bytes/1000"));
    let output = quicprobe(&args);
    (output.status.code().unwrap_or(-1), json_of(&output))
}

#[test]
fn a_saved_session_is_resumed_and_0rtt_is_accepted_by_the_lab() {
    let lab = start_lab("full-chain");
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("session");

    let (code, first) = connect(&lab, "full-chain", &file, &["--early-data"]);
    assert_eq!(code, 0, "{first}");
    assert_eq!(first["session"]["offered"], false);
    assert_eq!(first["session"]["resumed"], false);
    assert_eq!(first["verdict"]["accepted"], true);
    assert!(file.is_file(), "the ticket was saved");

    let (code, second) = connect(&lab, "full-chain", &file, &["--early-data"]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(second["session"]["offered"], true);
    assert_eq!(second["session"]["resumed"], true);
    assert_eq!(second["session"]["early_data"], "accepted");
    assert_eq!(second["response"]["body_bytes"], 1000);
    assert_eq!(second["response"]["complete"], true);
    let stages: Vec<&str> = second["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        !stages.contains(&"certificate"),
        "no certificate on resumption: {stages:?}"
    );
}

#[test]
fn an_insecure_connection_never_saves_a_session() {
    let lab = start_lab("leaf-only");
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("session");
    let (code, report) = connect(&lab, "leaf-only", &file, &["--insecure"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["insecure"], true);
    assert!(
        !file.exists(),
        "a session from a rejected chain would skip verification later"
    );
    let (code, _) = connect(&lab, "leaf-only", &file, &[]);
    assert_eq!(
        code, 60,
        "the next strict connection is verified, and rejected"
    );
}

#[test]
fn a_session_is_offered_only_to_the_server_it_was_verified_for() {
    let first = start_lab("full-chain");
    let second = start_lab("full-chain");
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("session");
    let (code, _) = connect(&first, "full-chain", &file, &[]);
    assert_eq!(code, 0);
    let (code, report) = connect(&second, "full-chain", &file, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["session"]["offered"], false, "{report}");
    assert_eq!(
        report["verdict"]["accepted"], true,
        "a full handshake, verified"
    );
}

#[test]
fn a_rejected_0rtt_is_reported_and_the_request_still_completes_after_full_verification() {
    // Two labs behind one name (localhost:443, through --connect-to): the
    // second cannot read the first one's ticket.
    let first = start_lab("full-chain");
    let second = start_lab("full-chain");
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("session");
    let run = |lab: &LabHandle| {
        let output = quicprobe(&[
            "connect",
            "--json",
            "--session-file",
            file.to_str().unwrap(),
            "--early-data",
            "--connect-to",
            &format!("localhost:443:127.0.0.1:{}", lab.addr().port()),
            "--cacert",
            scenario("full-chain").join("roots.pem").to_str().unwrap(),
            "https://localhost:443/bytes/1000",
        ]);
        (output.status.code(), json_of(&output))
    };
    assert_eq!(run(&first).0, Some(0));
    let (code, report) = run(&second);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["session"]["offered"], true);
    assert_eq!(report["session"]["resumed"], false);
    assert_eq!(
        report["session"]["early_data"],
        "rejected: the session was not resumed"
    );
    assert_eq!(
        report["verdict"]["accepted"], true,
        "a full handshake, verified"
    );
    assert_eq!(report["response"]["complete"], true);
    assert_eq!(report["response"]["body_bytes"], 1000);
}
