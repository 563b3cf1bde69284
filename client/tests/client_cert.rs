//! Client certificates end to end: `--cert`/`--key`/`--pass`/`--cert-type`
//! against the lab (`serve --client-ca [--require-client-cert]`) and against
//! the msquic test server (`--require-client-cert --client-ca`): what is
//! sent, what the trace and the JSON say, and the words when the server
//! requires or rejects the certificate. The files are certs/client-auth/;
//! the server presents certs/full-chain/.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::{json_of, quicprobe, scenario, stage_names, start_msquic, PeerServer};

fn client_file(name: &str) -> String {
    support::certs_dir()
        .join("client-auth")
        .join(name)
        .display()
        .to_string()
}

const PASSWORD: &str = "quicprobe-test";

/// `quicprobe serve --scenario full-chain` asking for client certificates
/// under the client CA; `required` adds `--require-client-cert`.
fn lab(required: bool) -> PeerServer {
    let mut args: Vec<String> = [
        "serve",
        "--scenario",
        "full-chain",
        "--listen",
        "127.0.0.1:0",
        "--client-ca",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.push(client_file("client-ca.pem"));
    if required {
        args.push("--require-client-cert".into());
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_quicprobe"));
    let mut server = PeerServer::start(binary, &args, 0).expect("serve starts");
    server.port = server
        .lines()
        .iter()
        .find_map(|line| line.split("listening on ").nth(1))
        .and_then(|addr| addr.trim().parse::<std::net::SocketAddr>().ok())
        .map(|addr| addr.port())
        .expect("serve prints `listening on ADDR`");
    server
}

/// The msquic test server requiring a client certificate under the client CA.
fn msquic() -> PeerServer {
    let dir = scenario("full-chain");
    let (cert, key) = (
        dir.join("chain.pem").display().to_string(),
        dir.join("key.pem").display().to_string(),
    );
    let ca = client_file("client-ca.pem");
    start_msquic(&[
        "--cert",
        &cert,
        "--key",
        &key,
        "--require-client-cert",
        "--client-ca",
        &ca,
    ])
}

/// `connect --json` to a server on `port` that presents full-chain, with `extra`.
fn connect(port: u16, alpn: &str, extra: &[String]) -> Output {
    let mut args = vec!["--json".to_owned()];
    args.extend(extra.iter().cloned());
    quicprobe(&connect_args(port, alpn, &args))
}

/// The `connect` command line to a server on `port` presenting full-chain.
fn connect_args(port: u16, alpn: &str, extra: &[String]) -> Vec<String> {
    let roots = scenario("full-chain").join("roots.pem");
    let mut args: Vec<String> = vec![
        "connect".into(),
        "--timeout".into(),
        "5".into(),
        "--alpn".into(),
        alpn.into(),
        "--cacert".into(),
        roots.display().to_string(),
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
    ];
    args.extend(extra.iter().cloned());
    // h3 makes a request once connected; msquic's hq-interop only handshakes.
    args.push(if alpn == "h3" {
        format!("https://localhost:{port}/")
    } else {
        format!("localhost:{port}")
    });
    args
}

/// `connect --json` with `extra` to a lab that requires a client certificate.
fn against_required_lab(extra: &[String]) -> (Output, Value) {
    let server = lab(true);
    let output = connect(server.port, "h3", extra);
    let report = json_of(&output);
    (output, report)
}

fn pem_args(cert: &str, key: &str) -> Vec<String> {
    vec![
        "--cert".into(),
        client_file(cert),
        "--key".into(),
        client_file(key),
    ]
}

fn p12_args(pass: &str) -> Vec<String> {
    vec![
        "--cert".into(),
        client_file("client.p12"),
        "--cert-type".into(),
        "P12".into(),
        "--pass".into(),
        pass.into(),
    ]
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The SHA-256 of the first certificate of a client-auth file, as the
/// report writes fingerprints.
fn fingerprint(name: &str) -> String {
    let certs = quicprobe_verifier::read_certificates(&PathBuf::from(client_file(name)))
        .expect("a certificate");
    quicprobe_verifier::ChainReport::describe(&certs[..1]).certificates[0]
        .sha256
        .clone()
}

fn explanation(report: &Value) -> String {
    report["explanation"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn assert_accepted_with_intermediate(report: &Value) {
    assert_eq!(report["exit_code"], 0, "{report:#}");
    let client = &report["client_certificate"];
    assert_eq!(client["requested"], true, "{client:#}");
    assert_eq!(client["sent"], true, "{client:#}");
    assert_eq!(
        client["certificates"], 2,
        "certificate + intermediate: {client:#}"
    );
    assert_eq!(
        client["subject"],
        "CN=quicprobe test client, O=quicprobe lab"
    );
    assert_eq!(client["sha256"], fingerprint("client.pem").as_str());
}

#[test]
fn required_and_none_sent_is_certificate_required_in_words() {
    let (output, report) = against_required_lab(&[]);
    assert_eq!(output.status.code(), Some(35), "{report:#}");
    assert_eq!(report["close"]["sent_by"], "server");
    assert_eq!(report["close"]["tls_alert"], 116);
    assert!(
        explanation(&report).starts_with(
            "the server requires a client certificate and none was sent: pass --cert FILE --key FILE"
        ),
        "{}",
        explanation(&report)
    );
    let client = &report["client_certificate"];
    assert_eq!(client["requested"], true);
    assert_eq!(client["sent"], false);
    assert_eq!(
        client["certificate_authorities"],
        serde_json::json!(["CN=quicprobe Client Root CA, O=quicprobe lab"])
    );
    let stages = stage_names(&report);
    for wanted in ["certificate_request", "client_certificate_sent"] {
        assert!(stages.iter().any(|s| s == wanted), "{wanted}: {stages:?}");
    }
    let empty = report["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "client_certificate_sent"))
        .expect("our Certificate");
    assert_eq!(empty["certificates"], 0, "an empty Certificate: {empty:#}");
}

#[test]
fn a_pem_certificate_with_its_intermediate_is_accepted_and_traced() {
    let server = lab(true);
    let report = json_of(&connect(
        server.port,
        "h3",
        &pem_args("client.pem", "client-key.pem"),
    ));
    assert_accepted_with_intermediate(&report);
    // The native trace names the request and what went out.
    let args = pem_args("client.pem", "client-key.pem");
    let trace = quicprobe(&connect_args(server.port, "h3", &args));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&trace.stdout),
        stderr(&trace)
    );
    assert!(
        text.contains("< CertificateRequest (13): the server asks for a client certificate"),
        "{text}"
    );
    assert!(
        text.contains("> Certificate (11): client certificate and 1 intermediate,"),
        "{text}"
    );
    assert!(text.contains("> CertificateVerify (15): "), "{text}");
}

#[test]
fn the_key_may_follow_the_certificate_in_one_file_as_curl_takes_it() {
    let (_, report) = against_required_lab(&["--cert".into(), client_file("client-combined.pem")]);
    assert_accepted_with_intermediate(&report);
}

#[test]
fn an_encrypted_key_opens_with_pass_and_says_so_without_it() {
    let server = lab(true);
    let mut args = pem_args("client.pem", "client-key-encrypted.pem");
    let missing = connect(server.port, "h3", &args);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("the private key is encrypted: give its password with --pass"),
        "{}",
        stderr(&missing)
    );
    args.extend(["--pass".to_owned(), "wrong".to_owned()]);
    let wrong = connect(server.port, "h3", &args);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("wrong password"),
        "{}",
        stderr(&wrong)
    );
    *args.last_mut().expect("the password") = PASSWORD.into();
    assert_accepted_with_intermediate(&json_of(&connect(server.port, "h3", &args)));
}

#[test]
fn a_pkcs12_file_is_accepted_and_a_wrong_password_is_named() {
    let server = lab(true);
    assert_accepted_with_intermediate(&json_of(&connect(server.port, "h3", &p12_args(PASSWORD))));
    let wrong = connect(server.port, "h3", &p12_args("wrong"));
    assert_eq!(wrong.status.code(), Some(2));
    let text = stderr(&wrong);
    assert!(
        text.starts_with("quicprobe: --cert ")
            && text.contains("client.p12 --cert-type P12: wrong password"),
        "{text}"
    );
}

#[test]
fn a_key_that_does_not_match_is_a_usage_error_in_those_words() {
    let server = lab(true);
    let output = connect(
        server.port,
        "h3",
        &pem_args("client.pem", "other-ca-client-key.pem"),
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim_end(),
        format!(
            "quicprobe: --key {}: the private key does not match the certificate in --cert {}",
            client_file("other-ca-client-key.pem"),
            client_file("client.pem")
        )
    );
    assert!(output.stdout.is_empty(), "no connection, no report");
}

#[test]
fn a_certificate_of_another_ca_is_rejected_and_the_client_side_named() {
    let (output, report) =
        against_required_lab(&pem_args("other-ca-client.pem", "other-ca-client-key.pem"));
    assert_eq!(output.status.code(), Some(35), "{report:#}");
    assert_eq!(report["close"]["tls_alert"], 48, "unknown_ca: {report:#}");
    let text = explanation(&report);
    assert!(
        text.starts_with(
            "the server rejected the client certificate CN=quicprobe stranger client, \
             O=quicprobe lab (issued by CN=quicprobe Other Client Root CA, O=quicprobe lab), \
             sent with 0 intermediates: TLS alert 48 unknown_ca"
        ),
        "{text}"
    );
    assert!(text.contains("Client side: "), "{text}");
    assert!(
        text.contains("server side: check the server trusts its issuer"),
        "{text}"
    );
    assert_eq!(report["client_certificate"]["sent"], true);
}

#[test]
fn a_certificate_sent_without_its_intermediate_is_rejected_with_zero_intermediates_said() {
    let (_, report) = against_required_lab(&pem_args("client-leaf-only.pem", "client-key.pem"));
    assert_eq!(report["exit_code"], 35, "{report:#}");
    assert!(
        explanation(&report).contains("(issued by CN=quicprobe Client Intermediate CA, O=quicprobe lab), sent with 0 intermediates"),
        "{}",
        explanation(&report)
    );
}

#[test]
fn an_optional_request_without_a_certificate_completes_and_says_so() {
    let server = lab(false);
    let report = json_of(&connect(server.port, "h3", &[]));
    assert_eq!(report["exit_code"], 0, "{report:#}");
    assert!(
        explanation(&report).contains(
            "the server asked for a client certificate, none was sent (--cert), and it went on without one"
        ),
        "{}",
        explanation(&report)
    );
}

#[test]
fn no_request_and_no_certificate_leaves_client_certificate_null() {
    let server = support::start_serve("full-chain");
    let report = json_of(&connect(server.port, "h3", &[]));
    assert_eq!(report["exit_code"], 0, "{report:#}");
    assert_eq!(report["client_certificate"], Value::Null);
    assert!(!stage_names(&report)
        .iter()
        .any(|s| s == "certificate_request"));
}

#[test]
fn get_presents_the_certificate_too() {
    let server = lab(true);
    let mut args = connect_args(server.port, "h3", &pem_args("client.pem", "client-key.pem"));
    args[0] = "get".into();
    let output = quicprobe(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!output.stdout.is_empty(), "the body");
}

#[test]
fn msquic_requires_the_certificate_accepts_pem_and_p12_and_rejects_another_ca() {
    let mut server = msquic();
    let none = json_of(&connect(server.port, "hq-interop", &[]));
    assert_eq!(none["exit_code"], 35, "{none:#}");
    assert_eq!(none["close"]["tls_alert"], 116);
    assert!(explanation(&none)
        .starts_with("the server requires a client certificate and none was sent"));
    assert!(server
        .next_line_with("QUIC_STATUS_REQUIRED_CERTIFICATE", Duration::from_secs(5))
        .is_some());

    let pem = json_of(&connect(
        server.port,
        "hq-interop",
        &pem_args("client.pem", "client-key.pem"),
    ));
    assert_accepted_with_intermediate(&pem);
    assert_accepted_with_intermediate(&json_of(&connect(
        server.port,
        "hq-interop",
        &p12_args(PASSWORD),
    )));

    let stranger = json_of(&connect(
        server.port,
        "hq-interop",
        &pem_args("other-ca-client.pem", "other-ca-client-key.pem"),
    ));
    assert_eq!(stranger["exit_code"], 35, "{stranger:#}");
    assert_eq!(stranger["close"]["tls_alert"], 48);
    assert!(explanation(&stranger).contains("Client side: "));
    assert!(server
        .next_line_with("QUIC_STATUS_TLS_ALERT(48)", Duration::from_secs(5))
        .is_some());
}
