//! The command line's edges, as a curl user meets them (issue 16): lost
//! output exits 23, errors name the flag and the value in one
//! `quicprobe: ...` line, the same failure gets the same code in every
//! command, curl's flags (-m, --connect-timeout, -s, -f, -w), every --help
//! lists its exit codes, -v speaks curl's `* ` lines and -q is quiet. Each
//! test runs the binary against a lab it starts on 127.0.0.1.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use quicprobe::lab::{LabEvent, LabHandle};
use support::{json_of, quicprobe, scenario};

fn start_lab() -> LabHandle {
    support::lab_for("full-chain")
}

fn roots() -> String {
    support::roots_of("full-chain")
}

/// `quicprobe COMMAND --cacert roots --resolve localhost:PORT:127.0.0.1 EXTRA... URL`.
fn run(command: &str, port: u16, extra: &[&str], url: &str) -> Output {
    let mut args = vec![
        command.to_owned(),
        "--cacert".to_owned(),
        roots(),
        "--resolve".to_owned(),
        format!("localhost:{port}:127.0.0.1"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(url.to_owned());
    quicprobe(&args)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One `quicprobe: ...` line on stderr, exit `code`, and the line says `words`.
fn assert_one_error_line(output: &Output, code: i32, words: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {err}");
    assert!(lines[0].starts_with("quicprobe: "), "{err}");
    for word in words {
        assert!(lines[0].contains(word), "{word:?} in {err}");
    }
}

/// No handshake reached the lab: the run stopped before connecting.
fn assert_no_handshake(lab: &LabHandle) {
    let event = lab.next_event(Duration::from_millis(200));
    assert!(
        !matches!(event, Some(LabEvent::HandshakeDone { .. })),
        "{event:?}"
    );
}

// --- A. Lost output exits 23 ---------------------------------------------

#[test]
fn output_into_a_missing_folder_exits_23_before_connecting() {
    let lab = start_lab();
    let port = lab.addr().port();
    let url = format!("https://localhost:{port}/");
    let output = run("get", port, &["-o", "/nonexistent/dir/x"], &url);
    assert_one_error_line(&output, 23, &["-o /nonexistent/dir/x", "cannot write"]);
    assert_no_handshake(&lab);
}

#[test]
fn a_body_that_cannot_be_written_exits_23_and_the_json_says_so() {
    let lab = start_lab();
    let port = lab.addr().port();
    let url = format!("https://localhost:{port}/bytes/100000");
    let output = run("get", port, &["--json", "-o", "/dev/full"], &url);
    assert_eq!(output.status.code(), Some(23), "{}", stderr(&output));
    let report = json_of(&output);
    assert_eq!(report["exit_code"], 23, "{report}");
    assert_eq!(report["outcome"], "write_error");
    assert!(stderr(&output).starts_with("quicprobe: (23)"));
}

#[test]
fn dash_o_dash_is_stdout_not_a_file_named_dash() {
    let lab = start_lab();
    let port = lab.addr().port();
    let scratch = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .current_dir(scratch.path())
        .args(["get", "--cacert", &roots(), "--resolve"])
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(["-o", "-"])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "quicprobe lab: hello over HTTP/3\n");
    assert!(!scratch.path().join("-").exists());
}

#[test]
fn every_file_flag_into_a_missing_folder_exits_23() {
    let lab = start_lab();
    let port = lab.addr().port();
    let target = format!("localhost:{port}");
    for flag in ["--keylog", "--session-file", "--json-file"] {
        let output = run("connect", port, &[flag, "/nonexistent/dir/file"], &target);
        assert_one_error_line(&output, 23, &[flag, "/nonexistent/dir/file"]);
    }
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("not/yet");
    let output = run(
        "connect",
        port,
        &["--qlog-dir", missing.to_str().unwrap()],
        &target,
    );
    assert_one_error_line(
        &output,
        23,
        &["--qlog-dir", "quicprobe does not create folders"],
    );
    assert!(!missing.exists(), "no folder is created");
    assert_no_handshake(&lab);
}

// --- B. Errors that name the flag and the value -------------------------

#[test]
fn empty_alpn_and_sni_are_named_not_tls_fail() {
    let lab = start_lab();
    let port = lab.addr().port();
    let target = format!("localhost:{port}");
    let output = run("connect", port, &["--alpn", ""], &target);
    assert_one_error_line(&output, 2, &["--alpn \"\"", "1 to 255 bytes"]);
    let output = run("connect", port, &["--sni", ""], &target);
    assert_one_error_line(&output, 2, &["--sni \"\"", "not a host name"]);
    assert!(!stderr(&output).contains("TlsFail"));
}

#[test]
fn serve_names_a_key_that_does_not_match_the_chain() {
    let output = quicprobe(&[
        "serve",
        "--chain",
        scenario("full-chain").join("chain.pem").to_str().unwrap(),
        "--key",
        scenario("leaf-only").join("key.pem").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_one_error_line(
        &output,
        2,
        &[
            "--key",
            "leaf-only/key.pem",
            "does not match the certificate in --chain",
        ],
    );
}

#[test]
fn timeouts_zero_and_negative_are_named_sentences() {
    for (value, command) in [
        ("0", "connect"),
        ("-1", "connect"),
        ("-1", "get"),
        ("-2.5", "scan"),
    ] {
        let mut args = vec![command, "--timeout", value];
        match command {
            "scan" => args.extend(["--targets", "/dev/null"]),
            _ => args.push("https://localhost:1/"),
        }
        let output = quicprobe(&args);
        assert_one_error_line(
            &output,
            2,
            &[
                &format!("timeout {value}:"),
                "not a positive number of seconds",
            ],
        );
        assert!(
            !stderr(&output).contains("'--"),
            "no clap advice: {}",
            stderr(&output)
        );
    }
    let output = quicprobe(&["connect", "--repeat", "many", "localhost:1"]);
    assert_one_error_line(&output, 2, &["'many'", "--repeat"]);
}

#[test]
fn a_tiny_timeout_against_a_live_server_says_what_is_known() {
    let lab = start_lab();
    let port = lab.addr().port();
    let output = run(
        "connect",
        port,
        &["--json", "--connect-timeout", "0.000001"],
        &format!("localhost:{port}"),
    );
    let report = json_of(&output);
    assert_eq!(report["exit_code"], 28, "{report}");
    let explanation = report["explanation"].as_str().unwrap();
    assert!(!explanation.contains("nothing listens"), "{explanation}");
    assert!(!explanation.contains("0.0 s"), "{explanation}");
    assert!(
        explanation.contains("within 0.000001 s (--connect-timeout)"),
        "{explanation}"
    );
}

// --- C. Consistency ------------------------------------------------------

#[test]
fn no_address_of_the_family_is_exit_6_as_in_scan() {
    let output = quicprobe(&[
        "connect",
        "-6",
        "--resolve",
        "localhost:4433:127.0.0.1",
        "localhost:4433",
    ]);
    assert_one_error_line(&output, 6, &["no IPv6 address"]);
}

#[test]
fn an_uppercase_scheme_and_a_user_name_are_accepted_as_curl_does() {
    let lab = start_lab();
    let port = lab.addr().port();
    let output = run(
        "connect",
        port,
        &[],
        &format!("HTTPS://user@localhost:{port}/"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the user name in the URL is not used"),
        "{}",
        stderr(&output)
    );
}

// --- D. curl's flags ------------------------------------------------------

#[test]
fn write_out_fills_in_curls_and_quicprobes_variables() {
    let lab = start_lab();
    let port = lab.addr().port();
    let format = "%{exit_code} %{http_code} %{http_version} %{remote_port} %{verdict} \
                  %{alpn} %{ssl_verify_result} %{url}\\n%{stderr}to stderr";
    let output = run(
        "connect",
        port,
        &["-s", "-w", format],
        &format!("https://localhost:{port}/"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let last = stdout(&output)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        last,
        format!("0 200 3 {port} accepted h3 0 https://localhost:{port}/")
    );
    assert!(stderr(&output).ends_with("to stderr"));
    let output = run(
        "get",
        port,
        &["-w", "@/nonexistent/format"],
        &format!("https://localhost:{port}/"),
    );
    assert_one_error_line(&output, 2, &["-w @/nonexistent/format"]);
}

#[test]
fn fail_turns_an_http_error_into_exit_22_without_the_body() {
    let lab = start_lab();
    let port = lab.addr().port();
    let url = format!("https://localhost:{port}/no-such-page");
    let output = run("get", port, &["-f", "-w", "%{http_code}"], &url);
    assert_eq!(output.status.code(), Some(22), "{}", stderr(&output));
    assert_eq!(stdout(&output), "404", "only the write-out");
    assert!(stderr(&output).contains("returned error: 404"));
    let without = run("get", port, &[], &url);
    assert_eq!(without.status.code(), Some(0));
}

#[test]
fn max_time_bounds_the_whole_transfer() {
    let lab = start_lab();
    let port = lab.addr().port();
    // 1 GiB cannot arrive in 0.3 s, even on loopback.
    let url = format!("https://localhost:{port}/bytes/1073741824");
    let output = run(
        "get",
        port,
        &["-m", "0.3", "-o", "/dev/null", "--json"],
        &url,
    );
    let report = json_of(&output);
    assert_eq!(report["exit_code"], 28, "{report}");
    assert!(report["elapsed_ms"].as_f64().unwrap() < 5000.0);
    assert!(
        report["explanation"].as_str().unwrap().contains("stalled")
            || report["explanation"]
                .as_str()
                .unwrap()
                .contains("-m/--max-time"),
        "{report}"
    );
}

// --- E, F. Help, logging, quiet --------------------------------------------

#[test]
fn every_help_has_examples_and_the_exit_codes() {
    for command in [
        "connect", "get", "scan", "verify", "serve", "demo", "impair",
    ] {
        let output = quicprobe(&[command, "--help"]);
        let text = stdout(&output);
        assert!(text.contains("Examples:"), "{command}");
        assert!(text.contains("Exit codes"), "{command}");
        assert!(text.contains("23  a file asked for"), "{command}");
    }
    assert!(stdout(&quicprobe(&["connect", "--help"])).contains("%{time_handshake}"));
}

#[test]
fn verbose_speaks_curls_lines_and_keeps_quiche_quiet() {
    let lab = start_lab();
    let port = lab.addr().port();
    let output = run("connect", port, &["-v"], &format!("localhost:{port}"));
    let err = stderr(&output);
    for line in [
        format!("* Host localhost:{port} was resolved."),
        "* IPv4: 127.0.0.1".to_owned(),
        "* trust store: --cacert".to_owned(),
        "* ALPN: quicprobe offers h3".to_owned(),
        format!("*   Trying 127.0.0.1:{port}..."),
        "SO_RCVBUF".to_owned(),
    ] {
        assert!(err.contains(&line), "{line:?} in:\n{err}");
    }
    // The trace may name quiche (the peer's guess); quiche's own log lines
    // carry their module path.
    assert!(!err.contains(" quiche::"), "no quiche lines at -v:\n{err}");
}

#[test]
fn verify_quiet_prints_one_line() {
    let output = quicprobe(&[
        "verify",
        "-q",
        "--chain",
        scenario("leaf-only").join("chain.pem").to_str().unwrap(),
        "--cacert",
        scenario("leaf-only").join("roots.pem").to_str().unwrap(),
        "--host",
        "localhost",
    ]);
    assert_eq!(output.status.code(), Some(60));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("verify error:num=20"), "{text}");
    assert!(Path::new(env!("CARGO_BIN_EXE_quicprobe")).exists());
}
