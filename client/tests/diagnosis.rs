//! The diagnosis tells one consistent story for every scenario of certs/:
//! the fault kind, how certain it is, the other possible causes, the
//! corrected chain, the trust store and which client families would accept
//! it, as certs/scenarios.json states them, from `verify`, from `connect`
//! against the lab and against msquic, and with `--aia-fetch` against a
//! local AIA server.
//!
//! Network rule: every connection goes to 127.0.0.1. The scenarios' AIA
//! URLs name `.test` hosts that are never resolved: `--aia-connect-to`
//! sends each fetch to the local server instead.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;

use quicprobe_verifier::{ca_issuers_of, issued_by, read_certificates};
use serde_json::Value;
use support::{
    catalogue, client_trust, entry, json_of, quicprobe_trusting, read_line, scenario, start_msquic,
    start_serve, PeerServer,
};

fn verify_args(name: &str, extra: &[&str]) -> Vec<String> {
    let dir = scenario(name);
    let mut args = vec![
        "verify".to_owned(),
        "--chain".to_owned(),
        dir.join("chain.pem").display().to_string(),
        "--host".to_owned(),
        read_line(&dir.join("host")),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn verify_json(name: &str, extra: &[&str]) -> Value {
    let mut extra = extra.to_vec();
    extra.push("--json");
    let output = quicprobe_trusting(name, &verify_args(name, &extra));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: verify --json is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn verdict_words(report: &Value) -> String {
    let verdict = &report["verdict"];
    if verdict["accepted"] == true {
        "accepted".into()
    } else {
        format!("rejected {} {}", verdict["x509_error"], verdict["depth"])
    }
}

/// The expected corrected chain as `CN (status)` strings.
fn expected_chain(expected: &Value) -> Vec<String> {
    expected["corrected_chain"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| format!("{} ({})", str_of(&e["common_name"]), str_of(&e["status"])))
                .collect()
        })
        .unwrap_or_default()
}

fn actual_chain(diagnosis: &Value) -> Vec<String> {
    diagnosis["corrected_chain"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| format!("{} ({})", str_of(&e["common_name"]), str_of(&e["status"])))
                .collect()
        })
        .unwrap_or_default()
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or("?").to_owned()
}

fn kinds(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    if field.is_empty() {
                        str_of(item)
                    } else {
                        str_of(&item[field])
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The report's diagnosis is the one scenarios.json states.
fn assert_expected(name: &str, report: &Value, expected: &Value, how: &str) {
    let diagnosis = &report["diagnosis"];
    let context = format!("{name} ({how}): {diagnosis:#}");
    assert_eq!(diagnosis["fault"]["kind"], expected["kind"], "{context}");
    assert_eq!(diagnosis["certain"], expected["certain"], "{context}");
    assert_eq!(
        kinds(&diagnosis["alternatives"], "kind"),
        kinds(&expected["alternatives"], ""),
        "{context}"
    );
    assert_eq!(
        actual_chain(diagnosis),
        expected_chain(expected),
        "{context}"
    );
}

const AIA_FAMILIES: [&str; 3] = ["dotnet", "windows_cryptoapi", "chrome"];

/// The cause, fix, alternatives, corrected chain, trust store and
/// `accepted_by` never contradict each other.
fn assert_one_story(name: &str, report: &Value) {
    let diagnosis = &report["diagnosis"];
    let context = format!("{name}: {report:#}");
    let kind = str_of(&diagnosis["fault"]["kind"]);
    let cause = str_of(&diagnosis["cause"]);
    let fix = str_of(&diagnosis["fix"]);
    let corrected = diagnosis["corrected_chain"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let missing: Vec<&Value> = corrected
        .iter()
        .filter(|e| e["status"] == "missing")
        .collect();
    let accepted = report["verdict"]["accepted"] == true;

    // Certain exactly when nothing else fits.
    let alternatives = diagnosis["alternatives"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        diagnosis["certain"] == true,
        alternatives.is_empty(),
        "{context}"
    );
    for alternative in &alternatives {
        assert_ne!(alternative["kind"], diagnosis["fault"]["kind"], "{context}");
        assert!(!str_of(&alternative["fix"]).is_empty(), "{context}");
        assert!(!str_of(&alternative["tell_apart"]).is_empty(), "{context}");
    }

    // Missing certificates in the corrected chain exactly when the fault is
    // certificates left out; the fix names every entry, in order.
    let left_out = matches!(kind.as_str(), "missing_intermediate" | "missing_issuer");
    assert_eq!(!missing.is_empty(), left_out, "{context}");
    let mut from = 0;
    for entry in &corrected {
        let subject = str_of(&entry["subject"]);
        let at = fix[from..]
            .find(&format!("'{subject}'"))
            .unwrap_or_else(|| panic!("the fix does not name '{subject}' in order: {context}"));
        from += at + subject.len();
    }

    // The trust store is named, with where its roots came from.
    let store = &diagnosis["trust_store"];
    let system = client_trust(name).args.is_empty();
    assert_eq!(
        store["source"],
        if system { "system" } else { "user" },
        "{context}"
    );
    assert!(store["certificates"].as_u64().unwrap_or(0) > 0, "{context}");
    assert!(!kinds(&store["paths"], "").is_empty(), "{context}");

    // The client's side first when the client is at fault.
    if matches!(
        kind.as_str(),
        "missing_root" | "intermediate_is_not_an_anchor" | "root_mismatch"
    ) {
        assert!(fix.starts_with("On the client"), "{context}");
    }
    if kind == "missing_issuer" {
        let client = fix.find("on the client").expect("a client-side fix");
        let server = fix.find("on the server").expect("a server-side fix");
        assert!(client < server, "client's fix first: {context}");
    }

    // AIA-fetching families cope only with intermediates left out, each
    // with a URL; a missing root is missing for them too.
    let aia_accepts = AIA_FAMILIES
        .iter()
        .all(|family| report["accepted_by"][*family] == true);
    let aia_rejects = AIA_FAMILIES
        .iter()
        .all(|family| report["accepted_by"][*family] == false);
    // They differ among themselves on names (.NET and Windows fall back to
    // the CN, Chrome does not), never on a missing issuer.
    let issuer_kind = matches!(
        kind.as_str(),
        "missing_intermediate"
            | "missing_root"
            | "missing_issuer"
            | "root_mismatch"
            | "issuer_loop"
            | "intermediate_is_not_an_anchor"
    );
    assert!(
        !issuer_kind || aia_accepts || aia_rejects,
        "AIA families disagree: {context}"
    );
    if accepted {
        assert!(report["accepted_by"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v == true));
        return;
    }
    if aia_accepts {
        assert_eq!(kind, "missing_intermediate", "{context}");
        assert!(
            missing.iter().all(|e| e["get_from"].is_string()),
            "{context}"
        );
        assert!(cause.contains("and connect"), "{context}");
    }
    if kind == "missing_intermediate" && aia_rejects {
        assert!(!cause.contains("and connect"), "{context}");
    }
    if matches!(
        kind.as_str(),
        "missing_root" | "missing_issuer" | "root_mismatch"
    ) {
        assert!(aia_rejects, "{context}");
    }
}

#[test]
fn every_scenario_has_its_expected_diagnosis_and_one_story_in_verify() {
    for expected in catalogue() {
        let name = str_of(&expected["name"]);
        let report = verify_json(&name, &[]);
        assert_eq!(verdict_words(&report), expected["expected"], "{name}");
        assert_expected(&name, &report, &expected["diagnosis"], "verify");
        assert_one_story(&name, &report);
    }
}

#[test]
fn the_text_report_names_the_trust_store_in_every_verdict() {
    for expected in catalogue() {
        let name = str_of(&expected["name"]);
        let output = quicprobe_trusting(&name, &verify_args(&name, &[]));
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("Trust store: "))
            .unwrap_or_else(|| panic!("{name}: no trust store line:\n{text}"));
        let system = client_trust(&name).args.is_empty();
        let wanted = if system {
            "system bundle "
        } else {
            "--cacert "
        };
        assert!(line.contains(wanted), "{name}: {line}");
        assert!(
            line.ends_with("certificates)") || line.ends_with("certificate)"),
            "{line}"
        );
    }
}

#[test]
fn the_forgotten_cacert_is_an_undecided_missing_issuer_with_the_clients_fix_first() {
    let report = verify_json("no-cacert-private-root", &[]);
    let diagnosis = &report["diagnosis"];
    assert_eq!(diagnosis["fault"]["kind"], "missing_issuer");
    assert_eq!(diagnosis["trust_store"]["source"], "system");
    let fix = str_of(&diagnosis["fix"]);
    assert!(fix.contains("pass --cacert"), "{fix}");
    assert!(
        fix.contains("--aia-fetch") || fix.contains("ask the CA"),
        "{fix}"
    );
}

#[test]
fn a_root_in_the_system_bundle_but_not_in_the_users_file_is_certainly_a_missing_root() {
    let report = verify_json("root-in-system-bundle", &[]);
    let fault = &report["diagnosis"]["fault"];
    assert_eq!(fault["kind"], "missing_root", "{report:#}");
    assert_eq!(fault["in_system_bundle"], true);
    assert_eq!(report["diagnosis"]["certain"], true);
    assert_eq!(
        report["diagnosis"]["corrected_chain"],
        Value::Array(Vec::new())
    );
}

// ---------------------------------------------------------------------------
// --aia-fetch: a local server serves every certificate of missing-issuer.pem
// at the caIssuers URL of the certificate it issued.

/// Path of each AIA URL -> DER served there, for one scenario.
fn aia_routes(name: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = scenario(name);
    let missing = read_certificates(&dir.join("missing-issuer.pem")).expect("missing-issuer.pem");
    let mut below = read_certificates(&dir.join("chain.pem")).expect("chain.pem");
    below.extend(missing.iter().cloned());
    let mut routes = BTreeMap::new();
    for cert in &below {
        let Some(url) = ca_issuers_of(cert).into_iter().next() else {
            continue;
        };
        if let Some(issuer) = missing.iter().find(|m| issued_by(cert, m)) {
            routes.insert(url_path(&url), issuer.to_der().expect("DER"));
        }
    }
    routes
}

fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/')
        .map_or("/".to_owned(), |at| rest[at..].to_owned())
}

/// An HTTP/1.1 server on 127.0.0.1 answering GETs from `routes` (404
/// otherwise), one request per connection; it lives as long as the test.
fn aia_server(routes: BTreeMap<String, Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok).take(64) {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = reader.into_inner();
            let response = match routes.get(&path) {
                Some(der) => {
                    let mut head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-cert\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        der.len()
                    )
                    .into_bytes();
                    head.extend_from_slice(der);
                    head
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    addr
}

fn with_aia_fetch(name: &str) -> Vec<String> {
    let addr = aia_server(aia_routes(name));
    vec![
        "--aia-fetch".to_owned(),
        "--aia-connect-to".to_owned(),
        addr.to_string(),
    ]
}

#[test]
fn aia_fetch_turns_an_undecided_missing_issuer_into_a_certain_one() {
    let with_fetch: Vec<Value> = catalogue()
        .into_iter()
        .filter(|e| {
            e.get("diagnosis_with_aia_fetch")
                .is_some_and(|d| !d.is_null())
        })
        .collect();
    assert!(
        with_fetch.len() >= 4,
        "scenarios with an AIA answer: {}",
        with_fetch.len()
    );
    for expected in with_fetch {
        let name = str_of(&expected["name"]);
        let extra = with_aia_fetch(&name);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let report = verify_json(&name, &extra);
        assert_eq!(verdict_words(&report), expected["expected"], "{name}");
        assert_expected(
            &name,
            &report,
            &expected["diagnosis_with_aia_fetch"],
            "--aia-fetch",
        );
        assert_one_story(&name, &report);
    }
}

#[test]
fn a_fetched_root_is_a_missing_root() {
    let extra = with_aia_fetch("leaf-from-private-root");
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let report = verify_json("leaf-from-private-root", &extra);
    assert_eq!(
        report["diagnosis"]["fault"]["kind"], "missing_root",
        "{report:#}"
    );
    assert_eq!(report["diagnosis"]["certain"], true);
    assert!(AIA_FAMILIES
        .iter()
        .all(|f| report["accepted_by"][*f] == false));
}

#[test]
fn two_missing_intermediates_are_both_found_by_following_aia_up_the_chain() {
    let extra = with_aia_fetch("two-missing-intermediates");
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let report = verify_json("two-missing-intermediates", &extra);
    let missing: Vec<String> = report["diagnosis"]["corrected_chain"]
        .as_array()
        .expect("a corrected chain")
        .iter()
        .filter(|e| e["status"] == "missing")
        .map(|e| str_of(&e["get_from"]))
        .collect();
    assert_eq!(missing.len(), 2, "{report:#}");
    assert_eq!(
        report["aia"]["hops"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    assert_eq!(report["aia"]["accepted_with_fetched"], true);
}

// ---------------------------------------------------------------------------
// The same diagnosis over QUIC, against the lab and against msquic.

/// The scenarios issue 9 added: the new evidence over a real handshake.
const NEW_SCENARIOS: &[&str] = &[
    "client-lacks-root",
    "no-cacert-private-root",
    "trusted-intermediate-only",
    "leaf-from-private-root",
    "two-missing-intermediates",
    "missing-and-misordered",
    "rekeyed-root",
    "root-in-system-bundle",
    "leaf-only",
    "missing-intermediate",
    "hostile-issuer-loop",
];

fn connect_json(name: &str, server: &PeerServer) -> Value {
    let host = read_line(&scenario(name).join("host"));
    let port = server.port;
    let args = vec![
        "connect".to_owned(),
        "--resolve".to_owned(),
        format!("{host}:{port}:127.0.0.1"),
        "--json".to_owned(),
        format!("{host}:{port}"),
    ];
    json_of(&quicprobe_trusting(name, &args))
}

fn assert_connect_matches_verify(name: &str, report: &Value, peer: &str) {
    let expected = entry(name);
    assert_eq!(
        verdict_words(report),
        expected["expected"],
        "{name} against {peer}"
    );
    assert_eq!(report["exit_code"], 60, "{name} against {peer}: {report:#}");
    assert_expected(name, report, &expected["diagnosis"], peer);
    assert_one_story(name, report);
    assert_chain_rebuilds_from_json(name, report, peer);
}

/// `chain[].der_base64` is each certificate exactly as sent: the chain
/// rebuilt from the JSON alone is chain.pem, in order.
fn assert_chain_rebuilds_from_json(name: &str, report: &Value, peer: &str) {
    use base64::Engine as _;
    let sent: Vec<Vec<u8>> = read_certificates(&scenario(name).join("chain.pem"))
        .expect("chain.pem")
        .iter()
        .map(|cert| cert.to_der().expect("DER"))
        .collect();
    let rebuilt: Vec<Vec<u8>> = report["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|cert| {
            base64::engine::general_purpose::STANDARD
                .decode(cert["der_base64"].as_str().expect("der_base64"))
                .expect("base64")
        })
        .collect();
    assert!(rebuilt == sent, "{name} against {peer}: the chain as sent");
}

#[test]
fn connect_against_the_lab_gives_the_same_diagnosis_as_verify() {
    for name in NEW_SCENARIOS {
        let mut server = start_serve(name);
        let report = connect_json(name, &server);
        server.terminate();
        assert_connect_matches_verify(name, &report, "the lab");
    }
}

#[test]
fn connect_against_msquic_gives_the_same_diagnosis_as_verify() {
    for name in NEW_SCENARIOS {
        let dir = scenario(name);
        let chain = dir.join("chain.pem").display().to_string();
        let key = dir.join("key.pem").display().to_string();
        let mut server = start_msquic(&["--cert", &chain, "--key", &key]);
        let report = connect_json(name, &server);
        server.terminate();
        assert_connect_matches_verify(name, &report, "msquic");
    }
}
