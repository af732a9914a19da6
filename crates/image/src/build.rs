//! The image build pipeline. Everything is staged in a temporary directory
//! beside the final one and renamed into place only when complete, so an
//! interrupted build never leaves a half image behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use banger_api::{Image, Progress};
use banger_host::runner::{Cmd, Runner};
use banger_host::HostError;
use sha2::{Digest, Sha256};

use crate::download::hex;

use crate::{initramfs, kernel, LABEL_BASE};

/// Packages every banger image has, whatever `packages.apt` says.
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

/// Roughly what a build needs at its peak: the Debian tree (with the npm
/// tools) and the ext4 image packed from it, side by side.
pub const NEEDED_FREE: u64 = 2 << 30;

/// Bumped whenever the pipeline changes what it produces.
const BUILDER_VERSION: &str = "banger-image-builder 2";

const SSHD_CONFIG: &str = "\
# Written by banger's image builder.
# The daemon puts the installation's public key and a per-VM host key on the
# VM's own disk; no key is baked into the image.
AuthorizedKeysFile .ssh/authorized_keys /etc/banger/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
HostKey /etc/ssh/ssh_host_ed25519_key
UseDNS no
";

/// Where the guest agent lives in an image, and its service.
pub const AGENT_PATH: &str = "usr/local/bin/banger-agent";
const AGENT_UNIT: &str = "\
# Written by banger's image builder: the agent answers the host over vsock.
[Unit]
Description=banger guest agent (vsock)
# Debian's sshd reports readiness: once the agent answers, SSH works too.
After=ssh.service

[Service]
ExecStartPre=-/sbin/modprobe vmw_vsock_virtio_transport
ExecStart=/usr/local/bin/banger-agent --listen vsock:{port}
# `vm exec` runs commands as root would see them after `vm ssh`.
Environment=HOME=/root USER=root LANG=C.UTF-8
WorkingDirectory=-/root
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
";

/// Added to root's `.bashrc` in the work seed: mise for interactive and
/// login shells (Debian's root `.profile` sources `.bashrc`).
const BASHRC_MISE: &str = "
# Added by banger: mise manages per-project tool versions (https://mise.jdx.dev).
if [ -x /usr/local/bin/mise ]; then
    eval \"$(/usr/local/bin/mise activate bash)\"
fi
";

/// Docker (`--docker`): `/` is an overlayfs, on which Docker's overlay2
/// cannot stack (it falls back to devicemapper, which fails), so its data
/// lives on the ext4 `/root` disk — which also keeps images and volumes
/// across stops. Harmless in images without Docker.
const DOCKER_DAEMON_JSON: &str =
    "{\n  \"data-root\": \"/root/.local/share/docker\",\n  \"storage-driver\": \"overlay2\"\n}\n";
const DOCKER_DROP_IN: &str = "\
# Written by banger's image builder: Docker's data is on /root.
[Unit]
RequiresMountsFor=/root
";

/// Root's tmux configuration in the work seed.
pub const TMUX_CONF: &str = "\
# Written by banger's image builder.
set -g mouse on
set -g history-limit 50000
set -g default-terminal \"tmux-256color\"
set -g escape-time 10
# Sessions survive VM stops (banger-tmux-sessions, like tmux-resurrect and
# tmux-continuum): saved every 15 minutes from the status line and on
# prefix + C-s; restored only when asked, with prefix + C-r.
set -g status-interval 15
set -g status-right '#(banger-tmux-sessions autosave)\"#{=21:pane_title}\" %H:%M %d-%b-%y'
bind C-s run-shell 'banger-tmux-sessions save'
bind C-r run-shell 'banger-tmux-sessions restore'
";

/// Saves and restores tmux sessions (see the script's header).
pub const TMUX_SESSIONS: &str = include_str!("../assets/banger-tmux-sessions");
const TMUX_SESSIONS_PATH: &str = "usr/local/bin/banger-tmux-sessions";

/// The agent's unit, listening on the port the host asks for.
fn agent_unit() -> String {
    AGENT_UNIT.replace("{port}", &banger_api::agent::AGENT_PORT.to_string())
}

/// Units that slow a boot down and do nothing useful in a dev VM.
const MASKED_UNITS: &[&str] = &[
    "systemd-networkd-wait-online.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
];

#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub name: String,
    /// Contents of the package manifest (`packages.apt` format).
    pub packages: String,
    /// Where finished images live: the image goes to `images_dir/<name>`.
    pub images_dir: PathBuf,
    /// Raw output of the helper tools.
    pub log: PathBuf,
    /// Debian mirror URL; mmdebstrap's default when absent.
    pub mirror: Option<String>,
    pub suite: String,
    /// Size of the root filesystem image; just enough for the tree when absent.
    pub size: Option<u64>,
    /// The guest agent binary to install as a service.
    pub agent: PathBuf,
    /// npm registry for the tools Debian does not package (mise, opencode).
    pub npm_registry: String,
    /// Where downloaded tool tarballs are kept between builds.
    pub download_cache: PathBuf,
    /// Where the tree comes from.
    pub source: Source,
}

/// Where an image's root filesystem comes from.
#[derive(Debug, Clone, Default)]
pub enum Source {
    /// Debian, bootstrapped by mmdebstrap from `mirror` and `suite`.
    #[default]
    Debian,
    /// A Debian ext4 image, copied, with the packages installed by its apt.
    DebianBase(PathBuf),
    /// The experimental Void image (`packages` is in `packages.void`
    /// format; `mirror` and `suite` are unused).
    Void(crate::void::VoidSource),
}

impl BuildRequest {
    fn void(&self) -> Option<&crate::void::VoidSource> {
        match &self.source {
            Source::Void(void) => Some(void),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{0}")]
    Failed(String),
}

/// Package names from a manifest: one per line, `#` comments, blank lines ignored.
pub fn parse_packages(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Identifies what a build would produce: an unchanged manifest (and
/// builder) means the cached image is still right.
pub fn manifest_sha256(packages: &str, suite: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(BUILDER_VERSION);
    hasher.update(suite);
    for p in BASE_PACKAGES {
        hasher.update(p);
    }
    for p in parse_packages(packages) {
        hasher.update(p);
        hasher.update("\n");
    }
    hasher.update(crate::INIT_SCRIPT);
    hasher.update(SSHD_CONFIG);
    hasher.update(agent_unit());
    hasher.update(BASHRC_MISE);
    hasher.update(DOCKER_DAEMON_JSON);
    hasher.update(DOCKER_DROP_IN);
    hasher.update(TMUX_CONF);
    hasher.update(TMUX_SESSIONS);
    for tool in crate::tools::TOOLS {
        hasher.update(format!(
            "{}={}:{}\n",
            tool.name, tool.version, tool.integrity
        ));
    }
    hex(&hasher.finalize())
}

/// What identifies a build's output: the manifest, the agent it carries,
/// and the size when one was asked for.
fn request_sha256(request: &BuildRequest) -> String {
    // The suite is Debian's; Void images do not depend on it.
    let suite = match request.source {
        Source::Void(_) => "",
        _ => request.suite.as_str(),
    };
    let manifest = manifest_sha256(&request.packages, suite);
    let agent = std::fs::read(&request.agent)
        .map(|bytes| hex(&Sha256::digest(bytes)))
        .unwrap_or_default();
    let mut id = format!("{manifest} agent={agent}");
    if let Some(size) = request.size {
        id.push_str(&format!(" size={size}"));
    }
    match &request.source {
        // mmdebstrap writes the mirror into the image's sources.list.
        Source::Debian => id.push_str(&format!(" mirror={:?}", request.mirror)),
        Source::DebianBase(base) => id.push_str(&crate::base::identity(base)),
        Source::Void(_) => {}
    }
    if let Some(void) = request.void() {
        // A rebuilt default kernel means a rebuilt Void image (identified
        // by size and mtime: hashing 50 MB on every request would be slow).
        let kernel =
            [&void.kernel.vmlinux, &void.kernel.initrd].map(|f| crate::download::file_identity(f));
        id.push_str(&format!(
            " {} kernel={} {kernel:?}",
            crate::void::identity(void),
            void.kernel.version
        ));
    }
    hex(&Sha256::digest(id))
}

fn image_record(name: &str, dir: &Path, sha: &str) -> Result<Image, BuildError> {
    let version = std::fs::read_to_string(dir.join("kernel-version"))
        .map_err(|e| BuildError::Failed(format!("image {name} is incomplete ({e}); rebuild it")))?;
    let created = std::fs::metadata(dir.join("manifest.sha256"))
        .and_then(|m| m.modified())
        .map(rfc3339)
        .unwrap_or_default();
    Ok(Image {
        name: name.to_string(),
        managed: true,
        rootfs: dir.join("rootfs.ext4").display().to_string(),
        kernel: dir.join("vmlinux").display().to_string(),
        initrd: dir.join("initrd.img").display().to_string(),
        kernel_version: version.trim().to_string(),
        work_seed: dir.join("work-seed").display().to_string(),
        packages_sha256: sha.to_string(),
        created_at: created,
        // Every build since builder 2 installs the agent.
        agent: true,
    })
}

fn rfc3339(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The finished image for this manifest, if one was built before.
pub fn cached_image(request: &BuildRequest) -> Option<Image> {
    let dir = request.images_dir.join(&request.name);
    let want = request_sha256(request);
    let have = std::fs::read_to_string(dir.join("manifest.sha256")).ok()?;
    let complete = ["rootfs.ext4", "vmlinux", "initrd.img", "work-seed"]
        .iter()
        .all(|f| dir.join(f).exists());
    (have.trim() == want && complete)
        .then(|| image_record(&request.name, &dir, &want).ok())
        .flatten()
}

/// Builds (or reuses) the image. `progress` hears every stage.
pub async fn build_image(
    runner: Arc<dyn Runner>,
    request: &BuildRequest,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Image, BuildError> {
    let say = |stage: &str, message: String, fraction: f32| {
        progress(Progress {
            stage: stage.into(),
            message,
            fraction: Some(fraction),
        })
    };
    if let Some(image) = cached_image(request) {
        say(
            "image.cached",
            format!("image {} is up to date", request.name),
            1.0,
        );
        return Ok(image);
    }
    let sha = request_sha256(request);
    let final_dir = request.images_dir.join(&request.name);
    let stage = request
        .images_dir
        .join(format!(".{}.build-{}", request.name, std::process::id()));
    std::fs::create_dir_all(&request.images_dir)
        .map_err(|e| HostError::path_io("cannot create", &request.images_dir, e))?;
    check_space(&request.images_dir)?;
    if let Some(parent) = request.log.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| HostError::path_io("cannot create", parent, e))?;
    }
    // The log is this build's: errors quoted from it must not be an older one's.
    std::fs::write(&request.log, b"")
        .map_err(|e| HostError::path_io("cannot write", &request.log, e))?;
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).map_err(|e| HostError::path_io("cannot create", &stage, e))?;
    let result = build_into(runner, request, &stage, &sha, &say).await;
    match result {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&final_dir);
            std::fs::rename(&stage, &final_dir)
                .map_err(|e| HostError::path_io("cannot move image into", &final_dir, e))?;
            say(
                "image.done",
                format!("image {} is ready", request.name),
                1.0,
            );
            image_record(&request.name, &final_dir, &sha)
        }
        Err(err) => {
            // A failed build can leave a whole Debian tree behind.
            let dir = stage.clone();
            let _ = blocking(move || std::fs::remove_dir_all(dir)).await;
            let errors = error_lines(&request.log);
            let full = disk_filled_up(&err.to_string(), &request.log).then(|| {
                format!(
                    "; the disk holding {} filled up during the build (nothing was kept): free some space or set images_dir in config.toml to a bigger disk",
                    request.images_dir.display()
                )
            });
            Err(BuildError::Failed(format!(
                "building image {} failed: {err}{}{}; the build's full output is in {}",
                request.name,
                if errors.is_empty() {
                    String::new()
                } else {
                    format!("; last errors: {errors}")
                },
                full.unwrap_or_default(),
                request.log.display()
            )))
        }
    }
}

async fn build_into(
    runner: Arc<dyn Runner>,
    request: &BuildRequest,
    stage: &Path,
    sha: &str,
    say: &(dyn Fn(&str, String, f32) + Send + Sync),
) -> Result<(), BuildError> {
    let rootdir = stage.join("rootdir");
    // The tools download while the distribution is bootstrapped.
    let (registry, cache) = (request.npm_registry.clone(), request.download_cache.clone());
    let downloads = tokio::task::spawn_blocking(move || {
        crate::tools::TOOLS
            .iter()
            .map(|tool| crate::tools::fetch(tool, &registry, &cache).map(|t| (*tool, t)))
            .collect::<Result<Vec<_>, _>>()
    });
    match &request.source {
        Source::Debian => debian_rootfs(runner.as_ref(), request, &rootdir, say).await?,
        Source::DebianBase(base) => {
            crate::base::from_rootfs(runner.as_ref(), request, base, stage, &rootdir, say).await?
        }
        Source::Void(void) => {
            crate::void::bootstrap(runner.clone(), request, void, stage, &rootdir, say).await?
        }
    }
    install_tools(downloads, &rootdir, say).await?;

    say(
        "image.configure",
        "configuring the root filesystem for banger".into(),
        0.72,
    );
    let (dir, agent, debian) = (
        rootdir.clone(),
        request.agent.clone(),
        request.void().is_none(),
    );
    blocking(move || {
        configure_rootfs(&dir)?;
        install_agent(&dir, &agent)?;
        if debian {
            configure_systemd(&dir)?;
        }
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| BuildError::Failed(format!("configuring the rootfs: {e}")))?;
    check_agent_runs(runner.as_ref(), &rootdir, &request.agent).await?;

    match request.void() {
        None => debian_kernel(&rootdir, stage, say).await?,
        Some(void) => {
            say(
                "image.kernel",
                format!("using the default image's kernel {}", void.kernel.version),
                0.8,
            );
            for (from, to) in [
                (&void.kernel.vmlinux, "vmlinux"),
                (&void.kernel.initrd, "initrd.img"),
            ] {
                std::fs::copy(from, stage.join(to))
                    .map_err(|e| HostError::path_io("cannot copy", from, e))?;
            }
            write(
                &stage.join("kernel-version"),
                void.kernel.version.as_bytes(),
            )?;
        }
    }
    pack(runner.as_ref(), request, stage, &rootdir, sha, say).await
}

/// The Debian tree, by mmdebstrap.
async fn debian_rootfs(
    runner: &dyn Runner,
    request: &BuildRequest,
    rootdir: &Path,
    say: &(dyn Fn(&str, String, f32) + Send + Sync),
) -> Result<(), BuildError> {
    let mut packages: Vec<String> = BASE_PACKAGES.iter().map(|s| s.to_string()).collect();
    packages.extend(parse_packages(&request.packages));
    say(
        "image.rootfs",
        format!(
            "bootstrapping Debian {} with {} packages (mmdebstrap)",
            request.suite,
            packages.len()
        ),
        0.02,
    );

    let mut cmd = Cmd::new("mmdebstrap")
        .args([
            "--mode=unshare",
            "--variant=apt",
            "--aptopt=Acquire::Retries \"3\"",
        ])
        .arg(format!("--include={}", packages.join(",")))
        .arg(&request.suite)
        .arg(rootdir);
    if let Some(mirror) = &request.mirror {
        cmd = cmd.arg(mirror);
    }
    let ticker = tail_progress(request.log.clone(), say);
    let bootstrap = runner.run(cmd.log_to(&request.log));
    let outcome = tokio::select! {
        outcome = bootstrap => outcome,
        _ = ticker => unreachable!("the ticker never ends"),
    };
    outcome?;
    Ok(())
}

type Downloads =
    tokio::task::JoinHandle<Result<Vec<(crate::tools::NpmTool, Vec<u8>)>, crate::tools::ToolError>>;

/// mise and opencode, from their (verified) npm tarballs.
async fn install_tools(
    downloads: Downloads,
    rootdir: &Path,
    say: &(dyn Fn(&str, String, f32) + Send + Sync),
) -> Result<(), BuildError> {
    say(
        "image.tools",
        format!(
            "installing {} from the npm registry",
            crate::tools::TOOLS
                .iter()
                .map(|t| format!("{} {}", t.name, t.version))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        0.7,
    );
    let tarballs = downloads
        .await
        .map_err(|e| BuildError::Failed(e.to_string()))?
        .map_err(|e| {
            BuildError::Failed(format!(
                "{e}; set npm_registry in config.toml to a reachable npm registry or mirror"
            ))
        })?;
    let dir = rootdir.to_path_buf();
    blocking(move || {
        tarballs
            .iter()
            .try_for_each(|(tool, tarball)| crate::tools::install(tool, tarball, &dir).map(drop))
    })
    .await
    .map_err(|e| BuildError::Failed(e.to_string()))
}

/// Debian's kernel as an ELF vmlinux, and an initramfs of its modules.
async fn debian_kernel(
    rootdir: &Path,
    stage: &Path,
    say: &(dyn Fn(&str, String, f32) + Send + Sync),
) -> Result<(), BuildError> {
    say(
        "image.kernel",
        "extracting the ELF kernel from Debian's vmlinuz".into(),
        0.76,
    );
    let (vmlinuz, version) = find_kernel(rootdir)?;
    let bzimage =
        std::fs::read(&vmlinuz).map_err(|e| HostError::path_io("cannot read", &vmlinuz, e))?;
    let elf = tokio::task::spawn_blocking(move || kernel::extract_vmlinux(&bzimage))
        .await
        .map_err(|e| BuildError::Failed(e.to_string()))?
        .map_err(|e| BuildError::Failed(format!("{}: {e}", vmlinuz.display())))?;
    write(&stage.join("vmlinux"), &elf)?;
    write(&stage.join("kernel-version"), version.as_bytes())?;

    say(
        "image.initramfs",
        format!("building the initramfs for kernel {version}"),
        0.8,
    );
    let (dir, kernel_version) = (rootdir.to_path_buf(), version.clone());
    let initrd = blocking(move || initramfs::build(&dir, &kernel_version))
        .await
        .map_err(|e| BuildError::Failed(e.to_string()))?;
    write(&stage.join("initrd.img"), &initrd)?;
    Ok(())
}

/// The work seed taken out of the tree, and the tree packed into ext4.
async fn pack(
    runner: &dyn Runner,
    request: &BuildRequest,
    stage: &Path,
    rootdir: &Path,
    sha: &str,
    say: &(dyn Fn(&str, String, f32) + Send + Sync),
) -> Result<(), BuildError> {
    // /root of new VMs starts as a copy of the image's /root.
    let seed = stage.join("work-seed");
    std::fs::rename(rootdir.join("root"), &seed)
        .map_err(|e| HostError::path_io("cannot move", &seed, e))?;
    std::fs::create_dir(rootdir.join("root")).map_err(|e| HostError::io("recreate /root", e))?;
    set_mode(&rootdir.join("root"), 0o700)?;

    say(
        "image.ext4",
        "packing the root filesystem into ext4 (mkfs.ext4 -d)".into(),
        0.85,
    );
    let dir = rootdir.to_path_buf();
    let used = blocking(move || tree_size(&dir)).await;
    let needed = (used + used / 5 + (128 << 20)).div_ceil(1 << 20) << 20;
    let size = match request.size {
        Some(asked) if asked < needed => {
            return Err(BuildError::Failed(format!(
                "--size {} is too small: this root filesystem needs at least {}",
                banger_api::format_size(asked),
                banger_api::format_size(needed)
            )))
        }
        Some(asked) => asked,
        None => needed,
    };
    let rootfs = stage.join("rootfs.ext4");
    banger_host::disk::create_sparse(&rootfs, size)?;
    runner
        .run(
            Cmd::new("mkfs.ext4")
                .args(["-F", "-q", "-L", LABEL_BASE, "-m", "0", "-d"])
                .arg(rootdir)
                .arg(&rootfs)
                .log_to(&request.log),
        )
        .await?;
    let dir = rootdir.to_path_buf();
    blocking(move || std::fs::remove_dir_all(&dir))
        .await
        .map_err(|e| HostError::path_io("cannot remove", rootdir, e))?;
    let manifest = if request.void().is_some() {
        "packages.void"
    } else {
        "packages.apt"
    };
    write(&stage.join(manifest), request.packages.as_bytes())?;
    write(&stage.join("manifest.sha256"), sha.as_bytes())?;
    Ok(())
}

/// A step that only works as root says so before it starts.
pub(crate) fn require_root(message: &str) -> Result<(), BuildError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(BuildError::Failed(message.to_string()))
    }
}

/// Refuses to start a build that cannot fit, before minutes of work.
fn check_space(dir: &Path) -> Result<(), BuildError> {
    let Ok(stat) = nix::sys::statvfs::statvfs(dir) else {
        return Ok(()); // unknown: let the build try
    };
    let free = stat.blocks_available() * stat.fragment_size();
    if free < NEEDED_FREE {
        return Err(BuildError::Failed(format!(
            "not enough free space for an image build in {}: {} free, about {} needed; free some space or set images_dir in config.toml to a bigger disk",
            dir.display(),
            banger_api::format_size(free),
            banger_api::format_size(NEEDED_FREE)
        )));
    }
    Ok(())
}

/// Whether a failed build ran out of disk (ENOSPC in the error or in what
/// the helper tools logged).
fn disk_filled_up(error: &str, log: &Path) -> bool {
    const ENOSPC: &str = "No space left on device";
    error.contains(ENOSPC)
        || std::fs::read(log)
            .map(|b| String::from_utf8_lossy(&b).contains(ENOSPC))
            .unwrap_or(false)
}

/// Runs filesystem-heavy work (a whole Debian tree) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking image-build step panicked")
}

/// The last error lines ("E: ...") a helper tool wrote to the build log.
fn error_lines(log: &Path) -> String {
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E: ")).collect();
    errors[errors.len().saturating_sub(3)..].join(" | ")
}

/// Emits mmdebstrap's latest "I: ..." line as progress, once a second.
async fn tail_progress(log: PathBuf, say: &(dyn Fn(&str, String, f32) + Send + Sync)) {
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

/// What every image gets, whatever its init system.
fn configure_rootfs(root: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    // /root becomes the work seed: root's shell and tmux set up (once: a
    // --base-rootfs tree may have it already). A base whose /root is empty
    // (a banger image's is: its /root went to its work seed) gets Debian's
    // root dotfiles back first, so login shells still read .bashrc.
    for dot in ["profile", "bashrc"] {
        let (skeleton, target) = (
            root.join(format!("usr/share/base-files/dot.{dot}")),
            root.join(format!("root/.{dot}")),
        );
        // symlink_metadata: a dangling link in the base is not "missing"
        // (copying through it would write outside the tree).
        if skeleton.is_file() && target.symlink_metadata().is_err() {
            std::fs::copy(&skeleton, &target)?;
        }
    }
    let bashrc = root.join("root/.bashrc");
    if !std::fs::read_to_string(&bashrc)
        .unwrap_or_default()
        .contains(BASHRC_MISE)
    {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&bashrc)?
            .write_all(BASHRC_MISE.as_bytes())?;
    }
    std::fs::write(root.join("root/.tmux.conf"), TMUX_CONF)?;
    let script = root.join(TMUX_SESSIONS_PATH);
    std::fs::create_dir_all(script.parent().expect("has a parent"))?;
    std::fs::write(&script, TMUX_SESSIONS)?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    std::fs::create_dir_all(root.join("etc/docker"))?;
    std::fs::write(root.join("etc/docker/daemon.json"), DOCKER_DAEMON_JSON)?;
    std::fs::create_dir_all(root.join("etc/ssh/sshd_config.d"))?;
    std::fs::write(root.join("etc/ssh/sshd_config.d/banger.conf"), SSHD_CONFIG)?;
    // Host keys are per VM (the daemon writes them); none ship in the image.
    for entry in std::fs::read_dir(root.join("etc/ssh"))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            std::fs::remove_file(entry.path())?;
        }
    }
    std::fs::create_dir_all(root.join("etc/banger"))?;
    std::fs::write(root.join("etc/hostname"), "banger\n")?;
    std::fs::write(
        root.join("etc/fstab"),
        "# / is assembled by banger's initramfs; /root comes from the VM's fstab.\n",
    )?;
    Ok(())
}

/// Debian's systemd: units, machine id, the agent's service.
fn configure_systemd(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::symlink;
    std::fs::create_dir_all(root.join("etc/systemd/system/docker.service.d"))?;
    std::fs::write(
        root.join("etc/systemd/system/docker.service.d/banger.conf"),
        DOCKER_DROP_IN,
    )?;
    // systemd generates a fresh machine id on each VM's first boot.
    std::fs::write(root.join("etc/machine-id"), "")?;
    let _ = std::fs::remove_file(root.join("var/lib/dbus/machine-id"));
    for unit in MASKED_UNITS {
        let link = root.join("etc/systemd/system").join(unit);
        let _ = std::fs::remove_file(&link);
        symlink("/dev/null", link)?;
    }
    // The initramfs configures eth0; make sure nothing else fights over it.
    let _ = std::fs::remove_file(
        root.join("etc/systemd/system/multi-user.target.wants/systemd-networkd.service"),
    );
    let units = root.join("etc/systemd/system");
    std::fs::write(units.join("banger-agent.service"), agent_unit())?;
    let wants = units.join("multi-user.target.wants");
    std::fs::create_dir_all(&wants)?;
    let link = wants.join("banger-agent.service");
    let _ = std::fs::remove_file(&link);
    symlink("/etc/systemd/system/banger-agent.service", link)?;
    Ok(())
}

/// The agent is built on the host, against the host's glibc: make sure the
/// image's own libc runs it (a newer host glibc than the image's would not),
/// by running it in the tree (chroot, as root; skipped otherwise).
async fn check_agent_runs(
    runner: &dyn Runner,
    root: &Path,
    agent: &Path,
) -> Result<(), BuildError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let run = runner
        .run(
            Cmd::new("chroot")
                .arg(root)
                .arg(format!("/{AGENT_PATH}"))
                .arg("--version"),
        )
        .await;
    match run {
        Ok(_) => Ok(()),
        Err(e) => Err(BuildError::Failed(format!(
            "the guest agent {} does not run on this image's libc: {e}; build banger on a system whose glibc is no newer than the image's (for Debian images: debian_suite), or set agent_bin to an agent built for it",
            agent.display()
        ))),
    }
}

/// The guest agent's binary (its service is the init system's part).
fn install_agent(root: &Path, agent: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target = root.join(AGENT_PATH);
    std::fs::create_dir_all(target.parent().expect("AGENT_PATH has a parent"))?;
    std::fs::copy(agent, &target)
        .map_err(|e| std::io::Error::new(e.kind(), format!("copy {}: {e}", agent.display())))?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn find_kernel(root: &Path) -> Result<(PathBuf, String), BuildError> {
    let boot = root.join("boot");
    let mut kernels: Vec<String> = std::fs::read_dir(&boot)
        .map_err(|e| HostError::path_io("cannot read", &boot, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vmlinuz-"))
        .collect();
    // Newest last: 6.1.0-25 after 6.1.0-9 (an apt upgrade leaves both).
    kernels.sort_by_key(|name| version_key(name));
    let name = kernels
        .pop()
        .ok_or_else(|| BuildError::Failed(format!("no vmlinuz-* in {}", boot.display())))?;
    let version = name.trim_start_matches("vmlinuz-").to_string();
    Ok((boot.join(name), version))
}

/// A version string as numbers and words, so that numbers compare as numbers.
fn version_key(version: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = version;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let word = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((0, rest[..word].to_string()));
            rest = &rest[word..];
        }
    }
    key
}

fn tree_size(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            // Every inode costs at least a block.
            total += meta.len().div_ceil(4096).max(1) * 4096;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), HostError> {
    std::fs::write(path, bytes).map_err(|e| HostError::path_io("cannot write", path, e))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), HostError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| HostError::path_io("chmod", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_recognised_in_the_error_or_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        std::fs::write(
            &log,
            "I: extracting\ntar: ./usr/bin/x: Cannot write: No space left on device\n",
        )
        .unwrap();
        assert!(disk_filled_up("mmdebstrap exited with 1", &log));
        std::fs::write(&log, "E: unable to locate package nope\n").unwrap();
        assert!(!disk_filled_up("mmdebstrap exited with 1", &log));
        assert!(disk_filled_up(
            "cannot write rootfs.ext4: No space left on device (os error 28)",
            &log
        ));
    }

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
    }

    #[test]
    fn manifest_parsing_ignores_comments_and_blanks() {
        assert_eq!(parse_packages("# c\ncurl\n\n git # vcs\n"), ["curl", "git"]);
    }

    #[test]
    fn the_manifest_hash_follows_the_package_list() {
        let a = manifest_sha256("curl\ngit\n", "bookworm");
        assert_eq!(a, manifest_sha256("# comment\ncurl\ngit", "bookworm"));
        assert_ne!(a, manifest_sha256("curl\n", "bookworm"));
        assert_ne!(a, manifest_sha256("curl\ngit\n", "trixie"));
    }

    #[test]
    fn a_requested_size_is_part_of_what_a_build_is() {
        let request = |size| BuildRequest {
            name: "x".into(),
            packages: "curl\n".into(),
            images_dir: "/nonexistent".into(),
            log: "/nonexistent/log".into(),
            mirror: None,
            suite: "bookworm".into(),
            size,
            agent: "/nonexistent/banger-agent".into(),
            npm_registry: crate::tools::DEFAULT_REGISTRY.into(),
            download_cache: "/nonexistent/cache".into(),
            source: Source::Debian,
        };
        let plain = request_sha256(&request(None));
        assert_eq!(plain, request_sha256(&request(None)));
        assert_ne!(plain, request_sha256(&request(Some(4 << 30))));
        assert_ne!(
            request_sha256(&request(Some(4 << 30))),
            request_sha256(&request(Some(8 << 30)))
        );
    }
}
