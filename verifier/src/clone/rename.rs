//! `--rename FROM=TO`: a name replaced consistently in every place a
//! verifier or a person reads one, so a chain can be shared without
//! production names and still link and match as before.
//!
//! Replacement is by substring, ASCII case-insensitively (DNS names are), so
//! `example.com=example.test` also renames `www.example.com` and
//! `CN=Example.COM CA`. It applies to the string values of subject and
//! issuer attributes and to the names inside the extensions that hold
//! names (SAN, issuer alternative name, name constraints, AIA, CRL
//! distribution points, the AKI's issuer): dNSName, rfc822Name, URI and
//! directoryName strings. IP addresses, key identifiers and unknown
//! extensions are left alone. Because an issuer Name and its CA's subject
//! Name are the same bytes before, they are the same bytes after: links hold.

use std::str::FromStr;

use thiserror::Error;

use super::der::{self, tag, Tlv};

/// One `FROM=TO` replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

/// Why a `FROM=TO` argument is not a rename.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RenameError {
    #[error("--rename {0:?}: expected FROM=TO")]
    NoEquals(String),
    #[error("--rename {0:?}: FROM is empty")]
    EmptyFrom(String),
}

impl FromStr for Rename {
    type Err = RenameError;

    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        let (from, to) = arg
            .split_once('=')
            .ok_or_else(|| RenameError::NoEquals(arg.to_owned()))?;
        if from.is_empty() {
            return Err(RenameError::EmptyFrom(arg.to_owned()));
        }
        Ok(Self {
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }
}

/// Nesting deeper than this is left as it is: a hostile certificate can
/// nest thousands of levels, and no real name is more than a few deep.
const MAX_DEPTH: usize = 16;

/// Extensions that hold names (OID content bytes).
const NAME_EXTENSIONS: &[&[u8]] = &[
    &[0x55, 0x1d, 0x11],                               // subjectAltName 2.5.29.17
    &[0x55, 0x1d, 0x12],                               // issuerAltName 2.5.29.18
    &[0x55, 0x1d, 0x1e],                               // nameConstraints 2.5.29.30
    &[0x55, 0x1d, 0x1f],                               // cRLDistributionPoints 2.5.29.31
    &[0x55, 0x1d, 0x23], // authorityKeyIdentifier 2.5.29.35 (its authorityCertIssuer)
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01], // authorityInfoAccess
];

/// Universal string types whose bytes are ASCII-compatible.
const STRING_TAGS: &[u8] = &[
    tag::UTF8_STRING,
    tag::PRINTABLE_STRING,
    tag::TELETEX_STRING,
    tag::IA5_STRING,
    tag::VISIBLE_STRING,
];

/// GeneralName's primitive string choices: rfc822Name, dNSName, URI.
const GENERAL_NAME_TAGS: &[u8] = &[0x81, 0x82, 0x86];

/// Applies renames and remembers which ones matched something.
pub(crate) struct Renamer<'r> {
    renames: &'r [Rename],
    used: Vec<bool>,
}

impl<'r> Renamer<'r> {
    pub fn new(renames: &'r [Rename]) -> Self {
        Self {
            renames,
            used: vec![false; renames.len()],
        }
    }

    /// A Name (subject or issuer) with its attribute values renamed, or
    /// `None` when nothing matched (or it does not parse: kept as written).
    pub fn name(&mut self, name: &Tlv<'_>) -> Option<Vec<u8>> {
        if self.renames.is_empty() {
            return None;
        }
        self.tree(name, STRING_TAGS, 0)
    }

    /// An extension's new extnValue content, or `None` to keep it as written
    /// (not a name extension, nothing matched, or not parseable DER).
    pub fn extension_value(&mut self, oid: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        if self.renames.is_empty() || !NAME_EXTENSIONS.contains(&oid) {
            return None;
        }
        let tlv = Tlv::read_exact(value).ok()?;
        let tags: Vec<u8> = STRING_TAGS
            .iter()
            .chain(GENERAL_NAME_TAGS)
            .copied()
            .collect();
        self.tree(&tlv, &tags, 0)
    }

    /// The renames that matched nothing.
    pub fn unused(&self) -> Vec<Rename> {
        self.renames
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(rename, _)| rename.clone())
            .collect()
    }

    /// Walks constructed TLVs and renames primitive strings with one of
    /// `tags`; only what changed is written again.
    fn tree(&mut self, tlv: &Tlv<'_>, tags: &[u8], depth: usize) -> Option<Vec<u8>> {
        if !tlv.is_constructed() {
            return tags.contains(&tlv.tag).then(|| self.string(tlv)).flatten();
        }
        if depth >= MAX_DEPTH {
            return None;
        }
        let children = tlv.children().ok()?;
        let replaced = children
            .iter()
            .map(|child| self.tree(child, tags, depth + 1))
            .collect();
        der::rebuild(tlv, &children, replaced)
    }

    fn string(&mut self, tlv: &Tlv<'_>) -> Option<Vec<u8>> {
        let mut value = tlv.content.to_vec();
        let mut changed = false;
        for (rename, used) in self.renames.iter().zip(self.used.iter_mut()) {
            if let Some(new) = replace_ignoring_ascii_case(&value, rename) {
                value = new;
                *used = true;
                changed = true;
            }
        }
        if !changed {
            return None;
        }
        // A PrintableString cannot hold every TO; UTF8String can, and names
        // compare the same across string types (RFC 5280 §7.1).
        let tag = if tlv.tag == tag::PRINTABLE_STRING && !value.iter().all(|&b| is_printable(b)) {
            tag::UTF8_STRING
        } else {
            tlv.tag
        };
        Some(der::write(tag, &value))
    }
}

/// `text` with every rename applied in turn, as the certificates get them
/// (ASCII case ignored): for what goes beside the clones (the host, the
/// README), so that one rule renames everything.
pub fn rename_text(text: &str, renames: &[Rename]) -> String {
    renames.iter().fold(text.to_owned(), |text, rename| {
        replace_ignoring_ascii_case(text.as_bytes(), rename)
            // Only ASCII is matched, so the bytes around a match stay UTF-8.
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or(text)
    })
}

/// `value` with every occurrence of `rename.from` (ASCII case ignored)
/// replaced by `rename.to`; `None` when there is none.
fn replace_ignoring_ascii_case(value: &[u8], rename: &Rename) -> Option<Vec<u8>> {
    let from = rename.from.as_bytes();
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    let mut found = false;
    while !rest.is_empty() {
        if rest.len() >= from.len() && rest[..from.len()].eq_ignore_ascii_case(from) {
            out.extend_from_slice(rename.to.as_bytes());
            rest = &rest[from.len()..];
            found = true;
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    found.then_some(out)
}

/// X.680's PrintableString alphabet.
fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rename(arg: &str) -> Rename {
        arg.parse().unwrap()
    }

    #[test]
    fn text_beside_the_clones_is_renamed_by_the_same_rule() {
        let renames = [rename("example.com=example.test"), rename("ACME=someone")];
        assert_eq!(
            rename_text("www.Example.COM by acme, é", &renames),
            "www.example.test by someone, é"
        );
    }

    #[test]
    fn parses_from_equals_to() {
        assert_eq!(
            rename("example.com=example.test"),
            Rename {
                from: "example.com".into(),
                to: "example.test".into()
            }
        );
        assert_eq!(rename("a=b=c").to, "b=c");
        assert!(matches!(
            "nothing".parse::<Rename>(),
            Err(RenameError::NoEquals(_))
        ));
        assert!(matches!(
            "=x".parse::<Rename>(),
            Err(RenameError::EmptyFrom(_))
        ));
    }

    #[test]
    fn replaces_substrings_ignoring_ascii_case() {
        let r = rename("example.com=example.test");
        assert_eq!(
            replace_ignoring_ascii_case(b"www.Example.COM", &r).unwrap(),
            b"www.example.test"
        );
        assert_eq!(replace_ignoring_ascii_case(b"example.org", &r), None);
        assert_eq!(
            replace_ignoring_ascii_case(b"example.comexample.com", &r).unwrap(),
            b"example.testexample.test"
        );
    }

    #[test]
    fn dns_names_in_a_san_are_renamed_and_ip_addresses_are_not() {
        let san = der::write_constructed(
            tag::SEQUENCE,
            &[
                der::write(0x82, b"www.example.com"),
                der::write(0x87, b"example.com\0"),
            ],
        );
        let renames = [rename("example.com=example.test")];
        let mut renamer = Renamer::new(&renames);
        let new = renamer.extension_value(&[0x55, 0x1d, 0x11], &san).unwrap();
        let names = Tlv::read_exact(&new).unwrap().children().unwrap();
        assert_eq!(names[0].content, b"www.example.test");
        assert_eq!(names[1].content, b"example.com\0");
        assert!(renamer.unused().is_empty());
    }

    #[test]
    fn unknown_extensions_and_unmatched_renames_are_left_alone() {
        let renames = [rename("example.com=example.test"), rename("nowhere=x")];
        let mut renamer = Renamer::new(&renames);
        let value = der::write(tag::UTF8_STRING, b"example.com");
        assert_eq!(renamer.extension_value(&[0x2a, 0x03], &value), None);
        assert_eq!(renamer.unused(), renames);
    }

    #[test]
    fn a_printable_string_that_cannot_hold_the_new_value_becomes_utf8() {
        let name = der::write(tag::PRINTABLE_STRING, b"example.com");
        let renames = [rename("example.com=*_under")];
        let mut renamer = Renamer::new(&renames);
        let new = renamer.string(&Tlv::read_exact(&name).unwrap()).unwrap();
        assert_eq!(new[0], tag::UTF8_STRING);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut value = der::write(0x82, b"example.com");
        for _ in 0..10_000 {
            value = der::write(tag::SEQUENCE, &value);
        }
        let renames = [rename("example.com=example.test")];
        let mut renamer = Renamer::new(&renames);
        assert_eq!(renamer.extension_value(&[0x55, 0x1d, 0x11], &value), None);
    }
}
