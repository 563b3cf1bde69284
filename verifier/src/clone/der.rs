//! A small DER reader and writer: just enough to take a certificate apart
//! into its TLVs and put it back together.
//!
//! The clone engine never decodes what it does not change: a TLV is kept as
//! the exact bytes it was read from (`raw`), and only a TLV whose content
//! changes is written again, with a fresh length. Every read is bounded by
//! its input, so any byte string gives a value or a [`DerError`], never a
//! panic.

use thiserror::Error;

/// Why some bytes are not the DER the clone engine expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DerError {
    /// The input ended inside a tag, a length or a content.
    #[error("truncated DER")]
    Truncated,
    /// BER's indefinite length (0x80), which DER forbids.
    #[error("indefinite length, not DER")]
    IndefiniteLength,
    /// A length longer than four bytes: larger than any certificate.
    #[error("length too large")]
    LengthTooLarge,
    /// Bytes left over after the TLVs that should fill the input.
    #[error("trailing bytes after the DER value")]
    TrailingBytes,
    /// A structure without the element it must have (named).
    #[error("missing {0}")]
    Missing(&'static str),
    /// An element with another tag than the structure allows (named).
    #[error("unexpected tag 0x{tag:02x} for {what}")]
    UnexpectedTag { tag: u8, what: &'static str },
}

/// Tag bytes (first identifier octet) the engine looks for.
pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const TELETEX_STRING: u8 = 0x14;
    pub const IA5_STRING: u8 = 0x16;
    pub const VISIBLE_STRING: u8 = 0x1a;
    pub const SEQUENCE: u8 = 0x30;
    /// `[0]` constructed: version, and PSS's hashAlgorithm.
    pub const CONTEXT_0: u8 = 0xa0;
    pub const CONTEXT_1: u8 = 0xa1;
    pub const CONTEXT_2: u8 = 0xa2;
    /// `[3]` constructed: the TBSCertificate's extensions.
    pub const CONTEXT_3: u8 = 0xa3;
    /// The bit that marks a constructed encoding.
    pub const CONSTRUCTED: u8 = 0x20;
}

/// One tag-length-value, borrowed from its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    /// The first identifier octet (high tag numbers keep their further
    /// octets in `raw` only; nothing here needs them).
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole TLV exactly as read: header and content.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Reads one TLV from the front of `input`; returns it and the rest.
    pub fn read(input: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), DerError> {
        let (&tag, mut after) = input.split_first().ok_or(DerError::Truncated)?;
        if tag & 0x1f == 0x1f {
            after = skip_high_tag_number(after)?;
        }
        let (len, after) = read_length(after)?;
        if after.len() < len {
            return Err(DerError::Truncated);
        }
        let header_len = input.len() - after.len();
        let (raw, rest) = input.split_at(header_len + len);
        let tlv = Tlv {
            tag,
            content: &raw[header_len..],
            raw,
        };
        Ok((tlv, rest))
    }

    /// Reads exactly one TLV that fills `input`.
    pub fn read_exact(input: &'a [u8]) -> Result<Tlv<'a>, DerError> {
        match Tlv::read(input)? {
            (tlv, []) => Ok(tlv),
            _ => Err(DerError::TrailingBytes),
        }
    }

    /// The TLVs of a constructed value's content, in order.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, DerError> {
        read_all(self.content)
    }

    /// Whether this TLV is constructed (holds TLVs) rather than primitive.
    pub fn is_constructed(&self) -> bool {
        self.tag & tag::CONSTRUCTED != 0
    }

    /// Fails unless the tag is `expected`; `what` names the element.
    pub fn expect(self, expected: u8, what: &'static str) -> Result<Self, DerError> {
        if self.tag == expected {
            Ok(self)
        } else {
            Err(DerError::UnexpectedTag {
                tag: self.tag,
                what,
            })
        }
    }
}

/// Reads TLVs one after another until `input` is used up.
pub(crate) fn read_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, DerError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = Tlv::read(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

fn skip_high_tag_number(input: &[u8]) -> Result<&[u8], DerError> {
    // Further tag octets have their top bit set, except the last.
    let end = input
        .iter()
        .position(|b| b & 0x80 == 0)
        .ok_or(DerError::Truncated)?;
    Ok(&input[end + 1..])
}

fn read_length(input: &[u8]) -> Result<(usize, &[u8]), DerError> {
    let (&first, rest) = input.split_first().ok_or(DerError::Truncated)?;
    if first < 0x80 {
        return Ok((usize::from(first), rest));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 {
        return Err(DerError::IndefiniteLength);
    }
    if count > 4 {
        return Err(DerError::LengthTooLarge);
    }
    if rest.len() < count {
        return Err(DerError::Truncated);
    }
    let (bytes, rest) = rest.split_at(count);
    let len = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
    Ok((len, rest))
}

/// Encodes one TLV with the minimal (DER) length.
pub(crate) fn write(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    write_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// Encodes a constructed TLV from its children's encodings, in order.
pub(crate) fn write_constructed<B: AsRef<[u8]>>(tag: u8, children: &[B]) -> Vec<u8> {
    let content: Vec<u8> = children
        .iter()
        .flat_map(|c| c.as_ref().iter().copied())
        .collect();
    write(tag, &content)
}

fn write_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Fits in the short form.
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let significant = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let bytes = &bytes[significant..];
    out.push(0x80 | bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// A constructed TLV rebuilt with some children replaced: `None` keeps a
/// child's original bytes. Returns `None` when nothing changed, so that an
/// unchanged TLV keeps its exact original encoding.
pub(crate) fn rebuild(
    parent: &Tlv<'_>,
    children: &[Tlv<'_>],
    replaced: Vec<Option<Vec<u8>>>,
) -> Option<Vec<u8>> {
    if replaced.iter().all(Option::is_none) {
        return None;
    }
    let parts: Vec<Vec<u8>> = children
        .iter()
        .zip(replaced)
        .map(|(child, new)| new.unwrap_or_else(|| child.raw.to_vec()))
        .collect();
    Some(write_constructed(parent.tag, &parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let short = [0x04, 0x02, 0xaa, 0xbb, 0xff];
        let (tlv, rest) = Tlv::read(&short).unwrap();
        assert_eq!(
            (tlv.tag, tlv.content, rest),
            (0x04, &[0xaa, 0xbb][..], &[0xff][..])
        );

        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend(std::iter::repeat_n(7u8, 256));
        let tlv = Tlv::read_exact(&long).unwrap();
        assert_eq!(tlv.content.len(), 256);
        assert_eq!(tlv.raw, &long[..]);
    }

    #[test]
    fn writes_minimal_lengths_that_read_back() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536, 1 << 20] {
            let content = vec![0x5a; len];
            let encoded = write(tag::OCTET_STRING, &content);
            let tlv = Tlv::read_exact(&encoded).unwrap();
            assert_eq!(tlv.content.len(), len, "length {len}");
        }
        assert_eq!(write(tag::OCTET_STRING, &[0; 128])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(
            write(tag::OCTET_STRING, &[0; 256])[..4],
            [0x04, 0x82, 0x01, 0x00]
        );
    }

    #[test]
    fn rejects_what_is_not_der() {
        assert_eq!(Tlv::read(&[]), Err(DerError::Truncated));
        assert_eq!(Tlv::read(&[0x30]), Err(DerError::Truncated));
        assert_eq!(
            Tlv::read(&[0x30, 0x80, 0, 0]),
            Err(DerError::IndefiniteLength)
        );
        assert_eq!(
            Tlv::read(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(DerError::LengthTooLarge)
        );
        assert_eq!(Tlv::read(&[0x30, 0x05, 1]), Err(DerError::Truncated));
        assert_eq!(Tlv::read(&[0x30, 0x82, 1]), Err(DerError::Truncated));
        assert_eq!(Tlv::read(&[0x1f, 0x81]), Err(DerError::Truncated));
        assert_eq!(
            Tlv::read_exact(&[0x05, 0x00, 0x00]),
            Err(DerError::TrailingBytes)
        );
    }

    #[test]
    fn high_tag_numbers_are_kept_whole() {
        let bytes = [0x9f, 0x81, 0x01, 0x01, 0xee];
        let tlv = Tlv::read_exact(&bytes).unwrap();
        assert_eq!((tlv.content, tlv.raw), (&[0xee][..], &bytes[..]));
    }

    #[test]
    fn rebuild_keeps_unchanged_values_and_propagates_lengths() {
        let bytes = write_constructed(
            tag::SEQUENCE,
            &[write(tag::INTEGER, &[1]), write(tag::OCTET_STRING, &[2])],
        );
        let parent = Tlv::read_exact(&bytes).unwrap();
        let children = parent.children().unwrap();
        assert_eq!(rebuild(&parent, &children, vec![None, None]), None);
        let grown = rebuild(
            &parent,
            &children,
            vec![None, Some(write(tag::OCTET_STRING, &[9; 200]))],
        )
        .unwrap();
        let reread = Tlv::read_exact(&grown).unwrap();
        let kids = reread.children().unwrap();
        assert_eq!(kids[0].raw, children[0].raw);
        assert_eq!(kids[1].content, &[9; 200][..]);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x1234_5678_u32;
        for _ in 0..20_000 {
            let len = (seed % 12) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as u8
                })
                .collect();
            if let Ok(tlvs) = read_all(&bytes) {
                for tlv in tlvs {
                    let _ = tlv.children();
                }
            }
        }
    }
}
