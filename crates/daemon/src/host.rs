//! The host integrations the daemon acts through, each behind its trait so
//! tests can inject faults.

use std::sync::Arc;

use banger_host::disk::{Disks, Ext4Disks};
use banger_host::net::{IpNetwork, Network};
use banger_host::probe::{GuestProbe, SshBanner};
use banger_host::runner::{Runner, SystemRunner};

#[derive(Clone)]
pub struct Host {
    pub runner: Arc<dyn Runner>,
    pub net: Arc<dyn Network>,
    pub disks: Arc<dyn Disks>,
    pub probe: Arc<dyn GuestProbe>,
}

impl Host {
    /// This machine, its network changed as root (see [`Host::with_network`]).
    pub fn system() -> Host {
        Host::with_network(Arc::new(IpNetwork::new(SystemRunner)))
    }

    /// This machine, its network changed by `net` (the daemon itself as
    /// root, or the root helper: [`crate::privilege`]).
    pub fn with_network(net: Arc<dyn Network>) -> Host {
        Host {
            runner: Arc::new(SystemRunner),
            net,
            disks: Arc::new(Ext4Disks::new(SystemRunner)),
            probe: Arc::new(SshBanner),
        }
    }
}
