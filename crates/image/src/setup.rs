//! What every image gets, whatever it was built from: root's shell and tmux
//! set up in the work seed, banger's sshd drop-in, Docker's data on
//! `/root`, the guest agent, and the npm tools (mise, opencode).

use std::path::Path;

use banger_host::runner::{Cmd, Runner};

use crate::fsutil::blocking;
use crate::progress::Say;
use crate::tools::{NpmTool, ToolError, TOOLS};
use crate::tree::Tree;
use crate::BuildError;

pub(crate) const SSHD_CONFIG: &str = "\
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

/// Where the guest agent lives in an image.
pub const AGENT_PATH: &str = "usr/local/bin/banger-agent";

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

/// What the shared setup puts into an image, for the build's identity.
pub(crate) fn identity() -> String {
    let tools: String = TOOLS
        .iter()
        .map(|t| format!("{}={}:{}\n", t.name, t.version, t.integrity))
        .collect();
    format!(
        "{}{SSHD_CONFIG}{BASHRC_MISE}{DOCKER_DAEMON_JSON}{TMUX_CONF}{TMUX_SESSIONS}{tools}",
        crate::INIT_SCRIPT
    )
}

/// Root's dotfiles, tmux, sshd, Docker's data root, no host keys. Every
/// write goes through [`Tree`]: a link in a base image never carries one
/// onto the host.
pub(crate) fn configure_rootfs(root: &Path) -> std::io::Result<()> {
    let tree = Tree::new(root);
    tree.dir("root")?;
    // /root becomes the work seed: root's shell and tmux set up (once: a
    // --base-rootfs tree may have it already). A base whose /root is empty
    // (a banger image's is: its /root went to its work seed) gets Debian's
    // root dotfiles back first, so login shells still read .bashrc.
    for dot in ["profile", "bashrc"] {
        let target = format!("root/.{dot}");
        // A dangling link in the base is not "missing" either.
        if tree.occupied(&target) {
            continue;
        }
        if let Some(skeleton) = tree.read(&format!("usr/share/base-files/dot.{dot}"))? {
            tree.write(&target, skeleton)?;
        }
    }
    let bashrc = tree.read("root/.bashrc")?.unwrap_or_default();
    if !String::from_utf8_lossy(&bashrc).contains(BASHRC_MISE) {
        let mut text = bashrc;
        text.extend_from_slice(BASHRC_MISE.as_bytes());
        tree.write("root/.bashrc", text)?;
    }
    tree.write("root/.tmux.conf", TMUX_CONF)?;
    tree.write_mode(TMUX_SESSIONS_PATH, TMUX_SESSIONS, 0o755)?;
    tree.write("etc/docker/daemon.json", DOCKER_DAEMON_JSON)?;
    tree.write("etc/ssh/sshd_config.d/banger.conf", SSHD_CONFIG)?;
    // Host keys are per VM (the daemon writes them); none ship in the image.
    for entry in std::fs::read_dir(tree.dir("etc/ssh")?)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("ssh_host_") {
            tree.remove(&format!("etc/ssh/{name}"))?;
        }
    }
    tree.dir("etc/banger")?;
    tree.write("etc/hostname", "banger\n")?;
    tree.write(
        "etc/fstab",
        "# / is assembled by banger's initramfs; /root comes from the VM's fstab.\n",
    )?;
    Ok(())
}

/// The guest agent's binary (its service is the init system's part).
pub(crate) fn install_agent(root: &Path, agent: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(agent)
        .map_err(|e| std::io::Error::new(e.kind(), format!("read {}: {e}", agent.display())))?;
    Tree::new(root).write_mode(AGENT_PATH, bytes, 0o755)
}

/// Whether an agent binary speaks the serial channel: it then contains its
/// channels marker (older agents do not).
pub fn agent_speaks_serial(agent: &Path) -> bool {
    std::fs::read(agent).is_ok_and(|bytes| speaks_serial(&bytes))
}

/// [`agent_speaks_serial`] of an agent binary's bytes.
pub fn speaks_serial(agent: &[u8]) -> bool {
    let flag = banger_api::agent::CHANNELS_MARKER.as_bytes();
    agent.windows(flag.len()).any(|w| w == flag)
}

/// The agent is built on the host, against the host's glibc: make sure the
/// image's own libc runs it (a newer host glibc than the image's would not),
/// by running it in the tree (chroot; as a user, in the tree's namespace).
pub(crate) async fn check_agent_runs(
    runner: &dyn Runner,
    root: &Path,
    agent: &Path,
) -> Result<(), BuildError> {
    let chroot = Cmd::new("chroot")
        .arg(root)
        .arg(format!("/{AGENT_PATH}"))
        .arg("--version");
    runner
        .run(banger_host::userns::as_root(
            chroot,
            banger_host::userns::Map::Subordinate,
            &[],
        ))
        .await
        .map(drop)
        .map_err(|source| BuildError::AgentIncompatible {
            agent: agent.to_path_buf(),
            source,
        })
}

/// The npm tools' tarballs, downloading while the tree is bootstrapped.
pub(crate) type Downloads = tokio::task::JoinHandle<Result<Vec<(NpmTool, Vec<u8>)>, ToolError>>;

/// Starts fetching every tool (verified, from the cache when it is there).
pub(crate) fn download_tools(registry: String, cache: std::path::PathBuf) -> Downloads {
    tokio::task::spawn_blocking(move || {
        TOOLS
            .iter()
            .map(|tool| crate::tools::fetch(tool, &registry, &cache).map(|t| (*tool, t)))
            .collect()
    })
}

/// mise and opencode, from their (verified) npm tarballs.
pub(crate) async fn install_tools(
    downloads: Downloads,
    rootdir: &Path,
    say: &Say<'_>,
) -> Result<(), BuildError> {
    let names: Vec<String> = TOOLS
        .iter()
        .map(|t| format!("{} {}", t.name, t.version))
        .collect();
    say(
        "image.tools",
        format!("installing {} from the npm registry", names.join(", ")),
        0.7,
    );
    let tarballs = downloads.await.expect("tool downloads do not panic")?;
    let dir = rootdir.to_path_buf();
    blocking(move || {
        tarballs
            .iter()
            .try_for_each(|(tool, tarball)| crate::tools::install(tool, tarball, &dir).map(drop))
    })
    .await?;
    Ok(())
}
