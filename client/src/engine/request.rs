//! Requests on an established connection, as curl makes them: HTTP/3 for
//! `h3` (all requests multiplexed on the one connection), HTTP/0.9 for
//! `hq-interop` (one stream each), or raw bytes on a stream for any other
//! ALPN. Only ever started on an established connection, so never on a
//! rejected chain. Bodies are counted (and hashed, when an output shows the
//! digest) as they arrive and go to their sink (nowhere, stdout or a file),
//! never kept whole in memory.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::hex::hex;

/// One request to make, as the user asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: String,
    pub path: String,
    /// Extra header fields (`-H 'name: value'`), HTTP/3 only.
    pub headers: Vec<(String, String)>,
    /// The request body (`--data`), or the bytes to send on a raw stream.
    pub body: Vec<u8>,
    pub sink: SinkSpec,
    /// `-i`: write the status line and header fields before the body.
    pub include_headers: bool,
}

impl RequestSpec {
    /// `GET path`, body dropped: what `connect https://...` makes.
    pub fn get(path: &str) -> Self {
        Self {
            method: "GET".into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            sink: SinkSpec::Discard,
            include_headers: false,
        }
    }
}

/// Where a response body goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    Discard,
    /// Collected and written to stdout once complete, in request order, so
    /// that multiplexed bodies never interleave.
    Stdout,
    File(PathBuf),
}

/// What came back for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Response {
    pub path: String,
    /// The HTTP status (h3); `None` for hq-interop and raw streams.
    pub status: Option<u16>,
    pub body_bytes: usize,
    /// content-length, when the server sent one.
    pub content_length: Option<usize>,
    /// SHA-256 of the body, hex, once the response is complete; `None`
    /// when the run does not hash bodies (no output shows the digest).
    pub body_sha256: Option<String>,
    /// Whether the server finished the response (FIN, and the declared length).
    pub complete: bool,
    /// Why the response is not what was declared, or could not be written.
    pub error: Option<String>,
    /// The body could not be written where the user asked (exit 23); the
    /// words are in `error`.
    #[serde(skip)]
    pub write_failed: bool,
}

/// Why requests could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("HTTP/3: {0}")]
    Http3(#[from] quiche::h3::Error),
    #[error("QUIC stream: {0}")]
    Stream(#[from] quiche::Error),
    #[error("hq-interop (HTTP/0.9) has GET only, not {0}")]
    HqMethod(String),
    #[error("{0}: {1}")]
    Output(String, std::io::Error),
}

/// A body on its way: counted, hashed if asked, and passed to its sink.
struct BodySink {
    /// `None` when nobody asked for the digest: SHA-256 of a download costs
    /// about as much CPU as a quarter of everything else the client does.
    digest: Option<ring::digest::Context>,
    file: Option<std::fs::File>,
    file_path: Option<PathBuf>,
    /// The Stdout sink's bytes, written once the response is complete.
    held: Option<Vec<u8>>,
    /// Shown on a terminal's stderr for bodies over 1 MiB that are kept.
    progress: Progress,
}

/// A progress bar, for bodies a person waits for.
enum Progress {
    /// Not wanted: the body is dropped, or stderr is no terminal.
    Off,
    /// Wanted once the body passes `PROGRESS_FROM` bytes.
    Waiting,
    Shown(indicatif::ProgressBar),
}

/// Bodies smaller than this get no progress bar.
const PROGRESS_FROM: usize = 1 << 20;

impl Progress {
    fn new(spec: &SinkSpec) -> Self {
        use std::io::IsTerminal;
        if *spec != SinkSpec::Discard && std::io::stderr().is_terminal() {
            Self::Waiting
        } else {
            Self::Off
        }
    }

    fn advance(&mut self, response: &Response) {
        let expected = response.content_length.unwrap_or(0);
        if matches!(self, Self::Waiting) && response.body_bytes.max(expected) > PROGRESS_FROM {
            let bar = match response.content_length {
                Some(len) => indicatif::ProgressBar::new(len as u64),
                None => indicatif::ProgressBar::no_length(),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar} {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(response.path.clone());
            *self = Self::Shown(bar);
        }
        if let Self::Shown(bar) = self {
            bar.set_position(response.body_bytes as u64);
        }
    }

    fn done(&mut self) {
        if let Self::Shown(bar) = self {
            bar.finish();
        }
        *self = Self::Off;
    }
}

impl BodySink {
    fn open(spec: &SinkSpec, hash: bool) -> Result<Self, RequestError> {
        let (file, file_path) = match spec {
            SinkSpec::File(path) => {
                let file = std::fs::File::create(path)
                    .map_err(|e| RequestError::Output(path.display().to_string(), e))?;
                (Some(file), Some(path.clone()))
            }
            _ => (None, None),
        };
        Ok(Self {
            digest: hash.then(|| ring::digest::Context::new(&ring::digest::SHA256)),
            file,
            file_path,
            held: (*spec == SinkSpec::Stdout).then(Vec::new),
            progress: Progress::new(spec),
        })
    }

    /// Writes bytes that are not body (the `-i` header block).
    fn write_preamble(&mut self, text: &str) -> Result<(), String> {
        self.write_out(text.as_bytes())
    }

    fn take(&mut self, response: &mut Response, chunk: &[u8]) {
        response.body_bytes += chunk.len();
        if let Some(digest) = self.digest.as_mut() {
            digest.update(chunk);
        }
        self.progress.advance(response);
        if let Err(error) = self.write_out(chunk) {
            response.error.get_or_insert(error);
            response.write_failed = true;
        }
    }

    fn write_out(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let Some(held) = self.held.as_mut() {
            held.extend_from_slice(bytes);
        }
        match (self.file.as_mut(), &self.file_path) {
            (Some(file), Some(path)) => file
                .write_all(bytes)
                .map_err(|e| format!("{}: {e}", path.display())),
            _ => Ok(()),
        }
    }

    /// The server finished: check the declared length, seal the hash.
    fn finish(&mut self, response: &mut Response) {
        if response.complete {
            return;
        }
        self.progress.done();
        response.complete = true;
        if let Some(declared) = response.content_length {
            if declared != response.body_bytes {
                response.error.get_or_insert(format!(
                    "content-length said {declared} bytes, {} arrived",
                    response.body_bytes
                ));
                response.complete = false;
            }
        }
        response.body_sha256 = self
            .digest
            .take()
            .map(|digest| hex(digest.finish().as_ref()));
        if let Some(file) = self.file.as_mut() {
            if let Err(error) = file.flush() {
                response.error.get_or_insert(error.to_string());
            }
        }
    }

    /// The Stdout sink's bytes, once.
    fn take_held(&mut self) -> Option<Vec<u8>> {
        self.held.take()
    }
}

/// One request and its response.
struct Exchange {
    spec: RequestSpec,
    stream_id: Option<u64>,
    /// How much of the request body is sent.
    body_sent: usize,
    response: Response,
    sink: BodySink,
}

impl Exchange {
    fn new(spec: RequestSpec, hash: bool) -> Result<Self, RequestError> {
        let sink = BodySink::open(&spec.sink, hash)?;
        Ok(Self {
            response: Response {
                path: spec.path.clone(),
                ..Response::default()
            },
            spec,
            stream_id: None,
            body_sent: 0,
            sink,
        })
    }
}

/// The application protocol the requests speak.
enum Protocol {
    Http3(Box<quiche::h3::Connection>),
    HqInterop,
    /// Any other ALPN: the body goes out on a stream, what comes back is the response.
    Raw,
}

/// Every request of one connection.
pub struct Requests {
    protocol: Protocol,
    authority: String,
    exchanges: Vec<Exchange>,
    /// The next bidirectional stream to open, for hq-interop and raw streams.
    next_stream_id: u64,
}

impl Requests {
    /// Prepares the requests for the negotiated ALPN and sends what it can;
    /// `hash_bodies`: whether each response gets its `body_sha256`.
    pub fn start(
        conn: &mut quiche::Connection,
        authority: &str,
        specs: Vec<RequestSpec>,
        hash_bodies: bool,
    ) -> Result<Self, RequestError> {
        let alpn = String::from_utf8_lossy(conn.application_proto()).into_owned();
        let protocol = match alpn.as_str() {
            "h3" => {
                let config = quiche::h3::Config::new()?;
                Protocol::Http3(Box::new(quiche::h3::Connection::with_transport(
                    conn, &config,
                )?))
            }
            "hq-interop" => {
                if let Some(spec) = specs.iter().find(|s| s.method != "GET") {
                    return Err(RequestError::HqMethod(spec.method.clone()));
                }
                Protocol::HqInterop
            }
            _ => Protocol::Raw,
        };
        let exchanges = specs
            .into_iter()
            .map(|spec| Exchange::new(spec, hash_bodies))
            .collect::<Result<_, _>>()?;
        let mut requests = Self {
            protocol,
            authority: authority.to_owned(),
            exchanges,
            next_stream_id: 0,
        };
        requests.send_pending(conn);
        Ok(requests)
    }

    /// Sends what is still to send, reads what arrived; true once every
    /// response is complete (or failed).
    pub fn poll(&mut self, conn: &mut quiche::Connection) -> bool {
        self.send_pending(conn);
        match &mut self.protocol {
            Protocol::Http3(h3) => poll_h3(h3, &mut self.exchanges, conn),
            Protocol::HqInterop | Protocol::Raw => poll_streams(&mut self.exchanges, conn),
        }
        self.all_done()
    }

    fn all_done(&self) -> bool {
        self.exchanges
            .iter()
            .all(|e| e.response.complete || e.response.error.is_some())
    }

    pub fn responses(&self) -> Vec<Response> {
        self.exchanges.iter().map(|e| e.response.clone()).collect()
    }

    /// The bodies meant for stdout, in request order, each once it is complete.
    pub fn take_stdout_bodies(&mut self) -> Vec<Vec<u8>> {
        self.exchanges
            .iter_mut()
            .filter(|e| e.response.complete)
            .filter_map(|e| e.sink.take_held())
            .collect()
    }

    /// Opens a stream for every request not yet sent, as far as the
    /// server's stream limit allows, and pushes request bodies on.
    fn send_pending(&mut self, conn: &mut quiche::Connection) {
        for exchange in &mut self.exchanges {
            if exchange.stream_id.is_none() {
                let opened = match &mut self.protocol {
                    Protocol::Http3(h3) => open_h3(h3, conn, &self.authority, exchange),
                    Protocol::HqInterop => {
                        open_stream(conn, &mut self.next_stream_id, exchange, hq_request_line)
                    }
                    Protocol::Raw => {
                        open_stream(conn, &mut self.next_stream_id, exchange, |_| Vec::new())
                    }
                };
                match opened {
                    Ok(Some(id)) => exchange.stream_id = Some(id),
                    Ok(None) => return, // no stream credit yet: try on the next poll
                    Err(error) => {
                        exchange.response.error = Some(error.to_string());
                        continue;
                    }
                }
            }
            push_body(&mut self.protocol, conn, exchange);
        }
    }
}

fn hq_request_line(spec: &RequestSpec) -> Vec<u8> {
    format!("GET {}\r\n", spec.path).into_bytes()
}

/// Sends the request's header block; `None` when the server allows no new stream yet.
fn open_h3(
    h3: &mut quiche::h3::Connection,
    conn: &mut quiche::Connection,
    authority: &str,
    exchange: &Exchange,
) -> Result<Option<u64>, RequestError> {
    let spec = &exchange.spec;
    let mut headers = vec![
        quiche::h3::Header::new(b":method", spec.method.as_bytes()),
        quiche::h3::Header::new(b":scheme", b"https"),
        quiche::h3::Header::new(b":authority", authority.as_bytes()),
        quiche::h3::Header::new(b":path", spec.path.as_bytes()),
        quiche::h3::Header::new(b"user-agent", b"quicprobe"),
    ];
    headers.extend(spec.headers.iter().map(|(name, value)| {
        quiche::h3::Header::new(name.to_ascii_lowercase().as_bytes(), value.as_bytes())
    }));
    match h3.send_request(conn, &headers, spec.body.is_empty()) {
        Ok(id) => Ok(Some(id)),
        Err(
            quiche::h3::Error::StreamBlocked
            | quiche::h3::Error::TransportError(quiche::Error::StreamLimit),
        ) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Opens the next client bidirectional stream with `first_bytes` on it.
fn open_stream(
    conn: &mut quiche::Connection,
    next_stream_id: &mut u64,
    exchange: &Exchange,
    first_bytes: impl Fn(&RequestSpec) -> Vec<u8>,
) -> Result<Option<u64>, RequestError> {
    if conn.peer_streams_left_bidi() == 0 {
        return Ok(None);
    }
    // quiche has no "open stream" call: the first write opens the stream.
    // Client-initiated bidirectional streams are 0, 4, 8, ... (RFC 9000 §2.1).
    let id = *next_stream_id;
    *next_stream_id += 4;
    let bytes = first_bytes(&exchange.spec);
    let fin = exchange.spec.body.is_empty();
    conn.stream_send(id, &bytes, fin)?;
    Ok(Some(id))
}

/// Sends more of the request body, with FIN after the last byte.
fn push_body(protocol: &mut Protocol, conn: &mut quiche::Connection, exchange: &mut Exchange) {
    let Some(id) = exchange.stream_id else {
        return;
    };
    let body = &exchange.spec.body;
    if exchange.body_sent >= body.len() {
        return;
    }
    let rest = &body[exchange.body_sent..];
    let sent = match protocol {
        Protocol::Http3(h3) => h3
            .send_body(conn, id, rest, true)
            .map_err(|e| e.to_string()),
        Protocol::HqInterop | Protocol::Raw => {
            conn.stream_send(id, rest, true).map_err(|e| e.to_string())
        }
    };
    match sent {
        Ok(n) => exchange.body_sent += n,
        Err(error) if error.contains("Done") => {}
        Err(error) => exchange.response.error = Some(error),
    }
}

fn poll_h3(
    h3: &mut quiche::h3::Connection,
    exchanges: &mut [Exchange],
    conn: &mut quiche::Connection,
) {
    use quiche::h3::NameValue;
    let mut buf = [0u8; 64 * 1024];
    while let Ok((id, event)) = h3.poll(conn) {
        let Some(exchange) = exchanges.iter_mut().find(|e| e.stream_id == Some(id)) else {
            continue;
        };
        match event {
            quiche::h3::Event::Headers { list, .. } => {
                let field = |name: &[u8]| {
                    list.iter()
                        .find(|h| h.name() == name)
                        .and_then(|h| std::str::from_utf8(h.value()).ok().map(str::to_owned))
                };
                exchange.response.status = field(b":status").and_then(|s| s.parse().ok());
                exchange.response.content_length =
                    field(b"content-length").and_then(|s| s.parse().ok());
                if exchange.spec.include_headers {
                    let block = header_block(exchange.response.status, &list);
                    if let Err(error) = exchange.sink.write_preamble(&block) {
                        exchange.response.error.get_or_insert(error);
                        exchange.response.write_failed = true;
                    }
                }
            }
            quiche::h3::Event::Data => {
                while let Ok(read) = h3.recv_body(conn, id, &mut buf) {
                    exchange.sink.take(&mut exchange.response, &buf[..read]);
                }
            }
            quiche::h3::Event::Finished => exchange.sink.finish(&mut exchange.response),
            quiche::h3::Event::Reset(code) => {
                exchange.response.error = Some(format!("the server reset the stream (0x{code:x})"));
            }
            _ => {}
        }
    }
}

/// What curl -i prints: `HTTP/3 200`, the header fields, a blank line.
fn header_block(status: Option<u16>, list: &[quiche::h3::Header]) -> String {
    use quiche::h3::NameValue;
    let mut block = format!(
        "HTTP/3 {}\r\n",
        status.map_or_else(|| "?".to_owned(), |s| s.to_string())
    );
    for field in list.iter().filter(|h| !h.name().starts_with(b":")) {
        block.push_str(&format!(
            "{}: {}\r\n",
            String::from_utf8_lossy(field.name()),
            String::from_utf8_lossy(field.value())
        ));
    }
    block.push_str("\r\n");
    block
}

fn poll_streams(exchanges: &mut [Exchange], conn: &mut quiche::Connection) {
    let mut buf = [0u8; 64 * 1024];
    for exchange in exchanges.iter_mut() {
        let Some(id) = exchange.stream_id else {
            continue;
        };
        loop {
            match conn.stream_recv(id, &mut buf) {
                Ok((read, fin)) => {
                    exchange.sink.take(&mut exchange.response, &buf[..read]);
                    if fin {
                        exchange.sink.finish(&mut exchange.response);
                        break;
                    }
                }
                Err(quiche::Error::StreamReset(code)) => {
                    exchange.response.error =
                        Some(format!("the server reset the stream (0x{code:x})"));
                    break;
                }
                Err(_) => break,
            }
        }
    }
}
