//! What a VM's vCPU, memory and disk may be.

use super::{Result, VmError};

/// Checks vCPU and memory against what both VMMs accept (Firecracker
/// takes any count up to 32: the real v1.16.1 boots 3).
pub fn validate(vcpu: u32, memory_mib: u32) -> Result<()> {
    const MAX_VCPU: u32 = 32;
    if vcpu == 0 || vcpu > MAX_VCPU {
        return Err(VmError::VcpuRange {
            vcpu,
            max: MAX_VCPU,
        });
    }
    if !(128..=1 << 20).contains(&memory_mib) {
        return Err(VmError::MemoryRange(memory_mib));
    }
    Ok(())
}

/// What a new VM is asked to be.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub vcpu: u32,
    pub memory_mib: u32,
    pub disk_size_bytes: u64,
    pub overlay_size_bytes: u64,
    pub nat: bool,
}

/// The smallest `/root` disk accepted.
pub const MIN_DISK: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked() {
        assert!(validate(3, 1024).is_ok());
        assert!(validate(1, 128).is_ok());
        assert!(matches!(
            validate(0, 1024),
            Err(VmError::VcpuRange { vcpu: 0, max: 32 })
        ));
        assert!(matches!(validate(64, 1024), Err(VmError::VcpuRange { .. })));
        assert!(matches!(validate(2, 16), Err(VmError::MemoryRange(16))));
    }
}
