//! `serve --aia-serve`: the issuers a scenario's server left out, answered
//! at the paths of the caIssuers URLs that name them, over plain HTTP, as a
//! CA's AIA server would. quicprobe reaches it with `--aia-fetch
//! --aia-connect-to ADDR`; other clients need the URL's host pointed at it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use boring::x509::X509;
use quicprobe_verifier::ca_issuers_of;

/// The longest request line and header block read: an AIA request is short.
const MAX_REQUEST_BYTES: u64 = 8 * 1024;
/// How long one client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Which issuer each caIssuers path serves: for each certificate (sent or
/// missing) whose issuer is among `missing`, its URLs' paths map to that
/// issuer's DER. The URL's host is not looked at: one server answers for all.
pub fn routes(chain: &[X509], missing: &[X509]) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut routes = BTreeMap::new();
    for cert in chain.iter().chain(missing) {
        let Some(issuer) = missing
            .iter()
            .find(|m| m.subject_name().to_der().ok() == cert.issuer_name().to_der().ok())
        else {
            continue;
        };
        let Ok(der) = issuer.to_der() else {
            continue;
        };
        for url in ca_issuers_of(cert) {
            if let Some(path) = crate::aia::request_target(&url) {
                routes.insert(path, (url, der.clone()));
            }
        }
    }
    routes
}

/// The AIA server, until dropped.
pub struct AiaServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AiaServer {
    pub fn start(
        listen: SocketAddr,
        routes: BTreeMap<String, (String, Vec<u8>)>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("aia-serve".into())
            .spawn(move || accept_until(&listener, &flag, &routes))?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AiaServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one client at a time until `stop`; polls every 50 ms.
fn accept_until(
    listener: &TcpListener,
    stop: &AtomicBool,
    routes: &BTreeMap<String, (String, Vec<u8>)>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = answer(stream, routes);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One request: a GET for a known path gets the issuer's DER, anything else 404.
fn answer(stream: TcpStream, routes: &BTreeMap<String, (String, Vec<u8>)>) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(MAX_REQUEST_BYTES));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The header block, to its blank line, is read and ignored.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let found = match (parts.next(), parts.next()) {
        (Some("GET"), Some(path)) => routes.get(path),
        _ => None,
    };
    let mut stream = stream;
    match found {
        Some((_, der)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-cert\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                der.len()
            )?;
            stream.write_all(der)?;
        }
        None => stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
    }
    stream.flush()
}
