//! Extracting the ELF `vmlinux` from a compressed `vmlinuz` (bzImage).
//!
//! A bzImage is a small decompressor followed by the compressed kernel. We
//! look for each known compression magic, decompress from there, and keep
//! the first result that is an x86-64 ELF executable.

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("no compressed ELF kernel found in this image (tried LZ4, gzip, XZ and zstd)")]
    NotFound,
}

const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Returns the uncompressed ELF kernel inside `bzimage`.
pub fn extract_vmlinux(bzimage: &[u8]) -> Result<Vec<u8>, KernelError> {
    if is_elf(bzimage) {
        return Ok(bzimage.to_vec());
    }
    type Decoder = fn(&[u8]) -> Option<Vec<u8>>;
    let formats: [(&[u8], Decoder); 4] = [
        (&[0x02, 0x21, 0x4c, 0x18], lz4_legacy),
        (&[0x1f, 0x8b, 0x08], gzip),
        (&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], xz),
        (&[0x28, 0xb5, 0x2f, 0xfd], zstd),
    ];
    for (magic, decode) in formats {
        for offset in find_all(bzimage, magic) {
            if let Some(out) = decode(&bzimage[offset..]) {
                if is_elf(&out) {
                    return Ok(out);
                }
            }
        }
    }
    Err(KernelError::NotFound)
}

pub fn is_elf(bytes: &[u8]) -> bool {
    // ELF magic, 64-bit class, little endian.
    bytes.len() > 64 && bytes.starts_with(ELF_MAGIC) && bytes[4] == 2 && bytes[5] == 1
}

fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(|(i, _)| i)
}

/// The LZ4 "legacy" frame the kernel uses: magic, then blocks prefixed by
/// their compressed size, each expanding to at most 8 MiB. The stream has no
/// end marker; it ends where the next size is implausible.
fn lz4_legacy(data: &[u8]) -> Option<Vec<u8>> {
    const BLOCK: usize = 8 << 20;
    let bound = lz4_flex::block::get_maximum_output_size(BLOCK);
    let mut pos = 4;
    let mut out = Vec::new();
    while pos + 4 <= data.len() {
        let size = u32::from_le_bytes(data[pos..pos + 4].try_into().ok()?) as usize;
        if size == 0 || size > bound || pos + 4 + size > data.len() {
            break;
        }
        let mut block = vec![0u8; BLOCK];
        match lz4_flex::block::decompress_into(&data[pos + 4..pos + 4 + size], &mut block) {
            Ok(n) => out.extend_from_slice(&block[..n]),
            Err(_) if !out.is_empty() => break,
            Err(_) => return None,
        }
        pos += 4 + size;
    }
    (!out.is_empty()).then_some(out)
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(data);
    match decoder.read_to_end(&mut out) {
        Ok(_) => Some(out),
        Err(_) if !out.is_empty() => Some(out),
        Err(_) => None,
    }
}

fn xz(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut input = std::io::BufReader::new(data);
    match lzma_rs::xz_decompress(&mut input, &mut out) {
        Ok(()) => Some(out),
        Err(_) if !out.is_empty() => Some(out),
        Err(_) => None,
    }
}

fn zstd(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut decoder = ruzstd::StreamingDecoder::new(data).ok()?;
    let mut out = Vec::new();
    match decoder.read_to_end(&mut out) {
        Ok(_) => Some(out),
        Err(_) if !out.is_empty() => Some(out),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_elf() -> Vec<u8> {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.extend((0..200_000u32).map(|i| (i % 251) as u8));
        elf
    }

    #[test]
    fn extracts_an_lz4_legacy_payload_behind_a_stub() {
        let elf = fake_elf();
        let mut image = b"MZ decompressor stub \x02\x21 not magic".to_vec();
        image.extend_from_slice(&[0x02, 0x21, 0x4c, 0x18]);
        let block = lz4_flex::block::compress(&elf);
        image.extend_from_slice(&u32::try_from(block.len()).unwrap().to_le_bytes());
        image.extend_from_slice(&block);
        image.extend_from_slice(&u32::try_from(elf.len()).unwrap().to_le_bytes()); // trailer the kernel appends
        assert_eq!(extract_vmlinux(&image).unwrap(), elf);
    }

    #[test]
    fn extracts_a_gzip_payload() {
        use std::io::Write;
        let elf = fake_elf();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&elf).unwrap();
        let mut image = b"stub".to_vec();
        image.extend(enc.finish().unwrap());
        image.extend_from_slice(b"trailing junk");
        assert_eq!(extract_vmlinux(&image).unwrap(), elf);
    }

    #[test]
    fn an_elf_is_returned_as_is_and_junk_is_refused() {
        let elf = fake_elf();
        assert_eq!(extract_vmlinux(&elf).unwrap(), elf);
        assert!(extract_vmlinux(b"not a kernel at all, just some bytes").is_err());
    }
}
