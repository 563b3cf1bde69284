//! The reproduction lab: a quiche server that presents exactly the chain it
//! is given, so that a failure seen in the field can be replayed against
//! quicprobe, aioquic, msquic or any other client. It logs every handshake
//! and every close it receives, so another client's behaviour can be read
//! off it.
//!
//! Applications: hq-interop `GET /N` answers N bytes of a fixed pattern;
//! h3 `GET /` a short text, `GET /bytes/N` N bytes.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::alerts;
use crate::datapath::{self, Batch, DatagramSource, Datapath, Scratch};

/// The largest UDP payload the lab sends or expects.
const MAX_DATAGRAM: usize = datapath::MAX_UDP_PAYLOAD;
/// The smallest datagram a client's Initial may come in (RFC 9000 §14.1).
const MIN_CLIENT_INITIAL_DATAGRAM: usize = 1200;
/// How often the loop looks at the stop flag when nothing else happens.
const STOP_CHECK: Duration = Duration::from_millis(50);
/// Bodies larger than this are refused, so a request cannot exhaust memory.
/// The largest body the lab serves; bodies are generated as they are sent.
const MAX_BODY: usize = 1 << 30;

/// What the lab serves and where.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// The chain exactly as it will be sent (PEM, first certificate = leaf).
    pub chain: PathBuf,
    pub key: PathBuf,
    pub listen: SocketAddr,
    /// ALPNs accepted, in preference order.
    pub alpns: Vec<String>,
    /// Send a Retry to every new client first (address validation).
    pub retry: bool,
    /// Compress the chain with zlib (RFC 8879) for clients that offer it.
    pub compress_certificates: bool,
    /// An OCSP response to staple, sent as is to clients that ask.
    pub ocsp_response: Option<Vec<u8>>,
    /// An SCT list to staple (RFC 6962 `SignedCertificateTimestampList`).
    pub sct_list: Option<Vec<u8>>,
}

impl LabSpec {
    /// The lab for a scenario folder of certs/.
    pub fn for_scenario(dir: &Path, listen: SocketAddr) -> Self {
        Self {
            chain: dir.join("chain.pem"),
            key: dir.join("key.pem"),
            listen,
            alpns: default_alpns(),
            retry: false,
            compress_certificates: false,
            ocsp_response: None,
            sct_list: None,
        }
    }
}

/// The ALPNs the lab speaks unless told otherwise.
pub fn default_alpns() -> Vec<String> {
    vec!["h3".into(), "hq-interop".into()]
}

/// Something the lab saw, in the order it saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabEvent {
    /// The handshake with `peer` completed.
    HandshakeDone { peer: SocketAddr, alpn: String },
    /// `peer` closed the connection with this CONNECTION_CLOSE.
    CloseReceived {
        peer: SocketAddr,
        is_app: bool,
        error_code: u64,
        reason: String,
    },
    /// A request was answered.
    Request {
        peer: SocketAddr,
        alpn: String,
        path: String,
        status: u16,
        body_bytes: usize,
    },
    /// The connection is gone (`established`: whether its handshake completed).
    Closed { peer: SocketAddr, established: bool },
}

impl std::fmt::Display for LabEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HandshakeDone { peer, alpn } => {
                write!(f, "{peer}: handshake done, ALPN {alpn}")
            }
            Self::CloseReceived {
                peer,
                is_app,
                error_code,
                reason,
            } => write!(
                f,
                "{peer}: close received: {} 0x{error_code:x} ({}) reason {reason:?}",
                if *is_app { "application" } else { "transport" },
                if *is_app {
                    "application error".to_owned()
                } else {
                    alerts::transport_error_name(*error_code)
                }
            ),
            Self::Request {
                peer,
                alpn,
                path,
                status,
                body_bytes,
            } => write!(
                f,
                "{peer}: {alpn} GET {path} -> {status}, {body_bytes} bytes"
            ),
            Self::Closed { peer, established } => write!(
                f,
                "{peer}: connection closed{}",
                if *established {
                    ""
                } else {
                    " before the handshake completed"
                }
            ),
        }
    }
}

/// A CONNECTION_CLOSE as the lab received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedClose {
    pub is_app: bool,
    pub error_code: u64,
    pub reason: String,
    /// Whether a handshake completed before the close arrived.
    pub after_handshake: bool,
}

/// Why the lab could not start.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error("{path}: cannot load: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("QUIC configuration: {0}")]
    Config(quiche::Error),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("lab I/O: {0}")]
    Io(#[from] io::Error),
}

/// A lab running on its own thread. Dropping it stops it.
pub struct LabHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Result<(), LabError>>>,
    events: mpsc::Receiver<LabEvent>,
}

impl LabHandle {
    /// The address it listens on (the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next event, waiting at most `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<LabEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Waits up to `timeout` for an event `wanted` accepts; the others are dropped.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut wanted: impl FnMut(&LabEvent) -> bool,
    ) -> Option<LabEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = self.next_event(left)?;
            if wanted(&event) {
                return Some(event);
            }
        }
    }

    /// Waits up to `timeout` for the next CONNECTION_CLOSE the lab receives;
    /// notes whether a handshake completed before it.
    pub fn wait_for_close(&self, timeout: Duration) -> Option<ReceivedClose> {
        let mut after_handshake = false;
        match self.wait_for(timeout, |event| {
            after_handshake |= matches!(event, LabEvent::HandshakeDone { .. });
            matches!(event, LabEvent::CloseReceived { .. })
        })? {
            LabEvent::CloseReceived {
                is_app,
                error_code,
                reason,
                ..
            } => Some(ReceivedClose {
                is_app,
                error_code,
                reason,
                after_handshake,
            }),
            _ => None,
        }
    }

    /// Stops the lab and waits for its thread.
    pub fn stop(mut self) -> Result<(), LabError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), LabError> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for LabHandle {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Starts a lab on its own thread; returns once it listens.
pub fn spawn(spec: LabSpec) -> Result<LabHandle, LabError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (events_tx, events) = mpsc::channel();
    let mut server = LabServer::bind(&spec)?;
    let addr = server.local_addr();
    let thread_stop = stop.clone();
    let thread = thread::Builder::new()
        .name("quicprobe-lab".into())
        .spawn(move || {
            server.run(&thread_stop, &mut |event| {
                let _ = events_tx.send(event);
            })
        })?;
    Ok(LabHandle {
        addr,
        stop,
        thread: Some(thread),
        events,
    })
}

/// The server itself: one UDP socket, every client connection on it.
pub struct LabServer {
    poll: Poll,
    datapath: Datapath,
    local: SocketAddr,
    config: quiche::Config,
    retry: bool,
    connection_id_key: hmac::Key,
    token_key: hmac::Key,
    connections: HashMap<Vec<u8>, LabConnection>,
}

struct LabConnection {
    conn: quiche::Connection,
    peer: SocketAddr,
    app: Option<LabApp>,
    announced_established: bool,
    announced_close: bool,
}

/// The application protocol a connection negotiated.
enum LabApp {
    Http3 {
        // Boxed: an h3 connection is large next to the hq-interop state.
        h3: Box<quiche::h3::Connection>,
        pending: HashMap<u64, PendingBody>,
    },
    HqInterop {
        requests: HashMap<u64, Vec<u8>>,
        pending: HashMap<u64, PendingBody>,
    },
}

/// A response body not yet fully accepted by the stream.
struct PendingBody {
    body: Body,
    written: usize,
    /// h3: the status, until the header block is out (the stream may have
    /// no room for it yet).
    unsent_status: Option<u16>,
}

/// A request the lab is about to answer.
struct Answered {
    peer: SocketAddr,
    alpn: &'static str,
    path: String,
    /// The h3 status; hq-interop (HTTP/0.9) has none.
    status: Option<u16>,
}

impl Answered {
    /// Logs the request and hands back the response waiting to be sent.
    fn announce(self, body: Body, on_event: &mut dyn FnMut(LabEvent)) -> PendingBody {
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
enum Body {
    Bytes(Vec<u8>),
    Pattern(usize),
}

impl Body {
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn len(&self) -> usize {
        match self {
            Self::Bytes(bytes) => bytes.len(),
            Self::Pattern(len) => *len,
        }
    }

    /// Up to 64 KiB of the body from `from` on.
    fn chunk(&self, from: usize) -> &[u8] {
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

const SOCKET: Token = Token(0);

impl LabServer {
    /// Binds the socket and loads the chain and key.
    pub fn bind(spec: &LabSpec) -> Result<Self, LabError> {
        let config = server_config(spec)?;
        let socket = bind_udp(spec.listen).map_err(|source| LabError::Listen {
            addr: spec.listen,
            source,
        })?;
        let poll = Poll::new()?;
        let datapath = Datapath::new(socket)?;
        let local = datapath.local_addr()?;
        let mut server = Self {
            poll,
            datapath,
            local,
            config,
            retry: spec.retry,
            connection_id_key: random_hmac_key()?,
            token_key: random_hmac_key()?,
            connections: HashMap::new(),
        };
        server.poll.registry().register(
            server.datapath.socket_mut(),
            SOCKET,
            Interest::READABLE,
        )?;
        Ok(server)
    }

    /// The address it listens on (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves until `stop` is set, reporting what happens to `on_event`.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(LabEvent),
    ) -> Result<(), LabError> {
        let mut events = Events::with_capacity(64);
        let mut scratch = Scratch::new();
        while !stop.load(Ordering::SeqCst) {
            let timeout = self
                .next_timeout()
                .map_or(STOP_CHECK, |t| t.min(STOP_CHECK));
            match self.poll.poll(&mut events, Some(timeout)) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            }
            self.fire_timers();
            self.recv_all(&mut scratch, on_event)?;
            self.flush_sends(&mut scratch);
            self.collect_closed(on_event);
        }
        Ok(())
    }

    fn next_timeout(&self) -> Option<Duration> {
        self.connections
            .values()
            .filter_map(|c| c.conn.timeout())
            .min()
    }

    fn fire_timers(&mut self) {
        for connection in self.connections.values_mut() {
            if connection.conn.timeout() == Some(Duration::ZERO) {
                connection.conn.on_timeout();
            }
        }
    }

    /// Reads every datagram waiting, a batch per system call.
    fn recv_all(
        &mut self,
        scratch: &mut Scratch,
        on_event: &mut dyn FnMut(LabEvent),
    ) -> Result<(), LabError> {
        loop {
            let filled = match self.datapath.recv_batch(scratch) {
                Ok(filled) => filled,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // An ICMP error from an earlier send: not fatal to a server.
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(error) => return Err(error.into()),
            };
            for (from, datagram) in scratch.received(filled) {
                self.handle_datagram(datagram, from, on_event);
            }
        }
    }

    fn handle_datagram(
        &mut self,
        packet: &mut [u8],
        from: SocketAddr,
        on_event: &mut dyn FnMut(LabEvent),
    ) {
        let Ok(header) = quiche::Header::from_slice(packet, quiche::MAX_CONN_ID_LEN) else {
            log::debug!("lab: {from}: not a QUIC packet, dropped");
            return;
        };
        // RFC 9000 §14.1: a server MUST discard an Initial packet carried in
        // a datagram under 1200 bytes (quiche checks it only for the first).
        if header.ty == quiche::Type::Initial && packet.len() < MIN_CLIENT_INITIAL_DATAGRAM {
            log::debug!(
                "lab: {from}: Initial in a {}-byte datagram, dropped",
                packet.len()
            );
            return;
        }
        let key = if self.connections.contains_key(header.dcid.as_ref()) {
            header.dcid.to_vec()
        } else {
            let id = self.connection_id_for(&header.dcid);
            if self.connections.contains_key(&id) {
                id
            } else {
                match self.accept(&header, from) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        let Some(connection) = self.connections.get_mut(&key) else {
            return;
        };
        let info = quiche::RecvInfo {
            from,
            to: self.local,
        };
        if let Err(error) = connection.conn.recv(packet, info) {
            log::debug!("lab: {from}: recv: {error}");
        }
        connection.after_recv(on_event);
    }

    /// Connection IDs derived from the client's first DCID, so that a
    /// repeated Initial finds the connection it already created.
    fn connection_id_for(&self, dcid: &[u8]) -> Vec<u8> {
        let tag = hmac::sign(&self.connection_id_key, dcid);
        tag.as_ref()[..quiche::MAX_CONN_ID_LEN].to_vec()
    }

    /// A new client: version negotiation, Retry, or a new connection.
    fn accept(&mut self, header: &quiche::Header, from: SocketAddr) -> Option<Vec<u8>> {
        if header.ty != quiche::Type::Initial {
            log::debug!(
                "lab: {from}: unknown connection, {:?} packet dropped",
                header.ty
            );
            return None;
        }
        let mut out = [0u8; MAX_DATAGRAM];
        if !quiche::version_is_supported(header.version) {
            let len = quiche::negotiate_version(&header.scid, &header.dcid, &mut out).ok()?;
            self.send_datagram(&out[..len], from);
            return None;
        }
        let derived = self.connection_id_for(&header.dcid);
        let (scid_bytes, original_dcid) = if self.retry {
            match self.validate_token(header, from) {
                // The client now uses the SCID our Retry gave it; the
                // connection must keep it (retry_source_connection_id).
                Some(odcid) => (header.dcid.to_vec(), Some(odcid)),
                None => {
                    self.send_retry(header, &quiche::ConnectionId::from_ref(&derived), from);
                    return None;
                }
            }
        } else {
            (derived, None)
        };
        let scid = quiche::ConnectionId::from_ref(&scid_bytes);
        let local = self.local;
        let odcid = original_dcid.as_deref().map(quiche::ConnectionId::from_ref);
        let conn = quiche::accept(&scid, odcid.as_ref(), local, from, &mut self.config)
            .map_err(|error| log::warn!("lab: {from}: accept: {error}"))
            .ok()?;
        log::debug!("lab: {from}: new connection {}", hex(&scid_bytes));
        self.connections.insert(
            scid_bytes.clone(),
            LabConnection {
                conn,
                peer: from,
                app: None,
                announced_established: false,
                announced_close: false,
            },
        );
        Some(scid_bytes)
    }

    fn send_retry(&mut self, header: &quiche::Header, scid: &quiche::ConnectionId, to: SocketAddr) {
        let token = self.mint_token(header, to);
        let mut out = [0u8; MAX_DATAGRAM];
        match quiche::retry(
            &header.scid,
            &header.dcid,
            scid,
            &token,
            header.version,
            &mut out,
        ) {
            Ok(len) => {
                log::debug!("lab: {to}: Retry sent");
                self.send_datagram(&out[..len], to);
            }
            Err(error) => log::warn!("lab: {to}: cannot make a Retry: {error}"),
        }
    }

    /// Token = MAC(address, original DCID) || original DCID.
    fn mint_token(&self, header: &quiche::Header, peer: SocketAddr) -> Vec<u8> {
        let mut token = self.token_tag(peer, &header.dcid);
        token.extend_from_slice(&header.dcid);
        token
    }

    fn validate_token(&self, header: &quiche::Header, peer: SocketAddr) -> Option<Vec<u8>> {
        let token = header.token.as_deref().filter(|t| t.len() > 32)?;
        let (tag, odcid) = token.split_at(32);
        (self.token_tag(peer, odcid) == tag).then(|| odcid.to_vec())
    }

    fn token_tag(&self, peer: SocketAddr, odcid: &[u8]) -> Vec<u8> {
        let mut context = hmac::Context::with_key(&self.token_key);
        context.update(peer.to_string().as_bytes());
        context.update(odcid);
        context.sign().as_ref()[..32].to_vec()
    }

    /// Sends what every connection has to send, datagrams of one size
    /// together in one GSO send.
    fn flush_sends(&mut self, scratch: &mut Scratch) {
        let max_segments = self.datapath.max_segments();
        for connection in self.connections.values_mut() {
            let mut source = LabSource {
                connection,
                datapath: &self.datapath,
            };
            datapath::send_all(&mut source, scratch, max_segments);
        }
    }

    /// A Retry or a version negotiation: one datagram.
    fn send_datagram(&self, datagram: &[u8], to: SocketAddr) {
        send_logged(&self.datapath, to, datagram, datagram.len());
    }

    fn collect_closed(&mut self, on_event: &mut dyn FnMut(LabEvent)) {
        self.connections.retain(|_, connection| {
            connection.announce_peer_close(on_event);
            if !connection.conn.is_closed() {
                return true;
            }
            let event = LabEvent::Closed {
                peer: connection.peer,
                established: connection.announced_established,
            };
            log::info!("lab: {event}");
            on_event(event);
            false
        });
    }
}

impl LabConnection {
    fn after_recv(&mut self, on_event: &mut dyn FnMut(LabEvent)) {
        if self.conn.is_established() && !self.announced_established {
            self.announced_established = true;
            let alpn = String::from_utf8_lossy(self.conn.application_proto()).into_owned();
            let event = LabEvent::HandshakeDone {
                peer: self.peer,
                alpn: alpn.clone(),
            };
            log::info!("lab: {event}");
            on_event(event);
            self.app = start_app(&mut self.conn, &alpn);
        }
        self.announce_peer_close(on_event);
        if let Some(app) = self.app.as_mut() {
            app.serve(&mut self.conn, self.peer, on_event);
        }
    }

    fn announce_peer_close(&mut self, on_event: &mut dyn FnMut(LabEvent)) {
        if self.announced_close {
            return;
        }
        let Some(error) = self.conn.peer_error() else {
            return;
        };
        self.announced_close = true;
        let event = LabEvent::CloseReceived {
            peer: self.peer,
            is_app: error.is_app,
            error_code: error.error_code,
            reason: String::from_utf8_lossy(&error.reason).into_owned(),
        };
        log::info!("lab: {event}");
        on_event(event);
    }
}

fn start_app(conn: &mut quiche::Connection, alpn: &str) -> Option<LabApp> {
    match alpn {
        "h3" => {
            let config = quiche::h3::Config::new().ok()?;
            let h3 = quiche::h3::Connection::with_transport(conn, &config)
                .map_err(|error| log::warn!("lab: h3 setup: {error}"))
                .ok()?;
            Some(LabApp::Http3 {
                h3: Box::new(h3),
                pending: HashMap::new(),
            })
        }
        "hq-interop" => Some(LabApp::HqInterop {
            requests: HashMap::new(),
            pending: HashMap::new(),
        }),
        _ => None,
    }
}

impl LabApp {
    fn serve(
        &mut self,
        conn: &mut quiche::Connection,
        peer: SocketAddr,
        on_event: &mut dyn FnMut(LabEvent),
    ) {
        match self {
            Self::Http3 { h3, pending } => serve_h3(h3, pending, conn, peer, on_event),
            Self::HqInterop { requests, pending } => {
                serve_hq(requests, pending, conn, peer, on_event)
            }
        }
    }
}

fn serve_h3(
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

fn serve_hq(
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

/// N bytes of a fixed, recognisable pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ALPHABET[i % ALPHABET.len()]).collect()
}

fn server_config(spec: &LabSpec) -> Result<quiche::Config, LabError> {
    let mut config =
        quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, server_tls(spec)?)
            .map_err(LabError::Config)?;
    let alpns: Vec<&[u8]> = spec.alpns.iter().map(|a| a.as_bytes()).collect();
    config
        .set_application_protos(&alpns)
        .map_err(LabError::Config)?;
    config.set_max_idle_timeout(10_000);
    // Resumption and 0-RTT, for clients that test them (--session-file).
    config.enable_early_data();
    config.set_max_recv_udp_payload_size(MAX_DATAGRAM);
    config.set_max_send_udp_payload_size(MAX_DATAGRAM);
    config.set_initial_max_data(100_000_000);
    config.set_initial_max_stream_data_bidi_local(10_000_000);
    config.set_initial_max_stream_data_bidi_remote(10_000_000);
    config.set_initial_max_stream_data_uni(10_000_000);
    config.set_initial_max_streams_bidi(100);
    config.set_initial_max_streams_uni(100);
    config.set_disable_active_migration(true);
    Ok(config)
}

/// Runs a quiche loader on a file, turning its bare `TlsFail` into a sentence.
/// The lab's TLS: the chain exactly as the file holds it, its key, and zlib
/// certificate compression when asked for.
fn server_tls(spec: &LabSpec) -> Result<boring::ssl::SslContextBuilder, LabError> {
    use boring::ssl::{SslContextBuilder, SslFiletype, SslMethod};
    let tls_error = |e: boring::error::ErrorStack| LabError::Tls(e.to_string());
    let mut builder = SslContextBuilder::new(SslMethod::tls()).map_err(tls_error)?;
    load_pem(&spec.chain, |path| builder.set_certificate_chain_file(path))?;
    load_pem(&spec.key, |path| {
        builder.set_private_key_file(path, SslFiletype::PEM)
    })?;
    if spec.compress_certificates {
        builder
            .add_certificate_compression_algorithm(crate::compression::Zlib)
            .map_err(tls_error)?;
    }
    staple(&mut builder, spec)?;
    Ok(builder)
}

/// What the lab staples to its chain, when told to.
fn staple(builder: &mut boring::ssl::SslContextBuilder, spec: &LabSpec) -> Result<(), LabError> {
    if let Some(response) = spec.ocsp_response.clone() {
        builder
            .set_status_callback(move |ssl| {
                ssl.set_ocsp_status(&response)?;
                Ok(true)
            })
            .map_err(|e| LabError::Tls(e.to_string()))?;
    }
    if let Some(list) = &spec.sct_list {
        if !quicprobe_verifier::set_signed_cert_timestamp_list(builder, list) {
            return Err(LabError::Tls("the SCT list is malformed".into()));
        }
    }
    Ok(())
}

fn load_pem(
    path: &Path,
    load: impl FnOnce(&Path) -> Result<(), boring::error::ErrorStack>,
) -> Result<(), LabError> {
    if !path.is_file() {
        return Err(LabError::Certificate {
            path: path.to_owned(),
            reason: "no such file".into(),
        });
    }
    load(path).map_err(|_| LabError::Certificate {
        path: path.to_owned(),
        reason: "not a PEM certificate chain or private key BoringSSL accepts".into(),
    })
}

/// One lab connection as a source of datagrams for the shared socket.
struct LabSource<'a> {
    connection: &'a mut LabConnection,
    datapath: &'a Datapath,
}

impl DatagramSource for LabSource<'_> {
    fn next_datagram(&mut self, space: &mut [u8]) -> Option<usize> {
        let connection = &mut *self.connection;
        match connection.conn.send(space) {
            Ok((len, _)) => Some(len),
            Err(quiche::Error::Done) => None,
            Err(error) => {
                log::debug!("lab: {}: send: {error}", connection.peer);
                let _ = connection.conn.close(false, 0x1, b"send failed");
                None
            }
        }
    }

    fn transmit(&mut self, batch: &Batch<'_>) {
        send_logged(
            self.datapath,
            self.connection.peer,
            batch.contents,
            batch.segment,
        );
    }
}

fn send_logged(datapath: &Datapath, to: SocketAddr, contents: &[u8], segment: usize) {
    if let Err(error) = datapath.send(to, contents, segment) {
        // A full socket buffer loses these datagrams; QUIC recovers.
        log::debug!("lab: {to}: send: {error}");
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    // Datapath::new enlarges the receive buffer: a burst of Initials from a
    // hundred clients overflows Linux's default 208 KiB, and each datagram
    // lost there costs its client a retransmission timeout.
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

fn random_hmac_key() -> Result<hmac::Key, LabError> {
    let rng = SystemRandom::new();
    let mut seed = [0u8; 32];
    rng.fill(&mut seed)
        .map_err(|_| io::Error::other("no randomness"))?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &seed))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quiche client trusting the scenario's roots, as the lab's peer.
    fn client_for(scenario: &Path, lab: SocketAddr, local: SocketAddr) -> quiche::Connection {
        let mut config = quiche::Config::new(quiche::PROTOCOL_VERSION).unwrap();
        config
            .load_verify_locations_from_file(scenario.join("roots.pem").to_str().unwrap())
            .unwrap();
        config.verify_peer(true);
        config.set_application_protos(&[b"hq-interop"]).unwrap();
        config.set_max_idle_timeout(5_000);
        config.set_initial_max_data(1 << 20);
        config.set_initial_max_stream_data_bidi_local(1 << 20);
        config.set_initial_max_streams_bidi(4);
        let scid = quiche::ConnectionId::from_ref(&[7; 16]);
        quiche::connect(Some("localhost"), &scid, local, lab, &mut config).unwrap()
    }

    /// Moves everything the lab's connection has to send into the client.
    fn lab_to_client(lab: &mut LabServer, client: &mut quiche::Connection, to: SocketAddr) {
        let from = lab.local_addr();
        let mut out = vec![0; MAX_DATAGRAM];
        for connection in lab.connections.values_mut() {
            while let Ok((len, _)) = connection.conn.send(&mut out) {
                client
                    .recv(&mut out[..len], quiche::RecvInfo { from, to })
                    .unwrap();
            }
        }
    }

    fn packets_received_by_lab(lab: &LabServer) -> usize {
        lab.connections.values().map(|c| c.conn.stats().recv).sum()
    }

    /// RFC 9000 §14.1: an Initial packet in a datagram under 1200 bytes is
    /// discarded, not only a connection's first. The client's second flight
    /// coalesces its Initial ACK with a Handshake packet that carries the
    /// padding; cut after the Initial, the packet is intact and authentic,
    /// so only the datagram's size can make the lab drop it (quiche alone
    /// would process it). The whole datagram is then processed, as control.
    #[test]
    fn an_initial_in_a_short_datagram_is_discarded_even_mid_handshake() {
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/full-chain");
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut lab = LabServer::bind(&LabSpec::for_scenario(&scenario, listen)).unwrap();
        let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut client = client_for(&scenario, lab.local_addr(), local);
        let mut out = vec![0; MAX_DATAGRAM];

        // The ClientHello (one or two padded datagrams), then the server's flight.
        while let Ok((len, _)) = client.send(&mut out) {
            lab.handle_datagram(&mut out[..len], local, &mut |_| {});
        }
        assert_eq!(lab.connections.len(), 1, "the lab accepted the ClientHello");
        lab_to_client(&mut lab, &mut client, local);

        let (len, _) = client.send(&mut out).unwrap();
        let second_flight = out[..len].to_vec();
        assert_eq!(
            second_flight[0] & 0xb0,
            0x80,
            "the first packet is a long-header Initial"
        );
        let initial_len = crate::flights::long_packet_len(&second_flight, 0)
            .expect("the Initial's length fields are readable");
        assert!(
            initial_len < len && len >= MIN_CLIENT_INITIAL_DATAGRAM,
            "expected an Initial coalesced with more in a padded datagram: \
             {initial_len} of {len} bytes"
        );

        let before = packets_received_by_lab(&lab);
        let mut short = second_flight[..initial_len].to_vec();
        lab.handle_datagram(&mut short, local, &mut |_| {});
        assert_eq!(
            packets_received_by_lab(&lab),
            before,
            "an Initial in a {initial_len}-byte datagram reached quiche"
        );

        let mut whole = second_flight;
        lab.handle_datagram(&mut whole, local, &mut |_| {});
        assert!(
            packets_received_by_lab(&lab) > before,
            "control: the same Initial in the whole datagram is processed"
        );
    }
}
