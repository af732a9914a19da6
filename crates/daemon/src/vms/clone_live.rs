//! `vm clone` of a running VM: its memory and disks at one instant, and
//! the clone continuing from there with every process, then taking its own
//! identity before it may reach the network.
//!
//! The source is paused only while its state is written and its disks are
//! copied (the copies match the memory exactly), then runs on. The clone is
//! restored from that state on its own TAP, taken off the bridge: until
//! its agent has given it its own MAC, address,
//! hostname, host key and machine-id and fed its RNG, it would answer as
//! its source. Its disks are never edited from the host: the restored
//! guest has them mounted, so everything goes through the guest itself.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banger_api::agent::Grow;
use banger_api::{Image, Vm, VmState};
use banger_host::{ssh, HostError};
use banger_store::ResourceKind;
use banger_vmm::VmmError;

use super::boot::spec;
use super::ready::{wait_agent, Readiness};
use super::saved::DiskSizes;
use super::{Result, VmError, Vms};
use crate::crash;
use crate::progress::Reporter;

/// Where the source's state waits for the clone's VMM to load it.
const STATE_DIR: &str = "clone-state";
/// How long the agent may take to give a restored guest its identity.
const IDENTITY_TIMEOUT: Duration = Duration::from_secs(60);

impl Vms {
    /// Makes `vm` (claimed, its lock held) a running copy of the running
    /// VM `source_id`. On error the caller rolls the clone back; the
    /// source runs on either way.
    pub(super) async fn clone_live(
        self: &Arc<Self>,
        source_id: &str,
        vm: &mut Vm,
        image: &Image,
        reporter: &Reporter,
        since: Instant,
    ) -> Result<()> {
        let files = vm.files();
        self.journal
            .record(&vm.id, ResourceKind::Dir, &vm.dir.to_string_lossy())?;
        let state = files.dir.join(STATE_DIR);
        std::fs::create_dir_all(&state)
            .map_err(|e| HostError::path_io("cannot create", &state, e))?;
        let was = self
            .save_running(source_id, vm, image, &state, reporter)
            .await?;
        crash::point("clone.saved");

        // The copies have the source's sizes, which the clone was given.
        let sizes = DiskSizes::of(vm);
        let process = self
            .restore_as_own(vm, image, &state, was, sizes, reporter)
            .await?;
        // Loaded: the memory file is the VMM's now (or no longer needed).
        let _ = std::fs::remove_dir_all(&state);
        self.mark_running(vm, process)?;
        tracing::info!(vm = %vm.name, ready_ms = since.elapsed().as_millis(), "running clone ready");
        Ok(())
    }

    /// Restores `vm` from the guest saved in `state` (another VM's memory,
    /// or its image's template) on its own TAP off the bridge; once its
    /// agent answers it takes its own identity (`was`: the MAC and address
    /// it starts out with), its disks are grown from the sizes they were
    /// saved with (`saved`) to the VM's, and it is plugged in. `state` is
    /// only read.
    pub(super) async fn restore_as_own(
        self: &Arc<Self>,
        vm: &mut Vm,
        image: &Image,
        state: &std::path::Path,
        was: (banger_api::MacAddr, std::net::Ipv4Addr),
        saved: DiskSizes,
        reporter: &Reporter,
    ) -> Result<banger_host::process::ProcessId> {
        let started = Instant::now();
        reporter.say(
            "vm.prepare",
            format!("plugging in {}'s TAP", vm.name),
            Some(0.5),
        );
        self.caps.prepare(vm, reporter).await?;
        self.store.update_vm(vm)?;
        let driver = self.drivers.driver(vm.vmm)?;
        reporter.say(
            "vm.restore",
            format!("restoring the saved guest ({})", driver.kind()),
            Some(0.6),
        );
        // Off the bridge before the guest runs a single instruction: it
        // would answer as its source (for either VMM; the rollback of a
        // failed restore deletes the TAP).
        self.plug(vm, false).await?;
        let record = self.recorder(&vm.id)?;
        let process = driver.restore(&spec(vm, image), state, &record).await?;
        vm.pid = Some(process.pid);
        self.store.update_vm(vm)?;
        driver.unpause(&vm.dir).await?;
        let restored_ms = started.elapsed().as_millis();

        reporter.say("vm.ready", "waiting for its agent", Some(0.75));
        let timeout = Duration::from_secs(self.config.boot_timeout_secs);
        let readiness = Readiness::of(vm, process, timeout, true);
        wait_agent(&readiness).await?;
        let agent_ms = started.elapsed().as_millis();
        reporter.say(
            "vm.identity",
            format!("giving {} its own identity", vm.name),
            Some(0.85),
        );
        let grow = self.grow_disks(vm, saved).await?;
        self.take_over(vm, was, grow).await?;
        self.plug(vm, true).await?;
        self.caps.running(vm).await?;
        // Its sshd runs (restored, or started again on its new host key):
        // once the new address takes a connection, `vm ssh` works.
        let ssh_deadline = Instant::now() + Duration::from_secs(10);
        while !self.host.probe.reachable(vm.ip).await {
            if Instant::now() >= ssh_deadline {
                tracing::warn!(vm = %vm.name, "sshd of the restored guest does not answer yet");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(vm = %vm.name, restored_ms, agent_ms, identity_ms = started.elapsed().as_millis(), "restored guest has its own identity");
        Ok(process)
    }

    /// Puts the VM's TAP on the bridge, or takes it off.
    async fn plug(&self, vm: &Vm, on: bool) -> Result<()> {
        self.host
            .net
            .perform(&banger_host::privileged::Op::PlugTap {
                tap: vm.tap.clone(),
                bridge: on.then(|| self.config.bridge_name.clone()),
                address: vm.ip,
            })
            .await?;
        Ok(())
    }

    /// A restored VM runs from now on, watched.
    pub(super) fn mark_running(
        self: &Arc<Self>,
        vm: &mut Vm,
        process: banger_host::process::ProcessId,
    ) -> Result<()> {
        vm.state = VmState::Running;
        vm.pid = Some(process.pid);
        vm.started_at = Some(time::OffsetDateTime::now_utc());
        vm.stop_reason = None;
        self.store.update_vm(vm)?;
        self.watch(vm.id.clone(), process);
        Ok(())
    }

    /// Pauses the source, writes its state into `state` and copies its
    /// disks for `vm`, and lets it run again: its MAC and address then,
    /// which the clone starts out with.
    async fn save_running(
        &self,
        source_id: &str,
        vm: &Vm,
        image: &Image,
        state: &std::path::Path,
        reporter: &Reporter,
    ) -> Result<(banger_api::MacAddr, std::net::Ipv4Addr)> {
        let _source_guard = self.lock(source_id).await;
        let src = self.reload(source_id)?;
        if src.state != VmState::Running {
            return Err(VmError::CloneNeedsStopped {
                vm: src.name,
                state: src.state,
            });
        }
        if !image.agent {
            return Err(VmError::CloneNeedsAgent { vm: src.name });
        }
        let driver = self.drivers.driver(src.vmm)?;
        reporter.say(
            "vm.save",
            format!("pausing {} to copy its memory and disks", src.name),
            Some(0.3),
        );
        let paused = Instant::now();
        let saved = driver.save(&src.dir, state).await;
        let copied = match &saved {
            Ok(()) => self.copy_vm_disks(&src, vm).await,
            Err(_) => Ok(()),
        };
        crash::point("clone.paused");
        // The source runs on, whatever happened to the copy (a save QEMU
        // refused never paused it).
        let unpaused = match saved {
            Err(VmmError::CannotSave { .. }) => Ok(()),
            _ => driver.unpause(&src.dir).await,
        };
        if let Err(e) = &unpaused {
            tracing::error!(vm = %src.name, error = %banger_api::error::chain(e), "cannot let the clone's source run again");
        }
        tracing::info!(vm = %src.name, paused_ms = paused.elapsed().as_millis(), "clone source paused and running again");
        saved?;
        unpaused?;
        copied?;
        Ok((src.mac, src.ip))
    }

    /// Grows the restored guest's disks that the VM wants bigger than they
    /// were saved (a warm create of a larger `/root`); what the guest's
    /// agent then grows online.
    async fn grow_disks(&self, vm: &Vm, saved: DiskSizes) -> Result<Vec<Grow>> {
        let driver = self.drivers.driver(vm.vmm)?;
        let files = vm.files();
        let mut grow = Vec::new();
        let disks = [
            (
                "overlay",
                files.overlay(),
                saved.overlay,
                vm.overlay_size_bytes,
                banger_image::LABEL_OVERLAY,
            ),
            (
                "work",
                files.work(),
                saved.work,
                vm.disk_size_bytes,
                banger_image::LABEL_WORK,
            ),
        ];
        for (drive, path, was, wanted, label) in disks {
            // Whole sectors: what the guest's kernel can see of a disk.
            let wanted = wanted & !511;
            if wanted > was {
                driver.grow_disk(&vm.dir, drive, &path, wanted).await?;
                grow.push(Grow {
                    label: label.to_string(),
                    bytes: wanted,
                });
            }
        }
        Ok(grow)
    }

    /// Has the clone's agent give it its own identity.
    async fn take_over(
        &self,
        vm: &Vm,
        was: (banger_api::MacAddr, std::net::Ipv4Addr),
        grow: Vec<Grow>,
    ) -> Result<()> {
        let host_key = self.make_host_key(vm).await?;
        let authorized_key = ssh::public_key(&self.paths.ssh_key())?;
        let nameservers = banger_host::net::upstream_nameservers();
        let mut random = [0u8; 64 + 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .map_err(|e| HostError::io("cannot read /dev/urandom", e))?;
        let (seed, id) = random.split_at(64);
        let machine_id = id.iter().map(|b| format!("{b:02x}")).collect();
        let identity = self
            .guest_config(vm, &authorized_key, &host_key, &nameservers)
            .identity(was, seed, machine_id, time::OffsetDateTime::now_utc(), grow);
        // Longer than other agent calls: resize2fs may have a disk to grow.
        let done = banger_client::agent::for_vm(vm)
            .with_timeout(IDENTITY_TIMEOUT)
            .identity(&identity)
            .await
            .map_err(|e| VmError::Takeover {
                vm: vm.name.clone(),
                reason: banger_api::error::chain(&e),
            })?;
        tracing::debug!(vm = %vm.name, steps = ?done.steps, "guest took its identity");
        Ok(())
    }
}
