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
        Ok(self.target_of(&vm))
    }

    /// Every VM's `Host` block, as `banger ssh-config` prints it.
    pub fn ssh_config(&self) -> Result<String> {
        let mut text = String::from(
            "# Written by bangerd: one Host block per VM (NAME and NAME.vm).\n# `banger ssh-config --install` includes it from ~/.ssh/config.\n",
        );
        for vm in self.store.list_vms()? {
            text.push('\n');
            text.push_str(&self.target_of(&vm).config_block());
        }
        Ok(text)
    }

    /// Rewrites the ssh-config file (after a VM came or went); a failure is
    /// logged, never the VM operation's.
    pub fn write_ssh_config(&self) {
        let path = self.paths.ssh_config();
        let written = self
            .ssh_config()
            .map_err(|e| e.to_string())
            .and_then(|text| {
                std::fs::create_dir_all(self.paths.ssh_dir())
                    .and_then(|()| write_atomically(&path, &text))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the ssh-config file");
        }
    }

    pub(crate) fn target_of(&self, vm: &banger_api::Vm) -> SshTarget {
        SshTarget {
            name: vm.name.clone(),
            ip: vm.ip,
            user: "root".into(),
            key_path: self.paths.ssh_key(),
            known_hosts_path: vm.files().known_hosts(),
            host_key_alias: host_key_alias(vm),
        }
    }
}

/// A reader never sees half a file.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}
