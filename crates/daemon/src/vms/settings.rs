//! `vm set`: change vCPU, memory, work disk size or NAT of a VM. Shape
//! changes need a stopped VM; the work disk only grows. Everything is
//! validated before anything changes.

use std::path::Path;
use std::sync::Arc;

use banger_api::{format_size, parse_size, ApiError, UpdateVmRequest, Vm, VmState};

use super::create::validate_shape;
use super::lifecycle::{reload, resolve};
use super::VmFiles;
use crate::app::App;
use crate::caps;
use crate::errors::{self, OpResult};

pub async fn update(app: Arc<App>, reference: String, request: UpdateVmRequest) -> OpResult<Vm> {
    let vm = resolve(&app, &reference)?;
    let _guard = app.lock_vm(&vm.id).await;
    let mut vm = reload(&app, &vm.id)?;
    let reshapes =
        request.vcpu.is_some() || request.memory_mib.is_some() || request.disk_size.is_some();
    if reshapes && vm.state != VmState::Stopped {
        return Err(ApiError::conflict(format!(
            "VM {} is {}: vCPU, memory and disk size change only on a stopped VM",
            vm.name, vm.state
        ))
        .with_hint(format!("run `banger vm stop {}` first", vm.name)));
    }
    let vcpu = request.vcpu.unwrap_or(vm.vcpu);
    let memory_mib = request.memory_mib.unwrap_or(vm.memory_mib);
    validate_shape(vm.vmm, vcpu, memory_mib)?;
    let disk = match &request.disk_size {
        Some(size) => {
            let bytes = parse_size(size)?;
            if bytes < vm.disk_size_bytes {
                return Err(ApiError::invalid(format!(
                    "the work disk only grows: {} has {}, {} would shrink it",
                    vm.name,
                    format_size(vm.disk_size_bytes),
                    format_size(bytes)
                ))
                .with_hint("pass a size at least as large as the current one"));
            }
            Some(bytes)
        }
        None => None,
    };
    if let Some(bytes) = disk.filter(|b| *b > vm.disk_size_bytes) {
        let work = VmFiles::new(Path::new(&vm.dir)).work();
        app.host
            .disks
            .grow_ext4(&work, bytes)
            .await
            .map_err(errors::host)?;
        vm.disk_size_bytes = bytes;
    }
    vm.vcpu = vcpu;
    vm.memory_mib = memory_mib;
    let nat_changed = request.nat.is_some_and(|nat| nat != vm.nat);
    if let Some(nat) = request.nat {
        vm.nat = nat;
    }
    app.store.update_vm(&vm).map_err(errors::store)?;
    if nat_changed {
        // A running VM gets (or loses) its NAT rules now. If that fails the
        // setting goes back, so what is stored stays what is applied.
        if let Err(err) = caps::updated(&app, &vm).await {
            vm.nat = !vm.nat;
            let _ = caps::updated(&app, &vm).await;
            app.store.update_vm(&vm).map_err(errors::store)?;
            return Err(err);
        }
    }
    tracing::info!(vm = %vm.name, vcpu, memory_mib, disk = vm.disk_size_bytes, nat = vm.nat, "VM updated");
    Ok(vm)
}
