//! A user's kernel in place of the distribution's (`image build --kernel`):
//! any source's tree, booted by a `vmlinux` the user trusts under
//! Firecracker (e.g. Firecracker's CI guest kernel). Such kernels carry
//! their boot drivers built in, so the initramfs loads no modules unless the
//! tree has modules for exactly that kernel.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use banger_host::HostError;
use sha2::{Digest, Sha256};

use super::{Cx, Source};
use crate::download::hex;
use crate::fsutil::{blocking, write};
use crate::vmlinux::{self, Vmlinux};
use crate::{initramfs, BuildError};

#[derive(Debug)]
pub struct UserKernel {
    inner: Box<dyn Source>,
    path: PathBuf,
    sha256: String,
    kernel: Vmlinux,
}

/// Reads and checks a user's kernel file.
pub fn check(path: &Path) -> Result<(Vec<u8>, Vmlinux), BuildError> {
    let bytes = std::fs::read(path).map_err(|e| HostError::path_io("cannot read", path, e))?;
    let kernel = vmlinux::inspect(&bytes).map_err(|source| BuildError::UserKernel {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((bytes, kernel))
}

impl UserKernel {
    pub fn new(inner: Box<dyn Source>, path: PathBuf) -> Result<UserKernel, BuildError> {
        let (bytes, kernel) = check(&path)?;
        Ok(UserKernel {
            inner,
            sha256: hex(&Sha256::digest(&bytes)),
            path,
            kernel,
        })
    }
}

#[async_trait]
impl Source for UserKernel {
    fn identity(&self) -> String {
        format!("{} kernel={}", self.inner.identity(), self.sha256)
    }

    fn manifest_name(&self) -> &'static str {
        self.inner.manifest_name()
    }

    async fn bootstrap(&self, cx: &Cx<'_>, rootdir: &Path) -> Result<(), BuildError> {
        self.inner.bootstrap(cx, rootdir).await
    }

    fn configure(&self, root: &Path) -> std::io::Result<()> {
        self.inner.configure(root)
    }

    async fn kernel(&self, cx: &Cx<'_>, rootdir: &Path) -> Result<(), BuildError> {
        let version = self.kernel.version.clone();
        let entry = if self.kernel.pvh {
            "PVH entry"
        } else {
            "64-bit boot protocol"
        };
        (cx.say)(
            "image.kernel",
            format!(
                "using your kernel {} ({}, {entry})",
                self.path.display(),
                version.as_deref().unwrap_or("version unknown")
            ),
            0.76,
        );
        let (bytes, _) = check(&self.path)?;
        write(&cx.stage.join("vmlinux"), &bytes)?;
        write(
            &cx.stage.join("kernel-version"),
            version.as_deref().unwrap_or("unknown").as_bytes(),
        )?;
        // Modules only when the tree has them for this very kernel.
        let modules = version.filter(|v| rootdir.join("lib/modules").join(v).is_dir());
        let dir = rootdir.to_path_buf();
        let initrd = blocking(move || initramfs::build(&dir, modules.as_deref())).await?;
        write(&cx.stage.join("initrd.img"), &initrd)?;
        Ok(())
    }
}
