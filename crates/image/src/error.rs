//! Why an image build failed, one variant per failure a caller can act on.
//! Messages name the failure; the underlying error is the `source`.

use std::path::PathBuf;

use banger_host::HostError;

use crate::sources::void::VoidError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Host(#[from] HostError),
    /// `--distro` names a distribution banger cannot build.
    #[error("unknown --distro {0:?}")]
    UnknownDistro(String),
    /// Two build options that exclude each other.
    #[error("{0} and {1} do not go together")]
    Conflicting(&'static str, &'static str),
    /// A package list entry that is not a package name (an option, say).
    #[error("{0:?} is not a Debian package name")]
    BadPackageName(String),
    /// `--mirror` is neither a URL nor an existing directory.
    #[error("the mirror {0:?} is not an http(s):// or file:// URL, nor an existing directory")]
    BadMirror(String),
    /// `--size` smaller than the tree.
    #[error("--size {asked} is too small: this root filesystem needs at least {needed}")]
    TooSmall { asked: String, needed: String },
    /// Not enough free space to even start.
    #[error("not enough free space for an image build in {}: {free} free, about {needed} needed", .dir.display())]
    NoSpace {
        dir: PathBuf,
        free: String,
        needed: String,
    },
    /// The tree has no kernel to boot.
    #[error("no vmlinuz-* in {}", .0.display())]
    NoKernel(PathBuf),
    #[error("cannot extract the ELF kernel from {}", .path.display())]
    Kernel {
        path: PathBuf,
        #[source]
        source: crate::kernel::KernelError,
    },
    /// `--kernel` names a file Firecracker cannot load.
    #[error("--kernel {}: {source}", .path.display())]
    UserKernel {
        path: PathBuf,
        #[source]
        source: crate::vmlinux::VmlinuxError,
    },
    #[error("cannot build the initramfs")]
    Initramfs(#[from] crate::initramfs::InitramfsError),
    /// A base root filesystem without apt (not Debian).
    #[error("the base {} has no apt-get: --base-rootfs takes a Debian (or Debian-based) root filesystem", .0.display())]
    NotDebian(PathBuf),
    /// The agent binary was built against a newer libc than the image's.
    #[error("the guest agent {} does not run on this image's libc", .agent.display())]
    AgentIncompatible {
        agent: PathBuf,
        #[source]
        source: HostError,
    },
    #[error("configuring the root filesystem")]
    Configure(#[source] std::io::Error),
    #[error(transparent)]
    Tools(#[from] crate::tools::ToolError),
    #[error(transparent)]
    Void(#[from] VoidError),
    /// A finished image directory that lacks a file.
    #[error("image {name} is incomplete; rebuild it")]
    Incomplete {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// A build step failed: what the tools logged, and where the log is.
    #[error("building image {name} failed{}{}; the build's full output is in {}",
        .last_errors.as_ref().map(|e| format!(" (last errors: {e})")).unwrap_or_default(),
        if *.disk_full { " because the disk filled up (nothing was kept)" } else { "" },
        .log.display())]
    Failed {
        name: String,
        log: PathBuf,
        last_errors: Option<String>,
        disk_full: bool,
        #[source]
        source: Box<BuildError>,
    },
}

impl BuildError {
    /// The fix a user should apply, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            BuildError::Host(e) => return e.hint(),
            BuildError::UnknownDistro(_) => {
                "use --distro debian (the default) or --distro void (experimental)".into()
            }
            BuildError::Conflicting(..) => "drop one of them".into(),
            BuildError::BadPackageName(_) => "fix the package list".into(),
            BuildError::BadMirror(_) => {
                "pass --mirror https://deb.debian.org/debian (or another mirror), or a local mirror directory".into()
            }
            BuildError::TooSmall { .. } => {
                "pass a larger --size, or leave it out to size the image to fit".into()
            }
            BuildError::NoSpace { .. } => {
                "free some space, or set images_dir in config.toml to a bigger disk".into()
            }
            BuildError::AgentIncompatible { .. } => "build banger on a system whose glibc is no newer than the image's (for Debian images: debian_suite), or set agent_bin to an agent built for it".into(),
            BuildError::Tools(_) => {
                "set npm_registry in config.toml to a reachable npm registry or mirror".into()
            }
            BuildError::Void(e) => return e.hint(),
            BuildError::UserKernel { source, .. } => source.hint().into(),
            BuildError::Failed {
                disk_full: true, ..
            } => "free some space, or set images_dir in config.toml to a bigger disk".into(),
            BuildError::Failed { source, .. } => return source.hint(),
            _ => return None,
        })
    }

    /// Whether this is the user's input (rather than the host) at fault.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            BuildError::UnknownDistro(_)
            | BuildError::Conflicting(..)
            | BuildError::BadPackageName(_)
            | BuildError::BadMirror(_)
            | BuildError::TooSmall { .. }
            | BuildError::NotDebian(_)
            | BuildError::UserKernel { .. } => true,
            BuildError::Void(e) => e.is_invalid_input(),
            BuildError::Failed { source, .. } => source.is_invalid_input(),
            _ => false,
        }
    }
}
