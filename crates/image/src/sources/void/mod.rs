//! The experimental Void Linux image (`image build --distro void`): a lean
//! x86_64-glibc userspace under runit, on the default image's kernel.
//!
//! 1. [`repo`] reads the mirror's index and resolves the package list (with
//!    dependencies) before anything else, so a mirror that is unreachable
//!    or lacks a package fails in seconds, naming it ([`mirror`] decides
//!    which mirrors may be used);
//! 2. [`fetch`] downloads the packages into a local repository in the build
//!    directory, each checked against the index's sha256 and cached, and
//!    the static XBPS tools Void publishes beside its repositories;
//! 3. Void's own `xbps-install.static` installs them into the tree (package
//!    scripts, alternatives and its package database done by xbps itself);
//! 4. the default kernel's modules are copied in from its image, and the
//!    tree is set up for banger: services under runit, root's shell bash.

pub mod archive;
mod error;
pub mod fetch;
pub mod mirror;
pub mod repo;
mod setup;

pub use error::VoidError;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use banger_host::runner::{Cmd, Runner};

use super::source::{Cx, Profile, Source};
use crate::fsutil::{blocking, copy, create_dir, write};
use crate::packages::parse_packages;
use crate::BuildError;

/// Void's primary mirror; `--mirror` or `void_mirror` point elsewhere.
pub const DEFAULT_MIRROR: &str = "https://repo-default.voidlinux.org";

/// Packages every Void image has, whatever `packages.void` says.
pub const BASE_PACKAGES: &[&str] = &[
    "base-minimal",
    "bash",
    "openssh",
    "iproute2",
    "kmod",
    "xbps",
];

/// The kernel a Void image boots: the default image's.
#[derive(Debug, Clone)]
pub struct BaseKernel {
    pub vmlinux: PathBuf,
    pub initrd: PathBuf,
    pub version: String,
    /// The image whose `/usr/lib/modules/<version>` the tree gets.
    pub rootfs: PathBuf,
}

pub static PROFILE: Profile = Profile {
    default_packages: crate::VOID_PACKAGES,
    docker_packages: &["docker", "docker-compose"],
    // xbps comes from the mirror; the kernel modules come out of the
    // default image with debugfs.
    tools: &["debugfs"],
    borrows_default_kernel: true,
    apt_list: false,
};

/// The experimental Void image, on the default image's kernel.
#[derive(Debug)]
pub struct Void {
    mirror: String,
    kernel: BaseKernel,
}

impl Void {
    pub fn new(mirror: String, kernel: BaseKernel) -> Result<Void, BuildError> {
        mirror::check_mirror(&mirror)?;
        Ok(Void { mirror, kernel })
    }
}

/// Bumped whenever the Void steps change what they produce.
const VOID_BUILDER_VERSION: &str = "banger-void-builder 1";

#[async_trait]
impl Source for Void {
    fn identity(&self) -> String {
        // A rebuilt default kernel means a rebuilt Void image (identified
        // by size and mtime: hashing 50 MB on every request would be slow).
        let kernel =
            [&self.kernel.vmlinux, &self.kernel.initrd].map(|f| crate::download::file_identity(f));
        format!(
            "{VOID_BUILDER_VERSION} {BASE_PACKAGES:?} {} guest-mirror={} kernel={} {kernel:?}",
            setup::identity(),
            mirror::guest_mirror(&self.mirror),
            self.kernel.version
        )
    }

    fn manifest_name(&self) -> &'static str {
        "packages.void"
    }

    /// Steps 1–4 (above): the Void tree in `rootdir`.
    async fn bootstrap(&self, cx: &Cx<'_>, rootdir: &Path) -> Result<(), BuildError> {
        let mirror = &self.mirror;
        let repo_url = repo::repo_url(mirror);
        (cx.say)(
            "image.index",
            format!("reading the Void repository index at {repo_url}"),
            0.02,
        );
        let url = repo_url.clone();
        let index = blocking(move || repo::fetch_index(&url, repo::ARCH))
            .await
            .map_err(|e| VoidError::of_index(mirror, e))?;
        let mut wanted: Vec<String> = BASE_PACKAGES.iter().map(|s| s.to_string()).collect();
        wanted.extend(parse_packages(cx.packages));
        let resolved = index
            .resolve(&repo_url, &wanted)
            .map_err(|e| VoidError::of_index(mirror, e))?;
        let total: u64 = resolved.iter().map(|p| p.size).sum();

        let local_repo = cx.stage.join("repo");
        create_dir(&local_repo)?;
        let cache = cx.download_cache.join("void");
        let mut done = 0u64;
        for (n, package) in resolved.iter().enumerate() {
            (cx.say)(
                "image.download",
                format!(
                    "downloading {} ({}/{}, {} of {})",
                    package.pkgver,
                    n + 1,
                    resolved.len(),
                    banger_api::format_size(done),
                    banger_api::format_size(total)
                ),
                0.05 + 0.45 * fraction(done, total),
            );
            let (package, url, cache, dir) = (
                package.clone(),
                repo_url.clone(),
                cache.clone(),
                local_repo.clone(),
            );
            done += package.size;
            blocking(move || fetch::package(&package, &url, &cache, &dir))
                .await
                .map_err(|e| VoidError::of_fetch(mirror, e))?;
        }
        write(
            &local_repo.join(repo::repodata_name(repo::ARCH)),
            &index.repodata,
        )?;

        (cx.say)(
            "image.xbps",
            "downloading the static XBPS tools".into(),
            0.5,
        );
        let (m, dir) = (mirror.clone(), cx.stage.join("xbps"));
        let xbps = blocking(move || fetch::xbps_static(&m, &cache, &dir))
            .await
            .map_err(|e| VoidError::of_fetch(mirror, e))?;

        (cx.say)(
            "image.rootfs",
            format!("installing {} Void packages (xbps-install)", resolved.len()),
            0.52,
        );
        create_dir(rootdir)?;
        let names: Vec<String> = resolved
            .iter()
            .map(|p| repo::pkgname(&p.pkgver).to_string())
            .collect();
        // xbps keeps the packages' owners and runs their scripts chrooted in
        // the tree: as a user, as root of the build's user namespace.
        let install = Cmd::new(&xbps.to_string_lossy())
            .args(["-y", "-i", "-r"])
            .arg(rootdir)
            .arg("-R")
            .arg(&local_repo)
            .arg("--")
            .args(&names)
            .env("XBPS_ARCH", repo::ARCH)
            .log_to(cx.log);
        cx.runner
            .run(banger_host::userns::as_root(
                install,
                banger_host::userns::Map::Subordinate,
                &[],
            ))
            .await?;
        // The packages are in the tree now; neither the local repository nor
        // the tools are part of the image.
        let _ = std::fs::remove_dir_all(&local_repo);
        let _ = std::fs::remove_dir_all(cx.stage.join("xbps"));

        (cx.say)(
            "image.modules",
            format!("copying the modules of kernel {}", self.kernel.version),
            0.68,
        );
        copy_modules(cx.runner.as_ref(), &self.kernel, rootdir, cx.log).await
    }

    fn configure(&self, root: &Path) -> std::io::Result<()> {
        setup::configure(root, &self.mirror)
    }

    async fn kernel(&self, cx: &Cx<'_>, _rootdir: &Path) -> Result<(), BuildError> {
        (cx.say)(
            "image.kernel",
            format!("using the default image's kernel {}", self.kernel.version),
            0.8,
        );
        copy(&self.kernel.vmlinux, &cx.stage.join("vmlinux"))?;
        copy(&self.kernel.initrd, &cx.stage.join("initrd.img"))?;
        write(
            &cx.stage.join("kernel-version"),
            self.kernel.version.as_bytes(),
        )?;
        Ok(())
    }
}

/// How far `done` is into `total`, for progress.
fn fraction(done: u64, total: u64) -> f32 {
    done as f32 / total.max(1) as f32
}

/// The default kernel's modules, read out of its image with debugfs.
async fn copy_modules(
    runner: &dyn Runner,
    kernel: &BaseKernel,
    rootdir: &Path,
    log: &Path,
) -> Result<(), BuildError> {
    let dest = rootdir.join("usr/lib/modules");
    create_dir(&dest)?;
    let source = format!("/usr/lib/modules/{}", kernel.version);
    runner
        .run(
            Cmd::new("debugfs")
                .arg("-R")
                // debugfs splits its request on spaces unless quoted.
                .arg(format!("rdump \"{source}\" \"{}\"", dest.display()))
                .arg(&kernel.rootfs)
                .log_to(log),
        )
        .await?;
    // debugfs exits 0 even when the path is missing.
    if !dest.join(&kernel.version).join("modules.dep").is_file() {
        return Err(VoidError::NoModules {
            rootfs: kernel.rootfs.clone(),
            modules: source,
        }
        .into());
    }
    Ok(())
}
