//! The body: the certificates an AIA URL served, read from a DER
//! certificate, PEM blocks or a PKCS#7 certs-only bundle (DER or PEM),
//! without ever panicking on what a server sends.

use boring::x509::X509;
use serde::Serialize;

use super::{shown, AiaErrorKind};

/// How the fetched body encoded its certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// One DER certificate (`application/pkix-cert`).
    Der,
    /// PEM `CERTIFICATE` blocks.
    Pem,
    /// A PKCS#7 certs-only bundle, DER (`application/pkcs7-mime`).
    Pkcs7Der,
    /// A PKCS#7 certs-only bundle in a PEM `PKCS7` block.
    Pkcs7Pem,
}

/// Reads the certificates of an AIA body: a DER certificate, PEM
/// `CERTIFICATE` blocks, or a PKCS#7 certs-only bundle (DER or PEM `PKCS7`).
/// Never panics, whatever the bytes.
pub fn parse_body(body: &[u8]) -> Result<(BodyFormat, Vec<X509>), AiaErrorKind> {
    let not_a_cert = |why: &str| AiaErrorKind::NotACertificate(why.to_owned());
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(not_a_cert("the body is empty"));
    }
    if body[0] == 0x30 {
        if is_pkcs7_signed_data(body) {
            return pkcs7_certificates(body)
                .map(|certs| (BodyFormat::Pkcs7Der, certs))
                .map_err(|why| not_a_cert(&format!("PKCS#7: {why}")));
        }
        return X509::from_der(body)
            .map(|cert| (BodyFormat::Der, vec![cert]))
            .map_err(|_| not_a_cert("DER that is neither a certificate nor a PKCS#7 bundle"));
    }
    match std::str::from_utf8(body) {
        Ok(text) if text.contains("-----BEGIN ") => parse_pem(text),
        _ => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
            if first == Some(b'<') {
                Err(not_a_cert("an HTML or XML page"))
            } else {
                Err(not_a_cert(&format!(
                    "neither DER nor PEM ({} bytes starting with 0x{:02x})",
                    body.len(),
                    body[0]
                )))
            }
        }
    }
}

fn parse_pem(text: &str) -> Result<(BodyFormat, Vec<X509>), AiaErrorKind> {
    const BEGIN: &str = "-----BEGIN ";
    let not_a_cert = |why: String| AiaErrorKind::NotACertificate(why);
    let mut certificates = Vec::new();
    let mut format = BodyFormat::Pem;
    let mut labels = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start..];
        let label = block[BEGIN.len()..]
            .split("-----")
            .next()
            .unwrap_or_default();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block.find(&end_marker) else {
            let shown = shown(label, 40);
            return Err(not_a_cert(format!(
                "truncated PEM: '-----BEGIN {shown}-----' has no END line"
            )));
        };
        let block_text = &block[..end + end_marker.len()];
        match label {
            "CERTIFICATE" | "X509 CERTIFICATE" => {
                let cert = X509::from_pem(block_text.as_bytes()).map_err(|_| {
                    not_a_cert(format!(
                        "PEM certificate #{} is malformed",
                        certificates.len() + 1
                    ))
                })?;
                certificates.push(cert);
            }
            "PKCS7" => {
                let der = pem_base64(block_text)
                    .ok_or_else(|| not_a_cert("PEM PKCS7 block is not base64".into()))?;
                certificates.extend(
                    pkcs7_certificates(&der).map_err(|why| not_a_cert(format!("PKCS#7: {why}")))?,
                );
                format = BodyFormat::Pkcs7Pem;
            }
            other => labels.push(shown(other, 40)),
        }
        rest = &block[end + end_marker.len()..];
    }
    if certificates.is_empty() {
        return Err(not_a_cert(match labels.first() {
            Some(label) => format!("PEM holding '{label}', not a certificate"),
            None => "PEM without a certificate".into(),
        }));
    }
    Ok((format, certificates))
}

/// The bytes of a PEM block (its lines between BEGIN and END, no headers).
fn pem_base64(block: &str) -> Option<Vec<u8>> {
    let mut lines = block.lines();
    lines.next()?;
    let base64: String = lines
        .take_while(|line| !line.starts_with("-----END "))
        .flat_map(|line| line.chars().filter(|c| !c.is_ascii_whitespace()))
        .collect();
    boring::base64::decode_block(&base64).ok()
}

/// One DER element: its tag byte, its content, and the whole element.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// Reads the DER element at the start of `input`; the rest after it.
fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    let truncated = "truncated";
    let tag = *input.first().ok_or(truncated)?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not supported");
    }
    let first = *input.get(1).ok_or(truncated)?;
    let (length, header) = match first {
        0x80 => return Err("indefinite (BER) lengths are not supported"),
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            if count > 4 {
                return Err("length too large");
            }
            let bytes = input.get(2..2 + count).ok_or(truncated)?;
            let length = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (length, 2 + count)
        }
    };
    let end = header.checked_add(length).ok_or(truncated)?;
    let whole = input.get(..end).ok_or(truncated)?;
    Ok((
        Tlv {
            tag,
            content: &whole[header..],
            whole,
        },
        &input[end..],
    ))
}

/// 1.2.840.113549.1.7.2, signedData, in DER.
const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

/// Whether `der` starts as a PKCS#7 SignedData: a SEQUENCE (of any length,
/// even cut short or BER-indefinite) whose first element is the signedData OID.
fn is_pkcs7_signed_data(der: &[u8]) -> bool {
    let header = match der {
        [0x30, short, ..] if *short <= 0x80 => 2,
        [0x30, long, ..] => 2 + usize::from(long & 0x7f),
        _ => return false,
    };
    matches!(
        der.get(header..).map(read_tlv),
        Some(Ok((oid, _))) if oid.tag == 0x06 && oid.content == OID_SIGNED_DATA
    )
}

/// The certificates of a PKCS#7 SignedData (RFC 2315 §9.1): ContentInfo {
/// signedData, [0] { version, digestAlgorithms, contentInfo, [0] IMPLICIT
/// certificates, ... } }.
fn pkcs7_certificates(der: &[u8]) -> Result<Vec<X509>, &'static str> {
    let (content_info, _) = read_tlv(der)?;
    let (oid, rest) = read_tlv(content_info.content)?;
    if content_info.tag != 0x30 || oid.tag != 0x06 || oid.content != OID_SIGNED_DATA {
        return Err("not a SignedData bundle");
    }
    let (explicit, _) = read_tlv(rest)?;
    let (signed_data, _) = read_tlv(explicit.content)?;
    if explicit.tag != 0xa0 || signed_data.tag != 0x30 {
        return Err("malformed SignedData");
    }
    // version, digestAlgorithms, contentInfo: skipped.
    let mut fields = signed_data.content;
    for _ in 0..3 {
        fields = read_tlv(fields)?.1;
    }
    let (certificates, _) = read_tlv(fields).map_err(|_| "no certificates")?;
    if certificates.tag != 0xa0 {
        return Err("no certificates");
    }
    let mut found = Vec::new();
    let mut items = certificates.content;
    while !items.is_empty() {
        let (item, rest) = read_tlv(items)?;
        if item.tag == 0x30 {
            found.push(X509::from_der(item.whole).map_err(|_| "a malformed certificate")?);
        }
        items = rest;
    }
    if found.is_empty() {
        return Err("no certificates");
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_reader_never_reads_past_the_input() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x01],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[0x30, 0x80, 0, 0],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(read_tlv(input).is_err(), "{input:?}");
        }
        let (tlv, rest) = read_tlv(&[0x04, 0x02, 0xaa, 0xbb, 0xcc]).unwrap();
        assert_eq!(
            (tlv.tag, tlv.content, rest),
            (0x04, &[0xaa, 0xbb][..], &[0xcc][..])
        );
    }
}
