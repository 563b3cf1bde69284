//! TLS alert numbers and QUIC transport error codes, named as the RFCs name
//! them, so that a close can be explained in words.

/// QUIC's CRYPTO_ERROR range: 0x100 + the TLS alert (RFC 9001 §4.8).
pub const CRYPTO_ERROR_BASE: u64 = 0x100;

/// The TLS alert carried by a QUIC transport error code, if it is one.
pub fn tls_alert_of(error_code: u64) -> Option<u8> {
    error_code
        .checked_sub(CRYPTO_ERROR_BASE)
        .filter(|alert| *alert <= 0xff)
        .and_then(|alert| u8::try_from(alert).ok())
}

/// The RFC 8446 name of a TLS alert, e.g. 42 -> "bad_certificate".
pub fn tls_alert_name(alert: u8) -> &'static str {
    match alert {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown alert",
    }
}

/// The RFC 9000 §20.1 name of a transport error code.
pub fn transport_error_name(error_code: u64) -> String {
    let name = match error_code {
        0x0 => "NO_ERROR",
        0x1 => "INTERNAL_ERROR",
        0x2 => "CONNECTION_REFUSED",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "STREAM_LIMIT_ERROR",
        0x5 => "STREAM_STATE_ERROR",
        0x6 => "FINAL_SIZE_ERROR",
        0x7 => "FRAME_ENCODING_ERROR",
        0x8 => "TRANSPORT_PARAMETER_ERROR",
        0x9 => "CONNECTION_ID_LIMIT_ERROR",
        0xa => "PROTOCOL_VIOLATION",
        0xb => "INVALID_TOKEN",
        0xc => "APPLICATION_ERROR",
        0xd => "CRYPTO_BUFFER_EXCEEDED",
        0xe => "KEY_UPDATE_ERROR",
        0xf => "AEAD_LIMIT_REACHED",
        0x10 => "NO_VIABLE_PATH",
        _ => "",
    };
    if !name.is_empty() {
        return name.to_owned();
    }
    match tls_alert_of(error_code) {
        Some(alert) => format!("CRYPTO_ERROR (TLS alert {alert} {})", tls_alert_name(alert)),
        None => format!("0x{error_code:x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_error_298_is_bad_certificate() {
        assert_eq!(tls_alert_of(298), Some(42));
        assert_eq!(
            transport_error_name(0x12a),
            "CRYPTO_ERROR (TLS alert 42 bad_certificate)"
        );
    }

    #[test]
    fn alpn_refusal_is_no_application_protocol() {
        assert_eq!(
            tls_alert_of(0x178).map(tls_alert_name),
            Some("no_application_protocol")
        );
    }

    #[test]
    fn plain_transport_errors_are_not_alerts() {
        assert_eq!(tls_alert_of(0xa), None);
        assert_eq!(transport_error_name(0xa), "PROTOCOL_VIOLATION");
    }
}
