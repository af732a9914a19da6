//! `image register`: an image whose files were made outside banger. The
//! files stay where they are and stay the user's (delete forgets the image,
//! never the files). Everything is checked before anything is recorded.

use std::io::Read;
use std::path::{Path, PathBuf};

use banger_api::names::validate_name;
use banger_api::{Image, RegisterImageRequest, VmmKind};
use banger_host::HostError;
use sha2::{Digest, Sha256};

use super::{FileProblem, ImageError, Images, Result};

/// ext4's superblock starts at byte 1024; its magic is at offset 56 in it.
fn is_ext4(path: &Path) -> bool {
    let mut head = [0u8; 1024 + 58];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head[1024 + 56..] == [0x53, 0xef]
}

fn bad(what: &'static str, path: &Path, problem: FileProblem) -> ImageError {
    ImageError::BadFile {
        what,
        path: path.to_path_buf(),
        problem,
    }
}

/// A file that must exist and be absolute (the daemon resolves nothing
/// relative to its own directory).
pub(super) fn existing_file(what: &'static str, path: &Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(bad(what, path, FileProblem::NotAbsolute));
    }
    if !path.is_file() {
        return Err(bad(what, path, FileProblem::Missing));
    }
    Ok(())
}

/// An absolute path to an existing ext4 image.
pub fn check_rootfs(what: &'static str, path: &Path) -> Result<()> {
    existing_file(what, path)?;
    if !is_ext4(path) {
        return Err(bad(what, path, FileProblem::NotExt4));
    }
    Ok(())
}

impl Images {
    pub async fn register(&self, request: RegisterImageRequest) -> Result<Image> {
        validate_name(&request.name)?;
        let _images = self.lock.lock().await;
        let existing = self.store.get_image(&request.name)?;
        if let Some(image) = existing.as_ref().filter(|i| i.managed) {
            return Err(ImageError::Managed(image.name.clone()));
        }
        check_rootfs("rootfs", &request.rootfs)?;
        let default = self.store.get_image(&self.config.default_image)?;
        let kernel: PathBuf = match (&request.kernel, &default) {
            (Some(k), _) => k.clone(),
            (None, Some(d)) => d.kernel.clone(),
            (None, None) => return Err(ImageError::NoKernel),
        };
        existing_file("kernel", &kernel)?;
        // What the kernel is: Firecracker loads only an x86-64 ELF vmlinux
        // (QEMU also boots a bzImage).
        let bytes =
            std::fs::read(&kernel).map_err(|e| HostError::path_io("cannot read", &kernel, e))?;
        let inspected = banger_image::vmlinux::inspect(&bytes);
        drop(bytes);
        if let (VmmKind::Firecracker, Err(why)) = (self.vmm, &inspected) {
            return Err(bad("kernel", &kernel, FileProblem::NotElf(why.clone())));
        }
        // An initrd goes with the kernel it was made for.
        let initrd = match (&request.initrd, request.kernel.is_some(), &default) {
            (Some(i), _, _) => i.clone(),
            (None, false, Some(d)) => d.initrd.clone(),
            (None, _, _) => return Err(ImageError::InitrdNeeded),
        };
        existing_file("initrd", &initrd)?;
        if let Some(seed) = &request.work_seed {
            let ok = seed.is_absolute() && (seed.is_dir() || (seed.is_file() && is_ext4(seed)));
            if !ok {
                return Err(bad("work seed", seed, FileProblem::NotSeed));
            }
        }
        let kernel_version = match &request.modules {
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(bad("modules", dir, FileProblem::NotDir));
                }
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }
            None if request.kernel.is_none() => default
                .as_ref()
                .map(|d| d.kernel_version.clone())
                .unwrap_or_default(),
            None => inspected
                .ok()
                .and_then(|k| k.version)
                .unwrap_or_else(|| "unknown".into()),
        };
        let packages_sha256 = match &request.packages {
            Some(file) => {
                existing_file("packages", file)?;
                let text =
                    std::fs::read(file).map_err(|e| HostError::path_io("cannot read", file, e))?;
                format!("{:x}", Sha256::digest(&text))
            }
            None => String::new(),
        };
        // Existing VMs keep their overlay on top of this rootfs: it must not
        // change under them.
        if let Some(old) = &existing {
            let users = self.users_of(&old.name)?;
            if old.rootfs != request.rootfs && !users.is_empty() {
                return Err(ImageError::OverlaysOnRootfs {
                    image: old.name.clone(),
                    users,
                });
            }
        }
        let agent = self
            .disks
            .read_file(&request.rootfs, &format!("/{}", banger_image::AGENT_PATH))
            .await?;
        let image = Image {
            agent: agent.is_some(),
            agent_serial: agent.is_some_and(|bytes| banger_image::speaks_serial(&bytes)),
            warm: false,
            name: request.name.clone(),
            managed: false,
            rootfs: request.rootfs,
            kernel,
            initrd,
            kernel_version,
            work_seed: request.work_seed,
            packages_sha256,
            created_at: existing
                .map(|e| e.created_at)
                .unwrap_or_else(time::OffsetDateTime::now_utc),
        };
        self.store.put_image(&image)?;
        self.drop_warm(&image.name);
        tracing::info!(image = %image.name, rootfs = %image.rootfs.display(), "image registered");
        Ok(image)
    }
}
