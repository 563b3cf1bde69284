//! The handshake, stage by stage. TLS messages come from BoringSSL's message
//! callback, which fires for every handshake message in QUIC mode in both
//! directions; QUIC events (Retry, version negotiation, HANDSHAKE_DONE) come
//! from the connection. Each stage carries its time and the traffic so far.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// One step of the handshake, in the order a client meets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Stage {
    /// The first flight: ClientHello in an Initial packet.
    ClientHelloSent {
        sni: Option<String>,
        alpns: Vec<String>,
        bytes: usize,
    },
    /// The server asked us to prove our address (RFC 9000 §8.1.2).
    Retry {
        token_bytes: usize,
    },
    /// The server does not speak our version; it offered these.
    VersionNegotiation {
        offered: Vec<String>,
    },
    ServerHello {
        cipher: Option<String>,
        group: Option<String>,
    },
    EncryptedExtensions {
        alpn: Option<String>,
        transport_parameters: Option<String>,
    },
    Certificate {
        certificates: usize,
        bytes: usize,
        /// The server compressed it (RFC 8879 CompressedCertificate).
        #[serde(skip_serializing_if = "Option::is_none")]
        compression: Option<CertCompression>,
    },
    /// quicprobe's verdict on the chain.
    Verdict {
        accepted: bool,
        x509_error: i32,
        reason: String,
    },
    CertificateVerify {
        signature_algorithm: Option<String>,
    },
    /// The server asked for a client certificate (RFC 8446 §4.3.2).
    CertificateRequest {
        /// The signature algorithms it accepts, in its order of preference.
        signature_algorithms: Vec<String>,
        /// The issuers it accepts (the certificate_authorities extension),
        /// empty when it names none.
        certificate_authorities: Vec<String>,
    },
    ServerFinished,
    /// Our Certificate: `certificates` 0 means we had none to send.
    ClientCertificateSent {
        certificates: usize,
        bytes: usize,
    },
    /// Our CertificateVerify: the proof that we hold the certificate's key.
    ClientCertificateVerifySent {
        signature_algorithm: Option<String>,
    },
    ClientFinishedSent,
    HandshakeDone,
}

impl Stage {
    /// The stage's name as JSON and the tests spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ClientHelloSent { .. } => "client_hello_sent",
            Self::Retry { .. } => "retry",
            Self::VersionNegotiation { .. } => "version_negotiation",
            Self::ServerHello { .. } => "server_hello",
            Self::EncryptedExtensions { .. } => "encrypted_extensions",
            Self::Certificate { .. } => "certificate",
            Self::Verdict { .. } => "verdict",
            Self::CertificateVerify { .. } => "certificate_verify",
            Self::CertificateRequest { .. } => "certificate_request",
            Self::ServerFinished => "server_finished",
            Self::ClientCertificateSent { .. } => "client_certificate_sent",
            Self::ClientCertificateVerifySent { .. } => "client_certificate_verify_sent",
            Self::ClientFinishedSent => "client_finished_sent",
            Self::HandshakeDone => "handshake_done",
        }
    }
}

/// How a compressed Certificate came: the algorithm and its size on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertCompression {
    pub algorithm: String,
    pub wire_bytes: usize,
}

/// Traffic in each direction up to a stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub sent_bytes: u64,
    pub sent_packets: usize,
    pub recv_bytes: u64,
    pub recv_packets: usize,
}

/// A stage reached, when, and with how much traffic behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageEvent {
    #[serde(flatten)]
    pub stage: Stage,
    pub t_ms: f64,
    #[serde(flatten)]
    pub traffic: Traffic,
}

impl StageEvent {
    pub fn new(stage: Stage, since_start: Duration, traffic: Traffic) -> Self {
        Self {
            stage,
            t_ms: (since_start.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
            traffic,
        }
    }
}

/// What is known when a connection starts.
#[derive(Debug, Clone)]
pub struct ConnectionStart {
    /// `host:port` as dialled.
    pub target: String,
    pub addr: SocketAddr,
    /// Our source connection ID, hex.
    pub connection_id: String,
    /// The wall-clock time of the first stage's zero.
    pub at: SystemTime,
    /// `--insecure`: a rejected chain does not stop the handshake.
    pub insecure: bool,
}

/// When our Initial keys went: the time, and how many stages had been
/// reached then, so that a trace can place the moment among the stages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeysDropped {
    pub t_ms: f64,
    pub after_stage: usize,
}

/// A TLS handshake message as the message callback
/// ([`super::message_callback`]) saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsMessage {
    pub outgoing: bool,
    /// The full message, type and length header included.
    pub bytes: Vec<u8>,
}

/// TLS 1.3 handshake message types (RFC 8446 §4).
mod message_type {
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    pub const CERTIFICATE: u8 = 11;
    pub const CERTIFICATE_REQUEST: u8 = 13;
    pub const CERTIFICATE_VERIFY: u8 = 15;
    /// RFC 8879.
    pub const COMPRESSED_CERTIFICATE: u8 = 25;
    pub const FINISHED: u8 = 20;
}

/// The stage a TLS message marks, parsed from its bytes. Malformed messages
/// give a stage with the fields left unknown, never a panic.
pub fn stage_of(
    message: &TlsMessage,
    offered_alpns: &[String],
    sni: Option<&str>,
) -> Option<Stage> {
    let (&kind, body) = message.bytes.split_first()?;
    let body = body.get(3..).unwrap_or_default();
    match (message.outgoing, kind) {
        (true, message_type::CLIENT_HELLO) => Some(Stage::ClientHelloSent {
            sni: sni.map(str::to_owned),
            alpns: offered_alpns.to_vec(),
            bytes: message.bytes.len(),
        }),
        (false, message_type::SERVER_HELLO) => {
            let hello = parse_server_hello(body);
            Some(Stage::ServerHello {
                cipher: hello.map(|h| cipher_name(h.0)),
                group: hello.and_then(|h| h.1).map(group_name),
            })
        }
        (false, message_type::ENCRYPTED_EXTENSIONS) => Some(Stage::EncryptedExtensions {
            alpn: parse_alpn_from_extensions(body),
            transport_parameters: None,
        }),
        (false, message_type::CERTIFICATE) => Some(Stage::Certificate {
            certificates: count_certificates(body).unwrap_or(0),
            bytes: message.bytes.len(),
            compression: None,
        }),
        (false, message_type::COMPRESSED_CERTIFICATE) => Some(compressed_certificate(message)),
        (false, message_type::CERTIFICATE_VERIFY) => Some(Stage::CertificateVerify {
            signature_algorithm: read_u16(body, 0).map(signature_algorithm_name),
        }),
        (false, message_type::CERTIFICATE_REQUEST) => Some(certificate_request(body)),
        (true, message_type::CERTIFICATE) => Some(Stage::ClientCertificateSent {
            certificates: count_certificates(body).unwrap_or(0),
            bytes: message.bytes.len(),
        }),
        (true, message_type::CERTIFICATE_VERIFY) => Some(Stage::ClientCertificateVerifySent {
            signature_algorithm: read_u16(body, 0).map(signature_algorithm_name),
        }),
        (false, message_type::FINISHED) => Some(Stage::ServerFinished),
        (true, message_type::FINISHED) => Some(Stage::ClientFinishedSent),
        _ => None,
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([pair[0], pair[1]]))
}

fn read_u24(bytes: &[u8], at: usize) -> Option<usize> {
    let triple = bytes.get(at..at + 3)?;
    Some(usize::from(triple[0]) << 16 | usize::from(triple[1]) << 8 | usize::from(triple[2]))
}

/// (cipher suite, key_share group) of a ServerHello body.
fn parse_server_hello(body: &[u8]) -> Option<(u16, Option<u16>)> {
    // legacy_version(2) random(32) legacy_session_id<0..32>
    let session_id_len = usize::from(*body.get(34)?);
    let cipher_at = 35 + session_id_len;
    let cipher = read_u16(body, cipher_at)?;
    // cipher(2) legacy_compression_method(1) extensions<..>
    let extensions = extensions_block(body, cipher_at + 3)?;
    let group = find_extension(extensions, 51).and_then(|key_share| read_u16(key_share, 0));
    Some((cipher, group))
}

fn extensions_block(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(read_u16(bytes, at)?);
    bytes.get(at + 2..at + 2 + len)
}

/// The data of extension `wanted` in a list of extensions.
fn find_extension(mut extensions: &[u8], wanted: u16) -> Option<&[u8]> {
    while extensions.len() >= 4 {
        let kind = read_u16(extensions, 0)?;
        let len = usize::from(read_u16(extensions, 2)?);
        let data = extensions.get(4..4 + len)?;
        if kind == wanted {
            return Some(data);
        }
        extensions = &extensions[4 + len..];
    }
    None
}

/// The ALPN the server chose, from an EncryptedExtensions body.
fn parse_alpn_from_extensions(body: &[u8]) -> Option<String> {
    let extensions = extensions_block(body, 0)?;
    let alpn = find_extension(extensions, 16)?;
    // protocol_name_list<2..2^16-1> holding exactly one name<1..255>
    let name_len = usize::from(*alpn.get(2)?);
    let name = alpn.get(3..3 + name_len)?;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// What a CertificateRequest asks for: certificate_request_context<0..255>,
/// then extensions; signature_algorithms (13) and certificate_authorities
/// (47). A malformed one gives empty lists, never a panic.
fn certificate_request(body: &[u8]) -> Stage {
    let extensions = body
        .first()
        .and_then(|len| extensions_block(body, 1 + usize::from(*len)));
    let signature_algorithms = extensions
        .and_then(|e| find_extension(e, 13))
        .map(|data| {
            u16_list(data)
                .into_iter()
                .map(signature_algorithm_name)
                .collect()
        })
        .unwrap_or_default();
    let certificate_authorities = extensions
        .and_then(|e| find_extension(e, 47))
        .map(distinguished_names)
        .unwrap_or_default();
    Stage::CertificateRequest {
        signature_algorithms,
        certificate_authorities,
    }
}

/// A `u16 list<2..2^16-2>` with its length prefix.
fn u16_list(data: &[u8]) -> Vec<u16> {
    let Some(list) = extensions_block(data, 0) else {
        return Vec::new();
    };
    list.chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect()
}

/// `DistinguishedName authorities<3..2^16-1>`, each `opaque<1..2^16-1>` DER,
/// as one-line names (`CN=..., O=...`); a name that does not parse is "?".
fn distinguished_names(data: &[u8]) -> Vec<String> {
    let Some(mut list) = extensions_block(data, 0) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    while let Some(der) = extensions_block(list, 0) {
        names.push(boring::x509::X509Name::from_der(der).map_or_else(
            |_| "?".to_owned(),
            |name| quicprobe_verifier::name_one_line(&name),
        ));
        list = &list[2 + der.len()..];
    }
    names
}

/// How many certificates a TLS 1.3 Certificate body carries.
/// A CompressedCertificate (RFC 8879 §4): the algorithm, the uncompressed
/// length, then the compressed Certificate body. zlib is inflated here to
/// count the certificates; other algorithms are only named.
fn compressed_certificate(message: &TlsMessage) -> Stage {
    let body = message.bytes.get(4..).unwrap_or_default();
    let algorithm = read_u16(body, 0).unwrap_or(0);
    let uncompressed_len = read_u24(body, 2).unwrap_or(0);
    let compressed = read_u24(body, 5)
        .and_then(|len| body.get(8..8 + len))
        .unwrap_or_default();
    let inflated = (algorithm == 1)
        .then(|| crate::engine::compression::inflate(compressed, uncompressed_len as u64).ok())
        .flatten();
    Stage::Certificate {
        certificates: inflated
            .as_deref()
            .and_then(count_certificates)
            .unwrap_or(0),
        bytes: uncompressed_len + 4,
        compression: Some(CertCompression {
            algorithm: crate::engine::compression::algorithm_name(algorithm),
            wire_bytes: message.bytes.len(),
        }),
    }
}

fn count_certificates(body: &[u8]) -> Option<usize> {
    let context_len = usize::from(*body.first()?);
    let list_len = read_u24(body, 1 + context_len)?;
    let mut list = body.get(4 + context_len..4 + context_len + list_len)?;
    let mut count = 0;
    while !list.is_empty() {
        let cert_len = read_u24(list, 0)?;
        let extensions_at = 3 + cert_len;
        let extensions_len = usize::from(read_u16(list, extensions_at)?);
        list = list.get(extensions_at + 2 + extensions_len..)?;
        count += 1;
    }
    Some(count)
}

pub fn cipher_name(id: u16) -> String {
    match id {
        0x1301 => "TLS_AES_128_GCM_SHA256".into(),
        0x1302 => "TLS_AES_256_GCM_SHA384".into(),
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256".into(),
        other => format!("0x{other:04x}"),
    }
}

pub fn group_name(id: u16) -> String {
    match id {
        0x0017 => "P-256".into(),
        0x0018 => "P-384".into(),
        0x0019 => "P-521".into(),
        0x001d => "X25519".into(),
        0x11ec => "X25519MLKEM768".into(),
        0x6399 => "X25519Kyber768Draft00".into(),
        other => format!("0x{other:04x}"),
    }
}

pub fn signature_algorithm_name(id: u16) -> String {
    match id {
        0x0401 => "rsa_pkcs1_sha256".into(),
        0x0501 => "rsa_pkcs1_sha384".into(),
        0x0601 => "rsa_pkcs1_sha512".into(),
        0x0403 => "ecdsa_secp256r1_sha256".into(),
        0x0503 => "ecdsa_secp384r1_sha384".into(),
        0x0603 => "ecdsa_secp521r1_sha512".into(),
        0x0804 => "rsa_pss_rsae_sha256".into(),
        0x0805 => "rsa_pss_rsae_sha384".into(),
        0x0806 => "rsa_pss_rsae_sha512".into(),
        0x0807 => "ed25519".into(),
        0x0201 => "rsa_pkcs1_sha1".into(),
        0x0203 => "ecdsa_sha1".into(),
        0x0904 => "mldsa44".into(),
        0x0905 => "mldsa65".into(),
        0x0906 => "mldsa87".into(),
        other => format!("0x{other:04x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(outgoing: bool, kind: u8, body: &[u8]) -> TlsMessage {
        let len = body.len();
        let mut bytes = vec![kind, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        bytes.extend_from_slice(body);
        TlsMessage { outgoing, bytes }
    }

    #[test]
    fn server_hello_gives_cipher_and_group() {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0u8; 32]);
        body.push(0); // no session id
        body.extend_from_slice(&[0x13, 0x01, 0x00]);
        let key_share = [0x00, 0x33, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x00];
        body.extend_from_slice(&(key_share.len() as u16).to_be_bytes());
        body.extend_from_slice(&key_share);
        let stage = stage_of(&message(false, 2, &body), &[], None);
        assert_eq!(
            stage,
            Some(Stage::ServerHello {
                cipher: Some("TLS_AES_128_GCM_SHA256".into()),
                group: Some("X25519".into()),
            })
        );
    }

    #[test]
    fn truncated_messages_give_unknown_fields_not_panics() {
        for kind in [2u8, 8, 11, 13, 15] {
            for len in 0..40 {
                let body = vec![0xffu8; len];
                let _ = stage_of(&message(false, kind, &body), &[], None);
                let _ = stage_of(&message(true, kind, &body), &[], None);
            }
        }
    }

    #[test]
    fn certificate_request_names_algorithms_and_authorities() {
        let name = boring::x509::X509NameBuilder::new()
            .and_then(|mut b| {
                b.append_entry_by_text("CN", "Client CA")?;
                Ok(b.build())
            })
            .expect("name")
            .to_der()
            .expect("der");
        let mut authorities = (name.len() as u16).to_be_bytes().to_vec();
        authorities.extend_from_slice(&name);
        let mut ca_ext = (authorities.len() as u16).to_be_bytes().to_vec();
        ca_ext.extend_from_slice(&authorities);
        let sig_ext = [0x00, 0x04, 0x04, 0x03, 0x08, 0x04];
        let mut extensions = Vec::new();
        for (kind, data) in [(13u16, &sig_ext[..]), (47, &ca_ext[..])] {
            extensions.extend_from_slice(&kind.to_be_bytes());
            extensions.extend_from_slice(&(data.len() as u16).to_be_bytes());
            extensions.extend_from_slice(data);
        }
        let mut body = vec![0u8]; // empty certificate_request_context
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(&extensions);
        assert_eq!(
            stage_of(&message(false, 13, &body), &[], None),
            Some(Stage::CertificateRequest {
                signature_algorithms: vec![
                    "ecdsa_secp256r1_sha256".into(),
                    "rsa_pss_rsae_sha256".into()
                ],
                certificate_authorities: vec!["CN=Client CA".into()],
            })
        );
    }

    #[test]
    fn an_empty_client_certificate_counts_none() {
        // context length 0, certificate_list length 0
        let stage = stage_of(&message(true, 11, &[0, 0, 0, 0]), &[], None);
        assert_eq!(
            stage,
            Some(Stage::ClientCertificateSent {
                certificates: 0,
                bytes: 8
            })
        );
    }

    #[test]
    fn certificate_message_counts_entries() {
        let mut list = Vec::new();
        for cert_len in [3usize, 5] {
            list.extend_from_slice(&[0, 0, cert_len as u8]);
            list.extend(std::iter::repeat_n(0xaa, cert_len));
            list.extend_from_slice(&[0, 0]);
        }
        let mut body = vec![0u8, 0, 0, list.len() as u8];
        body.extend_from_slice(&list);
        assert_eq!(count_certificates(&body), Some(2));
    }
}
