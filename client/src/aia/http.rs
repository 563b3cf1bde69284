//! The exchange: one HTTP/1.1 GET over a `TcpStream`, from name resolution
//! to the last byte of the body, bounded by one deadline, the response head
//! and the body by their size limits.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::url::{parse_url, HttpUrl};
use super::{shown, AiaErrorKind, FetchSettings};

/// The largest response head (status line and headers) accepted.
const HEAD_LIMIT: usize = 16 * 1024;

/// The longest chunk-size line of a chunked body.
const CHUNK_LINE_LIMIT: usize = 4096;

/// The bytes read from the socket at once.
const READ_SIZE: usize = 16 * 1024;

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
pub(super) fn fetch_body(
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
