//! The lines aioquic 1.x logs at DEBUG for the same handshake, with logging
//! format `%(asctime)s %(levelname)s %(name)s %(message)s`, in the order it
//! logs them. Lines that are quicprobe's own, where the two differ, start
//! with `# ` so that a comparison can tell them apart.

use std::fmt::Write;
use std::time::SystemTime;

use super::{summary_line, wall_clock, ConnectionStart};
use crate::engine::handshake::{Stage, StageEvent};
use crate::engine::outcome::{Outcome, OutcomeKind, Side};

/// aioquic's log of one connection, fed stage by stage.
#[derive(Debug)]
pub(super) struct AioquicLog {
    start: SystemTime,
    /// The first 8 bytes of our connection ID, as aioquic's prefix shows.
    cid: String,
    insecure: bool,
    /// A ServerHello came: aioquic's connection state is CONNECTED.
    connected: bool,
    discarded: Vec<Epoch>,
    /// The ALPN the EncryptedExtensions carried.
    alpn: Option<String>,
    /// A CertificateRequest came: aioquic's state names the Certificate next.
    certificate_requested: bool,
    /// The chain was rejected at this time, for this reason: the handshake
    /// goes no further in aioquic, whatever BoringSSL had read already.
    rejected: Option<(f64, String)>,
}

impl Default for AioquicLog {
    fn default() -> Self {
        Self {
            start: SystemTime::UNIX_EPOCH,
            cid: String::new(),
            insecure: false,
            connected: false,
            discarded: Vec::new(),
            alpn: None,
            certificate_requested: false,
            rejected: None,
        }
    }
}

impl AioquicLog {
    pub(super) fn start(&mut self, start: &ConnectionStart) {
        *self = Self {
            start: start.at,
            cid: start.connection_id.chars().take(16).collect(),
            insecure: start.insecure,
            ..Self::default()
        };
    }

    pub(super) fn stage(&mut self, event: &StageEvent) -> String {
        if self.rejected.is_some() {
            // aioquic verifies inside its CertificateVerify handler: after
            // a rejection it logs no further transition.
            return String::new();
        }
        let t = event.t_ms;
        match &event.stage {
            Stage::ClientHelloSent { .. } => self.line(
                t,
                "DEBUG",
                "TLS State.CLIENT_HANDSHAKE_START -> State.CLIENT_EXPECT_SERVER_HELLO",
            ),
            Stage::Retry { token_bytes } => self.line(
                t,
                "INFO",
                &format!("Retrying with token ({token_bytes} bytes)"),
            ),
            Stage::ServerHello { .. } => self.server_hello(t),
            Stage::EncryptedExtensions { alpn, .. } => {
                self.alpn.clone_from(alpn);
                self.line(
                    t,
                    "DEBUG",
                    "TLS State.CLIENT_EXPECT_ENCRYPTED_EXTENSIONS -> \
                     State.CLIENT_EXPECT_CERTIFICATE_REQUEST_OR_CERTIFICATE",
                )
            }
            Stage::CertificateRequest { .. } => {
                self.certificate_requested = true;
                self.line(
                    t,
                    "DEBUG",
                    "TLS State.CLIENT_EXPECT_CERTIFICATE_REQUEST_OR_CERTIFICATE -> \
                     State.CLIENT_EXPECT_CERTIFICATE",
                )
            }
            Stage::Certificate { .. } => self.line(
                t,
                "DEBUG",
                if self.certificate_requested {
                    "TLS State.CLIENT_EXPECT_CERTIFICATE -> State.CLIENT_EXPECT_CERTIFICATE_VERIFY"
                } else {
                    "TLS State.CLIENT_EXPECT_CERTIFICATE_REQUEST_OR_CERTIFICATE -> \
                     State.CLIENT_EXPECT_CERTIFICATE_VERIFY"
                },
            ),
            Stage::Verdict {
                accepted: false,
                reason,
                ..
            } if !self.insecure => {
                // Its lines need the close's code, known when the connection ends.
                self.rejected = Some((t, reason.clone()));
                String::new()
            }
            Stage::CertificateVerify { .. } => self.line(
                t,
                "DEBUG",
                "TLS State.CLIENT_EXPECT_CERTIFICATE_VERIFY -> State.CLIENT_EXPECT_FINISHED",
            ),
            Stage::ServerFinished => self.line(
                t,
                "DEBUG",
                "TLS State.CLIENT_EXPECT_FINISHED -> State.CLIENT_POST_HANDSHAKE",
            ),
            Stage::ClientFinishedSent => match self.alpn.clone() {
                Some(alpn) => self.line(t, "INFO", &format!("ALPN negotiated protocol {alpn}")),
                None => String::new(),
            },
            // HANDSHAKE_DONE confirms the handshake: the Handshake keys go.
            Stage::HandshakeDone => self.discard(Epoch::Handshake, t),
            _ => String::new(),
        }
    }

    fn server_hello(&mut self, t: f64) -> String {
        let mut out = String::new();
        if !self.connected {
            self.connected = true;
            out.push_str(&self.line(
                t,
                "DEBUG",
                "QuicConnectionState.FIRSTFLIGHT -> QuicConnectionState.CONNECTED",
            ));
            out.push_str(&self.line(
                t,
                "INFO",
                "Negotiated protocol version 0x00000001 (VERSION_1)",
            ));
        }
        out.push_str(&self.line(
            t,
            "DEBUG",
            "TLS State.CLIENT_EXPECT_SERVER_HELLO -> State.CLIENT_EXPECT_ENCRYPTED_EXTENSIONS",
        ));
        out
    }

    /// Our first Handshake packet went out: aioquic drops its Initial keys
    /// when it sends one, right after the first datagram with Handshake data.
    pub(super) fn initial_keys_dropped(&mut self, t_ms: f64) -> String {
        if self.rejected.is_some() {
            return String::new();
        }
        self.discard(Epoch::Initial, (t_ms * 10.0).round() / 10.0)
    }

    /// The close: a rejection's, or ours after a clean handshake; then every
    /// key still held goes, and what aioquic itself would have decided when
    /// it differs from quicprobe.
    pub(super) fn finish(&mut self, outcome: &Outcome) -> String {
        let end_ms = outcome.end.elapsed.as_secs_f64() * 1000.0;
        let mut out = String::new();
        if let Some((t, reason)) = self.rejected.clone() {
            let code = outcome.end.close.as_ref().map_or(0x12a, |c| c.error_code);
            out.push_str(&self.line(
                t,
                "WARNING",
                &format!("Error: {code}, reason: {reason}, frame_type: 6"),
            ));
            out.push_str(&self.closing(t, code, &reason));
        } else if outcome.end.kind == OutcomeKind::Ok {
            if let Some(close) = outcome
                .end
                .close
                .as_ref()
                .filter(|c| c.sent_by == Side::Client)
            {
                out.push_str(&self.closing(end_ms, close.error_code, &close.reason));
            }
        }
        if self.connected {
            // The end of the close drops every key still held.
            for epoch in [Epoch::Initial, Epoch::Handshake, Epoch::OneRtt] {
                out.push_str(&self.discard(epoch, end_ms));
            }
            out.push_str(&self.line(
                end_ms,
                "DEBUG",
                "QuicConnectionState.CLOSING -> QuicConnectionState.TERMINATED",
            ));
        }
        if let Some(note) = verdict_note(outcome) {
            let _ = writeln!(out, "# quicprobe: {note}");
        }
        let _ = writeln!(out, "{}", summary_line(outcome));
        out
    }

    fn closing(&self, t: f64, code: u64, reason: &str) -> String {
        self.line(
            t,
            "INFO",
            &format!("Connection close sent (code 0x{code:X}, reason {reason})"),
        ) + &self.line(
            t,
            "DEBUG",
            "QuicConnectionState.CONNECTED -> QuicConnectionState.CLOSING",
        )
    }

    /// Each epoch's keys are logged once, as aioquic does.
    fn discard(&mut self, epoch: Epoch, t: f64) -> String {
        if self.discarded.contains(&epoch) {
            return String::new();
        }
        self.discarded.push(epoch);
        self.line(t, "DEBUG", &format!("Discarding epoch {}", epoch.name()))
    }

    fn line(&self, event_ms: f64, level: &str, message: &str) -> String {
        format!(
            "{} {level} quic [{}] {message}\n",
            asctime(wall_clock(self.start, event_ms)),
            self.cid
        )
    }
}

/// When aioquic's own verdict on the chain differs from quicprobe's (it
/// checks no EKU, for one), or `--insecure` let a rejected chain through.
fn verdict_note(outcome: &Outcome) -> Option<String> {
    let analysis = outcome.chain.analysis.as_ref()?;
    let ours = analysis.verdict.accepted;
    let theirs = analysis.accepted_by.get("aioquic").copied()?;
    let reason = outcome
        .chain
        .checked
        .as_ref()
        .map(|c| c.reason().to_owned())
        .unwrap_or_default();
    match (ours, theirs, outcome.chain.insecure) {
        (false, true, _) => Some(format!(
            "differs from aioquic: aioquic itself would accept this chain and connect; \
             quicprobe rejects it ({reason})"
        )),
        (true, false, _) => Some(
            "differs from aioquic: aioquic itself would reject this chain; quicprobe accepts it"
                .into(),
        ),
        (false, false, true) => Some(format!(
            "--insecure: the chain was rejected ({reason}) and the handshake went on, as \
             aioquic's does with verify_mode=CERT_NONE; with verification aioquic stops here"
        )),
        _ => None,
    }
}

/// aioquic's packet number spaces, as it names them in its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    Initial,
    Handshake,
    OneRtt,
}

impl Epoch {
    fn name(self) -> &'static str {
        match self {
            Self::Initial => "Epoch.INITIAL",
            Self::Handshake => "Epoch.HANDSHAKE",
            Self::OneRtt => "Epoch.ONE_RTT",
        }
    }
}

/// Python logging's default asctime: `2026-11-27 01:02:03,456` (UTC here).
fn asctime(at: SystemTime) -> String {
    let since_epoch = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    // Past the year 9999 (the time crate's range), the last moment it holds.
    let datetime = time::Duration::try_from(since_epoch)
        .ok()
        .and_then(|offset| time::OffsetDateTime::UNIX_EPOCH.checked_add(offset))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc());
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        datetime.year(),
        u8::from(datetime.month()),
        datetime.day(),
        datetime.hour(),
        datetime.minute(),
        datetime.second(),
        datetime.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_time_past_the_year_9999_prints_the_last_moment_not_a_panic() {
        // Found by fuzzing (fuzz/corpus/aioquic_trace/crash-time-overflow).
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(asctime(far), "9999-12-31 23:59:59,999");
    }
}
