//! One GET over the negotiated application, as curl would make for an
//! https:// URL: HTTP/3 for `h3`, HTTP/0.9 for `hq-interop`. Only ever
//! started on an established connection, so never on a rejected chain.

use serde::Serialize;

/// What came back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Response {
    /// The HTTP status (h3); `None` for hq-interop, which has none.
    pub status: Option<u16>,
    pub body_bytes: usize,
    /// SHA-256 of the body, hex, once the response is complete: the way to
    /// check a download without keeping it.
    pub body_sha256: Option<String>,
    /// Whether the server finished the response.
    pub complete: bool,
}

/// The body as it arrives: counted and hashed, not kept.
pub struct BodySink {
    digest: ring::digest::Context,
}

impl Default for BodySink {
    fn default() -> Self {
        Self {
            digest: ring::digest::Context::new(&ring::digest::SHA256),
        }
    }
}

impl BodySink {
    fn take(&mut self, response: &mut Response, chunk: &[u8]) {
        response.body_bytes += chunk.len();
        self.digest.update(chunk);
    }

    fn finish(&mut self, response: &mut Response) {
        if response.complete {
            return;
        }
        response.complete = true;
        let digest = std::mem::take(self).digest.finish();
        response.body_sha256 = Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect());
    }
}

/// A request in flight.
pub enum Request {
    Http3 {
        h3: Box<quiche::h3::Connection>,
        stream_id: u64,
        response: Response,
        body: BodySink,
    },
    HqInterop {
        stream_id: u64,
        response: Response,
        body: BodySink,
    },
}

/// Why no request could be made.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no request over ALPN {0:?}: quicprobe speaks h3 and hq-interop")]
    UnknownAlpn(String),
    #[error("HTTP/3: {0}")]
    Http3(#[from] quiche::h3::Error),
    #[error("QUIC stream: {0}")]
    Stream(#[from] quiche::Error),
}

impl Request {
    /// Sends `GET path` on the connection's application protocol.
    pub fn start(
        conn: &mut quiche::Connection,
        authority: &str,
        path: &str,
    ) -> Result<Self, RequestError> {
        let alpn = String::from_utf8_lossy(conn.application_proto()).into_owned();
        match alpn.as_str() {
            "h3" => {
                let config = quiche::h3::Config::new()?;
                let mut h3 = quiche::h3::Connection::with_transport(conn, &config)?;
                let headers = [
                    quiche::h3::Header::new(b":method", b"GET"),
                    quiche::h3::Header::new(b":scheme", b"https"),
                    quiche::h3::Header::new(b":authority", authority.as_bytes()),
                    quiche::h3::Header::new(b":path", path.as_bytes()),
                    quiche::h3::Header::new(b"user-agent", b"quicprobe"),
                ];
                let stream_id = h3.send_request(conn, &headers, true)?;
                Ok(Self::Http3 {
                    h3: Box::new(h3),
                    stream_id,
                    response: Response::default(),
                    body: BodySink::default(),
                })
            }
            "hq-interop" => {
                let stream_id = 0;
                conn.stream_send(stream_id, format!("GET {path}\r\n").as_bytes(), true)?;
                Ok(Self::HqInterop {
                    stream_id,
                    response: Response::default(),
                    body: BodySink::default(),
                })
            }
            other => Err(RequestError::UnknownAlpn(other.to_owned())),
        }
    }

    /// Reads whatever arrived; true once the response is complete.
    pub fn poll(&mut self, conn: &mut quiche::Connection) -> bool {
        match self {
            Self::Http3 {
                h3,
                stream_id,
                response,
                body,
            } => poll_h3(h3, *stream_id, response, body, conn),
            Self::HqInterop {
                stream_id,
                response,
                body,
            } => poll_hq(*stream_id, response, body, conn),
        }
        self.response().complete
    }

    pub fn response(&self) -> &Response {
        match self {
            Self::Http3 { response, .. } | Self::HqInterop { response, .. } => response,
        }
    }
}

fn poll_h3(
    h3: &mut quiche::h3::Connection,
    stream_id: u64,
    response: &mut Response,
    body: &mut BodySink,
    conn: &mut quiche::Connection,
) {
    use quiche::h3::NameValue;
    let mut buf = [0u8; 64 * 1024];
    loop {
        match h3.poll(conn) {
            Ok((id, quiche::h3::Event::Headers { list, .. })) if id == stream_id => {
                response.status = list
                    .iter()
                    .find(|h| h.name() == b":status")
                    .and_then(|h| std::str::from_utf8(h.value()).ok()?.parse().ok());
            }
            Ok((id, quiche::h3::Event::Data)) if id == stream_id => {
                while let Ok(read) = h3.recv_body(conn, stream_id, &mut buf) {
                    body.take(response, &buf[..read]);
                }
            }
            Ok((id, quiche::h3::Event::Finished)) if id == stream_id => body.finish(response),
            // A reset stream ends the response without a body worth hashing.
            Ok((id, quiche::h3::Event::Reset(_))) if id == stream_id => response.complete = true,
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

fn poll_hq(
    stream_id: u64,
    response: &mut Response,
    body: &mut BodySink,
    conn: &mut quiche::Connection,
) {
    let mut buf = [0u8; 64 * 1024];
    while let Ok((read, fin)) = conn.stream_recv(stream_id, &mut buf) {
        body.take(response, &buf[..read]);
        if fin {
            body.finish(response);
        }
    }
}
