//! Host NAT for guests created or set with `--nat`: MASQUERADE of the
//! guest's address out of the default route's interface and FORWARD
//! accepts, through iptables (see `banger_host::privileged::NatRule`). The
//! rules exist while the VM runs with NAT on. Each carries the comment
//! `banger-<vm id>`, which is how banger finds exactly its own rules again:
//! reconcile removes tagged rules no running VM wants and restores missing
//! ones.

use std::sync::Arc;

use async_trait::async_trait;
use banger_api::{Vm, VmState};
use banger_host::net::Network;
use banger_host::privileged::{NatRule, Op, Outcome, NAT_TAG_PREFIX};

use super::bridge::Bridge;
use super::{CapError, CapResult, Capability};
use crate::progress::Reporter;

pub struct Nat {
    pub net: Arc<dyn Network>,
    pub bridge: Arc<Bridge>,
}

pub fn tag(vm: &Vm) -> String {
    format!("{NAT_TAG_PREFIX}{}", vm.id)
}

impl Nat {
    async fn apply(&self, vm: &Vm) -> CapResult {
        // The rules follow whatever the default route is, but without one NAT
        // cannot work at all: say so instead of silently doing nothing.
        if self.net.uplink().await?.is_none() {
            return Err(CapError::NoUplink {
                vm: vm.name.clone(),
            });
        }
        self.net
            .perform(&Op::AddNat(NatRule {
                tag: tag(vm),
                source: vm.ip,
                bridge: self.bridge.name.clone(),
            }))
            .await?;
        self.net.perform(&Op::EnableForwarding).await?;
        tracing::info!(vm = %vm.name, ip = %vm.ip, "NAT on");
        Ok(())
    }

    async fn remove(&self, tag: String) -> CapResult {
        self.net.perform(&Op::RemoveNat { tag }).await?;
        Ok(())
    }
}

#[async_trait]
impl Capability for Nat {
    fn name(&self) -> &'static str {
        "nat"
    }

    async fn prepare(&self, vm: &mut Vm, r: &Reporter) -> CapResult {
        if vm.nat {
            r.say("vm.nat", format!("enabling NAT for {}", vm.ip), Some(0.82));
            self.apply(vm).await?;
        }
        Ok(())
    }

    /// By tag, whatever `vm.nat` says now (it may have been switched while
    /// the VM was stopping); a no-op when there are no rules.
    async fn stopped(&self, vm: &Vm) -> CapResult {
        self.remove(tag(vm)).await
    }

    async fn updated(&self, vm: &Vm) -> CapResult {
        if !matches!(vm.state, VmState::Running | VmState::Starting) {
            return Ok(());
        }
        if vm.nat {
            self.apply(vm).await
        } else {
            self.remove(tag(vm)).await
        }
    }

    async fn reconcile(&self, vms: &[Vm]) -> CapResult {
        let wanted: Vec<&Vm> = vms
            .iter()
            .filter(|vm| vm.nat && vm.state == VmState::Running)
            .collect();
        let installed = match self.net.perform(&Op::ListNat).await? {
            Outcome::NatTags(tags) => tags,
            Outcome::Done => Vec::new(),
        };
        let mut first = None;
        for stale in installed
            .into_iter()
            .filter(|t| !wanted.iter().any(|vm| tag(vm) == *t))
        {
            tracing::warn!(tag = %stale, "removing NAT rules no running VM wants");
            if let Err(e) = self.remove(stale.clone()).await {
                tracing::error!(tag = %stale, error = %banger_api::error::chain(&e), "cannot remove stale NAT rules");
                first.get_or_insert(e);
            }
        }
        for vm in wanted {
            // Idempotent: restores whatever rule is missing.
            if let Err(e) = self.apply(vm).await {
                tracing::error!(vm = %vm.name, error = %banger_api::error::chain(&e), "cannot restore NAT");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    //! The capability on its own: a network that records what it is asked.
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use banger_host::HostError;

    use super::*;
    use crate::config::Subnet;

    #[derive(Default)]
    struct Rules {
        tags: Mutex<BTreeSet<String>>,
        no_uplink: bool,
    }

    #[async_trait]
    impl Network for Rules {
        async fn perform(&self, op: &Op) -> Result<Outcome, HostError> {
            op.validate()?;
            let mut tags = self.tags.lock().unwrap();
            match op {
                Op::AddNat(rule) => drop(tags.insert(rule.tag.clone())),
                Op::RemoveNat { tag } => drop(tags.remove(tag)),
                Op::ListNat => return Ok(Outcome::NatTags(tags.iter().cloned().collect())),
                _ => {}
            }
            Ok(Outcome::Done)
        }
        async fn uplink(&self) -> Result<Option<String>, HostError> {
            Ok((!self.no_uplink).then(|| "eth0".into()))
        }
        fn has_link(&self, _: &str) -> bool {
            true
        }
        fn link_master(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn vm(id: &str, nat: bool, state: VmState) -> Vm {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": format!("vm-{id}"), "state": state, "image": "default",
            "vmm": "qemu", "accel": "tcg", "vcpu": 1, "memory_mib": 256,
            "disk_size_bytes": 1, "overlay_size_bytes": 1, "nat": nat,
            "ip": "172.30.0.2", "mac": "52:54:00:00:00:01", "tap": "bg-x",
            "created_at": "2026-12-01T00:00:00Z", "dir": "/v",
        }))
        .unwrap()
    }

    fn nat(net: Arc<Rules>) -> Nat {
        let subnet = Subnet::parse("172.30.0.0/24").unwrap();
        Nat {
            bridge: Arc::new(Bridge::new("banger0", subnet, net.clone())),
            net,
        }
    }

    #[tokio::test]
    async fn reconcile_keeps_exactly_the_rules_running_vms_want() {
        let net = Arc::new(Rules::default());
        net.tags.lock().unwrap().extend([
            "banger-0000dead0000".to_string(),
            "banger-aaaaaaaaaaaa".to_string(),
        ]);
        let vms = [
            vm("aaaaaaaaaaaa", true, VmState::Running),
            vm("bbbbbbbbbbbb", true, VmState::Running),
            vm("cccccccccccc", true, VmState::Stopped),
            vm("dddddddddddd", false, VmState::Running),
        ];
        nat(net.clone()).reconcile(&vms).await.unwrap();
        let tags: Vec<String> = net.tags.lock().unwrap().iter().cloned().collect();
        assert_eq!(tags, ["banger-aaaaaaaaaaaa", "banger-bbbbbbbbbbbb"]);
    }

    #[tokio::test]
    async fn nat_without_a_default_route_is_refused_by_name() {
        let net = Arc::new(Rules {
            no_uplink: true,
            ..Default::default()
        });
        let mut lonely = vm("aaaaaaaaaaaa", true, VmState::Starting);
        let err = nat(net.clone())
            .prepare(&mut lonely, &Reporter::silent())
            .await
            .unwrap_err();
        assert!(matches!(err, CapError::NoUplink { vm } if vm == "vm-aaaaaaaaaaaa"));
        assert!(net.tags.lock().unwrap().is_empty());
    }
}
