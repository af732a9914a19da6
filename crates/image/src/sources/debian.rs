//! Debian bootstrapped from a mirror by `mmdebstrap` (the default image),
//! and the kernel every Debian image boots: Debian's cloud kernel as an ELF
//! `vmlinux`, with banger's initramfs of its modules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use banger_host::runner::Cmd;
use banger_host::{userns, HostError};

use super::source::{Cx, Profile, Source};
use crate::fsutil::{blocking, version_key, write};
use crate::packages::debian_packages;
use crate::progress::Say;
use crate::{initramfs, kernel, BuildError};

/// Packages every Debian image has, whatever `packages.apt` says.
pub const BASE_PACKAGES: &[&str] = &[
    "systemd-sysv",
    "udev",
    "dbus",
    "libpam-systemd",
    "openssh-server",
    "iproute2",
    "kmod",
    "busybox-static",
    "linux-image-cloud-amd64",
];

/// What `--docker` adds. Debian's kernel enables AppArmor, and Docker
/// refuses to run containers without its parser to load the default profile.
pub const DOCKER_PACKAGES: &[&str] = &["docker.io", "apparmor"];

pub static PROFILE: Profile = Profile {
    default_packages: crate::DEFAULT_PACKAGES,
    docker_packages: DOCKER_PACKAGES,
    tools: &["mmdebstrap"],
    borrows_default_kernel: false,
    apt_list: true,
};

#[derive(Debug)]
pub struct Debian {
    /// A URL mmdebstrap takes; its default mirror when absent.
    mirror: Option<String>,
    suite: String,
}

impl Debian {
    pub fn new(mirror: Option<String>, suite: &str) -> Result<Debian, BuildError> {
        Ok(Debian {
            mirror: check_mirror(mirror.as_deref())?,
            suite: suite.to_string(),
        })
    }
}

/// A mirror is an `http(s)://` or `file://` URL, or an existing absolute
/// directory (given to mmdebstrap as a `file://` URL). Anything else is
/// refused, so no value can ever reach mmdebstrap as an option.
pub fn check_mirror(mirror: Option<&str>) -> Result<Option<String>, BuildError> {
    let Some(mirror) = mirror else {
        return Ok(None);
    };
    let bad = || BuildError::BadMirror(mirror.to_string());
    if let Some((scheme, rest)) = mirror.split_once("://") {
        let scheme_ok = ["http", "https", "file"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme));
        let clean =
            !rest.is_empty() && !mirror.chars().any(|c| c.is_whitespace() || c.is_control());
        return (scheme_ok && clean)
            .then(|| Some(mirror.to_string()))
            .ok_or_else(bad);
    }
    let dir = Path::new(mirror);
    if dir.is_absolute() && dir.is_dir() {
        return Ok(Some(format!("file://{}", dir.display())));
    }
    Err(bad())
}

#[async_trait]
impl Source for Debian {
    fn identity(&self) -> String {
        // mmdebstrap writes the mirror into the image's sources.list.
        format!(
            "debian suite={} mirror={:?} {BASE_PACKAGES:?} {}",
            self.suite,
            self.mirror,
            super::systemd::identity()
        )
    }

    fn manifest_name(&self) -> &'static str {
        "packages.apt"
    }

    async fn bootstrap(&self, cx: &Cx<'_>, rootdir: &Path) -> Result<(), BuildError> {
        let packages = debian_packages(BASE_PACKAGES, cx.packages)?;
        (cx.say)(
            "image.rootfs",
            format!(
                "bootstrapping Debian {} with {} packages (mmdebstrap)",
                self.suite,
                packages.len()
            ),
            0.02,
        );
        // As root mmdebstrap makes its own namespaces (unshare mode). As a
        // user it runs as root of a user namespace that maps the user to
        // root and its subordinate ids above, the one every later step
        // that needs the tree's owners runs in (banger_host::userns); root
        // mode there mounts what the chroot needs and skips device nodes
        // (the guest mounts devtmpfs).
        let mode = if userns::is_root() {
            "--mode=unshare"
        } else {
            "--mode=root"
        };
        let cmd = Cmd::new("mmdebstrap")
            .args([mode, "--variant=apt", "--aptopt=Acquire::Retries \"3\""])
            .arg(format!("--include={}", packages.join(",")))
            // Positionals after `--`: none of them can be read as an option.
            .arg("--")
            .arg(&self.suite)
            .arg(rootdir)
            .args(self.mirror.iter())
            .log_to(cx.log);
        let cmd = userns::as_root(
            cmd,
            userns::Map::Subordinate,
            &["--mount", "--pid", "--fork"],
        );
        let ticker = tail_progress(cx.log.to_path_buf(), cx.say);
        tokio::select! {
            outcome = cx.runner.run(cmd) => outcome?,
            _ = ticker => unreachable!("the ticker never ends"),
        };
        Ok(())
    }

    fn configure(&self, root: &Path) -> std::io::Result<()> {
        super::systemd::configure(root)
    }

    async fn kernel(&self, cx: &Cx<'_>, rootdir: &Path) -> Result<(), BuildError> {
        debian_kernel(rootdir, cx.stage, cx.say).await
    }
}

/// Emits mmdebstrap's latest "I: ..." line as progress, once a second.
async fn tail_progress(log: PathBuf, say: &Say<'_>) {
    let started = tokio::time::Instant::now();
    let mut last = String::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let text = std::fs::read(&log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if let Some(line) = text.lines().rev().find(|l| l.starts_with("I: ")) {
            if line != last {
                last = line.to_string();
                // mmdebstrap takes ~45 s here; estimate against that.
                let fraction = 0.02 + 0.68 * (started.elapsed().as_secs_f32() / 60.0).min(0.95);
                say(
                    "image.rootfs",
                    line.trim_start_matches("I: ").to_string(),
                    fraction,
                );
            }
        }
    }
}

/// Debian's kernel as an ELF vmlinux, and an initramfs of its modules.
pub(super) async fn debian_kernel(
    rootdir: &Path,
    stage: &Path,
    say: &Say<'_>,
) -> Result<(), BuildError> {
    say(
        "image.kernel",
        "extracting the ELF kernel from Debian's vmlinuz".into(),
        0.76,
    );
    let (vmlinuz, version) = find_kernel(rootdir)?;
    let bzimage =
        std::fs::read(&vmlinuz).map_err(|e| HostError::path_io("cannot read", &vmlinuz, e))?;
    let elf = blocking(move || kernel::extract_vmlinux(&bzimage))
        .await
        .map_err(|source| BuildError::Kernel {
            path: vmlinuz.clone(),
            source,
        })?;
    write(&stage.join("vmlinux"), &elf)?;
    write(&stage.join("kernel-version"), version.as_bytes())?;

    say(
        "image.initramfs",
        format!("building the initramfs for kernel {version}"),
        0.8,
    );
    let (dir, kernel_version) = (rootdir.to_path_buf(), version.clone());
    let initrd = blocking(move || initramfs::build(&dir, Some(&kernel_version))).await?;
    write(&stage.join("initrd.img"), &initrd)?;
    Ok(())
}

/// The newest `/boot/vmlinuz-*`, by version (an upgrade leaves two).
fn find_kernel(root: &Path) -> Result<(PathBuf, String), BuildError> {
    let boot = root.join("boot");
    let mut kernels: Vec<String> = std::fs::read_dir(&boot)
        .map_err(|e| HostError::path_io("cannot read", &boot, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vmlinuz-"))
        .collect();
    kernels.sort_by_key(|name| version_key(name));
    let name = kernels.pop().ok_or(BuildError::NoKernel(boot.clone()))?;
    let version = name.trim_start_matches("vmlinuz-").to_string();
    Ok((boot.join(name), version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_kernel_wins_by_version_not_by_spelling() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("boot")).unwrap();
        for v in [
            "6.1.0-9-cloud-amd64",
            "6.1.0-25-cloud-amd64",
            "6.1.0-10-cloud-amd64",
        ] {
            std::fs::write(dir.path().join(format!("boot/vmlinuz-{v}")), b"").unwrap();
        }
        let (_, version) = find_kernel(dir.path()).unwrap();
        assert_eq!(version, "6.1.0-25-cloud-amd64");
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(empty.path().join("boot")).unwrap();
        assert!(matches!(
            find_kernel(empty.path()),
            Err(BuildError::NoKernel(_))
        ));
    }

    #[test]
    fn a_mirror_is_a_url_or_a_directory_never_an_option() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_mirror(None).unwrap(), None);
        for url in [
            "http://deb.debian.org/debian",
            "HTTPS://mirror.example/debian",
            "file:///srv/debian",
        ] {
            assert_eq!(check_mirror(Some(url)).unwrap().as_deref(), Some(url));
        }
        assert_eq!(
            check_mirror(Some(&dir.path().display().to_string())).unwrap(),
            Some(format!("file://{}", dir.path().display()))
        );
        for bad in [
            "--setup-hook=touch /tmp/p",
            "-v",
            "deb.debian.org/debian",
            "ftp://mirror/debian",
            "http://",
            "http://x y",
            "relative/dir",
            "/does/not/exist",
        ] {
            assert!(
                matches!(check_mirror(Some(bad)), Err(BuildError::BadMirror(m)) if m == bad),
                "{bad}"
            );
        }
    }
}
