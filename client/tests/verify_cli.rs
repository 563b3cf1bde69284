//! `quicprobe verify` as a user runs it: the real binary, real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn certs(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs")
        .join(scenario)
}

fn quicprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run quicprobe")
}

fn verify_scenario(scenario: &str, extra: &[&str]) -> Output {
    let dir = certs(scenario);
    let host = std::fs::read_to_string(dir.join("host")).unwrap();
    let chain = dir.join("chain.pem");
    let roots = dir.join("roots.pem");
    let mut args = vec![
        "verify",
        "--chain",
        chain.to_str().unwrap(),
        "--cacert",
        roots.to_str().unwrap(),
        "--host",
        host.trim(),
    ];
    args.extend_from_slice(extra);
    quicprobe(&args)
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

#[test]
fn full_chain_exits_0_and_says_accepted() {
    let output = verify_scenario("full-chain", &[]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Verdict: ACCEPTED for localhost"),
        "{stdout}"
    );
}

#[test]
fn leaf_only_exits_60_and_names_the_missing_intermediate_and_its_aia_url() {
    let output = verify_scenario("leaf-only", &[]);
    assert_eq!(output.status.code(), Some(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("verify error:num=20:unable to get local issuer certificate"),
        "{stdout}"
    );
    assert!(stdout.contains("R11 (quicprobe lab)"), "{stdout}");
    assert!(stdout.contains("http://r11.i.lencr.test/"), "{stdout}");
    assert!(stdout.contains("fullchain.pem"), "{stdout}");
}

#[test]
fn json_output_keeps_the_contract_fields() {
    let output = verify_scenario("leaf-only", &["--json"]);
    assert_eq!(output.status.code(), Some(60));
    let report = json(&output);
    assert_eq!(report["verdict"]["accepted"], false);
    assert_eq!(report["verdict"]["x509_error"], 20);
    assert_eq!(
        report["verdict"]["x509_error_string"],
        "unable to get local issuer certificate"
    );
    assert_eq!(report["verdict"]["depth"], 0);
    let leaf = &report["chain"][0];
    for field in ["depth", "subject", "issuer", "sha256", "not_after"] {
        assert!(!leaf[field].is_null(), "chain[0].{field} missing");
    }
    assert!(report["diagnosis"]["cause"]
        .as_str()
        .unwrap()
        .contains("R11"));
    assert!(report["diagnosis"]["fix"]
        .as_str()
        .unwrap()
        .contains("full chain"));
    assert_eq!(report["accepted_by"]["aioquic"], false);
    assert_eq!(report["accepted_by"]["openssl"], false);
    assert_eq!(report["accepted_by"]["go_linux"], false);
    assert_eq!(report["accepted_by"]["dotnet"], true);
    assert_eq!(report["accepted_by"]["windows_cryptoapi"], true);
}

#[test]
fn json_for_an_accepted_chain_has_error_0_and_null_depth() {
    let report = json(&verify_scenario("full-chain", &["--json"]));
    assert_eq!(report["verdict"]["accepted"], true);
    assert_eq!(report["verdict"]["x509_error"], 0);
    assert!(report["verdict"]["depth"].is_null());
    assert_eq!(report["chain"].as_array().unwrap().len(), 2);
}

#[test]
fn client_auth_only_leaf_is_rejected_by_strict_clients_but_aioquic_would_accept_it() {
    let report = json(&verify_scenario("client-auth-eku", &["--json"]));
    assert_eq!(report["verdict"]["x509_error"], 26);
    assert_eq!(report["accepted_by"]["aioquic"], true);
    assert_eq!(report["accepted_by"]["go_linux"], false);
}

#[test]
fn cn_only_leaf_would_be_accepted_by_openssl_but_not_by_go_or_aioquic() {
    let report = json(&verify_scenario("cn-without-san", &["--json"]));
    assert_eq!(report["verdict"]["x509_error"], 62);
    assert_eq!(report["accepted_by"]["openssl"], true);
    assert_eq!(report["accepted_by"]["go_linux"], false);
    assert_eq!(report["accepted_by"]["aioquic"], false);
}

/// A bad input: exit 2, exactly one line on stderr naming the file, no panic.
fn assert_one_line_input_error(output: &Output, expect_in_message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(stderr.starts_with("quicprobe: "), "{stderr}");
    assert!(stderr.contains(expect_in_message), "{stderr}");
}

fn verify_file(path: &Path) -> Output {
    let roots = certs("full-chain").join("roots.pem");
    quicprobe(&[
        "verify",
        "--chain",
        path.to_str().unwrap(),
        "--cacert",
        roots.to_str().unwrap(),
        "--host",
        "localhost",
    ])
}

fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}

#[test]
fn empty_file_is_a_usage_error() {
    let file = file_with(b"");
    assert_one_line_input_error(&verify_file(file.path()), "file is empty");
}

#[test]
fn binary_garbage_is_a_usage_error() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i * 7919 % 251) as u8 | 0x80)
        .collect();
    let file = file_with(&garbage);
    assert_one_line_input_error(&verify_file(file.path()), "not a certificate");
}

#[test]
fn truncated_pem_is_a_usage_error() {
    let pem = std::fs::read_to_string(certs("full-chain").join("chain.pem")).unwrap();
    let file = file_with(&pem.as_bytes()[..pem.len() / 3]);
    assert_one_line_input_error(&verify_file(file.path()), "truncated PEM");
}

#[test]
fn private_key_instead_of_certificate_is_a_usage_error() {
    let key = certs("full-chain").join("key.pem");
    assert_one_line_input_error(&verify_file(&key), "private key");
}

#[test]
fn nonexistent_path_is_a_usage_error() {
    let missing = Path::new("/nonexistent/quicprobe/chain.pem");
    assert_one_line_input_error(&verify_file(missing), "no such file");
}

#[test]
fn directory_passed_as_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    assert_one_line_input_error(&verify_file(dir.path()), "is a directory");
}

#[test]
fn bad_cacert_is_a_usage_error_naming_it() {
    let chain = certs("full-chain").join("chain.pem");
    let output = quicprobe(&[
        "verify",
        "--chain",
        chain.to_str().unwrap(),
        "--cacert",
        "/nonexistent/roots.pem",
    ]);
    assert_one_line_input_error(&output, "/nonexistent/roots.pem");
}

#[test]
fn missing_chain_flag_is_a_usage_error() {
    let output = quicprobe(&["verify"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn capath_hashed_directory_is_used_as_roots() {
    let dir = tempfile::tempdir().unwrap();
    let root = certs("full-chain").join("roots.pem");
    let hash = Command::new("openssl")
        .args(["x509", "-noout", "-subject_hash", "-in"])
        .arg(&root)
        .output()
        .unwrap();
    let hash = String::from_utf8(hash.stdout).unwrap();
    std::fs::copy(&root, dir.path().join(format!("{}.0", hash.trim()))).unwrap();
    let chain = certs("full-chain").join("chain.pem");
    let output = quicprobe(&[
        "verify",
        "--chain",
        chain.to_str().unwrap(),
        "--capath",
        dir.path().to_str().unwrap(),
        "--host",
        "localhost",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn capath_without_hashed_names_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        certs("full-chain").join("roots.pem"),
        dir.path().join("root.pem"),
    )
    .unwrap();
    let chain = certs("full-chain").join("chain.pem");
    let output = quicprobe(&[
        "verify",
        "--chain",
        chain.to_str().unwrap(),
        "--capath",
        dir.path().to_str().unwrap(),
    ]);
    assert_one_line_input_error(&output, "openssl rehash");
}
