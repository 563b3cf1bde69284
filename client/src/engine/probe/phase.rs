//! Where a probe stands in its life, one value at a time, and the only ways
//! it moves on. Before, four fields (`closing`, `close_sent`, `refused`,
//! `finished`) could disagree; a `Phase` cannot.
//!
//! ```text
//! Open --close(reason)--> Closing { sent: false } --transmitted--> Closing { sent: true }
//!   \                          |                                        |
//!    +--refused--> Refused <---+                                        |
//!    \                 \                                                |
//!     +-- ended -------+-----------------------> Finished <------------+
//! ```

use crate::engine::outcome::Outcome;

/// Why quicprobe closes a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseReason {
    /// The verifier rejected the chain.
    Rejected,
    /// Everything asked for is done.
    Done,
}

/// A probe's phase.
#[derive(Debug)]
pub(super) enum Phase {
    /// Handshaking or established; nothing decided yet.
    Open,
    /// quicprobe closed the connection; `sent` once the CONNECTION_CLOSE
    /// has gone out, which ends the probe.
    Closing { reason: CloseReason, sent: bool },
    /// Every address refused (ICMP port unreachable).
    Refused,
    /// Over; the outcome waits to be taken (`None` once it has been).
    /// (Boxed: an outcome is large, a phase otherwise small.)
    Finished(Option<Box<Outcome>>),
}

impl Phase {
    /// quicprobe decides to close. Only an open connection can: a second
    /// decision keeps the first reason, and nothing reopens an ended one.
    pub fn close(&mut self, reason: CloseReason) {
        if matches!(self, Self::Open) {
            *self = Self::Closing {
                reason,
                sent: false,
            };
        }
    }

    /// Datagrams went out: a decided close has now been sent.
    pub fn transmitted(&mut self) {
        if let Self::Closing { reason, sent } = self {
            if !*sent {
                log::debug!("CONNECTION_CLOSE sent ({reason:?})");
            }
            *sent = true;
        }
    }

    /// The peer's address refused us: nothing more can be sent or received.
    pub fn refused(&mut self) {
        if !self.is_finished() {
            *self = Self::Refused;
        }
    }

    /// Whether the connection's life is over: refused, our close sent,
    /// quiche closed it, or the deadline passed.
    pub fn has_ended(&self, quiche_closed: bool, past_deadline: bool) -> bool {
        match self {
            Self::Open => quiche_closed || past_deadline,
            Self::Closing { sent, .. } => *sent || quiche_closed || past_deadline,
            Self::Refused | Self::Finished(_) => true,
        }
    }

    /// The probe is over with this outcome.
    pub fn finish(&mut self, outcome: Outcome) {
        *self = Self::Finished(Some(Box::new(outcome)));
    }

    /// The outcome, once; the phase stays finished.
    pub fn take_outcome(&mut self) -> Option<Outcome> {
        match self {
            Self::Finished(outcome) => outcome.take().map(|boxed| *boxed),
            _ => None,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Finished(_))
    }

    /// Whether quicprobe has decided to close.
    pub fn is_closing(&self) -> bool {
        matches!(self, Self::Closing { .. })
    }

    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused)
    }

    /// Why quicprobe closed, if it did.
    #[cfg(test)]
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self {
            Self::Closing { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::*;
    use crate::engine::outcome::OutcomeKind;

    fn outcome() -> Outcome {
        Outcome::bare(
            OutcomeKind::Ok,
            "localhost:443".into(),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443),
            "00".into(),
            Vec::new(),
        )
    }

    #[test]
    fn an_open_probe_has_not_ended_until_quiche_closes_or_the_deadline_passes() {
        let phase = Phase::Open;
        assert!(!phase.has_ended(false, false));
        assert!(phase.has_ended(true, false));
        assert!(phase.has_ended(false, true));
    }

    #[test]
    fn a_decided_close_ends_the_probe_once_it_is_sent() {
        let mut phase = Phase::Open;
        phase.close(CloseReason::Rejected);
        assert!(phase.is_closing());
        assert!(!phase.has_ended(false, false), "not sent yet");
        phase.transmitted();
        assert!(phase.has_ended(false, false), "sent: over");
        assert_eq!(phase.close_reason(), Some(CloseReason::Rejected));
    }

    #[test]
    fn the_first_reason_to_close_is_kept() {
        let mut phase = Phase::Open;
        phase.close(CloseReason::Rejected);
        phase.close(CloseReason::Done);
        assert_eq!(phase.close_reason(), Some(CloseReason::Rejected));
    }

    #[test]
    fn transmitting_before_any_close_changes_nothing() {
        let mut phase = Phase::Open;
        phase.transmitted();
        assert!(matches!(phase, Phase::Open));
    }

    #[test]
    fn refused_ends_an_open_or_closing_probe() {
        let mut open = Phase::Open;
        open.refused();
        assert!(open.is_refused() && open.has_ended(false, false));
        let mut closing = Phase::Open;
        closing.close(CloseReason::Done);
        closing.refused();
        assert!(closing.is_refused());
    }

    #[test]
    fn a_finished_probe_gives_its_outcome_once_and_never_reopens() {
        let mut phase = Phase::Open;
        phase.finish(outcome());
        phase.close(CloseReason::Done);
        phase.refused();
        assert!(phase.is_finished());
        assert!(phase.take_outcome().is_some());
        assert!(phase.take_outcome().is_none());
        assert!(phase.is_finished() && phase.has_ended(false, false));
    }
}
