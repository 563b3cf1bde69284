//! A best guess of the server's QUIC implementation from what it says in the
//! handshake: its transport parameters, the ones quiche does not know, and
//! the TLS choices its library makes. Only implementations measured against
//! quicprobe are recognised (docs/msquic.md lists the signals); anything
//! else is "not recognised" rather than a guess dressed up as knowledge.

use serde::Serialize;

/// What the server showed of itself.
#[derive(Debug, Clone, Default)]
pub struct ServerTraits {
    pub active_connection_id_limit: u64,
    pub initial_max_data: u64,
    pub max_idle_timeout_ms: u64,
    /// Transport parameter ids quiche does not know, in the order sent.
    pub unknown_parameters: Vec<u64>,
    /// The key exchange group the server chose.
    pub group: Option<String>,
}

impl ServerTraits {
    pub fn from_params(params: &quiche::TransportParams) -> Self {
        Self {
            active_connection_id_limit: params.active_conn_id_limit,
            initial_max_data: params.initial_max_data,
            max_idle_timeout_ms: params.max_idle_timeout,
            unknown_parameters: params
                .unknown_params
                .iter()
                .flatten()
                .map(|p| p.id)
                .collect(),
            group: None,
        }
    }

    fn has_parameter(&self, id: u64) -> bool {
        self.unknown_parameters.contains(&id)
    }
}

/// draft-ietf-quic-ack-frequency's min_ack_delay, as msquic sends it.
const MIN_ACK_DELAY: u64 = 0xff04de1b;
/// RFC 9368 version_information.
const VERSION_INFORMATION: u64 = 0x11;
const MIB: u64 = 1024 * 1024;

/// The guess and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerGuess {
    /// "msquic", "quiche" or "aioquic"; `None` when nothing matched well.
    pub implementation: Option<&'static str>,
    /// The signals that matched, in words.
    pub evidence: Vec<String>,
}

impl ServerGuess {
    pub fn describe(&self) -> String {
        match self.implementation {
            Some(name) => format!("server looks like {name} ({})", self.evidence.join("; ")),
            None => "server implementation not recognised".to_owned(),
        }
    }
}

/// A test of the server's traits, and the words for it when it matches.
type Signal = (fn(&ServerTraits) -> bool, &'static str);

/// One implementation's signals.
struct Profile {
    name: &'static str,
    signals: &'static [Signal],
}

const PROFILES: &[Profile] = &[
    Profile {
        name: "msquic",
        signals: &[
            (
                |t| t.has_parameter(MIN_ACK_DELAY),
                "sends min_ack_delay (0xff04de1b)",
            ),
            (
                |t| t.active_connection_id_limit == 4,
                "active_connection_id_limit=4",
            ),
            (
                |t| t.initial_max_data == 16 * MIB,
                "initial_max_data=16 MiB, msquic's default window",
            ),
        ],
    },
    Profile {
        name: "aioquic",
        signals: &[
            (
                |t| t.has_parameter(VERSION_INFORMATION) && !t.has_parameter(MIN_ACK_DELAY),
                "sends version_information (0x11) only",
            ),
            (
                |t| t.active_connection_id_limit == 8,
                "active_connection_id_limit=8",
            ),
            (
                |t| t.initial_max_data == MIB,
                "initial_max_data=1 MiB, aioquic's default",
            ),
            (
                |t| t.max_idle_timeout_ms == 60_000,
                "max_idle_timeout=60 s, aioquic's default",
            ),
        ],
    },
    Profile {
        name: "quiche",
        signals: &[
            (
                |t| t.unknown_parameters.is_empty(),
                "no transport parameters beyond RFC 9000",
            ),
            (
                |t| t.active_connection_id_limit == 2,
                "active_connection_id_limit=2, quiche's default",
            ),
            (
                |t| t.group.as_deref() == Some("X25519MLKEM768"),
                "chose X25519MLKEM768, as BoringSSL does",
            ),
        ],
    },
];

/// Signals a profile needs before it is named.
const ENOUGH: usize = 2;

pub fn guess(traits: &ServerTraits) -> ServerGuess {
    let best = PROFILES
        .iter()
        .map(|profile| {
            let evidence: Vec<String> = profile
                .signals
                .iter()
                .filter(|(matches, _)| matches(traits))
                .map(|(_, words)| (*words).to_owned())
                .collect();
            (profile.name, evidence)
        })
        .max_by_key(|(_, evidence)| evidence.len());
    match best {
        Some((name, evidence)) if evidence.len() >= ENOUGH => ServerGuess {
            implementation: Some(name),
            evidence,
        },
        _ => ServerGuess {
            implementation: None,
            evidence: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits(limit: u64, max_data: u64, unknown: &[u64]) -> ServerTraits {
        ServerTraits {
            active_connection_id_limit: limit,
            initial_max_data: max_data,
            max_idle_timeout_ms: 30_000,
            unknown_parameters: unknown.to_vec(),
            group: None,
        }
    }

    #[test]
    fn msquic_defaults_are_recognised() {
        let guess = guess(&traits(4, 16 * MIB, &[MIN_ACK_DELAY]));
        assert_eq!(guess.implementation, Some("msquic"));
        assert_eq!(guess.evidence.len(), 3);
    }

    #[test]
    fn aioquic_defaults_are_recognised() {
        let mut t = traits(8, MIB, &[VERSION_INFORMATION]);
        t.max_idle_timeout_ms = 60_000;
        assert_eq!(guess(&t).implementation, Some("aioquic"));
    }

    #[test]
    fn quiche_defaults_are_recognised() {
        let mut t = traits(2, 100_000_000, &[]);
        t.group = Some("X25519MLKEM768".into());
        assert_eq!(guess(&t).implementation, Some("quiche"));
    }

    #[test]
    fn one_signal_is_not_enough() {
        let guess = guess(&traits(4, 1000, &[0x1234]));
        assert_eq!(guess.implementation, None);
        assert_eq!(guess.describe(), "server implementation not recognised");
    }
}
