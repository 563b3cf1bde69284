//! From arguments to ready objects: the trust store, the client setup and
//! the per-connection settings, the addressing, durations; checked once
//! here so that commands get values that are already valid.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quicprobe_verifier::AlertStyle;

use super::trust::load_trust;
use super::{AlertStyleArg, ConnectionOptions};
use crate::engine::client_identity::ClientIdentity;
use crate::engine::config::{ClientSetup, ConnectError};
use crate::engine::probe::ProbeSettings;
use crate::engine::target::{Addressing, Family};
use crate::report::trace::TraceStyle;

/// Said once per run on stderr, even with -q (not through the logger, which
/// -q silences): `--insecure` never goes quietly.
fn warn_insecure() {
    eprintln!(
        "quicprobe: WARNING: --insecure: certificate verification failures will NOT stop \
         the connection (each one is still reported)"
    );
}

/// The client side of a run from the shared options: trust, TLS, QUIC and
/// per-connection settings. Warns about `--insecure` and makes the qlog
/// directory; `timeout` is the command's own.
pub fn prepare(
    conn: &ConnectionOptions,
    trace_style: TraceStyle,
    timeout: Duration,
) -> Result<(ClientSetup, ProbeSettings), ConnectError> {
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
    let settings = ProbeSettings {
        alpns: conn.alpn.clone(),
        sni: conn.sni.clone(),
        timeout,
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
    };
    if let Some(dir) = &settings.qlog_dir {
        std::fs::create_dir_all(dir).map_err(|source| ConnectError::File {
            path: dir.clone(),
            source,
        })?;
    }
    Ok((setup, settings))
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
