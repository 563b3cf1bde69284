//! One connection attempt: a quiche client connection on the run's shared
//! UDP socket (see `engine::endpoint`), the stages it reached, the verdict on the server's chain, and how
//! it ended. The event loop drives it; it never blocks.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use quicprobe_verifier::{CheckedChain, PeerName};

use crate::engine::datapath::{self, Batch, DatagramSource, Datapath, Scratch, SendSpace};
use crate::engine::endpoint::ConnectionKey;
use crate::engine::flights::{self, FlightLog};
use crate::engine::handshake::{ConnectionStart, KeysDropped, Stage, StageEvent};
use crate::engine::outcome::Outcome;
use crate::engine::request::{RequestError, Requests, Response};
use crate::engine::target::Target;
use crate::hex::hex;

mod end;
mod extras;
mod phase;
mod receive;
mod tls;

use phase::{CloseReason, Phase};

/// The largest UDP payload quicprobe sends or expects.
pub const MAX_DATAGRAM: usize = datapath::MAX_UDP_PAYLOAD;
/// How long to wait for HANDSHAKE_DONE once the handshake is complete.
const HANDSHAKE_DONE_GRACE: Duration = Duration::from_secs(2);

/// What each connection of a run shares.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub alpns: Vec<String>,
    pub sni: Option<String>,
    /// `--connect-timeout`: how long the handshake may take.
    pub timeout: Duration,
    /// `-m/--max-time`: how long the whole connection may take, from its
    /// first packet to its last response byte (`--hold` may extend it).
    pub max_time: Option<Duration>,
    /// `-f/--fail`: an HTTP status of 400 or more is a failure (exit 22).
    pub fail_on_http_error: bool,
    pub keylog: Option<PathBuf>,
    pub qlog_dir: Option<PathBuf>,
    /// `--insecure`: a rejected chain does not end the connection.
    pub insecure: bool,
    /// The idle timeout we offer the server (`--idle-timeout`).
    pub idle_timeout: Duration,
    /// `--hold`: stay connected and idle this long after the request.
    pub hold: Option<Duration>,
    /// `--session-file`: offer the ticket it holds, save the one we get.
    pub session_file: Option<PathBuf>,
    /// `--early-data`: send the requests as 0-RTT when a session is offered.
    pub early_data: bool,
    /// `--local-port N[-M]`: the local ports to bind, first free one wins.
    pub local_ports: Option<(u16, u16)>,
    /// `--cert`: the client certificate we hold, for the report.
    pub client_certificate: Option<crate::engine::client_identity::IdentitySummary>,
    /// Whether response bodies are hashed (`body_sha256`): only when an
    /// output shows the digest, since on a download it costs as much CPU as
    /// a quarter of everything else (issue 18).
    pub body_digest: bool,
}

/// How far off "no limit" is: a year, far enough, and still an `Instant`
/// on every platform.
const NO_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

impl ProbeSettings {
    /// Until the handshake's end: `--connect-timeout`, or `-m` when shorter.
    pub fn handshake_limit(&self) -> Duration {
        self.max_time
            .map_or(self.timeout, |max| max.min(self.timeout))
    }

    /// The whole connection: `-m`, or no limit of ours.
    pub fn transfer_limit(&self) -> Duration {
        self.max_time.unwrap_or(NO_LIMIT)
    }

    /// A handshake with every option off: no SNI override, no key log or
    /// qlog, strict, no hold, no session, any local port.
    pub fn plain(alpns: Vec<String>, timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            alpns,
            sni: None,
            timeout,
            max_time: None,
            fail_on_http_error: false,
            keylog: None,
            qlog_dir: None,
            insecure: false,
            idle_timeout,
            hold: None,
            session_file: None,
            early_data: false,
            local_ports: None,
            client_certificate: None,
            // scan prints every outcome as JSON; demo's outputs are unchanged.
            body_digest: true,
        }
    }
}

/// A connection attempt in flight or finished.
pub struct Probe {
    pub target: Target,
    pub addr: SocketAddr,
    /// The run's socket for this address family, shared with every probe of it.
    datapath: Arc<Datapath>,
    /// The socket's bound address (unspecified IP): what quiche knows as
    /// our end of the path, the same for every datagram.
    local: SocketAddr,
    /// Our address as the server's datagrams name it, for the report.
    local_ip_seen: Option<IpAddr>,
    /// Why our first flight could not be sent (no route to the address).
    start_error: Option<io::Error>,
    /// Boxed: quiche's `Connection` is 8 KiB inline, and the event loop
    /// keeps its probes in a hash table of about twice as many slots as
    /// probes, whose touched pages cost more than the connection itself.
    conn: Box<quiche::Connection>,
    peer_name: PeerName,
    /// The run's settings, shared by every probe of it.
    settings: Arc<ProbeSettings>,
    sni: Option<String>,
    started: Instant,
    deadline: Instant,
    requests: Option<Requests>,
    request_error: Option<String>,
    /// A file the user asked for could not be written (exit 23).
    write_error: Option<String>,
    stages: Vec<StageEvent>,
    checked: Option<CheckedChain>,
    /// Where the probe stands: open, closing, refused or finished.
    phase: Phase,
    established_at: Option<Instant>,
    scid_hex: String,
    scid: ConnectionKey,
    flights: FlightLog,
    /// When the held connection is closed, once the request is done.
    hold_until: Option<Instant>,
    last_received: Instant,
    /// When we first sent a Handshake packet, dropping our Initial keys.
    initial_keys_dropped: Option<KeysDropped>,
    /// A saved session was offered for resumption.
    session_offered: bool,
    /// The requests went out as 0-RTT early data.
    sent_early_data: bool,
}

impl Probe {
    /// Creates the quiche connection, on the run's socket for `addr`'s
    /// family. Nothing is sent yet.
    pub fn start(
        target: Target,
        addr: SocketAddr,
        config: &mut quiche::Config,
        settings: &Arc<ProbeSettings>,
        datapath: Arc<Datapath>,
    ) -> io::Result<Self> {
        let local = datapath.local_addr();
        log::info!("  Trying {addr}... (UDP, from port {})", local.port());
        let scid = random_connection_id()?;
        let sni = settings.sni.clone().or_else(|| target.default_sni());
        log::info!(
            "SNI: {}",
            sni.as_deref()
                .unwrap_or("(none: the host is an IP address)")
        );
        let conn = quiche::connect(
            sni.as_deref(),
            &quiche::ConnectionId::from_ref(&scid),
            local,
            addr,
            config,
        )
        .map(Box::new)
        .map_err(|error| io::Error::other(format!("QUIC connect: {error}")))?;
        let started = Instant::now();
        let peer_name = settings
            .sni
            .as_deref()
            .map_or_else(|| target.peer_name(), PeerName::parse);
        let mut probe = Self {
            peer_name,
            target,
            addr,
            datapath,
            local,
            local_ip_seen: None,
            start_error: None,
            conn,
            settings: Arc::clone(settings),
            sni,
            started,
            deadline: started + settings.handshake_limit(),
            requests: None,
            request_error: None,
            write_error: None,
            stages: Vec::new(),
            checked: None,
            phase: Phase::Open,
            established_at: None,
            scid_hex: hex(&scid),
            scid,
            flights: FlightLog::default(),
            hold_until: None,
            last_received: started,
            initial_keys_dropped: None,
            session_offered: false,
            sent_early_data: false,
        };
        probe.offer_saved_session();
        probe.attach_keylog(settings.keylog.as_ref());
        probe.attach_qlog(settings.qlog_dir.as_ref());
        Ok(probe)
    }

    /// What a trace shows when the connection starts.
    pub fn start_info(&self) -> ConnectionStart {
        ConnectionStart {
            target: self.target.authority(),
            addr: self.addr,
            connection_id: self.scid_hex.clone(),
            at: SystemTime::now()
                .checked_sub(self.started.elapsed())
                .unwrap_or(SystemTime::UNIX_EPOCH),
            insecure: self.settings.insecure,
        }
    }

    /// The stages reached so far, and when the Initial keys went.
    pub fn progress_so_far(&self) -> (&[StageEvent], Option<KeysDropped>) {
        (&self.stages, self.initial_keys_dropped)
    }

    pub fn is_finished(&self) -> bool {
        self.phase.is_finished()
    }

    pub fn take_outcome(&mut self) -> Option<Outcome> {
        self.phase.take_outcome()
    }

    /// When quiche's next timer fires, or the handshake deadline, whichever is first.
    pub fn next_wakeup(&self) -> Instant {
        let now = Instant::now();
        let quic = self.conn.timeout().map_or(self.deadline, |t| now + t);
        let wakeup = quic.min(self.deadline);
        self.hold_until.map_or(wakeup, |until| wakeup.min(until))
    }

    /// The connection ID the server's datagrams are addressed to.
    pub fn connection_key(&self) -> ConnectionKey {
        self.scid
    }

    /// An ICMP port unreachable came back for this connection's address.
    pub fn refuse(&mut self) {
        self.phase.refused();
    }

    /// Why the first flight could not leave at all (e.g. no route to an
    /// IPv6 address), once: the address is then treated as one that cannot
    /// be used, and the next is tried.
    pub fn take_start_error(&mut self) -> Option<io::Error> {
        self.start_error.take()
    }

    /// Our end of the connection for the report: the address the server
    /// sent to once it has, the bound one before.
    fn local_addr(&self) -> SocketAddr {
        self.local_ip_seen
            .map_or(self.local, |ip| SocketAddr::new(ip, self.local.port()))
    }

    /// Fires quiche's timer if it is due.
    pub fn fire_timer(&mut self) {
        if self.conn.timeout() == Some(Duration::ZERO) {
            self.conn.on_timeout();
        }
    }

    /// Sends everything quiche has to send, datagrams of one size together
    /// in one GSO send.
    pub fn flush(&mut self, scratch: &mut Scratch) {
        self.flush_into(scratch.send_space());
    }

    fn flush_into(&mut self, space: &mut SendSpace) {
        let max_segments = self.datapath.max_segments();
        datapath::send_all(self, space, max_segments);
        self.record_tls_messages(None);
    }

    /// What a datagram tells before it goes out: the TLS messages it carries
    /// and whether our Initial keys are gone. quiche drops them when it
    /// builds our first Handshake packet (RFC 9001 §4.9.1), right after the
    /// stages of the datagram that made it send one.
    fn on_datagram_built(&mut self, datagram: &[u8]) {
        self.record_tls_messages(None);
        if self.initial_keys_dropped.is_none() && flights::carries_handshake_packet(datagram) {
            self.initial_keys_dropped = Some(KeysDropped {
                t_ms: self.elapsed_ms(),
                after_stage: self.stages.len(),
            });
        }
    }

    /// One turn of the probe after the loop fed it: send, move on, send
    /// what moving on produced, and see whether it is over.
    pub fn step(&mut self, scratch: &mut Scratch) {
        self.flush(scratch);
        self.progress();
        self.flush(scratch);
        self.check_finished();
    }

    /// Notes HANDSHAKE_DONE; once the handshake is confirmed, makes the
    /// request an https:// URL asks for, then closes cleanly.
    fn progress(&mut self) {
        if self.phase.is_finished() {
            return;
        }
        self.send_early_data();
        // A client's handshake is confirmed by the HANDSHAKE_DONE frame and
        // nothing else (RFC 9001 §4.1.2): quiche sets this as it reads the
        // frame, in the `conn.recv` before this turn (vendor/quiche/PATCHES.md).
        let confirmed = self.conn.is_handshake_confirmed();
        if confirmed && !self.stages.iter().any(|s| s.stage == Stage::HandshakeDone) {
            self.push_stage(Stage::HandshakeDone);
        }
        let Some(at) = self.established_at else {
            return;
        };
        if self.phase.is_closing() || !(confirmed || at.elapsed() > HANDSHAKE_DONE_GRACE) {
            return;
        }
        let asked = !self.target.requests.is_empty();
        if asked && self.requests.is_none() && self.request_error.is_none() {
            self.start_requests();
        }
        let request_done = match self.requests.as_mut() {
            Some(requests) => requests.poll(&mut self.conn),
            None => true,
        };
        if request_done && !self.holding() {
            // Nothing more to ask: close cleanly (H3_NO_ERROR for h3).
            let code = if self.conn.application_proto() == b"h3" {
                0x100
            } else {
                0
            };
            let _ = self.conn.close(true, code, b"");
            self.phase.close(CloseReason::Done);
        }
    }

    fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// `--early-data`: the requests go out as soon as 0-RTT keys exist.
    fn send_early_data(&mut self) {
        let wanted = self.settings.early_data && !self.target.requests.is_empty();
        if wanted && self.requests.is_none() && self.conn.is_in_early_data() {
            self.start_requests();
            self.sent_early_data = self.requests.is_some();
        }
    }

    /// `--hold`: whether the connection should stay open, idle, a while longer.
    fn holding(&mut self) -> bool {
        let Some(hold) = self.settings.hold else {
            return false;
        };
        let now = Instant::now();
        let until = *self.hold_until.get_or_insert_with(|| now + hold);
        // The server's idle timeout may end it first; our deadline must not.
        self.deadline = self.deadline.max(until + Duration::from_secs(1));
        now < until
    }

    fn start_requests(&mut self) {
        let authority = self.target.authority();
        let requests = self.target.requests.clone();
        match Requests::start(
            &mut self.conn,
            &authority,
            requests,
            self.settings.body_digest,
        ) {
            Ok(requests) => {
                // The handshake deadline does not cover the download: only
                // -m does (quiche's idle timeout ends a stalled one).
                self.deadline = self.started + self.settings.transfer_limit();
                self.requests = Some(requests);
            }
            Err(error) => {
                if matches!(error, RequestError::Output(..)) {
                    self.write_error = Some(error.to_string());
                }
                self.request_error = Some(error.to_string());
            }
        }
    }

    /// Every response so far, in request order.
    fn responses(&self) -> Vec<Response> {
        self.requests
            .as_ref()
            .map(Requests::responses)
            .unwrap_or_default()
    }
}

impl DatagramSource for Probe {
    fn next_datagram(&mut self, space: &mut [u8]) -> Option<usize> {
        match self.conn.send(space) {
            Ok((len, _)) => {
                self.on_datagram_built(&space[..len]);
                Some(len)
            }
            Err(quiche::Error::Done) => None,
            Err(error) => {
                log::debug!("{}: quiche send: {error}", self.addr);
                None
            }
        }
    }

    fn transmit(&mut self, batch: &Batch<'_>) {
        match self.datapath.send(self.addr, batch.contents, batch.segment) {
            Ok(()) => batch.lengths().for_each(|len| self.flights.on_sent(len)),
            // Nothing ever left: the address cannot be reached from here.
            Err(error) if !self.flights.sent_any() && error.kind() != io::ErrorKind::WouldBlock => {
                log::debug!("{}: first send: {error}", self.addr);
                self.start_error = Some(error);
                self.phase.refused();
            }
            // A full buffer loses the datagrams; QUIC recovers.
            Err(error) => log::debug!("{}: send: {error}", self.addr),
        }
        self.phase.transmitted();
    }
}

fn random_connection_id() -> io::Result<ConnectionKey> {
    use ring::rand::SecureRandom;
    let mut id = [0u8; crate::engine::endpoint::CONNECTION_ID_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| io::Error::other("no randomness"))?;
    Ok(id)
}
