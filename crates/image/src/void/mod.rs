//! The experimental Void Linux image (`image build --distro void`): a lean
//! x86_64-glibc userspace under runit, on the default image's kernel.
//!
//! 1. [`repo`] reads the mirror's index and resolves the package list (with
//!    dependencies) before anything else, so a mirror that is unreachable
//!    or lacks a package fails in seconds, naming it;
//! 2. [`fetch`] downloads the packages into a local repository in the build
//!    directory, each checked against the index's sha256 and cached, and
//!    the static XBPS tools Void publishes beside its repositories;
//! 3. Void's own `xbps-install.static` installs them into the tree (package
//!    scripts, alternatives and its package database done by xbps itself);
//! 4. the default kernel's modules are copied in from its image, and the
//!    tree is set up for banger: services under runit, root's shell bash.

pub mod fetch;
pub mod repo;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use banger_host::runner::{Cmd, Runner};
use banger_host::HostError;

use crate::build::{blocking, BuildError, BuildRequest};

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

#[derive(Debug, Clone)]
pub struct VoidSource {
    pub mirror: String,
    pub kernel: BaseKernel,
}

/// The agent's runit service: waits (up to a minute) for sshd to listen, so
/// that an answering agent means SSH works too, as on Debian.
const AGENT_RUN: &str = "#!/bin/sh
# Written by banger's image builder: the agent answers the host over vsock.
exec 2>&1
modprobe -q vmw_vsock_virtio_transport
i=0
while [ $i -lt 300 ] && ! grep -qE ':0016 [0-9A-F:]+ 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
    sleep 0.2
    i=$((i + 1))
done
cd /root 2>/dev/null || cd /
# runit starts services with PATH=/usr/bin:/usr/sbin; `vm exec` gets what a login would.
export HOME=/root USER=root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin
exec /usr/local/bin/banger-agent --listen vsock:{port}
";

/// Docker's kernel prerequisites, loaded by runit's core services.
const DOCKER_MODULES: &str = "\
# Written by banger's image builder: what Docker's networking needs.
overlay
br_netfilter
iptable_nat
iptable_filter
xt_conntrack
xt_MASQUERADE
";
const DOCKER_SYSCTL: &str = "\
# Written by banger's image builder: Docker forwards container traffic.
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
";

/// Login shells source `.bashrc` (mise is activated there).
const BASH_PROFILE: &str =
    "# Written by banger's image builder.\n[ -f ~/.bashrc ] && . ~/.bashrc\n";

/// Bumped whenever the Void steps change what they produce.
const VOID_BUILDER_VERSION: &str = "banger-void-builder 1";

/// What goes into the image's identity besides the package list.
pub fn identity(source: &VoidSource) -> String {
    format!(
        "{VOID_BUILDER_VERSION} {BASE_PACKAGES:?} {AGENT_RUN} {DOCKER_MODULES} {DOCKER_SYSCTL} {BASH_PROFILE} guest-mirror={}",
        guest_mirror(&source.mirror)
    )
}

/// The mirror the image's own xbps uses later: the build's, unless that
/// was a directory on, or a server local to, the build host.
fn guest_mirror(mirror: &str) -> &str {
    if crate::download::local(mirror).is_some() || fetch::is_loopback(mirror) {
        DEFAULT_MIRROR
    } else {
        mirror
    }
}

fn agent_run() -> String {
    AGENT_RUN.replace("{port}", &banger_api::agent::AGENT_PORT.to_string())
}

/// Steps 1–4: a configured Void tree in `rootdir`.
pub async fn bootstrap(
    runner: Arc<dyn Runner>,
    request: &BuildRequest,
    source: &VoidSource,
    stage: &Path,
    rootdir: &Path,
    say: &(dyn Fn(&str, String, f32) + Send + Sync),
) -> Result<(), BuildError> {
    // xbps keeps the packages' owners and runs their scripts in the tree
    // (chrooted) only as root.
    crate::build::require_root(
        "building a Void image needs root (xbps installs as root, chrooted into the tree); run bangerd as root",
    )?;
    fetch::check_mirror(&source.mirror).map_err(BuildError::Failed)?;
    let repo_url = repo::repo_url(&source.mirror);
    say(
        "image.index",
        format!("reading the Void repository index at {repo_url}"),
        0.02,
    );
    let url = repo_url.clone();
    let index = blocking(move || repo::fetch_index(&url, repo::ARCH))
        .await
        .map_err(|e| match e {
            repo::RepoError::Fetch(e) => fetch_error(&source.mirror, e),
            other => BuildError::Failed(other.to_string()),
        })?;
    let mut wanted: Vec<String> = BASE_PACKAGES.iter().map(|s| s.to_string()).collect();
    wanted.extend(crate::build::parse_packages(&request.packages));
    let log = &request.log;
    let resolved = index
        .resolve(&repo_url, &wanted)
        .map_err(|e| BuildError::Failed(format!("{e}; check the package list (packages.void)")))?;
    let total: u64 = resolved.iter().map(|p| p.size).sum();

    let local_repo = stage.join("repo");
    std::fs::create_dir_all(&local_repo)
        .map_err(|e| HostError::path_io("cannot create", &local_repo, e))?;
    let cache = request.download_cache.join("void");
    let mut done = 0u64;
    for (n, package) in resolved.iter().enumerate() {
        say(
            "image.download",
            format!(
                "downloading {} ({}/{}, {} of {})",
                package.pkgver,
                n + 1,
                resolved.len(),
                banger_api::format_size(done),
                banger_api::format_size(total)
            ),
            0.05 + 0.45 * done as f32 / total.max(1) as f32,
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
            .map_err(|e| fetch_error(&source.mirror, e))?;
    }
    let repodata = local_repo.join(repo::repodata_name(repo::ARCH));
    std::fs::write(&repodata, &index.repodata)
        .map_err(|e| HostError::path_io("cannot write", &repodata, e))?;

    say(
        "image.xbps",
        "downloading the static XBPS tools".into(),
        0.5,
    );
    let (mirror, dir) = (source.mirror.clone(), stage.join("xbps"));
    let xbps = blocking(move || fetch::xbps_static(&mirror, &cache, &dir))
        .await
        .map_err(|e| fetch_error(&source.mirror, e))?;

    say(
        "image.rootfs",
        format!("installing {} Void packages (xbps-install)", resolved.len()),
        0.52,
    );
    std::fs::create_dir_all(rootdir)
        .map_err(|e| HostError::path_io("cannot create", rootdir, e))?;
    let names: Vec<String> = resolved
        .iter()
        .map(|p| repo::pkgname(&p.pkgver).to_string())
        .collect();
    runner
        .run(
            Cmd::new(&xbps.to_string_lossy())
                .args(["-y", "-i", "-r"])
                .arg(rootdir)
                .arg("-R")
                .arg(&local_repo)
                .arg("--")
                .args(&names)
                .env("XBPS_ARCH", repo::ARCH)
                .log_to(log),
        )
        .await?;
    // The packages are in the tree now; neither the local repository nor
    // the tools are part of the image.
    let _ = std::fs::remove_dir_all(&local_repo);
    let _ = std::fs::remove_dir_all(stage.join("xbps"));

    say(
        "image.modules",
        format!("copying the modules of kernel {}", source.kernel.version),
        0.68,
    );
    copy_modules(runner.as_ref(), &source.kernel, rootdir, log).await?;
    let (dir, mirror) = (rootdir.to_path_buf(), source.mirror.clone());
    blocking(move || configure(&dir, &mirror))
        .await
        .map_err(|e| BuildError::Failed(format!("configuring the Void tree: {e}")))
}

/// An unreachable mirror says how to point elsewhere; other failures
/// (a package that does not match the index) speak for themselves.
fn fetch_error(mirror: &str, error: fetch::FetchError) -> BuildError {
    match error {
        fetch::FetchError::Unreachable(e) => BuildError::Failed(format!(
            "{e}; the Void mirror {mirror} must be reachable from this host: pass --mirror URL (or a local mirror directory), or set void_mirror in config.toml"
        )),
        other => BuildError::Failed(other.to_string()),
    }
}

/// The default kernel's modules, read out of its image with debugfs.
async fn copy_modules(
    runner: &dyn Runner,
    kernel: &BaseKernel,
    rootdir: &Path,
    log: &Path,
) -> Result<(), BuildError> {
    let dest = rootdir.join("usr/lib/modules");
    std::fs::create_dir_all(&dest).map_err(|e| HostError::path_io("cannot create", &dest, e))?;
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
        return Err(BuildError::Failed(format!(
            "the default image {} has no {source}; rebuild the default image",
            kernel.rootfs.display()
        )));
    }
    Ok(())
}

/// Void-specific setup: runit services, root's shell, sshd reading
/// banger's drop-in, the mirror for later `xbps-install`s, Docker's kernel
/// prerequisites. (What all images share is done by the common builder.)
fn configure(root: &Path, mirror: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let sv = root.join("etc/sv/banger-agent");
    std::fs::create_dir_all(&sv)?;
    std::fs::write(sv.join("run"), agent_run())?;
    std::fs::set_permissions(sv.join("run"), std::fs::Permissions::from_mode(0o755))?;
    let enabled = root.join("etc/runit/runsvdir/default");
    std::fs::create_dir_all(&enabled)?;
    for service in ["sshd", "banger-agent", "docker"] {
        if !root.join("etc/sv").join(service).is_dir() {
            continue; // docker only when the package list has it
        }
        let link = enabled.join(service);
        let _ = std::fs::remove_file(&link);
        symlink(format!("/etc/sv/{service}"), link)?;
    }
    set_root_shell(&root.join("etc/passwd"), "/bin/bash")?;
    include_sshd_drop_ins(&root.join("etc/ssh/sshd_config"))?;
    std::fs::create_dir_all(root.join("etc/xbps.d"))?;
    std::fs::write(
        root.join("etc/xbps.d/00-repository-main.conf"),
        format!(
            "# Written by banger's image builder: the mirror this image came from.\nrepository={}\n",
            repo::repo_url(guest_mirror(mirror))
        ),
    )?;
    std::fs::create_dir_all(root.join("etc/modules-load.d"))?;
    std::fs::write(
        root.join("etc/modules-load.d/banger-docker.conf"),
        DOCKER_MODULES,
    )?;
    std::fs::create_dir_all(root.join("etc/sysctl.d"))?;
    std::fs::write(root.join("etc/sysctl.d/banger-docker.conf"), DOCKER_SYSCTL)?;
    std::fs::create_dir_all(root.join("root"))?;
    let profile = root.join("root/.bash_profile");
    if !profile.exists() {
        std::fs::write(profile, BASH_PROFILE)?;
    }
    Ok(())
}

/// Root logs in to bash; `/bin/sh` stays the distro's.
fn set_root_shell(passwd: &Path, shell: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(passwd)?;
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split(':').collect();
            if fields.first() == Some(&"root") && fields.len() == 7 {
                found = true;
                fields[6] = shell;
            }
            fields.join(":")
        })
        .collect();
    if !found {
        return Err(std::io::Error::other(format!(
            "{} has no root entry",
            passwd.display()
        )));
    }
    std::fs::write(passwd, lines.join("\n") + "\n")
}

/// sshd keeps the first value it reads, so banger's drop-in is included at
/// the top of Void's (upstream) `sshd_config`.
fn include_sshd_drop_ins(config: &Path) -> std::io::Result<()> {
    const INCLUDE: &str = "Include /etc/ssh/sshd_config.d/*.conf";
    let text = std::fs::read_to_string(config).unwrap_or_default();
    if text.lines().any(|l| l.trim() == INCLUDE) {
        return Ok(());
    }
    std::fs::write(
        config,
        format!("# Added by banger's image builder.\n{INCLUDE}\n\n{text}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_gets_bash_and_other_users_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:99:99:Unprivileged User:/dev/null:/bin/false\n",
        )
        .unwrap();
        set_root_shell(&passwd, "/bin/bash").unwrap();
        assert_eq!(
            std::fs::read_to_string(&passwd).unwrap(),
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:99:99:Unprivileged User:/dev/null:/bin/false\n"
        );
        std::fs::write(&passwd, "nobody:x:99:99::/:/bin/false\n").unwrap();
        assert!(set_root_shell(&passwd, "/bin/bash").is_err());
    }

    #[test]
    fn sshd_includes_the_drop_ins_first_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sshd_config");
        std::fs::write(&config, "PermitRootLogin yes\n").unwrap();
        include_sshd_drop_ins(&config).unwrap();
        include_sshd_drop_ins(&config).unwrap();
        let text = std::fs::read_to_string(&config).unwrap();
        assert_eq!(text.matches("Include").count(), 1);
        assert!(text.find("Include").unwrap() < text.find("PermitRootLogin").unwrap());
    }
}
