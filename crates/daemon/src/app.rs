//! The daemon's shared state and the host integrations it acts through.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use banger_api::paths::Paths;
use banger_api::{ApiError, VmmKind};
use banger_host::disk::{Disks, Ext4Disks};
use banger_host::net::{IpNetwork, Network};
use banger_host::probe::{GuestProbe, SshBanner};
use banger_host::runner::{Runner, SystemRunner};
use banger_host::tools;
use banger_store::Store;
use banger_vmm::firecracker::Firecracker;
use banger_vmm::qemu::Qemu;
use banger_vmm::{kvm, Vmm};
use tokio::sync::{Mutex as AsyncMutex, Notify, OwnedMutexGuard};

use crate::caps::{self, tap::TapPool, Capability};
use crate::config::{Config, Subnet, VmmChoice};
use crate::dns::VmDns;
use crate::errors::{self, OpResult};

/// The host integrations, each behind its trait so tests can inject faults.
#[derive(Clone)]
pub struct Host {
    pub runner: Arc<dyn Runner>,
    pub net: Arc<dyn Network>,
    pub disks: Arc<dyn Disks>,
    pub probe: Arc<dyn GuestProbe>,
}

impl Host {
    pub fn system() -> Host {
        Host {
            runner: Arc::new(SystemRunner),
            net: Arc::new(IpNetwork::new(SystemRunner)),
            disks: Arc::new(Ext4Disks::new(SystemRunner)),
            probe: Arc::new(SshBanner),
        }
    }
}

pub struct App {
    pub paths: Paths,
    pub config: Config,
    pub subnet: Subnet,
    pub store: Store,
    pub host: Host,
    /// The VMM new VMs get.
    pub vmm: VmmKind,
    /// Replaces the real drivers in tests.
    pub vmm_override: Option<Arc<dyn Vmm>>,
    /// One lock per VM: operations on a VM are serialised, different VMs run in parallel.
    vm_locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    /// Serialises IP/name allocation with the insert that claims them.
    pub alloc_lock: AsyncMutex<()>,
    /// One image build at a time.
    pub image_lock: AsyncMutex<()>,
    /// Concurrent first creates must not race to generate the SSH key.
    pub key_lock: AsyncMutex<()>,
    /// Concurrent boots must not race to create the bridge.
    pub bridge_lock: AsyncMutex<()>,
    /// The capability pipeline (see [`crate::caps`]).
    pub caps: Vec<Arc<dyn Capability>>,
    pub tap_pool: Arc<TapPool>,
    pub dns: Arc<VmDns>,
    /// What each guest listener turned out to be (`vm ports`), so a
    /// listener is probed once, not at every refresh of a TUI.
    pub web_probes: crate::vms::ports::ProbeCache,
    pub shutdown: Notify,
    /// Every running operation holds a read guard; shutdown takes the write
    /// side, so the daemon never exits half-way through one (e.g. resize2fs).
    pub inflight: Arc<tokio::sync::RwLock<()>>,
}

impl App {
    pub fn new(paths: Paths, config: Config, store: Store, host: Host) -> OpResult<App> {
        let subnet = Subnet::parse(&config.bridge_subnet)?;
        let vmm = choose_vmm(&config);
        let tap_pool = Arc::new(TapPool::new(config.tap_pool_size));
        let dns = Arc::new(VmDns::new());
        Ok(App {
            caps: caps::pipeline(&tap_pool, &dns),
            tap_pool,
            dns,
            paths,
            config,
            subnet,
            store,
            host,
            vmm,
            vmm_override: None,
            vm_locks: Mutex::new(HashMap::new()),
            alloc_lock: AsyncMutex::new(()),
            image_lock: AsyncMutex::new(()),
            web_probes: Default::default(),
            key_lock: AsyncMutex::new(()),
            bridge_lock: AsyncMutex::new(()),
            shutdown: Notify::new(),
            inflight: Arc::new(tokio::sync::RwLock::new(())),
        })
    }

    pub fn images_dir(&self) -> PathBuf {
        self.config
            .images_dir
            .clone()
            .unwrap_or_else(|| self.paths.images_dir())
    }

    /// Takes the lock of one VM for the length of an operation.
    pub async fn lock_vm(&self, id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.vm_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    pub fn forget_vm_lock(&self, id: &str) {
        self.vm_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// "kvm" or "tcg" for the VMM new VMs get.
    pub fn accel(&self) -> &'static str {
        match self.vmm {
            VmmKind::Firecracker => "kvm",
            VmmKind::Qemu if kvm::usable() => "kvm",
            VmmKind::Qemu => "tcg",
        }
    }

    /// The driver for a VMM kind; fails with an install hint when its binary is missing.
    pub fn driver(&self, kind: VmmKind) -> OpResult<Arc<dyn Vmm>> {
        if let Some(vmm) = &self.vmm_override {
            return Ok(vmm.clone());
        }
        match kind {
            VmmKind::Firecracker => {
                let bin = firecracker_binary(&self.config).ok_or_else(|| {
                    ApiError::new(banger_api::ErrorCode::MissingTool, "the firecracker binary was not found")
                        .with_hint("install Firecracker and put it in PATH or set firecracker_bin in config.toml, or set vmm = \"qemu\"")
                })?;
                Ok(Arc::new(Firecracker::new(bin)))
            }
            VmmKind::Qemu => {
                let name = self
                    .config
                    .qemu_bin
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"));
                let bin = tools::require(&name.to_string_lossy()).map_err(errors::host)?;
                let helper = match &self.config.vsock_helper_bin {
                    // Asked for by name: it must be there.
                    Some(path) => Some(
                        tools::require(&path.to_string_lossy()).map_err(|e| {
                            errors::host(e).with_hint(
                                "fix or remove vsock_helper_bin in config.toml (`cargo install vhost-device-vsock`)",
                            )
                        })?,
                    ),
                    None => vsock_helper(&self.config),
                };
                Ok(Arc::new(Qemu::new(bin, kvm::usable(), helper)))
            }
        }
    }
}

/// The runtime bundle, when one is installed and valid.
pub fn runtime_bundle(config: &Config) -> Option<banger_runtime::Bundle> {
    let location = banger_runtime::resolve::locate_here(config.runtime_dir.clone());
    banger_runtime::Bundle::open(&location.dir).ok()
}

/// `firecracker_bin`, else `firecracker` in PATH, else the runtime bundle's.
pub fn firecracker_binary(config: &Config) -> Option<PathBuf> {
    match &config.firecracker_bin {
        Some(path) => tools::find(&path.to_string_lossy()),
        None => tools::find("firecracker").or_else(|| {
            let bundle = runtime_bundle(config)?;
            bundle
                .manifest
                .binaries
                .iter()
                .find(|b| b.as_str() == "firecracker")
                .map(|b| bundle.path(b))
        }),
    }
}

/// QEMU's vsock helper: `vsock_helper_bin`, else `vhost-device-vsock` in PATH.
pub fn vsock_helper(config: &Config) -> Option<PathBuf> {
    let name = config
        .vsock_helper_bin
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| VSOCK_HELPER.into());
    tools::find(&name)
}

pub const VSOCK_HELPER: &str = "vhost-device-vsock";

/// `vmm = "auto"` picks Firecracker when its binary exists and KVM can run
/// ordinary guests; QEMU otherwise.
pub fn choose_vmm(config: &Config) -> VmmKind {
    match config.vmm {
        VmmChoice::Firecracker => VmmKind::Firecracker,
        VmmChoice::Qemu => VmmKind::Qemu,
        VmmChoice::Auto if firecracker_binary(config).is_some() && kvm::usable() => {
            VmmKind::Firecracker
        }
        VmmChoice::Auto => VmmKind::Qemu,
    }
}

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
