//! A certificate taken apart at the TLV level and put back together with a
//! new key, the clone marker and a new signature; everything else keeps the
//! bytes it was read from.

use super::der::{self, tag, DerError, Tlv};

/// The clone marker's OID, 2.25.84064784579158056062084232749377329420: a
/// UUID-based OID (ITU-T X.667, arc 2.25 followed by the UUID
/// 3f3e49e0-f716-468e-8b29-9996944f190c as one integer), which needs no
/// registration and can belong to no one else. Content bytes, no tag.
pub const MARKER_OID: &[u8] = &[
    0x69, 0xfe, 0xbe, 0xa4, 0xf8, 0x9e, 0xf1, 0xb2, 0x9a, 0x9d, 0x8b, 0x94, 0xe6, 0xb2, 0xe9, 0xa2,
    0xbc, 0xb2, 0x0c,
];

/// An original certificate split into the parts the clone changes.
pub(crate) struct Original<'a> {
    /// The TBSCertificate's fields, in order, exactly as written.
    fields: Vec<Tlv<'a>>,
    /// Indices into `fields` (the version is optional, so they move).
    issuer: usize,
    subject: usize,
    spki: usize,
    /// `[3]` extensions, when present.
    extensions: Option<usize>,
    /// v3: only a v3 certificate may carry extensions (RFC 5280 §4.1.2.1).
    is_v3: bool,
    /// The outer signatureAlgorithm, whole TLV.
    pub signature_algorithm: &'a [u8],
    /// Length of the original signature value in bytes.
    pub signature_len: usize,
}

impl<'a> Original<'a> {
    /// Splits a certificate's DER. Fails only when the outer structure is not
    /// a certificate; extension values are never decoded here.
    pub fn parse(der: &'a [u8]) -> Result<Self, DerError> {
        let cert = Tlv::read_exact(der)?.expect(tag::SEQUENCE, "Certificate")?;
        let [tbs, algorithm, signature] = cert.children()?[..] else {
            return Err(DerError::Missing("the three parts of a Certificate"));
        };
        let tbs = tbs.expect(tag::SEQUENCE, "TBSCertificate")?;
        let signature = signature.expect(tag::BIT_STRING, "signatureValue")?;
        let fields = tbs.children()?;
        let version = fields.first().filter(|f| f.tag == tag::CONTEXT_0);
        let first = usize::from(version.is_some());
        // serial, signature, issuer, validity, subject, subjectPublicKeyInfo
        if fields.len() < first + 6 {
            return Err(DerError::Missing("a TBSCertificate field"));
        }
        let extensions = fields[first + 6..]
            .iter()
            .position(|f| f.tag == tag::CONTEXT_3)
            .map(|i| i + first + 6);
        Ok(Self {
            issuer: first + 2,
            subject: first + 4,
            spki: first + 5,
            extensions,
            is_v3: version.is_some_and(|v| v.content == [tag::INTEGER, 1, 2]),
            signature_algorithm: algorithm.expect(tag::SEQUENCE, "signatureAlgorithm")?.raw,
            signature_len: signature.content.len().saturating_sub(1),
            fields,
        })
    }

    pub fn issuer(&self) -> Tlv<'a> {
        self.fields[self.issuer]
    }

    pub fn subject(&self) -> Tlv<'a> {
        self.fields[self.subject]
    }

    /// The extensions, each as (OID content, whole Extension TLV).
    pub fn extensions(&self) -> Result<Vec<Extension<'a>>, DerError> {
        let Some(at) = self.extensions else {
            return Ok(Vec::new());
        };
        let list = Tlv::read_exact(self.fields[at].content)?.expect(tag::SEQUENCE, "Extensions")?;
        list.children()?.into_iter().map(Extension::parse).collect()
    }

    /// Whether a marker can be added: v3, the only version with extensions.
    pub fn can_be_marked(&self) -> bool {
        self.is_v3
    }
}

/// One extension: its OID and its parts as written.
#[derive(Clone, Copy)]
pub(crate) struct Extension<'a> {
    pub oid: &'a [u8],
    /// The extnValue OCTET STRING's content.
    pub value: &'a [u8],
    pub raw: &'a [u8],
    tlv: Tlv<'a>,
}

impl<'a> Extension<'a> {
    fn parse(tlv: Tlv<'a>) -> Result<Self, DerError> {
        let tlv = tlv.expect(tag::SEQUENCE, "Extension")?;
        let children = tlv.children()?;
        let oid = children
            .first()
            .ok_or(DerError::Missing("extension OID"))?
            .expect(tag::OID, "extension OID")?;
        let value = children
            .last()
            .ok_or(DerError::Missing("extnValue"))?
            .expect(tag::OCTET_STRING, "extnValue")?;
        Ok(Self {
            oid: oid.content,
            value: value.content,
            raw: tlv.raw,
            tlv,
        })
    }

    /// The same extension (OID and criticality as written) with a new value.
    pub fn with_value(&self, value: &[u8]) -> Vec<u8> {
        let children = self.tlv.children().unwrap_or_default();
        let mut replaced = vec![None; children.len()];
        if let Some(last) = replaced.last_mut() {
            *last = Some(der::write(tag::OCTET_STRING, value));
        }
        der::rebuild(&self.tlv, &children, replaced).unwrap_or_else(|| self.raw.to_vec())
    }
}

/// The clone marker extension: non-critical (the BOOLEAN is left out, as
/// DER requires for its default), its value a UTF8String saying whose clone
/// this is.
pub(crate) fn marker_extension(original_fingerprint: &str) -> Vec<u8> {
    let text = format!("quicprobe clone of sha256:{original_fingerprint}");
    let value = der::write(tag::UTF8_STRING, text.as_bytes());
    der::write_constructed(
        tag::SEQUENCE,
        &[
            der::write(tag::OID, MARKER_OID),
            der::write(tag::OCTET_STRING, &value),
        ],
    )
}

/// What changes between an original's TBSCertificate and its clone's.
pub(crate) struct Changes {
    /// The clone's SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// New issuer and subject Names, when a rename changed them.
    pub issuer: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    /// The complete new extension list (each Extension TLV), when the
    /// certificate carries extensions or is being marked.
    pub extensions: Option<Vec<Vec<u8>>>,
}

impl Original<'_> {
    /// The clone's TBSCertificate: the original's fields, in order, with only
    /// the changed ones written again.
    pub fn tbs_with(&self, changes: Changes) -> Vec<u8> {
        let mut fields: Vec<Vec<u8>> = self.fields.iter().map(|f| f.raw.to_vec()).collect();
        fields[self.spki] = changes.spki;
        if let Some(issuer) = changes.issuer {
            fields[self.issuer] = issuer;
        }
        if let Some(subject) = changes.subject {
            fields[self.subject] = subject;
        }
        if let Some(list) = changes.extensions {
            let explicit = der::write(
                tag::CONTEXT_3,
                &der::write_constructed(tag::SEQUENCE, &list),
            );
            match self.extensions {
                Some(at) => fields[at] = explicit,
                // [3] comes last in a TBSCertificate.
                None => fields.push(explicit),
            }
        }
        der::write_constructed(tag::SEQUENCE, &fields)
    }
}

/// A Certificate from a TBSCertificate, the original's signatureAlgorithm
/// (as written) and a signature.
pub(crate) fn assemble(tbs: &[u8], signature_algorithm: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(signature);
    der::write_constructed(
        tag::SEQUENCE,
        &[
            tbs,
            signature_algorithm,
            &der::write(tag::BIT_STRING, &bits),
        ],
    )
}
