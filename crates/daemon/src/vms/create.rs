//! `vm create`: validate, claim a name and an address, make the disks and
//! the guest configuration, boot. Every host resource is journaled before it
//! is made, and any failure rolls the whole VM back.

use std::sync::Arc;

use banger_api::names::validate_name;
use banger_api::{parse_size, CreateVmRequest, Vm};
use banger_host::{ssh, tools};

use super::shape::Shape;
use super::{shape, Result, VmError, Vms};
use crate::crash;
use crate::progress::Reporter;

/// Tools every VM operation needs.
pub const VM_TOOLS: &[&str] = &[
    "mkfs.ext4",
    "e2fsck",
    "resize2fs",
    "ip",
    "ssh",
    "ssh-keygen",
];

impl Vms {
    pub async fn create(
        self: Arc<Self>,
        request: CreateVmRequest,
        reporter: Reporter,
    ) -> Result<Vm> {
        let since = std::time::Instant::now();
        let vcpu = request.vcpu.unwrap_or(self.config.default_vcpu);
        let memory_mib = request.memory_mib.unwrap_or(self.config.default_memory_mib);
        shape::validate(vcpu, memory_mib)?;
        let disk_size = match &request.disk_size {
            Some(size) => parse_size(size).map_err(VmError::DiskSize)?,
            None => self.config.disk_size()?,
        };
        if disk_size < shape::MIN_DISK {
            return Err(VmError::DiskTooSmall);
        }
        let overlay_size = self.config.overlay_bytes()?;
        if let Some(name) = &request.name {
            validate_name(name)?;
            self.ensure_name_free(name)?;
        }
        // Fail on a missing tool before anything is made.
        self.drivers.driver(self.drivers.default_kind())?;
        tools::require_all(VM_TOOLS)?;
        let image_name = request
            .image
            .clone()
            .unwrap_or_else(|| self.config.default_image.clone());
        let image = self.images.ensure(&image_name, &reporter).await?;
        {
            let _key = self.key_lock.lock().await;
            ssh::ensure_keypair(self.host.runner.as_ref(), &self.paths.ssh_key(), "banger").await?;
        }

        let shape = Shape {
            vcpu,
            memory_mib,
            disk_size_bytes: disk_size,
            overlay_size_bytes: overlay_size,
            nat: request.nat,
        };
        let mut vm = self.claim(request.name, &image, shape).await?;
        let _guard = self.lock(&vm.id).await;
        crash::point("create.claimed");
        reporter.say(
            "vm.claim",
            format!("VM {} ({}) gets {} on {}", vm.name, vm.id, vm.ip, vm.tap),
            Some(0.6),
        );

        // A template is read, copied and restored under this: `image warm`
        // swaps one in only between the creates that use it.
        let warm = match request.cold {
            true => None,
            false => {
                let templates = self.warm_lock.read().await;
                self.template_for(&vm, &image).map(|t| (templates, t))
            }
        };
        let result = async {
            if let Some((templates, template)) = warm {
                let made = self
                    .create_warm(&mut vm, &image, template, &reporter, since)
                    .await;
                drop(templates);
                return made;
            }
            self.prepare_disks(&vm, &image, &reporter).await?;
            crash::point("create.disks");
            self.boot(&mut vm, &image, &reporter, since).await
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(vm = %vm.name, id = %vm.id, ip = %vm.ip, "VM created");
                self.write_ssh_config();
                if !self.config.file_sync.is_empty() && image.agent {
                    reporter.say(
                        "vm.sync",
                        format!("copying {} file_sync entries", self.config.file_sync.len()),
                        None,
                    );
                    for warning in self.sync_files(&vm).await {
                        reporter.say("vm.sync", warning, None);
                    }
                }
                Ok(vm)
            }
            Err(err) => {
                tracing::warn!(vm = %vm.name, error = %banger_api::error::chain(&err), "create failed; rolling back");
                reporter.say(
                    "vm.rollback",
                    format!("create failed; removing everything made for {}", vm.name),
                    None,
                );
                self.rollback(&vm).await;
                Err(err)
            }
        }
    }
}
