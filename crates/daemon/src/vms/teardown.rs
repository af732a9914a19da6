//! Taking a VM's host resources down: what a running VM holds (released on
//! stop, failed boots, VMM exits and reconcile), everything of a create
//! that failed, and what happens when a VMM exits by itself.

use banger_api::files::tail_summary;
use banger_api::{Vm, VmState};
use banger_host::process::ProcessId;

use super::{Result, Vms};
use crate::journal;

impl Vms {
    /// Releases what a running VM holds on the host: its VMM process, then
    /// every capability's runtime part (DNS record, NAT rules, TAP). Safe to
    /// repeat.
    pub(crate) async fn release(&self, vm: &Vm) -> Result<()> {
        self.end_clock_fix(&vm.id);
        let process = self
            .journal
            .undo_kinds(&vm.id, Some(&vm.dir), journal::PROCESSES)
            .await;
        let caps = self.caps.stopped(vm).await;
        process?;
        caps?;
        Ok(())
    }

    /// Removes every trace of a VM that never finished creating.
    pub(crate) async fn rollback(&self, vm: &Vm) {
        let released = self.release(vm).await;
        let undone = self
            .journal
            .undo_kinds(&vm.id, Some(&vm.dir), journal::ALL)
            .await
            .map_err(Into::into);
        if let Err(e) = released.and(undone) {
            let why = banger_api::error::chain(&e);
            tracing::error!(vm = %vm.name, error = %why, "rollback incomplete; the daemon retries at its next start");
            let mut failed = vm.clone();
            failed.stop_reason = Some(format!(
                "its create failed and could not be fully undone ({why})"
            ));
            let _ = self.store.update_vm(&failed);
            return;
        }
        if let Err(e) = self.store.delete_vm(&vm.id) {
            tracing::error!(vm = %vm.name, error = %banger_api::error::chain(&e), "cannot delete VM row");
        }
        self.forget_lock(&vm.id);
    }

    /// A VMM ended without being asked to (guest shutdown, crash, kill -9):
    /// the VM is marked stopped with the reason and what it held is released.
    pub(crate) async fn vmm_exited(&self, vm_id: &str, process: ProcessId) {
        let _guard = self.lock(vm_id).await;
        let Ok(Some(mut vm)) = self.store.get_vm(vm_id) else {
            return;
        };
        // A stop or delete that ran meanwhile already dealt with it.
        let recorded = self.journal.recorded_process(vm_id).ok().flatten();
        if vm.state == VmState::Stopped || recorded != Some(process) {
            return;
        }
        // A suspended VM stays suspended (its state is whole; only a VMM
        // whose journal row could not be dropped is still reported).
        if vm.state == VmState::Suspended {
            return;
        }
        tracing::warn!(vm = %vm.name, pid = process.pid, "VMM process exited");
        if let Err(e) = self.release(&vm).await {
            tracing::error!(vm = %vm.name, error = %banger_api::error::chain(&e), "cleanup after VMM exit incomplete");
        }
        vm.state = VmState::Stopped;
        vm.pid = None;
        vm.stop_reason = Some(format!(
            "the VMM process exited without a stop request (guest shutdown or crash); its log: {}; console: {}",
            banger_vmm::log_summary(vm.vmm, &vm.dir),
            tail_summary(&vm.console_log(), 3)
        ));
        if let Err(e) = self.store.update_vm(&vm) {
            tracing::error!(vm = %vm.name, error = %banger_api::error::chain(&e), "cannot record VM stop");
        }
    }
}
