//! The default guest image, built from scratch from Debian's mirror:
//!
//! 1. [`build`] — a bookworm root filesystem by `mmdebstrap` (systemd, sshd,
//!    the cloud kernel, and the packages of `packages.apt`), configured for
//!    banger and packed into ext4 with `mkfs.ext4 -d` (no mount);
//! 2. [`kernel`] — the ELF `vmlinux` extracted from Debian's compressed
//!    `vmlinuz` (Firecracker boots ELF only; QEMU boots it too, via PVH);
//! 3. [`initramfs`] — a busybox initramfs that loads the virtio and overlay
//!    modules and assembles `/` as an overlay of the read-only base and the
//!    VM's own disk.

pub mod base;
pub mod build;
pub mod cpio;
pub mod download;
pub mod initramfs;
pub mod kernel;
pub mod tools;
pub mod void;

pub use build::{
    build_image, cached_image, manifest_sha256, BuildError, BuildRequest, Source, TMUX_CONF,
    TMUX_SESSIONS,
};

/// The initramfs `/init` script (also readable in `assets/init`).
pub const INIT_SCRIPT: &str = include_str!("../assets/init");

/// The bundled package list of the default image.
pub const DEFAULT_PACKAGES: &str = include_str!("../../../images/default/packages.apt");

/// The bundled package list of the experimental Void image.
pub const VOID_PACKAGES: &str = include_str!("../../../images/void/packages.void");

/// Filesystem labels the initramfs looks for.
pub const LABEL_BASE: &str = "banger-root";
pub const LABEL_OVERLAY: &str = "banger-overlay";
pub const LABEL_WORK: &str = "banger-work";
