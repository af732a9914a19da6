//! Can this host run ordinary guests with KVM?

use std::path::Path;

/// True when `/dev/kvm` is usable *and* backed by hardware virtualisation
/// (kvm_intel or kvm_amd). Nested schemes like PVM expose `/dev/kvm` but only
/// boot specially built guest kernels, so they do not count.
pub fn usable() -> bool {
    let hardware =
        Path::new("/sys/module/kvm_intel").exists() || Path::new("/sys/module/kvm_amd").exists();
    hardware
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok()
}

/// Why KVM is not usable, for `vm show`/doctor style messages.
pub fn unusable_reason() -> Option<String> {
    if usable() {
        return None;
    }
    if !Path::new("/dev/kvm").exists() {
        return Some("/dev/kvm does not exist".into());
    }
    let denied = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    if denied {
        return Some(format!(
            "/dev/kvm is not open to uid {} (permission denied)",
            nix::unistd::geteuid()
        ));
    }
    if Path::new("/sys/module/kvm_pvm").exists() {
        return Some(
            "/dev/kvm is PVM nested virtualisation, which cannot boot ordinary guest kernels"
                .into(),
        );
    }
    Some("/dev/kvm is not backed by kvm_intel/kvm_amd or not accessible".into())
}
