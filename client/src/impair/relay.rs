//! The relay: one listening socket, one upstream socket per client, one
//! mio loop; it applies the fates to the datagrams it moves, holds some back
//! to reorder them and queues the delayed ones on a timer heap.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::fate::{decide, delay_for, displaced, flip_bit, shuffle_order, truncate, Fate};
use super::impairments::{Impairments, Path};
use super::rng::Rng;
use super::{check_loopback, Counters, ImpairError};
use crate::engine::datapath::bind_udp;

/// How often the loop looks at the stop flag when nothing else happens.
const STOP_CHECK: Duration = Duration::from_millis(50);
/// The largest datagram UDP can carry.
const MAX_DATAGRAM: usize = 65_535;
/// Socket buffers large enough that a bulk download is impaired by our
/// choices, not by the kernel dropping what the relay could not read yet.
const SOCKET_BUFFER: usize = 4 << 20;
/// A client silent this long is forgotten (its upstream socket closed).
const FLOW_IDLE: Duration = Duration::from_secs(60);
/// At most this many clients at once; the least recently active goes first,
/// so that a long run cannot exhaust file descriptors.
const MAX_FLOWS: usize = 4096;
/// At most this many datagrams wait in the delay queue (about 90 MB of
/// full-size datagrams); more are dropped and counted as `overflowed`.
const MAX_DELAYED: usize = 65_536;
/// The listening socket's token; flows count up from 1.
const LISTEN: Token = Token(0);

/// One datagram on its way.
#[derive(Debug, Clone)]
struct Datagram {
    client: SocketAddr,
    path: Path,
    bytes: Vec<u8>,
}

/// A datagram waiting for its delay to pass; ordered so that the heap pops
/// the earliest first, and equal times in arrival order.
#[derive(Debug)]
struct Scheduled {
    due: Instant,
    seq: u64,
    datagram: Datagram,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // Reversed: BinaryHeap is a max-heap.
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// The hold-back window of one client and path.
#[derive(Debug, Default)]
struct HoldBack {
    held: Vec<Datagram>,
    since: Option<Instant>,
}

impl HoldBack {
    fn deadline(&self, hold: Duration) -> Option<Instant> {
        self.since.map(|since| since + hold)
    }

    fn take(&mut self) -> Vec<Datagram> {
        self.since = None;
        std::mem::take(&mut self.held)
    }
}

/// One client: its own socket to the upstream server (so the server sees
/// one address per client, as behind a NAT), and its hold-back windows.
struct Flow {
    socket: UdpSocket,
    token: Token,
    last_active: Instant,
    to_server: HoldBack,
    to_client: HoldBack,
}

impl Flow {
    fn hold(&mut self, path: Path) -> &mut HoldBack {
        match path {
            Path::ToServer => &mut self.to_server,
            Path::ToClient => &mut self.to_client,
        }
    }
}

/// The relay: one listening socket, one upstream socket per client, one
/// mio loop, one PRNG.
pub struct Relay {
    poll: Poll,
    listen: UdpSocket,
    local: SocketAddr,
    upstream: SocketAddr,
    impairments: Impairments,
    rng: Rng,
    flows: HashMap<SocketAddr, Flow>,
    clients_by_token: HashMap<Token, SocketAddr>,
    next_token: usize,
    /// Datagrams seen on the impaired paths, for the black hole.
    impaired_seen: u64,
    timers: BinaryHeap<Scheduled>,
    next_seq: u64,
    counters: Counters,
    last_sweep: Instant,
}

impl Relay {
    /// Binds `listen` and prepares to relay to `upstream`; both must be loopback.
    pub fn bind(
        listen: SocketAddr,
        upstream: SocketAddr,
        impairments: Impairments,
    ) -> Result<Self, ImpairError> {
        check_loopback(listen)?;
        check_loopback(upstream)?;
        if upstream.port() == 0 {
            return Err(ImpairError::NoUpstreamPort(upstream));
        }
        if listen == upstream {
            return Err(ImpairError::Loop(listen));
        }
        let mut socket =
            bind_udp(listen, Some(SOCKET_BUFFER)).map_err(|e| ImpairError::Bind(listen, e))?;
        let local = socket.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut socket, LISTEN, Interest::READABLE)?;
        Ok(Self {
            poll,
            listen: socket,
            local,
            upstream,
            rng: Rng::new(impairments.seed),
            impairments,
            flows: HashMap::new(),
            clients_by_token: HashMap::new(),
            next_token: 1,
            impaired_seen: 0,
            timers: BinaryHeap::new(),
            next_seq: 0,
            counters: Counters::default(),
            last_sweep: Instant::now(),
        })
    }

    /// The address it listens on (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Relays until `stop` is set; returns what it did.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Counters, ImpairError> {
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !stop.load(Ordering::SeqCst) {
            let timeout = self.next_wakeup(Instant::now());
            match self.poll.poll(&mut events, Some(timeout)) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            }
            for event in events.iter() {
                match event.token() {
                    LISTEN => self.recv_from_clients(&mut buf)?,
                    token => self.recv_from_server(token, &mut buf),
                }
            }
            let now = Instant::now();
            self.release_overdue_holds(now);
            self.send_due(now);
            self.forget_idle_flows(now);
        }
        Ok(self.counters)
    }

    /// The poll timeout: the next delayed datagram or hold-back deadline,
    /// and never longer than the stop check.
    fn next_wakeup(&self, now: Instant) -> Duration {
        let hold = self.impairments.reorder_hold;
        let holds = self
            .flows
            .values()
            .flat_map(|f| [f.to_server.deadline(hold), f.to_client.deadline(hold)])
            .flatten();
        let timer = self.timers.peek().map(|s| s.due);
        holds.chain(timer).min().map_or(STOP_CHECK, |due| {
            due.saturating_duration_since(now).min(STOP_CHECK)
        })
    }

    /// Drains the listening socket (mio is edge-triggered).
    fn recv_from_clients(&mut self, buf: &mut [u8]) -> Result<(), ImpairError> {
        loop {
            let (len, client) = match self.listen.recv_from(buf) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // An ICMP error for an earlier send to a client that has gone.
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(error) => return Err(error.into()),
            };
            // The listening socket is on loopback, so this holds; checked
            // anyway because the relay must never send off the machine.
            if !client.ip().is_loopback() {
                continue;
            }
            if self.ensure_flow(client).is_err() {
                self.counters.send_errors += 1;
                continue;
            }
            self.impair(Datagram {
                client,
                path: Path::ToServer,
                bytes: buf[..len].to_vec(),
            });
        }
    }

    /// Drains one client's upstream socket.
    fn recv_from_server(&mut self, token: Token, buf: &mut [u8]) {
        let Some(&client) = self.clients_by_token.get(&token) else {
            return;
        };
        loop {
            let Some(flow) = self.flows.get_mut(&client) else {
                return;
            };
            let len = match flow.socket.recv(buf) {
                Ok(len) => len,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                // The server is not there (ICMP port unreachable): as a real
                // network would, say nothing to the client.
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(error) => {
                    log::debug!("upstream socket of {client}: {error}");
                    return;
                }
            };
            flow.last_active = Instant::now();
            self.impair(Datagram {
                client,
                path: Path::ToClient,
                bytes: buf[..len].to_vec(),
            });
        }
    }

    /// The client's flow, made (with its own upstream socket) on its first datagram.
    fn ensure_flow(&mut self, client: SocketAddr) -> io::Result<()> {
        let now = Instant::now();
        if let Some(flow) = self.flows.get_mut(&client) {
            flow.last_active = now;
            return Ok(());
        }
        if self.flows.len() >= MAX_FLOWS {
            self.forget_least_recent();
        }
        let local = match self.upstream.ip() {
            IpAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
            IpAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
        };
        let mut socket = bind_udp(local, Some(SOCKET_BUFFER))?;
        socket.connect(self.upstream)?;
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)?;
        self.clients_by_token.insert(token, client);
        self.flows.insert(
            client,
            Flow {
                socket,
                token,
                last_active: now,
                to_server: HoldBack::default(),
                to_client: HoldBack::default(),
            },
        );
        self.counters.clients += 1;
        Ok(())
    }

    /// Applies the impairments to one datagram and queues what survives.
    fn impair(&mut self, mut datagram: Datagram) {
        if !self.impairments.direction.covers(datagram.path) {
            self.send(datagram);
            return;
        }
        let index = self.impaired_seen;
        self.impaired_seen += 1;
        match decide(
            &self.impairments,
            &mut self.rng,
            index,
            datagram.bytes.len(),
        ) {
            Fate::Blackholed => self.counters.blackholed += 1,
            Fate::Lost => self.counters.dropped += 1,
            Fate::Passes {
                flip_bit: bit,
                duplicated,
            } => {
                if let Some(bit) = bit {
                    flip_bit(&mut datagram.bytes, bit);
                    self.counters.corrupted += 1;
                }
                if truncate(&mut datagram.bytes, self.impairments.truncate) {
                    self.counters.truncated += 1;
                }
                if duplicated {
                    self.counters.duplicated += 1;
                    self.hold_back(datagram.clone());
                }
                self.hold_back(datagram);
            }
        }
    }

    /// Puts a datagram in its hold-back window, releasing the window
    /// shuffled when full; straight on when reordering is off.
    fn hold_back(&mut self, datagram: Datagram) {
        let window = self.impairments.reorder_window;
        if window <= 1 {
            self.schedule(datagram);
            return;
        }
        let Some(flow) = self.flows.get_mut(&datagram.client) else {
            self.counters.send_errors += 1;
            return;
        };
        let hold = flow.hold(datagram.path);
        hold.since.get_or_insert_with(Instant::now);
        hold.held.push(datagram);
        if hold.held.len() >= window {
            let held = hold.take();
            self.release_shuffled(held);
        }
    }

    /// Releases held datagrams in a random order.
    fn release_shuffled(&mut self, held: Vec<Datagram>) {
        let order = shuffle_order(&mut self.rng, held.len());
        self.counters.reordered += displaced(&order);
        let mut slots: Vec<Option<Datagram>> = held.into_iter().map(Some).collect();
        for arrival in order {
            if let Some(datagram) = slots[arrival].take() {
                self.schedule(datagram);
            }
        }
    }

    /// Windows that have held a datagram for the longest allowed go out as they are.
    fn release_overdue_holds(&mut self, now: Instant) {
        let hold = self.impairments.reorder_hold;
        let mut overdue = Vec::new();
        for flow in self.flows.values_mut() {
            for window in [&mut flow.to_server, &mut flow.to_client] {
                if window.deadline(hold).is_some_and(|due| due <= now) {
                    overdue.push(window.take());
                }
            }
        }
        for held in overdue {
            self.release_shuffled(held);
        }
    }

    /// Sends now, or queues until the delay has passed.
    fn schedule(&mut self, datagram: Datagram) {
        let delay = delay_for(
            &mut self.rng,
            self.impairments.delay,
            self.impairments.jitter,
        );
        let due = Instant::now().checked_add(delay);
        let Some(due) = due.filter(|_| !delay.is_zero()) else {
            self.send(datagram);
            return;
        };
        // A flood into a long delay must not grow memory without bound.
        if self.timers.len() >= MAX_DELAYED {
            self.counters.overflowed += 1;
            return;
        }
        self.next_seq += 1;
        self.timers.push(Scheduled {
            due,
            seq: self.next_seq,
            datagram,
        });
    }

    fn send_due(&mut self, now: Instant) {
        while self.timers.peek().is_some_and(|s| s.due <= now) {
            if let Some(scheduled) = self.timers.pop() {
                self.send(scheduled.datagram);
            }
        }
    }

    fn send(&mut self, datagram: Datagram) {
        let sent = match datagram.path {
            Path::ToClient => self.listen.send_to(&datagram.bytes, datagram.client),
            Path::ToServer => match self.flows.get(&datagram.client) {
                Some(flow) => flow.socket.send(&datagram.bytes),
                None => Err(io::ErrorKind::NotFound.into()),
            },
        };
        match sent {
            Ok(_) => self.counters.forwarded += 1,
            Err(error) => {
                log::debug!("{:?} for {}: {error}", datagram.path, datagram.client);
                self.counters.send_errors += 1;
            }
        }
    }

    /// Forgets clients idle for a while, once a second.
    fn forget_idle_flows(&mut self, now: Instant) {
        if now.duration_since(self.last_sweep) < Duration::from_secs(1) {
            return;
        }
        self.last_sweep = now;
        let idle: Vec<SocketAddr> = self
            .flows
            .iter()
            .filter(|(_, flow)| now.duration_since(flow.last_active) > FLOW_IDLE)
            .map(|(client, _)| *client)
            .collect();
        for client in idle {
            self.forget(client);
        }
    }

    fn forget_least_recent(&mut self) {
        let oldest = self
            .flows
            .iter()
            .min_by_key(|(_, flow)| flow.last_active)
            .map(|(client, _)| *client);
        if let Some(client) = oldest {
            self.forget(client);
        }
    }

    fn forget(&mut self, client: SocketAddr) {
        if let Some(mut flow) = self.flows.remove(&client) {
            let _ = self.poll.registry().deregister(&mut flow.socket);
            self.clients_by_token.remove(&flow.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_refuses_to_relay_to_itself() {
        let addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        assert!(matches!(
            Relay::bind(addr, addr, Impairments::default()),
            Err(ImpairError::Loop(_))
        ));
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(matches!(
            Relay::bind(addr, any, Impairments::default()),
            Err(ImpairError::NoUpstreamPort(_))
        ));
    }
}
