//! The HTTP/3 application: `GET /` a short text, `GET /bytes/N` N bytes,
//! anything else 404.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::response::{Answered, Body, PendingBody, MAX_BODY};
use super::LabEvent;

pub(super) fn serve_h3(
    h3: &mut quiche::h3::Connection,
    pending: &mut HashMap<u64, PendingBody>,
    conn: &mut quiche::Connection,
    peer: SocketAddr,
    on_event: &mut dyn FnMut(LabEvent),
) {
    use quiche::h3::NameValue;
    loop {
        match h3.poll(conn) {
            Ok((stream_id, quiche::h3::Event::Headers { list, .. })) => {
                let path = list
                    .iter()
                    .find(|h| h.name() == b":path")
                    .map(|h| String::from_utf8_lossy(h.value()).into_owned())
                    .unwrap_or_default();
                let (status, body) = h3_response(&path);
                let request = Answered {
                    peer,
                    alpn: "h3",
                    path,
                    status: Some(status),
                };
                pending.insert(stream_id, request.announce(body, on_event));
            }
            Ok(_) => {}
            Err(quiche::h3::Error::Done) => break,
            Err(error) => {
                log::debug!("lab: {peer}: h3: {error}");
                break;
            }
        }
    }
    pending.retain(|stream_id, body| {
        if let Some(status) = body.unsent_status {
            let headers = [
                quiche::h3::Header::new(b":status", status.to_string().as_bytes()),
                quiche::h3::Header::new(b"server", b"quicprobe-lab"),
                quiche::h3::Header::new(b"content-length", body.body.len().to_string().as_bytes()),
            ];
            match h3.send_response(conn, *stream_id, &headers, false) {
                Ok(()) => body.unsent_status = None,
                Err(quiche::h3::Error::StreamBlocked | quiche::h3::Error::Done) => return true,
                Err(error) => {
                    log::debug!("lab: {peer}: h3 response: {error}");
                    return false;
                }
            }
        }
        while body.written < body.body.len() {
            let chunk = body.body.chunk(body.written);
            let last = body.written + chunk.len() == body.body.len();
            match h3.send_body(conn, *stream_id, chunk, last) {
                Ok(n) if n > 0 => body.written += n,
                _ => return true,
            }
        }
        if body.body.is_empty() {
            let _ = h3.send_body(conn, *stream_id, b"", true);
        }
        false
    });
}

/// h3 routes: `/` a short text, `/bytes/N` N bytes, anything else 404.
fn h3_response(path: &str) -> (u16, Body) {
    if path == "/" {
        return (
            200,
            Body::Bytes(b"quicprobe lab: hello over HTTP/3\n".to_vec()),
        );
    }
    match path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) if n <= MAX_BODY => (200, Body::Pattern(n)),
        Some(_) => (413, Body::Bytes(b"too large\n".to_vec())),
        None => (404, Body::Bytes(b"not found\n".to_vec())),
    }
}
