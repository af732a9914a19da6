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

use banger_api::VmmKind;
use banger_store::Store;

use crate::config::Config;
use crate::dns::DnsStatus;

/// What the checks look at besides the host itself.
pub struct Inputs<'a> {
    pub paths: &'a Paths,
    pub config: &'a Config,
    pub images_dir: &'a Path,
    pub store: &'a Store,
    /// Who makes the host's network changes.
    pub network: &'a banger_api::NetworkAuthority,
    /// The VMM new VMs get.
    pub vmm: VmmKind,
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
    if inputs.vmm == VmmKind::Firecracker {
        checks.extend(crate::kernels::check(
            inputs.store,
            &inputs.config.default_image,
        ));
    }
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

    fn inputs<'a>(
        paths: &'a Paths,
        config: &'a Config,
        images: &'a Path,
        store: &'a Store,
    ) -> Inputs<'a> {
        Inputs {
            paths,
            config,
            images_dir: images,
            store,
            network: &banger_api::NetworkAuthority::Root,
            vmm: crate::drivers::choose_vmm(config),
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
        let store = Store::open(&dir.path().join("db")).unwrap();
        let checks = run(&inputs(&paths, &config, &images, &store));
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
        assert!(
            !names.iter().any(|n| n.ends_with(" kernel")),
            "no Firecracker kernel check under QEMU: {names:?}"
        );
    }

    #[test]
    fn a_kernel_is_vouched_for_under_firecracker_only_once_it_booted_a_guest_here() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let config = Config {
            vmm: VmmChoice::Firecracker,
            ..Config::default()
        };
        let images = dir.path().join("images");
        let store = Store::open(&dir.path().join("db")).unwrap();
        let kernel = dir.path().join("vmlinux");
        std::fs::write(&kernel, b"a kernel").unwrap();
        store
            .put_image(&banger_api::Image {
                name: "default".into(),
                managed: true,
                rootfs: dir.path().join("rootfs.ext4"),
                kernel: kernel.clone(),
                initrd: dir.path().join("initrd.img"),
                kernel_version: "6.1.0-test".into(),
                work_seed: None,
                packages_sha256: String::new(),
                created_at: time::OffsetDateTime::now_utc(),
                agent: true,
                agent_serial: true,
                warm: false,
            })
            .unwrap();
        let kernel_check = |store: &Store| {
            run(&inputs(&paths, &config, &images, store))
                .into_iter()
                .find(|c| c.name == "image default kernel")
                .expect("the kernel check runs under Firecracker")
        };
        let unproven = kernel_check(&store);
        assert_eq!(unproven.status, CheckStatus::Warn);
        assert!(unproven.detail.contains("never booted"), "{unproven:?}");
        assert!(unproven.hint.unwrap().contains("--kernel"));

        let sha = crate::kernels::fingerprint(&kernel).unwrap();
        store
            .record_kernel_boot(&sha, VmmKind::Firecracker)
            .unwrap();
        assert_eq!(kernel_check(&store).status, CheckStatus::Pass);
        // A rebuilt kernel (other content) starts unproven again.
        std::fs::write(&kernel, b"another kernel").unwrap();
        assert_eq!(kernel_check(&store).status, CheckStatus::Warn);
    }
}
