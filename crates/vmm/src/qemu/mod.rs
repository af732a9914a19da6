//! The QEMU driver: `qemu-system-x86_64 -M microvm` with virtio-mmio disks and
//! network, the serial console in `console.log`, and a QMP socket for
//! graceful shutdown (ACPI power button).
//!
//! The agent channel, one of two, served at `<vm dir>/vm.vsock` with
//! Firecracker's `CONNECT <port>` handshake either way, so one agent client
//! works for both drivers:
//! - serial (images whose agent speaks it): a virtio-serial port whose
//!   chardev `banger-relay` connects to; it can be migrated, so the guest
//!   can be suspended and cloned;
//! - vsock (older images): QEMU's own vhost-vsock needs the host's
//!   `/dev/vhost-vsock`, so a `vhost-device-vsock` helper per VM serves the
//!   device over vhost-user (with the guest memory shared with it: a memfd
//!   backend). QEMU cannot migrate it.

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
    /// `vhost-device-vsock`, for agents that only speak vsock.
    vsock_helper: Option<PathBuf>,
    /// `banger-relay`, the host end of the serial channel.
    relay: Option<PathBuf>,
}

/// How a guest's agent is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    None,
    Vsock,
    Serial,
}

impl Qemu {
    pub fn new(binary: PathBuf, kvm: bool, vsock_helper: Option<PathBuf>) -> Self {
        Qemu {
            binary,
            kvm,
            vsock_helper,
            relay: None,
        }
    }

    /// Serial channels through `relay` for images whose agent speaks it.
    pub fn with_relay(mut self, relay: Option<PathBuf>) -> Self {
        self.relay = relay;
        self
    }

    /// The serial channel where the agent and this host both have it (it
    /// can be saved), else vsock where the helper is there, else none.
    fn channel(&self, spec: &VmSpec) -> Channel {
        match (spec.vsock, spec.serial_agent && self.relay.is_some()) {
            (false, _) => Channel::None,
            (true, true) => Channel::Serial,
            (true, false) if self.vsock_helper.is_some() => Channel::Vsock,
            (true, false) => Channel::None,
        }
    }

    /// The chardev socket QEMU serves for the agent's serial port.
    pub fn agent_socket(dir: &Path) -> PathBuf {
        dir.join("agent.sock")
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
        self.args_with(spec, self.channel(spec))
    }

    fn args_with(&self, spec: &VmSpec, channel: Channel) -> Vec<String> {
        let accel = if self.kvm { "kvm" } else { "tcg" };
        let vsock = channel == Channel::Vsock;
        let mut cmdline = spec.cmdline.clone();
        if channel == Channel::Serial {
            cmdline.push(' ');
            cmdline.push_str(banger_api::agent::SERIAL_FLAG);
        }
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
        if channel == Channel::Serial {
            args.extend([
                "-device".into(),
                "virtio-serial-device,id=agentbus,max_ports=2".into(),
                "-chardev".into(),
                format!(
                    "socket,id=agent,path={},server=on,wait=off",
                    opt(&Self::agent_socket(&spec.dir))
                ),
                "-device".into(),
                format!(
                    "virtserialport,bus=agentbus.0,chardev=agent,name={}",
                    banger_api::agent::SERIAL_PORT_NAME
                ),
            ]);
        }
        args
    }

    /// Starts the relay once QEMU serves the port's chardev, and waits for
    /// the VM's vsock socket it listens on.
    async fn start_relay(
        relay: &Path,
        spec: &VmSpec,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId> {
        let listen = spec.files().vsock();
        let log = Self::helper_log_path(&spec.dir);
        let args = vec![
            "--serial".to_string(),
            Self::agent_socket(&spec.dir).display().to_string(),
            "--listen".to_string(),
            listen.display().to_string(),
        ];
        let proc = process::spawn_detached(relay, &args, &log, &spec.dir)?;
        spawned(Role::Helper, proc);
        if let Err(err) = wait_for_socket(&listen, proc, Duration::from_secs(5), &log).await {
            let _ = process::terminate(proc, Duration::from_secs(2)).await;
            return Err(match err {
                VmmError::ExitedAtStart { .. } | VmmError::NoSocket { .. } => VmmError::Helper {
                    helper: relay.to_path_buf(),
                    log: tail_summary(&log, 5),
                },
                other => other,
            });
        }
        Ok(proc)
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
    /// (reading a saved guest from `incoming` when given), waits for its
    /// QMP socket, then starts the relay when the guest has the serial
    /// channel. On error nothing of it is left running.
    async fn start(
        &self,
        spec: &VmSpec,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
        channel: Channel,
        incoming: Option<String>,
    ) -> Result<ProcessId> {
        let helper = match (&self.vsock_helper, channel) {
            (Some(path), Channel::Vsock) => Some(Self::start_helper(path, spec, spawned).await?),
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
        // Sockets left from a run with another channel would look like a
        // channel (and device) this guest does not have.
        if channel != Channel::Vsock {
            let _ = std::fs::remove_file(spec.files().vsock());
            let _ = std::fs::remove_file(Self::vhost_socket(&spec.dir));
        }
        let _ = std::fs::remove_file(Self::agent_socket(&spec.dir));
        let mut args = self.args_with(spec, channel);
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
        if let (Some(relay), Channel::Serial) = (&self.relay, channel) {
            if let Err(err) = Self::start_relay(relay, spec, spawned).await {
                let _ = process::terminate(proc, Duration::from_secs(2)).await;
                return Err(err);
            }
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
        self.start(spec, spawned, self.channel(spec), None).await
    }

    async fn save(&self, dir: &Path, into: &Path) -> Result<()> {
        let devices = snapshot::Devices {
            vsock: Self::vhost_socket(dir).exists(),
            serial: Self::agent_socket(dir).exists(),
        };
        snapshot::save(&Self::qmp_socket(dir), into, devices).await
    }

    async fn unpause(&self, dir: &Path) -> Result<()> {
        // A migration still under way (a save abandoned by a crash) would
        // leave the guest stopped behind a `cont`.
        snapshot::settle(&Self::qmp_socket(dir)).await;
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
        let missing = if devices.vsock && self.vsock_helper.is_none() {
            Some("a vsock device and no vsock helper is configured now")
        } else if devices.serial && self.relay.is_none() {
            Some("its agent's serial port and banger-relay is not found now")
        } else {
            None
        };
        if let Some(missing) = missing {
            return Err(VmmError::Restore {
                reason: format!("the guest was saved with {missing}"),
                log: String::new(),
            });
        }
        // Exactly the devices it was saved with.
        let channel = match (devices.vsock, devices.serial) {
            (true, _) => Channel::Vsock,
            (false, true) => Channel::Serial,
            (false, false) => Channel::None,
        };
        let proc = self
            .start(spec, spawned, channel, Some(snapshot::incoming_uri(from)))
            .await?;
        let log = Self::log_path(&spec.dir);
        if let Err(err) = snapshot::wait_loaded(&Self::qmp_socket(&spec.dir), proc, &log).await {
            let _ = process::terminate(proc, Duration::from_secs(2)).await;
            return Err(err);
        }
        Ok(proc)
    }

    async fn grow_disk(&self, dir: &Path, drive: &str, _path: &Path, bytes: u64) -> Result<()> {
        // QEMU grows the raw file itself and tells the guest's virtio-blk.
        qmp::call(
            &Self::qmp_socket(dir),
            "block_resize",
            serde_json::json!({ "device": drive, "size": bytes }),
        )
        .await
        .map(drop)
        .map_err(|e| VmmError::Grow {
            drive: drive.to_string(),
            reason: e.to_string(),
        })
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
            serial_agent: false,
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
