//! `quicprobe impair`: the impairment proxy on the command line, until
//! SIGINT or SIGTERM; then one summary line of what it did.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::ImpairArgs;
use crate::impair::{ImpairError, Impairments, Relay};

/// What the command line asks the relay to do.
pub fn impairments(args: &ImpairArgs, seed: u64) -> Impairments {
    Impairments {
        seed,
        loss: args.loss,
        reorder_window: usize::from(args.reorder),
        reorder_hold: Duration::from_millis(args.reorder_hold),
        duplicate: args.duplicate,
        delay: Duration::from_millis(args.delay),
        jitter: Duration::from_millis(args.jitter),
        corrupt: args.corrupt,
        truncate: args.truncate.map(usize::from),
        blackhole_after: args.blackhole_after,
        direction: args.direction,
    }
}

impl crate::exit::Failure for ImpairError {}

/// Relays in the foreground; returns when a signal stops it. `quiet` (`-q`)
/// prints only `listening on ADDR` and the summary.
pub fn run(args: &ImpairArgs, quiet: bool) -> Result<(), ImpairError> {
    let seed = args.seed.unwrap_or_else(clock_seed);
    let impairments = impairments(args, seed);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let mut relay = Relay::bind(args.listen, args.upstream, impairments.clone())?;
    if !quiet {
        say(&format!("impairing {impairments}"));
        say(&format!("relaying to {}", args.upstream));
    }
    say(&format!("listening on {}", relay.local_addr()));
    let counters = relay.run(&stop)?;
    say(&format!("summary: {counters}"));
    Ok(())
}

/// A seed that differs from run to run; printed, so any run can be replayed.
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |elapsed| elapsed.as_nanos() as u64)
}

/// One line on stdout, flushed at once so that a supervising test sees it.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
