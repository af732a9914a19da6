//! Bringing a VM from stopped to running: TAP, VMM process, guest boot,
//! readiness. Used by both create and start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use banger_api::{Image, Vm, VmState};
use banger_host::process::ProcessId;
use banger_store::ResourceKind;
use banger_vmm::{DriveSpec, Role, VmSpec};

use super::ready::{wait_ready, Readiness};
use super::{monitor, Result, VmError, Vms};
use crate::crash;
use crate::journal::PENDING;
use crate::progress::Reporter;

/// Kernel command line common to every driver.
const CMDLINE: &str = "console=ttyS0 net.ifnames=0 panic=1";

/// What a driver needs to boot this VM from this image.
pub fn spec(vm: &Vm, image: &Image) -> VmSpec {
    let files = vm.files();
    VmSpec {
        id: vm.id.clone(),
        dir: files.dir.clone(),
        vcpu: vm.vcpu,
        memory_mib: vm.memory_mib,
        kernel: image.kernel.clone(),
        initrd: image.initrd.clone(),
        cmdline: CMDLINE.to_string(),
        drives: vec![
            DriveSpec {
                id: "rootfs".into(),
                path: image.rootfs.clone(),
                read_only: true,
            },
            DriveSpec {
                id: "overlay".into(),
                path: files.overlay(),
                read_only: false,
            },
            DriveSpec {
                id: "work".into(),
                path: files.work(),
                read_only: false,
            },
        ],
        tap: vm.tap.clone(),
        mac: vm.mac,
        vsock: image.agent,
        serial_agent: image.agent_serial,
    }
}

impl Vms {
    /// Boots a stopped VM and waits until it is ready. On failure, everything
    /// this boot created (process, TAP) is undone and the error returned.
    /// `since` is when the operation began, for the timings in the log.
    pub(crate) async fn boot(
        self: &Arc<Self>,
        vm: &mut Vm,
        image: &Image,
        reporter: &Reporter,
        since: Instant,
    ) -> Result<()> {
        match self.boot_inner(vm, image, reporter, since).await {
            Ok(process) => self.mark_running(vm, process),
            Err(err) => {
                reporter.say(
                    "vm.cleanup",
                    "boot failed; cleaning up the VMM process, TAP device and NAT rules",
                    None,
                );
                if let Err(cleanup) = self.release(vm).await {
                    tracing::error!(vm = %vm.name, error = %banger_api::error::chain(&cleanup), "cleanup after failed boot incomplete");
                }
                vm.pid = None;
                Err(err)
            }
        }
    }

    /// Watches a VM's VMM; when it exits without being asked to, the VM is
    /// marked stopped and what it held is released.
    pub(crate) fn watch(self: &Arc<Self>, vm_id: String, process: ProcessId) {
        let vms = self.clone();
        monitor::watch(process, async move {
            vms.vmm_exited(&vm_id, process).await;
        });
    }

    /// Journals a VMM about to start: a pending row now (a crash before its
    /// PID is known is undone by finding the processes by the VM
    /// directory), and the returned callback records each process the
    /// driver starts, helpers in rows of their own.
    pub(crate) fn recorder(
        &self,
        vm_id: &str,
    ) -> Result<impl Fn(Role, ProcessId) + Send + Sync + '_> {
        let process_row = self.journal.record(vm_id, ResourceKind::Process, PENDING)?;
        let store = &self.store;
        let vm_id = vm_id.to_string();
        Ok(move |role: Role, process: ProcessId| {
            let recorded = match role {
                Role::Vmm => store.update_resource(process_row, &process.encode()),
                Role::Helper => store
                    .record_resource(&vm_id, ResourceKind::Helper, &process.encode())
                    .map(drop),
            };
            if let Err(e) = recorded {
                tracing::error!(error = %banger_api::error::chain(&e), ?role, "cannot record a VM process");
            }
        })
    }

    async fn boot_inner(
        &self,
        vm: &mut Vm,
        image: &Image,
        reporter: &Reporter,
        since: Instant,
    ) -> Result<ProcessId> {
        for path in [&image.kernel, &image.initrd, &image.rootfs] {
            if !path.exists() {
                return Err(VmError::ImageFileMissing {
                    image: image.name.clone(),
                    path: path.clone(),
                });
            }
        }
        // Never two VMMs on the same disks: a VMM left from a stop that could
        // not finish must be dealt with first.
        if let Some(live) = self
            .journal
            .recorded_process(&vm.id)?
            .filter(|p| p.is_alive())
        {
            return Err(VmError::VmmStillRunning {
                vm: vm.name.clone(),
                pid: live.pid,
            });
        }
        let driver = self.drivers.driver(vm.vmm)?;
        // A VM being created stays `creating` until it is ready, so an
        // interrupted create is rolled back, not adopted, at the next start.
        if vm.state != VmState::Creating {
            vm.state = VmState::Starting;
            self.store.update_vm(vm)?;
        }

        // TAP, NAT and whatever else plugs in before the VMM starts.
        let prepare_started = Instant::now();
        self.caps.prepare(vm, reporter).await?;
        let prepare_ms = prepare_started.elapsed().as_secs_f64() * 1000.0;
        self.store.update_vm(vm)?;

        reporter.say(
            "vm.launch",
            format!("launching {} ({})", driver.kind(), driver.accel()),
            Some(0.83),
        );
        let spec = spec(vm, image);
        let record = self.recorder(&vm.id)?;
        let process = driver.launch(&spec, &record).await?;
        vm.pid = Some(process.pid);
        self.store.update_vm(vm)?;
        // Everything up to here is host-side work; the rest is the guest booting.
        let host_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(vm = %vm.name, host_ms, pid = process.pid, "VMM launched");
        crash::point("boot.launched");

        reporter.say(
            "vm.boot",
            format!(
                "booting the guest; waiting for its agent (or sshd on {})",
                vm.ip
            ),
            Some(0.86),
        );
        let timeout = Duration::from_secs(self.config.boot_timeout_secs);
        let readiness = Readiness::of(vm, process, timeout, image.agent);
        let agent = wait_ready(self.host.probe.as_ref(), &readiness).await?;
        crate::kernels::record_ready(self.store.clone(), spec.kernel.clone(), vm.vmm);
        self.caps.running(vm).await?;
        let ready_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(vm = %vm.name, host_ms, prepare_ms, ready_ms, boot_ms = ready_ms.saturating_sub(host_ms), agent, "guest ready");
        reporter.say("vm.ready", format!("{} is ready", vm.name), Some(1.0));
        Ok(process)
    }
}
