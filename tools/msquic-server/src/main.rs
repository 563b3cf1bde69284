//! quicprobe-msquic-server: a QUIC server on Microsoft's msquic, so that
//! quicprobe's tests can meet a server stack other than the Rust ones.
//!
//! Prints `listening on ADDR` when ready, one line per connection event, and
//! `stopped` after SIGTERM or SIGINT.

mod cli;
mod connection;
mod hq;
mod preflight;
mod reaper;
mod say;
mod send;
mod server;
mod streams;

use say::say;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() {
    let args = cli::parse_or_exit();
    check_inputs(&args).unwrap_or_else(|message| cli::fail(&message));
    // Registered before msquic starts, so an early signal is not lost.
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .unwrap_or_else(|err| cli::fail(&format!("cannot handle signals: {err}")));
    let server = server::Server::start(&args).unwrap_or_else(|message| cli::fail(&message));
    say!("listening on {}", server.local_addr());

    signals.forever().next();
    let clean = server.stop();
    say!("stopped");
    if !clean {
        // Skip the exit-time MsQuicClose, which would wait on the
        // connections that did not finish closing.
        unsafe { libc::_exit(0) };
    }
}

/// The checks msquic would fail vaguely or not at all (see `preflight`).
fn check_inputs(args: &cli::Args) -> Result<(), String> {
    preflight::check_certificate_file(&args.cert)?;
    preflight::check_key_file(&args.key)?;
    if let Some(ca) = &args.client_ca {
        preflight::check_certificate_file(ca)?;
    }
    preflight::check_port_free(args.listen)
}
