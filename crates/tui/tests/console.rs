//! The console pane shows the console of the VM's own VMM.

mod common;

use banger_api::{VmState, VmmKind};
use banger_tui::run::console_tail;

#[test]
fn the_console_pane_reads_each_vmms_own_console_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("firecracker.log"),
        "Firecracker v1.16.1\nfake-firecracker: guest booted\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("console.log"), "QEMU's serial console\n").unwrap();
    let mut vm = common::vm("fc", VmState::Running, "172.30.0.2");
    vm.dir = dir.path().to_path_buf();
    vm.vmm = VmmKind::Firecracker;
    assert_eq!(
        console_tail(&vm),
        ["Firecracker v1.16.1", "fake-firecracker: guest booted"]
    );
    vm.vmm = VmmKind::Qemu;
    assert_eq!(console_tail(&vm), ["QEMU's serial console"]);
}
