//! A suspended VM's saved state on disk: the VMM's files and banger's
//! `state.json`, which says what the state belongs to. A state is resumed
//! only by the banger version, VMM, image build and machine size that
//! wrote it; anything else is refused with the way out (discard it, boot
//! cold), because restoring memory onto other disks or devices corrupts
//! the guest.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use banger_api::{Image, Vm, VmmKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Written last into the state directory: a state without it is not whole.
pub const MANIFEST: &str = "state.json";
/// Bumped whenever what a state holds or means changes.
const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub banger: String,
    pub vmm: VmmKind,
    pub image: String,
    /// The image build the guest's root filesystem came from.
    #[serde(with = "time::serde::rfc3339")]
    pub image_built: OffsetDateTime,
    pub vcpu: u32,
    pub memory_mib: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub saved_at: OffsetDateTime,
}

impl Manifest {
    pub fn of(vm: &Vm, image: &Image) -> Manifest {
        Manifest {
            format: FORMAT,
            banger: env!("CARGO_PKG_VERSION").to_string(),
            vmm: vm.vmm,
            image: image.name.clone(),
            image_built: image.created_at,
            vcpu: vm.vcpu,
            memory_mib: vm.memory_mib,
            saved_at: OffsetDateTime::now_utc(),
        }
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).expect("manifest serialises");
        let file = std::fs::File::create(dir.join(MANIFEST))?;
        use std::io::Write;
        let mut file = file;
        file.write_all(&text)?;
        // The state is whole only once everything in it is on disk.
        file.sync_all()?;
        Ok(())
    }

    /// The manifest of the state in `dir`, or why there is none usable.
    pub fn read(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{} is missing", path.display()),
            _ => format!("{}: {e}", path.display()),
        })?;
        serde_json::from_slice(&text).map_err(|e| format!("{} is damaged: {e}", path.display()))
    }

    /// Why this state cannot continue `vm` on `image`, if it cannot.
    pub fn mismatch(&self, vm: &Vm, image: &Image) -> Option<String> {
        if self.format != FORMAT || self.banger != env!("CARGO_PKG_VERSION") {
            return Some(format!(
                "it was written by banger {} (state format {}), this is {} (format {FORMAT})",
                self.banger,
                self.format,
                env!("CARGO_PKG_VERSION")
            ));
        }
        if self.vmm != vm.vmm {
            return Some(format!(
                "it was saved by {}, the VM runs {}",
                self.vmm, vm.vmm
            ));
        }
        if self.image != image.name || self.image_built != image.created_at {
            return Some(format!(
                "it belongs to image {} as built at {}; image {} was built at {}",
                self.image, self.image_built, image.name, image.created_at
            ));
        }
        if (self.vcpu, self.memory_mib) != (vm.vcpu, vm.memory_mib) {
            return Some(format!(
                "it has {} vCPU and {} MiB, the VM {} and {}",
                self.vcpu, self.memory_mib, vm.vcpu, vm.memory_mib
            ));
        }
        None
    }
}

/// Bytes the files of `dir` take on disk (allocated blocks: sparse parts
/// cost nothing).
pub fn bytes(dir: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.blocks() * 512)
            .sum(),
    )
}

/// Removes every saved state of a VM (whole, partial or used), failing if
/// one stays: a state left behind could later be taken for the VM's own.
pub fn discard(files: &banger_api::files::VmFiles) -> Result<(), banger_host::HostError> {
    for dir in [files.saved(), files.saved_partial(), files.saved_used()] {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(banger_host::HostError::path_io("cannot remove", &dir, e)),
        }
    }
    Ok(())
}

/// Syncs a directory's files and the directory itself, so what a rename
/// or a manifest promises is on disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_type()?.is_file() {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Removes a state directory, if there is one.
pub fn remove(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a saved state"),
    }
}

/// What a warm template ([`super::warm`]) is besides its saved guest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    pub mac: banger_api::MacAddr,
    pub ip: std::net::Ipv4Addr,
    pub disk_size_bytes: u64,
    pub overlay_size_bytes: u64,
}

impl Template {
    /// The sizes of the disks it was saved with.
    pub fn sizes(&self) -> DiskSizes {
        DiskSizes {
            overlay: self.overlay_size_bytes,
            work: self.disk_size_bytes,
        }
    }
}

/// The sizes of a VM's two writable disks (overlay, `/root`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSizes {
    pub overlay: u64,
    pub work: u64,
}

impl DiskSizes {
    pub fn of(vm: &Vm) -> DiskSizes {
        DiskSizes {
            overlay: vm.overlay_size_bytes,
            work: vm.disk_size_bytes,
        }
    }

    /// Whether no disk is smaller than in `other`.
    pub fn at_least(&self, other: DiskSizes) -> bool {
        self.overlay >= other.overlay && self.work >= other.work
    }
}
