//! Accepting connections and logging what happens to them.
//!
//! Every line after "connection from" ends in `peer=ADDR`, so the lines of
//! concurrent connections can be told apart.

use crate::reaper::Reaper;
use crate::say::say;
use crate::streams::{self, App};
use msquic::{
    Configuration, ConnectionEvent, ConnectionRef, NewConnectionInfo, Status, StatusCode,
};

/// Takes a connection offered by the listener: logs it, installs its event
/// handler and starts its handshake with `configuration`.
pub fn accept(
    connection: &ConnectionRef,
    info: &NewConnectionInfo,
    configuration: &Configuration,
    reaper: &Reaper,
) -> Result<(), Status> {
    let peer = info
        .remote_address
        .as_socket()
        .map_or_else(|| "unknown".to_string(), |addr| addr.to_string());
    let alpn = String::from_utf8_lossy(info.negotiated_alpn).into_owned();
    say!(
        "connection from {peer} alpn={alpn} sni={} version=0x{:08x}",
        String::from_utf8_lossy(info.server_name),
        u32::from_be(info.quic_version) // msquic gives it in network order
    );
    let app = App::for_alpn(info.negotiated_alpn);
    let handler_reaper = reaper.clone();
    connection.set_callback_handler(move |connection, event| {
        on_event(&connection, event, &peer, app, &handler_reaper);
        Ok(())
    });
    // On error msquic refuses the connection and keeps ownership of it.
    connection.set_configuration(configuration)?;
    reaper.connection_accepted();
    Ok(())
}

fn on_event(
    connection: &ConnectionRef,
    event: ConnectionEvent,
    peer: &str,
    app: App,
    reaper: &Reaper,
) {
    match event {
        ConnectionEvent::Connected {
            session_resumed,
            negotiated_alpn,
        } => say!(
            "connected alpn={} resumed={session_resumed} peer={peer}",
            String::from_utf8_lossy(negotiated_alpn)
        ),
        ConnectionEvent::ShutdownInitiatedByTransport { status, error_code } => {
            if is_idle_timeout(&status) {
                say!(
                    "closed by idle timeout status={} peer={peer}",
                    status_name(&status)
                );
            } else {
                say!(
                    "closed by transport status={} error_code=0x{error_code:x} peer={peer}",
                    status_name(&status)
                );
            }
        }
        ConnectionEvent::ShutdownInitiatedByPeer { error_code } => {
            say!("closed by peer app_error=0x{error_code:x} peer={peer}")
        }
        ConnectionEvent::ShutdownComplete {
            handshake_completed,
            peer_acknowledged_shutdown,
            ..
        } => {
            say!(
                "shutdown complete handshake_completed={handshake_completed} \
                 peer_acknowledged={peer_acknowledged_shutdown} peer={peer}"
            );
            reaper.close_connection(connection);
        }
        ConnectionEvent::PeerStreamStarted { stream, flags } => {
            streams::attach(&stream, flags, app, reaper.clone())
        }
        _ => {}
    }
}

fn is_idle_timeout(status: &Status) -> bool {
    status.try_as_status_code().ok() == Some(StatusCode::QUIC_STATUS_CONNECTION_IDLE)
}

/// msquic's status for "TLS alert N" is this base + N (msquic_posix.h);
/// only a few alerts have names in the Rust enum.
const TLS_ALERT_STATUS_BASE: u32 = 0xBEB_C300;

/// `QUIC_STATUS_BAD_CERTIFICATE`, `QUIC_STATUS_TLS_ALERT(48)` for an alert
/// without a name, or the number.
pub fn status_name(status: &Status) -> String {
    if let Ok(code) = status.try_as_status_code() {
        return code.to_string();
    }
    let raw: u32 = status.0;
    match raw.checked_sub(TLS_ALERT_STATUS_BASE) {
        Some(alert) if alert <= 0xff => format!("QUIC_STATUS_TLS_ALERT({alert})"),
        _ => format!("0x{raw:x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_status_is_printed_by_name() {
        let status = Status::new(StatusCode::QUIC_STATUS_BAD_CERTIFICATE);
        assert_eq!(status_name(&status), "QUIC_STATUS_BAD_CERTIFICATE");
    }

    #[test]
    fn unnamed_tls_alert_status_names_the_alert() {
        // unknown_ca (48), as a BoringSSL-style client sends for a missing issuer.
        let status = Status::from(TLS_ALERT_STATUS_BASE + 48);
        assert_eq!(status_name(&status), "QUIC_STATUS_TLS_ALERT(48)");
    }
}
