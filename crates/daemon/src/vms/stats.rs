//! `vm stats`: what a VM costs the host (VMM CPU and memory, disk blocks),
//! the counts its VMM keeps (Firecracker's metrics), and what the guest
//! reports through its agent (load, memory, disks). `vm show`'s live VMM
//! status is read here too.

use std::time::Duration;

use banger_api::{Vm, VmState, VmStats, VmmStatus};
use banger_client::agent::{self, Unusable};
use banger_host::disk::allocated_bytes;
use banger_host::process;

use super::{Result, VmError, Vms};

/// How long CPU use is sampled.
const SAMPLE: Duration = Duration::from_millis(200);

/// Why there are no guest figures, with the fix, on one line (it is a
/// field of the stats).
fn one_line(err: &Unusable) -> String {
    format!("{} ({})", banger_api::error::chain(err), err.hint())
}

impl Vms {
    pub async fn stats(&self, reference: &str) -> Result<VmStats> {
        let vm = self.resolve(reference)?;
        let files = vm.files();
        let mut stats = VmStats {
            name: vm.name.clone(),
            state: vm.state,
            pid: None,
            cpu_percent: None,
            rss_bytes: None,
            uptime_secs: None,
            overlay_used_bytes: allocated_bytes(&files.overlay()).unwrap_or(0),
            overlay_size_bytes: vm.overlay_size_bytes,
            work_used_bytes: allocated_bytes(&files.work()).unwrap_or(0),
            work_size_bytes: vm.disk_size_bytes,
            vmm_metrics: None,
            guest: None,
            guest_error: None,
        };
        // A VMM that runs (also one still booting) has host-side figures.
        let Some(proc) = self
            .journal
            .recorded_process(&vm.id)?
            .filter(|p| p.is_alive())
        else {
            return Ok(stats);
        };
        stats.pid = Some(proc.pid);
        stats.rss_bytes = process::rss_bytes(proc.pid);
        match self.drivers.driver(vm.vmm) {
            Ok(driver) => match driver.metrics(&vm.dir).await {
                Ok(metrics) => stats.vmm_metrics = metrics,
                Err(e) => {
                    tracing::warn!(vm = %vm.name, error = %banger_api::error::chain(&e), "cannot read the VMM's metrics")
                }
            },
            Err(e) => tracing::warn!(vm = %vm.name, error = %e, "no driver for the VM's VMM"),
        }
        let before = process::cpu_seconds(proc.pid);
        // Ask the guest while the CPU sample runs.
        if vm.state != VmState::Running {
            tokio::time::sleep(SAMPLE).await;
        } else if self.image_has_agent(&vm) {
            let agent = agent::for_vm_dir(&vm.dir).with_timeout(Duration::from_secs(2));
            let (guest, ()) = tokio::join!(agent.stats(), tokio::time::sleep(SAMPLE));
            match guest {
                Ok(figures) => stats.guest = Some(figures),
                Err(e) => stats.guest_error = Some(one_line(&Unusable::new(&vm.name, e))),
            }
        } else {
            stats.guest_error = Some(one_line(&not_in_image(&vm)));
            tokio::time::sleep(SAMPLE).await;
        }
        let after = process::cpu_seconds(proc.pid);
        if let (Some(a), Some(b)) = (before, after) {
            stats.cpu_percent = Some(((b - a) / SAMPLE.as_secs_f64() * 1000.0).round() / 10.0);
        }
        stats.uptime_secs = vm.started_at.and_then(|started| {
            u64::try_from((time::OffsetDateTime::now_utc() - started).whole_seconds()).ok()
        });
        Ok(stats)
    }
}

impl Vms {
    /// What the VM's VMM says of itself, asked live (`vm show`).
    pub async fn vmm_status(&self, reference: &str) -> Result<VmmStatus> {
        let vm = self.resolve(reference)?;
        let alive = self
            .journal
            .recorded_process(&vm.id)?
            .is_some_and(|p| p.is_alive());
        if !alive {
            return Err(VmError::NotRunning {
                vm: vm.name,
                state: vm.state,
                what: "only a running VMM can say what it runs",
            });
        }
        Ok(self.drivers.driver(vm.vmm)?.status(&vm.dir).await?)
    }
}

pub(crate) fn not_in_image(vm: &Vm) -> Unusable {
    Unusable::NotInImage {
        vm: vm.name.clone(),
        image: vm.image.clone(),
    }
}
