//! `--session-file`: TLS session tickets kept between runs, for resumption
//! and 0-RTT.
//!
//! A resumed TLS 1.3 handshake carries no certificate: the client relies on
//! the verification made when the session was first established. So a
//! ticket is saved only from a connection whose chain was verified and
//! accepted (never from one `--insecure` let through), and it is offered
//! only to the same host and port it was verified for.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::hex::hex;

/// What the file holds: the session and what it was verified for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSession {
    /// `host:port` the chain was verified for.
    pub authority: String,
    /// quiche's serialised session (TLS session and transport parameters), hex.
    pub session_hex: String,
}

/// Why a session file was not used.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: not a quicprobe session file")]
    Format(String),
    #[error("{path}: the session is for {saved}, not {wanted}")]
    OtherServer {
        path: String,
        saved: String,
        wanted: String,
    },
}

/// The session to offer to `authority`, if the file holds one for it. A
/// missing file is no error: the first run creates it.
pub fn load(path: &Path, authority: &str) -> Result<Option<Vec<u8>>, SessionError> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(SessionError::Io(shown, error)),
    };
    let saved: SavedSession =
        serde_json::from_str(&text).map_err(|_| SessionError::Format(shown.clone()))?;
    if saved.authority != authority {
        return Err(SessionError::OtherServer {
            path: shown,
            saved: saved.authority,
            wanted: authority.to_owned(),
        });
    }
    from_hex(&saved.session_hex)
        .map(Some)
        .ok_or(SessionError::Format(shown))
}

/// Writes the session for `authority`, readable by the owner only: it holds
/// secrets that let its holder resume the session.
pub fn save(path: &Path, authority: &str, session: &[u8]) -> Result<(), SessionError> {
    let saved = SavedSession {
        authority: authority.to_owned(),
        session_hex: hex(session),
    };
    let shown = path.display().to_string();
    let text = serde_json::to_string(&saved).map_err(|_| SessionError::Format(shown.clone()))?;
    write_private(path, text.as_bytes()).map_err(|e| SessionError::Io(shown, e))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// BoringSSL's `ssl_early_data_reason_t`, as words.
pub fn early_data_reason(reason: u32) -> &'static str {
    match reason {
        1 => "disabled",
        2 => "accepted",
        3 => "rejected: protocol version",
        4 => "rejected: the server declined",
        5 => "not attempted: no session offered",
        6 => "rejected: the session was not resumed",
        7 => "rejected: the session does not allow 0-RTT",
        8 => "rejected: HelloRetryRequest",
        9 => "rejected: ALPN mismatch",
        12 => "rejected: ticket age skew",
        13 => "rejected: QUIC transport parameters changed",
        14 => "rejected: ALPS mismatch",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_round_trips_for_its_server_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session");
        assert_eq!(load(&path, "localhost:4433").unwrap(), None);
        save(&path, "localhost:4433", &[1, 2, 254]).unwrap();
        assert_eq!(
            load(&path, "localhost:4433").unwrap(),
            Some(vec![1, 2, 254])
        );
        assert!(matches!(
            load(&path, "other:4433"),
            Err(SessionError::OtherServer { .. })
        ));
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn garbage_is_a_format_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session");
        for text in ["", "{", "[]", r#"{"authority":"a:1","session_hex":"zz"}"#] {
            std::fs::write(&path, text).unwrap();
            assert!(load(&path, "a:1").is_err(), "{text:?}");
        }
    }
}
