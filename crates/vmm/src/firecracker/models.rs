//! The request bodies of Firecracker's API that banger sends, named and
//! shaped exactly as in `firecracker-api.yaml` (definitions section).

use serde::{Deserialize, Serialize};

/// `#/definitions/MachineConfiguration`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineConfiguration {
    pub vcpu_count: u32,
    pub mem_size_mib: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smt: Option<bool>,
}

/// `#/definitions/BootSource`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootSource {
    pub kernel_image_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initrd_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_args: Option<String>,
}

/// `#/definitions/Drive` (`cache_type` enum)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheType {
    Unsafe,
    Writeback,
}

/// `#/definitions/Drive`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drive {
    pub drive_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_on_host: Option<String>,
    pub is_root_device: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_type: Option<CacheType>,
}

/// `#/definitions/PartialDrive`: what `PATCH /drives/{id}` changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialDrive {
    pub drive_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_on_host: Option<String>,
}

/// `#/definitions/NetworkInterface`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkInterface {
    pub iface_id: String,
    pub host_dev_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_mac: Option<String>,
}

/// `#/definitions/Vsock`: the guest's vsock, proxied through a Unix socket
/// (`CONNECT <port>\n` on it reaches that port in the guest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vsock {
    pub guest_cid: u32,
    pub uds_path: String,
}

/// `#/definitions/InstanceActionInfo` (`action_type` enum)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionType {
    FlushMetrics,
    InstanceStart,
    SendCtrlAltDel,
}

/// `#/definitions/InstanceActionInfo`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceActionInfo {
    pub action_type: ActionType,
}

/// `#/definitions/Logger` (`level` enum, the values banger uses)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    Warning,
    Info,
}

/// `#/definitions/Logger`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logger {
    pub log_path: String,
    pub level: LogLevel,
    pub show_level: bool,
}

/// `#/definitions/Metrics`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub metrics_path: String,
}

/// `#/definitions/SerialDevice`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SerialDevice {
    pub serial_out_path: String,
}

/// `#/definitions/InstanceInfo`: the answer to `GET /`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InstanceInfo {
    pub id: String,
    /// `Not started`, `Running` or `Paused`.
    pub state: String,
    pub vmm_version: String,
}

/// `#/definitions/FullVmConfiguration`: the answer to `GET /vm/config`,
/// the parts banger reads (the rest is ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FullVmConfiguration {
    #[serde(rename = "machine-config")]
    pub machine_config: Option<MachineConfiguration>,
}

/// `#/definitions/Vm`: the body of `PATCH /vm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmStateChange {
    pub state: VmRunState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmRunState {
    Paused,
    Resumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotType {
    Full,
    Diff,
}

/// `#/definitions/SnapshotCreateParams`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotCreateParams {
    pub mem_file_path: String,
    pub snapshot_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_type: Option<SnapshotType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryBackendType {
    File,
    Uffd,
}

/// `#/definitions/MemoryBackend`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryBackend {
    pub backend_type: MemoryBackendType,
    pub backend_path: String,
}

/// `#/definitions/NetworkOverride`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkOverride {
    pub iface_id: String,
    pub host_dev_name: String,
}

/// `#/definitions/VsockOverride`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsockOverride {
    pub uds_path: String,
}

/// `#/definitions/SnapshotLoadParams` (without the deprecated fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotLoadParams {
    pub snapshot_path: String,
    pub mem_backend: MemoryBackend,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_vm: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub network_overrides: Vec<NetworkOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vsock_override: Option<VsockOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_realtime: Option<bool>,
}

/// `#/definitions/Error`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiFault {
    #[serde(default)]
    pub fault_message: String,
}
