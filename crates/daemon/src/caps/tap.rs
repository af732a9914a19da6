//! The VM's TAP device on the bridge. Creating a TAP takes three `ip`
//! calls; a warm pool of `tap_pool_size` idle TAPs, refilled in the
//! background, takes that off the create path. Pool TAPs are journaled under
//! [`POOL_OWNER`] before they are made; taking one moves its journal entry
//! to the VM in one update, so a crash never leaves a TAP nobody owns. A
//! TAP is not reused after its VM stops: the next start takes a fresh one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use banger_api::Vm;
use banger_host::net::Network;
use banger_host::privileged::Op;
use banger_store::ResourceKind;
use rand::Rng;
use tokio::sync::Notify;

use super::bridge::Bridge;
use super::{CapError, CapResult, Capability};
use crate::crash;
use crate::journal::Journal;
use crate::progress::Reporter;

/// The journal owner of idle pool TAPs (never a VM id: those are hex).
pub const POOL_OWNER: &str = "@pool";

pub struct TapPool {
    size: usize,
    net: Arc<dyn Network>,
    journal: Journal,
    bridge: Arc<Bridge>,
    /// Set by [`TapPool::drain`] at daemon stop: no more TAPs are made.
    closed: AtomicBool,
    /// Idle TAPs and their journal rows.
    idle: Mutex<VecDeque<(String, i64)>>,
    wake: Notify,
}

impl TapPool {
    pub fn new(
        size: usize,
        net: Arc<dyn Network>,
        journal: Journal,
        bridge: Arc<Bridge>,
    ) -> TapPool {
        TapPool {
            size,
            net,
            journal,
            bridge,
            closed: AtomicBool::default(),
            idle: Mutex::default(),
            wake: Notify::new(),
        }
    }

    pub fn size(&self) -> usize {
        self.size
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
    async fn take(&self, vm_id: &str) -> Option<String> {
        loop {
            let (tap, row) = self.lock().pop_front()?;
            if self.net.link_master(&tap).as_deref() != Some(self.bridge.name.as_str()) {
                // Removed, or left detached when someone recreated the
                // bridge: it would give the guest no network. Drop it.
                tracing::warn!(tap, "pool TAP is not on the bridge any more; replacing it");
                if self.net.perform(&Op::DeleteTap { tap }).await.is_ok() {
                    let _ = self.journal.forget(row);
                }
                continue;
            }
            match self.journal.reassign(row, vm_id) {
                Ok(()) => return Some(tap),
                Err(e) => {
                    tracing::error!(error = %banger_api::error::chain(&e), tap, "cannot hand a pool TAP to a VM");
                    self.lock().push_front((tap, row));
                    return None;
                }
            }
        }
    }

    /// Runs for the life of the daemon: fills the pool whenever woken.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            while self.idle_count() < self.size && !self.is_closed() {
                if let Err(e) = self.add_one().await {
                    tracing::warn!(error = %banger_api::error::chain(&e), "cannot fill the TAP pool; creates make their own TAPs");
                    // Do not spin on a host that refuses: wait for the next wake.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }

    async fn add_one(&self) -> CapResult {
        self.bridge.ensure().await?;
        let tap = format!("bgp-{:08x}", rand::thread_rng().gen::<u32>());
        let row = self.journal.record(POOL_OWNER, ResourceKind::Tap, &tap)?;
        let created = self
            .net
            .perform(&Op::CreateTap {
                tap: tap.clone(),
                bridge: self.bridge.name.clone(),
                user: None,
            })
            .await;
        if let Err(e) = created {
            let _ = self.net.perform(&Op::DeleteTap { tap: tap.clone() }).await;
            let _ = self.journal.forget(row);
            return Err(CapError::Host(e));
        }
        if self.is_closed() {
            // The daemon is stopping and drain has run: do not leave it.
            let _ = self.net.perform(&Op::DeleteTap { tap }).await;
            let _ = self.journal.forget(row);
            return Ok(());
        }
        self.lock().push_back((tap, row));
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Removes every idle TAP (graceful daemon stop).
    pub async fn drain(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let idle: Vec<_> = self.lock().drain(..).collect();
        for (tap, row) in idle {
            if self.net.perform(&Op::DeleteTap { tap }).await.is_ok() {
                let _ = self.journal.forget(row);
            }
        }
    }
}

pub struct Tap {
    pub net: Arc<dyn Network>,
    pub journal: Journal,
    pub bridge: Arc<Bridge>,
    pub pool: Arc<TapPool>,
}

#[async_trait]
impl Capability for Tap {
    fn name(&self) -> &'static str {
        "tap"
    }

    async fn prepare(&self, vm: &mut Vm, r: &Reporter) -> CapResult {
        self.bridge.ensure().await?;
        let bridge = &self.bridge.name;
        if let Some(tap) = self.pool.take(&vm.id).await {
            vm.tap = tap;
            r.say(
                "vm.network",
                format!("using warm TAP {} on bridge {bridge}", vm.tap),
                Some(0.80),
            );
        } else {
            vm.tap = format!("bg-{}", vm.id);
            r.say(
                "vm.network",
                format!("attaching TAP {} to bridge {bridge}", vm.tap),
                Some(0.80),
            );
            self.journal.record(&vm.id, ResourceKind::Tap, &vm.tap)?;
            self.net
                .perform(&Op::CreateTap {
                    tap: vm.tap.clone(),
                    bridge: bridge.clone(),
                    user: None,
                })
                .await?;
        }
        self.pool.refill();
        crash::point("boot.tap");
        Ok(())
    }

    async fn stopped(&self, vm: &Vm) -> CapResult {
        self.journal
            .undo_kinds(&vm.id, Some(&vm.dir), &[ResourceKind::Tap])
            .await?;
        Ok(())
    }

    /// Old pool TAPs were removed as orphans; refill once the bridge exists
    /// (a daemon that never ran a VM makes no network devices).
    async fn reconcile(&self, _vms: &[Vm]) -> CapResult {
        if self.bridge.exists() {
            self.pool.refill();
        }
        Ok(())
    }
}
