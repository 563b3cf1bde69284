//! The entry points of the cargo-fuzz targets in `fuzz/`, kept in the library
//! so that the fuzz targets and the tests that replay `fuzz/corpus/` call the
//! same code and cannot drift apart. Each takes arbitrary bytes and must
//! return without panicking, whatever the bytes are.
//!
//! Nothing here does network I/O or asks a resolver: addresses come only from
//! `--resolve` entries and IP literals (see [`scan::resolve_without_lookup`]).
//! The verifier's targets are in `quicprobe_verifier::fuzzing`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::engine::handshake::{self, CertCompression, Stage, StageEvent, TlsMessage, Traffic};
use crate::engine::outcome::{Close, End, Outcome, OutcomeKind, Side};
use crate::engine::target::{ConnectTo, ResolveEntry, Target};
use crate::report::trace::{self, TraceStyle};
use crate::scan;

/// Most stages a fuzzed trace holds; a real handshake has about a dozen.
const MAX_STAGES: usize = 256;

/// Fuzz target `target_parse`: the first line as a TARGET argument, every
/// line as a `--resolve` entry and as a `--connect-to` entry. A target that
/// parses is resolved through the `--resolve` entries or its IP literal only.
pub fn target_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let mut overrides = Vec::new();
    for line in text.split('\n') {
        match line.parse::<ResolveEntry>() {
            Ok(entry) => overrides.push(entry),
            Err(error) => {
                let _ = error.to_string();
            }
        }
        if let Err(error) = line.parse::<ConnectTo>() {
            let _ = error.to_string();
        }
    }
    let target = match Target::parse(first) {
        Ok(target) => target,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let authority = target.authority();
    // What the scan report prints must read back as the same host and port.
    let again = Target::parse(&authority)
        .unwrap_or_else(|error| panic!("{first:?} gave authority {authority:?}: {error}"));
    assert_eq!(
        (&again.host, again.port),
        (&target.host, target.port),
        "{first:?} gave authority {authority:?}"
    );
    let _ = target.peer_name().to_string();
    let _ = target.default_sni();
    if let Some(Ok(addrs)) = scan::resolve_without_lookup(&target, &overrides) {
        assert!(!addrs.is_empty(), "{first:?}: no address and no error");
        assert_eq!(target.resolve(&overrides).ok(), Some(addrs[0]));
    }
}

/// Fuzz target `scan_file`: the bytes as a `quicprobe scan` targets file;
/// every target given as an IP literal is resolved (no name is looked up).
pub fn scan_file(data: &[u8]) {
    for line in scan::parse_targets(data) {
        assert!(line.number >= 1);
        if let Some((_, wanted)) = line.with_target() {
            let _ = wanted.target.authority();
            if let Some(Ok(addrs)) = scan::resolve_without_lookup(&wanted.target, &[]) {
                assert!(!addrs.is_empty(), "{:?}: no address", line.input);
            }
        }
    }
}

/// Fuzz target `aioquic_trace`: an outcome and its stage events built from
/// the bytes (some stages parsed from fuzzed TLS messages, as the message
/// callback's would be), printed in the aioquic style, and in the native and
/// JSON styles, which read the same stages.
pub fn aioquic_trace(data: &[u8]) {
    let outcome = fuzzed_outcome(&mut Bytes(data));
    let _ = trace::render(&outcome, TraceStyle::Aioquic, 0);
    let _ = trace::render(&outcome, TraceStyle::Native, 0);
    let _ = trace::render(&outcome, TraceStyle::Json, 1);
    let _ = trace::summary_line(&outcome);
}

fn fuzzed_outcome(bytes: &mut Bytes) -> Outcome {
    let kind = match bytes.u8() % 6 {
        0 => OutcomeKind::Ok,
        1 => OutcomeKind::VerificationFailed,
        2 => OutcomeKind::HandshakeFailed,
        3 => OutcomeKind::Timeout,
        4 => OutcomeKind::Refused,
        _ => OutcomeKind::PartialResponse,
    };
    let connection_id = bytes.string();
    let alpn = bytes.option(Bytes::string);
    let close = bytes.option(|b| Close {
        sent_by: if b.bool() { Side::Client } else { Side::Server },
        is_app: b.bool(),
        error_code: b.u64(),
        reason: b.string(),
        tls_alert: b.option(Bytes::u8),
    });
    let elapsed = Duration::from_micros(bytes.u64());
    let initial_keys_dropped_ms = bytes.option(Bytes::f64);
    let insecure = bytes.bool();
    let mut stages = Vec::new();
    while !bytes.0.is_empty() && stages.len() < MAX_STAGES {
        if let Some(event) = fuzzed_stage_event(bytes) {
            stages.push(event);
        }
    }
    let mut outcome = Outcome::bare(
        kind,
        "localhost:443".into(),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443),
        connection_id,
        stages,
    );
    outcome.end = End {
        close,
        elapsed,
        ..outcome.end
    };
    outcome.handshake.alpn = alpn;
    outcome.handshake.initial_keys_dropped_ms = initial_keys_dropped_ms;
    // Derived, so that the corpus keeps its layout; one past the last stage
    // too, which a renderer must survive.
    outcome.handshake.initial_keys_dropped_after_stage = initial_keys_dropped_ms
        .map(|ms| (ms.abs() as usize) % (outcome.handshake.stages.len() + 1));
    outcome.chain.insecure = insecure;
    outcome
}

fn fuzzed_stage_event(bytes: &mut Bytes) -> Option<StageEvent> {
    let selector = bytes.u8();
    let stage = match selector % 13 {
        0 => Stage::ClientHelloSent {
            sni: bytes.option(Bytes::string),
            alpns: (0..bytes.u8() % 4).map(|_| bytes.string()).collect(),
            bytes: usize::from(bytes.u16()),
        },
        1 => Stage::Retry {
            token_bytes: usize::from(bytes.u16()),
        },
        2 => Stage::VersionNegotiation {
            offered: (0..bytes.u8() % 4).map(|_| bytes.string()).collect(),
        },
        3 => Stage::ServerHello {
            cipher: bytes.option(Bytes::string),
            group: bytes.option(Bytes::string),
        },
        4 => Stage::EncryptedExtensions {
            alpn: bytes.option(Bytes::string),
            transport_parameters: bytes.option(Bytes::string),
        },
        5 => Stage::Certificate {
            certificates: usize::from(bytes.u16()),
            bytes: bytes.u32() as usize,
            compression: bytes.option(|b| CertCompression {
                algorithm: b.string(),
                wire_bytes: usize::from(b.u16()),
            }),
        },
        6 => Stage::Verdict {
            accepted: bytes.bool(),
            x509_error: bytes.u32() as i32,
            reason: bytes.string(),
        },
        7 => Stage::CertificateVerify {
            signature_algorithm: bytes.option(Bytes::string),
        },
        8 => Stage::ServerFinished,
        9 => Stage::ClientFinishedSent,
        10 => Stage::HandshakeDone,
        // A TLS message as BoringSSL's callback hands it over, parsed as the
        // probe parses it: type, 24-bit length, body.
        _ => {
            let outgoing = bytes.bool();
            let len = usize::from(bytes.u16());
            let message = TlsMessage {
                outgoing,
                bytes: bytes.take(len).to_vec(),
            };
            let alpns = ["h3".to_owned()];
            handshake::stage_of(&message, &alpns, Some("localhost"))?
        }
    };
    let traffic = Traffic {
        sent_bytes: u64::from(bytes.u32()),
        sent_packets: usize::from(bytes.u16()),
        recv_bytes: u64::from(bytes.u32()),
        recv_packets: usize::from(bytes.u16()),
    };
    let mut event = StageEvent::new(stage, Duration::from_micros(bytes.u64()), traffic);
    // The field is public: any float, not only the rounded milliseconds
    // `StageEvent::new` makes, must print.
    if selector >= 0xf0 {
        event.t_ms = bytes.f64();
    }
    Some(event)
}

/// Reads fuzz input front to back; past the end every read gives zero.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take(&mut self, len: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken
    }

    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) << 8 | u16::from(self.u8())
    }

    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) << 16 | u32::from(self.u16())
    }

    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) << 32 | u64::from(self.u32())
    }

    fn f64(&mut self) -> f64 {
        f64::from_bits(self.u64())
    }

    /// A length byte, then that many bytes as (lossy) UTF-8.
    fn string(&mut self) -> String {
        let len = usize::from(self.u8());
        String::from_utf8_lossy(self.take(len)).into_owned()
    }

    fn option<T>(&mut self, read: impl FnOnce(&mut Self) -> T) -> Option<T> {
        self.bool().then(|| read(self))
    }
}
