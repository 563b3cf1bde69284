//! Resource bounds of one long-lived process (issue 8): 5000 connections one
//! after the other through `quicprobe scan --concurrency 1`, against a lab
//! server on 127.0.0.1. `scan` prints each target's line as it ends, so the
//! test knows how many connections are done when it reads the process's
//! open file descriptors and RSS from /proc.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quicprobe::lab::{self, LabSpec};

mod support;

use support::certs_dir;

const CONNECTIONS: usize = 5000;
/// The baseline is read once this many connections are done.
const WARM_UP: usize = 500;
const SAMPLE_EVERY: usize = 250;
const RSS_GROWTH_LIMIT_KIB: u64 = 10 * 1024;
/// A bound on the whole run, far above its usual length.
const RUN_LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
struct Sample {
    done: usize,
    fds: usize,
    rss_kib: u64,
}

fn sample(pid: u32, done: usize) -> Sample {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS");
    Sample { done, fds, rss_kib }
}

/// Kills the scan if the run goes past its limit, so the test cannot hang.
fn watchdog(pid: u32, finished: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let started = Instant::now();
        while !finished.load(Ordering::SeqCst) {
            if started.elapsed() > RUN_LIMIT {
                let _ = Command::new("kill").arg(pid.to_string()).status();
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn five_thousand_sequential_connections_keep_fds_constant_and_rss_bounded() {
    let dir = certs_dir().join("full-chain");
    let lab = lab::spawn(LabSpec::for_scenario(&dir, "127.0.0.1:0".parse().unwrap()))
        .expect("lab server");
    let port = lab.addr().port();
    let mut targets = tempfile::NamedTempFile::new().unwrap();
    for _ in 0..CONNECTIONS {
        writeln!(targets, "localhost:{port}").unwrap();
    }
    targets.flush().unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(["-q", "scan", "--concurrency", "1", "--alpn", "hq-interop"])
        .arg("--targets")
        .arg(targets.path())
        .arg("--cacert")
        .arg(dir.join("roots.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run quicprobe scan");
    let mut child = KillOnDrop(child);
    let pid = child.0.id();
    let finished = Arc::new(AtomicBool::new(false));
    watchdog(pid, finished.clone());

    let stdout = child.0.stdout.take().expect("stdout");
    let mut samples = Vec::new();
    let (mut done, mut ok) = (0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line of scan output");
        if line.contains("\"summary\"") {
            break;
        }
        done += 1;
        ok += usize::from(line.contains("\"outcome\":\"ok\""));
        // Not after the last line: the process may already be exiting, and a
        // zombie's /proc status has no VmRSS.
        let sampled = done % SAMPLE_EVERY == 0 || done == CONNECTIONS - 1;
        if (WARM_UP..CONNECTIONS).contains(&done) && sampled {
            samples.push(sample(pid, done));
        }
    }
    finished.store(true, Ordering::SeqCst);
    let status = child.0.wait().expect("scan ends");

    assert_eq!(
        done, CONNECTIONS,
        "every connection reported (exit {status:?})"
    );
    assert_eq!(ok, CONNECTIONS, "every connection succeeded");
    assert!(status.success(), "{status:?}");
    let base = samples[0];
    println!(
        "after {WARM_UP}: {base:?}; last: {:?}",
        samples.last().unwrap()
    );
    for later in &samples[1..] {
        // A connection may be open at the moment of a sample: one socket.
        assert!(
            later.fds.abs_diff(base.fds) <= 1,
            "open file descriptors drift by {} connections: {base:?} -> {later:?}",
            later.done
        );
        assert!(
            later.rss_kib.saturating_sub(base.rss_kib) < RSS_GROWTH_LIMIT_KIB,
            "RSS grew by 10 MiB or more after {WARM_UP} connections: {base:?} -> {later:?}"
        );
    }
}
