//! The install hook in a real TLS 1.3 handshake: a boring server and a boring
//! client talking over a socket pair, the client verifying with `install`.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use boring::ssl::{HandshakeError, Ssl, SslContext, SslFiletype, SslMethod, SslStream};
use quicprobe_verifier::{checked_chain, install, AlertStyle, Policy, TrustStore, VerdictSlot};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs")
        .join(name)
}

/// A server presenting the scenario's chain exactly as chain.pem lists it.
fn server_context(dir: &Path) -> SslContext {
    let mut builder = SslContext::builder(SslMethod::tls()).unwrap();
    builder
        .set_certificate_chain_file(dir.join("chain.pem"))
        .unwrap();
    builder
        .set_private_key_file(dir.join("key.pem"), SslFiletype::PEM)
        .unwrap();
    builder.build()
}

fn client_context(dir: &Path, alert_style: AlertStyle) -> (SslContext, VerdictSlot) {
    let trust = TrustStore::from_pem_files(&[dir.join("roots.pem")]).unwrap();
    let mut builder = SslContext::builder(SslMethod::tls()).unwrap();
    let mut policy = Policy::new(Arc::new(trust));
    policy.alert_style = alert_style;
    let slot = install(&mut builder, policy);
    (builder.build(), slot)
}

/// What each side saw: the client's result and the alert the server received.
struct Handshake {
    client: Result<SslStream<UnixStream>, HandshakeError<UnixStream>>,
    server_alert: Option<i32>,
}

fn handshake(name: &str, alert_style: AlertStyle) -> (Handshake, VerdictSlot) {
    let dir = scenario(name);
    let host = std::fs::read_to_string(dir.join("host")).unwrap();
    let (client_socket, server_socket) = UnixStream::pair().unwrap();
    let server_ctx = server_context(&dir);
    let server = thread::spawn(move || {
        let ssl = Ssl::new(&server_ctx).unwrap();
        match ssl.accept(server_socket) {
            Ok(mut stream) => {
                // TLS 1.3: the client's verdict reaches the server after its
                // own handshake ends, on the first read.
                let mut byte = [0u8; 1];
                received_alert(stream.ssl_read(&mut byte).err())
            }
            Err(HandshakeError::Failure(mid)) => received_alert(Some(mid.into_error())),
            Err(_) => None,
        }
    });
    let (client_ctx, slot) = client_context(&dir, alert_style);
    let mut ssl = Ssl::new(&client_ctx).unwrap();
    ssl.set_hostname(host.trim()).unwrap();
    let client = ssl.connect(client_socket);
    // Closing the client's socket ends the server's read on success too.
    let client = client.map(|mut stream| {
        let _ = stream.shutdown();
        stream
    });
    let server_alert = server.join().unwrap();
    (
        Handshake {
            client,
            server_alert,
        },
        slot,
    )
}

/// BoringSSL reports a received alert as reason 1000 + the alert number.
fn received_alert(error: Option<boring::ssl::Error>) -> Option<i32> {
    let stack = error?.ssl_error()?.clone();
    stack
        .errors()
        .iter()
        .map(|e| e.reason_code())
        .find(|code| (1000..1256).contains(code))
        .map(|code| code - 1000)
}

#[test]
fn full_chain_is_accepted_and_the_verdict_is_kept_on_the_connection() {
    let (handshake, slot) = handshake("full-chain", AlertStyle::Aioquic);
    let stream = handshake.client.expect("handshake completes");
    let checked = checked_chain(stream.ssl()).expect("verdict in ex-data");
    assert!(checked.verdict.accepted);
    assert_eq!(checked.alert, None);
    assert_eq!(checked.chain.len(), 2);
    assert!(slot.take().is_some_and(|c| c.verdict.accepted));
    assert_eq!(handshake.server_alert, None);
}

#[test]
fn leaf_only_chain_is_rejected_with_bad_certificate_as_aioquic_does() {
    let (handshake, slot) = handshake("leaf-only", AlertStyle::Aioquic);
    let Err(HandshakeError::Failure(mid)) = handshake.client else {
        panic!("the handshake must fail");
    };
    let checked = checked_chain(mid.ssl())
        .expect("verdict in ex-data")
        .clone();
    assert_eq!(checked.verdict.x509_error(), 20);
    assert_eq!(checked.reason(), "unable to get local issuer certificate");
    assert_eq!(checked.alert, Some(42));
    assert_eq!(checked.quic_error_code(), Some(0x12a));
    assert_eq!(
        handshake.server_alert,
        Some(42),
        "server saw bad_certificate"
    );
    assert_eq!(slot.take().map(|c| c.verdict.x509_error()), Some(20));
}

#[test]
fn expired_leaf_is_rejected_with_certificate_expired_as_aioquic_does() {
    let (handshake, _) = handshake("expired-leaf", AlertStyle::Aioquic);
    assert!(handshake.client.is_err());
    assert_eq!(handshake.server_alert, Some(45));
}

#[test]
fn boringssl_alert_style_sends_unknown_ca_for_a_missing_issuer() {
    let (handshake, _) = handshake("leaf-only", AlertStyle::Boringssl);
    assert!(handshake.client.is_err());
    assert_eq!(handshake.server_alert, Some(48));
}
