//! `<vm-name>.vm` records: added when a guest is ready, removed when it
//! stops or is deleted, rebuilt from the running VMs at daemon start.

use std::sync::Arc;

use async_trait::async_trait;
use banger_api::{Vm, VmState};

use super::Capability;
use crate::app::App;
use crate::dns::VmDns;
use crate::errors::OpResult;

pub struct Dns {
    pub dns: Arc<VmDns>,
}

#[async_trait]
impl Capability for Dns {
    fn name(&self) -> &'static str {
        "dns"
    }

    async fn running(&self, _app: &App, vm: &Vm) -> OpResult<()> {
        if let Ok(ip) = vm.ip.parse() {
            self.dns.set(&vm.name, ip).await;
        }
        Ok(())
    }

    async fn stopped(&self, _app: &App, vm: &Vm) -> OpResult<()> {
        self.dns.remove(&vm.name).await;
        Ok(())
    }

    async fn reconcile(&self, _app: &Arc<App>, vms: &[Vm]) -> OpResult<()> {
        let entries: Vec<_> = vms
            .iter()
            .filter(|vm| vm.state == VmState::Running)
            .filter_map(|vm| Some((vm.name.clone(), vm.ip.parse().ok()?)))
            .collect();
        self.dns.replace_all(&entries).await;
        Ok(())
    }
}
