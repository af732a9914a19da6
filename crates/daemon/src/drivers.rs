//! Which VMM runs a VM, and its driver: the factory the daemon is given
//! (like [`crate::host::Host`]), so tests hand it a driver of their own.

use std::path::PathBuf;
use std::sync::Arc;

use banger_api::{Accel, VmmKind};
use banger_host::{tools, HostError};
use banger_vmm::firecracker::Firecracker;
use banger_vmm::qemu::Qemu;
use banger_vmm::{kvm, Vmm};

use crate::config::{Config, VmmChoice};

/// Why a VMM cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("the firecracker binary was not found")]
    NoFirecracker,
    #[error("QEMU cannot be used")]
    Qemu(#[source] HostError),
    /// `vsock_helper_bin` names a helper that is not there.
    #[error("the configured vsock helper cannot be used")]
    VsockHelper(#[source] HostError),
}

impl DriverError {
    pub fn hint(&self) -> Option<String> {
        match self {
            DriverError::NoFirecracker => Some("install Firecracker and put it in PATH or set firecracker_bin in config.toml, or set vmm = \"qemu\"".into()),
            DriverError::Qemu(e) => e.hint(),
            DriverError::VsockHelper(_) => VSOCK_HELPER_FIX.map(String::from),
        }
    }
}

pub trait Drivers: Send + Sync {
    /// The VMM new VMs get.
    fn default_kind(&self) -> VmmKind;

    /// How that VMM runs guests here.
    fn accel(&self, kind: VmmKind) -> Accel;

    /// The driver for a VMM kind; fails, with an install hint, when its
    /// binary is missing.
    fn driver(&self, kind: VmmKind) -> Result<Arc<dyn Vmm>, DriverError>;
}

/// The real drivers, found as `config.toml` says. Which VMM new VMs get,
/// and whether KVM runs guests here, are settled once, at daemon start.
pub struct SystemDrivers {
    config: Config,
    default_kind: VmmKind,
    kvm: bool,
}

impl SystemDrivers {
    pub fn new(config: &Config) -> SystemDrivers {
        SystemDrivers {
            config: config.clone(),
            default_kind: choose_vmm(config),
            kvm: kvm::usable(),
        }
    }
}

impl Drivers for SystemDrivers {
    fn default_kind(&self) -> VmmKind {
        self.default_kind
    }

    fn accel(&self, kind: VmmKind) -> Accel {
        match kind {
            VmmKind::Firecracker => Accel::Kvm,
            VmmKind::Qemu if self.kvm => Accel::Kvm,
            VmmKind::Qemu => Accel::Tcg,
        }
    }

    fn driver(&self, kind: VmmKind) -> Result<Arc<dyn Vmm>, DriverError> {
        match kind {
            VmmKind::Firecracker => {
                let bin = firecracker_binary(&self.config).ok_or(DriverError::NoFirecracker)?;
                Ok(Arc::new(Firecracker::new(bin)))
            }
            VmmKind::Qemu => {
                let bin = tools::require(&qemu_name(&self.config)).map_err(DriverError::Qemu)?;
                let helper = match &self.config.vsock_helper_bin {
                    // Asked for by name: it must be there.
                    Some(path) => Some(
                        tools::require(&path.to_string_lossy())
                            .map_err(DriverError::VsockHelper)?,
                    ),
                    None => vsock_helper(&self.config),
                };
                Ok(Arc::new(
                    Qemu::new(bin, self.kvm, helper).with_relay(tools::find_own(RELAY)),
                ))
            }
        }
    }
}

/// `qemu_bin`, else `qemu-system-x86_64` (looked up in PATH).
pub fn qemu_name(config: &Config) -> String {
    config.qemu_bin.as_ref().map_or_else(
        || "qemu-system-x86_64".into(),
        |p| p.to_string_lossy().into_owned(),
    )
}

/// `firecracker_bin`, else `firecracker` in PATH, else the runtime bundle's.
pub fn firecracker_binary(config: &Config) -> Option<PathBuf> {
    match &config.firecracker_bin {
        Some(path) => tools::find(&path.to_string_lossy()),
        None => tools::find("firecracker").or_else(|| {
            let bundle = crate::runtime::bundle(config)?;
            bundle
                .manifest
                .binaries
                .iter()
                .find(|b| b.as_str() == "firecracker")
                .map(|b| bundle.path(b))
        }),
    }
}

pub const VSOCK_HELPER: &str = "vhost-device-vsock";
/// The host end of QEMU guests' serial agent channel (built with banger).
pub const RELAY: &str = "banger-relay";

/// The fix for a configured vsock helper that is not there (one wording for
/// the refusal and the doctor line).
pub const VSOCK_HELPER_FIX: Option<&str> =
    Some("fix or remove vsock_helper_bin in config.toml (`cargo install vhost-device-vsock`)");

/// QEMU's vsock helper: `vsock_helper_bin`, else `vhost-device-vsock` in PATH.
pub fn vsock_helper(config: &Config) -> Option<PathBuf> {
    let name = config
        .vsock_helper_bin
        .as_ref()
        .map_or_else(|| VSOCK_HELPER.into(), |p| p.to_string_lossy().into_owned());
    tools::find(&name)
}

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
