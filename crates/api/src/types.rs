//! Resources of the API: VMs, images, the daemon.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    /// Disks and records are being prepared; not yet booted once.
    Creating,
    Starting,
    Running,
    Stopping,
    Stopped,
}

impl VmState {
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Creating => "creating",
            VmState::Starting => "starting",
            VmState::Running => "running",
            VmState::Stopping => "stopping",
            VmState::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<VmState> {
        [
            VmState::Creating,
            VmState::Starting,
            VmState::Running,
            VmState::Stopping,
            VmState::Stopped,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which virtual machine monitor runs a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmmKind {
    Firecracker,
    Qemu,
}

impl VmmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VmmKind::Firecracker => "firecracker",
            VmmKind::Qemu => "qemu",
        }
    }

    pub fn parse(s: &str) -> Option<VmmKind> {
        match s {
            "firecracker" => Some(VmmKind::Firecracker),
            "qemu" => Some(VmmKind::Qemu),
            _ => None,
        }
    }
}

impl fmt::Display for VmmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub state: VmState,
    pub image: String,
    pub vmm: VmmKind,
    /// How the VMM runs the guest: "kvm" or "tcg" (software emulation).
    pub accel: String,
    pub vcpu: u32,
    pub memory_mib: u32,
    /// Size of the persistent `/root` work disk.
    pub disk_size_bytes: u64,
    /// Size of the writable system overlay for `/`.
    pub overlay_size_bytes: u64,
    pub nat: bool,
    pub ip: String,
    pub mac: String,
    pub tap: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Why the VM last stopped, when it did not stop on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// The VM's directory: disks, console and VMM logs.
    pub dir: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateVmRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub vcpu: Option<u32>,
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// Work disk size, human form ("16G") or bytes.
    #[serde(default)]
    pub disk_size: Option<String>,
    #[serde(default)]
    pub nat: bool,
}

/// What `banger vm ssh` needs to run the system `ssh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshTarget {
    pub name: String,
    pub ip: String,
    pub user: String,
    pub key_path: String,
    /// A known_hosts file holding exactly this VM's host key.
    pub known_hosts_path: String,
    pub host_key_alias: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    /// Built by banger (and deleted with it) rather than registered from outside.
    pub managed: bool,
    pub rootfs: String,
    pub kernel: String,
    pub initrd: String,
    pub kernel_version: String,
    /// Directory whose contents seed a new VM's `/root`.
    pub work_seed: String,
    /// sha256 of the package manifest the image was built from.
    pub packages_sha256: String,
    pub created_at: String,
    /// The rootfs has the guest agent (`/usr/local/bin/banger-agent`): VMs
    /// are ready when it answers, and have `vm exec`, `vm ports`, guest stats.
    #[serde(default)]
    pub agent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildImageRequest {
    pub name: String,
    /// Path to a packages.apt file; the bundled default when absent.
    #[serde(default)]
    pub packages: Option<String>,
    /// Root filesystem size ("4G"); just enough for the packages when absent.
    #[serde(default)]
    pub size: Option<String>,
    /// Adds Docker (`docker.io`) to the packages.
    #[serde(default)]
    pub docker: bool,
    /// `debian` (the default) or `void` (experimental).
    #[serde(default)]
    pub distro: Option<String>,
    /// The distribution's mirror: a URL, or a local mirror directory (Void).
    #[serde(default)]
    pub mirror: Option<String>,
    /// An absolute path to a Debian ext4 image to start from (no mmdebstrap).
    #[serde(default)]
    pub base_rootfs: Option<String>,
}

/// `image register`: an image made outside banger. Paths are absolute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisterImageRequest {
    pub name: String,
    /// An ext4 root filesystem image.
    pub rootfs: String,
    /// A prepared `/root`: an ext4 image or a directory.
    #[serde(default)]
    pub work_seed: Option<String>,
    /// The kernel; the default image's when absent.
    #[serde(default)]
    pub kernel: Option<String>,
    #[serde(default)]
    pub initrd: Option<String>,
    /// The kernel's modules directory (`lib/modules/<version>`).
    #[serde(default)]
    pub modules: Option<String>,
    /// The package manifest the rootfs was made from, for the record.
    #[serde(default)]
    pub packages: Option<String>,
}

/// Changes to a stopped VM (`vm set`); absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateVmRequest {
    #[serde(default)]
    pub vcpu: Option<u32>,
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// New work disk size (grow only), human form or bytes.
    #[serde(default)]
    pub disk_size: Option<String>,
    #[serde(default)]
    pub nat: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillRequest {
    /// Signal name: TERM, KILL, INT, HUP, ... (with or without SIG).
    pub signal: String,
}

/// Resource use of a VM, seen from the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmStats {
    pub name: String,
    pub state: VmState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// CPU used by the VMM process, percent of one core, sampled over ~200 ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Resident memory of the VMM process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
    /// Host blocks used by the sparse system overlay, and its size.
    pub overlay_used_bytes: u64,
    pub overlay_size_bytes: u64,
    /// Host blocks used by the sparse /root work disk, and its size.
    pub work_used_bytes: u64,
    pub work_size_bytes: u64,
    /// What the guest itself reports through its agent, when it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<crate::agent::GuestStats>,
    /// Why there are no guest figures for a running VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_error: Option<String>,
}

/// A listening socket in a guest, as the host can use it (`vm ports`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmPort {
    /// What the guest's agent reported (protocol, bound address, port, owner);
    /// flattened, so the JSON has its fields at the top level.
    #[serde(flatten)]
    pub listener: crate::agent::Listener,
    /// `name.vm:port`.
    pub endpoint: String,
    /// `ip:port`.
    pub ip_endpoint: String,
    /// `http` or `https` when a short probe from the host got a web answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<String>,
    /// `http://name.vm:port/` for web listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub version: String,
    pub socket: String,
    pub log: String,
    /// Where the `.vm` DNS answers (UDP and TCP).
    pub dns: String,
    /// Why the DNS is not serving, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_error: Option<String>,
    pub state_dir: String,
    /// Idle TAP devices ready for the next create, and how many are kept.
    #[serde(default)]
    pub tap_pool_idle: usize,
    #[serde(default)]
    pub tap_pool_size: usize,
    /// The VMM new VMs get with the current config.
    pub vmm: VmmKind,
    pub accel: String,
}

/// Parses a size like `16G`, `512M`, `1.5G`, `1024K` or a plain byte count.
/// Units are binary (K = 1024).
pub fn parse_size(input: &str) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::invalid(format!("cannot parse size {input:?}"))
            .with_hint("use a number with an optional unit K, M, G or T (binary), e.g. 8G or 512M")
    };
    let s = input.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], s[i..].to_ascii_uppercase()),
        None => (s, String::new()),
    };
    let multiplier: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(bad());
    }
    let bytes = value * multiplier as f64;
    if bytes > (1u64 << 50) as f64 {
        return Err(
            ApiError::invalid(format!("size {input:?} is absurdly large"))
                .with_hint("sizes up to 1P are accepted"),
        );
    }
    Ok(bytes as u64)
}

/// Formats bytes the way [`parse_size`] reads them, e.g. `8G`, `512M`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes.is_multiple_of(size) {
                format!("{}{unit}", bytes / size)
            } else {
                format!("{value:.1}{unit}")
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_sizes() {
        assert_eq!(parse_size("16G").unwrap(), 16 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
    }

    #[test]
    fn rejects_sizes_that_do_not_parse() {
        for bad in ["", "G", "12Q", "-1G", "0", "abc", "1e400G", "99999999T"] {
            let err = parse_size(bad).unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn formats_sizes_round_trip() {
        for s in ["8G", "512M", "1T", "3K"] {
            assert_eq!(format_size(parse_size(s).unwrap()), s);
        }
    }

    #[test]
    fn vm_state_round_trips_through_strings() {
        for s in ["creating", "starting", "running", "stopping", "stopped"] {
            assert_eq!(VmState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(VmState::parse("exploded"), None);
    }
}
