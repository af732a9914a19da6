//! What guest networking needs: TUN, the privilege to make bridges and
//! TAPs, iptables and an uplink for NAT, the `.vm` DNS, forwarding, vsock.

use std::path::Path;

use banger_api::{Check, CheckStatus, NetworkAuthority};
use banger_host::tools;

use super::{check, Inputs};
use crate::dns::DnsStatus;

pub fn checks(inputs: &Inputs<'_>) -> Vec<Check> {
    let mut checks = vec![
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
        {
            Ok(_) => check(
                "tun",
                CheckStatus::Pass,
                "/dev/net/tun opens: VMMs can attach their TAP",
                None,
            ),
            Err(e) => check(
                "tun",
                CheckStatus::Fail,
                format!("/dev/net/tun: {e}"),
                Some(if nix::unistd::geteuid().is_root() {
                    "load the tun module (modprobe tun)".into()
                } else {
                    "the root helper grants it to its owners: `sudo banger system install --owner $USER` (or `chmod 0666 /dev/net/tun`, Debian's default)".into()
                }),
            ),
        },
        privileges(inputs.network),
        match tools::require("iptables") {
            Ok(path) => check(
                "tool iptables",
                CheckStatus::Pass,
                path.display().to_string(),
                None,
            ),
            Err(err) => check(
                "tool iptables",
                CheckStatus::Warn,
                format!("{err} (needed for --nat)"),
                err.hint(),
            ),
        },
        match banger_host::net::default_route_interface() {
            Some(dev) => check(
                "nat uplink",
                CheckStatus::Pass,
                format!("default route via {dev}: --nat guests reach the network through it"),
                None,
            ),
            None => check(
                "nat uplink",
                CheckStatus::Warn,
                "no default IPv4 route: --nat has nowhere to send guest traffic",
                Some("connect the host to a network; VMs without --nat are unaffected".into()),
            ),
        },
        dns(&inputs.dns, &inputs.config.dns_listen),
        ip_forward(
            inputs.ip_forward.as_deref(),
            inputs.forward_writable,
            &inputs.nat_vms,
        ),
    ];
    checks.push(if Path::new("/dev/vhost-vsock").exists() {
        check("vsock", CheckStatus::Pass, "/dev/vhost-vsock exists", None)
    } else if let Some(path) = tools::find("vhost-device-vsock") {
        check(
            "vsock",
            CheckStatus::Pass,
            format!("{} (user-space vsock for QEMU)", path.display()),
            None,
        )
    } else {
        check(
            "vsock",
            CheckStatus::Warn,
            "no /dev/vhost-vsock and no vhost-device-vsock",
            Some(
                "load vhost_vsock, or `cargo install vhost-device-vsock`, for the guest agent"
                    .into(),
            ),
        )
    });
    checks
}

/// Who makes the bridge, TAP and NAT changes.
fn privileges(authority: &NetworkAuthority) -> Check {
    let name = "network privileges";
    match authority {
        NetworkAuthority::Root => check(
            name,
            CheckStatus::Pass,
            "bangerd runs as root and makes bridge, TAP and NAT changes itself",
            None,
        ),
        NetworkAuthority::Helper {
            socket,
            version: Some(version),
            ..
        } => check(
            name,
            CheckStatus::Pass,
            format!(
                "bangerd runs as uid {}; the root helper {version} at {} makes them",
                nix::unistd::geteuid(),
                socket.display()
            ),
            None,
        ),
        NetworkAuthority::Helper { socket, error, .. } => check(
            name,
            CheckStatus::Fail,
            format!(
                "bangerd runs as uid {} and no root helper answers at {}{}",
                nix::unistd::geteuid(),
                socket.display(),
                error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            Some("`sudo banger system install --owner $USER` (or, without systemd, `sudo banger-helper --owner $USER`), then `banger daemon stop` so the next command starts a daemon that finds it".into()),
        ),
    }
}

/// The daemon knows whether its DNS serves.
fn dns(status: &DnsStatus, listen: &str) -> Check {
    match status {
        DnsStatus::Serving(addr) => check(
            "dns",
            CheckStatus::Pass,
            format!("the .vm DNS answers on {addr} (udp and tcp)"),
            None,
        ),
        DnsStatus::Failed(why) => check(
            "dns",
            CheckStatus::Warn,
            format!("the .vm DNS is not serving on {listen}: {why}"),
            Some("set dns_listen in config.toml to a free address:port".into()),
        ),
        DnsStatus::NotStarted => check(
            "dns",
            CheckStatus::Warn,
            format!("the .vm DNS has not started on {listen}"),
            None,
        ),
    }
}

/// Forwarding: on is fine; off is fine while nothing needs it and the
/// daemon can turn it on; off under running NAT VMs breaks them.
fn ip_forward(value: Option<&str>, writable: bool, nat_vms: &[String]) -> Check {
    match value {
        Some("1") => check("ip_forward", CheckStatus::Pass, "net.ipv4.ip_forward = 1", None),
        Some("0") if !nat_vms.is_empty() => check(
            "ip_forward",
            CheckStatus::Fail,
            format!(
                "net.ipv4.ip_forward = 0 while VMs with NAT run ({}): their traffic is not forwarded",
                nat_vms.join(", ")
            ),
            Some("`sysctl -w net.ipv4.ip_forward=1` (something turned it off), or restart those VMs".into()),
        ),
        Some("0") if writable => check(
            "ip_forward",
            CheckStatus::Pass,
            "net.ipv4.ip_forward = 0 (bangerd enables it when a VM uses NAT)",
            None,
        ),
        Some("0") => check(
            "ip_forward",
            CheckStatus::Warn,
            "net.ipv4.ip_forward = 0 and bangerd cannot change it: --nat VMs will not reach the network",
            Some("`sysctl -w net.ipv4.ip_forward=1` as root, or run bangerd as root".into()),
        ),
        other => check(
            "ip_forward",
            CheckStatus::Warn,
            format!("cannot read net.ipv4.ip_forward ({other:?})"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_off_fails_only_when_nat_vms_need_it() {
        let status = |value, writable, vms: &[&str]| {
            let vms: Vec<String> = vms.iter().map(|s| s.to_string()).collect();
            ip_forward(value, writable, &vms).status
        };
        assert_eq!(status(Some("1"), false, &["web"]), CheckStatus::Pass);
        assert_eq!(status(Some("0"), true, &[]), CheckStatus::Pass);
        assert_eq!(status(Some("0"), false, &[]), CheckStatus::Warn);
        assert_eq!(status(Some("0"), true, &["web"]), CheckStatus::Fail);
        assert_eq!(status(None, true, &[]), CheckStatus::Warn);
        let fail = ip_forward(Some("0"), true, &["web".into(), "db".into()]);
        assert!(fail.detail.contains("web, db"), "{}", fail.detail);
    }

    #[test]
    fn the_dns_check_says_why_it_does_not_serve() {
        let failed = dns(&DnsStatus::Failed("address in use".into()), "127.0.0.1:53");
        assert_eq!(failed.status, CheckStatus::Warn);
        assert!(failed.detail.contains("address in use"));
        let serving = dns(&DnsStatus::Serving("127.0.0.1:42069".parse().unwrap()), "x");
        assert_eq!(serving.status, CheckStatus::Pass);
    }
}
