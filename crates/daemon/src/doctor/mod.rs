//! `banger doctor`: readiness checks, run by the daemon with its own
//! privileges, paths and configuration (`GET /v1/doctor`), so what it says
//! is true of the process that acts. The same names and hints the daemon
//! uses when it refuses an operation.
//!
//! - [`vmm`] — KVM, Firecracker, QEMU and its vsock helper
//! - [`files`] — tools, the runtime bundle, the default image, disk space
//! - [`network`] — TUN, privileges, iptables, the uplink, DNS, forwarding, vsock

mod files;
mod network;
mod vmm;

use std::path::Path;

use banger_api::paths::Paths;
use banger_api::{Check, CheckStatus};

use crate::config::Config;
use crate::dns::DnsStatus;

/// What the checks look at besides the host itself.
pub struct Inputs<'a> {
    pub paths: &'a Paths,
    pub config: &'a Config,
    pub images_dir: &'a Path,
    /// Whether the `.vm` DNS serves.
    pub dns: DnsStatus,
    /// Running VMs that have NAT on (forwarding must be on for them).
    pub nat_vms: Vec<String>,
    /// `net.ipv4.ip_forward` as read, and whether this process may set it.
    pub ip_forward: Option<String>,
    pub forward_writable: bool,
}

impl Inputs<'_> {
    /// Reads forwarding from this host's /proc.
    pub fn host_forwarding() -> (Option<String>, bool) {
        const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
        let value = std::fs::read_to_string(PATH)
            .ok()
            .map(|v| v.trim().to_string());
        let writable = nix::unistd::access(PATH, nix::unistd::AccessFlags::W_OK).is_ok();
        (value, writable)
    }
}

pub(crate) fn check(
    name: &str,
    status: CheckStatus,
    detail: impl Into<String>,
    hint: Option<String>,
) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        hint,
    }
}

/// Every check, in the order doctor prints them.
pub fn run(inputs: &Inputs<'_>) -> Vec<Check> {
    let mut checks = vmm::checks(inputs.config);
    checks.extend(files::checks(inputs));
    checks.extend(network::checks(inputs));
    checks.push(check(
        "daemon",
        CheckStatus::Pass,
        format!(
            "bangerd {} listening on {} (pid {})",
            env!("CARGO_PKG_VERSION"),
            inputs.paths.socket().display(),
            std::process::id()
        ),
        None,
    ));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VmmChoice;

    fn inputs<'a>(paths: &'a Paths, config: &'a Config, images: &'a Path) -> Inputs<'a> {
        Inputs {
            paths,
            config,
            images_dir: images,
            dns: DnsStatus::Serving("127.0.0.1:42069".parse().unwrap()),
            nat_vms: Vec::new(),
            ip_forward: Some("1".into()),
            forward_writable: false,
        }
    }

    #[test]
    fn reports_every_area_and_fails_on_a_missing_vmm() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let config = Config {
            vmm: VmmChoice::Qemu,
            qemu_bin: Some("/nonexistent/qemu-system-x86_64".into()),
            ..Config::default()
        };
        let images = dir.path().join("images");
        let checks = run(&inputs(&paths, &config, &images));
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        for area in [
            "kvm",
            "firecracker",
            "qemu",
            "tool mkfs.ext4",
            "default image",
            "tun",
            "tool iptables",
            "ip_forward",
            "vsock",
            "disk space",
            "daemon",
        ] {
            assert!(names.contains(&area), "missing check {area}: {names:?}");
        }
        let qemu = checks.iter().find(|c| c.name == "qemu").unwrap();
        assert_eq!(qemu.status, CheckStatus::Fail);
        assert!(
            qemu.hint
                .as_deref()
                .unwrap_or("")
                .contains("apt-get install qemu-system-x86"),
            "{qemu:?}"
        );
        assert!(banger_api::status::any_failed(&checks));
        let image = checks.iter().find(|c| c.name == "default image").unwrap();
        assert_eq!(image.status, CheckStatus::Warn);
    }
}
