//! The hq-interop application (HTTP/0.9): `GET /N` answers N bytes of the
//! pattern.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::response::{Answered, Body, PendingBody, MAX_BODY};
use super::LabEvent;

pub(super) fn serve_hq(
    requests: &mut HashMap<u64, Vec<u8>>,
    pending: &mut HashMap<u64, PendingBody>,
    conn: &mut quiche::Connection,
    peer: SocketAddr,
    on_event: &mut dyn FnMut(LabEvent),
) {
    let mut buf = [0u8; 4096];
    let readable: Vec<u64> = conn.readable().collect();
    for stream_id in readable {
        while let Ok((len, fin)) = conn.stream_recv(stream_id, &mut buf) {
            let request = requests.entry(stream_id).or_default();
            if request.len() < 8192 {
                request.extend_from_slice(&buf[..len]);
            }
            if !fin {
                continue;
            }
            let request = requests.remove(&stream_id).unwrap_or_default();
            let path = hq_path(&request);
            let body = Body::Pattern(
                path.trim_start_matches('/')
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= MAX_BODY)
                    .unwrap_or(0),
            );
            let request = Answered {
                peer,
                alpn: "hq-interop",
                path,
                status: None,
            };
            pending.insert(stream_id, request.announce(body, on_event));
        }
    }
    pending.retain(|stream_id, body| loop {
        let rest = body.body.chunk(body.written);
        let last = body.written + rest.len() == body.body.len();
        match conn.stream_send(*stream_id, rest, last) {
            Ok(n) => {
                body.written += n;
                if body.written == body.body.len() {
                    return false;
                }
                if n == 0 {
                    return true;
                }
            }
            // No flow-control credit yet: try again when the peer gives some.
            Err(quiche::Error::Done) => return true,
            Err(_) => return false,
        }
    });
}

/// `GET /path` (HTTP/0.9) -> "/path".
fn hq_path(request: &[u8]) -> String {
    let line = String::from_utf8_lossy(request);
    line.lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .map(|p| p.trim().to_owned())
        .unwrap_or_default()
}
