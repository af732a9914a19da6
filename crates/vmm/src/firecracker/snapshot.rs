//! Suspend and resume through Firecracker's snapshot API: pause, write a
//! full snapshot (device state `vmstate`, guest memory `memory`), and in a
//! fresh process load it with this boot's TAP and vsock socket and the
//! guest clock advanced by the time it was away, paused until resumed.

use std::path::Path;

use super::client::{FirecrackerClient, FirecrackerError};
use super::configure;
use super::models::{
    MemoryBackend, MemoryBackendType, NetworkOverride, SnapshotCreateParams, SnapshotLoadParams,
    SnapshotType, VmRunState, VmStateChange, VsockOverride,
};
use crate::{Result, VmSpec, VmmError};

/// The device state file of a saved guest.
pub const VMSTATE: &str = "vmstate";
/// The guest memory file of a saved guest.
pub const MEMORY: &str = "memory";

fn saving(e: FirecrackerError) -> VmmError {
    VmmError::Save {
        reason: e.to_string(),
    }
}

pub(super) async fn save(client: &FirecrackerClient, into: &Path) -> Result<()> {
    client
        .patch_vm(&VmStateChange {
            state: VmRunState::Paused,
        })
        .await
        .map_err(saving)?;
    client
        .create_snapshot(&SnapshotCreateParams {
            mem_file_path: into.join(MEMORY).display().to_string(),
            snapshot_path: into.join(VMSTATE).display().to_string(),
            snapshot_type: Some(SnapshotType::Full),
        })
        .await
        .map_err(saving)
}

pub(super) async fn unpause(client: &FirecrackerClient) -> Result<()> {
    client
        .patch_vm(&VmStateChange {
            state: VmRunState::Resumed,
        })
        .await
        .map_err(saving)
}

pub(super) async fn load(client: &FirecrackerClient, spec: &VmSpec, from: &Path) -> Result<()> {
    let files = spec.files();
    let restoring = |e: FirecrackerError| VmmError::Restore {
        reason: e.to_string(),
        log: super::log_summary(&spec.dir),
    };
    configure::outputs(client, &files)
        .await
        .map_err(restoring)?;
    // The vsock socket is bound again at load, and an existing path is refused.
    let _ = std::fs::remove_file(files.vsock());
    client
        .load_snapshot(&SnapshotLoadParams {
            snapshot_path: from.join(VMSTATE).display().to_string(),
            // Mapped privately: the file is read on demand and never written.
            mem_backend: MemoryBackend {
                backend_type: MemoryBackendType::File,
                backend_path: from.join(MEMORY).display().to_string(),
            },
            // Resumed by `unpause`, once the daemon has recorded that the
            // saved state is used up (the guest's disks move on from here).
            resume_vm: Some(false),
            network_overrides: vec![NetworkOverride {
                iface_id: "eth0".into(),
                host_dev_name: spec.tap.clone(),
            }],
            vsock_override: Some(VsockOverride {
                uds_path: files.vsock().display().to_string(),
            }),
            clock_realtime: Some(true),
        })
        .await
        .map_err(restoring)
}
