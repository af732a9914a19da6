//! In-process doubles of host integrations, for orchestration tests that
//! must not touch the host's network: a network that only records TAPs, and
//! guest probes that answer without a guest.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use banger_api::Image;
use banger_host::net::Network;
use banger_host::privileged::{NatRule, Op, Outcome};
use banger_host::probe::GuestProbe;
use banger_host::HostError;

/// Performs privileged operations on an in-memory model of the host's
/// network (bridges, TAPs, NAT tags, forwarding) instead of the real one;
/// can refuse to create TAPs. Every operation is validated like the real one.
#[derive(Default)]
pub struct FakeNetwork {
    pub taps: Mutex<HashSet<String>>,
    pub bridges: Mutex<HashSet<String>>,
    pub nat: Mutex<HashMap<String, NatRule>>,
    pub forwarding: Mutex<bool>,
    pub ops: Mutex<Vec<Op>>,
    pub fail_tap: bool,
    /// Simulates a host without a default route.
    pub no_uplink: Mutex<bool>,
    /// TAPs that exist but are no longer attached to the bridge.
    pub detached: Mutex<HashSet<String>>,
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

    pub fn nat_tags(&self) -> Vec<String> {
        let mut tags: Vec<_> = self.nat.lock().unwrap().keys().cloned().collect();
        tags.sort();
        tags
    }

    /// How many TAPs were created so far.
    pub fn taps_created(&self) -> usize {
        self.ops
            .lock()
            .unwrap()
            .iter()
            .filter(|op| matches!(op, Op::CreateTap { .. }))
            .count()
    }
}

#[async_trait]
impl Network for FakeNetwork {
    async fn perform(&self, op: &Op) -> Result<Outcome, HostError> {
        op.validate()?;
        self.ops.lock().unwrap().push(op.clone());
        match op {
            Op::EnsureBridge { bridge, .. } => {
                self.bridges.lock().unwrap().insert(bridge.clone());
            }
            Op::CreateTap { tap, bridge } => {
                // Failures as `ip` reports them.
                let refused = |stderr: String| HostError::CommandFailed {
                    command: format!("ip tuntap add dev {tap} mode tap"),
                    status: "exit status: 2".into(),
                    stderr,
                };
                if self.fail_tap {
                    return Err(refused(
                        "ioctl(TUNSETIFF): Operation not permitted (injected)".into(),
                    ));
                }
                if !self.bridges.lock().unwrap().contains(bridge) {
                    return Err(refused(format!("Cannot find device \"{bridge}\"")));
                }
                self.taps.lock().unwrap().insert(tap.clone());
            }
            Op::DeleteTap { tap } => {
                self.taps.lock().unwrap().remove(tap);
            }
            Op::EnableForwarding => *self.forwarding.lock().unwrap() = true,
            Op::AddNat(rule) => {
                self.nat
                    .lock()
                    .unwrap()
                    .insert(rule.tag.clone(), rule.clone());
            }
            Op::RemoveNat { tag } => {
                self.nat.lock().unwrap().remove(tag);
            }
            Op::ListNat => return Ok(Outcome::NatTags(self.nat_tags())),
        }
        Ok(Outcome::Done)
    }

    fn has_link(&self, name: &str) -> bool {
        self.taps.lock().unwrap().contains(name) || self.bridges.lock().unwrap().contains(name)
    }

    fn link_master(&self, name: &str) -> Option<String> {
        if !self.taps.lock().unwrap().contains(name) || self.detached.lock().unwrap().contains(name)
        {
            return None;
        }
        self.bridges.lock().unwrap().iter().next().cloned()
    }

    async fn uplink(&self) -> Result<Option<String>, HostError> {
        Ok((!*self.no_uplink.lock().unwrap()).then(|| "eth0".into()))
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
/// What a kernel file starts with, for doubles that only look that far
/// (the fake Firecracker refuses anything else at InstanceStart, as the
/// real one does).
pub const ELF_STUB: &[u8] = b"\x7fELF\x02\x01\x01\x00";

pub fn placeholder_image(dir: &std::path::Path) -> Image {
    std::fs::create_dir_all(dir.join("work-seed")).unwrap();
    std::fs::write(dir.join("work-seed/.profile"), "# seed\n").unwrap();
    for f in ["rootfs.ext4", "initrd.img"] {
        std::fs::write(dir.join(f), b"").unwrap();
    }
    std::fs::write(dir.join("vmlinux"), ELF_STUB).unwrap();
    Image {
        name: "default".into(),
        managed: true,
        rootfs: dir.join("rootfs.ext4"),
        kernel: dir.join("vmlinux"),
        initrd: dir.join("initrd.img"),
        kernel_version: "test".into(),
        work_seed: Some(dir.join("work-seed")),
        packages_sha256: "x".into(),
        agent: false,
        created_at: time::OffsetDateTime::now_utc(),
    }
}
