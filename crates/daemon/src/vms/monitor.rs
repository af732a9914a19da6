//! Noticing when a VMM process ends without being asked to (guest
//! shutdown, crash, kill -9): the VM is marked stopped with the reason and
//! its runtime resources are released.

use std::sync::Arc;

use banger_api::VmState;
use banger_host::process::ProcessId;

use super::{boot, journal};
use crate::app::App;

pub fn watch(app: Arc<App>, vm_id: String, process: ProcessId) {
    tokio::spawn(async move {
        process.wait_exit().await;
        let _guard = app.lock_vm(&vm_id).await;
        let Ok(Some(mut vm)) = app.store.get_vm(&vm_id) else {
            return;
        };
        // A stop or delete that ran meanwhile already dealt with it.
        let recorded = journal::recorded_process(&app, &vm_id).ok().flatten();
        if vm.state == VmState::Stopped || recorded != Some(process) {
            return;
        }
        tracing::warn!(vm = %vm.name, pid = process.pid, "VMM process exited");
        if let Err(e) = boot::release(&app, &vm).await {
            tracing::error!(vm = %vm.name, error = %e, "cleanup after VMM exit incomplete");
        }
        vm.state = VmState::Stopped;
        vm.pid = None;
        vm.stop_reason = Some(format!(
            "the VMM process exited without a stop request (guest shutdown or crash); see {}/console.log",
            vm.dir
        ));
        if let Err(e) = app.store.update_vm(&vm) {
            tracing::error!(vm = %vm.name, error = %e, "cannot record VM stop");
        }
    });
}
