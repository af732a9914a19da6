//! `image register`: an image whose files were made outside banger. The
//! files stay where they are and stay the user's (delete forgets the image,
//! never the files). Everything is checked before anything is recorded.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use banger_api::names::validate_name;
use banger_api::{ApiError, Image, RegisterImageRequest, VmmKind};
use sha2::{Digest, Sha256};

use super::users_of;
use crate::app::{now, App};
use crate::errors::{self, OpResult};

/// ext4's superblock starts at byte 1024; its magic is at offset 56 in it.
fn is_ext4(path: &Path) -> bool {
    let mut head = [0u8; 1024 + 58];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head[1024 + 56..] == [0x53, 0xef]
}

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

fn invalid(what: &str, path: &str, why: &str, hint: &str) -> ApiError {
    ApiError::invalid(format!("{what} {path}: {why}")).with_hint(hint.to_string())
}

/// A file that must exist and be absolute (the daemon resolves nothing
/// relative to its own directory).
fn existing_file(what: &str, path: &str) -> OpResult<()> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(invalid(
            what,
            path,
            "is not an absolute path",
            "pass the full path",
        ));
    }
    if !p.is_file() {
        return Err(invalid(
            what,
            path,
            "does not exist or is not a file",
            "check the path",
        ));
    }
    Ok(())
}

/// An absolute path to an existing ext4 image.
pub fn check_rootfs(what: &str, path: &str) -> OpResult<()> {
    existing_file(what, path)?;
    if !is_ext4(Path::new(path)) {
        return Err(invalid(
            what,
            path,
            "is not an ext4 filesystem image",
            "pass an ext4 image (e.g. made with mkfs.ext4 -d DIR FILE SIZE)",
        ));
    }
    Ok(())
}

pub async fn register(app: &Arc<App>, request: RegisterImageRequest) -> OpResult<Image> {
    validate_name(&request.name)?;
    let _images = app.image_lock.lock().await;
    let existing = app.store.get_image(&request.name).map_err(errors::store)?;
    if let Some(image) = existing.as_ref().filter(|i| i.managed) {
        return Err(ApiError::conflict(format!(
            "image {} was built by banger; registering would replace it",
            image.name
        ))
        .with_hint("register under another --name, or `banger image delete` it first"));
    }

    check_rootfs("rootfs", &request.rootfs)?;
    let default = app
        .store
        .get_image(&app.config.default_image)
        .map_err(errors::store)?;
    let kernel = match (&request.kernel, &default) {
        (Some(k), _) => k.clone(),
        (None, Some(d)) => d.kernel.clone(),
        (None, None) => {
            return Err(ApiError::invalid(
                "no --kernel given and no default image to take one from",
            )
            .with_hint("pass --kernel (and --initrd), or build the default image first"))
        }
    };
    existing_file("kernel", &kernel)?;
    if app.vmm == VmmKind::Firecracker && !is_elf(Path::new(&kernel)) {
        return Err(invalid(
            "kernel",
            &kernel,
            "is not an ELF vmlinux, and Firecracker boots only those",
            "pass the uncompressed vmlinux (extract-vmlinux turns a bzImage into one)",
        ));
    }
    // An initrd goes with the kernel it was made for.
    let initrd = match (&request.initrd, request.kernel.is_some(), &default) {
        (Some(i), _, _) => i.clone(),
        (None, false, Some(d)) => d.initrd.clone(),
        (None, _, _) => {
            return Err(ApiError::invalid("--kernel needs an --initrd too")
                .with_hint("banger's guests assemble their overlay root in the initrd; pass one made for this kernel"))
        }
    };
    existing_file("initrd", &initrd)?;
    let work_seed = match &request.work_seed {
        Some(seed) => {
            let p = Path::new(seed);
            let ok = p.is_absolute() && (p.is_dir() || (p.is_file() && is_ext4(p)));
            if !ok {
                return Err(invalid(
                    "work seed",
                    seed,
                    "is neither a directory nor an ext4 image",
                    "pass the prepared /root as a directory or an ext4 image",
                ));
            }
            seed.clone()
        }
        None => String::new(),
    };
    let kernel_version = match &request.modules {
        Some(dir) => {
            let p = Path::new(dir);
            if !p.is_dir() {
                return Err(invalid(
                    "modules",
                    dir,
                    "is not a directory",
                    "pass lib/modules/<version>",
                ));
            }
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        }
        None if request.kernel.is_none() => default
            .as_ref()
            .map(|d| d.kernel_version.clone())
            .unwrap_or_default(),
        None => "unknown".into(),
    };
    let packages_sha256 = match &request.packages {
        Some(file) => {
            existing_file("packages", file)?;
            let text = std::fs::read(file).map_err(|e| {
                errors::host(banger_host::HostError::path_io(
                    "cannot read",
                    Path::new(file),
                    e,
                ))
            })?;
            format!("{:x}", Sha256::digest(&text))
        }
        None => String::new(),
    };
    // Existing VMs keep their overlay on top of this rootfs: it must not
    // change under them.
    if let Some(old) = &existing {
        let users = users_of(app, &old.name)?;
        if old.rootfs != request.rootfs && !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "VMs use image {} and their system overlays sit on its current rootfs: {}",
                old.name,
                users.join(", ")
            ))
            .with_hint("register the new rootfs under another --name, or delete those VMs first"));
        }
    }
    let agent = app
        .host
        .disks
        .has_file(
            Path::new(&request.rootfs),
            &format!("/{}", banger_image::build::AGENT_PATH),
        )
        .await
        .map_err(errors::host)?;
    let image = Image {
        agent,
        name: request.name.clone(),
        managed: false,
        rootfs: request.rootfs,
        kernel,
        initrd,
        kernel_version,
        work_seed,
        packages_sha256,
        created_at: existing.map(|e| e.created_at).unwrap_or_else(now),
    };
    app.store.put_image(&image).map_err(errors::store)?;
    tracing::info!(image = %image.name, rootfs = %image.rootfs, "image registered");
    Ok(image)
}
