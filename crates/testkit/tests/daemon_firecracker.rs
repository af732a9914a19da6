//! The whole VM lifecycle through the daemon with the Firecracker driver,
//! against the fake Firecracker that validates every request against the
//! spec: create, stop (Ctrl-Alt-Del), start, a crashed VMM, restart, kill,
//! set, daemon restart (adoption), host reboot, delete.

mod common;

use std::path::Path;
use std::time::Duration;

use banger_api::{CreateVmRequest, UpdateVmRequest, Vm, VmState};
use banger_daemon::progress::Reporter;
use banger_daemon::vms::VmError;
use banger_host::process::ProcessId;
use common::*;

fn process_of(vm: &Vm) -> ProcessId {
    banger_host::process::identify(vm.pid.expect("running VM has a pid")).expect("process exists")
}

async fn wait_state(app: &banger_daemon::app::App, name: &str, state: VmState) -> Vm {
    for _ in 0..100 {
        let vm = app.store().resolve_vm(name).unwrap();
        if vm.state == state {
            return vm;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} never became {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_works_with_the_firecracker_driver() {
    let d = daemon(Duration::from_millis(100));
    let app = d.app.clone();
    // Without SMT Firecracker takes an odd vCPU count (the real one boots 3).
    let vm = app
        .vms()
        .clone()
        .create(
            CreateVmRequest {
                name: Some("fc".into()),
                vcpu: Some(3),
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap();
    assert_eq!(vm.vmm, banger_api::VmmKind::Firecracker);
    let dir = Path::new(&vm.dir).to_path_buf();
    let first = process_of(&vm);
    // The kernel is now known to boot under Firecracker here (doctor says so).
    let image = app.store().get_image("default").unwrap().unwrap();
    let sha = banger_daemon::kernels::fingerprint(&image.kernel).unwrap();
    let recorded = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        app.store()
            .kernel_first_ready(&sha, banger_api::VmmKind::Firecracker)
            .unwrap()
            .is_some()
    });
    assert!(recorded, "the first ready boot is recorded");
    // show and stats read the VMM live.
    let status = app.vms().vmm_status("fc").await.unwrap();
    assert_eq!((status.state.as_str(), status.vcpu), ("Running", Some(3)));
    let stats = app.vms().stats("fc").await.unwrap();
    let metrics = stats
        .vmm_metrics
        .expect("Firecracker's metrics in vm stats");
    assert!(
        metrics.vcpu_exits > 0 && metrics.console_bytes > 0,
        "{metrics:?}"
    );

    // Graceful stop: Ctrl-Alt-Del, and the process ends on its own.
    let stopped = app.vms().clone().stop("fc".into(), false).await.unwrap();
    assert_eq!(stopped.state, VmState::Stopped);
    assert!(!first.is_alive());
    assert!(requests(&dir)
        .iter()
        .any(|r| r["body"]["action_type"] == "SendCtrlAltDel"));
    assert!(d.net.taps().is_empty(), "TAP released on stop");

    // Start again; then the VMM crashes: the monitor notices.
    let vm = app
        .vms()
        .clone()
        .start("fc".into(), Reporter::silent())
        .await
        .unwrap();
    process_of(&vm)
        .signal(nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let crashed = wait_state(&app, "fc", VmState::Stopped).await;
    // The reason quotes the guest console (Firecracker's serial file).
    let reason = crashed.stop_reason.unwrap();
    assert!(
        reason.contains("exited without a stop request") && reason.contains("guest booted"),
        "{reason}"
    );
    assert!(d.net.taps().is_empty());

    // Restart from stopped, then kill with TERM.
    let vm = app
        .vms()
        .clone()
        .restart("fc".into(), Reporter::silent())
        .await
        .unwrap();
    assert_eq!(vm.state, VmState::Running);
    let killed = app
        .vms()
        .clone()
        .kill("fc".into(), "term".into())
        .await
        .unwrap();
    assert_eq!(killed.state, VmState::Stopped);
    let err = app
        .vms()
        .clone()
        .kill("fc".into(), "NOPE".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, VmError::UnknownSignal(ref s) if s == "NOPE"),
        "{err:?}"
    );

    // set applies at the next boot: Firecracker gets the new machine config.
    let update = UpdateVmRequest {
        memory_mib: Some(2048),
        vcpu: Some(4),
        ..Default::default()
    };
    app.vms().clone().update("fc".into(), update).await.unwrap();
    let vm = app
        .vms()
        .clone()
        .start("fc".into(), Reporter::silent())
        .await
        .unwrap();
    let last_config = requests(&dir)
        .into_iter()
        .rfind(|r| r["path"] == "/machine-config")
        .unwrap();
    assert_eq!(last_config["body"]["mem_size_mib"], 2048);
    assert_eq!(last_config["body"]["vcpu_count"], 4);

    // A daemon restart adopts the running VM, which stays manageable.
    let running = process_of(&vm);
    drop(app);
    let app = restart(&d.root, d.net.clone(), Duration::from_millis(100));
    app.vms().reconcile().await.unwrap();
    let adopted = app.store().resolve_vm("fc").unwrap();
    assert_eq!(adopted.state, VmState::Running);
    assert!(running.is_alive(), "a daemon restart never kills a VM");
    app.vms().clone().stop("fc".into(), false).await.unwrap();
    assert!(!running.is_alive());
    let err = app.vms().vmm_status("fc").await.unwrap_err();
    assert!(matches!(err, VmError::NotRunning { .. }), "{err:?}");

    // Host reboot: the process and the TAP are gone before the daemon starts.
    let vm = app
        .vms()
        .clone()
        .start("fc".into(), Reporter::silent())
        .await
        .unwrap();
    let p = process_of(&vm);
    p.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    p.wait_exit().await;
    d.net.taps.lock().unwrap().clear();
    let app = restart(&d.root, d.net.clone(), Duration::from_millis(100));
    app.vms().reconcile().await.unwrap();
    let after = app.store().resolve_vm("fc").unwrap();
    assert_eq!(after.state, VmState::Stopped);
    // (The previous in-process daemon's monitor may record the exit first;
    // the real-daemon crash test checks the reboot reason itself.)
    assert!(after.stop_reason.is_some());

    app.vms().clone().delete("fc".into(), false).await.unwrap();
    assert!(!dir.exists());
    assert!(app.store().all_resources().unwrap().is_empty());
    assert!(d.net.taps().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_delete_interrupts_a_boot_that_hangs() {
    // The guest never answers: the create would wait out boot_timeout_secs.
    let d = daemon(Duration::from_secs(3600));
    let app = d.app.clone();
    let create = tokio::spawn(app.vms().clone().create(
        CreateVmRequest {
            name: Some("stuck".into()),
            ..Default::default()
        },
        Reporter::silent(),
    ));
    // Wait until its VMM runs and the create is waiting on the guest.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app
        .store()
        .resolve_vm("stuck")
        .ok()
        .and_then(|vm| vm.pid)
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the VMM never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    let deleted = app.vms().clone().delete("stuck".into(), true).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the forced delete waited {:?}",
        started.elapsed()
    );
    let create_result = create.await.unwrap();
    assert!(create_result.is_err(), "the interrupted create fails");
    // Whichever finished the job, nothing of the VM is left.
    let _ = deleted;
    assert!(app.store().list_vms().unwrap().is_empty());
    assert!(app.store().all_resources().unwrap().is_empty());
    assert!(d.net.taps().is_empty());
}
