//! Keys for clones: a fresh key of the same type and size as an original's,
//! and signatures made exactly as an original's signature algorithm says.

use boring::bn::BigNum;
use boring::ec::{EcGroup, EcKey};
use boring::error::ErrorStack;
use boring::hash::MessageDigest;
use boring::nid::Nid;
use boring::pkey::{Id, PKey, PKeyRef, Private, Public};
use boring::rsa::{Padding, Rsa};
use boring::sign::{RsaPssSaltlen, Signer};

use super::der::{tag, DerError, Tlv};

/// The kind of key a certificate holds, as much as a clone must keep.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum KeySpec {
    /// RSA: modulus size in bits and public exponent (big-endian bytes).
    Rsa {
        bits: u32,
        exponent: Vec<u8>,
    },
    /// EC on a named curve.
    Ec(Nid),
    Ed25519,
}

impl KeySpec {
    /// The spec of an original's public key; `Err` names a key type the
    /// engine cannot generate (DSA, Ed448, X25519...).
    pub fn of(key: &PKeyRef<Public>) -> Result<Self, String> {
        match key.id() {
            Id::RSA => {
                let rsa = key.rsa().map_err(|_| "RSA".to_owned())?;
                let bits = u32::try_from(rsa.n().num_bits()).map_err(|_| "RSA".to_owned())?;
                Ok(Self::Rsa {
                    bits,
                    exponent: rsa.e().to_vec(),
                })
            }
            Id::EC => {
                let ec = key.ec_key().map_err(|_| "EC".to_owned())?;
                ec.group()
                    .curve_name()
                    .map(Self::Ec)
                    .ok_or_else(|| "EC on an unnamed curve".to_owned())
            }
            Id::ED25519 => Ok(Self::Ed25519),
            other => Err(describe_id(other)),
        }
    }

    /// A fresh private key of this spec.
    pub fn generate(&self) -> Result<PKey<Private>, ErrorStack> {
        match self {
            Self::Rsa { bits, exponent } => {
                let e = BigNum::from_slice(exponent)?;
                PKey::from_rsa(Rsa::generate_with_e(*bits, &e)?)
            }
            Self::Ec(curve) => {
                let group = EcGroup::from_curve_name(*curve)?;
                PKey::from_ec_key(EcKey::generate(&group)?)
            }
            Self::Ed25519 => PKey::generate(Id::ED25519),
        }
    }
}

fn describe_id(id: Id) -> String {
    match id {
        Id::RSAPSS => "RSA-PSS (id-RSASSA-PSS key)".to_owned(),
        Id::DSA => "DSA".to_owned(),
        Id::ED448 => "Ed448".to_owned(),
        Id::X25519 => "X25519".to_owned(),
        Id::X448 => "X448".to_owned(),
        other => format!("EVP_PKEY type {}", other.as_raw()),
    }
}

/// How a signature is made: the signature algorithm of a certificate.
#[derive(Clone, Copy)]
pub(crate) enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5 with a digest.
    RsaPkcs1(MessageDigest),
    /// RSASSA-PSS with its parameters as written.
    RsaPss {
        digest: MessageDigest,
        mgf1: MessageDigest,
        salt_len: i32,
    },
    Ecdsa(MessageDigest),
    Ed25519,
}

/// OID contents (no tag, no length) of the algorithms the engine signs with.
mod oid {
    const PKCS1: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    pub const fn pkcs1(last: u8) -> [u8; 9] {
        let mut out = [0; 9];
        let mut i = 0;
        while i < 8 {
            out[i] = PKCS1[i];
            i += 1;
        }
        out[8] = last;
        out
    }
    pub const SHA1_WITH_RSA: [u8; 9] = pkcs1(0x05);
    pub const MGF1: [u8; 9] = pkcs1(0x08);
    pub const RSASSA_PSS: [u8; 9] = pkcs1(0x0a);
    pub const SHA256_WITH_RSA: [u8; 9] = pkcs1(0x0b);
    pub const SHA384_WITH_RSA: [u8; 9] = pkcs1(0x0c);
    pub const SHA512_WITH_RSA: [u8; 9] = pkcs1(0x0d);
    pub const SHA224_WITH_RSA: [u8; 9] = pkcs1(0x0e);
    pub const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    pub const ECDSA_SHA224: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01];
    pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    pub const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
    const NIST_HASH: [u8; 8] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
    pub fn nist_hash(content: &[u8]) -> Option<u8> {
        match content.split_at_checked(8) {
            Some((prefix, [last])) if prefix == NIST_HASH => Some(*last),
            _ => None,
        }
    }
}

/// Why an AlgorithmIdentifier cannot be reproduced.
#[derive(Debug)]
pub(crate) enum SchemeError {
    Der(DerError),
    /// An algorithm the engine does not sign with, as a dotted OID.
    Unsupported(String),
}

impl From<DerError> for SchemeError {
    fn from(e: DerError) -> Self {
        Self::Der(e)
    }
}

impl SignatureScheme {
    /// Reads a signature AlgorithmIdentifier (the whole TLV).
    pub fn parse(algorithm: &[u8]) -> Result<Self, SchemeError> {
        let seq = Tlv::read_exact(algorithm)?.expect(tag::SEQUENCE, "AlgorithmIdentifier")?;
        let (id, params) = oid_and_parameters(&seq)?;
        let scheme = match id {
            _ if id == oid::SHA1_WITH_RSA => Self::RsaPkcs1(MessageDigest::sha1()),
            _ if id == oid::SHA224_WITH_RSA => Self::RsaPkcs1(MessageDigest::sha224()),
            _ if id == oid::SHA256_WITH_RSA => Self::RsaPkcs1(MessageDigest::sha256()),
            _ if id == oid::SHA384_WITH_RSA => Self::RsaPkcs1(MessageDigest::sha384()),
            _ if id == oid::SHA512_WITH_RSA => Self::RsaPkcs1(MessageDigest::sha512()),
            _ if id == oid::RSASSA_PSS => Self::pss(params)?,
            _ if id == oid::ECDSA_SHA1 => Self::Ecdsa(MessageDigest::sha1()),
            _ if id == oid::ECDSA_SHA224 => Self::Ecdsa(MessageDigest::sha224()),
            _ if id == oid::ECDSA_SHA256 => Self::Ecdsa(MessageDigest::sha256()),
            _ if id == oid::ECDSA_SHA384 => Self::Ecdsa(MessageDigest::sha384()),
            _ if id == oid::ECDSA_SHA512 => Self::Ecdsa(MessageDigest::sha512()),
            _ if id == oid::ED25519 => Self::Ed25519,
            _ => return Err(SchemeError::Unsupported(dotted_oid(id))),
        };
        Ok(scheme)
    }

    /// RSASSA-PSS-params (RFC 4055): every field optional, with defaults
    /// SHA-1, MGF1 with SHA-1, salt 20, trailer 1.
    fn pss(params: Option<Tlv<'_>>) -> Result<Self, SchemeError> {
        let mut scheme = (MessageDigest::sha1(), MessageDigest::sha1(), 20);
        let fields = match params {
            Some(p) if p.tag == tag::SEQUENCE => p.children()?,
            _ => Vec::new(),
        };
        for field in fields {
            let inner = Tlv::read_exact(field.content)?;
            match field.tag {
                tag::CONTEXT_0 => scheme.0 = hash_of(&inner)?,
                tag::CONTEXT_1 => scheme.1 = mgf1_hash_of(&inner)?,
                tag::CONTEXT_2 => scheme.2 = small_integer(&inner)?,
                // trailerField: only 1 (0xBC) exists, nothing to choose.
                _ => {}
            }
        }
        Ok(Self::RsaPss {
            digest: scheme.0,
            mgf1: scheme.1,
            salt_len: scheme.2,
        })
    }

    /// The spec of a throwaway key that can make this kind of signature,
    /// for a certificate whose issuer was not given. An RSA signature is as
    /// long as its key's modulus, so the original's length gives the size;
    /// for ECDSA the curve is guessed from the digest (P-256 for SHA-256 and
    /// below, P-384, P-521), which is what CAs pair them with.
    pub fn throwaway_spec(&self, original_signature_len: usize) -> KeySpec {
        match self {
            Self::RsaPkcs1(_) | Self::RsaPss { .. } => {
                let bits = u32::try_from(original_signature_len * 8).unwrap_or(2048);
                KeySpec::Rsa {
                    bits: bits.clamp(1024, 8192),
                    exponent: vec![0x01, 0x00, 0x01],
                }
            }
            Self::Ecdsa(digest) => KeySpec::Ec(match digest.size() {
                48 => Nid::SECP384R1,
                64 => Nid::SECP521R1,
                _ => Nid::X9_62_PRIME256V1,
            }),
            Self::Ed25519 => KeySpec::Ed25519,
        }
    }

    /// Signs `message` (a TBSCertificate) with `key` as this scheme says.
    pub fn sign(&self, key: &PKeyRef<Private>, message: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        match *self {
            Self::RsaPkcs1(digest) | Self::Ecdsa(digest) => {
                let mut signer = Signer::new(digest, key)?;
                signer.update(message)?;
                signer.sign_to_vec()
            }
            Self::RsaPss {
                digest,
                mgf1,
                salt_len,
            } => {
                let mut signer = Signer::new(digest, key)?;
                signer.set_rsa_padding(Padding::PKCS1_PSS)?;
                signer.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt_len))?;
                signer.set_rsa_mgf1_md(mgf1)?;
                signer.update(message)?;
                signer.sign_to_vec()
            }
            Self::Ed25519 => Signer::new_without_digest(key)?.sign_oneshot_to_vec(message),
        }
    }
}

/// An AlgorithmIdentifier's OID (content bytes) and its parameters, if any.
fn oid_and_parameters<'a>(algorithm: &Tlv<'a>) -> Result<(&'a [u8], Option<Tlv<'a>>), DerError> {
    let children = algorithm.children()?;
    let id = children
        .first()
        .ok_or(DerError::Missing("algorithm OID"))?
        .expect(tag::OID, "algorithm OID")?
        .content;
    Ok((id, children.get(1).copied()))
}

/// The digest an AlgorithmIdentifier of a hash names.
fn hash_of(algorithm: &Tlv<'_>) -> Result<MessageDigest, SchemeError> {
    let (id, _) = oid_and_parameters(algorithm)?;
    if id == oid::SHA1 {
        return Ok(MessageDigest::sha1());
    }
    match oid::nist_hash(id) {
        Some(1) => Ok(MessageDigest::sha256()),
        Some(2) => Ok(MessageDigest::sha384()),
        Some(3) => Ok(MessageDigest::sha512()),
        Some(4) => Ok(MessageDigest::sha224()),
        _ => Err(SchemeError::Unsupported(dotted_oid(id))),
    }
}

/// The digest of MGF1's parameters; any other mask generation is refused.
fn mgf1_hash_of(algorithm: &Tlv<'_>) -> Result<MessageDigest, SchemeError> {
    match oid_and_parameters(algorithm)? {
        (id, Some(hash)) if id == oid::MGF1 => hash_of(&hash),
        (id, _) => Err(SchemeError::Unsupported(dotted_oid(id))),
    }
}

fn small_integer(value: &Tlv<'_>) -> Result<i32, SchemeError> {
    let value = value.expect(tag::INTEGER, "PSS salt length")?;
    if value.content.is_empty() || value.content.len() > 3 || value.content[0] & 0x80 != 0 {
        return Err(SchemeError::Unsupported(
            "a PSS salt length out of range".to_owned(),
        ));
    }
    Ok(value
        .content
        .iter()
        .fold(0i32, |n, &b| (n << 8) | i32::from(b)))
}

/// An OID's content bytes in dotted form, for messages ("1.2.840.10045.4.3.2").
pub(crate) fn dotted_oid(content: &[u8]) -> String {
    let mut arcs: Vec<u128> = Vec::new();
    let mut value: u128 = 0;
    for &b in content {
        value = value.saturating_mul(128) | u128::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let Some((&first, rest)) = arcs.split_first() else {
        return "(empty OID)".to_owned();
    };
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    std::iter::once(a)
        .chain(std::iter::once(b))
        .chain(rest.iter().copied())
        .map(|arc| arc.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clone::der::write;

    #[test]
    fn dotted_oids_read_as_people_write_them() {
        assert_eq!(dotted_oid(oid::ECDSA_SHA256), "1.2.840.10045.4.3.2");
        assert_eq!(dotted_oid(&oid::RSASSA_PSS), "1.2.840.113549.1.1.10");
        assert_eq!(
            dotted_oid(crate::clone::cert::MARKER_OID),
            "2.25.84064784579158056062084232749377329420"
        );
    }

    #[test]
    fn pss_defaults_are_sha1_and_salt_20() {
        let algorithm = write(
            tag::SEQUENCE,
            &[write(tag::OID, &oid::RSASSA_PSS), write(tag::SEQUENCE, &[])].concat(),
        );
        match SignatureScheme::parse(&algorithm) {
            Ok(SignatureScheme::RsaPss {
                digest,
                mgf1,
                salt_len,
            }) => {
                assert_eq!(digest.size(), 20);
                assert_eq!(mgf1.size(), 20);
                assert_eq!(salt_len, 20);
            }
            _ => panic!("not PSS"),
        }
    }

    #[test]
    fn unknown_algorithms_are_named() {
        let algorithm = write(tag::SEQUENCE, &write(tag::OID, &[0x2a, 0x03]));
        match SignatureScheme::parse(&algorithm) {
            Err(SchemeError::Unsupported(name)) => assert_eq!(name, "1.2.3"),
            _ => panic!("accepted an unknown algorithm"),
        }
    }

    #[test]
    fn each_spec_generates_its_kind_of_key() {
        let p384 = KeySpec::Ec(Nid::SECP384R1).generate().unwrap();
        assert_eq!(p384.bits(), 384);
        let ed = KeySpec::Ed25519.generate().unwrap();
        assert_eq!(ed.id(), Id::ED25519);
        let rsa = KeySpec::Rsa {
            bits: 1024,
            exponent: vec![3],
        }
        .generate()
        .unwrap();
        assert_eq!(rsa.bits(), 1024);
        assert_eq!(rsa.rsa().unwrap().e().to_vec(), vec![3]);
    }
}
