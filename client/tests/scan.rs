//! `quicprobe scan` over loopback: a 500-line targets file against real lab
//! servers, refused and silent ports, bad lines and names that never
//! resolve; the resolver pool beside the event loop; one-line errors.
//! Every address is 127.0.0.1 or ::1, and every name is either a
//! `--resolve` override or under `.invalid` (answered without a query).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quicprobe::cli::ScanArgs;
use quicprobe::cli::TrustArgs;
use quicprobe::commands::scan as scan_cmd;
use quicprobe::engine::target::Target;
use quicprobe::lab::{self, LabHandle, LabSpec};
use serde_json::Value;

mod support;

use support::{certs_dir, quicprobe};

/// Every silent port holds a slot for the whole timeout: with this many of
/// them, `--concurrency 50` and a 1 s timeout, the scan cannot take less than
/// 100 x 1 s / 50 = 2 s, and would take about 1 s if all ran at once.
const SILENT_LINES: usize = 100;

fn start_lab(scenario: &str, listen: &str) -> Option<LabHandle> {
    let spec = LabSpec::for_scenario(&certs_dir().join(scenario), listen.parse().unwrap());
    lab::spawn(spec).ok()
}

/// A port on 127.0.0.1 that refuses every datagram (ICMP port unreachable)
/// for as long as the socket lives. A port bound and let go would refuse
/// too, but another test could bind it meanwhile; this socket keeps it,
/// and being connected to a port nobody sends from, it accepts nothing.
fn refusing_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect("127.0.0.1:9").unwrap();
    socket
}

/// The JSON Lines of a scan: the per-line objects by line number, and the summary.
fn read_scan_output(stdout: &[u8]) -> (BTreeMap<u64, Value>, Value) {
    let text = String::from_utf8_lossy(stdout);
    let mut lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let summary = lines.pop().expect("a summary line");
    let mut by_line = BTreeMap::new();
    for object in lines {
        let number = object["line"].as_u64().expect("every object has its line");
        assert!(
            by_line.insert(number, object).is_none(),
            "line {number} reported twice"
        );
    }
    (by_line, summary["summary"].clone())
}

/// One line of the targets file and what the scan must say about it.
struct Planned {
    text: Vec<u8>,
    /// (outcome, exit code); None for blank lines and comments.
    expect: Option<(&'static str, u64)>,
}

fn planned(text: impl Into<Vec<u8>>, expect: Option<(&'static str, u64)>) -> Planned {
    Planned {
        text: text.into(),
        expect,
    }
}

#[test]
fn a_mixed_500_line_file_gives_every_line_its_outcome_and_a_true_summary() {
    let good = start_lab("full-chain", "127.0.0.1:0").expect("lab");
    let leaf_only = start_lab("leaf-only", "127.0.0.1:0").expect("lab");
    // IPv6 lines only where ::1 exists.
    let good_v6 = start_lab("full-chain", "[::1]:0");
    let silent = [
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    ];
    let refusing = [refusing_socket(), refusing_socket(), refusing_socket()];
    let (g, l) = (good.addr().port(), leaf_only.addr().port());
    let bad_lines: [&[u8]; 6] = [
        b"host:99999",
        b"127.0.0.1:443 localhost extra",
        b":443",
        b"[::1",
        b"https://x:0/",
        b"\xff\xfe:443",
    ];
    const OK: Option<(&str, u64)> = Some(("ok", 0));
    let mut plan = Vec::new();
    let (mut silent_lines, mut good_lines) = (0, 0);
    for i in 0..500usize {
        let line = match i % 20 {
            0 => planned(format!("# block {i}"), None),
            10 => planned("   ", None),
            3 | 13 => planned(
                format!("127.0.0.1:{l} localhost  # leaf only"),
                Some(("verification_failed", 60)),
            ),
            6 => planned(
                format!(
                    "127.0.0.1:{} localhost",
                    refusing[i % 3].local_addr().unwrap().port()
                ),
                Some(("refused", 7)),
            ),
            9 => planned(bad_lines[(i / 20) % 6], Some(("bad_line", 2))),
            16 if i % 40 == 16 => planned(
                format!("does-not-exist-{i}.invalid:{g}"),
                Some(("resolve_failed", 6)),
            ),
            16 => planned("nope.invalid", Some(("resolve_failed", 6))),
            1 | 5 | 11 | 17 => {
                silent_lines += 1;
                let port = silent[i % 2].local_addr().unwrap().port();
                planned(format!("127.0.0.1:{port} localhost"), Some(("timeout", 28)))
            }
            _ => {
                good_lines += 1;
                match (good_lines % 4, &good_v6) {
                    (0, Some(v6)) => planned(format!("[::1]:{} localhost", v6.addr().port()), OK),
                    (1, _) => planned(format!("localhost:{g}"), OK),
                    (2, _) => planned(format!("fallback.test:{g}\tlocalhost # ::1 first"), OK),
                    _ => planned(format!("127.0.0.1:{g} localhost"), OK),
                }
            }
        };
        plan.push(line);
    }
    assert_eq!(silent_lines, SILENT_LINES);
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets");
    let file: Vec<u8> = plan
        .iter()
        .flat_map(|p| p.text.iter().copied().chain([b'\n']))
        .collect();
    std::fs::write(&targets, file).unwrap();

    let started = Instant::now();
    let output = quicprobe(&[
        "scan".to_owned(),
        "--targets".to_owned(),
        targets.display().to_string(),
        "--concurrency".to_owned(),
        "50".to_owned(),
        "--timeout".to_owned(),
        "1".to_owned(),
        "--cacert".to_owned(),
        certs_dir()
            .join("full-chain/roots.pem")
            .display()
            .to_string(),
        "--resolve".to_owned(),
        format!("localhost:{g}:127.0.0.1"),
        "--resolve".to_owned(),
        format!("fallback.test:{g}:[::1],127.0.0.1"),
    ]);
    let wall = started.elapsed();
    let (objects, summary) = read_scan_output(&output.stdout);

    let mut wrong = Vec::new();
    let mut expected_counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut first_failure = None;
    for (at, line) in plan.iter().enumerate() {
        let number = at as u64 + 1;
        let Some((outcome, code)) = line.expect else {
            if objects.contains_key(&number) {
                wrong.push(format!(
                    "line {number}: a blank or comment line was reported"
                ));
            }
            continue;
        };
        *expected_counts.entry(outcome).or_default() += 1;
        if code != 0 && first_failure.is_none() {
            first_failure = Some(code);
        }
        let Some(object) = objects.get(&number) else {
            wrong.push(format!("line {number}: not reported"));
            continue;
        };
        if object["outcome"] != outcome || object["exit_code"] != code {
            wrong.push(format!(
                "line {number} {:?}: wanted {outcome} ({code}), got {} ({}): {}",
                String::from_utf8_lossy(&line.text),
                object["outcome"],
                object["exit_code"],
                object["explanation"]
            ));
        }
        if object["input"] != String::from_utf8_lossy(&line.text).as_ref() {
            wrong.push(format!("line {number}: input {}", object["input"]));
        }
        let error = object["error"].as_str().unwrap_or("");
        if outcome == "bad_line" && !error.starts_with(&format!("line {number}: ")) {
            wrong.push(format!("line {number}: bad line error {error:?}"));
        }
        if outcome == "verification_failed"
            && (object["verdict"]["x509_error"] != 20 || object["diagnosis"].is_null())
        {
            wrong.push(format!("line {number}: no verdict 20 and diagnosis"));
        }
        if outcome == "timeout" && object["elapsed_ms"].as_f64().unwrap_or(0.0) < 1000.0 {
            wrong.push(format!("line {number}: timed out before its 1 s"));
        }
        if String::from_utf8_lossy(&line.text).starts_with("fallback.test")
            && object["refused_before"][0] != format!("[::1]:{g}")
        {
            wrong.push(format!("line {number}: {}", object["refused_before"]));
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\nstderr: {}",
        wrong.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        objects.len() as u64,
        expected_counts.values().sum::<u64>(),
        "one object per line that is not blank or a comment"
    );

    let bad = expected_counts.remove("bad_line").unwrap_or(0);
    assert_eq!(summary["bad_lines"], bad, "{summary}");
    assert_eq!(
        summary["targets"],
        expected_counts.values().sum::<u64>(),
        "{summary}"
    );
    for (outcome, count) in summary["outcomes"].as_object().expect("outcomes") {
        let wanted = expected_counts.get(outcome.as_str()).copied().unwrap_or(0);
        assert_eq!(count, wanted, "{outcome} in {summary}");
    }
    let slowest = summary["slowest"].as_array().expect("slowest");
    assert_eq!(slowest.len(), 5, "{summary}");
    let times: Vec<f64> = slowest
        .iter()
        .map(|s| s["elapsed_ms"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(
        slowest
            .iter()
            .all(|s| objects[&s["line"].as_u64().unwrap()]["outcome"] == "timeout"),
        "the silent ports are the slowest: {summary}"
    );

    assert_eq!(output.status.code(), first_failure.map(|c| c as i32));
    assert_eq!(summary["exit_code"], first_failure.unwrap());
    let elapsed_ms = summary["elapsed_ms"].as_f64().unwrap();
    assert!(
        elapsed_ms >= 2000.0,
        "{SILENT_LINES} silent targets at 50 at a time need 2 s; took {elapsed_ms} ms"
    );
    assert!(wall < Duration::from_secs(30), "took {wall:?}");
    let slowest_ok = objects
        .values()
        .filter(|o| o["outcome"] == "ok")
        .filter_map(|o| o["elapsed_ms"].as_f64())
        .fold(0.0, f64::max);
    eprintln!(
        "500 lines scanned in {wall:?} (summary {elapsed_ms:.0} ms, slowest ok {slowest_ok:.0} ms)"
    );
}

fn scan_args(targets: &Path, port: u16) -> ScanArgs {
    ScanArgs {
        targets: targets.to_owned(),
        concurrency: 50,
        timeout: 5.0,
        trust: TrustArgs {
            cacert: vec![certs_dir().join("full-chain/roots.pem")],
            capath: None,
        },
        client_cert: Default::default(),
        alpn: vec!["h3".into()],
        resolve: vec![format!("localhost:{port}:127.0.0.1").parse().unwrap()],
        save_chain: None,
    }
}

#[test]
fn a_slow_lookup_holds_up_its_own_line_and_no_other() {
    let lab = start_lab("full-chain", "127.0.0.1:0").expect("lab");
    let port = lab.addr().port();
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets");
    // The slow name comes first: were it looked up on the loop, every line
    // after it would wait for it.
    let mut text = format!("slow.test:{port} localhost\n");
    for i in 0..20 {
        text.push_str(&format!("fast-{i}.test:{port} localhost\n"));
    }
    text.push_str("gone.invalid\n");
    std::fs::write(&targets, text).unwrap();
    let lab_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let resolver: quicprobe::scan::Resolver = Arc::new(move |target: &Target| {
        if target.host == "slow.test" {
            std::thread::sleep(Duration::from_millis(1500));
        }
        if target.host.ends_with(".invalid") {
            return quicprobe::scan::system_resolver()(target);
        }
        Ok(vec![lab_addr])
    });
    let mut out = Vec::new();
    let code = scan_cmd::run_with_resolver(&scan_args(&targets, port), resolver, &mut out)
        .expect("the scan runs");
    let text = String::from_utf8_lossy(&out);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 23, "{text}");
    assert_eq!(lines[21]["line"], 1, "the slow line ends last: {text}");
    assert_eq!(lines[21]["outcome"], "ok");
    assert!(lines[..21]
        .iter()
        .all(|o| o["outcome"] == "ok" || o["line"] == 22));
    let gone = lines.iter().find(|o| o["line"] == 22).unwrap();
    assert_eq!(gone["outcome"], "resolve_failed");
    assert_eq!(gone["exit_code"], 6);
    assert!(
        gone["explanation"]
            .as_str()
            .unwrap()
            .starts_with("could not resolve host: gone.invalid"),
        "{gone}"
    );
    assert_eq!(lines[22]["summary"]["outcomes"]["ok"], 21);
    assert_eq!(code, 6);
}

#[test]
fn an_unreadable_targets_file_is_exit_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    for path in [missing.as_path(), dir.path()] {
        let output = quicprobe(&["scan", "--targets", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(output.stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("quicprobe: --targets "), "{stderr}");
    }
}

#[test]
fn bad_flags_are_exit_2_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets");
    std::fs::write(&targets, "127.0.0.1:1\n").unwrap();
    for flags in [
        ["--concurrency", "0"],
        ["--timeout", "0"],
        ["--timeout", "nan"],
    ] {
        let mut args = vec!["scan", "--targets", targets.to_str().unwrap()];
        args.extend(flags);
        let output = quicprobe(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{flags:?}");
        assert_eq!(stderr.lines().count(), 1, "{flags:?}: {stderr}");
    }
}

#[test]
fn connections_in_flight_are_not_bounded_by_the_soft_open_file_limit() {
    // 1,500 targets at once under a soft limit of 1,024 (the usual default):
    // each holds a socket, so without raising the soft limit to the hard one
    // hundreds could not even start ("Too many open files").
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets");
    let text: String = (0..1500).map(|_| format!("127.0.0.1:{port}\n")).collect();
    std::fs::write(&targets, text).unwrap();
    let script = format!(
        "ulimit -Sn 1024 && exec {} scan --targets {} --concurrency 1500 --connect-timeout 1",
        env!("CARGO_BIN_EXE_quicprobe"),
        targets.display()
    );
    let output = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run the scan under bash");
    let (objects, summary) = read_scan_output(&output.stdout);
    assert_eq!(objects.len(), 1500, "{summary}");
    let not_started = objects
        .values()
        .filter(|o| o["outcome"] == "connect_failed")
        .count();
    assert_eq!(
        not_started,
        0,
        "{summary} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        objects.values().all(|o| o["outcome"] == "timeout"),
        "{summary}"
    );
}
