//! banger's guest images, built from a distribution's packages:
//!
//! - [`pipeline`] — the build, the same for every source: bootstrap, the
//!   shared [`setup`], the source's init setup, the kernel, [`pack`] into
//!   ext4 with `mkfs.ext4 -d` (no mount); staged and renamed into place
//! - [`sources`] — where a tree comes from: Debian by mmdebstrap, Debian
//!   from a base ext4 image, or (experimental) Void Linux; one trait
//! - [`identity`] — what a build produces, so an unchanged one is reused
//! - [`kernel`] — the ELF `vmlinux` extracted from Debian's compressed
//!   `vmlinuz` (Firecracker boots ELF only; QEMU boots it too, via PVH)
//! - [`initramfs`] (with [`cpio`]) — a busybox initramfs that loads the
//!   virtio and overlay modules and assembles `/` as an overlay of the
//!   read-only base and the VM's own disk
//! - [`tools`], [`download`] — checked downloads (npm tools, packages)
//! - [`packages`] — package lists and Debian's name grammar

pub mod cpio;
pub mod download;
mod error;
mod fsutil;
pub mod identity;
pub mod initramfs;
pub mod kernel;
mod pack;
pub mod packages;
pub mod pipeline;
pub mod progress;
mod request;
pub mod setup;
pub mod sources;
pub mod tools;
mod tree;
pub mod vmlinux;

pub use error::BuildError;
pub use identity::cached_image;
pub use pipeline::build_image;
pub use request::BuildRequest;
pub use setup::{speaks_serial, AGENT_PATH, TMUX_CONF, TMUX_SESSIONS};
pub use sources::{Mirrors, Origin, Source};

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
