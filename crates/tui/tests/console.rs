//! The console pane shows the guest's serial console, not the VMM's log.

mod common;

use banger_api::{VmState, VmmKind};
use banger_tui::run::console_tail;

#[test]
fn the_console_pane_reads_the_guest_console_under_either_vmm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("firecracker.log"),
        "2026-12-01T21:28:10 [ab:fc_api:INFO] The API server received a Put request\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("qemu.log"), "qemu-system-x86_64: warning\n").unwrap();
    std::fs::write(
        dir.path().join("console.log"),
        "Linux version 6.1\nWelcome to Debian\n",
    )
    .unwrap();
    let mut vm = common::vm("fc", VmState::Running, "172.30.0.2");
    vm.dir = dir.path().to_path_buf();
    for kind in [VmmKind::Firecracker, VmmKind::Qemu] {
        vm.vmm = kind;
        assert_eq!(
            console_tail(&vm),
            ["Linux version 6.1", "Welcome to Debian"],
            "{kind}"
        );
    }
}
