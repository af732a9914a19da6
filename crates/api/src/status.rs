//! What the daemon reports about VMs (stats, ports) and about itself
//! (status, doctor).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Accel, VmState, VmmKind};

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
    /// Counts the VMM itself keeps (Firecracker's metrics), since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmm_metrics: Option<VmmMetrics>,
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
    pub socket: PathBuf,
    pub log: PathBuf,
    /// Where the `.vm` DNS answers (UDP and TCP).
    pub dns: String,
    /// Why the DNS is not serving, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_error: Option<String>,
    pub state_dir: PathBuf,
    /// Idle TAP devices ready for the next create, and how many are kept.
    #[serde(default)]
    pub tap_pool_idle: usize,
    #[serde(default)]
    pub tap_pool_size: usize,
    /// The VMM new VMs get with the current config.
    pub vmm: VmmKind,
    pub accel: Accel,
    /// Built with crash injection (`crash-points`, for the test suite only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crash_points: bool,
    /// Who makes the host's network changes for this daemon.
    #[serde(default)]
    pub network: NetworkAuthority,
}

/// Who performs the daemon's bridge, TAP and NAT changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum NetworkAuthority {
    /// The daemon runs as root and makes them itself.
    #[default]
    Root,
    /// The daemon runs as a user; the root helper makes them.
    Helper {
        socket: PathBuf,
        /// The helper's version, when it answered at daemon start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// Why it did not answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// What a VM's VMM says of itself, read from it live (`vm show`): not a
/// copy banger keeps, so it cannot drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmmStatus {
    pub vmm: VmmKind,
    /// The VMM's own version (`1.16.1`, `8.2.0`).
    pub version: String,
    /// The VMM's own word for the guest's state (Firecracker: `Running`,
    /// `Paused`, `Not started`; QEMU: `running`, `paused`, ...).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
}

/// Counts a VMM keeps for its guest since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmmMetrics {
    /// vCPU exits to the VMM (I/O port and MMIO reads and writes).
    pub vcpu_exits: u64,
    /// vCPU runs that failed (the VMM stops the guest on one).
    pub vcpu_failures: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    /// Bytes the guest wrote to its serial console.
    pub console_bytes: u64,
}

/// One readiness check of `banger doctor`, run by the daemon with its own
/// privileges and paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    /// One line: what was found.
    pub detail: String,
    /// What to do about it, for warn and fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

/// Whether any check failed.
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == CheckStatus::Fail)
}
