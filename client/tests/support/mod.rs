//! What the integration tests share: the scenario catalogue, running the
//! real `quicprobe` binary, reading its JSON, and real peer servers started
//! as child processes on 127.0.0.1 and always stopped.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's Python, where scripts/setup installed aioquic.
pub fn python() -> PathBuf {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup (scripts/test does)",
        python.display()
    );
    python
}

pub fn certs_dir() -> PathBuf {
    repo().join("certs")
}

pub fn scenario(name: &str) -> PathBuf {
    certs_dir().join(name)
}

/// Every scenario of certs/, by name, sorted.
pub fn scenario_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(certs_dir())
        .expect("certs/")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("expected").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn read_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Runs the quicprobe binary built for this test run.
pub fn quicprobe<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("SSLKEYLOGFILE")
        .env_remove("QLOGDIR")
        .output()
        .expect("run quicprobe")
}

/// The first line of stdout as JSON, or a panic that shows both streams.
pub fn json_of(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().next().unwrap_or("")).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

pub fn stage_names(report: &Value) -> Vec<String> {
    report["stages"]
        .as_array()
        .map(|stages| {
            stages
                .iter()
                .map(|s| s["name"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port");
    socket.local_addr().expect("local address").port()
}

/// SHA-256, hex, of the lab's and the msquic server's body pattern.
pub fn pattern_sha256(len: usize) -> String {
    let body = quicprobe::lab::pattern(len);
    ring::digest::digest(&ring::digest::SHA256, &body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A server running as a child process. Its stdout lines are collected as
/// they come; it is killed when dropped, so a failing test never leaks it.
pub struct PeerServer {
    child: Child,
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    arrivals: Receiver<String>,
    /// Lines before this were consumed by `next_line_with`.
    cursor: usize,
}

impl PeerServer {
    /// Starts `program args...` and waits for it to print `listening on`.
    pub fn start(program: &Path, args: &[String], port: u16) -> Result<Self, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, arrivals) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                collected.lock().expect("lines").push(line.clone());
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            port,
            lines,
            arrivals,
            cursor: 0,
        };
        if server.wait_for("listening on", Duration::from_secs(10)) {
            return Ok(server);
        }
        let _ = server.child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = server.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        Err(format!("{} did not start: {stderr}", program.display()))
    }

    /// Waits until a stdout line contains `needle`; lines seen before count.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        if self.lines().iter().any(|l| l.contains(needle)) {
            return true;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.arrivals.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// Waits for the next line containing `needle` that no earlier call
    /// returned, and returns it; lines before it are passed over for good.
    pub fn next_line_with(&mut self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let lines = self.lines();
            if let Some(offset) = lines[self.cursor..].iter().position(|l| l.contains(needle)) {
                self.cursor += offset + 1;
                return Some(lines[self.cursor - 1].clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = self
                .arrivals
                .recv_timeout(left.min(Duration::from_millis(50)));
        }
    }

    /// Sends SIGTERM and waits (bounded) for the process to end.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // Through kill(1), as a supervisor sends it.
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The msquic test server, built once per test run by the same script the
/// README's test command runs (a no-op when it is built already).
pub fn msquic_server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let script = repo().join("scripts/build-msquic-server");
        let status = Command::new(&script)
            .status()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(status.success(), "scripts/build-msquic-server failed");
        repo().join("tools/msquic-server/target/release/quicprobe-msquic-server")
    })
}

/// Starts the msquic server on a free port, with a few tries because
/// another test may take the port between the check and the bind.
pub fn start_msquic(extra: &[&str]) -> PeerServer {
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_udp_port();
        let mut args = vec!["--listen".to_owned(), format!("127.0.0.1:{port}")];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        match PeerServer::start(msquic_server_binary(), &args, port) {
            Ok(server) => return server,
            Err(error) => last_error = error,
        }
    }
    panic!("the msquic server did not start: {last_error}");
}

/// The arguments of scripts/aioquic/server.py listening on `listen` and
/// presenting each scenario's chain (with port 0, each on a port of its own).
pub fn aioquic_server_args(listen: &str, names: &[String]) -> Vec<String> {
    let mut args = vec![
        repo()
            .join("scripts/aioquic/server.py")
            .display()
            .to_string(),
        "--listen".to_owned(),
        listen.to_owned(),
    ];
    for name in names {
        let dir = scenario(name);
        args.push("--chain".to_owned());
        args.push(dir.join("chain.pem").display().to_string());
        args.push("--key".to_owned());
        args.push(dir.join("key.pem").display().to_string());
    }
    args
}

/// The aioquic server of scripts/aioquic, presenting a scenario's chain.
pub fn start_aioquic_server(name: &str, extra: &[&str]) -> PeerServer {
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_udp_port();
        let mut args = aioquic_server_args(&format!("127.0.0.1:{port}"), &[name.to_owned()]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        match PeerServer::start(&python(), &args, port) {
            Ok(server) => return server,
            Err(error) => last_error = error,
        }
    }
    panic!("the aioquic server did not start: {last_error}");
}

/// Runs the quicprobe binary with `RUST_BACKTRACE=1`, so that a panic
/// (which a test must fail on) says where it happened on stderr.
pub fn quicprobe_with_backtrace<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("SSLKEYLOGFILE")
        .env_remove("QLOGDIR")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run quicprobe")
}

/// `quicprobe impair` between clients and `upstream`, listening on a port of
/// 127.0.0.1 it picks itself (so no other test can take it first); `port`
/// is that port. Killed when dropped; `stop_impair` stops it politely.
pub fn start_impair(upstream: std::net::SocketAddr, flags: &[&str]) -> PeerServer {
    let mut args = vec![
        "impair".to_owned(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--upstream".to_owned(),
        upstream.to_string(),
    ];
    args.extend(flags.iter().map(|s| (*s).to_owned()));
    let binary = Path::new(env!("CARGO_BIN_EXE_quicprobe"));
    let mut proxy = PeerServer::start(binary, &args, 0)
        .unwrap_or_else(|error| panic!("quicprobe impair {flags:?}: {error}"));
    proxy.port = proxy
        .lines()
        .iter()
        .find_map(|line| line.strip_prefix("listening on "))
        .and_then(|addr| addr.trim().parse::<std::net::SocketAddr>().ok())
        .map(|addr| addr.port())
        .expect("impair prints `listening on ADDR`");
    proxy
}

/// Stops an impair proxy with SIGTERM; checks it exits 0 and returns the
/// counters of its `summary:` line (clients, forwarded, dropped, ...).
pub fn stop_impair(proxy: &mut PeerServer) -> std::collections::BTreeMap<String, u64> {
    let status = proxy
        .terminate()
        .expect("impair stops within 10 s of SIGTERM");
    assert!(status.success(), "impair exited with {status}");
    let line = proxy
        .next_line_with("summary:", Duration::from_secs(5))
        .expect("impair prints a summary line when it stops");
    line.trim_start_matches("summary:")
        .split_whitespace()
        .filter_map(|field| field.split_once('='))
        .filter_map(|(name, value)| Some((name.to_owned(), value.parse().ok()?)))
        .collect()
}

/// scripts/aioquic/hostile_server.py running one `case` on a port of 127.0.0.1
/// it picks itself; `port` is that port. Killed when dropped.
pub fn start_hostile_server(case: &str, extra: &[&str]) -> PeerServer {
    let mut args = vec![
        repo()
            .join("scripts/aioquic/hostile_server.py")
            .display()
            .to_string(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--case".to_owned(),
        case.to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut server = PeerServer::start(&python(), &args, 0)
        .unwrap_or_else(|error| panic!("hostile server {case}: {error}"));
    server.port = listening_port(&server);
    server
}

/// `quicprobe serve --scenario NAME` on a port of 127.0.0.1 it picks itself.
pub fn start_serve(scenario_name: &str) -> PeerServer {
    let args = [
        "serve".to_owned(),
        "--scenario".to_owned(),
        scenario(scenario_name).display().to_string(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    let binary = Path::new(env!("CARGO_BIN_EXE_quicprobe"));
    let mut server = PeerServer::start(binary, &args, 0)
        .unwrap_or_else(|error| panic!("quicprobe serve --scenario {scenario_name}: {error}"));
    server.port = listening_port(&server);
    server
}

/// The port of the `listening on ADDR` line a server printed.
fn listening_port(server: &PeerServer) -> u16 {
    server
        .lines()
        .iter()
        .find_map(|line| line.split("listening on ").nth(1))
        .and_then(|addr| addr.trim().parse::<std::net::SocketAddr>().ok())
        .map(|addr| addr.port())
        .expect("the server prints `listening on ADDR`")
}

/// A pathological scenario of certs/ (it has a `hostile` file), which tests
/// walking the whole catalogue treat explicitly.
pub fn is_hostile(name: &str) -> bool {
    scenario(name).join("hostile").is_file()
}

/// One entry of certs/scenarios.json.
pub fn catalogue() -> Vec<Value> {
    let text =
        std::fs::read_to_string(certs_dir().join("scenarios.json")).expect("certs/scenarios.json");
    serde_json::from_str::<Value>(&text)
        .expect("scenarios.json is JSON")
        .as_array()
        .expect("an array")
        .clone()
}

pub fn entry(name: &str) -> Value {
    catalogue()
        .into_iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in scenarios.json"))
}

/// The trust a scenario's client has: `--cacert roots.pem` unless its
/// `trust` file says `system`, and `SSL_CERT_FILE` at its
/// `system-bundle.pem` when it has one.
pub struct ClientTrust {
    pub args: Vec<String>,
    pub ssl_cert_file: Option<PathBuf>,
}

pub fn client_trust(name: &str) -> ClientTrust {
    let dir = scenario(name);
    let trust_file = dir.join("trust");
    let system = trust_file.is_file() && read_line(&trust_file) == "system";
    let args = if system {
        Vec::new()
    } else {
        vec![
            "--cacert".to_owned(),
            dir.join("roots.pem").display().to_string(),
        ]
    };
    let bundle = dir.join("system-bundle.pem");
    ClientTrust {
        args,
        ssl_cert_file: bundle.is_file().then_some(bundle),
    }
}

/// Runs quicprobe with the scenario's trust. Without a bundle of its own,
/// `SSL_CERT_FILE` names a file that does not exist, so that the machine's
/// bundle cannot decide anything; `SSL_CERT_DIR` is removed, so that the
/// scenario's bundle (or nothing) is all the system roots there are, whatever
/// the machine's environment says (a variable set means the environment
/// alone names the roots).
pub fn quicprobe_trusting(name: &str, args: &[String]) -> Output {
    let trust = client_trust(name);
    let bundle = trust
        .ssl_cert_file
        .unwrap_or_else(|| PathBuf::from("/nonexistent/quicprobe-test-bundle.pem"));
    let mut all = args.to_vec();
    all.splice(1..1, trust.args);
    Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(&all)
        .env("SSL_CERT_FILE", bundle)
        .env_remove("SSL_CERT_DIR")
        .env_remove("RUST_LOG")
        .env_remove("SSLKEYLOGFILE")
        .output()
        .expect("run quicprobe")
}

/// The lab in-process, serving a scenario of certs/ on a port of 127.0.0.1
/// it picks itself; stopped when the handle is dropped.
pub fn lab_for(name: &str) -> quicprobe::lab::LabHandle {
    quicprobe::lab::spawn(quicprobe::lab::LabSpec::for_scenario(
        &scenario(name),
        "127.0.0.1:0".parse().expect("literal address"),
    ))
    .unwrap_or_else(|error| panic!("the lab serving {name}: {error}"))
}

/// A scenario's roots.pem, as an argument.
pub fn roots_of(name: &str) -> String {
    scenario(name).join("roots.pem").display().to_string()
}

/// `connect` to a scenario's name at `addr`, trusting its roots (an
/// https:// URL, or host:port for an IP), with `--json` when asked.
pub fn scenario_connect_args(
    dir: &Path,
    addr: std::net::SocketAddr,
    extra: &[&str],
    json: bool,
) -> Vec<String> {
    let host = read_line(&dir.join("host"));
    let target = if host.parse::<std::net::IpAddr>().is_ok() {
        format!("{host}:{}", addr.port())
    } else {
        format!("https://{host}:{}/", addr.port())
    };
    let mut args = vec!["connect".to_owned()];
    if json {
        args.push("--json".to_owned());
    }
    args.extend([
        "--timeout".to_owned(),
        "5".to_owned(),
        "--cacert".to_owned(),
        dir.join("roots.pem").display().to_string(),
        "--resolve".to_owned(),
        format!("{host}:{}:127.0.0.1", addr.port()),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(target);
    args
}

/// The lab in-process serving a scenario folder anywhere (a clone too),
/// answering as its `seen.json` says the captured server did.
pub fn lab_for_dir(dir: &Path) -> quicprobe::lab::LabHandle {
    let mut spec = quicprobe::lab::LabSpec::for_scenario(dir, "127.0.0.1:0".parse().unwrap());
    if let Some(seen) = quicprobe::lab::scenario::Seen::read(dir).expect("seen.json") {
        spec.answer_as_seen(&seen);
    }
    quicprobe::lab::spawn(spec)
        .unwrap_or_else(|error| panic!("the lab serving {}: {error}", dir.display()))
}

/// The roots a scenario's client trusts, as a PEM file: its system bundle
/// when its `trust` file says `system`, else roots.pem.
pub fn trusted_roots_file(dir: &Path) -> PathBuf {
    let trust = dir.join("trust");
    if trust.is_file() && read_line(&trust) == "system" {
        dir.join("system-bundle.pem")
    } else {
        dir.join("roots.pem")
    }
}
