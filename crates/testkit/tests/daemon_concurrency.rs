//! Twenty concurrent creates: distinct names, IPs, MACs and TAPs, and no
//! create waits on another's guest boot.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use banger_api::{CreateVmRequest, VmState};
use banger_daemon::progress::Reporter;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_get_distinct_resources_and_boot_in_parallel() {
    let boot = Duration::from_secs(2);
    let d = daemon(boot);
    let started = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            // Half named, half with generated names.
            let name = (i % 2 == 0).then(|| format!("vm-{i}"));
            tokio::spawn(d.app.vms().clone().create(
                CreateVmRequest {
                    name,
                    ..Default::default()
                },
                Reporter::silent(),
            ))
        })
        .collect();
    let mut vms = Vec::new();
    for task in tasks {
        vms.push(task.await.unwrap().expect("create succeeds"));
    }
    let elapsed = started.elapsed();
    // Serialised boots would take 20 x 2 s; parallel ones about one boot
    // plus the host-side work of twenty VMs on two cores.
    assert!(
        elapsed < Duration::from_secs(15),
        "creates took {elapsed:?}: they waited on each other"
    );

    let distinct =
        |f: fn(&banger_api::Vm) -> String| vms.iter().map(f).collect::<HashSet<_>>().len();
    assert_eq!(distinct(|v| v.name.clone()), 20);
    assert_eq!(distinct(|v| v.ip.to_string()), 20);
    assert_eq!(distinct(|v| v.mac.to_string()), 20);
    assert_eq!(distinct(|v| v.tap.clone()), 20);
    assert_eq!(d.net.taps().len(), 20);
    for vm in &vms {
        assert_eq!(vm.state, VmState::Running);
        assert_spec_clean(Path::new(&vm.dir));
    }

    // Deleting them all at once leaves nothing.
    let deletes: Vec<_> = vms
        .iter()
        .map(|vm| tokio::spawn(d.app.vms().clone().delete(vm.name.clone(), false)))
        .collect();
    for task in deletes {
        task.await.unwrap().expect("delete succeeds");
    }
    assert!(d.app.store().list_vms().unwrap().is_empty());
    assert!(d.app.store().all_resources().unwrap().is_empty());
    assert!(d.net.taps().is_empty());
    for vm in &vms {
        assert!(!Path::new(&vm.dir).exists());
        let pid = vm.pid.unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}/cmdline")).exists()
                || banger_host::process::identify(pid).is_none_or(|p| !p.is_alive())
        );
    }
}
