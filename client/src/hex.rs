//! Bytes as lower-case hex, as the traces and the JSON write connection
//! IDs, session tickets and digests.

/// `[0x0d, 0x3c]` -> `"0d3c"`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::hex;

    #[test]
    fn bytes_are_two_lower_case_digits_each() {
        assert_eq!(hex(&[0x0d, 0x3c, 0xff, 0x00]), "0d3cff00");
        assert_eq!(hex(&[]), "");
    }
}
