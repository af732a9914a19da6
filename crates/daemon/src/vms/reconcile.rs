//! At daemon start, make recorded state true again: VMs whose VMM still
//! runs are adopted (a daemon restart never kills a VM), VMs whose VMM is
//! gone are marked stopped and their runtime resources released, creates
//! that were interrupted are rolled back, and resources nobody owns are removed.

use std::sync::Arc;

use banger_api::VmState;
use banger_store::ResourceKind;

use super::{boot, create, journal, monitor};
use crate::app::App;
use crate::caps;
use crate::errors::{self, OpResult};

pub async fn reconcile(app: &Arc<App>) -> OpResult<()> {
    let vms = app.store.list_vms().map_err(errors::store)?;
    // One VM or resource that cannot be cleaned must not keep the daemon
    // from starting: log it, leave it in the journal for the next pass.
    for vm in vms.clone() {
        if let Err(err) = reconcile_vm(app, vm.clone()).await {
            tracing::error!(vm = %vm.name, error = %err, "reconcile incomplete; retried at the next start");
        }
    }
    // Resources whose VM row is gone (a crash in the middle of a delete),
    // and idle pool TAPs of the previous daemon (the pool is refilled fresh).
    for resource in app.store.all_resources().map_err(errors::store)? {
        if !vms.iter().any(|vm| vm.id == resource.vm_id) {
            tracing::warn!(vm = %resource.vm_id, kind = ?resource.kind, value = %resource.value, "removing orphan resource");
            let dir = (resource.kind == ResourceKind::Dir).then_some(resource.value.clone());
            if let Err(err) = journal::undo(app, &resource, dir.as_deref()).await {
                tracing::error!(value = %resource.value, error = %err, "cannot remove orphan resource; retried at the next start");
            }
        }
    }
    remove_stale_builds(app);
    // States are true now: let every capability make the host match them.
    let vms = app.store.list_vms().map_err(errors::store)?;
    caps::reconcile(app, &vms).await;
    Ok(())
}

async fn reconcile_vm(app: &Arc<App>, mut vm: banger_api::Vm) -> OpResult<()> {
    if vm.state == VmState::Creating {
        tracing::warn!(vm = %vm.name, "rolling back a create that was interrupted");
        create::rollback(app, &vm).await;
        return Ok(());
    }
    let process = journal::recorded_process(app, &vm.id)?;
    match process.filter(|p| p.is_alive()) {
        Some(process) => {
            tracing::info!(vm = %vm.name, pid = process.pid, "adopting running VM");
            if vm.state != VmState::Running {
                // A start interrupted after launch: it is running now.
                vm.started_at = Some(crate::app::now());
            }
            vm.state = VmState::Running;
            vm.pid = Some(process.pid);
            vm.stop_reason = None;
            app.store.update_vm(&vm).map_err(errors::store)?;
            monitor::watch(app.clone(), vm.id.clone(), process);
        }
        None => {
            boot::release(app, &vm).await?;
            if vm.state != VmState::Stopped {
                tracing::warn!(vm = %vm.name, "VMM not running at daemon start; marking stopped");
                vm.state = VmState::Stopped;
                vm.pid = None;
                vm.stop_reason = Some(
                    "the VMM was not running when bangerd started (host reboot, or a crash while the daemon was down)".into(),
                );
                app.store.update_vm(&vm).map_err(errors::store)?;
            }
        }
    }
    Ok(())
}

/// Image builds stage in `.<name>.build-<pid>` directories; a crash leaves them.
fn remove_stale_builds(app: &App) {
    let Ok(entries) = std::fs::read_dir(app.images_dir()) else {
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
