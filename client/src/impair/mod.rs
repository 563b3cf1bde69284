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

mod fate;
mod impairments;
mod relay;
mod rng;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

pub use fate::{decide, delay_for, displaced, flip_bit, shuffle_order, truncate, Fate};
pub use impairments::{Direction, Impairments, Path};
pub use relay::Relay;
pub use rng::{Percent, Rng};

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
}
