//! The client on a bad network: `quicprobe connect` and `quicprobe get`
//! through `quicprobe impair` (loss, reordering, duplication, corruption,
//! truncation, a black hole) to the lab on 127.0.0.1. Each run is seeded, so a
//! failure replays with the seed it prints. Every client runs with
//! `RUST_BACKTRACE=1`, and a panic fails the test whatever the exit code.

mod support;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use quicprobe::lab::{self, LabHandle};
use serde_json::Value;
use support::{
    json_of, pattern_sha256, quicprobe, quicprobe_with_backtrace, start_impair, stop_impair,
};

/// connect's default handshake timeout, given explicitly so the test says it.
const HANDSHAKE_TIMEOUT_SECS: &str = "10";
/// Seeded runs in flight at once: they mostly wait on retransmission
/// timers, so ten fit on a small machine.
const PARALLEL_RUNS: usize = 10;

fn start_lab() -> LabHandle {
    support::lab_for("full-chain")
}

fn roots() -> String {
    support::roots_of("full-chain")
}

/// `connect --json` to full-chain's name at the proxy's port.
fn connect(port: u16, timeout_secs: &str) -> Output {
    quicprobe_with_backtrace(&[
        "connect".to_owned(),
        "--json".to_owned(),
        "--timeout".to_owned(),
        timeout_secs.to_owned(),
        "--cacert".to_owned(),
        roots(),
        "--resolve".to_owned(),
        format!("localhost:{port}:127.0.0.1"),
        format!("https://localhost:{port}/"),
    ])
}

/// `get --alpn hq-interop --json` of the lab's /N pattern at the proxy's port.
fn get(port: u16, size: usize, timeout_secs: &str) -> Output {
    quicprobe_with_backtrace(&[
        "get".to_owned(),
        "--alpn".to_owned(),
        "hq-interop".to_owned(),
        "--json".to_owned(),
        // The whole transfer's limit, as curl's -m.
        "--max-time".to_owned(),
        timeout_secs.to_owned(),
        "--cacert".to_owned(),
        roots(),
        "--resolve".to_owned(),
        format!("localhost:{port}:127.0.0.1"),
        format!("https://localhost:{port}/{size}"),
    ])
}

/// One `connect` through a fresh lab and a relay with `flags`: the output,
/// its JSON, and the relay's counters; a panic fails the test.
fn connect_through(
    flags: &[&str],
    timeout_secs: &str,
    what: &str,
) -> (Output, Value, BTreeMap<String, u64>) {
    let lab = start_lab();
    let mut proxy = start_impair(lab.addr(), flags);
    let output = connect(proxy.port, timeout_secs);
    let counters = stop_impair(&mut proxy);
    assert_no_panic(&output, what);
    let report = json_of(&output);
    (output, report, counters)
}

fn assert_no_panic(output: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

/// Whether the report's verdict stage says the chain was accepted (None: no verdict yet).
fn verdict_accepted(report: &Value) -> Option<bool> {
    report["stages"]
        .as_array()?
        .iter()
        .find(|stage| stage["name"] == "verdict")
        .and_then(|stage| stage["accepted"].as_bool())
}

/// One seeded handshake through its own proxy.
#[derive(Debug)]
struct SeededRun {
    seed: u64,
    exit_code: Option<i32>,
    outcome: String,
    explanation: String,
    verdict_accepted: Option<bool>,
    handshake_ms: Option<f64>,
    wall: Duration,
}

/// A connect through a fresh proxy with `flags` and `--seed seed`.
fn seeded_handshake(lab: SocketAddr, seed: u64, flags: &[&str], timeout_secs: &str) -> SeededRun {
    let seed_text = seed.to_string();
    let mut all_flags = vec!["--seed", seed_text.as_str()];
    all_flags.extend_from_slice(flags);
    let proxy = start_impair(lab, &all_flags);
    let started = Instant::now();
    let output = connect(proxy.port, timeout_secs);
    let wall = started.elapsed();
    drop(proxy);
    assert_no_panic(&output, &format!("seed {seed}"));
    let report = json_of(&output);
    SeededRun {
        seed,
        exit_code: output.status.code(),
        outcome: report["outcome"].as_str().unwrap_or("?").to_owned(),
        explanation: report["explanation"].as_str().unwrap_or("").to_owned(),
        verdict_accepted: verdict_accepted(&report),
        handshake_ms: report["handshake_ms"].as_f64(),
        wall,
    }
}

/// Runs every seed, `PARALLEL_RUNS` at a time; results in seed order.
fn run_seeds(lab: SocketAddr, seeds: &[u64], flags: &[&str], timeout_secs: &str) -> Vec<SeededRun> {
    let next = AtomicUsize::new(0);
    let runs = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_RUNS.min(seeds.len()) {
            scope.spawn(|| {
                while let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let run = seeded_handshake(lab, seed, flags, timeout_secs);
                    runs.lock().unwrap().push(run);
                }
            });
        }
    });
    let mut runs = runs.into_inner().unwrap();
    runs.sort_by_key(|run| run.seed);
    runs
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * fraction).round() as usize],
    }
}

/// One line for the test log (and docs/reliability.md): how many completed, how fast.
fn describe(runs: &[SeededRun], wall: Duration) -> String {
    let mut times: Vec<f64> = runs.iter().filter_map(|r| r.handshake_ms).collect();
    times.sort_by(f64::total_cmp);
    let failures: Vec<String> = runs
        .iter()
        .filter(|r| r.exit_code != Some(0))
        .map(|r| {
            format!(
                "seed {} exit {:?} {} ({}) after {:.1} s",
                r.seed,
                r.exit_code,
                r.outcome,
                r.explanation,
                r.wall.as_secs_f64()
            )
        })
        .collect();
    format!(
        "{}/{} handshakes completed; handshake ms median {:.0}, p90 {:.0}, max {:.0}; \
         {:.1} s for all; failures: {failures:?}",
        times.len(),
        runs.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        times.last().copied().unwrap_or(f64::NAN),
        wall.as_secs_f64()
    )
}

#[test]
fn handshakes_complete_in_at_least_95_of_100_seeded_runs_under_20_percent_loss_reordering_and_duplication(
) {
    let lab = start_lab();
    let seeds: Vec<u64> = (1..=100).collect();
    let flags = [
        "--loss",
        "20",
        "--reorder",
        "4",
        "--duplicate",
        "10",
        "--direction",
        "both",
    ];
    let started = Instant::now();
    let runs = run_seeds(lab.addr(), &seeds, &flags, HANDSHAKE_TIMEOUT_SECS);
    let summary = describe(&runs, started.elapsed());
    println!("20% loss, reorder window 4, 10% duplication, both ways: {summary}");
    let completed = runs.iter().filter(|r| r.exit_code == Some(0)).count();
    assert!(completed >= 95, "{summary}");
    for run in &runs {
        // Loss only delays: a run that does not complete in time is a
        // timeout, never a failed handshake or a rejected chain.
        assert!(
            matches!(run.exit_code, Some(0) | Some(28)),
            "seed {}: {run:?}",
            run.seed
        );
        assert_ne!(run.verdict_accepted, Some(false), "seed {}", run.seed);
    }
}

#[test]
fn a_32_mib_download_under_5_percent_loss_and_reordering_matches_byte_for_byte() {
    const SIZE: usize = 32 << 20;
    let lab = start_lab();
    // A short hold keeps the round trip small, so the test is about
    // correctness under loss and reordering, not about a slow link.
    let mut proxy = start_impair(
        lab.addr(),
        &[
            "--seed",
            "7",
            "--loss",
            "5",
            "--reorder",
            "4",
            "--reorder-hold",
            "1",
        ],
    );
    let started = Instant::now();
    let output = get(proxy.port, SIZE, "120");
    let elapsed = started.elapsed();
    let counters = stop_impair(&mut proxy);
    assert_no_panic(&output, "download");
    let report = json_of(&output);
    println!(
        "32 MiB under 5% loss + reorder window 4: {:.1} s, exit {:?}, client stats {}, proxy {counters:?}",
        elapsed.as_secs_f64(),
        output.status.code(),
        report["stats"]
    );
    assert_eq!(output.status.code(), Some(0), "{}", report["explanation"]);
    let response = &report["response"];
    assert_eq!(response["complete"], true, "{response}");
    assert_eq!(response["body_bytes"], SIZE, "{response}");
    assert_eq!(response["body_sha256"], pattern_sha256(SIZE).as_str());
    // The path really was bad.
    assert!(counters["dropped"] > 1000, "{counters:?}");
    assert!(counters["reordered"] > 1000, "{counters:?}");
}

#[test]
fn corruption_never_panics_nor_changes_the_verdict() {
    let lab = start_lab();
    let seeds: Vec<u64> = (1..=20).collect();
    let started = Instant::now();
    let runs = run_seeds(lab.addr(), &seeds, &["--corrupt", "10"], "5");
    let summary = describe(&runs, started.elapsed());
    println!("10% of datagrams with one bit flipped, both ways: {summary}");
    for run in &runs {
        // A flipped bit fails the packet's AEAD tag (or its header parse):
        // the packet is dropped, nothing else.
        assert!(
            matches!(run.exit_code, Some(0) | Some(28)),
            "seed {}: {run:?}",
            run.seed
        );
        if run.exit_code == Some(0) {
            assert_eq!(run.verdict_accepted, Some(true), "seed {}", run.seed);
        }
        assert_ne!(run.verdict_accepted, Some(false), "seed {}", run.seed);
    }
}

#[test]
fn a_download_through_bit_flips_is_still_byte_for_byte() {
    const SIZE: usize = 4 << 20;
    let lab = start_lab();
    let mut proxy = start_impair(lab.addr(), &["--seed", "3", "--corrupt", "2"]);
    let output = get(proxy.port, SIZE, "60");
    let counters = stop_impair(&mut proxy);
    assert_no_panic(&output, "download");
    let report = json_of(&output);
    println!("4 MiB, 2% of datagrams corrupted: proxy {counters:?}");
    assert_eq!(output.status.code(), Some(0), "{}", report["explanation"]);
    assert_eq!(
        report["response"]["body_sha256"],
        pattern_sha256(SIZE).as_str()
    );
    assert!(counters["corrupted"] > 10, "{counters:?}");
}

#[test]
fn client_datagrams_cut_below_1200_bytes_are_a_timeout_without_a_server_hello() {
    let (output, report, counters) = connect_through(
        &["--truncate", "1000", "--direction", "to-server"],
        "2",
        "truncated",
    );
    println!(
        "client datagrams cut to 1000 bytes: exit {:?}, {}; proxy {counters:?}",
        output.status.code(),
        report["explanation"]
    );
    assert_eq!(output.status.code(), Some(28), "{report}");
    assert_eq!(report["outcome"], "timeout");
    assert_eq!(
        verdict_accepted(&report),
        None,
        "no certificate ever arrives"
    );
    // The ClientHello's first packet is always cut, so no ServerHello ever
    // comes; and the lab discards every Initial in a datagram under 1200
    // bytes (RFC 9000 §14.1), so it never answers at all. (Before it did, it
    // acknowledged a small Initial packet that survived the cut.)
    let explanation = report["explanation"].as_str().unwrap();
    assert!(
        explanation.starts_with("no answer to the Initial"),
        "{explanation}"
    );
    assert!(counters["truncated"] >= 2, "{counters:?}");
}

#[test]
fn the_servers_datagrams_cut_short_mostly_time_out_saying_the_server_answered() {
    // The server's first datagrams are 1200 bytes (its ServerHello, with an
    // X25519MLKEM768 share, fills them); cut to 1100, the packet carrying it
    // fails its AEAD tag, and so does nearly every retransmission. Rarely
    // (1 run in about 20 measured) a retransmission is packed small enough to
    // pass and the handshake completes late: also a right answer.
    let (output, report, counters) = connect_through(
        &["--truncate", "1100", "--direction", "to-client"],
        "2",
        "truncated",
    );
    println!(
        "server datagrams cut to 1100 bytes: exit {:?}, {}; proxy {counters:?}",
        output.status.code(),
        report["explanation"]
    );
    assert!(counters["truncated"] >= 1, "{counters:?}");
    if output.status.code() == Some(0) {
        assert_eq!(verdict_accepted(&report), Some(true), "{report}");
        return;
    }
    assert_eq!(output.status.code(), Some(28), "{report}");
    assert_eq!(verdict_accepted(&report), None, "no certificate arrives");
    // Not "nothing listens": the server did answer.
    let explanation = report["explanation"].as_str().unwrap();
    assert!(
        explanation.starts_with("the server answered the Initial"),
        "{explanation}"
    );
}

#[test]
fn a_black_hole_from_the_first_datagram_is_a_timeout_at_the_initial() {
    let (output, report, counters) =
        connect_through(&["--blackhole-after", "0"], "2", "black hole");
    assert_eq!(output.status.code(), Some(28), "{report}");
    let explanation = report["explanation"].as_str().unwrap();
    assert!(
        explanation.starts_with("no answer to the Initial"),
        "{explanation}"
    );
    assert_eq!(counters["forwarded"], 0, "{counters:?}");
    assert!(counters["blackholed"] >= 2, "{counters:?}");
}

#[test]
fn a_black_hole_mid_download_is_a_timeout_that_names_the_bytes_received() {
    const SIZE: usize = 32 << 20;
    let lab = start_lab();
    let mut proxy = start_impair(lab.addr(), &["--blackhole-after", "400"]);
    let started = Instant::now();
    let output = get(proxy.port, SIZE, "3");
    let elapsed = started.elapsed();
    let counters = stop_impair(&mut proxy);
    assert_no_panic(&output, "black hole");
    let report = json_of(&output);
    println!(
        "black hole after 400 datagrams of a 32 MiB download: exit {:?} after {:.1} s, {}",
        output.status.code(),
        elapsed.as_secs_f64(),
        report["explanation"]
    );
    assert_eq!(output.status.code(), Some(28), "{report}");
    assert_eq!(report["outcome"], "timeout");
    assert_eq!(report["response"]["complete"], false);
    let explanation = report["explanation"].as_str().unwrap();
    assert!(
        explanation.starts_with("the response stalled after"),
        "{explanation}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(counters["blackholed"] > 0, "{counters:?}");
}

#[test]
fn impair_prints_a_summary_of_what_it_did_on_sigterm_and_exits_0() {
    let lab = start_lab();
    let mut proxy = start_impair(lab.addr(), &["--seed", "1"]);
    let output = connect(proxy.port, HANDSHAKE_TIMEOUT_SECS);
    assert_eq!(output.status.code(), Some(0), "{}", json_of(&output));
    let counters = stop_impair(&mut proxy);
    assert_eq!(counters["clients"], 1, "{counters:?}");
    assert!(counters["forwarded"] >= 4, "{counters:?}");
    for untouched in [
        "dropped",
        "duplicated",
        "corrupted",
        "truncated",
        "reordered",
        "blackholed",
    ] {
        assert_eq!(counters[untouched], 0, "{untouched}: {counters:?}");
    }
}

#[test]
fn impair_refuses_other_than_loopback_and_bad_flags_with_exit_2() {
    let base = [
        "impair",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:4433",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| (*s).to_owned()).collect()
    };
    let refused_addresses = [
        vec![
            "impair",
            "--listen",
            "0.0.0.0:0",
            "--upstream",
            "127.0.0.1:4433",
        ],
        vec![
            "impair",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "192.0.2.1:443",
        ],
        vec![
            "impair",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "[::]:443",
        ],
        vec![
            "impair",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:0",
        ],
    ];
    for args in refused_addresses {
        let output = quicprobe(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("quicprobe: "), "{stderr}");
    }
    let bad_flags = [
        with(&["--loss", "101"]),
        with(&["--loss", "lots"]),
        with(&["--duplicate", "-5"]),
        with(&["--reorder", "100000"]),
        with(&["--seed", "abc"]),
        with(&["--direction", "sideways"]),
        with(&["--truncate", "70000"]),
        vec![
            "impair".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ],
    ];
    for args in bad_flags {
        let output = quicprobe(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        // One line in quicprobe's one error style, naming flag and value.
        assert!(stderr.starts_with("quicprobe: "), "{args:?}: {stderr}");
    }
}

/// A UDP echo server on 127.0.0.1, for as long as the test runs.
fn spawn_echo() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..len], from);
        }
    });
    addr
}

/// Sends 40 numbered datagrams through a proxy that loses, duplicates and
/// corrupts on the way to the server only, and returns every echo that came
/// back, sorted. Only the way in is impaired, so the fates are drawn in
/// the order the datagrams were sent, whatever the timing of the echoes.
fn echoes_through(echo: SocketAddr, seed: &str) -> (Vec<Vec<u8>>, BTreeMap<String, u64>) {
    let mut proxy = start_impair(
        echo,
        &[
            "--seed",
            seed,
            "--loss",
            "30",
            "--duplicate",
            "20",
            "--corrupt",
            "20",
            "--direction",
            "to-server",
        ],
    );
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let to = SocketAddr::from(([127, 0, 0, 1], proxy.port));
    for n in 0u8..40 {
        client.send_to(&[n; 16], to).unwrap();
    }
    let mut echoes = Vec::new();
    let mut buf = [0u8; 64];
    // Until half a second passes without an echo.
    while let Ok(len) = client.recv(&mut buf) {
        echoes.push(buf[..len].to_vec());
    }
    let counters = stop_impair(&mut proxy);
    echoes.sort();
    assert_eq!(
        echoes.len() as u64,
        counters["forwarded"] / 2,
        "{counters:?}"
    );
    (echoes, counters)
}

#[test]
fn the_same_seed_replays_the_same_losses_over_the_wire() {
    let echo = spawn_echo();
    let (first, counters) = echoes_through(echo, "9");
    assert_eq!(first, echoes_through(echo, "9").0);
    assert_ne!(first, echoes_through(echo, "10").0);
    // Some were lost, some came twice, some came back damaged.
    for fate in ["dropped", "duplicated", "corrupted"] {
        assert!(counters[fate] > 0, "{fate}: {counters:?}");
    }
}

#[test]
fn delay_and_jitter_lengthen_the_round_trip_and_the_handshake_still_completes() {
    let (output, report, counters) = connect_through(
        &["--seed", "2", "--delay", "40", "--jitter", "10"],
        HANDSHAKE_TIMEOUT_SECS,
        "delay",
    );
    assert_eq!(output.status.code(), Some(0), "{}", report["explanation"]);
    // 30 to 50 ms each way: the handshake takes at least one such round trip.
    let handshake_ms = report["handshake_ms"].as_f64().unwrap();
    let rtt_ms = report["stats"]["rtt_ms"].as_f64().unwrap();
    println!("40 ms ± 10 ms each way: handshake {handshake_ms} ms, rtt {rtt_ms} ms");
    assert!(handshake_ms >= 60.0, "{handshake_ms}");
    assert!(rtt_ms >= 60.0, "{rtt_ms}");
    assert_eq!(counters["dropped"], 0, "{counters:?}");
}

#[test]
fn one_proxy_relays_many_clients_each_from_its_own_address() {
    // Each quicprobe process is one client: its connections share one socket.
    const CLIENTS: usize = 6;
    let lab = start_lab();
    let mut proxy = start_impair(lab.addr(), &["--seed", "4", "--loss", "5"]);
    let port = proxy.port;
    let runs: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                quicprobe_with_backtrace(&[
                    "connect".to_owned(),
                    "--json".to_owned(),
                    "--repeat".to_owned(),
                    "5".to_owned(),
                    "--concurrency".to_owned(),
                    "5".to_owned(),
                    "--cacert".to_owned(),
                    roots(),
                    "--resolve".to_owned(),
                    format!("localhost:{port}:127.0.0.1"),
                    format!("https://localhost:{port}/"),
                ])
            })
        })
        .collect();
    let outputs: Vec<_> = runs.into_iter().map(|run| run.join().unwrap()).collect();
    let counters = stop_impair(&mut proxy);
    for output in &outputs {
        assert_no_panic(output, "many clients");
        let summary = json_of(output);
        assert_eq!(summary["successes"], 5, "{summary}");
    }
    assert_eq!(counters["clients"], CLIENTS as u64, "{counters:?}");
    // The server saw one peer per client, as behind a NAT: one upstream
    // socket each, carrying all of that client's connections.
    let mut peers = std::collections::HashSet::new();
    while let Some(event) = lab.next_event(Duration::from_millis(300)) {
        if let lab::LabEvent::HandshakeDone { peer, .. } = event {
            peers.insert(peer);
        }
    }
    assert_eq!(peers.len(), CLIENTS, "{peers:?}");
}
