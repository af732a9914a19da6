//! `vm set`: change vCPU, memory, work disk size or NAT of a VM. Shape
//! changes need a stopped VM; the work disk only grows. Everything is
//! validated before anything changes.

use std::sync::Arc;

use banger_api::{format_size, parse_size, UpdateVmRequest, Vm, VmState};

use super::{shape, Result, VmError, Vms};

impl Vms {
    pub async fn update(
        self: Arc<Self>,
        reference: String,
        request: UpdateVmRequest,
    ) -> Result<Vm> {
        let vm = self.resolve(&reference)?;
        let _guard = self.lock(&vm.id).await;
        let mut vm = self.reload(&vm.id)?;
        let reshapes =
            request.vcpu.is_some() || request.memory_mib.is_some() || request.disk_size.is_some();
        if reshapes && vm.state != VmState::Stopped {
            return Err(VmError::NotStopped {
                vm: vm.name,
                state: vm.state,
            });
        }
        let vcpu = request.vcpu.unwrap_or(vm.vcpu);
        let memory_mib = request.memory_mib.unwrap_or(vm.memory_mib);
        shape::validate(vcpu, memory_mib)?;
        let disk = match &request.disk_size {
            Some(size) => {
                let bytes = parse_size(size).map_err(VmError::DiskSize)?;
                if bytes < vm.disk_size_bytes {
                    return Err(VmError::DiskShrink {
                        vm: vm.name,
                        current: format_size(vm.disk_size_bytes),
                        asked: format_size(bytes),
                    });
                }
                Some(bytes)
            }
            None => None,
        };
        if let Some(bytes) = disk.filter(|b| *b > vm.disk_size_bytes) {
            self.host.disks.grow_ext4(&vm.files().work(), bytes).await?;
            vm.disk_size_bytes = bytes;
        }
        vm.vcpu = vcpu;
        vm.memory_mib = memory_mib;
        let nat_changed = request.nat.is_some_and(|nat| nat != vm.nat);
        if let Some(nat) = request.nat {
            vm.nat = nat;
        }
        self.store.update_vm(&vm)?;
        if nat_changed {
            // A running VM gets (or loses) its NAT rules now. If that fails the
            // setting goes back, so what is stored stays what is applied.
            if let Err(err) = self.caps.updated(&vm).await {
                vm.nat = !vm.nat;
                let _ = self.caps.updated(&vm).await;
                self.store.update_vm(&vm)?;
                return Err(err.into());
            }
        }
        tracing::info!(vm = %vm.name, vcpu, memory_mib, disk = vm.disk_size_bytes, nat = vm.nat, "VM updated");
        Ok(vm)
    }
}
