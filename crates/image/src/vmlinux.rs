//! What a kernel file is, checked before it is used: Firecracker loads an
//! uncompressed x86-64 ELF executable (`vmlinux`), through its PVH entry
//! point when the kernel has the note for it (Xen's `PHYS32_ENTRY`), else
//! through the 64-bit Linux boot protocol. A compressed `bzImage` is
//! recognised so the error can say what to do with it.

use object::elf::{EM_X86_64, ET_EXEC, PT_NOTE};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::Endianness;

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit PVH entry point, in a "Xen" note.
const PVH_NOTE: u32 = 18;

/// What an acceptable kernel turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmlinux {
    /// It has the PVH entry note (Firecracker then boots it through PVH).
    pub pvh: bool,
    /// From its `Linux version ...` banner, when it has one.
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmlinuxError {
    #[error("it is a compressed bzImage, not an ELF vmlinux")]
    BzImage,
    #[error("it is not an ELF file")]
    NotElf,
    #[error("it is an ELF file but not a 64-bit x86 executable ({0})")]
    WrongKind(String),
    #[error("its ELF headers do not parse ({0})")]
    Malformed(String),
}

impl VmlinuxError {
    pub fn hint(&self) -> &'static str {
        match self {
            VmlinuxError::BzImage => "pass the uncompressed vmlinux (the kernel build's top-level `vmlinux`, or `scripts/extract-vmlinux bzImage > vmlinux`)",
            _ => "pass an x86-64 Linux kernel built as vmlinux (for Firecracker, e.g. its CI guest kernel)",
        }
    }
}

/// Checks a kernel file's bytes.
pub fn inspect(bytes: &[u8]) -> Result<Vmlinux, VmlinuxError> {
    if !bytes.starts_with(b"\x7fELF") {
        // The boot sector's "HdrS" header marks a bzImage.
        let bz = bytes.len() > 0x206 && &bytes[0x202..0x206] == b"HdrS";
        return Err(if bz {
            VmlinuxError::BzImage
        } else {
            VmlinuxError::NotElf
        });
    }
    let elf = ElfFile64::<Endianness>::parse(bytes)
        .map_err(|e| VmlinuxError::Malformed(e.to_string()))?;
    let endian = elf.endian();
    let header = elf.elf_header();
    let (kind, machine) = (header.e_type(endian), header.e_machine(endian));
    if kind != ET_EXEC || machine != EM_X86_64 {
        return Err(VmlinuxError::WrongKind(format!(
            "type {kind}, machine {machine}"
        )));
    }
    let mut pvh = false;
    for segment in elf.elf_program_headers() {
        if segment.p_type(endian) != PT_NOTE {
            continue;
        }
        let notes = segment
            .notes(endian, bytes)
            .map_err(|e| VmlinuxError::Malformed(e.to_string()))?;
        let Some(mut notes) = notes else { continue };
        while let Some(note) = notes
            .next()
            .map_err(|e| VmlinuxError::Malformed(e.to_string()))?
        {
            if note.name() == b"Xen" && note.n_type(endian) == PVH_NOTE {
                pvh = true;
            }
        }
    }
    Ok(Vmlinux {
        pvh,
        version: banner_version(bytes),
    })
}

/// `6.1.0-28-cloud-amd64` from the kernel's `Linux version 6.1.0-28-cloud-amd64 (...)`.
pub fn banner_version(bytes: &[u8]) -> Option<String> {
    const BANNER: &[u8] = b"Linux version ";
    let start = bytes.windows(BANNER.len()).position(|w| w == BANNER)? + BANNER.len();
    let rest = &bytes[start..bytes.len().min(start + 128)];
    let end = rest.iter().position(|b| !b.is_ascii_graphic())?;
    (end > 0).then(|| String::from_utf8_lossy(&rest[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use banger_testkit::doubles::elf;

    #[test]
    fn a_pvh_vmlinux_and_a_plain_one_are_accepted() {
        let banner = b"\0Linux version 6.1.102 (builder@ci) #1 SMP\0";
        let pvh = elf(
            ET_EXEC,
            EM_X86_64,
            &[(b"Xen", PVH_NOTE), (b"GNU", 3)],
            banner,
        );
        assert_eq!(
            inspect(&pvh),
            Ok(Vmlinux {
                pvh: true,
                version: Some("6.1.102".into())
            })
        );
        let plain = elf(ET_EXEC, EM_X86_64, &[(b"GNU", 3)], b"");
        assert_eq!(
            inspect(&plain),
            Ok(Vmlinux {
                pvh: false,
                version: None
            })
        );
    }

    #[test]
    fn what_firecracker_cannot_load_is_named() {
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(inspect(&bz), Err(VmlinuxError::BzImage));
        assert_eq!(inspect(b"#!/bin/sh\n"), Err(VmlinuxError::NotElf));
        // An aarch64 executable, and an x86-64 shared object.
        let arm = elf(ET_EXEC, 183, &[], b"");
        assert!(matches!(inspect(&arm), Err(VmlinuxError::WrongKind(_))));
        let dyn_ = elf(object::elf::ET_DYN, EM_X86_64, &[], b"");
        assert!(matches!(inspect(&dyn_), Err(VmlinuxError::WrongKind(_))));
        let cut = &elf(ET_EXEC, EM_X86_64, &[(b"Xen", PVH_NOTE)], b"")[..70];
        assert!(matches!(inspect(cut), Err(VmlinuxError::Malformed(_))));
    }
}
