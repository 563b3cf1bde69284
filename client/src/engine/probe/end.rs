//! How a probe ends: when it is finished, the outcome it ends with, and the
//! kind of that outcome, classified from a plain snapshot of the end.

use std::time::{Duration, Instant};

use super::Probe;
use crate::engine::fingerprint::{self, ServerTraits};
use crate::engine::outcome::{
    ClientCertificateReport, Close, IdleEnd, Outcome, OutcomeKind, SessionReport, Side, TimeLimit,
};
use crate::engine::params::ServerParameters;
use crate::engine::request::Requests;
use crate::engine::session;

impl Probe {
    pub(super) fn check_finished(&mut self) {
        if self.phase.is_finished() {
            return;
        }
        if self
            .phase
            .has_ended(self.conn.is_closed(), Instant::now() >= self.deadline)
        {
            self.save_session();
            self.note_loss_recovery();
            let mut outcome = self.outcome();
            // curl's -f: an HTTP error's body is not output.
            if outcome.end.kind != OutcomeKind::HttpError {
                outcome.application.stdout_bodies = self
                    .requests
                    .as_mut()
                    .map(Requests::take_stdout_bodies)
                    .unwrap_or_default();
            }
            self.phase.finish(outcome);
        }
    }

    fn outcome(&self) -> Outcome {
        let kind = classify(&self.end_snapshot());
        let mut outcome = Outcome::new(
            kind,
            &self.target,
            self.addr,
            self.stages.clone(),
            self.checked.clone(),
            self.close(),
            &self.conn,
            self.started.elapsed(),
        );
        outcome.application.responses = self.responses();
        outcome
            .application
            .request_error
            .clone_from(&self.request_error);
        outcome.application.write_error = self.write_error();
        outcome.peer.local_addr = Some(self.local_addr());
        outcome.peer.transport_parameters = self
            .conn
            .peer_transport_params()
            .map(ServerParameters::from);
        outcome.end.limit = self.time_limit();
        outcome.end.idle_end = self.idle_end();
        outcome.handshake.initial_keys_dropped = self.initial_keys_dropped;
        outcome.chain.insecure = self.settings.insecure;
        outcome.handshake.client_certificate = ClientCertificateReport::of(
            &outcome.handshake.stages,
            self.settings.client_certificate.as_ref(),
        );
        outcome.handshake.session = self.settings.session_file.as_ref().map(|_| SessionReport {
            offered: self.session_offered,
            resumed: self.conn.is_resumed(),
            early_data: self
                .sent_early_data
                .then(|| session::early_data_reason(self.conn.early_data_reason())),
        });
        // Nothing to say about flights when the server never answered.
        outcome.handshake.flights =
            Some(self.flights.report()).filter(|f| f.server_flight.datagrams > 0);
        outcome.peer.server_guess = self.conn.peer_transport_params().map(|params| {
            let mut traits = ServerTraits::from_params(params);
            traits.group.clone_from(&outcome.handshake.tls.group);
            fingerprint::guess(&traits)
        });
        outcome
    }

    /// The first file that could not be written: a body's, or another.
    fn write_error(&self) -> Option<String> {
        self.responses()
            .into_iter()
            .find(|r| r.write_failed)
            .and_then(|r| r.error)
            .or_else(|| self.write_error.clone())
    }

    /// The limit that applied when the connection ended: the handshake's
    /// until it completed, then `-m`'s (none: quiche's idle timeout rules).
    fn time_limit(&self) -> Option<TimeLimit> {
        let settings = &self.settings;
        let max_time = settings.max_time.map(|limit| TimeLimit {
            flag: "-m/--max-time",
            limit,
        });
        if self.established_at.is_some() {
            return max_time;
        }
        match max_time {
            Some(max) if max.limit < settings.timeout => Some(max),
            _ => Some(TimeLimit {
                flag: "--connect-timeout",
                limit: settings.timeout,
            }),
        }
    }

    /// The end of the connection as plain facts, read from quiche and from
    /// what the probe decided.
    fn end_snapshot(&self) -> EndSnapshot {
        let responses = self.responses();
        EndSnapshot {
            write_failed: self.write_error().is_some(),
            http_error: self.settings.fail_on_http_error
                && responses.iter().any(|r| r.status.is_some_and(|s| s >= 400)),
            stopped_by_verdict: self.stopped_by_verdict(),
            established: self.established_at.is_some(),
            we_are_closing: self.phase.is_closing(),
            response_unfinished: responses.iter().any(|r| !r.complete && r.error.is_none()),
            response_failed: responses.iter().any(|r| r.error.is_some()),
            peer_error: self.conn.peer_error().map(|e| (e.is_app, e.error_code)),
            local_error: self.conn.local_error().is_some(),
            closed: self.conn.is_closed(),
            timed_out: self.conn.is_timed_out(),
            refused: self.phase.is_refused(),
        }
    }

    /// Whose idle timeout ended an established connection, if one did.
    fn idle_end(&self) -> Option<IdleEnd> {
        let established = self.established_at?;
        if !self.conn.is_timed_out() {
            return None;
        }
        let server_ms = self
            .conn
            .peer_transport_params()
            .map_or(0, |p| p.max_idle_timeout);
        let ours_ms = u64::try_from(self.settings.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        // Zero means "no idle timeout" (RFC 9000 §10.1); the shorter one rules.
        let by_server = server_ms != 0 && server_ms < ours_ms;
        Some(IdleEnd {
            by: if by_server {
                Side::Server
            } else {
                Side::Client
            },
            server_idle_timeout_ms: server_ms,
            our_idle_timeout_ms: ours_ms,
            idle_ms: millis(self.last_received.max(established).elapsed()),
            connected_ms: millis(established.elapsed()),
        })
    }

    pub(super) fn close(&self) -> Option<Close> {
        if let Some(error) = self.conn.peer_error() {
            return Some(Close::from_error(Side::Server, error));
        }
        self.conn
            .local_error()
            .map(|error| Close::from_error(Side::Client, error))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// How a connection ended, as plain facts: everything the outcome's kind
/// (and so the exit code) depends on, and nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EndSnapshot {
    /// The verifier rejected the chain and that stopped the handshake.
    pub stopped_by_verdict: bool,
    /// The handshake completed.
    pub established: bool,
    /// quicprobe decided to close (a rejection, or everything done).
    pub we_are_closing: bool,
    /// A response neither complete nor failed.
    pub response_unfinished: bool,
    /// A response cut short, reset, or longer or shorter than declared.
    pub response_failed: bool,
    /// The server's CONNECTION_CLOSE: (application close, error code).
    pub peer_error: Option<(bool, u64)>,
    /// quiche closed the connection with an error of its own.
    pub local_error: bool,
    pub closed: bool,
    /// quiche's idle timer ended it.
    pub timed_out: bool,
    /// Every address refused (ICMP port unreachable).
    pub refused: bool,
    /// A file the user asked for could not be written.
    pub write_failed: bool,
    /// `-f/--fail` and an HTTP status of 400 or more.
    pub http_error: bool,
}

/// The kind of outcome a connection that ended so has: a pure function, so
/// that each way to end is tested on its own.
pub(crate) fn classify(end: &EndSnapshot) -> OutcomeKind {
    if end.stopped_by_verdict {
        return OutcomeKind::VerificationFailed;
    }
    // Lost output outranks how the connection went: what was asked for is gone.
    if end.write_failed {
        return OutcomeKind::WriteError;
    }
    if end.http_error {
        return OutcomeKind::HttpError;
    }
    if end.established {
        if end.response_unfinished && !end.we_are_closing {
            // Only a connection that is still open, or that quiche's idle
            // timer ended, has stalled; a close from either side or a
            // stateless reset ended it.
            let ended =
                end.peer_error.is_some() || end.local_error || (end.closed && !end.timed_out);
            return if ended {
                OutcomeKind::PartialResponse
            } else {
                OutcomeKind::Timeout
            };
        }
        if end.response_failed {
            return OutcomeKind::PartialResponse;
        }
        // An application close, or a transport NO_ERROR, ends it cleanly.
        if end
            .peer_error
            .is_none_or(|(is_app, code)| is_app || code == 0)
        {
            return OutcomeKind::Ok;
        }
    }
    if end.refused {
        return OutcomeKind::Refused;
    }
    if end.peer_error.is_some() || end.local_error {
        return OutcomeKind::HandshakeFailed;
    }
    if end.closed && !end.timed_out {
        return OutcomeKind::HandshakeFailed;
    }
    OutcomeKind::Timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    fn established() -> EndSnapshot {
        EndSnapshot {
            established: true,
            closed: true,
            ..EndSnapshot::default()
        }
    }

    #[test]
    fn a_rejected_chain_is_a_verification_failure_whatever_else_happened() {
        let end = EndSnapshot {
            stopped_by_verdict: true,
            established: true,
            peer_error: Some((false, 0x12a)),
            ..EndSnapshot::default()
        };
        assert_eq!(classify(&end), OutcomeKind::VerificationFailed);
    }

    #[test]
    fn an_established_connection_closed_cleanly_is_ok() {
        assert_eq!(classify(&established()), OutcomeKind::Ok);
        let app_close = EndSnapshot {
            peer_error: Some((true, 0x100)),
            ..established()
        };
        assert_eq!(classify(&app_close), OutcomeKind::Ok);
        let no_error = EndSnapshot {
            peer_error: Some((false, 0)),
            ..established()
        };
        assert_eq!(classify(&no_error), OutcomeKind::Ok);
    }

    #[test]
    fn a_transport_error_after_the_handshake_is_a_handshake_failure() {
        let end = EndSnapshot {
            peer_error: Some((false, 0xa)),
            ..established()
        };
        assert_eq!(classify(&end), OutcomeKind::HandshakeFailed);
    }

    #[test]
    fn a_response_stalled_on_an_open_connection_is_a_timeout() {
        let end = EndSnapshot {
            response_unfinished: true,
            closed: false,
            ..established()
        };
        assert_eq!(classify(&end), OutcomeKind::Timeout);
        let idle = EndSnapshot {
            timed_out: true,
            ..end
        };
        assert_eq!(classify(&idle), OutcomeKind::Timeout);
    }

    #[test]
    fn a_response_ended_by_a_close_is_partial() {
        let by_server = EndSnapshot {
            response_unfinished: true,
            peer_error: Some((true, 0)),
            ..established()
        };
        assert_eq!(classify(&by_server), OutcomeKind::PartialResponse);
        let reset = EndSnapshot {
            response_unfinished: true,
            ..established()
        };
        assert_eq!(classify(&reset), OutcomeKind::PartialResponse);
        let failed = EndSnapshot {
            response_failed: true,
            ..established()
        };
        assert_eq!(classify(&failed), OutcomeKind::PartialResponse);
    }

    #[test]
    fn an_unfinished_response_we_closed_on_purpose_is_not_partial() {
        let end = EndSnapshot {
            response_unfinished: true,
            we_are_closing: true,
            ..established()
        };
        assert_eq!(classify(&end), OutcomeKind::Ok);
    }

    #[test]
    fn refused_before_any_handshake_is_refused() {
        let end = EndSnapshot {
            refused: true,
            ..EndSnapshot::default()
        };
        assert_eq!(classify(&end), OutcomeKind::Refused);
    }

    #[test]
    fn a_close_during_the_handshake_is_a_handshake_failure() {
        let by_server = EndSnapshot {
            peer_error: Some((false, 0x178)),
            closed: true,
            ..EndSnapshot::default()
        };
        assert_eq!(classify(&by_server), OutcomeKind::HandshakeFailed);
        let by_quiche = EndSnapshot {
            local_error: true,
            closed: true,
            ..EndSnapshot::default()
        };
        assert_eq!(classify(&by_quiche), OutcomeKind::HandshakeFailed);
        let stateless_reset = EndSnapshot {
            closed: true,
            ..EndSnapshot::default()
        };
        assert_eq!(classify(&stateless_reset), OutcomeKind::HandshakeFailed);
    }

    #[test]
    fn lost_output_and_fail_outrank_a_clean_end_but_not_a_rejection() {
        let lost = EndSnapshot {
            write_failed: true,
            http_error: true,
            ..established()
        };
        assert_eq!(classify(&lost), OutcomeKind::WriteError);
        let http = EndSnapshot {
            http_error: true,
            ..established()
        };
        assert_eq!(classify(&http), OutcomeKind::HttpError);
        let rejected = EndSnapshot {
            stopped_by_verdict: true,
            ..lost
        };
        assert_eq!(classify(&rejected), OutcomeKind::VerificationFailed);
    }

    #[test]
    fn silence_is_a_timeout() {
        assert_eq!(classify(&EndSnapshot::default()), OutcomeKind::Timeout);
        let idle = EndSnapshot {
            closed: true,
            timed_out: true,
            ..EndSnapshot::default()
        };
        assert_eq!(classify(&idle), OutcomeKind::Timeout);
    }
}
