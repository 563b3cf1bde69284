//! The run's UDP endpoint: one socket per address family, shared by every
//! connection of the run and demultiplexed by connection ID, as a QUIC
//! server's is. A scan of thousands of targets at once then holds two file
//! descriptors, not one per connection, and one batched receive serves every
//! connection with something to read.
//!
//! Each connection's packets come to the source connection ID it chose
//! ([`destination_id`]). A datagram that names no connection of the run
//! (garbage, a stateless reset) goes, as a connected socket would have
//! delivered it, to the one connection to the address it came from, if only
//! one is; one addressed to a connection that has ended is dropped, as a
//! closed socket would have refused it ([`Endpoint::job_for`]). A refusal is
//! matched through the error queue by the refused datagram's own header or,
//! failing that, by its destination ([`Endpoint::refused_connections`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use mio::{Interest, Registry, Token};

use crate::engine::datapath::{self, Datapath, Refusal};

/// The length of every source connection ID quicprobe chooses.
pub const CONNECTION_ID_LEN: usize = quiche::MAX_CONN_ID_LEN;

/// A connection ID as the endpoint keys its connections.
pub type ConnectionKey = [u8; CONNECTION_ID_LEN];

/// The two sockets' poll tokens, beside the waker's `usize::MAX`.
const TOKENS: [Token; 2] = [Token(usize::MAX - 1), Token(usize::MAX - 2)];

/// The sockets of a run, made when the first connection of their family starts.
pub struct Endpoint {
    /// IPv4 first, then IPv6.
    sockets: [Option<Arc<Datapath>>; 2],
    /// `--local-port N[-M]`: the ports to bind, first free one wins.
    local_ports: Option<(u16, u16)>,
    /// Each connection in flight, by the connection ID it chose.
    connections: HashMap<ConnectionKey, Connection>,
    /// The connections in flight to each server address.
    peers: HashMap<SocketAddr, Vec<usize>>,
    /// The IDs of connections that ended, the latest `RETIRED_KEPT`.
    retired: HashSet<ConnectionKey>,
    retired_order: VecDeque<ConnectionKey>,
}

/// How many ended connections' IDs are remembered, so that a server's late
/// datagrams to them are dropped rather than taken for another connection's.
const RETIRED_KEPT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Connection {
    index: usize,
    peer: SocketAddr,
}

impl Endpoint {
    pub fn new(local_ports: Option<(u16, u16)>) -> Self {
        Self {
            sockets: [None, None],
            local_ports,
            connections: HashMap::new(),
            peers: HashMap::new(),
            retired: HashSet::new(),
            retired_order: VecDeque::new(),
        }
    }

    /// The shared socket for connections to `peer`, bound and registered
    /// with the poll the first time it is asked for.
    pub fn socket_for(
        &mut self,
        peer: SocketAddr,
        registry: &Registry,
    ) -> io::Result<Arc<Datapath>> {
        let family = family_of(peer);
        if let Some(socket) = &self.sockets[family] {
            return Ok(Arc::clone(socket));
        }
        let mut socket = bind_local(peer, self.local_ports)?;
        registry.register(&mut socket, TOKENS[family], Interest::READABLE)?;
        let datapath = Arc::new(Datapath::for_connections(socket)?);
        log::info!("{}", datapath.describe());
        self.sockets[family] = Some(Arc::clone(&datapath));
        Ok(datapath)
    }

    /// The socket a poll token stands for, if it is one of ours.
    pub fn socket_of(&self, token: Token) -> Option<Arc<Datapath>> {
        let family = TOKENS.iter().position(|t| *t == token)?;
        self.sockets[family].clone()
    }

    /// Notes which job a connection ID belongs to, while it is in flight.
    pub fn add(&mut self, key: ConnectionKey, index: usize, peer: SocketAddr) {
        let peer = plain(peer);
        self.connections.insert(key, Connection { index, peer });
        self.peers.entry(peer).or_default().push(index);
    }

    /// The connection has ended: its ID is retired.
    pub fn remove(&mut self, key: &ConnectionKey) {
        let Some(connection) = self.connections.remove(key) else {
            return;
        };
        if let Some(jobs) = self.peers.get_mut(&connection.peer) {
            jobs.retain(|index| *index != connection.index);
            if jobs.is_empty() {
                self.peers.remove(&connection.peer);
            }
        }
        if self.retired_order.len() == RETIRED_KEPT {
            if let Some(oldest) = self.retired_order.pop_front() {
                self.retired.remove(&oldest);
            }
        }
        self.retired.insert(*key);
        self.retired_order.push_back(*key);
    }

    /// The job a datagram from `from` is for: the connection whose ID it
    /// is addressed to; none if that connection has ended; else the only
    /// connection to `from`, if there is only one.
    pub fn job_for(&self, datagram: &[u8], from: SocketAddr) -> Option<usize> {
        if let Some(key) = destination_id(datagram) {
            if let Some(connection) = self.connections.get(key) {
                return Some(connection.index);
            }
            if self.retired.contains(key) {
                return None;
            }
        }
        match self.peers.get(&plain(from))?.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    }

    /// The jobs a refusal ends: the one whose connection ID the refused
    /// datagram carries (our Initial's source ID), or else every one sent to
    /// the refused address, since a closed port refuses them all.
    pub fn refused_connections(&self, refusal: &Refusal) -> Vec<usize> {
        let named =
            source_id_of_long_header(&refusal.quoted).and_then(|key| self.connections.get(key));
        if let Some(connection) = named {
            return vec![connection.index];
        }
        self.peers
            .get(&plain(refusal.destination))
            .cloned()
            .unwrap_or_default()
    }
}

/// An address as the endpoint compares them: IP and port only (an IPv6
/// flow label or scope a datagram reports is not part of the server's name).
fn plain(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip(), addr.port())
}

fn family_of(peer: SocketAddr) -> usize {
    usize::from(peer.is_ipv6())
}

/// The connection ID a datagram is addressed to: after the first byte in a
/// short header, after the version and a length byte in a long one (RFC 9000
/// §17.2, §17.3). Only IDs of our length can be ours.
pub fn destination_id(datagram: &[u8]) -> Option<&ConnectionKey> {
    const LONG_HEADER: u8 = 0x80;
    let first = *datagram.first()?;
    let start = if first & LONG_HEADER == 0 {
        1
    } else {
        if usize::from(*datagram.get(5)?) != CONNECTION_ID_LEN {
            return None;
        }
        6
    };
    datagram
        .get(start..start + CONNECTION_ID_LEN)?
        .try_into()
        .ok()
}

/// The source connection ID of a long header, if it has our length.
fn source_id_of_long_header(datagram: &[u8]) -> Option<&ConnectionKey> {
    const LONG_HEADER: u8 = 0x80;
    if datagram.first()? & LONG_HEADER == 0 {
        return None;
    }
    let destination_len = usize::from(*datagram.get(5)?);
    let at = 6 + destination_len;
    if usize::from(*datagram.get(at)?) != CONNECTION_ID_LEN {
        return None;
    }
    datagram
        .get(at + 1..at + 1 + CONNECTION_ID_LEN)?
        .try_into()
        .ok()
}

/// A socket of the peer's family, on a port of `--local-port` if given.
fn bind_local(peer: SocketAddr, ports: Option<(u16, u16)>) -> io::Result<mio::net::UdpSocket> {
    let any: IpAddr = if peer.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let Some((first, last)) = ports else {
        return datapath::bind_udp(SocketAddr::new(any, 0), None);
    };
    let mut last_error = io::Error::other("empty --local-port range");
    for port in first..=last {
        match datapath::bind_udp(SocketAddr::new(any, port), None) {
            Ok(socket) => return Ok(socket),
            Err(error) => last_error = error,
        }
    }
    Err(io::Error::new(
        last_error.kind(),
        format!("--local-port {first}-{last}: no free port ({last_error})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: ConnectionKey = [7; CONNECTION_ID_LEN];

    fn long_header(destination: &[u8], source: &[u8]) -> Vec<u8> {
        let mut packet = vec![0xc0, 0, 0, 0, 1];
        packet.push(u8::try_from(destination.len()).unwrap());
        packet.extend_from_slice(destination);
        packet.push(u8::try_from(source.len()).unwrap());
        packet.extend_from_slice(source);
        packet.extend_from_slice(&[0; 30]);
        packet
    }

    #[test]
    fn a_short_header_is_addressed_by_the_bytes_after_its_first() {
        let mut packet = vec![0x40];
        packet.extend_from_slice(&OURS);
        packet.extend_from_slice(&[1, 2, 3]);
        assert_eq!(destination_id(&packet), Some(&OURS));
        assert_eq!(destination_id(&packet[..10]), None);
    }

    #[test]
    fn a_long_header_is_addressed_only_by_an_id_of_our_length() {
        assert_eq!(destination_id(&long_header(&OURS, &[1; 8])), Some(&OURS));
        assert_eq!(destination_id(&long_header(&[7; 8], &OURS)), None);
        assert_eq!(destination_id(&[0xc0, 0, 0]), None);
        assert_eq!(destination_id(&[]), None);
    }

    #[test]
    fn a_refused_initial_names_its_connection_by_its_source_id() {
        let refusal = Refusal {
            destination: "127.0.0.1:4433".parse().unwrap(),
            quoted: long_header(&[9; 8], &OURS),
        };
        let mut endpoint = Endpoint::new(None);
        endpoint.add(OURS, 3, refusal.destination);
        endpoint.add([8; CONNECTION_ID_LEN], 4, refusal.destination);
        assert_eq!(endpoint.refused_connections(&refusal), vec![3]);
    }

    #[test]
    fn a_refusal_without_a_known_id_ends_every_connection_to_that_address() {
        let refusal = Refusal {
            destination: "127.0.0.1:4433".parse().unwrap(),
            quoted: vec![0x40, 1, 2],
        };
        let mut endpoint = Endpoint::new(None);
        endpoint.add(OURS, 3, "127.0.0.1:4434".parse().unwrap());
        endpoint.add([8; CONNECTION_ID_LEN], 4, refusal.destination);
        assert_eq!(endpoint.refused_connections(&refusal), vec![4]);
    }

    #[test]
    fn a_datagram_naming_no_connection_goes_to_the_only_one_to_its_sender() {
        let server: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let mut endpoint = Endpoint::new(None);
        endpoint.add(OURS, 3, server);
        let garbage = [0x41; 40];
        assert_eq!(endpoint.job_for(&garbage, server), Some(3));
        assert_eq!(
            endpoint.job_for(&garbage, "127.0.0.1:9".parse().unwrap()),
            None
        );
        endpoint.add([8; CONNECTION_ID_LEN], 4, server);
        assert_eq!(
            endpoint.job_for(&garbage, server),
            None,
            "two to choose from"
        );
    }

    #[test]
    fn a_datagram_for_an_ended_connection_is_dropped_not_given_to_another() {
        let server: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let mut endpoint = Endpoint::new(None);
        endpoint.add(OURS, 3, server);
        endpoint.remove(&OURS);
        endpoint.add([8; CONNECTION_ID_LEN], 4, server);
        let mut late = vec![0x40];
        late.extend_from_slice(&OURS);
        assert_eq!(endpoint.job_for(&late, server), None);
        let mut current = vec![0x40];
        current.extend_from_slice(&[8; CONNECTION_ID_LEN]);
        assert_eq!(endpoint.job_for(&current, server), Some(4));
    }
}
