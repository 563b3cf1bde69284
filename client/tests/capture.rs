//! Capture (issue 17): the chain a live server sent, saved with
//! `--save-chain` exactly as sent, gives the same verdict offline with
//! `quicprobe verify --chain`, for every scenario; scan and several
//! connections number their files.

mod support;

use std::path::Path;

use quicprobe_verifier::read_certificates;
use serde_json::Value;
use support::{is_hostile, quicprobe_trusting, read_line, scenario, scenario_names};

/// The verdict as the JSON gives it: accepted, X509 error, failing depth.
fn verdict_of(report: &Value) -> (Value, Value, Value) {
    let verdict = &report["verdict"];
    (
        verdict["accepted"].clone(),
        verdict["x509_error"].clone(),
        verdict["depth"].clone(),
    )
}

fn ders(path: &Path) -> Vec<Vec<u8>> {
    read_certificates(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .iter()
        .map(|c| c.to_der().expect("DER"))
        .collect()
}

fn json(output: &std::process::Output, what: &str) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn a_saved_chain_is_the_chain_as_sent_and_verify_gives_the_live_verdict() {
    let scratch = tempfile::tempdir().unwrap();
    for name in scenario_names().into_iter().filter(|n| !is_hostile(n)) {
        let dir = scenario(&name);
        let lab = support::lab_for(&name);
        let host = read_line(&dir.join("host"));
        let port = lab.addr().port();
        let saved = scratch.path().join(format!("{name}.pem"));
        let live = quicprobe_trusting(
            &name,
            &[
                "connect".into(),
                "--json".into(),
                "--save-chain".into(),
                saved.display().to_string(),
                "--resolve".into(),
                format!("{host}:{port}:127.0.0.1"),
                format!("{host}:{port}"),
            ],
        );
        let live = json(&live, &name);
        assert_eq!(
            ders(&saved),
            ders(&dir.join("chain.pem")),
            "{name}: as sent"
        );
        let offline = quicprobe_trusting(
            &name,
            &[
                "verify".into(),
                "--json".into(),
                "--chain".into(),
                saved.display().to_string(),
                "--host".into(),
                host,
            ],
        );
        let offline = json(&offline, &name);
        assert_eq!(verdict_of(&offline), verdict_of(&live), "{name}: verdict");
        assert_eq!(
            offline["diagnosis"]["fault"]["kind"], live["diagnosis"]["fault"]["kind"],
            "{name}: diagnosis"
        );
    }
}

#[test]
fn several_connections_save_numbered_files_and_nothing_is_created_without_a_chain() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scenario("leaf-only");
    let lab = support::lab_for("leaf-only");
    let port = lab.addr().port();
    let saved = scratch.path().join("chain.pem");
    let output = support::quicprobe(&[
        "connect".to_owned(),
        "--repeat".into(),
        "2".into(),
        "--cacert".into(),
        dir.join("roots.pem").display().to_string(),
        "--save-chain".into(),
        saved.display().to_string(),
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
        format!("localhost:{port}"),
    ]);
    assert_eq!(output.status.code(), Some(60));
    for number in [1, 2] {
        let file = scratch.path().join(format!("chain-{number}.pem"));
        assert_eq!(ders(&file), ders(&dir.join("chain.pem")));
    }
    assert!(!saved.exists());
    // Into a folder that does not exist: exit 23 before any connection.
    let missing = scratch.path().join("no/such/folder/chain.pem");
    let output = support::quicprobe(&[
        "connect".to_owned(),
        "--save-chain".into(),
        missing.display().to_string(),
        format!("localhost:{port}"),
    ]);
    assert_eq!(output.status.code(), Some(23));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("quicprobe: --save-chain "), "{stderr}");
}

#[test]
fn scan_saves_each_targets_chain_under_its_line_number() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scenario("full-chain");
    let lab = support::lab_for("full-chain");
    let port = lab.addr().port();
    let targets = scratch.path().join("targets.txt");
    std::fs::write(
        &targets,
        format!("# two lines\nlocalhost:{port}\n127.0.0.1:9\n"),
    )
    .unwrap();
    let saved = scratch.path().join("chain.pem");
    let output = support::quicprobe(&[
        "scan".to_owned(),
        "--targets".into(),
        targets.display().to_string(),
        "--connect-timeout".into(),
        "2".into(),
        "--cacert".into(),
        dir.join("roots.pem").display().to_string(),
        "--save-chain".into(),
        saved.display().to_string(),
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
    ]);
    assert!(output.status.code().is_some(), "no panic");
    assert_eq!(
        ders(&scratch.path().join("chain-2.pem")),
        ders(&dir.join("chain.pem"))
    );
    // Line 3 got no chain (nothing answers on port 9): no file.
    assert!(!scratch.path().join("chain-3.pem").exists());
}
