//! Void's part of the setup: services under runit (sshd, the agent,
//! Docker), root's shell, sshd reading banger's drop-in, the mirror for
//! later `xbps-install`s, Docker's kernel prerequisites. (What all images
//! share is done by the common setup.)

use std::path::Path;

use super::{mirror, repo};
use crate::tree::Tree;

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

fn agent_run() -> String {
    AGENT_RUN.replace("{port}", &banger_api::agent::AGENT_PORT.to_string())
}

/// What this setup puts into an image, for the build's identity.
pub(super) fn identity() -> String {
    format!("{AGENT_RUN} {DOCKER_MODULES} {DOCKER_SYSCTL} {BASH_PROFILE}")
}

/// Void-specific setup: runit services, root's shell, sshd reading
/// banger's drop-in, the mirror for later `xbps-install`s, Docker's kernel
/// prerequisites. (What all images share is done by the common builder.)
pub(super) fn configure(root: &Path, mirror: &str) -> std::io::Result<()> {
    let tree = Tree::new(root);
    tree.write_mode("etc/sv/banger-agent/run", agent_run(), 0o755)?;
    tree.dir("etc/runit/runsvdir/default")?;
    for service in ["sshd", "banger-agent", "docker"] {
        if !tree.has_dir(&format!("etc/sv/{service}")) {
            continue; // docker only when the package list has it
        }
        tree.symlink(
            &format!("/etc/sv/{service}"),
            &format!("etc/runit/runsvdir/default/{service}"),
        )?;
    }
    let passwd = tree.read("etc/passwd")?.unwrap_or_default();
    tree.write(
        "etc/passwd",
        with_root_shell(&String::from_utf8_lossy(&passwd), "/bin/bash")?,
    )?;
    let sshd = tree.read("etc/ssh/sshd_config")?.unwrap_or_default();
    tree.write(
        "etc/ssh/sshd_config",
        with_sshd_drop_ins(&String::from_utf8_lossy(&sshd)),
    )?;
    tree.write(
        "etc/xbps.d/00-repository-main.conf",
        format!(
            "# Written by banger's image builder: the mirror this image came from.\nrepository={}\n",
            repo::repo_url(mirror::guest_mirror(mirror))
        ),
    )?;
    tree.write("etc/modules-load.d/banger-docker.conf", DOCKER_MODULES)?;
    tree.write("etc/sysctl.d/banger-docker.conf", DOCKER_SYSCTL)?;
    if !tree.occupied("root/.bash_profile") {
        tree.write("root/.bash_profile", BASH_PROFILE)?;
    }
    Ok(())
}

/// `passwd` with root logging in to `shell`; `/bin/sh` stays the distro's.
fn with_root_shell(passwd: &str, shell: &str) -> std::io::Result<String> {
    let mut found = false;
    let lines: Vec<String> = passwd
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
        return Err(std::io::Error::other(
            "the tree's etc/passwd has no root entry",
        ));
    }
    Ok(lines.join("\n") + "\n")
}

/// sshd keeps the first value it reads, so banger's drop-in is included at
/// the top of Void's (upstream) `sshd_config`.
fn with_sshd_drop_ins(config: &str) -> String {
    const INCLUDE: &str = "Include /etc/ssh/sshd_config.d/*.conf";
    if config.lines().any(|l| l.trim() == INCLUDE) {
        return config.to_string();
    }
    format!("# Added by banger's image builder.\n{INCLUDE}\n\n{config}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_gets_bash_and_other_users_keep_theirs() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:99:99:Unprivileged User:/dev/null:/bin/false\n";
        assert_eq!(
            with_root_shell(passwd, "/bin/bash").unwrap(),
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:99:99:Unprivileged User:/dev/null:/bin/false\n"
        );
        assert!(with_root_shell("nobody:x:99:99::/:/bin/false\n", "/bin/bash").is_err());
    }

    #[test]
    fn sshd_includes_the_drop_ins_first_and_once() {
        let once = with_sshd_drop_ins("PermitRootLogin yes\n");
        let text = with_sshd_drop_ins(&once);
        assert_eq!(text.matches("Include").count(), 1);
        assert!(text.find("Include").unwrap() < text.find("PermitRootLogin").unwrap());
    }
}
