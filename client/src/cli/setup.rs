//! From arguments to ready objects: the trust store, the client setup and
//! the per-connection settings, the addressing, durations; checked once
//! here so that commands get values that are already valid.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use quicprobe_verifier::AlertStyle;

use super::trust::load_trust;
use super::{AlertStyleArg, ConnectionOptions};
use crate::capture::ChainFiles;
use crate::engine::client_identity::ClientIdentity;
use crate::engine::config::{ClientSetup, ConnectError};
use crate::engine::probe::ProbeSettings;
use crate::engine::target::{Addressing, Family};
use crate::report::trace::TraceStyle;
use crate::report::write_out::WriteOut;

/// Said once per run on stderr, even with -q (not through the logger, which
/// -q silences): `--insecure` never goes quietly.
fn warn_insecure() {
    eprintln!(
        "quicprobe: WARNING: --insecure: certificate verification failures will NOT stop \
         the connection (each one is still reported)"
    );
}

/// The client side of a run from the shared options: trust, TLS, QUIC and
/// per-connection settings. Checks the values TLS would refuse and every
/// file the run will write; warns about `--insecure`.
pub fn prepare(
    conn: &ConnectionOptions,
    trace_style: TraceStyle,
) -> Result<(ClientSetup, ProbeSettings), ConnectError> {
    check_values(conn)?;
    check_outputs(conn)?;
    let trust = Arc::new(load_trust(&conn.trust)?);
    let keylog = conn
        .keylog
        .clone()
        .or_else(|| std::env::var_os("SSLKEYLOGFILE").map(PathBuf::from));
    let identity = client_identity(&conn.client_cert)?;
    let setup = ClientSetup {
        trust,
        alert_style: alert_style(conn, trace_style),
        alpns: conn.alpn.clone(),
        idle_timeout: seconds("--idle-timeout", conn.idle_timeout)?,
        keylog: keylog.is_some(),
        insecure: conn.insecure,
        curves: conn.curves.clone(),
        early_data: conn.early_data,
        identity: identity.clone(),
    };
    if conn.insecure {
        warn_insecure();
    }
    log::info!("ALPN: quicprobe offers {}", conn.alpn.join(","));
    let settings = ProbeSettings {
        alpns: conn.alpn.clone(),
        sni: conn.sni.clone(),
        timeout: seconds("--connect-timeout", conn.connect_timeout)?,
        max_time: conn
            .max_time
            .map(|max| seconds("-m/--max-time", max))
            .transpose()?,
        fail_on_http_error: conn.fail,
        keylog,
        qlog_dir: conn
            .qlog_dir
            .clone()
            .or_else(|| std::env::var_os("QLOGDIR").map(PathBuf::from)),
        insecure: conn.insecure,
        idle_timeout: setup.idle_timeout,
        hold: None,
        session_file: conn.session_file.clone(),
        early_data: conn.early_data,
        local_ports: conn.local_port,
        client_certificate: identity.as_ref().map(ClientIdentity::summary),
        // The command says whether it prints JSON: `wants_body_digest`.
        body_digest: false,
    };
    Ok((setup, settings))
}

/// Whether the run must hash response bodies: only when an output shows the
/// digest (the JSON's `body_sha256`, as --json, --json-file, --trace-style
/// json or `-w %{json}` print it, or `-w %{body_sha256}`). Otherwise the
/// bodies are counted, not hashed, and `body_sha256` stays null.
pub fn wants_body_digest(json_output: bool, format: Option<&WriteOut>) -> bool {
    json_output || format.is_some_and(WriteOut::shows_body_digest)
}

/// `--cert`, `--key`, `--pass`, `--cert-type`: loaded and checked now, so
/// that a key that does not match is a usage error before any connection.
pub fn client_identity(
    args: &super::ClientCertArgs,
) -> Result<Option<ClientIdentity>, ConnectError> {
    args.files()
        .map(|files| ClientIdentity::load(&files))
        .transpose()
        .map_err(ConnectError::from)
}

/// Values clap accepts but TLS cannot use, named with their flag before
/// BoringSSL turns them into a bare `TlsFail`.
fn check_values(conn: &ConnectionOptions) -> Result<(), ConnectError> {
    for alpn in &conn.alpn {
        // RFC 7301 §3.1: a protocol name is 1 to 255 bytes.
        if alpn.is_empty() || alpn.len() > 255 {
            return Err(ConnectError::Usage(format!(
                "--alpn {:?}: each protocol name must be 1 to 255 bytes (e.g. --alpn h3 or --alpn h3,hq-interop)",
                conn.alpn.join(",")
            )));
        }
    }
    if let Some(sni) = &conn.sni {
        // RFC 6066 §3: a host name, not empty, without a trailing dot, not an IP address.
        if sni.is_empty() || sni.ends_with('.') || sni.contains(char::is_whitespace) {
            return Err(ConnectError::Usage(format!(
                "--sni {sni:?}: not a host name to send (give a DNS name such as example.com, \
                 or leave --sni out to send the target's host)"
            )));
        }
    }
    Ok(())
}

/// Every file the run will write, checked before the first packet (as
/// curl's exit 23, a write error): nothing is wasted on a connection whose
/// output would be lost. Folders are never created: curl creates them only
/// with --create-dirs, which quicprobe does not have.
fn check_outputs(conn: &ConnectionOptions) -> Result<(), ConnectError> {
    if let Some(path) = &conn.keylog {
        open_for_append("--keylog", path, 0o600)?;
    }
    if let Some(path) = &conn.session_file {
        // Created only when a ticket arrives (an empty file is no session).
        if path.exists() {
            open_for_append("--session-file", path, 0o600)?;
        } else {
            existing_folder("--session-file", path, parent_of(path))?;
        }
    }
    if let Some(dir) = &conn.qlog_dir {
        existing_folder("--qlog-dir", dir, dir)?;
    } else if let Some(dir) = std::env::var_os("QLOGDIR").map(PathBuf::from) {
        existing_folder("QLOGDIR", &dir, &dir)?;
    }
    Ok(())
}

/// Opens `path` for appending, creating it (with `mode` when created) but
/// never truncating it: a file the run can write.
fn open_for_append(flag: &'static str, path: &Path, mode: u32) -> Result<(), ConnectError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .open(path)
        .map(drop)
        .map_err(|source| ConnectError::File {
            flag,
            path: path.to_owned(),
            source,
        })
}

/// `-o FILE`, `--json-file FILE`: a file the run will write, checked (and
/// created) before connecting.
pub fn writable_file(flag: &'static str, path: &Path) -> Result<(), ConnectError> {
    open_for_append(flag, path, 0o666)
}

/// The folder a file named `path` goes into.
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `folder` must exist and be a directory; the error names `flag` and `path`.
fn existing_folder(flag: &'static str, path: &Path, folder: &Path) -> Result<(), ConnectError> {
    if folder.is_dir() {
        return Ok(());
    }
    Err(ConnectError::File {
        flag,
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no folder {} (quicprobe does not create folders)",
                folder.display()
            ),
        ),
    })
}

/// `-w FORMAT` (or `@FILE`), parsed before any connection is made.
pub fn write_out_format(arg: Option<&str>) -> Result<Option<WriteOut>, ConnectError> {
    arg.map(WriteOut::from_arg)
        .transpose()
        .map_err(|error| ConnectError::Usage(error.to_string()))
}

/// `--resolve`, `--connect-to`, `-4`/`-6`.
pub fn addressing(conn: &ConnectionOptions) -> Addressing {
    Addressing {
        resolve: conn.resolve.clone(),
        connect_to: conn.connect_to.clone(),
        family: Family::from_flags(conn.ipv4, conn.ipv6),
    }
}

/// `--alert-style`, or aioquic's when the trace is to read like aioquic's.
fn alert_style(conn: &ConnectionOptions, trace_style: TraceStyle) -> AlertStyle {
    match conn.alert_style {
        Some(AlertStyleArg::Strict) => AlertStyle::Strict,
        Some(AlertStyleArg::Aioquic) => AlertStyle::Aioquic,
        Some(AlertStyleArg::Boringssl) => AlertStyle::Boringssl,
        None if trace_style == TraceStyle::Aioquic => AlertStyle::Aioquic,
        None => AlertStyle::Strict,
    }
}

/// A positive number of seconds given to `flag`, the one place every
/// command parses its durations.
pub fn seconds(flag: &str, value: f64) -> Result<Duration, ConnectError> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ConnectError::Usage(format!("{flag} {value}: not a positive number of seconds"))
        })
}

/// `--save-chain FILE`: its folder must exist (nothing is created before a
/// chain arrives); with `numbered`, each connection gets its own file.
pub fn chain_files(
    path: Option<&Path>,
    numbered: bool,
) -> Result<Option<ChainFiles>, ConnectError> {
    let Some(path) = path else {
        return Ok(None);
    };
    existing_folder("--save-chain", path, parent_of(path))?;
    if path.is_dir() {
        return Err(ConnectError::File {
            flag: "--save-chain",
            path: path.to_owned(),
            source: std::io::Error::other("a folder, not a file"),
        });
    }
    Ok(Some(ChainFiles::new(path.to_owned(), numbered)))
}
