//! Host NAT for guests created or set with `--nat`: MASQUERADE of the
//! guest's address out of the default route's interface and FORWARD
//! accepts, through iptables (see `banger_host::privileged::NatRule`). The
//! rules exist while the VM runs with NAT on. Each carries the comment
//! `banger-<vm id>`, which is how banger finds exactly its own rules again:
//! reconcile removes tagged rules no running VM wants and restores missing
//! ones.

use std::sync::Arc;

use async_trait::async_trait;
use banger_api::{ApiError, Vm, VmState};
use banger_host::privileged::{NatRule, Op, Outcome, NAT_TAG_PREFIX};

use super::Capability;
use crate::app::App;
use crate::errors::{self, OpResult};
use crate::progress::Reporter;

pub struct Nat;

pub fn tag(vm: &Vm) -> String {
    format!("{NAT_TAG_PREFIX}{}", vm.id)
}

async fn apply(app: &App, vm: &Vm) -> OpResult<()> {
    // The rules follow whatever the default route is, but without one NAT
    // cannot work at all: say so instead of silently doing nothing.
    if app.host.net.uplink().await.map_err(errors::host)?.is_none() {
        return Err(ApiError::conflict(format!(
            "NAT for {} needs a default route on the host, and `ip route` shows none",
            vm.name
        ))
        .with_hint("connect the host to a network (a default route), or use --no-nat"));
    }
    let source = crate::vms::vm_ip(vm)?;
    let net = &app.host.net;
    net.perform(&Op::AddNat(NatRule {
        tag: tag(vm),
        source,
        bridge: app.config.bridge_name.clone(),
    }))
    .await
    .map_err(errors::host)?;
    net.perform(&Op::EnableForwarding)
        .await
        .map_err(errors::host)?;
    tracing::info!(vm = %vm.name, ip = %vm.ip, "NAT on");
    Ok(())
}

async fn remove(app: &App, vm: &Vm) -> OpResult<()> {
    app.host
        .net
        .perform(&Op::RemoveNat { tag: tag(vm) })
        .await
        .map_err(errors::host)?;
    Ok(())
}

#[async_trait]
impl Capability for Nat {
    fn name(&self) -> &'static str {
        "nat"
    }

    async fn prepare(&self, app: &App, vm: &mut Vm, r: &Reporter) -> OpResult<()> {
        if vm.nat {
            r.say("vm.nat", format!("enabling NAT for {}", vm.ip), Some(0.82));
            apply(app, vm).await?;
        }
        Ok(())
    }

    /// By tag, whatever `vm.nat` says now (it may have been switched while
    /// the VM was stopping); a no-op when there are no rules.
    async fn stopped(&self, app: &App, vm: &Vm) -> OpResult<()> {
        remove(app, vm).await
    }

    async fn updated(&self, app: &App, vm: &Vm) -> OpResult<()> {
        if !matches!(vm.state, VmState::Running | VmState::Starting) {
            return Ok(());
        }
        if vm.nat {
            apply(app, vm).await
        } else {
            remove(app, vm).await
        }
    }

    async fn reconcile(&self, app: &Arc<App>, vms: &[Vm]) -> OpResult<()> {
        let wanted: Vec<&Vm> = vms
            .iter()
            .filter(|vm| vm.nat && vm.state == VmState::Running)
            .collect();
        let installed = match app
            .host
            .net
            .perform(&Op::ListNat)
            .await
            .map_err(errors::host)?
        {
            Outcome::NatTags(tags) => tags,
            Outcome::Done => Vec::new(),
        };
        let mut first = None;
        for stale in installed
            .iter()
            .filter(|t| !wanted.iter().any(|vm| &tag(vm) == *t))
        {
            tracing::warn!(tag = %stale, "removing NAT rules no running VM wants");
            if let Err(e) = app
                .host
                .net
                .perform(&Op::RemoveNat { tag: stale.clone() })
                .await
            {
                tracing::error!(tag = %stale, error = %e, "cannot remove stale NAT rules");
                first.get_or_insert(errors::host(e));
            }
        }
        for vm in wanted {
            // Idempotent: restores whatever rule is missing.
            if let Err(e) = apply(app, vm).await {
                tracing::error!(vm = %vm.name, error = %e, "cannot restore NAT");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}
