//! quicprobe as an installed tool (issue 19): `--version` names what decides
//! a handshake; the trust store line says which system roots were loaded
//! from `SSL_CERT_FILE` and `SSL_CERT_DIR`; a binary placed anywhere finds the
//! scenarios installed beside it (`<prefix>/share/quicprobe/certs`), and says
//! where it looked when there are none. The Debian package itself is tested
//! by scripts/test-package.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{quicprobe, scenario};

#[test]
fn version_names_quicprobe_quiche_boring_and_the_commit() {
    let output = quicprobe(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let first = format!("quicprobe {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(lines[0].starts_with(&first), "{text}");
    assert!(lines[1].starts_with("quiche 0."), "{text}");
    assert!(lines[2].starts_with("boring 5."), "{text}");
    assert!(lines[2].contains("BoringSSL"), "{text}");

    let short = quicprobe(&["-V"]);
    assert_eq!(short.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&short.stdout).trim(), lines[0]);
}

/// A hashed directory holding one PEM file, as `openssl rehash` names it.
fn hashed_dir_with(dir: &Path, pem: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::copy(pem, dir.join("1a2b3c4d.0")).expect("copy root");
}

#[test]
fn the_trust_store_line_names_the_bundle_and_directories_of_the_environment() {
    let temp = tempfile::tempdir().expect("temporary folder");
    let dir = temp.path().join("hashed");
    let full_chain = scenario("full-chain");
    // The lab's root in the directory, public-looking test roots in the bundle.
    hashed_dir_with(&dir, &full_chain.join("roots.pem"));
    let bundle = scenario("no-cacert-private-root").join("system-bundle.pem");
    let chain = full_chain.join("chain.pem");
    let args = [
        "verify",
        "--chain",
        chain.to_str().expect("UTF-8 path"),
        "--host",
        "localhost",
    ];
    let run = |json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_quicprobe"));
        command
            .args(args)
            .env("SSL_CERT_FILE", &bundle)
            .env("SSL_CERT_DIR", &dir)
            .env_remove("RUST_LOG");
        if json {
            command.arg("--json");
        }
        command.output().expect("run quicprobe")
    };

    let output = run(true);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    let store = &report["diagnosis"]["trust_store"];
    assert_eq!(store["source"], "system", "{store}");
    assert_eq!(
        store["paths"],
        serde_json::json!([bundle.display().to_string(), dir.display().to_string()])
    );
    assert_eq!(
        store["certificates"], 4,
        "three in the bundle, one in the directory"
    );

    let text = String::from_utf8_lossy(&run(false).stdout).into_owned();
    let wanted = format!(
        "Trust store: system bundle {}, system directory {} (4 certificates)",
        bundle.display(),
        dir.display()
    );
    assert!(text.lines().any(|line| line == wanted), "{wanted}\n{text}");
}

/// The built binary placed at `<prefix>/bin/quicprobe`, as a package puts
/// it (a hard link when the file system allows: the binary is large).
fn place_binary(prefix: &Path) -> PathBuf {
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    let placed = bin.join("quicprobe");
    let built = Path::new(env!("CARGO_BIN_EXE_quicprobe"));
    if std::fs::hard_link(built, &placed).is_err() {
        std::fs::copy(built, &placed).expect("copy the binary");
    }
    placed
}

fn install_scenario(prefix: &Path, name: &str) {
    let to = prefix.join("share/quicprobe/certs").join(name);
    std::fs::create_dir_all(&to).expect("mkdir scenario");
    for file in ["chain.pem", "key.pem", "roots.pem", "host"] {
        std::fs::copy(scenario(name).join(file), to.join(file)).expect("copy scenario");
    }
}

/// `serve --scenario NAME` of `binary` run from `cwd`, until it says where it
/// listens (or exits); stopped with SIGTERM. Its output, all of it.
fn serve_until_listening(binary: &Path, cwd: &Path, name: &str) -> (Option<i32>, String) {
    let log = cwd.join("serve.log");
    let mut child = Command::new(binary)
        .args(["serve", "--scenario", name, "--listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(
            std::fs::File::options()
                .append(true)
                .open(&log)
                .expect("log file"),
        )
        .stdin(Stdio::null())
        .spawn()
        .expect("run quicprobe serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    while Instant::now() < deadline && !read().contains("listening on") {
        if let Some(status) = child.try_wait().expect("wait") {
            return (status.code(), read());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    (status.code(), read())
}

#[test]
fn a_binary_placed_anywhere_serves_the_scenarios_installed_beside_it() {
    let temp = tempfile::tempdir().expect("temporary prefix");
    let prefix = temp.path().join("usr");
    let binary = place_binary(&prefix);
    install_scenario(&prefix, "leaf-only");
    let cwd = temp.path().join("elsewhere");
    std::fs::create_dir_all(&cwd).expect("mkdir");

    let (code, log) = serve_until_listening(&binary, &cwd, "leaf-only");
    let installed = prefix.join("share/quicprobe/certs/leaf-only/chain.pem");
    assert!(
        log.contains(&format!("serving {}", installed.display())),
        "{log}"
    );
    assert!(log.contains("listening on 127.0.0.1:"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_binary_without_scenarios_says_where_it_looked() {
    let temp = tempfile::tempdir().expect("temporary prefix");
    let prefix = temp.path().join("usr");
    let binary = place_binary(&prefix);

    let (code, log) = serve_until_listening(&binary, temp.path(), "leaf-only");
    assert_eq!(code, Some(2), "{log}");
    let installed = prefix.join("share/quicprobe/certs");
    assert_eq!(
        log.trim(),
        format!(
            "quicprobe: no scenario \"leaf-only\" (looked for a folder of that name with \
             chain.pem and key.pem, then in certs, {})",
            installed.display()
        )
    );
}
