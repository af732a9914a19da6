//! `vm forward`: a VM's port forwards (see [`crate::caps::forward`]).

use banger_api::{Forward, Proto};

use super::{Result, Vms};

impl Vms {
    pub async fn add_forward(&self, reference: &str, forward: Forward) -> Result<Vec<Forward>> {
        let vm = self.resolve(reference)?;
        let _guard = self.lock(&vm.id).await;
        self.forwards.add(&vm, forward).await?;
        Ok(self.forwards.of(&vm.id)?)
    }

    pub async fn remove_forward(
        &self,
        reference: &str,
        proto: Proto,
        host_port: u16,
    ) -> Result<Vec<Forward>> {
        let vm = self.resolve(reference)?;
        let _guard = self.lock(&vm.id).await;
        self.forwards.remove(&vm, proto, host_port)?;
        Ok(self.forwards.of(&vm.id)?)
    }

    pub fn forwards_of(&self, reference: &str) -> Result<Vec<Forward>> {
        let vm = self.resolve(reference)?;
        Ok(self.forwards.of(&vm.id)?)
    }
}
