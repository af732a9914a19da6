//! The configuration sequence of one boot, in the order Firecracker needs:
//! its own outputs first (so the rest is logged), then the machine, boot
//! source, drives, network and vsock, then InstanceStart.

use banger_api::files::VmFiles;
use banger_api::VmmKind;

use super::client::{FirecrackerClient, FirecrackerError};
use super::models::{
    ActionType, BootSource, CacheType, Drive, InstanceActionInfo, LogLevel, Logger,
    MachineConfiguration, Metrics, NetworkInterface, SerialDevice, Vsock,
};
use crate::{VmSpec, GUEST_CID};

/// The logger and the metrics: the only resources a process that will
/// load a snapshot may configure first.
pub(super) async fn outputs(
    client: &FirecrackerClient,
    files: &VmFiles,
) -> Result<(), FirecrackerError> {
    client
        .put_logger(&Logger {
            log_path: files.vmm_log(VmmKind::Firecracker).display().to_string(),
            level: LogLevel::Info,
            show_level: true,
        })
        .await?;
    client
        .put_metrics(&Metrics {
            metrics_path: files.metrics().display().to_string(),
        })
        .await
}

/// A path as this boot's Firecracker is given it: relative to the VM's
/// directory (its working directory) when inside it. A snapshot records
/// the paths it was given, so a state restored in another VM's directory
/// (a clone) opens that VM's disks and console, not the source's.
fn in_vm_dir(spec: &VmSpec, path: &std::path::Path) -> String {
    path.strip_prefix(&spec.dir)
        .unwrap_or(path)
        .display()
        .to_string()
}

pub(super) async fn run(client: &FirecrackerClient, spec: &VmSpec) -> Result<(), FirecrackerError> {
    let files = spec.files();
    let path = |p: std::path::PathBuf| in_vm_dir(spec, &p);
    outputs(client, &files).await?;
    // The guest console in a file of its own, not mixed into stdout.
    client
        .put_serial(&SerialDevice {
            serial_out_path: path(files.console()),
        })
        .await?;
    client
        .put_machine_config(&MachineConfiguration {
            vcpu_count: spec.vcpu,
            mem_size_mib: spec.memory_mib,
            smt: Some(false),
        })
        .await?;
    client
        .put_boot_source(&BootSource {
            kernel_image_path: path(spec.kernel.clone()),
            initrd_path: Some(path(spec.initrd.clone())),
            // Firecracker's default boot args disable the serial console.
            boot_args: Some(format!("{} reboot=k panic=1", spec.cmdline)),
        })
        .await?;
    for drive in &spec.drives {
        client
            .put_drive(&Drive {
                drive_id: drive.id.clone(),
                path_on_host: Some(path(drive.path.clone())),
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
    // Firecracker binds the socket at this request and refuses an existing
    // path ("Address already in use"): a previous boot's socket goes first.
    let vsock = files.vsock();
    let _ = std::fs::remove_file(&vsock);
    client
        .put_vsock(&Vsock {
            guest_cid: GUEST_CID,
            uds_path: path(vsock),
        })
        .await?;
    client
        .put_action(&InstanceActionInfo {
            action_type: ActionType::InstanceStart,
        })
        .await
}
