//! `[[file_sync]]`: host files (a `.gitconfig`, dotfiles) copied into every
//! new VM once its agent answers, and again on `vm sync`. A host file that
//! is missing is a warning naming it, never a failed create.

use std::path::Path;
use std::sync::Arc;

use banger_api::Vm;
use banger_client::{agent, transfer};

use super::{Result, Vms};

impl Vms {
    /// Copies every `file_sync` entry into `vm`; returns a warning per
    /// entry that could not be copied.
    pub async fn sync_files(&self, vm: &Vm) -> Vec<String> {
        let mut warnings = Vec::new();
        let agent = agent::for_vm(vm);
        for entry in &self.config.file_sync {
            let host = entry.host_path();
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                warnings.push(format!(
                    "file_sync: {} does not exist on the host; skipped",
                    host.display()
                ));
                continue;
            };
            let guest = Path::new(&entry.guest);
            let (Some(dir), Some(name)) = (guest.parent(), guest.file_name()) else {
                warnings.push(format!("file_sync: {} names no file", entry.guest));
                continue;
            };
            let (dir, name) = (dir.display().to_string(), name.to_os_string());
            let source = host.clone();
            let pushed = transfer::push(&agent, &dir, Arc::new(|_| {}), move |tar| {
                if meta.is_dir() {
                    tar.append_dir_all(&name, &source)
                } else {
                    tar.append_path_with_name(&source, &name)
                }
            })
            .await;
            if let Err(e) = pushed {
                warnings.push(format!(
                    "file_sync: {} → {}: {}",
                    host.display(),
                    entry.guest,
                    banger_api::error::chain(&e)
                ));
            }
        }
        for warning in &warnings {
            tracing::warn!(vm = %vm.name, "{warning}");
        }
        warnings
    }

    /// `vm sync`: the file_sync entries again, into a running VM.
    pub async fn sync(&self, reference: &str) -> Result<Vec<String>> {
        let vm = self.resolve(reference)?;
        if vm.state != banger_api::VmState::Running {
            return Err(super::VmError::NotRunning {
                vm: vm.name,
                state: vm.state,
                what: "files are copied into a running VM",
            });
        }
        Ok(self.sync_files(&vm).await)
    }
}
