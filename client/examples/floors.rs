//! The floors of issue 18, measured through BoringSSL's own API (the `boring`
//! crate, the same BoringSSL quicprobe links): what one handshake's public-key
//! work and one gigabyte's packet decryption cost when nothing else runs.
//! scripts/bench runs it beside the cases it bounds and divides the client's
//! CPU by these figures.
//!
//!   floors handshake [--certs DIR] [--iterations N]
//!   floors aead [--bytes N] [--record BYTES]
//!
//! Prints one JSON object. Every figure is the median over BATCHES batches of
//! wall time on one thread (the work is pure computation, so wall time is CPU
//! time unless the machine preempts; the median keeps a preempted batch out).
//!
//! What the handshake floor includes, per handshake, for the client:
//! - the key share: X25519 key generation and the X25519 shared secret, plus for
//!   X25519MLKEM768 the ML-KEM-768 key generation and decapsulation (the server
//!   encapsulates; the client never does);
//! - the chain's signatures, as `X509_verify_cert` checks them: each certificate
//!   sent by the next one's key, the last by the trusted root's (`X509::verify`);
//! - the CertificateVerify: one ECDSA P-256 / SHA-256 verify over the 130-byte
//!   message TLS 1.3 signs (64 spaces, the context string, a zero, a SHA-256
//!   transcript hash).
//!
//! and excludes everything else a handshake needs (transcript hashing, HKDF, the
//! Finished MACs, packet protection, parsing, path building): those are above the
//! floor by definition, and the profile says how much they cost.
//!
//! The download floor's AEAD part: BoringSSL's `EVP_AEAD` open (what quiche
//! calls for every packet) of `--bytes` in records of `--record` bytes,
//! with a 20-byte associated header; header protection (one AES block per
//! packet) is excluded.

use std::path::{Path, PathBuf};
use std::time::Instant;

use boring::aead::{AeadCtx, Algorithm as Aead};
use boring::derive::Deriver;
use boring::hash::MessageDigest;
use boring::mlkem::{Algorithm as Kem, MlKemPrivateKey};
use boring::pkey::{Id, PKey, Private, Public};
use boring::sign::{Signer, Verifier};
use boring::x509::X509;

/// Batches per figure; the median batch is reported.
const BATCHES: usize = 7;
/// The associated data of a short-header QUIC packet, roughly.
const HEADER_BYTES: usize = 20;

struct Options {
    certs: PathBuf,
    iterations: usize,
    aead_bytes: usize,
    record: usize,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_default();
    let options = parse_options(args);
    let json = match what.as_str() {
        "handshake" => handshake_floor(&options),
        "aead" => aead_floor(&options),
        _ => usage(&what),
    };
    println!("{json}");
}

/// µs of public-key work per handshake, per component and summed per group.
fn handshake_floor(options: &Options) -> serde_json::Value {
    let keys = HandshakeKeys::load(&options.certs);
    let n = options.iterations;
    let x25519 = micros_per_op(n, x25519_client_share);
    let mlkem = micros_per_op(n, mlkem768_client_share);
    let chain = micros_per_op(n, || keys.check_chain());
    let certificate_verify = micros_per_op(n, || keys.check_certificate_verify());
    let signatures = chain + certificate_verify;
    serde_json::json!({
        "iterations": n,
        "chain_signatures": keys.chain.len(),
        "x25519_share_us": x25519,
        "mlkem768_share_us": mlkem,
        "chain_signatures_us": chain,
        "certificate_verify_us": certificate_verify,
        "floor_x25519mlkem768_ms": (x25519 + mlkem + signatures) / 1000.0,
        "floor_x25519_ms": (x25519 + signatures) / 1000.0,
    })
}

/// Seconds of AEAD open per GB, for the two ciphers the servers negotiate.
fn aead_floor(options: &Options) -> serde_json::Value {
    serde_json::json!({
        "record_bytes": options.record,
        "aead_bytes": options.aead_bytes,
        "aes_128_gcm_open_s_per_gb": aead_open_s_per_gb(&Aead::aes_128_gcm(), options),
        "aes_256_gcm_open_s_per_gb": aead_open_s_per_gb(&Aead::aes_256_gcm(), options),
    })
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Options {
    let mut options = Options {
        certs: Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/full-chain"),
        iterations: 500,
        aead_bytes: 256 << 20,
        record: 1200,
    };
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage(&flag));
        let number = || value.parse().unwrap_or_else(|_| usage(&flag));
        match flag.as_str() {
            "--certs" => options.certs = value.clone().into(),
            "--iterations" => options.iterations = number(),
            "--bytes" => options.aead_bytes = number(),
            "--record" => options.record = number(),
            _ => usage(&flag),
        }
    }
    options
}

fn usage(what: &str) -> ! {
    eprintln!(
        "floors: bad argument {what:?}\nusage: floors handshake [--certs DIR] [--iterations N]\n       floors aead [--bytes N] [--record BYTES]"
    );
    std::process::exit(2)
}

/// µs per call of `op`: the median of BATCHES batches of `n` calls.
fn micros_per_op(n: usize, mut op: impl FnMut()) -> f64 {
    op(); // warm: first-use tables, page faults
    let mut batches: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                op();
            }
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[BATCHES / 2]
}

/// The client's X25519 work: its key share, then the shared secret with the
/// server's. BoringSSL's TLS stack calls X25519_keypair/X25519 directly; the
/// EVP layer used here adds an allocation or two, which errs on the high side.
fn x25519_client_share() {
    thread_local!(static SERVER: PKey<Private> = PKey::generate(Id::X25519).expect("x25519 key"));
    let ours = PKey::generate(Id::X25519).expect("x25519 key");
    SERVER.with(|server| {
        let mut deriver = Deriver::new(&ours).expect("deriver");
        deriver.set_peer(server).expect("peer");
        std::hint::black_box(deriver.derive_to_vec().expect("x25519"));
    });
}

/// The client's ML-KEM-768 work: a key pair, then one decapsulation. The
/// ciphertext is one made for another key: decapsulation re-encrypts and
/// compares in constant time (implicit rejection), so it costs the same.
fn mlkem768_client_share() {
    thread_local!(static CIPHERTEXT: Vec<u8> = {
        let (public, _) = MlKemPrivateKey::generate(Kem::MlKem768).expect("ml-kem key");
        public.encapsulate().expect("encapsulate").0
    });
    let (_, private) = MlKemPrivateKey::generate(Kem::MlKem768).expect("ml-kem key");
    CIPHERTEXT.with(|ct| std::hint::black_box(private.decapsulate(ct).expect("decapsulate")));
}

/// The scenario's keys, parsed once (parsing is not the floor).
struct HandshakeKeys {
    /// Each certificate on the path with its issuer's key, the last one's
    /// issuer being the trusted root.
    chain: Vec<(X509, PKey<Public>)>,
    leaf_key: PKey<Public>,
    certificate_verify: Vec<u8>,
    signature: Vec<u8>,
}

impl HandshakeKeys {
    fn load(dir: &Path) -> Self {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
        };
        let mut path = X509::stack_from_pem(&read("chain.pem")).expect("chain.pem");
        path.extend(X509::stack_from_pem(&read("roots.pem")).expect("roots.pem"));
        let chain: Vec<_> = path
            .windows(2)
            .map(|pair| (pair[0].clone(), pair[1].public_key().expect("issuer key")))
            .collect();
        let leaf_key = path[0].public_key().expect("leaf key");
        let private = PKey::private_key_from_pem(&read("key.pem")).expect("key.pem");
        let certificate_verify = certificate_verify_message();
        let mut signer = Signer::new(MessageDigest::sha256(), &private).expect("signer");
        let signature = signer
            .sign_oneshot_to_vec(&certificate_verify)
            .expect("sign");
        let keys = Self {
            chain,
            leaf_key,
            certificate_verify,
            signature,
        };
        assert!(
            keys.chain_is_valid(),
            "{}: path out of order",
            dir.display()
        );
        keys
    }

    fn chain_is_valid(&self) -> bool {
        self.chain
            .iter()
            .all(|(cert, issuer)| cert.verify(issuer).unwrap_or(false))
    }

    fn check_chain(&self) {
        assert!(std::hint::black_box(self.chain_is_valid()));
    }

    fn check_certificate_verify(&self) {
        let mut verifier =
            Verifier::new(MessageDigest::sha256(), &self.leaf_key).expect("verifier");
        assert!(verifier
            .verify_oneshot(&self.signature, &self.certificate_verify)
            .expect("verify"));
    }
}

/// What a TLS 1.3 server signs in CertificateVerify (RFC 8446 §4.4.3).
fn certificate_verify_message() -> Vec<u8> {
    let mut message = vec![b' '; 64];
    message.extend_from_slice(b"TLS 1.3, server CertificateVerify\0");
    message.extend_from_slice(&[0x5a; 32]); // a SHA-256 transcript hash
    message
}

/// Seconds of `EVP_AEAD` open per 10^9 bytes of plaintext.
fn aead_open_s_per_gb(algorithm: &Aead, options: &Options) -> f64 {
    let key = vec![7u8; algorithm.key_length()];
    let mut ctx = AeadCtx::new_default_tag(algorithm, &key).expect("aead key");
    let header = [0x40u8; HEADER_BYTES];
    let nonce = vec![0u8; algorithm.nonce_len()];
    let mut sealed = vec![0u8; options.record];
    let mut tag = vec![0u8; algorithm.max_overhead()];
    let tag_len = ctx
        .seal_in_place_mut(&nonce, &mut sealed, &mut tag, &header)
        .expect("seal")
        .len();
    tag.truncate(tag_len);
    let records = (options.aead_bytes / options.record).max(1);
    let mut buffer = sealed.clone();
    // Each open decrypts the same sealed record afresh (the buffer stays in
    // cache, as a packet just received does). Restoring the ciphertext is a
    // copy that is not the AEAD's work: timed alone and taken off.
    let per_batch = records / BATCHES + 1;
    let open_and_copy = micros_per_op(per_batch, || {
        buffer.copy_from_slice(&sealed);
        ctx.open_in_place_mut(&nonce, &mut buffer, &tag, &header)
            .expect("open");
    });
    let copy = micros_per_op(per_batch, || {
        buffer.copy_from_slice(std::hint::black_box(&sealed));
        std::hint::black_box(&mut buffer);
    });
    (open_and_copy - copy).max(0.0) / 1e6 / options.record as f64 * 1e9
}
