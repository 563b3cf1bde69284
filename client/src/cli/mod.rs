//! The command line: argument definitions only, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod client_cert;
pub mod clone;
mod get;
mod help;
mod impair;
mod scan;
pub(crate) mod setup;
pub(crate) mod trust;
mod values;
pub mod version;

pub use client_cert::{CertTypeArg, ClientCertArgs};
pub use clone::CloneArgs;
pub use get::GetArgs;
pub use impair::ImpairArgs;
pub use scan::ScanArgs;

/// A QUIC client that verifies server certificate chains strictly and tells
/// you exactly what happened in the handshake and why it failed.
#[derive(Debug, Parser)]
#[command(
    name = "quicprobe",
    version = version::SHORT,
    long_version = version::LONG,
    propagate_version = true,
    after_help = help::top()
)]
pub struct Cli {
    /// More output (-v: info, -vv: debug, -vvv: trace). RUST_LOG works too.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output (-s/--silent too, as curl's): only errors are logged;
    /// `connect` and `verify` print one line per verdict.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        visible_short_alias = 's',
        visible_alias = "silent"
    )]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to QUIC servers, verify their chains strictly, trace every stage.
    Connect(ConnectArgs),
    /// Check a server's certificate chain offline, before deploying it.
    Verify(VerifyArgs),
    /// Serve a certificate scenario locally, to replay a failure against any client.
    Serve(ServeArgs),
    /// Turn a saved chain into a scenario folder that reproduces its verdict
    /// anywhere, offline: every certificate cloned, no real key kept.
    Clone(CloneArgs),
    /// Run the lab in-process and show the seed case: full chain, then leaf only.
    Demo(DemoArgs),
    /// Connect to every target of a file, many at once, and print one JSON
    /// line per target as it ends (completion order; each carries its `line`),
    /// then one summary line.
    Scan(ScanArgs),
    /// Make requests over QUIC, as curl does: HTTP/3 (multiplexed), hq-interop or raw streams.
    Get(GetArgs),
    /// Relay UDP on loopback between clients and one server, making the path
    /// bad on purpose (loss, reordering, duplication, delay, corruption,
    /// truncation, a black hole), reproducibly from a seed.
    Impair(ImpairArgs),
}

/// Where the trusted roots come from; the system's roots when neither is given
/// (`SSL_CERT_FILE` and `SSL_CERT_DIR`, else the distribution's bundle and
/// hashed directory, as OpenSSL-based tools find them).
#[derive(Debug, Args, Clone, Default)]
pub struct TrustArgs {
    /// A PEM file of roots to trust (repeatable), as curl's --cacert.
    #[arg(long = "cacert", value_name = "FILE")]
    pub cacert: Vec<PathBuf>,
    /// A directory of roots in OpenSSL's hashed layout, as curl's --capath.
    #[arg(long = "capath", value_name = "DIR")]
    pub capath: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = help::verify())]
pub struct VerifyArgs {
    /// The chain exactly as the server would send it (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    pub chain: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The DNS name clients will dial; checked against the leaf's SAN.
    #[arg(long, value_name = "NAME", conflicts_with = "ip")]
    pub host: Option<String>,
    /// The IP address clients will dial; checked against the leaf's IP SAN.
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<std::net::IpAddr>,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// When the chain stops at a missing issuer, fetch it from the AIA
    /// caIssuers URL (plain http only, 2 s, 64 KiB, up to 4 hops up the
    /// chain) to tell a missing root from a missing intermediate. The
    /// verdict stays strict.
    #[arg(long)]
    pub aia_fetch: bool,
    /// With --aia-fetch, connect to ADDR (ip:port) for the AIA URL whatever its
    /// host, as curl's --connect-to; the request itself is unchanged.
    #[arg(long, value_name = "ADDR", requires = "aia_fetch")]
    pub aia_connect_to: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
#[command(after_help = help::connect())]
pub struct ConnectArgs {
    /// https://host[:port][/path], host:port, or [v6addr]:port (port 443 by default).
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub conn: ConnectionOptions,
    /// How the handshake trace is printed: native and aioquic on stderr (as
    /// curl's -v and aioquic's log), json on stdout (it is data). Each line
    /// is printed when its event happens.
    #[arg(long, value_enum, default_value_t = crate::report::trace::TraceStyle::Native)]
    pub trace_style: crate::report::trace::TraceStyle,
    /// Print the outcome as JSON instead of the trace: one object per line, one
    /// line per connection (JSON Lines); with --repeat, one summary object.
    #[arg(long)]
    pub json: bool,
    /// Also write each connection's JSON outcome (as --json prints it) to
    /// FILE, one per line, whatever the trace style: one connection gives
    /// both a trace to read and the fields to compare.
    #[arg(long, value_name = "FILE")]
    pub json_file: Option<PathBuf>,
    /// Make N connections to each target; then print one summary, last
    /// (on stdout), after the first failures' lines (on stderr). Ctrl-C
    /// stops the run and prints the summary of what ended (exit 130).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub repeat: usize,
    /// Keep up to K connections in flight at once. With K > 1, each
    /// connection's trace is printed as one block when it ends (interleaved,
    /// the lines could not be read); with 1, line by line as it goes.
    #[arg(
        long,
        value_name = "K",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub concurrency: usize,
    /// When the chain is rejected for a missing issuer, fetch it from the
    /// AIA caIssuers URL (plain http only, 2 s, 64 KiB, up to 4 hops up the
    /// chain) as .NET, Windows and Chrome do, report whether they would
    /// connect, and tell a missing root from a missing intermediate. The
    /// connection stays rejected.
    #[arg(long)]
    pub aia_fetch: bool,
    /// With --aia-fetch, connect to ADDR (ip:port) for the AIA URL whatever its
    /// host, as curl's --connect-to; the request itself is unchanged.
    #[arg(long, value_name = "ADDR", requires = "aia_fetch")]
    pub aia_connect_to: Option<std::net::SocketAddr>,
    /// Capture the connection as a scenario folder that reproduces it
    /// anywhere (as `quicprobe clone` makes from a saved chain): the chain
    /// cloned, the anchors it depended on, the issuers --aia-fetch found
    /// missing, the ALPN and transport parameters the server sent, and a
    /// README that is a bug report. One connection only.
    #[arg(long, value_name = "DIR")]
    pub save_scenario: Option<PathBuf>,
    /// With --save-scenario: replace FROM with TO everywhere a name appears
    /// (repeatable).
    #[arg(long, value_name = "FROM=TO", requires = "save_scenario")]
    pub rename: Vec<quicprobe_verifier::clone::Rename>,
    /// With --save-scenario: write into an existing folder.
    #[arg(long, requires = "save_scenario")]
    pub force: bool,
    /// After the handshake (and the request), keep the connection open and
    /// idle for up to SECS seconds before closing it, to see how the server
    /// ends idle connections (its idle timeout).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub hold: Option<f64>,
}

/// How to reach a server and what to check, shared by `connect` and `get`.
#[derive(Debug, Args, Clone)]
pub struct ConnectionOptions {
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub client_cert: ClientCertArgs,
    /// Dial ADDR for HOST:PORT, as curl's --resolve HOST:PORT:ADDR[,ADDR]...
    /// (the next address is tried when one refuses).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<crate::engine::target::ResolveEntry>,
    /// Connect to HOST2:PORT2 for HOST:PORT, as curl's --connect-to; the SNI and
    /// the certificate name stay HOST. Empty fields match anything.
    #[arg(long, value_name = "HOST:PORT:HOST2:PORT2")]
    pub connect_to: Vec<crate::engine::target::ConnectTo>,
    /// Bind this local UDP port, or the first free one of N-M, as curl's --local-port.
    #[arg(long, value_name = "N[-M]", value_parser = parse_port_range)]
    pub local_port: Option<(u16, u16)>,
    /// Dial IPv4 addresses only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Dial IPv6 addresses only.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// The name sent in SNI, and the name the certificate must carry
    /// (instead of the target's host).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// ALPNs to offer, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "h3", value_delimiter = ',')]
    pub alpn: Vec<String>,
    /// Key exchange groups to offer, colon-separated, as curl's --curves
    /// (e.g. X25519, X25519MLKEM768:X25519, P-256). BoringSSL's default offers
    /// X25519MLKEM768, whose ClientHello needs two Initial datagrams.
    #[arg(long, value_name = "LIST")]
    pub curves: Option<String>,
    /// The QUIC idle timeout offered to the server, in seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30.0,
        allow_negative_numbers = true
    )]
    pub idle_timeout: f64,
    /// Give up when the handshake has not completed after SECS seconds, as
    /// curl's --connect-timeout. `--timeout` is its alias.
    #[arg(
        long = "connect-timeout",
        visible_alias = "timeout",
        value_name = "SECS",
        default_value_t = 10.0,
        allow_negative_numbers = true
    )]
    pub connect_timeout: f64,
    /// Give up when a connection, handshake and responses, takes more than
    /// SECS seconds in all, as curl's -m (no limit by default: a stalled
    /// transfer ends with the QUIC idle timeout).
    #[arg(
        short = 'm',
        long = "max-time",
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    pub max_time: Option<f64>,
    /// Fail on an HTTP status of 400 or more, as curl's -f: exit 22 and no
    /// body output (`get`, and `connect` with an https:// URL).
    #[arg(short = 'f', long)]
    pub fail: bool,
    /// Save the certificates the server sent, exactly as sent and in its
    /// order, as PEM (as `openssl s_client -showcerts`); `quicprobe verify
    /// --chain FILE` then gives the same verdict offline. With several
    /// connections, each gets FILE numbered before its extension
    /// (chain-1.pem, chain-2.pem, ...).
    #[arg(long, value_name = "FILE")]
    pub save_chain: Option<PathBuf>,
    /// After each connection, print FORMAT with its %{variables} filled in,
    /// as curl's -w; @FILE reads the format from FILE. See "Write-out
    /// variables" below.
    #[arg(short = 'w', long = "write-out", value_name = "FORMAT")]
    pub write_out: Option<String>,
    /// Append TLS secrets in NSS key log format (SSLKEYLOGFILE is honoured too).
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,
    /// Write one qlog file per connection here (QLOGDIR is honoured too).
    #[arg(long, value_name = "DIR")]
    pub qlog_dir: Option<PathBuf>,
    /// Which TLS alert and reason a rejection sends [default: strict, or
    /// aioquic with --trace-style aioquic].
    #[arg(long, value_enum)]
    pub alert_style: Option<AlertStyleArg>,
    /// Go on even when the chain is rejected, as curl -k does. Loud: the trace,
    /// the summary and the JSON still say what verification said.
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Resume TLS sessions: offer the ticket FILE holds (saved by an earlier
    /// run for the same host and port, after a strictly verified handshake)
    /// and save the one this connection gets.
    #[arg(long, value_name = "FILE")]
    pub session_file: Option<PathBuf>,
    /// With --session-file, send the request as 0-RTT early data; the report
    /// says whether the server accepted it.
    #[arg(long, requires = "session_file")]
    pub early_data: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertStyleArg {
    /// BoringSSL's verdict and words; bad_certificate (42), certificate_expired (45) for the leaf's dates.
    Strict,
    /// aioquic's order, alerts and exact words ("Certificate is no longer valid", "hostname 'x' doesn't match ...").
    Aioquic,
    /// BoringSSL's own mapping, e.g. unknown_ca (48) for a missing issuer.
    Boringssl,
}

#[derive(Debug, Args)]
#[command(after_help = help::serve())]
pub struct ServeArgs {
    /// A scenario of certs/ (by name, or a path to its folder).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["chain", "key"])]
    pub scenario: Option<String>,
    /// The chain to present, exactly as it should be sent.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub chain: Option<PathBuf>,
    /// The leaf's private key.
    #[arg(long, value_name = "FILE", requires = "chain")]
    pub key: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4433")]
    pub listen: std::net::SocketAddr,
    /// ALPNs accepted, comma-separated.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "h3,hq-interop",
        value_delimiter = ','
    )]
    pub alpn: Vec<String>,
    /// Send a Retry to every new client first.
    #[arg(long)]
    pub retry: bool,
    /// Compress the chain with zlib (RFC 8879) for clients that offer it.
    #[arg(long)]
    pub compress_certificates: bool,
    /// Staple this OCSP response (DER, sent as is) for clients that ask.
    #[arg(long, value_name = "FILE")]
    pub ocsp_response: Option<PathBuf>,
    /// Staple this SCT list (an RFC 6962 SignedCertificateTimestampList).
    #[arg(long, value_name = "FILE")]
    pub sct_list: Option<PathBuf>,
    /// Ask every client for a certificate and verify it against these PEM
    /// roots (their names go in the CertificateRequest); without
    /// --require-client-cert a client may still go on without one.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Refuse clients without a certificate (TLS alert 116
    /// certificate_required); needs --client-ca.
    #[arg(long, requires = "client_ca")]
    pub require_client_cert: bool,
    /// Also answer the AIA caIssuers URLs of the scenario's missing issuers
    /// (its missing-issuer.pem) over HTTP on ADDR, as the CA's server would:
    /// `connect --aia-fetch --aia-connect-to ADDR` reaches it; other clients
    /// need the URL's host pointed at ADDR (e.g. in /etc/hosts, with the
    /// URL's port).
    #[arg(long, value_name = "ADDR", requires = "scenario")]
    pub aia_serve: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
#[command(after_help = help::demo())]
pub struct DemoArgs {
    /// Print each connection's outcome as JSON instead of the traces: two
    /// lines, one object each (JSON Lines).
    #[arg(long)]
    pub json: bool,
}

/// clap's error as one line: its first paragraph without clap's `error: `
/// (the flag and the value are in it), the usage and tips left to --help.
pub fn one_line(clap_error: &str) -> String {
    let first = clap_error.split("\n\n").next().unwrap_or_default();
    let first = first.trim().strip_prefix("error:").unwrap_or(first);
    first.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `N` or `N-M`, as curl's --local-port.
fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let port = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: not a port"))
    };
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (port(first)?, port(last)?),
        None => (port(text)?, port(text)?),
    };
    if first > last {
        return Err(format!("{text:?}: the range runs backwards"));
    }
    Ok((first, last))
}
