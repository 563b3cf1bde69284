//! quicprobe against aioquic, the client of the original report: both dial
//! the same server (the lab, and aioquic's own server), and
//! - `--trace-style aioquic` must give the lines aioquic logs, raw up to the
//!   close (or up to `ALPN negotiated protocol` on success): only timestamps
//!   and connection IDs are taken out, and aioquic's loss-recovery lines
//!   (`TIMING_LINES`), which depend on timers and have no counterpart;
//! - the server must receive the same CONNECTION_CLOSE from both.
//!
//! quicprobe offers X25519 only here (`--curves X25519`), as aioquic does:
//! with the same ClientHello the server cuts its flight into the same
//! datagrams, and where the Initial keys are dropped depends on that cut.
//!
//! Every scenario of certs/ but the hostile ones is checked against both
//! servers: one aioquic client process runs the whole catalogue one
//! connection after another (`connect.py --batch`), one aioquic server
//! process serves every chain, and the quicprobe runs go four at a time.
//!
//! aioquic comes from the venv `scripts/setup` makes; its absence is a failure.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use quicprobe::lab::{self, LabHandle, LabSpec};

mod support;

use support::{python, repo, scenario, PeerServer};

/// A CONNECTION_CLOSE as a server received it: (is_app, code, reason).
type Close = (bool, u64, String);

/// How many quicprobe runs go at once: CI has 2 cores, and each run mostly
/// waits on the loopback.
const WORKERS: usize = 4;

fn start_lab(scenario: &str) -> LabHandle {
    start_lab_with(scenario, false)
}

fn start_lab_with(scenario: &str, retry: bool) -> LabHandle {
    let dir = repo().join("certs").join(scenario);
    let mut spec = LabSpec::for_scenario(&dir, "127.0.0.1:0".parse().unwrap());
    spec.retry = retry;
    lab::spawn(spec).unwrap()
}

/// The name a scenario's client dials.
fn host_of(scenario: &str) -> String {
    support::read_line(&repo().join("certs").join(scenario).join("host"))
}

/// One connection to make: a scenario's name and roots, a server's port.
struct Dial {
    scenario: String,
    port: u16,
}

/// What aioquic logged (normalised) and its result line, e.g.
/// `error 298 unable to get local issuer certificate` or `ok h3`.
struct AioquicRun {
    lines: Vec<String>,
    result: String,
}

/// Every dial by aioquic, one after the other, in one process
/// (`connect.py --batch`), so that each log is its connection's alone.
fn aioquic_batch(dials: &[Dial]) -> Vec<AioquicRun> {
    let mut child = Command::new(python())
        .arg(repo().join("scripts/aioquic/connect.py"))
        .arg("--batch")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run aioquic");
    let mut jobs = String::new();
    for dial in dials {
        let roots = scenario(&dial.scenario).join("roots.pem");
        // The servers listen on 127.0.0.1; "localhost" may resolve to ::1 first.
        let job = serde_json::json!({
            "host": "127.0.0.1",
            "port": dial.port,
            "server_name": host_of(&dial.scenario),
            "cafile": roots,
        });
        jobs.push_str(&format!("{job}\n"));
    }
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(jobs.as_bytes()).expect("aioquic's stdin");
    drop(stdin);
    let output = child.wait_with_output().expect("aioquic ends");
    let runs: Vec<AioquicRun> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|run| AioquicRun {
            lines: run["log"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|line| line.as_str())
                .flat_map(normalise)
                .collect(),
            result: run["result"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    assert_eq!(
        runs.len(),
        dials.len(),
        "aioquic gave {} results for {} connections; its stderr:\n{}",
        runs.len(),
        dials.len(),
        String::from_utf8_lossy(&output.stderr)
    );
    runs
}

fn aioquic_run(scenario: &str, port: u16) -> AioquicRun {
    let dial = Dial {
        scenario: scenario.to_owned(),
        port,
    };
    aioquic_batch(&[dial]).pop().expect("one run")
}

/// quicprobe's aioquic-style trace (normalised) and its exit code.
fn quicprobe_run(scenario: &str, port: u16) -> (Vec<String>, i32) {
    let roots = repo().join("certs").join(scenario).join("roots.pem");
    let output = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(["connect", "--trace-style", "aioquic", "--curves", "X25519"])
        .arg("--cacert")
        .arg(roots)
        .args([
            "--resolve",
            &format!("{}:{port}:127.0.0.1", host_of(scenario)),
            &format!("{}:{port}", host_of(scenario)),
        ])
        .env_remove("RUST_LOG")
        .output()
        .expect("run quicprobe");
    (trace_lines(&output), output.status.code().unwrap_or(-1))
}

/// The trace, on stderr, as aioquic prints its log.
fn trace_lines(output: &Output) -> Vec<String> {
    // The trace goes to stderr, as aioquic's log does.
    normalise(&String::from_utf8_lossy(&output.stderr))
}

/// Runs `work(0..count)` on `WORKERS` threads; the results in index order.
fn in_parallel<T: Send>(count: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= count {
                    break;
                }
                let result = work(index);
                results.lock().expect("results")[index] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|result| result.expect("every job ran"))
        .collect()
}

/// aioquic's lines that depend on timers and losses, not on the handshake,
/// and that quicprobe has no counterpart for: a server's retransmission
/// ("Duplicate CRYPTO data"), a probe timeout and its PINGs.
const TIMING_LINES: [&str; 4] = [
    "Duplicate CRYPTO data received",
    "Loss detection triggered",
    "Sending PING",
    "Received PING",
];

/// `2026-11-27 01:02:03,456 DEBUG quic [0d3c79fddcee7380] message` ->
/// `DEBUG quic message`: the time and the connection ID out, every line of
/// the `quic` logger kept but `TIMING_LINES`.
fn normalise(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| {
            let rest = line.get(24..)?;
            let (level, rest) = rest.split_once(' ')?;
            let rest = rest.strip_prefix("quic [")?;
            let (_, message) = rest.split_once("] ")?;
            let timing = TIMING_LINES.iter().any(|t| message.starts_with(t));
            (!timing).then(|| format!("{level} quic {message}"))
        })
        .collect()
}

/// The lines up to the close (`CONNECTED -> CLOSING`), or up to `ALPN
/// negotiated protocol` on success: after those each client ends in its own
/// way (see `mask_clean_close`). The whole log when it has neither.
fn up_to_the_close(lines: &[String]) -> Vec<String> {
    let end = lines.iter().position(|line| {
        line.ends_with("QuicConnectionState.CONNECTED -> QuicConnectionState.CLOSING")
            || line.contains(" ALPN negotiated protocol ")
    });
    match end {
        Some(end) => lines[..=end].to_vec(),
        None => lines.to_vec(),
    }
}

/// Where two traces differ, line by line (a longest-common-subsequence
/// diff): `-` aioquic only, `+` quicprobe only, two spaces for both.
fn line_diff(aioquic: &[String], ours: &[String]) -> String {
    let (n, m) = (aioquic.len(), ours.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if aioquic[i] == ours[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && aioquic[i] == ours[j] {
            out += &format!("      {}\n", aioquic[i]);
            (i, j) = (i + 1, j + 1);
        } else if j < m && (i == n || common[i][j + 1] >= common[i + 1][j]) {
            out += &format!("    + {}\n", ours[j]);
            j += 1;
        } else {
            out += &format!("    - {}\n", aioquic[i]);
            i += 1;
        }
    }
    out
}

/// The close the lab received next, as (is_app, code, reason).
fn lab_close(lab: &LabHandle, patience: Duration) -> Option<Close> {
    lab.wait_for_close(patience)
        .map(|c| (c.is_app, c.error_code, c.reason))
}

#[test]
fn seed_case_traces_match_aioquic_line_by_line_and_the_server_sees_the_same_close() {
    let lab = start_lab("leaf-only");
    let aioquic = aioquic_run("leaf-only", lab.addr().port());
    let aioquic_close = lab_close(&lab, Duration::from_secs(5));
    let (our_lines, exit_code) = quicprobe_run("leaf-only", lab.addr().port());
    let our_close = lab_close(&lab, Duration::from_secs(5));

    assert_eq!(
        aioquic.result,
        "error 298 unable to get local issuer certificate"
    );
    assert_eq!(exit_code, 60);
    assert_eq!(
        up_to_the_close(&our_lines),
        up_to_the_close(&aioquic.lines),
        "\n{}",
        line_diff(&aioquic.lines, &our_lines)
    );
    let expected = Some((
        false,
        0x12a,
        "unable to get local issuer certificate".to_owned(),
    ));
    assert_eq!(aioquic_close, expected, "what aioquic sends");
    assert_eq!(our_close, expected, "what quicprobe sends");
}

#[test]
fn successful_handshake_traces_match_aioquic_up_to_the_alpn() {
    let lab = start_lab("full-chain");
    let aioquic = aioquic_run("full-chain", lab.addr().port());
    let (our_lines, exit_code) = quicprobe_run("full-chain", lab.addr().port());
    assert_eq!(aioquic.result, "ok h3");
    assert_eq!(exit_code, 0);
    let expected = up_to_the_close(&aioquic.lines);
    assert!(
        expected
            .last()
            .is_some_and(|l| l.contains("ALPN negotiated")),
        "{expected:?}"
    );
    // The Initial keys go with the first Handshake packet, sent right after
    // the datagram that carried EncryptedExtensions (and the start of the
    // Certificate), in both clients.
    let discard = "DEBUG quic Discarding epoch Epoch.INITIAL";
    let after = expected
        .iter()
        .position(|l| l == discard)
        .map(|at| &expected[at - 1]);
    assert!(
        after.is_some_and(|l| l.ends_with("CLIENT_EXPECT_CERTIFICATE_REQUEST_OR_CERTIFICATE")),
        "{expected:?}"
    );
    assert_eq!(
        up_to_the_close(&our_lines),
        expected,
        "\n{}",
        line_diff(&aioquic.lines, &our_lines)
    );
}

#[test]
fn an_expired_leaf_is_closed_with_0x12d_by_both() {
    let lab = start_lab("expired-leaf");
    let aioquic = aioquic_run("expired-leaf", lab.addr().port());
    let aioquic_close = lab_close(&lab, Duration::from_secs(5));
    let (_, exit_code) = quicprobe_run("expired-leaf", lab.addr().port());
    let our_close = lab_close(&lab, Duration::from_secs(5));
    assert_eq!(aioquic.result, "error 301 Certificate is no longer valid");
    assert_eq!(exit_code, 60);
    assert_eq!(aioquic_close.as_ref().map(|c| c.1), Some(0x12d));
    // With the aioquic trace style quicprobe speaks aioquic's words too.
    assert_eq!(our_close, aioquic_close);
}

#[test]
fn retry_is_logged_as_aioquic_logs_it() {
    let lab = start_lab_with("full-chain", true);
    let aioquic = aioquic_run("full-chain", lab.addr().port());
    let (our_lines, exit_code) = quicprobe_run("full-chain", lab.addr().port());
    assert_eq!(aioquic.result, "ok h3");
    assert_eq!(exit_code, 0);
    // The lab's token holds the client's first DCID: 8 bytes from aioquic,
    // 16 from quiche, so the token sizes differ by 8.
    let retry = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .take_while(|l| !l.contains("QuicConnectionState.FIRSTFLIGHT"))
            .map(|l| match l.find("Retrying with token (") {
                Some(at) => format!("{}Retrying with token (N bytes)", &l[..at]),
                None => l.clone(),
            })
            .collect()
    };
    // Both: ClientHello, the Retry with the lab's token, ClientHello again.
    assert_eq!(retry(&our_lines), retry(&aioquic.lines));
    assert!(our_lines
        .iter()
        .any(|l| l.starts_with("INFO quic Retrying with token (")));
}

fn predicted_by_quicprobe(dir: &Path, host: &str) -> bool {
    let name_flag = if host.parse::<std::net::IpAddr>().is_ok() {
        "--ip"
    } else {
        "--host"
    };
    let output = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(["verify", "--json", "--chain"])
        .arg(dir.join("chain.pem"))
        .arg("--cacert")
        .arg(dir.join("roots.pem"))
        .args([name_flag, host])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["accepted_by"]["aioquic"] == true
}

/// Where quicprobe and aioquic genuinely differ on a scenario, and why.
/// Every other scenario must give the same trace and the same close.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[(
    "client-auth-eku",
    "aioquic checks no EKU (X509_verify_cert without a purpose) and accepts a \
     clientAuth-only leaf; strict quicprobe requires serverAuth and rejects it",
)];

/// A clean end after a completed handshake, which each client makes in its
/// own way. aioquic closes as soon as its handshake completes, before the
/// server's HANDSHAKE_DONE, and sends that CONNECTION_CLOSE (application
/// error 0) in a Handshake packet only; a server that has already dropped its
/// Handshake keys, as quiche does (RFC 9001 §4.9.2), never reads it, so the
/// lab receives nothing. quicprobe waits for HANDSHAKE_DONE and closes with
/// H3_NO_ERROR (0x100), the clean HTTP/3 close of RFC 9114 §8.1.
fn mask_clean_close(close: Option<Close>) -> Option<Close> {
    match close {
        None | Some((true, 0 | 0x100, _)) => Some((true, 0, "(a clean end)".into())),
        other => other,
    }
}

/// The servers of one catalogue run, one per scenario, in scenario order.
trait Servers {
    fn port(&self, index: usize) -> u16;
    /// The next close server `index` received, waiting up to `patience`.
    fn next_close(&mut self, index: usize, patience: Duration) -> Option<Close>;
}

impl Servers for Vec<LabHandle> {
    fn port(&self, index: usize) -> u16 {
        self[index].addr().port()
    }

    fn next_close(&mut self, index: usize, patience: Duration) -> Option<Close> {
        lab_close(&self[index], patience)
    }
}

/// One aioquic server process presenting every scenario's chain, each on a
/// port of its own (`server.py` with several `--chain`/`--key`).
struct AioquicServers {
    server: PeerServer,
    /// Each server's address, as its lines are prefixed with it.
    addresses: Vec<String>,
    /// How many closes of each were already taken.
    taken: Vec<usize>,
}

impl AioquicServers {
    fn start(names: &[String]) -> Self {
        let args = support::aioquic_server_args("127.0.0.1:0", names);
        let server = PeerServer::start(&python(), &args, 0).expect("the aioquic server starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let addresses: Vec<String> = server
                .lines()
                .iter()
                .filter_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
                .collect();
            if addresses.len() == names.len() {
                let taken = vec![0; names.len()];
                return Self {
                    server,
                    addresses,
                    taken,
                };
            }
            assert!(
                Instant::now() < deadline,
                "the aioquic server listens on {addresses:?} only"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Servers for AioquicServers {
    fn port(&self, index: usize) -> u16 {
        let (_, port) = self.addresses[index].rsplit_once(':').expect("ADDR:PORT");
        port.parse().expect("a port")
    }

    fn next_close(&mut self, index: usize, patience: Duration) -> Option<Close> {
        let prefix = format!("{}: close received: ", self.addresses[index]);
        let deadline = Instant::now() + patience;
        loop {
            let lines = self.server.lines();
            let mut closes = lines.iter().filter(|l| l.starts_with(&prefix));
            if let Some(line) = closes.nth(self.taken[index]) {
                self.taken[index] += 1;
                return close_seen_by_aioquic_server(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A close as the aioquic server logs it, without the frame type: quiche's
/// close API always writes frame type 0 where aioquic writes the frame that
/// failed (6, CRYPTO), a difference in a field no client acts on.
fn close_seen_by_aioquic_server(line: &str) -> Option<Close> {
    let field = |key: &str| {
        let at = line.find(&format!("{key}="))? + key.len() + 1;
        Some(&line[at..])
    };
    let code = field("error_code")?.split_whitespace().next()?;
    let code = u64::from_str_radix(code.trim_start_matches("0x"), 16).ok()?;
    let is_app = field("is_app")?.starts_with("true");
    let reason = field("reason")?;
    let reason = reason[..reason.rfind(" is_app=")?].to_owned();
    let reason: String = serde_json::from_str(&reason).ok()?;
    Some((is_app, code, reason))
}

/// How long to wait for a close: a rejection's comes at once; after a clean
/// end the server may receive nothing (see `mask_clean_close`).
fn patience(clean_end: bool) -> Duration {
    if clean_end {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(5)
    }
}

/// One scenario as both clients saw it against one server.
struct Pairing {
    aioquic: AioquicRun,
    aioquic_close: Option<Close>,
    our_lines: Vec<String>,
    our_close: Option<Close>,
}

impl Pairing {
    /// `None` when the traces (up to the close) and the closes agree, else
    /// what differs.
    fn disagreement(&self) -> Option<String> {
        let expected = up_to_the_close(&self.aioquic.lines);
        let got = up_to_the_close(&self.our_lines);
        let (aioquic_close, our_close) = (
            mask_clean_close(self.aioquic_close.clone()),
            mask_clean_close(self.our_close.clone()),
        );
        if expected == got && aioquic_close == our_close {
            return None;
        }
        let mut text = format!(
            "aioquic {:?} closed {aioquic_close:?}, quicprobe closed {our_close:?}",
            self.aioquic.result
        );
        if expected != got {
            text += &format!(
                "\n  trace up to the close (- aioquic, + quicprobe):\n{}",
                line_diff(&expected, &got)
            );
        }
        Some(text)
    }
}

/// Every scenario against `servers`: aioquic first (all of them, one
/// process), then quicprobe (four at a time); each server's closes taken in
/// that order.
fn pair_up(names: &[String], servers: &mut dyn Servers) -> Vec<Pairing> {
    let dials: Vec<Dial> = names
        .iter()
        .enumerate()
        .map(|(index, name)| Dial {
            scenario: name.clone(),
            port: servers.port(index),
        })
        .collect();
    let aioquic = aioquic_batch(&dials);
    let aioquic_closes: Vec<Option<Close>> = aioquic
        .iter()
        .enumerate()
        .map(|(index, run)| servers.next_close(index, patience(run.result.starts_with("ok"))))
        .collect();
    let ours = in_parallel(dials.len(), |index| {
        quicprobe_run(&dials[index].scenario, dials[index].port)
    });
    aioquic
        .into_iter()
        .zip(aioquic_closes)
        .zip(ours)
        .enumerate()
        .map(
            |(index, ((aioquic, aioquic_close), (our_lines, exit_code)))| Pairing {
                aioquic,
                aioquic_close,
                our_lines,
                our_close: servers.next_close(index, patience(exit_code == 0)),
            },
        )
        .collect()
}

/// Checks one scenario's agreement against its entry in `KNOWN_DIFFERENCES`.
fn judge(name: &str, difference: Option<String>, wrong: &mut Vec<String>) {
    let known = KNOWN_DIFFERENCES.iter().find(|(n, _)| *n == name);
    match (difference, known) {
        (None, None) | (Some(_), Some(_)) => {}
        (None, Some((_, why))) => wrong.push(format!(
            "{name}: listed as a difference ({why}) but both behave the same"
        )),
        (Some(difference), None) => wrong.push(format!("{name}: {difference}")),
    }
}

/// The scenarios compared: all of certs/ but the hostile ones, which are
/// about bounds (quiche's 64 KiB CRYPTO limit, verify depth, nesting), not
/// about what aioquic says: client/tests/hostile.rs runs them.
fn compared_scenarios() -> Vec<String> {
    support::scenario_names()
        .into_iter()
        .filter(|name| !support::is_hostile(name))
        .collect()
}

#[test]
fn every_scenario_gives_aioquics_trace_close_and_predicted_verdict_against_the_lab() {
    let names = compared_scenarios();
    let mut labs: Vec<LabHandle> = names.iter().map(|name| start_lab(name)).collect();
    let pairings = pair_up(&names, &mut labs);
    // `quicprobe verify`'s prediction for aioquic, against aioquic itself.
    let predictions = in_parallel(names.len(), |index| {
        predicted_by_quicprobe(&scenario(&names[index]), &host_of(&names[index]))
    });
    let mut wrong = Vec::new();
    for ((name, pairing), predicted) in names.iter().zip(&pairings).zip(predictions) {
        judge(name, pairing.disagreement(), &mut wrong);
        let aioquic_result = &pairing.aioquic.result;
        if predicted != aioquic_result.starts_with("ok") {
            wrong.push(format!(
                "{name}: accepted_by.aioquic predicted {predicted}, aioquic says {aioquic_result:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_scenario_gives_aioquics_trace_and_close_against_the_aioquic_server() {
    let names = compared_scenarios();
    let mut servers = AioquicServers::start(&names);
    let pairings = pair_up(&names, &mut servers);
    let mut wrong = Vec::new();
    for (name, pairing) in names.iter().zip(&pairings) {
        judge(name, pairing.disagreement(), &mut wrong);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `scripts/compare-aioquic`'s engine: exit 0 when the two agree, 1 naming
/// every difference.
#[test]
fn compare_aioquic_exits_0_on_agreement_and_1_listing_the_differences() {
    let run = |scenario: &str| {
        Command::new(python())
            .arg(repo().join("scripts/aioquic/compare.py"))
            .args(["--scenario", scenario])
            .env("QUICPROBE", env!("CARGO_BIN_EXE_quicprobe"))
            .output()
            .expect("run compare.py")
    };
    let agree = run("expired-leaf");
    let text = String::from_utf8_lossy(&agree.stdout);
    assert_eq!(agree.status.code(), Some(0), "{text}");
    assert!(text.contains("Certificate is no longer valid"), "{text}");

    let differ = run("client-auth-eku");
    let text = String::from_utf8_lossy(&differ.stdout);
    assert_eq!(differ.status.code(), Some(1), "{text}");
    assert!(
        text.contains("they differ: outcome, exit code, close code, close reason"),
        "{text}"
    );
    assert!(
        text.contains("--- aioquic") && text.contains("+++ quicprobe"),
        "{text}"
    );
}
