//! The host side of guest networking: one bridge, one TAP device per VM.

use std::net::Ipv4Addr;

use async_trait::async_trait;

use crate::runner::{Cmd, Runner};
use crate::HostError;

#[async_trait]
pub trait Network: Send + Sync {
    /// Creates the bridge with `gateway/prefix` if missing and brings it up.
    async fn ensure_bridge(
        &self,
        bridge: &str,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), HostError>;
    /// Creates a TAP device attached to the bridge, up.
    async fn create_tap(&self, tap: &str, bridge: &str) -> Result<(), HostError>;
    /// Removes a TAP device; succeeds when it is already gone.
    async fn delete_tap(&self, tap: &str) -> Result<(), HostError>;
    async fn link_exists(&self, name: &str) -> Result<bool, HostError>;
}

/// [`Network`] through iproute2's `ip`.
pub struct IpNetwork<R> {
    runner: R,
}

impl<R: Runner> IpNetwork<R> {
    pub fn new(runner: R) -> Self {
        IpNetwork { runner }
    }
}

#[async_trait]
impl<R: Runner> Network for IpNetwork<R> {
    async fn ensure_bridge(
        &self,
        bridge: &str,
        gateway: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), HostError> {
        if !self.link_exists(bridge).await? {
            self.runner
                .run(Cmd::new("ip").args(["link", "add", bridge, "type", "bridge"]))
                .await?;
        }
        let addrs = self
            .runner
            .run(Cmd::new("ip").args(["-4", "-o", "addr", "show", "dev", bridge]))
            .await?;
        let cidr = format!("{gateway}/{prefix}");
        if !addrs.stdout_str().contains(&format!(" {cidr} ")) {
            self.runner
                .run(Cmd::new("ip").args(["addr", "add", &cidr, "dev", bridge]))
                .await?;
        }
        self.runner
            .run(Cmd::new("ip").args(["link", "set", bridge, "up"]))
            .await?;
        Ok(())
    }

    async fn create_tap(&self, tap: &str, bridge: &str) -> Result<(), HostError> {
        if self.link_exists(tap).await? {
            // Left from an interrupted attempt that was recorded for this VM.
            self.delete_tap(tap).await?;
        }
        self.runner
            .run(Cmd::new("ip").args(["tuntap", "add", "dev", tap, "mode", "tap"]))
            .await?;
        self.runner
            .run(Cmd::new("ip").args(["link", "set", tap, "master", bridge]))
            .await?;
        self.runner
            .run(Cmd::new("ip").args(["link", "set", tap, "up"]))
            .await?;
        Ok(())
    }

    async fn delete_tap(&self, tap: &str) -> Result<(), HostError> {
        if self.link_exists(tap).await? {
            self.runner
                .run(Cmd::new("ip").args(["link", "del", tap]))
                .await?;
        }
        Ok(())
    }

    async fn link_exists(&self, name: &str) -> Result<bool, HostError> {
        Ok(std::path::Path::new("/sys/class/net").join(name).exists())
    }
}
