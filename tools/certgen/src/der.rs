//! Just enough DER encoding to build the extensions rcgen has no built-in support for
//! (Authority Information Access). Only definite-length, single-byte-tag encodings are
//! needed, so this stays a few lines instead of pulling in an ASN.1 library.

/// SEQUENCE, constructed.
const TAG_SEQUENCE: u8 = 0x30;
/// OBJECT IDENTIFIER, primitive.
const TAG_OID: u8 = 0x06;
/// GeneralName `uniformResourceIdentifier [6] IA5String`, implicitly tagged (context, primitive).
const TAG_GENERAL_NAME_URI: u8 = 0x86;

/// Encodes one tag-length-value element.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    push_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// Appends a DER length: short form below 128, otherwise long form with the minimal
/// number of big-endian length bytes (DER forbids leading zero bytes).
fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let first_significant = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let significant = &bytes[first_significant..];
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// SEQUENCE of already-encoded elements.
pub fn sequence(elements: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &elements.concat())
}

/// OBJECT IDENTIFIER from its arcs, e.g. `[1, 3, 6, 1, 5, 5, 7, 48, 1]`.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    assert!(
        arcs.len() >= 2 && arcs[0] <= 2,
        "an OID needs at least two arcs"
    );
    let mut content = Vec::new();
    push_base128(&mut content, arcs[0] * 40 + arcs[1]);
    for &arc in &arcs[2..] {
        push_base128(&mut content, arc);
    }
    tlv(TAG_OID, &content)
}

/// Appends `value` in base 128, most significant group first, high bit set on every
/// byte but the last (X.690 8.19.2).
fn push_base128(out: &mut Vec<u8>, value: u64) {
    let mut groups = vec![(value & 0x7f) as u8];
    let mut rest = value >> 7;
    while rest > 0 {
        groups.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.extend(groups.iter().rev());
}

/// `depth` SEQUENCEs, each the only element of the one around it, the innermost
/// empty: a parser that recurses once per level needs `depth` stack frames.
pub fn nested_sequences(depth: usize) -> Vec<u8> {
    // Built inside out; quadratic copying, but a few MB for the depths used.
    (0..depth).fold(Vec::new(), |inner, _| tlv(TAG_SEQUENCE, &inner))
}

/// GeneralName `otherName [0] { type-id OID, value [0] EXPLICIT ANY }`.
pub fn other_name_general_name(type_id: &[u64], value: &[u8]) -> Vec<u8> {
    const TAG_GENERAL_NAME_OTHER_NAME: u8 = 0xa0; // context 0, constructed
    const TAG_EXPLICIT_0: u8 = 0xa0;
    tlv(
        TAG_GENERAL_NAME_OTHER_NAME,
        &[oid(type_id), tlv(TAG_EXPLICIT_0, value)].concat(),
    )
}

/// GeneralName of the URI form.
pub fn uri_general_name(uri: &str) -> Vec<u8> {
    assert!(uri.is_ascii(), "a URI GeneralName is an IA5String");
    tlv(TAG_GENERAL_NAME_URI, uri.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_oid() {
        // id-ad-caIssuers, as printed by `openssl asn1parse`.
        assert_eq!(
            oid(&[1, 3, 6, 1, 5, 5, 7, 48, 2]),
            [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02]
        );
        // A multi-byte arc (840 = 0x86 0x48), from 1.2.840.113549.
        assert_eq!(
            oid(&[1, 2, 840, 113549]),
            [0x06, 0x06, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]
        );
    }

    #[test]
    fn nests_sequences() {
        assert_eq!(nested_sequences(0), Vec::<u8>::new());
        assert_eq!(nested_sequences(3), [0x30, 0x04, 0x30, 0x02, 0x30, 0x00]);
    }

    #[test]
    fn uses_long_form_lengths() {
        assert_eq!(&tlv(0x04, &[0; 127])[..2], [0x04, 0x7f]);
        assert_eq!(&tlv(0x04, &[0; 128])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }
}
