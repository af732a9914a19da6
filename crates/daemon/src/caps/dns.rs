//! `<vm-name>.vm` records: added when a guest is ready, removed when it
//! stops or is deleted, rebuilt from the running VMs at daemon start.

use std::sync::Arc;

use async_trait::async_trait;
use banger_api::{Vm, VmState};

use super::{CapResult, Capability};
use crate::dns::VmDns;

pub struct Dns {
    pub zone: Arc<VmDns>,
}

#[async_trait]
impl Capability for Dns {
    fn name(&self) -> &'static str {
        "dns"
    }

    async fn running(&self, vm: &Vm) -> CapResult {
        self.zone.set(&vm.name, vm.ip).await;
        Ok(())
    }

    async fn stopped(&self, vm: &Vm) -> CapResult {
        self.zone.remove(&vm.name).await;
        Ok(())
    }

    async fn reconcile(&self, vms: &[Vm]) -> CapResult {
        let entries: Vec<_> = vms
            .iter()
            .filter(|vm| vm.state == VmState::Running)
            .map(|vm| (vm.name.clone(), vm.ip))
            .collect();
        self.zone.replace_all(&entries).await;
        Ok(())
    }
}
