//! The Firecracker driver: launches `firecracker --api-sock`, then configures
//! and starts the microVM through its HTTP API. Each VM directory holds what
//! Firecracker writes: its logger (`firecracker.log`), its metrics
//! (`metrics.json`), the guest's serial console (`console.log`) and, for
//! what it prints before the logger exists or as it dies, `firecracker.out`.

mod client;
mod configure;
pub mod metrics;
pub mod models;
mod snapshot;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use banger_api::{Accel, VmmKind, VmmMetrics, VmmStatus};
use banger_host::process::{self, ProcessId};

pub use client::{FirecrackerClient, FirecrackerError};
use models::{ActionType, InstanceActionInfo, PartialDrive};

use crate::{rotate, tail_summary, wait_for_socket, Result, Role, VmFiles, VmSpec, Vmm, VmmError};

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

    fn client(dir: &Path) -> FirecrackerClient {
        FirecrackerClient::new(Self::api_socket(dir))
    }
}

/// Why Firecracker stopped, from its own words: the errors and warnings of
/// its logger (where `KVM_EXIT_INTERNAL_ERROR` is said), else the tail of
/// what it printed.
pub fn log_summary(dir: &Path) -> String {
    let files = VmFiles::new(dir);
    let logged = std::fs::read_to_string(files.vmm_log(VmmKind::Firecracker)).unwrap_or_default();
    let serious: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains(":ERROR]") || l.contains(":WARN]"))
        .collect();
    if serious.is_empty() {
        return tail_summary(&files.firecracker_output(), 3);
    }
    let start = serious.len().saturating_sub(3);
    serious[start..].join(" | ")
}

impl Firecracker {
    /// Starts a Firecracker process for the VM and hands its API to `setup`
    /// (a boot's configuration or a snapshot load). On error the process is
    /// gone again.
    async fn start<F, Fut>(
        &self,
        spec: &VmSpec,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
        setup: F,
    ) -> Result<ProcessId>
    where
        F: FnOnce(FirecrackerClient) -> Fut + Send,
        Fut: std::future::Future<Output = Result<()>> + Send,
    {
        let files = spec.files();
        let socket = Self::api_socket(&spec.dir);
        let out = files.firecracker_output();
        let _ = std::fs::remove_file(&socket);
        // Each boot's logs start empty; the previous boot's stay as `.1`.
        rotate(&files.vmm_log(VmmKind::Firecracker));
        rotate(&files.console());
        rotate(&out);
        let _ = std::fs::remove_file(files.metrics());
        let args = vec![
            "--api-sock".to_string(),
            socket.display().to_string(),
            "--id".to_string(),
            spec.id.clone(),
        ];
        let proc = process::spawn_detached(&self.binary, &args, &out, &spec.dir)?;
        spawned(Role::Vmm, proc);
        let result = async {
            wait_for_socket(&socket, proc, Duration::from_secs(5), &out).await?;
            setup(FirecrackerClient::new(socket.clone())).await
        }
        .await;
        if let Err(err) = result {
            let _ = process::terminate(proc, Duration::from_secs(2)).await;
            let _ = std::fs::remove_file(&socket);
            return Err(err);
        }
        Ok(proc)
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
        self.start(spec, spawned, |client| async move {
            configure::run(&client, spec)
                .await
                .map_err(|source| VmmError::Configure {
                    source,
                    log: log_summary(&spec.dir),
                })
        })
        .await
    }

    async fn save(&self, dir: &Path, into: &Path) -> Result<()> {
        snapshot::save(&Self::client(dir), into).await
    }

    async fn unpause(&self, dir: &Path) -> Result<()> {
        snapshot::unpause(&Self::client(dir)).await
    }

    async fn restore(
        &self,
        spec: &VmSpec,
        from: &Path,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId> {
        self.start(spec, spawned, |client| async move {
            snapshot::load(&client, spec, from).await
        })
        .await
    }

    async fn grow_disk(&self, dir: &Path, drive: &str, path: &Path, bytes: u64) -> Result<()> {
        let failed = |reason: String| VmmError::Grow {
            drive: drive.to_string(),
            reason,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(bytes))
            .map_err(|e| failed(format!("cannot grow {}: {e}", path.display())))?;
        // Naming the same file again makes Firecracker read its size and
        // tell the guest (a virtio config change). Relative to the VM's
        // directory, as at boot: a later snapshot records this path, and a
        // clone restored from it must open its own copy, not this one.
        let relative = path.strip_prefix(dir).unwrap_or(path);
        Self::client(dir)
            .patch_drive(&PartialDrive {
                drive_id: drive.to_string(),
                path_on_host: Some(relative.display().to_string()),
            })
            .await
            .map_err(|e| failed(e.to_string()))
    }

    async fn request_shutdown(&self, dir: &Path, _process: ProcessId) -> Result<()> {
        // On x86 a guest `poweroff` does not end Firecracker; a reboot does
        // (the guest runs with reboot=k), and Ctrl-Alt-Del asks for one.
        Self::client(dir)
            .put_action(&InstanceActionInfo {
                action_type: ActionType::SendCtrlAltDel,
            })
            .await
            .map_err(|e| VmmError::Shutdown(Box::new(e)))
    }

    async fn status(&self, dir: &Path) -> Result<VmmStatus> {
        let client = Self::client(dir);
        let query = |e: FirecrackerError| VmmError::Query(Box::new(e));
        let info = client.instance_info().await.map_err(query)?;
        let machine = client.vm_config().await.map_err(query)?.machine_config;
        Ok(VmmStatus {
            vmm: VmmKind::Firecracker,
            version: info.vmm_version,
            state: info.state,
            vcpu: machine.as_ref().map(|m| m.vcpu_count),
            memory_mib: machine.map(|m| m.mem_size_mib),
        })
    }

    async fn metrics(&self, dir: &Path) -> Result<Option<VmmMetrics>> {
        // Firecracker flushes by itself once a minute; flush now so the
        // figures are current. A microVM that has not started refuses it,
        // and then what the file holds is all there is.
        let flushed = Self::client(dir)
            .put_action(&InstanceActionInfo {
                action_type: ActionType::FlushMetrics,
            })
            .await;
        if let Err(e) = flushed {
            tracing::debug!(error = %e, "FlushMetrics refused; reading the last flush");
        }
        Ok(metrics::read(&VmFiles::new(dir).metrics()))
    }
}
