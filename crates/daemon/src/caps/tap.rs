//! The VM's TAP device on the bridge. Creating a TAP takes three `ip`
//! calls; a warm pool of `tap_pool_size` idle TAPs, refilled in the
//! background, takes that off the create path. Pool TAPs are journaled under
//! [`POOL_OWNER`] before they are made; taking one moves its journal entry
//! to the VM in one update, so a crash never leaves a TAP nobody owns. A
//! TAP is not reused after its VM stops: the next start takes a fresh one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use banger_api::Vm;
use banger_host::privileged::Op;
use banger_store::ResourceKind;
use rand::Rng;
use tokio::sync::Notify;

use super::Capability;
use crate::app::App;
use crate::crash;
use crate::errors::{self, OpResult};
use crate::progress::Reporter;
use crate::vms::journal;

/// The journal owner of idle pool TAPs (never a VM id: those are hex).
pub const POOL_OWNER: &str = "@pool";

pub struct TapPool {
    size: usize,
    /// Set by [`TapPool::drain`] at daemon stop: no more TAPs are made.
    closed: std::sync::atomic::AtomicBool,
    /// Idle TAPs and their journal rows.
    idle: Mutex<VecDeque<(String, i64)>>,
    wake: Notify,
}

impl TapPool {
    pub fn new(size: usize) -> TapPool {
        TapPool {
            size,
            closed: Default::default(),
            idle: Mutex::default(),
            wake: Notify::new(),
        }
    }

    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, i64)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the filler to top the pool up.
    pub fn refill(&self) {
        if self.size > 0 {
            self.wake.notify_one();
        }
    }

    /// An idle TAP on the bridge, now journaled as the VM's; `None` when
    /// the pool is empty.
    async fn take(&self, app: &App, vm_id: &str) -> Option<String> {
        loop {
            let (tap, row) = self.lock().pop_front()?;
            if app.host.net.link_master(&tap).as_deref() != Some(app.config.bridge_name.as_str()) {
                // Removed, or left detached when someone recreated the
                // bridge: it would give the guest no network. Drop it.
                tracing::warn!(tap, "pool TAP is not on the bridge any more; replacing it");
                if app.host.net.perform(&Op::DeleteTap { tap }).await.is_ok() {
                    let _ = app.store.forget_resource(row);
                }
                continue;
            }
            match app.store.reassign_resource(row, vm_id) {
                Ok(()) => return Some(tap),
                Err(e) => {
                    tracing::error!(error = %e, tap, "cannot hand a pool TAP to a VM");
                    self.lock().push_front((tap, row));
                    return None;
                }
            }
        }
    }

    /// Runs for the life of the daemon: fills the pool whenever woken.
    pub async fn run(self: Arc<Self>, app: Arc<App>) {
        loop {
            self.wake.notified().await;
            while self.idle_count() < self.size && !self.is_closed() {
                if let Err(e) = self.add_one(&app).await {
                    tracing::warn!(error = %e, "cannot fill the TAP pool; creates make their own TAPs");
                    // Do not spin on a host that refuses: wait for the next wake.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }

    async fn add_one(&self, app: &App) -> OpResult<()> {
        ensure_bridge(app).await?;
        let tap = format!("bgp-{:08x}", rand::thread_rng().gen::<u32>());
        let row = app
            .store
            .record_resource(POOL_OWNER, ResourceKind::Tap, &tap)
            .map_err(errors::store)?;
        let created = app
            .host
            .net
            .perform(&Op::CreateTap {
                tap: tap.clone(),
                bridge: app.config.bridge_name.clone(),
            })
            .await;
        if let Err(e) = created {
            let _ = app
                .host
                .net
                .perform(&Op::DeleteTap { tap: tap.clone() })
                .await;
            let _ = app.store.forget_resource(row);
            return Err(errors::host(e));
        }
        if self.is_closed() {
            // The daemon is stopping and drain has run: do not leave it.
            let _ = app.host.net.perform(&Op::DeleteTap { tap }).await;
            let _ = app.store.forget_resource(row);
            return Ok(());
        }
        self.lock().push_back((tap, row));
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Removes every idle TAP (graceful daemon stop).
    pub async fn drain(&self, app: &App) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let idle: Vec<_> = self.lock().drain(..).collect();
        for (tap, row) in idle {
            if app.host.net.perform(&Op::DeleteTap { tap }).await.is_ok() {
                let _ = app.store.forget_resource(row);
            }
        }
    }
}

/// The bridge exists with the gateway address and is up; concurrent
/// callers are serialised.
pub async fn ensure_bridge(app: &App) -> OpResult<()> {
    let _guard = app.bridge_lock.lock().await;
    app.host
        .net
        .perform(&Op::EnsureBridge {
            bridge: app.config.bridge_name.clone(),
            gateway: app.subnet.gateway(),
            prefix: app.subnet.prefix,
        })
        .await
        .map_err(errors::host)?;
    Ok(())
}

pub struct Tap {
    pub pool: Arc<TapPool>,
}

#[async_trait]
impl Capability for Tap {
    fn name(&self) -> &'static str {
        "tap"
    }

    async fn prepare(&self, app: &App, vm: &mut Vm, r: &Reporter) -> OpResult<()> {
        ensure_bridge(app).await?;
        if let Some(tap) = self.pool.take(app, &vm.id).await {
            vm.tap = tap;
            r.say(
                "vm.network",
                format!(
                    "using warm TAP {} on bridge {}",
                    vm.tap, app.config.bridge_name
                ),
                Some(0.80),
            );
        } else {
            vm.tap = format!("bg-{}", vm.id);
            r.say(
                "vm.network",
                format!(
                    "attaching TAP {} to bridge {}",
                    vm.tap, app.config.bridge_name
                ),
                Some(0.80),
            );
            app.store
                .record_resource(&vm.id, ResourceKind::Tap, &vm.tap)
                .map_err(errors::store)?;
            app.host
                .net
                .perform(&Op::CreateTap {
                    tap: vm.tap.clone(),
                    bridge: app.config.bridge_name.clone(),
                })
                .await
                .map_err(errors::host)?;
        }
        self.pool.refill();
        crash::point("boot.tap");
        Ok(())
    }

    async fn stopped(&self, app: &App, vm: &Vm) -> OpResult<()> {
        journal::undo_kinds(app, &vm.id, Some(&vm.dir), &[ResourceKind::Tap]).await
    }

    /// Old pool TAPs were removed as orphans; refill once the bridge exists
    /// (a daemon that never ran a VM makes no network devices).
    async fn reconcile(&self, app: &Arc<App>, _vms: &[Vm]) -> OpResult<()> {
        if app.host.net.has_link(&app.config.bridge_name) {
            self.pool.refill();
        }
        Ok(())
    }
}
