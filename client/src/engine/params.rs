//! The transport parameters a server sent, kept as numbers: reported in the
//! JSON, recorded in a captured scenario, and set again by the lab when it
//! replays one (those quiche can set).

use serde::{Deserialize, Serialize};

/// RFC 9000 §18.2's parameters as a server sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerParameters {
    pub max_idle_timeout_ms: u64,
    pub max_udp_payload_size: u64,
    pub initial_max_data: u64,
    pub initial_max_stream_data_bidi_local: u64,
    pub initial_max_stream_data_bidi_remote: u64,
    pub initial_max_stream_data_uni: u64,
    pub initial_max_streams_bidi: u64,
    pub initial_max_streams_uni: u64,
    pub ack_delay_exponent: u64,
    pub max_ack_delay_ms: u64,
    pub disable_active_migration: bool,
    pub active_connection_id_limit: u64,
    pub max_datagram_frame_size: Option<u64>,
}

impl From<&quiche::TransportParams> for ServerParameters {
    fn from(params: &quiche::TransportParams) -> Self {
        Self {
            max_idle_timeout_ms: params.max_idle_timeout,
            max_udp_payload_size: params.max_udp_payload_size,
            initial_max_data: params.initial_max_data,
            initial_max_stream_data_bidi_local: params.initial_max_stream_data_bidi_local,
            initial_max_stream_data_bidi_remote: params.initial_max_stream_data_bidi_remote,
            initial_max_stream_data_uni: params.initial_max_stream_data_uni,
            initial_max_streams_bidi: params.initial_max_streams_bidi,
            initial_max_streams_uni: params.initial_max_streams_uni,
            ack_delay_exponent: params.ack_delay_exponent,
            max_ack_delay_ms: params.max_ack_delay,
            disable_active_migration: params.disable_active_migration,
            active_connection_id_limit: params.active_conn_id_limit,
            max_datagram_frame_size: params.max_datagram_frame_size,
        }
    }
}

impl ServerParameters {
    /// Sets on a server configuration every parameter quiche lets a server
    /// choose. quiche 0.30 cannot set the udp payload limit it advertises
    /// apart from the one it accepts, which is what `max_udp_payload_size`
    /// maps to; the rest map one to one.
    pub fn apply(&self, config: &mut quiche::Config) {
        config.set_max_idle_timeout(self.max_idle_timeout_ms);
        config.set_max_recv_udp_payload_size(
            usize::try_from(self.max_udp_payload_size).unwrap_or(usize::MAX),
        );
        config.set_initial_max_data(self.initial_max_data);
        config.set_initial_max_stream_data_bidi_local(self.initial_max_stream_data_bidi_local);
        config.set_initial_max_stream_data_bidi_remote(self.initial_max_stream_data_bidi_remote);
        config.set_initial_max_stream_data_uni(self.initial_max_stream_data_uni);
        config.set_initial_max_streams_bidi(self.initial_max_streams_bidi);
        config.set_initial_max_streams_uni(self.initial_max_streams_uni);
        config.set_ack_delay_exponent(self.ack_delay_exponent);
        config.set_max_ack_delay(self.max_ack_delay_ms);
        config.set_disable_active_migration(self.disable_active_migration);
        config.set_active_connection_id_limit(self.active_connection_id_limit);
        if let Some(size) = self.max_datagram_frame_size {
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            config.enable_dgram(true, size.min(65_536), size.min(65_536));
        }
    }
}
