//! µs per strict verification (BoringSSL's X509_verify_cert with purpose and
//! hostname), the trust store built once as the client builds it.
//! Run: scripts/bench (or `cargo bench -p quicprobe-verifier`).

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use quicprobe_verifier::{read_certificates, verify, Analysis, PeerName, TrustStore};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs")
        .join(name)
}

fn bench_scenario(c: &mut Criterion, label: &str, name: &str) {
    let dir = scenario(name);
    let chain = read_certificates(&dir.join("chain.pem")).unwrap();
    let trust = TrustStore::from_pem_files(&[dir.join("roots.pem")]).unwrap();
    let host = std::fs::read_to_string(dir.join("host")).unwrap();
    let peer = PeerName::parse(host.trim());
    assert!(
        verify(&chain, &trust, Some(&peer)).accepted,
        "{name} must verify"
    );
    c.bench_function(&format!("verify/{label}"), |b| {
        b.iter(|| verify(&chain, &trust, Some(&peer)))
    });
    c.bench_function(&format!("analyse/{label}"), |b| {
        b.iter(|| Analysis::run(&chain, &trust, Some(&peer)))
    });
}

/// The floor: one certificate signature checked by BoringSSL (`X509_verify`),
/// of which a chain of N certificates below the root needs N.
fn bench_one_signature(c: &mut Criterion, label: &str, name: &str) {
    let chain = read_certificates(&scenario(name).join("chain.pem")).unwrap();
    let issuer_key = chain[1].public_key().unwrap();
    assert!(chain[0].verify(&issuer_key).unwrap());
    c.bench_function(&format!("one-signature/{label}"), |b| {
        b.iter(|| chain[0].verify(&issuer_key))
    });
}

/// The floor of a whole verification: every signature `X509_verify_cert`
/// must check for this chain (each certificate sent by the next one, the
/// last by the trusted root; the root's own signature is not checked), with
/// the keys already parsed. `verify` minus this is everything else: building
/// the path, purpose, names, dates, and quicprobe's own work.
fn bench_chain_signatures(c: &mut Criterion, label: &str, name: &str) {
    let dir = scenario(name);
    let mut path = read_certificates(&dir.join("chain.pem")).unwrap();
    path.extend(read_certificates(&dir.join("roots.pem")).unwrap());
    let pairs: Vec<_> = path
        .windows(2)
        .map(|pair| (pair[0].clone(), pair[1].public_key().unwrap()))
        .collect();
    for (cert, issuer_key) in &pairs {
        assert!(
            cert.verify(issuer_key).unwrap(),
            "{name}: path out of order"
        );
    }
    c.bench_function(&format!("chain-signatures/{label}"), |b| {
        b.iter(|| {
            pairs
                .iter()
                .all(|(cert, issuer_key)| cert.verify(issuer_key).unwrap_or(false))
        })
    });
}

fn verification(c: &mut Criterion) {
    bench_one_signature(c, "ecdsa-p256", "full-chain");
    bench_one_signature(c, "rsa4096", "rsa4096-chain");
    bench_chain_signatures(c, "ecdsa-p256-3-certs", "full-chain");
    bench_chain_signatures(c, "rsa4096-5-certs", "rsa4096-chain");
    bench_scenario(c, "ecdsa-p256-3-certs", "full-chain");
    bench_scenario(c, "rsa4096-5-certs", "rsa4096-chain");
}

criterion_group!(benches, verification);
criterion_main!(benches);
