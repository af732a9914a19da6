//! The host as the policy reads it: TAP owners from the kernel, banger's
//! rules from iptables.

use std::net::Ipv4Addr;

use async_trait::async_trait;
use banger_host::net::IpNetwork;
use banger_host::runner::SystemRunner;
use banger_host::HostError;

use crate::policy::{TapOwner, World};

pub struct HostWorld {
    pub net: IpNetwork<SystemRunner>,
}

#[async_trait]
impl World for HostWorld {
    fn tap_owner(&self, name: &str) -> TapOwner {
        if !banger_host::net::link_exists(name) {
            return TapOwner::Missing;
        }
        match banger_host::net::tun_owner(name) {
            Some(uid) => TapOwner::Uid(uid),
            None => TapOwner::Nobody,
        }
    }

    async fn tagged_rules(&self) -> Result<Vec<(String, Ipv4Addr)>, HostError> {
        self.net.tagged_rules().await
    }
}
