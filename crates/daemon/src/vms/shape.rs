//! What a VM's vCPU, memory and disk may be.

use banger_api::VmmKind;

use super::{Result, VmError};

/// Checks vCPU and memory against what the VMM accepts.
pub fn validate(vmm: VmmKind, vcpu: u32, memory_mib: u32) -> Result<()> {
    const MAX_VCPU: u32 = 32;
    if vcpu == 0 || vcpu > MAX_VCPU {
        return Err(VmError::VcpuRange {
            vcpu,
            max: MAX_VCPU,
        });
    }
    if vmm == VmmKind::Firecracker && vcpu != 1 && !vcpu.is_multiple_of(2) {
        return Err(VmError::FirecrackerVcpu(vcpu));
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
    fn shapes_are_checked_against_the_vmm() {
        assert!(validate(VmmKind::Qemu, 3, 1024).is_ok());
        assert!(matches!(
            validate(VmmKind::Firecracker, 3, 1024),
            Err(VmError::FirecrackerVcpu(3))
        ));
        assert!(validate(VmmKind::Firecracker, 1, 1024).is_ok());
        assert!(matches!(
            validate(VmmKind::Qemu, 0, 1024),
            Err(VmError::VcpuRange { vcpu: 0, max: 32 })
        ));
        assert!(matches!(
            validate(VmmKind::Qemu, 64, 1024),
            Err(VmError::VcpuRange { .. })
        ));
        assert!(matches!(
            validate(VmmKind::Qemu, 2, 16),
            Err(VmError::MemoryRange(16))
        ));
    }
}
