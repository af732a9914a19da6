//! start, stop and delete of existing VMs.

use std::sync::Arc;
use std::time::Duration;

use banger_api::{ApiError, Vm, VmState};
use banger_host::process;

use super::{boot, journal};
use crate::app::App;
use crate::errors::{self, OpResult};
use crate::progress::Reporter;

fn resolve(app: &App, reference: &str) -> OpResult<Vm> {
    app.store.resolve_vm(reference).map_err(errors::store_ref)
}

/// Reloads a VM after taking its lock (it may have changed while we waited).
fn reload(app: &App, id: &str) -> OpResult<Vm> {
    app.store
        .get_vm(id)
        .map_err(errors::store)?
        .ok_or_else(|| ApiError::not_found(format!("VM {id} was deleted meanwhile")))
}

pub async fn start(app: Arc<App>, reference: String, reporter: Reporter) -> OpResult<Vm> {
    let since = std::time::Instant::now();
    let vm = resolve(&app, &reference)?;
    let _guard = app.lock_vm(&vm.id).await;
    let mut vm = reload(&app, &vm.id)?;
    match vm.state {
        VmState::Running => return Ok(vm),
        VmState::Creating => {
            return Err(ApiError::conflict(format!(
                "VM {} is still being created",
                vm.name
            )))
        }
        _ => {}
    }
    let image = app
        .store
        .get_image(&vm.image)
        .map_err(errors::store)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "image {} of VM {} no longer exists",
                vm.image, vm.name
            ))
        })?;
    match boot::boot(&app, &mut vm, &image, &reporter, since).await {
        Ok(()) => Ok(vm),
        Err(err) => {
            vm.state = VmState::Stopped;
            vm.stop_reason = Some(format!("start failed: {}", err.message));
            app.store.update_vm(&vm).map_err(errors::store)?;
            Err(err)
        }
    }
}

pub async fn stop(app: Arc<App>, reference: String, force: bool) -> OpResult<Vm> {
    let vm = resolve(&app, &reference)?;
    let _guard = app.lock_vm(&vm.id).await;
    let mut vm = reload(&app, &vm.id)?;
    stop_locked(&app, &mut vm, force).await?;
    Ok(vm)
}

/// Stops a VM whose lock the caller holds: a graceful guest shutdown, then
/// SIGTERM, then SIGKILL. Disks are kept.
pub async fn stop_locked(app: &App, vm: &mut Vm, force: bool) -> OpResult<()> {
    if vm.state == VmState::Stopped {
        return Ok(());
    }
    if let Some(proc) = journal::recorded_process(app, &vm.id)? {
        vm.state = VmState::Stopping;
        app.store.update_vm(vm).map_err(errors::store)?;
        let mut exited = false;
        if !force && proc.is_alive() {
            match app
                .driver(vm.vmm)?
                .request_shutdown(std::path::Path::new(&vm.dir), proc)
                .await
            {
                Ok(()) => {
                    exited = proc
                        .wait_exit_timeout(Duration::from_secs(app.config.stop_timeout_secs))
                        .await
                }
                Err(e) => {
                    tracing::warn!(vm = %vm.name, error = %e, "graceful shutdown request failed; terminating")
                }
            }
            if !exited {
                tracing::warn!(vm = %vm.name, "guest did not shut down in time; terminating the VMM");
            }
        }
        if !exited {
            process::terminate(proc, Duration::from_secs(5))
                .await
                .map_err(errors::host)?;
        }
    }
    journal::undo_kinds(app, &vm.id, Some(&vm.dir), journal::RUNTIME).await?;
    vm.state = VmState::Stopped;
    vm.pid = None;
    vm.stop_reason = None;
    app.store.update_vm(vm).map_err(errors::store)?;
    tracing::info!(vm = %vm.name, "VM stopped");
    Ok(())
}

/// Deletes a VM: stops it if running (killing it with `force`), then removes
/// its process, TAP, disks and directory. The image stays.
pub async fn delete(app: Arc<App>, reference: String, force: bool) -> OpResult<Vm> {
    let vm = resolve(&app, &reference)?;
    let _guard = app.lock_vm(&vm.id).await;
    let mut vm = reload(&app, &vm.id)?;
    stop_locked(&app, &mut vm, force).await?;
    journal::undo_kinds(&app, &vm.id, Some(&vm.dir), journal::ALL).await?;
    app.store.delete_vm(&vm.id).map_err(errors::store)?;
    app.forget_vm_lock(&vm.id);
    tracing::info!(vm = %vm.name, "VM deleted");
    Ok(vm)
}
