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

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use boring::x509::X509;
use quicprobe_verifier::{
    ca_issuers_of, code, same_der, verify, ChainReport, FetchedCertificate, PeerName, TrustStore,
    Verdict,
};
use serde::{Serialize, Serializer};

/// The whole fetch must finish within this in production.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The largest body accepted in production: a certificate is 1 to 2 KiB.
pub const LIMIT: usize = 64 * 1024;

/// The largest response head (status line and headers) accepted.
const HEAD_LIMIT: usize = 16 * 1024;

/// The longest chunk-size line of a chunked body.
const CHUNK_LINE_LIMIT: usize = 4096;

/// The bytes read from the socket at once.
const READ_SIZE: usize = 16 * 1024;

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

/// How the fetched body encoded its certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// One DER certificate (`application/pkix-cert`).
    Der,
    /// PEM `CERTIFICATE` blocks.
    Pem,
    /// A PKCS#7 certs-only bundle, DER (`application/pkcs7-mime`).
    Pkcs7Der,
    /// A PKCS#7 certs-only bundle in a PEM `PKCS7` block.
    Pkcs7Pem,
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

/// Verifies `chain` strictly again, with the `fetched` certificates added
/// after it as untrusted intermediates (never as trust anchors), as an
/// AIA-fetching client would.
pub fn verify_with_fetched(
    chain: &[X509],
    fetched: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
) -> Verdict {
    let mut extended = chain.to_vec();
    extended.extend(fetched.iter().cloned());
    verify(&extended, trust, name)
}

/// The AIA caIssuers URL an AIA-fetching client would download for this
/// verdict: set only when the verdict is a missing issuer (X509 errors 20, 2,
/// 21) above a certificate that is not self-issued and carries such a URL
/// (the first, when it carries several).
pub fn missing_issuer_url(chain: &[X509], verdict: &Verdict) -> Option<String> {
    let missing_issuer = matches!(
        verdict.x509_error,
        code::UNABLE_TO_GET_ISSUER_CERT
            | code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | code::UNABLE_TO_VERIFY_LEAF_SIGNATURE
    );
    if verdict.accepted || !missing_issuer {
        return None;
    }
    let stop = verdict.stopped_at().or(chain.first())?;
    let self_issued = stop
        .subject_name()
        .try_cmp(stop.issuer_name())
        .is_ok_and(|order| order.is_eq());
    if self_issued {
        return None;
    }
    ca_issuers_of(stop).into_iter().next()
}

/// How many certificates an AIA check fetches up the chain at most: a real
/// chain has one to three intermediates.
pub const MAX_HOPS: usize = 4;

/// What fetching the missing issuers showed, hop by hop up the chain. The
/// connection is still rejected: this is a report of what AIA-fetching
/// clients would do.
#[derive(Debug, Clone)]
pub struct AiaReport {
    /// The caIssuers URL of the certificate whose issuer is missing.
    pub url: String,
    /// Certificates fetched before the last hop, lowest first: each was an
    /// intermediate whose own issuer was missing too.
    pub earlier: Vec<FetchedIssuer>,
    /// The last hop.
    pub outcome: AiaOutcome,
}

/// The three ends of an AIA check.
#[derive(Debug, Clone)]
pub enum AiaOutcome {
    /// Fetched, and the chain with it verifies.
    Accepted {
        fetched: FetchedIssuer,
        verdict: Verdict,
    },
    /// Fetched, but the chain with it is still rejected.
    StillRejected {
        fetched: FetchedIssuer,
        verdict: Verdict,
    },
    /// Nothing usable was fetched.
    FetchFailed { error: AiaError, elapsed: Duration },
}

/// The JSON form of an [`AiaReport`] (what `Serialize` writes).
#[derive(Debug, Clone, Serialize)]
pub struct AiaJson<'a> {
    pub url: &'a str,
    pub fetched: bool,
    /// Bytes of the body, when fetched.
    pub bytes: Option<usize>,
    /// Time of the fetch (to the failure, if it failed), in milliseconds.
    pub ms: f64,
    pub format: Option<BodyFormat>,
    pub content_type: Option<&'a str>,
    /// The subjects of the certificates served.
    pub fetched_subjects: Vec<String>,
    /// The fetch error, `url: problem`.
    pub error: Option<String>,
    pub accepted_with_fetched: bool,
    /// The strict verdict with the fetched certificates added.
    pub verdict_with_fetched: Option<&'a Verdict>,
    /// Every hop, lowest first: the URL and the subjects it served.
    pub hops: Vec<AiaHopJson<'a>>,
}

/// One fetch of an AIA check, in the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct AiaHopJson<'a> {
    pub url: &'a str,
    pub fetched_subjects: Vec<String>,
}

impl AiaReport {
    /// True when the chain verifies once the missing issuer is fetched.
    pub fn accepted_with_fetched(&self) -> bool {
        matches!(self.outcome, AiaOutcome::Accepted { .. })
    }

    /// One sentence for people. An accepted fetch is worded for what
    /// [`run_aia_check`] reports: a chain strict clients reject for a
    /// missing issuer.
    pub fn describe(&self) -> String {
        match &self.outcome {
            AiaOutcome::Accepted { .. } => format!(
                "rejected by strict clients (OpenSSL, aioquic, curl, quiche); accepted by \
                 AIA-fetching clients (.NET, Windows, Chrome): {}",
                self.served()
            ),
            AiaOutcome::StillRejected { fetched, verdict } => format!(
                "AIA-fetching clients would fail too: {}{} serves {}, but with it the chain is \
                 still rejected: {} (X509 error {}){}",
                self.fetched_before(),
                fetched.url,
                quoted_subjects(fetched),
                verdict.x509_error_string,
                verdict.x509_error,
                at_certificate(verdict)
            ),
            AiaOutcome::FetchFailed { error, .. } => match error.kind {
                AiaErrorKind::UnsupportedScheme { .. } | AiaErrorKind::BadUrl(_) => format!(
                    "{}the AIA caIssuers URL was not fetched: {error}",
                    self.fetched_before()
                ),
                _ => format!(
                    "AIA-fetching clients would fail too: {}{error}",
                    self.fetched_before()
                ),
            },
        }
    }

    /// `the intermediate is served at URL ('B', 1017 bytes in 1.2 ms)`, or
    /// every hop when there were several.
    fn served(&self) -> String {
        let hops: Vec<String> = self
            .all_fetched()
            .into_iter()
            .map(|fetched| {
                format!(
                    "{} ({}, {} bytes in {} ms)",
                    fetched.url,
                    quoted_subjects(fetched),
                    fetched.bytes,
                    millis(fetched.elapsed)
                )
            })
            .collect();
        if hops.len() == 1 {
            format!("the intermediate is served at {}", hops[0])
        } else {
            format!("the intermediates are served at {}", hops.join(", then "))
        }
    }

    /// `after fetching 'B' from URL, ` when earlier hops served certificates.
    fn fetched_before(&self) -> String {
        self.earlier
            .iter()
            .map(|f| format!("after fetching {} from {}, ", quoted_subjects(f), f.url))
            .collect()
    }

    /// The JSON form.
    pub fn json(&self) -> AiaJson<'_> {
        let (fetched, verdict, error, elapsed) = match &self.outcome {
            AiaOutcome::Accepted { fetched, verdict }
            | AiaOutcome::StillRejected { fetched, verdict } => {
                (Some(fetched), Some(verdict), None, fetched.elapsed)
            }
            AiaOutcome::FetchFailed { error, elapsed } => (None, None, Some(error), *elapsed),
        };
        AiaJson {
            url: &self.url,
            fetched: fetched.is_some(),
            bytes: fetched.map(|f| f.bytes),
            ms: millis(elapsed),
            format: fetched.map(|f| f.format),
            content_type: fetched.and_then(|f| f.content_type.as_deref()),
            fetched_subjects: fetched.map(FetchedIssuer::subjects).unwrap_or_default(),
            error: error.map(ToString::to_string),
            accepted_with_fetched: self.accepted_with_fetched(),
            verdict_with_fetched: verdict,
            hops: self
                .all_fetched()
                .into_iter()
                .map(|f| AiaHopJson {
                    url: &f.url,
                    fetched_subjects: f.subjects(),
                })
                .collect(),
        }
    }

    /// Every fetch that served certificates, lowest first.
    pub fn all_fetched(&self) -> Vec<&FetchedIssuer> {
        let last = match &self.outcome {
            AiaOutcome::Accepted { fetched, .. } | AiaOutcome::StillRejected { fetched, .. } => {
                Some(fetched)
            }
            AiaOutcome::FetchFailed { .. } => None,
        };
        self.earlier.iter().chain(last).collect()
    }

    /// The fetched certificates with their URLs: the evidence the diagnosis
    /// weighs (a fetched root is a missing root, an intermediate a missing
    /// intermediate).
    pub fn evidence(&self) -> Vec<FetchedCertificate> {
        self.all_fetched()
            .into_iter()
            .flat_map(|fetched| {
                fetched
                    .certificates
                    .iter()
                    .map(|certificate| FetchedCertificate {
                        url: fetched.url.clone(),
                        certificate: certificate.clone(),
                    })
            })
            .collect()
    }
}

impl Serialize for AiaReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

fn quoted_subjects(fetched: &FetchedIssuer) -> String {
    fetched
        .subjects()
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn at_certificate(verdict: &Verdict) -> String {
    match (verdict.depth, verdict.certificate.as_deref()) {
        (Some(depth), Some(subject)) => format!(" at depth {depth}, '{subject}'"),
        (Some(depth), None) => format!(" at depth {depth}"),
        _ => String::new(),
    }
}

/// Milliseconds to a tenth, as the stages write them.
fn millis(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 10_000.0).round() / 10.0
}

/// When the strict verdict for `chain` is a missing issuer named by an AIA
/// caIssuers URL, fetches it and verifies again; `None` otherwise (no
/// network then). The connection is still rejected: this is a report.
pub fn run_aia_check(
    chain: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    settings: &FetchSettings,
) -> Option<AiaReport> {
    let verdict = verify(chain, trust, name);
    let url = missing_issuer_url(chain, &verdict)?;
    Some(run_aia_check_at(&url, chain, trust, name, settings))
}

/// Fetches `url` as the missing issuer of `chain` and verifies again,
/// whatever the strict verdict; while the chain still lacks an issuer named
/// by a caIssuers URL of a fetched certificate, fetches that too, up to
/// [`MAX_HOPS`] fetches, so that two missing intermediates are both found.
pub fn run_aia_check_at(
    url: &str,
    chain: &[X509],
    trust: &TrustStore,
    name: Option<&PeerName>,
    settings: &FetchSettings,
) -> AiaReport {
    let started = Instant::now();
    let mut earlier: Vec<FetchedIssuer> = Vec::new();
    let mut extended = chain.to_vec();
    let mut next = url.to_owned();
    loop {
        let fetched = match fetch(&next, settings) {
            Ok(fetched) => fetched,
            Err(error) => {
                let outcome = AiaOutcome::FetchFailed {
                    error,
                    elapsed: started.elapsed(),
                };
                return report(url, earlier, outcome);
            }
        };
        extended.extend(fetched.certificates.iter().cloned());
        let verdict = verify(&extended, trust, name);
        if verdict.accepted {
            return report(url, earlier, AiaOutcome::Accepted { fetched, verdict });
        }
        // Only a path that now stops at what was just fetched has moved up:
        // its issuer is the next hop. Anything else (a wrong certificate
        // served) ends the check, so no URL is fetched twice or out of turn.
        let moved_up = verdict
            .stopped_at()
            .is_some_and(|stop| fetched.certificates.iter().any(|c| same_der(c, stop)));
        let seen = |u: &String| *u == fetched.url || earlier.iter().any(|f| f.url == *u);
        let above = missing_issuer_url(&extended, &verdict).filter(|u| moved_up && !seen(u));
        match above {
            Some(url_above) if earlier.len() + 1 < MAX_HOPS => {
                earlier.push(fetched);
                next = url_above;
            }
            _ => return report(url, earlier, AiaOutcome::StillRejected { fetched, verdict }),
        }
    }
}

fn report(url: &str, earlier: Vec<FetchedIssuer>, outcome: AiaOutcome) -> AiaReport {
    AiaReport {
        url: url.to_owned(),
        earlier,
        outcome,
    }
}

// ---------------------------------------------------------------------------
// The URL

/// An `http://` URL, split for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpUrl {
    /// The host as written, without brackets.
    host: String,
    port: u16,
    /// The Host header: host as written (brackets kept), and the port unless 80.
    host_header: String,
    /// Path and query, at least "/".
    target: String,
}

fn parse_url(url: &str) -> Result<HttpUrl, AiaErrorKind> {
    let bad = |why: &str| AiaErrorKind::BadUrl(why.to_owned());
    if url.is_empty() {
        return Err(bad("empty"));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("it holds spaces, control or non-ASCII characters"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("no scheme (expected http://)"));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(AiaErrorKind::UnsupportedScheme {
            scheme: scheme.to_ascii_lowercase(),
        });
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let tail = tail.split('#').next().unwrap_or_default();
    let target = if tail.starts_with('/') {
        tail.to_owned()
    } else {
        format!("/{tail}")
    };
    if authority.contains('@') {
        return Err(bad("user information (user@host) is not supported"));
    }
    let (host, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(bad("'[' without ']'"));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in brackets"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("text after ']' that is not a port"))?,
            ),
        };
        (inside, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if !authority.starts_with('[') && host.contains([':', '[', ']']) {
        return Err(bad("an IPv6 address must be in brackets"));
    }
    let port = match port_text {
        None | Some("") => 80,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
            _ => return Err(bad(&format!("bad port '{text}'"))),
        },
    };
    let host_name = if authority.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let host_header = if port == 80 {
        host_name
    } else {
        format!("{host_name}:{port}")
    };
    Ok(HttpUrl {
        host: host.to_owned(),
        port,
        host_header,
        target,
    })
}

// ---------------------------------------------------------------------------
// The exchange

/// The time left before `deadline`, or the timeout error for `stage`.
fn time_left(
    deadline: Instant,
    timeout: Duration,
    stage: &'static str,
) -> Result<Duration, AiaErrorKind> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(AiaErrorKind::Timeout {
            stage,
            after: timeout,
        })
    } else {
        Ok(left)
    }
}

fn io_error(stage: &'static str, timeout: Duration, error: &std::io::Error) -> AiaErrorKind {
    match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => AiaErrorKind::Timeout {
            stage,
            after: timeout,
        },
        ErrorKind::ConnectionRefused => AiaErrorKind::Refused,
        _ => AiaErrorKind::Io {
            stage,
            error: error.to_string(),
        },
    }
}

/// The body and Content-Type of a 200 answer to a GET of `url`.
fn fetch_body(
    url: &str,
    settings: &FetchSettings,
    started: Instant,
) -> Result<(Vec<u8>, Option<String>), AiaErrorKind> {
    let target = parse_url(url)?;
    let deadline = started + settings.timeout;
    let timeout = settings.timeout;
    let addresses = match settings.connect_to {
        Some(addr) => vec![addr],
        None => resolve(&target, deadline, timeout)?,
    };
    let mut stream = connect(&addresses, deadline, timeout)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: quicprobe\r\n\
         Accept: application/pkix-cert\r\n\r\n",
        target.target, target.host_header
    );
    let stage = "sending the request";
    stream
        .set_write_timeout(Some(time_left(deadline, timeout, stage)?))
        .map_err(|e| io_error(stage, timeout, &e))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| io_error(stage, timeout, &e))?;
    let mut wire = Wire {
        stream,
        buf: Vec::new(),
        deadline,
        timeout,
        closed: false,
    };
    read_response(&mut wire, settings.limit)
}

/// The addresses of the URL's host: an IP literal as is; a name resolved on
/// a helper thread so that a slow resolver cannot outlast the timeout (the
/// thread is left to finish on its own if it does).
fn resolve(
    target: &HttpUrl,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, AiaErrorKind> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let stage = "resolving the name";
    let left = time_left(deadline, timeout, stage)?;
    let (send, receive) = mpsc::channel();
    let query = (target.host.clone(), target.port);
    std::thread::Builder::new()
        .name("aia-resolve".into())
        .spawn(move || {
            let answer = query
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>)
                .map_err(|e| e.to_string());
            let _ = send.send(answer);
        })
        .map_err(|e| io_error(stage, timeout, &e))?;
    let resolve_error = |reason: String| AiaErrorKind::Resolve {
        host: target.host.clone(),
        reason,
    };
    match receive.recv_timeout(left) {
        Ok(Ok(addresses)) if !addresses.is_empty() => Ok(addresses),
        Ok(Ok(_)) => Err(resolve_error("no address".into())),
        Ok(Err(reason)) => Err(resolve_error(reason)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(AiaErrorKind::Timeout {
            stage,
            after: timeout,
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(resolve_error("resolver failed".into())),
    }
}

/// Connects to the first address that answers; the last error otherwise.
fn connect(
    addresses: &[SocketAddr],
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, AiaErrorKind> {
    let stage = "connecting";
    let mut last = AiaErrorKind::Refused;
    for addr in addresses {
        let left = time_left(deadline, timeout, stage)?;
        match TcpStream::connect_timeout(addr, left) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = io_error(stage, timeout, &error),
        }
    }
    Err(last)
}

/// The socket and what has been read from it.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
    timeout: Duration,
    closed: bool,
}

impl Wire {
    /// Reads more bytes into `buf`; `false` once the server has closed.
    fn more(&mut self, stage: &'static str) -> Result<bool, AiaErrorKind> {
        if self.closed {
            return Ok(false);
        }
        let mut chunk = [0u8; READ_SIZE];
        loop {
            let left = time_left(self.deadline, self.timeout, stage)?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| io_error(stage, self.timeout, &e))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(stage, self.timeout, &e)),
            }
        }
    }
}

/// The parts of the response head that matter here.
struct Head {
    code: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn bad_response(why: impl Into<String>) -> AiaErrorKind {
    AiaErrorKind::BadResponse(why.into())
}

fn read_response(wire: &mut Wire, limit: usize) -> Result<(Vec<u8>, Option<String>), AiaErrorKind> {
    let body_start = loop {
        if let Some(end) = find(&wire.buf, b"\r\n\r\n") {
            break end + 4;
        }
        if wire.buf.len() > HEAD_LIMIT {
            return Err(AiaErrorKind::TooLarge {
                what: "response head",
                limit: HEAD_LIMIT,
            });
        }
        if !wire.more("waiting for the response")? {
            return Err(bad_response(if wire.buf.is_empty() {
                "the server closed the connection without answering".to_owned()
            } else {
                "the connection closed before the end of the headers".to_owned()
            }));
        }
    };
    let head = parse_head(&wire.buf[..body_start])?;
    if head.code != 200 {
        return Err(AiaErrorKind::Status {
            code: head.code,
            reason: head.reason.clone(),
            location: head.header("location").map(str::to_owned),
        });
    }
    if let Some(coding) = head.header("content-encoding") {
        if !coding.trim().eq_ignore_ascii_case("identity") {
            return Err(bad_response(format!(
                "Content-Encoding '{coding}' is not supported"
            )));
        }
    }
    let content_type = head.header("content-type").map(str::to_owned);
    let body = if let Some(coding) = head.header("transfer-encoding") {
        if !coding.trim().eq_ignore_ascii_case("chunked") {
            return Err(bad_response(format!(
                "Transfer-Encoding '{coding}' is not supported"
            )));
        }
        read_chunked(wire, body_start, limit)?
    } else if let Some(length) = content_length(&head)? {
        read_sized(wire, body_start, length, limit)?
    } else {
        read_to_close(wire, body_start, limit)?
    };
    Ok((body, content_type))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(bytes: &[u8]) -> Result<Head, AiaErrorKind> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        let shown = shown(status, 40);
        return Err(bad_response(format!(
            "not an HTTP/1.x status line: '{shown}'"
        )));
    }
    let code_text = parts.next().unwrap_or_default();
    let code = match code_text.parse::<u16>() {
        Ok(code) if code_text.len() == 3 && (100..=999).contains(&code) => code,
        _ => {
            let shown = shown(code_text, 20);
            return Err(bad_response(format!("bad status code '{shown}'")));
        }
    };
    let reason = shown(parts.next().unwrap_or_default().trim(), 80);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (shown(name.trim(), 80), shown(value.trim(), 200)))
        .collect();
    Ok(Head {
        code,
        reason,
        headers,
    })
}

/// Remote text fit for a message: at most `max` characters, no control
/// characters (a server must not write to the terminal).
fn shown(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

fn content_length(head: &Head) -> Result<Option<usize>, AiaErrorKind> {
    let mut length = None;
    for value in head.all("content-length") {
        let parsed = value
            .parse::<usize>()
            .ok()
            .filter(|_| value.bytes().all(|b| b.is_ascii_digit()));
        let Some(parsed) = parsed else {
            let shown = shown(value, 20);
            return Err(bad_response(format!("bad Content-Length '{shown}'")));
        };
        if length.is_some_and(|l| l != parsed) {
            return Err(bad_response("conflicting Content-Length headers"));
        }
        length = Some(parsed);
    }
    Ok(length)
}

fn too_large(limit: usize) -> AiaErrorKind {
    AiaErrorKind::TooLarge {
        what: "body",
        limit,
    }
}

fn read_sized(
    wire: &mut Wire,
    start: usize,
    length: usize,
    limit: usize,
) -> Result<Vec<u8>, AiaErrorKind> {
    if length > limit {
        return Err(too_large(limit));
    }
    while wire.buf.len() - start < length {
        if !wire.more("reading the body")? {
            return Err(bad_response(format!(
                "the connection closed after {} of {length} bytes of body",
                wire.buf.len() - start
            )));
        }
    }
    Ok(wire.buf[start..start + length].to_vec())
}

fn read_to_close(wire: &mut Wire, start: usize, limit: usize) -> Result<Vec<u8>, AiaErrorKind> {
    loop {
        if wire.buf.len() - start > limit {
            return Err(too_large(limit));
        }
        if !wire.more("reading the body")? {
            return Ok(wire.buf[start..].to_vec());
        }
    }
}

/// A chunked body (RFC 9112 §7.1): size lines in hex, extensions and
/// trailers ignored.
fn read_chunked(wire: &mut Wire, start: usize, limit: usize) -> Result<Vec<u8>, AiaErrorKind> {
    let stage = "reading the body";
    let closed = || bad_response("the connection closed in the middle of a chunked body");
    let mut body = Vec::new();
    let mut at = start;
    loop {
        let line_end = loop {
            if let Some(end) = wire.buf[at..].iter().position(|&b| b == b'\n') {
                break at + end;
            }
            if wire.buf.len() - at > CHUNK_LINE_LIMIT {
                return Err(bad_response("a chunk-size line is too long"));
            }
            if !wire.more(stage)? {
                return Err(closed());
            }
        };
        let line = String::from_utf8_lossy(&wire.buf[at..line_end]);
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = match usize::from_str_radix(size_text, 16) {
            Ok(size) if !size_text.is_empty() && size_text.len() <= 16 => size,
            _ => {
                let shown = shown(size_text, 20);
                return Err(bad_response(format!("bad chunk size '{shown}'")));
            }
        };
        at = line_end + 1;
        if size == 0 {
            return Ok(body);
        }
        if size > limit.saturating_sub(body.len()) {
            return Err(too_large(limit));
        }
        // The data and its CRLF.
        while wire.buf.len() < at + size + 2 {
            if !wire.more(stage)? {
                return Err(closed());
            }
        }
        body.extend_from_slice(&wire.buf[at..at + size]);
        at += size;
        match &wire.buf[at..at + 2] {
            b"\r\n" => at += 2,
            [b'\n', _] => at += 1,
            _ => return Err(bad_response("a chunk is not followed by CRLF")),
        }
        // Keep the buffer from growing with consumed chunks.
        wire.buf.drain(start..at);
        at = start;
    }
}

// ---------------------------------------------------------------------------
// The body

/// Reads the certificates of an AIA body: a DER certificate, PEM
/// `CERTIFICATE` blocks, or a PKCS#7 certs-only bundle (DER or PEM `PKCS7`).
/// Never panics, whatever the bytes.
pub fn parse_body(body: &[u8]) -> Result<(BodyFormat, Vec<X509>), AiaErrorKind> {
    let not_a_cert = |why: &str| AiaErrorKind::NotACertificate(why.to_owned());
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(not_a_cert("the body is empty"));
    }
    if body[0] == 0x30 {
        if is_pkcs7_signed_data(body) {
            return pkcs7_certificates(body)
                .map(|certs| (BodyFormat::Pkcs7Der, certs))
                .map_err(|why| not_a_cert(&format!("PKCS#7: {why}")));
        }
        return X509::from_der(body)
            .map(|cert| (BodyFormat::Der, vec![cert]))
            .map_err(|_| not_a_cert("DER that is neither a certificate nor a PKCS#7 bundle"));
    }
    match std::str::from_utf8(body) {
        Ok(text) if text.contains("-----BEGIN ") => parse_pem(text),
        _ => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
            if first == Some(b'<') {
                Err(not_a_cert("an HTML or XML page"))
            } else {
                Err(not_a_cert(&format!(
                    "neither DER nor PEM ({} bytes starting with 0x{:02x})",
                    body.len(),
                    body[0]
                )))
            }
        }
    }
}

fn parse_pem(text: &str) -> Result<(BodyFormat, Vec<X509>), AiaErrorKind> {
    const BEGIN: &str = "-----BEGIN ";
    let not_a_cert = |why: String| AiaErrorKind::NotACertificate(why);
    let mut certificates = Vec::new();
    let mut format = BodyFormat::Pem;
    let mut labels = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start..];
        let label = block[BEGIN.len()..]
            .split("-----")
            .next()
            .unwrap_or_default();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block.find(&end_marker) else {
            let shown = shown(label, 40);
            return Err(not_a_cert(format!(
                "truncated PEM: '-----BEGIN {shown}-----' has no END line"
            )));
        };
        let block_text = &block[..end + end_marker.len()];
        match label {
            "CERTIFICATE" | "X509 CERTIFICATE" => {
                let cert = X509::from_pem(block_text.as_bytes()).map_err(|_| {
                    not_a_cert(format!(
                        "PEM certificate #{} is malformed",
                        certificates.len() + 1
                    ))
                })?;
                certificates.push(cert);
            }
            "PKCS7" => {
                let der = pem_base64(block_text)
                    .ok_or_else(|| not_a_cert("PEM PKCS7 block is not base64".into()))?;
                certificates.extend(
                    pkcs7_certificates(&der).map_err(|why| not_a_cert(format!("PKCS#7: {why}")))?,
                );
                format = BodyFormat::Pkcs7Pem;
            }
            other => labels.push(shown(other, 40)),
        }
        rest = &block[end + end_marker.len()..];
    }
    if certificates.is_empty() {
        return Err(not_a_cert(match labels.first() {
            Some(label) => format!("PEM holding '{label}', not a certificate"),
            None => "PEM without a certificate".into(),
        }));
    }
    Ok((format, certificates))
}

/// The bytes of a PEM block (its lines between BEGIN and END, no headers).
fn pem_base64(block: &str) -> Option<Vec<u8>> {
    let mut lines = block.lines();
    lines.next()?;
    let base64: String = lines
        .take_while(|line| !line.starts_with("-----END "))
        .flat_map(|line| line.chars().filter(|c| !c.is_ascii_whitespace()))
        .collect();
    boring::base64::decode_block(&base64).ok()
}

/// One DER element: its tag byte, its content, and the whole element.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// Reads the DER element at the start of `input`; the rest after it.
fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    let truncated = "truncated";
    let tag = *input.first().ok_or(truncated)?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not supported");
    }
    let first = *input.get(1).ok_or(truncated)?;
    let (length, header) = match first {
        0x80 => return Err("indefinite (BER) lengths are not supported"),
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            if count > 4 {
                return Err("length too large");
            }
            let bytes = input.get(2..2 + count).ok_or(truncated)?;
            let length = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (length, 2 + count)
        }
    };
    let end = header.checked_add(length).ok_or(truncated)?;
    let whole = input.get(..end).ok_or(truncated)?;
    Ok((
        Tlv {
            tag,
            content: &whole[header..],
            whole,
        },
        &input[end..],
    ))
}

/// 1.2.840.113549.1.7.2, signedData, in DER.
const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

/// Whether `der` starts as a PKCS#7 SignedData: a SEQUENCE (of any length,
/// even cut short or BER-indefinite) whose first element is the signedData OID.
fn is_pkcs7_signed_data(der: &[u8]) -> bool {
    let header = match der {
        [0x30, short, ..] if *short <= 0x80 => 2,
        [0x30, long, ..] => 2 + usize::from(long & 0x7f),
        _ => return false,
    };
    matches!(
        der.get(header..).map(read_tlv),
        Some(Ok((oid, _))) if oid.tag == 0x06 && oid.content == OID_SIGNED_DATA
    )
}

/// The certificates of a PKCS#7 SignedData (RFC 2315 §9.1): ContentInfo {
/// signedData, [0] { version, digestAlgorithms, contentInfo, [0] IMPLICIT
/// certificates, ... } }.
fn pkcs7_certificates(der: &[u8]) -> Result<Vec<X509>, &'static str> {
    let (content_info, _) = read_tlv(der)?;
    let (oid, rest) = read_tlv(content_info.content)?;
    if content_info.tag != 0x30 || oid.tag != 0x06 || oid.content != OID_SIGNED_DATA {
        return Err("not a SignedData bundle");
    }
    let (explicit, _) = read_tlv(rest)?;
    let (signed_data, _) = read_tlv(explicit.content)?;
    if explicit.tag != 0xa0 || signed_data.tag != 0x30 {
        return Err("malformed SignedData");
    }
    // version, digestAlgorithms, contentInfo: skipped.
    let mut fields = signed_data.content;
    for _ in 0..3 {
        fields = read_tlv(fields)?.1;
    }
    let (certificates, _) = read_tlv(fields).map_err(|_| "no certificates")?;
    if certificates.tag != 0xa0 {
        return Err("no certificates");
    }
    let mut found = Vec::new();
    let mut items = certificates.content;
    while !items.is_empty() {
        let (item, rest) = read_tlv(items)?;
        if item.tag == 0x30 {
            found.push(X509::from_der(item.whole).map_err(|_| "a malformed certificate")?);
        }
        items = rest;
    }
    if found.is_empty() {
        return Err("no certificates");
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_target() {
        let url = parse_url("http://r11.i.lencr.org/").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.host_header.as_str(),
                url.target.as_str()
            ),
            ("r11.i.lencr.org", 80, "r11.i.lencr.org", "/")
        );
        let url = parse_url("HTTP://127.0.0.1:8080/a/b.der?x=1#frag").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.host_header.as_str(),
                url.target.as_str()
            ),
            ("127.0.0.1", 8080, "127.0.0.1:8080", "/a/b.der?x=1")
        );
        let url = parse_url("http://[::1]:9/x").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.host_header.as_str(),
                url.target.as_str()
            ),
            ("::1", 9, "[::1]:9", "/x")
        );
        let url = parse_url("http://[::1]").unwrap();
        assert_eq!(
            (url.port, url.host_header.as_str(), url.target.as_str()),
            (80, "[::1]", "/")
        );
        let url = parse_url("http://host?q").unwrap();
        assert_eq!(url.target, "/?q");
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for (url, want) in [
            ("", "empty"),
            ("r11.i.lencr.org/", "no scheme"),
            ("http:///x", "no host"),
            ("http://h:0/", "bad port"),
            ("http://h:99999/", "bad port"),
            ("http://h:+80/", "bad port"),
            ("http://u:p@h/", "user information"),
            ("http://[::1/", "without ']'"),
            ("http://[nope]/", "IPv6"),
            ("http://::1/", "brackets"),
            ("http://h/a b", "spaces"),
            ("http://h/\r\nX: y", "control"),
            ("http://hé/", "non-ASCII"),
        ] {
            let error = parse_url(url).unwrap_err().to_string();
            assert!(error.contains(want), "{url:?}: {error}");
        }
        for (url, scheme) in [
            ("https://h/", "https"),
            ("ldap://h/cn=x", "ldap"),
            ("file:///etc/passwd", "file"),
            ("FTP://h/x", "ftp"),
        ] {
            assert_eq!(
                parse_url(url).unwrap_err(),
                AiaErrorKind::UnsupportedScheme {
                    scheme: scheme.into()
                }
            );
        }
    }

    #[test]
    fn tlv_reader_never_reads_past_the_input() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x01],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[0x30, 0x80, 0, 0],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(read_tlv(input).is_err(), "{input:?}");
        }
        let (tlv, rest) = read_tlv(&[0x04, 0x02, 0xaa, 0xbb, 0xcc]).unwrap();
        assert_eq!(
            (tlv.tag, tlv.content, rest),
            (0x04, &[0xaa, 0xbb][..], &[0xcc][..])
        );
    }
}
