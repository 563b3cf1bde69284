//! Signature checks of the report and the diagnosis, remembered by the exact
//! bytes of both certificates. Checking what the chain's structure says
//! (which sent certificate issued which, which root signed the last one)
//! takes one public-key verification per pair, and a scan meets the same
//! pairs target after target: 10,000 hosts behind one CA send the same
//! intermediate. The handshake's own verification never comes here: it is
//! BoringSSL's, done in full for every connection.

use boring::hash::MessageDigest;
use boring::x509::X509Ref;

use crate::memo::Memo;

/// A pair: the SHA-256 of the subject's DER, then of the issuer's.
type PairKey = [u8; 64];

static PAIRS: Memo<PairKey, bool> = Memo::new(4096);

/// Whether `issuer`'s public key verifies `subject`'s signature.
pub fn signed_by(subject: &X509Ref, issuer: &X509Ref) -> bool {
    match pair_key(subject, issuer) {
        Some(key) => PAIRS.get_or_compute(key, || verify(subject, issuer)),
        None => verify(subject, issuer),
    }
}

fn verify(subject: &X509Ref, issuer: &X509Ref) -> bool {
    issuer
        .public_key()
        .is_ok_and(|key| subject.verify(&key).unwrap_or(false))
}

fn pair_key(subject: &X509Ref, issuer: &X509Ref) -> Option<PairKey> {
    let subject = subject.digest(MessageDigest::sha256()).ok()?;
    let issuer = issuer.digest(MessageDigest::sha256()).ok()?;
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(subject.as_ref());
    key[32..].copy_from_slice(issuer.as_ref());
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use boring::x509::X509;

    fn chain(name: &str) -> Vec<X509> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/");
        let pem = std::fs::read(format!("{path}{name}/chain.pem")).unwrap();
        X509::stack_from_pem(&pem).unwrap()
    }

    #[test]
    fn a_remembered_answer_is_the_answer_for_those_bytes_both_ways() {
        let chain = chain("full-chain");
        let (leaf, intermediate) = (&chain[0], &chain[1]);
        for _ in 0..2 {
            assert!(signed_by(leaf, intermediate));
            assert!(!signed_by(intermediate, leaf));
            assert!(!signed_by(leaf, leaf));
        }
    }
}
