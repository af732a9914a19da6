//! The host bridge guests' TAP devices join: its name, its subnet, and the
//! lock that keeps concurrent boots from racing to create it.

use std::net::Ipv4Addr;
use std::sync::Arc;

use banger_host::net::Network;
use banger_host::privileged::Op;
use banger_host::HostError;
use tokio::sync::Mutex;

use crate::config::Subnet;

pub struct Bridge {
    pub name: String,
    pub subnet: Subnet,
    net: Arc<dyn Network>,
    lock: Mutex<()>,
}

impl Bridge {
    pub fn new(name: &str, subnet: Subnet, net: Arc<dyn Network>) -> Bridge {
        Bridge {
            name: name.to_string(),
            subnet,
            net,
            lock: Mutex::new(()),
        }
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.gateway()
    }

    /// Whether the bridge exists (nothing is created to find out).
    pub fn exists(&self) -> bool {
        self.net.has_link(&self.name)
    }

    /// The bridge exists with the gateway address and is up; concurrent
    /// callers are serialised.
    pub async fn ensure(&self) -> Result<(), HostError> {
        let _guard = self.lock.lock().await;
        self.net
            .perform(&Op::EnsureBridge {
                bridge: self.name.clone(),
                gateway: self.gateway(),
                prefix: self.subnet.prefix,
            })
            .await?;
        Ok(())
    }
}
