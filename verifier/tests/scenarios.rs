//! Every scenario in certs/ is verified two ways: against the verdict its
//! `expected` file records, and differentially against the system's
//! `openssl verify` with the same roots, untrusted certificates, purpose and
//! name. Where BoringSSL (strict) and OpenSSL genuinely differ, the
//! difference is named here and explained in docs/verification.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use quicprobe_verifier::{read_certificates, verify, PeerName, TrustStore, Verdict};

/// A verdict reduced to what both libraries report: error number and depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected { code: i32, depth: u32 },
}

impl Outcome {
    fn parse(text: &str) -> Outcome {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["accepted"] => Outcome::Accepted,
            ["rejected", code, depth] => Outcome::Rejected {
                code: code.parse().expect("error number"),
                depth: depth.parse().expect("depth"),
            },
            _ => panic!("bad expected verdict {text:?}"),
        }
    }

    fn of(verdict: &Verdict) -> Outcome {
        if verdict.accepted {
            Outcome::Accepted
        } else {
            Outcome::Rejected {
                code: verdict.x509_error(),
                depth: verdict.depth.expect("a rejection has a depth"),
            }
        }
    }
}

/// Scenarios where OpenSSL's CLI, by its defaults, answers differently from
/// quicprobe's strict BoringSSL verification, with the reason.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "cn-without-san",
        "OpenSSL falls back to the subject CN when the leaf has no DNS SAN; quicprobe sets \
         X509_CHECK_FLAG_NEVER_CHECK_SUBJECT and matches SAN only, as RFC 9525, Chrome, Go and aioquic do",
    ),
    // The hostile scenarios (certs/*/hostile): pathological chains.
    (
        "hostile-chain-200",
        "both stop at the default verify depth of 100 and fail at depth 101 (I99); OpenSSL \
         says 22 (certificate chain too long), BoringSSL, which does not count the depth \
         the same way, says 20 (unable to get local issuer certificate) for the issuer it \
         declined to add",
    ),
    (
        "hostile-nested-asn1",
        "the leaf's SAN holds only an otherName (the nested ASN.1), no DNS name, so OpenSSL \
         falls back to the CN=localhost and accepts, as in cn-without-san; quicprobe matches \
         SAN only and rejects with 62",
    ),
];

/// Error numbers OpenSSL 3 changed: (OpenSSL 3's number, BoringSSL's and
/// OpenSSL 1.1's number, meaning). OpenSSL 3.0 moved "invalid CA certificate"
/// to 79 and gave 24 to X509_V_ERR_NO_ISSUER_PUBLIC_KEY; BoringSSL kept 24.
const OPENSSL3_RENUMBERED: &[(i32, i32, &str)] = &[(79, 24, "invalid CA certificate")];

/// OpenSSL 3's error number in BoringSSL's numbering.
fn boringssl_number(openssl_code: i32) -> i32 {
    OPENSSL3_RENUMBERED
        .iter()
        .find(|(openssl, _, _)| *openssl == openssl_code)
        .map_or(openssl_code, |(_, boringssl, _)| *boringssl)
}

struct Scenario {
    name: String,
    dir: PathBuf,
    peer_name: PeerName,
    expected: Outcome,
}

fn certs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

fn scenarios() -> Vec<Scenario> {
    let mut found: Vec<Scenario> = fs::read_dir(certs_dir())
        .expect("certs/ exists")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|dir| dir.join("expected").is_file())
        .map(|dir| Scenario {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            peer_name: PeerName::parse(read_line(&dir.join("host")).as_str()),
            expected: Outcome::parse(&read_line(&dir.join("expected"))),
            dir,
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        found.len() >= 24,
        "expected the whole catalogue, found {}",
        found.len()
    );
    found
}

fn read_line(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn quicprobe_verdict(scenario: &Scenario) -> Verdict {
    let chain = read_certificates(&scenario.dir.join("chain.pem")).expect("chain.pem");
    let trust = TrustStore::from_pem_files(&[scenario.dir.join("roots.pem")]).expect("roots.pem");
    verify(&chain, &trust, Some(&scenario.peer_name))
}

#[test]
fn every_scenario_gets_its_expected_verdict() {
    let mut wrong = Vec::new();
    for scenario in scenarios() {
        let got = Outcome::of(&quicprobe_verdict(&scenario));
        if got != scenario.expected {
            wrong.push(format!(
                "{}: expected {:?}, got {got:?}",
                scenario.name, scenario.expected
            ));
        }
    }
    assert!(wrong.is_empty(), "verdicts differ:\n{}", wrong.join("\n"));
}

#[test]
fn every_scenario_agrees_with_openssl_verify_or_names_the_difference() {
    let scratch = tempfile::tempdir().unwrap();
    let mut disagreements = Vec::new();
    for scenario in scenarios() {
        let ours = Outcome::of(&quicprobe_verdict(&scenario));
        let theirs = openssl_verify(&scenario, scratch.path());
        let known = KNOWN_DIFFERENCES
            .iter()
            .find(|(name, _)| *name == scenario.name);
        match (ours == theirs, known) {
            (true, None) => {}
            (false, Some(_)) => {}
            (true, Some((name, _))) => disagreements.push(format!(
                "{name}: listed as a known difference but both answer {ours:?}"
            )),
            (false, None) => disagreements.push(format!(
                "{}: quicprobe {ours:?}, openssl {theirs:?}",
                scenario.name
            )),
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn cn_only_certificate_is_accepted_by_openssl_but_rejected_with_hostname_mismatch() {
    let scenario = scenarios()
        .into_iter()
        .find(|s| s.name == "cn-without-san")
        .expect("cn-without-san scenario");
    assert_eq!(
        openssl_verify(&scenario, tempfile::tempdir().unwrap().path()),
        Outcome::Accepted
    );
    assert_eq!(
        Outcome::of(&quicprobe_verdict(&scenario)),
        Outcome::Rejected { code: 62, depth: 0 }
    );
}

#[test]
fn invalid_ca_is_error_24_in_boringssl_and_79_in_openssl_3() {
    let scenario = scenarios()
        .into_iter()
        .find(|s| s.name == "intermediate-not-ca")
        .expect("intermediate-not-ca scenario");
    let scratch = tempfile::tempdir().unwrap();
    let raw = raw_openssl_first_error(&scenario, scratch.path());
    assert_eq!(raw, Some((79, 1)), "OpenSSL 3 numbers invalid CA 79");
    assert_eq!(
        Outcome::of(&quicprobe_verdict(&scenario)),
        Outcome::Rejected { code: 24, depth: 1 }
    );
}

/// `openssl verify -CAfile roots -untrusted rest -purpose sslserver
/// -verify_hostname|-verify_ip NAME leaf`, reduced to its first error.
fn openssl_verify(scenario: &Scenario, scratch: &Path) -> Outcome {
    match raw_openssl_first_error(scenario, scratch) {
        Some((code, depth)) => Outcome::Rejected {
            code: boringssl_number(code),
            depth,
        },
        None => Outcome::Accepted,
    }
}

/// The first (error number, depth) `openssl verify` prints, in its own numbering.
fn raw_openssl_first_error(scenario: &Scenario, scratch: &Path) -> Option<(i32, u32)> {
    let chain = read_certificates(&scenario.dir.join("chain.pem")).unwrap();
    let leaf = scratch.join(format!("{}-leaf.pem", scenario.name));
    fs::write(&leaf, chain[0].to_pem().unwrap()).unwrap();
    let mut command = Command::new("openssl");
    command
        .arg("verify")
        .args(["-no-CApath", "-no-CAstore", "-CAfile"])
        .arg(scenario.dir.join("roots.pem"))
        .args(["-purpose", "sslserver"]);
    if chain.len() > 1 {
        let rest = scratch.join(format!("{}-untrusted.pem", scenario.name));
        let pems: Vec<u8> = chain[1..]
            .iter()
            .flat_map(|c| c.to_pem().unwrap())
            .collect();
        fs::write(&rest, pems).unwrap();
        command.arg("-untrusted").arg(rest);
    }
    match &scenario.peer_name {
        PeerName::Dns(host) => command.args(["-verify_hostname", host]),
        PeerName::Ip(ip) => command.args(["-verify_ip", &ip.to_string()]),
    };
    let output = command
        .arg(&leaf)
        .output()
        .expect("openssl is installed (scripts/setup)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = first_openssl_error(&stdout, &stderr);
    assert!(
        first.is_some() || output.status.success(),
        "{}: openssl failed without an error line:\n{stdout}\n{stderr}",
        scenario.name
    );
    first
}

/// The first `error N at D depth lookup: ...` line.
fn first_openssl_error(stdout: &str, stderr: &str) -> Option<(i32, u32)> {
    stdout.lines().chain(stderr.lines()).find_map(|line| {
        let rest = line.trim().strip_prefix("error ")?;
        let (code, rest) = rest.split_once(" at ")?;
        let (depth, _) = rest.split_once(" depth lookup")?;
        Some((code.parse().ok()?, depth.parse().ok()?))
    })
}
