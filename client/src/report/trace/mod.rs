//! Renders a connection's trace: the stages in curl `-v` spirit (native), as
//! aioquic 1.x logs them (so the two traces can be compared line by line), or
//! as one JSON object per stage.
//!
//! A [`LiveTrace`] is fed as the connection goes: its start, each stage as it
//! is reached, then the finished outcome. [`render`] feeds it a finished
//! outcome in one go, so a trace printed live and one rendered afterwards are
//! the same lines.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

pub use crate::engine::handshake::ConnectionStart;
use crate::engine::handshake::{KeysDropped, StageEvent};
use crate::engine::outcome::{Outcome, OutcomeKind};

mod aioquic;
mod json;
mod native;

/// How stages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceStyle {
    #[default]
    Native,
    Aioquic,
    Json,
}

impl TraceStyle {
    /// The JSON style is data, for stdout; the others are for people, on
    /// stderr, as curl's `-v` trace.
    pub fn is_data(self) -> bool {
        self == Self::Json
    }
}

/// One connection's trace in one style, rendered piece by piece.
pub struct LiveTrace {
    style: Style,
    /// How many stages were rendered so far.
    seen: usize,
}

enum Style {
    Native,
    Aioquic(aioquic::AioquicLog),
    Json(usize),
}

impl LiveTrace {
    /// A trace for the connection numbered `index` (in the JSON style, each
    /// line carries it).
    pub fn new(style: TraceStyle, index: usize) -> Self {
        let style = match style {
            TraceStyle::Native => Style::Native,
            TraceStyle::Aioquic => Style::Aioquic(aioquic::AioquicLog::default()),
            TraceStyle::Json => Style::Json(index),
        };
        Self { style, seen: 0 }
    }

    /// An address that refused (ICMP unreachable) before the next was tried.
    pub fn refused(&mut self, addr: SocketAddr) -> String {
        match self.style {
            Style::Native => native::refused(addr),
            _ => String::new(),
        }
    }

    /// The connection starts: its first flight is about to go out.
    pub fn start(&mut self, start: &ConnectionStart) -> String {
        self.seen = 0;
        match &mut self.style {
            Style::Native => native::start(start),
            Style::Aioquic(log) => {
                log.start(start);
                String::new()
            }
            Style::Json(_) => String::new(),
        }
    }

    /// The stages reached since the last call: `stages` is every stage so
    /// far, of which the ones not yet rendered are rendered.
    pub fn stages(&mut self, stages: &[StageEvent], keys_dropped: Option<KeysDropped>) -> String {
        let mut out = String::new();
        for (number, event) in stages.iter().enumerate().skip(self.seen) {
            out.push_str(&self.stage(event));
            self.seen = number + 1;
            if let (Style::Aioquic(log), Some(dropped)) = (&mut self.style, keys_dropped) {
                if dropped.after_stage == self.seen {
                    out.push_str(&log.initial_keys_dropped(dropped.t_ms.max(event.t_ms)));
                }
            }
        }
        // Dropped before any stage was reached (a Handshake packet with no
        // TLS message in it), or in a call of its own.
        if let (Style::Aioquic(log), Some(dropped)) = (&mut self.style, keys_dropped) {
            if dropped.after_stage <= self.seen {
                out.push_str(&log.initial_keys_dropped(dropped.t_ms));
            }
        }
        out
    }

    fn stage(&mut self, event: &StageEvent) -> String {
        match &mut self.style {
            Style::Native => native::stage(event),
            Style::Aioquic(log) => log.stage(event),
            Style::Json(index) => json::stage(event, *index),
        }
    }

    /// The connection ended: what the stages did not say, and the last line.
    pub fn finish(&mut self, outcome: &Outcome) -> String {
        let mut out = self.stages(
            &outcome.handshake.stages,
            outcome.handshake.initial_keys_dropped,
        );
        out.push_str(&match &mut self.style {
            Style::Native => native::finish(outcome),
            Style::Aioquic(log) => log.finish(outcome),
            Style::Json(index) => json::finish(outcome, *index),
        });
        out
    }
}

/// The whole trace of one finished connection in the chosen style.
pub fn render(outcome: &Outcome, style: TraceStyle, index: usize) -> String {
    let mut trace = LiveTrace::new(style, index);
    let mut out = String::new();
    for refused in &outcome.peer.refused_before {
        out.push_str(&trace.refused(*refused));
    }
    out.push_str(&trace.start(&outcome.start()));
    out.push_str(&trace.finish(outcome));
    out
}

/// curl's last line: `quicprobe: (60) SSL certificate problem: ...`.
pub fn summary_line(outcome: &Outcome) -> String {
    match outcome.end.kind {
        OutcomeKind::Ok => format!(
            "quicprobe: ok: {} ({}) {}{}, handshake {} ms, rtt {:.1} ms{}{}",
            outcome.peer.target,
            outcome.peer.addr,
            outcome.handshake.alpn.as_deref().unwrap_or("-"),
            tls_words(outcome),
            outcome
                .handshake
                .handshake_ms
                .map_or_else(|| "?".into(), |ms| format!("{ms:.1}")),
            outcome.end.stats.rtt_ms,
            outcome
                .end
                .idle_end
                .map_or_else(String::new, |idle| format!(", {}", idle.brief())),
            outcome.insecure_warning()
        ),
        _ => format!(
            "quicprobe: ({}) {} ({}): {}",
            outcome.exit_code(),
            outcome.peer.target,
            outcome.peer.addr,
            outcome.explain()
        ),
    }
}

fn tls_words(outcome: &Outcome) -> String {
    let parts: Vec<&str> = [
        &outcome.handshake.tls.cipher,
        &outcome.handshake.tls.group,
        &outcome.handshake.tls.sig_alg,
    ]
    .into_iter()
    .filter_map(|p| p.as_deref())
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(", {}", parts.join("/"))
    }
}

/// A stage's wall-clock time: the start plus its offset; a time past what
/// SystemTime holds (or not a number) is the start.
fn wall_clock(start: SystemTime, event_ms: f64) -> SystemTime {
    Duration::try_from_secs_f64(event_ms.max(0.0) / 1000.0)
        .ok()
        .and_then(|offset| start.checked_add(offset))
        .unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::engine::handshake::{Stage, Traffic};

    fn at(stage: Stage, t_ms: f64) -> StageEvent {
        StageEvent {
            stage,
            t_ms,
            traffic: Traffic::default(),
        }
    }

    /// A leaf-only rejection whose CertificateVerify BoringSSL had read,
    /// the Initial keys dropped after the EncryptedExtensions.
    fn rejected() -> Outcome {
        let stages = vec![
            at(
                Stage::ClientHelloSent {
                    sni: Some("localhost".into()),
                    alpns: vec!["h3".into()],
                    bytes: 1500,
                },
                1.0,
            ),
            at(
                Stage::ServerHello {
                    cipher: None,
                    group: None,
                },
                2.0,
            ),
            at(
                Stage::EncryptedExtensions {
                    alpn: Some("h3".into()),
                    transport_parameters: None,
                },
                2.0,
            ),
            at(
                Stage::Certificate {
                    certificates: 1,
                    bytes: 600,
                    compression: None,
                },
                3.0,
            ),
            at(
                Stage::Verdict {
                    accepted: false,
                    x509_error: 20,
                    reason: "unable to get local issuer certificate".into(),
                },
                3.0,
            ),
            at(
                Stage::CertificateVerify {
                    signature_algorithm: None,
                },
                3.0,
            ),
        ];
        let mut outcome = Outcome::bare(
            OutcomeKind::VerificationFailed,
            "localhost:443".into(),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443),
            "00112233445566778899".into(),
            stages,
        );
        outcome.handshake.initial_keys_dropped = Some(KeysDropped {
            t_ms: 2.5,
            after_stage: 3,
        });
        outcome
    }

    fn messages(trace: &str) -> Vec<&str> {
        trace
            .lines()
            .filter_map(|line| line.split("] ").nth(1))
            .collect()
    }

    #[test]
    fn a_rejection_shows_no_certificate_verify_transition_in_aioquics_lines() {
        let trace = render(&rejected(), TraceStyle::Aioquic, 0);
        assert!(!trace.contains("CLIENT_EXPECT_FINISHED"), "{trace}");
        assert!(trace.contains("Error: 298, reason: unable to get local issuer certificate"));
    }

    #[test]
    fn the_initial_keys_go_where_they_went_among_the_stages() {
        let trace = render(&rejected(), TraceStyle::Aioquic, 0);
        let lines = messages(&trace);
        let after = lines
            .iter()
            .position(|l| l.ends_with("-> State.CLIENT_EXPECT_CERTIFICATE_REQUEST_OR_CERTIFICATE"))
            .expect("the EncryptedExtensions transition");
        assert_eq!(
            lines[after + 1],
            "Discarding epoch Epoch.INITIAL",
            "{trace}"
        );
        assert_eq!(trace.matches("Epoch.INITIAL").count(), 1, "{trace}");
    }

    #[test]
    fn a_trace_fed_piece_by_piece_is_the_trace_rendered_at_the_end() {
        let outcome = rejected();
        for style in [TraceStyle::Native, TraceStyle::Aioquic, TraceStyle::Json] {
            let mut live = LiveTrace::new(style, 0);
            let mut text = live.start(&outcome.start());
            let stages = &outcome.handshake.stages;
            let keys = outcome.handshake.initial_keys_dropped;
            text.push_str(&live.stages(&stages[..2], None));
            text.push_str(&live.stages(&stages[..4], keys));
            text.push_str(&live.finish(&outcome));
            let whole = render(&outcome, style, 0);
            // The aioquic lines carry wall-clock times, counted back from now.
            let strip = |s: &str| -> Vec<String> {
                s.lines()
                    .map(|l| {
                        l.split_once(" quic ")
                            .map_or(l, |(_, rest)| rest)
                            .to_owned()
                    })
                    .collect()
            };
            assert_eq!(strip(&text), strip(&whole), "{style:?}");
        }
    }
}
