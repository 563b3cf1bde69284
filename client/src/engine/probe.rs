//! One connection attempt: a quiche client connection on its own UDP
//! socket, the stages it reached, the verdict on the server's chain, and how
//! it ended. The event loop drives it; it never blocks.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use quicprobe_verifier::{CheckedChain, PeerName, VerdictSlot};

use crate::engine::datapath::{self, Batch, DatagramSource, Datapath, Scratch};
use crate::engine::fingerprint::{self, ServerTraits};
use crate::engine::flights::{self, FlightLog, Received};
use crate::engine::handshake::{drain_messages, stage_of, Stage, StageEvent, Traffic};
use crate::engine::outcome::{Close, IdleEnd, Outcome, OutcomeKind, SessionReport};
use crate::engine::request::{Requests, Response};
use crate::engine::session;
use crate::engine::target::Target;

/// The largest UDP payload quicprobe sends or expects.
pub const MAX_DATAGRAM: usize = datapath::MAX_UDP_PAYLOAD;
/// How long to wait for HANDSHAKE_DONE once the handshake is complete.
const HANDSHAKE_DONE_GRACE: Duration = Duration::from_secs(2);

/// What each connection of a run shares.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub alpns: Vec<String>,
    pub sni: Option<String>,
    pub timeout: Duration,
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
}

impl ProbeSettings {
    /// A handshake with every option off: no SNI override, no key log or
    /// qlog, strict, no hold, no session, any local port.
    pub fn plain(alpns: Vec<String>, timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            alpns,
            sni: None,
            timeout,
            keylog: None,
            qlog_dir: None,
            insecure: false,
            idle_timeout,
            hold: None,
            session_file: None,
            early_data: false,
            local_ports: None,
        }
    }
}

/// A connection attempt in flight or finished.
pub struct Probe {
    pub target: Target,
    pub addr: SocketAddr,
    datapath: Datapath,
    local: SocketAddr,
    conn: quiche::Connection,
    peer_name: PeerName,
    sni: Option<String>,
    alpns: Vec<String>,
    started: Instant,
    timeout: Duration,
    deadline: Instant,
    requests: Option<Requests>,
    request_error: Option<String>,
    stages: Vec<StageEvent>,
    checked: Option<CheckedChain>,
    refused: bool,
    established_at: Option<Instant>,
    handshake_done: Arc<AtomicBool>,
    /// qlog is written to a file (`--qlog-dir`), so it must run to the end;
    /// otherwise it is only our HANDSHAKE_DONE detector and stops once that
    /// frame is seen.
    qlog_to_file: bool,
    /// Set once quicprobe has decided to close; the probe ends when the
    /// CONNECTION_CLOSE has gone out.
    closing: Option<CloseReason>,
    close_sent: bool,
    insecure: bool,
    finished: Option<Outcome>,
    scid_hex: String,
    flights: FlightLog,
    idle_timeout: Duration,
    hold: Option<Duration>,
    /// When the held connection is closed, once the request is done.
    hold_until: Option<Instant>,
    last_received: Instant,
    /// When we first sent a Handshake packet, dropping our Initial keys.
    initial_keys_dropped_ms: Option<f64>,
    session_file: Option<PathBuf>,
    early_data: bool,
    /// A saved session was offered for resumption.
    session_offered: bool,
    /// The requests went out as 0-RTT early data.
    sent_early_data: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseReason {
    Rejected,
    Done,
}

impl Probe {
    /// Opens the socket and creates the quiche connection. Nothing is sent yet.
    pub fn start(
        target: Target,
        addr: SocketAddr,
        config: &mut quiche::Config,
        settings: &ProbeSettings,
    ) -> io::Result<Self> {
        let socket = bind_local(addr, settings.local_ports)?;
        // Connected, so that an ICMP port unreachable comes back as ECONNREFUSED.
        socket.connect(addr)?;
        let datapath = Datapath::new(socket)?;
        let local = datapath.local_addr()?;
        let scid = random_connection_id()?;
        let sni = settings.sni.clone().or_else(|| target.default_sni());
        let conn = quiche::connect(
            sni.as_deref(),
            &quiche::ConnectionId::from_ref(&scid),
            local,
            addr,
            config,
        )
        .map_err(|error| io::Error::other(format!("QUIC connect: {error}")))?;
        let started = Instant::now();
        let handshake_done = Arc::new(AtomicBool::new(false));
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
            conn,
            sni,
            alpns: settings.alpns.clone(),
            started,
            timeout: settings.timeout,
            deadline: started + settings.timeout,
            requests: None,
            request_error: None,
            stages: Vec::new(),
            checked: None,
            refused: false,
            established_at: None,
            handshake_done: handshake_done.clone(),
            qlog_to_file: false,
            closing: None,
            close_sent: false,
            insecure: settings.insecure,
            finished: None,
            scid_hex: hex(&scid),
            flights: FlightLog::default(),
            idle_timeout: settings.idle_timeout,
            hold: settings.hold,
            hold_until: None,
            last_received: started,
            initial_keys_dropped_ms: None,
            session_file: settings.session_file.clone(),
            early_data: settings.early_data,
            session_offered: false,
            sent_early_data: false,
        };
        probe.offer_saved_session();
        probe.attach_keylog(settings.keylog.as_ref());
        probe.attach_qlog(settings.qlog_dir.as_ref(), handshake_done);
        Ok(probe)
    }

    /// `--session-file`: offers the ticket saved for this host and port.
    fn offer_saved_session(&mut self) {
        let Some(path) = self.session_file.clone() else {
            return;
        };
        match session::load(&path, &self.target.authority()) {
            Ok(Some(bytes)) => match self.conn.set_session(&bytes) {
                Ok(()) => self.session_offered = true,
                Err(error) => log::warn!("{}: session not usable: {error}", path.display()),
            },
            Ok(None) => {}
            Err(error) => log::warn!("{error}; not resuming"),
        }
    }

    /// Saves this connection's ticket, only if its chain was verified and
    /// accepted (a resumed session was, when it was first made).
    fn save_session(&self) {
        let Some(path) = &self.session_file else {
            return;
        };
        let verified = match &self.checked {
            Some(checked) => checked.verdict.accepted,
            None => self.conn.is_resumed(),
        };
        let Some(ticket) = self.conn.session().filter(|_| verified) else {
            return;
        };
        if let Err(error) = session::save(path, &self.target.authority(), ticket) {
            log::warn!("session not saved: {error}");
        }
    }

    fn attach_keylog(&mut self, keylog: Option<&PathBuf>) {
        use std::os::unix::fs::OpenOptionsExt;
        let Some(path) = keylog else { return };
        // TLS secrets: readable by the owner only (a file that exists keeps its mode).
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => self.conn.set_keylog(Box::new(file)),
            Err(error) => log::warn!("keylog {}: {error}", path.display()),
        }
    }

    /// quiche's qlog, always on: it is where the HANDSHAKE_DONE frame can be
    /// seen (quiche does not expose it), and it is teed to a file on request.
    fn attach_qlog(&mut self, dir: Option<&PathBuf>, handshake_done: Arc<AtomicBool>) {
        let file = dir.and_then(|dir| {
            let path = dir.join(format!("quicprobe-{}.sqlog", self.scid_hex));
            std::fs::File::create(&path)
                .map_err(|error| log::warn!("qlog {}: {error}", path.display()))
                .ok()
        });
        self.qlog_to_file = file.is_some();
        let tap = QlogTap {
            file,
            line: Vec::new(),
            handshake_done,
        };
        // Only packet_received events are looked at; the cheaper Core level
        // has them. A file gets quiche's default, Base.
        let level = if self.qlog_to_file {
            quiche::QlogLevel::Base
        } else {
            quiche::QlogLevel::Core
        };
        self.conn.set_qlog_with_level(
            Box::new(tap),
            "quicprobe".into(),
            format!(
                "quicprobe connect {}:{}",
                self.target.host, self.target.port
            ),
            level,
        );
    }

    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    pub fn take_outcome(&mut self) -> Option<Outcome> {
        self.finished.take()
    }

    /// When quiche's next timer fires, or the handshake deadline, whichever is first.
    pub fn next_wakeup(&self) -> Instant {
        let now = Instant::now();
        let quic = self.conn.timeout().map_or(self.deadline, |t| now + t);
        let wakeup = quic.min(self.deadline);
        self.hold_until.map_or(wakeup, |until| wakeup.min(until))
    }

    /// The socket, for registering with the poll.
    pub fn socket_mut(&mut self) -> &mut UdpSocket {
        self.datapath.socket_mut()
    }

    /// Reads every datagram waiting on the socket into quiche, a batch per
    /// system call.
    pub fn recv_all(&mut self, slot: &VerdictSlot, scratch: &mut Scratch) {
        loop {
            match self.datapath.recv_batch(scratch) {
                Ok(filled) => {
                    for (_, datagram) in scratch.received(filled) {
                        self.recv_datagram(datagram, slot);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                    self.refused = true;
                    return;
                }
                Err(error) => {
                    log::debug!("{}: recv: {error}", self.addr);
                    return;
                }
            }
        }
    }

    fn recv_datagram(&mut self, datagram: &mut [u8], slot: &VerdictSlot) {
        self.last_received = Instant::now();
        let claim = self.long_header_claim(datagram);
        let len = datagram.len();
        let info = quiche::RecvInfo {
            from: self.addr,
            to: self.local,
        };
        slot.expect_name(Some(self.peer_name.clone()));
        let processed_before = self
            .established_at
            .is_none()
            .then(|| self.conn.stats().recv);
        let result = self.conn.recv(datagram, info);
        let kind = match claim.filter(|claim| claim.taken(&self.conn)) {
            Some(claim) => {
                self.push_stage(claim.stage);
                claim.kind
            }
            None => Received::Other,
        };
        self.flights.on_received(len, kind);
        if kind == Received::Other && processed_before == Some(self.conn.stats().recv) {
            self.flights.on_unusable();
        }
        let verdict = slot.take();
        self.record_tls_messages(verdict);
        if let Err(error) = result {
            log::debug!("{}: quiche recv: {error}", self.addr);
        }
        self.stop_qlog_once_confirmed();
        if self.conn.is_established() && self.established_at.is_none() {
            self.established_at = Some(Instant::now());
            self.note_loss_recovery();
            self.flights.on_established();
        }
    }

    /// Probe timeouts and losses during the handshake mean the flights hold
    /// retransmissions (see [`flights::Disturbance`]).
    fn note_loss_recovery(&mut self) {
        if let Some(path) = self.conn.path_stats().next() {
            self.flights.on_recovery(path.total_pto_count, path.lost);
        }
    }

    /// Serialising qlog costs about a third of a download's client CPU, and
    /// once HANDSHAKE_DONE has been seen nobody reads it unless it goes to a
    /// file. Finishing the streamer makes quiche skip the serialisation.
    fn stop_qlog_once_confirmed(&mut self) {
        if self.qlog_to_file || !self.handshake_done.load(Ordering::Relaxed) {
            return;
        }
        if let Some(streamer) = self.conn.qlog_streamer() {
            // Err only when already finished, which is what we want.
            let _ = streamer.finish_log();
        }
    }

    /// What a long header claims: a Retry or a version negotiation, which
    /// only the packet header shows. Whether quiche took it is known only
    /// after `conn.recv` (see [`Claim::taken`]): a Retry with a bad integrity
    /// tag, a second Retry, or a version negotiation for other connection IDs
    /// or listing our own version are ignored, and are no round trip.
    fn long_header_claim(&self, datagram: &[u8]) -> Option<Claim> {
        const LONG_HEADER: u8 = 0x80;
        if datagram.first()? & LONG_HEADER == 0 {
            return None;
        }
        let mut copy = datagram.to_vec();
        let header = quiche::Header::from_slice(&mut copy, quiche::MAX_CONN_ID_LEN).ok()?;
        match header.ty {
            quiche::Type::Retry => Some(Claim {
                stage: Stage::Retry {
                    token_bytes: header.token.as_ref().map_or(0, Vec::len),
                },
                kind: Received::Retry,
                // A Retry quiche follows gives it a new destination ID.
                taken_if: TakenIf::DestinationChanges(self.conn.destination_id().to_vec()),
            }),
            quiche::Type::VersionNegotiation => {
                let versions = header.versions.clone().unwrap_or_default();
                Some(Claim {
                    taken_if: TakenIf::Now(self.takes_version_negotiation(&header, &versions)),
                    stage: Stage::VersionNegotiation {
                        offered: versions.iter().map(|v| version_name(*v)).collect(),
                    },
                    kind: Received::VersionNegotiation,
                })
            }
            _ => None,
        }
    }

    /// quiche's own tests for a version negotiation (RFC 9000 §6.2): the
    /// first, before any packet was processed, for our connection IDs, and
    /// not listing the version we speak.
    fn takes_version_negotiation(&self, header: &quiche::Header, versions: &[u32]) -> bool {
        let first = !self
            .stages
            .iter()
            .any(|s| matches!(s.stage, Stage::VersionNegotiation { .. }));
        first
            && self.conn.stats().recv == 0
            && header.dcid.as_ref() == self.conn.source_id().as_ref()
            && header.scid.as_ref() == self.conn.destination_id().as_ref()
            && !versions.contains(&quiche::PROTOCOL_VERSION)
    }

    /// Turns the TLS messages and the verdict of the last call into stages,
    /// the verdict right after the Certificate it judged.
    fn record_tls_messages(&mut self, verdict: Option<CheckedChain>) {
        let mut verdict = verdict;
        for message in drain_messages() {
            let Some(stage) = stage_of(&message, &self.alpns, self.sni.as_deref()) else {
                continue;
            };
            if self.stopped_by_verdict() {
                // BoringSSL reads CertificateVerify before it asks for the
                // verdict; after a rejection it is never processed.
                continue;
            }
            let is_certificate = matches!(stage, Stage::Certificate { .. });
            let stage = self.with_transport_parameters(stage);
            self.push_stage(stage);
            if is_certificate {
                if let Some(checked) = verdict.take() {
                    self.record_verdict(checked);
                }
            }
        }
        if let Some(checked) = verdict {
            self.record_verdict(checked);
        }
    }

    /// Whether the verdict ended the handshake: a rejection, unless `--insecure`.
    fn stopped_by_verdict(&self) -> bool {
        self.checked
            .as_ref()
            .is_some_and(|c| self.stopped_by_verdict_of(c))
    }

    fn stopped_by_verdict_of(&self, checked: &CheckedChain) -> bool {
        !checked.verdict.accepted && !self.insecure
    }

    fn with_transport_parameters(&self, stage: Stage) -> Stage {
        match stage {
            Stage::EncryptedExtensions { alpn, .. } => Stage::EncryptedExtensions {
                alpn,
                transport_parameters: self.conn.peer_transport_params().map(summarise_params),
            },
            other => other,
        }
    }

    fn record_verdict(&mut self, checked: CheckedChain) {
        self.push_stage(Stage::Verdict {
            accepted: checked.verdict.accepted,
            x509_error: checked.verdict.x509_error,
            reason: checked.reason().to_owned(),
        });
        if let (Some(code), true) = (
            checked.quic_error_code(),
            self.stopped_by_verdict_of(&checked),
        ) {
            // As aioquic does: a transport CONNECTION_CLOSE with 0x100 + alert
            // and the verdict's text as the reason phrase.
            let _ = self.conn.close(false, code, checked.reason().as_bytes());
            self.closing = Some(CloseReason::Rejected);
        }
        self.checked = Some(checked);
    }

    fn push_stage(&mut self, stage: Stage) {
        let stats = self.conn.stats();
        let traffic = Traffic {
            sent_bytes: stats.sent_bytes,
            sent_packets: stats.sent,
            recv_bytes: stats.recv_bytes,
            recv_packets: stats.recv,
        };
        self.stages
            .push(StageEvent::new(stage, self.started.elapsed(), traffic));
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
        let max_segments = self.datapath.max_segments();
        datapath::send_all(self, scratch, max_segments);
        self.record_tls_messages(None);
    }

    /// What a datagram tells before it goes out: the TLS messages it carries
    /// and whether our Initial keys are gone.
    fn on_datagram_built(&mut self, datagram: &[u8]) {
        self.record_tls_messages(None);
        if self.initial_keys_dropped_ms.is_none() && flights::carries_handshake_packet(datagram) {
            self.initial_keys_dropped_ms = Some(self.elapsed_ms());
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
        if self.finished.is_some() {
            return;
        }
        self.send_early_data();
        let confirmed = self.handshake_done.load(Ordering::Relaxed);
        if confirmed && !self.stages.iter().any(|s| s.stage == Stage::HandshakeDone) {
            self.push_stage(Stage::HandshakeDone);
        }
        let Some(at) = self.established_at else {
            return;
        };
        if self.closing.is_some() || !(confirmed || at.elapsed() > HANDSHAKE_DONE_GRACE) {
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
            self.closing = Some(CloseReason::Done);
        }
    }

    fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// `--early-data`: the requests go out as soon as 0-RTT keys exist.
    fn send_early_data(&mut self) {
        let wanted = self.early_data && !self.target.requests.is_empty();
        if wanted && self.requests.is_none() && self.conn.is_in_early_data() {
            self.start_requests();
            self.sent_early_data = self.requests.is_some();
        }
    }

    /// `--hold`: whether the connection should stay open, idle, a while longer.
    fn holding(&mut self) -> bool {
        let Some(hold) = self.hold else {
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
        match Requests::start(&mut self.conn, &authority, self.target.requests.clone()) {
            Ok(requests) => {
                // The handshake deadline does not cover the download.
                self.deadline = Instant::now() + self.timeout;
                self.requests = Some(requests);
            }
            Err(error) => self.request_error = Some(error.to_string()),
        }
    }

    /// Every response so far, in request order.
    fn responses(&self) -> Vec<Response> {
        self.requests
            .as_ref()
            .map(Requests::responses)
            .unwrap_or_default()
    }

    fn check_finished(&mut self) {
        if self.finished.is_some() {
            return;
        }
        let ended = self.refused
            || self.conn.is_closed()
            || (self.closing.is_some() && self.close_sent)
            || Instant::now() >= self.deadline;
        if ended {
            self.save_session();
            self.note_loss_recovery();
            let mut outcome = self.outcome();
            outcome.stdout_bodies = self
                .requests
                .as_mut()
                .map(Requests::take_stdout_bodies)
                .unwrap_or_default();
            self.finished = Some(outcome);
        }
    }

    fn outcome(&self) -> Outcome {
        let kind = self.outcome_kind();
        let mut outcome = Outcome::new(
            kind,
            &self.target,
            self.addr,
            self.stages.clone(),
            self.checked.clone(),
            self.close(),
            &self.conn,
            self.started.elapsed(),
        );
        outcome.responses = self.responses();
        outcome.response = outcome.responses.first().cloned();
        outcome.request_error.clone_from(&self.request_error);
        outcome.idle_end = self.idle_end();
        outcome.initial_keys_dropped_ms = self.initial_keys_dropped_ms;
        outcome.insecure = self.insecure;
        outcome.session = self.session_file.as_ref().map(|_| SessionReport {
            offered: self.session_offered,
            resumed: self.conn.is_resumed(),
            early_data: self
                .sent_early_data
                .then(|| session::early_data_reason(self.conn.early_data_reason())),
        });
        // Nothing to say about flights when the server never answered.
        outcome.flights = Some(self.flights.report()).filter(|f| f.server_flight.datagrams > 0);
        outcome.server_guess = self.conn.peer_transport_params().map(|params| {
            let mut traits = ServerTraits::from_params(params);
            traits.group.clone_from(&outcome.tls.group);
            fingerprint::guess(&traits)
        });
        outcome.explanation = outcome.explain();
        outcome
    }

    /// Whose idle timeout ended an established connection, if one did.
    fn idle_end(&self) -> Option<IdleEnd> {
        let established = self.established_at?;
        if !self.conn.is_timed_out() {
            return None;
        }
        let server_ms = self
            .conn
            .peer_transport_params()
            .map_or(0, |p| p.max_idle_timeout);
        let ours_ms = u64::try_from(self.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        // Zero means "no idle timeout" (RFC 9000 §10.1); the shorter one rules.
        let by_server = server_ms != 0 && server_ms < ours_ms;
        Some(IdleEnd {
            by: if by_server { "server" } else { "client" },
            server_idle_timeout_ms: server_ms,
            our_idle_timeout_ms: ours_ms,
            idle_ms: millis(self.last_received.max(established).elapsed()),
            connected_ms: millis(established.elapsed()),
        })
    }

    fn outcome_kind(&self) -> OutcomeKind {
        if self.stopped_by_verdict() {
            return OutcomeKind::VerificationFailed;
        }
        if self.established_at.is_some() {
            let responses = self.responses();
            let unfinished = responses.iter().any(|r| !r.complete && r.error.is_none());
            if unfinished && self.closing.is_none() {
                // Only a connection that is still open, or that quiche's
                // idle timer ended, has stalled; a close from either side
                // or a stateless reset ended it.
                let ended = self.conn.peer_error().is_some()
                    || self.conn.local_error().is_some()
                    || (self.conn.is_closed() && !self.conn.is_timed_out());
                return if ended {
                    OutcomeKind::PartialResponse
                } else {
                    OutcomeKind::Timeout
                };
            }
            // A body cut short, reset, or longer or shorter than declared.
            if responses.iter().any(|r| r.error.is_some()) {
                return OutcomeKind::PartialResponse;
            }
            // An application close, or a transport NO_ERROR, ends it cleanly.
            if self
                .conn
                .peer_error()
                .is_none_or(|e| e.is_app || e.error_code == 0)
            {
                return OutcomeKind::Ok;
            }
        }
        if self.refused {
            return OutcomeKind::Refused;
        }
        if self.conn.peer_error().is_some() || self.conn.local_error().is_some() {
            return OutcomeKind::HandshakeFailed;
        }
        if self.conn.is_closed() && !self.conn.is_timed_out() {
            return OutcomeKind::HandshakeFailed;
        }
        OutcomeKind::Timeout
    }

    fn close(&self) -> Option<Close> {
        if let Some(error) = self.conn.peer_error() {
            return Some(Close::from_error("server", error));
        }
        self.conn
            .local_error()
            .map(|error| Close::from_error("client", error))
    }
}

/// A Retry or version negotiation seen in a long header, to be traced only
/// if quiche takes it.
struct Claim {
    stage: Stage,
    kind: Received,
    taken_if: TakenIf,
}

enum TakenIf {
    /// Known before `conn.recv`, from quiche's own rules.
    Now(bool),
    /// The destination connection ID before `conn.recv`.
    DestinationChanges(Vec<u8>),
}

impl Claim {
    fn taken(&self, conn: &quiche::Connection) -> bool {
        match &self.taken_if {
            TakenIf::Now(taken) => *taken,
            TakenIf::DestinationChanges(before) => {
                conn.destination_id().as_ref() != before.as_slice()
            }
        }
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
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                self.refused = true;
            }
            // A full buffer loses the datagrams; QUIC recovers.
            Err(error) => log::debug!("{}: send: {error}", self.addr),
        }
        if self.closing.is_some() {
            self.close_sent = true;
        }
    }
}

/// Watches quiche's qlog for a received HANDSHAKE_DONE frame, and copies it
/// to a file when one is asked for.
struct QlogTap {
    file: Option<std::fs::File>,
    line: Vec<u8>,
    handshake_done: Arc<AtomicBool>,
}

impl QlogTap {
    /// A longer line is cut; one packet's event is far shorter.
    const MAX_LINE: usize = 64 * 1024;

    fn push_capped(&mut self, bytes: &[u8]) {
        let room = Self::MAX_LINE.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Looks at one complete line, then clears it (keeping its allocation).
    fn take_line(&mut self) {
        let has = |needle: &[u8]| memchr::memmem::find(&self.line, needle).is_some();
        if has(b"packet_received") && has(b"\"handshake_done\"") {
            self.handshake_done.store(true, Ordering::Relaxed);
        }
        self.line.clear();
    }
}

impl Write for QlogTap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(file) = self.file.as_mut() {
            file.write_all(buf)?;
        }
        // Once HANDSHAKE_DONE is seen there is nothing left to look for: a
        // download's events pass straight through (they cost 30% of the CPU
        // of a bulk download when every byte was still scanned).
        if self.handshake_done.load(Ordering::Relaxed) {
            self.line.clear();
            return Ok(buf.len());
        }
        let mut rest = buf;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            self.push_capped(&rest[..end]);
            self.take_line();
            rest = &rest[end + 1..];
        }
        self.push_capped(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// A QUIC version as people know it, e.g. "0x6b3343cf (QUIC v2)".
fn version_name(version: u32) -> String {
    let name = match version {
        0x0000_0001 => Some("QUIC v1"),
        0x6b33_43cf => Some("QUIC v2"),
        0xff00_001d => Some("draft-29"),
        v if v & 0x0f0f_0f0f == 0x0a0a_0a0a => Some("reserved, to exercise negotiation"),
        _ => None,
    };
    match name {
        Some(name) => format!("0x{version:08x} ({name})"),
        None => format!("0x{version:08x}"),
    }
}

fn summarise_params(params: &quiche::TransportParams) -> String {
    let unknown: Vec<String> = params
        .unknown_params
        .iter()
        .flatten()
        .map(|p| format!("0x{:x}", p.id))
        .collect();
    format!(
        "max_idle_timeout={}ms max_udp_payload_size={} initial_max_data={} \
         initial_max_streams_bidi={} initial_max_streams_uni={} active_connection_id_limit={}{}",
        params.max_idle_timeout,
        params.max_udp_payload_size,
        params.initial_max_data,
        params.initial_max_streams_bidi,
        params.initial_max_streams_uni,
        params.active_conn_id_limit,
        if unknown.is_empty() {
            String::new()
        } else {
            format!(" other={}", unknown.join(","))
        }
    )
}

fn random_connection_id() -> io::Result<Vec<u8>> {
    use ring::rand::SecureRandom;
    let mut id = vec![0u8; quiche::MAX_CONN_ID_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| io::Error::other("no randomness"))?;
    Ok(id)
}

/// A socket of the target's family, on a port of `--local-port` if given.
fn bind_local(target: SocketAddr, ports: Option<(u16, u16)>) -> io::Result<UdpSocket> {
    let any: std::net::IpAddr = if target.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let Some((first, last)) = ports else {
        return UdpSocket::bind(SocketAddr::new(any, 0));
    };
    let mut last_error = io::Error::other("empty --local-port range");
    for port in first..=last {
        match UdpSocket::bind(SocketAddr::new(any, port)) {
            Ok(socket) => return Ok(socket),
            Err(error) => last_error = error,
        }
    }
    Err(io::Error::new(
        last_error.kind(),
        format!("--local-port {first}-{last}: no free port ({last_error})"),
    ))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
