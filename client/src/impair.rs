//! The impairment proxy: a UDP relay on loopback that stands between clients
//! and one upstream server and makes the path between them bad on purpose —
//! loss, reordering, duplication, delay and jitter, bit flips, truncation, a
//! black hole — so that the client's behaviour on a bad network can be
//! replayed and tested.
//!
//! Every random choice comes from one seeded PRNG ([`Rng`]), so the same
//! seed and the same sequence of datagrams give the same fates. The
//! decisions are pure functions ([`decide`], [`shuffle_order`],
//! [`delay_for`], [`flip_bit`], [`truncate`]); [`Relay`] only moves bytes
//! between sockets on one mio loop, with a timer queue for delays.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

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

/// splitmix64: tiny, fast, and the same numbers on every platform, which is
/// all a reproducible impairment needs (it is not for secrets).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0). The modulo bias is
    /// below 2^-40 for the bounds used here, far under any loss rate.
    pub fn below(&mut self, bound: u64) -> u64 {
        match bound {
            0 => 0,
            _ => self.next_u64() % bound,
        }
    }

    /// True with the given probability.
    pub fn chance(&mut self, probability: Percent) -> bool {
        self.below(Percent::SCALE) < u64::from(probability.per_million)
    }
}

/// A probability, kept in parts per million so that decisions are integer
/// arithmetic and reproduce exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percent {
    per_million: u32,
}

impl Percent {
    const SCALE: u64 = 1_000_000;

    pub fn from_per_million(per_million: u32) -> Self {
        Self {
            per_million: per_million.min(Self::SCALE as u32),
        }
    }

    pub fn is_zero(self) -> bool {
        self.per_million == 0
    }
}

impl std::str::FromStr for Percent {
    type Err = String;

    /// `20`, `20%` or `2.5`: a percentage from 0 to 100.
    fn from_str(text: &str) -> Result<Self, String> {
        let number = text.trim().trim_end_matches('%');
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a percentage (0 to 100)"))?;
        if !(0.0..=100.0).contains(&value) {
            return Err(format!("{text:?} is not a percentage (0 to 100)"));
        }
        // Within 0..=100 the product fits a u32; rounding keeps 0.0001 % exact.
        Ok(Self::from_per_million((value * 10_000.0).round() as u32))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", f64::from(self.per_million) / 10_000.0)
    }
}

/// Which way a datagram travels through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    ToServer,
    ToClient,
}

/// Which paths the impairments apply to; the other one relays untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Direction {
    #[default]
    Both,
    ToServer,
    ToClient,
}

impl Direction {
    pub fn covers(self, path: Path) -> bool {
        match self {
            Direction::Both => true,
            Direction::ToServer => path == Path::ToServer,
            Direction::ToClient => path == Path::ToClient,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Both => "both directions",
            Direction::ToServer => "to the server only",
            Direction::ToClient => "to the client only",
        })
    }
}

/// What the relay does to the datagrams of the impaired paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impairments {
    pub seed: u64,
    pub loss: Percent,
    /// Hold up to this many datagrams per client and path, then release
    /// them shuffled; 0 or 1 keeps the order.
    pub reorder_window: usize,
    /// The longest a datagram waits in the hold-back window, so that a
    /// flight smaller than the window is not held forever.
    pub reorder_hold: Duration,
    pub duplicate: Percent,
    pub delay: Duration,
    /// The delay varies uniformly by up to this much either way.
    pub jitter: Duration,
    /// The chance that a datagram gets one random bit flipped.
    pub corrupt: Percent,
    /// Datagrams longer than this are cut to it.
    pub truncate: Option<usize>,
    /// After this many datagrams on the impaired paths, nothing more passes.
    pub blackhole_after: Option<u64>,
    pub direction: Direction,
}

impl fmt::Display for Impairments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.loss.is_zero() {
            parts.push(format!("loss {}", self.loss));
        }
        if self.reorder_window > 1 {
            parts.push(format!(
                "reorder window {} (hold {} ms)",
                self.reorder_window,
                self.reorder_hold.as_millis()
            ));
        }
        if !self.duplicate.is_zero() {
            parts.push(format!("duplicate {}", self.duplicate));
        }
        if !self.delay.is_zero() || !self.jitter.is_zero() {
            parts.push(format!(
                "delay {} ms ± {} ms",
                self.delay.as_millis(),
                self.jitter.as_millis()
            ));
        }
        if !self.corrupt.is_zero() {
            parts.push(format!("corrupt {}", self.corrupt));
        }
        if let Some(size) = self.truncate {
            parts.push(format!("truncate to {size} bytes"));
        }
        if let Some(after) = self.blackhole_after {
            parts.push(format!("black hole after {after} datagrams"));
        }
        if parts.is_empty() {
            parts.push("no impairment".to_owned());
        }
        write!(
            f,
            "{}, {}, seed {}",
            parts.join(", "),
            self.direction,
            self.seed
        )
    }
}

/// What becomes of one datagram on an impaired path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// The black hole has opened: nothing passes any more.
    Blackholed,
    /// Lost, as on a lossy link.
    Lost,
    /// Passes, perhaps damaged, perhaps twice.
    Passes {
        /// The bit to flip (0 = the first byte's lowest bit).
        flip_bit: Option<usize>,
        /// Sent twice (each copy gets its own delay).
        duplicated: bool,
    },
}

/// The fate of the `index`-th datagram (counted from 0 over the impaired
/// paths) of `len` bytes. The PRNG is drawn in a fixed order (loss, then
/// corruption, then duplication), so a seed replays the same fates.
pub fn decide(impairments: &Impairments, rng: &mut Rng, index: u64, len: usize) -> Fate {
    if impairments
        .blackhole_after
        .is_some_and(|after| index >= after)
    {
        return Fate::Blackholed;
    }
    if !impairments.loss.is_zero() && rng.chance(impairments.loss) {
        return Fate::Lost;
    }
    let flip_bit = (!impairments.corrupt.is_zero() && rng.chance(impairments.corrupt) && len > 0)
        .then(|| rng.below(len as u64 * 8) as usize);
    let duplicated = !impairments.duplicate.is_zero() && rng.chance(impairments.duplicate);
    Fate::Passes {
        flip_bit,
        duplicated,
    }
}

/// Flips one bit; a bit past the end is ignored.
pub fn flip_bit(datagram: &mut [u8], bit: usize) {
    if let Some(byte) = datagram.get_mut(bit / 8) {
        *byte ^= 1 << (bit % 8);
    }
}

/// Cuts the datagram to `size` bytes; true when it was longer.
pub fn truncate(datagram: &mut Vec<u8>, size: Option<usize>) -> bool {
    match size {
        Some(size) if datagram.len() > size => {
            datagram.truncate(size);
            true
        }
        _ => false,
    }
}

/// How long one datagram waits: the delay, moved uniformly by up to the
/// jitter either way, never below zero. No draw when there is no jitter.
pub fn delay_for(rng: &mut Rng, delay: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    // Clamped so that no Duration a caller passes can overflow the sums.
    let micros =
        |d: Duration| u64::try_from(d.as_micros()).map_or(u64::MAX / 4, |m| m.min(u64::MAX / 4));
    let span = micros(jitter);
    let offset = rng.below(2 * span + 1);
    Duration::from_micros((micros(delay) + offset).saturating_sub(span))
}

/// A random order for `n` held datagrams (Fisher–Yates): `order[i]` is the
/// arrival index of the datagram released `i`-th.
pub fn shuffle_order(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// How many datagrams an order releases out of their arrival place.
pub fn displaced(order: &[usize]) -> u64 {
    order
        .iter()
        .enumerate()
        .filter(|(i, arrival)| i != *arrival)
        .count() as u64
}

/// What the relay did, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Clients seen (each got its own upstream socket).
    pub clients: u64,
    /// Datagrams sent on (copies and unimpaired paths included).
    pub forwarded: u64,
    /// Lost on purpose.
    pub dropped: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    pub truncated: u64,
    /// Released from the hold-back window out of their arrival place.
    pub reordered: u64,
    pub blackholed: u64,
    /// Could not be sent (the kernel refused, or the client was forgotten).
    pub send_errors: u64,
    /// Dropped because the delay queue was full.
    pub overflowed: u64,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clients={} forwarded={} dropped={} duplicated={} corrupted={} truncated={} \
             reordered={} blackholed={} send_errors={} overflowed={}",
            self.clients,
            self.forwarded,
            self.dropped,
            self.duplicated,
            self.corrupted,
            self.truncated,
            self.reordered,
            self.blackholed,
            self.send_errors,
            self.overflowed
        )
    }
}

/// Why the relay could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ImpairError {
    #[error("{0} is not a loopback address: the impairment proxy only relays on this machine (127.0.0.0/8, ::1)")]
    NotLoopback(SocketAddr),
    #[error("--listen and --upstream are the same address ({0}): the relay would talk to itself")]
    Loop(SocketAddr),
    #[error("--upstream {0}: port 0 is not a server's port")]
    NoUpstreamPort(SocketAddr),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, io::Error),
    #[error("impairment proxy I/O: {0}")]
    Io(#[from] io::Error),
}

/// Refuses anything but loopback, so the proxy can never send off the machine.
pub fn check_loopback(addr: SocketAddr) -> Result<SocketAddr, ImpairError> {
    match addr.ip().is_loopback() {
        true => Ok(addr),
        false => Err(ImpairError::NotLoopback(addr)),
    }
}

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
        let mut socket = udp_socket(listen).map_err(|e| ImpairError::Bind(listen, e))?;
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
        let mut socket = udp_socket(local)?;
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

/// A non-blocking UDP socket with large buffers, bound to `addr`.
fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel caps these at net.core.*mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

/// A relay running on its own thread, for tests and other commands.
/// Dropping it stops it.
pub struct RelayHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Result<Counters, ImpairError>>>,
}

impl RelayHandle {
    /// The address clients should dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the relay; returns what it did.
    pub fn stop(mut self) -> Result<Counters, ImpairError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<Counters, ImpairError> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the relay thread panicked").into())),
            None => Ok(Counters::default()),
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Starts a relay on its own thread; returns once it listens.
pub fn spawn(
    listen: SocketAddr,
    upstream: SocketAddr,
    impairments: Impairments,
) -> Result<RelayHandle, ImpairError> {
    let mut relay = Relay::bind(listen, upstream, impairments)?;
    let addr = relay.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let thread = thread::Builder::new()
        .name("quicprobe-impair".into())
        .spawn(move || relay.run(&thread_stop))?;
    Ok(RelayHandle {
        addr,
        stop,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(text: &str) -> Percent {
        text.parse().unwrap()
    }

    fn with(configure: impl FnOnce(&mut Impairments)) -> Impairments {
        let mut impairments = Impairments::default();
        configure(&mut impairments);
        impairments
    }

    /// The fates of `n` datagrams of 1200 bytes.
    fn fates(impairments: &Impairments, n: u64) -> Vec<Fate> {
        let mut rng = Rng::new(impairments.seed);
        (0..n)
            .map(|i| decide(impairments, &mut rng, i, 1200))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_numbers_and_another_seed_others() {
        let take = |seed| {
            let mut rng = Rng::new(seed);
            (0..64).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(take(7), take(7));
        assert_ne!(take(7), take(8));
    }

    #[test]
    fn splitmix64_matches_its_reference_output() {
        // The first outputs of splitmix64 seeded with 0 (Vigna's reference code),
        // so the fates of a seed never change between builds or platforms.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_stays_below_its_bound_and_zero_is_zero() {
        let mut rng = Rng::new(3);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn percentages_parse_with_or_without_the_sign_and_refuse_the_rest() {
        assert_eq!(pct("20"), Percent::from_per_million(200_000));
        assert_eq!(pct("20%"), Percent::from_per_million(200_000));
        assert_eq!(pct("0.5"), Percent::from_per_million(5_000));
        assert_eq!(pct("100"), Percent::from_per_million(1_000_000));
        for bad in ["-1", "101", "abc", "", "NaN", "inf"] {
            assert!(bad.parse::<Percent>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chance_hits_close_to_its_rate() {
        let mut rng = Rng::new(11);
        let hits = (0..100_000).filter(|_| rng.chance(pct("20"))).count();
        assert!((19_000..21_000).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| !rng.chance(pct("0"))));
        assert!((0..1000).all(|_| rng.chance(pct("100"))));
    }

    #[test]
    fn no_impairment_passes_everything_untouched() {
        let expected = Fate::Passes {
            flip_bit: None,
            duplicated: false,
        };
        assert!(fates(&Impairments::default(), 1000)
            .iter()
            .all(|f| *f == expected));
    }

    #[test]
    fn loss_drops_about_its_rate_and_replays_exactly_for_a_seed() {
        let lossy = with(|i| {
            i.seed = 5;
            i.loss = pct("20");
        });
        let first = fates(&lossy, 10_000);
        let lost = first.iter().filter(|f| **f == Fate::Lost).count();
        assert!((1_800..2_200).contains(&lost), "{lost}");
        assert_eq!(first, fates(&lossy, 10_000));
        let other_seed = with(|i| {
            i.seed = 6;
            i.loss = pct("20");
        });
        assert_ne!(first, fates(&other_seed, 10_000));
    }

    #[test]
    fn duplication_marks_about_its_rate() {
        let dup = with(|i| i.duplicate = pct("10"));
        let copies = fates(&dup, 10_000)
            .iter()
            .filter(|f| {
                matches!(
                    f,
                    Fate::Passes {
                        duplicated: true,
                        ..
                    }
                )
            })
            .count();
        assert!((800..1_200).contains(&copies), "{copies}");
    }

    #[test]
    fn corruption_picks_a_bit_inside_the_datagram() {
        let corrupt = with(|i| i.corrupt = pct("50"));
        let mut rng = Rng::new(1);
        let bits: Vec<usize> = (0..1000)
            .filter_map(|n| match decide(&corrupt, &mut rng, n, 3) {
                Fate::Passes { flip_bit, .. } => flip_bit,
                _ => None,
            })
            .collect();
        assert!((400..600).contains(&bits.len()), "{}", bits.len());
        assert!(bits.iter().all(|b| *b < 24));
        // An empty datagram has no bit to flip.
        assert!(matches!(
            decide(&corrupt, &mut rng, 0, 0),
            Fate::Passes { flip_bit: None, .. }
        ));
    }

    #[test]
    fn flip_bit_changes_exactly_one_bit_and_ignores_bits_past_the_end() {
        let mut datagram = vec![0u8; 4];
        flip_bit(&mut datagram, 9);
        assert_eq!(datagram, [0, 2, 0, 0]);
        flip_bit(&mut datagram, 9);
        assert_eq!(datagram, [0, 0, 0, 0]);
        flip_bit(&mut datagram, 32);
        assert_eq!(datagram, [0, 0, 0, 0]);
    }

    #[test]
    fn truncation_cuts_only_longer_datagrams() {
        let mut long = vec![1u8; 1200];
        assert!(truncate(&mut long, Some(1000)));
        assert_eq!(long.len(), 1000);
        let mut short = vec![1u8; 500];
        assert!(!truncate(&mut short, Some(1000)));
        assert_eq!(short.len(), 500);
        assert!(!truncate(&mut short, None));
    }

    #[test]
    fn the_black_hole_opens_after_n_datagrams_and_stays_open() {
        let hole = with(|i| i.blackhole_after = Some(3));
        let got = fates(&hole, 6);
        assert!(got[..3].iter().all(|f| matches!(f, Fate::Passes { .. })));
        assert!(got[3..].iter().all(|f| *f == Fate::Blackholed));
        let at_once = with(|i| i.blackhole_after = Some(0));
        assert_eq!(fates(&at_once, 1), [Fate::Blackholed]);
    }

    #[test]
    fn delay_without_jitter_is_exact_and_jitter_stays_in_its_span() {
        let mut rng = Rng::new(9);
        let ms = Duration::from_millis;
        assert_eq!(delay_for(&mut rng, ms(30), ms(0)), ms(30));
        let delays: Vec<Duration> = (0..1000)
            .map(|_| delay_for(&mut rng, ms(30), ms(10)))
            .collect();
        assert!(delays.iter().all(|d| *d >= ms(20) && *d <= ms(40)));
        assert!(delays.iter().any(|d| *d < ms(25)) && delays.iter().any(|d| *d > ms(35)));
        // Jitter larger than the delay never makes a negative wait.
        assert!((0..1000).all(|_| delay_for(&mut rng, ms(1), ms(10)) <= ms(11)));
        // Absurd durations from a library caller do not overflow.
        let _ = delay_for(&mut rng, Duration::MAX, Duration::MAX);
    }

    #[test]
    fn a_shuffle_is_a_permutation_that_replays_for_a_seed() {
        let order = shuffle_order(&mut Rng::new(4), 8);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
        assert_eq!(order, shuffle_order(&mut Rng::new(4), 8));
        assert!(displaced(&order) > 0, "{order:?}");
        assert_eq!(displaced(&[0, 1, 2]), 0);
        assert_eq!(displaced(&[1, 0, 2]), 2);
        assert!(shuffle_order(&mut Rng::new(4), 0).is_empty());
    }

    #[test]
    fn directions_cover_their_paths() {
        assert!(Direction::Both.covers(Path::ToServer) && Direction::Both.covers(Path::ToClient));
        assert!(Direction::ToServer.covers(Path::ToServer));
        assert!(!Direction::ToServer.covers(Path::ToClient));
        assert!(!Direction::ToClient.covers(Path::ToServer));
    }

    #[test]
    fn only_loopback_addresses_are_accepted() {
        for ok in ["127.0.0.1:4433", "127.3.2.1:1", "[::1]:4433"] {
            assert!(check_loopback(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for refused in [
            "0.0.0.0:4433",
            "192.0.2.1:4433",
            "[::]:4433",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(
                matches!(
                    check_loopback(refused.parse().unwrap()),
                    Err(ImpairError::NotLoopback(_))
                ),
                "{refused}"
            );
        }
    }

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
