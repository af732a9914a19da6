//! The QEMU driver: `qemu-system-x86_64 -M microvm` with virtio-mmio disks and
//! network, the serial console in `console.log`, and a QMP socket for
//! graceful shutdown (ACPI power button).
//!
//! vsock: QEMU's own vhost-vsock needs the host's `/dev/vhost-vsock`; instead
//! a `vhost-device-vsock` helper per VM serves the device over vhost-user
//! and exposes the guest's vsock at `<vm dir>/vm.vsock` with Firecracker's
//! `CONNECT <port>` handshake, so one agent client works for both drivers.
//! vhost-user needs the guest memory shared with the helper: a memfd backend.

mod qmp;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use banger_api::{Accel, VmmKind, VmmMetrics, VmmStatus};
use banger_host::process::{self, ProcessId};

use crate::{
    rotate, tail_summary, wait_for_socket, Result, Role, VmFiles, VmSpec, Vmm, VmmError, GUEST_CID,
};

pub struct Qemu {
    binary: PathBuf,
    kvm: bool,
    /// `vhost-device-vsock`; without it guests boot with no vsock (no agent).
    vsock_helper: Option<PathBuf>,
}

impl Qemu {
    pub fn new(binary: PathBuf, kvm: bool, vsock_helper: Option<PathBuf>) -> Self {
        Qemu {
            binary,
            kvm,
            vsock_helper,
        }
    }

    /// The vhost-user socket between QEMU and the vsock helper.
    pub fn vhost_socket(dir: &Path) -> PathBuf {
        dir.join("vhost-vsock.sock")
    }

    pub fn helper_log_path(dir: &Path) -> PathBuf {
        dir.join("vsock.log")
    }

    /// Arguments of the vsock helper for a VM directory.
    pub fn helper_args(dir: &Path) -> Vec<String> {
        vec![
            "--guest-cid".into(),
            GUEST_CID.to_string(),
            "--socket".into(),
            Self::vhost_socket(dir).display().to_string(),
            "--uds-path".into(),
            VmFiles::new(dir).vsock().display().to_string(),
        ]
    }

    pub fn qmp_socket(dir: &Path) -> PathBuf {
        dir.join("qmp.sock")
    }

    /// QEMU's standard output and error.
    pub fn log_path(dir: &Path) -> PathBuf {
        VmFiles::new(dir).vmm_log(VmmKind::Qemu)
    }

    /// The full argument list for a spec (no shell involved). Every value
    /// inside an option string (`-drive id=..,file=PATH`) is escaped, so a
    /// path with a comma stays one path.
    pub fn args(&self, spec: &VmSpec) -> Vec<String> {
        self.args_with(spec, spec.vsock && self.vsock_helper.is_some())
    }

    fn args_with(&self, spec: &VmSpec, vsock: bool) -> Vec<String> {
        let accel = if self.kvm { "kvm" } else { "tcg" };
        let mut cmdline = spec.cmdline.clone();
        if !self.kvm {
            // microvm under TCG hangs after "TSC unstable" unless the kernel
            // is told the TSC frequency up front.
            if let Some(khz) = host_tsc_khz() {
                cmdline.push_str(&format!(" tsc_early_khz={khz}"));
            }
        }
        let mut args: Vec<String> = vec![
            "-M".into(),
            format!(
                "microvm,accel={accel},acpi=on,pit=on,pic=on,rtc=on{}",
                if vsock { ",memory-backend=mem" } else { "" }
            ),
            "-cpu".into(),
            if self.kvm {
                "host".into()
            } else {
                "max".into()
            },
            "-smp".into(),
            spec.vcpu.to_string(),
            "-m".into(),
            format!("{}M", spec.memory_mib),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            // A guest reboot ends the process, as with Firecracker.
            "-no-reboot".into(),
            "-kernel".into(),
            spec.kernel.display().to_string(),
            "-initrd".into(),
            spec.initrd.display().to_string(),
            "-append".into(),
            cmdline,
            "-chardev".into(),
            format!(
                "file,id=console,path={},append=on",
                opt(&spec.files().console())
            ),
            "-serial".into(),
            "chardev:console".into(),
            "-qmp".into(),
            format!(
                "unix:{},server=on,wait=off",
                opt(&Self::qmp_socket(&spec.dir))
            ),
        ];
        for drive in &spec.drives {
            let ro = if drive.read_only { ",readonly=on" } else { "" };
            args.push("-drive".into());
            args.push(format!(
                "id={},file={},format=raw,if=none,cache=writeback{ro}",
                opt(&drive.id),
                opt(&drive.path)
            ));
            args.push("-device".into());
            args.push(format!("virtio-blk-device,drive={}", opt(&drive.id)));
        }
        args.push("-netdev".into());
        args.push(format!(
            "tap,id=net0,ifname={},script=no,downscript=no",
            opt(&spec.tap)
        ));
        args.push("-device".into());
        args.push(format!("virtio-net-device,netdev=net0,mac={}", spec.mac));
        if vsock {
            args.extend([
                "-object".into(),
                format!(
                    "memory-backend-memfd,id=mem,size={}M,share=on",
                    spec.memory_mib
                ),
                "-chardev".into(),
                format!(
                    "socket,id=vsock,path={}",
                    opt(&Self::vhost_socket(&spec.dir))
                ),
                "-device".into(),
                "vhost-user-vsock-device,chardev=vsock".into(),
            ]);
        }
        args
    }

    /// Starts the vsock helper and waits until its vhost-user socket exists
    /// (connecting to probe it would count as QEMU's one connection).
    async fn start_helper(
        helper: &Path,
        spec: &VmSpec,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId> {
        let socket = Self::vhost_socket(&spec.dir);
        let log = Self::helper_log_path(&spec.dir);
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(spec.files().vsock());
        let proc = process::spawn_detached(helper, &Self::helper_args(&spec.dir), &log, &spec.dir)?;
        spawned(Role::Helper, proc);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            if !proc.is_alive() || tokio::time::Instant::now() >= deadline {
                let _ = process::terminate(proc, Duration::from_secs(2)).await;
                return Err(VmmError::Helper {
                    helper: helper.to_path_buf(),
                    log: tail_summary(&log, 5),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(proc)
    }

    /// Starts the vsock helper when the guest has the device, then QEMU
    /// (reading a saved guest from `incoming` when given), and waits for
    /// its QMP socket. On error nothing of it is left running.
    async fn start(
        &self,
        spec: &VmSpec,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
        vsock: bool,
        incoming: Option<String>,
    ) -> Result<ProcessId> {
        let helper = match (&self.vsock_helper, vsock) {
            (Some(path), true) => Some(Self::start_helper(path, spec, spawned).await?),
            _ => None,
        };
        let stop_helper = || async {
            if let Some(helper) = helper {
                let _ = process::terminate(helper, Duration::from_secs(2)).await;
            }
        };
        let socket = Self::qmp_socket(&spec.dir);
        let log = Self::log_path(&spec.dir);
        let _ = std::fs::remove_file(&socket);
        if helper.is_none() {
            // Sockets left from a run with the helper would look like a
            // vsock channel (and device) this guest does not have.
            let _ = std::fs::remove_file(spec.files().vsock());
            let _ = std::fs::remove_file(Self::vhost_socket(&spec.dir));
        }
        let mut args = self.args_with(spec, vsock);
        if let Some(uri) = incoming {
            // Paused once loaded: the daemon lets it run after recording
            // that the state is used up.
            args.extend(["-S".to_string(), "-incoming".to_string(), uri]);
        }
        let proc = match process::spawn_detached(&self.binary, &args, &log, &spec.dir) {
            Ok(proc) => proc,
            Err(err) => {
                stop_helper().await;
                return Err(err.into());
            }
        };
        spawned(Role::Vmm, proc);
        if let Err(err) = wait_for_socket(&socket, proc, Duration::from_secs(10), &log).await {
            let _ = process::terminate(proc, Duration::from_secs(2)).await;
            stop_helper().await;
            let _ = std::fs::remove_file(&socket);
            return Err(err);
        }
        Ok(proc)
    }
}

/// A value for a QEMU option string (`key=value,key=value`): QEMU reads
/// `,,` as a literal comma, so commas are doubled and nothing in the value
/// can end it or add an option.
fn opt(value: &(impl AsRef<std::ffi::OsStr> + ?Sized)) -> String {
    value.as_ref().to_string_lossy().replace(',', ",,")
}

/// The host TSC frequency in kHz, from /proc/cpuinfo.
fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    // A CPU frequency in kHz fits easily.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((mhz * 1000.0).round() as u64)
}

#[async_trait]
impl Vmm for Qemu {
    fn kind(&self) -> VmmKind {
        VmmKind::Qemu
    }

    fn accel(&self) -> Accel {
        if self.kvm {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }

    async fn launch(
        &self,
        spec: &VmSpec,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId> {
        // Each boot's console starts empty; the previous boot's stays as `.1`.
        rotate(&spec.files().console());
        self.start(
            spec,
            spawned,
            spec.vsock && self.vsock_helper.is_some(),
            None,
        )
        .await
    }

    async fn save(&self, dir: &Path, into: &Path) -> Result<()> {
        let devices = snapshot::Devices {
            vsock: Self::vhost_socket(dir).exists(),
        };
        snapshot::save(&Self::qmp_socket(dir), into, devices).await
    }

    async fn unpause(&self, dir: &Path) -> Result<()> {
        // A migration still under way (a save abandoned by a crash) would
        // leave the guest stopped behind a `cont`.
        let _ = qmp::execute(&Self::qmp_socket(dir), "migrate_cancel").await;
        qmp::execute(&Self::qmp_socket(dir), "cont")
            .await
            .map_err(|e| VmmError::Save {
                reason: e.to_string(),
            })
    }

    async fn restore(
        &self,
        spec: &VmSpec,
        from: &Path,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId> {
        let devices = snapshot::devices(from)?;
        if devices.vsock && self.vsock_helper.is_none() {
            return Err(VmmError::Restore {
                reason:
                    "the guest was saved with a vsock device and no vsock helper is configured now"
                        .into(),
                log: String::new(),
            });
        }
        let proc = self
            .start(
                spec,
                spawned,
                devices.vsock,
                Some(snapshot::incoming_uri(from)),
            )
            .await?;
        let log = Self::log_path(&spec.dir);
        if let Err(err) = snapshot::wait_loaded(&Self::qmp_socket(&spec.dir), proc, &log).await {
            let _ = process::terminate(proc, Duration::from_secs(2)).await;
            return Err(err);
        }
        Ok(proc)
    }

    async fn request_shutdown(&self, dir: &Path, _process: ProcessId) -> Result<()> {
        qmp::execute(&Self::qmp_socket(dir), "system_powerdown")
            .await
            .map_err(|e| VmmError::Shutdown(Box::new(e)))
    }

    async fn status(&self, dir: &Path) -> Result<VmmStatus> {
        let answers = qmp::query(
            &Self::qmp_socket(dir),
            &[
                "query-status",
                "query-version",
                "query-cpus-fast",
                "query-memory-size-summary",
            ],
        )
        .await
        .map_err(|e| VmmError::Query(Box::new(e)))?;
        let [status, version, cpus, memory] = answers.as_slice() else {
            return Err(VmmError::Query(
                "QMP answered fewer commands than asked".into(),
            ));
        };
        let q = &version["qemu"];
        Ok(VmmStatus {
            vmm: VmmKind::Qemu,
            version: format!("{}.{}.{}", q["major"], q["minor"], q["micro"]),
            state: status["status"].as_str().unwrap_or("unknown").to_string(),
            vcpu: cpus.as_array().and_then(|c| u32::try_from(c.len()).ok()),
            memory_mib: memory["base-memory"]
                .as_u64()
                .and_then(|bytes| u32::try_from(bytes >> 20).ok()),
        })
    }

    async fn metrics(&self, _dir: &Path) -> Result<Option<VmmMetrics>> {
        // QEMU keeps no per-guest exit or device counters over QMP that
        // would mean the same as Firecracker's.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DriveSpec;

    #[test]
    fn a_comma_in_a_path_stays_in_the_path() {
        let qemu = Qemu::new(
            "qemu-system-x86_64".into(),
            false,
            Some("vhost-device-vsock".into()),
        );
        let spec = VmSpec {
            id: "ab".into(),
            dir: "/state/vms,x/ab".into(),
            vcpu: 2,
            memory_mib: 1024,
            kernel: "/img,v2/vmlinux".into(),
            initrd: "/img,v2/initrd.img".into(),
            cmdline: "console=ttyS0".into(),
            drives: vec![DriveSpec {
                id: "rootfs".into(),
                path: "/data/img,v2/rootfs.ext4,readonly=off".into(),
                read_only: true,
            }],
            tap: "bg-ab".into(),
            mac: "52:54:00:00:00:ab".parse().unwrap(),
            vsock: true,
        };
        let args = qemu.args(&spec);
        let drive = args.iter().find(|a| a.starts_with("id=rootfs,")).unwrap();
        assert_eq!(
            drive,
            "id=rootfs,file=/data/img,,v2/rootfs.ext4,,readonly=off,format=raw,if=none,cache=writeback,readonly=on"
        );
        let console = args
            .iter()
            .find(|a| a.starts_with("file,id=console"))
            .unwrap();
        assert!(
            console.contains("path=/state/vms,,x/ab/console.log,"),
            "{console}"
        );
        assert!(args
            .iter()
            .any(|a| a.contains("path=/state/vms,,x/ab/vhost-vsock.sock")));
        // Plain arguments (not option strings) are passed as they are.
        assert!(args.iter().any(|a| a == "/img,v2/vmlinux"));
    }
}
