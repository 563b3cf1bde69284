//! AIA fetching, as .NET, Windows CryptoAPI and Chrome do it, to *show* what
//! they would do with a chain that strict clients reject for a missing issuer.
//!
//! quicprobe's verdict stays strict: this module never changes it. With
//! `--aia-fetch` (off by default) quicprobe downloads the missing issuer from
//! the AIA caIssuers URL of the certificate that lacks it, verifies the chain
//! again with that certificate added as an *untrusted intermediate* (never as
//! a trust anchor) and reports the result: the seed case, a server that sends
//! its leaf alone, is then shown for real to be "rejected by strict clients,
//! accepted by AIA-fetching clients".
//!
//! The fetch is a plain HTTP/1.1 GET over a `TcpStream`, as RFC 5280
//! §4.2.2.1 intends for caIssuers: `http://` only, no redirects followed, the
//! whole fetch (name resolution, connect, request, response) bounded by one
//! timeout and the body by a size limit. The body may be a DER certificate
//! (`application/pkix-cert`, what CAs serve), PEM, or a PKCS#7 certs-only
//! bundle (`application/pkcs7-mime`, DER or PEM). Nothing a server sends can
//! make it panic.

mod body;
mod check;
mod http;
mod report;
mod url;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boring::x509::X509;
use quicprobe_verifier::ChainReport;

use http::fetch_body;

pub use body::{parse_body, BodyFormat};
pub use check::{
    missing_issuer_url, run_aia_check, run_aia_check_at, verify_with_fetched, MAX_HOPS,
};
pub use report::{AiaHopJson, AiaJson, AiaOutcome, AiaReport};

/// The whole fetch must finish within this in production.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The largest body accepted in production: a certificate is 1 to 2 KiB.
pub const LIMIT: usize = 64 * 1024;

/// How to fetch: the time and size bounds, and where to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSettings {
    /// Bounds the whole fetch, from name resolution to the last byte.
    pub timeout: Duration,
    /// The largest body accepted, in bytes.
    pub limit: usize,
    /// Connect here instead of resolving the URL's host, as curl's
    /// `--connect-to`; the request (and its Host header) is unchanged. For
    /// the lab and tests: the committed scenarios' URLs name hosts that must
    /// not be dialled (e.g. `http://r11.i.lencr.test/`).
    pub connect_to: Option<SocketAddr>,
}

impl Default for FetchSettings {
    /// Production: 2 s, 64 KiB, the URL's own host.
    fn default() -> Self {
        Self::new(TIMEOUT, LIMIT)
    }
}

impl FetchSettings {
    pub const fn new(timeout: Duration, limit: usize) -> Self {
        Self {
            timeout,
            limit,
            connect_to: None,
        }
    }

    /// The same settings, connecting to `addr` whatever the URL's host.
    pub const fn connecting_to(self, addr: SocketAddr) -> Self {
        Self {
            connect_to: Some(addr),
            ..self
        }
    }
}

/// A fetch that failed: the URL and what went wrong. Displays as
/// `http://host/path: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {kind}")]
pub struct AiaError {
    pub url: String,
    pub kind: AiaErrorKind,
}

/// What went wrong with a fetch, one variant per thing a person can check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AiaErrorKind {
    /// Not `http://` (https, ldap, file, ftp...): refused before any connection.
    #[error("only http:// AIA URLs are fetched, not {scheme}://")]
    UnsupportedScheme { scheme: String },
    /// The URL cannot be parsed or used in a request.
    #[error("malformed URL: {0}")]
    BadUrl(String),
    /// The host name did not resolve.
    #[error("cannot resolve '{host}': {reason}")]
    Resolve { host: String, reason: String },
    /// Nothing listens at the address.
    #[error("connection refused")]
    Refused,
    /// The whole fetch did not finish within the timeout.
    #[error("timed out after {} ms while {stage}", .after.as_millis())]
    Timeout {
        stage: &'static str,
        after: Duration,
    },
    /// Any other socket error.
    #[error("{stage}: {error}")]
    Io { stage: &'static str, error: String },
    /// The server answered with another status than 200 (redirects are not followed).
    #[error("HTTP status {code}{}{}",
        if reason.is_empty() { String::new() } else { format!(" {reason}") },
        location.as_ref().map_or_else(String::new, |l| format!(" (redirect to {l}, not followed)")))]
    Status {
        code: u16,
        reason: String,
        location: Option<String>,
    },
    /// The answer is not well-formed HTTP/1.x, or uses what is not supported.
    #[error("bad HTTP response: {0}")]
    BadResponse(String),
    /// The body (or the response head) is larger than allowed.
    #[error("{what} larger than {}", size_text(*limit))]
    TooLarge { what: &'static str, limit: usize },
    /// The body is not a certificate quicprobe can read.
    #[error("not a certificate: {0}")]
    NotACertificate(String),
}

fn size_text(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// Remote text fit for a message: at most `max` characters, no control
/// characters (a server must not write to the terminal).
fn shown(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// What an AIA caIssuers URL served.
#[derive(Debug, Clone)]
pub struct FetchedIssuer {
    pub url: String,
    /// The certificates of the body, at least one; one for DER.
    pub certificates: Vec<X509>,
    pub format: BodyFormat,
    /// The Content-Type header, if any (not enforced: CAs vary).
    pub content_type: Option<String>,
    /// Bytes of the body.
    pub bytes: usize,
    /// From the call to the last byte.
    pub elapsed: Duration,
}

impl FetchedIssuer {
    /// The first certificate served, for a DER body the only one.
    pub fn certificate(&self) -> &X509 {
        &self.certificates[0]
    }

    /// The subjects of the certificates served, as the report writes them.
    pub fn subjects(&self) -> Vec<String> {
        ChainReport::describe(&self.certificates)
            .certificates
            .into_iter()
            .map(|c| c.subject)
            .collect()
    }
}

/// Downloads the certificate an AIA caIssuers `url` serves, with plain
/// HTTP/1.1 over TCP; the whole fetch takes at most `timeout`, the body at
/// most `limit` bytes. Only `http://` is fetched; redirects are errors.
pub fn fetch_issuer(url: &str, timeout: Duration, limit: usize) -> Result<FetchedIssuer, AiaError> {
    fetch(url, &FetchSettings::new(timeout, limit))
}

/// [`fetch_issuer`] with every setting, `connect_to` included.
pub fn fetch(url: &str, settings: &FetchSettings) -> Result<FetchedIssuer, AiaError> {
    let started = Instant::now();
    let result = fetch_body(url, settings, started).and_then(|(body, content_type)| {
        let (format, certificates) = parse_body(&body)?;
        Ok(FetchedIssuer {
            url: url.to_owned(),
            certificates,
            format,
            content_type,
            bytes: body.len(),
            elapsed: started.elapsed(),
        })
    });
    match &result {
        Ok(fetched) => log::debug!(
            "AIA fetch {url}: {} bytes ({:?}) in {:?}",
            fetched.bytes,
            fetched.format,
            fetched.elapsed
        ),
        Err(kind) => log::debug!("AIA fetch {url}: {kind}"),
    }
    result.map_err(|kind| AiaError {
        url: url.to_owned(),
        kind,
    })
}

/// The request target (path and query) of an `http://` caIssuers URL, as a
/// server answering it sees it; None for a URL quicprobe would not fetch.
pub fn request_target(url: &str) -> Option<String> {
    url::parse_url(url).ok().map(|parsed| parsed.target)
}
