//! The UDP datapath of the client: batched receive (`recvmmsg`, and UDP GRO
//! where the kernel offers it) and segmented send (UDP GSO), through
//! quinn-udp's safe API, so that quicprobe itself needs no `unsafe` for it.
//!
//! The buffers live in one [`Scratch`] per event loop, lent to whichever
//! connection is reading or writing: a thousand idle connections do not each
//! hold a megabyte of buffers, and no datagram costs an allocation or a
//! memset.
//!
//! The client's connections share one unconnected socket per address family
//! ([`Datapath::for_connections`]): an ICMP refusal then no longer comes back
//! as a socket's ECONNREFUSED but through the socket's error queue
//! (`IP_RECVERR`), which names the address refused ([`Datapath::take_refusals`]).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};

use std::sync::OnceLock;

use mio::net::UdpSocket;
use nix::sys::socket::{setsockopt, sockopt};
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState, BATCH_SIZE};

/// The largest UDP payload; a GRO buffer holds up to this many bytes of
/// coalesced datagrams.
const GRO_BUFFER: usize = 64 * 1024;

/// The largest datagram quicprobe and the lab send (quiche's
/// max_send_udp_payload_size is set to it on both sides).
pub const MAX_UDP_PAYLOAD: usize = 1350;

/// The socket receive buffer asked for: a bulk download on loopback moves a
/// few hundred MB/s, and the kernel must hold the datagrams that arrive while
/// quiche is busy (the kernel caps it at net.core.rmem_max).
const SOCKET_RECV_BUFFER: usize = 4 * 1024 * 1024;

/// A connection's socket, and what quinn-udp found the kernel can do.
#[derive(Debug)]
pub struct Datapath {
    socket: UdpSocket,
    state: &'static UdpSocketState,
    /// Asked once: every connection on a shared socket wants it.
    local: SocketAddr,
}

/// A non-blocking UDP socket bound to `addr`, its buffers asked to be
/// `buffer_bytes` when given (best effort: the kernel caps them at
/// net.core.*mem_max). The lab and the impairment relay bind theirs so;
/// `Datapath::new` then enlarges the receive buffer further where it can.
pub fn bind_udp(addr: SocketAddr, buffer_bytes: Option<usize>) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(bytes) = buffer_bytes {
        let _ = socket.set_recv_buffer_size(bytes);
        let _ = socket.set_send_buffer_size(bytes);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

impl Datapath {
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        let state = shared_state(&socket)?;
        if let Err(error) =
            state.set_recv_buffer_size(UdpSockRef::from(&socket), SOCKET_RECV_BUFFER)
        {
            log::debug!("SO_RCVBUF {SOCKET_RECV_BUFFER}: {error}");
        }
        let local = socket.local_addr()?;
        Ok(Self {
            socket,
            state,
            local,
        })
    }

    /// The socket, for registering with the poll.
    pub fn socket_mut(&mut self) -> &mut UdpSocket {
        &mut self.socket
    }

    /// The socket every connection of a run shares, for one address family:
    /// unconnected, with the destination address of each datagram reported
    /// (`IP_PKTINFO`: our local address as each server saw it) and ICMP
    /// errors queued with the address they concern (`IP_RECVERR`).
    pub fn for_connections(socket: UdpSocket) -> io::Result<Self> {
        // Unlike `shared_state`, every option quinn-udp knows, packet info
        // included: one socket per run can afford its dozen system calls.
        UdpSocketState::new(UdpSockRef::from(&socket))?;
        let ipv4 = socket.local_addr()?.is_ipv4();
        let queued = if ipv4 {
            setsockopt(&socket, sockopt::Ipv4RecvErr, &true)
        } else {
            setsockopt(&socket, sockopt::Ipv6RecvErr, &true)
        };
        queued.map_err(io::Error::from)?;
        Self::new(socket)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// curl -v's socket line: the buffers the kernel granted (it may give
    /// less than asked, or double it, as Linux does) and GSO/GRO.
    pub fn describe(&self) -> String {
        let sock = || UdpSockRef::from(&self.socket);
        let size = |bytes: io::Result<usize>| {
            bytes.map_or_else(|error| format!("? ({error})"), |b| b.to_string())
        };
        format!(
            "socket: SO_RCVBUF {} bytes, SO_SNDBUF {} bytes, GSO up to {} datagrams a send, \
             GRO up to {} a read",
            size(self.state.recv_buffer_size(sock())),
            size(self.state.send_buffer_size(sock())),
            self.max_segments(),
            self.state.gro_segments()
        )
    }

    /// How many datagrams of one size a single send may carry.
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments().max(1)
    }

    /// Receives one system call's worth of datagrams into `scratch`; returns
    /// how many buffers were filled (read them with [`Scratch::received`]),
    /// or `WouldBlock` when nothing was waiting.
    pub fn recv_batch(&self, scratch: &mut Scratch) -> io::Result<usize> {
        let mut chunks = scratch.recv.chunks_mut(GRO_BUFFER);
        let mut slices: [IoSliceMut<'_>; BATCH_SIZE] = std::array::from_fn(|_| {
            chunks
                .next()
                .map_or_else(|| IoSliceMut::new(&mut []), IoSliceMut::new)
        });
        self.state.recv(
            UdpSockRef::from(&self.socket),
            &mut slices,
            &mut scratch.meta,
        )
    }

    /// Sends `contents`: one datagram, or several of `segment_size` bytes
    /// (the last may be shorter) in one GSO send.
    pub fn send(
        &self,
        destination: SocketAddr,
        contents: &[u8],
        segment_size: usize,
    ) -> io::Result<()> {
        let transmit = Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: (contents.len() > segment_size).then_some(segment_size),
            src_ip: None,
        };
        let send = || {
            self.state
                .try_send(UdpSockRef::from(&self.socket), &transmit)
        };
        match send() {
            // On a shared socket this is the pending error of an ICMP
            // refusal for some other destination, reported once and then
            // cleared (its details wait in the error queue): send again.
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => send(),
            other => other,
        }
    }

    /// The refusals (ICMP port unreachable) waiting in the socket's error
    /// queue, at most `REFUSALS_PER_CALL` per call; see [`Refusal`].
    pub fn take_refusals(&self) -> Vec<Refusal> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
        use std::os::fd::AsRawFd;
        let mut refusals = Vec::new();
        let mut quoted = [0u8; QUOTED_BYTES];
        // The error and its offender, and the quoted packet's own packet
        // info and traffic class (the options quinn-udp switched on).
        let mut control = nix::cmsg_space!(
            nix::libc::sock_extended_err,
            nix::libc::sockaddr_in6,
            nix::libc::in6_pktinfo,
            nix::libc::c_int,
            nix::libc::c_int
        );
        for _ in 0..REFUSALS_PER_CALL {
            let mut iov = [IoSliceMut::new(&mut quoted)];
            let Ok(message) = recvmsg::<SockaddrStorage>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut control),
                MsgFlags::MSG_ERRQUEUE,
            ) else {
                // EAGAIN: the queue is empty.
                break;
            };
            let cmsgs = message
                .cmsgs()
                .map_err(|error| log::debug!("error queue: {error}"));
            let refused = cmsgs.into_iter().flatten().any(|cmsg| match cmsg {
                ControlMessageOwned::Ipv4RecvErr(error, _)
                | ControlMessageOwned::Ipv6RecvErr(error, _) => {
                    error.ee_errno == nix::libc::ECONNREFUSED as u32
                }
                _ => false,
            });
            let destination = message.address.and_then(|address| socket_addr(&address));
            let len = message.bytes.min(QUOTED_BYTES);
            if let (true, Some(destination)) = (refused, destination) {
                refusals.push(Refusal {
                    destination,
                    quoted: quoted[..len].to_vec(),
                });
            }
        }
        refusals
    }
}

/// How many queued errors one call reads: a bound, not a limit that matters
/// (the poll reports the socket again while errors remain).
const REFUSALS_PER_CALL: usize = 256;
/// What is kept of the datagram an ICMP error quotes: its QUIC header.
const QUOTED_BYTES: usize = 64;

/// An ICMP port unreachable for a datagram we sent.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Where the refused datagram was going.
    pub destination: SocketAddr,
    /// The start of that datagram, as the ICMP error quoted it: its header
    /// names the connection (our source connection ID in a long header).
    pub quoted: Vec<u8>,
}

fn socket_addr(address: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
}

/// quinn-udp's view of the kernel (GSO segments, GRO), made once per
/// process from the first socket. `UdpSocketState::new` per socket would cost
/// each connection two extra probe sockets, their binds and seven
/// setsockopts: a third more system calls per handshake. Later sockets only
/// need GRO switched on; the other options it sets (ECN, packet info, no
/// fragmentation) are ones quicprobe does not use.
fn shared_state(socket: &UdpSocket) -> io::Result<&'static UdpSocketState> {
    static STATE: OnceLock<UdpSocketState> = OnceLock::new();
    if let Some(state) = STATE.get() {
        enable_gro(socket);
        return Ok(state);
    }
    let state = UdpSocketState::new(UdpSockRef::from(socket))?;
    Ok(STATE.get_or_init(|| state))
}

/// UDP GRO, where the kernel has it (Linux 5.0); without it datagrams still
/// come, one per buffer.
fn enable_gro(socket: &UdpSocket) {
    if let Err(error) = setsockopt(socket, sockopt::UdpGroSegment, &true) {
        log::debug!("UDP_GRO: {error}");
    }
}

/// The buffers one event loop lends to its connections.
pub struct Scratch {
    recv: Box<[u8]>,
    meta: [RecvMeta; BATCH_SIZE],
    send: SendSpace,
}

/// One received datagram.
pub struct Arrival<'a> {
    pub from: SocketAddr,
    /// The address it was sent to (our local address as the sender knows
    /// it), where the socket reports it.
    pub to: Option<IpAddr>,
    pub datagram: &'a mut [u8],
}

/// Where datagrams are collected for one GSO send; apart from the receive
/// buffers, so that a connection can answer a datagram while the rest of
/// its batch is still waiting to be read.
pub struct SendSpace(Box<[u8]>);

impl Scratch {
    /// The datagrams of the last [`Datapath::recv_batch`] that filled
    /// `filled` buffers, each with its sender, GRO's coalesced ones split at
    /// their stride.
    pub fn received(&mut self, filled: usize) -> impl Iterator<Item = (SocketAddr, &mut [u8])> {
        self.arrivals_and_send_space(filled)
            .0
            .map(|arrival| (arrival.from, arrival.datagram))
    }

    /// [`Scratch::received`] with the address each was sent to, and the
    /// send space to answer them with.
    pub fn arrivals_and_send_space(
        &mut self,
        filled: usize,
    ) -> (impl Iterator<Item = Arrival<'_>>, &mut SendSpace) {
        let datagrams = self
            .recv
            .chunks_mut(GRO_BUFFER)
            .zip(self.meta.iter())
            .take(filled)
            .flat_map(|(buffer, meta)| {
                let len = meta.len.min(buffer.len());
                let (from, to) = (meta.addr, meta.dst_ip);
                buffer[..len]
                    .chunks_mut(meta.stride.max(1))
                    .map(move |datagram| Arrival { from, to, datagram })
            });
        (datagrams, &mut self.send)
    }

    pub fn send_space(&mut self) -> &mut SendSpace {
        &mut self.send
    }

    pub fn new() -> Self {
        Self {
            recv: vec![0; GRO_BUFFER * BATCH_SIZE].into_boxed_slice(),
            meta: [RecvMeta::default(); BATCH_SIZE],
            send: SendSpace(vec![0; GRO_BUFFER].into_boxed_slice()),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// What produces datagrams for one peer and learns what became of them:
/// a client connection, or one of the lab's connections.
pub trait DatagramSource {
    /// Writes the next datagram into `space` and returns its length, or
    /// None when there is nothing more to send now.
    fn next_datagram(&mut self, space: &mut [u8]) -> Option<usize>;
    /// Sends `batch.contents` (see [`Datapath::send`]) and records the result.
    fn transmit(&mut self, batch: &Batch<'_>);
}

/// Datagrams going out together: all of `segment` bytes but maybe the last.
pub struct Batch<'a> {
    pub contents: &'a [u8],
    pub segment: usize,
    count: usize,
}

impl Batch<'_> {
    /// Each datagram's length, for the flight log.
    pub fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        let last = self.contents.len() - self.segment * self.count.saturating_sub(1);
        (1..=self.count).map(move |i| if i == self.count { last } else { self.segment })
    }
}

/// Sends everything `source` has, in batches of up to `max_segments`
/// datagrams of one size: a shorter datagram ends a batch, a longer one
/// starts the next (GSO segments may only shrink).
pub fn send_all(source: &mut dyn DatagramSource, space: &mut SendSpace, max_segments: usize) {
    let buffer = &mut space.0;
    let (mut filled, mut segment, mut count) = (0, 0, 0);
    loop {
        let end = filled + MAX_UDP_PAYLOAD;
        let produced = match buffer.get_mut(filled..end) {
            Some(space) if count < max_segments => source.next_datagram(space),
            _ => None,
        };
        let Some(len) = produced else {
            if count == 0 {
                return;
            }
            // Full, or quiche is done: send what there is, then ask again.
            send_batch(source, &buffer[..filled], segment, count);
            (filled, segment, count) = (0, 0, 0);
            continue;
        };
        if count > 0 && len > segment {
            send_batch(source, &buffer[..filled], segment, count);
            buffer.copy_within(filled..filled + len, 0);
            (filled, count) = (0, 0);
        }
        if count == 0 {
            segment = len;
        }
        filled += len;
        count += 1;
        if len < segment {
            send_batch(source, &buffer[..filled], segment, count);
            (filled, segment, count) = (0, 0, 0);
        }
    }
}

fn send_batch(source: &mut dyn DatagramSource, contents: &[u8], segment: usize, count: usize) {
    source.transmit(&Batch {
        contents,
        segment,
        count,
    });
}
