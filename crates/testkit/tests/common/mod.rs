//! An in-process daemon whose VMM is the spec-validating fake Firecracker,
//! with real ext4 disks, a network that only records TAPs, and a guest
//! probe that answers after a delay. Nothing touches the host's network.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use banger_api::paths::Paths;
use banger_daemon::app::App;
use banger_daemon::config::{Config, VmmChoice};
use banger_daemon::drivers::SystemDrivers;
use banger_daemon::host::Host;
use banger_host::disk::Ext4Disks;
use banger_host::runner::SystemRunner;
use banger_store::Store;
use banger_testkit::doubles::{placeholder_image, DelayedProbe, FakeNetwork};

pub const FAKE: &str = env!("CARGO_BIN_EXE_fake-firecracker");

pub struct Daemon {
    pub root: tempfile::TempDir,
    pub app: Arc<App>,
    pub net: Arc<FakeNetwork>,
}

pub fn config() -> Config {
    Config {
        vmm: VmmChoice::Firecracker,
        firecracker_bin: Some(PathBuf::from(FAKE)),
        boot_timeout_secs: 20,
        stop_timeout_secs: 5,
        ..Config::default()
    }
}

/// A daemon over a fresh state directory with a registered image.
pub fn daemon(boot_delay: Duration) -> Daemon {
    let root = tempfile::tempdir().unwrap();
    let paths = Paths::under(root.path());
    std::fs::create_dir_all(&paths.state_dir).unwrap();
    let store = Store::open(&paths.database()).unwrap();
    store
        .put_image(&placeholder_image(&root.path().join("image")))
        .unwrap();
    let net = Arc::new(FakeNetwork::default());
    let app = restart(&root, net.clone(), boot_delay);
    Daemon { root, app, net }
}

/// A new daemon instance over the same state (as after a restart).
pub fn restart(root: &tempfile::TempDir, net: Arc<FakeNetwork>, boot_delay: Duration) -> Arc<App> {
    restart_with(root, net, boot_delay, config())
}

/// [`restart`] with a config of the test's own.
pub fn restart_with(
    root: &tempfile::TempDir,
    net: Arc<FakeNetwork>,
    boot_delay: Duration,
    config: Config,
) -> Arc<App> {
    let paths = Paths::under(root.path());
    let store = Store::open(&paths.database()).unwrap();
    let host = Host {
        runner: Arc::new(SystemRunner),
        net,
        disks: Arc::new(Ext4Disks::new(SystemRunner)),
        probe: Arc::new(DelayedProbe::new(boot_delay)),
    };
    let drivers = Arc::new(SystemDrivers::new(&config));
    Arc::new(App::new(paths, config, store, host, drivers).unwrap())
}

/// Fails the test if the fake Firecracker of a VM saw a request the spec forbids.
pub fn assert_spec_clean(vm_dir: &Path) {
    let violations = std::fs::read_to_string(vm_dir.join("violations.txt")).unwrap_or_default();
    assert!(
        violations.is_empty(),
        "spec violations in {}:\n{violations}",
        vm_dir.display()
    );
}

/// A VM called `name`, made with the defaults, running.
pub async fn create(app: &App, name: &str) -> banger_api::Vm {
    app.vms()
        .clone()
        .create(
            banger_api::CreateVmRequest {
                name: Some(name.into()),
                ..Default::default()
            },
            banger_daemon::progress::Reporter::silent(),
        )
        .await
        .unwrap()
}

pub fn requests(vm_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(vm_dir.join("requests.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
