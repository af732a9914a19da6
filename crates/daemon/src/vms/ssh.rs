//! What `vm ssh` needs: the address, the installation's key, and a
//! known_hosts file holding exactly this VM's host key.

use banger_api::{SshTarget, VmState};

use super::disks::host_key_alias;
use super::{Result, VmError, Vms};

impl Vms {
    pub fn ssh_target(&self, reference: &str) -> Result<SshTarget> {
        let vm = self.resolve(reference)?;
        if vm.state != VmState::Running {
            return Err(VmError::NotRunning {
                vm: vm.name,
                state: vm.state,
                what: "ssh needs a running VM",
            });
        }
        Ok(SshTarget {
            name: vm.name.clone(),
            ip: vm.ip,
            user: "root".into(),
            key_path: self.paths.ssh_key(),
            known_hosts_path: vm.files().known_hosts(),
            host_key_alias: host_key_alias(&vm),
        })
    }
}
