//! `vm suspend` and `vm resume`: the guest's memory and device state to
//! disk with every process as it was, the VMM gone and its TAP freed; and
//! a new VMM continuing it later, after a daemon restart or a host reboot.
//!
//! Each step is recorded so a crash anywhere leaves a VM that is running,
//! suspended or stopped, never half of one: the state is written into
//! `saved.partial` and renamed to `saved` only once whole (its manifest is
//! written last); a resume renames it to `saved.used` before the restored
//! guest may run, because from then on its disks move on and the old
//! memory must never be loaded onto them again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use banger_api::agent::ExecRequest;
use banger_api::{Vm, VmState};
use banger_client::agent::AgentClient;
use banger_vmm::VmmError;

use super::boot::spec;
use super::ready::{wait_ready, Readiness};
use super::saved::{self, Manifest};
use super::{Result, VmError, Vms};
use crate::crash;
use crate::progress::Reporter;

impl Vms {
    pub async fn suspend(self: Arc<Self>, reference: String) -> Result<Vm> {
        let vm = self.resolve(&reference)?;
        let _guard = self.lock(&vm.id).await;
        let mut vm = self.reload(&vm.id)?;
        match vm.state {
            VmState::Suspended => return Ok(self.with_saved_size(vm)),
            VmState::Running => {}
            state => {
                return Err(VmError::NotRunning {
                    vm: vm.name,
                    state,
                    what: "only a running VM can be suspended",
                })
            }
        }
        let since = Instant::now();
        let image = self.image_of(&vm)?;
        if !self
            .journal
            .recorded_process(&vm.id)?
            .is_some_and(|p| p.is_alive())
        {
            return Err(VmError::NoProcess {
                vm: vm.name.clone(),
                state: vm.state,
            });
        }
        let driver = self.drivers.driver(vm.vmm)?;
        let files = vm.files();
        let partial = files.saved_partial();
        // The VM runs: any state left in its directory is stale.
        saved::discard(&files)?;
        std::fs::create_dir_all(&partial).map_err(|e| {
            banger_host::HostError::io(format!("cannot create {}", partial.display()), e)
        })?;
        vm.state = VmState::Suspending;
        self.store.update_vm(&vm)?;
        crash::point("suspend.begin");

        let written = match driver.save(&vm.dir, &partial).await {
            // The VMM's files on disk first, the manifest (synced) last,
            // then the rename made durable.
            Ok(()) => saved::sync_dir(&partial)
                // The disks as the paused guest left them, on disk too: the
                // saved memory describes exactly these blocks.
                .and_then(|()| std::fs::File::open(files.overlay())?.sync_all())
                .and_then(|()| std::fs::File::open(files.work())?.sync_all())
                .and_then(|()| Manifest::of(&vm, &image).write(&partial))
                .and_then(|()| std::fs::rename(&partial, files.saved()))
                .and_then(|()| std::fs::File::open(&vm.dir)?.sync_all())
                .map_err(|e| {
                    VmError::Vmm(VmmError::Save {
                        reason: format!("cannot write {}: {e}", partial.display()),
                    })
                }),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = written {
            // Nothing half-written stays; the guest goes on as it was.
            saved::remove(&partial);
            vm.state = VmState::Running;
            if !matches!(err, VmError::Vmm(VmmError::CannotSave { .. })) {
                if let Err(why) = self.unpause_after_failed_save(&vm, driver.as_ref()).await {
                    // A guest that stays paused is not running: stop it
                    // rather than show it running. Its disks stay.
                    tracing::error!(vm = %vm.name, error = %why, "cannot unpause the guest after a failed save; stopping it");
                    match self.release(&vm).await {
                        Ok(()) => {
                            vm.state = VmState::Stopped;
                            vm.pid = None;
                        }
                        // Its VMM may still be there: keep it recorded, so
                        // nothing starts a second one on its disks.
                        Err(e) => {
                            tracing::error!(vm = %vm.name, error = %banger_api::error::chain(&e), "the paused VMM could not be stopped");
                        }
                    }
                    vm.stop_reason = Some(format!(
                        "its suspend failed and the paused guest could not run again ({why}); stopped, its disks kept"
                    ));
                }
            }
            self.store.update_vm(&vm)?;
            return Err(err);
        }
        crash::point("suspend.saved");

        // The state is whole: the paused VMM and what it held can go.
        if let Err(e) = self.release(&vm).await {
            tracing::error!(vm = %vm.name, error = %banger_api::error::chain(&e), "suspended, but some host resources were not released yet");
        }
        vm.state = VmState::Suspended;
        vm.pid = None;
        vm.stop_reason = None;
        self.store.update_vm(&vm)?;
        let vm = self.with_saved_size(vm);
        tracing::info!(vm = %vm.name, ms = since.elapsed().as_millis(), bytes = vm.saved_state_bytes, "VM suspended");
        Ok(vm)
    }

    /// Lets the guest run again after its save failed, asking a few
    /// times: a VMM still finishing a save that timed out answers late.
    async fn unpause_after_failed_save(
        &self,
        vm: &Vm,
        driver: &dyn banger_vmm::Vmm,
    ) -> std::result::Result<(), String> {
        let mut last = String::new();
        for wait in [0, 1, 2, 4] {
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            match driver.unpause(&vm.dir).await {
                Ok(()) => return Ok(()),
                Err(e) => last = banger_api::error::chain(&e),
            }
        }
        Err(last)
    }

    pub async fn resume(self: Arc<Self>, reference: String, reporter: Reporter) -> Result<Vm> {
        let vm = self.resolve(&reference)?;
        let _guard = self.lock(&vm.id).await;
        let mut vm = self.reload(&vm.id)?;
        match vm.state {
            VmState::Running => return Ok(vm),
            VmState::Suspended => {}
            state => {
                return Err(VmError::NotSuspended {
                    vm: vm.name.clone(),
                    state,
                })
            }
        }
        self.resume_locked(&mut vm, &reporter).await?;
        Ok(vm)
    }

    /// Continues a suspended VM whose lock the caller holds. On failure
    /// before the guest ran, the VM stays suspended with its state intact.
    pub(crate) async fn resume_locked(
        self: &Arc<Self>,
        vm: &mut Vm,
        reporter: &Reporter,
    ) -> Result<()> {
        let since = Instant::now();
        let image = self.image_of(vm)?;
        let files = vm.files();
        let manifest =
            Manifest::read(&files.saved()).map_err(|reason| VmError::SavedStateUnusable {
                vm: vm.name.clone(),
                reason,
            })?;
        if let Some(reason) = manifest.mismatch(vm, &image) {
            return Err(VmError::SavedStateUnusable {
                vm: vm.name.clone(),
                reason,
            });
        }
        let driver = self.drivers.driver(vm.vmm)?;
        vm.state = VmState::Resuming;
        self.store.update_vm(vm)?;

        reporter.say("vm.prepare", "plugging in the network", Some(0.2));
        let loaded = async {
            self.caps.prepare(vm, reporter).await?;
            self.store.update_vm(vm)?;
            reporter.say(
                "vm.restore",
                format!("restoring the saved guest ({})", driver.kind()),
                Some(0.4),
            );
            let record = self.recorder(&vm.id)?;
            let process = driver
                .restore(&spec(vm, &image), &files.saved(), &record)
                .await?;
            crash::point("resume.loaded");
            // From here the guest may run: its state is used up, durably
            // so before it does.
            saved::remove(&files.saved_used());
            std::fs::rename(files.saved(), files.saved_used())
                .and_then(|()| std::fs::File::open(&vm.dir)?.sync_all())
                .map_err(|e| {
                    banger_host::HostError::io(
                        format!("cannot rename {}", files.saved().display()),
                        e,
                    )
                })?;
            crash::point("resume.used");
            if let Err(err) = driver.unpause(&vm.dir).await {
                // Put the state back only when the VMM says the guest is
                // still paused: an answer that timed out may have run it.
                let paused = driver
                    .status(&vm.dir)
                    .await
                    .is_ok_and(|s| s.state.eq_ignore_ascii_case("paused"));
                if paused {
                    let _ = std::fs::rename(files.saved_used(), files.saved());
                    return Err(err.into());
                }
                tracing::warn!(vm = %vm.name, error = %banger_api::error::chain(&err), "unpause after the restore did not answer cleanly; the guest is taken as running");
            }
            // The guest runs: its state can never be used again.
            saved::remove(&files.saved_used());
            Ok(process)
        }
        .await;
        let process = match loaded {
            Ok(process) => process,
            Err(err) => {
                if let Err(cleanup) = self.release(vm).await {
                    tracing::error!(vm = %vm.name, error = %banger_api::error::chain(&cleanup), "cleanup after a failed resume incomplete");
                }
                vm.state = VmState::Suspended;
                vm.pid = None;
                self.store.update_vm(vm)?;
                return Err(err);
            }
        };
        self.mark_running(vm, process)?;
        let restored_ms = since.elapsed().as_millis();

        reporter.say("vm.ready", "waiting for the guest to answer", Some(0.8));
        let timeout = Duration::from_secs(self.config.boot_timeout_secs);
        let readiness = Readiness::of(vm, process, timeout, image.agent);
        let agent = wait_ready(self.host.probe.as_ref(), &readiness).await?;
        self.set_guest_clock(vm, agent).await;
        self.caps.running(vm).await?;
        tracing::info!(vm = %vm.name, restored_ms, ready_ms = since.elapsed().as_millis(), agent, "VM resumed");
        reporter.say(
            "vm.ready",
            format!("{} is running again", vm.name),
            Some(1.0),
        );
        Ok(())
    }

    /// A VM as the API shows it: with the size of its saved state while it
    /// has one.
    pub(crate) fn with_saved_size(&self, mut vm: Vm) -> Vm {
        if vm.state == VmState::Suspended {
            vm.saved_state_bytes = saved::bytes(&vm.files().saved());
        }
        vm
    }

    /// The restored guest's clock stands where it was saved (QEMU), or
    /// close to now (Firecracker advances kvmclock): set it from the host,
    /// through the agent, else over SSH (in the background: a guest whose
    /// sshd is slow must not hold the resume). A failure is a warning.
    async fn set_guest_clock(&self, vm: &Vm, agent: bool) {
        let now = time::OffsetDateTime::now_utc();
        let stamp = format!("@{}.{:09}", now.unix_timestamp(), now.nanosecond());
        let argv = ["date", "-u", "-s", stamp.as_str()]
            .map(String::from)
            .to_vec();
        let name = vm.name.clone();
        if !agent {
            let mut args = self.target_of(vm).ssh_args();
            args.extend(argv);
            let task = tokio::spawn(async move {
                if let Err(e) = ssh_run(&args).await {
                    tracing::warn!(vm = %name, error = %e, "cannot set the resumed guest's clock over SSH");
                }
            });
            self.clock_fixes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(vm.id.clone(), task.abort_handle());
            return;
        }
        let request = ExecRequest {
            argv,
            env: Vec::new(),
            cwd: None,
        };
        let result = AgentClient::new(vm.files().vsock())
            .exec(&request, bytes::Bytes::new(), &mut |_| true)
            .await
            .map_err(|e| banger_api::error::chain(&e))
            .and_then(|code| match code {
                0 => Ok(()),
                code => Err(format!("date exited with {code}")),
            });
        if let Err(e) = result {
            tracing::warn!(vm = %name, error = %e, "cannot set the resumed guest's clock");
        }
    }
}

/// Runs ssh with `args` (the checks `vm ssh` makes, then a fixed command),
/// for images without the agent.
async fn ssh_run(args: &[String]) -> std::result::Result<(), String> {
    let run = tokio::process::Command::new("ssh")
        .args(["-o", "BatchMode=yes"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Ok(Err(e)) => Err(format!("ssh: {e}")),
        Err(_) => Err("ssh did not finish within 30 s".into()),
    }
}

impl Vms {
    /// Ends a clock fix still under way for a VM whose VMM goes.
    pub(crate) fn end_clock_fix(&self, vm_id: &str) {
        if let Some(task) = self
            .clock_fixes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(vm_id)
        {
            task.abort();
        }
    }
}
