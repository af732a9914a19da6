//! The capability pipeline: host integrations that plug into a VM's
//! lifecycle instead of being open-coded in it. Each capability gets the
//! same hooks, and the lifecycle calls them in order (undo in reverse):
//!
//! | hook        | when                                             |
//! |-------------|--------------------------------------------------|
//! | `create`    | once, while a VM is created (persistent things)  |
//! | `prepare`   | before the VMM launches (create, start, restart) |
//! | `running`   | once the guest is ready                          |
//! | `stopped`   | after the VMM is gone, however it went           |
//! | `updated`   | after `vm set` changed a setting                 |
//! | `reconcile` | at daemon start, over every recorded VM          |
//!
//! Each capability holds only what it uses (the way Firecracker's devices
//! are handed their resources, never the whole VMM):
//!
//! - [`work_disk`] — the persistent `/root` disk (the disks)
//! - [`tap`] — the VM's TAP device on the [`bridge`], from a warm pool
//!   (the network, the journal, the bridge)
//! - [`nat`] — iptables NAT for guests that ask for it (the network, the bridge)
//! - [`dns`] — `<name>.vm` records in the built-in DNS (its zone)
//! - [`forward`] — host ports relayed to guest ports (the store)
//!
//! A new host integration is a new capability plus its `banger doctor` check.

pub mod bridge;
pub mod dns;
pub mod forward;
pub mod nat;
pub mod tap;
pub mod work_disk;

use std::sync::Arc;

use async_trait::async_trait;
use banger_api::{Image, Vm};
use banger_host::HostError;
use banger_store::StoreError;

use crate::journal::JournalError;
use crate::progress::Reporter;

/// What a capability can fail at.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// NAT was asked for, but there is nowhere to send the traffic.
    #[error("NAT for {vm} needs a default route on the host, and `ip route` shows none")]
    NoUplink { vm: String },
}

pub type CapResult = Result<(), CapError>;

#[async_trait]
pub trait Capability: Send + Sync {
    fn name(&self) -> &'static str;

    async fn create(&self, _vm: &Vm, _image: &Image, _r: &Reporter) -> CapResult {
        Ok(())
    }

    /// May change the VM (e.g. which TAP it uses); the caller saves it.
    async fn prepare(&self, _vm: &mut Vm, _r: &Reporter) -> CapResult {
        Ok(())
    }

    async fn running(&self, _vm: &Vm) -> CapResult {
        Ok(())
    }

    /// Must succeed when there is nothing left to undo.
    async fn stopped(&self, _vm: &Vm) -> CapResult {
        Ok(())
    }

    async fn updated(&self, _vm: &Vm) -> CapResult {
        Ok(())
    }

    /// Make the host match `vms` (their states are already true).
    async fn reconcile(&self, _vms: &[Vm]) -> CapResult {
        Ok(())
    }
}

/// The capabilities, in the order hooks run.
#[derive(Clone)]
pub struct Pipeline {
    caps: Vec<Arc<dyn Capability>>,
}

impl Pipeline {
    pub fn new(caps: Vec<Arc<dyn Capability>>) -> Pipeline {
        Pipeline { caps }
    }

    pub async fn create(&self, vm: &Vm, image: &Image, r: &Reporter) -> CapResult {
        for cap in &self.caps {
            cap.create(vm, image, r).await?;
        }
        Ok(())
    }

    pub async fn prepare(&self, vm: &mut Vm, r: &Reporter) -> CapResult {
        for cap in &self.caps {
            cap.prepare(vm, r).await?;
        }
        Ok(())
    }

    pub async fn running(&self, vm: &Vm) -> CapResult {
        for cap in &self.caps {
            cap.running(vm).await?;
        }
        Ok(())
    }

    pub async fn updated(&self, vm: &Vm) -> CapResult {
        for cap in &self.caps {
            cap.updated(vm).await?;
        }
        Ok(())
    }

    /// Undoes `prepare` and `running` in reverse order, continuing past
    /// failures so as much as possible is released; returns the first error.
    pub async fn stopped(&self, vm: &Vm) -> CapResult {
        let mut first = None;
        for cap in self.caps.iter().rev() {
            if let Err(err) = cap.stopped(vm).await {
                tracing::error!(vm = %vm.name, capability = cap.name(), error = %banger_api::error::chain(&err), "cannot release");
                first.get_or_insert(err);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Every capability reconciles, even when one fails.
    pub async fn reconcile(&self, vms: &[Vm]) {
        for cap in &self.caps {
            if let Err(err) = cap.reconcile(vms).await {
                tracing::error!(capability = cap.name(), error = %banger_api::error::chain(&err), "reconcile incomplete; retried at the next start");
            }
        }
    }
}
