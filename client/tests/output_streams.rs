//! Where quicprobe's output goes and when, as curl's: data (bodies, --json,
//! the JSON trace style) on stdout; the trace, progress and errors on
//! stderr, each trace line when its event happens; the --repeat summary
//! last, and a partial one on Ctrl-C.

mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use quicprobe::lab::LabHandle;
use support::{certs_dir, quicprobe};

fn start_lab(name: &str) -> (LabHandle, std::path::PathBuf) {
    (support::lab_for(name), certs_dir().join(name))
}

/// `connect` to the scenario's name at `addr`, trusting its roots.
fn connect_args(dir: &Path, addr: SocketAddr, extra: &[&str]) -> Vec<String> {
    support::scenario_connect_args(dir, addr, extra, false)
}

#[test]
fn the_trace_and_the_failure_line_go_to_stderr_and_nothing_to_stdout() {
    let (lab, dir) = start_lab("leaf-only");
    let output = quicprobe(&connect_args(&dir, lab.addr(), &[]));
    assert_eq!(output.status.code(), Some(60));
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("* Connecting to localhost:"), "{stderr}");
    assert!(
        stderr.contains("verify error:num=20:unable to get local issuer certificate"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("quicprobe: (60) ")),
        "{stderr}"
    );
}

#[test]
fn the_aioquic_trace_goes_to_stderr_as_aioquics_log_does() {
    let (lab, dir) = start_lab("leaf-only");
    let output = quicprobe(&connect_args(
        &dir,
        lab.addr(),
        &["--trace-style", "aioquic"],
    ));
    assert_eq!(output.status.code(), Some(60));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(" WARNING quic ["), "{stderr}");
}

#[test]
fn json_output_alone_is_on_stdout() {
    let (lab, dir) = start_lab("leaf-only");
    for flags in [&["--json"][..], &["--trace-style", "json"][..]] {
        let output = quicprobe(&connect_args(&dir, lab.addr(), flags));
        assert_eq!(output.status.code(), Some(60), "{flags:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout
                .lines()
                .all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok()),
            "{flags:?}: {stdout}"
        );
        assert!(!stdout.is_empty(), "{flags:?}");
    }
}

/// Spawns quicprobe with its stderr read line by line on a thread.
fn spawn_reading_stderr(args: &[String]) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run quicprobe");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    (child, received)
}

#[test]
fn the_first_trace_line_comes_before_a_silent_server_times_out() {
    // A bound UDP socket that never answers: the handshake can only time out.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let args: Vec<String> = ["connect", "--timeout", "4", &format!("127.0.0.1:{port}")]
        .map(String::from)
        .to_vec();
    let started = Instant::now();
    let (mut child, lines) = spawn_reading_stderr(&args);
    let first = lines
        .recv_timeout(Duration::from_secs(3))
        .expect("a trace line before the 4 s timeout");
    let at = started.elapsed();
    assert!(first.starts_with("* Connecting to 127.0.0.1:"), "{first}");
    let second = lines
        .recv_timeout(Duration::from_secs(3))
        .expect("the ClientHello line");
    assert!(second.contains("> ClientHello (1)"), "{second}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running when the first lines came ({at:?})"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(28));
}

#[test]
fn the_repeat_summary_comes_last_after_the_failures() {
    let (lab, dir) = start_lab("leaf-only");
    let mut args = connect_args(&dir, lab.addr(), &["--repeat", "3"]);
    let target = args.pop().unwrap();
    args.push(target);
    let output = quicprobe(&args);
    assert_eq!(output.status.code(), Some(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("quicprobe: (60)"))
            .count(),
        3,
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("0/3 connections succeeded") && !last.contains("handshakes/s"),
        "{stdout}"
    );
}

#[test]
fn ctrl_c_during_a_repeat_prints_a_partial_summary() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(["connect", "--repeat", "20", "--timeout", "1"])
        .arg(format!("127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run quicprobe");
    // Two connections time out, the third is in flight.
    std::thread::sleep(Duration::from_millis(2500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "it stops at once"
    );
    assert_eq!(output.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("quicprobe: interrupted after"), "{stdout}");
    assert!(stdout.contains(" of 20 connections ended"), "{stdout}");
    // About two connections had timed out; a loaded machine may have
    // started the run late, so the count is not pinned.
    let last = stdout.lines().last().unwrap_or_default();
    let ended: usize = last
        .strip_prefix("0/")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a summary of what ended: {stdout}"));
    assert!((1..20).contains(&ended), "{stdout}");
    assert!(last.contains("no handshake completed"), "{stdout}");
}

#[test]
fn demo_prints_its_acts_on_stderr_and_json_alone_on_stdout() {
    let output = quicprobe(&["demo"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first_act = stderr.find("== 1.").expect("act 1");
    let first_trace = stderr.find("* Connecting to").expect("a trace");
    assert!(first_act < first_trace, "{stderr}");
    assert!(
        stderr.contains("demo: both outcomes as expected"),
        "{stderr}"
    );
    let json = quicprobe(&["demo", "--json"]);
    assert_eq!(json.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&json.stdout).lines().count(), 2);
}

#[test]
fn the_aioquic_trace_says_so_when_aioquic_would_decide_otherwise() {
    // A clientAuth-only EKU: quicprobe (and OpenSSL's ssl_server purpose)
    // rejects it; aioquic checks no EKU and would connect.
    let (lab, dir) = start_lab("client-auth-eku");
    let output = quicprobe(&connect_args(
        &dir,
        lab.addr(),
        &["--trace-style", "aioquic"],
    ));
    assert_eq!(output.status.code(), Some(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let marked: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("# quicprobe: differs from aioquic"))
        .collect();
    assert_eq!(marked.len(), 1, "{stderr}");
    assert!(
        marked[0].contains("aioquic itself would accept"),
        "{stderr}"
    );
    // The same chain with the full chain's verdicts agreeing: no such line.
    let (agreeing_lab, agreeing) = start_lab("leaf-only");
    let output = quicprobe(&connect_args(
        &agreeing,
        agreeing_lab.addr(),
        &["--trace-style", "aioquic"],
    ));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("# quicprobe:"));
}

#[test]
fn quiet_means_quiet_in_serve_too() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args([
            "-q",
            "serve",
            "--scenario",
            "leaf-only",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(support::repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run quicprobe serve");
    let stdout = child.stdout.take().expect("stdout");
    let first = BufReader::new(stdout).lines().next();
    let _ = child.kill();
    let _ = child.wait();
    let first = first.expect("a line").expect("text");
    assert!(first.starts_with("listening on "), "{first}");
}
