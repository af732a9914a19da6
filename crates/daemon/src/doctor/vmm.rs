//! Can this host run VMs: KVM, Firecracker, QEMU and its vsock helper.

use std::path::Path;

use banger_api::{Check, CheckStatus, VmmKind};
use banger_host::tools;
use banger_vmm::kvm;

use super::check;
use crate::config::{Config, VmmChoice};
use crate::drivers::{self, DriverError};

/// First line a program prints for `--version`.
fn version(program: &Path) -> Option<String> {
    let out = std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

fn found(path: &Path) -> String {
    format!(
        "{} ({})",
        version(path).unwrap_or_else(|| "version unknown".into()),
        path.display()
    )
}

pub fn checks(config: &Config) -> Vec<Check> {
    let vmm = drivers::choose_vmm(config);
    let mut checks = vec![match kvm::unusable_reason() {
        None => check(
            "kvm",
            CheckStatus::Pass,
            "/dev/kvm runs ordinary guests",
            None,
        ),
        Some(reason) if reason.contains("permission denied") => check(
            "kvm",
            if config.vmm == VmmChoice::Firecracker {
                CheckStatus::Fail
            } else {
                CheckStatus::Warn
            },
            reason,
            Some("the root helper grants it to its owners: `sudo banger system install --owner $USER` (or add yourself to the kvm group)".into()),
        ),
        Some(reason) if config.vmm == VmmChoice::Firecracker => check(
            "kvm",
            CheckStatus::Fail,
            reason,
            Some("Firecracker needs hardware KVM; set vmm = \"qemu\"".into()),
        ),
        Some(reason) => check(
            "kvm",
            CheckStatus::Warn,
            format!("{reason}; QEMU will use software emulation (slow)"),
            Some("use a host with hardware virtualisation (kvm_intel/kvm_amd) for fast VMs".into()),
        ),
    }];

    checks.push(match (drivers::firecracker_binary(config), vmm) {
        (Some(path), _) => check("firecracker", CheckStatus::Pass, found(&path), None),
        (None, VmmKind::Firecracker) => check(
            "firecracker",
            CheckStatus::Fail,
            DriverError::NoFirecracker.to_string(),
            DriverError::NoFirecracker.hint(),
        ),
        (None, VmmKind::Qemu) => check(
            "firecracker",
            CheckStatus::Warn,
            "not found; VMs run under QEMU",
            None,
        ),
    });

    checks.push(match tools::require(&drivers::qemu_name(config)) {
        Ok(path) => check("qemu", CheckStatus::Pass, found(&path), None),
        Err(err) => check(
            "qemu",
            if vmm == VmmKind::Qemu {
                CheckStatus::Fail
            } else {
                CheckStatus::Warn
            },
            banger_api::error::chain(&err),
            err.hint(),
        ),
    });
    if vmm == VmmKind::Qemu {
        checks.push(match (drivers::vsock_helper(config), &config.vsock_helper_bin) {
            (Some(path), _) => check("vsock helper", CheckStatus::Pass, path.display().to_string(), None),
            (None, Some(configured)) => check(
                "vsock helper",
                CheckStatus::Fail,
                format!("vsock_helper_bin {} was not found: QEMU VMs cannot start", configured.display()),
                drivers::VSOCK_HELPER_FIX.map(String::from),
            ),
            (None, None) => check(
                "vsock helper",
                CheckStatus::Warn,
                "vhost-device-vsock not found: QEMU guests of images whose agent speaks only vsock (built before the serial channel) get no agent",
                Some("rebuild those images (`banger image build`), or `cargo install vhost-device-vsock --root /usr/local`".into()),
            ),
        });
        checks.push(match banger_host::tools::find_own(drivers::RELAY) {
            Some(path) => check("agent relay", CheckStatus::Pass, path.display().to_string(), None),
            None => check(
                "agent relay",
                CheckStatus::Warn,
                "banger-relay not found beside bangerd or in PATH: QEMU guests use the vsock channel, which cannot be suspended or cloned",
                Some("install banger-relay with the other binaries (`make install`)".into()),
            ),
        });
    }
    checks.push(check(
        "vmm",
        CheckStatus::Pass,
        format!("new VMs use {vmm}"),
        None,
    ));
    checks
}
