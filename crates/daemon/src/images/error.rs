//! Why an image operation failed.

use std::path::PathBuf;

use banger_api::names::NameError;
use banger_api::SizeError;
use banger_host::HostError;
use banger_image::BuildError;
use banger_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("no image named {0:?}")]
    NotFound(String),
    /// Delete refused: VMs boot from it.
    #[error("image {image} is used by {}: {}", if .users.len() == 1 { "a VM" } else { "VMs" }, .users.join(", "))]
    InUse { image: String, users: Vec<String> },
    /// A rebuild would replace the base disk under existing VMs' overlays.
    #[error("image {image} would change, but VMs use it: {}", .users.join(", "))]
    WouldChange { image: String, users: Vec<String> },
    /// A new rootfs registered under a name VMs boot from.
    #[error("VMs use image {image} and their system overlays sit on its current rootfs: {}", .users.join(", "))]
    OverlaysOnRootfs { image: String, users: Vec<String> },
    #[error("image {0} is registered from your own files; a build would replace it")]
    Registered(String),
    #[error("image {0} was built by banger; registering would replace it")]
    Managed(String),
    /// This origin boots the default image's kernel, so it cannot be it.
    #[error("the image cannot be the default image {0:?}: it boots the default image's kernel")]
    BorrowsDefaultKernel(String),
    #[error("--size {0} is too small for a root filesystem")]
    SizeTooSmall(String),
    #[error("--size is not a size")]
    Size(#[source] SizeError),
    #[error("cannot read package file {}", .path.display())]
    Packages {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the guest agent binary (banger-agent) was not found beside bangerd or in PATH")]
    NoAgent,
    #[error("{what} {}: {problem}", .path.display())]
    BadFile {
        what: &'static str,
        path: PathBuf,
        problem: FileProblem,
    },
    #[error("no --kernel given and no default image to take one from")]
    NoKernel,
    #[error("--kernel needs an --initrd too")]
    InitrdNeeded,
}

/// What is wrong with a file a request names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    #[error("is not an absolute path")]
    NotAbsolute,
    #[error("does not exist or is not a file")]
    Missing,
    #[error("is not an ext4 filesystem image")]
    NotExt4,
    /// Firecracker boots only an x86-64 ELF vmlinux.
    #[error("cannot boot under Firecracker: {0}")]
    NotElf(banger_image::vmlinux::VmlinuxError),
    #[error("is not a directory")]
    NotDir,
    #[error("is neither a directory nor an ext4 image")]
    NotSeed,
}

impl FileProblem {
    pub fn hint(&self) -> &'static str {
        match self {
            FileProblem::NotAbsolute => "pass the full path",
            FileProblem::Missing => "check the path",
            FileProblem::NotExt4 => {
                "pass an ext4 image (e.g. made with mkfs.ext4 -d DIR FILE SIZE)"
            }
            FileProblem::NotElf(why) => why.hint(),
            FileProblem::NotDir => "pass lib/modules/<version>",
            FileProblem::NotSeed => "pass the prepared /root as a directory or an ext4 image",
        }
    }
}

impl ImageError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ImageError::Host(e) => return e.hint(),
            ImageError::Build(e) => return e.hint(),
            ImageError::Name(_) => NameError::HINT.into(),
            ImageError::NotFound(_) => "`banger image list` shows the images; `banger image build --name NAME` builds one".into(),
            ImageError::InUse { .. } => "delete those VMs first (`banger vm delete NAME`)".into(),
            ImageError::WouldChange { .. } => "delete those VMs first, or build under another --name".into(),
            ImageError::OverlaysOnRootfs { .. } => "register the new rootfs under another --name, or delete those VMs first".into(),
            ImageError::Registered(_) => "build under another --name, or `banger image delete` it first".into(),
            ImageError::Managed(_) => "register under another --name, or `banger image delete` it first".into(),
            ImageError::BorrowsDefaultKernel(_) => "build it under another --name, e.g. --name void-exp".into(),
            ImageError::SizeTooSmall(_) => "use at least 512M; without --size the image is sized to fit".into(),
            ImageError::Size(e) => e.hint().into(),
            ImageError::Packages { .. } => "pass an existing package list file".into(),
            ImageError::NoAgent => "install it with bangerd (`make install`), build it with `cargo build -p banger-agent`, or set agent_bin in config.toml".into(),
            ImageError::BadFile { problem, .. } => problem.hint().into(),
            ImageError::NoKernel => "pass --kernel (and --initrd), or build the default image first".into(),
            ImageError::InitrdNeeded => "banger's guests assemble their overlay root in the initrd; pass one made for this kernel".into(),
            ImageError::Store(_) => return None,
        })
    }
}
