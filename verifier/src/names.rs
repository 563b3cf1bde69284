//! Distinguished names as one line, in the `CN=..., O=...` form of
//! RFC 4514 order reversed, as `openssl x509 -subject -nameopt RFC2253` prints.

use boring::x509::X509NameRef;

/// The name's entries joined as `CN=leaf, O=Example`, most specific first.
pub fn one_line(name: &X509NameRef) -> String {
    let entries: Vec<String> = name
        .entries()
        .map(|entry| {
            let key = entry
                .object()
                .nid()
                .short_name()
                .map(str::to_owned)
                .unwrap_or_else(|_| entry.object().to_string());
            let value = entry
                .data()
                .as_utf8()
                .map(|v| v.to_string())
                .unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect();
    entries.into_iter().rev().collect::<Vec<_>>().join(", ")
}
