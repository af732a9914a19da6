//! `image build --base-rootfs FILE`: the tree starts as a copy of an
//! existing Debian ext4 image (a banger image's rootfs, or one made
//! elsewhere) instead of an mmdebstrap bootstrap; the package list is then
//! installed into it with its own apt, and the usual banger setup follows.
//!
//! The base is mounted read-only and apt's `/proc`, `/sys` and `/dev` are
//! mounted only inside a private mount namespace of a short-lived process
//! (`unshare --mount`): nothing is mounted on the host, and a crash leaves
//! no mount or loop device behind (the namespace dies with the process).
//! `cp -a` keeps what an unmounted copy (debugfs) would lose: setuid and
//! sticky bits, hard links, extended attributes.
//!
//! The base must be trusted like a package source: its apt and its
//! packages' scripts run as root in a chroot of it (in its own mount and
//! PID namespaces, so nothing it starts outlives the build).

use std::path::Path;

use banger_host::runner::{Cmd, Runner};
use banger_host::HostError;

use crate::build::{BuildError, BuildRequest, BASE_PACKAGES};

/// `$1` base image, `$2` an empty mount point, `$3` the tree.
const COPY: &str = r#"set -e
mount -t ext4 -o ro,loop,noload "$1" "$2"
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
mount -t sysfs sysfs "$root/sys"
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

/// What identifies a base image without reading all of it: its path, size
/// and modification time (a rebuilt base means a rebuilt image).
pub fn identity(base: &Path) -> String {
    format!("base={} {COPY} {APT}", crate::download::file_identity(base))
}

/// A Debian package name as apt takes it (`name`, `name=version`,
/// `name/suite`): anything else, an option-like `-o...` included, is refused.
pub fn check_package_name(name: &str) -> Result<(), BuildError> {
    let (package, qualifier) = match name.split_once(['=', '/', ':']) {
        Some((p, q)) => (p, Some(q)),
        None => (name, None),
    };
    let package_ok = package.len() >= 2
        && package.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && package
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    let qualifier_ok = qualifier.is_none_or(|q| {
        !q.is_empty()
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.~:_".contains(c))
    });
    if package_ok && qualifier_ok {
        Ok(())
    } else {
        Err(BuildError::Failed(format!(
            "{name:?} is not a Debian package name; fix the package list"
        )))
    }
}

/// The tree in `rootdir`: the base copied, the packages installed.
pub async fn from_rootfs(
    runner: &dyn Runner,
    request: &BuildRequest,
    base: &Path,
    stage: &Path,
    rootdir: &Path,
    say: &(dyn Fn(&str, String, f32) + Send + Sync),
) -> Result<(), BuildError> {
    crate::build::require_root(
        "--base-rootfs needs root: the base is mounted read-only (in a private mount namespace) to copy it with its special permissions; run bangerd as root, or build without --base-rootfs",
    )?;
    let mut packages: Vec<String> = BASE_PACKAGES.iter().map(|s| s.to_string()).collect();
    packages.extend(crate::build::parse_packages(&request.packages));
    packages.iter().try_for_each(|p| check_package_name(p))?;

    say(
        "image.rootfs",
        format!("copying the base root filesystem {}", base.display()),
        0.05,
    );
    let mount_point = stage.join("base");
    for dir in [&mount_point, &rootdir.to_path_buf()] {
        std::fs::create_dir_all(dir).map_err(|e| HostError::path_io("cannot create", dir, e))?;
    }
    runner
        .run(
            private_namespace(COPY)
                .arg(base)
                .arg(&mount_point)
                .arg(rootdir)
                .log_to(&request.log),
        )
        .await?;
    let _ = std::fs::remove_dir(&mount_point);
    if !rootdir.join("usr/bin/apt-get").exists() {
        return Err(BuildError::Failed(format!(
            "the base {} has no apt-get: --base-rootfs takes a Debian (or Debian-based) root filesystem",
            base.display()
        )));
    }

    say(
        "image.packages",
        format!("installing {} packages with the base's apt", packages.len()),
        0.3,
    );
    runner
        .run(
            private_namespace(APT)
                .arg(rootdir)
                .args(&packages)
                .log_to(&request.log),
        )
        .await?;
    Ok(())
}

/// `sh -c SCRIPT` in new mount and PID namespaces: its mounts never reach
/// the host, and whatever it starts dies with it. The script is a
/// constant; paths and names are its arguments.
fn private_namespace(script: &str) -> Cmd {
    Cmd::new("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
        "--",
        "sh",
        "-c",
        script,
        "sh",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_apt_names_never_options() {
        for ok in [
            "jq",
            "g++",
            "libc6",
            "docker.io",
            "curl=7.88.1-10",
            "tmux/bookworm-backports",
            "libc6:amd64",
        ] {
            assert!(check_package_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "-oAPT::x=1",
            "--allow-unauthenticated",
            "Jq",
            "a b",
            "x",
            "curl=",
            "pkg;rm",
        ] {
            assert!(check_package_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_changed_base_is_a_different_build() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.ext4");
        std::fs::write(&base, b"one").unwrap();
        let before = identity(&base);
        assert_eq!(before, identity(&base));
        std::fs::write(&base, b"longer").unwrap();
        assert_ne!(before, identity(&base));
    }
}
