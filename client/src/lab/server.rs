//! The server loop: one UDP socket and every client connection on it;
//! new clients are accepted here (version negotiation, Retry and its
//! tokens), datagrams are routed to their connection, and what the
//! connections have to send goes out in batches.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::config::server_config;
use super::connection::LabConnection;
use super::{LabError, LabEvent, LabSpec, MAX_DATAGRAM};
use crate::engine::datapath::{self, Batch, DatagramSource, Datapath, Scratch};
use crate::hex::hex;

/// The smallest datagram a client's Initial may come in (RFC 9000 §14.1).
const MIN_CLIENT_INITIAL_DATAGRAM: usize = 1200;
/// How often the loop looks at the stop flag when nothing else happens.
const STOP_CHECK: Duration = Duration::from_millis(50);

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
    /// The connections that received a datagram or fired a timer since the
    /// last flush: only they can have something new to send. (Flushing all
    /// of them on every wake-up cost the lab 1.4-1.8x CPU per handshake at
    /// 200 in flight once clients answered each datagram.)
    touched: Vec<Vec<u8>>,
}

const SOCKET: Token = Token(0);

impl LabServer {
    /// Binds the socket and loads the chain and key.
    pub fn bind(spec: &LabSpec) -> Result<Self, LabError> {
        let config = server_config(spec)?;
        let socket = datapath::bind_udp(spec.listen, None).map_err(|source| LabError::Listen {
            addr: spec.listen,
            source,
        })?;
        let poll = Poll::new()?;
        let datapath = Datapath::new(socket)?;
        let local = datapath.local_addr();
        let mut server = Self {
            poll,
            datapath,
            local,
            config,
            retry: spec.retry,
            connection_id_key: random_hmac_key()?,
            token_key: random_hmac_key()?,
            connections: HashMap::new(),
            touched: Vec::new(),
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
        for (key, connection) in self.connections.iter_mut() {
            if connection.conn.timeout() == Some(Duration::ZERO) {
                connection.conn.on_timeout();
                self.touched.push(key.clone());
            }
        }
    }

    fn touch(&mut self, key: &[u8]) {
        // A burst of datagrams for one connection is noted once.
        if self.touched.last().map(Vec::as_slice) != Some(key) {
            self.touched.push(key.to_vec());
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
        self.touch(&key);
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

    /// Sends what each touched connection has to send, datagrams of one size
    /// together in one GSO send.
    fn flush_sends(&mut self, scratch: &mut Scratch) {
        let max_segments = self.datapath.max_segments();
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for key in touched.drain(..) {
            let Some(connection) = self.connections.get_mut(&key) else {
                continue;
            };
            let mut source = LabSource {
                connection,
                datapath: &self.datapath,
            };
            datapath::send_all(&mut source, scratch.send_space(), max_segments);
        }
        // Empty again; its capacity is kept for the next turn.
        self.touched = touched;
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

fn random_hmac_key() -> Result<hmac::Key, LabError> {
    let rng = SystemRandom::new();
    let mut seed = [0u8; 32];
    rng.fill(&mut seed)
        .map_err(|_| io::Error::other("no randomness"))?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &seed))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
        let initial_len = crate::engine::flights::long_packet_len(&second_flight, 0)
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
