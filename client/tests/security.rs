//! Strict by default, and nothing outside the command line can change that
//! (issue 8): no environment variable turns verification off, the keylog is
//! written only when asked for, and neither the client nor the verifier
//! starts another program (so no shell ever sees data from the network).
//! The AIA fetcher's limits (no redirect followed, no read past its size
//! limit) are tested in aia.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use quicprobe::lab::{self, LabHandle, LabSpec};

mod support;

use support::{certs_dir, json_of, repo};

/// Variables that turn verification off somewhere (Python, Node, curl's
/// wrappers, Go, git, ...), and the ones quicprobe itself reads.
const TEMPTING_VARIABLES: &[(&str, &str)] = &[
    ("QUICPROBE_INSECURE", "1"),
    ("QUICPROBE_NO_VERIFY", "1"),
    ("INSECURE", "1"),
    ("SSL_NO_VERIFY", "1"),
    ("SSL_VERIFY", "0"),
    ("CURL_INSECURE", "1"),
    ("CURL_CA_BUNDLE", ""),
    ("PYTHONHTTPSVERIFY", "0"),
    ("NODE_TLS_REJECT_UNAUTHORIZED", "0"),
    ("GIT_SSL_NO_VERIFY", "true"),
    ("GODEBUG", "x509ignoreCN=1"),
    ("OPENSSL_CONF", "/dev/null"),
    ("SSLKEYLOGFILE", "/dev/null"),
    ("QLOGDIR", "/tmp"),
    ("RUST_LOG", "trace"),
];

/// Every environment variable the sources read, and why (env_logger also
/// reads RUST_LOG, which sets the log level only).
const VARIABLES_READ: &[&str] = &[
    // Where to write TLS secrets, as curl and browsers do (0600, tested in connect_lab.rs).
    "SSLKEYLOGFILE",
    // Where to write qlog files, as quiche's apps do.
    "QLOGDIR",
    // The system's roots when no --cacert/--capath is given, as OpenSSL finds them:
    // a bundle and hashed directories (verifier/src/trust/system.rs).
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

fn start_lab(scenario: &str) -> LabHandle {
    let dir = certs_dir().join(scenario);
    lab::spawn(LabSpec::for_scenario(&dir, "127.0.0.1:0".parse().unwrap())).expect("lab server")
}

fn connect_command(scenario: &str, lab: &LabHandle) -> Command {
    let dir = certs_dir().join(scenario);
    let port = lab.addr().port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_quicprobe"));
    command
        .args(["connect", "--json", "--cacert"])
        .arg(dir.join("roots.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("localhost:{port}"));
    command
}

#[test]
fn no_environment_variable_turns_verification_off() {
    for scenario in ["untrusted-root", "leaf-only", "expired-leaf"] {
        let lab = start_lab(scenario);
        let mut command = connect_command(scenario, &lab);
        command.envs(TEMPTING_VARIABLES.iter().copied());
        let output = command.output().expect("run quicprobe");
        let report = json_of(&output);
        assert_eq!(output.status.code(), Some(60), "{scenario}: {report}");
        assert_eq!(report["verdict"]["accepted"], false, "{scenario}");
        assert_eq!(report["insecure"], false, "{scenario}");
    }
}

#[test]
fn no_keylog_is_written_unless_asked_for() {
    let lab = start_lab("full-chain");
    let cwd = tempfile::tempdir().unwrap();
    let mut command = connect_command("full-chain", &lab);
    command
        .current_dir(cwd.path())
        .env("HOME", cwd.path())
        .env_remove("SSLKEYLOGFILE")
        .env_remove("QLOGDIR");
    let output = command.output().expect("run quicprobe");
    assert_eq!(output.status.code(), Some(0), "{}", json_of(&output));
    let written: Vec<PathBuf> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(written.is_empty(), "files written unasked: {written:?}");
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn product_sources() -> Vec<(PathBuf, String)> {
    ["client/src", "verifier/src"]
        .iter()
        .flat_map(|dir| rust_files(&repo().join(dir)))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect()
}

/// The string literal right after each `needle` in `text`.
fn names_after(text: &str, needle: &str) -> Vec<String> {
    text.match_indices(needle)
        .filter_map(|(at, _)| {
            let rest = &text[at + needle.len()..];
            let rest = rest.trim_start().strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_owned())
        })
        .collect()
}

#[test]
fn the_sources_read_only_the_documented_environment_variables() {
    let mut read = Vec::new();
    for (path, text) in product_sources() {
        for needle in ["var_os(", "env::var("] {
            let names = names_after(&text, needle);
            assert_eq!(
                names.len(),
                text.matches(needle).count(),
                "{}: an environment read whose name is not a literal",
                path.display()
            );
            read.extend(names);
        }
    }
    read.sort();
    read.dedup();
    let mut documented: Vec<String> = VARIABLES_READ.iter().map(|s| s.to_string()).collect();
    documented.sort();
    assert_eq!(read, documented);
}

#[test]
fn neither_the_client_nor_the_verifier_starts_another_program() {
    for (path, text) in product_sources() {
        for needle in [
            "process::Command",
            "Command::new",
            "libc::system",
            "libc::exec",
            "libc::fork",
            "posix_spawn",
        ] {
            assert!(
                !text.contains(needle),
                "{} contains {needle}: data from the network must never reach a shell",
                path.display()
            );
        }
    }
}
