//! `vm prune`: the stopped VMs nobody has started for a while, deleted.

use std::sync::Arc;
use std::time::Duration;

use banger_api::{Vm, VmState};

use super::{Result, Vms};

impl Vms {
    /// VMs stopped for longer than `stopped_for` (a VM whose stop time is
    /// unknown, from before it was recorded, counts from its last start or
    /// its creation); deleted unless `dry_run`. One that cannot be deleted
    /// is logged and left: the others still go.
    pub async fn prune(self: Arc<Self>, stopped_for: Duration, dry_run: bool) -> Result<Vec<Vm>> {
        let cutoff = time::OffsetDateTime::now_utc() - stopped_for;
        let due: Vec<Vm> = self
            .store
            .list_vms()?
            .into_iter()
            .filter(|vm| vm.state == VmState::Stopped)
            .filter(|vm| {
                let since = vm.stopped_at.or(vm.started_at).unwrap_or(vm.created_at);
                since <= cutoff
            })
            .collect();
        if dry_run {
            return Ok(due);
        }
        let mut pruned = Vec::new();
        for vm in due {
            match self.clone().delete(vm.id.clone(), false).await {
                Ok(deleted) => pruned.push(deleted),
                Err(e) => {
                    tracing::warn!(vm = %vm.name, error = %banger_api::error::chain(&e), "prune: cannot delete")
                }
            }
        }
        Ok(pruned)
    }
}
