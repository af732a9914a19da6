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
    /// This machine.
    pub fn system() -> Host {
        Host {
            runner: Arc::new(SystemRunner),
            net: Arc::new(IpNetwork::new(SystemRunner)),
            disks: Arc::new(Ext4Disks::new(SystemRunner)),
            probe: Arc::new(SshBanner),
        }
    }
}
