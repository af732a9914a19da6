//! Running the daemon's Firecracker path against the real Firecracker
//! binary: finding it, a network namespace per test, and checks that a VM
//! left nothing behind.
//!
//! Each test calls [`Real::new`] on its own thread: it makes sure the
//! default image exists (outside any namespace: the build needs Debian's
//! mirror), then moves that thread into a new network namespace, where the
//! runtime's worker threads, the bridge, the TAP devices and every VMM it
//! starts live. The namespace goes when the test's last process ends.

#![allow(dead_code)]

mod instance;

pub use instance::Instance;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use banger_api::paths::Paths;
use banger_api::{Image, Vm};
use banger_daemon::app::App;
use banger_daemon::config::{Config, VmmChoice};
use banger_daemon::drivers::SystemDrivers;
use banger_daemon::host::Host;
use banger_daemon::progress::Reporter;
use banger_host::disk::Ext4Disks;
use banger_host::net::IpNetwork;
use banger_host::probe::{GuestProbe, SshBanner};
use banger_host::runner::SystemRunner;
use banger_store::Store;
use banger_testkit::doubles::DelayedProbe;

/// The image the tests boot: the default image's files, registered
/// without the agent so readiness does not wait for one.
pub const IMAGE: &str = "fc-kernel";

/// The real Firecracker: `BANGER_TEST_FIRECRACKER`, else the copy beside
/// the workspace (`../shared/tools/firecracker/firecracker`). Missing, it
/// fails the run under `CI=true` and is reported as skipped elsewhere.
pub fn firecracker() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("BANGER_TEST_FIRECRACKER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "BANGER_TEST_FIRECRACKER={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let beside =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/firecracker/firecracker");
    if beside.is_file() {
        return Some(beside.canonicalize().unwrap());
    }
    let why = format!(
        "no real Firecracker: set BANGER_TEST_FIRECRACKER or put it at {}",
        beside.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: {why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// One test's world: its state directory, in its own network namespace.
pub struct Real {
    pub root: tempfile::TempDir,
    pub firecracker: PathBuf,
    pub runtime: tokio::runtime::Runtime,
}

/// The default image is built (or found cached) once per test binary.
static IMAGE_LOCK: Mutex<()> = Mutex::new(());

impl Real {
    /// `None` when the real binary is absent (and this is not CI).
    pub fn new() -> Option<Real> {
        let firecracker = firecracker()?;
        assert!(
            nix::unistd::geteuid().is_root(),
            "this tier runs as root (network namespaces, TAP devices)"
        );
        assert!(Path::new("/dev/kvm").exists(), "Firecracker needs /dev/kvm");
        let root = tempfile::Builder::new()
            .prefix("banger-fc-")
            .tempdir()
            .unwrap();
        {
            let _one = IMAGE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            let local = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let config = config(&firecracker);
            let app = app_over(root.path(), Arc::new(SshBanner), config);
            let image = local
                .block_on(app.images().ensure("default", &Reporter::silent()))
                .expect("the default image builds");
            app.store()
                .put_image(&Image {
                    name: IMAGE.into(),
                    managed: false,
                    agent: false,
                    agent_serial: false,
                    warm: false,
                    ..image
                })
                .unwrap();
        }
        // From here on this thread, and every thread and process it
        // starts, is in a namespace of its own.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        run(&["ip", "link", "set", "lo", "up"]);
        Some(Real {
            root,
            firecracker,
            runtime: runtime(),
        })
    }

    /// Ends every task of the daemons so far (as a daemon exit does) and
    /// starts a fresh runtime for the next one. Their VMMs keep running.
    pub fn restart_runtime(&mut self) {
        let old = std::mem::replace(&mut self.runtime, runtime());
        old.shutdown_timeout(Duration::from_secs(5));
    }

    pub fn config(&self) -> Config {
        config(&self.firecracker)
    }

    /// A daemon over this test's state, as after a (re)start.
    pub fn app(&self, probe: Arc<dyn GuestProbe>) -> Arc<App> {
        app_over(self.root.path(), probe, self.config())
    }

    pub fn app_with(&self, probe: Arc<dyn GuestProbe>, config: Config) -> Arc<App> {
        app_over(self.root.path(), probe, config)
    }

    /// A daemon whose guests count as ready once their VMM runs: the real
    /// Firecracker cannot boot a guest to readiness on this host.
    pub fn app_ready_at_once(&self) -> Arc<App> {
        self.app(Arc::new(DelayedProbe::new(Duration::from_millis(200))))
    }

    /// Runs a future on this test's runtime (inside its namespace).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl Drop for Real {
    /// A failed test must not leave Firecracker processes running.
    fn drop(&mut self) {
        for pid in processes_naming(self.root.path()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Worker threads are made by the calling thread, so after the unshare
/// they are in its namespace too.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(firecracker: &Path) -> Config {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let agent = Path::new(env!("CARGO_BIN_EXE_fake-firecracker")).with_file_name("banger-agent");
    assert!(
        agent.is_file(),
        "{} is missing: run this tier as `cargo test --workspace --all-features`",
        agent.display()
    );
    Config {
        vmm: VmmChoice::Firecracker,
        firecracker_bin: Some(firecracker.to_path_buf()),
        images_dir: Some(target.join("e2e-images")),
        agent_bin: Some(agent),
        default_vcpu: 1,
        default_memory_mib: 256,
        boot_timeout_secs: 120,
        // The guest never answers Ctrl-Alt-Del here; stop then terminates.
        stop_timeout_secs: 2,
        tap_pool_size: 0,
        ..Config::default()
    }
}

fn app_over(root: &Path, probe: Arc<dyn GuestProbe>, config: Config) -> Arc<App> {
    let paths = Paths::under(root);
    std::fs::create_dir_all(&paths.state_dir).unwrap();
    let store = Store::open(&paths.database()).unwrap();
    let host = Host {
        runner: Arc::new(SystemRunner),
        net: Arc::new(IpNetwork::new(SystemRunner)),
        disks: Arc::new(Ext4Disks::new(SystemRunner)),
        probe,
    };
    let drivers = Arc::new(SystemDrivers::new(&config));
    Arc::new(App::new(paths, config, store, host, drivers).unwrap())
}
/// A create request for [`IMAGE`].
pub fn request(name: &str) -> banger_api::CreateVmRequest {
    banger_api::CreateVmRequest {
        name: Some(name.into()),
        image: Some(IMAGE.into()),
        ..Default::default()
    }
}

pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The links of this thread's namespace, one line each.
pub fn links() -> String {
    run(&["ip", "-o", "link"])
}

/// The program a process runs.
pub fn exe(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The files a process has open.
pub fn open_files(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose command line names `needle` (a VM directory).
pub fn processes_naming(needle: &Path) -> Vec<u32> {
    let needle = needle.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

/// Nothing of `vm` is left on the host: no process naming its directory,
/// no TAP, no directory, no journal rows, no record.
pub fn assert_gone(app: &App, vm: &Vm) {
    assert_eq!(
        processes_naming(&vm.dir),
        Vec::<u32>::new(),
        "VMM processes left"
    );
    assert!(
        !links().contains(&vm.tap),
        "TAP {} left:\n{}",
        vm.tap,
        links()
    );
    assert!(!vm.dir.exists(), "{} left", vm.dir.display());
    assert!(app.store().get_vm(&vm.id).unwrap().is_none());
    let rows: Vec<_> = app
        .store()
        .all_resources()
        .unwrap()
        .into_iter()
        .filter(|r| r.vm_id == vm.id)
        .collect();
    assert!(rows.is_empty(), "journal rows left: {rows:?}");
}

/// Waits for `vm` to reach `state`, up to `limit`.
pub fn wait_state(
    app: &App,
    name: &str,
    state: banger_api::VmState,
    limit: Duration,
) -> Option<Vm> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let vm = app.store().resolve_vm(name).unwrap();
        if vm.state == state {
            return Some(vm);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
