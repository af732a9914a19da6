//! start, stop, restart, kill and delete of existing VMs.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banger_api::{Vm, VmState};
use banger_host::process;
use nix::sys::signal::Signal;
use tokio::sync::OwnedMutexGuard;

use super::{Result, VmError, Vms};
use crate::crash;
use crate::journal;
use crate::progress::Reporter;

/// Parses TERM, SIGTERM, term, ... into a signal.
pub fn parse_signal(name: &str) -> Result<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).map_err(|_| VmError::UnknownSignal(name.to_string()))
}

impl Vms {
    pub async fn start(self: Arc<Self>, reference: String, reporter: Reporter) -> Result<Vm> {
        let since = Instant::now();
        let vm = self.resolve(&reference)?;
        let _guard = self.lock(&vm.id).await;
        let mut vm = self.reload(&vm.id)?;
        self.start_locked(&mut vm, &reporter, since).await?;
        Ok(vm)
    }

    /// Stops (gracefully) and starts a VM, holding its lock throughout.
    pub async fn restart(self: Arc<Self>, reference: String, reporter: Reporter) -> Result<Vm> {
        let since = Instant::now();
        let vm = self.resolve(&reference)?;
        let _guard = self.lock(&vm.id).await;
        let mut vm = self.reload(&vm.id)?;
        if vm.state == VmState::Suspended {
            return Err(VmError::Suspended { vm: vm.name });
        }
        reporter.say("vm.stop", format!("stopping {}", vm.name), Some(0.1));
        self.stop_locked(&mut vm, false, false).await?;
        self.start_locked(&mut vm, &reporter, since).await?;
        Ok(vm)
    }

    async fn start_locked(
        self: &Arc<Self>,
        vm: &mut Vm,
        reporter: &Reporter,
        since: Instant,
    ) -> Result<()> {
        match vm.state {
            VmState::Running => return Ok(()),
            VmState::Suspended => return self.resume_locked(vm, reporter).await,
            VmState::Creating => {
                return Err(VmError::StillCreating {
                    vm: vm.name.clone(),
                    reason: vm
                        .stop_reason
                        .clone()
                        .unwrap_or_else(|| "it is still being created".into()),
                })
            }
            _ => {}
        }
        let image = self.image_of(vm)?;
        match self.boot(vm, &image, reporter, since).await {
            Ok(()) => Ok(()),
            Err(err) => {
                vm.state = VmState::Stopped;
                vm.stop_reason = Some(format!("start failed: {}", banger_api::error::chain(&err)));
                self.store.update_vm(vm)?;
                Err(err)
            }
        }
    }

    /// Sends a signal to a VM's VMM process. If the process ends, the
    /// monitor marks the VM stopped; this waits briefly so the answer shows it.
    pub async fn kill(self: Arc<Self>, reference: String, signal: String) -> Result<Vm> {
        let signal = parse_signal(&signal)?;
        let vm = self.resolve(&reference)?;
        // Deliberately without the VM's lock: a signal is how a user interrupts
        // an operation that holds it (a boot that hangs, a stuck stop). The
        // PID + start time identity makes this safe without the lock.
        let process = self
            .journal
            .recorded_process(&vm.id)?
            .filter(|p| p.is_alive())
            .ok_or_else(|| VmError::NoProcess {
                vm: vm.name.clone(),
                state: vm.state,
            })?;
        process.signal(signal)?;
        tracing::info!(vm = %vm.name, %signal, pid = process.pid, "signal sent");
        if process.wait_exit_timeout(Duration::from_secs(2)).await {
            // Let the monitor record the stop before answering.
            for _ in 0..40 {
                if self.reload(&vm.id)?.state == VmState::Stopped {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        self.reload(&vm.id)
    }

    /// Stops a VM. A suspended one only with `force`, which discards its
    /// saved state (the guest's processes) and keeps its disks.
    pub async fn stop(self: Arc<Self>, reference: String, force: bool) -> Result<Vm> {
        let (vm, _guard) = self.stop_held(&reference, force, force).await?;
        Ok(vm)
    }

    /// Stops the VM and returns it with its lock still held. With `force`
    /// the VMM is killed first, before waiting for the lock.
    /// `discard_saved`: a suspended VM's saved state may go (a forced stop,
    /// a delete); otherwise stopping a suspended VM is refused.
    async fn stop_held(
        &self,
        reference: &str,
        force: bool,
        discard_saved: bool,
    ) -> Result<(Vm, OwnedMutexGuard<()>)> {
        let vm = self.resolve(reference)?;
        if force {
            self.kill_before_locking(&vm)?;
        }
        let guard = self.lock(&vm.id).await;
        let mut vm = self.reload(&vm.id)?;
        self.stop_locked(&mut vm, force, discard_saved).await?;
        Ok((vm, guard))
    }

    /// `--force` must not wait behind an operation that holds the VM's lock
    /// (a boot that hangs): kill the VMM first, so that operation fails fast
    /// and releases the lock; the forced stop or delete then cleans up.
    fn kill_before_locking(&self, vm: &Vm) -> Result<()> {
        if let Some(process) = self
            .journal
            .recorded_process(&vm.id)?
            .filter(|p| p.is_alive())
        {
            tracing::info!(vm = %vm.name, pid = process.pid, "forced: killing the VMM");
            process.signal(Signal::SIGKILL)?;
        }
        Ok(())
    }

    /// Stops a VM whose lock the caller holds: a graceful guest shutdown,
    /// then SIGTERM, then SIGKILL. Disks are kept.
    pub(crate) async fn stop_locked(
        &self,
        vm: &mut Vm,
        force: bool,
        discard_saved: bool,
    ) -> Result<()> {
        if vm.state == VmState::Stopped {
            return Ok(());
        }
        if vm.state == VmState::Suspended {
            // Checked under the lock: a suspend that finished while this
            // stop waited must not lose its state to a plain stop.
            if !discard_saved {
                return Err(VmError::Suspended {
                    vm: vm.name.clone(),
                });
            }
            // Its VMM is gone already; what is left is the saved state.
            super::saved::discard(&vm.files())?;
            tracing::info!(vm = %vm.name, "saved state discarded");
        }
        if let Some(proc) = self.journal.recorded_process(&vm.id)? {
            vm.state = VmState::Stopping;
            self.store.update_vm(vm)?;
            let mut exited = false;
            if !force && proc.is_alive() {
                match self
                    .drivers
                    .driver(vm.vmm)?
                    .request_shutdown(&vm.dir, proc)
                    .await
                {
                    Ok(()) => {
                        crash::point("stop.requested");
                        exited = proc
                            .wait_exit_timeout(Duration::from_secs(self.config.stop_timeout_secs))
                            .await
                    }
                    Err(e) => {
                        tracing::warn!(vm = %vm.name, error = %banger_api::error::chain(&e), "graceful shutdown request failed; terminating")
                    }
                }
                if !exited {
                    tracing::warn!(vm = %vm.name, "guest did not shut down in time; terminating the VMM");
                }
            }
            if !exited {
                process::terminate(proc, Duration::from_secs(5)).await?;
            }
        }
        crash::point("stop.exited");
        // The VMM is gone: the VM is stopped whatever happens next. What could
        // not be released (iptables busy, ...) stays journaled or tagged, and
        // the next stop, delete or daemon start retries it.
        if let Err(e) = self.release(vm).await {
            tracing::error!(vm = %vm.name, error = %banger_api::error::chain(&e), "stopped, but some host resources were not released yet");
        }
        vm.state = VmState::Stopped;
        vm.pid = None;
        vm.stop_reason = None;
        self.store.update_vm(vm)?;
        tracing::info!(vm = %vm.name, "VM stopped");
        Ok(())
    }

    /// Deletes a VM: stops it if running (killing it with `force`), then
    /// removes its process, TAP, disks and directory. The image stays.
    pub async fn delete(self: Arc<Self>, reference: String, force: bool) -> Result<Vm> {
        let (vm, _guard) = self.stop_held(&reference, force, true).await?;
        crash::point("delete.stopped");
        // The row goes first: if we die while removing files, the journal
        // entries are orphans and the next daemon start finishes the job.
        self.store.delete_vm(&vm.id)?;
        crash::point("delete.row");
        if let Err(e) = self.forwards.remove_vm(&vm.id) {
            tracing::warn!(vm = %vm.name, error = %banger_api::error::chain(&e), "forwards of a deleted VM; the next start forgets them");
        }
        self.journal
            .undo_kinds(&vm.id, Some(&vm.dir), journal::ALL)
            .await?;
        self.forget_lock(&vm.id);
        self.write_ssh_config();
        tracing::info!(vm = %vm.name, "VM deleted");
        Ok(vm)
    }
}
