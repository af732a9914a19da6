//! Suspend and resume through the daemon with the Firecracker driver and
//! the spec-validating fake (which takes and loads snapshots): the state on
//! disk, the TAP freed and taken again, the load's overrides, a daemon
//! restart in between, a failed save that leaves the guest running and no
//! partial state, a state from another banger version refused, and the
//! settling of suspends and resumes a crash interrupted.

mod common;

use std::time::Duration;

use banger_api::{Vm, VmState};
use banger_daemon::progress::Reporter;
use banger_daemon::vms::VmError;
use common::*;

const BOOT: Duration = Duration::from_millis(50);

fn alive(vm: &Vm) -> bool {
    vm.pid
        .and_then(banger_host::process::identify)
        .is_some_and(|p| p.is_alive())
}

fn calls(vm: &Vm, path: &str) -> Vec<serde_json::Value> {
    requests(&vm.dir)
        .into_iter()
        .filter(|r| r["path"] == path)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_vm_resumes_where_it_was_even_after_a_daemon_restart() {
    let d = daemon(BOOT);
    let vm = create(&d.app, "sus").await;
    let files = vm.files();

    let suspended = d.app.vms().clone().suspend("sus".into()).await.unwrap();
    assert_eq!(suspended.state, VmState::Suspended);
    assert!(!alive(&vm), "the VMM is gone");
    assert!(!d.net.taps().contains(&vm.tap), "TAP freed");
    for file in ["vmstate", "memory", "state.json"] {
        assert!(files.saved().join(file).exists(), "saved/{file}");
    }
    assert!(!files.saved_partial().exists());
    assert!(suspended.saved_state_bytes.is_some());
    // Paused before the snapshot, as Firecracker requires.
    let pause = calls(&vm, "/vm");
    assert_eq!(pause[0]["body"]["state"], "Paused");
    assert_eq!(calls(&vm, "/snapshot/create").len(), 1);
    // suspending again is a no-op; stop without --force is refused.
    assert_eq!(
        d.app
            .vms()
            .clone()
            .suspend("sus".into())
            .await
            .unwrap()
            .state,
        VmState::Suspended
    );
    let refused = d.app.vms().clone().stop("sus".into(), false).await;
    assert!(
        matches!(refused, Err(VmError::Suspended { .. })),
        "{refused:?}"
    );

    // A new daemon keeps it suspended.
    let app = restart(&d.root, d.net.clone(), BOOT);
    app.vms().reconcile().await.unwrap();
    assert_eq!(
        app.store().resolve_vm("sus").unwrap().state,
        VmState::Suspended
    );

    let resumed = app
        .vms()
        .clone()
        .resume("sus".into(), Reporter::silent())
        .await
        .unwrap();
    assert_eq!(resumed.state, VmState::Running);
    assert!(alive(&resumed));
    assert_ne!(resumed.pid, vm.pid);
    assert!(d.net.taps().contains(&resumed.tap), "TAP taken again");
    let load = calls(&resumed, "/snapshot/load");
    let body = &load.last().unwrap()["body"];
    assert_eq!(
        body["network_overrides"][0]["host_dev_name"],
        resumed.tap.as_str()
    );
    assert_eq!(
        body["vsock_override"]["uds_path"],
        files.vsock().display().to_string()
    );
    assert_eq!(
        body["resume_vm"], false,
        "resumed only once the state is used up"
    );
    assert_eq!(body["clock_realtime"], true);
    assert_eq!(
        calls(&resumed, "/vm").last().unwrap()["body"]["state"],
        "Resumed"
    );
    let status = app.vms().vmm_status("sus").await.unwrap();
    assert_eq!(status.state, "Running");
    assert!(!files.saved().exists() && !files.saved_used().exists());
    assert_spec_clean(&vm.dir);

    // Suspended again, then deleted: nothing of it stays.
    app.vms().clone().suspend("sus".into()).await.unwrap();
    app.vms().clone().delete("sus".into(), false).await.unwrap();
    assert!(!vm.dir.exists());
    assert!(!d.net.taps().contains(&vm.tap));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_save_leaves_the_guest_running_and_no_partial_state() {
    let d = daemon(BOOT);
    let vm = create(&d.app, "full").await;
    // The fake reads its faults at start: a disk that fills during the save.
    std::fs::write(
        vm.dir.join("fake-firecracker.json"),
        r#"{"fail": ["PUT /snapshot/create"]}"#,
    )
    .unwrap();
    d.app
        .vms()
        .clone()
        .stop("full".into(), false)
        .await
        .unwrap();
    let vm = d
        .app
        .vms()
        .clone()
        .start("full".into(), Reporter::silent())
        .await
        .unwrap();

    let failed = d.app.vms().clone().suspend("full".into()).await;
    assert!(
        matches!(failed, Err(VmError::Vmm(banger_vmm::VmmError::Save { .. }))),
        "{failed:?}"
    );
    let after = d.app.store().resolve_vm("full").unwrap();
    assert_eq!(after.state, VmState::Running);
    assert_eq!(after.pid, vm.pid);
    assert!(alive(&after));
    let status = d.app.vms().vmm_status("full").await.unwrap();
    assert_eq!(status.state, "Running", "unpaused again");
    let files = vm.files();
    assert!(!files.saved().exists() && !files.saved_partial().exists());
    d.app
        .vms()
        .clone()
        .delete("full".into(), true)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_cannot_run_again_after_a_failed_save_is_stopped_not_shown_running() {
    let d = daemon(BOOT);
    let vm = create(&d.app, "stuck").await;
    // The VMM answers neither the save nor the resume (a Firecracker still
    // busy with a snapshot that timed out answers the same way).
    std::fs::write(
        vm.dir.join("fake-firecracker.json"),
        r#"{"fail": ["PUT /snapshot/create", "PATCH /vm"]}"#,
    )
    .unwrap();
    let vms = d.app.vms().clone();
    vms.clone().stop("stuck".into(), false).await.unwrap();
    let vm = vms
        .clone()
        .start("stuck".into(), Reporter::silent())
        .await
        .unwrap();

    let failed = vms.clone().suspend("stuck".into()).await;
    assert!(failed.is_err(), "{failed:?}");
    let after = d.app.store().resolve_vm("stuck").unwrap();
    assert_eq!(after.state, VmState::Stopped);
    assert!(
        after
            .stop_reason
            .as_deref()
            .is_some_and(|r| r.contains("could not run again")),
        "{:?}",
        after.stop_reason
    );
    assert!(!alive(&vm), "the paused VMM is gone");
    assert!(!vm.files().saved_partial().exists());
    // Its disks are kept: it starts again (without the faults).
    std::fs::remove_file(vm.dir.join("fake-firecracker.json")).unwrap();
    let again = vms
        .clone()
        .start("stuck".into(), Reporter::silent())
        .await
        .unwrap();
    assert_eq!(again.state, VmState::Running);
    vms.delete("stuck".into(), true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_from_another_banger_version_is_refused_and_can_be_discarded() {
    let d = daemon(BOOT);
    let vm = create(&d.app, "old").await;
    d.app.vms().clone().suspend("old".into()).await.unwrap();
    let manifest = vm.files().saved().join("state.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["banger"] = "0.0.1".into();
    std::fs::write(&manifest, json.to_string()).unwrap();

    let refused = d
        .app
        .vms()
        .clone()
        .start("old".into(), Reporter::silent())
        .await;
    let Err(VmError::SavedStateUnusable { reason, .. }) = &refused else {
        panic!("{refused:?}");
    };
    assert!(reason.contains("0.0.1"), "{reason}");
    let after = d.app.store().resolve_vm("old").unwrap();
    assert_eq!(after.state, VmState::Suspended);
    assert!(!d.net.taps().contains(&vm.tap), "nothing plugged in");

    // Discarded: then it boots cold, its disks kept.
    let stopped = d.app.vms().clone().stop("old".into(), true).await.unwrap();
    assert_eq!(stopped.state, VmState::Stopped);
    assert!(!vm.files().saved().exists());
    let cold = d
        .app
        .vms()
        .clone()
        .start("old".into(), Reporter::silent())
        .await
        .unwrap();
    assert_eq!(cold.state, VmState::Running);
    assert!(!calls(&cold, "/actions").is_empty());
    d.app
        .vms()
        .clone()
        .delete("old".into(), true)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_settles_an_interrupted_suspend_or_resume() {
    let d = daemon(BOOT);
    // Crashed mid-save: the VMM is alive, paused, and no whole state exists.
    let saving = create(&d.app, "saving").await;
    d.app.vms().clone().suspend("saving".into()).await.unwrap();
    let files = saving.files();
    d.app
        .vms()
        .clone()
        .resume("saving".into(), Reporter::silent())
        .await
        .unwrap();
    let mut vm = d.app.store().resolve_vm("saving").unwrap();
    std::fs::create_dir_all(files.saved_partial()).unwrap();
    std::fs::write(files.saved_partial().join("vmstate"), b"half").unwrap();
    vm.state = VmState::Suspending;
    d.app.store().update_vm(&vm).unwrap();

    // Crashed mid-resume after the guest was let run: state used up.
    let resuming = create(&d.app, "resuming").await;
    let mut r = d.app.store().resolve_vm("resuming").unwrap();
    std::fs::create_dir_all(resuming.files().saved_used()).unwrap();
    r.state = VmState::Resuming;
    d.app.store().update_vm(&r).unwrap();

    // Suspended, but its state is gone (deleted by hand).
    let lost = create(&d.app, "lost").await;
    d.app.vms().clone().suspend("lost".into()).await.unwrap();
    std::fs::remove_dir_all(lost.files().saved()).unwrap();

    let app = restart(&d.root, d.net.clone(), BOOT);
    app.vms().reconcile().await.unwrap();
    let saving = app.store().resolve_vm("saving").unwrap();
    assert_eq!(saving.state, VmState::Running, "{:?}", saving.stop_reason);
    assert!(!files.saved_partial().exists(), "the half state is removed");
    let resuming = app.store().resolve_vm("resuming").unwrap();
    assert_eq!(resuming.state, VmState::Running);
    assert!(!resuming.files().saved_used().exists());
    let lost = app.store().resolve_vm("lost").unwrap();
    assert_eq!(lost.state, VmState::Stopped);
    assert!(
        lost.stop_reason
            .as_deref()
            .unwrap()
            .contains("saved state is missing"),
        "{:?}",
        lost.stop_reason
    );
    for name in ["saving", "resuming", "lost"] {
        app.vms().clone().delete(name.into(), true).await.unwrap();
    }
}
