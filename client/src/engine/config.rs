//! The client configuration every connection of a run shares: one quiche
//! configuration with the verifier installed last (the crate's central
//! invariant: nothing may call SSL_CTX_set_verify after it), and the run of
//! a list of jobs on one event loop with it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use boring::ssl::{SslContextBuilder, SslMethod};
use quicprobe_verifier::{
    install, AlertStyle, InputError, OnReject, Policy, TrustStore, VerdictSlot,
};

use super::client_identity::{ClientIdentity, IdentityError};
use super::event_loop::{self, EventLoop, JobFeed};
use super::message_callback::install_message_callback;
use super::probe::{ProbeSettings, MAX_DATAGRAM};
use super::target::TargetError;

/// Why a run could not start, or stopped before its connections ended.
/// Every variant is one kind of failure a person can act on; the message
/// says which input or part failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A target that cannot be parsed or resolved.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A certificate or trust file that cannot be used.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The client certificate (`--cert`, `--key`, `--pass`, `--cert-type`)
    /// cannot be used: says the flag, the file and why.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A command-line value that cannot be used: says the flag and why.
    #[error("{0}")]
    Usage(String),
    /// BoringSSL refused part of the TLS setup; its error stack says what.
    #[error("TLS setup: {0}")]
    Tls(#[from] boring::error::ErrorStack),
    /// quiche refused part of the QUIC setup.
    #[error("QUIC setup: {0}")]
    Quic(#[from] quiche::Error),
    /// A file or folder the person named (with `flag`) could not be written:
    /// curl's write error.
    #[error("{flag} {}: cannot write: {source}", path.display())]
    File {
        flag: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The event loop's own I/O failed (poll, waker, sockets).
    #[error("event loop: {0}")]
    EventLoop(std::io::Error),
}

impl crate::exit::Failure for ConnectError {
    /// curl's codes where curl has one: a name without an address is 6, a
    /// file that cannot be written 23; everything else is a usage error.
    fn exit_code(&self) -> u8 {
        match self {
            Self::Target(TargetError::Lookup { .. } | TargetError::NoAddressOfFamily { .. }) => {
                crate::exit::RESOLVE_FAILED
            }
            Self::File { .. } => crate::exit::WRITE_ERROR,
            _ => crate::exit::USAGE,
        }
    }
}

/// The client side of a run: the trust store, the TLS policy, the QUIC settings.
#[derive(Debug, Clone)]
pub struct ClientSetup {
    pub trust: Arc<TrustStore>,
    pub alert_style: AlertStyle,
    pub alpns: Vec<String>,
    pub idle_timeout: Duration,
    pub keylog: bool,
    /// `--insecure`: a rejected chain does not stop the handshake.
    pub insecure: bool,
    /// `--curves`: the key exchange groups offered, BoringSSL's names.
    pub curves: Option<String>,
    /// `--early-data`: offer 0-RTT when resuming.
    pub early_data: bool,
    /// `--cert`: the certificate presented when a server asks for one.
    pub identity: Option<ClientIdentity>,
}

/// Room kept for transport parameters quiche does not know.
const UNKNOWN_PARAMETER_BYTES: usize = 1024;

/// One quiche client configuration, the verifier installed last, and the
/// slot through which the verifier hands each verdict to the event loop.
pub fn quic_config(setup: &ClientSetup) -> Result<(quiche::Config, VerdictSlot), ConnectError> {
    let mut builder = SslContextBuilder::new(SslMethod::tls())?;
    install_message_callback(&mut builder);
    // Offer certificate compression, to report whether the server uses it.
    builder.add_certificate_compression_algorithm(crate::engine::compression::Zlib)?;
    // Ask for what a server can staple to its chain, to report it.
    builder.enable_ocsp_stapling();
    builder.enable_signed_cert_timestamps();
    if let Some(curves) = &setup.curves {
        // The key share decides the ClientHello's size: X25519MLKEM768 makes
        // it two Initial datagrams, which doubles the server's first budget.
        builder
            .set_curves_list(curves)
            .map_err(|_| ConnectError::Usage(format!("--curves {curves}: unknown group")))?;
    }
    if let Some(identity) = &setup.identity {
        // Certificate and key only; the verify mode stays the verifier's.
        identity.install(&mut builder)?;
    }
    let mut policy = Policy::new(setup.trust.clone());
    policy.alert_style = setup.alert_style;
    // Pause instead of alerting, so that the close carries 0x100 + alert and
    // the verdict's reason as aioquic's does (BoringSSL's alert path through
    // quiche gives 0x130 and an empty reason).
    policy.on_reject = if setup.insecure {
        OnReject::Continue
    } else {
        OnReject::Pause
    };
    // Installed last: nothing may call SSL_CTX_set_verify after it.
    let slot = install(&mut builder, policy);
    let mut config =
        quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, builder)?;
    let alpns: Vec<&[u8]> = setup.alpns.iter().map(|a| a.as_bytes()).collect();
    config.set_application_protos(&alpns)?;
    config.set_max_idle_timeout(u64::try_from(setup.idle_timeout.as_millis()).unwrap_or(u64::MAX));
    config.set_max_recv_udp_payload_size(MAX_DATAGRAM);
    config.set_max_send_udp_payload_size(MAX_DATAGRAM);
    config.set_initial_max_data(10_000_000);
    config.set_initial_max_stream_data_bidi_local(1_000_000);
    config.set_initial_max_stream_data_bidi_remote(1_000_000);
    config.set_initial_max_stream_data_uni(1_000_000);
    config.set_initial_max_streams_bidi(100);
    config.set_initial_max_streams_uni(100);
    config.set_disable_active_migration(true);
    // Parameters quiche does not know tell which implementation the server is.
    config.enable_track_unknown_transport_parameters(UNKNOWN_PARAMETER_BYTES);
    if setup.keylog {
        config.log_keys();
    }
    if setup.early_data {
        config.enable_early_data();
    }
    Ok((config, slot))
}

/// Runs the jobs of a feed on one event loop with one client configuration.
/// With `stop`, Ctrl-C and SIGTERM set it and wake the loop, which then ends
/// with what it has (the feed keeps the outcomes of the jobs that ended).
pub fn run_feed(
    feed: &mut dyn JobFeed,
    concurrency: usize,
    setup: &ClientSetup,
    settings: &ProbeSettings,
    stop: Option<Arc<AtomicBool>>,
) -> Result<(), ConnectError> {
    let (mut config, slot) = quic_config(setup)?;
    if settings.qlog_dir.is_some() {
        // One qlog file open per connection in flight.
        super::limits::make_room_for(concurrency);
    }
    let event_loop = EventLoop::new(concurrency).map_err(ConnectError::EventLoop)?;
    if let Some(stop) = stop {
        event_loop::stop_on_signals(stop, event_loop.waker()).map_err(ConnectError::EventLoop)?;
    }
    event_loop
        .run(feed, &mut config, &slot, settings)
        .map_err(ConnectError::EventLoop)
}
