//! Exit codes, the same numbers curl uses so that scripts already know them.

/// The handshake completed and the chain verified.
pub const OK: u8 = 0;
/// curl's CURLE_COULDNT_RESOLVE_HOST: a name that has no address.
pub const RESOLVE_FAILED: u8 = 6;
/// curl's CURLE_COULDNT_CONNECT: nothing accepted the connection (ICMP refused).
pub const REFUSED: u8 = 7;
/// Bad flags, or input files that cannot be read or parsed.
pub const USAGE: u8 = 2;
/// curl's CURLE_PARTIAL_FILE: the connection ended before the response did.
pub const PARTIAL_RESPONSE: u8 = 18;
/// curl's CURLE_OPERATION_TIMEDOUT.
pub const TIMEOUT: u8 = 28;
/// curl's CURLE_SSL_CONNECT_ERROR: any other TLS or QUIC failure.
pub const HANDSHAKE_FAILED: u8 = 35;
/// curl's CURLE_PEER_FAILED_VERIFICATION: the server's chain was rejected.
pub const VERIFICATION_FAILED: u8 = 60;
/// A shell's code for a run stopped by Ctrl-C (128 + SIGINT): what had
/// ended is reported, the rest was abandoned.
pub const INTERRUPTED: u8 = 130;
