//! In-process doubles of host integrations, for orchestration tests that
//! must not touch the host's network: a network that only records TAPs, and
//! guest probes that answer without a guest.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use banger_api::Image;
use banger_host::net::Network;
use banger_host::probe::GuestProbe;
use banger_host::HostError;

/// Records TAP devices instead of creating them; can refuse to create one.
#[derive(Default)]
pub struct FakeNetwork {
    pub taps: Mutex<HashSet<String>>,
    pub fail_tap: bool,
}

impl FakeNetwork {
    pub fn failing() -> Self {
        FakeNetwork {
            fail_tap: true,
            ..Default::default()
        }
    }

    pub fn taps(&self) -> HashSet<String> {
        self.taps.lock().unwrap().clone()
    }
}

#[async_trait]
impl Network for FakeNetwork {
    async fn ensure_bridge(&self, _: &str, _: Ipv4Addr, _: u8) -> Result<(), HostError> {
        Ok(())
    }

    async fn create_tap(&self, tap: &str, _: &str) -> Result<(), HostError> {
        if self.fail_tap {
            return Err(HostError::Other("injected: cannot create TAP".into()));
        }
        if !self.taps.lock().unwrap().insert(tap.to_string()) {
            return Err(HostError::Other(format!("TAP {tap} already exists")));
        }
        Ok(())
    }

    async fn delete_tap(&self, tap: &str) -> Result<(), HostError> {
        self.taps.lock().unwrap().remove(tap);
        Ok(())
    }

    async fn link_exists(&self, name: &str) -> Result<bool, HostError> {
        Ok(self.taps.lock().unwrap().contains(name))
    }
}

/// A guest that is "up" a fixed time after the first probe of its address.
pub struct DelayedProbe {
    pub delay: Duration,
    first_seen: Mutex<std::collections::HashMap<Ipv4Addr, std::time::Instant>>,
}

impl DelayedProbe {
    pub fn new(delay: Duration) -> Self {
        DelayedProbe {
            delay,
            first_seen: Mutex::default(),
        }
    }
}

#[async_trait]
impl GuestProbe for DelayedProbe {
    async fn ready(&self, ip: Ipv4Addr) -> bool {
        let first = *self
            .first_seen
            .lock()
            .unwrap()
            .entry(ip)
            .or_insert_with(std::time::Instant::now);
        first.elapsed() >= self.delay
    }
}

/// An image record whose files exist (empty): enough for orchestration
/// that never boots a real kernel.
pub fn placeholder_image(dir: &std::path::Path) -> Image {
    std::fs::create_dir_all(dir.join("work-seed")).unwrap();
    std::fs::write(dir.join("work-seed/.profile"), "# seed\n").unwrap();
    for f in ["rootfs.ext4", "vmlinux", "initrd.img"] {
        std::fs::write(dir.join(f), b"").unwrap();
    }
    let p = |f: &str| dir.join(f).display().to_string();
    Image {
        name: "default".into(),
        managed: true,
        rootfs: p("rootfs.ext4"),
        kernel: p("vmlinux"),
        initrd: p("initrd.img"),
        kernel_version: "test".into(),
        work_seed: p("work-seed"),
        packages_sha256: "x".into(),
        created_at: "now".into(),
    }
}
