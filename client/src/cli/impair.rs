//! The arguments of `quicprobe impair`.

use std::net::SocketAddr;

use clap::Args;

use crate::impair::{Direction, Percent};

const AFTER_HELP: &str = "\
Only loopback addresses (127.0.0.0/8, ::1) are accepted for --listen and --upstream.
Each client gets its own socket to the upstream server. Prints `listening on ADDR` when \
ready; on SIGINT or SIGTERM prints one `summary:` line of counters and exits 0.
The same --seed and the same datagrams give the same fates (one splitmix64 PRNG).";

#[derive(Debug, Args)]
#[command(after_help = super::help::impair(AFTER_HELP))]
pub struct ImpairArgs {
    /// Where clients send (port 0: any free port, printed when ready).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The server the datagrams go on to.
    #[arg(long, value_name = "ADDR")]
    pub upstream: SocketAddr,
    /// The PRNG seed; the same seed replays the same fates [default: from the clock, printed].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Drop this percentage of datagrams (0 to 100, decimals allowed).
    #[arg(long, value_name = "PCT", default_value = "0")]
    pub loss: Percent,
    /// Hold up to WINDOW datagrams per client and direction and release them shuffled.
    #[arg(long, value_name = "WINDOW", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub reorder: u16,
    /// The longest a datagram waits in the reorder window before it goes out anyway.
    #[arg(long, value_name = "MS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub reorder_hold: u64,
    /// Send this percentage of datagrams twice.
    #[arg(long, value_name = "PCT", default_value = "0")]
    pub duplicate: Percent,
    /// Delay every datagram by MS milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub delay: u64,
    /// Vary the delay uniformly by up to MS milliseconds either way (reorders too).
    #[arg(long, value_name = "MS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub jitter: u64,
    /// Flip one random bit in this percentage of datagrams.
    #[arg(long, value_name = "PCT", default_value = "0")]
    pub corrupt: Percent,
    /// Cut datagrams longer than BYTES to BYTES.
    #[arg(long, value_name = "BYTES",
          value_parser = clap::value_parser!(u16))]
    pub truncate: Option<u16>,
    /// Let N datagrams through, then nothing more.
    #[arg(long, value_name = "N")]
    pub blackhole_after: Option<u64>,
    /// Which way the impairments apply; the other way relays untouched.
    #[arg(long, value_enum, default_value_t = Direction::Both)]
    pub direction: Direction,
}
