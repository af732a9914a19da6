//! Undoing host resources recorded in the store's journal: every directory,
//! file, TAP device and process a VM owns is recorded before it is made and
//! forgotten only once it is gone, so any failure or crash can be undone.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use banger_host::net::Network;
use banger_host::privileged::Op;
use banger_host::process::{self, ProcessId};
use banger_host::HostError;
use banger_store::{Resource, ResourceKind, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot remove the {} {value}", .kind.as_str())]
    Undo {
        kind: ResourceKind,
        value: String,
        #[source]
        source: HostError,
    },
}

/// Program names of VMM and helper processes (for finding unrecorded ones).
const VMM_PROGRAMS: &[&str] = &[
    "qemu-system",
    "firecracker",
    "vhost-device-vsock",
    "banger-relay",
];

/// Marks a process resource whose PID is not known yet (between record and spawn).
pub const PENDING: &str = "pending";

/// What a running VM's processes are recorded as.
pub const PROCESSES: &[ResourceKind] = &[ResourceKind::Process, ResourceKind::Helper];

pub const ALL: &[ResourceKind] = &[
    ResourceKind::Process,
    ResourceKind::Helper,
    ResourceKind::Tap,
    ResourceKind::File,
    ResourceKind::Dir,
];

/// The journal, and what undoing it needs: the network (TAPs).
#[derive(Clone)]
pub struct Journal {
    store: Arc<Store>,
    net: Arc<dyn Network>,
}

impl Journal {
    pub fn new(store: Arc<Store>, net: Arc<dyn Network>) -> Journal {
        Journal { store, net }
    }

    /// Records a resource about to be made for `owner`; returns its row.
    pub fn record(&self, owner: &str, kind: ResourceKind, value: &str) -> Result<i64, StoreError> {
        self.store.record_resource(owner, kind, value)
    }

    /// Forgets a resource that is gone (or was never made).
    pub fn forget(&self, row: i64) -> Result<(), StoreError> {
        self.store.forget_resource(row)
    }

    /// Hands a resource to another owner in one update (a pool TAP to the
    /// VM that takes it).
    pub fn reassign(&self, row: i64, owner: &str) -> Result<(), StoreError> {
        self.store.reassign_resource(row, owner)
    }

    /// Removes one resource from the host, then forgets it. Already-gone
    /// resources count as undone. `vm_dir` finds a VMM whose PID was never
    /// recorded (by the VM directory on its command line).
    pub async fn undo(
        &self,
        resource: &Resource,
        vm_dir: Option<&Path>,
    ) -> Result<(), JournalError> {
        let failed = |source| JournalError::Undo {
            kind: resource.kind,
            value: resource.value.clone(),
            source,
        };
        match resource.kind {
            ResourceKind::Process | ResourceKind::Helper => {
                let mut victims: Vec<ProcessId> =
                    ProcessId::decode(&resource.value).into_iter().collect();
                // A crash between spawn and recording the PID leaves "pending".
                if let (Some(dir), ResourceKind::Process) = (vm_dir, resource.kind) {
                    victims.extend(process::find_by_arg(VMM_PROGRAMS, &dir.to_string_lossy()));
                }
                for victim in victims {
                    process::terminate(victim, Duration::from_secs(3))
                        .await
                        .map_err(failed)?;
                }
            }
            ResourceKind::Tap => {
                self.net
                    .perform(&Op::DeleteTap {
                        tap: resource.value.clone(),
                    })
                    .await
                    .map_err(failed)?;
            }
            ResourceKind::File | ResourceKind::Dir => {
                let removed = match resource.kind {
                    ResourceKind::Dir => std::fs::remove_dir_all(&resource.value),
                    _ => std::fs::remove_file(&resource.value),
                };
                match removed {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(failed(HostError::io(
                            format!("remove {}", resource.value),
                            e,
                        )))
                    }
                }
            }
        }
        self.store.forget_resource(resource.id)?;
        Ok(())
    }

    /// Undoes `owner`'s resources of the given kinds, newest first. Keeps
    /// going past failures so as much as possible is cleaned; returns the
    /// first error.
    pub async fn undo_kinds(
        &self,
        owner: &str,
        vm_dir: Option<&Path>,
        kinds: &[ResourceKind],
    ) -> Result<(), JournalError> {
        let resources = self.store.resources_of(owner)?;
        let mut first_error = None;
        for resource in resources.iter().rev().filter(|r| kinds.contains(&r.kind)) {
            if let Err(err) = self.undo(resource, vm_dir).await {
                tracing::error!(vm = owner, error = %banger_api::error::chain(&err), "cannot undo resource");
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The VMM process recorded for a VM, if any (the newest record).
    pub fn recorded_process(&self, vm_id: &str) -> Result<Option<ProcessId>, StoreError> {
        Ok(self
            .store
            .resources_of(vm_id)?
            .iter()
            .rev()
            .filter(|r| r.kind == ResourceKind::Process)
            .find_map(|r| ProcessId::decode(&r.value)))
    }
}
