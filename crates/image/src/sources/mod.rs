//! Where an image's tree comes from. Each source is a module behind one
//! trait, [`Source`]; the pipeline ([`crate::pipeline`]) only ever calls the
//! trait, and [`Origin`] is the one place that picks a source from a
//! request.
//!
//! - [`debian`] — Debian bootstrapped from a mirror by mmdebstrap
//! - [`debian_base`] — Debian copied from an existing ext4 image
//! - [`void`] — the experimental Void Linux image, on the default kernel
//! - [`systemd`] — the init-system setup both Debian sources share
//! - [`user_kernel`] — any of them booted by the user's own kernel (`--kernel`)
//! - [`Source`], [`Cx`], [`Profile`] (in `source`) — the trait and what it is given

pub mod debian;
pub mod debian_base;
mod source;
pub mod systemd;
pub mod user_kernel;
pub mod void;

use std::path::PathBuf;

pub use source::{Cx, Profile, Source};

use crate::BuildError;

/// Where a build's tree comes from, as the request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Debian,
    DebianBase(PathBuf),
    Void,
}

/// Mirrors configured for each distribution; `--mirror` overrides the one
/// the build uses.
#[derive(Debug, Clone, Default)]
pub struct Mirrors {
    pub debian: Option<String>,
    pub void: Option<String>,
}

impl Origin {
    /// The origin `--distro` and `--base-rootfs` ask for.
    pub fn choose(
        distro: Option<&str>,
        base_rootfs: Option<PathBuf>,
    ) -> Result<Origin, BuildError> {
        match (distro, base_rootfs) {
            (None | Some("debian"), None) => Ok(Origin::Debian),
            (None | Some("debian"), Some(base)) => Ok(Origin::DebianBase(base)),
            (Some("void"), None) => Ok(Origin::Void),
            (Some("void"), Some(_)) => {
                Err(BuildError::Conflicting("--base-rootfs", "--distro void"))
            }
            (Some(other), _) => Err(BuildError::UnknownDistro(other.to_string())),
        }
    }

    pub fn profile(&self) -> &'static Profile {
        match self {
            Origin::Debian => &debian::PROFILE,
            Origin::DebianBase(_) => &debian_base::PROFILE,
            Origin::Void => &void::PROFILE,
        }
    }

    /// The source, its mirror checked. `kernel` is the default image's, for
    /// origins whose profile borrows it; `user_kernel` replaces whatever
    /// kernel the source has (`--kernel`).
    pub fn source(
        self,
        mirror: Option<String>,
        mirrors: &Mirrors,
        suite: &str,
        kernel: Option<void::BaseKernel>,
        user_kernel: Option<PathBuf>,
    ) -> Result<Box<dyn Source>, BuildError> {
        let source = self.distribution(mirror, mirrors, suite, kernel)?;
        Ok(match user_kernel {
            Some(path) => Box::new(user_kernel::UserKernel::new(source, path)?),
            None => source,
        })
    }

    fn distribution(
        self,
        mirror: Option<String>,
        mirrors: &Mirrors,
        suite: &str,
        kernel: Option<void::BaseKernel>,
    ) -> Result<Box<dyn Source>, BuildError> {
        Ok(match self {
            Origin::Debian => Box::new(debian::Debian::new(
                mirror.or_else(|| mirrors.debian.clone()),
                suite,
            )?),
            Origin::DebianBase(base) => Box::new(debian_base::DebianBase::new(base)),
            Origin::Void => {
                let mirror = mirror
                    .or_else(|| mirrors.void.clone())
                    .unwrap_or_else(|| void::DEFAULT_MIRROR.into());
                let kernel = kernel.expect("the Void profile borrows the default kernel");
                Box::new(void::Void::new(mirror, kernel)?)
            }
        })
    }

    /// Checks the mirror the build would use, before anything else runs.
    pub fn check_mirror(&self, mirror: Option<&str>, mirrors: &Mirrors) -> Result<(), BuildError> {
        match self {
            Origin::Debian => debian::check_mirror(mirror.or(mirrors.debian.as_deref())).map(drop),
            Origin::DebianBase(_) => Ok(()),
            Origin::Void => void::mirror::check_mirror(
                mirror
                    .or(mirrors.void.as_deref())
                    .unwrap_or(void::DEFAULT_MIRROR),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_picks_one_origin() {
        assert_eq!(Origin::choose(None, None).unwrap(), Origin::Debian);
        assert_eq!(
            Origin::choose(Some("debian"), Some("/b".into())).unwrap(),
            Origin::DebianBase("/b".into())
        );
        assert_eq!(Origin::choose(Some("void"), None).unwrap(), Origin::Void);
        assert!(matches!(
            Origin::choose(Some("void"), Some("/b".into())),
            Err(BuildError::Conflicting(..))
        ));
        assert!(matches!(
            Origin::choose(Some("arch"), None),
            Err(BuildError::UnknownDistro(d)) if d == "arch"
        ));
        assert!(Origin::Void.profile().borrows_default_kernel);
        assert!(!Origin::Debian.profile().borrows_default_kernel);
    }
}
