//! The JSON contract of `connect --json` pinned as a snapshot: an outcome
//! built from fixed values and a real chain of certs/ is serialised and
//! compared byte for byte with `tests/snapshots/outcome.json`. A change to
//! any field, its name, its type or its place is a visible diff in review.
//!
//! When the change is meant: `UPDATE_SNAPSHOTS=1 cargo test -p quicprobe
//! --test json_contract` rewrites the snapshot, and docs/usage.md must say
//! what changed. Regenerating certs/ changes the chain's fingerprints and
//! serials there too.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use quicprobe::engine::handshake::{KeysDropped, Stage, StageEvent, Traffic};
use quicprobe::engine::outcome::{Close, IdleEnd, Outcome, OutcomeKind, SessionReport, Side};
use quicprobe_verifier::{read_certificates, Analysis, PeerName, TrustStore};

fn snapshot_path() -> PathBuf {
    support::repo().join("client/tests/snapshots/outcome.json")
}

fn traffic(sent: u64, recv: u64) -> Traffic {
    Traffic {
        sent_bytes: sent,
        sent_packets: 1,
        recv_bytes: recv,
        recv_packets: 1,
    }
}

/// The seed case as an outcome: the leaf-only chain rejected with 20.
fn seed_outcome() -> Outcome {
    let dir = support::scenario("leaf-only");
    let chain = read_certificates(&dir.join("chain.pem")).expect("chain");
    // Relative to the package (cargo runs tests there), so that the trust
    // store's path in the JSON is the same in every clone.
    let trust = TrustStore::from_pem_files(&[PathBuf::from("../certs/leaf-only/roots.pem")])
        .expect("roots");
    let analysis = Analysis::run(&chain, &trust, Some(&PeerName::parse("localhost")));
    let stages = vec![
        StageEvent {
            stage: Stage::ClientHelloSent {
                sni: Some("localhost".into()),
                alpns: vec!["h3".into()],
                bytes: 1495,
            },
            t_ms: 1.5,
            traffic: traffic(1200, 0),
        },
        StageEvent {
            stage: Stage::ServerHello {
                cipher: Some("TLS_AES_128_GCM_SHA256".into()),
                group: Some("X25519MLKEM768".into()),
            },
            t_ms: 4.9,
            traffic: traffic(2400, 2400),
        },
        StageEvent {
            stage: Stage::Certificate {
                certificates: 1,
                bytes: 580,
                compression: None,
            },
            t_ms: 6.0,
            traffic: traffic(2400, 2647),
        },
        StageEvent {
            stage: Stage::Verdict {
                accepted: false,
                x509_error: 20,
                reason: "unable to get local issuer certificate".into(),
            },
            t_ms: 6.0,
            traffic: traffic(2400, 2647),
        },
    ];
    let mut outcome = Outcome::bare(
        OutcomeKind::VerificationFailed,
        "localhost:4433".into(),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4433),
        "0d3c79fddcee7380".into(),
        stages,
    );
    outcome.end.close = Some(Close {
        sent_by: Side::Client,
        is_app: false,
        error_code: 0x12a,
        reason: "unable to get local issuer certificate".into(),
        tls_alert: Some(42),
    });
    outcome.end.elapsed = Duration::from_millis(7);
    outcome.handshake.initial_keys_dropped = Some(KeysDropped {
        t_ms: 5.5,
        after_stage: 3,
    });
    outcome.chain.analysis = Some(analysis);
    outcome.handshake.session = Some(SessionReport {
        offered: false,
        resumed: false,
        early_data: None,
    });
    outcome.end.idle_end = Some(IdleEnd {
        by: Side::Server,
        server_idle_timeout_ms: 1000,
        our_idle_timeout_ms: 30000,
        idle_ms: 1001,
        connected_ms: 1010,
    });
    outcome
}

#[test]
fn the_connect_json_contract_is_the_snapshot() {
    let mut text = serde_json::to_string_pretty(&seed_outcome().to_json()).expect("JSON");
    text.push('\n');
    let path = snapshot_path();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&path, &text).expect("write the snapshot");
        return;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run UPDATE_SNAPSHOTS=1 cargo test -p quicprobe --test json_contract",
            path.display()
        )
    });
    if pinned != text {
        let first = pinned
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| pinned.lines().count().min(text.lines().count()));
        panic!(
            "the JSON contract changed (first difference at line {}):\n  pinned: {:?}\n  now:    {:?}\n\
             If this is meant, run UPDATE_SNAPSHOTS=1 cargo test -p quicprobe --test json_contract \
             and say what changed in docs/usage.md.",
            first + 1,
            pinned.lines().nth(first),
            text.lines().nth(first)
        );
    }
}
