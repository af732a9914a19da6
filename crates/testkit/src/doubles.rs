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
            Op::CreateTap { tap, bridge, .. } => {
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
            Op::PlugTap { tap, bridge, .. } => {
                if !self.taps.lock().unwrap().contains(tap) {
                    return Err(HostError::CommandFailed {
                        command: format!("ip link set {tap} nomaster"),
                        status: "exit status: 1".into(),
                        stderr: format!("Cannot find device \"{tap}\""),
                    });
                }
                let mut detached = self.detached.lock().unwrap();
                if bridge.is_some() {
                    detached.remove(tap);
                } else {
                    detached.insert(tap.clone());
                }
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
/// A minimal x86-64 ELF executable: the header, one `PT_NOTE` program
/// header and the notes it points at (`(name, type)`, e.g. `("Xen", 18)`
/// for the PVH entry), then `tail` (e.g. a `Linux version ...` banner).
/// What banger's kernel check and Firecracker's loader look at first.
pub fn elf(kind: u16, machine: u16, notes: &[(&[u8], u32)], tail: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, n_type) in notes {
        let namesz = u32::try_from(name.len() + 1).unwrap();
        body.extend(namesz.to_le_bytes());
        body.extend(4u32.to_le_bytes());
        body.extend(n_type.to_le_bytes());
        body.extend(*name);
        body.push(0);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        body.extend(0x0100_0000u32.to_le_bytes());
    }
    let (ehsize, phentsize) = (64u16, 56u16);
    let notes_at = u64::from(ehsize + phentsize);
    let mut out = Vec::new();
    out.extend(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend(kind.to_le_bytes());
    out.extend(machine.to_le_bytes());
    out.extend(1u32.to_le_bytes()); // e_version
    out.extend(0x0100_0000u64.to_le_bytes()); // e_entry
    out.extend(u64::from(ehsize).to_le_bytes()); // e_phoff
    out.extend(0u64.to_le_bytes()); // e_shoff
    out.extend(0u32.to_le_bytes()); // e_flags
    out.extend(ehsize.to_le_bytes());
    out.extend(phentsize.to_le_bytes());
    out.extend(1u16.to_le_bytes()); // e_phnum
    out.extend(64u16.to_le_bytes()); // e_shentsize
    out.extend(0u16.to_le_bytes()); // e_shnum
    out.extend(0u16.to_le_bytes()); // e_shstrndx
    let size = u64::try_from(body.len()).unwrap();
    out.extend(4u32.to_le_bytes()); // p_type: PT_NOTE
    out.extend(4u32.to_le_bytes()); // p_flags
    out.extend(notes_at.to_le_bytes()); // p_offset
    out.extend(0u64.to_le_bytes()); // p_vaddr
    out.extend(0u64.to_le_bytes()); // p_paddr
    out.extend(size.to_le_bytes()); // p_filesz
    out.extend(size.to_le_bytes()); // p_memsz
    out.extend(4u64.to_le_bytes()); // p_align
    out.extend(body);
    out.extend(tail);
    out
}

/// A kernel file as far as banger's checks and the fake Firecracker look:
/// an x86-64 PVH vmlinux of version `6.1.0-test`. It boots nothing.
pub fn vmlinux() -> Vec<u8> {
    elf(
        2,
        62,
        &[(b"Xen", 18)],
        b"\0Linux version 6.1.0-test (test@banger) #1\0",
    )
}

pub fn placeholder_image(dir: &std::path::Path) -> Image {
    std::fs::create_dir_all(dir.join("work-seed")).unwrap();
    std::fs::write(dir.join("work-seed/.profile"), "# seed\n").unwrap();
    for f in ["rootfs.ext4", "initrd.img"] {
        std::fs::write(dir.join(f), b"").unwrap();
    }
    std::fs::write(dir.join("vmlinux"), vmlinux()).unwrap();
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
        agent_serial: false,
        warm: false,
        created_at: time::OffsetDateTime::now_utc(),
    }
}
