//! Void's part of the setup: services under runit (sshd, the agent,
//! Docker), root's shell, sshd reading banger's drop-in, the mirror for
//! later `xbps-install`s, Docker's kernel prerequisites. (What all images
//! share is done by the common setup.)

use std::path::Path;

use super::{mirror, repo};

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
            repo::repo_url(mirror::guest_mirror(mirror))
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
