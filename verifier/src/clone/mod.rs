//! The clone engine: a certificate chain made again with fresh keys, so that
//! a failure seen on someone's server can be replayed anywhere without that
//! server's private keys (issue 17).
//!
//! Each original TBSCertificate is kept TLV by TLV, byte for byte: version,
//! serial, the inner signature AlgorithmIdentifier, issuer, validity,
//! subject, unique IDs and every extension (unknown or unparseable ones as
//! opaque bytes). Only three things change:
//! - the SubjectPublicKeyInfo, replaced by a fresh key of the same type and
//!   size (RSA with the same modulus size and exponent, EC on the same
//!   curve, Ed25519); certificates that shared a key (a cross-signed CA and
//!   its root) share the new one;
//! - the clone marker, a non-critical private extension appended last (see
//!   [`cert::MARKER_OID`]), whose value says "quicprobe clone of
//!   sha256:<the original's fingerprint>". A v1 or v2 certificate cannot
//!   carry extensions: marking it would change its version, which
//!   verification reads, so it is left unmarked and listed in
//!   [`Cloned::unmarked`];
//! - the signature, made by the clone of its issuer with the original's
//!   outer signatureAlgorithm, copied as written (RSA-PSS parameters
//!   included).
//!
//! `--rename` changes names too (see [`Rename`]); only the TLVs it changes
//! are written again.
//!
//! A certificate's issuer is, among all the certificates given (chain,
//! anchors and known missing intermediates), one whose subject is its issuer
//! Name (same DER) and whose original key verifies its original signature.
//! A self-signed certificate signs itself. One whose issuer was not given is
//! signed by a throwaway key, so what the server left out stays left out and
//! what the client lacked stays lacked. Keys are all made before any
//! signature, so issuer loops need no ordering at all.
//!
//! Every CA's private key is dropped when the clone returns: the only key
//! that leaves is the leaf's, which a server needs.

mod cert;
mod der;
mod keys;
mod rename;

use std::collections::HashMap;
use std::fmt;

use boring::error::ErrorStack;
use boring::pkey::{PKey, Private};
use boring::x509::X509;
use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate};

use cert::{Changes, Original};
use keys::{KeySpec, SchemeError, SignatureScheme};
use rename::Renamer;

pub use der::DerError;
pub use rename::{rename_text, Rename, RenameError};

/// The clone marker's OID in dotted form.
pub const CLONE_MARKER_OID: &str = "2.25.84064784579158056062084232749377329420";
/// The same OID's content bytes (DER without tag and length), to find the
/// marker with parsers that print arcs beyond 64 bits otherwise.
pub use cert::MARKER_OID as CLONE_MARKER_OID_BYTES;

/// What to clone. Certificates may repeat within and across the lists (a
/// root sent in the chain and held as an anchor): each distinct certificate
/// is cloned once and every occurrence gets that same clone.
#[derive(Debug, Clone, Copy)]
pub struct CloneInput<'a> {
    /// The chain as the server sent it, leaf first.
    pub chain: &'a [X509],
    /// The trust anchors the verdict depended on.
    pub anchors: &'a [X509],
    /// Known intermediates the server left out (fetched over AIA or given).
    pub missing: &'a [X509],
    pub renames: &'a [Rename],
}

/// The clones, list for list and position for position as given.
pub struct Cloned {
    pub chain: Vec<X509>,
    pub anchors: Vec<X509>,
    pub missing: Vec<X509>,
    /// The private key of the cloned leaf (`chain[0]`), the only key kept.
    pub leaf_key: PKey<Private>,
    /// The leaf has basicConstraints cA=TRUE (`openssl req -x509` makes such
    /// leaves): its key can sign certificates, which a README should say.
    pub leaf_is_ca: bool,
    /// v1/v2 certificates, which cannot carry the marker (first position of
    /// each).
    pub unmarked: Vec<Position>,
    /// Certificates whose issuer was not among those given, signed by a
    /// throwaway key (first position of each).
    pub issuer_not_given: Vec<Position>,
    /// Renames that matched nothing anywhere.
    pub unused_renames: Vec<Rename>,
}

impl fmt::Debug for Cloned {
    /// Never prints the leaf key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cloned")
            .field("chain", &self.chain.len())
            .field("anchors", &self.anchors.len())
            .field("missing", &self.missing.len())
            .field("leaf_is_ca", &self.leaf_is_ca)
            .field("unmarked", &self.unmarked)
            .field("issuer_not_given", &self.issuer_not_given)
            .field("unused_renames", &self.unused_renames)
            .finish_non_exhaustive()
    }
}

/// Where a certificate was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Chain(usize),
    Anchor(usize),
    Missing(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chain(i) => write!(f, "chain certificate {i}"),
            Self::Anchor(i) => write!(f, "trust anchor {i}"),
            Self::Missing(i) => write!(f, "missing intermediate {i}"),
        }
    }
}

/// Why a chain could not be cloned.
#[derive(Debug, Error)]
pub enum CloneError {
    /// There is no leaf to clone.
    #[error("no certificate to clone: the chain is empty")]
    EmptyChain,
    /// A key type the engine cannot make a fresh key of (DSA, Ed448, an
    /// RSA-PSS-only key, an unnamed curve...).
    #[error("{position} ({subject}): a {key} key cannot be cloned")]
    UnsupportedKey {
        position: Position,
        subject: String,
        key: String,
    },
    /// A signature algorithm the engine cannot sign with.
    #[error("{position} ({subject}): its signature algorithm {algorithm} cannot be reproduced")]
    UnsupportedSignature {
        position: Position,
        subject: String,
        algorithm: String,
    },
    /// The certificate's structure is not the DER the engine can take apart.
    #[error("{position} cannot be taken apart: {problem}")]
    Malformed {
        position: Position,
        problem: DerError,
    },
    /// BoringSSL would not read back the certificate the engine made.
    #[error("{position} ({subject}): its clone is not a certificate BoringSSL reads: {source}")]
    Unreadable {
        position: Position,
        subject: String,
        source: ErrorStack,
    },
    /// BoringSSL failed to make a key or a signature.
    #[error("{position} ({subject}): {step} failed: {source}")]
    Crypto {
        position: Position,
        subject: String,
        step: &'static str,
        source: ErrorStack,
    },
}

/// Clones a chain, its anchors and its known missing intermediates.
pub fn clone_chain(input: &CloneInput<'_>) -> Result<Cloned, CloneError> {
    if input.chain.is_empty() {
        return Err(CloneError::EmptyChain);
    }
    let set = Distinct::collect(input)?;
    let originals = set.parse_all()?;
    let keys = CloneKeys::generate(&set)?;
    let mut signing = Signing {
        set: &set,
        keys: &keys,
        renamer: Renamer::new(input.renames),
        throwaway: HashMap::new(),
        issuer_not_given: Vec::new(),
        unmarked: Vec::new(),
    };
    let mut clones = Vec::with_capacity(set.certs.len());
    for i in 0..originals.len() {
        clones.push(signing.clone_one(i, &originals)?);
    }
    let leaf_key = keys.of(0).clone();
    let leaf_is_ca = X509Certificate::from_der(&set.ders[0]).is_ok_and(|(_, c)| c.is_ca());
    let at = |list: &[usize]| -> Vec<X509> { list.iter().map(|&i| clones[i].clone()).collect() };
    Ok(Cloned {
        chain: at(&set.chain),
        anchors: at(&set.anchors),
        missing: at(&set.missing),
        leaf_key,
        leaf_is_ca,
        unmarked: signing.unmarked,
        issuer_not_given: signing.issuer_not_given,
        unused_renames: signing.renamer.unused(),
    })
    // `keys` drops here, and with it every CA's private key.
}

/// Makes the position of the i-th certificate of one list.
type PositionIn = fn(usize) -> Position;

/// The distinct certificates given (by DER), in order of first appearance
/// (so the leaf is 0), and each list's positions as indices into them.
struct Distinct<'a> {
    certs: Vec<&'a X509>,
    ders: Vec<Vec<u8>>,
    first_seen: Vec<Position>,
    chain: Vec<usize>,
    anchors: Vec<usize>,
    missing: Vec<usize>,
}

impl<'a> Distinct<'a> {
    fn collect(input: &CloneInput<'a>) -> Result<Self, CloneError> {
        let mut set = Distinct {
            certs: Vec::new(),
            ders: Vec::new(),
            first_seen: Vec::new(),
            chain: Vec::new(),
            anchors: Vec::new(),
            missing: Vec::new(),
        };
        let mut by_der: HashMap<Vec<u8>, usize> = HashMap::new();
        let lists: [(&[X509], PositionIn); 3] = [
            (input.chain, Position::Chain),
            (input.anchors, Position::Anchor),
            (input.missing, Position::Missing),
        ];
        for (list, position) in lists {
            for (i, cert) in list.iter().enumerate() {
                let der = cert.to_der().map_err(|source| CloneError::Crypto {
                    position: position(i),
                    subject: subject_of(cert),
                    step: "encoding the original",
                    source,
                })?;
                let next = set.certs.len();
                let index = *by_der.entry(der.clone()).or_insert(next);
                if index == next {
                    set.certs.push(cert);
                    set.ders.push(der);
                    set.first_seen.push(position(i));
                }
                set.positions_mut(position(i)).push(index);
            }
        }
        Ok(set)
    }

    fn positions_mut(&mut self, position: Position) -> &mut Vec<usize> {
        match position {
            Position::Chain(_) => &mut self.chain,
            Position::Anchor(_) => &mut self.anchors,
            Position::Missing(_) => &mut self.missing,
        }
    }

    fn parse_all(&self) -> Result<Vec<Original<'_>>, CloneError> {
        self.ders
            .iter()
            .zip(&self.first_seen)
            .map(|(der, &position)| {
                Original::parse(der).map_err(|problem| CloneError::Malformed { position, problem })
            })
            .collect()
    }

    /// The index of the certificate that issued certificate `i`, if given:
    /// itself when self-signed, else the first whose subject is `i`'s issuer
    /// Name and whose original key verifies `i`'s original signature.
    fn issuer_of(&self, i: usize, originals: &[Original<'_>]) -> Option<usize> {
        let cert = self.certs[i];
        let wanted = originals[i].issuer().raw;
        let candidate = |j: usize| {
            originals[j].subject().raw == wanted
                && self.certs[j]
                    .public_key()
                    .is_ok_and(|key| cert.verify(&key).unwrap_or(false))
        };
        if candidate(i) {
            return Some(i);
        }
        (0..self.certs.len()).find(|&j| j != i && candidate(j))
    }
}

/// One fresh private key per distinct original public key.
struct CloneKeys {
    by_spki: HashMap<Vec<u8>, PKey<Private>>,
    spki_of: Vec<Vec<u8>>,
}

impl CloneKeys {
    fn generate(set: &Distinct<'_>) -> Result<Self, CloneError> {
        let mut keys = CloneKeys {
            by_spki: HashMap::new(),
            spki_of: Vec::with_capacity(set.certs.len()),
        };
        for (i, cert) in set.certs.iter().enumerate() {
            let position = set.first_seen[i];
            let unsupported = |key: String| CloneError::UnsupportedKey {
                position,
                subject: subject_of(cert),
                key,
            };
            // A key BoringSSL cannot even read is one it cannot make either.
            let public = cert
                .public_key()
                .map_err(|_| unsupported("unreadable".to_owned()))?;
            let spki = public
                .public_key_to_der()
                .map_err(|_| unsupported("unreadable".to_owned()))?;
            if !keys.by_spki.contains_key(&spki) {
                let spec = KeySpec::of(&public).map_err(unsupported)?;
                let key = spec.generate().map_err(|source| CloneError::Crypto {
                    position,
                    subject: subject_of(cert),
                    step: "generating its new key",
                    source,
                })?;
                keys.by_spki.insert(spki.clone(), key);
            }
            keys.spki_of.push(spki);
        }
        Ok(keys)
    }

    /// The new key of distinct certificate `i`.
    fn of(&self, i: usize) -> &PKey<Private> {
        &self.by_spki[&self.spki_of[i]]
    }
}

/// The state of one clone run while certificates are signed.
struct Signing<'s, 'a> {
    set: &'s Distinct<'a>,
    keys: &'s CloneKeys,
    renamer: Renamer<'s>,
    /// Throwaway keys by (issuer Name DER, key spec): certificates with the
    /// same missing issuer share one, as they shared the original issuer.
    throwaway: HashMap<(Vec<u8>, KeySpec), PKey<Private>>,
    issuer_not_given: Vec<Position>,
    unmarked: Vec<Position>,
}

impl Signing<'_, '_> {
    fn clone_one(&mut self, i: usize, originals: &[Original<'_>]) -> Result<X509, CloneError> {
        let original = &originals[i];
        let position = self.set.first_seen[i];
        let cert = self.set.certs[i];
        let malformed = |problem| CloneError::Malformed { position, problem };
        let crypto = |step, source| CloneError::Crypto {
            position,
            subject: subject_of(cert),
            step,
            source,
        };
        let scheme = SignatureScheme::parse(original.signature_algorithm).map_err(|e| match e {
            SchemeError::Der(problem) => malformed(problem),
            SchemeError::Unsupported(algorithm) => CloneError::UnsupportedSignature {
                position,
                subject: subject_of(cert),
                algorithm,
            },
        })?;
        let changes = Changes {
            spki: self
                .keys
                .of(i)
                .public_key_to_der()
                .map_err(|e| crypto("encoding its new key", e))?,
            issuer: self.renamer.name(&original.issuer()),
            subject: self.renamer.name(&original.subject()),
            extensions: self.extensions(i, original).map_err(malformed)?,
        };
        let tbs = original.tbs_with(changes);
        let signature = match self.set.issuer_of(i, originals) {
            Some(issuer) => scheme.sign(self.keys.of(issuer), &tbs),
            None => {
                self.issuer_not_given.push(position);
                let key = self
                    .throwaway_key(original, &scheme)
                    .map_err(|e| crypto("generating a throwaway issuer key", e))?;
                scheme.sign(&key, &tbs)
            }
        }
        .map_err(|e| crypto("signing its clone", e))?;
        let der = cert::assemble(&tbs, original.signature_algorithm, &signature);
        X509::from_der(&der).map_err(|source| CloneError::Unreadable {
            position,
            subject: subject_of(cert),
            source,
        })
    }

    /// The clone's extension list: each original extension as written
    /// (renamed if a rename matched), then the marker. An earlier marker (a
    /// clone of a clone) is replaced in place, since BoringSSL rejects a
    /// certificate with an extension twice. `None` for a v1/v2 certificate.
    fn extensions(
        &mut self,
        i: usize,
        original: &Original<'_>,
    ) -> Result<Option<Vec<Vec<u8>>>, DerError> {
        if !original.can_be_marked() {
            self.unmarked.push(self.set.first_seen[i]);
            return Ok(None);
        }
        let marker = cert::marker_extension(&crate::report::sha256_fingerprint(&self.set.ders[i]));
        let mut list = Vec::new();
        let mut marked = false;
        for extension in original.extensions()? {
            if extension.oid == cert::MARKER_OID {
                list.push(marker.clone());
                marked = true;
            } else if let Some(value) = self.renamer.extension_value(extension.oid, extension.value)
            {
                list.push(extension.with_value(&value));
            } else {
                list.push(extension.raw.to_vec());
            }
        }
        if !marked {
            list.push(marker);
        }
        Ok(Some(list))
    }

    fn throwaway_key(
        &mut self,
        original: &Original<'_>,
        scheme: &SignatureScheme,
    ) -> Result<PKey<Private>, ErrorStack> {
        let spec = scheme.throwaway_spec(original.signature_len);
        let slot = (original.issuer().raw.to_vec(), spec);
        if let Some(key) = self.throwaway.get(&slot) {
            return Ok(key.clone());
        }
        let key = slot.1.generate()?;
        self.throwaway.insert(slot, key.clone());
        Ok(key)
    }
}

fn subject_of(cert: &X509) -> String {
    crate::names::one_line(cert.subject_name())
}
