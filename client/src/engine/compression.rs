//! TLS certificate compression (RFC 8879) with zlib: offered by the client,
//! so that the report can say whether the server compressed its chain, and
//! used by the lab when asked to compress. A compressed chain is a smaller
//! first flight, and so may avoid the anti-amplification round trip.

use std::io::{self, Read, Write};

use boring::ssl::{CertificateCompressionAlgorithm, CertificateCompressor};

/// The most a compressed chain may expand to. BoringSSL also bounds it by
/// the declared length; this keeps a hostile stream from running on.
const MAX_UNCOMPRESSED: u64 = 1 << 20;

/// zlib (RFC 8879 algorithm 1), both ways.
pub struct Zlib;

impl CertificateCompressor for Zlib {
    const ALGORITHM: CertificateCompressionAlgorithm = CertificateCompressionAlgorithm::ZLIB;
    const CAN_COMPRESS: bool = true;
    const CAN_DECOMPRESS: bool = true;

    fn compress<W: Write>(&self, input: &[u8], output: &mut W) -> io::Result<()> {
        let mut encoder = flate2::write::ZlibEncoder::new(output, flate2::Compression::default());
        encoder.write_all(input)?;
        encoder.finish().map(|_| ())
    }

    fn decompress<W: Write>(&self, input: &[u8], output: &mut W) -> io::Result<()> {
        inflate(input, MAX_UNCOMPRESSED).and_then(|bytes| output.write_all(&bytes))
    }
}

/// zlib-inflates at most `limit` bytes; more is an error, not a bigger buffer.
pub fn inflate(input: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(input)
        .take(limit + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::other("compressed certificate expands too far"));
    }
    Ok(out)
}

/// RFC 8879's name for an algorithm number.
pub fn algorithm_name(algorithm: u16) -> String {
    match algorithm {
        1 => "zlib".into(),
        2 => "brotli".into(),
        3 => "zstd".into(),
        other => format!("algorithm {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_and_a_bomb_that_is_stopped() {
        let mut packed = Vec::new();
        Zlib.compress(b"certificate bytes", &mut packed).unwrap();
        let mut unpacked = Vec::new();
        Zlib.decompress(&packed, &mut unpacked).unwrap();
        assert_eq!(unpacked, b"certificate bytes");

        let mut bomb = Vec::new();
        Zlib.compress(&vec![0u8; 4 << 20], &mut bomb).unwrap();
        assert!(inflate(&bomb, MAX_UNCOMPRESSED).is_err());
        assert!(inflate(b"not zlib at all", MAX_UNCOMPRESSED).is_err());
    }
}
