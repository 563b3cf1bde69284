//! Replay (issue 17): every scenario of certs/ served, captured live with
//! `connect --save-scenario`, and its clone served: the verdict, the close,
//! the diagnosis and which clients would accept it are the same for the
//! original and the clone, for quicprobe and for real aioquic; the seed case
//! captured from the msquic test server too. And what a clone must never be:
//! trusted by the original's roots, or a holder of a CA key.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{
    is_hostile, lab_for, lab_for_dir, python, quicprobe, quicprobe_trusting, read_line, repo,
    scenario, scenario_names, start_msquic, trusted_roots_file,
};

/// What must not change between an original and its clone.
fn facts(report: &Value) -> Value {
    serde_json::json!({
        "accepted": report["verdict"]["accepted"],
        "x509_error": report["verdict"]["x509_error"],
        "depth": report["verdict"]["depth"],
        "close_code": report["close"]["error_code"],
        "close_reason": report["close"]["reason"],
        "fault": report["diagnosis"]["fault"]["kind"],
        "accepted_by": report["accepted_by"],
        "exit_code": report["exit_code"],
    })
}

/// `connect --json` to the folder's host at `addr`, with the folder's trust,
/// capturing into `save` when given.
fn connect(dir: &Path, addr: SocketAddr, save: Option<&Path>) -> Value {
    let host = read_line(&dir.join("host"));
    let mut args = vec![
        "connect".to_owned(),
        "--json".to_owned(),
        "--resolve".to_owned(),
        format!("{host}:{}:127.0.0.1", addr.port()),
    ];
    if let Some(save) = save {
        args.extend(["--save-scenario".to_owned(), save.display().to_string()]);
    }
    args.push(format!("{host}:{}", addr.port()));
    let output = quicprobe_trusting(&dir.display().to_string(), &args);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}): {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// aioquic's result line for each (folder, port), from one process.
fn aioquic_results(jobs: &[(PathBuf, u16)]) -> Vec<String> {
    let mut child = Command::new(python())
        .arg(repo().join("scripts/aioquic/connect.py"))
        .arg("--batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run aioquic");
    let mut stdin = child.stdin.take().expect("stdin");
    for (dir, port) in jobs {
        let job = serde_json::json!({
            "host": "127.0.0.1",
            "port": port,
            "cafile": trusted_roots_file(dir),
            "server_name": read_line(&dir.join("host")),
        });
        writeln!(stdin, "{job}").expect("write a job");
    }
    drop(stdin);
    let output = child.wait_with_output().expect("aioquic ends");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON line");
            value["result"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn every_scenario_replays_from_its_clone_for_quicprobe_and_aioquic() {
    let scratch = tempfile::tempdir().unwrap();
    let names = scenario_names();
    let mut labs = Vec::new();
    let mut aioquic_jobs = Vec::new();
    for name in &names {
        let original = scenario(name);
        let clone = scratch.path().join(name);
        let original_lab = lab_for(name);
        let live = connect(&original, original_lab.addr(), Some(&clone));
        if is_hostile(name) {
            // Chains a QUIC client cannot receive (past quiche's 64 KiB of
            // CRYPTO data) leave nothing to capture live: cloned from the file.
            clone_offline(name, &clone);
        } else {
            assert!(live["verdict"]["accepted"].is_boolean(), "{name}: {live}");
        }
        let clone_lab = lab_for_dir(&clone);
        let replayed = connect(&clone, clone_lab.addr(), None);
        assert_eq!(facts(&replayed), facts(&live), "{name}: original vs clone");
        assert_eq!(
            read_line(&clone.join("expected")),
            read_line(&original.join("expected")),
            "{name}: expected"
        );
        // aioquic against the hostile chains is hostile.rs's (some of them
        // raise inside aioquic, which would end the batch's process).
        if !is_hostile(name) {
            aioquic_jobs.push((original, original_lab.addr().port()));
            aioquic_jobs.push((clone, clone_lab.addr().port()));
        }
        labs.push((original_lab, clone_lab));
    }
    let results = aioquic_results(&aioquic_jobs);
    assert_eq!(results.len(), aioquic_jobs.len(), "{results:?}");
    let compared = names.iter().filter(|name| !is_hostile(name));
    for (name, pair) in compared.zip(results.chunks(2)) {
        assert_eq!(pair[1], pair[0], "{name}: aioquic against the clone");
    }
    // Both kinds of answer came: the comparison compared something.
    assert!(results.iter().any(|r| r.starts_with("ok ")), "{results:?}");
    assert!(
        results.iter().any(|r| r.starts_with("error 298")),
        "{results:?}"
    );
}

/// `quicprobe clone` of a scenario's chain.pem, with its host and roots,
/// into `out`, with `extra` flags.
fn clone_scenario(name: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let dir = scenario(name);
    let mut args = vec![
        "clone".to_owned(),
        "--chain".into(),
        dir.join("chain.pem").display().to_string(),
        "--host".into(),
        read_line(&dir.join("host")),
        "--cacert".into(),
        dir.join("roots.pem").display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    quicprobe(&args)
}

/// `quicprobe clone` of a scenario's chain.pem, when the live capture left
/// no folder.
fn clone_offline(name: &str, out: &Path) {
    if out.join("chain.pem").is_file() {
        return;
    }
    let output = clone_scenario(name, out, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_seed_case_captured_from_msquic_replays_from_the_lab() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scenario("leaf-only");
    let chain = dir.join("chain.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    let mut server = start_msquic(&["--cert", &chain, "--key", &key]);
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let clone = scratch.path().join("from-msquic");
    let live = connect(&dir, addr, Some(&clone));
    server.terminate();
    let seen: Value =
        serde_json::from_str(&std::fs::read_to_string(clone.join("seen.json")).unwrap()).unwrap();
    assert_eq!(seen["server_implementation"], "msquic", "{seen}");
    assert!(seen["transport_parameters"].is_object(), "{seen}");
    let lab = lab_for_dir(&clone);
    let replayed = connect(&clone, lab.addr(), None);
    assert_eq!(facts(&replayed), facts(&live));
    assert_eq!(live["exit_code"], 60);
}

#[test]
fn a_clone_is_not_trusted_by_the_originals_roots_and_holds_no_ca_key() {
    let scratch = tempfile::tempdir().unwrap();
    let clone = scratch.path().join("full-chain");
    let output = clone_scenario("full-chain", &clone, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(read_line(&clone.join("expected")), "accepted");
    // Against the original's roots the clone is a stranger.
    let against_original = quicprobe(&[
        "verify",
        "--chain",
        clone.join("chain.pem").to_str().unwrap(),
        "--host",
        "localhost",
        "--cacert",
        scenario("full-chain").join("roots.pem").to_str().unwrap(),
    ]);
    assert_eq!(against_original.status.code(), Some(60));
    // One private key in the whole folder: the leaf's, which matches the leaf.
    let mut keys = 0;
    for entry in std::fs::read_dir(&clone).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        keys += text.matches("PRIVATE KEY-----").count() / 2;
    }
    assert_eq!(keys, 1);
    let leaf = &quicprobe_verifier::read_certificates(&clone.join("chain.pem")).unwrap()[0];
    let key =
        boring::pkey::PKey::private_key_from_pem(&std::fs::read(clone.join("key.pem")).unwrap())
            .unwrap();
    assert!(leaf.public_key().unwrap().public_eq(&key));
    let readme = std::fs::read_to_string(clone.join("README.md")).unwrap();
    assert!(readme.contains("**clone**"), "{readme}");
}

#[test]
fn a_rename_keeps_the_verdict_and_leaves_no_old_name() {
    let scratch = tempfile::tempdir().unwrap();
    let clone = scratch.path().join("renamed");
    let output = clone_scenario(
        "leaf-only",
        &clone,
        &[
            "--rename",
            "localhost=replay.test",
            "--rename",
            "quicprobe lab=someone",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(read_line(&clone.join("host")), "replay.test");
    assert_eq!(
        read_line(&clone.join("expected")),
        read_line(&scenario("leaf-only").join("expected"))
    );
    for file in ["chain.pem", "roots.pem", "README.md", "host", "description"] {
        let text = std::fs::read_to_string(clone.join(file)).unwrap();
        assert!(!text.contains("localhost"), "{file}");
        assert!(!text.contains("quicprobe lab"), "{file}");
    }
    for cert in quicprobe_verifier::read_certificates(&clone.join("chain.pem")).unwrap() {
        let der = cert.to_der().unwrap();
        assert!(!der.windows(9).any(|w| w == b"localhost"));
    }
}

#[test]
fn bad_input_gets_one_clear_error_and_nothing_is_overwritten() {
    let scratch = tempfile::tempdir().unwrap();
    let not_pem = scratch.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let empty = scratch.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let taken = scratch.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("note"), "mine").unwrap();
    let chain = scenario("full-chain").join("chain.pem");
    let cases: [(&Path, &Path, u8); 3] = [
        (&not_pem, &scratch.path().join("a"), 2),
        (&empty, &scratch.path().join("b"), 2),
        (&chain, &taken, 23),
    ];
    for (input, out, code) in cases {
        let output = quicprobe(&[
            "clone",
            "--chain",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(i32::from(code)), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("quicprobe: "), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(taken.join("note")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 1);
    // With --force the scenario's files are written beside what was there.
    let forced = quicprobe(&[
        "clone",
        "--chain",
        chain.to_str().unwrap(),
        "--force",
        "--out",
        taken.to_str().unwrap(),
    ]);
    assert_eq!(forced.status.code(), Some(0));
    assert!(taken.join("chain.pem").is_file());
    assert_eq!(std::fs::read_to_string(taken.join("note")).unwrap(), "mine");
}

/// The address a server line `PREFIX ADDR` names.
fn address_after(lines: &[String], prefix: &str) -> SocketAddr {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(prefix))
        .and_then(|addr| addr.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}ADDR` in {lines:?}"))
}

#[test]
fn aia_serve_answers_the_clones_missing_issuer_at_its_url() {
    let scratch = tempfile::tempdir().unwrap();
    let clone = scratch.path().join("leaf-only");
    let extra = scenario("leaf-only").join("missing-issuer.pem");
    let output = clone_scenario("leaf-only", &clone, &["--extra", extra.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let args: Vec<String> = [
        "serve",
        "--scenario",
        clone.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--aia-serve",
        "127.0.0.1:0",
    ]
    .map(String::from)
    .to_vec();
    let mut server =
        support::PeerServer::start(Path::new(env!("CARGO_BIN_EXE_quicprobe")), &args, 0)
            .expect("serve starts");
    let lines = server.lines();
    let quic = address_after(&lines, "listening on ");
    let aia = address_after(&lines, "AIA: answering http requests on ");
    let output = quicprobe(&[
        "connect".to_owned(),
        "--json".into(),
        "--aia-fetch".into(),
        "--aia-connect-to".into(),
        aia.to_string(),
        "--cacert".into(),
        clone.join("roots.pem").display().to_string(),
        "--resolve".into(),
        format!("localhost:{}:127.0.0.1", quic.port()),
        format!("localhost:{}", quic.port()),
    ]);
    server.terminate();
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["aia"]["fetched"], true, "{report:#}");
    assert_eq!(report["aia"]["accepted_with_fetched"], true);
    assert_eq!(report["diagnosis"]["fault"]["kind"], "missing_intermediate");
    assert_eq!(report["diagnosis"]["certain"], true);
}
