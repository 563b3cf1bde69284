//! quicprobe against real msquic: the test server of tools/msquic-server,
//! built from the crates.io `msquic` crate (msquic + quictls), run as a child
//! process on 127.0.0.1 and stopped at the end of each test. Every claim
//! docs/msquic.md makes about msquic is checked here.

mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::{
    json_of, pattern_sha256, python, quicprobe, read_line, repo, scenario, stage_names,
    start_msquic, PeerServer,
};

/// msquic serving a scenario's chain exactly as the file holds it.
fn msquic_serving(name: &str, extra: &[&str]) -> PeerServer {
    let dir = scenario(name);
    let chain = dir.join("chain.pem").display().to_string();
    let key = dir.join("key.pem").display().to_string();
    let mut args = vec!["--cert", chain.as_str(), "--key", key.as_str()];
    args.extend_from_slice(extra);
    start_msquic(&args)
}

/// `quicprobe connect` to the scenario's name at the server's port,
/// trusting the scenario's roots. `path` makes it an https:// GET.
fn connect(server: &PeerServer, name: &str, path: Option<&str>, extra: &[&str]) -> Output {
    let dir = scenario(name);
    let host = read_line(&dir.join("host"));
    let port = server.port;
    let target = match path {
        Some(path) => format!("https://{host}:{port}{path}"),
        None => format!("{host}:{port}"),
    };
    let mut args = vec![
        "connect".to_owned(),
        "--cacert".to_owned(),
        dir.join("roots.pem").display().to_string(),
        "--resolve".to_owned(),
        format!("{host}:{port}:127.0.0.1"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(target);
    quicprobe(&args)
}

fn connect_json(server: &PeerServer, name: &str, extra: &[&str]) -> (Output, Value) {
    let mut extra = extra.to_vec();
    extra.push("--json");
    let output = connect(server, name, None, &extra);
    let report = json_of(&output);
    (output, report)
}

/// The trace, which goes to stderr as curl's `-v` does.
fn trace_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The close msquic says it received, e.g. `error_code=0x12a`.
fn server_saw(server: &mut PeerServer, needle: &str) -> bool {
    server.wait_for(needle, Duration::from_secs(5))
}

#[test]
fn the_full_chain_succeeds_and_msquic_sees_a_clean_close() {
    let mut server = msquic_serving("full-chain", &[]);
    let (output, report) = connect_json(&server, "full-chain", &["--alpn", "hq-interop"]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["verdict"]["accepted"], true);
    let stages = stage_names(&report);
    assert!(stages.contains(&"handshake_done".to_owned()), "{stages:?}");
    assert_eq!(report["close"]["sent_by"], "client");
    assert!(server_saw(&mut server, "connected alpn=hq-interop"));
    assert!(
        server_saw(&mut server, "closed by peer app_error=0x0"),
        "{:?}",
        server.lines()
    );
}

#[test]
fn leaf_only_is_the_seed_exit_60_close_0x12a_and_the_missing_intermediate_named() {
    let mut server = msquic_serving("leaf-only", &[]);
    let output = connect(&server, "leaf-only", None, &[]);
    assert_eq!(output.status.code(), Some(60));
    let text = trace_of(&output);
    assert!(
        text.contains(
            "Close sent by the client: 0x12a CRYPTO_ERROR (TLS alert 42 bad_certificate), \
             reason \"unable to get local issuer certificate\""
        ),
        "{text}"
    );
    // The diagnosis names the intermediate the server left out, and where
    // the leaf says it can be fetched.
    assert!(text.contains("R11 (quicprobe lab)"), "{text}");
    assert!(text.contains("http://r11.i.lencr.test/"), "{text}");
    assert!(
        server_saw(&mut server, "error_code=0x12a"),
        "msquic receives 0x12a: {:?}",
        server.lines()
    );

    let (_, report) = connect_json(&server, "leaf-only", &[]);
    assert_eq!(report["close"]["error_code"], 0x12a);
    assert_eq!(
        report["close"]["reason"],
        "unable to get local issuer certificate"
    );
    assert_eq!(report["verdict"]["x509_error"], 20);
}

#[test]
fn real_aioquic_against_real_msquic_reproduces_the_field_report() {
    let mut server = msquic_serving("leaf-only", &[]);
    let output = std::process::Command::new(python())
        .arg(repo().join("scripts/aioquic/connect.py"))
        .args([
            "--cafile",
            scenario("leaf-only").join("roots.pem").to_str().unwrap(),
        ])
        .args([
            "--server-name",
            "localhost",
            "--alpn",
            "hq-interop",
            "127.0.0.1",
        ])
        .arg(server.port.to_string())
        .output()
        .expect("run the aioquic client");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("error 298 unable to get local issuer certificate"),
        "{text}"
    );
    assert!(
        server_saw(&mut server, "error_code=0x12a"),
        "{:?}",
        server.lines()
    );
}

#[test]
fn compare_aioquic_finds_the_same_behaviour_against_msquic() {
    for name in ["full-chain", "leaf-only"] {
        let server = msquic_serving(name, &[]);
        let dir = scenario(name);
        let host = read_line(&dir.join("host"));
        let output = std::process::Command::new(python())
            .arg(repo().join("scripts/aioquic/compare.py"))
            .arg(format!("{host}:{}", server.port))
            .args(["--cacert", dir.join("roots.pem").to_str().unwrap()])
            .args(["--resolve", &format!("{host}:{}:127.0.0.1", server.port)])
            .env("QUICPROBE", env!("CARGO_BIN_EXE_quicprobe"))
            .output()
            .expect("run compare.py");
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("traces: identical (normalised)"), "{text}");
    }
}

#[test]
fn wrong_name_expired_leaf_and_untrusted_root_give_their_exact_verdicts() {
    // (scenario, X509 error, depth, close code msquic receives)
    let cases = [
        ("hostname-mismatch", 62, 0, 0x12a),
        ("expired-leaf", 10, 0, 0x12d),
        ("untrusted-root", 19, 2, 0x12a),
    ];
    for (name, error, depth, code) in cases {
        let expected = read_line(&scenario(name).join("expected"));
        assert_eq!(expected, format!("rejected {error} {depth}"), "{name}");
        let mut server = msquic_serving(name, &[]);
        let (output, report) = connect_json(&server, name, &[]);
        assert_eq!(output.status.code(), Some(60), "{name}: {report}");
        assert_eq!(report["verdict"]["x509_error"], error, "{name}");
        assert_eq!(report["verdict"]["depth"], depth, "{name}");
        assert_eq!(report["close"]["error_code"], code, "{name}");
        assert!(
            server_saw(&mut server, &format!("error_code=0x{code:x}")),
            "{name}: {:?}",
            server.lines()
        );
    }
}

#[test]
fn the_rsa4096_chain_succeeds_and_the_flights_show_the_amplification_limit() {
    let server = msquic_serving("rsa4096-chain", &[]);
    // BoringSSL's default ClientHello (X25519MLKEM768) takes two Initial
    // datagrams: a 7200-byte budget, which this chain fits into.
    let (output, report) = connect_json(&server, "rsa4096-chain", &[]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let flights = &report["flights"];
    assert_eq!(flights["client_initial"]["datagrams"], 2, "{flights}");
    assert_eq!(
        flights["budget_bytes"],
        3 * flights["client_initial"]["bytes"].as_u64().unwrap()
    );
    assert_eq!(flights["amplification_limited"], false, "{flights}");
    assert_eq!(flights["round_trips"], 1);

    // A classic one-datagram ClientHello gives msquic 3600 bytes, and the
    // 5.5 KB chain does not fit: one extra round trip.
    let (output, report) = connect_json(&server, "rsa4096-chain", &["--curves", "X25519"]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let flights = &report["flights"];
    assert_eq!(flights["client_initial"]["bytes"], 1200, "{flights}");
    assert_eq!(flights["budget_bytes"], 3600);
    assert!(flights["server_flight"]["bytes"].as_u64().unwrap() > 3600);
    assert_eq!(flights["amplification_limited"], true);
    assert_eq!(flights["round_trips"], 2);

    let text = trace_of(&connect(
        &server,
        "rsa4096-chain",
        None,
        &["--curves", "X25519"],
    ));
    assert!(
        text.contains("our first flight 1200 B in 1 datagram")
            && text.contains("over the 3x anti-amplification limit (3600 B)")
            && text.contains("1 extra round trip (to save it, make the server's flight smaller")
            && text.contains("2 round trips to the server's Finished"),
        "{text}"
    );
}

#[test]
fn h3_hq_interop_and_a_custom_alpn_negotiate_and_an_unknown_one_is_refused() {
    let server = msquic_serving("full-chain", &["--alpn", "h3,hq-interop,sample"]);
    for alpn in ["h3", "hq-interop", "sample"] {
        let (output, report) = connect_json(&server, "full-chain", &["--alpn", alpn]);
        assert_eq!(output.status.code(), Some(0), "{alpn}: {report}");
        assert_eq!(report["alpn"], alpn);
    }
    let (output, report) = connect_json(&server, "full-chain", &["--alpn", "quicprobe-unknown"]);
    assert_eq!(output.status.code(), Some(35), "{report}");
    assert_eq!(report["close"]["sent_by"], "server");
    assert_eq!(report["close"]["error_code"], 0x178);
    let explanation = report["explanation"].as_str().unwrap_or_default();
    assert!(
        explanation.starts_with("server refused ALPN"),
        "{explanation}"
    );
}

#[test]
fn a_forced_retry_completes_and_the_trace_says_so() {
    let server = msquic_serving("full-chain", &["--retry"]);
    let (output, report) = connect_json(&server, "full-chain", &[]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let stages = stage_names(&report);
    assert_eq!(stages[..2], ["client_hello_sent", "retry"], "{stages:?}");
    assert_eq!(report["flights"]["validated_by_retry"], true);
    let text = trace_of(&connect(&server, "full-chain", None, &[]));
    assert!(
        text.contains("< Retry: the server validates our address"),
        "{text}"
    );
}

#[test]
fn a_64_mib_hq_interop_download_matches_byte_for_byte() {
    const SIZE: usize = 64 * 1024 * 1024;
    let server = msquic_serving("full-chain", &[]);
    let output = connect(
        &server,
        "full-chain",
        Some(&format!("/{SIZE}")),
        &["--json", "--alpn", "hq-interop", "--timeout", "60"],
    );
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["response"]["complete"], true);
    assert_eq!(report["response"]["body_bytes"], SIZE);
    assert_eq!(report["response"]["body_sha256"], pattern_sha256(SIZE));
}

#[test]
fn an_idle_close_is_reported_as_the_servers_idle_timeout() {
    let server = msquic_serving("full-chain", &["--idle-ms", "1000"]);
    let output = connect(
        &server,
        "full-chain",
        None,
        &["--json", "--alpn", "hq-interop", "--hold", "8"],
    );
    let report = json_of(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "not an error of ours: {report}"
    );
    assert_eq!(report["outcome"], "ok");
    let idle = &report["idle_end"];
    assert_eq!(idle["by"], "server", "{idle}");
    assert_eq!(idle["server_idle_timeout_ms"], 1000);
    assert!(idle["idle_ms"].as_u64().unwrap() < 4000, "{idle}");
    let explanation = report["explanation"].as_str().unwrap_or_default();
    assert!(
        explanation.contains("the server's idle timeout (1000 ms"),
        "{explanation}"
    );
    let mut server = server;
    assert!(
        server_saw(&mut server, "closed by idle timeout"),
        "msquic ended it as idle: {:?}",
        server.lines()
    );
}

#[test]
fn quicprobe_recognises_msquic_and_tells_it_from_quiche() {
    let server = msquic_serving("full-chain", &[]);
    let (_, report) = connect_json(&server, "full-chain", &[]);
    assert_eq!(report["server_implementation"]["implementation"], "msquic");
    let text = trace_of(&connect(&server, "full-chain", None, &[]));
    assert!(
        text.contains("* Peer: server looks like msquic ("),
        "{text}"
    );

    let lab = quicprobe::lab::spawn(quicprobe::lab::LabSpec::for_scenario(
        &scenario("full-chain"),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .expect("lab starts");
    let port = lab.addr().port();
    let output = quicprobe(&[
        "connect",
        "--json",
        "--cacert",
        scenario("full-chain").join("roots.pem").to_str().unwrap(),
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        &format!("localhost:{port}"),
    ]);
    let report = json_of(&output);
    assert_eq!(report["server_implementation"]["implementation"], "quiche");
}

#[test]
fn the_msquic_server_stops_cleanly_on_sigterm() {
    let mut server = msquic_serving("full-chain", &[]);
    let status = server.terminate().expect("stops within 10 s");
    assert_eq!(status.code(), Some(0));
    assert!(server_saw(&mut server, "stopped"), "{:?}", server.lines());
}

#[test]
fn a_server_that_stops_mid_download_gives_a_partial_response_not_a_timeout() {
    const GIB: usize = 1 << 30;
    let mut server = msquic_serving("full-chain", &[]);
    let dir = scenario("full-chain");
    let port = server.port;
    let client = std::process::Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args([
            "connect",
            "--json",
            "--alpn",
            "hq-interop",
            "--timeout",
            "30",
        ])
        .args(["--cacert", dir.join("roots.pem").to_str().unwrap()])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/{GIB}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start quicprobe");
    assert!(server_saw(&mut server, "connected alpn=hq-interop"));
    std::thread::sleep(Duration::from_millis(300));
    // msquic closes every connection with application error 0 as it stops.
    server.terminate().expect("the server stops");
    let output = client.wait_with_output().expect("quicprobe ends");
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(18), "{report}");
    assert_eq!(report["outcome"], "partial_response");
    assert_eq!(report["close"]["sent_by"], "server");
    let received = report["response"]["body_bytes"].as_u64().unwrap();
    assert!(received < GIB as u64, "{report}");
    let explanation = report["explanation"].as_str().unwrap_or_default();
    assert!(
        explanation.starts_with("the server closed the connection (0x0 application error"),
        "{explanation}"
    );
}
