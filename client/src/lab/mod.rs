//! The reproduction lab: a quiche server that presents exactly the chain it
//! is given, so that a failure seen in the field can be replayed against
//! quicprobe, aioquic, msquic or any other client. It logs every handshake
//! and every close it receives, so another client's behaviour can be read
//! off it.
//!
//! Applications: hq-interop `GET /N` answers N bytes of a fixed pattern;
//! h3 `GET /` a short text, `GET /bytes/N` N bytes.

pub mod aia;
mod config;
mod connection;
mod h3;
mod hq;
mod response;
pub mod scenario;
mod server;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::engine::alerts;
use crate::engine::datapath;
use crate::engine::params::ServerParameters;

pub use response::pattern;
pub use server::LabServer;

/// The largest UDP payload the lab sends or expects.
const MAX_DATAGRAM: usize = datapath::MAX_UDP_PAYLOAD;

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
    /// Ask clients for a certificate and verify it against these roots.
    pub client_auth: Option<ClientAuth>,
    /// The transport parameters to send instead of the lab's own (a
    /// captured server's, replayed).
    pub transport_parameters: Option<ServerParameters>,
}

/// The lab asks for a client certificate (`serve --client-ca`), and with
/// `required` closes without one (`--require-client-cert`).
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// PEM roots a client certificate must chain to; their names go in the
    /// CertificateRequest's certificate_authorities.
    pub ca: PathBuf,
    /// No certificate, no connection: TLS 1.3's certificate_required (116).
    pub required: bool,
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
            client_auth: None,
            transport_parameters: None,
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
    /// The key reads, but belongs to another certificate than the chain's first.
    #[error("--key {} does not match the certificate in --chain {} (the key must be the leaf's, the chain's first certificate)", key.display(), chain.display())]
    KeyMismatch { key: PathBuf, chain: PathBuf },
    #[error("QUIC configuration: {0}")]
    Config(quiche::Error),
    /// BoringSSL refused the lab's TLS setup; its error stack says what.
    #[error("TLS configuration: {0}")]
    Tls(#[from] boring::error::ErrorStack),
    /// The `--sct-list` bytes are not a TLS SignedCertificateTimestampList.
    #[error("TLS configuration: the SCT list is malformed")]
    MalformedSctList,
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
