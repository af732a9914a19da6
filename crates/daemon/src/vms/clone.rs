//! `vm clone SOURCE [--name NEW]`: a new VM with a stopped VM's files — its
//! system overlay (what it changed under `/`) and its `/root` — and an
//! identity of its own: name, id, address, MAC, TAP, SSH host key (and
//! known_hosts line), hostname and `.vm` record. The machine-id and the
//! systemd random seed the source wrote are taken out, so the clone's
//! systemd makes its own and the kernel's RNG is not seeded alike.
//! The copies are sparse (reflinked where the filesystem can). A running
//! source is cloned with its processes ([`super::clone_live`]).

use std::sync::Arc;
use std::time::Instant;

use banger_api::names::validate_name;
use banger_api::{Vm, VmState};
use banger_host::disk::ImageFile;
use banger_host::{ssh, tools, HostError};
use banger_image::{LABEL_OVERLAY, LABEL_WORK};
use banger_store::ResourceKind;

use super::create::VM_TOOLS;
use super::shape::Shape;
use super::{Result, VmError, Vms};
use crate::crash;
use crate::progress::Reporter;

/// What the source's guest wrote about itself that must not be shared.
const NOT_SHARED: &[&str] = &[
    "/upper/etc/machine-id",
    "/upper/var/lib/systemd/random-seed",
    "/upper/var/lib/dbus/machine-id",
    // Host keys the source's sshd generated beside banger's ed25519 one.
    "/upper/etc/ssh/ssh_host_rsa_key",
    "/upper/etc/ssh/ssh_host_rsa_key.pub",
    "/upper/etc/ssh/ssh_host_ecdsa_key",
    "/upper/etc/ssh/ssh_host_ecdsa_key.pub",
];

impl Vms {
    pub async fn clone_vm(
        self: Arc<Self>,
        source: String,
        name: Option<String>,
        reporter: Reporter,
    ) -> Result<Vm> {
        let since = Instant::now();
        let src = self.resolve(&source)?;
        if let Some(name) = &name {
            validate_name(name)?;
            self.ensure_name_free(name)?;
        }
        tools::require_all(VM_TOOLS)?;
        tools::require("debugfs")?;
        self.drivers.driver(src.vmm)?;
        let image = self.image_of(&src)?;
        let shape = Shape {
            vcpu: src.vcpu,
            memory_mib: src.memory_mib,
            disk_size_bytes: src.disk_size_bytes,
            overlay_size_bytes: src.overlay_size_bytes,
            nat: src.nat,
        };
        let mut vm = self.claim(name, &image, shape).await?;
        let _guard = self.lock(&vm.id).await;
        reporter.say(
            "vm.claim",
            format!(
                "clone {} of {} gets {} on {}",
                vm.name, src.name, vm.ip, vm.tap
            ),
            Some(0.2),
        );
        let running = self.reload(&src.id)?.state == VmState::Running;
        let result = async {
            if running {
                return self
                    .clone_live(&src.id, &mut vm, &image, &reporter, since)
                    .await;
            }
            self.copy_disks(&src.id, &vm, &reporter).await?;
            crash::point("clone.copied");
            self.give_identity(&vm, &reporter).await?;
            self.boot(&mut vm, &image, &reporter, since).await
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(vm = %vm.name, source = %src.name, ip = %vm.ip, "VM cloned");
                self.write_ssh_config();
                Ok(vm)
            }
            Err(err) => {
                tracing::warn!(vm = %vm.name, error = %banger_api::error::chain(&err), "clone failed; rolling back");
                self.rollback(&vm).await;
                Err(err)
            }
        }
    }

    /// Copies the source's overlay and work disk into the clone's directory,
    /// holding the source's lock so it cannot start meanwhile.
    async fn copy_disks(&self, source_id: &str, vm: &Vm, reporter: &Reporter) -> Result<()> {
        let files = vm.files();
        self.journal
            .record(&vm.id, ResourceKind::Dir, &vm.dir.to_string_lossy())?;
        std::fs::create_dir_all(&files.dir)
            .map_err(|e| HostError::path_io("cannot create", &files.dir, e))?;
        let _source_guard = self.lock(source_id).await;
        let src = self.reload(source_id)?;
        if src.state != VmState::Stopped {
            return Err(VmError::CloneNeedsStopped {
                vm: src.name,
                state: src.state,
            });
        }
        reporter.say(
            "vm.copy",
            format!("copying {}'s system overlay and /root", src.name),
            Some(0.4),
        );
        self.copy_vm_disks(&src, vm).await
    }

    /// Copies `src`'s overlay and work disk for `vm` (sized as `vm`'s).
    pub(super) async fn copy_vm_disks(&self, src: &Vm, vm: &Vm) -> Result<()> {
        let (from, to) = (src.files(), vm.files());
        self.host
            .disks
            .clone_ext4(
                &from.overlay(),
                &to.overlay(),
                vm.overlay_size_bytes,
                LABEL_OVERLAY,
            )
            .await?;
        self.host
            .disks
            .clone_ext4(&from.work(), &to.work(), vm.disk_size_bytes, LABEL_WORK)
            .await?;
        Ok(())
    }

    /// Writes the clone's own configuration over the source's in the copied
    /// overlay, and takes out what the source's guest made of its identity.
    async fn give_identity(&self, vm: &Vm, reporter: &Reporter) -> Result<()> {
        reporter.say(
            "vm.identity",
            "giving the clone its own identity",
            Some(0.6),
        );
        let host_key = self.make_host_key(vm).await?;
        let authorized_key = ssh::public_key(&self.paths.ssh_key())?;
        let nameservers = banger_host::net::upstream_nameservers();
        let files: Vec<ImageFile> = self
            .guest_config(vm, &authorized_key, &host_key, &nameservers)
            .files()
            .into_iter()
            .map(|f| ImageFile {
                path: format!("/upper/{}", f.path),
                mode: f.mode,
                contents: f.contents.into_bytes(),
            })
            .collect();
        self.host
            .disks
            .replace_files(&vm.files().overlay(), &files, NOT_SHARED)
            .await?;
        Ok(())
    }
}
