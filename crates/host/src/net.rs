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
        // Another process may create the bridge or address between our check
        // and our change: "already exists" counts as done.
        if !self.link_exists(bridge).await? {
            let added = self
                .runner
                .run(Cmd::new("ip").args(["link", "add", bridge, "type", "bridge"]))
                .await;
            if added.is_err() && !self.link_exists(bridge).await? {
                added?;
            }
        }
        let cidr = format!("{gateway}/{prefix}");
        let show = || Cmd::new("ip").args(["-4", "-o", "addr", "show", "dev", bridge]);
        let has_address = |out: &str| out.contains(&format!(" {cidr} "));
        if !has_address(&self.runner.run(show()).await?.stdout_str()) {
            if let Err(err) = self
                .runner
                .run(Cmd::new("ip").args(["addr", "add", &cidr, "dev", bridge]))
                .await
            {
                if !has_address(&self.runner.run(show()).await?.stdout_str()) {
                    return Err(err);
                }
            }
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
