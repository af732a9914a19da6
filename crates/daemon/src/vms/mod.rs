//! VM orchestration: the lifecycle operations and what keeps them honest
//! across failures and restarts.
//!
//! - [`create`] — validate, make disks and guest config, boot; roll back on failure
//! - [`boot`] — the start path shared by create and start
//! - [`lifecycle`] — start, stop, restart, kill, delete
//! - [`settings`] — `vm set` on a stopped VM
//! - [`stats`] — host-side resource use, and the guest's own figures
//! - [`ports`] — the guest's listening sockets as host endpoints
//! - [`journal`] — undoing recorded host resources
//! - [`monitor`] — noticing VMM exits
//! - [`reconcile`] — the daemon-start pass over recorded state

pub mod boot;
pub mod create;
pub mod journal;
pub mod lifecycle;
pub mod monitor;
pub mod ports;
pub mod reconcile;
pub mod settings;
pub mod stats;

use std::path::{Path, PathBuf};

/// The VM's address, as stored.
pub fn vm_ip(vm: &banger_api::Vm) -> crate::errors::OpResult<std::net::Ipv4Addr> {
    vm.ip.parse().map_err(|_| {
        banger_api::ApiError::internal(format!(
            "stored IP {:?} of VM {} is invalid",
            vm.ip, vm.name
        ))
    })
}

/// Whether the VM's image carries the guest agent (unknown image: assume so,
/// and let the agent's answer tell).
pub fn image_has_agent(app: &crate::app::App, vm: &banger_api::Vm) -> bool {
    app.store
        .get_image(&vm.image)
        .ok()
        .flatten()
        .is_none_or(|image| image.agent)
}

/// Files of a VM's directory.
pub struct VmFiles {
    pub dir: PathBuf,
}

impl VmFiles {
    pub fn new(dir: &Path) -> Self {
        VmFiles {
            dir: dir.to_path_buf(),
        }
    }
    pub fn overlay(&self) -> PathBuf {
        self.dir.join("overlay.ext4")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work.ext4")
    }
    pub fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
}
