//! A create that fails at any step leaves nothing behind: faults are
//! injected into the host integrations (disks, network, VMM) and the test
//! checks the journal, the VM directory, TAP devices and processes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use banger_api::paths::Paths;
use banger_api::{Accel, CreateVmRequest, VmmKind};
use banger_daemon::app::App;
use banger_daemon::caps::CapError;
use banger_daemon::config::Config;
use banger_daemon::drivers::{DriverError, Drivers};
use banger_daemon::host::Host;
use banger_daemon::progress::Reporter;
use banger_daemon::vms::VmError;
use banger_host::disk::{Disks, Ext4Disks};
use banger_host::process::{self, ProcessId};
use banger_host::runner::SystemRunner;
use banger_host::HostError;
use banger_store::Store;
use banger_testkit::doubles::{placeholder_image, FakeNetwork};
use banger_vmm::{VmSpec, Vmm, VmmError};

/// Real ext4 disks, except the one with the label chosen to fail.
struct FlakyDisks {
    fail_label: Option<&'static str>,
}

#[async_trait]
impl Disks for FlakyDisks {
    async fn replace_files(
        &self,
        image: &Path,
        files: &[banger_host::disk::ImageFile],
        remove: &[&str],
    ) -> Result<(), HostError> {
        Ext4Disks::new(SystemRunner)
            .replace_files(image, files, remove)
            .await
    }
    async fn create_ext4(
        &self,
        path: &Path,
        size: u64,
        label: &str,
        contents: Option<&Path>,
    ) -> Result<(), HostError> {
        if self.fail_label == Some(label) {
            // Fail after the file exists, as a half-done mkfs would, and
            // say so as the real one does.
            std::fs::write(path, b"partial").unwrap();
            return Err(HostError::CommandFailed {
                command: format!("mkfs.ext4 -F -q -L {label} {}", path.display()),
                status: "exit status: 1".into(),
                stderr: "injected".into(),
            });
        }
        Ext4Disks::new(SystemRunner)
            .create_ext4(path, size, label, contents)
            .await
    }

    async fn has_file(&self, image: &Path, path: &str) -> Result<bool, HostError> {
        Ext4Disks::new(SystemRunner).has_file(image, path).await
    }

    async fn read_file(&self, image: &Path, path: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ext4Disks::new(SystemRunner).read_file(image, path).await
    }

    async fn grow_ext4(&self, path: &Path, size: u64) -> Result<(), HostError> {
        Ext4Disks::new(SystemRunner).grow_ext4(path, size).await
    }

    async fn clone_ext4(
        &self,
        seed: &Path,
        path: &Path,
        size: u64,
        label: &str,
    ) -> Result<(), HostError> {
        Ext4Disks::new(SystemRunner)
            .clone_ext4(seed, path, size, label)
            .await
    }
}

/// A "VMM" that is a real long-running process; it can fail after spawning
/// (leaving its process behind, as a buggy driver might).
struct SleepVmm {
    fail_after_spawn: bool,
    spawned: Mutex<Option<ProcessId>>,
}

#[async_trait]
impl Vmm for SleepVmm {
    fn kind(&self) -> VmmKind {
        VmmKind::Qemu
    }
    fn accel(&self) -> Accel {
        Accel::Tcg
    }
    async fn launch(
        &self,
        spec: &VmSpec,
        spawned: &(dyn Fn(banger_vmm::Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId, VmmError> {
        let p = process::spawn_detached(
            Path::new("/bin/sleep"),
            &["300".into()],
            &spec.dir.join("vmm.log"),
            &spec.dir,
        )?;
        spawned(banger_vmm::Role::Vmm, p);
        *self.spawned.lock().unwrap() = Some(p);
        if self.fail_after_spawn {
            return Err(VmmError::ExitedAtStart {
                log: "injected: the VMM refused to boot".into(),
            });
        }
        Ok(p)
    }
    async fn request_shutdown(&self, _: &Path, _: ProcessId) -> Result<(), VmmError> {
        Ok(())
    }
    async fn status(&self, _: &Path) -> Result<banger_api::VmmStatus, VmmError> {
        Err(VmmError::Query("a sleeping process has no status".into()))
    }
    async fn metrics(&self, _: &Path) -> Result<Option<banger_api::VmmMetrics>, VmmError> {
        Ok(None)
    }
    async fn save(&self, _: &Path, _: &Path) -> Result<(), VmmError> {
        Err(VmmError::Save {
            reason: "a sleeping process keeps no state".into(),
        })
    }
    async fn unpause(&self, _: &Path) -> Result<(), VmmError> {
        Ok(())
    }
    async fn grow_disk(&self, _: &Path, drive: &str, _: &Path, _: u64) -> Result<(), VmmError> {
        Err(VmmError::Grow {
            drive: drive.into(),
            reason: "a sleeping process has no disks".into(),
        })
    }
    async fn restore(
        &self,
        spec: &VmSpec,
        _: &Path,
        spawned: &(dyn Fn(banger_vmm::Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId, VmmError> {
        self.launch(spec, spawned).await
    }
}

/// Every VM gets the sleeping VMM.
struct OneDriver(Arc<SleepVmm>);

impl Drivers for OneDriver {
    fn default_kind(&self) -> VmmKind {
        VmmKind::Qemu
    }
    fn accel(&self, _: VmmKind) -> Accel {
        Accel::Tcg
    }
    fn driver(&self, _: VmmKind) -> Result<Arc<dyn Vmm>, DriverError> {
        Ok(self.0.clone())
    }
}

struct Setup {
    _root: tempfile::TempDir,
    app: Arc<App>,
    net: Arc<FakeNetwork>,
    vmm: Arc<SleepVmm>,
}

fn setup(fail_label: Option<&'static str>, fail_tap: bool, fail_after_spawn: bool) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::under(root.path());
    std::fs::create_dir_all(&paths.state_dir).unwrap();
    let store = Store::open(&paths.database()).unwrap();
    store
        .put_image(&placeholder_image(&root.path().join("image")))
        .unwrap();
    let net = Arc::new(FakeNetwork {
        fail_tap,
        ..Default::default()
    });
    let vmm = Arc::new(SleepVmm {
        fail_after_spawn,
        spawned: Mutex::new(None),
    });
    let host = Host {
        runner: Arc::new(SystemRunner),
        net: net.clone(),
        disks: Arc::new(FlakyDisks { fail_label }),
        probe: Arc::new(banger_host::probe::SshBanner),
    };
    // Guests get loopback addresses here: the readiness probe must never
    // send traffic to a private range from the host's own namespace.
    let config = Config {
        boot_timeout_secs: 1,
        vmm: banger_daemon::config::VmmChoice::Qemu,
        bridge_subnet: "127.77.0.0/24".into(),
        ..Config::default()
    };
    let app = App::new(paths, config, store, host, Arc::new(OneDriver(vmm.clone()))).unwrap();
    Setup {
        _root: root,
        app: Arc::new(app),
        net,
        vmm,
    }
}

/// Creates a VM that must fail; checks nothing is left; returns the error.
async fn create_fails_cleanly(s: &Setup) -> VmError {
    let request = CreateVmRequest {
        name: Some("doomed".into()),
        ..Default::default()
    };
    let err = s
        .app
        .vms()
        .clone()
        .create(request, Reporter::silent())
        .await
        .unwrap_err();
    assert!(s.app.store().list_vms().unwrap().is_empty(), "no VM row");
    assert!(
        s.app.store().all_resources().unwrap().is_empty(),
        "journal empty"
    );
    let vms_dir = s._root.path().join("state/banger/vms");
    let left: Vec<_> = std::fs::read_dir(&vms_dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left: {left:?}");
    assert!(s.net.taps().is_empty(), "TAP left");
    if let Some(p) = *s.vmm.spawned.lock().unwrap() {
        assert!(!p.is_alive(), "VMM process left running");
    }
    err
}

/// The command a failed host call ran.
fn failed_command(err: &HostError) -> &str {
    match err {
        HostError::CommandFailed { command, .. } => command,
        other => panic!("not a failed command: {other:?}"),
    }
}

#[tokio::test]
async fn overlay_disk_failure_rolls_back() {
    match create_fails_cleanly(&setup(Some("banger-overlay"), false, false)).await {
        VmError::Host(e) => assert!(failed_command(&e).contains("banger-overlay")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn work_disk_failure_rolls_back() {
    match create_fails_cleanly(&setup(Some("banger-work"), false, false)).await {
        VmError::Cap(CapError::Host(e)) => assert!(failed_command(&e).contains("banger-work")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tap_failure_rolls_back() {
    match create_fails_cleanly(&setup(None, true, false)).await {
        VmError::Cap(CapError::Host(e)) => assert!(failed_command(&e).contains("tuntap")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn vmm_failure_after_spawn_rolls_back_and_kills_the_process() {
    let err = create_fails_cleanly(&setup(None, false, true)).await;
    assert!(
        matches!(err, VmError::Vmm(VmmError::ExitedAtStart { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_guest_that_never_becomes_ready_rolls_back() {
    let s = setup(None, false, false);
    let err = create_fails_cleanly(&s).await;
    assert!(
        matches!(err, VmError::NotReady { seconds: 1, .. }),
        "{err:?}"
    );
    assert!(
        s.vmm.spawned.lock().unwrap().is_some(),
        "the VMM had started"
    );
}
