//! The devices a user's daemon opens itself: `/dev/kvm` (both VMMs),
//! `/dev/net/tun` (to attach the TAP the helper made for it) and
//! `/dev/fuse` (`--base-rootfs` builds mount the base with fuse2fs). A stock
//! Debian host already lets users open them (tun is 0666, kvm is for the
//! `kvm` group); a host where they are root's only gets an ACL entry per
//! owner at helper start (until reboot, or `banger system uninstall`), and
//! the helper's log says so.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

pub const DEVICES: &[&str] = &["/dev/kvm", "/dev/net/tun", "/dev/fuse"];

/// Whether every user may read and write `path` by its mode alone.
fn open_to_all(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o006 == 0o006)
}

/// Gives `uid` read and write on each device that is not open to all.
/// Returns what it changed; a device that is missing is skipped.
pub fn grant(uid: u32) -> Vec<String> {
    let mut changed = Vec::new();
    for device in DEVICES.iter().map(Path::new) {
        if !device.exists() || open_to_all(device) {
            continue;
        }
        let entry = format!("u:{uid}:rw");
        match Command::new("setfacl")
            .args(["-m", &entry])
            .arg(device)
            .output()
        {
            Ok(out) if out.status.success() => {
                tracing::info!(uid, device = %device.display(), "granted read and write (ACL)");
                changed.push(device.display().to_string());
            }
            Ok(out) => {
                tracing::warn!(uid, device = %device.display(), stderr = %String::from_utf8_lossy(&out.stderr).trim(), "cannot grant access; the owner's VMM may not open it")
            }
            Err(e) => {
                tracing::warn!(uid, device = %device.display(), error = %e, "setfacl is missing (apt-get install acl); the owner's VMM may not open the device")
            }
        }
    }
    changed
}

/// Takes back what [`grant`] gave `uid`.
pub fn revoke(uid: u32) {
    for device in DEVICES {
        let _ = Command::new("setfacl")
            .args(["-x", &format!("u:{uid}"), device])
            .output();
    }
}
