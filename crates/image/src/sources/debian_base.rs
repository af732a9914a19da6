//! `image build --base-rootfs FILE`: the tree starts as a copy of an
//! existing Debian ext4 image (a banger image's rootfs, or one made
//! elsewhere) instead of an mmdebstrap bootstrap; the package list is then
//! installed into it with its own apt, and the usual banger setup follows.
//!
//! The base is mounted read-only and apt's `/proc`, `/sys` and `/dev` are
//! mounted only inside a private mount namespace of a short-lived process
//! (`unshare --mount`): nothing is mounted on the host, and a crash leaves
//! no mount or loop device behind (the namespace dies with the process).
//! As root the base is a loop mount; as a user, whose namespace may not
//! mount ext4, it is mounted with `fuse2fs` in the user namespace every
//! unprivileged build step runs in ([`banger_host::userns`]).
//! `cp -a` keeps what an unmounted copy (debugfs) would lose: setuid and
//! sticky bits, hard links, extended attributes.
//!
//! The base must be trusted like a package source: its apt and its
//! packages' scripts run as root in a chroot of it (in its own mount and
//! PID namespaces, so nothing it starts outlives the build).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use banger_host::runner::Cmd;
use banger_host::userns;

use super::debian::BASE_PACKAGES;
use super::source::{Cx, Profile, Source};
use crate::fsutil::create_dir;
use crate::packages::debian_packages;
use crate::BuildError;

pub static PROFILE: Profile = Profile {
    default_packages: crate::DEFAULT_PACKAGES,
    docker_packages: super::debian::DOCKER_PACKAGES,
    tools: &["unshare", "chroot"],

    borrows_default_kernel: false,
    apt_list: true,
};

/// `$1` base image, `$2` an empty mount point, `$3` the tree, `$4` how to
/// mount it (`loop` as root, `fuse` as a user).
const COPY: &str = r#"set -e
if [ "$4" = loop ]; then
    mount -t ext4 -o ro,loop,noload "$1" "$2"
else
    fuse2fs -o ro,fakeroot "$1" "$2"
fi
cp -a "$2/." "$3/"
"#;

/// `$1` the tree, then package names. No service starts in the tree
/// (policy-rc.d), DNS is the host's while apt runs, and the tree's own
/// resolv.conf is put back afterwards. Files of the tree are only touched
/// from inside it (chroot): a link in the base never reaches the host's.
const APT: &str = r##"set -e
root=$1
shift
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
chroot "$root" sh -ec '
    if [ -e /etc/resolv.conf ] || [ -L /etc/resolv.conf ]; then
        mv /etc/resolv.conf /etc/resolv.conf.banger-saved
    fi
    cat >/etc/resolv.conf
    printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d' </etc/resolv.conf
export DEBIAN_FRONTEND=noninteractive
chroot "$root" apt-get update -q
chroot "$root" apt-get install -y -q --no-install-recommends "$@"
chroot "$root" apt-get clean
chroot "$root" sh -ec '
    rm -f /usr/sbin/policy-rc.d /etc/resolv.conf
    rm -rf /var/lib/apt/lists/*
    if [ -e /etc/resolv.conf.banger-saved ] || [ -L /etc/resolv.conf.banger-saved ]; then
        mv /etc/resolv.conf.banger-saved /etc/resolv.conf
    fi'
"##;

#[derive(Debug)]
pub struct DebianBase {
    base: PathBuf,
}

impl DebianBase {
    pub fn new(base: PathBuf) -> DebianBase {
        DebianBase { base }
    }
}

#[async_trait]
impl Source for DebianBase {
    /// The base is identified without reading all of it: its path, size and
    /// modification time (a rebuilt base means a rebuilt image).
    fn identity(&self) -> String {
        format!(
            "debian-base base={} {COPY} {APT} {BASE_PACKAGES:?} {}",
            crate::download::file_identity(&self.base),
            super::systemd::identity()
        )
    }

    fn manifest_name(&self) -> &'static str {
        "packages.apt"
    }

    /// The base copied, the packages installed with its own apt.
    async fn bootstrap(&self, cx: &Cx<'_>, rootdir: &Path) -> Result<(), BuildError> {
        let how = if userns::is_root() {
            "loop"
        } else {
            banger_host::tools::require("fuse2fs")?;
            "fuse"
        };
        let packages = debian_packages(BASE_PACKAGES, cx.packages)?;
        (cx.say)(
            "image.rootfs",
            format!("copying the base root filesystem {}", self.base.display()),
            0.05,
        );
        let mount_point = cx.stage.join("base");
        create_dir(&mount_point)?;
        create_dir(rootdir)?;
        cx.runner
            .run(
                private_namespace(COPY)
                    .arg(&self.base)
                    .arg(&mount_point)
                    .arg(rootdir)
                    .arg(how)
                    .log_to(cx.log),
            )
            .await?;
        let _ = std::fs::remove_dir(&mount_point);
        if !rootdir.join("usr/bin/apt-get").exists() {
            return Err(BuildError::NotDebian(self.base.clone()));
        }
        (cx.say)(
            "image.packages",
            format!("installing {} packages with the base's apt", packages.len()),
            0.3,
        );
        cx.runner
            .run(
                private_namespace(APT)
                    .arg(rootdir)
                    .args(&packages)
                    .log_to(cx.log),
            )
            .await?;
        Ok(())
    }

    fn configure(&self, root: &Path) -> std::io::Result<()> {
        super::systemd::configure(root)
    }

    async fn kernel(&self, cx: &Cx<'_>, rootdir: &Path) -> Result<(), BuildError> {
        super::debian::debian_kernel(rootdir, cx.stage, cx.say).await
    }
}

/// `sh -c SCRIPT` in new mount and PID namespaces: its mounts never reach
/// the host, and whatever it starts dies with it. The script is a
/// constant; paths and names are its arguments.
/// `script` in a mount and PID namespace of its own; as a user, as root of
/// the user namespace unprivileged builds run in.
fn private_namespace(script: &str) -> Cmd {
    let sh = Cmd::new("sh").args(["-c", script, "sh"]);
    if userns::is_root() {
        return Cmd::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child",
                "--",
            ])
            .arg(&sh.program)
            .args(sh.args);
    }
    userns::as_root(
        sh,
        userns::Map::Subordinate,
        &["--mount", "--pid", "--fork", "--kill-child"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_base_is_a_different_build() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.ext4");
        std::fs::write(&base, b"one").unwrap();
        let source = DebianBase::new(base.clone());
        let before = source.identity();
        assert_eq!(before, source.identity());
        std::fs::write(&base, b"longer").unwrap();
        assert_ne!(before, source.identity());
    }
}
