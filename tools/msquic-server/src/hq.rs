//! hq-interop (HTTP/0.9 over QUIC): the request grammar and the response body.
//!
//! `GET /N` asks for N bytes; byte i of the answer is `PATTERN[i % 36]`, so a
//! client can check any byte without keeping the whole body.

use std::sync::OnceLock;

/// The repeating body pattern.
pub const PATTERN: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Size of one response send; big enough to keep msquic busy, small enough
/// that a 1 GiB answer never sits in memory.
pub const CHUNK: usize = 256 * 1024;

/// Requests longer than this without a line end are refused.
pub const MAX_REQUEST: usize = 4096;

/// The body sent back for a request that cannot be understood.
pub const BAD_REQUEST_BODY: &[u8] = b"error: bad request, expected \"GET /<number of bytes>\"\n";

/// What the bytes received so far on a stream ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// The request line is not complete yet.
    Incomplete,
    /// `GET /N`: send N pattern bytes.
    Bytes(u64),
    /// Anything else.
    Invalid,
}

/// Parses `GET /N` followed by CRLF, LF, or the end of the stream (`fin`).
pub fn parse_request(received: &[u8], fin: bool) -> Request {
    let line = match received.iter().position(|&b| b == b'\n') {
        Some(end) => &received[..end],
        None if fin => received,
        None if received.len() > MAX_REQUEST => return Request::Invalid,
        None => return Request::Incomplete,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Request::Invalid;
    };
    let Some(path) = line.trim().strip_prefix("GET ") else {
        return Request::Invalid;
    };
    match path.trim().strip_prefix('/').map(str::parse::<u64>) {
        Some(Ok(size)) => Request::Bytes(size),
        _ => Request::Invalid,
    }
}

/// `len` pattern bytes as they appear at body offset `offset`.
///
/// All answers share one static buffer of `CHUNK + 36` bytes: a chunk at any
/// offset is a window into it, so sends need no copy and no allocation, and
/// the bytes trivially outlive msquic's SEND_COMPLETE.
pub fn pattern_at(offset: u64, len: usize) -> &'static [u8] {
    static BUFFER: OnceLock<Vec<u8>> = OnceLock::new();
    let buffer = BUFFER.get_or_init(|| {
        (0..CHUNK + PATTERN.len())
            .map(|i| PATTERN[i % PATTERN.len()])
            .collect()
    });
    let start = (offset % PATTERN.len() as u64) as usize;
    &buffer[start..start + len.min(CHUNK)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_with_crlf_asks_for_bytes() {
        assert_eq!(parse_request(b"GET /1000\r\n", false), Request::Bytes(1000));
    }

    #[test]
    fn request_without_line_end_is_complete_at_fin() {
        assert_eq!(parse_request(b"GET /5", false), Request::Incomplete);
        assert_eq!(parse_request(b"GET /5", true), Request::Bytes(5));
    }

    #[test]
    fn request_with_bare_lf_asks_for_bytes() {
        assert_eq!(parse_request(b"GET /0\n", false), Request::Bytes(0));
    }

    #[test]
    fn non_numeric_path_is_invalid() {
        assert_eq!(
            parse_request(b"GET /index.html\r\n", false),
            Request::Invalid
        );
        assert_eq!(parse_request(b"POST /1\r\n", false), Request::Invalid);
        assert_eq!(parse_request(b"", true), Request::Invalid);
    }

    #[test]
    fn endless_request_line_is_invalid() {
        assert_eq!(
            parse_request(&[b'G'; MAX_REQUEST + 1], false),
            Request::Invalid
        );
    }

    #[test]
    fn pattern_at_any_offset_matches_the_definition() {
        for offset in [0u64, 1, 35, 36, 1_000_003] {
            let bytes = pattern_at(offset, 100);
            for (i, &b) in bytes.iter().enumerate() {
                assert_eq!(b, PATTERN[((offset + i as u64) % 36) as usize]);
            }
        }
        assert_eq!(pattern_at(7, CHUNK).len(), CHUNK);
    }
}
