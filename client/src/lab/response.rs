//! What the lab answers: a request as it is logged, and a response body
//! made as it is sent (a few fixed bytes, or the pattern).

use std::net::SocketAddr;

use super::LabEvent;

/// Bodies larger than this are refused, so a request cannot exhaust memory.
/// The largest body the lab serves; bodies are generated as they are sent.
pub(super) const MAX_BODY: usize = 1 << 30;

/// A response body not yet fully accepted by the stream.
pub(super) struct PendingBody {
    pub(super) body: Body,
    pub(super) written: usize,
    /// h3: the status, until the header block is out (the stream may have
    /// no room for it yet).
    pub(super) unsent_status: Option<u16>,
}

/// A request the lab is about to answer.
pub(super) struct Answered {
    pub(super) peer: SocketAddr,
    pub(super) alpn: &'static str,
    pub(super) path: String,
    /// The h3 status; hq-interop (HTTP/0.9) has none.
    pub(super) status: Option<u16>,
}

impl Answered {
    /// Logs the request and hands back the response waiting to be sent.
    pub(super) fn announce(self, body: Body, on_event: &mut dyn FnMut(LabEvent)) -> PendingBody {
        let event = LabEvent::Request {
            peer: self.peer,
            alpn: self.alpn.into(),
            path: self.path,
            status: self.status.unwrap_or(200),
            body_bytes: body.len(),
        };
        log::info!("lab: {event}");
        on_event(event);
        PendingBody {
            body,
            written: 0,
            unsent_status: self.status,
        }
    }
}

/// A response body: a few fixed bytes, or the pattern, made as it is sent
/// so that a 1 GiB body costs no memory.
pub(super) enum Body {
    Bytes(Vec<u8>),
    Pattern(usize),
}

impl Body {
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Self::Bytes(bytes) => bytes.len(),
            Self::Pattern(len) => *len,
        }
    }

    /// Up to 64 KiB of the body from `from` on.
    pub(super) fn chunk(&self, from: usize) -> &[u8] {
        const CHUNK: usize = 64 * 1024;
        match self {
            Self::Bytes(bytes) => &bytes[from.min(bytes.len())..],
            Self::Pattern(len) => {
                let take = len.saturating_sub(from).min(CHUNK);
                let start = from % ALPHABET.len();
                &pattern_block()[start..start + take]
            }
        }
    }
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// 64 KiB of the pattern plus one turn of the alphabet, so that a chunk
/// can start at any offset.
fn pattern_block() -> &'static [u8] {
    static BLOCK: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BLOCK.get_or_init(|| pattern(64 * 1024 + ALPHABET.len()))
}

/// N bytes of a fixed, recognisable pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ALPHABET[i % ALPHABET.len()]).collect()
}
