//! Decompressing what xbps writes: zstd by default, gzip and xz too; a
//! plain tar passes through.

use std::io::Read;

/// The tar inside `bytes`.
pub fn decompress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let err =
        |format: &str, e: &dyn std::fmt::Display| std::io::Error::other(format!("{format}: {e}"));
    let mut out = Vec::new();
    match bytes {
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            ruzstd::StreamingDecoder::new(bytes)
                .map_err(|e| err("zstd", &e))?
                .read_to_end(&mut out)
                .map_err(|e| err("zstd", &e))?;
        }
        [0x1f, 0x8b, ..] => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| err("gzip", &e))?;
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            lzma_rs::xz_decompress(&mut &bytes[..], &mut out).map_err(|e| err("xz", &e))?;
        }
        _ => out = bytes.to_vec(),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_gzip_data_decompress() {
        assert_eq!(decompress(b"plain tar").unwrap(), b"plain tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"hello").unwrap();
        assert_eq!(decompress(&gz.finish().unwrap()).unwrap(), b"hello");
    }
}
