//! Undoing host resources recorded in the store's journal.

use std::time::Duration;

use banger_host::privileged::Op;
use banger_host::process::{self, ProcessId};
use banger_store::{Resource, ResourceKind};

use crate::app::App;
use crate::errors::{self, OpResult};

/// Program names of VMM and helper processes (for finding unrecorded ones).
const VMM_PROGRAMS: &[&str] = &["qemu-system", "firecracker", "vhost-device-vsock"];

/// Marks a process resource whose PID is not known yet (between record and spawn).
pub const PENDING: &str = "pending";

/// Removes one resource from the host, then forgets it. Already-gone
/// resources count as undone.
pub async fn undo(app: &App, resource: &Resource, vm_dir: Option<&str>) -> OpResult<()> {
    match resource.kind {
        ResourceKind::Process | ResourceKind::Helper => {
            let mut victims: Vec<ProcessId> =
                ProcessId::decode(&resource.value).into_iter().collect();
            // A crash between spawn and recording the PID leaves "pending":
            // find the VMM (and its helper) by the VM directory on its
            // command line.
            if let (Some(dir), ResourceKind::Process) = (vm_dir, resource.kind) {
                victims.extend(process::find_by_arg(VMM_PROGRAMS, dir));
            }
            for victim in victims {
                process::terminate(victim, Duration::from_secs(3))
                    .await
                    .map_err(errors::host)?;
            }
        }
        ResourceKind::Tap => {
            app.host
                .net
                .perform(&Op::DeleteTap {
                    tap: resource.value.clone(),
                })
                .await
                .map_err(errors::host)?;
        }
        ResourceKind::File => match std::fs::remove_file(&resource.value) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(errors::host(banger_host::HostError::io(
                    format!("remove {}", resource.value),
                    e,
                )))
            }
        },
        ResourceKind::Dir => match std::fs::remove_dir_all(&resource.value) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(errors::host(banger_host::HostError::io(
                    format!("remove {}", resource.value),
                    e,
                )))
            }
        },
    }
    app.store
        .forget_resource(resource.id)
        .map_err(errors::store)
}

/// Undoes the VM's resources of the given kinds, newest first. Keeps going
/// past failures so as much as possible is cleaned; returns the first error.
pub async fn undo_kinds(
    app: &App,
    vm_id: &str,
    vm_dir: Option<&str>,
    kinds: &[ResourceKind],
) -> OpResult<()> {
    let resources = app.store.resources_of(vm_id).map_err(errors::store)?;
    let mut first_error = None;
    for resource in resources.iter().rev().filter(|r| kinds.contains(&r.kind)) {
        if let Err(err) = undo(app, resource, vm_dir).await {
            tracing::error!(vm = vm_id, kind = ?resource.kind, value = %resource.value, error = %err, "cannot undo resource");
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// What a running VM's processes are recorded as.
pub const PROCESSES: &[ResourceKind] = &[ResourceKind::Process, ResourceKind::Helper];

pub const ALL: &[ResourceKind] = &[
    ResourceKind::Process,
    ResourceKind::Helper,
    ResourceKind::Tap,
    ResourceKind::File,
    ResourceKind::Dir,
];

/// The VMM process recorded for a VM, if any (the newest record).
pub fn recorded_process(app: &App, vm_id: &str) -> OpResult<Option<ProcessId>> {
    Ok(app
        .store
        .resources_of(vm_id)
        .map_err(errors::store)?
        .iter()
        .rev()
        .filter(|r| r.kind == ResourceKind::Process)
        .find_map(|r| ProcessId::decode(&r.value)))
}
