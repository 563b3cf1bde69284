//! AIA fetching (`quicprobe::aia`) against small HTTP servers on 127.0.0.1
//! (and ::1): what .NET, Windows and Chrome do with the seed case, done for
//! real, and every way a fetch can fail, quickly and without a panic.
//!
//! Network rule: every connection goes to 127.0.0.0/8 or ::1. The leaf-only
//! scenario's caIssuers URL (`http://r11.i.lencr.test/`) is never resolved
//! or dialled: tests that use it connect to a local server instead
//! (`FetchSettings::connect_to`).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use boring::x509::X509;
use quicprobe::aia::{
    self, fetch, fetch_issuer, missing_issuer_url, parse_body, run_aia_check, run_aia_check_at,
    verify_with_fetched, AiaErrorKind, AiaOutcome, BodyFormat, FetchSettings,
};
use quicprobe_verifier::fuzzing::noise;
use quicprobe_verifier::{read_certificates, verify, PeerName, TrustStore};

const SECOND: Duration = Duration::from_secs(1);

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs")
        .join(name)
}

/// A scenario's chain as sent, its roots and the issuer it lacks.
struct Pki {
    chain: Vec<X509>,
    trust: TrustStore,
    missing: X509,
}

fn pki(name: &str) -> Pki {
    let dir = scenario(name);
    Pki {
        chain: read_certificates(&dir.join("chain.pem")).unwrap(),
        trust: TrustStore::from_pem_files(&[dir.join("roots.pem")]).unwrap(),
        missing: read_certificates(&dir.join("missing-issuer.pem"))
            .unwrap()
            .remove(0),
    }
}

fn localhost() -> PeerName {
    PeerName::parse("localhost")
}

fn r11_der() -> Vec<u8> {
    pki("leaf-only").missing.to_der().unwrap()
}

fn r11_pem() -> Vec<u8> {
    std::fs::read(scenario("leaf-only").join("missing-issuer.pem")).unwrap()
}

/// An HTTP response with a Content-Length.
fn ok(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

/// An HTTP/1.0-style response: no length, the body ends when the server closes.
fn ok_to_close(body: &[u8]) -> Vec<u8> {
    let mut response = b"HTTP/1.0 200 OK\r\nContent-Type: application/x-pem-file\r\n\r\n".to_vec();
    response.extend_from_slice(body);
    response
}

/// A chunked response, the body cut into `size`-byte chunks.
fn ok_chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut response =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/pkix-cert\r\n\r\n"
            .to_vec();
    for chunk in body.chunks(size) {
        response.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
        response.extend_from_slice(chunk);
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"0\r\nX-Trailer: yes\r\n\r\n");
    response
}

/// What a test server does with one connection, after reading the request.
enum Act {
    /// Writes these bytes and closes.
    Respond(Vec<u8>),
    /// Writes the bytes and keeps the connection open until the client closes.
    RespondAndHold(Vec<u8>),
    /// Answers nothing until the client closes.
    Silent,
    /// Writes one byte every `every`, for ever (until the client closes).
    Drip { bytes: Vec<u8>, every: Duration },
}

/// A server on 127.0.0.1 (or ::1) handling one connection per act, in order.
struct Server {
    addr: SocketAddr,
    requests: Receiver<String>,
}

impl Server {
    fn start(acts: Vec<Act>) -> Self {
        Self::start_on("127.0.0.1:0", acts).unwrap()
    }

    fn start_on(bind: &str, acts: Vec<Act>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let (send, requests) = mpsc::channel();
        thread::spawn(move || {
            for act in acts {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let _ = send.send(read_request(&mut stream));
                serve_one(stream, act);
            }
        });
        Ok(Self { addr, requests })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The request of the next connection.
    fn request(&self) -> String {
        self.requests.recv_timeout(5 * SECOND).unwrap()
    }
}

fn read_request(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(5 * SECOND)).unwrap();
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut byte) {
            Ok(1) => request.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&request).into_owned()
}

/// Waits until the client closes (or 10 s).
fn hold(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(10 * SECOND)).unwrap();
    let mut sink = [0u8; 256];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

fn serve_one(mut stream: TcpStream, act: Act) {
    match act {
        Act::Respond(bytes) => {
            let _ = stream.write_all(&bytes);
        }
        Act::RespondAndHold(bytes) => {
            let _ = stream.write_all(&bytes);
            hold(&mut stream);
        }
        Act::Silent => hold(&mut stream),
        Act::Drip { bytes, every } => {
            let started = Instant::now();
            for byte in bytes.iter().cycle() {
                if stream.write_all(&[*byte]).is_err() || started.elapsed() > 10 * SECOND {
                    return;
                }
                thread::sleep(every);
            }
        }
    }
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn fetch_error(url: &str, timeout: Duration, limit: usize) -> AiaErrorKind {
    fetch_issuer(url, timeout, limit).unwrap_err().kind
}

fn one_shot(response: Vec<u8>) -> AiaErrorKind {
    let server = Server::start(vec![Act::Respond(response)]);
    fetch_error(&server.url("/r11.der"), 2 * SECOND, aia::LIMIT)
}

// ---------------------------------------------------------------------------
// Fetching the seed's missing R11, and what it changes

#[test]
fn a_der_intermediate_is_fetched_with_a_plain_get_and_completes_the_leaf_only_chain() {
    let seed = pki("leaf-only");
    let der = r11_der();
    let server = Server::start(vec![Act::Respond(ok("application/pkix-cert", &der))]);

    let fetched = fetch_issuer(&server.url("/r11.der"), aia::TIMEOUT, aia::LIMIT).unwrap();

    let request = server.request();
    assert_eq!(
        request,
        format!(
            "GET /r11.der HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: quicprobe\r\n\
             Accept: application/pkix-cert\r\n\r\n",
            server.addr
        )
    );
    assert_eq!(fetched.format, BodyFormat::Der);
    assert_eq!(fetched.bytes, der.len());
    assert_eq!(fetched.url, server.url("/r11.der"));
    assert_eq!(
        fetched.content_type.as_deref(),
        Some("application/pkix-cert")
    );
    assert_eq!(fetched.certificate().to_der().unwrap(), der);
    assert!(fetched.elapsed < SECOND, "{:?}", fetched.elapsed);
    assert_eq!(
        fetched.subjects(),
        ["CN=R11 (quicprobe lab), O=Let's Encrypt (quicprobe lab)"]
    );

    let strict = verify(&seed.chain, &seed.trust, Some(&localhost()));
    assert_eq!((strict.accepted, strict.x509_error()), (false, 20));
    let with_fetched = verify_with_fetched(
        &seed.chain,
        &fetched.certificates,
        &seed.trust,
        Some(&localhost()),
    );
    assert!(with_fetched.accepted, "{with_fetched:?}");
    assert_eq!(with_fetched.built_certificates.len(), 3, "{with_fetched:?}");
}

#[test]
fn the_fetched_certificate_is_an_intermediate_never_a_trust_anchor() {
    // Serving the leaf-only chain's own root while the client trusts a
    // different root: the chain with it ends in an untrusted root (19).
    let seed = pki("leaf-only");
    let other_trust =
        TrustStore::from_pem_files(&[scenario("untrusted-root").join("roots.pem")]).unwrap();
    let with_r11 = verify_with_fetched(
        &seed.chain,
        std::slice::from_ref(&seed.missing),
        &other_trust,
        Some(&localhost()),
    );
    assert!(!with_r11.accepted);
    assert_eq!(with_r11.x509_error(), 20, "{with_r11:?}");
    // A fetched self-signed certificate is not trusted for being fetched.
    let root = read_certificates(&scenario("leaf-only").join("roots.pem")).unwrap();
    let with_root = verify_with_fetched(
        &seed.chain,
        &[seed.missing.clone(), root[0].clone()],
        &other_trust,
        Some(&localhost()),
    );
    assert_eq!(
        (with_root.accepted, with_root.x509_error()),
        (false, 19),
        "{with_root:?}"
    );
}

#[test]
fn pem_read_to_close_and_chunked_bodies_are_fetched_too() {
    let der = r11_der();
    let pem = r11_pem();
    let server = Server::start(vec![
        Act::Respond(ok_to_close(&pem)),
        Act::Respond(ok_chunked(&der, 100)),
        Act::Respond(ok_chunked(&der, 1)),
        // Content-Length and keep-alive despite "Connection: close": the
        // fetch must end at the length, not wait for the close.
        Act::RespondAndHold(ok("application/pkix-cert", &der)),
    ]);
    let url = server.url("/r11.pem");

    let fetched = fetch_issuer(&url, 2 * SECOND, aia::LIMIT).unwrap();
    assert_eq!(fetched.format, BodyFormat::Pem);
    assert_eq!(fetched.bytes, pem.len());
    assert_eq!(fetched.certificate().to_der().unwrap(), der);

    for _ in 0..2 {
        let fetched = fetch_issuer(&url, 2 * SECOND, aia::LIMIT).unwrap();
        assert_eq!(fetched.format, BodyFormat::Der);
        assert_eq!(fetched.bytes, der.len());
    }

    let fetched = fetch_issuer(&url, 2 * SECOND, aia::LIMIT).unwrap();
    assert_eq!(fetched.bytes, der.len());
    assert!(fetched.elapsed < SECOND, "{:?}", fetched.elapsed);
}

/// A DER element with its length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A PKCS#7 certs-only bundle, as `openssl crl2pkcs7 -nocrl` makes it.
fn pkcs7(certs: &[Vec<u8>]) -> Vec<u8> {
    const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    let signed_data = [
        tlv(0x02, &[1]),
        tlv(0x31, &[]),
        tlv(0x30, &tlv(0x06, DATA)),
        tlv(0xa0, &certs.concat()),
        tlv(0xa1, &[]),
        tlv(0x31, &[]),
    ]
    .concat();
    tlv(
        0x30,
        &[tlv(0x06, SIGNED_DATA), tlv(0xa0, &tlv(0x30, &signed_data))].concat(),
    )
}

fn pem_block(label: &str, der: &[u8]) -> Vec<u8> {
    let base64 = boring::base64::encode_block(der);
    let lines: Vec<&str> = base64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
    .into_bytes()
}

#[test]
fn pkcs7_bundles_der_and_pem_are_read() {
    let seed = pki("leaf-only");
    let der = r11_der();
    let root = read_certificates(&scenario("leaf-only").join("roots.pem")).unwrap()[0]
        .to_der()
        .unwrap();
    let bundle = pkcs7(&[der.clone(), root]);

    let (format, certs) = parse_body(&bundle).unwrap();
    assert_eq!((format, certs.len()), (BodyFormat::Pkcs7Der, 2));
    assert_eq!(certs[0].to_der().unwrap(), der);
    let (format, certs) = parse_body(&pem_block("PKCS7", &bundle)).unwrap();
    assert_eq!((format, certs.len()), (BodyFormat::Pkcs7Pem, 2));

    let server = Server::start(vec![Act::Respond(ok("application/pkcs7-mime", &bundle))]);
    let report = run_aia_check_at(
        &server.url("/r11.p7c"),
        &seed.chain,
        &seed.trust,
        Some(&localhost()),
        &FetchSettings::default(),
    );
    assert!(report.accepted_with_fetched(), "{}", report.describe());

    for (body, want) in [
        (pkcs7(&[]), "no certificates"),
        (pkcs7(&[vec![0x30, 0x03, 1, 2, 3]]), "malformed"),
        (bundle[..bundle.len() / 2].to_vec(), "truncated"),
    ] {
        let error = parse_body(&body).unwrap_err().to_string();
        assert!(error.contains("PKCS#7") && error.contains(want), "{error}");
    }
}

// ---------------------------------------------------------------------------
// run_aia_check: when, and the report

#[test]
fn only_a_missing_issuer_with_a_caissuers_url_is_fetched() {
    let seed = pki("leaf-only");
    let strict = verify(&seed.chain, &seed.trust, Some(&localhost()));
    assert_eq!(
        missing_issuer_url(&seed.chain, &strict).as_deref(),
        Some("http://r11.i.lencr.test/")
    );

    // No fetch (no connection to the listener) for anything else.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let nowhere = FetchSettings::default().connecting_to(listener.local_addr().unwrap());
    for name in [
        "full-chain",
        "missing-intermediate", // intermediate B carries no caIssuers URL
        "hostname-mismatch",
        "expired-leaf",
        "self-signed-leaf",
        "untrusted-root",
    ] {
        let dir = scenario(name);
        let chain = read_certificates(&dir.join("chain.pem")).unwrap();
        let trust = TrustStore::from_pem_files(&[dir.join("roots.pem")]).unwrap();
        let host = std::fs::read_to_string(dir.join("host")).unwrap();
        let peer = PeerName::parse(host.trim());
        let strict = verify(&chain, &trust, Some(&peer));
        assert_eq!(missing_issuer_url(&chain, &strict), None, "{name}");
        assert!(
            run_aia_check(&chain, &trust, Some(&peer), &nowhere).is_none(),
            "{name}"
        );
    }
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "something was fetched"
    );
}

#[test]
fn the_seed_case_end_to_end_accepted_by_aia_fetching_clients() {
    // The leaf's own URL, http://r11.i.lencr.test/, sent to a local server.
    let seed = pki("leaf-only");
    let server = Server::start(vec![Act::Respond(ok("application/pkix-cert", &r11_der()))]);
    let settings = FetchSettings::default().connecting_to(server.addr);

    let report = run_aia_check(&seed.chain, &seed.trust, Some(&localhost()), &settings).unwrap();

    let request = server.request();
    assert!(
        request.starts_with("GET / HTTP/1.1\r\nHost: r11.i.lencr.test\r\n"),
        "{request}"
    );
    assert_eq!(report.url, "http://r11.i.lencr.test/");
    assert!(report.accepted_with_fetched());
    let sentence = report.describe();
    assert!(
        sentence.starts_with(
            "rejected by strict clients (OpenSSL, aioquic, curl, quiche); accepted by \
             AIA-fetching clients (.NET, Windows, Chrome): the intermediate is served at \
             http://r11.i.lencr.test/ ('CN=R11 (quicprobe lab), O=Let's Encrypt (quicprobe lab)', "
        ),
        "{sentence}"
    );

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["url"], "http://r11.i.lencr.test/");
    assert_eq!(json["fetched"], true);
    assert_eq!(json["bytes"], r11_der().len());
    assert!(json["ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(json["format"], "der");
    assert_eq!(json["error"], serde_json::Value::Null);
    assert_eq!(json["accepted_with_fetched"], true);
    assert_eq!(json["verdict_with_fetched"]["accepted"], true);
    assert_eq!(json["verdict_with_fetched"]["x509_error"], 0);
}

#[test]
fn a_missing_intermediate_deeper_in_the_chain_is_fetched_the_same_way() {
    let chain = pki("missing-intermediate");
    let der = chain.missing.to_der().unwrap();
    let server = Server::start(vec![Act::Respond(ok("application/pkix-cert", &der))]);
    let report = run_aia_check_at(
        &server.url("/a.der"),
        &chain.chain,
        &chain.trust,
        Some(&localhost()),
        &FetchSettings::default(),
    );
    assert!(report.accepted_with_fetched(), "{}", report.describe());
}

#[test]
fn fetched_but_still_rejected_says_what_the_new_verdict_is() {
    let seed = pki("leaf-only");
    let der = r11_der();
    let wrong = pki("missing-intermediate").missing.to_der().unwrap();
    let server = Server::start(vec![
        Act::Respond(ok("application/pkix-cert", &wrong)),
        Act::Respond(ok("application/pkix-cert", &der)),
    ]);
    let url = server.url("/r11.der");
    let settings = FetchSettings::default();

    // The wrong certificate: still 20.
    let report = run_aia_check_at(
        &url,
        &seed.chain,
        &seed.trust,
        Some(&localhost()),
        &settings,
    );
    let AiaOutcome::StillRejected { verdict, .. } = &report.outcome else {
        panic!("{report:?}");
    };
    assert_eq!(verdict.x509_error(), 20);
    let sentence = report.describe();
    assert!(
        sentence.starts_with(&format!(
            "AIA-fetching clients would fail too: {url} serves 'CN=quicprobe Lab Intermediate A, \
             O=quicprobe lab', but with it the chain is still rejected: unable to get local \
             issuer certificate (X509 error 20) at depth 0"
        )),
        "{sentence}"
    );

    // The right one, but dialled under another name: 62.
    let name = PeerName::parse("example.com");
    let report = run_aia_check_at(&url, &seed.chain, &seed.trust, Some(&name), &settings);
    let sentence = report.describe();
    assert!(
        sentence.contains("Hostname mismatch (X509 error 62)"),
        "{sentence}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["fetched"], true);
    assert_eq!(json["accepted_with_fetched"], false);
    assert_eq!(json["verdict_with_fetched"]["x509_error"], 62);
}

// ---------------------------------------------------------------------------
// Failures: fast, bounded, named

#[test]
fn a_closed_port_fails_at_once_with_connection_refused() {
    let seed = pki("leaf-only");
    let url = format!("http://{}/r11.der", closed_port());
    let started = Instant::now();
    let report = run_aia_check_at(
        &url,
        &seed.chain,
        &seed.trust,
        Some(&localhost()),
        &FetchSettings::default(),
    );
    assert!(started.elapsed() < SECOND / 2, "{:?}", started.elapsed());
    let AiaOutcome::FetchFailed { error, .. } = &report.outcome else {
        panic!("{report:?}");
    };
    assert_eq!(error.kind, AiaErrorKind::Refused);
    assert_eq!(
        report.describe(),
        format!("AIA-fetching clients would fail too: {url}: connection refused")
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["fetched"], false);
    assert_eq!(json["bytes"], serde_json::Value::Null);
    assert_eq!(json["error"], format!("{url}: connection refused"));
    assert_eq!(json["accepted_with_fetched"], false);
    assert_eq!(json["verdict_with_fetched"], serde_json::Value::Null);
}

fn assert_times_out(url: &str, timeout: Duration, stage: &str) {
    let started = Instant::now();
    let error = fetch_issuer(url, timeout, aia::LIMIT).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(error.kind, AiaErrorKind::Timeout { stage: s, after } if s == stage && after == timeout),
        "{error:?}"
    );
    assert!(took >= timeout - timeout / 10, "{took:?}");
    assert!(took < timeout + SECOND / 2, "{took:?}");
    assert!(
        error.to_string().ends_with(&format!(
            "timed out after {} ms while {stage}",
            timeout.as_millis()
        )),
        "{error}"
    );
}

#[test]
fn a_server_that_never_answers_times_out_within_the_timeout() {
    let server = Server::start(vec![Act::Silent]);
    assert_times_out(
        &server.url("/r11.der"),
        Duration::from_millis(400),
        "waiting for the response",
    );
}

#[test]
fn a_trickle_cannot_stretch_the_fetch_past_the_timeout() {
    let mut slow_body = b"HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n".to_vec();
    slow_body.extend(std::iter::repeat_n(b'x', 60000));
    let server = Server::start(vec![
        Act::Drip {
            bytes: b"HTTP/1.1 200 OK\r\nX-Slow: ".to_vec(),
            every: Duration::from_millis(20),
        },
        Act::Drip {
            bytes: slow_body,
            every: Duration::from_millis(5),
        },
    ]);
    let url = server.url("/r11.der");
    assert_times_out(&url, Duration::from_millis(500), "waiting for the response");
    assert_times_out(&url, Duration::from_millis(500), "reading the body");
}

#[test]
fn a_body_over_the_limit_is_refused() {
    let big = vec![0x30u8; 70 * 1024];
    let server = Server::start(vec![
        Act::Respond(ok("application/pkix-cert", &big)),
        Act::Respond(ok_to_close(&big)),
        Act::Respond(ok_chunked(&big, 4096)),
        // A length announced but never sent: refused before reading it.
        Act::RespondAndHold(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n".to_vec()),
    ]);
    let url = server.url("/big");
    for _ in 0..4 {
        let started = Instant::now();
        let error = fetch_issuer(&url, 2 * SECOND, aia::LIMIT).unwrap_err();
        assert_eq!(
            error.kind,
            AiaErrorKind::TooLarge {
                what: "body",
                limit: aia::LIMIT
            }
        );
        assert_eq!(error.to_string(), format!("{url}: body larger than 64 KiB"));
        assert!(started.elapsed() < SECOND, "{:?}", started.elapsed());
    }

    // The limit itself is allowed, one byte less is not.
    let der = r11_der();
    let server = Server::start(vec![
        Act::Respond(ok("application/pkix-cert", &der)),
        Act::Respond(ok_to_close(&der)),
    ]);
    let url = server.url("/r11.der");
    assert!(fetch_issuer(&url, 2 * SECOND, der.len()).is_ok());
    assert_eq!(
        fetch_error(&url, 2 * SECOND, der.len() - 1).to_string(),
        format!("body larger than {} bytes", der.len() - 1)
    );

    let huge_head = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
        "y".repeat(40 * 1024)
    );
    assert_eq!(
        one_shot(huge_head.into_bytes()).to_string(),
        "response head larger than 16 KiB"
    );
}

#[test]
fn not_found_and_redirects_are_errors_naming_the_status() {
    assert_eq!(
        one_shot(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec()),
        AiaErrorKind::Status {
            code: 404,
            reason: "Not Found".into(),
            location: None
        }
    );
    let error = one_shot(
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:1/r11.der\r\n\r\n".to_vec(),
    );
    assert_eq!(
        error.to_string(),
        "HTTP status 301 Moved Permanently (redirect to http://127.0.0.1:1/r11.der, not followed)"
    );
    assert_eq!(
        one_shot(b"HTTP/1.1 500\r\n\r\n".to_vec()).to_string(),
        "HTTP status 500"
    );
    // What the server writes cannot reach the terminal as control characters.
    assert_eq!(
        one_shot(b"HTTP/1.1 302 \x1b[2JFound\r\nLocation: /x\x1b]0;owned\x07\r\n\r\n".to_vec())
            .to_string(),
        "HTTP status 302 [2JFound (redirect to /x]0;owned, not followed)"
    );
}

#[test]
fn other_schemes_are_refused_without_any_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let at = listener.local_addr().unwrap();
    for (url, scheme) in [
        (format!("https://{at}/r11.der"), "https"),
        (format!("ldap://{at}/cn=R11?cACertificate"), "ldap"),
        (
            "file:///etc/ssl/certs/ca-certificates.crt".to_owned(),
            "file",
        ),
        (format!("ftp://{at}/r11.der"), "ftp"),
    ] {
        // Even with connect_to set, nothing is dialled.
        let settings = FetchSettings::default().connecting_to(at);
        let started = Instant::now();
        let error = fetch(&url, &settings).unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(50));
        assert_eq!(
            error.kind,
            AiaErrorKind::UnsupportedScheme {
                scheme: scheme.into()
            }
        );
        assert_eq!(
            error.to_string(),
            format!("{url}: only http:// AIA URLs are fetched, not {scheme}://")
        );
    }
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);

    let seed = pki("leaf-only");
    let report = run_aia_check_at(
        &format!("ldap://{at}/x"),
        &seed.chain,
        &seed.trust,
        None,
        &FetchSettings::default(),
    );
    assert_eq!(
        report.describe(),
        format!(
            "the AIA caIssuers URL was not fetched: ldap://{at}/x: only http:// AIA URLs are \
             fetched, not ldap://"
        )
    );
}

#[test]
fn garbage_bodies_and_broken_responses_are_errors_never_panics() {
    let der = r11_der();
    let key = std::fs::read(scenario("leaf-only").join("key.pem")).unwrap();
    let pem = r11_pem();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            ok("text/html", b"<html><body>Not here</body></html>"),
            "HTML",
        ),
        (ok("application/pkix-cert", b""), "empty"),
        (
            ok("application/pkix-cert", &der[..der.len() / 2]),
            "neither a certificate",
        ),
        (
            ok("application/pkix-cert", &[0x30, 0x82, 0xff, 0xff, 1, 2]),
            "neither a certificate",
        ),
        (
            ok("application/octet-stream", &[0xde, 0xad, 0xbe, 0xef]),
            "neither DER nor PEM",
        ),
        (ok("application/x-pem-file", &key), "PRIVATE KEY"),
        (
            ok("application/x-pem-file", &pem[..pem.len() - 30]),
            "truncated PEM",
        ),
        (
            ok(
                "application/x-pem-file",
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
            "malformed",
        ),
        (b"".to_vec(), "closed the connection without answering"),
        (
            b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
            "closed before the end of the headers",
        ),
        (
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
            "not an HTTP/1.x status line",
        ),
        (b"HTTP/1.1 2000 OK\r\n\r\n".to_vec(), "bad status code"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".to_vec(),
            "bad Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n".to_vec(),
            "conflicting",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\nshort".to_vec(),
            "closed after 5 of 2000 bytes",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            "Transfer-Encoding 'gzip, chunked' is not supported",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n".to_vec(),
            "Content-Encoding 'gzip' is not supported",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            "bad chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdXY".to_vec(),
            "not followed by CRLF",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\nabc".to_vec(),
            "closed in the middle of a chunked body",
        ),
    ];
    let server = Server::start(cases.iter().map(|(r, _)| Act::Respond(r.clone())).collect());
    for (response, want) in &cases {
        let error = fetch_error(&server.url("/r11.der"), 2 * SECOND, aia::LIMIT).to_string();
        assert!(
            error.contains(want),
            "{:?}: {error}",
            String::from_utf8_lossy(&response[..response.len().min(60)])
        );
    }
}

fn mangle(bytes: &[u8], seed: u64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (i, flip) in noise(seed, 6).into_iter().enumerate() {
        let at = (usize::from(flip) * 131 + i * 977 + seed as usize) % out.len();
        out[at] = flip;
    }
    let cut = out.len() - (seed as usize * 53) % out.len() / 4;
    out.truncate(cut);
    out
}

#[test]
fn mangled_bodies_never_panic() {
    let der = r11_der();
    let pem = r11_pem();
    let bundle = pkcs7(std::slice::from_ref(&der));
    let bundle_pem = pem_block("PKCS7", &bundle);
    for seed in 0..400u64 {
        let _ = parse_body(&noise(seed, (seed as usize * 37) % 3000));
        for body in [&der, &pem, &bundle, &bundle_pem] {
            let _ = parse_body(&mangle(body, seed));
        }
    }
}

#[test]
fn mangled_responses_never_panic() {
    let der = r11_der();
    let responses: Vec<Vec<u8>> = (0..150u64)
        .map(|seed| match seed % 3 {
            0 => mangle(&ok("application/pkix-cert", &der), seed),
            1 => mangle(&ok_chunked(&der, 300), seed),
            _ => mangle(&ok_to_close(&r11_pem()), seed),
        })
        .collect();
    let server = Server::start(responses.iter().cloned().map(Act::Respond).collect());
    let started = Instant::now();
    for _ in &responses {
        let _ = fetch_issuer(&server.url("/r11.der"), 2 * SECOND, aia::LIMIT);
    }
    assert!(started.elapsed() < 10 * SECOND, "{:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// Addresses

#[test]
fn ipv6_literals_and_localhost_are_dialled() {
    let der = r11_der();
    // IPv6 loopback is part of the test machine, as connect_lab's IPv6 test assumes too.
    let server =
        Server::start_on("[::1]:0", vec![Act::Respond(ok("x", &der))]).expect("::1 is available");
    let url = format!("http://[::1]:{}/r11.der", server.addr.port());
    let fetched = fetch_issuer(&url, 2 * SECOND, aia::LIMIT).unwrap();
    assert_eq!(fetched.bytes, der.len());
    assert!(server
        .request()
        .contains(&format!("\r\nHost: [::1]:{}\r\n", server.addr.port())),);
    // "localhost" resolves (from /etc/hosts) to 127.0.0.1 and maybe ::1 first;
    // whichever refuses, the other is tried.
    let server = Server::start(vec![Act::Respond(ok("x", &der))]);
    let url = format!("http://localhost:{}/r11.der", server.addr.port());
    let fetched = fetch_issuer(&url, 2 * SECOND, aia::LIMIT).unwrap();
    assert_eq!(fetched.bytes, der.len());
}

#[test]
fn bundles_made_by_openssl_crl2pkcs7_are_read() {
    let input = scenario("leaf-only").join("missing-issuer.pem");
    for (form, format) in [("DER", BodyFormat::Pkcs7Der), ("PEM", BodyFormat::Pkcs7Pem)] {
        let output = std::process::Command::new("openssl")
            .args(["crl2pkcs7", "-nocrl", "-outform", form, "-certfile"])
            .arg(&input)
            .output();
        // scripts/setup installs the openssl CLI: its absence is a failure.
        let output = output.expect("run openssl crl2pkcs7");
        assert!(output.status.success(), "openssl crl2pkcs7 failed");
        let (got, certs) = parse_body(&output.stdout).unwrap();
        assert_eq!(got, format);
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].to_der().unwrap(), r11_der());
    }
}

// ---------------------------------------------------------------------------
// `quicprobe connect --aia-fetch`, end to end: a real QUIC handshake with the
// lab serving the seed's leaf-only chain, and R11 served over plain HTTP on
// 127.0.0.1 (`--aia-connect-to`, since the leaf's URL names r11.i.lencr.test).

fn connect_leaf_only_with_aia(aia_addr: SocketAddr) -> (std::process::Output, serde_json::Value) {
    let lab = quicprobe::lab::spawn(quicprobe::lab::LabSpec::for_scenario(
        &scenario("leaf-only"),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .unwrap();
    let port = lab.addr().port();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_quicprobe"))
        .args(["connect", "--json", "--aia-fetch", "--aia-connect-to"])
        .arg(aia_addr.to_string())
        .arg("--cacert")
        .arg(scenario("leaf-only").join("roots.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("localhost:{port}"))
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_default();
    (output, report)
}

#[test]
fn connect_aia_fetch_shows_that_aia_fetching_clients_connect_while_strict_ones_fail() {
    let server = Server::start(vec![Act::Respond(ok("application/pkix-cert", &r11_der()))]);
    let (output, report) = connect_leaf_only_with_aia(server.addr);
    // Still rejected: the fetch is a report, not trust.
    assert_eq!(output.status.code(), Some(60), "{report}");
    assert_eq!(report["aia"]["url"], "http://r11.i.lencr.test/");
    assert_eq!(report["aia"]["fetched"], true);
    assert_eq!(report["aia"]["accepted_with_fetched"], true, "{report}");
    assert!(server
        .request()
        .starts_with("GET / HTTP/1.1\r\nHost: r11.i.lencr.test\r\n"));
}

#[test]
fn connect_aia_fetch_with_the_aia_server_down_says_aia_clients_would_fail_too() {
    let (output, report) = connect_leaf_only_with_aia(closed_port());
    assert_eq!(output.status.code(), Some(60), "{report}");
    assert_eq!(report["aia"]["fetched"], false);
    assert_eq!(report["aia"]["accepted_with_fetched"], false);
    assert!(
        report["aia"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "{report}"
    );
}
