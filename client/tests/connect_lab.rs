//! `quicprobe connect` against the lab server over loopback, for every
//! scenario of certs/ and for the ways a connection can fail. The client is
//! the real binary; the server is the real lab, in-process.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use quicprobe::lab::{self, LabEvent, LabHandle, LabSpec};
use serde_json::Value;

mod support;

use support::{certs_dir, json_of, quicprobe, read_line, stage_names};

fn start_lab(dir: &Path, configure: impl FnOnce(&mut LabSpec)) -> LabHandle {
    let mut spec = LabSpec::for_scenario(dir, "127.0.0.1:0".parse().unwrap());
    configure(&mut spec);
    lab::spawn(spec).expect("lab starts")
}

/// `connect --json` to the scenario's name at the lab's port, trusting its roots.
fn connect_args(dir: &Path, addr: SocketAddr, extra: &[&str]) -> Vec<String> {
    support::scenario_connect_args(dir, addr, extra, true)
}

const ACCEPTED_STAGES: [&str; 9] = [
    "client_hello_sent",
    "server_hello",
    "encrypted_extensions",
    "certificate",
    "verdict",
    "certificate_verify",
    "server_finished",
    "client_finished_sent",
    "handshake_done",
];

const REJECTED_STAGES: [&str; 5] = [
    "client_hello_sent",
    "server_hello",
    "encrypted_extensions",
    "certificate",
    "verdict",
];

/// Checks one scenario end to end; returns what was wrong.
fn check_scenario(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let expected = read_line(&dir.join("expected"));
    let lab = start_lab(dir, |_| {});
    let output = quicprobe(&connect_args(dir, lab.addr(), &[]));
    let report = json_of(&output);
    let received = lab.wait_for_close(Duration::from_secs(5));
    let server_handshake_done = received.as_ref().is_some_and(|c| c.after_handshake);
    let close = received.map(|c| (c.is_app, c.error_code, c.reason));
    let mut wrong = Vec::new();
    let mut expect = |what: &str, ok: bool, got: String| {
        if !ok {
            wrong.push(format!("{name}: {what}: got {got}"));
        }
    };
    let stages = stage_names(&report);
    if expected == "accepted" {
        expect(
            "exit 0",
            output.status.code() == Some(0),
            format!("{:?}", output.status),
        );
        expect(
            "outcome ok",
            report["outcome"] == "ok",
            report["outcome"].to_string(),
        );
        expect("stages", stages == ACCEPTED_STAGES, format!("{stages:?}"));
        expect(
            "server saw H3_NO_ERROR",
            close == Some((true, 0x100, String::new())),
            format!("{close:?}"),
        );
    } else {
        let words: Vec<&str> = expected.split_whitespace().collect();
        let (code, depth): (i64, i64) = (words[1].parse().unwrap(), words[2].parse().unwrap());
        let leaf_dates = depth == 0 && (code == 9 || code == 10);
        let wire_code = if leaf_dates { 0x12d } else { 0x12a };
        let reason = report["verdict"]["x509_error_string"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        expect(
            "exit 60",
            output.status.code() == Some(60),
            format!("{:?}", output.status),
        );
        expect(
            "outcome",
            report["outcome"] == "verification_failed",
            report["outcome"].to_string(),
        );
        expect(
            "x509 error",
            report["verdict"]["x509_error"] == code,
            report["verdict"].to_string(),
        );
        expect("stages", stages == REJECTED_STAGES, format!("{stages:?}"));
        expect(
            "server saw 0x100+alert and the verdict as reason",
            close == Some((false, wire_code, reason.clone())) && !reason.is_empty(),
            format!("{close:?}, wanted 0x{wire_code:x} {reason:?}"),
        );
        expect(
            "close in JSON",
            report["close"]["error_code"] == wire_code,
            report["close"].to_string(),
        );
        expect(
            "no handshake_done",
            !stages.iter().any(|s| s == "handshake_done"),
            format!("{stages:?}"),
        );
        expect(
            "the server never completes the handshake",
            !server_handshake_done,
            "the lab saw it complete".into(),
        );
    }
    wrong
}

#[test]
fn every_scenario_over_quic_gives_its_outcome_exit_code_close_and_stages() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(certs_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|d| d.join("expected").is_file())
        // The hostile scenarios (a `hostile` file) are pathological on purpose:
        // two of them never reach the verifier over QUIC (quiche's 64 KiB
        // CRYPTO limit); client/tests/hostile.rs checks all of them over QUIC.
        .filter(|d| !d.join("hostile").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 24, "the whole catalogue");
    let wrong: Vec<String> = dirs.iter().flat_map(|dir| check_scenario(dir)).collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_refused_port_gives_exit_7_within_a_second() {
    let port = {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let dir = certs_dir().join("full-chain");
    let started = Instant::now();
    let output = quicprobe(&connect_args(
        &dir,
        SocketAddr::from(([127, 0, 0, 1], port)),
        &[],
    ));
    assert_eq!(
        output.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(json_of(&output)["outcome"], "refused");
}

#[test]
fn a_silent_udp_socket_gives_exit_28_naming_the_stage() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = certs_dir().join("full-chain");
    let mut args = connect_args(&dir, silent.local_addr().unwrap(), &[]);
    let at = args.iter().position(|a| a == "--timeout").unwrap();
    args[at + 1] = "1".into();
    let output = quicprobe(&args);
    assert_eq!(output.status.code(), Some(28));
    let report = json_of(&output);
    assert_eq!(report["outcome"], "timeout");
    let explanation = report["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("no answer to the Initial"),
        "{explanation}"
    );
    drop(silent);
}

#[test]
fn an_alpn_mismatch_gives_exit_35_with_the_explanation() {
    let dir = certs_dir().join("full-chain");
    let lab = start_lab(&dir, |spec| spec.alpns = vec!["h3".into()]);
    let output = quicprobe(&connect_args(
        &dir,
        lab.addr(),
        &["--alpn", "quicprobe-test"],
    ));
    assert_eq!(output.status.code(), Some(35));
    let report = json_of(&output);
    assert_eq!(report["outcome"], "handshake_failed");
    assert_eq!(report["close"]["sent_by"], "server");
    assert_eq!(report["close"]["error_code"], 0x178);
    assert_eq!(report["close"]["tls_alert"], 120);
    let explanation = report["explanation"].as_str().unwrap();
    assert!(
        explanation.starts_with("server refused ALPN; offered quicprobe-test"),
        "{explanation}"
    );
}

#[test]
fn retry_completes_and_the_trace_shows_it() {
    let dir = certs_dir().join("full-chain");
    let lab = start_lab(&dir, |spec| spec.retry = true);
    let output = quicprobe(&connect_args(&dir, lab.addr(), &[]));
    assert_eq!(output.status.code(), Some(0));
    let stages = stage_names(&json_of(&output));
    assert_eq!(stages[..2], ["client_hello_sent", "retry"], "{stages:?}");
    assert!(stages.contains(&"handshake_done".to_owned()));

    let native = quicprobe(
        &connect_args(&dir, lab.addr(), &[])
            .into_iter()
            .filter(|a| a != "--json")
            .collect::<Vec<_>>(),
    );
    let text = String::from_utf8_lossy(&native.stderr);
    assert!(text.contains("< Retry"), "{text}");
}

#[test]
fn two_hundred_handshakes_fifty_at_a_time_all_succeed_on_one_thread() {
    let dir = certs_dir().join("full-chain");
    let lab = start_lab(&dir, |_| {});
    let output = quicprobe(&connect_args(
        &dir,
        lab.addr(),
        &["--repeat", "200", "--concurrency", "50"],
    ));
    let summary = json_of(&output);
    assert_eq!(summary["connections"], 200, "{summary}");
    assert_eq!(summary["successes"], 200, "{summary}");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn keylog_file_is_written_in_nss_format() {
    let dir = certs_dir().join("full-chain");
    let lab = start_lab(&dir, |_| {});
    let scratch = tempfile::tempdir().unwrap();
    let keylog = scratch.path().join("keys.log");
    let output = quicprobe(&connect_args(
        &dir,
        lab.addr(),
        &["--keylog", keylog.to_str().unwrap()],
    ));
    assert_eq!(output.status.code(), Some(0));
    let mode = std::fs::metadata(&keylog).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600,
        "TLS secrets are for the owner only"
    );
    let text = std::fs::read_to_string(&keylog).unwrap();
    let labels: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
    for wanted in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(labels.contains(&wanted), "{wanted} missing from\n{text}");
    }
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(
            fields.len(),
            3,
            "NSS lines are LABEL CLIENT_RANDOM SECRET: {line}"
        );
        assert_eq!(fields[1].len(), 64, "32-byte client random in hex: {line}");
    }
}

#[test]
fn qlog_file_is_written_and_parses_as_json() {
    let dir = certs_dir().join("full-chain");
    let lab = start_lab(&dir, |_| {});
    let scratch = tempfile::tempdir().unwrap();
    let output = quicprobe(&connect_args(
        &dir,
        lab.addr(),
        &["--qlog-dir", scratch.path().to_str().unwrap()],
    ));
    assert_eq!(output.status.code(), Some(0));
    let files: Vec<PathBuf> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    // JSON-SEQ (RFC 7464): records start with RS (0x1e).
    let records: Vec<Value> = text
        .split('\u{1e}')
        .filter(|r| !r.trim().is_empty())
        .map(|r| serde_json::from_str(r).expect("each qlog record is JSON"))
        .collect();
    assert!(records.len() > 5, "{} records", records.len());
    assert!(text.contains("handshake_done"));
}

/// `connect --json` to an https:// URL path on the full-chain lab.
fn fetch(lab: &LabHandle, path: &str, alpn: &str) -> Value {
    let dir = certs_dir().join("full-chain");
    let port = lab.addr().port();
    let output = quicprobe(&[
        "connect",
        "--json",
        "--alpn",
        alpn,
        "--cacert",
        dir.join("roots.pem").to_str().unwrap(),
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        &format!("https://localhost:{port}{path}"),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    json_of(&output)
}

#[test]
fn the_lab_answers_h3_and_hq_interop_gets() {
    let lab = start_lab(&certs_dir().join("full-chain"), |_| {});
    let root = fetch(&lab, "/", "h3");
    assert_eq!(root["response"]["status"], 200);
    assert_eq!(
        root["response"]["body_bytes"],
        "quicprobe lab: hello over HTTP/3\n".len()
    );
    let bytes = fetch(&lab, "/bytes/100000", "h3");
    assert_eq!(bytes["response"]["body_bytes"], 100_000);
    assert_eq!(bytes["response"]["complete"], true);
    let hq = fetch(&lab, "/5000", "hq-interop");
    assert_eq!(hq["alpn"], "hq-interop");
    assert_eq!(hq["response"]["body_bytes"], 5000);
    let logged = lab.wait_for(
        Duration::from_secs(5),
        |e| matches!(e, LabEvent::Request { path, .. } if path == "/5000"),
    );
    assert!(logged.is_some(), "the lab logs each request");
}

#[test]
fn serve_prints_listening_logs_the_close_it_receives_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let mut server = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args([
            "serve",
            "--scenario",
            "leaf-only",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let addr: SocketAddr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("listening on ")
                .map(|a| a.parse().unwrap())
        })
        .expect("a 'listening on ADDR' line");
    let dir = certs_dir().join("leaf-only");
    let output = quicprobe(&connect_args(&dir, addr, &[]));
    assert_eq!(output.status.code(), Some(60));
    let close_line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("close received"))
        .expect("the lab logs the close");
    assert!(
        close_line.contains("0x12a")
            && close_line.contains("unable to get local issuer certificate"),
        "{close_line}"
    );
    // SIGTERM through kill(1), as a supervisor sends it.
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "serve stops cleanly on SIGTERM");
    assert!(lines.map_while(Result::ok).any(|line| line == "stopped"));
}

#[test]
fn serve_with_a_missing_chain_is_one_line_and_exit_2() {
    let output = quicprobe(&[
        "serve",
        "--chain",
        "/nonexistent/chain.pem",
        "--key",
        "/nonexistent/key.pem",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/chain.pem"), "{stderr}");
}

#[test]
fn bad_targets_and_flags_are_one_line_usage_errors() {
    for args in [
        vec!["connect", "http://localhost:4433/"],
        vec!["connect", "localhost:0"],
        vec!["connect", "--resolve", "nonsense", "localhost:4433"],
        vec!["connect", "--timeout", "-1", "127.0.0.1:9"],
        vec![
            "connect",
            "--cacert",
            "/nonexistent/roots.pem",
            "127.0.0.1:9",
        ],
    ] {
        let output = quicprobe(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// A server that speaks only QUIC v2 (as msquic can be configured to): it
/// answers every Initial with a Version Negotiation packet offering v2.
fn spawn_v2_only_responder() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    // Answers until the client has been quiet for half a second.
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let header =
                quiche::Header::from_slice(&mut buf[..len], quiche::MAX_CONN_ID_LEN).unwrap();
            // RFC 9000 §17.2.1: long header, version 0, the client's IDs swapped.
            let mut packet = vec![0x80, 0, 0, 0, 0];
            packet.push(header.scid.len() as u8);
            packet.extend_from_slice(&header.scid);
            packet.push(header.dcid.len() as u8);
            packet.extend_from_slice(&header.dcid);
            packet.extend_from_slice(&0x6b33_43cfu32.to_be_bytes()); // QUIC v2
            socket.send_to(&packet, from).unwrap();
        }
    });
    (addr, thread)
}

#[test]
fn a_server_without_quic_v1_is_reported_through_version_negotiation() {
    let (addr, responder) = spawn_v2_only_responder();
    let dir = certs_dir().join("full-chain");
    let output = quicprobe(&connect_args(&dir, addr, &[]));
    responder.join().unwrap();
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(35), "{report}");
    assert_eq!(
        stage_names(&report),
        ["client_hello_sent", "version_negotiation"]
    );
    let explanation = report["explanation"].as_str().unwrap();
    assert!(explanation.contains("0x6b3343cf"), "{explanation}");
}

#[test]
fn insecure_goes_on_but_still_says_loudly_what_verification_said() {
    let dir = certs_dir().join("leaf-only");
    let lab = start_lab(&dir, |_| {});
    let output = quicprobe(&connect_args(&dir, lab.addr(), &["--insecure"]));
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["insecure"], true);
    assert_eq!(report["insecure_override"], true);
    assert_eq!(report["verdict"]["accepted"], false);
    assert_eq!(report["verdict"]["x509_error"], 20);
    let explanation = report["explanation"].as_str().unwrap();
    assert!(explanation.contains("INSECURE"), "{explanation}");
    assert!(stage_names(&report).contains(&"handshake_done".to_owned()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--insecure"),
        "a warning on stderr: {stderr}"
    );
    let mut quiet_args = vec!["-q".to_owned()];
    quiet_args.extend(connect_args(&dir, lab.addr(), &["--insecure"]));
    let quiet = quicprobe(&quiet_args);
    assert!(
        String::from_utf8_lossy(&quiet.stderr).contains("WARNING: --insecure"),
        "-q does not silence the warning"
    );
}

#[test]
fn ipv6_loopback_target_in_brackets_with_sni() {
    let dir = certs_dir().join("full-chain");
    let lab = lab::spawn(LabSpec::for_scenario(&dir, "[::1]:0".parse().unwrap())).unwrap();
    let port = lab.addr().port();
    let output = quicprobe(&[
        "connect",
        "--json",
        "--sni",
        "localhost",
        "--cacert",
        dir.join("roots.pem").to_str().unwrap(),
        &format!("[::1]:{port}"),
    ]);
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["target"], format!("[::1]:{port}"));
    assert_eq!(report["address"], format!("[::1]:{port}"));
}

#[test]
fn a_refusing_address_falls_back_to_the_next_one() {
    // As on stock Debian, where localhost is ::1 first: the lab listens on
    // 127.0.0.1 only, so ::1 refuses and quicprobe tries 127.0.0.1.
    let dir = certs_dir().join("full-chain");
    let lab = start_lab(&dir, |_| {});
    let port = lab.addr().port();
    let output = quicprobe(&[
        "connect",
        "--json",
        "--cacert",
        dir.join("roots.pem").to_str().unwrap(),
        "--resolve",
        &format!("localhost:{port}:[::1],127.0.0.1"),
        &format!("localhost:{port}"),
    ]);
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["address"], format!("127.0.0.1:{port}"));
    assert_eq!(report["refused_before"][0], format!("[::1]:{port}"));
}

/// A "server" that answers every datagram with garbage, some of it shaped
/// like long-header packets (Retry, version negotiation, Initial).
fn spawn_garbage_responder() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        };
        while let Ok((_, from)) = socket.recv_from(&mut buf) {
            for first in [0xc0u8, 0xf0, 0x80, 0x40, 0x00] {
                let len = 1 + usize::from(next()) * 4;
                let mut packet: Vec<u8> = (0..len).map(|_| next()).collect();
                packet[0] = first | (packet[0] & 0x0f);
                if first == 0x80 && packet.len() > 5 {
                    packet[1..5].copy_from_slice(&[0, 0, 0, 0]);
                }
                let _ = socket.send_to(&packet, from);
            }
        }
    });
    (addr, thread)
}

#[test]
fn garbage_from_the_server_ends_in_a_timeout_never_a_panic() {
    let (addr, responder) = spawn_garbage_responder();
    let dir = certs_dir().join("full-chain");
    let mut args = connect_args(&dir, addr, &[]);
    let at = args.iter().position(|a| a == "--timeout").unwrap();
    args[at + 1] = "1".into();
    let output = quicprobe(&args);
    responder.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report = json_of(&output);
    assert!(
        matches!(output.status.code(), Some(28) | Some(35)),
        "a timeout or a handshake failure: {report}"
    );
}

#[test]
fn the_lab_survives_garbage_and_still_serves() {
    let dir = certs_dir().join("full-chain");
    let lab = start_lab(&dir, |_| {});
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut state: u64 = 7;
    for round in 0..300usize {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 1 + (state >> 40) as usize % 1400;
        let mut packet: Vec<u8> = (0..len)
            .map(|i| (state >> (i % 56)) as u8 ^ i as u8)
            .collect();
        // Every other datagram looks like a QUIC v1 Initial.
        if round % 2 == 0 && packet.len() > 6 {
            packet[0] = 0xc0 | (packet[0] & 0x0f);
            packet[1..5].copy_from_slice(&1u32.to_be_bytes());
        }
        sender.send_to(&packet, lab.addr()).unwrap();
    }
    let output = quicprobe(&connect_args(&dir, lab.addr(), &[]));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn json_trace_style_is_one_json_object_per_line_ending_with_the_outcome() {
    let dir = certs_dir().join("leaf-only");
    let lab = start_lab(&dir, |_| {});
    let args: Vec<String> = connect_args(&dir, lab.addr(), &["--trace-style", "json"])
        .into_iter()
        .filter(|a| a != "--json")
        .collect();
    let output = quicprobe(&args);
    assert_eq!(output.status.code(), Some(60));
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect();
    let names: Vec<&str> = lines.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names.last(), Some(&"outcome"));
    assert_eq!(names[..names.len() - 1], REJECTED_STAGES);
    assert_eq!(lines.last().unwrap()["exit_code"], 60);
}

#[test]
fn quiet_prints_one_line_per_connection() {
    let dir = certs_dir().join("leaf-only");
    let lab = start_lab(&dir, |_| {});
    let mut args = vec!["-q".to_owned()];
    args.extend(
        connect_args(&dir, lab.addr(), &[])
            .into_iter()
            .filter(|a| a != "--json"),
    );
    let output = quicprobe(&args);
    assert_eq!(output.status.code(), Some(60));
    // The one line is curl's error line, on stderr; nothing is data.
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("quicprobe: (60) "), "{stderr}");
}

#[test]
fn connect_to_and_address_families_choose_where_to_dial_not_what_to_verify() {
    let dir = certs_dir().join("full-chain");
    let lab = start_lab(&dir, |_| {});
    let port = lab.addr().port();
    let roots = dir.join("roots.pem").display().to_string();
    // localhost:443 is dialled at the lab's address; the name checked stays localhost.
    let redirect = format!("localhost:443:127.0.0.1:{port}");
    let output = quicprobe(&[
        "connect",
        "--json",
        "-4",
        "--cacert",
        &roots,
        "--connect-to",
        &redirect,
        "localhost:443",
    ]);
    let report = json_of(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["address"], format!("127.0.0.1:{port}"));
    assert_eq!(report["verdict"]["peer_name"]["value"], "localhost");

    // Only an IPv6 address is on offer, and -4 forbids it: curl's "couldn't
    // resolve host" (6), as scan says for a name without an address.
    let output = quicprobe(&[
        "connect",
        "-4",
        "--cacert",
        &roots,
        &format!("[::1]:{port}"),
    ]);
    assert_eq!(output.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no IPv4 address"));
}

#[test]
fn local_port_binds_the_port_asked_for() {
    let dir = certs_dir().join("full-chain");
    let lab = start_lab(&dir, |_| {});
    let wanted = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let range = format!("{wanted}-{}", wanted.saturating_add(20));
    let output = quicprobe(&connect_args(&dir, lab.addr(), &["--local-port", &range]));
    assert_eq!(output.status.code(), Some(0), "{}", json_of(&output));
    let seen = lab.wait_for(Duration::from_secs(5), |e| {
        matches!(e, LabEvent::HandshakeDone { .. })
    });
    let Some(LabEvent::HandshakeDone { peer, .. }) = seen else {
        panic!("the lab saw no handshake");
    };
    assert!((wanted..=wanted + 20).contains(&peer.port()), "{peer}");

    let output = quicprobe(&["connect", "--local-port", "9-1", "127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn certificate_compression_is_offered_and_reported_when_the_server_uses_it() {
    let dir = certs_dir().join("full-chain");
    let plain = start_lab(&dir, |_| {});
    let compressing = start_lab(&dir, |spec| spec.compress_certificates = true);
    let certificate_stage = |lab: &LabHandle| {
        let report = json_of(&quicprobe(&connect_args(&dir, lab.addr(), &[])));
        assert_eq!(report["outcome"], "ok", "{report}");
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "certificate")
            .cloned()
            .unwrap()
    };
    let stage = certificate_stage(&compressing);
    assert_eq!(stage["compression"]["algorithm"], "zlib", "{stage}");
    assert_eq!(stage["certificates"], 2);
    assert!(
        stage["compression"]["wire_bytes"].as_u64().unwrap() < stage["bytes"].as_u64().unwrap()
    );
    let stage = certificate_stage(&plain);
    assert!(stage.get("compression").is_none(), "{stage}");
}

#[test]
fn a_stapled_ocsp_response_and_sct_list_are_reported() {
    let dir = certs_dir().join("full-chain");
    // The client reports what came, it does not judge it: any bytes will do
    // for the OCSP response; the SCT list must be well formed for BoringSSL
    // (a u16-prefixed list of u16-prefixed, non-empty SCTs).
    let sct = [0u8; 40];
    let mut list = vec![0, 42, 0, 40];
    list.extend_from_slice(&sct);
    let lab = start_lab(&dir, |spec| {
        spec.ocsp_response = Some(vec![0x30; 300]);
        spec.sct_list = Some(list.clone());
    });
    let report = json_of(&quicprobe(&connect_args(&dir, lab.addr(), &[])));
    assert_eq!(report["outcome"], "ok", "{report}");
    assert_eq!(report["stapled"]["ocsp_response_bytes"], 300, "{report}");
    assert_eq!(report["stapled"]["sct_list_bytes"], list.len(), "{report}");

    let plain = start_lab(&dir, |_| {});
    let report = json_of(&quicprobe(&connect_args(&dir, plain.addr(), &[])));
    assert_eq!(report["stapled"]["ocsp_response_bytes"], Value::Null);
    assert_eq!(report["stapled"]["sct_list_bytes"], Value::Null);
}

/// Each packet of a qlog file, in order: (sent by us, packet type, frame types).
fn qlog_packets(folder: &Path) -> Vec<(bool, String, Vec<String>)> {
    let file = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .expect("a qlog file");
    let text = std::fs::read_to_string(file).unwrap();
    text.split('\u{1e}')
        .filter_map(|r| serde_json::from_str::<Value>(r).ok())
        .filter_map(|record| {
            let sent = match record["name"].as_str()? {
                "quic:packet_sent" => true,
                "quic:packet_received" => false,
                _ => return None,
            };
            let data = &record["data"];
            let packet_type = data["header"]["packet_type"].as_str()?.to_owned();
            let frames = data["frames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["frame_type"].as_str().map(str::to_owned))
                .collect();
            Some((sent, packet_type, frames))
        })
        .collect()
}

/// As aioquic does, the client sends after each datagram of the server's
/// handshake flight: its Handshake ACK (which drops its Initial keys) follows
/// the first datagram that carried Handshake data, before the rest of the
/// flight is read, so a rejection found in a later datagram is closed in a
/// Handshake packet. With X25519 the lab sends `missing-intermediate`'s
/// flight in two datagrams, the Certificate ending in the second.
#[test]
fn handshake_datagrams_are_answered_one_at_a_time_as_aioquic_does() {
    let dir = certs_dir().join("missing-intermediate");
    let lab = start_lab(&dir, |_| {});
    let scratch = tempfile::tempdir().unwrap();
    let qlog = ["--curves", "X25519", "--qlog-dir"];
    let mut extra = qlog.to_vec();
    extra.push(scratch.path().to_str().unwrap());
    let output = quicprobe(&connect_args(&dir, lab.addr(), &extra));
    assert_eq!(output.status.code(), Some(60));
    let packets = qlog_packets(scratch.path());
    let first_handshake_sent = packets
        .iter()
        .position(|(sent, ty, _)| *sent && ty == "handshake");
    let last_handshake_received = packets
        .iter()
        .rposition(|(sent, ty, _)| !*sent && ty == "handshake");
    assert!(
        first_handshake_sent < last_handshake_received && first_handshake_sent.is_some(),
        "{packets:?}"
    );
    let close = packets
        .iter()
        .find(|(sent, _, frames)| *sent && frames.iter().any(|f| f == "connection_close"));
    assert_eq!(
        close.map(|c| c.1.as_str()),
        Some("handshake"),
        "{packets:?}"
    );
    let received = lab.wait_for_close(Duration::from_secs(5)).expect("a close");
    assert_eq!((received.is_app, received.error_code), (false, 0x12a));
}
