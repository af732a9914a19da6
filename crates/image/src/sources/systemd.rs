//! Debian's init system, as both Debian sources set it up: the agent's
//! unit, units masked that only slow a dev VM's boot, Docker waiting for
//! `/root`, a fresh machine id per VM.

use std::path::Path;

use crate::tree::Tree;

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

const DOCKER_DROP_IN: &str = "\
# Written by banger's image builder: Docker's data is on /root.
[Unit]
RequiresMountsFor=/root
";

/// Units that slow a boot down and do nothing useful in a dev VM.
const MASKED_UNITS: &[&str] = &[
    "systemd-networkd-wait-online.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
];

/// The agent's unit, listening on the port the host asks for.
fn agent_unit() -> String {
    AGENT_UNIT.replace("{port}", &banger_api::agent::AGENT_PORT.to_string())
}

/// What this setup puts into an image, for the build's identity.
pub fn identity() -> String {
    format!("{} {DOCKER_DROP_IN} {MASKED_UNITS:?}", agent_unit())
}

/// Units, machine id, the agent's service.
pub fn configure(root: &Path) -> std::io::Result<()> {
    let tree = Tree::new(root);
    tree.write(
        "etc/systemd/system/docker.service.d/banger.conf",
        DOCKER_DROP_IN,
    )?;
    // systemd generates a fresh machine id on each VM's first boot.
    tree.write("etc/machine-id", "")?;
    tree.remove("var/lib/dbus/machine-id")?;
    for unit in MASKED_UNITS {
        tree.symlink("/dev/null", &format!("etc/systemd/system/{unit}"))?;
    }
    // The initramfs configures eth0; make sure nothing else fights over it.
    tree.remove("etc/systemd/system/multi-user.target.wants/systemd-networkd.service")?;
    tree.write("etc/systemd/system/banger-agent.service", agent_unit())?;
    tree.symlink(
        "/etc/systemd/system/banger-agent.service",
        "etc/systemd/system/multi-user.target.wants/banger-agent.service",
    )?;
    Ok(())
}
