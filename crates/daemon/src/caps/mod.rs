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
//! - [`work_disk`] — the persistent `/root` disk
//! - [`tap`] — the VM's TAP device on the bridge, from a warm pool
//! - [`nat`] — iptables NAT for guests that ask for it
//! - [`dns`] — `<name>.vm` records in the built-in DNS
//!
//! A new host integration is a new capability plus its `banger doctor` check.

pub mod dns;
pub mod nat;
pub mod tap;
pub mod work_disk;

use std::sync::Arc;

use async_trait::async_trait;
use banger_api::{Image, Vm};

use crate::app::App;
use crate::dns::VmDns;
use crate::errors::OpResult;
use crate::progress::Reporter;

#[async_trait]
pub trait Capability: Send + Sync {
    fn name(&self) -> &'static str;

    async fn create(&self, _app: &App, _vm: &Vm, _image: &Image, _r: &Reporter) -> OpResult<()> {
        Ok(())
    }

    /// May change the VM (e.g. which TAP it uses); the caller saves it.
    async fn prepare(&self, _app: &App, _vm: &mut Vm, _r: &Reporter) -> OpResult<()> {
        Ok(())
    }

    async fn running(&self, _app: &App, _vm: &Vm) -> OpResult<()> {
        Ok(())
    }

    /// Must succeed when there is nothing left to undo.
    async fn stopped(&self, _app: &App, _vm: &Vm) -> OpResult<()> {
        Ok(())
    }

    async fn updated(&self, _app: &App, _vm: &Vm) -> OpResult<()> {
        Ok(())
    }

    /// Make the host match `vms` (their states are already true).
    async fn reconcile(&self, _app: &Arc<App>, _vms: &[Vm]) -> OpResult<()> {
        Ok(())
    }
}

/// The pipeline, in the order hooks run.
pub fn pipeline(pool: &Arc<tap::TapPool>, vm_dns: &Arc<VmDns>) -> Vec<Arc<dyn Capability>> {
    vec![
        Arc::new(work_disk::WorkDisk),
        Arc::new(tap::Tap { pool: pool.clone() }),
        Arc::new(nat::Nat),
        Arc::new(dns::Dns {
            dns: vm_dns.clone(),
        }),
    ]
}

pub async fn create(app: &App, vm: &Vm, image: &Image, r: &Reporter) -> OpResult<()> {
    for cap in &app.caps {
        cap.create(app, vm, image, r).await?;
    }
    Ok(())
}

pub async fn prepare(app: &App, vm: &mut Vm, r: &Reporter) -> OpResult<()> {
    for cap in &app.caps {
        cap.prepare(app, vm, r).await?;
    }
    Ok(())
}

pub async fn running(app: &App, vm: &Vm) -> OpResult<()> {
    for cap in &app.caps {
        cap.running(app, vm).await?;
    }
    Ok(())
}

pub async fn updated(app: &App, vm: &Vm) -> OpResult<()> {
    for cap in &app.caps {
        cap.updated(app, vm).await?;
    }
    Ok(())
}

/// Undoes `prepare` and `running` in reverse order, continuing past
/// failures so as much as possible is released; returns the first error.
pub async fn stopped(app: &App, vm: &Vm) -> OpResult<()> {
    let mut first = None;
    for cap in app.caps.iter().rev() {
        if let Err(err) = cap.stopped(app, vm).await {
            tracing::error!(vm = %vm.name, capability = cap.name(), error = %err, "cannot release");
            first.get_or_insert(err);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Every capability reconciles, even when one fails.
pub async fn reconcile(app: &Arc<App>, vms: &[Vm]) {
    for cap in &app.caps {
        if let Err(err) = cap.reconcile(app, vms).await {
            tracing::error!(capability = cap.name(), error = %err, "reconcile incomplete; retried at the next start");
        }
    }
}
