//! Which VMM runs a VM, and how it runs the guest's CPU.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which virtual machine monitor runs a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmmKind {
    Firecracker,
    Qemu,
}

impl VmmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VmmKind::Firecracker => "firecracker",
            VmmKind::Qemu => "qemu",
        }
    }

    pub fn parse(s: &str) -> Option<VmmKind> {
        match s {
            "firecracker" => Some(VmmKind::Firecracker),
            "qemu" => Some(VmmKind::Qemu),
            _ => None,
        }
    }
}

impl fmt::Display for VmmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the VMM runs the guest's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// QEMU's software emulation (slow, but runs anywhere).
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    pub fn parse(s: &str) -> Option<Accel> {
        match s {
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
