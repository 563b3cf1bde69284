//! `quicprobe get` against real servers: the lab (quiche), the msquic test
//! server and the aioquic server, each started by the test on 127.0.0.1.

mod support;

use std::net::SocketAddr;
use std::process::Output;

use quicprobe::lab::{self, LabEvent, LabHandle, LabSpec};
use serde_json::Value;
use support::{json_of, pattern_sha256, quicprobe, scenario, start_aioquic_server, start_msquic};

fn start_lab() -> LabHandle {
    lab::spawn(LabSpec::for_scenario(
        &scenario("full-chain"),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .expect("lab starts")
}

/// `quicprobe get` for paths on localhost:PORT, trusting full-chain's roots.
fn get(port: u16, paths: &[&str], extra: &[&str]) -> Output {
    let mut args = vec![
        "get".to_owned(),
        "--cacert".to_owned(),
        scenario("full-chain")
            .join("roots.pem")
            .display()
            .to_string(),
        "--resolve".to_owned(),
        format!("localhost:{port}:127.0.0.1"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend(paths.iter().map(|p| format!("https://localhost:{port}{p}")));
    quicprobe(&args)
}

fn responses(report: &Value) -> Vec<Value> {
    report["responses"].as_array().cloned().unwrap_or_default()
}

/// Twenty paths of different sizes, and the SHA-256 each body must have.
fn twenty_paths(prefix: &str) -> Vec<(String, String)> {
    (1..=20)
        .map(|n| {
            let size = n * 7919;
            (format!("{prefix}{size}"), pattern_sha256(size))
        })
        .collect()
}

fn assert_bodies(report: &Value, expected: &[(String, String)]) {
    let got = responses(report);
    assert_eq!(got.len(), expected.len(), "{report}");
    for (response, (path, sha)) in got.iter().zip(expected) {
        assert_eq!(response["path"], path.as_str());
        assert_eq!(response["complete"], true, "{response}");
        assert_eq!(response["body_sha256"], sha.as_str(), "{path}");
    }
}

#[test]
fn twenty_h3_gets_share_one_connection_to_the_lab_and_every_body_is_right() {
    let lab = start_lab();
    let expected = twenty_paths("/bytes/");
    let paths: Vec<&str> = expected.iter().map(|(p, _)| p.as_str()).collect();
    let output = get(lab.addr().port(), &paths, &["--json"]);
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["alpn"], "h3");
    assert_bodies(&report, &expected);
    // One connection: the lab saw one handshake and twenty requests from one peer.
    let mut peers = Vec::<SocketAddr>::new();
    while let Some(event) = lab.next_event(std::time::Duration::from_millis(500)) {
        if let LabEvent::Request { peer, .. } = event {
            peers.push(peer);
        }
    }
    assert_eq!(peers.len(), 20);
    assert!(peers.iter().all(|p| *p == peers[0]), "{peers:?}");
}

#[test]
fn twenty_h3_gets_against_the_aioquic_server() {
    let server = start_aioquic_server("full-chain", &[]);
    let expected = twenty_paths("/bytes/");
    let paths: Vec<&str> = expected.iter().map(|(p, _)| p.as_str()).collect();
    let output = get(server.port, &paths, &["--json"]);
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_bodies(&report, &expected);
}

#[test]
fn hq_interop_gets_against_msquic_and_a_raw_stream_echo() {
    let full = scenario("full-chain");
    let chain = full.join("chain.pem").display().to_string();
    let key = full.join("key.pem").display().to_string();
    let server = start_msquic(&["--cert", &chain, "--key", &key]);
    let expected = twenty_paths("/");
    let paths: Vec<&str> = expected.iter().map(|(p, _)| p.as_str()).collect();
    let output = get(server.port, &paths, &["--json", "--alpn", "hq-interop"]);
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["alpn"], "hq-interop");
    assert_bodies(&report, &expected);

    // Any other ALPN is raw bytes on a stream; msquic's server echoes them.
    let output = get(
        server.port,
        &["/"],
        &["--alpn", "sample", "--send", "hello, msquic"],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(output.stdout, b"hello, msquic");
}

#[test]
fn a_256_mib_h3_download_to_a_file_matches_byte_for_byte() {
    const SIZE: usize = 256 * 1024 * 1024;
    let lab = start_lab();
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("body");
    let output = get(
        lab.addr().port(),
        &[&format!("/bytes/{SIZE}")],
        &["-o", file.to_str().unwrap()],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty(), "the body went to the file");
    let written = std::fs::read(&file).unwrap();
    assert_eq!(written.len(), SIZE);
    let digest = ring::digest::digest(&ring::digest::SHA256, &written);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, pattern_sha256(SIZE));
}

#[test]
fn bodies_go_to_stdout_in_url_order_and_include_prints_curls_header_block() {
    let lab = start_lab();
    let port = lab.addr().port();
    let output = get(port, &["/bytes/5", "/", "/bytes/3"], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "abcdequicprobe lab: hello over HTTP/3\nabc"
    );
    let output = get(port, &["/"], &["-i", "-H", "x-test: 1"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("HTTP/3 200\r\nserver: quicprobe-lab\r\ncontent-length: 33\r\n\r\n"),
        "{text}"
    );
}

#[test]
fn remote_name_saves_under_the_urls_file_name() {
    let lab = start_lab();
    let scratch = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .current_dir(scratch.path())
        .args(["get", "-O", "--cacert"])
        .arg(scenario("full-chain").join("roots.pem"))
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", lab.addr().port()),
        ])
        .arg(format!(
            "https://localhost:{}/bytes/4096",
            lab.addr().port()
        ))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        std::fs::read(scratch.path().join("4096")).unwrap(),
        quicprobe::lab::pattern(4096)
    );
}

#[test]
fn a_rejected_chain_gets_no_request_and_bad_usage_is_one_line() {
    let lab = lab::spawn(LabSpec::for_scenario(
        &scenario("leaf-only"),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .unwrap();
    let output = quicprobe(&[
        "get",
        "--cacert",
        scenario("leaf-only").join("roots.pem").to_str().unwrap(),
        "--resolve",
        &format!("localhost:{}:127.0.0.1", lab.addr().port()),
        &format!("https://localhost:{}/", lab.addr().port()),
    ]);
    assert_eq!(output.status.code(), Some(60));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unable to get local issuer certificate"),
        "{stderr}"
    );

    for args in [
        vec!["get", "http://localhost:1/"],
        vec!["get", "-O", "https://localhost:1/"],
        vec!["get", "-o", "a", "-o", "b", "https://localhost:1/x"],
        vec!["get", "-H", "no colon", "https://localhost:1/"],
    ] {
        let output = quicprobe(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn a_256_mib_hq_interop_download_from_msquic_matches_byte_for_byte() {
    const SIZE: usize = 256 * 1024 * 1024;
    let full = scenario("full-chain");
    let chain = full.join("chain.pem").display().to_string();
    let key = full.join("key.pem").display().to_string();
    let server = start_msquic(&["--cert", &chain, "--key", &key]);
    let output = get(
        server.port,
        &[&format!("/{SIZE}")],
        &["--json", "--alpn", "hq-interop"],
    );
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["responses"][0]["body_bytes"], SIZE);
    assert_eq!(report["responses"][0]["body_sha256"], pattern_sha256(SIZE));
}

#[test]
fn without_json_or_write_out_asking_no_body_is_hashed() {
    const SIZE: usize = 100_000;
    let lab = start_lab();
    let path = format!("/bytes/{SIZE}");
    // The -v trace names the body's size; the digest would follow it.
    let plain = get(lab.addr().port(), &[&path], &["-v", "-o", "/dev/null"]);
    let trace = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(0), "{trace}");
    assert!(trace.contains(&format!("{SIZE} bytes")), "{trace}");
    assert!(!trace.contains(", sha256 "), "{trace}");
    // A -w that shows no digest does not ask for one either.
    let counted = get(
        lab.addr().port(),
        &[&path],
        &["-v", "-o", "/dev/null", "-w", "%{size_download}"],
    );
    assert_eq!(String::from_utf8_lossy(&counted.stdout), SIZE.to_string());
    assert!(!String::from_utf8_lossy(&counted.stderr).contains(", sha256 "));
}

#[test]
fn json_and_write_out_body_sha256_get_the_bodys_digest() {
    const SIZE: usize = 100_000;
    let lab = start_lab();
    let path = format!("/bytes/{SIZE}");
    let json = get(lab.addr().port(), &[&path], &["--json", "-o", "/dev/null"]);
    let report = json_of(&json);
    assert_eq!(
        report["responses"][0]["body_sha256"],
        pattern_sha256(SIZE).as_str(),
        "{report}"
    );
    let written = get(
        lab.addr().port(),
        &[&path],
        &["-o", "/dev/null", "-w", "%{body_sha256}"],
    );
    assert_eq!(
        String::from_utf8_lossy(&written.stdout),
        pattern_sha256(SIZE)
    );
    let in_write_out_json = get(
        lab.addr().port(),
        &[&path],
        &["-o", "/dev/null", "-w", "%{json}"],
    );
    let report: Value = serde_json::from_slice(&in_write_out_json.stdout).expect("one JSON object");
    assert_eq!(
        report["responses"][0]["body_sha256"],
        pattern_sha256(SIZE).as_str()
    );
}
