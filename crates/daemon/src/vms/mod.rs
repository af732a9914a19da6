//! VM orchestration: the lifecycle operations and what keeps them honest
//! across failures and restarts.
//!
//! - [`create`] — validate ([`shape`]), claim an address ([`claim`]), make
//!   the disks and guest configuration ([`disks`]), boot; roll back on failure
//! - [`boot`] — the start path shared by create and start; [`ready`] waits
//!   for the guest
//! - [`lifecycle`] — start, stop, restart, kill, delete; [`clone`] — `vm clone`
//! - [`suspend`] — suspend and resume, the state on disk in [`saved`]
//! - [`teardown`] — releasing what a VM holds, rolling a create back, and
//!   what happens when a VMM exits by itself ([`monitor`] notices)
//! - [`settings`] — `vm set`; [`prune`] — `vm prune`
//! - [`stats`], [`ports`], [`ssh`] — what a running VM looks like from the host
//! - [`forwards`] — `vm forward`
//! - [`reconcile`] — the daemon-start pass over recorded state

pub mod boot;
pub mod claim;
pub mod clone;
mod clone_live;
pub mod create;
pub mod disks;
mod error;
pub mod file_sync;
pub mod forwards;
pub mod lifecycle;
pub mod monitor;
pub mod ports;
mod probes;
pub mod prune;
pub mod ready;
pub mod reconcile;
pub mod saved;
pub mod settings;
pub mod shape;
pub mod ssh;
pub mod stats;
pub mod suspend;
pub mod teardown;
pub mod warm;

pub use error::{Result, VmError};

use std::collections::HashMap;
use std::sync::Arc;

use banger_api::paths::Paths;
use banger_api::Vm;
use banger_store::Store;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::caps::Pipeline;
use crate::config::{Config, Subnet};
use crate::drivers::Drivers;
use crate::host::Host;
use crate::images::Images;
use crate::journal::Journal;

/// What VM operations act on and through.
pub struct Vms {
    pub(crate) store: Arc<Store>,
    pub(crate) journal: Journal,
    pub(crate) host: Host,
    pub(crate) drivers: Arc<dyn Drivers>,
    pub(crate) caps: Pipeline,
    pub(crate) images: Arc<Images>,
    pub(crate) config: Arc<Config>,
    pub(crate) subnet: Subnet,
    pub(crate) paths: Paths,
    /// Serialises id/name/IP allocation with the insert that claims them
    /// (shared with image deletes, which check for users under it).
    pub(crate) alloc: Arc<Mutex<()>>,
    pub(crate) forwards: Arc<crate::caps::forward::Forwards>,
    locks: VmLocks,
    /// Concurrent first creates must not race to generate the SSH key.
    key_lock: Mutex<()>,
    /// What each guest listener turned out to be (`vm ports`).
    probes: probes::ProbeCache,
    /// A resumed guest's clock being set over SSH, per VM: ended when the
    /// VM's VMM goes (its ssh with it).
    clock_fixes: std::sync::Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// Warm templates: read while a create copies and restores one,
    /// written while `image warm` swaps a new one in.
    warm_lock: tokio::sync::RwLock<()>,
    /// Held by the `image warm` that is making a template.
    warming: Mutex<()>,
}

/// The parts [`Vms`] is made of.
pub struct Parts {
    pub store: Arc<Store>,
    pub journal: Journal,
    pub host: Host,
    pub drivers: Arc<dyn Drivers>,
    pub caps: Pipeline,
    pub images: Arc<Images>,
    pub config: Arc<Config>,
    pub subnet: Subnet,
    pub paths: Paths,
    pub alloc: Arc<Mutex<()>>,
    pub forwards: Arc<crate::caps::forward::Forwards>,
}

impl Vms {
    pub fn new(parts: Parts) -> Vms {
        Vms {
            store: parts.store,
            journal: parts.journal,
            host: parts.host,
            drivers: parts.drivers,
            caps: parts.caps,
            images: parts.images,
            config: parts.config,
            subnet: parts.subnet,
            paths: parts.paths,
            alloc: parts.alloc,
            forwards: parts.forwards,
            locks: VmLocks::default(),
            key_lock: Mutex::new(()),
            probes: probes::ProbeCache::default(),
            clock_fixes: std::sync::Mutex::default(),
            warm_lock: tokio::sync::RwLock::default(),
            warming: Mutex::new(()),
        }
    }

    pub fn list(&self) -> Result<Vec<Vm>> {
        Ok(self.store.list_vms()?)
    }

    /// A user's VM reference: a name, an id or an unambiguous id prefix.
    pub fn resolve(&self, reference: &str) -> Result<Vm> {
        Ok(self.store.resolve_vm(reference)?)
    }

    /// Reloads a VM after taking its lock (it may have changed while we waited).
    pub(crate) fn reload(&self, id: &str) -> Result<Vm> {
        self.store
            .get_vm(id)?
            .ok_or_else(|| VmError::DeletedMeanwhile(id.to_string()))
    }

    /// The image a VM was made from (gone: the error says which).
    pub(crate) fn image_of(&self, vm: &Vm) -> Result<banger_api::Image> {
        self.store
            .get_image(&vm.image)?
            .ok_or_else(|| VmError::ImageGone {
                vm: vm.name.clone(),
                image: vm.image.clone(),
            })
    }

    /// Whether the VM's image carries the guest agent (unknown image: assume
    /// so, and let the agent's answer tell).
    pub(crate) fn image_has_agent(&self, vm: &Vm) -> bool {
        self.store
            .get_image(&vm.image)
            .ok()
            .flatten()
            .is_none_or(|image| image.agent)
    }
}

/// One lock per VM: operations on a VM are serialised, different VMs run
/// in parallel.
#[derive(Default)]
struct VmLocks(std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>);

impl VmLocks {
    async fn lock(&self, id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

impl Vms {
    /// Takes the lock of one VM for the length of an operation.
    pub(crate) async fn lock(&self, id: &str) -> OwnedMutexGuard<()> {
        self.locks.lock(id).await
    }

    pub(crate) fn forget_lock(&self, id: &str) {
        self.locks.forget(id)
    }
}
