//! Which kernels have proven themselves under Firecracker on this host. The
//! Debian kernel reaches its devices under Firecracker only through the ACPI
//! tables Firecracker provides, which banger cannot check up front; the
//! first time a kernel boots a guest to readiness under it is recorded (by
//! content, so a rebuilt kernel starts unproven) and doctor says so.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use banger_api::{Check, CheckStatus, VmmKind};
use banger_store::Store;
use sha2::{Digest, Sha256};

/// The sha256 of a kernel file.
pub fn fingerprint(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Records, off the create path, that `kernel` booted a guest to readiness
/// under `vmm` (only Firecracker's record is ever consulted).
pub fn record_ready(store: Arc<Store>, kernel: PathBuf, vmm: VmmKind) {
    if vmm != VmmKind::Firecracker {
        return;
    }
    tokio::task::spawn_blocking(move || {
        let recorded = fingerprint(&kernel)
            .map_err(|e| e.to_string())
            .and_then(|sha| {
                store
                    .record_kernel_boot(&sha, vmm)
                    .map_err(|e| e.to_string())
            });
        match recorded {
            Ok(true) => {
                tracing::info!(kernel = %kernel.display(), "first guest ready under Firecracker with this kernel")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(kernel = %kernel.display(), error = %e, "cannot record the kernel's boot")
            }
        }
    });
}

/// Doctor's word on the default image's kernel under Firecracker.
pub fn check(store: &Store, image: &str) -> Option<Check> {
    let image = store.get_image(image).ok().flatten()?;
    let name = format!("image {} kernel", image.name);
    let what = format!("{} ({})", image.kernel.display(), image.kernel_version);
    let first = fingerprint(&image.kernel)
        .ok()
        .and_then(|sha| store.kernel_first_ready(&sha, VmmKind::Firecracker).ok())
        .flatten();
    Some(match first {
        Some(at) => super::doctor::check(
            &name,
            CheckStatus::Pass,
            format!(
                "{what} first booted a guest under Firecracker here at {}",
                banger_api::stamp::format(&at)
            ),
            None,
        ),
        None => super::doctor::check(
            &name,
            CheckStatus::Warn,
            format!("{what} has never booted a guest to readiness under Firecracker on this host"),
            Some(format!(
                "if VMs do not become ready, build the image with a kernel made for Firecracker (`banger image build --name {} --kernel /path/to/vmlinux`), or set vmm = \"qemu\"",
                image.name
            )),
        ),
    })
}
