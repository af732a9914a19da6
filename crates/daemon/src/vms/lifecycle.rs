//! start, stop and delete of existing VMs.

use std::sync::Arc;
use std::time::Duration;

use std::str::FromStr;

use banger_api::{ApiError, Vm, VmState};
use banger_host::process;
use nix::sys::signal::Signal;

use super::{boot, journal};
use crate::app::App;
use crate::crash;
use crate::errors::{self, OpResult};
use crate::progress::Reporter;

pub fn resolve(app: &App, reference: &str) -> OpResult<Vm> {
    app.store.resolve_vm(reference).map_err(errors::store_ref)
}

/// Reloads a VM after taking its lock (it may have changed while we waited).
pub fn reload(app: &App, id: &str) -> OpResult<Vm> {
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
    start_locked(&app, &mut vm, &reporter, since).await?;
    Ok(vm)
}

/// Stops (gracefully) and starts a VM, holding its lock throughout.
pub async fn restart(app: Arc<App>, reference: String, reporter: Reporter) -> OpResult<Vm> {
    let since = std::time::Instant::now();
    let vm = resolve(&app, &reference)?;
    let _guard = app.lock_vm(&vm.id).await;
    let mut vm = reload(&app, &vm.id)?;
    reporter.say("vm.stop", format!("stopping {}", vm.name), Some(0.1));
    stop_locked(&app, &mut vm, false).await?;
    start_locked(&app, &mut vm, &reporter, since).await?;
    Ok(vm)
}

async fn start_locked(
    app: &Arc<App>,
    vm: &mut Vm,
    reporter: &Reporter,
    since: std::time::Instant,
) -> OpResult<()> {
    match vm.state {
        VmState::Running => return Ok(()),
        VmState::Creating => {
            let reason = vm
                .stop_reason
                .clone()
                .unwrap_or_else(|| "it is still being created".into());
            return Err(
                ApiError::conflict(format!("VM {} cannot start: {reason}", vm.name)).with_hint(
                    format!(
                        "if the create failed, remove it with `banger vm delete {}`",
                        vm.name
                    ),
                ),
            );
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
    match boot::boot(app, vm, &image, reporter, since).await {
        Ok(()) => Ok(()),
        Err(err) => {
            vm.state = VmState::Stopped;
            vm.stop_reason = Some(format!("start failed: {}", err.message));
            app.store.update_vm(vm).map_err(errors::store)?;
            Err(err)
        }
    }
}

/// Parses TERM, SIGTERM, term, ... into a signal.
pub fn parse_signal(name: &str) -> OpResult<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).map_err(|_| {
        ApiError::invalid(format!("unknown signal {name:?}"))
            .with_hint("use a signal name such as TERM, KILL, INT, HUP, QUIT, USR1")
    })
}

/// Sends a signal to a VM's VMM process. If the process ends, the monitor
/// marks the VM stopped; this waits briefly so the answer shows it.
pub async fn kill(app: Arc<App>, reference: String, signal: String) -> OpResult<Vm> {
    let signal = parse_signal(&signal)?;
    let vm = resolve(&app, &reference)?;
    // Deliberately without the VM's lock: a signal is how a user interrupts
    // an operation that holds it (a boot that hangs, a stuck stop). The
    // PID + start time identity makes this safe without the lock.
    let process = {
        let process = journal::recorded_process(&app, &vm.id)?
            .filter(|p| p.is_alive())
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "VM {} is {}: there is no VMM process to signal",
                    vm.name, vm.state
                ))
            })?;
        process.signal(signal).map_err(errors::host)?;
        tracing::info!(vm = %vm.name, %signal, pid = process.pid, "signal sent");
        process
    };
    if process.wait_exit_timeout(Duration::from_secs(2)).await {
        // Let the monitor record the stop before answering.
        for _ in 0..40 {
            if reload(&app, &vm.id)?.state == VmState::Stopped {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    reload(&app, &vm.id)
}

pub async fn stop(app: Arc<App>, reference: String, force: bool) -> OpResult<Vm> {
    let vm = resolve(&app, &reference)?;
    if force {
        kill_before_locking(&app, &vm)?;
    }
    let _guard = app.lock_vm(&vm.id).await;
    let mut vm = reload(&app, &vm.id)?;
    stop_locked(&app, &mut vm, force).await?;
    Ok(vm)
}

/// `--force` must not wait behind an operation that holds the VM's lock
/// (a boot that hangs): kill the VMM first, so that operation fails fast
/// and releases the lock; the forced stop or delete then cleans up.
fn kill_before_locking(app: &App, vm: &Vm) -> OpResult<()> {
    if let Some(process) = journal::recorded_process(app, &vm.id)?.filter(|p| p.is_alive()) {
        tracing::info!(vm = %vm.name, pid = process.pid, "forced: killing the VMM");
        process.signal(Signal::SIGKILL).map_err(errors::host)?;
    }
    Ok(())
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
                    crash::point("stop.requested");
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
    crash::point("stop.exited");
    // The VMM is gone: the VM is stopped whatever happens next. What could
    // not be released (iptables busy, ...) stays journaled or tagged, and
    // the next stop, delete or daemon start retries it.
    if let Err(e) = boot::release(app, vm).await {
        tracing::error!(vm = %vm.name, error = %e, "stopped, but some host resources were not released yet");
    }
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
    if force {
        kill_before_locking(&app, &vm)?;
    }
    let _guard = app.lock_vm(&vm.id).await;
    let mut vm = reload(&app, &vm.id)?;
    stop_locked(&app, &mut vm, force).await?;
    crash::point("delete.stopped");
    // The row goes first: if we die while removing files, the journal
    // entries are orphans and the next daemon start finishes the job.
    app.store.delete_vm(&vm.id).map_err(errors::store)?;
    crash::point("delete.row");
    journal::undo_kinds(&app, &vm.id, Some(&vm.dir), journal::ALL).await?;
    app.forget_vm_lock(&vm.id);
    tracing::info!(vm = %vm.name, "VM deleted");
    Ok(vm)
}
