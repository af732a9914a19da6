//! The Firecracker driver: launches `firecracker --api-sock`, then configures
//! and starts the microVM through its HTTP API.

mod client;
pub mod models;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use banger_api::{Accel, VmmKind};
use banger_host::process::{self, ProcessId};

pub use client::{FirecrackerClient, FirecrackerError};
use models::{
    ActionType, BootSource, CacheType, Drive, InstanceActionInfo, MachineConfiguration,
    NetworkInterface, Vsock,
};

use crate::{
    tail_summary, wait_for_socket, Result, Role, VmFiles, VmSpec, Vmm, VmmError, GUEST_CID,
};

pub struct Firecracker {
    binary: PathBuf,
}

impl Firecracker {
    pub fn new(binary: PathBuf) -> Self {
        Firecracker { binary }
    }

    pub fn api_socket(dir: &Path) -> PathBuf {
        dir.join("firecracker.sock")
    }

    /// Firecracker's standard output: its own messages and the guest's
    /// serial console.
    pub fn log_path(dir: &Path) -> PathBuf {
        VmFiles::new(dir).console(VmmKind::Firecracker)
    }

    async fn configure(
        &self,
        client: &FirecrackerClient,
        spec: &VmSpec,
    ) -> std::result::Result<(), FirecrackerError> {
        client
            .put_machine_config(&MachineConfiguration {
                vcpu_count: spec.vcpu,
                mem_size_mib: spec.memory_mib,
                smt: Some(false),
            })
            .await?;
        client
            .put_boot_source(&BootSource {
                kernel_image_path: spec.kernel.display().to_string(),
                initrd_path: Some(spec.initrd.display().to_string()),
                // Firecracker's default boot args disable the serial console.
                boot_args: Some(format!("{} reboot=k panic=1", spec.cmdline)),
            })
            .await?;
        for drive in &spec.drives {
            client
                .put_drive(&Drive {
                    drive_id: drive.id.clone(),
                    path_on_host: Some(drive.path.display().to_string()),
                    is_root_device: false,
                    is_read_only: Some(drive.read_only),
                    // Persistent disks must not lose writes the guest flushed.
                    cache_type: Some(if drive.read_only {
                        CacheType::Unsafe
                    } else {
                        CacheType::Writeback
                    }),
                })
                .await?;
        }
        client
            .put_network_interface(&NetworkInterface {
                iface_id: "eth0".into(),
                host_dev_name: spec.tap.clone(),
                guest_mac: Some(spec.mac.to_string()),
            })
            .await?;
        // Firecracker creates the socket itself and refuses an existing
        // path: a previous boot's socket goes first.
        let vsock = spec.files().vsock();
        let _ = std::fs::remove_file(&vsock);
        client
            .put_vsock(&Vsock {
                guest_cid: GUEST_CID,
                uds_path: vsock.display().to_string(),
            })
            .await?;
        client
            .put_action(&InstanceActionInfo {
                action_type: ActionType::InstanceStart,
            })
            .await
    }
}

#[async_trait]
impl Vmm for Firecracker {
    fn kind(&self) -> VmmKind {
        VmmKind::Firecracker
    }

    fn accel(&self) -> Accel {
        Accel::Kvm
    }

    async fn launch(
        &self,
        spec: &VmSpec,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId> {
        let socket = Self::api_socket(&spec.dir);
        let log = Self::log_path(&spec.dir);
        let _ = std::fs::remove_file(&socket);
        // The serial console goes to stdout, so the log holds both
        // Firecracker's own messages and the guest console.
        let args = vec![
            "--api-sock".to_string(),
            socket.display().to_string(),
            "--id".to_string(),
            spec.id.clone(),
        ];
        let proc = process::spawn_detached(&self.binary, &args, &log, &spec.dir)?;
        spawned(Role::Vmm, proc);
        let result = async {
            wait_for_socket(&socket, proc, Duration::from_secs(5), &log).await?;
            let client = FirecrackerClient::new(socket.clone());
            self.configure(&client, spec)
                .await
                .map_err(|source| VmmError::Configure {
                    source,
                    log: tail_summary(&log, 5),
                })
        }
        .await;
        if let Err(err) = result {
            let _ = process::terminate(proc, Duration::from_secs(2)).await;
            let _ = std::fs::remove_file(&socket);
            return Err(err);
        }
        Ok(proc)
    }

    async fn request_shutdown(&self, dir: &Path, _process: ProcessId) -> Result<()> {
        // On x86 a guest `poweroff` does not end Firecracker; a reboot does
        // (the guest runs with reboot=k), and Ctrl-Alt-Del asks for one.
        FirecrackerClient::new(Self::api_socket(dir))
            .put_action(&InstanceActionInfo {
                action_type: ActionType::SendCtrlAltDel,
            })
            .await
            .map_err(|e| VmmError::Shutdown(Box::new(e)))
    }
}
