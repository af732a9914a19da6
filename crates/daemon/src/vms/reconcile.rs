//! At daemon start, make recorded state true again: VMs whose VMM still
//! runs are adopted (a daemon restart never kills a VM), VMs whose VMM is
//! gone are marked stopped and their runtime resources released, creates
//! that were interrupted are rolled back, and resources nobody owns are
//! removed. Then every capability makes the host match.

use std::path::Path;
use std::sync::Arc;

use banger_api::{Vm, VmState};
use banger_store::ResourceKind;

use super::{saved, Result, Vms};

impl Vms {
    pub async fn reconcile(self: &Arc<Self>) -> Result<()> {
        let vms = self.store.list_vms()?;
        let (partial_templates, template_vms) = self.partial_templates();
        // One VM or resource that cannot be cleaned must not keep the daemon
        // from starting: log it, leave it in the journal for the next pass.
        for vm in vms.clone() {
            let name = vm.name.clone();
            if template_vms.contains(&name) {
                tracing::warn!(vm = %name, "removing the template VM of an interrupted image warm");
                let _guard = self.lock(&vm.id).await;
                self.rollback(&vm).await;
                continue;
            }
            if let Err(err) = self.reconcile_vm(vm).await {
                tracing::error!(vm = %name, error = %banger_api::error::chain(&err), "reconcile incomplete; retried at the next start");
            }
        }
        // Resources whose VM row is gone (a crash in the middle of a delete),
        // and idle pool TAPs of the previous daemon (the pool is refilled fresh).
        for resource in self.store.all_resources()? {
            if !vms.iter().any(|vm| vm.id == resource.vm_id) {
                tracing::warn!(vm = %resource.vm_id, kind = ?resource.kind, value = %resource.value, "removing orphan resource");
                let dir = (resource.kind == ResourceKind::Dir).then(|| Path::new(&resource.value));
                if let Err(err) = self.journal.undo(&resource, dir).await {
                    tracing::error!(value = %resource.value, error = %banger_api::error::chain(&err), "cannot remove orphan resource; retried at the next start");
                }
            }
        }
        self.forget_partial_templates(&partial_templates);
        self.remove_stale_builds();
        // States are true now: let every capability make the host match them.
        let vms = self.store.list_vms()?;
        self.write_ssh_config();
        self.caps.reconcile(&vms).await;
        Ok(())
    }

    async fn reconcile_vm(self: &Arc<Self>, mut vm: Vm) -> Result<()> {
        if vm.state == VmState::Creating {
            tracing::warn!(vm = %vm.name, "rolling back a create that was interrupted");
            self.rollback(&vm).await;
            return Ok(());
        }
        if matches!(
            vm.state,
            VmState::Suspending | VmState::Suspended | VmState::Resuming
        ) {
            if self.reconcile_saved(&mut vm).await? {
                return Ok(());
            }
        } else {
            // A VM that is neither suspended nor on its way: any saved
            // state in its directory is stale and must never be loaded.
            saved::discard(&vm.files())?;
        }
        match self
            .journal
            .recorded_process(&vm.id)?
            .filter(|p| p.is_alive())
        {
            Some(process) => {
                tracing::info!(vm = %vm.name, pid = process.pid, "adopting running VM");
                if vm.state == VmState::Running {
                    self.unpause_if_paused(&vm).await;
                }
                if vm.state != VmState::Running {
                    // A start interrupted after launch: it is running now.
                    vm.started_at = Some(time::OffsetDateTime::now_utc());
                }
                vm.state = VmState::Running;
                vm.pid = Some(process.pid);
                vm.stop_reason = None;
                self.store.update_vm(&vm)?;
                self.watch(vm.id.clone(), process);
            }
            None => {
                self.release(&vm).await?;
                if vm.state != VmState::Stopped {
                    tracing::warn!(vm = %vm.name, "VMM not running at daemon start; marking stopped");
                    vm.state = VmState::Stopped;
                    vm.pid = None;
                    vm.stop_reason = Some(
                        "the VMM was not running when bangerd started (host reboot, or a crash while the daemon was down)".into(),
                    );
                    self.store.update_vm(&vm)?;
                }
            }
        }
        Ok(())
    }

    /// A running VM is paused only while a clone copies it: one left paused
    /// by a daemon that stopped then runs on.
    async fn unpause_if_paused(&self, vm: &Vm) {
        let Ok(driver) = self.drivers.driver(vm.vmm) else {
            return;
        };
        let paused = driver.status(&vm.dir).await.is_ok_and(|s| {
            ["paused", "postmigrate", "finish-migrate"]
                .iter()
                .any(|p| s.state.eq_ignore_ascii_case(p))
        });
        if paused {
            tracing::warn!(vm = %vm.name, "the VM was left paused (a clone interrupted); letting it run");
            if let Err(e) = driver.unpause(&vm.dir).await {
                tracing::warn!(vm = %vm.name, error = %banger_api::error::chain(&e), "cannot unpause the adopted guest");
            }
        }
    }

    /// A suspend or resume the daemon did not see to its end, or a
    /// suspended VM: settles it as suspended (returns true) when a whole,
    /// unused saved state exists, or leaves it to the running/stopped pass
    /// (false) with what is left of the state removed. A saved state is
    /// never resumed twice: once renamed `saved.used` its guest may have run.
    async fn reconcile_saved(&self, vm: &mut Vm) -> Result<bool> {
        let files = vm.files();
        saved::remove(&files.saved_partial());
        let whole = saved::Manifest::read(&files.saved()).is_ok();
        let live = self
            .journal
            .recorded_process(&vm.id)?
            .filter(|p| p.is_alive());
        if whole {
            if live.is_some() {
                // Paused for the save, or loaded and not yet let run.
                tracing::warn!(vm = %vm.name, "ending the VMM of an interrupted suspend or resume; the saved state is whole");
            }
            self.release(vm).await?;
            saved::remove(&files.saved_used());
            if vm.state != VmState::Suspended {
                vm.state = VmState::Suspended;
                vm.pid = None;
                self.store.update_vm(vm)?;
            }
            return Ok(true);
        }
        saved::remove(&files.saved());
        saved::remove(&files.saved_used());
        match (vm.state, live) {
            (VmState::Suspending | VmState::Resuming, Some(_)) => {
                // A save that never finished, or a restored guest that was
                // about to run: it goes on running.
                if let Err(e) = self.drivers.driver(vm.vmm)?.unpause(&vm.dir).await {
                    tracing::warn!(vm = %vm.name, error = %banger_api::error::chain(&e), "cannot unpause the adopted guest");
                }
            }
            (state, _) => {
                let lost = match state {
                    VmState::Suspended => "its saved state is missing or damaged",
                    _ => "its VMM ended during a suspend or resume",
                };
                tracing::warn!(vm = %vm.name, "{lost}; marking stopped");
                self.release(vm).await?;
                vm.state = VmState::Stopped;
                vm.pid = None;
                vm.stop_reason = Some(format!(
                    "{lost}, so its processes are lost; the disks are kept and `vm start` boots it"
                ));
                self.store.update_vm(vm)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Image builds stage in `.<name>.build-<pid>` directories; a crash leaves them.
    fn remove_stale_builds(&self) {
        let Ok(entries) = std::fs::read_dir(self.images.dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".build-") {
                tracing::warn!(dir = %entry.path().display(), "removing an interrupted image build");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
