//! The Firecracker driver against the spec-validating fake Firecracker.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use banger_host::process::ProcessId;
use banger_vmm::firecracker::{Firecracker, FirecrackerError};
use banger_vmm::{DriveSpec, VmSpec, Vmm, VmmError};

const FAKE: &str = env!("CARGO_BIN_EXE_fake-firecracker");

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for f in ["initrd.img", "rootfs.ext4", "overlay.ext4", "work.ext4"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        std::fs::write(
            dir.path().join("vmlinux"),
            banger_testkit::doubles::vmlinux(),
        )
        .unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spec(&self) -> VmSpec {
        VmSpec {
            id: "ab12cd34ef56".into(),
            dir: self.dir.path().to_path_buf(),
            vcpu: 2,
            memory_mib: 512,
            kernel: self.path("vmlinux"),
            initrd: self.path("initrd.img"),
            cmdline: "console=ttyS0".into(),
            drives: vec![
                DriveSpec {
                    id: "rootfs".into(),
                    path: self.path("rootfs.ext4"),
                    read_only: true,
                },
                DriveSpec {
                    id: "overlay".into(),
                    path: self.path("overlay.ext4"),
                    read_only: false,
                },
                DriveSpec {
                    id: "work".into(),
                    path: self.path("work.ext4"),
                    read_only: false,
                },
            ],
            tap: "bg-ab12cd34ef56".into(),
            mac: "52:54:00:ab:12:cd".parse().unwrap(),
            vsock: true,
            serial_agent: false,
        }
    }

    fn faults(&self, json: &str) {
        std::fs::write(self.path("fake-firecracker.json"), json).unwrap();
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn assert_no_violations(&self) {
        let violations = std::fs::read_to_string(self.path("violations.txt")).unwrap_or_default();
        assert!(
            violations.is_empty(),
            "the driver sent requests the spec does not allow:\n{violations}"
        );
    }
}

fn driver() -> Firecracker {
    Firecracker::new(PathBuf::from(FAKE))
}

async fn launch(fx: &Fixture) -> (Result<ProcessId, VmmError>, Option<ProcessId>) {
    let seen = Mutex::new(None);
    let result = driver()
        .launch(&fx.spec(), &|_, p| *seen.lock().unwrap() = Some(p))
        .await;
    let spawned = *seen.lock().unwrap();
    (result, spawned)
}

#[tokio::test]
async fn launch_configures_and_starts_with_spec_valid_calls_and_stop_ends_the_process() {
    let fx = Fixture::new();
    let (result, spawned) = launch(&fx).await;
    let process = result.expect("launch succeeds");
    assert_eq!(
        spawned,
        Some(process),
        "the process was reported as soon as it existed"
    );
    assert!(process.is_alive());
    fx.assert_no_violations();
    let calls: Vec<String> = fx
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            "PUT /logger",
            "PUT /metrics",
            "PUT /serial",
            "PUT /machine-config",
            "PUT /boot-source",
            "PUT /drives/rootfs",
            "PUT /drives/overlay",
            "PUT /drives/work",
            "PUT /network-interfaces/eth0",
            "PUT /vsock",
            "PUT /actions"
        ]
    );
    let requests = fx.requests();
    let files = banger_api::files::VmFiles::new(fx.dir.path());
    let at = |p: PathBuf| p.display().to_string();
    assert_eq!(
        requests[0]["body"]["log_path"],
        at(files.vmm_log(banger_api::VmmKind::Firecracker))
    );
    assert_eq!(requests[1]["body"]["metrics_path"], at(files.metrics()));
    // Paths in the VM's directory are given relative to it (Firecracker's
    // working directory), so a snapshot can be restored in another one.
    assert_eq!(
        requests[2]["body"]["serial_out_path"], "console.log",
        "the guest console has a file of its own"
    );
    let requests = &requests[3..];
    assert_eq!(requests[0]["body"]["vcpu_count"], 2);
    assert!(
        requests[1]["body"]["boot_args"]
            .as_str()
            .unwrap()
            .contains("reboot=k"),
        "guest reboot must end Firecracker"
    );
    assert_eq!(requests[2]["body"]["is_read_only"], true);
    assert_eq!(
        requests[3]["body"]["cache_type"], "Writeback",
        "persistent disks keep flushed writes"
    );
    assert_eq!(requests[5]["body"]["host_dev_name"], "bg-ab12cd34ef56");
    assert_eq!(requests[6]["body"]["guest_cid"], 3);
    assert_eq!(
        requests[6]["body"]["uds_path"],
        banger_api::files::VSOCK_SOCKET,
        "the agent is reached through the VM's own vsock socket"
    );
    assert_eq!(requests[7]["body"]["action_type"], "InstanceStart");

    driver()
        .request_shutdown(fx.dir.path(), process)
        .await
        .unwrap();
    assert!(
        process.wait_exit_timeout(Duration::from_secs(5)).await,
        "Ctrl-Alt-Del ends Firecracker"
    );
    fx.assert_no_violations();
    assert!(std::fs::read_to_string(files.console())
        .unwrap()
        .contains("guest booted"));
}

#[tokio::test]
async fn each_refused_api_call_fails_the_launch_and_leaves_no_process() {
    for call in [
        "PUT /logger",
        "PUT /metrics",
        "PUT /serial",
        "PUT /machine-config",
        "PUT /boot-source",
        "PUT /drives/rootfs",
        "PUT /drives/overlay",
        "PUT /drives/work",
        "PUT /network-interfaces/eth0",
        "PUT /vsock",
        "PUT /actions",
    ] {
        let fx = Fixture::new();
        fx.faults(&format!(r#"{{"fail": ["{call}"]}}"#));
        let (result, spawned) = launch(&fx).await;
        let (path, fault) = refused(result.expect_err(call));
        assert_eq!(path, call.split(' ').nth(1).unwrap(), "{call}");
        assert!(fault.contains("injected failure"), "{call}: {fault}");
        let process = spawned.expect("the process was reported before the failure");
        assert!(
            !process.is_alive(),
            "{call}: the Firecracker process must be gone"
        );
        assert!(
            !Firecracker::api_socket(fx.dir.path()).exists(),
            "{call}: API socket removed"
        );
        fx.assert_no_violations();
    }
}

/// The request Firecracker refused, and what it said.
fn refused(err: VmmError) -> (String, String) {
    match err {
        VmmError::Configure {
            source: FirecrackerError::Refused { path, fault, .. },
            ..
        } => (path, fault),
        other => panic!("not a refused request: {other:?}"),
    }
}

#[tokio::test]
async fn a_crash_during_configuration_is_reported_with_the_log() {
    let fx = Fixture::new();
    fx.faults(r#"{"crash": ["PUT /boot-source"]}"#);
    let (result, spawned) = launch(&fx).await;
    // The error carries the errors of Firecracker's logger.
    match result.unwrap_err() {
        VmmError::Configure { log, .. } => {
            assert!(log.contains("exiting with error"), "{log}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!spawned.unwrap().is_alive());
}

#[tokio::test]
async fn a_crash_before_the_logger_is_reported_with_what_firecracker_printed() {
    let fx = Fixture::new();
    fx.faults(r#"{"crash": ["PUT /logger"]}"#);
    match launch(&fx).await.0.unwrap_err() {
        VmmError::Configure { log, .. } => {
            assert!(log.contains("crashing on PUT /logger"), "{log}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_missing_kernel_is_refused_at_its_put_and_a_junk_one_at_start() {
    let fx = Fixture::new();
    std::fs::remove_file(fx.path("vmlinux")).unwrap();
    let (result, spawned) = launch(&fx).await;
    let (path, fault) = refused(result.unwrap_err());
    assert_eq!(path, "/boot-source");
    assert!(fault.contains("kernel file cannot be opened"), "{fault}");
    assert!(!spawned.unwrap().is_alive());

    std::fs::write(fx.path("vmlinux"), b"not a kernel").unwrap();
    let (path, fault) = refused(launch(&fx).await.0.unwrap_err());
    assert_eq!(path, "/actions");
    assert!(fault.contains("failed to load ELF kernel image"), "{fault}");
}

#[tokio::test]
async fn each_boot_starts_its_logs_afresh_and_keeps_the_previous_one() {
    let fx = Fixture::new();
    let files = banger_api::files::VmFiles::new(fx.dir.path());
    std::fs::write(files.console(), "the previous boot's console\n").unwrap();
    std::fs::write(files.metrics(), "{\"vcpu\":{\"exit_io_in\":99}}\n").unwrap();
    let process = launch(&fx).await.0.unwrap();
    let console = std::fs::read_to_string(files.console()).unwrap();
    assert!(!console.contains("previous"), "{console}");
    let mut kept = files.console().into_os_string();
    kept.push(".1");
    assert!(std::fs::read_to_string(kept).unwrap().contains("previous"));
    // Metrics of this boot only, current as of the request.
    let metrics = driver().metrics(fx.dir.path()).await.unwrap().unwrap();
    assert!(metrics.vcpu_exits < 99, "{metrics:?}");
    let later = driver().metrics(fx.dir.path()).await.unwrap().unwrap();
    assert!(
        later.vcpu_exits > metrics.vcpu_exits,
        "FlushMetrics flushed"
    );
    let status = driver().status(fx.dir.path()).await.unwrap();
    assert_eq!(
        (status.state.as_str(), status.vcpu, status.memory_mib),
        ("Running", Some(2), Some(512))
    );
    banger_host::process::terminate(process, Duration::from_secs(2))
        .await
        .unwrap();
    fx.assert_no_violations();
}

#[tokio::test]
async fn a_guest_that_ignores_ctrl_alt_del_keeps_running_until_terminated() {
    let fx = Fixture::new();
    fx.faults(r#"{"ignore_ctrl_alt_del": true}"#);
    let process = launch(&fx).await.0.unwrap();
    driver()
        .request_shutdown(fx.dir.path(), process)
        .await
        .unwrap();
    assert!(
        !process.wait_exit_timeout(Duration::from_millis(500)).await,
        "still running"
    );
    banger_host::process::terminate(process, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(!process.is_alive());
}

#[test]
fn the_fake_binary_exists() {
    assert!(Path::new(FAKE).exists());
}
