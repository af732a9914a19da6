//! `vm prune` through the daemon: only VMs stopped for long enough go, a
//! dry run changes nothing, running VMs are never touched.

mod common;

use std::time::Duration;

use banger_api::{CreateVmRequest, VmState};
use banger_daemon::progress::Reporter;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_only_vms_stopped_for_long_enough() {
    let d = daemon(Duration::from_millis(20));
    let vms = d.app.vms().clone();
    for name in ["keep-running", "stopped"] {
        vms.clone()
            .create(
                CreateVmRequest {
                    name: Some(name.into()),
                    ..Default::default()
                },
                Reporter::silent(),
            )
            .await
            .unwrap();
    }
    vms.clone().stop("stopped".into(), false).await.unwrap();
    let stopped = d.app.store().resolve_vm("stopped").unwrap();
    assert_eq!(stopped.state, VmState::Stopped);
    assert!(
        stopped.stopped_at.is_some(),
        "the store recorded when it stopped"
    );

    let not_yet = vms
        .clone()
        .prune(Duration::from_secs(3600), false)
        .await
        .unwrap();
    assert!(not_yet.is_empty(), "stopped a moment ago, not an hour");
    let would = vms.clone().prune(Duration::ZERO, true).await.unwrap();
    let names: Vec<&str> = would.iter().map(|vm| vm.name.as_str()).collect();
    assert_eq!(names, ["stopped"]);
    assert!(
        d.app.store().resolve_vm("stopped").is_ok(),
        "a dry run deletes nothing"
    );

    let pruned = vms.clone().prune(Duration::ZERO, false).await.unwrap();
    assert_eq!(pruned.len(), 1);
    assert!(d.app.store().resolve_vm("stopped").is_err());
    assert!(!stopped.dir.exists());
    assert_eq!(
        d.app.store().resolve_vm("keep-running").unwrap().state,
        VmState::Running
    );
    vms.clone()
        .delete("keep-running".into(), true)
        .await
        .unwrap();
}
