//! How a connection ended, as records: the CONNECTION_CLOSE and who sent
//! it, an idle timeout and whose it was, what became of a saved session.

use serde::Serialize;

use crate::engine::alerts;

/// How much of a close reason the text shows.
const MAX_REASON_SHOWN: usize = 200;

/// Which end of the connection did something: sent a close, had the
/// shorter idle timeout. In the JSON and the text, "client" or "server".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Server => "server",
        })
    }
}

/// A CONNECTION_CLOSE, sent or received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Close {
    pub sent_by: Side,
    pub is_app: bool,
    pub error_code: u64,
    pub reason: String,
    /// The TLS alert of a CRYPTO_ERROR (0x100 + alert).
    pub tls_alert: Option<u8>,
}

impl Close {
    pub fn from_error(sent_by: Side, error: &quiche::ConnectionError) -> Self {
        Self {
            sent_by,
            is_app: error.is_app,
            error_code: error.error_code,
            reason: String::from_utf8_lossy(&error.reason).into_owned(),
            tls_alert: (!error.is_app)
                .then(|| alerts::tls_alert_of(error.error_code))
                .flatten(),
        }
    }

    /// e.g. `0x12a CRYPTO_ERROR (TLS alert 42 bad_certificate), reason "..."`.
    pub fn describe(&self) -> String {
        let name = if self.is_app {
            "application error".to_owned()
        } else {
            alerts::transport_error_name(self.error_code)
        };
        let reason = if self.reason.is_empty() {
            "no reason given".to_owned()
        } else if self.reason.chars().count() > MAX_REASON_SHOWN {
            // The JSON keeps it whole; one line of text does not need 64 KiB.
            let shown: String = self.reason.chars().take(MAX_REASON_SHOWN).collect();
            format!("reason {shown:?}... ({} bytes in all)", self.reason.len())
        } else {
            format!("reason {:?}", self.reason)
        };
        format!("0x{:x} {name}, {reason}", self.error_code)
    }
}

/// What became of a saved session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SessionReport {
    /// A ticket saved for this host and port was offered.
    pub offered: bool,
    /// The server resumed it: no certificate was sent, the chain was
    /// verified when the session was first made.
    pub resumed: bool,
    /// With --early-data: "accepted", or why 0-RTT was not.
    pub early_data: Option<&'static str>,
}

impl SessionReport {
    pub fn describe(&self) -> String {
        let resumption = match (self.offered, self.resumed) {
            (false, _) => "no saved session for this server yet".to_owned(),
            (true, true) => "resumed a saved session (no certificate is sent on \
                             resumption: the chain was verified when it was saved)"
                .to_owned(),
            (true, false) => "offered a saved session; the server did not resume it".to_owned(),
        };
        match self.early_data {
            Some(reason) => format!("{resumption}; 0-RTT {reason}"),
            None => resumption,
        }
    }
}

/// An idle timeout ended the connection: silently, as RFC 9000 §10.1 has
/// it, so the shorter of the two advertised timeouts says whose it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IdleEnd {
    /// The server when its max_idle_timeout was the shorter one.
    pub by: Side,
    /// The server's max_idle_timeout (0: none).
    pub server_idle_timeout_ms: u64,
    pub our_idle_timeout_ms: u64,
    /// Time since the last datagram from the server.
    pub idle_ms: u64,
    /// Time from the completed handshake to the end.
    pub connected_ms: u64,
}

impl IdleEnd {
    /// A few words for the summary line.
    pub fn brief(&self) -> String {
        let whose = if self.by == Side::Server {
            "the server's"
        } else {
            "our"
        };
        format!(
            "ended by {whose} idle timeout ({} ms)",
            if self.by == Side::Server {
                self.server_idle_timeout_ms
            } else {
                self.our_idle_timeout_ms
            }
        )
    }

    pub fn describe(&self) -> String {
        if self.by == Side::Server {
            format!(
                "the server's idle timeout ({} ms, shorter than our {} ms) ended the \
                 connection after {} ms without traffic; nothing went wrong",
                self.server_idle_timeout_ms, self.our_idle_timeout_ms, self.idle_ms
            )
        } else {
            format!(
                "our idle timeout ({} ms, --idle-timeout) ended the connection after {} ms \
                 without traffic",
                self.our_idle_timeout_ms, self.idle_ms
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close_with_reason(reason: String) -> Close {
        Close {
            sent_by: Side::Server,
            is_app: false,
            error_code: 0xa,
            reason,
            tls_alert: None,
        }
    }

    #[test]
    fn a_huge_close_reason_is_cut_in_the_text_and_its_size_said() {
        let text = close_with_reason("x".repeat(65_459)).describe();
        assert!(text.len() < 300, "{} characters", text.len());
        assert!(text.contains("(65459 bytes in all)"), "{text}");
    }

    #[test]
    fn a_short_close_reason_is_shown_whole() {
        let text = close_with_reason("bye".into()).describe();
        assert_eq!(text, "0xa PROTOCOL_VIOLATION, reason \"bye\"");
    }
}
